//! [`Prices`]: spot prices and tariff price lists, fetched through the cache.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, NaiveDate};
use tokio::sync::Mutex;

use super::cache::{load_or_forget, pricelist_file, PricelistFile, SpotCache, SpotDay};
use super::client::EnergiDataService;
use super::co2::{self, Co2Data};
use super::series::{self, PriceBreakdown, Terms};
use super::spot::{day_range, days_covering, SpotPrice};
use super::tariffs::{ChargeKey, MissingCharge, TariffSet};
use super::{PriceArea, PricesError, TZ};
use crate::clock::SharedClock;
use crate::model::{PriceSeries, TimeRange};
use crate::state::StateStore;

/// Prices for metering points, fetched through a cache in the state store.
pub(crate) struct Prices {
    client: EnergiDataService,
    store: StateStore,
    spot_cache: SpotCache,
    clock: SharedClock,
    /// One fetch at a time per kind, so concurrent callers do not ask for the same day twice.
    spot_lock: Mutex<()>,
    pricelist_lock: Mutex<()>,
    /// The last CO2 answer per area; the lock also keeps two callers from asking at once.
    co2: Mutex<HashMap<PriceArea, Co2Data>>,
}

impl Prices {
    pub(crate) fn new(client: EnergiDataService, store: StateStore, clock: SharedClock) -> Prices {
        Prices {
            client,
            spot_cache: SpotCache::new(store.clone()),
            store,
            clock,
            spot_lock: Mutex::new(()),
            pricelist_lock: Mutex::new(()),
            co2: Mutex::new(HashMap::new()),
        }
    }

    /// The price of each interval of `range` that is known, with the charges that have no price
    /// list at all (their hours are not priced; the caller logs or shows them).
    pub(crate) async fn series(
        &self,
        area: PriceArea,
        charges: &[ChargeKey],
        range: TimeRange,
        terms: Terms,
    ) -> Result<(PriceSeries, Vec<MissingCharge>), PricesError> {
        let (rows, missing) = self.breakdown(area, charges, range, terms).await?;
        Ok((series::to_series(&rows, terms.purpose()), missing))
    }

    /// Like [`Prices::series`], with each price in its parts: spot, tariffs, of which tax, VAT
    /// and the supplier's amount. With [`cost`] it tells what a day's readings cost and why.
    pub(crate) async fn breakdown(
        &self,
        area: PriceArea,
        charges: &[ChargeKey],
        range: TimeRange,
        terms: Terms,
    ) -> Result<(Vec<PriceBreakdown>, Vec<MissingCharge>), PricesError> {
        terms.check().map_err(PricesError::Terms)?;
        // Production pays no tariffs: no price list call for it.
        let tariffs = if terms.uses_tariffs() {
            self.tariffs(charges).await?
        } else {
            TariffSet::none()
        };
        let spot = self.spot(area, range).await?;
        Ok((series::breakdown(&spot, &tariffs, terms), tariffs.missing().to_vec()))
    }

    /// Spot prices of `area` overlapping `range`, in DKK per kWh excluding VAT, sorted. Days not
    /// published yet are absent.
    pub(crate) async fn spot(&self, area: PriceArea, range: TimeRange) -> Result<Vec<SpotPrice>, PricesError> {
        let Some((from, to)) = days_covering(range) else {
            return Ok(Vec::new());
        };
        let _one_at_a_time = self.spot_lock.lock().await;
        let now = self.clock.now();
        let mut days = self.spot_cache.load(area, from, to).await?;
        let due: Vec<NaiveDate> = from
            .iter_days()
            .take_while(|d| *d < to)
            .filter(|d| SpotDay::wants_fetch(*d, days.get(d), now))
            .collect();
        for (run_from, run_to) in runs(&due) {
            let span = TimeRange::new(day_range(run_from).start, day_range(run_to).start);
            let fetched = self.client.spot_prices(area, span).await?;
            let mut fresh = BTreeMap::new();
            for day in run_from.iter_days().take_while(|d| *d < run_to) {
                let bounds = day_range(day);
                let of_day: Vec<SpotPrice> = fetched
                    .iter()
                    .filter(|p| bounds.start <= p.start && p.start < bounds.end)
                    .copied()
                    .collect();
                fresh.insert(day, SpotDay::new(day, now, &of_day));
            }
            let short: Vec<String> = fresh
                .iter()
                .filter(|(_, d)| !d.complete)
                .map(|(day, _)| day.to_string())
                .collect();
            tracing::info!(
                %area,
                from = %run_from,
                to = %run_to,
                prices = fetched.len(),
                "fetched spot prices{}",
                if short.is_empty() {
                    String::new()
                } else {
                    format!("; not (yet) complete: {}", short.join(", "))
                }
            );
            self.spot_cache.save(area, fresh.clone()).await?;
            days.extend(fresh);
        }
        let mut out: Vec<SpotPrice> = days
            .values()
            .flat_map(SpotDay::spot_prices)
            .filter(|p| p.start < range.end && range.start < p.end)
            .collect();
        out.sort_by_key(|p| p.start);
        Ok(out)
    }

