//! The add-on's options (`/data/options.json`, shaped by `addon/config.yaml`'s schema) mapped onto
//! configuration keys. Only what the schema cannot say is checked here; every value then goes
//! through the configuration's own validation, whose messages name the option.

use serde_json::{json, Map, Value};

use crate::config::ConfigIssue;
use crate::providers::{AddonAccounts, AddonList, KINDS};

/// The options of the bridge itself; every provider the add-on offers adds a list option named
/// after it (see [`offered`]).
const BRIDGE_OPTIONS: &[&str] = &[
    "poll_interval_minutes",
    "history_start",
    "statistics",
    "statistics_cost",
    "log_level",
];

/// The providers the add-on offers, with their list entries' fields, in registry order.
pub fn offered() -> Vec<(&'static str, AddonAccounts)> {
    KINDS
        .iter()
        .filter_map(|kind| kind.addon().map(|addon| (kind.kind(), addon)))
        .collect()
}

/// Every top-level option `addon/config.yaml` declares.
pub fn options() -> Vec<&'static str> {
    offered()
        .into_iter()
        .flat_map(|(kind, addon)| std::iter::once(kind).chain(addon.lists.iter().map(|l| l.option)))
        .chain(BRIDGE_OPTIONS.iter().copied())
        .collect()
}

/// The schema's `list(...)` of log levels.
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// The poll interval's bounds in minutes, as in the schema's `int(5,1440)`: the APIs publish new
/// data at most hourly, and the bridge's random spread (2 min) must fit inside an interval.
pub const POLL_MINUTES: std::ops::RangeInclusive<u64> = 5..=1440;
const DEFAULT_POLL_MINUTES: u64 = 60;

/// What [`ConfigIssue::source`] says for problems found in the options.
pub(crate) const SOURCE: &str = "app options";

/// The options as configuration values, plus the switches that decide which sections exist.
pub(crate) struct Mapped {
    /// `bridge`, `log` and one section per offered provider.
    pub(crate) config: Map<String, Value>,
    pub(crate) statistics: bool,
    pub(crate) statistics_cost: bool,
}

/// The options as configuration values, with every problem found on the way; a bad value is
/// left at its default so the configuration's own checks can still run over the rest.
pub(crate) fn map(options: &Map<String, Value>) -> (Mapped, Vec<ConfigIssue>) {
    let mut issues = Vec::new();
    let known = self::options();
    for unknown in options.keys().filter(|k| !known.contains(&k.as_str())) {
        tracing::warn!(option = %unknown, "ignoring an add-on option this version does not know");
    }

    let mut bridge = Map::new();
    bridge.insert("poll_interval".into(), json!(poll_minutes(options, &mut issues) * 60));
    if let Some(start) = present(options, "history_start").filter(|v| v.as_str().is_none_or(|s| !s.trim().is_empty())) {
        bridge.insert("history_start".into(), start.clone());
    }

    let mut config = Map::new();
    config.insert("bridge".into(), Value::Object(bridge));
    if let Some(level) = log_level(options, &mut issues) {
        config.insert("log".into(), json!({ "level": level }));
    }
    let offered = offered();
    let mut configured = 0;
    for (kind, addon) in &offered {
        let mut accounts = accounts(options, kind, addon.fields, &mut issues);
        for list in addon.lists {
            attach(options, list, &mut accounts, &mut issues);
        }
        configured += accounts.len();
        config.insert((*kind).into(), Value::Array(accounts));
    }
    let account_issue = |i: &ConfigIssue| offered.iter().any(|(kind, _)| i.key.starts_with(kind));
    if configured == 0 && !issues.iter().any(account_issue) {
        let kinds: Vec<&str> = offered.iter().map(|(_, addon)| addon.describe).collect();
        issues.push(issue(
            offered.first().map_or("accounts", |(kind, _)| kind),
            format!("no account is configured: add {}", kinds.join(" or ")),
        ));
    }

    let statistics = switch(options, "statistics", true, &mut issues);
    let statistics_cost = switch(options, "statistics_cost", false, &mut issues);
    let mapped = Mapped {
        config,
        statistics,
        statistics_cost,
    };
    (mapped, issues)
}

/// The option a configuration key came from, so that messages name what the user can change.
pub(crate) fn option_name(config_key: &str) -> String {
    const RENAMES: &[(&str, &str)] = &[
        ("bridge.poll_interval", "poll_interval_minutes"),
        ("bridge.jitter", "poll_interval_minutes"),
        ("bridge.history_start", "history_start"),
        ("log.level", "log_level"),
        ("homeassistant", "statistics"),
    ];
    for (from, to) in RENAMES {
        if config_key == *from || config_key.strip_prefix(from).is_some_and(|rest| rest.starts_with('.')) {
            return (*to).to_owned();
        }
    }
    config_key.to_owned()
}

