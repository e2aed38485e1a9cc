//! What every account's MQTT sink shares: the connection, the settings, the state store and the
//! retained registry.

use std::time::Duration;

use super::retained::Retained;
use crate::mqtt::payloads::BridgeState;
use crate::mqtt::topics::Topics;
use crate::mqtt::MqttHandle;
use crate::sink::StatusBoard;
use crate::state::StateStore;

/// The sink's name in logs, errors and [`crate::bridge::BridgeEvent`]s.
pub const SINK: &str = "MQTT";

/// Intervals per message on the readings topic: large enough for few round trips, small enough
/// for any broker's packet limit (~30 kB).
pub(super) const BATCH: usize = 200;
/// How long a readings message may wait for its PUBACK before it counts as not delivered.
pub(super) const ACK_LIMIT: Duration = Duration::from_secs(60);

/// What the MQTT sink needs of the configuration.
#[derive(Clone)]
pub(crate) struct MqttSinkSettings {
    pub(crate) topics: Topics,
    /// Publish Home Assistant discovery configs.
    pub(crate) discovery: bool,
    /// How far before its cursor a meter is re-read; the delivery record covers this window.
    pub(crate) lookback: chrono::Duration,
    /// Which interval of a value that changes by the clock (a price) is shown now; tests pin it.
    pub(crate) clock: crate::clock::SharedClock,
}

impl std::fmt::Debug for MqttSinkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSinkSettings")
            .field("topics", &self.topics)
            .field("discovery", &self.discovery)
            .field("lookback", &self.lookback)
            .finish_non_exhaustive()
    }
}

/// The MQTT side of the bridge, shared by every account.
#[derive(Clone)]
pub struct MqttSinks {
    pub(super) mqtt: MqttHandle,
    pub(super) settings: MqttSinkSettings,
    pub(super) store: StateStore,
    pub(super) retained: Retained,
}

impl MqttSinks {
    pub(crate) fn new(mqtt: MqttHandle, settings: MqttSinkSettings, store: StateStore) -> MqttSinks {
        MqttSinks {
            mqtt,
            settings,
            store,
            retained: Retained::default(),
        }
    }

    /// Topics the connection must subscribe to for the sink to work.
    pub(crate) fn subscriptions(topics: &Topics) -> Vec<String> {
        vec![topics.ha_status()]
    }

    pub(super) fn publish_bridge_state(&self, board: &StatusBoard) {
        let payload = serde_json::to_vec(&BridgeState::of(&board.snapshot())).unwrap_or_default();
        self.retained
            .publish_if_changed(&self.mqtt, self.settings.topics.bridge_state(), payload);
    }
}
