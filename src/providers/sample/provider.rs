//! The sample meters: deterministic hourly consumption from a hash, in Copenhagen days.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, Utc};
use chrono_tz::Tz;

use super::{Settings, KIND};
use crate::energidataservice::{co2_value, timed_sensor, Co2Data, Co2Row, PriceArea, PriceResolution, Shape, Slot};
use crate::model::{
    local_midnight, DeviceInfo, Direction, IntervalReading, Medium, Meter, MeterValue, PricePoint, PricePurpose,
    PriceSeries, Quality, TimeRange, Unit,
};
use crate::providers::{Provider, ProviderError, Receive, Window};

const TZ: Tz = chrono_tz::Europe::Copenhagen;

pub(crate) struct SampleProvider {
    account: String,
    first: DateTime<Utc>,
    /// Exclusive end of the data; `None`: up to now minus `delay`.
    last: Option<DateTime<Utc>>,
    delay: Duration,
}

impl SampleProvider {
    pub(crate) fn new(config: &Settings, account: String) -> Self {
        let start = config
            .start
            .unwrap_or_else(|| Utc::now().date_naive() - chrono::Days::new(7));
        let first = local_midnight(start, TZ);
        let last = config
            .days
            .map(|days| local_midnight(start + chrono::Days::new(days.into()), TZ));
        SampleProvider {
            account,
            first,
            last,
            delay: config.delay,
        }
    }

    fn data_end(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let live = (now - chrono::Duration::from_std(self.delay).unwrap_or_default())
            .duration_trunc(chrono::Duration::hours(1))
            .unwrap_or(now);
        match self.last {
            Some(last) => last.min(live),
            None => live,
        }
    }
}

