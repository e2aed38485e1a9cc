//! The grid's CO2 intensity in a price area: grams of CO2 per kWh consumed, in 5-minute rows.
//! `CO2Emis` holds what was emitted (published within minutes), `CO2EmisProg` the forecast for
//! today and tomorrow. The sensor shows the newest realised row and carries the forecast,
//! averaged to the price sensors' resolution, in the price sensors' shape, so the same tools
//! plan for the greenest hours.
//!
//! Economy: a refresh asks each dataset once, always with `start` (never the whole history),
//! and an answer serves every meter of the area for [`FRESH_FOR`].

use chrono::{DateTime, Days, Duration, Utc};
use serde_json::json;

use super::shape::{self, PriceResolution, Shape, Slot};
use super::{PriceArea, TZ};
use crate::model::{MeterValue, SharedSource, ValueKind};

/// Realised emissions.
pub(crate) const REALISED: &str = "CO2Emis";
/// The forecast, today and tomorrow.
pub(crate) const FORECAST: &str = "CO2EmisProg";
/// How often the sensor is read again while the bridge runs.
pub(crate) const CO2_REFRESH: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// An answer younger than this is not asked again: a little under [`CO2_REFRESH`], so that a
/// refresh always finds the previous one stale while a poll in between reuses it.
pub(crate) const FRESH_FOR: Duration = Duration::minutes(14);
const ROW: Duration = Duration::minutes(5);

/// One 5-minute row, in g/kWh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Co2Row {
    pub(crate) start: DateTime<Utc>,
    pub(crate) value: f64,
}

/// One area's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Co2Data {
    pub(crate) fetched: DateTime<Utc>,
    /// The newest realised row; `None` when the dataset had none in the asked days.
    pub(crate) realised: Option<Co2Row>,
    pub(crate) forecast: Vec<Co2Row>,
}

impl Co2Data {
    pub(crate) fn fresh(&self, now: DateTime<Utc>) -> bool {
        now - self.fetched < FRESH_FOR
    }
}

/// The Danish days to ask for: the realised rows from yesterday on (just after midnight today
/// has none yet), the forecast today and tomorrow; `end` is exclusive.
pub(crate) fn days(now: DateTime<Utc>) -> [(chrono::NaiveDate, chrono::NaiveDate); 2] {
    let today = now.with_timezone(&TZ).date_naive();
    let tomorrow = today + Days::new(1);
    [(today - Days::new(1), tomorrow), (today, tomorrow + Days::new(1))]
}

/// The device the sensor belongs to: one per price area, not a meter.
pub(crate) fn source(area: PriceArea) -> SharedSource {
    SharedSource {
        source: "energidataservice".into(),
        id: area.as_str().into(),
        name: format!("Energi Data Service {area}"),
        manufacturer: "Energinet".into(),
    }
}

/// The CO2 intensity sensor of `area`: the newest realised value now, the forecast of today and
/// tomorrow at `resolution` in the attributes.
pub(crate) fn co2_value(
    data: &Co2Data,
    now: DateTime<Utc>,
    area: PriceArea,
    resolution: PriceResolution,
) -> MeterValue {
    let rows: Vec<Slot> = data
        .forecast
        .iter()
        .map(|r| Slot {
            start: r.start,
            end: r.start + ROW,
            value: r.value,
            parts: Vec::new(),
        })
        .collect();
    let slots = shape::at_resolution(&rows, resolution);
    let current = data.realised.map(|r| shape::round(r.value));
    let shape = Shape {
        region: area,
        currency: None,
        value_alias: None,
        parts: &[],
        resolution,
    };
    let mut attributes = shape::attributes(&slots, now, current, &shape);
    attributes.insert(
        "realised_at".into(),
        json!(data.realised.map(|r| r.start.with_timezone(&TZ).to_rfc3339())),
    );
    MeterValue {
        key: "co2_intensity".into(),
        name: "CO2 intensity".into(),
        value: current,
        unit: Some("g/kWh".into()),
        kind: ValueKind::Measurement,
        attributes,
        timetable: Vec::new(),
        shared: Some(source(area)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_forecast_is_averaged_to_the_resolution_and_a_missing_hour_stays_missing() {
        // 23:00 UTC on 25 November is 00:00 local on the 26th.
        let midnight = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let forecast: Vec<Co2Row> = (0..24 * 12)
            // 03:00-04:00 is missing.
            .filter(|i| !(36..48).contains(i))
            .map(|i| Co2Row {
                start: midnight + ROW * i,
                value: 100.0 + (i % 3) as f64 * 3.0,
            })
            .collect();
        let data = Co2Data {
            fetched: midnight,
            realised: Some(Co2Row {
                start: midnight + Duration::minutes(30),
                value: 87.44444,
            }),
            forecast,
        };
        let now = midnight + Duration::minutes(40);
        let hourly = co2_value(&data, now, PriceArea::DK2, PriceResolution::Hour);
        assert_eq!(hourly.value, Some(87.4444));
        assert_eq!(hourly.attributes["current_price"], json!(87.4444));
        assert_eq!(hourly.attributes["today"].as_array().unwrap().len(), 23);
        assert_eq!(hourly.attributes["today"][0], json!(103.0));
        assert_eq!(
            hourly.attributes["raw_today"][3]["start"],
            json!("2025-11-26T04:00:00+01:00")
        );
        assert_eq!(hourly.attributes["tomorrow_valid"], json!(false));
        assert_eq!(hourly.attributes["realised_at"], json!("2025-11-26T00:30:00+01:00"));
        assert!(hourly.attributes.get("currency").is_none());
        assert_eq!(hourly.shared.as_ref().unwrap().name, "Energi Data Service DK2");
        let quarters = co2_value(&data, now, PriceArea::DK2, PriceResolution::Quarter);
        assert_eq!(quarters.attributes["today"].as_array().unwrap().len(), 92);
        assert_eq!(
            quarters.attributes["raw_today"][0],
            json!({"start": "2025-11-26T00:00:00+01:00", "value": 103.0})
        );
    }
}
