//! What Home Assistant shows of each upload series: a diagnostic sensor (discovery) and its
//! retained state, both published again when the broker connection comes back or Home
//! Assistant restarts (`homeassistant/status` = `online`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::mqtt::discovery::{upload_config, UploadSensor};
use crate::mqtt::{MqttEvent, MqttHandle, Topics};
use crate::providers::upload::api_time;

/// One series' figures, as its sensor's state shows them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesStatus {
    pub(crate) accepted: Option<DateTime<Utc>>,
    pub(crate) pending: u64,
    pub(crate) refused: u64,
    /// Queued records dropped because the outbox was full.
    pub(crate) dropped: u64,
    pub(crate) last_error: Option<String>,
}

impl SeriesStatus {
    fn payload(&self) -> Vec<u8> {
        json!({
            "accepted": self.accepted.map(api_time),
            "pending": self.pending,
            "refused": self.refused,
            "dropped": self.dropped,
            "last_error": self.last_error,
        })
        .to_string()
        .into_bytes()
    }
}

/// A series' sensor and what was last published for it: its state and, once there is one, the
/// time of the newest accepted record (on a topic of its own).
#[derive(Clone)]
struct Shown {
    sensor: UploadSensor,
    state: Option<Vec<u8>>,
    accepted: Option<String>,
}

/// The sensors of every upload series and their latest states.
#[derive(Clone)]
pub(crate) struct Board {
    mqtt: Option<MqttHandle>,
    topics: Topics,
    discovery: bool,
    sensors: Arc<Mutex<BTreeMap<String, Shown>>>,
}

impl Board {
    pub(crate) fn new(mqtt: Option<MqttHandle>, topics: Topics, discovery: bool) -> Board {
        Board {
            mqtt,
            topics,
            discovery,
            sensors: Arc::default(),
        }
    }

    pub(crate) fn add(&self, sensor: UploadSensor) {
        self.publish_config(&sensor);
        self.sensors.lock().unwrap_or_else(PoisonError::into_inner).insert(
            sensor.key.clone(),
            Shown {
                sensor,
                state: None,
                accepted: None,
            },
        );
    }

    fn publish_config(&self, sensor: &UploadSensor) {
        if let (Some(mqtt), true) = (&self.mqtt, self.discovery) {
            let config = upload_config(&self.topics, sensor);
            mqtt.publish_nowait(config.topic.clone(), config.bytes(), true);
        }
    }

    pub(crate) fn show(&self, key: &str, status: &SeriesStatus) {
        let payload = status.payload();
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(shown) = sensors.get_mut(key) else {
            return;
        };
        let accepted = status.accepted.map(api_time);
        if accepted.is_some() && shown.accepted != accepted {
            shown.accepted = accepted;
            self.publish_accepted(key, shown);
        }
        if shown.state.as_ref() == Some(&payload) {
            return;
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.publish_nowait(self.topics.upload_state(&shown.sensor.kind, key), payload.clone(), true);
        }
        shown.state = Some(payload);
    }

    fn publish_accepted(&self, key: &str, shown: &Shown) {
        if let (Some(mqtt), Some(accepted)) = (&self.mqtt, &shown.accepted) {
            let topic = self.topics.upload_accepted(&shown.sensor.kind, key);
            mqtt.publish_nowait(topic, accepted.clone().into_bytes(), true);
        }
    }

    /// Publishes every config and state again after a reconnect or a Home Assistant restart.
    pub(crate) async fn follow(self, stop: CancellationToken) {
        let Some(mqtt) = self.mqtt.clone() else { return };
        let mut events = mqtt.events();
        let ha_status = self.topics.ha_status();
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                event = events.recv() => event,
            };
            let again = match event {
                Ok(MqttEvent::Connected) => true,
                Ok(MqttEvent::Message { topic, payload }) => topic == ha_status && &payload[..] == b"online",
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => false,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if again {
                let sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner).clone();
                for (key, shown) in sensors {
                    self.publish_config(&shown.sensor);
                    self.publish_accepted(&key, &shown);
                    if let Some(state) = shown.state {
                        mqtt.publish_nowait(self.topics.upload_state(&shown.sensor.kind, &key), state, true);
                    }
                }
            }
        }
    }
}
