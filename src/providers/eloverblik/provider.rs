//! The [`Provider`] for one `[[eloverblik]]` account.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::charges::{self, ChargesCache};
use super::client::{Api, Paths};
use super::dto::Charges;
use super::dto::MeteringPointsRequest;
use super::metering_points::{self, PointInfo};
use super::pass::{MeterResult, Pass};
use super::pricing::Pricing;
use super::timeseries::{self, PointOutcome};
use super::windows::{self, local_day, Aggregation, Window};
use super::{default_base_url, error_body, schedule, token, EloverblikApi, Settings, KIND};
use crate::clock::{system_clock, SharedClock};
use crate::energidataservice::{PriceResolution, CO2_REFRESH};
use crate::http::{build_client, ApiClient, Budget, Pace, RateLimiter, RetryPolicy, Sleeper, TokioPace, TokioSleeper};
use crate::model::{Direction, Meter, MeterValue, PriceSeries, TimeRange};
use crate::providers::registry::BuildContext;
use crate::providers::{CheckLine, Provider, ProviderError, Receive, Window as ReadWindow};
use crate::state::StateStore;

const THIRDPARTY_BASE_URL: &str = "https://api.eloverblik.dk/thirdpartyapi";
/// The API takes at most ten metering points a call.
const BATCH: usize = 10;

/// ElOverblik keeps five years plus the current one; five years stays clear of the edge.
const MAX_HISTORY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// Retries as ElOverblik asks: never sooner than 60 s after a 429 or 503 (and later when
/// Retry-After says so), at most four retries, so a DataHub outage costs a poll a few minutes
/// and then surfaces as `unavailable`.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(300),
        multiplier: 2.0,
        randomization_factor: 0.3,
        max_retries: 4,
        throttle_floor: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(15 * 60),
    }
}

/// DataHub's documented limits per IP address: 2 token calls and 120 calls a minute. Accounts
/// on the same host share one limiter (see [`EloverblikProvider::from_settings`]).
pub fn rate_limiter(pace: Arc<dyn Pace>) -> RateLimiter {
    fn token(endpoint: &str) -> bool {
        endpoint.ends_with("/token")
    }
    fn any(_: &str) -> bool {
        true
    }
    RateLimiter::with_pace(
        KIND,
        vec![
            Budget {
                name: "token calls per minute",
                calls: 2,
                per: Duration::from_secs(60),
                applies: token,
            },
            Budget {
                name: "calls per minute",
                calls: 120,
                per: Duration::from_secs(60),
                applies: any,
            },
        ],
        pace,
    )
}

/// How the provider talks to the API; the defaults are for production, tests shorten them.
#[derive(Clone)]
pub struct Options {
    /// Per request; a two-year batch of ten points is several megabytes from a slow API.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub sleeper: Arc<dyn Sleeper>,
    /// Where the time is read; tests pin it.
    pub clock: SharedClock,
    /// The API's call budget; share one between providers that call the same host.
    pub limiter: Arc<RateLimiter>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(120),
            retry: retry_policy(),
            sleeper: Arc::new(TokioSleeper),
            clock: system_clock(),
            limiter: Arc::new(rate_limiter(Arc::new(TokioPace))),
        }
    }
}

