//! The two sinks fail independently: Home Assistant statistics keep importing while MQTT is
//! down, and MQTT keeps delivering while Home Assistant is down.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_ha::FakeHa;
use crate::support::{utc, Collector, ScriptedProvider, TestBridge};
use meter2mqtt::secret::Secret;
use meter2mqtt::state::StateStore;
use meter2mqtt::statistics::{StatisticsSettings, StatisticsSink};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

const WAIT: Duration = Duration::from_secs(40);
const ID: &str = "meter2mqtt:scripted_m1_consumption";

/// The bridge with the statistics sink, as `run` wires it when `[homeassistant]` is set.
fn start(config: &meter2mqtt::Config, ha: &FakeHa, provider: &ScriptedProvider) -> (TestBridge, StatisticsSink) {
    let store = StateStore::open(&config.state.dir).unwrap();
    let sink = StatisticsSink::start(StatisticsSettings::new(ha.url(), Secret::new("ha-token"), false), store);
    let bridge = TestBridge::start(config, vec![Arc::new(provider.clone())], vec![Arc::new(sink.clone())]);
    (bridge, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_import_while_the_broker_is_down_and_mqtt_catches_up_later() {
    let ha = FakeHa::start("2025.10.1", "ha-token").await;
    let port = crate::support::free_port();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(port, state.path());
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    let (mut running, sink) = start(&config, &ha, &provider);
    assert_eq!(
        running.next_poll().await.0,
        0,
        "nothing can reach a broker that is not there"
    );
    let rows = ha.rows(ID);
    assert_eq!(rows.len(), 24, "statistics imported regardless");
    let total: f64 = (0..24)
        .map(|h| provider.value(utc(2024, 3, 1, 0) + chrono::Duration::hours(h)))
        .sum();
    assert!((rows.last().unwrap().sum.unwrap() - total).abs() < 1e-9);

    // The broker comes up on that port: the held-back readings go out at once, exactly once.
    let broker = EmbeddedBroker::start(&format!("127.0.0.1:{port}"), BrokerOptions::default())
        .await
        .unwrap();
    let collector = Collector::connect(broker.port(), "sinks-1", &["meter2mqtt/+/+/readings"], false).await;
    let mut published = 0;
    while published < 24 {
        published += running.next_poll().await.0;
    }
    assert_eq!(published, 24);
    collector
        .wait_until(WAIT, "24 readings", |m| {
            m.iter()
                .filter(|m| m.topic.ends_with("/readings"))
                .map(|m| m.payload.matches("\"start\"").count())
                .sum::<usize>()
                >= 24
        })
        .await;
    assert!(collector.reading_counts().values().all(|n| *n == 1));
    assert_eq!(ha.rows(ID).len(), 24, "no statistics imported twice");
    running.stop().await;
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_delivers_while_home_assistant_is_down_and_statistics_catch_up() {
    let ha = FakeHa::start("2025.10.1", "ha-token").await;
    ha.set_down(true);
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), state.path());
    let collector = Collector::connect(broker.port(), "sinks-2", &["meter2mqtt/#"], false).await;
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    let (mut running, sink) = start(&config, &ha, &provider);
    assert_eq!(running.next_poll().await.0, 24);
    assert!(ha.rows(ID).is_empty());
    collector
        .wait_until(WAIT, "the statistics error on the bridge state", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("bridge/state") && m.payload.contains("Home Assistant statistics"))
        })
        .await;

    ha.set_down(false);
    provider.advance(2);
    let mut published = 0;
    while ha.rows(ID).len() < 26 {
        published += running.next_poll().await.0;
    }
    assert_eq!(published, 2, "MQTT only gets what is new");
    assert_eq!(ha.rows(ID).len(), 26, "statistics caught up from the history start");
    running.stop().await;
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_does_not_make_every_poll_reread_the_history() {
    let ha = FakeHa::start("2025.10.1", "the-right-token").await;
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), state.path());
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24 * 30);
    let (mut running, sink) = start(&config, &ha, &provider);
    assert_eq!(running.next_poll().await.0, 24 * 30);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(sink.status().state, meter2mqtt::homeassistant::LinkState::AuthFailed(_)) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", sink.status());
        running.next_poll().await;
    }
    provider.ranges.lock().unwrap().clear();
    running.next_poll().await;
    let ranges = provider.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 1);
    // The look-back window before the cursor (from the start of its Danish day), not the
    // history start.
    assert_eq!(ranges[0].start, utc(2024, 3, 23, 23));
    running.stop().await;
    sink.shutdown().await;
}
