//! The app image as the Supervisor starts it: the image's own entrypoint and command, `/data`
//! holding `options.json`, `SUPERVISOR_TOKEN` in the environment, and on the host a fake
//! Supervisor (MQTT service, Home Assistant's websocket through its proxy), fake ElOverblik and
//! Enectiva APIs and mosquitto. `.ci/addon-image.sh` builds the image and runs these tests with
//! `ADDON_IMAGE` naming it; they are ignored in a plain `cargo test`, which has no image.
//!
//! `SUPERVISOR_URL` points the app at the fake Supervisor's loopback port; the real Supervisor
//! never sets it, so the app asks `http://supervisor` there.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::{Days, Utc};
use serde_json::{json, Value};

use crate::support::addon::{proxying_supervisor, MQTT_PASSWORD, REFRESH_TOKEN, SECRETS, SUPERVISOR_TOKEN};
use crate::support::collector::reading_counts;
use crate::support::enectiva::{FakeEnectiva, CUSTOMER, LOGIN};
use crate::support::fake_ha::FakeHa;
use crate::support::generated_datahub::{danish_today, point_id, quarters_between, start_fake_eloverblik};
use crate::support::image::{image, memory_kib, Container};
use crate::support::{unsafe_kill, Broker, Collector, Proc};

const WAIT: Duration = Duration::from_secs(120);
const POINTS: usize = 2;
const ENECTIVA_METER: &str = "4711";
const ENECTIVA_HOURS: usize = 24;

async fn fake_enectiva(first_hour: chrono::DateTime<Utc>) -> FakeEnectiva {
    let fake = FakeEnectiva::start(Utc::now()).await;
    let registers: Vec<f64> = (0..=ENECTIVA_HOURS).map(|i| 1000.0 + i as f64 * 0.5).collect();
    fake.serve_one_meter(first_hour, &registers).await;
    fake
}

/// Every directory below `dir` (itself included) and every file, with its permission bits.
fn modes(dir: &Path, out: &mut Vec<(String, bool, u32)>) {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    out.push((dir.display().to_string(), true, meta.permissions().mode() & 0o777));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modes(&path, out);
        } else {
            let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777;
            out.push((path.display().to_string(), false, mode));
        }
    }
}

