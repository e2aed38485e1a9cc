//! Values that change by themselves (live prices, a CO2 intensity) are read again between polls,
//! as often as the provider says, and handed to the sinks; the next poll still comes on time.
//! On the paused clock.

use std::sync::Arc;
use std::time::Duration;

use meter2mqtt::bridge::{Bridge, BridgeEvent};
use meter2mqtt::config::BridgeConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::recording::Recording;
use crate::support::{utc, ScriptedProvider};

#[tokio::test(start_paused = true)]
async fn live_values_are_read_every_quarter_hour_between_hourly_polls() {
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    *provider.live_every.lock().unwrap() = Some(Duration::from_secs(15 * 60));
    let sink = Recording::default();
    let settings = BridgeConfig {
        poll_interval: Duration::from_secs(3600),
        jitter: Duration::ZERO,
        history_start: chrono::NaiveDate::from_ymd_opt(2024, 1, 1),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::new(settings, vec![Arc::new(provider.clone())]).with_sink(Arc::new(sink.clone()));
    let mut events = bridge.events();
    let stop = CancellationToken::new();
    let task = tokio::spawn(bridge.run(stop.clone()));
    let start = Instant::now();
    for _ in 0..2 {
        let BridgeEvent::PollFinished { errors, .. } = events.recv().await.unwrap();
        assert_eq!(errors, 0);
    }
    stop.cancel();
    task.await.unwrap();

    let handed: Vec<(u64, &str, f64)> = sink
        .values
        .lock()
        .unwrap()
        .iter()
        .map(|(at, kind, values)| {
            (
                at.duration_since(start).as_secs() / 60,
                *kind,
                values["m1"][0].value.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        handed,
        [
            (0, "poll", 1.0),
            (15, "refresh", 2.0),
            (30, "refresh", 3.0),
            (45, "refresh", 4.0),
            (60, "poll", 5.0),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_live_values_nothing_is_read_between_polls() {
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    let sink = Recording::default();
    let settings = BridgeConfig {
        poll_interval: Duration::from_secs(3600),
        jitter: Duration::ZERO,
        history_start: chrono::NaiveDate::from_ymd_opt(2024, 1, 1),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::new(settings, vec![Arc::new(provider.clone())]).with_sink(Arc::new(sink.clone()));
    let mut events = bridge.events();
    let stop = CancellationToken::new();
    let task = tokio::spawn(bridge.run(stop.clone()));
    for _ in 0..2 {
        events.recv().await.unwrap();
    }
    stop.cancel();
    task.await.unwrap();
    let kinds: Vec<&str> = sink.values.lock().unwrap().iter().map(|(_, kind, _)| *kind).collect();
    assert_eq!(kinds, ["poll", "poll"]);
}
