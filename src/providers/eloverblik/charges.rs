//! Tariffs and subscriptions from `getcharges`, as values beside the interval data.
//!
//! The tariff is what one kWh costs in grid tariffs and taxes right now, in DKK: the current
//! hour's price of every hourly (`PT1H`, 24 positions) tariff plus every daily (`P1D`) tariff,
//! which is a per-kWh price that holds all day (Elafgift, the system tariff). The hourly part
//! alone is kept as an attribute. Subscriptions are summed per month. One-off fees are not
//! published: they are no running cost.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use serde_json::{json, Map, Value};

use super::client::Api;
use super::dto::{ApiList, Charge, Charges, Item, MeteringPointsRequest, Tariff};
use super::{KIND, TZ};
use crate::model::{MeterValue, ValueKind};
use crate::providers::ProviderError;

/// Charges change a few times a year; six hours keeps a change from lingering past the day.
pub(crate) const REFRESH: Duration = Duration::hours(6);
/// After a failed call, the next try waits this long instead of stalling every poll.
pub(crate) const FAILURE_PAUSE: Duration = Duration::hours(1);
const BATCH: usize = 10;

type PointCharges = Result<Charges, ProviderError>;

#[derive(Default)]
pub(crate) struct ChargesCache {
    fetched_at: Option<DateTime<Utc>>,
    by_id: HashMap<String, PointCharges>,
    failure: Option<(DateTime<Utc>, ProviderError)>,
}

impl ChargesCache {
    /// What the cache can answer for `id` at `now` without a call: `None` means fetch.
    pub(crate) fn answer(&self, id: &str, now: DateTime<Utc>) -> Option<PointCharges> {
        if let Some((at, error)) = &self.failure {
            if now < *at + FAILURE_PAUSE {
                return Some(Err(error.clone()));
            }
        }
        let fresh = self.fetched_at.is_some_and(|at| now < at + REFRESH);
        if fresh {
            self.by_id.get(id).cloned()
        } else {
            None
        }
    }

    pub(crate) fn store(&mut self, fetched: Result<HashMap<String, PointCharges>, ProviderError>, now: DateTime<Utc>) {
        match fetched {
            Ok(by_id) => {
                self.by_id = by_id;
                self.fetched_at = Some(now);
                self.failure = None;
            }
            Err(error) => self.failure = Some((now, error)),
        }
    }
}

/// Charges of `ids`, ten to a call. A point the answer leaves out gets an error of its own.
pub(crate) async fn fetch(api: &Api, ids: &[&str]) -> Result<HashMap<String, PointCharges>, ProviderError> {
    let path = api.paths.charges;
    let endpoint = Api::endpoint("POST", path);
    let mut out = HashMap::new();
    for chunk in ids.chunks(BATCH) {
        let items: ApiList<Item<Charges>> = api.post(path, &MeteringPointsRequest::new(chunk)).await?;
        for item in items.into_items() {
            let Some(id) = item.id.clone().filter(|id| !id.trim().is_empty()) else {
                continue;
            };
            let result = if item.success {
                Ok(item.payload.unwrap_or_default())
            } else {
                Err(ProviderError::Meter {
                    provider: KIND,
                    meter: id.clone(),
                    message: format!("charges: {}", item.failure_text()),
                })
            };
            out.insert(id, result);
        }
        for id in chunk {
            out.entry((*id).to_owned()).or_insert_with(|| {
                Err(ProviderError::Meter {
                    provider: KIND,
                    meter: (*id).to_owned(),
                    message: format!("{endpoint} returned no charges for this metering point"),
                })
            });
        }
    }
    Ok(out)
}

