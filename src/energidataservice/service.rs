//! Energi Data Service as a poll uses it: every question has a time budget, and after a failure
//! the service is left alone for [`PAUSE`], so that it never delays the meter data (the cost
//! statistic and the price sensors catch up later; the readings and the consumption statistics
//! never wait for it).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Days, Utc};

use super::client::{ClientOptions, EnergiDataService};
use super::co2::{co2_value, Co2Data};
use super::live::live_values;
use super::{ChargeKey, MissingCharge, PriceArea, PriceResolution, Prices, PricesError, TariffSet, Terms, TZ};
use crate::clock::SharedClock;
use crate::http::{RetryPolicy, Sleeper};
use crate::model::{local_midnight, MeterValue, PriceSeries, TimeRange};
use crate::state::StateStore;

/// After a failed call, Energi Data Service is not asked again for this long.
pub(crate) const PAUSE: chrono::Duration = chrono::Duration::minutes(10);
/// The most one price question may take, retries included; a backfill month that did not make
/// it is asked again next time (what arrived is cached already).
pub(crate) const BUDGET: Duration = Duration::from_secs(60);
/// Per request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a poll waits for a price question. A slower answer goes on in the background and
/// fills the cache, so the meter data and the consumption statistics never wait for Energi Data
/// Service longer than this; the cost and the price sensor catch up at a later poll.
const POLL_WAIT: Duration = Duration::from_secs(5);

/// Fewer retries than the service's own policy: prices are never urgent, and the next poll asks
/// again.
pub(crate) fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        max_interval: Duration::from_secs(20),
        throttle_floor: Duration::from_secs(20),
        max_retry_after: Duration::from_secs(40),
        ..super::client::retry_policy()
    }
}

/// Prices for a poll: `Ok(None)` while the service is paused after a failure or slower than a
/// poll waits.
pub(crate) struct PriceService {
    prices: Arc<Prices>,
    clock: SharedClock,
    paused_until: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// The CO2 datasets pause on their own: their failure must not hold up prices.
    co2_paused_until: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl PriceService {
    pub(crate) fn new(
        base_url: &str,
        store: StateStore,
        clock: SharedClock,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<PriceService, PricesError> {
        let client = EnergiDataService::new(ClientOptions {
            base_url: base_url.trim().to_owned(),
            timeout: REQUEST_TIMEOUT,
            retry: retry_policy(),
            sleeper,
        })?;
        Ok(PriceService {
            prices: Arc::new(Prices::new(client, store, clock.clone())),
            clock,
            paused_until: Arc::new(Mutex::new(None)),
            co2_paused_until: Arc::new(Mutex::new(None)),
        })
    }

    /// The price of each interval of `range` that is known, with the charges that have no
    /// price list (see [`Prices::series`]).
    pub(crate) async fn series(
        &self,
        area: PriceArea,
        charges: Vec<ChargeKey>,
        range: TimeRange,
        terms: Terms,
    ) -> Result<Option<(PriceSeries, Vec<MissingCharge>)>, PricesError> {
        self.guarded(POLL_WAIT, move |prices| async move {
            prices.series(area, &charges, range, terms).await
        })
        .await
    }

    /// The live price sensors (the all-in price and the spot price, now, with today's and
    /// tomorrow's intervals), with the charges that have no price list.
    pub(crate) async fn live_values(
        &self,
        area: PriceArea,
        charges: Vec<ChargeKey>,
        terms: Terms,
        resolution: PriceResolution,
    ) -> Result<Option<(Vec<MeterValue>, Vec<MissingCharge>)>, PricesError> {
        let now = self.clock.now();
        let today = now.with_timezone(&TZ).date_naive();
        let range = TimeRange::new(local_midnight(today, TZ), local_midnight(today + Days::new(2), TZ));
        let answer = self
            .guarded(POLL_WAIT, move |prices| async move {
                prices.breakdown(area, &charges, range, terms).await
            })
            .await?;
        Ok(answer.map(|(rows, missing)| (live_values(&rows, now, area, resolution), missing)))
    }

    /// The CO2 intensity sensor of `area`, its forecast at `resolution`; `None` while the CO2
    /// datasets are paused after a failure or slow.
    pub(crate) async fn co2_value(
        &self,
        area: PriceArea,
        resolution: PriceResolution,
    ) -> Result<Option<MeterValue>, PricesError> {
        let now = self.clock.now();
        let answer = self.co2(area, POLL_WAIT).await?;
        Ok(answer.map(|data| co2_value(&data, now, area, resolution)))
    }

    /// The CO2 datasets' answer for `area`, waiting up to [`BUDGET`] (for `check`).
    pub(crate) async fn co2_check(&self, area: PriceArea) -> Result<Option<Co2Data>, PricesError> {
        self.co2(area, BUDGET).await
    }

    async fn co2(&self, area: PriceArea, wait: Duration) -> Result<Option<Co2Data>, PricesError> {
        self.guarded_by(&self.co2_paused_until, wait, move |prices| async move {
            prices.co2(area).await
        })
        .await
    }

    /// The tariff histories of `charges`, waiting up to [`BUDGET`] (for `check`).
    pub(crate) async fn tariffs(&self, charges: Vec<ChargeKey>) -> Result<Option<TariffSet>, PricesError> {
        self.guarded(BUDGET, move |prices| async move { prices.tariffs(&charges).await })
            .await
    }

    /// Runs one price question within [`BUDGET`] unless the service is paused; a failure pauses
    /// it and is returned (the caller logs it once). The question runs as a task of its own: the
    /// caller waits for it at most `wait` and then goes on without prices (`None`), while the
    /// task finishes into the cache.
    async fn guarded<T, F, Fut>(&self, wait: Duration, question: F) -> Result<Option<T>, PricesError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Prices>) -> Fut,
        Fut: std::future::Future<Output = Result<T, PricesError>> + Send + 'static,
    {
        self.guarded_by(&self.paused_until, wait, question).await
    }

    /// [`PriceService::guarded`] with the pause kept in `pause`.
    async fn guarded_by<T, F, Fut>(
        &self,
        pause: &Arc<Mutex<Option<DateTime<Utc>>>>,
        wait: Duration,
        question: F,
    ) -> Result<Option<T>, PricesError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Prices>) -> Fut,
        Fut: std::future::Future<Output = Result<T, PricesError>> + Send + 'static,
    {
        let now = self.clock.now();
        if pause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| now < until)
        {
            return Ok(None);
        }
        let call = question(self.prices.clone());
        let paused_until = pause.clone();
        let task = tokio::spawn(async move {
            let error = match tokio::time::timeout(BUDGET, call).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => PricesError::TimedOut {
                    seconds: BUDGET.as_secs(),
                },
            };
            *paused_until.lock().unwrap_or_else(PoisonError::into_inner) = Some(now + PAUSE);
            tracing::warn!(
                "prices: {error}; Energi Data Service is asked again in {} minutes, the meter data goes on without it",
                PAUSE.num_minutes()
            );
            Err(error)
        });
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(answer)) => answer.map(Some),
            Ok(Err(join)) => Err(PricesError::Stopped(join.to_string())),
            Err(_) => {
                tracing::debug!(
                    "prices: Energi Data Service is slow; going on without prices, they are cached for a later poll"
                );
                Ok(None)
            }
        }
    }
}
