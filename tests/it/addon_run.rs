//! The release-shaped binary as the add-on runs it: `run --addon` with nothing but an
//! options.json and a (fake) Supervisor that offers the MQTT service and proxies Home
//! Assistant's websocket, like the real one at http://supervisor.

use std::time::Duration;

use crate::support::addon::{proxying_supervisor, MQTT_PASSWORD, SUPERVISOR_TOKEN};
use crate::support::enectiva::{FakeEnectiva, CUSTOMER, LOGIN};
use crate::support::fake_ha::FakeHa;
use crate::support::{Collector, Proc};
use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_add_on_runs_with_nothing_but_its_options_and_the_supervisor() {
    let broker = EmbeddedBroker::start(
        "127.0.0.1:0",
        BrokerOptions {
            credentials: Some(("addons".into(), MQTT_PASSWORD.into())),
        },
    )
    .await
    .unwrap();
    let ha = FakeHa::start("2025.10.1", SUPERVISOR_TOKEN).await;
    let supervisor = proxying_supervisor(broker.port(), &ha).await;

    let fake = FakeEnectiva::start(chrono::Utc::now()).await;
    let start = crate::support::enectiva::at("2024-11-01T00:00:00Z");
    let values: Vec<f64> = (0..25).map(|i| 1000.0 + i as f64 * 0.5).collect();
    fake.serve_one_meter(start, &values).await;

    let data = tempfile::tempdir().unwrap();
    let options = data.path().join("options.json");
    std::fs::write(
        &options,
        json!({
            "eloverblik": [],
            "enectiva": [{"customer_uuid": CUSTOMER, "login_token": LOGIN, "name": "flat", "base_url": fake.server.uri()}],
            "poll_interval_minutes": 60,
            "history_start": "2024-11-01",
            "statistics": true,
            "statistics_cost": false,
            "log_level": "debug"
        })
        .to_string(),
    )
    .unwrap();

    let mut mqtt = rumqttc::MqttOptions::new("addon-observer", "127.0.0.1", broker.port());
    mqtt.set_credentials("addons", MQTT_PASSWORD);
    let collector = Collector::connect_with(mqtt, &["#"]).await;
    let env = [
        ("SUPERVISOR_URL", format!("http://127.0.0.1:{supervisor}")),
        ("SUPERVISOR_TOKEN", SUPERVISOR_TOKEN.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut proc = Proc::spawn(&["run", "--addon", "--options", options.to_str().unwrap()], &env);

    collector
        .wait_until(WAIT, "24 readings over MQTT", |m| {
            m.iter()
                .filter(|m| m.topic.ends_with("enectiva/4711/readings"))
                .map(|m| m.payload.matches("\"start\"").count())
                .sum::<usize>()
                == 24
        })
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while ha.rows("meter2mqtt:enectiva_4711_consumption").len() < 24 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "statistics through the Supervisor's proxy:\n{}",
            proc.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = ha.rows("meter2mqtt:enectiva_4711_consumption");
    assert!((rows.last().unwrap().sum.unwrap() - 12.0).abs() < 1e-9, "24 half-units");
    assert!(
        data.path().join("enectiva-flat.json").exists(),
        "state kept beside options.json"
    );

    assert_eq!(proc.terminate(Duration::from_secs(5)).await, 0);
    let log = proc.text();
    for secret in [SUPERVISOR_TOKEN, MQTT_PASSWORD, LOGIN] {
        assert!(!log.contains(secret), "the add-on log shows a secret");
    }
    assert!(collector
        .messages()
        .iter()
        .all(|m| !m.payload.contains(SUPERVISOR_TOKEN) && !m.payload.contains(LOGIN)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_stop_the_add_on_with_the_option_named() {
    let data = tempfile::tempdir().unwrap();
    let options = data.path().join("options.json");
    std::fs::write(
        &options,
        json!({"eloverblik": [{"refresh_token": ""}], "poll_interval_minutes": 1}).to_string(),
    )
    .unwrap();
    let env = [
        ("SUPERVISOR_URL", "http://127.0.0.1:9".to_owned()),
        ("SUPERVISOR_TOKEN", SUPERVISOR_TOKEN.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut proc = Proc::spawn(&["run", "--addon", "--options", options.to_str().unwrap()], &env);
    assert_eq!(proc.wait_exit(WAIT).await, 2);
    let log = proc.text();
    assert!(
        log.contains("poll_interval_minutes") && log.contains("eloverblik[0].refresh_token"),
        "{log}"
    );
}
