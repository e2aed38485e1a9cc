//! The contract of the second direction (Home Assistant / MQTT → an API that ingests readings):
//! what an upload series is as the user configures it, the records it sends, and the
//! [`Importer`] a provider offers to take them. The flow itself (sources, outbox, pacing) is
//! `crate::upload`, which knows no provider; a provider knows nothing of where records come from.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use crate::de::lenient_opt_string;
use crate::secret::deserialize_lenient_string;

/// What a series sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A cumulative register value at an instant.
    Reading,
    /// A measurement of a custom data series at an instant (temperature, power).
    DataPoint,
    /// A quantity over `[from, to)` (consumption in an hour).
    Profile,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Reading => "reading",
            RecordKind::DataPoint => "data_point",
            RecordKind::Profile => "profile",
        }
    }
}

/// One `[[<account>.upload]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSeries {
    /// A Home Assistant entity (through `[homeassistant]`).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub entity: Option<String>,
    /// Or an MQTT topic.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub topic: Option<String>,
    /// A JSON pointer into the topic's payload; empty: the payload is the number.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(deserialize_with = "deserialize_lenient_string")]
    pub import_id: String,
    #[serde(default = "default_suit")]
    pub suit: String,
    #[serde(rename = "type", default = "default_kind")]
    pub kind: RecordKind,
    /// Default: the entity's `unit_of_measurement`.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub unit: Option<String>,
    /// The clock grid of readings and data points; profiles are hourly.
    #[serde(default = "default_interval", deserialize_with = "crate::de::duration")]
    pub interval: Duration,
}

fn default_suit() -> String {
    "default".into()
}

fn default_kind() -> RecordKind {
    RecordKind::Reading
}

fn default_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

/// The longest `import_id` / `unit` the import API takes.
const MAX_IMPORT_ID: usize = 255;
const MAX_UNIT: usize = 50;

impl UploadSeries {
    /// Problems serde cannot see, each with its field (relative to the series).
    pub fn check(&self, problem: &mut dyn FnMut(&str, String)) {
        match (&self.entity, &self.topic) {
            (Some(_), Some(_)) => problem("topic", "set either entity or topic, not both".into()),
            (None, None) => problem(
                "entity",
                "set entity (a Home Assistant entity, e.g. \"sensor.heat_meter_energy\") or topic (an MQTT topic)"
                    .into(),
            ),
            _ => {}
        }
        if let Some(entity) = &self.entity {
            let valid = entity.split_once('.').is_some_and(|(domain, object)| {
                !domain.is_empty()
                    && !object.is_empty()
                    && entity
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
            });
            if !valid {
                problem(
                    "entity",
                    format!("{entity:?} is not an entity id; write e.g. \"sensor.heat_meter_energy\""),
                );
            }
            if self.value.is_some() {
                problem("value", "applies to topic series only".into());
            }
        }
        if let Some(topic) = &self.topic {
            if topic.contains(['+', '#']) {
                problem(
                    "topic",
                    format!("{topic:?} must be one topic, without the wildcards '+' or '#'"),
                );
            }
            if self.kind == RecordKind::Profile {
                problem(
                    "type",
                    "profiles come from Home Assistant's hourly statistics; a topic series sends reading or data_point"
                        .into(),
                );
            }
        }
        if let Some(pointer) = self.value.as_deref().filter(|p| !p.is_empty()) {
            if !pointer.starts_with('/') {
                problem(
                    "value",
                    format!("{pointer:?} is not a JSON pointer; write e.g. \"/ENERGY/Total\""),
                );
            }
        }
        no_spaces("import_id", &self.import_id, MAX_IMPORT_ID, problem);
        no_spaces("suit", &self.suit, MAX_IMPORT_ID, problem);
        if let Some(unit) = &self.unit {
            if unit.chars().count() > MAX_UNIT {
                problem("unit", format!("must be at most {MAX_UNIT} characters"));
            }
        }
        if self.interval < Duration::from_secs(60) {
            problem(
                "interval",
                format!(
                    "{} is under a minute; the import API takes at most one record a minute per series",
                    humantime::format_duration(self.interval)
                ),
            );
        } else if self.interval.as_secs() % 60 != 0 || 86_400 % self.interval.as_secs() != 0 {
            problem(
                "interval",
                format!(
                    "{} does not divide a day into whole minutes; use e.g. \"1m\", \"5m\", \"15m\" or \"1h\"",
                    humantime::format_duration(self.interval)
                ),
            );
        }
    }

