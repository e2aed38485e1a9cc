//! A failing disk is survived: the state directory refuses writes while the bridge runs, or a
//! state file is found cut short at start-up. Runs on the embedded broker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound, Utc};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

use crate::support::logs::Logs;
use crate::support::read_only::ReadOnly;
use crate::support::{utc, Collector, ScriptedProvider, TestBridge};

const WAIT: Duration = Duration::from_secs(30);
const STATE_FILE: &str = "scripted-test.json";

fn cursor(state: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(state.join(STATE_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("the state file is whole JSON");
    json["meters"]["m1"]["cursor"].clone()
}

fn leftovers(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_directory_holds_readings_back_and_they_follow_once_writable() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = crate::support::config(broker.port(), &state);
    let collector = Collector::connect(broker.port(), "disk", &["meter2mqtt/#"], false).await;
    let first = utc(2024, 3, 1, 0);
    let provider = ScriptedProvider::new(first, 24);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    assert_eq!(bridge.next_poll().await, (24, 0));
    let good = cursor(&state);
    assert_eq!(good, "2024-03-02T00:00:00Z");

    let read_only = ReadOnly::make(&state);
    // Two new hours go out, but their record cannot be written: the round stays in memory and
    // the file keeps the last good cursor.
    provider.advance(2);
    assert_eq!(bridge.next_poll().await, (2, 0));
    provider.advance(3);
    // Nothing more is published while the record cannot be written.
    assert_eq!(bridge.next_poll().await, (0, 0));
    assert_eq!(bridge.next_poll().await, (0, 0));
    assert_eq!(cursor(&state), good);
    assert!(leftovers(&state).is_empty(), "{:?}", leftovers(&state));
    collector
        .wait_until(WAIT, "the bridge's last error names the state directory", |m| {
            m.iter().any(|m| {
                m.topic.ends_with("bridge/state")
                    && m.payload.contains("state directory")
                    && m.payload.contains("state.dir")
            })
        })
        .await;
    let readings = collector.reading_counts();
    assert_eq!(readings.len(), 26, "the three later hours are held back");

    drop(read_only);
    assert_eq!(bridge.next_poll().await, (3, 0));
    assert_eq!(cursor(&state), "2024-03-02T05:00:00Z");
    collector
        .wait_until(WAIT, "every hour", |m| {
            crate::support::collector::reading_counts(m).len() == 29
        })
        .await;
    assert!(
        collector.reading_counts().values().all(|n| *n == 1),
        "each hour published once"
    );
    assert!(leftovers(&state).is_empty());
    bridge.stop().await;
}

/// Hours from ten days ago (older than the default look-back of 7 days) until three hours ago,
/// so that two more can come.
fn recent_provider() -> ScriptedProvider {
    let now = Utc::now().duration_trunc(chrono::Duration::hours(1)).unwrap();
    ScriptedProvider::new(now - chrono::Duration::days(10), 10 * 24 - 3)
}

fn hour(provider: &ScriptedProvider, index: i64) -> String {
    (provider.first + chrono::Duration::hours(index)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A bridge that has published ten days of hours, with its state in `<dir>/state`.
async fn first_run() -> (
    EmbeddedBroker,
    tempfile::TempDir,
    meter2mqtt::config::Config,
    ScriptedProvider,
    TestBridge,
) {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port(), &dir.path().join("state"));
    let provider = recent_provider();
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    assert_eq!(bridge.next_poll().await, (237, 0));
    (broker, dir, config, provider, bridge)
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_truncated_state_file_falls_back_to_its_backup() {
    let (broker, dir, config, provider, mut bridge) = first_run().await;
    let state = dir.path().join("state");
    provider.advance(1);
    assert_eq!(bridge.next_poll().await, (1, 0));
    bridge.stop().await;
    truncate(&state.join(STATE_FILE));

    let collector = Collector::connect(broker.port(), "prev", &["meter2mqtt/+/+/readings"], false).await;
    let (logs, _capturing) = Logs::capture();
    provider.advance(1);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    // The backup is at most one save behind: the new hour comes, and at most the last poll's again.
    let (published, errors) = bridge.next_poll().await;
    assert!(
        (1..=2).contains(&published) && errors == 0,
        "{published} published, {errors} errors"
    );
    collector
        .wait_until(WAIT, "the new hour", |m| {
            crate::support::collector::reading_counts(m).len() == published
        })
        .await;
    let newest = hour(&provider, 238);
    assert!(
        collector.reading_counts().keys().any(|(_, start)| *start == newest),
        "{:?}",
        collector.reading_counts()
    );
    // The cut file was kept aside for inspection; the one in place is whole again.
    let aside = std::fs::read_dir(&state)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(aside, 1);
    assert!(cursor(&state).is_string());
    assert!(!logs.text().contains("panicked"));
    bridge.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_truncated_state_file_without_backup_starts_afresh_from_the_look_back_window() {
    let (broker, dir, config, provider, bridge) = first_run().await;
    let state = dir.path().join("state");
    bridge.stop().await;
    truncate(&state.join(STATE_FILE));
    let _ = std::fs::remove_file(state.join(format!("{STATE_FILE}.prev")));

    let collector = Collector::connect(broker.port(), "fresh", &["meter2mqtt/+/+/readings"], false).await;
    let (logs, _capturing) = Logs::capture();
    provider.advance(1);
    let mut bridge = TestBridge::start(&config, vec![Arc::new(provider.clone())], vec![]);
    let (published, errors) = bridge.next_poll().await;
    assert_eq!(errors, 0);
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("MQTT state file")
            && l.contains("is corrupt")
            && l.contains("no usable backup")
            && l.contains("Starting afresh from")),
        "{text}"
    );
    // The look-back window (7 days and the day the record keeps beyond it) again, and the new
    // hour; nothing older.
    let from = Utc::now() - chrono::Duration::days(8);
    collector
        .wait_until(WAIT, "the window", |m| {
            crate::support::collector::reading_counts(m).len() == published
        })
        .await;
    let counts = collector.reading_counts();
    let starts: Vec<chrono::DateTime<Utc>> = counts.keys().map(|(_, start)| start.parse().unwrap()).collect();
    assert!(
        starts.iter().all(|s| *s >= from - chrono::Duration::hours(1)),
        "{starts:?}"
    );
    assert!((7 * 24..=8 * 24 + 1).contains(&published), "{published}");
    let newest: chrono::DateTime<Utc> = hour(&provider, 237).parse().unwrap();
    assert!(starts.contains(&newest), "the new hour arrived");
    // The new starting point is on disk: a restart does not read the whole history again.
    let text = std::fs::read_to_string(state.join(STATE_FILE)).unwrap();
    assert!(text.contains("fresh_from"), "{text}");
    bridge.stop().await;
}
