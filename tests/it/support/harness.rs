//! The bridge running inside the test process, wired as `run` wires it, and its configuration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::broker::free_port;
use meter2mqtt::config::Config;

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
        sinks: Vec<Arc<dyn meter2mqtt::sink::SinkFactory>>,
    ) -> TestBridge {
        TestBridge::start_at(config, providers, sinks, meter2mqtt::clock::system_clock())
    }

    /// Like [`TestBridge::start`], with the MQTT sink's sense of "now" (which interval of a
    /// price is shown) read from `clock`.
    pub fn start_at(
        config: &Config,
        providers: Vec<meter2mqtt::providers::SharedProvider>,
        sinks: Vec<Arc<dyn meter2mqtt::sink::SinkFactory>>,
        clock: meter2mqtt::clock::SharedClock,
    ) -> TestBridge {
        use meter2mqtt::bridge::Bridge;
        let store = meter2mqtt::state::StateStore::open(&config.state.dir).unwrap();
        let (mqtt, mqtt_sinks) = meter2mqtt::cli::wiring::start_mqtt(config, store, clock);
        let mut bridge = Bridge::new(config.bridge.clone(), providers).with_sink(Arc::new(mqtt_sinks));
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

    /// `(published on MQTT, errors)` of the next finished poll.
    pub async fn next_poll(&mut self) -> (usize, usize) {
        use meter2mqtt::bridge::BridgeEvent;
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), self.events.recv())
                .await
                .expect("a poll in time")
            {
                Ok(event @ BridgeEvent::PollFinished { .. }) => {
                    let BridgeEvent::PollFinished { errors, .. } = event;
                    return (event.delivered_to(meter2mqtt::mqtt::SINK), errors);
                }
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
