//! The statistics import as a sink of the bridge: one Home Assistant connection for every
//! account, each meter's ledger its own cursor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StatisticsSink;
use crate::homeassistant::LinkState;
use crate::model::Meter;
use crate::sink::{AccountId, Batch, Delivery, Sink, SinkError, SinkFactory, StatusBoard};

/// The sink's name in logs, errors and bridge events.
pub(crate) const SINK: &str = "Home Assistant statistics";

#[async_trait]
impl SinkFactory for StatisticsSink {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn open(&self, _account: &AccountId, _board: &StatusBoard) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(self.clone()))
    }
}

#[async_trait]
impl Sink for StatisticsSink {
    fn name(&self) -> &'static str {
        SINK
    }

    fn verb(&self) -> &'static str {
        "imported"
    }

    fn active(&self) -> bool {
        !matches!(self.status().state, LinkState::AuthFailed(_) | LinkState::Stopped)
    }

    fn wants_prices(&self) -> bool {
        self.cost_enabled()
    }

    async fn needs_from(&mut self, meter: &Meter) -> Option<DateTime<Utc>> {
        StatisticsSink::needs_from(self, meter).await
    }

    async fn deliver(&mut self, batches: &[Batch<'_>]) -> Delivery {
        let mut delivery = Delivery::default();
        for batch in batches {
            match self.import(batch.meter, batch.readings, batch.prices).await {
                Ok(report) => delivery.sent += report.rows_sent(),
                Err(e) => delivery.failed.push((batch.meter.id.clone(), SinkError(e.to_string()))),
            }
        }
        delivery
    }
}
