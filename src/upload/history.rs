//! History from Home Assistant's long-term statistics (`recorder/statistics_during_period`,
//! hourly): a reading per hour from the hour's `state` timed at the hour's end (the register's
//! value then), a data point from its `mean` at the hour's start, a profile `[hour, hour + 1)`
//! from its `change`.

use chrono::{DateTime, Duration as TimeDelta, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};

use crate::homeassistant::{CallError, Client, Command};
use crate::providers::upload::{Record, RecordKind};

/// How many hours one read asks for: a week keeps answers small.
pub(crate) const CHUNK_HOURS: i64 = 24 * 7;

#[derive(Debug)]
struct HourlyStatistics {
    entity: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    kind: RecordKind,
}

impl Command for HourlyStatistics {
    fn name(&self) -> &'static str {
        "recorder/statistics_during_period"
    }

    fn subject(&self) -> &str {
        &self.entity
    }

    fn body(&self, _ha_version: Option<&str>) -> Map<String, Value> {
        let mut body = Map::new();
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, false);
        body.insert("start_time".into(), iso(self.start).into());
        body.insert("end_time".into(), iso(self.end).into());
        body.insert("statistic_ids".into(), json!([self.entity]));
        body.insert("period".into(), "hour".into());
        body.insert("types".into(), json!([statistic_type(self.kind)]));
        body
    }
}

/// The statistic a record is made of.
fn statistic_type(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Reading => "state",
        RecordKind::DataPoint => "mean",
        RecordKind::Profile => "change",
    }
}

/// The records of `entity`'s hours starting in `[start, end)`, oldest first.
pub(crate) async fn hourly_records(
    client: &Client,
    entity: &str,
    kind: RecordKind,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Record>, String> {
    let command = HourlyStatistics {
        entity: entity.to_owned(),
        start,
        end,
        kind,
    };
    let answer = client.call(command).await.map_err(|e| describe(entity, e))?;
    Ok(records(&answer, entity, kind))
}

pub(crate) fn describe(entity: &str, error: CallError) -> String {
    let why = match error {
        CallError::Unreachable(reason) => format!("Home Assistant is unreachable: {reason}"),
        CallError::AuthFailed(reason) => format!("Home Assistant refused the access token: {reason}"),
        CallError::Timeout(after) => format!("no answer within {}", humantime::format_duration(after)),
        CallError::Failed(failure) => format!("{}: {}", failure.code, failure.message),
        CallError::Stopped => "shutting down".into(),
    };
    format!("reading {entity} from Home Assistant: {why}")
}

/// A `statistics_during_period` answer as records; rows without the value are skipped.
pub(crate) fn records(answer: &Value, entity: &str, kind: RecordKind) -> Vec<Record> {
    let field = statistic_type(kind);
    let mut out: Vec<Record> = answer
        .get(entity)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let start = row_start(row.get("start")?)?;
            let value = row.get(field)?.as_f64().filter(|v| v.is_finite())?;
            let hour_end = start + TimeDelta::hours(1);
            Some(match kind {
                RecordKind::Reading => Record {
                    time: hour_end,
                    to: None,
                    value,
                },
                RecordKind::DataPoint => Record {
                    time: start,
                    to: None,
                    value,
                },
                RecordKind::Profile => Record {
                    time: start,
                    to: Some(hour_end),
                    value,
                },
            })
        })
        .collect();
    out.sort_by_key(|r| r.time);
    out.dedup_by_key(|r| r.time);
    out
}

/// A row's `start`: milliseconds since the epoch (HA since 2023.3) or an ISO string (older).
fn row_start(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => Utc.timestamp_millis_opt(n.as_f64()? as i64).single(),
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_records_of_each_kind() {
        let hour = 1_767_261_600_000_i64; // 2026-01-01T10:00:00Z
        let answer = json!({"sensor.heat": [
            {"start": hour, "end": hour + 3_600_000, "state": 100.5, "mean": 21.0, "change": 1.5},
            {"start": "2026-01-01T11:00:00+00:00", "state": 102.0, "mean": null, "change": 1.5},
        ]});
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let readings = records(&answer, "sensor.heat", RecordKind::Reading);
        assert_eq!(
            readings.iter().map(|r| (r.time, r.value)).collect::<Vec<_>>(),
            vec![(t("2026-01-01T11:00:00Z"), 100.5), (t("2026-01-01T12:00:00Z"), 102.0)]
        );
        let points = records(&answer, "sensor.heat", RecordKind::DataPoint);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].time, t("2026-01-01T10:00:00Z"));
        let profiles = records(&answer, "sensor.heat", RecordKind::Profile);
        assert_eq!(profiles[1].to, Some(t("2026-01-01T12:00:00Z")));
        assert!(records(&answer, "sensor.other", RecordKind::Reading).is_empty());
    }
}