/// A value the user set; the Supervisor may write `null` for an optional option left empty.
fn present<'a>(options: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    options.get(key).filter(|v| !v.is_null())
}

fn issue(key: &str, message: String) -> ConfigIssue {
    ConfigIssue {
        key: key.to_owned(),
        source: SOURCE.to_owned(),
        message,
    }
}

fn poll_minutes(options: &Map<String, Value>, issues: &mut Vec<ConfigIssue>) -> u64 {
    let Some(value) = present(options, "poll_interval_minutes") else {
        return DEFAULT_POLL_MINUTES;
    };
    match value.as_u64() {
        Some(minutes) if POLL_MINUTES.contains(&minutes) => minutes,
        _ => {
            issues.push(issue(
                "poll_interval_minutes",
                format!(
                    "{value} is not a whole number of minutes from {} to {}; {DEFAULT_POLL_MINUTES} is a good choice",
                    POLL_MINUTES.start(),
                    POLL_MINUTES.end()
                ),
            ));
            DEFAULT_POLL_MINUTES
        }
    }
}

fn log_level<'a>(options: &'a Map<String, Value>, issues: &mut Vec<ConfigIssue>) -> Option<&'a str> {
    let value = present(options, "log_level")?;
    match value.as_str() {
        Some(level) if LOG_LEVELS.contains(&level) => Some(level),
        _ => {
            issues.push(issue(
                "log_level",
                format!("{value} is not one of {}", LOG_LEVELS.join(", ")),
            ));
            None
        }
    }
}

fn switch(options: &Map<String, Value>, key: &str, default: bool, issues: &mut Vec<ConfigIssue>) -> bool {
    match present(options, key) {
        None => default,
        Some(Value::Bool(on)) => *on,
        Some(other) => {
            issues.push(issue(key, format!("{other} is not true or false")));
            default
        }
    }
}

/// A list option's entries, each reduced to the fields the schema declares. An entry that is not
/// a dictionary is reported without its value: it may be a token pasted in the wrong place.
fn accounts(options: &Map<String, Value>, key: &str, fields: &[&str], issues: &mut Vec<ConfigIssue>) -> Vec<Value> {
    let items = match present(options, key) {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            issues.push(issue(key, "must be a list of accounts".into()));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(entry) = item else {
            issues.push(issue(
                &format!("{key}[{index}]"),
                format!("must be an account with the fields {}", fields.join(", ")),
            ));
            continue;
        };
        for unknown in entry.keys().filter(|k| !fields.contains(&k.as_str())) {
            tracing::warn!(option = %format!("{key}[{index}].{unknown}"), "ignoring an add-on option this version does not know");
        }
        let kept: Map<String, Value> = entry
            .iter()
            .filter(|(k, v)| fields.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(Value::Object(kept));
    }
    out
}

/// A list option's entries put into the accounts they name (`account`: the account's name or
/// its number, 1-based; may be left out when there is one account).
fn attach(options: &Map<String, Value>, list: &AddonList, accounts: &mut [Value], issues: &mut Vec<ConfigIssue>) {
    let mut fields = list.fields.to_vec();
    fields.push("account");
    let entries = self::accounts(options, list.option, &fields, issues);
    for (index, mut entry) in entries.into_iter().enumerate() {
        let here = format!("{}[{index}]", list.option);
        let named = entry.as_object_mut().and_then(|e| e.remove("account"));
        let chosen = match &named {
            None if accounts.len() == 1 => Some(0),
            None => None,
            Some(Value::Number(n)) => n.as_u64().and_then(|n| (n as usize).checked_sub(1)),
            Some(Value::String(s)) => accounts
                .iter()
                .position(|a| a.get("name").and_then(Value::as_str) == Some(s.trim()))
                .or_else(|| s.trim().parse::<usize>().ok().and_then(|n| n.checked_sub(1))),
            Some(_) => None,
        };
        match chosen.and_then(|i| accounts.get_mut(i)).and_then(Value::as_object_mut) {
            Some(account) => {
                let items = account.entry(list.key).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = items {
                    items.push(entry);
                }
            }
            None => issues.push(issue(
                &format!("{here}.account"),
                match named {
                    None => format!(
                        "there are {} accounts: name the account (its name or number)",
                        accounts.len()
                    ),
                    Some(v) => format!("{v} is not the name or number of a configured account"),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_option_behind_a_config_key() {
        assert_eq!(option_name("bridge.poll_interval"), "poll_interval_minutes");
        assert_eq!(option_name("bridge.history_start"), "history_start");
        assert_eq!(option_name("log.level"), "log_level");
        assert_eq!(option_name("homeassistant.url"), "statistics");
        assert_eq!(
            option_name("eloverblik[0].refresh_token"),
            "eloverblik[0].refresh_token"
        );
        assert_eq!(option_name("bridge.poll_intervalx"), "bridge.poll_intervalx");
    }
}
