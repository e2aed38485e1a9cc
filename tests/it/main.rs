//! The integration tests, in one binary so the crate is linked once. Each module tests one part
//! from the outside (its public API, the binary, or the wire); `support` holds the fakes
//! (ElOverblik, Enectiva, Home Assistant, the Supervisor), the broker (mosquitto when installed,
//! the embedded one otherwise) and the harnesses they share.

mod support;

mod addon_files;
mod addon_image;
mod addon_log;
mod addon_options;
mod addon_run;
mod bridge;
mod cli;
mod config;
mod cost;
mod disk;
mod eloverblik_api;
mod eloverblik_e2e;
mod endurance;
mod enectiva_api;
mod enectiva_e2e;
mod layout;
mod live_values;
mod mqtt_broker;
mod price_sensors;
mod recipes;
mod resilience;
mod sinks;
mod statistics_ha;
mod upload;
