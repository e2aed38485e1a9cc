//! Endurance: an outage longer than one poll's retries, and a long backfill killed at any moment.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Days;
use tokio::time::Instant;

use crate::support::collector::reading_counts;
use crate::support::generated_datahub::{danish_today, quarters_between, start_fake_eloverblik};
use crate::support::recording::{RecordedBridge, Recording};
use crate::support::{utc, Broker, Collector, Message, Proc, ScriptedProvider};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(start_paused = true)]
async fn a_fault_storm_longer_than_the_retry_budget_is_retried_within_minutes_not_hours() {
    let provider = ScriptedProvider::new(utc(2024, 3, 1, 0), 24);
    *provider.failing.lock().unwrap() = Some(503);
    let sink = Recording::default();
    let mut bridge = RecordedBridge::hourly(&provider, &sink);
    let start = Instant::now();
    let minutes = |since: Instant| since.elapsed().as_secs() / 60;

    // Every call of the first poll ran out of retries: the next try is 5 minutes later.
    assert_eq!(bridge.next_poll().await, (0, 1));
    assert_eq!(bridge.next_poll().await, (0, 1));
    assert_eq!(minutes(start), 5);

    // The storm outlasted two polls' retries; DataHub is back now. The data flows at the next
    // try, 10 minutes later, not at the next hourly poll.
    let recovered = Instant::now();
    *provider.failing.lock().unwrap() = None;
    assert_eq!(bridge.next_poll().await, (24, 0));
    assert_eq!(minutes(recovered), 10);

    // `next_poll` said when each try would come; after the good poll, the regular interval.
    assert_eq!(sink.announced_minutes(), [5, 10, 60]);
    // A good poll resets the back-off: the next failure is retried after 5 minutes again.
    *provider.failing.lock().unwrap() = Some(429);
    assert_eq!(bridge.next_poll().await, (0, 1));
    let last = *sink.next_polls.lock().unwrap().last().unwrap();
    assert_eq!((last.1 - last.0).num_minutes(), 5);

    bridge.stop().await;
}

/// The readings messages received so far (each holds up to 200 intervals of one meter).
fn readings_messages(collector: &Collector) -> usize {
    collector.on("/readings").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_point_of_a_long_backfill_nothing_is_lost_and_little_is_repeated() {
    const POINTS: usize = 2;
    const PER_MESSAGE: usize = 200;
    let broker = Broker::start().await;
    let today = danish_today();
    let from = today - Days::new(400);
    let datahub = start_fake_eloverblik(POINTS, today).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n[bridge]\nhistory_start = \"{from}\"\njitter = \"0s\"\n\
             [state]\ndir = \"{}\"\n[[eloverblik]]\nrefresh_token = \"refresh\"\nbase_url = \"{}\"\ncharges = false\nprices = false\n",
            broker.port,
            state.display(),
            datahub.uri()
        ),
    )
    .unwrap();
    let collector = Collector::connect(
        broker.port,
        "endurance-kill",
        &["meter2mqtt/eloverblik/+/readings"],
        true,
    )
    .await;
    let expected = quarters_between(from, today) as usize * POINTS;
    let run = || Proc::spawn(&["run", "--config", config.to_str().unwrap()], &[]);

    // Killed three times while it publishes, each time once a share of the history is through.
    let mut kills = 0;
    for share in [0.1, 0.4, 0.7] {
        let mut daemon = run();
        let target = (expected as f64 * share / PER_MESSAGE as f64) as usize;
        let deadline = tokio::time::Instant::now() + WAIT;
        while readings_messages(&collector) < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no progress:\n{}",
                daemon.text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        kills += 1;
        assert!(
            unique_intervals(&collector.messages()) < expected,
            "kill {kills} came after the backfill had finished: the test would prove nothing"
        );
    }

    let mut daemon = run();
    collector
        .wait_until(WAIT, "every interval", |messages| {
            unique_intervals(messages) >= expected
        })
        .await;
    daemon.wait_for_line("poll finished", 1).await;
    assert_eq!(daemon.terminate(WAIT).await, 0, "{}", daemon.text());

    let counts = collector.reading_counts();
    assert_eq!(counts.len(), expected, "every interval arrived");
    let repeated: usize = counts.values().map(|n| n - 1).sum();
    assert!(
        repeated <= kills * POINTS * PER_MESSAGE,
        "{repeated} intervals came twice after {kills} kills: more than one message per meter each"
    );
    let topics: HashSet<&str> = counts.keys().map(|(topic, _)| topic.as_str()).collect();
    assert_eq!(topics.len(), POINTS);

    // The state directory holds the cached access token: private to the user.
    assert_private(&state);
}

fn unique_intervals(messages: &[Message]) -> usize {
    reading_counts(messages).len()
}

#[cfg(unix)]
fn assert_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut pending = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                pending.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    assert!(files >= 2, "a state file and a token file at least");
}

#[cfg(not(unix))]
fn assert_private(_dir: &std::path::Path) {}
