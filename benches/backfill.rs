//! A first-run backfill as a new user runs it: the release binary, `meter2mqtt run`, an empty
//! state directory and `history_start` D days back, against a fake ElOverblik serving N
//! quarter-hourly consumption points, publishing to a local broker.
//!
//! It measures, per scenario, how long it takes until every interval from `history_start` to
//! today has reached a subscriber on `meter2mqtt/eloverblik/+/readings` (and that none came
//! twice), the bridge's peak resident memory and I/O (from /proc), the state directory it leaves
//! behind and the API calls it made. Nothing leaves the machine: the API is a wiremock server in
//! this process, the broker is mosquitto when installed, else the crate's embedded broker.
//!
//! Run: `cargo bench --bench backfill` (2 and 50 points × 730 days), or pick one scenario with
//! `cargo bench --bench backfill -- --points 10 --days 365 --timeout-secs 600` (or the env
//! variables BACKFILL_POINTS, BACKFILL_DAYS, BACKFILL_TIMEOUT_SECS). BACKFILL_BROKER=embedded
//! uses the embedded broker even where mosquitto is installed.
//!
//! "seconds" runs from spawning the bridge to the last interval received; "first interval at s"
//! shows how much of that passes before anything is published (listing and fetching).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;

const DEFAULT_SCENARIOS: [Scenario; 2] = [Scenario { points: 2, days: 730 }, Scenario { points: 50, days: 730 }];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const READINGS_TOPIC: &str = "meter2mqtt/eloverblik/+/readings";
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Scenario {
    points: usize,
    days: u64,
}

struct Settings {
    scenarios: Vec<Scenario>,
    timeout: Duration,
}

/// Flags win over env variables. Unknown flags are ignored because `cargo bench` passes its own
/// (`--bench`) to harness-less benches.
fn settings() -> Settings {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, var: &str| -> Option<u64> {
        let from_args = args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned();
        let raw = from_args.or_else(|| std::env::var(var).ok())?;
        Some(
            raw.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{flag} / {var}: {raw:?} is not a number")),
        )
    };
    let points = value("--points", "BACKFILL_POINTS");
    let days = value("--days", "BACKFILL_DAYS");
    let scenarios = if points.is_none() && days.is_none() {
        DEFAULT_SCENARIOS.to_vec()
    } else {
        vec![Scenario {
            points: points.unwrap_or(DEFAULT_SCENARIOS[0].points as u64) as usize,
            days: days.unwrap_or(DEFAULT_SCENARIOS[0].days),
        }]
    };
    let timeout = value("--timeout-secs", "BACKFILL_TIMEOUT_SECS").map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    Settings { scenarios, timeout }
}

#[path = "support/child.rs"]
mod child;
#[path = "../tests/it/support/generated_datahub.rs"]
mod generated_datahub;
use child::{proc_field, stop};

use generated_datahub::{api_calls, danish_today, quarters_between, start_fake_eloverblik};

// ---------------------------------------------------------------------------------------------
// The broker

enum Broker {
    Mosquitto { child: Child, port: u16 },
    Embedded(EmbeddedBroker),
}

const MOSQUITTO: [&str; 3] = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"];

