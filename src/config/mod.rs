//! Configuration: defaults < TOML file < `METER2MQTT_*` env < `--set key=value`, validated at once
//! so the user sees every problem in one go, each with its key and where it came from.

mod env;
mod error;
mod types;
mod validate;
mod validate_rules;

pub(crate) use env::EnvLayer;
pub use error::ConfigError;
pub(crate) use error::ConfigIssue;
pub use types::*;

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::Figment;

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
    pub(crate) fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        validate::extract(figment)
    }
}

pub(crate) fn figment(sources: &Sources) -> Result<Figment, ConfigError> {
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
