//! The live price sensors of a consumption point: the all-in price and the spot price, now,
//! with today's and tomorrow's intervals in the attributes and as a timetable.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::shape::{self, PriceResolution, Shape, Slot};
use super::{PriceArea, PriceBreakdown};
use crate::model::MeterValue;

/// The price sensors from the priced intervals of today and tomorrow, at `resolution`.
pub(crate) fn live_values(
    rows: &[PriceBreakdown],
    now: DateTime<Utc>,
    area: PriceArea,
    resolution: PriceResolution,
) -> Vec<MeterValue> {
    if rows.is_empty() {
        return Vec::new();
    }
    let slots = |value: fn(&PriceBreakdown) -> f64, parts: fn(&PriceBreakdown) -> Vec<f64>| {
        let slots: Vec<Slot> = rows
            .iter()
            .map(|r| Slot {
                start: r.start,
                end: r.end,
                value: value(r),
                parts: parts(r),
            })
            .collect();
        shape::at_resolution(&slots, resolution)
    };
    let price = Shape {
        region: area,
        currency: Some("DKK"),
        value_alias: Some("price"),
        parts: &["spot", "tariffs"],
        resolution,
    };
    let spot = Shape {
        value_alias: None,
        parts: &[],
        ..price
    };
    [
        (
            "price",
            "Price",
            true,
            price,
            slots(|r| r.total, |r| vec![r.spot, r.tariffs]),
        ),
        (
            "spot_price",
            "Spot price",
            false,
            spot,
            slots(|r| r.spot, |_| Vec::new()),
        ),
    ]
    .into_iter()
    .map(|(key, name, vat_included, shape, slots)| {
        let mut value = shape::timed_sensor(key, name, "DKK/kWh", &slots, now, &shape);
        value.attributes.insert("vat_included".into(), json!(vat_included));
        value
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn row(start: DateTime<Utc>, minutes: i64, spot: f64, tariffs: f64) -> PriceBreakdown {
        let vat = (spot + tariffs) * 0.25;
        PriceBreakdown {
            start,
            end: start + chrono::Duration::minutes(minutes),
            spot,
            tariffs,
            tax: 0.0,
            vat,
            markup: 0.0,
            total: spot + tariffs + vat,
        }
    }

    #[test]
    fn the_live_price_is_the_current_slot_with_today_and_tomorrow_in_attributes() {
        // 23:00 UTC on 25 November is 00:00 local on the 26th.
        let midnight = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let rows: Vec<PriceBreakdown> = (0..8)
            .map(|q| row(midnight + chrono::Duration::minutes(15 * q), 15, 0.1 * q as f64, 0.5))
            .chain([row(midnight + chrono::Duration::hours(24), 15, -0.2, 0.5)])
            .collect();
        let now = midnight + chrono::Duration::minutes(20);

        let values = live_values(&rows, now, PriceArea::DK1, PriceResolution::Quarter);
        assert_eq!(values.len(), 2);
        let price = &values[0];
        assert_eq!(price.key, "price");
        assert_eq!(price.value, Some(shape::round((0.1 + 0.5) * 1.25)));
        assert_eq!(price.attributes["current_price"], json!(0.75));
        assert_eq!(price.attributes["today"].as_array().unwrap().len(), 8);
        assert_eq!(
            price.attributes["tomorrow_valid"],
            json!(false),
            "one quarter of tomorrow is not a day"
        );
        assert_eq!(price.attributes["raw_tomorrow"], json!([]));
        assert_eq!(price.attributes["today_min"]["price"], json!(0.625));
        assert_eq!(price.attributes["region"], json!("DK1"));
        assert_eq!(
            price.attributes["raw_today"][1]["start"],
            json!("2025-11-26T00:15:00+01:00")
        );
        assert_eq!(values[1].value, Some(0.1));
        assert_eq!(price.next_change(now), Some(midnight + chrono::Duration::minutes(30)));

        let values = live_values(&rows, now, PriceArea::DK2, PriceResolution::Hour);
        let price = &values[0];
        // The first hour's spot is the mean of 0.0, 0.1, 0.2 and 0.3.
        assert_eq!(price.value, Some(shape::round((0.15 + 0.5) * 1.25)));
        assert_eq!(price.attributes["raw_today"][0]["spot"], json!(0.15));
        assert_eq!(price.attributes["raw_today"][1]["tariffs"], json!(0.5));
        assert_eq!(
            price.attributes["raw_today"][0]["end"],
            json!("2025-11-26T01:00:00+01:00")
        );
        assert_eq!(price.next_change(now), Some(midnight + chrono::Duration::hours(1)));
        assert_eq!(values[1].attributes["raw_today"][0]["value"], json!(0.15));
        assert!(values[1].attributes["raw_today"][0].get("price").is_none());
    }
}
