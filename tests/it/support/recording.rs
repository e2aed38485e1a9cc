//! A sink that takes everything and remembers what it took and what each poll reported: the
//! bridge's schedule and outcomes, without a broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use meter2mqtt::model::Meter;
use meter2mqtt::sink::{AccountId, Batch, Delivery, Outcome, PollReport, Sink, SinkError, SinkFactory, StatusBoard};

/// A poll's start and the next poll it announced.
pub type Announced = (DateTime<Utc>, DateTime<Utc>);

#[derive(Clone, Default)]
pub struct Recording {
    pub delivered: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
    pub next_polls: Arc<Mutex<Vec<Announced>>>,
    /// Each poll's outcome per meter, as the API status sensor shows it.
    pub outcomes: Arc<Mutex<Vec<HashMap<String, Outcome>>>>,
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