pub struct EloverblikProvider {
    account: String,
    api: Api,
    wanted: Vec<String>,
    charges_enabled: bool,
    /// Energi Data Service prices, unless the account turned them off.
    pricing: Option<Pricing>,
    clock: SharedClock,
    /// From the last metering point listing: how to read each meter.
    points: RwLock<HashMap<String, PointInfo>>,
    charges: tokio::sync::Mutex<ChargesCache>,
    /// When each meter's data was last read, for [`schedule::next_data_possible`].
    last_read: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl EloverblikProvider {
    /// The provider for one `[[eloverblik]]` account, labelled `label` in logs and state files.
    pub(crate) fn from_settings(
        settings: &Settings,
        label: String,
        context: &BuildContext,
    ) -> Result<Self, ProviderError> {
        let base_url = base_url(settings);
        let host = reqwest::Url::parse(&base_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or(base_url);
        let options = Options {
            limiter: context.shared(&format!("{KIND} rate limit {host}"), || {
                rate_limiter(Arc::new(TokioPace))
            }),
            ..Options::default()
        };
        Self::new(settings, label, context.store.clone(), options)
    }

    pub fn new(settings: &Settings, label: String, store: StateStore, options: Options) -> Result<Self, ProviderError> {
        let base_url = base_url(settings);
        let client = build_client(KIND, options.timeout)?;
        let http = ApiClient::new(KIND, client, options.retry, error_body::parse_error_body)
            .with_sleeper(options.sleeper.clone())
            .with_limiter(options.limiter);
        let tokens = token::cache(
            &label,
            http.clone(),
            &base_url,
            settings.refresh_token.clone(),
            store.clone(),
            options.clock.clone(),
        );
        let pricing = if settings.prices {
            Some(Pricing::new(
                settings,
                store,
                options.clock.clone(),
                options.sleeper.clone(),
            )?)
        } else {
            None
        };
        Ok(EloverblikProvider {
            pricing,
            account: label,
            api: Api::new(http, tokens, base_url, Paths::of(settings.api)),
            wanted: settings.metering_points.clone(),
            charges_enabled: settings.charges,
            clock: options.clock,
            points: RwLock::new(HashMap::new()),
            charges: tokio::sync::Mutex::new(ChargesCache::default()),
            last_read: Mutex::new(HashMap::new()),
        })
    }

    async fn list(&self) -> Result<Vec<Meter>, ProviderError> {
        let listing = metering_points::to_meters(metering_points::fetch(&self.api).await?, &self.wanted);
        *self.points.write().unwrap_or_else(PoisonError::into_inner) = listing.points;
        Ok(listing.meters)
    }

    /// Quarter hours when any point of the account is read per quarter hour, else hours: the
    /// CO2 sensor is one per area whichever meter asks, so its default must not depend on the
    /// meter.
    fn finest_resolution(&self) -> PriceResolution {
        let points = self.points.read().unwrap_or_else(PoisonError::into_inner);
        if points.values().any(|p| p.aggregation == Aggregation::Quarter) {
            PriceResolution::Quarter
        } else {
            PriceResolution::Hour
        }
    }

    fn point(&self, id: &str) -> Option<PointInfo> {
        self.points
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// How to read `meter`, listing the points again if it is new.
    async fn info(&self, meter: &Meter) -> Result<PointInfo, ProviderError> {
        if let Some(info) = self.point(&meter.id) {
            return Ok(info);
        }
        self.list().await?;
        self.point(&meter.id).ok_or_else(|| ProviderError::UnknownMeter {
            provider: KIND,
            meter: meter.id.clone(),
        })
    }

    /// The charges of a (parent) point, from a cache refreshed every few hours; one call asks
    /// for every parent point of the account.
    async fn charges_of(&self, meter: &Meter) -> Result<Charges, ProviderError> {
        let mut cache = self.charges.lock().await;
        let now = self.clock.now();
        if let Some(answer) = cache.answer(&meter.id, now) {
            return answer;
        }
        let mut parents: Vec<String> = {
            let points = self.points.read().unwrap_or_else(PoisonError::into_inner);
            points
                .iter()
                .filter(|(_, info)| !info.child)
                .map(|(id, _)| id.clone())
                .collect()
        };
        parents.sort();
        let ids: Vec<&str> = parents.iter().map(String::as_str).collect();
        let fetched = charges::fetch(&self.api, &ids).await;
        cache.store(fetched, now);
        cache.answer(&meter.id, now).unwrap_or_else(|| {
            Err(ProviderError::UnknownMeter {
                provider: KIND,
                meter: meter.id.clone(),
            })
        })
    }

    /// The oldest last read among the current meters: a meter never read makes it `None`.
    fn oldest_read(&self) -> Option<DateTime<Utc>> {
        let points = self.points.read().unwrap_or_else(PoisonError::into_inner);
        let reads = self.last_read.lock().unwrap_or_else(PoisonError::into_inner);
        if points.is_empty() {
            return None;
        }
        points
            .keys()
            .map(|id| reads.get(id).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }

    async fn fetch_window(
        &self,
        aggregation: Aggregation,
        window: Window,
        ids: &[&str],
    ) -> Result<Vec<PointOutcome>, ProviderError> {
        let path = format!(
            "/api/meterdata/gettimeseries/{}/{}",
            window.path_segment(),
            aggregation.as_path()
        );
        let list: timeseries::Answer = self.api.post(&path, &MeteringPointsRequest::new(ids)).await?;
        Ok(timeseries::outcomes(list, &Api::endpoint("POST", &path)))
    }

    /// Reads `ids` (one aggregation) ten at a time, window by window, handing each call's
    /// answer to `out` before the next call. `false` when `out` asked to stop.
    ///
    /// Calls go oldest window first across all groups of ten (not one group's whole history
    /// after another): every meter then reaches the recent days, which sinks remember per
    /// interval, in the last windows, so a history import does not carry one group's detailed
    /// record through every later group's saves.
    async fn read_group(
        &self,
        aggregation: Aggregation,
        ids: &[&str],
        range: TimeRange,
        pass: &mut Pass,
        out: &mut dyn Receive,
    ) -> bool {
        let today = local_day(self.clock.now());
        let mut planned: Vec<(&[&str], Window)> = ids
            .chunks(BATCH)
            .flat_map(|chunk| {
                windows::plan(range, today, aggregation.max_days_for(chunk.len()))
                    .into_iter()
                    .map(move |window| (chunk, window))
            })
            .collect();
        // Stable: within one start date, the groups keep their order.
        planned.sort_by_key(|(_, window)| window.from);
        let calls = planned.len();
        for (call, (chunk, window)) in planned.iter().enumerate() {
            let live = pass.live(chunk);
            if live.is_empty() {
                continue;
            }
            let covered = window.covering(range);
            let results = match pass.outage().cloned() {
                Some(outage) => pass.fail(&live, outage),
                None => {
                    // The bridge logs the progress of long reads; this is the detail.
                    tracing::debug!(
                        account = %self.account,
                        "reading history: call {} of {calls}, {} to {} ({}), {} metering point(s)",
                        call + 1,
                        window.from,
                        window.to,
                        aggregation.as_path(),
                        live.len()
                    );
                    match self.fetch_window(aggregation, *window, &live).await {
                        Ok(outcomes) => pass.answer(&live, outcomes, covered),
                        Err(error) => pass.fail(&live, error),
                    }
                }
            };
            self.record_reads(&results, pass.answered());
            if out.window(ReadWindow { covered, results }).await.is_break() {
                return false;
            }
        }
        true
    }

    /// Notes the read of every point the API answered for, with data or with its own per-point
    /// error: either way asking again before the recheck cannot bring anything new.
    fn record_reads(&self, results: &[MeterResult], answered: &HashSet<String>) {
        let now = self.clock.now();
        let mut reads = self.last_read.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, result) in results {
            if answered.contains(id) && matches!(result, Ok(_) | Err(ProviderError::Meter { .. })) {
                reads.insert(id.clone(), now);
            }
        }
    }
}

/// The account's API root without a trailing slash. The configured default names the customer
/// API; an account switched to the third-party API without its own URL gets that API's root.
fn base_url(settings: &Settings) -> String {
    let configured = settings.base_url.trim().trim_end_matches('/');
    if settings.api == EloverblikApi::Thirdparty && configured == default_base_url() {
        THIRDPARTY_BASE_URL.to_owned()
    } else {
        configured.to_owned()
    }
}

#[async_trait]
impl Provider for EloverblikProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn account(&self) -> &str {
        &self.account
    }

    async fn meters(&self) -> Result<Vec<Meter>, ProviderError> {
        self.list().await
    }

    async fn read(&self, meters: &[Meter], range: TimeRange, out: &mut dyn Receive) {
        if meters.iter().any(|m| self.point(&m.id).is_none()) {
            if let Err(error) = self.list().await {
                let results = meters.iter().map(|m| (m.id.clone(), Err(error.clone()))).collect();
                let _ = out
                    .window(ReadWindow {
                        covered: range,
                        results,
                    })
                    .await;
                return;
            }
        }
        let mut groups: BTreeMap<Aggregation, Vec<&str>> = BTreeMap::new();
        let mut unknown = Vec::new();
        for meter in meters {
            match self.point(&meter.id) {
                Some(info) => {
                    let ids = groups.entry(info.aggregation).or_default();
                    if !ids.contains(&meter.id.as_str()) {
                        ids.push(&meter.id);
                    }
                }
                None => unknown.push((
                    meter.id.clone(),
                    Err(ProviderError::UnknownMeter {
                        provider: KIND,
                        meter: meter.id.clone(),
                    }),
                )),
            }
        }
        if !unknown.is_empty()
            && out
                .window(ReadWindow {
                    covered: range,
                    results: unknown,
                })
                .await
                .is_break()
        {
            return;
        }
        let mut pass = Pass::default();
        for (aggregation, ids) in &groups {
            if !self.read_group(*aggregation, ids, range, &mut pass, out).await {
                return;
            }
        }
    }

    async fn values(&self, meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        let info = self.info(meter).await?;
        let wants_live = self.pricing.is_some() && meter.direction == Direction::Consumption;
        let wants_co2 = self.pricing.as_ref().is_some_and(Pricing::co2_enabled);
        if info.child || !(self.charges_enabled || wants_live || wants_co2) {
            return Ok(Vec::new());
        }
        let resolution = info.aggregation.price_resolution();
        let charges = if self.charges_enabled || wants_live {
            Some(self.charges_of(meter).await)
        } else {
            None
        };
        let mut values = match (&charges, self.charges_enabled) {
            (Some(Ok(charges)), true) => charges::values(charges, self.clock.now()),
            (Some(Err(e)), true) if !(wants_live || wants_co2) => return Err(e.clone()),
            _ => Vec::new(),
        };
        if let (Some(pricing), Some(Ok(charges))) = (&self.pricing, &charges) {
            values.extend(pricing.live_values(meter, info.area, Some(charges), resolution).await);
        }
        if let Some(pricing) = self.pricing.as_ref().filter(|_| wants_co2) {
            values.extend(pricing.co2_value(info.area, self.finest_resolution()).await);
        }
        match charges {
            Some(Err(e)) if values.is_empty() => Err(e),
            _ => Ok(values),
        }
    }

    /// Live prices and the CO2 intensity change by themselves: read them every quarter hour.
    fn values_refresh(&self) -> Option<Duration> {
        self.pricing.as_ref().map(|_| CO2_REFRESH)
    }

    /// The point's price area, its tariffs (owner, code, name) and whether Energi Data Service
    /// has their price history.
    async fn check_lines(&self, meter: &Meter) -> Vec<CheckLine> {
        let Some(pricing) = &self.pricing else {
            return vec![CheckLine::info("prices: off (prices = false)")];
        };
        let info = match self.info(meter).await {
            Ok(info) => info,
            Err(e) => return vec![CheckLine::problem(format!("prices: {e}"))],
        };
        if info.child {
            return vec![CheckLine::info(
                "prices: none (a child point; its parent carries the cost)",
            )];
        }
        let charges = match meter.direction {
            Direction::Consumption => Some(self.charges_of(meter).await),
            Direction::Production => None,
        };
        pricing.check_lines(info.area, charges).await
    }

    /// Prices from Energi Data Service: what a consumed kWh cost (spot, the tariffs valid at
    /// the hour, VAT, the supplier's mark-up) or what a produced one earned.
    async fn prices(&self, meter: &Meter, range: TimeRange) -> Result<Option<PriceSeries>, ProviderError> {
        let Some(pricing) = &self.pricing else {
            return Ok(None);
        };
        let info = self.info(meter).await?;
        if info.child {
            return Ok(None);
        }
        match meter.direction {
            Direction::Consumption => {
                let charges = self.charges_of(meter).await?;
                pricing.series(meter, info.area, Some(&charges), range).await
            }
            Direction::Production => pricing.series(meter, info.area, None, range).await,
        }
    }

    fn next_data_possible(&self, data_until: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        schedule::next_data_possible(data_until, now, self.oldest_read())
    }

    fn max_history(&self) -> Duration {
        MAX_HISTORY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn base_url_per_api() {
        let account = |api, base_url: &str| Settings {
            name: None,
            refresh_token: Secret::new("x"),
            base_url: base_url.into(),
            api,
            metering_points: Vec::new(),
            charges: true,
            prices: false,
            price_area: None,
            price_resolution: None,
            co2: true,
            vat: 25.0,
            supplier_markup: 0.0,
            supplier_fee: 0.0,
            energidataservice_url: crate::providers::eloverblik::default_energidataservice_url(),
        };
        assert_eq!(
            base_url(&account(EloverblikApi::Customer, &default_base_url())),
            default_base_url()
        );
        assert_eq!(
            base_url(&account(EloverblikApi::Thirdparty, &default_base_url())),
            THIRDPARTY_BASE_URL
        );
        assert_eq!(
            base_url(&account(EloverblikApi::Thirdparty, "http://127.0.0.1:8080/tp/ ")),
            "http://127.0.0.1:8080/tp"
        );
        assert_eq!(
            base_url(&account(EloverblikApi::Customer, "https://pre.example/customerapi/")),
            "https://pre.example/customerapi"
        );
    }
}
