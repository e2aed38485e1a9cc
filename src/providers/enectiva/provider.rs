//! [`EnectivaProvider`]: one `[[enectiva]]` account as a [`Provider`].

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Duration as TimeDelta;

use super::api::{endpoint_url, parse_base_url, EnectivaApi};
use super::deltas::deltas;
use super::error_body::parse_error_body;
use super::meters::{self, Entity, MeterContext};
use super::paging::{read_window, Pages, Window, PAGE_LIMIT};
use super::readings::RegisterReading;
use super::token::{self, Credentials};
use super::values::{monthly_values, register_value, DeltaSource};
use super::Settings;
use super::{intervals, jsonapi, KIND};
use crate::clock::{system_clock, SharedClock};
use crate::http::{build_client, ApiClient, RetryPolicy, Sleeper, TokioSleeper};
use crate::model::{Meter, MeterValue, TimeRange};
use crate::providers::{Provider, ProviderError, Receive, Window as ReadWindow};

/// How far past a range's end to look for the reading that closes its last interval, in the same
/// request as the range itself.
const LOOKAHEAD: TimeDelta = TimeDelta::days(1);

/// How far back to look for the latest register value, nearest first.
const LATEST_SEARCH: [TimeDelta; 3] = [TimeDelta::days(3), TimeDelta::days(35), TimeDelta::days(400)];

/// What can be swapped: tests inject a recording sleeper, a clock they move, a faster policy.
pub struct Options {
    pub policy: RetryPolicy,
    pub sleeper: Arc<dyn Sleeper>,
    pub clock: SharedClock,
    /// Per request, including reading the body.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: RetryPolicy::default(),
            sleeper: Arc::new(TokioSleeper),
            clock: system_clock(),
            timeout: Duration::from_secs(60),
        }
    }
}

pub struct EnectivaProvider {
    account: String,
    include_deactivated: bool,
    api: EnectivaApi,
    clock: SharedClock,
    /// Learned by `meters()`: which building each meter is in, for its deltas.
    contexts: Mutex<HashMap<String, MeterContext>>,
    /// Meters whose own deltas the API does not offer (404 / 403); their building's are used.
    no_meter_deltas: Mutex<HashSet<String>>,
}

impl EnectivaProvider {
    /// The account as configured, labelled `account` in logs.
    pub fn new(config: &Settings, account: String, options: Options) -> Result<Self, ProviderError> {
        let base = parse_base_url(&config.base_url)?;
        let client = build_client(KIND, options.timeout)?;
        let http = ApiClient::new(KIND, client, options.policy, parse_error_body).with_sleeper(options.sleeper);
        let credentials = Credentials {
            account: account.clone(),
            customer_uuid: config.customer_uuid.trim().to_owned(),
            login_token: config.login_token.clone().ok_or_else(|| ProviderError::Config {
                provider: KIND,
                message: format!("account {account}: login_token is not set, so this account reads no meters"),
            })?,
            url: endpoint_url(&base, &["access_tokens"]),
        };
        let login_token = credentials.login_token.clone();
        let tokens = token::cache(http.clone(), credentials, options.clock.clone());
        Ok(EnectivaProvider {
            api: EnectivaApi::new(account.clone(), base, http, tokens, login_token),
            account,
            include_deactivated: config.include_deactivated,
            clock: options.clock,
            contexts: Mutex::new(HashMap::new()),
            no_meter_deltas: Mutex::new(HashSet::new()),
        })
    }

    async fn entities(&self) -> Result<HashMap<String, Entity>, ProviderError> {
        match self.api.get(&["entities"], &[], entities_collection).await {
            Ok(collection) => Ok(meters::entities(&collection.resources)),
            // Buildings only add areas and time zones; a token without that scope still reads meters.
            Err(e) if is_unavailable(&e) => {
                tracing::warn!(account = %self.account, "buildings (GET /entities) not available: {e}; meters get no area and the Europe/Prague time zone");
                Ok(HashMap::new())
            }
            Err(e) => Err(e),
        }
    }

    async fn context(&self, meter: &Meter) -> Result<MeterContext, ProviderError> {
        if let Some(context) = lock(&self.contexts).get(&meter.id) {
            return Ok(context.clone());
        }
        let resource = self
            .api
            .get(&["meters", &meter.id], &[], meter_resource)
            .await
            .map_err(|e| match e {
                ProviderError::Http(ref http) if http.status() == Some(404) => ProviderError::UnknownMeter {
                    provider: KIND,
                    meter: meter.id.clone(),
                },
                other => other,
            })?;
        let (_, context) = meters::meter(&resource, &HashMap::new());
        lock(&self.contexts).insert(meter.id.clone(), context.clone());
        Ok(context)
    }

    async fn latest_reading(&self, meter: &Meter) -> Result<Option<RegisterReading>, ProviderError> {
        let now = self.clock.now();
        let mut until = None;
        for back in LATEST_SEARCH {
            let from = now - back;
            let found = read_window(&self.api, meter, Window { from, until }, |_| false).await?;
            if let Some(latest) = found.into_iter().max_by_key(|r| r.time) {
                return Ok(Some(latest));
            }
            until = Some(from);
        }
        Ok(None)
    }

