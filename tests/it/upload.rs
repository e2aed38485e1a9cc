//! Uploads from Home Assistant (entities, statistics) into a fake Enectiva import API: live ticks
//! sent once and in order, outages drained in order, refused records and tokens, history and
//! profiles from statistics, restarts that lose nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use meter2mqtt::config::{Config, HomeAssistantConfig};
use meter2mqtt::http::RetryPolicy;
use meter2mqtt::mqtt::MqttHandle;
use meter2mqtt::providers::enectiva::{ImportClient, ImportOptions, Settings};
use meter2mqtt::providers::upload::{RecordKind, UploadSeries, Uploads};
use meter2mqtt::secret::Secret;
use meter2mqtt::state::StateStore;
use meter2mqtt::upload::{Ticks, UploadRun, Uploader};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::support::enectiva::import::{FakeImport, Received, IMPORT_TOKEN};
use crate::support::enectiva::{at, RecordingSleeper, TestClock, CUSTOMER};
use crate::support::fake_ha::{EntityHour, FakeHa};
use crate::support::logs::Logs;
use crate::support::{Broker, Collector};

const HA_TOKEN: &str = "ha-token-upload";
const ENTITY: &str = "sensor.heat_meter_energy";

fn series(import_id: &str, kind: RecordKind, entity: &str) -> UploadSeries {
    UploadSeries {
        entity: Some(entity.into()),
        topic: None,
        value: None,
        import_id: import_id.into(),
        suit: "default".into(),
        kind,
        unit: None,
        interval: Duration::from_secs(900),
    }
}

fn account(api: &FakeImport, token: &str) -> Settings {
    Settings {
        name: Some("house".into()),
        customer_uuid: CUSTOMER.into(),
        login_token: None,
        import_token: Some(Secret::new(token)),
        base_url: api.uri(),
        include_deactivated: false,
        upload: Vec::new(),
        import_requests_per_minute: 6000,
    }
}

/// One request retried once without waiting, then the upload loop's own short waits.
fn options() -> ImportOptions {
    ImportOptions {
        policy: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        sleeper: Arc::new(RecordingSleeper::default()),
        timeout: Duration::from_millis(800),
    }
}

fn outage() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(80),
        randomization_factor: 0.0,
        max_retries: u32::MAX,
        ..RetryPolicy::default()
    }
}

struct Rig {
    ha: FakeHa,
    api: FakeImport,
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    ticks: broadcast::Sender<DateTime<Utc>>,
    uploader: Option<Uploader>,
}

impl Rig {
    async fn new(now: DateTime<Utc>) -> Rig {
        let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
        let api = FakeImport::start().await;
        Rig {
            ha,
            api,
            dir: tempfile::tempdir().unwrap(),
            clock: TestClock::new(now),
            ticks: broadcast::channel(64).0,
            uploader: None,
        }
    }

    async fn start(&mut self, token: &str, all: Vec<UploadSeries>) {
        self.start_with(token, all, None).await;
    }

    async fn start_with(&mut self, token: &str, all: Vec<UploadSeries>, mqtt: Option<MqttHandle>) {
        let store = StateStore::open(self.dir.path()).unwrap();
        let importer = ImportClient::new(
            &account(&self.api, token),
            Secret::new(token),
            "house".into(),
            options(),
        )
        .unwrap();
        let uploads = vec![Uploads {
            importer: Arc::new(importer),
            series: all,
        }];
        let run = UploadRun {
            clock: self.clock.clone(),
            ticks: Ticks::Manual(self.ticks.clone()),
            outage: outage(),
        };
        let uploader = meter2mqtt::cli::wiring::start_uploads(&self.config(), uploads, mqtt, store, run)
            .await
            .unwrap();
        self.uploader = Some(uploader);
        self.settle().await;
    }

