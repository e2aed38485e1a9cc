//! Running as a Home Assistant add-on: the configuration comes from the add-on's options
//! (`/data/options.json`) and the Supervisor (MQTT broker, Home Assistant API), so the user enters
//! nothing but the provider tokens.

mod env;
mod error;
mod options;
mod supervisor;

pub use env::AddonEnv;

pub use error::AddonError;
pub use options::{offered, options, LOG_LEVELS, POLL_MINUTES};

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map as ProfileMap};
use figment::{Figment, Metadata, Profile, Provider};
use serde_json::{json, Map, Value};

use crate::config::{Config, ConfigError, ConfigIssue};

/// Where the Supervisor puts the options inside the add-on container.
pub(crate) const DEFAULT_OPTIONS_PATH: &str = "/data/options.json";

/// The configuration for `run --addon`, with the Supervisor found through the process environment
/// (`SUPERVISOR_TOKEN`, and `SUPERVISOR_URL` if set).
pub(crate) async fn load(options_path: &Path) -> Result<Config, AddonError> {
    load_with(options_path, &AddonEnv::from_process_env()).await
}

/// As [`load`], with the environment given.
pub async fn load_with(options_path: &Path, env: &AddonEnv) -> Result<Config, AddonError> {
    let raw = read_options(options_path).await?;
    let (mapped, mut issues) = options::map(&raw);
    let mut values = mapped.config;
    values.insert("state".into(), json!({ "dir": state_dir(options_path) }));
    let options_layer = Layer {
        name: options::SOURCE,
        values: Value::Object(values),
    };

    // The options are judged before the Supervisor is asked, so that a wrong token format is
    // reported even while the broker is missing.
    if let Err(e) = Config::from_figment(&Figment::from(options_layer.clone())) {
        issues.extend(renamed(issues_of(e)));
    }
    if !issues.is_empty() {
        return Err(AddonError::InvalidOptions(issues));
    }

    let token = env
        .supervisor_token
        .as_ref()
        .ok_or(AddonError::MissingSupervisorToken)?;
    let base = supervisor::base_url(&env.supervisor_url)?;
    let mqtt = supervisor::mqtt_service(&base, token, &env.retry).await?;

    let mut broker = mqtt.settings;
    if mqtt.ssl && !cfg!(feature = "mqtt-tls") {
        let host = broker
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let port = broker
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_default();
        return Err(AddonError::MqttTlsUnavailable { host, port });
    }
    broker.insert("tls".into(), Value::Bool(mqtt.ssl));
    let mut services = Map::new();
    services.insert("mqtt".into(), Value::Object(broker));
    // The link is there for the uploads' entities too; `statistics` says whether to import.
    services.insert(
        "homeassistant".into(),
        json!({
            "url": supervisor::websocket_url(&base),
            "token": token.expose(),
            "statistics": mapped.statistics,
            "cost": mapped.statistics_cost,
        }),
    );
    let services_layer = Layer {
        name: "Home Assistant Supervisor",
        values: Value::Object(services),
    };

    let config = Config::from_figment(&Figment::from(options_layer).merge(services_layer)).map_err(services_error)?;
    tracing::info!(
        host = %config.mqtt.host,
        port = config.mqtt.port,
        statistics = config.homeassistant.as_ref().is_some_and(|ha| ha.statistics),
        accounts = config.account_count(),
        "add-on configuration loaded; MQTT broker from the Supervisor"
    );
    Ok(config)
}

async fn read_options(path: &Path) -> Result<Map<String, Value>, AddonError> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AddonError::OptionsMissing(path.to_owned())),
        Err(source) => {
            return Err(AddonError::OptionsUnreadable {
                path: path.to_owned(),
                source,
            })
        }
    };
    // serde_json's syntax errors give a line and column, never the text around them.
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(options)) => Ok(options),
        Ok(_) => Err(AddonError::OptionsNotJson {
            path: path.to_owned(),
            message: "it is not a {...} object".into(),
        }),
        Err(e) => Err(AddonError::OptionsNotJson {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// The options file's folder: `/data`, the add-on's persistent volume.
fn state_dir(options_path: &Path) -> PathBuf {
    match options_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// After the Supervisor's values are in, a problem under `mqtt` is the broker's; anything else
/// still belongs to the options.
fn services_error(error: ConfigError) -> AddonError {
    let (broker, rest): (Vec<_>, Vec<_>) = issues_of(error).into_iter().partition(|i| i.key.starts_with("mqtt"));
    if broker.is_empty() {
        AddonError::InvalidOptions(renamed(rest))
    } else {
        AddonError::InvalidMqttService(broker)
    }
}

fn issues_of(error: ConfigError) -> Vec<ConfigIssue> {
    match error {
        ConfigError::Invalid(issues) => issues,
        other => vec![ConfigIssue {
            key: "(options)".into(),
            source: options::SOURCE.into(),
            message: other.to_string(),
        }],
    }
}

fn renamed(issues: Vec<ConfigIssue>) -> Vec<ConfigIssue> {
    issues
        .into_iter()
        .map(|i| ConfigIssue {
            key: options::option_name(&i.key),
            ..i
        })
        .collect()
}

/// Values as a figment layer whose metadata names where they came from.
#[derive(Clone)]
struct Layer {
    name: &'static str,
    values: Value,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<ProfileMap<Profile, Dict>, figment::Error> {
        figment::providers::Serialized::defaults(&self.values).data()
    }
}
