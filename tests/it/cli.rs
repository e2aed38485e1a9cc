//! The release-shaped binary, run as a user would: signals, last will, bad input of every kind,
//! and secrets that must never show.

use std::path::Path;
use std::time::Duration;

use crate::support::{free_port, unsafe_kill, Broker, Collector, Proc};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

const WAIT: Duration = Duration::from_secs(30);

fn write_config(dir: &Path, port: u16, extra: &str) -> String {
    let path = dir.join("config.toml");
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"m2m-{}\"\n[bridge]\npoll_interval = \"1h\"\njitter = \"0s\"\nhistory_start = \"2024-10-22\"\n[state]\ndir = \"{}\"\n[[sample]]\nstart = \"2024-10-22\"\ndays = 2\n{extra}",
        free_port(),
        dir.join("state").display()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_publishes_the_last_will_when_the_process_dies() {
    let broker = Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port, "");
    let collector = Collector::connect(broker.port, "lwt-observer", &["meter2mqtt/#"], false).await;
    let mut proc = Proc::spawn(&["run", "--config", &config], &[]);
    collector
        .wait_until(WAIT, "online", |m| m.iter().any(|m| m.payload == "online"))
        .await;
    proc.wait_for_line("poll finished", 1).await;
    unsafe_kill(proc.child.id(), "KILL");
    proc.wait_exit(WAIT).await;
    collector
        .wait_until(WAIT, "offline from the last will", |m| {
            m.iter()
                .rfind(|m| m.topic.ends_with("availability"))
                .is_some_and(|m| m.payload == "offline")
        })
        .await;

    // The state written before the kill holds: a new process re-delivers nothing.
    let proc = Proc::spawn(&["run", "--config", &config], &[]);
    proc.wait_for_line("poll finished", 1).await;
    assert!(proc.text().contains("published=0"), "{}", proc.text());
    let counts = collector.reading_counts();
    assert_eq!(counts.len(), 2 * 48);
    assert!(counts.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_publishes_offline_flushes_state_and_exits_zero() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port(), "");
    let collector = Collector::connect(broker.port(), "term-observer", &["meter2mqtt/#"], false).await;
    let mut proc = Proc::spawn(&["run", "--config", &config], &[]);
    proc.wait_for_line("poll finished", 1).await;
    unsafe_kill(proc.child.id(), "TERM");
    assert_eq!(proc.wait_exit(Duration::from_secs(5)).await, 0, "{}", proc.text());
    collector
        .wait_until(WAIT, "offline", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("availability") && m.payload == "offline")
        })
        .await;
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/sample-1.json")).unwrap()).unwrap();
    assert_eq!(state["meters"]["house"]["cursor"], "2024-10-23T22:00:00Z");
    assert_eq!(collector.reading_counts().len(), 2 * 48);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_retried_with_backoff_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), "");
    let mut proc = Proc::spawn(&["run", "--config", &config], &[]);
    proc.wait_for_line("cannot reach the MQTT broker", 3).await;
    assert!(proc.child.try_wait().unwrap().is_none(), "must keep running");
    let text = proc.text();
    assert!(
        text.contains("attempt=1") && text.contains("attempt=3"),
        "attempts are counted:\n{text}"
    );
    unsafe_kill(proc.child.id(), "TERM");
    assert_eq!(proc.wait_exit(Duration::from_secs(5)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_give_a_clear_error_without_the_password() {
    let broker = EmbeddedBroker::start(
        "127.0.0.1:0",
        BrokerOptions {
            credentials: Some(("user".into(), "right".into())),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port(), "");
    let config_text = std::fs::read_to_string(&config).unwrap().replace(
        "[mqtt]\n",
        "[mqtt]\nusername = \"user\"\npassword = \"wrong-pw-8812\"\n",
    );
    std::fs::write(&config, config_text).unwrap();
    let mut proc = Proc::spawn(&["run", "--config", &config, "--log-level", "trace"], &[]);
    proc.wait_for_line("rejected the user name or password", 2).await;
    assert!(!proc.text().contains("wrong-pw-8812"));
    unsafe_kill(proc.child.id(), "TERM");
    assert_eq!(proc.wait_exit(Duration::from_secs(5)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_a_log_line_or_an_mqtt_payload() {
    let password = "pw-sekret-3141";
    let broker = EmbeddedBroker::start(
        "127.0.0.1:0",
        BrokerOptions {
            credentials: Some(("user".into(), password.into())),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port(), "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            "[mqtt]\n",
            &format!("[mqtt]\nusername = \"user\"\npassword = \"{password}\"\n"),
        ),
    )
    .unwrap();
    let mut options = rumqttc::MqttOptions::new("secret-observer", "127.0.0.1", broker.port());
    options.set_credentials("user", password);
    let collector = Collector::connect_with(options, &["#"]).await;
    for format in ["text", "json"] {
        let mut proc = Proc::spawn(
            &[
                "run",
                "--config",
                &config,
                "--log-level",
                "trace",
                "--log-format",
                format,
            ],
            &[],
        );
        proc.wait_for_line("poll finished", 1).await;
        unsafe_kill(proc.child.id(), "TERM");
        assert_eq!(proc.wait_exit(Duration::from_secs(5)).await, 0);
        let logs = proc.text();
        assert!(logs.len() > 1000, "trace logging produced output");
        assert!(!logs.contains(password), "a log line shows the password");
    }
    collector.wait_until(WAIT, "some payloads", |m| m.len() > 10).await;
    assert!(collector
        .messages()
        .iter()
        .all(|m| !m.payload.contains(password) && !m.topic.contains(password)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_reported_moved_aside_and_only_the_look_back_window_read_again() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port(), "");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/sample-1.json"), "{\"meters\": {\"house\": ").unwrap();
    let collector = Collector::connect(broker.port(), "corrupt-observer", &["meter2mqtt/#"], false).await;
    let mut proc = Proc::spawn(&["run", "--config", &config], &[]);
    proc.wait_for_line("is corrupt", 1).await;
    proc.wait_for_line("poll finished", 1).await;
    assert!(proc.text().contains("Starting afresh from"), "{}", proc.text());
    let moved: Vec<_> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1);
    collector
        .wait_until(WAIT, "bridge state with the error", |m| {
            m.iter()
                .any(|m| m.topic.ends_with("bridge/state") && m.payload.contains("corrupt"))
        })
        .await;
    assert!(
        collector.on("/readings").is_empty(),
        "the sample's days are older than the look-back window: nothing published again"
    );
    unsafe_kill(proc.child.id(), "TERM");
    assert_eq!(proc.wait_exit(Duration::from_secs(5)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_state_directory_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let config = write_config(dir.path(), free_port(), "");
    let mut proc = Proc::spawn(
        &[
            "run",
            "--config",
            &config,
            "--set",
            &format!("state.dir={}", not_a_dir.display()),
        ],
        &[],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 3);
    assert!(proc.text().contains("state directory"), "{}", proc.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "[oops]\nx = 1\n");
    let mut proc = Proc::spawn(
        &["run", "--config", &config],
        &[("METER2MQTT_BRIDGE__LOOKBACK", "forever")],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 2);
    let text = proc.text();
    assert!(
        text.contains("oops") && text.contains("mqtt.port") && text.contains("METER2MQTT_BRIDGE__LOOKBACK"),
        "{text}"
    );

    let mut proc = Proc::spawn(&["run", "--config", "/no/such/file.toml"], &[]);
    assert_eq!(proc.wait_exit(WAIT).await, 2);
    assert!(proc.text().contains("does not exist"));

    let mut proc = Proc::spawn(&["run", "--set", "mqtt.port=1883"], &[]);
    assert_eq!(proc.wait_exit(WAIT).await, 2);
    assert!(proc.text().contains("no provider account"), "{}", proc.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_broker_and_meters() {
    let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port(), "");
    // Sample data that grows up to the last full hour, as a live meter's would.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace("days = 2\n", ""),
    )
    .unwrap();
    let mut proc = Proc::spawn(&["check", "--config", &config], &[]);
    assert_eq!(proc.wait_exit(WAIT).await, 0, "{}", proc.text());
    let text = proc.text();
    assert!(text.contains("mqtt broker") && text.contains(": ok"), "{text}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        text.contains("house")
            && (text.contains(&format!("data until: {today}")) || text.contains(&format!("data until: {yesterday}"))),
        "{text}"
    );

    let config = write_config(dir.path(), free_port(), "");
    let mut proc = Proc::spawn(&["check", "--config", &config], &[]);
    assert_eq!(proc.wait_exit(WAIT).await, 1);
    assert!(proc.text().contains("FAILED"), "{}", proc.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_prints_each_intervals_cost_with_cost() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), "");
    let args = [
        "fetch",
        "--config",
        &config,
        "--meter",
        "house",
        "--from",
        "2024-10-22",
        "--to",
        "2024-10-23",
        "--cost",
    ];
    let mut proc = Proc::spawn(&args, &[]);
    assert_eq!(proc.wait_exit(WAIT).await, 0, "{}", proc.text());
    let text = proc.text();
    assert!(
        text.contains("start,end,value,unit,quality,reading,cost,currency"),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 24);
    for row in rows {
        let start: chrono::DateTime<chrono::Utc> = row[0].parse().unwrap();
        let value: f64 = row[2].parse().unwrap();
        let cost: f64 = row[6].parse().unwrap();
        let expected = value * meter2mqtt::providers::sample::sample_price(start);
        assert!((cost - expected).abs() < 1e-6, "{row:?}: expected {expected}");
        assert_eq!(row[7], "DKK");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_prints_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), "");
    let mut proc = Proc::spawn(
        &[
            "fetch",
            "--config",
            &config,
            "--meter",
            "house",
            "--from",
            "2024-10-22",
            "--to",
            "2024-10-23",
        ],
        &[],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 0, "{}", proc.text());
    let text = proc.text();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("20")).collect();
    assert!(text.contains("start,end,value,unit,quality,reading"));
    assert_eq!(rows.len(), 24);
    assert!(
        rows[0].starts_with("2024-10-21T22:00:00Z,2024-10-21T23:00:00Z,"),
        "{}",
        rows[0]
    );

    let mut proc = Proc::spawn(
        &[
            "fetch",
            "--config",
            &config,
            "--meter",
            "gas",
            "--from",
            "2024-10-22",
            "--to",
            "2024-10-23",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 0);
    let json: serde_json::Value = serde_json::from_str(&proc.text()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 24);

    let mut proc = Proc::spawn(
        &[
            "fetch",
            "--config",
            &config,
            "--meter",
            "nope",
            "--from",
            "2024-10-22",
            "--to",
            "2024-10-23",
        ],
        &[],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 1);
    assert!(proc.text().contains("known meters: house, gas"), "{}", proc.text());

    let mut proc = Proc::spawn(
        &[
            "fetch",
            "--config",
            &config,
            "--meter",
            "house",
            "--from",
            "2024-10-23",
            "--to",
            "2024-10-23",
        ],
        &[],
    );
    assert_eq!(proc.wait_exit(WAIT).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_pipeline_and_exits_zero() {
    let mut proc = Proc::spawn(&["demo"], &[]);
    assert_eq!(proc.wait_exit(Duration::from_secs(60)).await, 0, "{}", proc.text());
    let text = proc.text();
    assert!(
        text.contains("Home Assistant would show 4 devices with 20 entities"),
        "{text}"
    );
    assert!(text.contains("169 intervals"), "{text}");
    // The price sensor shows the sample price of the current hour, and a day's cost is printed.
    let price = text
        .lines()
        .find(|l| l.contains("sensor.sample_house_price"))
        .unwrap_or_else(|| panic!("no price sensor:\n{text}"));
    assert!(price.contains("DKK/kWh") && !price.contains("unknown"), "{price}");
    // With the price tools' attributes, and a CO2 sensor on a device of its own.
    assert!(
        text.contains(
            "raw_today 24 slots, raw_tomorrow 24 (tomorrow_valid true), slot keys end/hour/price/start/value"
        ) || text.contains("raw_today 23 slots")
            || text.contains("raw_today 25 slots"),
        "{text}"
    );
    assert!(
        text.contains("Device: Energi Data Service DK1  [Energinet]  (via the meter2mqtt bridge)"),
        "{text}"
    );
    let co2 = text
        .lines()
        .find(|l| l.contains("sensor.energidataservice_dk1_co2_intensity"))
        .unwrap_or_else(|| panic!("no CO2 sensor:\n{text}"));
    assert!(
        co2.contains("g/kWh") && co2.contains("state_class measurement"),
        "{co2}"
    );
    let cost = text
        .lines()
        .find(|l| l.starts_with("cost of 2024-10-27 (Sample house electricity): "))
        .unwrap_or_else(|| panic!("no cost line:\n{text}"));
    assert!(cost.contains(" DKK for ") && cost.ends_with("over 25 hours"), "{cost}");
    assert!(text.contains("10-27:25"), "the autumn DST day has 25 hours:\n{text}");
    assert!(text.contains("bridge availability after shutdown: offline"), "{text}");
}