    /// The configuration the uploads run with: this Home Assistant, history from the clock's
    /// day, two days of look-back.
    fn config(&self) -> Config {
        let mut config = crate::support::config(crate::support::free_port(), self.dir.path());
        config.homeassistant = Some(HomeAssistantConfig {
            url: self.ha.url(),
            token: Some(Secret::new(HA_TOKEN)),
            statistics: false,
            cost: false,
        });
        config.bridge.history_start = Some(self.clock.now_date());
        config.bridge.lookback = Duration::from_secs(2 * 86400);
        config
    }

    /// Lets what Home Assistant sent reach the sources.
    async fn settle(&self) {
        if let Some(uploader) = &self.uploader {
            uploader.settle().await;
        }
    }

    async fn state(&self, state: &str) {
        self.ha.set_state(ENTITY, state, Some("MWh"));
        self.settle().await;
    }

    fn tick(&self, time: &str) {
        self.clock.set(at(time));
        self.ticks.send(at(time)).unwrap();
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let received = self.api.received();
            if done(&received) {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {what}; received {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(uploader) = self.uploader.take() {
            uploader.shutdown().await;
        }
    }
}

fn times(received: &[Received], status: u16) -> Vec<&str> {
    received
        .iter()
        .filter(|r| r.status == status)
        .map(|r| r.time.as_str())
        .collect()
}

#[tokio::test]
async fn every_tick_is_sent_once_in_order_and_non_numeric_states_are_skipped() {
    let (logs, _capturing) = Logs::capture();
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "1000.25", Some("MWh"));
    rig.start(IMPORT_TOKEN, vec![series("heat-main", RecordKind::Reading, ENTITY)])
        .await;

    rig.tick("2026-03-02T10:00:00Z");
    rig.tick("2026-03-02T10:00:00Z");
    rig.wait_for("the first tick", |r| r.len() == 1).await;
    rig.state("1000.5").await;
    rig.tick("2026-03-02T10:15:00Z");
    rig.wait_for("the second tick", |r| r.len() == 2).await;
    rig.state("unavailable").await;
    rig.tick("2026-03-02T10:30:00Z");
    rig.state("1001").await;
    rig.tick("2026-03-02T10:45:00Z");
    // Not on the grid of a 15-minute series.
    rig.tick("2026-03-02T10:50:00Z");
    let received = rig.wait_for("the fourth tick", |r| r.len() == 3).await;
    rig.stop().await;

    assert_eq!(
        times(&received, 201),
        ["2026-03-02T10:00:00Z", "2026-03-02T10:15:00Z", "2026-03-02T10:45:00Z"]
    );
    assert_eq!(
        received.iter().map(|r| r.value).collect::<Vec<_>>(),
        [1000.25, 1000.5, 1001.0]
    );
    assert_eq!(rig.api.received().len(), 3, "nothing sent twice");
    let text = logs.text();
    assert!(text.contains("not a number"), "{text}");
    assert!(
        !text.contains(IMPORT_TOKEN) && !text.contains(HA_TOKEN),
        "no secret in the log"
    );
}

#[tokio::test]
async fn an_hour_long_outage_is_drained_in_order_afterwards() {
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "10", Some("kWh"));
    rig.start(IMPORT_TOKEN, vec![series("heat-main", RecordKind::Reading, ENTITY)])
        .await;
    // Down for the first requests: 503s, a 429, answers slower than the client waits.
    let slow = Duration::from_secs(2);
    rig.api.script(&[
        (503, Duration::ZERO),
        (500, Duration::ZERO),
        (429, Duration::ZERO),
        (503, slow),
        (502, Duration::ZERO),
        (503, Duration::ZERO),
        (503, Duration::ZERO),
    ]);
    for (quarter, value) in ["10", "11", "12", "13", "14"].iter().enumerate() {
        rig.state(value).await;
        rig.tick(&(at("2026-03-02T10:00:00Z") + TimeDelta::minutes(15 * quarter as i64)).to_rfc3339());
    }
    let received = rig.wait_for("every tick after the outage", |r| r.len() == 5).await;
    rig.stop().await;
    assert_eq!(
        times(&received, 201),
        [
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:15:00Z",
            "2026-03-02T10:30:00Z",
            "2026-03-02T10:45:00Z",
            "2026-03-02T11:00:00Z"
        ]
    );
    assert_eq!(
        received.iter().map(|r| r.value).collect::<Vec<_>>(),
        [10.0, 11.0, 12.0, 13.0, 14.0]
    );
}

