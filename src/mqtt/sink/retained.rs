//! Every retained message the bridge owns (discovery configs, meter and bridge states), kept so it
//! can be published again after a reconnect or when Home Assistant restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::mqtt::{MqttHandle, Topics};

#[derive(Clone, Default)]
pub(crate) struct Retained {
    inner: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Retained {
    /// Remembers and queues the message without waiting: a broker that is down must not hold
    /// up a poll or a shutdown, and everything remembered goes out again on the next ConnAck.
    pub(crate) fn publish(&self, mqtt: &MqttHandle, topic: String, payload: Vec<u8>) {
        {
            let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if payload.is_empty() {
                map.remove(&topic);
            } else {
                map.insert(topic.clone(), payload.clone());
            }
        }
        mqtt.publish_nowait(topic, payload, true);
    }

    /// Publishes only when the payload differs from what was last published.
    pub(crate) fn publish_if_changed(&self, mqtt: &MqttHandle, topic: String, payload: Vec<u8>) {
        let same = self.inner.lock().unwrap_or_else(PoisonError::into_inner).get(&topic) == Some(&payload);
        if !same {
            self.publish(mqtt, topic, payload);
        }
    }

    pub(crate) fn snapshot(&self, topics: &Topics) -> Vec<(String, Vec<u8>)> {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Discovery configs first, so entities exist before their states arrive.
        let (mut first, rest): (Vec<_>, Vec<_>) = map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| topics.is_discovery(k));
        first.extend(rest);
        first
    }

    /// Queues everything again, configs first.
    pub(crate) fn republish_all(&self, mqtt: &MqttHandle, topics: &Topics) {
        for (topic, payload) in self.snapshot(topics) {
            mqtt.publish_nowait(topic, payload, true);
        }
    }
}
