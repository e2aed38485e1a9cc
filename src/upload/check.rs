//! What `meter2mqtt check` says about the uploads: whether the import token works, each
//! series' newest record at the API, and whether its Home Assistant entity exists with a
//! numeric state.

use serde_json::{Map, Value};

use super::history::describe;
use super::source::number;
use crate::homeassistant::{Client, Command};
use crate::providers::upload::{api_time, ImportError, Target, Uploads};

/// One line of the check; `problem` fails it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckLine {
    pub(crate) text: String,
    pub(crate) problem: bool,
}

#[derive(Debug)]
struct GetStates;

impl Command for GetStates {
    fn name(&self) -> &'static str {
        "get_states"
    }

    fn subject(&self) -> &str {
        "every entity"
    }

    fn body(&self, _ha_version: Option<&str>) -> Map<String, Value> {
        Map::new()
    }
}

pub(crate) async fn check(uploads: &[Uploads], ha: Option<&Client>) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let mut line = |text: String, problem: bool| lines.push(CheckLine { text, problem });
    let states = match ha {
        Some(ha) if uploads.iter().flat_map(|u| &u.series).any(|s| s.entity.is_some()) => {
            Some(ha.call(GetStates).await.map_err(|e| describe("the states", e)))
        }
        _ => None,
    };
    for upload in uploads {
        let importer = &upload.importer;
        let head = format!("{} uploads, account {}", importer.title(), importer.account());
        let mut token_ok = true;
        let mut series_lines = Vec::new();
        for s in &upload.series {
            let target = Target {
                kind: s.kind,
                import_id: &s.import_id,
                suit: &s.suit,
                unit: None,
            };
            let latest = match importer.latest(&target).await {
                Ok(Some(at)) => (format!("latest record {}", api_time(at)), false),
                Ok(None) => ("no record yet".into(), false),
                Err(ImportError::Auth(why)) => {
                    token_ok = false;
                    (format!("FAILED: {why}"), true)
                }
                Err(ImportError::Unavailable(why)) => (format!("FAILED: {why}"), true),
            };
            series_lines.push((format!("  {} ({}): {}", s.label(), s.kind.as_str(), latest.0), latest.1));
            if let Some(entity) = &s.entity {
                series_lines.push(entity_line(entity, states.as_ref()));
            } else if let Some(topic) = &s.topic {
                series_lines.push((
                    format!("    source: MQTT topic {topic} (not checked; no history)"),
                    false,
                ));
            }
        }
        if token_ok {
            line(format!("{head}: import token ok"), false);
        } else {
            line(format!("{head}: import token FAILED"), true);
        }
        for (text, problem) in series_lines {
            line(text, problem);
        }
    }
    lines
}

fn entity_line(entity: &str, states: Option<&Result<Value, String>>) -> (String, bool) {
    let states = match states {
        None => {
            return (
                format!("    source: {entity}: FAILED: Home Assistant is not configured"),
                true,
            )
        }
        Some(Err(e)) => {
            return (
                format!("    source: {entity}: FAILED: cannot read Home Assistant's states: {e}"),
                true,
            )
        }
        Some(Ok(states)) => states,
    };
    let found = states
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s.get("entity_id").and_then(Value::as_str) == Some(entity));
    let Some(found) = found else {
        return (
            format!("    source: {entity}: FAILED: no such entity in Home Assistant"),
            true,
        );
    };
    let state = found.get("state").and_then(Value::as_str).unwrap_or_default();
    let unit = found
        .pointer("/attributes/unit_of_measurement")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match number(state) {
        Some(_) => (
            format!("    source: {entity}: {state} {unit}").trim_end().to_owned(),
            false,
        ),
        None => (
            format!("    source: {entity}: FAILED: state {state:?} is not a number"),
            true,
        ),
    }
}