impl Broker {
    async fn start(dir: &Path) -> Broker {
        let embedded = std::env::var("BACKFILL_BROKER").is_ok_and(|b| b == "embedded");
        let mosquitto = MOSQUITTO.into_iter().find(|p| Path::new(p).exists());
        let Some(binary) = mosquitto.filter(|_| !embedded) else {
            let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
                .await
                .expect("starting the embedded broker");
            return Broker::Embedded(broker);
        };
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        // No queue limit: a subscriber that falls behind for a moment must not lose intervals
        // that the bridge rightly counts as delivered (the broker acknowledged them).
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\n"),
        )
        .expect("writing mosquitto.conf");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Broker::Mosquitto { child, port };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mosquitto exited at start ({status})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto did not listen on port {port}");
    }

    fn port(&self) -> u16 {
        match self {
            Broker::Mosquitto { port, .. } => *port,
            Broker::Embedded(b) => b.port(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Broker::Mosquitto { .. } => "mosquitto",
            Broker::Embedded(_) => "embedded (meter2mqtt::test_support)",
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Mosquitto { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// The subscriber

#[derive(Deserialize)]
struct Batch<'a> {
    meter: &'a str,
    readings: Vec<Item<'a>>,
}

/// The whole item is parsed so that a change of the payload contract shows up as malformed.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Item<'a> {
    start: &'a str,
    end: &'a str,
    value: Option<f64>,
    quality: &'a str,
    correction: bool,
}

#[derive(Default)]
struct Tally {
    received: u64,
    malformed: u64,
    meters: HashMap<String, u32>,
    seen: HashSet<(u32, i64)>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    fn record(&mut self, payload: &[u8]) {
        let Ok(batch) = serde_json::from_slice::<Batch>(payload) else {
            self.malformed += 1;
            return;
        };
        let next = self.meters.len() as u32;
        let meter = *self.meters.entry(batch.meter.to_owned()).or_insert(next);
        for item in &batch.readings {
            match DateTime::parse_from_rfc3339(item.start) {
                Ok(start) => {
                    self.received += 1;
                    self.seen.insert((meter, start.timestamp()));
                }
                Err(_) => self.malformed += 1,
            }
        }
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
}

struct Subscriber {
    /// Held so the event loop keeps its request channel.
    _client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
    tally: Arc<Mutex<Tally>>,
}

/// Subscribed (SubAck received) before it returns, so the bridge cannot publish unseen.
async fn subscribe(port: u16) -> Subscriber {
    let mut options = MqttOptions::new(format!("backfill-bench-{}", std::process::id()), "127.0.0.1", port);
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut events) = AsyncClient::new(options, 100);
    client
        .subscribe(READINGS_TOPIC, QoS::AtLeastOnce)
        .await
        .expect("queueing the subscription");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (subscribed, acked) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    let task_tally = tally.clone();
    let task = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => task_tally.lock().unwrap().record(&p.payload),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("  subscriber: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), acked)
        .await
        .expect("the broker acknowledged the subscription in time")
        .expect("the subscriber task is running");
    Subscriber {
        _client: client,
        task,
        tally,
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge under test

/// The one place that knows the config keys.
fn bridge_config(broker_port: u16, api_url: &str, history_start: NaiveDate, state_dir: &Path) -> String {
    // Debug quoting is a valid TOML basic string for any ordinary path.
    format!(
        r#"[mqtt]
host = "127.0.0.1"
port = {broker_port}

[bridge]
history_start = "{history_start}"
jitter = "0s"

[state]
dir = {state_dir:?}

[log]
level = "warn"

[[eloverblik]]
refresh_token = "bench"
base_url = "{api_url}"
charges = false
# Prices come from Energi Data Service on the internet; the benchmark needs no network.
prices = false
"#,
        state_dir = state_dir.display().to_string()
    )
}

fn spawn_bridge(config: &Path, log: &Path) -> Child {
    let log = File::create(log).expect("creating the bridge log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_meter2mqtt"));
    command
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cloning the log handle"))
        .stderr(log);
    // The caller's own settings would override the file and make runs incomparable.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("METER2MQTT_") {
            command.env_remove(key);
        }
    }
    command.spawn().expect("starting meter2mqtt")
}

/// Name and size of each file the bridge left in its (flat) state directory.
fn state_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map_or(0, |m| m.len()),
            )
        })
        .collect();
    files.sort();
    files
}