#[tokio::test]
async fn a_refused_record_is_counted_and_passed_and_a_duplicate_counts_as_stored() {
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "-5", Some("kWh"));
    // Enectiva already holds 10:15 (an earlier upload whose answer was lost).
    rig.start(IMPORT_TOKEN, vec![series("heat-main", RecordKind::Reading, ENTITY)])
        .await;
    rig.tick("2026-03-02T10:00:00Z");
    rig.wait_for("the refused record", |r| r.len() == 1).await;
    rig.api.seed("readings", "heat-main", at("2026-03-02T10:15:00Z"), 7.0);
    rig.state("7").await;
    rig.tick("2026-03-02T10:15:00Z");
    rig.state("8").await;
    rig.tick("2026-03-02T10:30:00Z");
    let received = rig.wait_for("the next records", |r| r.len() == 3).await;
    rig.stop().await;
    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 409, 201], "{received:#?}");
    let journal = std::fs::read_dir(rig.dir.path().join("upload")).unwrap().count();
    assert_eq!(journal, 1, "one outbox for the series");
}

#[tokio::test]
async fn a_refused_import_token_stops_the_account_and_says_which_token() {
    let (logs, _capturing) = Logs::capture();
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "5", Some("kWh"));
    rig.start(
        "wrong-token-91c4",
        vec![series("heat-main", RecordKind::Reading, ENTITY)],
    )
    .await;
    rig.tick("2026-03-02T10:00:00Z");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !logs.text().contains("import token was refused") {
        assert!(tokio::time::Instant::now() < deadline, "{}", logs.text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rig.tick("2026-03-02T10:15:00Z");
    rig.settle().await;
    rig.stop().await;
    let text = logs.text();
    assert!(
        text.contains("check import_token of this [[enectiva]] account"),
        "{text}"
    );
    assert!(!text.contains("wrong-token-91c4"), "the token is never logged: {text}");
    assert!(rig.api.received().is_empty());
    let requests = rig.api.server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "nothing is sent after the token was refused");
}

fn hours(from: &str, count: i64, state: impl Fn(i64) -> f64) -> Vec<EntityHour> {
    (0..count)
        .map(|h| EntityHour {
            start: at(from) + TimeDelta::hours(h),
            state: Some(state(h)),
            mean: Some(20.0 + h as f64),
            change: Some(1.5),
        })
        .collect()
}