    async fn monthly(&self, meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        let context = self.context(meter).await?;
        let today = self.clock.now().with_timezone(&meter.timezone).date_naive();
        let energy = context.energy.as_deref();
        if !lock(&self.no_meter_deltas).contains(&meter.id) {
            match self.api.get(&["meters", &meter.id, "deltas"], &[], deltas).await {
                Ok(deltas) => {
                    let values = monthly_values(&deltas, meter, energy, &DeltaSource::Meter, today);
                    if !values.is_empty() {
                        return Ok(values);
                    }
                }
                Err(e) if is_unavailable(&e) => {
                    tracing::debug!(meter = %meter.id, "meter deltas not available ({e}); using the building's");
                    lock(&self.no_meter_deltas).insert(meter.id.clone());
                }
                Err(e) => return Err(e),
            }
        }
        let Some(entity_id) = context.entity_id else {
            return Ok(Vec::new());
        };
        let building = match self.api.get(&["entities", &entity_id, "deltas"], &[], deltas).await {
            Ok(building) => building,
            Err(e) if is_unavailable(&e) => {
                tracing::debug!(meter = %meter.id, entity = %entity_id, "building deltas not available ({e})");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let source = DeltaSource::Entity {
            id: entity_id,
            name: meter.device.suggested_area.clone(),
        };
        Ok(monthly_values(&building, meter, energy, &source, today))
    }

    /// One meter's intervals in `range`, a page of register readings at a time: each page's
    /// intervals go to `out` before the next page is fetched. The last reading of a page opens
    /// the first interval of the next; one reading after the range closes its last interval.
    async fn read_meter(&self, meter: &Meter, range: TimeRange, out: &mut dyn Receive) -> ControlFlow<()> {
        let send = |covered_from, covered_to, result| ReadWindow {
            covered: TimeRange::new(covered_from, covered_to),
            results: vec![(meter.id.clone(), result)],
        };
        if range.is_empty() {
            return out.window(send(range.start, range.end, Ok(Vec::new()))).await;
        }
        let lookahead = range.end + LOOKAHEAD;
        let mut pages = Pages::new(
            &self.api,
            meter,
            Window {
                from: range.start,
                until: Some(lookahead),
            },
        );
        let mut carry: Option<RegisterReading> = None;
        let mut covered_from = range.start;
        loop {
            let page = match pages.next().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => return out.window(send(covered_from, range.end, Err(e))).await,
            };
            let closed = page.iter().any(|r| r.time >= range.end);
            let registers: Vec<RegisterReading> = carry.into_iter().chain(page).collect();
            carry = registers.iter().copied().max_by_key(|r| r.time);
            let covered_to = match carry {
                Some(last) if !closed => last.time.max(covered_from),
                _ => range.end,
            };
            let window = send(
                covered_from,
                covered_to,
                Ok(intervals::intervals(meter, registers, range)),
            );
            out.window(window).await?;
            covered_from = covered_to;
            if closed {
                return ControlFlow::Continue(());
            }
        }
        // Sparse readings (monthly manual ones) may be further apart than the lookahead.
        let closing = match carry {
            Some(last) if lookahead < self.clock.now() => {
                let next = Window {
                    from: lookahead,
                    until: None,
                };
                match read_window(&self.api, meter, next, |found| !found.is_empty()).await {
                    Ok(found) => found.into_iter().min_by_key(|r| r.time).map(|next| vec![last, next]),
                    Err(e) => return out.window(send(covered_from, range.end, Err(e))).await,
                }
            }
            _ => None,
        };
        let intervals = closing.map_or_else(Vec::new, |registers| intervals::intervals(meter, registers, range));
        out.window(send(covered_from, range.end, Ok(intervals))).await
    }
}

/// 404 (no such resource here) or 403 (the token lacks that scope): the data is not offered.
fn entities_collection(body: &[u8], endpoint: &str) -> Result<jsonapi::Collection, ProviderError> {
    jsonapi::collection(body, endpoint, "entities")
}

fn meters_collection(body: &[u8], endpoint: &str) -> Result<jsonapi::Collection, ProviderError> {
    jsonapi::collection(body, endpoint, "meters")
}

fn meter_resource(body: &[u8], endpoint: &str) -> Result<jsonapi::Resource, ProviderError> {
    jsonapi::single(body, endpoint, "meters")
}

fn is_unavailable(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Http(http) if matches!(http.status(), Some(403 | 404)))
}

/// The maps behind these locks stay consistent whatever panicked elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Provider for EnectivaProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn account(&self) -> &str {
        &self.account
    }

    async fn meters(&self) -> Result<Vec<Meter>, ProviderError> {
        let entities = self.entities().await?;
        let query: Vec<(&str, String)> = if self.include_deactivated {
            vec![("include_deactivated", "true".into())]
        } else {
            Vec::new()
        };
        let collection = self.api.get(&["meters"], &query, meters_collection).await?;
        if collection.sent >= PAGE_LIMIT {
            tracing::warn!(account = %self.account, "GET /meters returned {} meters, the API's list limit; some may be missing", collection.sent);
        }
        let (meters, contexts): (Vec<Meter>, HashMap<String, MeterContext>) = collection
            .resources
            .iter()
            .map(|resource| {
                let (meter, context) = meters::meter(resource, &entities);
                let id = meter.id.clone();
                (meter, (id, context))
            })
            .unzip();
        *lock(&self.contexts) = contexts;
        Ok(meters)
    }

    async fn read(&self, meters: &[Meter], range: TimeRange, out: &mut dyn Receive) {
        for meter in meters {
            if self.read_meter(meter, range, out).await.is_break() {
                return;
            }
        }
    }

    async fn values(&self, meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        let mut values = vec![register_value(meter, self.latest_reading(meter).await?)];
        values.extend(self.monthly(meter).await?);
        Ok(values)
    }
}
