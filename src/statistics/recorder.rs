//! The recorder commands of Home Assistant's websocket API this sink sends, and their answers.

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Map, Value};

use super::ledger::PlannedRow;
use super::metadata::MetadataStyle;
use super::series::{Series, SOURCE};
use crate::homeassistant::Command;

#[derive(Debug, Clone)]
pub(crate) enum Recorder {
    ImportStatistics {
        series: Series,
        rows: Vec<PlannedRow>,
    },
    /// Hourly `state` and `sum` of one statistic in `[start, end)`; no `end`: up to now.
    StatisticsDuringPeriod {
        statistic_id: String,
        start: i64,
        end: Option<i64>,
    },
    GetStatisticsMetadata {
        statistic_id: String,
    },
}

impl Recorder {
    /// The message (without the id the connection adds) for a Home Assistant whose metadata
    /// expects `style`.
    pub(crate) fn message(&self, style: MetadataStyle) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("type".into(), self.name().into());
        match self {
            Recorder::ImportStatistics { series, rows } => {
                body.insert("metadata".into(), metadata(series, style));
                body.insert("stats".into(), rows.iter().map(stat_row).collect());
            }
            Recorder::StatisticsDuringPeriod {
                statistic_id,
                start,
                end,
            } => {
                body.insert("start_time".into(), iso_hour(*start).into());
                if let Some(end) = end {
                    body.insert("end_time".into(), iso_hour(*end).into());
                }
                body.insert("statistic_ids".into(), json!([statistic_id]));
                body.insert("period".into(), "hour".into());
                body.insert("types".into(), json!(["state", "sum"]));
            }
            Recorder::GetStatisticsMetadata { statistic_id } => {
                body.insert("statistic_ids".into(), json!([statistic_id]));
            }
        }
        body
    }
}

impl Command for Recorder {
    fn name(&self) -> &'static str {
        match self {
            Recorder::ImportStatistics { .. } => "recorder/import_statistics",
            Recorder::StatisticsDuringPeriod { .. } => "recorder/statistics_during_period",
            Recorder::GetStatisticsMetadata { .. } => "recorder/get_statistics_metadata",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Recorder::ImportStatistics { series, .. } => &series.statistic_id,
            Recorder::StatisticsDuringPeriod { statistic_id, .. }
            | Recorder::GetStatisticsMetadata { statistic_id } => statistic_id,
        }
    }

    /// Rendered for the version of the Home Assistant it goes to, which a reconnect may change.
    fn body(&self, ha_version: Option<&str>) -> Map<String, Value> {
        self.message(MetadataStyle::for_version(ha_version))
    }
}

/// HA ≥ 2025.10 wants `mean_type` (0: no mean) and `unit_class`; older versions reject those
/// keys and want `has_mean`.
fn metadata(series: &Series, style: MetadataStyle) -> Value {
    let mut m = Map::new();
    m.insert("has_sum".into(), true.into());
    m.insert("name".into(), series.name.clone().into());
    m.insert("source".into(), SOURCE.into());
    m.insert("statistic_id".into(), series.statistic_id.clone().into());
    m.insert("unit_of_measurement".into(), series.unit.clone().into());
    match style {
        MetadataStyle::MeanType => {
            m.insert("mean_type".into(), 0.into());
            m.insert("unit_class".into(), series.unit_class.map_or(Value::Null, Value::from));
        }
        MetadataStyle::HasMean => {
            m.insert("has_mean".into(), false.into());
        }
    }
    Value::Object(m)
}

fn stat_row(p: &PlannedRow) -> Value {
    json!({ "start": iso_hour(p.start), "state": p.row.state, "sum": p.row.sum })
}

