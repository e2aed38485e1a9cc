//! The demo's printout: the devices and entities Home Assistant would show, with the states
//! their templates would render, and what arrived on each readings topic.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::observer::Seen;
use crate::config::Config;

pub(super) fn print_summary(seen: &Seen, config: &Config) {
    let topics = super::super::wiring::topics(config);
    let mut devices: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for (topic, text) in &seen.retained {
        if !topics.is_discovery(topic) {
            continue;
        }
        let Ok(config) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let id = config["device"]["identifiers"][0].as_str().unwrap_or("?").to_owned();
        let entry = devices
            .entry(id)
            .or_insert_with(|| (config["device"].clone(), Vec::new()));
        entry.1.push(config);
    }
    let entity_count: usize = devices.values().map(|(_, e)| e.len()).sum();
    println!(
        "Home Assistant would show {} devices with {} entities:",
        devices.len(),
        entity_count
    );
    // The bridge device first, then meters in name order.
    let mut ordered: Vec<_> = devices.into_iter().collect();
    ordered.sort_by_key(|(_, (device, _))| {
        (
            device.get("via_device").is_some(),
            device["name"].as_str().unwrap_or("").to_owned(),
        )
    });
    for (_, (device, mut entities)) in ordered {
        let name = device["name"].as_str().unwrap_or("?");
        let mut about = vec![];
        for key in ["manufacturer", "model", "serial_number"] {
            if let Some(v) = device[key].as_str() {
                about.push(v.to_owned());
            }
        }
        let via = if device.get("via_device").is_some() {
            "  (via the meter2mqtt bridge)"
        } else {
            ""
        };
        println!("\n  Device: {name}  [{}]{via}", about.join(", "));
        entities.sort_by_key(|e| (e["entity_category"].is_string(), e["name"].as_str().map(str::to_owned)));
        let width = entities
            .iter()
            .map(|e| e["name"].as_str().unwrap_or(name).chars().count())
            .max()
            .unwrap_or(10);
        for entity in &entities {
            let label = entity["name"].as_str().unwrap_or(name);
            let value = render_value(entity, seen);
            let unit = entity["unit_of_measurement"].as_str().unwrap_or("");
            let mut notes = vec![];
            if let Some(c) = entity["device_class"].as_str() {
                notes.push(format!("device_class {c}"));
            }
            if let Some(c) = entity["state_class"].as_str() {
                notes.push(format!("state_class {c}"));
            }
            if entity["entity_category"].as_str() == Some("diagnostic") {
                notes.push("diagnostic".into());
            }
            let id = entity["default_entity_id"].as_str().unwrap_or("?");
            println!(
                "    {label:<width$}  {:>22}  {id}  ({})",
                format!("{value} {unit}").trim_end(),
                notes.join(", ")
            );
            if let Some(slots) = slots_note(entity, seen) {
                println!("    {:<width$}  {slots}", "");
            }
        }
    }
    println!();
    for (topic, messages) in &seen.readings {
        print_readings(topic, messages);
    }
}

/// The state Home Assistant would compute: the `value_json.<path>` the template reads.
fn render_value(entity: &Value, seen: &Seen) -> String {
    let Some(topic) = entity["state_topic"].as_str() else {
        return "?".into();
    };
    let Some(payload) = seen.retained.get(topic) else {
        return "unknown".into();
    };
    let Some(template) = entity["value_template"].as_str() else {
        return if Some(payload.as_str()) == entity["payload_on"].as_str() {
            "on".into()
        } else if Some(payload.as_str()) == entity["payload_off"].as_str() {
            "off".into()
        } else {
            payload.clone()
        };
    };
    let Ok(json) = serde_json::from_str::<Value>(payload) else {
        return "unknown".into();
    };
    let Some(at) = template.find("value_json.") else {
        return "?".into();
    };
    let path: String = template[at + "value_json.".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let mut value = &json;
    for key in path.trim_end_matches('.').split('.') {
        value = &value[key];
    }
    // `(value_json.x or 'none')`: the template's own fallback is what Home Assistant shows.
    let fallback = template.split(" or '").nth(1).and_then(|rest| rest.split('\'').next());
    match value {
        Value::Null => fallback.unwrap_or("unknown").into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (entity["suggested_display_precision"].as_u64(), n.as_f64()) {
            (Some(digits), Some(f)) => format!("{f:.*}", digits as usize),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// For a sensor in the price tools' shape: how many slots today and tomorrow carry, with the
/// keys of a slot and the day's cheapest.
fn slots_note(entity: &Value, seen: &Seen) -> Option<String> {
    let payload = seen.retained.get(entity["state_topic"].as_str()?)?;
    let json: Value = serde_json::from_str(payload).ok()?;
    let attributes = json.get("attributes")?;
    let today = attributes.get("raw_today")?.as_array()?;
    let tomorrow = attributes["raw_tomorrow"].as_array().map_or(0, Vec::len);
    let keys: Vec<&str> = today
        .first()
        .and_then(Value::as_object)
        .map(|slot| slot.keys().map(String::as_str).collect())
        .unwrap_or_default();
    Some(format!(
        "raw_today {} slots, raw_tomorrow {tomorrow} (tomorrow_valid {}), slot keys {}, today_min {}",
        today.len(),
        attributes["tomorrow_valid"],
        keys.join("/"),
        attributes["today_min"]
    ))
}

fn print_readings(topic: &str, messages: &[Value]) {
    let mut items: Vec<&Value> = messages
        .iter()
        .flat_map(|m| m["readings"].as_array().into_iter().flatten())
        .collect();
    items.sort_by_key(|r| r["start"].as_str().unwrap_or("").to_owned());
    let unit = messages.first().and_then(|m| m["unit"].as_str()).unwrap_or("");
    let total: f64 = items.iter().filter_map(|r| r["value"].as_f64()).sum();
    let corrections = items.iter().filter(|r| r["correction"].as_bool() == Some(true)).count();
    let first = items.first().and_then(|r| r["start"].as_str()).unwrap_or("-");
    let last = items.last().and_then(|r| r["end"].as_str()).unwrap_or("-");
    println!(
        "  {topic}: {} intervals in {} message(s), {first} .. {last}, total {total:.3} {unit}, {corrections} corrections",
        items.len(),
        messages.len()
    );
    let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for r in &items {
        if let Some(start) = r["start"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
            *per_day
                .entry(start.with_timezone(&chrono_tz::Europe::Copenhagen).date_naive())
                .or_default() += 1;
        }
    }
    let days: Vec<String> = per_day
        .iter()
        .map(|(d, n)| format!("{}:{n}", d.format("%m-%d")))
        .collect();
    println!("    hours per local day: {}", days.join(" "));
}
