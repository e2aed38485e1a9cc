//! The live price sensors of a consumption point: the all-in price and the spot price, now,
//! with today's and tomorrow's intervals in the attributes and as a timetable.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{PriceBreakdown, TZ};
use crate::model::{MeterValue, TimedValue, ValueKind};

fn round(v: f64) -> f64 {
    (v * 1e5).round() / 1e5
}

/// The price sensors from the priced intervals of today and tomorrow.
pub fn live_values(rows: &[PriceBreakdown], now: DateTime<Utc>) -> Vec<MeterValue> {
    if rows.is_empty() {
        return Vec::new();
    }
    let today = now.with_timezone(&TZ).date_naive();
    let is_today = |r: &&PriceBreakdown| r.start.with_timezone(&TZ).date_naive() == today;
    let interval = |r: &PriceBreakdown| {
        json!({
            "start": r.start.with_timezone(&TZ).to_rfc3339(),
            "end": r.end.with_timezone(&TZ).to_rfc3339(),
            "price": round(r.total),
            "spot": round(r.spot),
            "tariffs": round(r.tariffs),
        })
    };
    let today_rows: Vec<&PriceBreakdown> = rows.iter().filter(is_today).collect();
    let tomorrow_rows: Vec<&PriceBreakdown> = rows.iter().filter(|r| !is_today(r)).collect();
    let stats = |pick: fn(&PriceBreakdown) -> f64| -> Map<String, Value> {
        let values: Vec<f64> = today_rows.iter().map(|r| pick(r)).collect();
        let mut m = Map::new();
        if !values.is_empty() {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            m.insert("today_min".into(), json!(round(min)));
            m.insert("today_max".into(), json!(round(max)));
            m.insert("today_mean".into(), json!(round(mean)));
        }
        m
    };
    let timetable = |pick: fn(&PriceBreakdown) -> f64| -> Vec<TimedValue> {
        rows.iter()
            .map(|r| TimedValue {
                start: r.start,
                end: r.end,
                value: round(pick(r)),
            })
            .collect()
    };
    let mut price_attributes = stats(|r| r.total);
    price_attributes.insert("currency".into(), json!("DKK"));
    price_attributes.insert("vat_included".into(), json!(true));
    price_attributes.insert("today".into(), today_rows.iter().map(|r| interval(r)).collect());
    price_attributes.insert("tomorrow".into(), tomorrow_rows.iter().map(|r| interval(r)).collect());
    let mut spot_attributes = stats(|r| r.spot);
    spot_attributes.insert("currency".into(), json!("DKK"));
    spot_attributes.insert("vat_included".into(), json!(false));
    let mut values = vec![
        MeterValue {
            key: "price".into(),
            name: "Price".into(),
            value: None,
            unit: Some("DKK/kWh".into()),
            kind: ValueKind::Price,
            attributes: price_attributes,
            timetable: timetable(|r| r.total),
        },
        MeterValue {
            key: "spot_price".into(),
            name: "Spot price".into(),
            value: None,
            unit: Some("DKK/kWh".into()),
            kind: ValueKind::Price,
            attributes: spot_attributes,
            timetable: timetable(|r| r.spot),
        },
    ];
    for v in &mut values {
        v.value = v.value_at(now);
    }
    values
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
    fn the_live_price_is_the_current_interval_with_today_and_tomorrow_in_attributes() {
        // 23:00 UTC on 25 November is 00:00 local on the 26th.
        let midnight = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let rows: Vec<PriceBreakdown> = (0..4)
            .map(|q| row(midnight + chrono::Duration::minutes(15 * q), 15, 0.1 * q as f64, 0.5))
            .chain([row(midnight + chrono::Duration::hours(24), 15, -0.2, 0.5)])
            .collect();
        let now = midnight + chrono::Duration::minutes(20);
        let values = live_values(&rows, now);
        assert_eq!(values.len(), 2);
        let price = &values[0];
        assert_eq!(price.key, "price");
        assert_eq!(price.value, Some(round((0.1 + 0.5) * 1.25)));
        assert_eq!(price.attributes["today"].as_array().unwrap().len(), 4);
        assert_eq!(price.attributes["tomorrow"].as_array().unwrap().len(), 1);
        assert_eq!(price.attributes["today_min"], json!(0.625));
        assert_eq!(price.attributes["today_max"], json!(1.0));
        assert_eq!(price.attributes["tomorrow"][0]["spot"], json!(-0.2));
        assert_eq!(
            price.attributes["today"][1]["start"],
            json!("2025-11-26T00:15:00+01:00")
        );
        assert_eq!(values[1].value, Some(0.1));
        assert_eq!(price.next_change(now), Some(midnight + chrono::Duration::minutes(30)));
        assert_eq!(
            price.value_at(midnight + chrono::Duration::minutes(50)),
            Some(round(0.8 * 1.25))
        );
    }
}
