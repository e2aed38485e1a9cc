//! Reading records: cumulative register values at an instant. `value` or `state`, a number or a
//! numeric string; a record without a usable time or value is skipped with a warning naming it.

use chrono::{DateTime, Utc};

use super::jsonapi::{self, number, parse_time, Resource};
use crate::model::Meter;
use crate::providers::ProviderError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RegisterReading {
    pub(crate) time: DateTime<Utc>,
    pub(crate) value: f64,
}

/// One response of `GET /meters/{id}/readings`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub(crate) readings: Vec<RegisterReading>,
    /// The latest time of any record, usable or not: where the next page starts.
    pub(crate) latest: Option<DateTime<Utc>>,
    /// Records the server sent, usable or not.
    pub(crate) sent: usize,
}

pub(crate) fn page(body: &[u8], endpoint: &str, meter: &Meter) -> Result<Page, ProviderError> {
    let collection = jsonapi::collection(body, endpoint, "readings")?;
    let mut page = Page {
        sent: collection.sent,
        ..Page::default()
    };
    for resource in &collection.resources {
        let time = resource.text("time").and_then(|t| parse_time(&t, meter.timezone));
        page.latest = page.latest.max(time);
        match reading(resource, time) {
            Ok(reading) => page.readings.push(reading),
            Err(reason) => {
                tracing::warn!(meter = %meter.id, record = %resource.label(), "skipping {} of meter {}: {reason}", resource.label(), meter.id)
            }
        }
    }
    Ok(page)
}

fn reading(resource: &Resource, time: Option<DateTime<Utc>>) -> Result<RegisterReading, String> {
    let time = time.ok_or_else(|| match resource.attr("time") {
        Some(raw) => format!("time {raw} is not a timestamp"),
        None => "it has no time".to_owned(),
    })?;
    let raw = resource
        .attr("value")
        .or_else(|| resource.attr("state"))
        .ok_or("it has neither value nor state")?;
    let value = number(raw).ok_or_else(|| format!("value {raw} is not a number"))?;
    Ok(RegisterReading { time, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Medium, Unit};
    use crate::providers::enectiva::test_meter;

    fn meter() -> Meter {
        test_meter::meter(Medium::Electricity, Unit::KWh)
    }

    #[test]
    fn the_fixture_reads_in_full() {
        let body = include_bytes!("../../../tests/fixtures/enectiva/readings.json");
        let page = page(body, "GET /meters/4711/readings", &meter()).unwrap();
        assert_eq!((page.sent, page.readings.len()), (96, 96));
        assert_eq!(page.readings[0].value, 123458.86);
        assert_eq!(page.latest.unwrap().to_rfc3339(), "2024-11-01T23:45:00+00:00");
    }

    #[test]
    fn value_or_state_numbers_or_strings_and_bad_records_skipped() {
        let body = serde_json::json!({"data": [
            {"type": "readings", "id": "a", "attributes": {"time": "2024-11-01T00:00:00Z", "value": 1.5}},
            {"type": "readings", "id": "b", "attributes": {"time": "2024-11-01T00:15:00Z", "state": "2.5"}},
            {"type": "readings", "id": "c", "attributes": {"time": "2024-11-01T00:30:00Z", "value": "n/a"}},
            {"type": "readings", "id": "d", "attributes": {"value": 4}},
            {"type": "readings", "id": "e", "attributes": {"time": "soon", "value": 4}},
            {"type": "readings", "id": "f", "attributes": {"time": "2024-11-01T00:45:00Z"}},
            {"type": "readings", "id": "g", "attributes": {"time": "2024-11-01T02:00:00", "value": 3, "unit": "kWh"}},
        ]});
        let page = page(body.to_string().as_bytes(), "GET /meters/4711/readings", &meter()).unwrap();
        assert_eq!(page.sent, 7);
        let got: Vec<_> = page.readings.iter().map(|r| (r.time.to_rfc3339(), r.value)).collect();
        assert_eq!(
            got,
            vec![
                ("2024-11-01T00:00:00+00:00".into(), 1.5),
                ("2024-11-01T00:15:00+00:00".into(), 2.5),
                // No offset: Prague local time.
                ("2024-11-01T01:00:00+00:00".into(), 3.0),
            ]
        );
        assert_eq!(page.latest.unwrap().to_rfc3339(), "2024-11-01T01:00:00+00:00");
    }
}
