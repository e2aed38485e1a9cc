//! An account's side of [`prices`](super::prices): which price area and charges a metering point
//! has, the supplier terms from the settings, and the guard that keeps Energi Data Service from
//! delaying the meter data: every call has a time budget, and after a failure the service is left
//! alone for [`PAUSE`] (the cost statistic and the price sensor catch up later; the readings and
//! the consumption statistics never wait for it).
//!
//! What it gives the bridge: the [`PriceSeries`] of a window (cost for consumption points,
//! compensation for production points), and the live price sensors of a consumption point (the
//! all-in price and the spot price, each with a timetable of today's and tomorrow's intervals).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use serde_json::{json, Map, Value};

use super::dto::{Charges, Tariff};
use super::prices::{ChargeKey, ClientOptions, EnergiDataService, PriceArea, PriceBreakdown, Prices, PricesError};
use super::{Settings, KIND, TZ};
use crate::http::{RetryPolicy, Sleeper};
use crate::model::{local_midnight, Direction, Meter, MeterValue, PriceSeries, TimeRange, TimedValue, ValueKind};
use crate::providers::kit::SharedClock;
use crate::providers::{CheckLine, ProviderError};
use crate::state::StateStore;

/// After a failed call, Energi Data Service is not asked again for this long.
pub const PAUSE: chrono::Duration = chrono::Duration::minutes(10);
/// The most one price question may take, retries included; a backfill month that did not make
/// it is asked again next time (what arrived is cached already).
pub const BUDGET: Duration = Duration::from_secs(60);
/// Per request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a poll waits for a price question. A slower answer goes on in the background and
/// fills the cache, so the meter data and the consumption statistics never wait for Energi Data
/// Service longer than this; the cost and the price sensor catch up at a later poll.
const POLL_WAIT: Duration = Duration::from_secs(5);

/// Fewer retries than the service's own policy: prices are never urgent, and the next poll asks
/// again.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        max_interval: Duration::from_secs(20),
        throttle_floor: Duration::from_secs(20),
        max_retry_after: Duration::from_secs(40),
        ..super::prices::retry_policy()
    }
}

/// One account's prices.
pub struct Pricing {
    prices: Arc<Prices>,
    area: Option<PriceArea>,
    settings: Settings,
    clock: SharedClock,
    paused_until: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// Charges already reported as missing, so that each is logged once, not every poll.
    reported: Mutex<HashSet<String>>,
    /// The last live values per meter, shown while the service is paused.
    live: Mutex<HashMap<String, Vec<MeterValue>>>,
}

