//! Enectiva end to end: fake API + real broker + the bridge. Four meters appear with the right
//! units and device classes, readings arrive once, a restart re-delivers nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::support::enectiva::{at, fixture, FakeEnectiva, Series};
use crate::support::{Broker, Collector, TestBridge};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

async fn one_poll(config: &meter2mqtt::Config, fake: &FakeEnectiva) -> usize {
    let mut bridge = TestBridge::start(config, vec![Arc::new(fake.provider())], vec![]);
    let (published, errors) = bridge.next_poll().await;
    assert_eq!(errors, 0);
    bridge.stop().await;
    published
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_meters_appear_with_units_and_classes_and_readings_arrive_once() {
    let broker = Broker::start().await;
    let fake = FakeEnectiva::start(at("2024-11-02T00:00:00Z")).await;
    let hourly = |base: f64, step: f64| -> Vec<f64> { (0..25).map(|i| base + step * i as f64).collect() };
    let start = at("2024-11-01T00:00:00Z");
    let hour = chrono::Duration::hours(1);
    fake.serve_any(
        &[
            ("/meters", fixture("meters.json")),
            ("/entities", fixture("entities.json")),
            ("/entities/88/deltas", fixture("entity_deltas.json")),
            ("/meters/4711/deltas", fixture("entity_deltas.json")),
            ("/meters/4712/deltas", serde_json::json!({"data": []})),
            ("/meters/4713/deltas", serde_json::json!({"data": []})),
            ("/meters/4714/deltas", serde_json::json!({"data": []})),
        ],
        vec![
            ("4711", Series::regular(start, hour, &hourly(123_000.0, 1.25))),
            ("4712", Series::regular(start, hour, &hourly(5_000.0, 0.5))),
            ("4713", Series::regular(start, hour, &hourly(800.0, 0.01))),
            ("4714", Series::regular(start, hour, &hourly(120.0, 0.02))),
        ],
    )
    .await;

    let state = tempfile::tempdir().unwrap();
    let mut config = crate::support::config(broker.port, state.path());
    config.bridge.history_start = Some(chrono::NaiveDate::from_ymd_opt(2024, 11, 1).unwrap());
    let collector = Collector::connect(broker.port, "enectiva-e2e", &["homeassistant/#", "meter2mqtt/#"], false).await;

    assert_eq!(one_poll(&config, &fake).await, 4 * 24);
    collector
        .wait_until(WAIT, "readings of four meters", |m| {
            m.iter()
                .filter(|m| m.topic.ends_with("/readings"))
                .map(|m| {
                    serde_json::from_str::<Value>(&m.payload).unwrap()["readings"]
                        .as_array()
                        .unwrap()
                        .len()
                })
                .sum::<usize>()
                == 4 * 24
        })
        .await;

    let main = |meter: &str| -> Value {
        let m = collector
            .on(&format!("meter2mqtt_enectiva_{meter}_latest/config"))
            .pop()
            .expect("main sensor config");
        serde_json::from_str(&m.payload).unwrap()
    };
    for (meter, unit, class) in [
        ("4711", "kWh", "energy"),
        ("4712", "m³", "gas"),
        ("4713", "m³", "water"),
        ("4714", "GJ", "energy"),
    ] {
        let config = main(meter);
        assert_eq!(config["unit_of_measurement"], unit, "{meter}");
        assert_eq!(config["device_class"], class, "{meter}");
        assert!(
            config.get("state_class").is_none(),
            "delayed interval values feed no statistics"
        );
        assert_eq!(config["device"]["suggested_area"], "Budova A");
    }
    let register: Value = serde_json::from_str(
        &collector
            .on("meter2mqtt_enectiva_4711_register/config")
            .pop()
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(register["state_class"], "total_increasing");
    assert_eq!(register["device_class"], "energy");

    // Consumption is the register's difference; the register travels beside it.
    let batch: Value = serde_json::from_str(&collector.on("enectiva/4711/readings")[0].payload).unwrap();
    let first = &batch["readings"][0];
    assert_eq!(first["start"], "2024-11-01T00:00:00Z");
    assert_eq!(first["value"], 1.25);
    assert_eq!(first["reading"], 123_001.25);

    assert_eq!(one_poll(&config, &fake).await, 0, "a restart re-delivers nothing");
    let counts = collector.reading_counts();
    assert_eq!(counts.len(), 4 * 24);
    assert!(counts.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_fetch_work_for_enectiva_meters() {
    use chrono::{DurationRound, TimeZone};
    let now = chrono::Utc::now();
    let fake = FakeEnectiva::start(now).await;
    let start = (now - chrono::Duration::days(3))
        .duration_trunc(chrono::Duration::days(1))
        .unwrap();
    let values: Vec<f64> = (0..73).map(|i| 500.0 + i as f64 * 0.25).collect();
    fake.serve_any(
        &[
            (
                "/meters",
                serde_json::json!({"data": [fixture("meters.json")["data"][0].clone()]}),
            ),
            ("/entities", fixture("entities.json")),
        ],
        vec![("4711", Series::regular(start, chrono::Duration::hours(1), &values))],
    )
    .await;
    let broker = meter2mqtt::test_support::EmbeddedBroker::start("127.0.0.1:0", Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n[state]\ndir = \"{}\"\n[[enectiva]]\ncustomer_uuid = \"{}\"\nlogin_token = \"{}\"\nbase_url = \"{}\"\n",
            broker.port(),
            dir.path().join("state").display(),
            crate::support::enectiva::CUSTOMER,
            crate::support::enectiva::LOGIN,
            fake.server.uri()
        ),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let out = std::process::Command::new(crate::support::bin())
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let config = config.display().to_string();
    let (code, text) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run(vec!["check".into(), "--config".into(), config])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{text}");
    let newest = (start + chrono::Duration::hours(72)).to_rfc3339();
    assert!(
        text.contains("enectiva account 1: ok, 1 meter(s)") && text.contains("4711") && text.contains(&newest),
        "{text}"
    );
    assert!(!text.contains(crate::support::enectiva::LOGIN));

    // One Prague day: the intervals that start in it.
    let day = start.with_timezone(&chrono_tz::Europe::Prague).date_naive() + chrono::Days::new(1);
    let (code, text) = tokio::task::spawn_blocking(move || {
        run(vec![
            "fetch".into(),
            "--config".into(),
            config,
            "--meter".into(),
            "4711".into(),
            "--from".into(),
            day.to_string(),
            "--to".into(),
            (day + chrono::Days::new(1)).to_string(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("20")).collect();
    let local_midnight = |d: chrono::NaiveDate| {
        chrono_tz::Europe::Prague
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let hours = (local_midnight(day + chrono::Days::new(1)) - local_midnight(day)).num_hours() as usize;
    assert_eq!(rows.len(), hours, "{text}");
    assert!(rows.iter().all(|r| r.contains(",0.25,kWh,measured,")), "{text}");
}
