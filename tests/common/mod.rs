//! Shared test support: a real mosquitto broker when installed, a subscriber that records what
//! it receives, a provider the test scripts, and config builders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Notify;

use meter2mqtt::config::Config;
use meter2mqtt::model::{DeviceInfo, Direction, IntervalReading, Medium, Meter, Quality, TimeRange, Unit};
use meter2mqtt::providers::{Provider, ProviderError};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A mosquitto process on a free loopback port, with persistence so sessions survive restarts.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// `None` (and a line saying why) when mosquitto is not installed; CI installs it.
    pub fn start() -> Option<Mosquitto> {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(_) = binary else {
            if std::env::var_os("CI").is_some() {
                panic!("mosquitto is not installed but CI must run the real-broker tests");
            }
            eprintln!("SKIPPED: mosquitto is not installed (apt-get install mosquitto); real-broker test not run");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mosquitto {
            port: free_port(),
            dir,
            child: None,
        };
        m.spawn();
        Some(m)
    }

    fn binary() -> &'static str {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap()
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest none\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(Self::binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready when it accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    /// Graceful stop (SIGTERM): mosquitto saves sessions and queued messages.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), "TERM");
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

/// A subscriber recording every message; waits are event-driven with a timeout.
#[derive(Clone)]
pub struct Collector {
    pub client: AsyncClient,
    messages: Arc<Mutex<Vec<Message>>>,
    notify: Arc<Notify>,
}

impl Collector {
    /// `persistent`: a non-clean session, so messages published while it is away are queued.
    pub async fn connect(port: u16, id: &str, filters: &[&str], persistent: bool) -> Collector {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(!persistent);
        Self::connect_with(options, filters).await
    }

    pub async fn connect_with(mut options: MqttOptions, filters: &[&str]) -> Collector {
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let (m, n, c) = (messages.clone(), notify.clone(), client.clone());
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = c.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        m.lock().unwrap().push(Message {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        });
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .expect("subscribe in time")
            .unwrap();
        Collector {
            client,
            messages,
            notify,
        }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    pub fn on(&self, topic_suffix: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic.ends_with(topic_suffix))
            .collect()
    }

    /// Waits until `done` holds for the messages so far, or panics with `what` after `limit`.
    pub async fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&[Message]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if done(&self.messages.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                if done(&self.messages.lock().unwrap()) {
                    return;
                }
                panic!(
                    "timed out waiting for {what}; got {} messages",
                    self.messages.lock().unwrap().len()
                );
            }
        }
    }

    /// Every interval start on readings topics, with how often each arrived.
    pub fn reading_counts(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for m in self.on("/readings") {
            let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
            for r in v["readings"].as_array().unwrap() {
                *counts
                    .entry((m.topic.clone(), r["start"].as_str().unwrap().to_owned()))
                    .or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn clear(&self) {
        self.messages.lock().unwrap().clear();
    }
}

/// A provider whose data the test controls: hourly intervals of one meter up to a watermark.
#[derive(Clone)]
pub struct ScriptedProvider {
    pub first: DateTime<Utc>,
    pub until: Arc<Mutex<DateTime<Utc>>>,
    /// Added to the value of these interval starts (a correction).
    pub corrections: Arc<Mutex<BTreeMap<DateTime<Utc>, f64>>>,
    pub calls: Arc<Mutex<usize>>,
    /// Signalled after every readings call.
    pub fetched: Arc<Notify>,
    /// When false, the account no longer lists the meter.
    pub present: Arc<std::sync::atomic::AtomicBool>,
    /// When set, readings calls fail with this HTTP status (after retries).
    pub failing: Arc<Mutex<Option<u16>>>,
    /// The range of every readings call.
    pub ranges: Arc<Mutex<Vec<TimeRange>>>,
}

impl ScriptedProvider {
    pub fn new(first: DateTime<Utc>, hours: i64) -> Self {
        ScriptedProvider {
            first,
            until: Arc::new(Mutex::new(first + chrono::Duration::hours(hours))),
            corrections: Default::default(),
            calls: Default::default(),
            fetched: Default::default(),
            present: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            failing: Default::default(),
            ranges: Default::default(),
        }
    }

    pub fn advance(&self, hours: i64) {
        *self.until.lock().unwrap() += chrono::Duration::hours(hours);
    }

    pub fn value(&self, start: DateTime<Utc>) -> f64 {
        let base = ((start - self.first).num_hours() % 7) as f64 * 0.125 + 0.25;
        base + self.corrections.lock().unwrap().get(&start).copied().unwrap_or(0.0)
    }

    pub fn meter() -> Meter {
        Meter {
            provider: "scripted".into(),
            id: "m1".into(),
            name: "Scripted meter".into(),
            medium: Medium::Electricity,
            direction: Direction::Consumption,
            unit: Unit::KWh,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo::default(),
        }
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn account(&self) -> &str {
        "test"
    }
    async fn meters(&self) -> Result<Vec<Meter>, ProviderError> {
        if self.present.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(vec![Self::meter()])
        } else {
            Ok(vec![])
        }
    }
    async fn readings(&self, meter: &Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        self.ranges.lock().unwrap().push(range);
        if let Some(status) = *self.failing.lock().unwrap() {
            self.fetched.notify_one();
            return Err(ProviderError::Http(meter2mqtt::http::HttpError::Exhausted {
                api: "scripted",
                endpoint: "GET /readings".into(),
                attempts: 6,
                last: format!("HTTP {status}: unavailable"),
                last_status: Some(status),
            }));
        }
        let until = *self.until.lock().unwrap();
        let mut out = Vec::new();
        let mut start = self.first.max(range.start);
        while start + chrono::Duration::hours(1) <= until.min(range.end) {
            out.push(IntervalReading {
                start,
                end: start + chrono::Duration::hours(1),
                value: Some(self.value(start)),
                unit: meter.unit.clone(),
                quality: Quality::Measured,
                reading: None,
            });
            start += chrono::Duration::hours(1);
        }
        self.fetched.notify_one();
        Ok(out)
    }
}

pub fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

/// A config pointing at a local broker, fast polling, state in `state`.
pub fn config(port: u16, state: &Path) -> Config {
    let mut config = Config::default();
    config.mqtt.host = "127.0.0.1".into();
    config.mqtt.port = port;
    config.mqtt.client_id = format!("meter2mqtt-test-{}", free_port());
    config.bridge.poll_interval = Duration::from_secs(1);
    config.bridge.jitter = Duration::ZERO;
    config.bridge.history_start = Some(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
    config.state.dir = state.to_path_buf();
    config
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meter2mqtt"))
}

/// The bridge running in this process, as `run` wires it.
pub struct TestBridge {
    pub mqtt: meter2mqtt::mqtt::MqttHandle,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    events: tokio::sync::broadcast::Receiver<meter2mqtt::bridge::BridgeEvent>,
}

impl TestBridge {
    pub fn start(
        config: &Config,
        providers: Vec<meter2mqtt::providers::SharedProvider>,
        sinks: Vec<Arc<dyn meter2mqtt::bridge::ReadingSink>>,
    ) -> TestBridge {
        use meter2mqtt::bridge::Bridge;
        use meter2mqtt::mqtt::{MqttHandle, MqttSettings};
        let store = meter2mqtt::state::StateStore::open(&config.state.dir).unwrap();
        let mqtt = MqttHandle::start(MqttSettings::from_config(&config.mqtt, Bridge::subscriptions(config)));
        let mut bridge = Bridge::new(Arc::new(config.clone()), mqtt.clone(), store, providers);
        for sink in sinks {
            bridge = bridge.with_sink(sink);
        }
        let events = bridge.events();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(bridge.run(stop.clone()));
        TestBridge {
            mqtt,
            stop,
            task,
            events,
        }
    }

    /// `(published, errors)` of the next finished poll.
    pub async fn next_poll(&mut self) -> (usize, usize) {
        use meter2mqtt::bridge::BridgeEvent;
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), self.events.recv())
                .await
                .expect("a poll in time")
            {
                Ok(BridgeEvent::PollFinished { published, errors, .. }) => return (published, errors),
                Err(RecvError::Lagged(_)) => continue,
                Err(e) => panic!("bridge events closed: {e}"),
            }
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
        self.mqtt.shutdown().await;
    }
}

/// The binary as a separate process, its stdout and stderr collected line by line.
pub struct Proc {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("METER2MQTT_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, lines }
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub async fn wait_for_line(&self, what: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.lines.lock().unwrap().iter().filter(|l| l.contains(what)).count() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what:?} in:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process still running after {limit:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Proc {
    /// SIGTERM, then the exit code (it must come within `limit`).
    pub async fn terminate(&mut self, limit: Duration) -> i32 {
        unsafe_kill(self.child.id(), "TERM");
        self.wait_exit(limit).await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
