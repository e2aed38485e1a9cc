//! Bridge behaviour that needs a broker but not a particular one: runs everywhere on the
//! embedded broker.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{utc, Collector, ScriptedProvider, TestBridge};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

const WAIT: Duration = Duration::from_secs(30);

fn last_json(collector: &Collector, suffix: &str) -> serde_json::Value {
    let m = collector
        .on(suffix)
        .pop()
        .unwrap_or_else(|| panic!("no message on {suffix}"));
    serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_show_on_the_state_topic_and_clear_on_recovery() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), state.path());
    let collector = Collector::connect(broker.port(), "errors", &["meter2mqtt/#"], false).await;
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 3);
    *provider.failing.lock().unwrap() = Some(503);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);

    assert_eq!(bridge.next_poll().await, (0, 1));
    collector
        .wait_until(WAIT, "unavailable state", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("m1/state") && m.payload.contains("unavailable"))
        })
        .await;
    let s = last_json(&collector, "m1/state");
    assert_eq!(s["api_status"], "unavailable");
    assert!(s["api_error"].as_str().unwrap().contains("HTTP 503"));
    collector
        .wait_until(WAIT, "bridge last_error", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("bridge/state") && m.payload.contains("HTTP 503"))
        })
        .await;

    *provider.failing.lock().unwrap() = Some(429);
    bridge.next_poll().await;
    collector
        .wait_until(WAIT, "rate_limited", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("m1/state") && m.payload.contains("rate_limited"))
        })
        .await;

    *provider.failing.lock().unwrap() = None;
    assert_eq!(bridge.next_poll().await, (3, 0));
    collector
        .wait_until(WAIT, "ok state", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("m1/state") && m.payload.contains("\"api_status\":\"ok\""))
        })
        .await;
    assert!(last_json(&collector, "m1/state")["api_error"].is_null());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_that_disappears_has_its_configs_and_state_cleared() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), state.path());
    let collector = Collector::connect(
        broker.port(),
        "vanish",
        &["homeassistant/#", "meter2mqtt/+/+/state"],
        false,
    )
    .await;
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 3);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    bridge.next_poll().await;
    collector
        .wait_until(WAIT, "meter configs", |m| {
            m.iter()
                .filter(|m| m.topic.contains("scripted_m1") && !m.payload.is_empty())
                .count()
                >= 6
        })
        .await;

    provider.present.store(false, Ordering::SeqCst);
    bridge.next_poll().await;
    collector
        .wait_until(WAIT, "empty payloads", |m| {
            m.iter()
                .filter(|m| m.topic.contains("scripted_m1") && m.topic.ends_with("/config") && m.payload.is_empty())
                .count()
                == 7
                && m.iter()
                    .any(|m| m.topic == "meter2mqtt/scripted/m1/state" && m.payload.is_empty())
        })
        .await;
    bridge.stop().await;

    // The removal is remembered: a restart does not clear again, the bridge device stays.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("scripted-test.json")).unwrap()).unwrap();
    assert!(
        saved.get("discovery").is_none(),
        "discovery topics have a file of their own"
    );
    let discovery: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("scripted-test.discovery.json")).unwrap()).unwrap();
    assert!(discovery.as_array().unwrap().is_empty());
    assert!(collector
        .messages()
        .iter()
        .filter(|m| m.topic.contains("meter2mqtt_bridge"))
        .all(|m| !m.payload.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_while_the_broker_is_unreachable() {
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(crate::support::free_port(), state.path());
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 3);
    let bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    // The poll has fetched and holds its readings back for a broker that is not there.
    tokio::time::timeout(WAIT, provider.fetched.notified()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), bridge.stop())
        .await
        .expect("bridge and connection stop within 3 s");
    // Nothing was acknowledged, so nothing is recorded as delivered.
    let saved = std::fs::read(state.path().join("scripted-test.json")).ok();
    let cursor = saved
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| v["meters"]["m1"]["cursor"].clone());
    assert!(cursor.as_ref().is_none_or(|c| c.is_null()), "{cursor:?}");
}

/// Two meters whose data ends at different hours, recording how they are asked for.
#[derive(Clone, Default)]
struct TwoMeters {
    batches: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl TwoMeters {
    fn series(
        meter: &meter2mqtt::model::Meter,
        range: meter2mqtt::model::TimeRange,
    ) -> Vec<meter2mqtt::model::IntervalReading> {
        // "a" has data until 20:00, "b" until 23:00 of the same day.
        let end = utc(2024, 3, 1, if meter.id == "a" { 20 } else { 23 });
        let mut out = Vec::new();
        let mut start = range.start.max(utc(2024, 3, 1, 0));
        while start + chrono::Duration::hours(1) <= end.min(range.end) {
            out.push(meter2mqtt::model::IntervalReading {
                start,
                end: start + chrono::Duration::hours(1),
                value: Some(1.0),
                unit: meter.unit.clone(),
                quality: meter2mqtt::model::Quality::Measured,
                reading: None,
            });
            start += chrono::Duration::hours(1);
        }
        out
    }
}

#[async_trait::async_trait]
impl meter2mqtt::providers::Provider for TwoMeters {
    fn kind(&self) -> &'static str {
        "two"
    }
    fn account(&self) -> &str {
        "test"
    }
    async fn meters(&self) -> Result<Vec<meter2mqtt::model::Meter>, meter2mqtt::providers::ProviderError> {
        Ok(["a", "b"]
            .iter()
            .map(|id| meter2mqtt::model::Meter {
                id: (*id).into(),
                provider: "two".into(),
                ..ScriptedProvider::meter()
            })
            .collect())
    }
    async fn read(
        &self,
        meters: &[meter2mqtt::model::Meter],
        range: meter2mqtt::model::TimeRange,
        out: &mut dyn meter2mqtt::providers::Receive,
    ) {
        self.batches
            .lock()
            .unwrap()
            .push(meters.iter().map(|m| m.id.clone()).collect());
        let mut results = Vec::new();
        for meter in meters {
            results.push((meter.id.clone(), Ok(TwoMeters::series(meter, range))));
        }
        let _ = out
            .window(meter2mqtt::providers::Window {
                covered: range,
                results,
            })
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_whose_cursors_differ_by_hours_share_one_batched_call() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), state.path());
    let provider = TwoMeters::default();
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    assert_eq!(bridge.next_poll().await.0, 20 + 23);
    provider.batches.lock().unwrap().clear();
    bridge.next_poll().await;
    assert_eq!(
        *provider.batches.lock().unwrap(),
        vec![vec!["a".to_owned(), "b".to_owned()]]
    );
    bridge.stop().await;
}