/// The values a meter shows for its charges at `now`.
pub(crate) fn values(charges: &Charges, now: DateTime<Utc>) -> Vec<MeterValue> {
    let mut out = Vec::new();
    out.extend(tariff_value(charges.tariffs.as_deref().unwrap_or_default(), now));
    out.extend(subscription_value(
        charges.subscriptions.as_deref().unwrap_or_default(),
        now,
    ));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TariffKind {
    Hourly,
    Daily,
}

fn tariff_kind(tariff: &Tariff) -> Option<TariffKind> {
    match tariff.period_type.as_deref().map(str::trim) {
        Some("PT1H") => Some(TariffKind::Hourly),
        Some("P1D" | "PT1D") => Some(TariffKind::Daily),
        other => {
            tracing::debug!(period_type = ?other, name = ?tariff.name, "tariff with an unknown period type left out");
            None
        }
    }
}

/// The price for the hour at 1-based `position`; a daily tariff, or an hourly one with a
/// single price, has one price all day.
fn price_at(tariff: &Tariff, position: u32) -> Option<f64> {
    let prices = tariff.prices.as_deref().unwrap_or_default();
    match prices {
        [only] => only.price,
        _ => prices.iter().find(|p| p.position == position).and_then(|p| p.price),
    }
}

fn tariff_value(tariffs: &[Tariff], now: DateTime<Utc>) -> Option<MeterValue> {
    let position = now.with_timezone(&TZ).hour() + 1;
    let valid: Vec<(&Tariff, TariffKind)> = tariffs
        .iter()
        .filter(|t| valid_at(t.valid_from_date.as_deref(), t.valid_to_date.as_deref(), now))
        .filter_map(|t| tariff_kind(t).map(|kind| (t, kind)))
        .collect();
    if valid.is_empty() {
        return None;
    }
    let sum_at = |position: u32, only: Option<TariffKind>| -> f64 {
        valid
            .iter()
            .filter(|(_, kind)| only.is_none_or(|k| k == *kind))
            .filter_map(|(t, _)| price_at(t, position))
            .sum()
    };
    let components: Vec<Value> = valid
        .iter()
        .map(|(t, kind)| {
            json!({
                "name": t.name,
                "owner": t.owner,
                "period_type": if *kind == TariffKind::Hourly { "PT1H" } else { "P1D" },
                "price": price_at(t, position).map(round),
            })
        })
        .collect();
    let mut attributes = Map::new();
    attributes.insert("hour".into(), json!(position - 1));
    attributes.insert(
        "hourly_tariffs".into(),
        json!(round(sum_at(position, Some(TariffKind::Hourly)))),
    );
    attributes.insert(
        "prices".into(),
        json!((1..=24).map(|p| round(sum_at(p, None))).collect::<Vec<_>>()),
    );
    attributes.insert("tariffs".into(), Value::Array(components));
    Some(MeterValue {
        key: "tariff".into(),
        name: "Tariff".into(),
        value: Some(round(sum_at(position, None))),
        unit: Some("DKK/kWh".into()),
        kind: ValueKind::Price,
        attributes,
        timetable: Vec::new(),
        shared: None,
    })
}

fn subscription_value(subscriptions: &[Charge], now: DateTime<Utc>) -> Option<MeterValue> {
    let days_in_month = days_in_month(now.with_timezone(&TZ).date_naive());
    let mut total = 0.0;
    let mut items = Vec::new();
    for s in subscriptions
        .iter()
        .filter(|s| valid_at(s.valid_from_date.as_deref(), s.valid_to_date.as_deref(), now))
    {
        let per_period = s.price.unwrap_or(0.0) * s.quantity.unwrap_or(1.0);
        let monthly = match s.period_type.as_deref().map(str::trim) {
            Some("P1M") | None => per_period,
            Some("P1D" | "PT1D") => per_period * f64::from(days_in_month),
            other => {
                tracing::debug!(period_type = ?other, name = ?s.name, "subscription with an unknown period type left out");
                continue;
            }
        };
        total += monthly;
        items.push(json!({"name": s.name, "owner": s.owner, "price": s.price, "quantity": s.quantity, "period_type": s.period_type, "per_month": round(monthly)}));
    }
    if items.is_empty() {
        return None;
    }
    let mut attributes = Map::new();
    attributes.insert("subscriptions".into(), Value::Array(items));
    Some(MeterValue {
        key: "subscriptions".into(),
        name: "Subscriptions".into(),
        value: Some(round(total)),
        unit: Some("DKK/month".into()),
        kind: ValueKind::Monetary,
        attributes,
        timetable: Vec::new(),
        shared: None,
    })
}

/// `validFromDate <= now < validToDate`; an absent or unreadable bound is open.
fn valid_at(from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> bool {
    let parse = |s: Option<&str>| {
        s.and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    parse(from).is_none_or(|from| from <= now) && parse(to).is_none_or(|to| now < to)
}

fn days_in_month(day: NaiveDate) -> u32 {
    let first = day.with_day(1).unwrap_or(day);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    u32::try_from((next - first).num_days()).unwrap_or(30)
}

/// Prices carry six decimals; summing floats must not add noise beyond them.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Charges {
        let list: ApiList<Item<Charges>> =
            serde_json::from_str(include_str!("../../../tests/fixtures/eloverblik/charges.json")).unwrap();
        list.into_items().remove(0).payload.unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn tariff_of_the_current_danish_hour() {
        // 17:30 UTC in June is 19:30 in Denmark: position 20, the peak price.
        let values = values(&fixture(), utc("2024-06-12T17:30:00Z"));
        let tariff = values.iter().find(|v| v.key == "tariff").unwrap();
        assert_eq!(tariff.kind, ValueKind::Price);
        assert_eq!(tariff.unit.as_deref(), Some("DKK/kWh"));
        assert_eq!(tariff.value, Some(0.4344));
        assert_eq!(tariff.attributes["hour"], json!(19));
        assert_eq!(tariff.attributes["hourly_tariffs"], json!(0.4264));
        let prices = tariff.attributes["prices"].as_array().unwrap();
        assert_eq!(prices.len(), 24);
        assert_eq!(prices[0], json!(0.062689));
        assert_eq!(prices[6], json!(0.172068));
        let names: Vec<&str> = tariff.attributes["tariffs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Nettarif B lav", "Elafgift"]);
        // Night in winter: 23:30 UTC on 1 January is 00:30 local, position 1.
        let night = values_of_key(utc("2024-01-01T23:30:00Z"), "tariff");
        assert_eq!(night.value, Some(0.062689));
    }

    fn values_of_key(now: DateTime<Utc>, key: &str) -> MeterValue {
        values(&fixture(), now).into_iter().find(|v| v.key == key).unwrap()
    }

    #[test]
    fn subscriptions_per_month() {
        let subs = values_of_key(utc("2024-06-12T12:00:00Z"), "subscriptions");
        assert_eq!(subs.kind, ValueKind::Monetary);
        assert_eq!(subs.unit.as_deref(), Some("DKK/month"));
        assert_eq!(subs.value, Some(28.122861));
        assert_eq!(
            subs.attributes["subscriptions"][0]["name"],
            json!("Net abo B lav forbrug")
        );
    }

    #[test]
    fn validity_windows_and_daily_subscriptions() {
        let mut charges = fixture();
        let tariffs = charges.tariffs.as_mut().unwrap();
        tariffs[1].valid_to_date = Some("2024-01-01T00:00:00Z".into());
        let subs = charges.subscriptions.as_mut().unwrap();
        subs[0].period_type = Some("P1D".into());
        subs[0].price = Some(1.0);
        subs[0].quantity = Some(2.0);
        let values = values(&charges, utc("2024-02-10T12:00:00Z"));
        // Elafgift ended, so 13:00 local is the hourly price alone; February 2024 has 29 days.
        assert_eq!(values[0].value, Some(0.164068));
        assert_eq!(values[1].value, Some(58.0));
        assert!(!valid_at(
            Some("2030-01-01T00:00:00Z"),
            None,
            utc("2024-01-01T00:00:00Z")
        ));
        assert!(valid_at(Some("garbage"), Some(""), utc("2024-01-01T00:00:00Z")));
    }

    #[test]
    fn nothing_valid_means_no_values() {
        let mut charges = fixture();
        for t in charges.tariffs.as_mut().unwrap() {
            t.valid_from_date = Some("2099-01-01T00:00:00Z".into());
        }
        charges.subscriptions = None;
        assert!(values(&charges, utc("2024-06-12T12:00:00Z")).is_empty());
    }

    #[test]
    fn cache_refreshes_after_six_hours_and_pauses_after_failure() {
        let t0 = utc("2024-06-12T12:00:00Z");
        let mut cache = ChargesCache::default();
        assert!(cache.answer("1", t0).is_none());
        cache.store(Ok(HashMap::from([("1".to_owned(), Ok(fixture()))])), t0);
        assert!(cache.answer("1", t0 + Duration::hours(5)).unwrap().is_ok());
        assert!(cache.answer("2", t0).is_none());
        assert!(cache.answer("1", t0 + Duration::hours(6)).is_none());
        let failure = ProviderError::Response {
            provider: KIND,
            endpoint: "x".into(),
            message: "down".into(),
        };
        cache.store(Err(failure), t0 + Duration::hours(6));
        assert!(cache.answer("1", t0 + Duration::hours(6)).unwrap().is_err());
        assert!(cache.answer("1", t0 + Duration::hours(7)).is_none());
    }
}