#[tokio::test]
async fn history_fills_from_statistics_after_the_api_s_latest_and_profiles_follow_corrections() {
    let mut rig = Rig::new(at("2026-03-02T06:05:00Z")).await;
    // Six hours of statistics since midnight.
    rig.ha
        .set_hours(ENTITY, &hours("2026-03-02T00:00:00Z", 6, |h| 100.0 + h as f64));
    rig.ha
        .set_hours("sensor.outdoor", &hours("2026-03-02T00:00:00Z", 6, |_| 0.0));
    rig.ha.set_state(ENTITY, "106", Some("MWh"));
    // Enectiva has the readings up to 03:00 already.
    rig.api.seed("readings", "heat-main", at("2026-03-02T03:00:00Z"), 102.0);
    rig.start(
        IMPORT_TOKEN,
        vec![
            series("heat-main", RecordKind::Reading, ENTITY),
            series("outdoor", RecordKind::DataPoint, "sensor.outdoor"),
            series("heat-hourly", RecordKind::Profile, ENTITY),
        ],
    )
    .await;
    let received = rig.wait_for("the history", |r| r.len() == 3 + 6 + 6).await;
    let of = |collection: &str| -> Vec<(String, f64)> {
        received
            .iter()
            .filter(|r| r.collection == collection)
            .map(|r| (r.time.clone(), r.value))
            .collect()
    };
    assert_eq!(
        of("readings"),
        [
            ("2026-03-02T04:00:00Z".to_owned(), 103.0),
            ("2026-03-02T05:00:00Z".to_owned(), 104.0),
            ("2026-03-02T06:00:00Z".to_owned(), 105.0)
        ],
        "a reading per hour at the hour's end, after Enectiva's latest"
    );
    assert_eq!(
        of("data_points")[0],
        ("2026-03-02T00:00:00Z".to_owned(), 20.0),
        "the mean at the hour's start"
    );
    assert_eq!(of("profiles").len(), 6);

    // A live tick at 06:00 is the same time as the last history reading: not sent again.
    rig.tick("2026-03-02T06:00:00Z");
    // HA corrects the hour 02:00-03:00 and compiles 06:00-07:00.
    let mut corrected = hours("2026-03-02T02:00:00Z", 1, |_| 102.0);
    corrected[0].change = Some(4.0);
    rig.ha.set_hours(ENTITY, &corrected);
    rig.ha.set_hours(ENTITY, &hours("2026-03-02T06:00:00Z", 1, |_| 106.0));
    rig.tick("2026-03-02T07:00:00Z");
    let received = rig
        .wait_for("the corrected and the new profile", |r| {
            r.iter().filter(|r| r.collection == "profiles").count() == 8
        })
        .await;
    rig.stop().await;
    let profiles: Vec<(&str, f64)> = received
        .iter()
        .filter(|r| r.collection == "profiles")
        .skip(6)
        .map(|r| (r.time.as_str(), r.value))
        .collect();
    assert_eq!(profiles, [("2026-03-02T02:00:00Z", 4.0), ("2026-03-02T06:00:00Z", 1.5)]);
    let stored = rig.api.stored("profiles", "heat-hourly");
    assert_eq!(stored.len(), 7, "the same range re-posted updates it");
    assert_eq!(stored[2], (at("2026-03-02T02:00:00Z"), 4.0));
    assert!(
        received.iter().filter(|r| r.collection == "readings").count() <= 4,
        "never two readings at one time: {received:#?}"
    );
}