impl Pricing {
    pub fn new(
        settings: &Settings,
        store: StateStore,
        clock: SharedClock,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Pricing, ProviderError> {
        let client = EnergiDataService::new(ClientOptions {
            base_url: settings.energidataservice_url.trim().to_owned(),
            timeout: REQUEST_TIMEOUT,
            retry: retry_policy(),
            sleeper,
        })
        .map_err(to_provider_error)?;
        Ok(Pricing {
            prices: Arc::new(Prices::new(client, store, clock.clone())),
            area: settings.price_area,
            settings: settings.clone(),
            clock,
            paused_until: Arc::new(Mutex::new(None)),
            reported: Mutex::new(HashSet::new()),
            live: Mutex::new(HashMap::new()),
        })
    }

    /// The configured area, else the point's own.
    pub fn area(&self, point_area: Option<PriceArea>) -> Option<PriceArea> {
        self.area.or(point_area)
    }

    /// The prices of `meter` over `range`; `None` while the service is paused after a failure or
    /// when the point's area is unknown. `charges` is the point's charges (consumption only).
    pub async fn series(
        &self,
        meter: &Meter,
        area: Option<PriceArea>,
        charges: Option<&Charges>,
        range: TimeRange,
    ) -> Result<Option<PriceSeries>, ProviderError> {
        let Some(area) = self.area(area) else {
            self.report_once(&format!("area {}", meter.id), || {
                format!(
                    "metering point {}: no price area (its postcode is not a Danish one); set price_area = \"DK1\" \
                     or \"DK2\" in its [[eloverblik]] account to get its cost",
                    meter.id
                )
            });
            return Ok(None);
        };
        let keys = match meter.direction {
            Direction::Consumption => match self.keys(meter, charges) {
                Some(keys) => keys,
                None => return Ok(None),
            },
            Direction::Production => Vec::new(),
        };
        let terms = self.settings.terms(meter.direction);
        let answer = self
            .guarded(POLL_WAIT, move |prices| async move {
                prices.series(area, &keys, range, terms).await
            })
            .await?;
        Ok(answer.map(|(series, missing)| {
            self.report_missing(meter, charges, &missing);
            series
        }))
    }

    /// The all-in price and the spot price of a consumption point, now, with today's and
    /// tomorrow's intervals. While the service is paused, the last values stand in.
    pub async fn live_values(
        &self,
        meter: &Meter,
        area: Option<PriceArea>,
        charges: Option<&Charges>,
    ) -> Vec<MeterValue> {
        if meter.direction != Direction::Consumption {
            return Vec::new();
        }
        let (Some(area), Some(keys)) = (self.area(area), self.keys(meter, charges)) else {
            return Vec::new();
        };
        let now = self.clock.now();
        let today = now.with_timezone(&TZ).date_naive();
        let range = TimeRange::new(local_midnight(today, TZ), local_midnight(today + Days::new(2), TZ));
        let terms = self.settings.terms(Direction::Consumption);
        let fresh = match self
            .guarded(POLL_WAIT, move |prices| async move {
                prices.breakdown(area, &keys, range, terms).await
            })
            .await
        {
            Ok(Some((rows, missing))) => {
                self.report_missing(meter, charges, &missing);
                Some(live_values(&rows, now))
            }
            Ok(None) | Err(_) => None,
        };
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match fresh {
            Some(values) => {
                live.insert(meter.id.clone(), values.clone());
                values
            }
            None => live.get(&meter.id).cloned().unwrap_or_default(),
        }
    }

    /// What `check` shows: the price area and where it comes from; for consumption each tariff
    /// (owner, code, name) and whether `DatahubPricelist` has its price history; for production
    /// what a kWh earns.
    pub async fn check_lines(
        &self,
        point_area: Option<PriceArea>,
        charges: Option<Result<Charges, ProviderError>>,
    ) -> Vec<CheckLine> {
        let mut lines = Vec::new();
        match (self.area, point_area) {
            (Some(area), _) => lines.push(CheckLine::info(format!(
                "price area: {area} (price_area in the config)"
            ))),
            (None, Some(area)) => lines.push(CheckLine::info(format!("price area: {area} (from the postcode)"))),
            (None, None) => {
                lines.push(CheckLine::problem(
                    "price area: unknown (no Danish postcode); set price_area = \"DK1\" or \"DK2\"",
                ));
                return lines;
            }
        }
        let charges = match charges {
            None => {
                lines.push(CheckLine::info(format!(
                    "compensation: the spot price less a supplier fee of {} DKK/kWh",
                    self.settings.supplier_fee
                )));
                return lines;
            }
            Some(Err(e)) => {
                lines.push(CheckLine::problem(format!("charges: {e}")));
                return lines;
            }
            Some(Ok(charges)) => charges,
        };
        let tariffs = charges.tariffs.as_deref().unwrap_or_default();
        if tariffs.is_empty() {
            lines.push(CheckLine::info("charges: no tariffs listed"));
            return lines;
        }
        let keys: Vec<ChargeKey> = tariffs.iter().filter_map(charge_key).collect();
        let found = match self
            .guarded(BUDGET, move |prices| async move { prices.tariffs(&keys).await })
            .await
        {
            Ok(Some(set)) => Some(set),
            Ok(None) => {
                lines.push(CheckLine::problem(format!(
                    "Energi Data Service: paused after a failure (asked again in {} minutes)",
                    PAUSE.num_minutes()
                )));
                None
            }
            Err(e) => {
                lines.push(CheckLine::problem(format!("Energi Data Service: {e}")));
                None
            }
        };
        for tariff in tariffs {
            let what = format!(
                "tariff {} {} {:?}",
                tariff.owner.as_deref().unwrap_or("?"),
                tariff.price_id.as_deref().unwrap_or("(no priceId)"),
                tariff.name.as_deref().unwrap_or("?")
            );
            let line = match (charge_key(tariff), &found) {
                (None, _) => {
                    CheckLine::problem(format!("{what}: no priceId, so its price history cannot be looked up"))
                }
                (Some(_), None) => CheckLine::info(format!("{what}: price history not checked")),
                (Some(key), Some(set)) => match set.histories().iter().find(|h| h.charge == key) {
                    Some(history) => CheckLine::info(format!(
                        "{what}: price history found in Energi Data Service ({} price lists)",
                        history.rows().len()
                    )),
                    None => CheckLine::problem(format!("{what}: no price history in Energi Data Service")),
                },
            };
            lines.push(line);
        }
        lines
    }

    /// The point's charges as price list keys; `None` (logged once) when a tariff cannot be
    /// matched, because a cost without one of its tariffs would be wrong.
    fn keys(&self, meter: &Meter, charges: Option<&Charges>) -> Option<Vec<ChargeKey>> {
        let tariffs = charges?.tariffs.as_deref().unwrap_or_default();
        let mut keys = Vec::new();
        for tariff in tariffs {
            match charge_key(tariff) {
                Some(key) => keys.push(key),
                None => {
                    self.report_once(&format!("nokey {} {:?}", meter.id, tariff.name), || {
                        format!(
                            "metering point {}: tariff {:?} of owner {} has no priceId (the third-party API does not \
                             give one), so its price history cannot be looked up; no cost is imported for this \
                             point",
                            meter.id,
                            tariff.name.as_deref().unwrap_or("?"),
                            tariff.owner.as_deref().unwrap_or("?")
                        )
                    });
                    return None;
                }
            }
        }
        Some(keys)
    }

    /// Runs one price question within [`BUDGET`] unless the service is paused; a failure pauses
    /// it and is returned (the caller logs it once). The question runs as a task of its own: the
    /// caller waits for it at most `wait` (a poll: [`POLL_WAIT`]) and then goes on without prices
    /// (`None`), while the task finishes into the cache.
    async fn guarded<T, F, Fut>(&self, wait: Duration, question: F) -> Result<Option<T>, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Prices>) -> Fut,
        Fut: std::future::Future<Output = Result<T, PricesError>> + Send + 'static,
    {
        let now = self.clock.now();
        if self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| now < until)
        {
            return Ok(None);
        }
        let call = question(self.prices.clone());
        let paused_until = self.paused_until.clone();
        let task = tokio::spawn(async move {
            let error = match tokio::time::timeout(BUDGET, call).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => to_provider_error(e),
                Err(_) => ProviderError::Response {
                    provider: KIND,
                    endpoint: "Energi Data Service".into(),
                    message: format!(
                        "no answer within {} s; the cost and the price sensor catch up later",
                        BUDGET.as_secs()
                    ),
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
            Ok(Err(join)) => Err(ProviderError::Response {
                provider: KIND,
                endpoint: "Energi Data Service".into(),
                message: format!("the price question stopped: {join}"),
            }),
            Err(_) => {
                tracing::debug!(
                    "prices: Energi Data Service is slow; going on without prices, they are cached for a later poll"
                );
                Ok(None)
            }
        }
    }

    fn report_missing(&self, meter: &Meter, charges: Option<&Charges>, missing: &[ChargeKey]) {
        for key in missing {
            let name = charges
                .and_then(|c| c.tariffs.as_deref())
                .unwrap_or_default()
                .iter()
                .find(|t| charge_key(t).as_ref() == Some(key))
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            self.report_once(&format!("missing {} {key}", meter.id), || {
                format!(
                    "metering point {}: charge {name:?} (owner {}, code {}) has no price history in Energi Data \
                     Service's DatahubPricelist; the cost of the hours it applies to is not imported",
                    meter.id, key.owner_gln, key.code
                )
            });
        }
    }

    fn report_once(&self, key: &str, message: impl FnOnce() -> String) {
        if self
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned())
        {
            tracing::warn!("{}", message());
        }
    }
}