fn print_log_tail(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("  --- last lines of {} ---", log.display());
    for line in &lines[lines.len().saturating_sub(30)..] {
        eprintln!("  {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// One scenario

enum Outcome {
    Complete,
    TimedOut,
    Exited(std::process::ExitStatus),
}

struct Row {
    scenario: Scenario,
    outcome: Outcome,
    received: u64,
    distinct: u64,
    expected: u64,
    malformed: u64,
    first_seconds: Option<f64>,
    seconds: Option<f64>,
    peak_rss_kib: Option<u64>,
    write_bytes: Option<u64>,
    wchar: Option<u64>,
    state_bytes: u64,
    calls: String,
}

async fn run_scenario(scenario: Scenario, timeout: Duration) -> (Row, &'static str) {
    let dir = tempfile::Builder::new()
        .prefix("backfill-")
        // Beside the build, not in /tmp: /tmp may be a tmpfs, where the state writes would
        // neither count as disk I/O nor cost what they cost on a real disk.
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating a temp dir");
    let today = danish_today();
    let history_start = today - Days::new(scenario.days);
    let expected = scenario.points as u64 * quarters_between(history_start, today);

    let api = start_fake_eloverblik(scenario.points, today).await;
    let broker = Broker::start(dir.path()).await;
    let subscriber = subscribe(broker.port()).await;
    let state_dir = dir.path().join("state");
    let config = dir.path().join("meter2mqtt.toml");
    let log = dir.path().join("meter2mqtt.log");
    std::fs::write(
        &config,
        bridge_config(broker.port(), &api.uri(), history_start, &state_dir),
    )
    .expect("writing the config");

    eprintln!(
        "backfill: {} points × {} days from {history_start}, {expected} intervals expected, broker {}",
        scenario.points,
        scenario.days,
        broker.name()
    );
    let spawned = Instant::now();
    let mut child = spawn_bridge(&config, &log);
    let pid = child.id();
    let io = format!("/proc/{pid}/io");
    let mut next_progress = spawned + PROGRESS_EVERY;
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let distinct = subscriber.tally.lock().unwrap().seen.len() as u64;
        if distinct >= expected {
            break Outcome::Complete;
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Outcome::Exited(status);
        }
        if spawned.elapsed() > timeout {
            break Outcome::TimedOut;
        }
        if Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            let written = proc_field(&io, "write_bytes:").unwrap_or(0);
            eprintln!(
                "  {:>4.0} s: {distinct}/{expected} intervals, {:.0} MB written so far",
                spawned.elapsed().as_secs_f64(),
                written as f64 / 1e6
            );
        }
    };
    // Read while the process still exists: /proc forgets it on exit.
    let peak_rss_kib = proc_field(&format!("/proc/{pid}/status"), "VmHWM:");
    let write_bytes = proc_field(&io, "write_bytes:");
    let wchar = proc_field(&io, "wchar:");
    stop(&mut child);
    if !matches!(outcome, Outcome::Complete) {
        print_log_tail(&log);
    }
    let state = state_files(&state_dir);
    let listing: Vec<String> = state.iter().map(|(name, len)| format!("{name} {len} B")).collect();
    eprintln!("  state dir after the run: {}", listing.join(", "));

    let calls = api_calls(&api).await;
    // Dropping the connection rather than a DISCONNECT, which the event loop would report.
    subscriber.task.abort();
    let tally = subscriber.tally.lock().unwrap();
    let row = Row {
        scenario,
        outcome,
        received: tally.received,
        distinct: tally.seen.len() as u64,
        expected,
        malformed: tally.malformed,
        first_seconds: tally.first.map(|t| (t - spawned).as_secs_f64()),
        seconds: tally.last.map(|t| (t - spawned).as_secs_f64()),
        peak_rss_kib,
        write_bytes,
        wchar,
        state_bytes: state.iter().map(|(_, len)| len).sum(),
        calls,
    };
    (row, broker.name())
}

// ---------------------------------------------------------------------------------------------
// Report

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = proc_field("/proc/meminfo", "MemTotal:").map_or_else(String::new, |kib| {
        format!(", {:.1} GiB RAM", kib as f64 / (1 << 20) as f64)
    });
    format!("{cores} × {model}{memory}")
}

fn print_table(rows: &[Row], broker: &str) {
    let opt = |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    println!();
    println!("Machine: {}", machine());
    println!("Broker: {broker}");
    println!();
    println!("| scenario | outcome | intervals received / expected | duplicates | first interval at s | seconds | intervals/s | peak RSS MiB | MB written (write_bytes) | MB wchar | final state KB | API calls |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let outcome = match &row.outcome {
            Outcome::Complete => "complete".to_owned(),
            Outcome::TimedOut => "TIMED OUT".to_owned(),
            Outcome::Exited(status) => format!("EXITED ({status})"),
        };
        let malformed = if row.malformed > 0 {
            format!(" ({} malformed)", row.malformed)
        } else {
            String::new()
        };
        println!(
            "| {} points × {} days | {outcome} | {} / {}{malformed} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            row.scenario.points,
            row.scenario.days,
            row.received,
            row.expected,
            row.received - row.distinct,
            opt(row.first_seconds, 1),
            opt(row.seconds, 1),
            opt(row.seconds.map(|s| row.received as f64 / s), 0),
            opt(row.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
            opt(row.write_bytes.map(|b| b as f64 / 1e6), 0),
            opt(row.wchar.map(|b| b as f64 / 1e6), 0),
            row.state_bytes as f64 / 1e3,
            row.calls,
        );
    }
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut rows = Vec::new();
    let mut broker = "";
    for scenario in &settings.scenarios {
        let (row, name) = runtime.block_on(run_scenario(*scenario, settings.timeout));
        broker = name;
        rows.push(row);
    }
    print_table(&rows, broker);
}
