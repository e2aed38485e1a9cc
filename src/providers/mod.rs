//! Providers turn an energy data API into [`Meter`]s and [`IntervalReading`]s. They know nothing
//! of MQTT or Home Assistant; adding one is a folder here plus a line in [`build`].

pub mod eloverblik;
pub mod enectiva;
pub mod sample;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::http::HttpError;
use crate::model::{ApiStatus, IntervalReading, Meter, MeterValue, TimeRange};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The long-lived credential was rejected: nothing works until the user makes a new one.
    #[error("{provider}: authentication failed: {message}")]
    Auth { provider: &'static str, message: String },
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The API answered, but not in a shape we can use.
    #[error("{provider}: unexpected response from {endpoint}: {message}")]
    Response {
        provider: &'static str,
        endpoint: String,
        message: String,
    },
    /// The API reported a failure for one meter only.
    #[error("{provider}: meter {meter}: {message}")]
    Meter {
        provider: &'static str,
        meter: String,
        message: String,
    },
    #[error("{provider}: meter {meter} is not known to this account")]
    UnknownMeter { provider: &'static str, meter: String },
}

impl ProviderError {
    pub fn api_status(&self) -> ApiStatus {
        match self {
            ProviderError::Auth { .. } => ApiStatus::AuthError,
            ProviderError::Http(e) => e.api_status(),
            _ => ApiStatus::Error,
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Machine name of the provider, e.g. `eloverblik`.
    fn kind(&self) -> &'static str;

    /// A label for this account in logs and state file names (never a secret).
    fn account(&self) -> &str;

    /// The meters this account can read.
    async fn meters(&self) -> Result<Vec<Meter>, ProviderError>;

    /// Interval readings of `meter` that start in `range`, oldest first. Hours the API has no data
    /// for yet are simply absent; intervals the API reports as missing carry `Quality::Missing`.
    async fn readings(&self, meter: &Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError>;

    /// Readings for several meters at once; providers whose API batches (ElOverblik: 10 ids a
    /// call) override this to spend fewer calls.
    async fn readings_many(
        &self,
        meters: &[Meter],
        range: TimeRange,
    ) -> Vec<(String, Result<Vec<IntervalReading>, ProviderError>)> {
        let mut out = Vec::with_capacity(meters.len());
        for meter in meters {
            out.push((meter.id.clone(), self.readings(meter, range).await));
        }
        out
    }

    /// Values beside the interval data (tariffs, monthly totals, register readings).
    async fn values(&self, _meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        Ok(Vec::new())
    }

    /// The latest instant for which new data can exist, given what was already delivered up to
    /// `data_until`. Lets the bridge skip data calls when nothing new can have arrived.
    fn next_data_possible(&self, _data_until: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        now
    }

    /// How far back the first run reads, capped by the provider's own limits.
    fn max_history(&self) -> Duration {
        Duration::from_secs(5 * 366 * 24 * 3600)
    }
}

pub type SharedProvider = Arc<dyn Provider>;

/// Builds every provider account the configuration names.
pub fn build(
    config: &crate::config::Config,
    state: &crate::state::StateStore,
) -> Result<Vec<SharedProvider>, crate::Error> {
    let mut providers: Vec<SharedProvider> = Vec::new();
    for (index, account) in config.sample.iter().enumerate() {
        providers.push(Arc::new(sample::SampleProvider::from_config(account, index)));
    }
    for (index, account) in config.eloverblik.iter().enumerate() {
        let provider = eloverblik::EloverblikProvider::from_config(account, index, state.clone())?;
        providers.push(Arc::new(provider));
    }
    for (index, account) in config.enectiva.iter().enumerate() {
        providers.push(Arc::new(enectiva::EnectivaProvider::from_config(account, index)?));
    }
    Ok(providers)
}
