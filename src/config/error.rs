//! What can be wrong with the configuration, said with the key and where its value came from.

use std::fmt;
use std::path::PathBuf;

use figment::value::Value;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, e.g. `mqtt.port` or `eloverblik[0].refresh_token`.
    pub key: String,
    /// Where the value came from: a file, an env var, `--set`, or the default.
    pub(crate) source: String,
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