#[tokio::test]
async fn a_restart_mid_request_loses_nothing_and_repeats_at_most_one_record() {
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "1", Some("kWh"));
    rig.ha.set_state("sensor.water", "1", Some("m³"));
    let both = || {
        vec![
            series("heat-main", RecordKind::Reading, ENTITY),
            series("water", RecordKind::Reading, "sensor.water"),
        ]
    };
    rig.start(IMPORT_TOKEN, both()).await;
    // The API is slow: ticks queue up in the outboxes.
    rig.api.script(&[(503, Duration::from_millis(500)); 3]);
    for quarter in 0..6_i64 {
        let value = (quarter + 2).to_string();
        rig.ha.set_state("sensor.water", &value, Some("m³"));
        rig.state(&value).await;
        rig.tick(&(at("2026-03-02T10:00:00Z") + TimeDelta::minutes(15 * quarter)).to_rfc3339());
    }
    // Every tick is in its outbox (a tick not yet written when the process dies is lost).
    let queued = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir.join("upload"))
            .unwrap()
            .map(|f| {
                std::fs::read_to_string(f.unwrap().path())
                    .unwrap()
                    .matches("\"push\"")
                    .count()
            })
            .sum()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while queued(rig.dir.path()) < 12 {
        assert!(tokio::time::Instant::now() < deadline, "the ticks are queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // As kill -9 would: every task stops where it is, nothing is flushed or said.
    drop(rig.uploader.take());
    rig.start(IMPORT_TOKEN, both()).await;
    let received = rig.wait_for("every queued record", |r| r.len() >= 12).await;
    rig.stop().await;
    for import_id in ["heat-main", "water"] {
        let stored = rig.api.stored("readings", import_id);
        assert_eq!(stored.len(), 6, "{import_id}: every tick stored: {received:#?}");
        let repeated = received
            .iter()
            .filter(|r| r.import_id == import_id && r.status == 409)
            .count();
        assert!(repeated <= 1, "{import_id}: at most one record repeated: {received:#?}");
    }
}

/// Publishes `payload` on `topic` once, with a client of its own.
async fn publish(port: u16, topic: &str, payload: &str) {
    let mut options = rumqttc::MqttOptions::new(format!("upload-test-{}", std::process::id()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .unwrap();
    let acked = async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = eventloop.poll().await {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked)
        .await
        .expect("published");
}

#[tokio::test]
async fn a_topic_series_reads_its_pointer_skips_stale_values_and_its_sensor_shows_it() {
    let broker = Broker::start().await;
    let topic = "tele/heat/SENSOR";
    let mut mqtt_config = crate::support::config(broker.port, std::path::Path::new("unused"));
    mqtt_config.mqtt.client_id = format!("upload-bridge-{}", std::process::id());
    let mqtt = meter2mqtt::cli::wiring::start_mqtt_link(&mqtt_config, vec![topic.into()]);
    let watcher = Collector::connect(
        broker.port,
        "upload-watcher",
        &[
            "homeassistant/sensor/+/config",
            "meter2mqtt/enectiva/upload/+/state",
            "meter2mqtt/enectiva/upload/+/accepted",
        ],
        false,
    )
    .await;
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    let mut tasmota = series("heat-main", RecordKind::Reading, ENTITY);
    tasmota.entity = None;
    tasmota.topic = Some(topic.into());
    tasmota.value = Some("/ENERGY/Total".into());
    tasmota.unit = Some("kWh".into());
    rig.start_with(IMPORT_TOKEN, vec![tasmota], Some(mqtt.clone())).await;

    rig.clock.set(at("2026-03-02T10:00:00Z"));
    publish(
        broker.port,
        topic,
        r#"{"Time":"2026-03-02T10:00:00","ENERGY":{"Total":123.4}}"#,
    )
    .await;
    // The message reaches the source at some point after its PUBACK: tick until it has.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.api.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the topic's value was never sent"
        );
        rig.tick("2026-03-02T10:00:00Z");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Older than two intervals at 10:45: no record.
    rig.tick("2026-03-02T10:45:00Z");
    rig.clock.set(at("2026-03-02T11:00:00Z"));
    publish(broker.port, topic, r#"{"ENERGY":{"Total":"125.0"}}"#).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.api.received().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second value was never sent"
        );
        rig.tick("2026-03-02T11:00:00Z");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = rig.api.received();
    assert_eq!(times(&received, 201), ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"]);
    assert_eq!(received.iter().map(|r| r.value).collect::<Vec<_>>(), [123.4, 125.0]);

    watcher
        .wait_until(Duration::from_secs(10), "the series' sensor and state", |messages| {
            messages
                .iter()
                .any(|m| m.topic.ends_with("/state") && m.payload.contains("\"accepted\":\"2026-03-02T11:00:00Z\""))
        })
        .await;
    let messages = watcher.messages();
    let config = messages
        .iter()
        .find(|m| m.topic.starts_with("homeassistant/sensor/") && m.payload.contains("upload"))
        .expect("a discovery config");
    let config: Value = serde_json::from_str(&config.payload).unwrap();
    assert_eq!(config["name"], "Enectiva upload heat-main");
    assert_eq!(config["entity_category"], "diagnostic");
    assert_eq!(config["device_class"], "timestamp");
    // The timestamp sensor reads a topic that only ever carries a time, so it never renders None.
    let accepted_topic = config["state_topic"].as_str().unwrap();
    assert!(accepted_topic.ends_with("/accepted"), "{accepted_topic}");
    let accepted: Vec<&str> = messages
        .iter()
        .filter(|m| m.topic == accepted_topic)
        .map(|m| m.payload.as_str())
        .collect();
    assert_eq!(accepted.last(), Some(&"2026-03-02T11:00:00Z"), "{accepted:?}");
    assert!(accepted.iter().all(|t| t.starts_with("2026-03-02T")), "{accepted:?}");
    assert_eq!(
        config["json_attributes_topic"].as_str().map(|t| t.ends_with("/state")),
        Some(true)
    );
    let state = messages.iter().rev().find(|m| m.topic.ends_with("/state")).unwrap();
    let state: Value = serde_json::from_str(&state.payload).unwrap();
    assert_eq!(
        (state["pending"].as_u64(), state["refused"].as_u64()),
        (Some(0), Some(0))
    );
    rig.stop().await;
    mqtt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_command_sends_or_prints_history_and_check_shows_each_series() {
    let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
    ha.set_hours(ENTITY, &hours("2026-03-02T00:00:00Z", 6, |h| 100.0 + h as f64));
    ha.set_state(ENTITY, "106", Some("MWh"));
    ha.set_state("sensor.kitchen", "unavailable", None);
    let api = FakeImport::start().await;
    api.seed("readings", "heat-main", at("2026-03-02T03:00:00Z"), 102.0);
    let broker = meter2mqtt::test_support::EmbeddedBroker::start("127.0.0.1:0", Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let uploads = format!(
        "[[enectiva.upload]]\nentity = \"{ENTITY}\"\nimport_id = \"heat-main\"\n\
         [[enectiva.upload]]\nentity = \"sensor.kitchen\"\nimport_id = \"kitchen\"\ntype = \"data_point\"\n"
    );
    let config = binary_config(dir.path(), broker.port(), &ha, &api, "", &uploads);
    let wait = Duration::from_secs(30);

    let mut dry = crate::support::Proc::spawn(
        &[
            "upload",
            "--config",
            &config,
            "--series",
            "heat-main",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(dry.wait_exit(wait).await, 0, "{}", dry.text());
    let text = dry.text();
    assert!(text.contains("import_id,suit,type,time,to,value,unit"), "{text}");
    assert!(
        text.contains("heat-main,default,reading,2026-03-02T01:00:00Z,,100,"),
        "{text}"
    );
    assert!(
        text.contains("heat-main,default,reading,2026-03-02T06:00:00Z,,105,"),
        "{text}"
    );
    assert!(api.received().is_empty(), "a dry run sends nothing");

    let mut send = crate::support::Proc::spawn(
        &[
            "upload",
            "--config",
            &config,
            "--series",
            "heat-main",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
        ],
        &[],
    );
    assert_eq!(send.wait_exit(wait).await, 0, "{}", send.text());
    assert!(
        send.text().contains("heat-main: 5 stored, 1 already there, 0 refused"),
        "{}",
        send.text()
    );

    let mut check = crate::support::Proc::spawn(&["check", "--config", &config], &[]);
    assert_eq!(
        check.wait_exit(wait).await,
        1,
        "the kitchen sensor has no number: {}",
        check.text()
    );
    let text = check.text();
    for expected in [
        "Enectiva uploads, account 1: import token ok",
        "heat-main (reading): latest record 2026-03-02T06:00:00Z",
        "source: sensor.heat_meter_energy: 106 MWh",
        "kitchen (data_point): no record yet",
        "source: sensor.kitchen: FAILED: state \"unavailable\" is not a number",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert!(!text.contains(IMPORT_TOKEN) && !text.contains(HA_TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_history_upload_loses_nothing_and_repeats_at_most_one_record_per_series() {
    let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let start = midnight - TimeDelta::days(2);
    let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
    for entity in ["sensor.heat", "sensor.water"] {
        let rows: Vec<EntityHour> = (0..48)
            .map(|h| EntityHour {
                start: start + TimeDelta::hours(h),
                state: Some(h as f64),
                mean: None,
                change: None,
            })
            .collect();
        ha.set_hours(entity, &rows);
    }
    let api = FakeImport::start().await;
    api.set_delay(Duration::from_millis(15));
    let broker = meter2mqtt::test_support::EmbeddedBroker::start("127.0.0.1:0", Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config(
        dir.path(),
        broker.port(),
        &ha,
        &api,
        &format!("[bridge]\nhistory_start = \"{}\"\n", start.date_naive()),
        "import_requests_per_minute = 100000\n\
         upload = [{ entity = \"sensor.heat\", import_id = \"heat\", interval = \"1h\" }, \
         { entity = \"sensor.water\", import_id = \"water\", interval = \"1h\" }]\n",
    );
    let wait_for = |count: usize| {
        let api = api.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while api.received().len() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{count} records: {:#?}",
                    api.received()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut first = crate::support::Proc::spawn(&["run", "--config", &config], &[]);
    wait_for(30).await;
    crate::support::unsafe_kill(first.child.id(), "KILL");
    let _ = first.child.wait();
    let mut second = crate::support::Proc::spawn(&["run", "--config", &config], &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.stored("readings", "heat").len() + api.stored("readings", "water").len() < 96 {
        assert!(tokio::time::Instant::now() < deadline, "{}", second.text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for import_id in ["heat", "water"] {
        let stored: Vec<f64> = api.stored("readings", import_id).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            stored,
            (0..48).map(|h| h as f64).collect::<Vec<_>>(),
            "{import_id}: every hour, once"
        );
        let repeated = api
            .received()
            .iter()
            .filter(|r| r.import_id == import_id && r.status == 409)
            .count();
        assert!(
            repeated <= 1,
            "{import_id}: {repeated} records sent again: {}",
            second.text()
        );
    }
    assert_eq!(second.terminate(Duration::from_secs(30)).await, 0, "{}", second.text());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_slow_api() {
    let mut rig = Rig::new(at("2026-03-02T09:59:00Z")).await;
    rig.ha.set_state(ENTITY, "5", Some("kWh"));
    rig.start(IMPORT_TOKEN, vec![series("heat-main", RecordKind::Reading, ENTITY)])
        .await;
    // The API answers after 20 s, and then with a 503 the policy retries.
    rig.api.script(&[(503, Duration::from_secs(20)); 4]);
    rig.tick("2026-03-02T10:00:00Z");
    let posts = || async {
        let requests = rig.api.server.received_requests().await.unwrap_or_default();
        requests.iter().filter(|r| r.method.as_str() == "POST").count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while posts().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "a request is on its way");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = tokio::time::timeout(Duration::from_secs(5), rig.stop()).await;
    assert!(stopped.is_ok(), "the uploads stop without waiting for the answer");
    // The record is still queued for the next start.
    let journal = std::fs::read_dir(rig.dir.path().join("upload"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(std::fs::read_to_string(journal.path()).unwrap().contains("\"push\""));
}

/// A configuration file for the binary: the broker, this Home Assistant and import API, one
/// Enectiva account with `account` appended (its upload series), `bridge` before it.
fn binary_config(
    dir: &std::path::Path,
    port: u16,
    ha: &FakeHa,
    api: &FakeImport,
    bridge: &str,
    account: &str,
) -> String {
    let path = dir.join("config.toml");
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n{bridge}[state]\ndir = \"{state}\"\n\
         [homeassistant]\nurl = \"{ha}\"\ntoken = \"{HA_TOKEN}\"\nstatistics = false\n\
         [[enectiva]]\ncustomer_uuid = \"{CUSTOMER}\"\nimport_token = \"{IMPORT_TOKEN}\"\nbase_url = \"{api}\"\n{account}",
        state = dir.join("state").display(),
        ha = ha.url(),
        api = api.uri(),
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
