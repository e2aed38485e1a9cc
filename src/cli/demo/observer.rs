//! A subscriber that sees what Home Assistant (or any other client) would: every retained
//! message and every readings batch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::mqtt::Topics;

#[derive(Default, Clone)]
pub(crate) struct Seen {
    /// Latest retained-or-not payload per topic, as text.
    pub(crate) retained: BTreeMap<String, String>,
    /// Every readings message, per topic.
    pub(crate) readings: BTreeMap<String, Vec<Value>>,
    marker: u64,
}

/// A subscriber that sees what Home Assistant (or any other client) would.
pub(super) struct Observer {
    client: AsyncClient,
    seen: Arc<Mutex<Seen>>,
    marker_topic: String,
    next_marker: Mutex<u64>,
}

impl Observer {
    pub(super) async fn connect(port: u16, topics: &Topics) -> Result<Self, String> {
        let mut options = MqttOptions::new("meter2mqtt-demo-observer", "127.0.0.1", port);
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client
            .subscribe_many([
                rumqttc::SubscribeFilter::new(topics.discovery_filter(), QoS::AtLeastOnce),
                rumqttc::SubscribeFilter::new(topics.base_filter(), QoS::AtLeastOnce),
            ])
            .await
            .map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let sink = seen.clone();
        let marker_topic = topics.demo_marker();
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        if p.topic == marker_topic {
                            s.marker = text.parse().unwrap_or(0);
                        } else if p.topic.ends_with("/readings") {
                            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                                s.readings.entry(p.topic.clone()).or_default().push(v);
                            }
                        } else if text.is_empty() {
                            s.retained.remove(&p.topic);
                        } else {
                            s.retained.insert(p.topic.clone(), text);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .map_err(|_| "observer could not subscribe".to_owned())?
            .ok();
        Ok(Observer {
            client,
            seen,
            marker_topic: topics.demo_marker(),
            next_marker: Mutex::new(0),
        })
    }

    /// Round-trips a marker through the broker: everything published before it has arrived.
    pub(super) async fn sync(&self) -> Result<(), String> {
        let marker = {
            let mut m = self.next_marker.lock().unwrap_or_else(PoisonError::into_inner);
            *m += 1;
            *m
        };
        self.client
            .publish(self.marker_topic.clone(), QoS::AtLeastOnce, false, marker.to_string())
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..200 {
            if self.seen.lock().unwrap_or_else(PoisonError::into_inner).marker >= marker {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("the observer did not receive its marker back from the broker".into())
    }

    pub(super) fn snapshot(&self) -> Seen {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