    /// The series in logs and errors: `heat-main` or `heat-main/<suit>`.
    pub fn label(&self) -> String {
        if self.suit == "default" {
            self.import_id.clone()
        } else {
            format!("{}/{}", self.import_id, self.suit)
        }
    }
}

fn no_spaces(field: &str, value: &str, max: usize, problem: &mut dyn FnMut(&str, String)) {
    if value.is_empty() {
        problem(field, "must not be empty".into());
    } else if value.chars().any(char::is_whitespace) {
        problem(field, format!("{value:?} contains a space; the import API allows none"));
    } else if value.chars().count() > max {
        problem(field, format!("must be at most {max} characters"));
    }
}

/// One record: a reading or data point at `time`, or a profile over `[time, to)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub time: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    pub value: f64,
}

/// A time as the import API takes it: RFC 3339 in UTC, cut to whole seconds.
pub fn api_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where a record goes: the series' identity at the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: RecordKind,
    pub import_id: &'a str,
    pub suit: &'a str,
    pub unit: Option<&'a str>,
}

/// What the API said to a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Stored (or updated); the API's id for it when it gave one.
    Stored(Option<String>),
    /// An identical record was already stored.
    Duplicate,
    /// This record is refused; the API's reason. Sending it again cannot help.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The token is refused: nothing this account sends can succeed until the user fixes it.
    #[error("{0}")]
    Auth(String),
    /// Down, throttling or too slow after the retry policy's attempts: try the same record later.
    #[error("{0}")]
    Unavailable(String),
}

/// An API that ingests records, one per request.
#[async_trait]
pub trait Importer: Send + Sync {
    /// The API's name as users know it (`"Acme"`), for sensor names and `check`.
    fn title(&self) -> &str;
    /// The provider's machine name, for topics and unique ids.
    fn kind(&self) -> &'static str;
    /// The account's label (never a secret).
    fn account(&self) -> &str;
    async fn send(&self, target: &Target<'_>, record: &Record) -> Result<Delivered, ImportError>;
    /// The time of the newest record the API holds for the series (a profile's start), if any.
    async fn latest(&self, target: &Target<'_>) -> Result<Option<DateTime<Utc>>, ImportError>;
}

pub type SharedImporter = Arc<dyn Importer>;

/// An account's uploads: where they go and what is sent.
#[derive(Clone)]
pub struct Uploads {
    pub importer: SharedImporter,
    pub series: Vec<UploadSeries>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Format;

    fn series(toml: &str) -> UploadSeries {
        figment::Figment::from(figment::providers::Toml::string(toml))
            .extract()
            .unwrap()
    }

    fn problems(s: &UploadSeries) -> Vec<String> {
        let mut out = Vec::new();
        s.check(&mut |field, message| out.push(format!("{field}: {message}")));
        out
    }

    #[test]
    fn a_plain_series_has_defaults_and_no_problems() {
        let s = series("entity = \"sensor.heat\"\nimport_id = \"heat-main\"");
        assert_eq!(
            (s.kind, s.suit.as_str(), s.interval),
            (RecordKind::Reading, "default", Duration::from_secs(900))
        );
        assert!(problems(&s).is_empty());
        assert_eq!(s.label(), "heat-main");
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let both = series("entity = \"sensor.a\"\ntopic = \"t\"\nimport_id = \"has space\"\ninterval = \"30s\"");
        let found = problems(&both);
        assert!(found.iter().any(|p| p.starts_with("topic: set either")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("import_id: \"has space\" contains a space")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("interval: 30s is under a minute")),
            "{found:?}"
        );
        let neither = series("import_id = \"x\"\ninterval = \"7m\"");
        let found = problems(&neither);
        assert!(found.iter().any(|p| p.starts_with("entity: set entity")), "{found:?}");
        assert!(
            found.iter().any(|p| p.starts_with("interval: 7m does not divide")),
            "{found:?}"
        );
        let topic_profile = series("topic = \"tele/#\"\nvalue = \"ENERGY\"\nimport_id = \"x\"\ntype = \"profile\"");
        let found = problems(&topic_profile);
        assert_eq!(found.len(), 3, "{found:?}");
        let unknown = figment::Figment::from(figment::providers::Toml::string(
            "entity = \"sensor.a\"\nimport_id = \"x\"\ntype = \"meter\"",
        ))
        .extract::<UploadSeries>()
        .unwrap_err();
        assert!(unknown.to_string().contains("unknown variant"), "{unknown}");
    }

    #[test]
    fn times_are_cut_to_whole_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.987654+01:00")
            .unwrap()
            .to_utc();
        assert_eq!(api_time(t), "2026-01-02T02:04:05Z");
    }
}