    /// The tariff histories of `charges`. Price lists are asked at most once every
    /// [`PRICELIST_REFRESH`]; when that call fails, lists fetched earlier are used (they change
    /// a few times a year) and the failure is logged.
    pub(crate) async fn tariffs(&self, charges: &[ChargeKey]) -> Result<TariffSet, PricesError> {
        let mut wanted = charges.to_vec();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(TariffSet::none());
        }
        let _one_at_a_time = self.pricelist_lock.lock().await;
        let now = self.clock.now();
        let name = pricelist_file();
        let mut file: PricelistFile = load_or_forget(&self.store, name.clone()).await?.unwrap_or_default();
        if !file.fresh(&wanted, now) {
            // `end` selects by ValidFrom: a year ahead takes in lists already announced.
            let until = now.with_timezone(&TZ).date_naive() + Days::new(366);
            match self.client.pricelists(&wanted, until).await {
                Ok(rows) => {
                    tracing::info!(charges = wanted.len(), rows = rows.len(), "fetched price lists");
                    file.record(&wanted, &rows, now);
                    self.store.save(name.clone(), file.clone()).await?;
                }
                Err(e) if file.covers(&wanted) => {
                    tracing::warn!("{e}; using the price lists fetched earlier");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(TariffSet::new(&wanted, file.rows(&wanted)))
    }

    /// The CO2 intensity of `area`: the newest realised row and the forecast of today and
    /// tomorrow, asked again once the last answer is [`co2::FRESH_FOR`] old (one call per
    /// dataset).
    pub(crate) async fn co2(&self, area: PriceArea) -> Result<Co2Data, PricesError> {
        let mut cache = self.co2.lock().await;
        let now = self.clock.now();
        if let Some(data) = cache.get(&area).filter(|d| d.fresh(now)) {
            return Ok(data.clone());
        }
        let [(realised_from, realised_to), (forecast_from, forecast_to)] = co2::days(now);
        let realised = self
            .client
            .co2(co2::REALISED, area, realised_from, realised_to, true)
            .await?
            .pop();
        let forecast = self
            .client
            .co2(co2::FORECAST, area, forecast_from, forecast_to, false)
            .await?;
        tracing::debug!(%area, forecast = forecast.len(), "fetched the CO2 intensity");
        let data = Co2Data {
            fetched: now,
            realised,
            forecast,
        };
        cache.insert(area, data.clone());
        Ok(data)
    }
}

/// Sorted days as `[from, to)` runs of consecutive days, each within one calendar month, so a
/// backfill is asked a month per call and lands in the cache month by month.
fn runs(days: &[NaiveDate]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &day in days {
        let next = day.succ_opt().unwrap_or(day);
        match out.last_mut() {
            Some((from, to)) if *to == day && from.month() == day.month() && from.year() == day.year() => *to = next,
            _ => out.push((day, next)),
        }
    }
    out
}

#[cfg(test)]
mod run_tests {
    use super::*;

    #[test]
    fn runs_are_consecutive_days_within_a_month() {
        let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
        assert_eq!(
            runs(&[d(9, 29), d(9, 30), d(10, 1), d(10, 2), d(10, 5)]),
            vec![(d(9, 29), d(10, 1)), (d(10, 1), d(10, 3)), (d(10, 5), d(10, 6))]
        );
        assert!(runs(&[]).is_empty());
    }
}
