//! Hourly statistics imported into Home Assistant as external statistics over its websocket
//! API, so that delayed meter data lands in the Energy dashboard at the hours it was used.
//! Knows nothing of providers or MQTT: it takes a [`Meter`](crate::model::Meter) and its
//! [`IntervalReading`](crate::model::IntervalReading)s.

mod connection;
mod error;
mod ha_version;
mod handshake;
mod hourly;
mod ledger;
mod ledger_store;
mod log_guard;
mod price;
mod protocol;
mod reconcile;
mod remote;
mod series;
mod session;
mod sink;
mod status;
mod tls;
mod ws_url;

pub use error::StatisticsError;
pub use ha_version::{parse_year_month, MetadataStyle};
pub use log_guard::LOG_DIRECTIVES;
pub use price::{PriceError, PricePeriod, PriceSchedule};
pub use series::{Series, SOURCE};
pub use sink::{ImportReport, SeriesReport, StatisticsSettings, StatisticsSink};
pub use status::{ConnectionState, StatisticsStatus};
pub use ws_url::WsUrl;
