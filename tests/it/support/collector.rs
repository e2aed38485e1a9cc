//! A subscriber that records every message it receives; waits are event-driven with a timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

#[derive(Clone)]
pub struct Collector {
    pub client: AsyncClient,
    messages: Arc<Mutex<Vec<Message>>>,
    notify: Arc<Notify>,
}

impl Collector {
    /// `persistent`: a non-clean session, so messages published while it is away are queued.
    pub async fn connect(port: u16, id: &str, filters: &[&str], persistent: bool) -> Collector {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(!persistent);
        Self::connect_with(options, filters).await
    }

    pub async fn connect_with(mut options: MqttOptions, filters: &[&str]) -> Collector {
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let (m, n, c) = (messages.clone(), notify.clone(), client.clone());
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = c.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        m.lock().unwrap().push(Message {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        });
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .expect("subscribe in time")
            .unwrap();
        Collector {
            client,
            messages,
            notify,
        }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    pub fn on(&self, topic_suffix: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic.ends_with(topic_suffix))
            .collect()
    }

    /// Waits until `done` holds for the messages so far, or panics with `what` after `limit`.
    pub async fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&[Message]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if done(&self.messages.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                if done(&self.messages.lock().unwrap()) {
                    return;
                }
                panic!(
                    "timed out waiting for {what}; got {} messages",
                    self.messages.lock().unwrap().len()
                );
            }
        }
    }

    /// Every interval start on readings topics, with how often each arrived.
    pub fn reading_counts(&self) -> BTreeMap<(String, String), usize> {
        reading_counts(&self.messages())
    }

    pub fn clear(&self) {
        self.messages.lock().unwrap().clear();
    }
}

/// Every interval start on the readings topics among `messages`, with how often each arrived
/// (also usable inside a [`Collector::wait_until`] condition, which holds the message list).
pub fn reading_counts(messages: &[Message]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for m in messages.iter().filter(|m| m.topic.ends_with("/readings")) {
        let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
        for r in v["readings"].as_array().unwrap() {
            *counts
                .entry((m.topic.clone(), r["start"].as_str().unwrap().to_owned()))
                .or_insert(0) += 1;
        }
    }
    counts
}
