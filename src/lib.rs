//! meter2mqtt: utility meter data from energy data APIs to MQTT, with Home Assistant discovery
//! and Energy dashboard statistics.
//!
//! Data flows one way: a [`providers`] account yields meters and interval readings; a
//! [`bridge`] worker asks every [`sink`] from when it needs data, fetches, and hands each window
//! to every sink ([`mqtt`] and [`statistics`]); each sink keeps its own cursor in the [`state`]
//! directory. [`config`] and [`addon`] build the [`Config`]; [`cli`] wires it all together for
//! `run`, `check`, `demo` and `fetch`. [`homeassistant`] is the websocket client the statistics
//! use, [`http`] the retrying HTTP client the providers use; Energi Data Service (public Danish
//! grid data: prices, CO2) is a source of its own that a provider asks. The second direction,
//! [`upload`], carries Home Assistant entities and MQTT topics into an API that ingests readings
//! (source → outbox → a provider's importer). See docs/architecture.md.
//!
//! # What is public, and why
//!
//! meter2mqtt is an application, not a library for others: the crate is a library so that the
//! binary (`src/main.rs`, which calls [`cli::main`]), the integration tests (`tests/it`, which
//! drive the parts from outside against fake APIs and a real broker) and the benchmarks
//! (`benches/`) can reach it. Everything else is `pub(crate)`, so the compiler reports what
//! nothing uses (`unreachable_pub` and the dead-code warnings). What is `pub` is what those
//! three name, and the types their signatures carry:
//!
//! - [`cli::main`] for the binary, [`cli::wiring`] for a test bridge wired like `run`;
//! - the domain they assert on: [`model`], the [`sink`] contract, the [`bridge`];
//! - what they build or stand in for: [`config`] and [`addon`] (options, environment),
//!   [`providers`] (the contract, the registry's kinds, each provider's client and options),
//!   [`http`] (retry policy, rate limiter, sleeper), [`clock`], [`secret`], [`state`], [`mqtt`]
//!   (the connection), [`statistics`] and [`homeassistant`] (the websocket link's state),
//!   [`energidataservice`] (only the price resolution a setting takes);
//! - [`upload`]: the running uploads and what a test run of them takes (clock, ticks);
//! - [`test_support`]: the embedded broker `demo` runs on, for machines without mosquitto.
//!
//! The connection-task pattern, the backoff policy and the lenient deserialisers are private:
//! only the crate uses them.

#![warn(unreachable_pub)]

mod actor;
pub mod addon;
mod backoff_policy;
pub mod bridge;
pub mod cli;
pub mod clock;
pub mod config;
mod de;
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
