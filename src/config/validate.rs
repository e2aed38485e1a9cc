//! Turning a figment into a [`Config`], collecting every problem instead of stopping at the first.

use figment::value::{Dict, Value};
use figment::{Figment, Metadata, Profile};
use serde::de::DeserializeOwned;

use super::error::describe_value;
use super::{Config, ConfigError, ConfigIssue};
use crate::providers::{Account, ProviderKind, KINDS};

/// The sections of the bridge itself; every provider adds its own (`[[<kind>]]`).
const SECTIONS: &[&str] = &["mqtt", "bridge", "state", "log", "homeassistant"];

fn known_sections() -> Vec<&'static str> {
    SECTIONS.iter().copied().chain(KINDS.iter().map(|k| k.kind())).collect()
}

pub(crate) fn extract(figment: &Figment) -> Result<Config, ConfigError> {
    let mut issues = Vec::new();
    let root: Dict = match figment.extract() {
        Ok(root) => root,
        Err(e) => {
            issues.extend(figment_issues(figment, "", e));
            return Err(ConfigError::Invalid(issues));
        }
    };

    let known = known_sections();
    for key in root.keys() {
        if !known.contains(&key.as_str()) {
            issues.push(ConfigIssue {
                key: key.clone(),
                source: source_of(figment, key),
                message: format!("unknown key; the known sections are {}", known.join(", ")),
            });
        }
    }

    let mut config = Config {
        mqtt: section(figment, &root, "mqtt", &mut issues).unwrap_or_default(),
        bridge: section(figment, &root, "bridge", &mut issues).unwrap_or_default(),
        state: section(figment, &root, "state", &mut issues).unwrap_or_default(),
        log: section(figment, &root, "log", &mut issues).unwrap_or_default(),
        homeassistant: section(figment, &root, "homeassistant", &mut issues),
        accounts: KINDS
            .iter()
            .flat_map(|kind| accounts(figment, &root, *kind, &mut issues))
            .collect(),
    };

    super_check(&mut config, figment, &mut issues);
    if issues.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(issues))
    }
}

fn section<T: DeserializeOwned>(
    figment: &Figment,
    root: &Dict,
    name: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    match root.get(name) {
        None => None,
        Some(value @ Value::Dict(..)) => collect(figment, value.clone(), name, name, issues, |v| {
            v.deserialize().map_err(Box::new)
        }),
        Some(other) => {
            issues.push(ConfigIssue {
                key: name.to_owned(),
                source: source_of(figment, name),
                message: format!("expected a table ([{name}]), found {}", describe_value(other)),
            });
            None
        }
    }
}

/// A provider's `[[<kind>]]` list; each entry is checked on its own so one bad account does not
/// hide the problems of the next.
fn accounts(figment: &Figment, root: &Dict, kind: &dyn ProviderKind, issues: &mut Vec<ConfigIssue>) -> Vec<Account> {
    let name = kind.kind();
    let items = match root.get(name) {
        None => return Vec::new(),
        Some(Value::Array(_, items)) => items.clone(),
        // One account given as a table (e.g. from env vars) counts as a list of one.
        Some(v @ Value::Dict(..)) => vec![v.clone()],
        Some(other) => {
            issues.push(ConfigIssue {
                key: name.to_owned(),
                source: source_of(figment, name),
                message: format!(
                    "expected a list of accounts ([[{name}]]), found {}",
                    describe_value(other)
                ),
            });
            return Vec::new();
        }
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let settings = collect(figment, item, &format!("{name}[{index}]"), name, issues, |v| {
                kind.parse(v)
            })?;
            Some(Account::new(name, index, settings))
        })
        .collect()
}

/// Deserializes `value`, and on each error records it, drops the offending field and tries
/// again, so every bad field of a section is reported, not just the first serde meets.
fn collect<T>(
    figment: &Figment,
    mut value: Value,
    prefix: &str,
    lookup: &str,
    issues: &mut Vec<ConfigIssue>,
    parse: impl Fn(&Value) -> Result<T, Box<figment::Error>>,
) -> Option<T> {
    for _ in 0..64 {
        let errors = match parse(&value) {
            Ok(v) => return Some(v),
            Err(errors) => *errors,
        };
        let mut progressed = false;
        for error in errors {
            let mut path = error.path.clone();
            if let figment::error::Kind::UnknownField(field, _) = &error.kind {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
            }
            let key = if path.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", dotted(&path))
            };
            let source_key = if lookup == prefix {
                key.clone()
            } else {
                lookup.to_owned()
            };
            issues.push(ConfigIssue {
                key,
                source: source_of(figment, &source_key),
                message: error.kind.to_string(),
            });
            if remove_leaf(&mut value, &path) {
                progressed = true;
            } else if let (Some(field), Value::Dict(_, dict)) = (path.first(), &mut value) {
                progressed |= dict.remove(field).is_some();
            }
        }
        if !progressed {
            return None;
        }
    }
    None
}

/// `upload.2.type` as `upload[2].type`, the way keys of list entries are written elsewhere.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Removes the field a nested path ends in (`upload.2.type`: `type` of the third entry), so that
/// the entry's other fields, and its siblings, are still checked. False for a top-level field.
fn remove_leaf(value: &mut Value, path: &[String]) -> bool {
    let Some((leaf, parents)) = path.split_last() else {
        return false;
    };
    if parents.is_empty() {
        return false;
    }
    let mut here = value;
    for part in parents {
        here = match here {
            Value::Dict(_, dict) => match dict.get_mut(part) {
                Some(next) => next,
                None => return false,
            },
            Value::Array(_, items) => match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match here {
        Value::Dict(_, dict) => dict.remove(leaf).is_some(),
        _ => false,
    }
}

fn figment_issues(figment: &Figment, prefix: &str, error: figment::Error) -> Vec<ConfigIssue> {
    error
        .into_iter()
        .map(|e| {
            let path: Vec<String> = if e.path.first().map(String::as_str) == Some(prefix) || prefix.is_empty() {
                e.path.clone()
            } else {
                std::iter::once(prefix.to_owned())
                    .chain(e.path.iter().cloned())
                    .collect()
            };
            let dotted = path.join(".");
            let source = match &e.metadata {
                Some(md) => describe_metadata(md, &path),
                None if dotted.is_empty() => "configuration".to_owned(),
                None => source_of(figment, &dotted),
            };
            ConfigIssue {
                key: if dotted.is_empty() { "(file)".to_owned() } else { dotted },
                source,
                message: e.kind.to_string(),
            }
        })
        .collect()
}

fn describe_metadata(md: &Metadata, path: &[String]) -> String {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if md.name == "environment variable" {
        let keys: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        return format!("env {}", md.interpolate(&Profile::Default, &keys));
    }
    match &md.source {
        Some(figment::Source::File(p)) => format!("file {}", p.display()),
        _ => md.name.to_string(),
    }
}

/// Where the value at a dotted key came from, for semantic errors.
pub(super) fn source_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(md) => {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            describe_metadata(md, &path)
        }
        None => "default".to_owned(),
    }
}

fn super_check(config: &mut Config, figment: &Figment, issues: &mut Vec<ConfigIssue>) {
    let mut push = |key: &str, message: String| {
        let lookup = key.split('[').next().unwrap_or(key);
        issues.push(ConfigIssue {
            key: key.to_owned(),
            source: source_of(figment, lookup),
            message,
        });
    };
    super::validate_rules::check(config, &mut push);
}