/// `2024-03-28T23:00:00+00:00`: HA refuses naive timestamps.
pub(crate) fn iso_hour(start: i64) -> String {
    DateTime::from_timestamp(start, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// One hourly row read back from HA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StoredRow {
    pub(crate) start: i64,
    pub(crate) state: Option<f64>,
    pub(crate) sum: Option<f64>,
}

/// The rows of `statistic_id` in a `recorder/statistics_during_period` result. HA omits a
/// statistic without rows; `start` is milliseconds since the epoch (an ISO string before 2023).
pub(crate) fn parse_period_rows(result: &Value, statistic_id: &str) -> Result<Vec<StoredRow>, String> {
    let map = result.as_object().ok_or("the result is not an object")?;
    let Some(rows) = map.get(statistic_id) else {
        return Ok(Vec::new());
    };
    let rows = rows.as_array().ok_or("the statistic's rows are not a list")?;
    let mut parsed = rows
        .iter()
        .map(|row| {
            let start = match row.get("start") {
                Some(Value::Number(n)) => n.as_f64().map(|ms| (ms / 1000.0).round() as i64),
                Some(Value::String(s)) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp()),
                _ => None,
            }
            .ok_or_else(|| format!("a row without a readable start: {row}"))?;
            let number = |key: &str| row.get(key).and_then(Value::as_f64);
            Ok(StoredRow {
                start,
                state: number("state"),
                sum: number("sum"),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    parsed.sort_by_key(|r| r.start);
    Ok(parsed)
}

/// Whether a `recorder/get_statistics_metadata` result lists the statistic.
pub(crate) fn metadata_lists(result: &Value, statistic_id: &str) -> Result<bool, String> {
    let list = result.as_array().ok_or("the result is not a list")?;
    Ok(list
        .iter()
        .any(|m| m.get("statistic_id").and_then(Value::as_str) == Some(statistic_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::ledger::Row;

    fn series() -> Series {
        Series {
            statistic_id: "meter2mqtt:eloverblik_1_consumption".into(),
            object_id: "eloverblik_1_consumption".into(),
            name: "House consumption".into(),
            unit: "kWh".into(),
            unit_class: Some("energy"),
        }
    }

    fn import(style: MetadataStyle) -> Value {
        let rows = vec![PlannedRow {
            start: 1_711_666_800,
            row: Row { state: 0.5, sum: 10.5 },
        }];
        Value::Object(Recorder::ImportStatistics { series: series(), rows }.message(style))
    }

    #[test]
    fn import_message_for_current_home_assistant() {
        let v = import(MetadataStyle::MeanType);
        assert_eq!(v["type"], "recorder/import_statistics");
        assert_eq!(
            v["metadata"],
            json!({"has_sum": true, "mean_type": 0, "unit_class": "energy", "name": "House consumption",
                   "source": "meter2mqtt", "statistic_id": "meter2mqtt:eloverblik_1_consumption", "unit_of_measurement": "kWh"})
        );
        assert_eq!(
            v["stats"],
            json!([{"start": "2024-03-28T23:00:00+00:00", "state": 0.5, "sum": 10.5}])
        );
    }

    #[test]
    fn import_message_for_older_home_assistant() {
        let v = import(MetadataStyle::HasMean);
        let keys: Vec<&str> = v["metadata"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "has_mean",
                "has_sum",
                "name",
                "source",
                "statistic_id",
                "unit_of_measurement"
            ]
        );
        assert_eq!(v["metadata"]["has_mean"], false);
        let rows = vec![PlannedRow {
            start: 1_711_666_800,
            row: Row { state: 0.5, sum: 10.5 },
        }];
        let command = Recorder::ImportStatistics { series: series(), rows };
        assert_eq!(
            Value::Object(command.body(Some("2024.3.0"))),
            v,
            "rendered for the version it goes to"
        );
        assert_eq!(
            Value::Object(command.body(Some("2026.11.1"))),
            import(MetadataStyle::MeanType)
        );
    }

    #[test]
    fn unit_class_is_null_for_units_without_one() {
        let mut s = series();
        s.unit_class = None;
        let v = Value::Object(
            Recorder::ImportStatistics {
                series: s,
                rows: vec![],
            }
            .message(MetadataStyle::MeanType),
        );
        assert_eq!(v["metadata"]["unit_class"], Value::Null);
    }

    #[test]
    fn read_commands() {
        let c = Recorder::StatisticsDuringPeriod {
            statistic_id: "a:b".into(),
            start: 0,
            end: Some(3600),
        };
        let v = Value::Object(c.message(MetadataStyle::MeanType));
        assert_eq!(
            v,
            json!({"type": "recorder/statistics_during_period", "start_time": "1970-01-01T00:00:00+00:00",
                   "end_time": "1970-01-01T01:00:00+00:00", "statistic_ids": ["a:b"], "period": "hour", "types": ["state", "sum"]})
        );
        let c = Recorder::StatisticsDuringPeriod {
            statistic_id: "a:b".into(),
            start: 0,
            end: None,
        };
        assert!(!c.message(MetadataStyle::MeanType).contains_key("end_time"));
    }

    #[test]
    fn period_rows_in_both_start_formats() {
        let result = json!({"a:b": [
            {"start": 1711670400000_i64, "end": 1711674000000_i64, "state": 1.5, "sum": 3.0},
            {"start": "2024-03-28T23:00:00+00:00", "state": null, "sum": 1.5}
        ]});
        let rows = parse_period_rows(&result, "a:b").unwrap();
        assert_eq!(
            rows,
            vec![
                StoredRow {
                    start: 1_711_666_800,
                    state: None,
                    sum: Some(1.5)
                },
                StoredRow {
                    start: 1_711_670_400,
                    state: Some(1.5),
                    sum: Some(3.0)
                }
            ]
        );
        assert!(parse_period_rows(&json!({}), "a:b").unwrap().is_empty());
        assert!(parse_period_rows(&json!([]), "a:b").is_err());
        assert!(parse_period_rows(&json!({"a:b": [{"start": true}]}), "a:b")
            .unwrap_err()
            .contains("start"));
        assert!(metadata_lists(&json!([{"statistic_id": "a:b"}]), "a:b").unwrap());
        assert!(!metadata_lists(&json!([]), "a:b").unwrap());
        assert!(metadata_lists(&json!({}), "a:b").is_err());
    }
}
