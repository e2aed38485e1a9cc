//! The contract between a provider and the bridge: [`Provider`], what it hands over ([`Window`],
//! [`MeterReadings`]) and how it fails ([`ProviderError`]).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::http::HttpError;
use crate::model::{ApiStatus, IntervalReading, Meter, MeterValue, PriceSeries, TimeRange};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The long-lived credential was rejected: nothing works until the user makes a new one.
    #[error("{provider}: authentication failed: {message}")]
    Auth { provider: &'static str, message: String },
    #[error("{}{}", .0, retry_note(.0))]
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
    /// The account's configuration cannot be used (found while building it, not in an answer).
    #[error("{provider}: configuration: {message}")]
    Config { provider: &'static str, message: String },
    /// Prices beside the readings could not be had (the meter data flows without them).
    #[error("{provider}: prices: {message}")]
    Prices { provider: &'static str, message: String },
}

impl ProviderError {
    /// What the meter's state message says about the API.
    pub fn api_status(&self) -> ApiStatus {
        match self {
            ProviderError::Auth { .. } | ProviderError::Http(HttpError::Unauthorized { .. }) => ApiStatus::AuthError,
            ProviderError::Http(HttpError::Exhausted {
                last_status: Some(429), ..
            }) => ApiStatus::RateLimited,
            ProviderError::Http(HttpError::Exhausted { .. }) => ApiStatus::Unavailable,
            _ => ApiStatus::Error,
        }
    }

    /// Whether the failure can go away by itself: a 5xx, 429, timeout, connection error or an
    /// answer that came garbled (each after the retry policy's attempts), an answer the API gave
    /// for one meter only, or prices that could not be had. A poll that ended with one is tried
    /// again soon. `false` for what needs the user: a token or credential the API refused
    /// (401/403), a request it rejected as wrong (400), a meter it does not know, a client that
    /// cannot be built, an account whose configuration cannot be used.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Auth { .. } | ProviderError::UnknownMeter { .. } | ProviderError::Config { .. } => false,
            ProviderError::Http(e) => e.is_transient(),
            ProviderError::Response { .. } | ProviderError::Meter { .. } | ProviderError::Prices { .. } => true,
        }
    }
}

/// The bridge's answer to a transient failure, said where the provider's error reaches the user.
fn retry_note(error: &HttpError) -> &'static str {
    match error {
        HttpError::Exhausted { .. } => "; will try again at the next poll",
        _ => "",
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

    /// Reads `meters` over `range` one API window at a time, handing each window to `out`
    /// before fetching the next, so memory does not grow with the range or the number of meters.
    /// A meter whose window failed gets no later windows in this read: its sinks must not move
    /// past data that is missing. Windows of one meter come oldest first; within a window,
    /// readings start in `range`, oldest first. Hours the API has no data for yet are simply
    /// absent; intervals the API reports as missing carry `Quality::Missing`. ElOverblik batches
    /// ten points a call, Enectiva pages; an API with neither hands each meter's whole range as
    /// one window ([`Window::of_meter`]). The one read method a provider writes.
    async fn read(&self, meters: &[Meter], range: TimeRange, out: &mut dyn Receive);

    /// One meter's readings in `range`, gathered from [`Provider::read`] (for the demo, tests).
    async fn readings(&self, meter: &Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError> {
        let mut results = self.readings_many(std::slice::from_ref(meter), range).await;
        results.pop().map_or_else(|| Ok(Vec::new()), |(_, result)| result)
    }

    /// Every meter's readings in `range`, gathered from [`Provider::read`] (for `check`, tests).
    async fn readings_many(&self, meters: &[Meter], range: TimeRange) -> Vec<MeterReadings> {
        let mut all = Collect::new(meters);
        self.read(meters, range, &mut all).await;
        all.finish()
    }

    /// What the meter's quantity cost (or earned) over `range`, where the provider knows it.
    async fn prices(&self, _meter: &Meter, _range: TimeRange) -> Result<Option<PriceSeries>, ProviderError> {
        Ok(None)
    }

    /// What `check` shows under a meter beyond its data (e.g. where its prices come from), in
    /// the provider's own words.
    async fn check_lines(&self, _meter: &Meter) -> Vec<CheckLine> {
        Vec::new()
    }

    /// Values beside the interval data (tariffs, monthly totals, register readings).
    async fn values(&self, _meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        Ok(Vec::new())
    }

    /// How often [`Provider::values`] changes by itself (live data such as a CO2 intensity):
    /// the bridge reads the values again this often between polls. `None`: only at polls.
    fn values_refresh(&self) -> Option<std::time::Duration> {
        None
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

/// One line of [`Provider::check_lines`]; a `problem` is a warning in `check` (see the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub(crate) text: String,
    /// Something is wrong with this extra: `check` warns, but does not fail, since the meter
    /// data flows without it.
    pub(crate) problem: bool,
}

impl CheckLine {
    pub(crate) fn info(text: impl Into<String>) -> CheckLine {
        CheckLine {
            text: text.into(),
            problem: false,
        }
    }

    pub(crate) fn problem(text: impl Into<String>) -> CheckLine {
        CheckLine {
            text: text.into(),
            problem: true,
        }
    }
}

/// One meter's readings, or why there are none.
pub(crate) type MeterReadings = (String, Result<Vec<IntervalReading>, ProviderError>);

/// One API window of a read: the time it covered and each meter's readings in it (oldest first)
/// or its error.
#[derive(Debug)]
pub struct Window {
    pub covered: TimeRange,
    pub results: Vec<MeterReadings>,
}

impl Window {
    /// A window of one meter.
    pub fn of_meter(meter: &Meter, covered: TimeRange, result: Result<Vec<IntervalReading>, ProviderError>) -> Window {
        Window {
            covered,
            results: vec![(meter.id.clone(), result)],
        }
    }
}

/// Where [`Provider::read`] hands its windows.
#[async_trait]
pub trait Receive: Send {
    /// Takes one window; `Break` ends the read (the bridge is shutting down).
    async fn window(&mut self, window: Window) -> ControlFlow<()>;
}

/// Gathers a whole read, per meter in the order asked: readings in order, or the first error.
struct Collect {
    results: Vec<MeterReadings>,
}

impl Collect {
    fn new(meters: &[Meter]) -> Collect {
        Collect {
            results: meters.iter().map(|m| (m.id.clone(), Ok(Vec::new()))).collect(),
        }
    }

    fn finish(mut self) -> Vec<MeterReadings> {
        for (_, result) in &mut self.results {
            if let Ok(readings) = result {
                readings.sort_by_key(|r| r.start);
                readings.dedup_by_key(|r| r.start);
            }
        }
        self.results
    }
}

#[async_trait]
impl Receive for Collect {
    async fn window(&mut self, window: Window) -> ControlFlow<()> {
        for (id, result) in window.results {
            let Some((_, slot)) = self.results.iter_mut().find(|(known, _)| *known == id) else {
                continue;
            };
            match (slot.as_mut(), result) {
                (Ok(readings), Ok(more)) => readings.extend(more),
                (Ok(_), Err(e)) => *slot = Err(e),
                (Err(_), _) => {}
            }
        }
        ControlFlow::Continue(())
    }
}
