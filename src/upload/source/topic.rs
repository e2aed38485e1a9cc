//! MQTT topics: each message's number (the payload itself, or the value a JSON pointer selects)
//! becomes the topic's latest value. The broker connection subscribes to the topics on every
//! ConnAck.

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{number, Latest};
use crate::clock::SharedClock;
use crate::mqtt::{MqttEvent, MqttHandle};

/// Per topic, each series' JSON pointer (empty: the payload is the number) and cell.
pub(crate) type TopicFeeds = HashMap<String, Vec<(String, Latest)>>;

pub(crate) async fn follow_topics(mqtt: MqttHandle, feeds: TopicFeeds, clock: SharedClock, stop: CancellationToken) {
    let mut events = mqtt.events();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(MqttEvent::Message { topic, payload }) => {
                let Some(readers) = feeds.get(&topic) else { continue };
                let text = String::from_utf8_lossy(&payload);
                for (pointer, latest) in readers {
                    let value = number_at(&text, pointer);
                    if value.is_none() {
                        tracing::debug!(topic = %topic, pointer = %pointer, "no number in the message; no record until one comes");
                    }
                    latest.set(value, clock.now(), false);
                }
            }
            Ok(MqttEvent::Connected) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "the upload sources missed MQTT messages; the next ones count");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// The number in `payload` at the JSON `pointer` (empty: the payload is the number). A numeric
/// string counts.
pub(crate) fn number_at(payload: &str, pointer: &str) -> Option<f64> {
    if pointer.is_empty() {
        return number(payload);
    }
    let json: Value = serde_json::from_str(payload).ok()?;
    match json.pointer(pointer)? {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::String(s) => number(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_where_the_pointer_says() {
        assert_eq!(number_at("42.5", ""), Some(42.5));
        assert_eq!(number_at(r#"{"ENERGY":{"Total":123.4}}"#, "/ENERGY/Total"), Some(123.4));
        assert_eq!(number_at(r#"{"ENERGY":{"Total":"7"}}"#, "/ENERGY/Total"), Some(7.0));
        assert_eq!(number_at(r#"{"ENERGY":{}}"#, "/ENERGY/Total"), None);
        assert_eq!(number_at("not json", "/a"), None);
        assert_eq!(number_at("on", ""), None);
    }
}
