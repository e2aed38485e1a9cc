//! Values that change by themselves (live prices, a CO2 intensity) are read again between polls,
//! as often as the provider says, and handed to the sinks; the next poll still comes on time.
//! On the paused clock.

use std::time::Duration;

use tokio::time::Instant;

use crate::support::recording::{RecordedBridge, Recording};
use crate::support::{utc, ScriptedProvider};

/// Two hourly polls with `live_every`: when values were handed over (minutes from the start),
/// how (`poll` or `refresh`) and the live value (the provider's count of values calls).
async fn two_polls(live_every: Option<Duration>) -> Vec<(u64, &'static str, Option<f64>)> {
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    *provider.live_every.lock().unwrap() = live_every;
    let sink = Recording::default();
    let start = Instant::now();
    let mut bridge = RecordedBridge::hourly(&provider, &sink);
    for _ in 0..2 {
        assert_eq!(bridge.next_poll().await.1, 0);
    }
    bridge.stop().await;
    let handed = sink.values.lock().unwrap();
    handed
        .iter()
        .map(|(at, kind, values)| {
            let live = values["m1"].first().and_then(|v| v.value);
            (at.duration_since(start).as_secs() / 60, *kind, live)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn live_values_are_read_every_quarter_hour_between_hourly_polls() {
    assert_eq!(
        two_polls(Some(Duration::from_secs(15 * 60))).await,
        [
            (0, "poll", Some(1.0)),
            (15, "refresh", Some(2.0)),
            (30, "refresh", Some(3.0)),
            (45, "refresh", Some(4.0)),
            (60, "poll", Some(5.0)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_live_values_nothing_is_read_between_polls() {
    assert_eq!(two_polls(None).await, [(0, "poll", None), (60, "poll", None)]);
}
