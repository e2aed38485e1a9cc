//! The configuration as the program uses it. Every section denies unknown keys.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::de::{duration, lenient_opt_string, opt_date, yes};
use crate::providers::Account;
use crate::secret::{deserialize_lenient_string, Secret};

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub bridge: BridgeConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub homeassistant: Option<HomeAssistantConfig>,
    /// Every `[[<provider>]]` section, in the order of [`crate::providers::KINDS`], each typed by
    /// its provider.
    pub(crate) accounts: Vec<Account>,
}

impl Config {
    pub(crate) fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The settings of every account of the provider whose settings type is `T`.
    pub fn accounts_of<T: 'static>(&self) -> Vec<&T> {
        self.accounts.iter().filter_map(|a| a.settings::<T>()).collect()
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
    pub(crate) discovery: bool,
    #[serde(deserialize_with = "duration")]
    pub(crate) keep_alive: Duration,
    /// TLS to the broker (needs the `mqtt-tls` cargo feature).
    pub tls: bool,
    pub(crate) ca_file: Option<PathBuf>,
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
    pub(crate) fn history_start_or_default(&self, today: NaiveDate) -> NaiveDate {
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
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `meter2mqtt=debug,rumqttc=warn`, ...
    pub level: String,
    pub(crate) format: LogFormat,
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
