//! Every retained message the bridge owns (discovery configs, meter and bridge states), kept so it
//! can be published again after a reconnect or when Home Assistant restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mqtt::MqttHandle;

const PUBLISH_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
pub struct Retained {
    inner: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Retained {
    /// Remembers and publishes. A failed publish is not an error: the message goes out again on
    /// the next ConnAck.
    pub async fn publish(&self, mqtt: &MqttHandle, topic: String, payload: Vec<u8>) {
        {
            let mut map = self.inner.lock().expect("retained map lock");
            if payload.is_empty() {
                map.remove(&topic);
            } else {
                map.insert(topic.clone(), payload.clone());
            }
        }
        if let Err(e) = mqtt.publish_within(PUBLISH_LIMIT, topic.clone(), payload, true).await {
            tracing::debug!(topic, "retained publish deferred to the next connection: {e}");
        }
    }

    /// Publishes only when the payload differs from what was last published.
    pub async fn publish_if_changed(&self, mqtt: &MqttHandle, topic: String, payload: Vec<u8>) {
        let same = self.inner.lock().expect("retained map lock").get(&topic) == Some(&payload);
        if !same {
            self.publish(mqtt, topic, payload).await;
        }
    }

    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let map = self.inner.lock().expect("retained map lock");
        // Discovery configs first, so entities exist before their states arrive.
        let (mut first, rest): (Vec<_>, Vec<_>) = map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| k.ends_with("/config"));
        first.extend(rest);
        first
    }

    /// Publishes everything again, concurrently; returns when all are acknowledged or failed.
    pub async fn republish_all(&self, mqtt: &MqttHandle) {
        let mut set = tokio::task::JoinSet::new();
        for (topic, payload) in self.snapshot() {
            let mqtt = mqtt.clone();
            set.spawn(async move { mqtt.publish_within(PUBLISH_LIMIT, topic, payload, true).await });
        }
        let mut failed = 0;
        while let Some(result) = set.join_next().await {
            if !matches!(result, Ok(Ok(()))) {
                failed += 1;
            }
        }
        if failed > 0 {
            tracing::debug!(failed, "some retained messages will go out on the next connection");
        }
    }
}
