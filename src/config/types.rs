//! The configuration as the program uses it. Every section denies unknown keys.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::secret::{deserialize_lenient_string, deserialize_lenient_strings, Secret};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub bridge: BridgeConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub homeassistant: Option<HomeAssistantConfig>,
    pub eloverblik: Vec<EloverblikAccount>,
    pub enectiva: Vec<EnectivaAccount>,
    /// Built-in sample data (the demo, tests, trying the bridge without credentials).
    pub sample: Vec<SampleAccount>,
}

impl Config {
    pub fn account_count(&self) -> usize {
        self.eloverblik.len() + self.enectiva.len() + self.sample.len()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(deserialize_with = "deserialize_lenient_string")]
    pub client_id: String,
    pub discovery_prefix: String,
    pub base_topic: String,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    #[serde(deserialize_with = "duration")]
    pub keep_alive: Duration,
    /// TLS to the broker (needs the `mqtt-tls` cargo feature).
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            username: None,
            password: None,
            client_id: "meter2mqtt".into(),
            discovery_prefix: "homeassistant".into(),
            base_topic: "meter2mqtt".into(),
            discovery: true,
            keep_alive: Duration::from_secs(30),
            tls: false,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Each poll re-reads this much before the cursor, to pick up late and corrected data.
    #[serde(deserialize_with = "duration")]
    pub lookback: Duration,
    /// First-run backfill start; default 1 January of last year.
    #[serde(deserialize_with = "opt_date")]
    pub history_start: Option<NaiveDate>,
    /// Random spread added to each poll so many bridges do not hit an API at the same second.
    #[serde(deserialize_with = "duration")]
    pub jitter: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            poll_interval: Duration::from_secs(3600),
            lookback: Duration::from_secs(7 * 24 * 3600),
            history_start: None,
            jitter: Duration::from_secs(120),
        }
    }
}

impl BridgeConfig {
    pub fn history_start_or_default(&self, today: NaiveDate) -> NaiveDate {
        use chrono::Datelike;
        self.history_start
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).expect("1 January exists"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("./state"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `meter2mqtt=debug,rumqttc=warn`, ...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantConfig {
    pub url: String,
    pub token: Option<Secret>,
    /// Import hourly statistics for the Energy dashboard.
    #[serde(default = "yes")]
    pub statistics: bool,
    /// Also import a cost statistic where hourly tariffs are known.
    #[serde(default)]
    pub cost: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EloverblikAccount {
    /// A label for logs and state files; defaults to the account's position.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    pub refresh_token: Secret,
    #[serde(default = "eloverblik_base_url")]
    pub base_url: String,
    /// `customer` (default) or `thirdparty`.
    #[serde(default)]
    pub api: EloverblikApi,
    /// Empty: every metering point the token gives access to.
    #[serde(default, deserialize_with = "deserialize_lenient_strings")]
    pub metering_points: Vec<String>,
    /// Publish tariffs and subscriptions from `getcharges`.
    #[serde(default = "yes")]
    pub charges: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EloverblikApi {
    #[default]
    Customer,
    #[serde(alias = "third_party", alias = "third-party")]
    Thirdparty,
}

pub fn eloverblik_base_url() -> String {
    "https://api.eloverblik.dk/customerapi".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnectivaAccount {
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "deserialize_lenient_string")]
    pub customer_uuid: String,
    pub login_token: Secret,
    #[serde(default = "enectiva_base_url")]
    pub base_url: String,
    #[serde(default)]
    pub include_deactivated: bool,
}

pub fn enectiva_base_url() -> String {
    "https://api.enectiva.cz".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleAccount {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    /// First local day of sample data; default: a week ago.
    #[serde(deserialize_with = "opt_date")]
    pub start: Option<NaiveDate>,
    /// Days of data; unset: data up to now minus `delay`, growing as time passes.
    pub days: Option<u32>,
    #[serde(deserialize_with = "duration")]
    pub delay: Duration,
}

impl Default for SampleAccount {
    fn default() -> Self {
        SampleAccount {
            name: None,
            start: None,
            days: None,
            delay: Duration::ZERO,
        }
    }
}

fn yes() -> bool {
    true
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct S(#[serde(deserialize_with = "deserialize_lenient_string")] String);
    Ok(Option::<S>::deserialize(d)?
        .map(|s| s.0)
        .filter(|s| !s.trim().is_empty()))
}

/// `"1h"`, `"90s"`, `"7d"` (humantime), or a number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a duration such as \"90s\", \"1h\" or \"7d\""))?
    {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{t:?} is not a duration ({e}); write e.g. \"90s\", \"1h\" or \"7d\""
            ))
        }),
    }
}

fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(Some).map_err(|_| {
            serde::de::Error::custom(format!("{s:?} is not a date; write YYYY-MM-DD, e.g. \"2025-01-01\""))
        }),
    }
}
