//! MQTT: one connection task that always polls rumqttc's event loop (`client`), Home Assistant
//! discovery payloads, the topic and payload contracts other subscribers rely on, and the sink
//! the bridge hands readings to (`sink`). Nothing here knows any provider; it sees only the
//! domain model.

mod client;
pub(crate) mod discovery;
pub(crate) mod entities;
pub(crate) mod payloads;
pub(crate) mod sink;
pub(crate) mod topics;

pub use client::{ConnectionState, MqttHandle};

pub(crate) use client::{MqttEvent, MqttSettings};
pub use sink::SINK;
pub(crate) use sink::{MqttSinkSettings, MqttSinks};
pub(crate) use topics::Topics;
