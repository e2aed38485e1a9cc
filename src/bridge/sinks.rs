//! The Home Assistant statistics import as a [`ReadingSink`] of the bridge.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ReadingSink;
use crate::homeassistant::LinkState;
use crate::model::{IntervalReading, Meter, MeterValue, ValueKind};
use crate::statistics::{PriceSchedule, StatisticsSink};

#[async_trait]
impl ReadingSink for StatisticsSink {
    fn name(&self) -> &'static str {
        "Home Assistant statistics"
    }

    fn active(&self) -> bool {
        !matches!(self.status().state, LinkState::AuthFailed(_) | LinkState::Stopped)
    }

    async fn needs_from(&self, meter: &Meter) -> Option<DateTime<Utc>> {
        StatisticsSink::needs_from(self, meter).await
    }

    async fn deliver(&self, meter: &Meter, readings: &[IntervalReading], values: &[MeterValue]) -> Result<(), String> {
        let prices = hourly_prices(values);
        match self.import(meter, readings, prices.as_ref()).await {
            Ok(report) => {
                if report.rows_sent() > 0 {
                    tracing::info!(meter = %meter.id, rows = report.rows_sent(), "statistics imported into Home Assistant");
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A provider's hourly price list (a `Price` value whose `prices` attribute holds 24
/// DKK/kWh prices by Danish local hour) as a schedule for the cost statistic.
pub fn hourly_prices(values: &[MeterValue]) -> Option<PriceSchedule> {
    let value = values
        .iter()
        .find(|v| v.kind == ValueKind::Price && v.unit.as_deref() == Some("DKK/kWh"))?;
    let list = value.attributes.get("prices")?.as_array()?;
    let prices: Vec<f64> = list.iter().filter_map(|p| p.as_f64()).collect();
    let prices: [f64; 24] = prices.try_into().ok()?;
    PriceSchedule::danish_hourly(prices).ok()
}
