//! The JSON messages of Home Assistant's websocket API that this sink speaks.

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ha_version::MetadataStyle;
use super::ledger::PlannedRow;
use super::series::{Series, SOURCE};
use crate::secret::Secret;

/// A command this sink sends; the connection adds the id.
#[derive(Debug, Clone)]
pub enum Command {
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
    Ping,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::ImportStatistics { .. } => "recorder/import_statistics",
            Command::StatisticsDuringPeriod { .. } => "recorder/statistics_during_period",
            Command::GetStatisticsMetadata { .. } => "recorder/get_statistics_metadata",
            Command::Ping => "ping",
        }
    }

    /// The statistic the command is about, for errors.
    pub fn subject(&self) -> &str {
        match self {
            Command::ImportStatistics { series, .. } => &series.statistic_id,
            Command::StatisticsDuringPeriod { statistic_id, .. } | Command::GetStatisticsMetadata { statistic_id } => {
                statistic_id
            }
            Command::Ping => "the connection",
        }
    }

    pub fn to_text(&self, id: u64, style: MetadataStyle) -> String {
        let mut body = Map::new();
        body.insert("id".into(), id.into());
        body.insert("type".into(), self.name().into());
        match self {
            Command::ImportStatistics { series, rows } => {
                body.insert("metadata".into(), metadata(series, style));
                body.insert("stats".into(), rows.iter().map(stat_row).collect());
            }
            Command::StatisticsDuringPeriod {
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
            Command::GetStatisticsMetadata { statistic_id } => {
                body.insert("statistic_ids".into(), json!([statistic_id]));
            }
            Command::Ping => {}
        }
        Value::Object(body).to_string()
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
pub fn iso_hour(start: i64) -> String {
    DateTime::from_timestamp(start, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The authentication message. Built here, sent at once, never logged.
pub fn auth_text(token: &Secret) -> String {
    json!({ "type": "auth", "access_token": token.expose() }).to_string()
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    AuthRequired {
        ha_version: Option<String>,
    },
    AuthOk {
        ha_version: Option<String>,
    },
    AuthInvalid {
        message: String,
    },
    Result {
        id: u64,
        outcome: Result<Value, Failure>,
    },
    Pong {
        id: u64,
    },
    /// Events and anything newer than this code; ignored.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    ha_version: Option<String>,
    message: Option<String>,
    success: Option<bool>,
    result: Option<Value>,
    error: Option<RawFailure>,
}

#[derive(Deserialize)]
struct RawFailure {
    code: Option<Value>,
    message: Option<String>,
}

/// One websocket text frame: a message, or an array of them when HA coalesces.
pub fn parse_server_text(text: &str) -> Result<Vec<ServerMessage>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    match value {
        Value::Array(items) => items.into_iter().map(parse_one).collect(),
        one => Ok(vec![parse_one(one)?]),
    }
}

fn parse_one(value: Value) -> Result<ServerMessage, String> {
    let raw: RawMessage = serde_json::from_value(value).map_err(|e| format!("not a Home Assistant message ({e})"))?;
    let need_id = |kind: &str| raw.id.ok_or_else(|| format!("a {kind} message without an id"));
    Ok(match raw.kind.as_str() {
        "auth_required" => ServerMessage::AuthRequired {
            ha_version: raw.ha_version,
        },
        "auth_ok" => ServerMessage::AuthOk {
            ha_version: raw.ha_version,
        },
        "auth_invalid" => ServerMessage::AuthInvalid {
            message: raw.message.unwrap_or_else(|| "invalid access token".into()),
        },
        "pong" => ServerMessage::Pong { id: need_id("pong")? },
        "result" => {
            let id = need_id("result")?;
            let outcome = if raw.success == Some(true) {
                Ok(raw.result.unwrap_or(Value::Null))
            } else {
                let error = raw.error.unwrap_or(RawFailure {
                    code: None,
                    message: None,
                });
                let code = match error.code {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => "unknown_error".into(),
                };
                Err(Failure {
                    code,
                    message: error.message.unwrap_or_else(|| "no message".into()),
                })
            };
            ServerMessage::Result { id, outcome }
        }
        _ => ServerMessage::Other,
    })
}

/// One hourly row read back from HA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredRow {
    pub start: i64,
    pub state: Option<f64>,
    pub sum: Option<f64>,
}

/// The rows of `statistic_id` in a `recorder/statistics_during_period` result. HA omits a
/// statistic without rows; `start` is milliseconds since the epoch (an ISO string before 2023).
pub fn parse_period_rows(result: &Value, statistic_id: &str) -> Result<Vec<StoredRow>, String> {
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
pub fn metadata_lists(result: &Value, statistic_id: &str) -> Result<bool, String> {
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
        serde_json::from_str(&Command::ImportStatistics { series: series(), rows }.to_text(7, style)).unwrap()
    }

    #[test]
    fn import_message_for_current_home_assistant() {
        let v = import(MetadataStyle::MeanType);
        assert_eq!(v["id"], 7);
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
    }

    #[test]
    fn unit_class_is_null_for_units_without_one() {
        let mut s = series();
        s.unit_class = None;
        let v: Value = serde_json::from_str(
            &Command::ImportStatistics {
                series: s,
                rows: vec![],
            }
            .to_text(1, MetadataStyle::MeanType),
        )
        .unwrap();
        assert_eq!(v["metadata"]["unit_class"], Value::Null);
    }

    #[test]
    fn read_commands() {
        let c = Command::StatisticsDuringPeriod {
            statistic_id: "a:b".into(),
            start: 0,
            end: Some(3600),
        };
        let v: Value = serde_json::from_str(&c.to_text(3, MetadataStyle::MeanType)).unwrap();
        assert_eq!(
            v,
            json!({"id": 3, "type": "recorder/statistics_during_period", "start_time": "1970-01-01T00:00:00+00:00",
                   "end_time": "1970-01-01T01:00:00+00:00", "statistic_ids": ["a:b"], "period": "hour", "types": ["state", "sum"]})
        );
        let c = Command::StatisticsDuringPeriod {
            statistic_id: "a:b".into(),
            start: 0,
            end: None,
        };
        assert!(c.to_text(4, MetadataStyle::MeanType).find("end_time").is_none());
        let v: Value = serde_json::from_str(&Command::Ping.to_text(9, MetadataStyle::HasMean)).unwrap();
        assert_eq!(v, json!({"id": 9, "type": "ping"}));
    }

    #[test]
    fn auth_messages() {
        assert_eq!(
            auth_text(&Secret::new("t\"ok")),
            r#"{"access_token":"t\"ok","type":"auth"}"#
        );
        let parsed = parse_server_text(r#"{"type": "auth_required", "ha_version": "2025.10.1"}"#).unwrap();
        assert_eq!(
            parsed,
            vec![ServerMessage::AuthRequired {
                ha_version: Some("2025.10.1".into())
            }]
        );
        let parsed =
            parse_server_text(r#"{"type": "auth_invalid", "message": "Invalid access token or password"}"#).unwrap();
        assert_eq!(
            parsed,
            vec![ServerMessage::AuthInvalid {
                message: "Invalid access token or password".into()
            }]
        );
        assert_eq!(
            parse_server_text(r#"{"type": "auth_ok"}"#).unwrap(),
            vec![ServerMessage::AuthOk { ha_version: None }]
        );
    }

    #[test]
    fn results_errors_and_batches() {
        let text = r#"[{"id": 1, "type": "result", "success": true, "result": null},
                       {"id": 2, "type": "result", "success": false, "error": {"code": "unauthorized", "message": "Unauthorized"}},
                       {"id": 3, "type": "pong"}, {"id": 4, "type": "event", "event": {}}]"#;
        let parsed = parse_server_text(text).unwrap();
        assert_eq!(
            parsed[0],
            ServerMessage::Result {
                id: 1,
                outcome: Ok(Value::Null)
            }
        );
        assert_eq!(
            parsed[1],
            ServerMessage::Result {
                id: 2,
                outcome: Err(Failure {
                    code: "unauthorized".into(),
                    message: "Unauthorized".into()
                })
            }
        );
        assert_eq!(parsed[2], ServerMessage::Pong { id: 3 });
        assert_eq!(parsed[3], ServerMessage::Other);
        assert!(parse_server_text("not json").unwrap_err().contains("not JSON"));
        assert!(parse_server_text(r#"{"no_type": 1}"#)
            .unwrap_err()
            .contains("not a Home Assistant message"));
        assert!(parse_server_text(r#"{"type": "result", "success": true}"#)
            .unwrap_err()
            .contains("without an id"));
        let odd =
            parse_server_text(r#"{"id": 5, "type": "result", "success": false, "error": {"code": 500}}"#).unwrap();
        assert_eq!(
            odd[0],
            ServerMessage::Result {
                id: 5,
                outcome: Err(Failure {
                    code: "500".into(),
                    message: "no message".into()
                })
            }
        );
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
