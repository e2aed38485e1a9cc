//! A history upload as a user with many meters starts it: the release binary, `meter2mqtt run`,
//! an empty state directory, S series of Home Assistant entities with D days of hourly
//! statistics each, sent as readings to a fake Enectiva import API with the pace raised (the
//! default, 60 requests a minute, would take S × D × 24 minutes).
//!
//! It measures how long until every record reached the API (and that none came twice), records
//! per second, the bridge's peak resident memory (VmHWM) and the bytes it wrote (write_bytes of
//! /proc/<pid>/io), and the state directory it leaves. Nothing leaves the machine: Home
//! Assistant (websocket and statistics) and the API are fakes in this process, the broker is the
//! crate's embedded one.
//!
//! Run: `cargo bench --bench upload` (50 series × 90 days = 108 000 records), or
//! `cargo bench --bench upload -- --series 10 --days 30 --timeout-secs 600` (or UPLOAD_SERIES,
//! UPLOAD_DAYS, UPLOAD_TIMEOUT_SECS).

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as TimeDelta, Utc};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

#[path = "../tests/it/support/fake_ha.rs"]
#[allow(dead_code)]
mod fake_ha;

/// What the fake import API takes from its parent module in the tests.
const JSON_API: &str = "application/vnd.api+json";
const CUSTOMER: &str = "5123d8ef-b501-4c71-b188-83ac399d66b9";

#[path = "support/child.rs"]
mod child;
#[path = "../tests/it/support/enectiva/import.rs"]
#[allow(dead_code)]
mod import;
use child::{proc_field, stop};

use fake_ha::{EntityHour, FakeHa};
use import::{FakeImport, IMPORT_TOKEN};

const HA_TOKEN: &str = "bench-ha-token";

fn setting(flag: &str, var: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args
        .iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned();
    from_args
        .or_else(|| std::env::var(var).ok())
        .map(|raw| {
            raw.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{flag} / {var}: {raw:?} is not a number"))
        })
        .unwrap_or(default)
}

fn config(broker: u16, ha: &str, api: &str, series: u64, start: DateTime<Utc>, state: &Path) -> String {
    let mut text = format!(
        r#"[mqtt]
host = "127.0.0.1"
port = {broker}

[bridge]
history_start = "{start}"

[state]
dir = {state:?}

[log]
level = "warn"

[homeassistant]
url = "{ha}"
token = "{HA_TOKEN}"
statistics = false

[[enectiva]]
customer_uuid = "5123d8ef-b501-4c71-b188-83ac399d66b9"
import_token = "{IMPORT_TOKEN}"
base_url = "{api}"
import_requests_per_minute = 10000000
"#,
        start = start.date_naive(),
        state = state.display().to_string(),
    );
    for n in 0..series {
        text.push_str(&format!(
            "\n[[enectiva.upload]]\nentity = \"sensor.bench_{n}\"\nimport_id = \"bench-{n}\"\ntype = \"reading\"\nunit = \"kWh\"\ninterval = \"1h\"\n"
        ));
    }
    text
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let series = setting("--series", "UPLOAD_SERIES", 50);
    let days = setting("--days", "UPLOAD_DAYS", 90);
    let timeout = Duration::from_secs(setting("--timeout-secs", "UPLOAD_TIMEOUT_SECS", 1800));
    let hours = days as i64 * 24;
    // Whole days back from today's midnight: every hour of them has a statistic.
    let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let start = midnight - TimeDelta::days(days as i64);
    let expected = series * hours as u64;

    let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
    for n in 0..series {
        let rows: Vec<EntityHour> = (0..hours)
            .map(|h| EntityHour {
                start: start + TimeDelta::hours(h),
                state: Some(1000.0 + h as f64 * 0.5),
                mean: None,
                change: Some(0.5),
            })
            .collect();
        let entity = format!("sensor.bench_{n}");
        ha.set_hours(&entity, &rows);
        ha.set_state(&entity, &format!("{}", 1000.0 + hours as f64 * 0.5), Some("kWh"));
    }
    let api = FakeImport::start().await;
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .expect("starting the embedded broker");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("state");
    let config_path = dir.path().join("bench.toml");
    std::fs::write(
        &config_path,
        config(broker.port(), &ha.url(), &api.uri(), series, start, &state),
    )
    .unwrap();
    let log_path = dir.path().join("bridge.log");
    let log = File::create(&log_path).unwrap();

    eprintln!("upload: {series} series × {days} days of hourly statistics = {expected} records");
    let spawned = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_meter2mqtt"));
    command
        .args(["run", "--config"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("METER2MQTT_") {
            command.env_remove(key);
        }
    }
    let mut child = command.spawn().expect("starting meter2mqtt");
    let pid = child.id();
    let io = format!("/proc/{pid}/io");
    let mut first = None;
    let mut next_progress = spawned + Duration::from_secs(30);
    let complete = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let received = api.received().len() as u64;
        if received > 0 && first.is_none() {
            first = Some(spawned.elapsed());
        }
        if received >= expected {
            break true;
        }
        if child.try_wait().ok().flatten().is_some() || spawned.elapsed() > timeout {
            break false;
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(30);
            eprintln!(
                "  {:>4.0} s: {received}/{expected} records",
                spawned.elapsed().as_secs_f64()
            );
        }
    };
    let seconds = spawned.elapsed().as_secs_f64();
    let peak_rss_kib = proc_field(&format!("/proc/{pid}/status"), "VmHWM:").unwrap_or(0);
    let write_bytes = proc_field(&io, "write_bytes:").unwrap_or(0);
    let wchar = proc_field(&io, "wchar:").unwrap_or(0);
    stop(&mut child);
    if !complete {
        eprintln!("{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    }
    let received = api.received();
    let distinct: HashSet<(String, String)> = received.iter().map(|r| (r.import_id.clone(), r.time.clone())).collect();
    let stored: usize = received.iter().filter(|r| r.status == 201).count();
    let state_bytes: u64 = walk(&state);
    println!("| series | days | records | received | distinct | stored | seconds | first at s | records/s | peak RSS MiB | write_bytes MB | wchar MB | state dir KB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {series} | {days} | {expected} | {} | {} | {stored} | {seconds:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} |",
        received.len(),
        distinct.len(),
        first.map_or(f64::NAN, |f| f.as_secs_f64()),
        received.len() as f64 / seconds,
        peak_rss_kib as f64 / 1024.0,
        write_bytes as f64 / 1e6,
        wchar as f64 / 1e6,
        state_bytes as f64 / 1024.0,
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cpus} CPU(s); targets: peak RSS <= 32 MiB, write_bytes <= 16 MB");
    assert!(complete, "not every record arrived");
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}