/// ElOverblik's `owner` + `priceId` are `GLN_Number` + `ChargeTypeCode` in the price lists.
fn charge_key(tariff: &Tariff) -> Option<ChargeKey> {
    let owner = tariff.owner.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    let code = tariff.price_id.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    Some(ChargeKey::new(owner, code))
}

fn to_provider_error(e: PricesError) -> ProviderError {
    ProviderError::Response {
        provider: KIND,
        endpoint: "Energi Data Service".into(),
        message: e.to_string(),
    }
}

fn round(v: f64) -> f64 {
    (v * 1e5).round() / 1e5
}

/// The price sensors from the priced intervals of today and tomorrow.
pub fn live_values(rows: &[PriceBreakdown], now: DateTime<Utc>) -> Vec<MeterValue> {
    if rows.is_empty() {
        return Vec::new();
    }
    let today = now.with_timezone(&TZ).date_naive();
    let is_today = |r: &&PriceBreakdown| r.start.with_timezone(&TZ).date_naive() == today;
    let interval = |r: &PriceBreakdown| {
        json!({
            "start": r.start.with_timezone(&TZ).to_rfc3339(),
            "end": r.end.with_timezone(&TZ).to_rfc3339(),
            "price": round(r.total),
            "spot": round(r.spot),
            "tariffs": round(r.tariffs),
        })
    };
    let today_rows: Vec<&PriceBreakdown> = rows.iter().filter(is_today).collect();
    let tomorrow_rows: Vec<&PriceBreakdown> = rows.iter().filter(|r| !is_today(r)).collect();
    let stats = |pick: fn(&PriceBreakdown) -> f64| -> Map<String, Value> {
        let values: Vec<f64> = today_rows.iter().map(|r| pick(r)).collect();
        let mut m = Map::new();
        if !values.is_empty() {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            m.insert("today_min".into(), json!(round(min)));
            m.insert("today_max".into(), json!(round(max)));
            m.insert("today_mean".into(), json!(round(mean)));
        }
        m
    };
    let timetable = |pick: fn(&PriceBreakdown) -> f64| -> Vec<TimedValue> {
        rows.iter()
            .map(|r| TimedValue {
                start: r.start,
                end: r.end,
                value: round(pick(r)),
            })
            .collect()
    };
    let mut price_attributes = stats(|r| r.total);
    price_attributes.insert("currency".into(), json!("DKK"));
    price_attributes.insert("vat_included".into(), json!(true));
    price_attributes.insert("today".into(), today_rows.iter().map(|r| interval(r)).collect());
    price_attributes.insert("tomorrow".into(), tomorrow_rows.iter().map(|r| interval(r)).collect());
    let mut spot_attributes = stats(|r| r.spot);
    spot_attributes.insert("currency".into(), json!("DKK"));
    spot_attributes.insert("vat_included".into(), json!(false));
    let mut values = vec![
        MeterValue {
            key: "price".into(),
            name: "Price".into(),
            value: None,
            unit: Some("DKK/kWh".into()),
            kind: ValueKind::Price,
            attributes: price_attributes,
            timetable: timetable(|r| r.total),
        },
        MeterValue {
            key: "spot_price".into(),
            name: "Spot price".into(),
            value: None,
            unit: Some("DKK/kWh".into()),
            kind: ValueKind::Price,
            attributes: spot_attributes,
            timetable: timetable(|r| r.spot),
        },
    ];
    for v in &mut values {
        v.value = v.value_at(now);
    }
    values
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn row(start: DateTime<Utc>, minutes: i64, spot: f64, tariffs: f64) -> PriceBreakdown {
        let vat = (spot + tariffs) * 0.25;
        PriceBreakdown {
            start,
            end: start + chrono::Duration::minutes(minutes),
            spot,
            tariffs,
            tax: 0.0,
            vat,
            markup: 0.0,
            total: spot + tariffs + vat,
        }
    }

    #[test]
    fn the_live_price_is_the_current_interval_with_today_and_tomorrow_in_attributes() {
        // 23:00 UTC on 25 November is 00:00 local on the 26th.
        let midnight = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let rows: Vec<PriceBreakdown> = (0..4)
            .map(|q| row(midnight + chrono::Duration::minutes(15 * q), 15, 0.1 * q as f64, 0.5))
            .chain([row(midnight + chrono::Duration::hours(24), 15, -0.2, 0.5)])
            .collect();
        let now = midnight + chrono::Duration::minutes(20);
        let values = live_values(&rows, now);
        assert_eq!(values.len(), 2);
        let price = &values[0];
        assert_eq!(price.key, "price");
        assert_eq!(price.value, Some(round((0.1 + 0.5) * 1.25)));
        assert_eq!(price.attributes["today"].as_array().unwrap().len(), 4);
        assert_eq!(price.attributes["tomorrow"].as_array().unwrap().len(), 1);
        assert_eq!(price.attributes["today_min"], json!(0.625));
        assert_eq!(price.attributes["today_max"], json!(1.0));
        assert_eq!(price.attributes["tomorrow"][0]["spot"], json!(-0.2));
        assert_eq!(
            price.attributes["today"][1]["start"],
            json!("2025-11-26T00:15:00+01:00")
        );
        assert_eq!(values[1].value, Some(0.1));
        assert_eq!(price.next_change(now), Some(midnight + chrono::Duration::minutes(30)));
        assert_eq!(
            price.value_at(midnight + chrono::Duration::minutes(50)),
            Some(round(0.8 * 1.25))
        );
    }

    #[test]
    fn a_tariff_without_a_price_id_has_no_key() {
        let tariff = |price_id: Option<&str>| Tariff {
            name: Some("Nettarif C".into()),
            owner: Some("5790001089030".into()),
            price_id: price_id.map(str::to_owned),
            valid_from_date: None,
            valid_to_date: None,
            period_type: Some("PT1H".into()),
            prices: None,
        };
        assert_eq!(
            charge_key(&tariff(Some(" B2D "))),
            Some(ChargeKey::new("5790001089030", "B2D"))
        );
        assert_eq!(charge_key(&tariff(None)), None);
    }
}
