//! Hourly statistics imported into Home Assistant as external statistics, so that delayed meter
//! data lands in the Energy dashboard at the hours it was used: readings summed into hours
//! (`hourly`), the per-hour record of what Home Assistant holds (`ledger`, `ledger_store`),
//! agreement with Home Assistant's own rows (`reconcile`), the recorder commands (`recorder`,
//! `metadata`), and the sink the bridge calls (`sink`). Knows nothing of providers or MQTT: it
//! takes a [`Meter`](crate::model::Meter) and its [`IntervalReading`](crate::model::IntervalReading)s,
//! and talks to Home Assistant through [`crate::homeassistant`].

mod bridge_sink;
mod cost;
mod error;
mod hourly;
mod ledger;
mod ledger_store;
mod metadata;
mod reconcile;
mod recorder;
mod remote;
mod series;
mod sink;

pub use error::StatisticsError;
pub use sink::{StatisticsSettings, StatisticsSink};
