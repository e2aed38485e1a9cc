//! MQTT: one connection task that always polls rumqttc's event loop (`client`), Home Assistant
//! discovery payloads, the topic and payload contracts other subscribers rely on, and the sink
//! the bridge hands readings to (`sink`). Nothing here knows any provider; it sees only the
//! domain model.

mod client;
pub mod discovery;
pub mod entities;
pub mod payloads;
pub mod sink;
pub mod topics;

pub use client::{ConnectionState, MqttEvent, MqttHandle, MqttSettings, PublishError};
pub use sink::{MqttSinkSettings, MqttSinks, SINK};
pub use topics::Topics;
