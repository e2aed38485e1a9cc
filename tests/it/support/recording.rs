//! A sink that takes everything and remembers what it took and what each poll reported: the
//! bridge's schedule and outcomes, without a broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use meter2mqtt::model::{Meter, MeterValue};
use meter2mqtt::sink::{AccountId, Batch, Delivery, Outcome, PollReport, Sink, SinkError, SinkFactory, StatusBoard};

/// A poll's start and the next poll it announced.
pub type Announced = (DateTime<Utc>, DateTime<Utc>);

/// Values handed to the sink: when, `poll` or `refresh`, and the values by meter.
pub type Handed = (tokio::time::Instant, &'static str, HashMap<String, Vec<MeterValue>>);

#[derive(Clone, Default)]
pub struct Recording {
    pub delivered: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
    pub next_polls: Arc<Mutex<Vec<Announced>>>,
    /// Each poll's outcome per meter, as the API status sensor shows it.
    pub outcomes: Arc<Mutex<Vec<HashMap<String, Outcome>>>>,
    /// The values handed over, each with when (the runtime's clock) and whether at a poll
    /// (`meters_listed`) or between polls (`values_refreshed`).
    pub values: Arc<Mutex<Vec<Handed>>>,
}

impl Recording {
    /// Minutes between each poll and the next one it announced.
    pub fn announced_minutes(&self) -> Vec<i64> {
        self.next_polls
            .lock()
            .unwrap()
            .iter()
            .map(|(at, next)| (*next - *at).num_minutes())
            .collect()
    }
}

#[async_trait]
impl Sink for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn verb(&self) -> &'static str {
        "recorded"
    }

    async fn meters_listed(&mut self, _meters: &[Meter], values: &HashMap<String, Vec<MeterValue>>) {
        let now = tokio::time::Instant::now();
        self.values.lock().unwrap().push((now, "poll", values.clone()));
    }

    async fn values_refreshed(&mut self, _meters: &[Meter], values: &HashMap<String, Vec<MeterValue>>) {
        let now = tokio::time::Instant::now();
        self.values.lock().unwrap().push((now, "refresh", values.clone()));
    }

    async fn needs_from(&mut self, meter: &Meter) -> Option<DateTime<Utc>> {
        self.delivered.lock().unwrap().get(&meter.id).copied()
    }

    async fn deliver(&mut self, batches: &[Batch<'_>]) -> Delivery {
        let mut delivered = self.delivered.lock().unwrap();
        let mut sent = 0;
        for batch in batches {
            let until = delivered
                .entry(batch.meter.id.clone())
                .or_insert(DateTime::<Utc>::MIN_UTC);
            for reading in batch.readings {
                if reading.end > *until {
                    *until = reading.end;
                    sent += 1;
                }
            }
        }
        Delivery {
            sent,
            failed: Vec::new(),
        }
    }

    async fn poll_finished(&mut self, report: &PollReport<'_>) {
        self.next_polls.lock().unwrap().push((report.at, report.next_poll));
        self.outcomes.lock().unwrap().push(report.outcomes.clone());
    }
}

#[async_trait]
impl SinkFactory for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn open(&self, _account: &AccountId, _board: &StatusBoard) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(self.clone()))
    }
}

/// A running bridge over one provider into a [`Recording`] alone.
pub struct RecordedBridge {
    pub events: tokio::sync::broadcast::Receiver<meter2mqtt::bridge::BridgeEvent>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RecordedBridge {
    /// Polls `provider` hourly, without jitter, from 1 January 2024, into `sink` (meant for the
    /// paused clock).
    pub fn hourly(provider: &super::ScriptedProvider, sink: &Recording) -> RecordedBridge {
        use meter2mqtt::bridge::Bridge;
        let settings = meter2mqtt::config::BridgeConfig {
            poll_interval: std::time::Duration::from_secs(3600),
            jitter: std::time::Duration::ZERO,
            history_start: chrono::NaiveDate::from_ymd_opt(2024, 1, 1),
            ..meter2mqtt::config::BridgeConfig::default()
        };
        let bridge = Bridge::new(settings, vec![Arc::new(provider.clone())]).with_sink(Arc::new(sink.clone()));
        let events = bridge.events();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(bridge.run(stop.clone()));
        RecordedBridge { events, stop, task }
    }

    /// `(recorded, errors)` of the next finished poll.
    pub async fn next_poll(&mut self) -> (usize, usize) {
        match self.events.recv().await.unwrap() {
            event @ meter2mqtt::bridge::BridgeEvent::PollFinished { errors, .. } => {
                (event.delivered_to("recording"), errors)
            }
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}