fn assert_no_secret_in(what: &str, text: &str) {
    for secret in SECRETS.iter().chain([&LOGIN]) {
        assert!(!text.contains(secret), "a secret reached the {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image that .ci/addon-image.sh builds and names in ADDON_IMAGE"]
async fn the_image_publishes_both_providers_keeps_private_state_and_stops_on_sigterm() {
    let broker = Broker::start().await;
    let ha = FakeHa::start("2026.11.1", SUPERVISOR_TOKEN).await;
    let supervisor = proxying_supervisor(broker.port, &ha).await;

    // Three Danish days of quarter hours from a fixed `today`, as the endurance scenario does.
    let today = danish_today();
    let from = today.checked_sub_days(Days::new(3)).unwrap();
    let datahub = start_fake_eloverblik(POINTS, today).await;
    let first_hour = from.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let enectiva = fake_enectiva(first_hour).await;

    // The Supervisor writes the options; the modes are its, not yet the app's.
    let data = tempfile::tempdir().unwrap();
    let options = json!({
        "eloverblik": [{"refresh_token": REFRESH_TOKEN, "name": "home", "base_url": datahub.uri(), "prices": false}],
        "enectiva": [{"customer_uuid": CUSTOMER, "login_token": LOGIN, "name": "flat", "base_url": enectiva.server.uri()}],
        "poll_interval_minutes": 60,
        "history_start": from.to_string(),
        "statistics": true,
        "statistics_cost": false,
        "log_level": "info"
    });
    let options_file = data.path().join("options.json");
    std::fs::write(&options_file, options.to_string()).unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&options_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut observer = rumqttc::MqttOptions::new("image-observer", "127.0.0.1", broker.port);
    observer.set_credentials("addons", MQTT_PASSWORD);
    let collector = Collector::connect_with(observer, &["#"]).await;

    let container = Container::of(&image());
    let supervisor_url = format!("http://127.0.0.1:{supervisor}");
    let mut run = container.start(
        data.path(),
        &[
            ("SUPERVISOR_TOKEN", SUPERVISOR_TOKEN),
            ("SUPERVISOR_URL", &supervisor_url),
        ],
    );
    let pid = run.program_pid().await;

    let eloverblik_quarters = quarters_between(from, today) as usize;
    let readings_topic = |provider: &str, meter: &str| format!("meter2mqtt/{provider}/{meter}/readings");
    let mut expected: Vec<(String, usize)> = (0..POINTS)
        .map(|i| (readings_topic("eloverblik", &point_id(i)), eloverblik_quarters))
        .collect();
    expected.push((readings_topic("enectiva", ENECTIVA_METER), ENECTIVA_HOURS));
    let per_topic = |messages: &[crate::support::Message]| {
        let counts = reading_counts(messages);
        expected
            .iter()
            .map(|(topic, _)| counts.keys().filter(|(t, _)| t == topic).count())
            .collect::<Vec<_>>()
    };
    let wanted: Vec<usize> = expected.iter().map(|(_, n)| *n).collect();
    let mut meters: Vec<(&str, String)> = (0..POINTS).map(|i| ("eloverblik", point_id(i))).collect();
    meters.push(("enectiva", ENECTIVA_METER.to_owned()));
    let config_topics: Vec<String> = meters
        .iter()
        .map(|(provider, meter)| format!("homeassistant/sensor/meter2mqtt_{provider}_{meter}_latest/config"))
        .collect();
    let configs = |messages: &[crate::support::Message]| {
        config_topics
            .iter()
            .filter_map(|topic| messages.iter().find(|m| &m.topic == topic && !m.payload.is_empty()))
            .map(|m| serde_json::from_str::<Value>(&m.payload).unwrap())
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let messages = collector.messages();
        if per_topic(&messages) == wanted && configs(&messages).len() == config_topics.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readings per topic {:?} (wanted {wanted:?}), {} of {} discovery configs; the app's log:\n{}",
            per_topic(&messages),
            configs(&messages).len(),
            config_topics.len(),
            run.proc.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(
        reading_counts(&collector.messages()).values().all(|&n| n == 1),
        "every interval arrives once"
    );
    // Home Assistant, subscribing later, gets the configs from the broker: they are retained.
    let late = Collector::connect(broker.port, "late-home-assistant", &["homeassistant/#"], false).await;
    late.wait_until(Duration::from_secs(10), "retained discovery configs", |m| {
        m.iter().all(|m| m.retain) && configs(m).len() == config_topics.len()
    })
    .await;
    for config in configs(&late.messages()) {
        assert_eq!(
            config["device"]["identifiers"].as_array().map(Vec::len),
            Some(1),
            "{config}"
        );
        assert_eq!(
            config["availability"][0]["topic"], "meter2mqtt/bridge/availability",
            "{config}"
        );
    }

    // Statistics reach Home Assistant through the Supervisor's websocket proxy.
    let statistic = format!("meter2mqtt:enectiva_{ENECTIVA_METER}_consumption");
    let deadline = tokio::time::Instant::now() + WAIT;
    while ha.rows(&statistic).len() < ENECTIVA_HOURS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "statistics through the Supervisor's proxy:\n{}",
            run.proc.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The state store is /data, private: the app tightens what the Supervisor left open.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !data.path().join("enectiva-flat.json").exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no state file:\n{}",
            run.proc.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut entries = Vec::new();
    modes(data.path(), &mut entries);
    assert!(entries.len() > 3, "state files under /data: {entries:?}");
    for (path, is_dir, mode) in &entries {
        let wanted = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{path} has mode {mode:o}");
    }

    // Idle: everything delivered, waiting for the next poll.
    let (rss, peak) = memory_kib(pid);
    println!("idle memory of the program in the image: VmRSS {rss} KiB, VmHWM {peak} KiB");

    // `docker stop`: SIGTERM to the container's first process.
    unsafe_kill(pid, "TERM");
    assert_eq!(
        run.proc.wait_exit(Duration::from_secs(30)).await,
        0,
        "{}",
        run.proc.text()
    );
    collector
        .wait_until(Duration::from_secs(10), "offline", |m| {
            m.iter()
                .rev()
                .find(|m| m.topic == "meter2mqtt/bridge/availability")
                .is_some_and(|m| m.payload == "offline")
        })
        .await;
    let log = run.proc.text();
    assert_no_secret_in("log", &log);
    for m in collector.messages() {
        assert_no_secret_in("broker", &m.payload);
    }
}

/// What the program wrote, with the options file's path as it saw it replaced by `OPTIONS`.
fn lines(output: &str, options_path: &str) -> Vec<String> {
    output.lines().map(|l| l.replace(options_path, "OPTIONS")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image that .ci/addon-image.sh builds and names in ADDON_IMAGE"]
async fn bad_options_stop_the_image_with_the_message_run_addon_gives_outside() {
    let env = [
        ("SUPERVISOR_TOKEN", SUPERVISOR_TOKEN),
        ("SUPERVISOR_URL", "http://127.0.0.1:9"),
    ];
    let container = Container::of(&image());
    for (bad, named) in [
        (
            json!({"eloverblik": [{"refresh_token": ""}], "poll_interval_minutes": 1}).to_string(),
            "eloverblik[0].refresh_token",
        ),
        (
            r#"{"eloverblik": [{"refresh_token": "x"}]"#.to_owned(),
            "not a JSON object",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let options_file = data.path().join("options.json");
        std::fs::write(&options_file, &bad).unwrap();

        let outside_path = options_file.to_str().unwrap();
        let mut outside = Proc::spawn(&["run", "--addon", "--options", outside_path], &env);
        let outside_code = outside.wait_exit(WAIT).await;
        let expected = lines(&outside.text(), outside_path);
        assert_eq!(outside_code, 2, "{expected:?}");
        assert!(expected.iter().any(|l| l.contains(named)), "{expected:?}");

        let mut inside = container.start(data.path(), &env);
        let inside_code = inside.proc.wait_exit(WAIT).await;
        let got = lines(&inside.proc.text(), "/data/options.json");
        assert_eq!(inside_code, outside_code, "{got:?}");
        // buildah adds its own line about the exit status after the program's.
        assert!(
            got.windows(expected.len()).any(|w| w == expected),
            "inside the image:\n{got:#?}\noutside:\n{expected:#?}"
        );
    }
}
