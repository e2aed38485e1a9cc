//! Configuration: defaults < TOML file < `METER2MQTT_*` env < `--set key=value`, validated at once
//! so the user sees every problem in one go, each with its key and where it came from.

mod env;
mod types;
mod validate;
mod validate_rules;

pub use env::{EnvLayer, PREFIX as ENV_PREFIX};
pub use types::*;

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::Value;
use figment::Figment;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, e.g. `mqtt.port` or `eloverblik[0].refresh_token`.
    pub key: String,
    /// Where the value came from: a file, an env var, `--set`, or the default.
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.key, self.source, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist; pass an existing file to --config or leave it out to use defaults and env vars", .0.display())]
    MissingFile(PathBuf),
    #[error("config file {} cannot be read: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("invalid --set {0:?}: expected KEY=VALUE, e.g. --set mqtt.port=1884")]
    BadOverride(String),
    #[error("the configuration has {} problem{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

/// Where configuration comes from, besides the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// `--set key=value` pairs, highest precedence.
    pub overrides: Vec<String>,
    /// The environment; `None` reads the process's.
    pub env: Option<Vec<(String, String)>>,
}

impl Config {
    /// Loads and validates; every problem found is reported in one error.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let figment = figment(sources)?;
        validate::extract(&figment)
    }

    /// The configuration with nothing but defaults and the given `--set`s (used by tests and `demo`).
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        validate::extract(figment)
    }
}

pub fn figment(sources: &Sources) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = &sources.file {
        check_readable(path)?;
        figment = figment.merge(Toml::file_exact(path));
    }
    let env = match &sources.env {
        Some(vars) => EnvLayer::from_vars(vars.clone()),
        None => EnvLayer::from_env(),
    };
    // A file that does not parse is reported by validation; the env layer then patches nothing.
    let lower: figment::value::Dict = figment.extract().unwrap_or_default();
    figment = figment.merge(env.over(&lower));
    for raw in &sources.overrides {
        let (key, value) = raw
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(raw.clone()))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|k| k.is_empty()) {
            return Err(ConfigError::BadOverride(raw.clone()));
        }
        figment = figment.merge(figment::providers::Serialized::global(key, env::parse_value(value)).with_name(raw));
    }
    Ok(figment)
}

trait WithName {
    fn with_name(self, raw: &str) -> NamedProvider<Self>
    where
        Self: Sized;
}

impl<T: figment::Provider> WithName for T {
    fn with_name(self, raw: &str) -> NamedProvider<Self> {
        NamedProvider {
            inner: self,
            name: format!("--set {raw}"),
        }
    }
}

/// A provider whose metadata names the `--set` it came from.
struct NamedProvider<T> {
    inner: T,
    name: String,
}

impl<T: figment::Provider> figment::Provider for NamedProvider<T> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

fn check_readable(path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|source| ConfigError::Unreadable {
                path: path.to_owned(),
                source,
            }),
        Ok(_) => Err(ConfigError::Unreadable {
            path: path.to_owned(),
            source: std::io::Error::other("it is a directory, not a file"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::MissingFile(path.to_owned())),
        Err(source) => Err(ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A figment value's dotted key path for messages.
pub(crate) fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::String(..) => "a string",
        Value::Char(..) => "a character",
        Value::Bool(..) => "a boolean",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "a list",
    }
}
