//! Delta records: consumption per calendar month. Their `time` is the first second of the month
//! in local time without an offset (`2024-01-01T00:00:00`).

use chrono::{Datelike, NaiveDate};

use super::jsonapi::{self, number, parse_local, Resource};
use crate::providers::ProviderError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delta {
    /// The first day of the month.
    pub(crate) month: NaiveDate,
    pub(crate) value: f64,
    pub(crate) unit: Option<String>,
    pub(crate) energy: Option<String>,
}

pub(crate) fn deltas(body: &[u8], endpoint: &str) -> Result<Vec<Delta>, ProviderError> {
    let collection = jsonapi::collection(body, endpoint, "deltas")?;
    Ok(collection
        .resources
        .iter()
        .filter_map(|resource| match delta(resource) {
            Ok(delta) => Some(delta),
            Err(reason) => {
                tracing::warn!(endpoint, record = %resource.label(), "skipping {} of {endpoint}: {reason}", resource.label());
                None
            }
        })
        .collect())
}

fn delta(resource: &Resource) -> Result<Delta, String> {
    let raw_time = resource.text("time").ok_or("it has no time")?;
    // The wall-clock date is the month; an offset, if one is ever sent, does not move it.
    let month = parse_local(&raw_time)
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(&raw_time)
                .ok()
                .map(|t| t.naive_local())
        })
        .and_then(|t| t.date().with_day(1))
        .ok_or_else(|| format!("time {raw_time:?} is not a timestamp"))?;
    let raw = resource
        .attr("value")
        .or_else(|| resource.attr("state"))
        .ok_or("it has neither value nor state")?;
    let value = number(raw).ok_or_else(|| format!("value {raw} is not a number"))?;
    Ok(Delta {
        month,
        value,
        unit: resource.text("unit"),
        energy: resource.text("energy"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_months() {
        let body = include_bytes!("../../../tests/fixtures/enectiva/entity_deltas.json");
        let got = deltas(body, "GET /entities/88/deltas").unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(
            got[9],
            Delta {
                month: NaiveDate::from_ymd_opt(2024, 10, 1).unwrap(),
                value: 172.0,
                unit: Some("kWh".into()),
                energy: Some("electricity".into())
            }
        );
    }

    #[test]
    fn lenient_times_and_values() {
        let body = serde_json::json!({"data": [
            {"type": "entity_deltas", "id": "a", "attributes": {"time": "2024-01-01T00:00:00+01:00", "state": "12,5"}},
            {"type": "entity_deltas", "id": "b", "attributes": {"time": "2024-02-01", "value": 3}},
            {"type": "entity_deltas", "id": "c", "attributes": {"time": "February", "value": 3}},
            {"type": "entity_deltas", "id": "d", "attributes": {"time": "2024-03-01T00:00:00", "value": "x"}},
            {"type": "entity_deltas", "id": "e", "attributes": {"value": 1}},
        ]});
        let got = deltas(body.to_string().as_bytes(), "GET /entities/88/deltas").unwrap();
        let months: Vec<_> = got.iter().map(|d| (d.month.to_string(), d.value)).collect();
        assert_eq!(months, vec![("2024-01-01".into(), 12.5), ("2024-02-01".into(), 3.0)]);
    }
}
