//! MQTT as a sink of the bridge: it owns the topics, the payloads, discovery, the retained
//! messages, the record of what was delivered on the readings topics, and its cursor.
//!
//! [`MqttSinks`] is shared by every account: it publishes the bridge device, keeps the bridge
//! state current, and publishes every retained message again after each reconnect and when
//! Home Assistant comes online. Each account gets an `account::AccountSink` with its own
//! state file.

mod account;
mod clocked;
mod delivery;
mod retained;
mod shared;
mod summary;

pub use shared::SINK;
pub(crate) use shared::{MqttSinkSettings, MqttSinks};

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{discovery, MqttEvent};
use crate::sink::{AccountId, Sink, SinkError, SinkFactory, StatusBoard};

#[async_trait]
impl SinkFactory for MqttSinks {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn start(&self, board: StatusBoard, shutdown: CancellationToken) {
        if self.settings.discovery {
            for config in discovery::bridge_configs(&self.settings.topics) {
                self.retained.publish(&self.mqtt, config.topic.clone(), config.bytes());
            }
        }
        self.publish_bridge_state(&board);
        tokio::spawn(republisher(self.clone(), shutdown.clone()));
        tokio::spawn(bridge_state(self.clone(), board, shutdown));
    }

    async fn open(&self, account: &AccountId, board: &StatusBoard) -> Result<Box<dyn Sink>, SinkError> {
        let sink = account::AccountSink::open(self.clone(), account.clone(), board.clone()).await?;
        Ok(Box::new(sink))
    }
}

/// Publishes the bridge state whenever it changes.
async fn bridge_state(sinks: MqttSinks, board: StatusBoard, shutdown: CancellationToken) {
    let mut changes = board.changes();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
        }
        sinks.publish_bridge_state(&board);
    }
    // The last word before the connection says `offline`.
    sinks.publish_bridge_state(&board);
}

/// Re-publishes every retained message after each reconnect, and after a short random delay
/// when Home Assistant announces itself `online` (so a restart of many HA clients is spread).
async fn republisher(sinks: MqttSinks, shutdown: CancellationToken) {
    let mut events = sinks.mqtt.events();
    let ha_status = sinks.settings.topics.ha_status();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(MqttEvent::Connected) => {
                // Also on the first ConnAck: anything published while the broker was unreachable
                // timed out and exists only in the registry.
                tracing::debug!("publishing retained discovery and state after ConnAck");
                sinks.retained.republish_all(&sinks.mqtt, &sinks.settings.topics);
            }
            Ok(MqttEvent::Message { topic, payload }) if topic == ha_status && payload.as_ref() == b"online" => {
                let delay = Duration::from_millis(rand::random_range(500..3000));
                tracing::info!("Home Assistant is online; re-publishing discovery in {delay:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                sinks.retained.republish_all(&sinks.mqtt, &sinks.settings.topics);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