/// A stable, well-spread value per (meter, hour): daily shape plus hash noise.
pub(crate) fn sample_value(meter: &str, start: DateTime<Utc>) -> f64 {
    let hour_local = start
        .with_timezone(&TZ)
        .format("%H")
        .to_string()
        .parse::<u32>()
        .unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in meter.bytes().chain(start.timestamp().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let noise = (h % 1000) as f64 / 1000.0;
    let shape = match hour_local {
        0..=5 => 0.3,
        6..=8 => 1.1,
        9..=16 => 0.6,
        17..=21 => 1.6,
        _ => 0.7,
    };
    let scale = if meter == "gas" { 0.12 } else { 1.0 };
    ((shape + noise * 0.5) * scale * 1000.0).round() / 1000.0
}

/// A sample electricity price in DKK per kWh, everything included: cheap at night, dear at the
/// evening peak, with stable hash noise per hour. Deterministic, so the demo needs no network.
pub fn sample_price(start: DateTime<Utc>) -> f64 {
    sample_value("price", start)
}

/// The hourly sample prices over `range`, hour-aligned.
fn price_points(range: TimeRange) -> Vec<PricePoint> {
    let hour = chrono::Duration::hours(1);
    let mut at = range.start.duration_trunc(hour).unwrap_or(range.start);
    let mut out = Vec::new();
    while at < range.end {
        out.push(PricePoint {
            start: at,
            end: at + hour,
            price: sample_price(at),
        });
        at += hour;
    }
    out
}

/// Today and tomorrow (Danish days) from local midnight.
fn two_days(now: DateTime<Utc>) -> TimeRange {
    let today = now.with_timezone(&TZ).date_naive();
    TimeRange::new(
        local_midnight(today, TZ),
        local_midnight(today + chrono::Days::new(2), TZ),
    )
}

/// The price sensor of the electricity meter: today's and tomorrow's hourly sample prices in the
/// shape price tools read, the one of the current hour shown.
pub(crate) fn price_value(now: DateTime<Utc>) -> MeterValue {
    let slots: Vec<Slot> = price_points(two_days(now))
        .into_iter()
        .map(|p| Slot {
            start: p.start,
            end: p.end,
            value: p.price,
            parts: Vec::new(),
        })
        .collect();
    let shape = Shape {
        region: PriceArea::DK1,
        currency: Some("DKK"),
        value_alias: Some("price"),
        parts: &[],
        resolution: PriceResolution::Hour,
    };
    let mut value = timed_sensor("price", "Price", "DKK/kWh", &slots, now, &shape);
    value.attributes.insert("sample".into(), true.into());
    value
}

/// A sample CO2 intensity in g/kWh for the 5 minutes from `start`: low at night and midday,
/// with stable hash noise.
fn sample_co2(start: DateTime<Utc>) -> f64 {
    (40.0 + sample_value("co2", start) * 90.0).round()
}

/// The CO2 intensity sensor of the sample area (DK1): the sample value of the current 5 minutes
/// as realised, today and tomorrow as the forecast.
pub(crate) fn co2_sample(now: DateTime<Utc>) -> MeterValue {
    let five = chrono::Duration::minutes(5);
    let range = two_days(now);
    let mut forecast = Vec::new();
    let mut at = range.start;
    while at < range.end {
        forecast.push(Co2Row {
            start: at,
            value: sample_co2(at),
        });
        at += five;
    }
    let newest = now.duration_trunc(five).unwrap_or(now) - five;
    let data = Co2Data {
        fetched: now,
        realised: Some(Co2Row {
            start: newest,
            value: sample_co2(newest),
        }),
        forecast,
    };
    let mut value = co2_value(&data, now, PriceArea::DK1, PriceResolution::Hour);
    value.attributes.insert("sample".into(), true.into());
    value
}

impl SampleProvider {
    /// The sample readings of `meter` that start in `range`.
    fn series(&self, meter: &Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError> {
        if meter.id != "house" && meter.id != "gas" {
            return Err(ProviderError::UnknownMeter {
                provider: KIND,
                meter: meter.id.clone(),
            });
        }
        let hour = chrono::Duration::hours(1);
        let from = range.start.max(self.first).duration_trunc(hour).unwrap_or(range.start);
        let until = range.end.min(self.data_end(Utc::now()));
        let mut out = Vec::new();
        let mut start = if from < range.start { from + hour } else { from };
        while start + hour <= until {
            out.push(IntervalReading {
                start,
                end: start + hour,
                value: Some(sample_value(&meter.id, start)),
                unit: meter.unit.clone(),
                quality: Quality::Measured,
                reading: None,
            });
            start += hour;
        }
        Ok(out)
    }
}

#[async_trait]
impl Provider for SampleProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn account(&self) -> &str {
        &self.account
    }

    async fn meters(&self) -> Result<Vec<Meter>, ProviderError> {
        let meter = |id: &str, name: &str, medium, unit| Meter {
            provider: KIND.into(),
            id: id.into(),
            name: name.into(),
            medium,
            direction: Direction::Consumption,
            unit,
            cumulative: false,
            timezone: TZ,
            device: DeviceInfo {
                manufacturer: Some("meter2mqtt".into()),
                model: Some("Sample meter".into()),
                serial_number: Some(format!("SAMPLE-{}", id.to_uppercase())),
                suggested_area: None,
            },
        };
        Ok(vec![
            meter("house", "Sample house electricity", Medium::Electricity, Unit::KWh),
            meter("gas", "Sample house gas", Medium::Gas, Unit::CubicMeters),
        ])
    }

    async fn read(&self, meters: &[Meter], range: TimeRange, out: &mut dyn Receive) {
        for meter in meters {
            if out
                .window(Window::of_meter(meter, range, self.series(meter, range)))
                .await
                .is_break()
            {
                return;
            }
        }
    }

    async fn values(&self, meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        Ok(match meter.medium {
            Medium::Electricity => vec![price_value(Utc::now()), co2_sample(Utc::now())],
            _ => Vec::new(),
        })
    }

    /// What the electricity cost, at the sample prices.
    async fn prices(&self, meter: &Meter, range: TimeRange) -> Result<Option<PriceSeries>, ProviderError> {
        if meter.medium != Medium::Electricity {
            return Ok(None);
        }
        Ok(Some(PriceSeries {
            currency: "DKK".into(),
            per_unit: Unit::KWh,
            purpose: PricePurpose::Cost,
            points: price_points(range),
        }))
    }

    fn next_data_possible(&self, data_until: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.last.is_some_and(|last| data_until >= last) {
            // Fixed sample window fully delivered: nothing new can appear.
            return now + chrono::Duration::days(3650);
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn provider(days: u32) -> SampleProvider {
        SampleProvider::new(
            &Settings {
                start: NaiveDate::from_ymd_opt(2024, 10, 22),
                days: Some(days),
                ..Default::default()
            },
            "1".into(),
        )
    }

    #[tokio::test]
    async fn a_week_with_the_autumn_dst_day_has_169_hours() {
        let p = provider(7);
        let meters = p.meters().await.unwrap();
        let range = TimeRange::new(
            p.first - chrono::Duration::days(1),
            p.last.unwrap() + chrono::Duration::days(1),
        );
        let readings = p.readings(&meters[0], range).await.unwrap();
        // 2024-10-22 .. 2024-10-29 local; 27 October has 25 hours.
        assert_eq!(readings.len(), 7 * 24 + 1);
        assert_eq!(readings[0].start.to_rfc3339(), "2024-10-21T22:00:00+00:00");
        assert_eq!(readings.last().unwrap().end.to_rfc3339(), "2024-10-28T23:00:00+00:00");
        assert!(readings.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[tokio::test]
    async fn electricity_has_a_price_sensor_and_hourly_prices() {
        let p = provider(7);
        let meters = p.meters().await.unwrap();
        let now = Utc::now();
        let values = p.values(&meters[0]).await.unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].kind, crate::model::ValueKind::Price);
        assert!(values[0].timetable.len() >= 46, "today and tomorrow, hourly");
        assert!(values[0].value_at(now).is_some());
        assert_eq!(values[0].attributes["tomorrow_valid"], serde_json::json!(true));
        assert!(values[0].attributes["raw_today"].as_array().unwrap().len() >= 23);
        assert_eq!(values[1].key, "co2_intensity");
        assert_eq!(values[1].shared.as_ref().unwrap().name, "Energi Data Service DK1");
        assert!(values[1].value.is_some_and(|g| (40.0..=300.0).contains(&g)));
        assert_eq!(
            values[1].attributes["tomorrow"].as_array().unwrap().len(),
            values[1].attributes["raw_tomorrow"].as_array().unwrap().len()
        );
        assert!(p.values(&meters[1]).await.unwrap().is_empty());
        // The 25-hour day: 25 hourly prices, the same each time.
        let day = TimeRange::new(
            local_midnight(NaiveDate::from_ymd_opt(2024, 10, 27).unwrap(), TZ),
            local_midnight(NaiveDate::from_ymd_opt(2024, 10, 28).unwrap(), TZ),
        );
        let series = p.prices(&meters[0], day).await.unwrap().unwrap();
        assert_eq!(series.points.len(), 25);
        assert_eq!(series, p.prices(&meters[0], day).await.unwrap().unwrap());
        assert!(series.points.iter().all(|pt| (0.3..=2.1).contains(&pt.price)));
        assert_eq!(p.prices(&meters[1], day).await.unwrap(), None);
    }

    #[tokio::test]
    async fn values_are_deterministic() {
        let p = provider(1);
        let meters = p.meters().await.unwrap();
        let range = TimeRange::new(p.first, p.last.unwrap());
        assert_eq!(
            p.readings(&meters[1], range).await.unwrap(),
            p.readings(&meters[1], range).await.unwrap()
        );
    }
}
