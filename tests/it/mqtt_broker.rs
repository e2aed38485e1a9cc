//! The bridge against a real mosquitto: discovery, last will, re-publish on Home Assistant's
//! `online`, broker restarts without loss or duplicates, cursor persistence.

use std::sync::Arc;

use meter2mqtt::mqtt::ConnectionState;
use std::time::Duration;

use chrono::{DurationRound, Utc};

use crate::support::{utc, Broker, Collector, ScriptedProvider, TestBridge};

const WAIT: Duration = Duration::from_secs(30);

fn all_once(collector: &Collector, expected: usize) {
    let counts = collector.reading_counts();
    assert_eq!(counts.len(), expected, "distinct intervals");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "intervals delivered more than once: {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_state_and_readings_reach_a_real_broker() {
    let broker = Broker::start().await;
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, state.path());
    let collector = Collector::connect(broker.port, "observer-1", &["homeassistant/#", "meter2mqtt/#"], false).await;
    let provider = ScriptedProvider::new(utc(2024, 3, 30, 23), 48);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider)], vec![]);
    assert_eq!(bridge.next_poll().await, (48, 0));
    collector.wait_until(WAIT, "48 readings", |_| true).await;
    collector
        .wait_until(WAIT, "48 readings", |m| count_readings(m) == 48)
        .await;
    all_once(&collector, 48);

    // Every reading carries the contract's fields; the DST night has its 23 hours right.
    let batch: serde_json::Value = serde_json::from_str(&collector.on("/readings")[0].payload).unwrap();
    assert_eq!(batch["meter"], "m1");
    assert_eq!(batch["unit"], "kWh");
    let first = &batch["readings"][0];
    assert_eq!(first["start"], "2024-03-30T23:00:00Z");
    assert_eq!(first["end"], "2024-03-31T00:00:00Z");
    assert_eq!(first["quality"], "measured");
    assert_eq!(first["correction"], false);

    collector
        .wait_until(WAIT, "all discovery configs", |m| configs(m).len() == 11)
        .await;
    let mut found = configs(&collector.messages());
    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (topic, payload) in &found {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert!(v["origin"]["name"] == "meter2mqtt", "{topic} has an origin");
        assert!(
            v["unique_id"].is_string() && v["default_entity_id"].is_string(),
            "{topic}"
        );
        assert!(
            topic.ends_with(&format!("{}/config", v["unique_id"].as_str().unwrap())),
            "{topic}"
        );
        let name = topic.split('/').nth(2).unwrap().to_owned();
        insta::assert_json_snapshot!(name, v, { ".origin.sw_version" => "[version]", ".device.sw_version" => "[version]" });
    }
    // The poll's end is reported before its state message has crossed the broker: wait for it.
    collector
        .wait_until(WAIT, "the state after the poll", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("/m1/state") && m.payload.contains(r#""api_status":"ok""#))
        })
        .await;
    let state_msg = collector.on("/m1/state").pop().expect("retained state");
    assert!(state_msg.retain || !state_msg.payload.is_empty());
    let s: serde_json::Value = serde_json::from_str(&state_msg.payload).unwrap();
    assert_eq!(s["api_status"], "ok");
    assert_eq!(s["data_until"], "2024-04-01T23:00:00Z");
    assert_eq!(s["latest"]["start"], "2024-04-01T22:00:00Z");
    bridge.stop().await;
}

fn count_readings(messages: &[crate::support::Message]) -> usize {
    messages
        .iter()
        .filter(|m| m.topic.ends_with("/readings"))
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["readings"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum()
}

fn configs(messages: &[crate::support::Message]) -> Vec<(String, String)> {
    let mut map = std::collections::BTreeMap::new();
    for m in messages.iter().filter(|m| m.topic.ends_with("/config")) {
        map.insert(m.topic.clone(), m.payload.clone());
    }
    map.into_iter().filter(|(_, p)| !p.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_online_triggers_a_republish() {
    let broker = Broker::start().await;
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, state.path());
    let collector = Collector::connect(broker.port, "observer-2", &["homeassistant/+/+/config"], false).await;
    let mut bridge = TestBridge::start(
        &config,
        vec![Arc::new(ScriptedProvider::new(utc(2024, 3, 1, 0), 2))],
        vec![],
    );
    bridge.next_poll().await;
    collector.wait_until(WAIT, "configs", |m| configs(m).len() == 11).await;
    collector.clear();
    collector
        .client
        .publish("homeassistant/status", rumqttc::QoS::AtLeastOnce, false, "online")
        .await
        .unwrap();
    collector
        .wait_until(WAIT, "configs again", |m| configs(m).len() == 11)
        .await;
    assert!(
        collector.messages().iter().all(|m| !m.retain),
        "re-published live, not as retained replays"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_and_duplicates_nothing() {
    let mut broker = Broker::start().await;
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, state.path());
    // A persistent session: what is published while the observer reconnects is queued for it.
    let collector = Collector::connect(broker.port, "observer-3", &["meter2mqtt/+/+/readings"], true).await;
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    bridge.next_poll().await;
    collector
        .wait_until(WAIT, "24 readings", |m| count_readings(m) == 24)
        .await;

    broker.stop();
    let mut state_watch = bridge.mqtt.state_watch();
    tokio::time::timeout(
        WAIT,
        state_watch.wait_for(|s| matches!(s, ConnectionState::Disconnected(_))),
    )
    .await
    .unwrap()
    .unwrap();
    provider.advance(24);
    // The next poll fetches the new day while the broker is down; its publish must wait.
    tokio::time::timeout(WAIT, provider.fetched.notified()).await.unwrap();
    tokio::time::timeout(WAIT, provider.fetched.notified()).await.unwrap();
    broker.restart().await;

    collector
        .wait_until(WAIT, "48 readings", |m| count_readings(m) >= 48)
        .await;
    bridge.next_poll().await;
    bridge.next_poll().await;
    all_once(&collector, 48);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_survives_a_restart_and_corrections_are_flagged() {
    let broker = Broker::start().await;
    let state = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, state.path());
    let collector = Collector::connect(broker.port, "observer-4", &["meter2mqtt/+/+/readings"], false).await;
    // Corrections are judged per interval within the look-back window (a week): recent data.
    let first_hour = Utc::now().duration_trunc(chrono::Duration::hours(1)).unwrap() - chrono::Duration::days(3);
    let corrected_hour = first_hour + chrono::Duration::hours(3);
    let provider = ScriptedProvider::new(first_hour, 24);

    let mut first = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    assert_eq!(first.next_poll().await.0, 24);
    first.stop().await;

    let mut second = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    assert_eq!(second.next_poll().await, (0, 0), "a restart re-delivers nothing");
    provider.advance(5);
    provider.corrections.lock().unwrap().insert(corrected_hour, 1.0);
    // A poll may fall between the two changes: count over polls until both are in.
    let mut published = 0;
    while published < 6 {
        published += second.next_poll().await.0;
    }
    assert_eq!(published, 6);
    second.stop().await;

    collector
        .wait_until(WAIT, "30 readings", |m| count_readings(m) == 30)
        .await;
    let corrected: Vec<serde_json::Value> = collector
        .on("/readings")
        .iter()
        .flat_map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["readings"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|r| r["correction"] == true)
        .collect();
    assert_eq!(corrected.len(), 1);
    assert_eq!(
        corrected[0]["start"],
        corrected_hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(corrected[0]["value"], provider.value(corrected_hour));
}
