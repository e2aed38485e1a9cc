//! MQTT: one connection task that always polls rumqttc's event loop, Home Assistant discovery
//! payloads, and the topic and payload contracts other subscribers rely on. Nothing here knows
//! any provider; it sees only the domain model.

mod client;
pub mod discovery;
pub mod payloads;
pub mod topics;

pub use client::{ConnectionState, MqttEvent, MqttHandle, MqttSettings, PublishError};
