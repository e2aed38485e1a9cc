//! A string that never prints: tokens and passwords live here so that no `Debug`, `Display`,
//! log line, error message or panic can leak them.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// What every secret prints as.
pub(crate) const REDACTED: &str = "[redacted]";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it (an HTTP header, the MQTT CONNECT).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_lenient_string(deserializer).map(Secret)
    }
}

/// Accepts a string, or a number or boolean that an env var or a careless TOML file turned into one
/// (figment parses `METER2MQTT_X=571313180100000001` as an integer).
pub(crate) fn deserialize_lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct LenientString;

    impl Visitor<'_> for LenientString {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }

    deserializer.deserialize_any(LenientString)
}

/// For `Vec<String>` fields whose items may arrive as numbers (metering point ids).
pub(crate) fn deserialize_lenient_strings<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "deserialize_lenient_string")] String);

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Item>),
        One(Item),
    }

    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Many(items) => items.into_iter().map(|i| i.0).collect(),
        OneOrMany::One(item) if item.0.trim().is_empty() => Vec::new(),
        // A comma-separated list from an env var or the add-on's text field.
        OneOrMany::One(item) => item
            .0
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn accepts_numbers() {
        let s: Secret = serde_json::from_str("7").unwrap();
        assert_eq!(s.expose(), "7");
        let s: Secret = serde_json::from_str("571313180100000001").unwrap();
        assert_eq!(s.expose(), "571313180100000001");
        let s: Secret = serde_json::from_str("\"007\"").unwrap();
        assert_eq!(s.expose(), "007");
    }

    #[test]
    fn lenient_lists() {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "deserialize_lenient_strings")]
            ids: Vec<String>,
        }
        let t: T = serde_json::from_str(r#"{"ids": [571313180100000001, "2"]}"#).unwrap();
        assert_eq!(t.ids, vec!["571313180100000001", "2"]);
        let t: T = serde_json::from_str(r#"{"ids": "1, 2,,3"}"#).unwrap();
        assert_eq!(t.ids, vec!["1", "2", "3"]);
        let t: T = serde_json::from_str(r#"{"ids": ""}"#).unwrap();
        assert!(t.ids.is_empty());
    }
}
