//! The bridge loop: one task per provider account polls, diffs against what was delivered,
//! publishes new and corrected intervals, and advances the cursor only after the broker's PUBACK.

mod diff;
mod retained;
mod sinks;
mod summary;
mod worker;

pub use diff::{pending, record, Pending};
pub use retained::Retained;
pub use sinks::hourly_prices;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::model::{IntervalReading, Meter, MeterValue};
use crate::mqtt::payloads::BridgeState;
use crate::mqtt::topics::Topics;
use crate::mqtt::{discovery, MqttEvent, MqttHandle};
use crate::providers::SharedProvider;
use crate::state::StateStore;

/// A second destination for readings (Home Assistant statistics). It keeps its own cursor, so
/// it fails, catches up and is idempotent independently of MQTT.
#[async_trait]
pub trait ReadingSink: Send + Sync {
    fn name(&self) -> &'static str;
    /// False when the sink cannot take anything until a restart (a refused token): it then must
    /// not make every poll re-read the whole history for it.
    fn active(&self) -> bool {
        true
    }
    /// Earliest interval start the sink still needs; `None`: everything from history start.
    async fn needs_from(&self, meter: &Meter) -> Option<DateTime<Utc>>;
    async fn deliver(&self, meter: &Meter, readings: &[IntervalReading], values: &[MeterValue]) -> Result<(), String>;
}

/// What happened, for the demo, tests and logs.
#[derive(Debug, Clone)]
pub enum BridgeEvent {
    PollFinished {
        provider: &'static str,
        account: String,
        meters: usize,
        published: usize,
        errors: usize,
    },
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub mqtt: MqttHandle,
    pub topics: Topics,
    pub store: StateStore,
    pub retained: Retained,
    pub sinks: Vec<Arc<dyn ReadingSink>>,
    pub events: broadcast::Sender<BridgeEvent>,
    pub bridge_state: Arc<Mutex<BridgeState>>,
}

pub struct Bridge {
    shared: Shared,
    providers: Vec<SharedProvider>,
}

impl Bridge {
    pub fn new(config: Arc<Config>, mqtt: MqttHandle, store: StateStore, providers: Vec<SharedProvider>) -> Self {
        let topics = Topics::new(&config.mqtt.base_topic, &config.mqtt.discovery_prefix);
        let (events, _) = broadcast::channel(256);
        let bridge_state = BridgeState {
            version: env!("CARGO_PKG_VERSION"),
            started: Utc::now(),
            meters: 0,
            accounts: providers.len(),
            last_error: None,
            last_error_at: None,
            meter_counts: Default::default(),
        };
        Bridge {
            shared: Shared {
                config,
                mqtt,
                topics,
                store,
                retained: Retained::default(),
                sinks: Vec::new(),
                events,
                bridge_state: Arc::new(Mutex::new(bridge_state)),
            },
            providers,
        }
    }

    pub fn with_sink(mut self, sink: Arc<dyn ReadingSink>) -> Self {
        self.shared.sinks.push(sink);
        self
    }

    pub fn events(&self) -> broadcast::Receiver<BridgeEvent> {
        self.shared.events.subscribe()
    }

    /// MQTT topics the connection must subscribe to for the bridge to work.
    pub fn subscriptions(config: &Config) -> Vec<String> {
        vec![format!("{}/status", config.mqtt.discovery_prefix)]
    }

    /// Runs until `shutdown` is cancelled. Polls stop at the next safe point: a batch already
    /// acknowledged is always recorded before the task ends.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        if shared.config.mqtt.discovery {
            for config in discovery::bridge_configs(&shared.topics) {
                shared
                    .retained
                    .publish(&shared.mqtt, config.topic.clone(), config.bytes());
            }
        }
        publish_bridge_state(&shared).await;

        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(republisher(shared.clone(), shutdown.clone()));
        for provider in self.providers {
            tasks.spawn(worker::AccountWorker::new(shared.clone(), provider).run(shutdown.clone()));
        }
        shutdown.cancelled().await;
        // Workers stop at their next safe point; a stuck one must not hold up the exit.
        let drained = tokio::time::timeout(Duration::from_secs(8), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some accounts did not stop in time; their last unacknowledged batch will be fetched again");
            tasks.abort_all();
        }
    }
}

pub(crate) async fn publish_bridge_state(shared: &Shared) {
    let payload = {
        let state = shared.bridge_state.lock().expect("bridge state lock");
        serde_json::to_vec(&*state).unwrap_or_default()
    };
    shared
        .retained
        .publish_if_changed(&shared.mqtt, shared.topics.bridge_state(), payload);
}

pub(crate) fn note_error(shared: &Shared, message: &str) {
    let mut state = shared.bridge_state.lock().expect("bridge state lock");
    state.last_error = Some(message.to_owned());
    state.last_error_at = Some(Utc::now());
}

/// Re-publishes every retained message after each reconnect, and after a short random delay
/// when Home Assistant announces itself `online` (so a restart of many HA clients is spread).
async fn republisher(shared: Shared, shutdown: CancellationToken) {
    let mut events = shared.mqtt.events();
    let ha_status = shared.topics.ha_status();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(MqttEvent::Connected) => {
                // Also on the first ConnAck: anything published while the broker was unreachable
                // timed out and exists only in the registry.
                tracing::debug!("publishing retained discovery and state after ConnAck");
                shared.retained.republish_all(&shared.mqtt);
            }
            Ok(MqttEvent::Message { topic, payload }) if topic == ha_status && payload.as_ref() == b"online" => {
                let delay = Duration::from_millis(rand::random_range(500..3000));
                tracing::info!("Home Assistant is online; re-publishing discovery in {delay:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                shared.retained.republish_all(&shared.mqtt);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
