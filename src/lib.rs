//! meter2mqtt: utility meter data from energy data APIs to MQTT, with Home Assistant discovery
//! and Energy dashboard statistics.
//!
//! Data flows one way: a [`providers`] account yields meters and interval readings; a
//! [`bridge`] worker asks every [`sink`] from when it needs data, fetches, and hands each window
//! to every sink ([`mqtt`] and [`statistics`]); each sink keeps its own cursor in the [`state`]
//! directory. [`config`] and [`addon`] build the [`Config`]; [`cli`] wires it all together for
//! `run`, `check`, `demo` and `fetch`. [`homeassistant`] is the websocket client the statistics
//! use, [`http`] the retrying HTTP client the providers use, [`actor`] the connection-task
//! pattern both links follow. See docs/architecture.md.

pub mod actor;
pub mod addon;
pub mod backoff_policy;
pub mod bridge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod de;
pub mod energidataservice;
pub mod homeassistant;
pub mod http;
pub mod model;
pub mod mqtt;
pub mod providers;
pub mod secret;
pub mod sink;
pub mod state;
pub mod statistics;
#[cfg(test)]
mod test_logs;
pub mod upload;

pub use config::Config;

/// Support for the tests and benchmarks: the embedded broker `demo` runs on. Not a public API.
#[doc(hidden)]
pub mod test_support {
    pub use crate::cli::demo::{BrokerOptions, EmbeddedBroker};
}

/// Errors that reach the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Provider(#[from] providers::ProviderError),
}
