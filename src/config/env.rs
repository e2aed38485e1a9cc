//! `METER2MQTT_<SECTION>__<KEY>` environment variables as a figment layer.
//!
//! figment's own `Env` provider parses `007` as the integer 7, losing the zeros of a token or an
//! id. Here a value stays a string unless it reads back exactly as written.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

pub(crate) const PREFIX: &str = "METER2MQTT_";

pub(crate) struct EnvLayer {
    vars: Vec<(String, String)>,
    /// The lower layers' account lists, so `METER2MQTT_ELOVERBLIK__0__REFRESH_TOKEN` can change
    /// one key of the file's first account instead of replacing the list.
    accounts: Dict,
}

/// Whether `section` is a list of accounts (`[[eloverblik]]`): one per registered provider.
fn is_account_section(section: &str) -> bool {
    crate::providers::kind(section).is_some()
}

impl EnvLayer {
    pub(crate) fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    pub(crate) fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX) && k.len() > PREFIX.len())
            // Variables the CLI or runtime read directly, not config keys.
            .filter(|(k, _)| !matches!(k.as_str(), "METER2MQTT_CONFIG" | "METER2MQTT_LOG"))
            .collect();
        vars.sort();
        EnvLayer {
            vars,
            accounts: Dict::new(),
        }
    }

    /// Layers below this one, whose account lists env keys patch rather than replace.
    pub(crate) fn over(mut self, lower: &Dict) -> Self {
        self.accounts = lower
            .iter()
            .filter(|(k, _)| is_account_section(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self
    }

    pub(crate) fn var_name(path: &[&str]) -> String {
        format!("{PREFIX}{}", path.join("__").to_ascii_uppercase())
    }
}

/// A value as typed, unless parsing it changes nothing when written back.
pub(crate) fn parse_value(raw: &str) -> Value {
    let parsed: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.to_owned()));
    match &parsed {
        Value::Num(_, num) => {
            let back = match num.to_u128() {
                Some(u) => u.to_string(),
                None => match num.to_i128() {
                    Some(i) => i.to_string(),
                    None => num.to_f64().map(|f| f.to_string()).unwrap_or_default(),
                },
            };
            if back == raw.trim() {
                parsed
            } else {
                Value::from(raw.to_owned())
            }
        }
        _ => parsed,
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_profile, path| EnvLayer::var_name(path))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (name, raw) in &self.vars {
            let path: Vec<String> = name[PREFIX.len()..]
                .split("__")
                .map(|s| s.to_ascii_lowercase())
                .collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(Error::from(format!(
                    "environment variable {name}: empty key segment (use one `__` between section and key)"
                )));
            }
            match account_key(&path) {
                Some((section, index, rest)) => {
                    let accounts = root
                        .entry(section.to_owned())
                        .or_insert_with(|| as_list(self.accounts.get(section)));
                    if !matches!(accounts, Value::Array(..)) {
                        *accounts = as_list(Some(accounts));
                    }
                    if let Value::Array(_, items) = accounts {
                        while items.len() <= index {
                            items.push(Value::from(Dict::new()));
                        }
                        if !matches!(items[index], Value::Dict(..)) {
                            items[index] = Value::from(Dict::new());
                        }
                        if let Value::Dict(_, entry) = &mut items[index] {
                            insert(entry, rest, parse_value(raw));
                        }
                    }
                }
                None => insert(&mut root, &path, parse_value(raw)),
            }
        }
        Ok(Profile::Default.collect(root))
    }
}

/// `eloverblik__0__refresh_token` → (`eloverblik`, 0, `refresh_token`); without an index the
/// key is the first account's. A whole-section value (`METER2MQTT_ELOVERBLIK=[...]`) is not one.
fn account_key(path: &[String]) -> Option<(&str, usize, &[String])> {
    let (section, rest) = path.split_first()?;
    if !is_account_section(section) || rest.is_empty() {
        return None;
    }
    match rest[0].parse::<usize>() {
        Ok(index) if rest.len() > 1 => Some((section, index, &rest[1..])),
        Ok(_) => None,
        Err(_) => Some((section, 0, rest)),
    }
}

/// An account section as a list: a single table counts as a list of one.
fn as_list(value: Option<&Value>) -> Value {
    match value {
        Some(list @ Value::Array(..)) => list.clone(),
        Some(table @ Value::Dict(..)) => Value::from(vec![table.clone()]),
        _ => Value::from(Vec::<Value>::new()),
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(head.clone(), value);
        return;
    }
    let entry = dict.entry(head.clone()).or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_leading_zeros_and_long_ids() {
        assert_eq!(parse_value("007").as_str(), Some("007"));
        assert_eq!(parse_value("1883").to_u128(), Some(1883));
        assert_eq!(parse_value("571313180100000001").to_u128(), Some(571313180100000001));
        assert_eq!(parse_value("1e5").as_str(), Some("1e5"));
        assert_eq!(parse_value("true").to_bool(), Some(true));
        assert_eq!(parse_value("hello world").as_str(), Some("hello world"));
    }

    #[test]
    fn account_keys_patch_the_lower_layers_list() {
        let mut lower = Dict::new();
        let first: Dict = [
            ("refresh_token".to_owned(), Value::from("file")),
            ("base_url".to_owned(), Value::from("http://x")),
        ]
        .into_iter()
        .collect();
        lower.insert("eloverblik".into(), Value::from(vec![Value::from(first)]));
        let layer = EnvLayer::from_vars([
            ("METER2MQTT_ELOVERBLIK__REFRESH_TOKEN".to_owned(), "env".to_owned()),
            (
                "METER2MQTT_ELOVERBLIK__1__REFRESH_TOKEN".to_owned(),
                "second".to_owned(),
            ),
            ("METER2MQTT_ENECTIVA__0__LOGIN_TOKEN".to_owned(), "007".to_owned()),
        ])
        .over(&lower);
        let data = layer.data().unwrap();
        let dict = &data[&Profile::Default];
        let list = dict["eloverblik"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        let first = list[0].as_dict().unwrap();
        assert_eq!(first["refresh_token"].as_str(), Some("env"));
        assert_eq!(
            first["base_url"].as_str(),
            Some("http://x"),
            "the file's other keys stay"
        );
        assert_eq!(list[1].as_dict().unwrap()["refresh_token"].as_str(), Some("second"));
        assert_eq!(
            dict["enectiva"].as_array().unwrap()[0].as_dict().unwrap()["login_token"].as_str(),
            Some("007")
        );
    }

    #[test]
    fn nests_sections() {
        let layer = EnvLayer::from_vars([
            ("METER2MQTT_MQTT__HOST".to_owned(), "broker".to_owned()),
            ("METER2MQTT_MQTT__PORT".to_owned(), "1884".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ]);
        let data = layer.data().unwrap();
        let dict = &data[&Profile::Default];
        let mqtt = dict["mqtt"].as_dict().unwrap();
        assert_eq!(mqtt["host"].as_str(), Some("broker"));
        assert_eq!(mqtt["port"].to_u128(), Some(1884));
        assert!(!dict.contains_key("other"));
    }
}
