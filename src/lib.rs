//! meter2mqtt: utility meter data from energy data APIs to MQTT, with Home Assistant discovery
//! and Energy dashboard statistics.

pub mod actor;
pub mod addon;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod de;
pub mod homeassistant;
pub mod http;
pub mod model;
pub mod mqtt;
pub mod providers;
pub mod secret;
pub mod sink;
pub mod state;
pub mod statistics;

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
