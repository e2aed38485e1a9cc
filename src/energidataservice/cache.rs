//! Keeping prices in the state store so that each is fetched about once.
//!
//! Spot prices never change once published, so a complete day is kept for good and never asked
//! again. A day's prices appear the afternoon before (about 13:00 Danish time): a day is asked
//! only from then on, and a day that came back short is asked again after
//! [`RETRY_INCOMPLETE`] while it is today or tomorrow, after [`RETRY_PAST_INCOMPLETE`] once
//! it is over. Price lists change a few times a year and are refreshed once a day.
//!
//! In the steady state that is, per price area, **one spot call a day** (tomorrow's prices, on
//! the first poll after 13:00; a second one if that poll came before the publication), plus
//! **one `DatahubPricelist` call a day** per set of charges. A backfill costs one spot call per
//! run of missing days (two if the run crosses 1 October 2025).
//!
//! Files: `prices/spot-<area>-<yyyy>-<mm>.json`, one per area and month (about 65 kB for a
//! month of quarter hours), so no file grows without bound; [`SpotCache::prune`] removes the
//! months a caller no longer needs. `prices/pricelists.json` holds the price lists of the
//! charges asked for in the last [`PRICELIST_FORGET`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::area::PriceArea;
use super::spot::{day_range, SpotDataset, SpotPrice};
use super::tariffs::{ChargeKey, TariffRow};
use super::TZ;
use crate::state::{StateError, StateStore};

/// Danish local hour after which the next day's spot prices are expected.
pub(crate) const PUBLICATION_HOUR: u32 = 13;
/// How long a short answer for today or tomorrow stands before asking again.
pub(crate) const RETRY_INCOMPLETE: Duration = Duration::minutes(30);
/// A day already over that came back short has a hole in the dataset; asking daily is enough.
pub(crate) const RETRY_PAST_INCOMPLETE: Duration = Duration::hours(24);
/// Price lists are asked again after this long.
pub(crate) const PRICELIST_REFRESH: Duration = Duration::hours(24);
/// A charge not asked for this long is dropped from the price list file.
pub(crate) const PRICELIST_FORGET: Duration = Duration::days(30);

const DIR: &str = "prices";

/// When the prices of `day` are expected: 13:00 Danish time the day before.
pub(crate) fn published_at(day: NaiveDate) -> DateTime<Utc> {
    let eve = day.pred_opt().unwrap_or(day);
    let at = eve.and_hms_opt(PUBLICATION_HOUR, 0, 0).expect("a valid hour");
    TZ.from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| day_range(day).start)
}

/// One Danish day of spot prices as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpotDay {
    pub(crate) fetched_at: DateTime<Utc>,
    /// Every interval of the day is there.
    pub(crate) complete: bool,
    /// `[start as unix seconds, length in minutes, DKK per kWh]`: compact, a month of quarter
    /// hours is ~3000 of these.
    pub(crate) prices: Vec<(i64, u16, f64)>,
}

impl SpotDay {
    pub(crate) fn new(day: NaiveDate, fetched_at: DateTime<Utc>, prices: &[SpotPrice]) -> SpotDay {
        let expected = SpotDataset::for_day(day).prices_per_day(day);
        SpotDay {
            fetched_at,
            complete: prices.len() >= expected,
            prices: prices
                .iter()
                .map(|p| {
                    let minutes = u16::try_from((p.end - p.start).num_minutes()).unwrap_or(0);
                    (p.start.timestamp(), minutes, p.price)
                })
                .collect(),
        }
    }

    pub(crate) fn spot_prices(&self) -> impl Iterator<Item = SpotPrice> + '_ {
        self.prices.iter().filter_map(|&(start, minutes, price)| {
            let start = DateTime::from_timestamp(start, 0)?;
            Some(SpotPrice {
                start,
                end: start + Duration::minutes(i64::from(minutes)),
                price,
            })
        })
    }

    /// Whether the day must be asked (again) at `now`.
    pub(crate) fn wants_fetch(day: NaiveDate, cached: Option<&SpotDay>, now: DateTime<Utc>) -> bool {
        if now < published_at(day) {
            return false;
        }
        match cached {
            None => true,
            Some(c) if c.complete => false,
            Some(c) => {
                let wait = if now >= day_range(day).end {
                    RETRY_PAST_INCOMPLETE
                } else {
                    RETRY_INCOMPLETE
                };
                now - c.fetched_at >= wait
            }
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SpotMonth {
    #[serde(default)]
    days: BTreeMap<NaiveDate, SpotDay>,
}

/// Spot prices per area and month in the state store.
#[derive(Debug, Clone)]
pub(crate) struct SpotCache {
    store: StateStore,
}

impl SpotCache {
    pub(crate) fn new(store: StateStore) -> SpotCache {
        SpotCache { store }
    }

    pub(crate) fn file(area: PriceArea, year: i32, month: u32) -> PathBuf {
        Path::new(DIR).join(format!(
            "spot-{}-{year:04}-{month:02}.json",
            area.as_str().to_ascii_lowercase()
        ))
    }

    /// The cached days of `[from, to)`.
    pub(crate) async fn load(
        &self,
        area: PriceArea,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, SpotDay>, StateError> {
        let mut out = BTreeMap::new();
        for (year, month) in months(from, to) {
            let stored: Option<SpotMonth> = load_or_forget(&self.store, Self::file(area, year, month)).await?;
            out.extend(
                stored
                    .unwrap_or_default()
                    .days
                    .into_iter()
                    .filter(|(day, _)| (from..to).contains(day)),
            );
        }
        Ok(out)
    }

    /// Stores `days`, each replacing what was kept for it.
    pub(crate) async fn save(&self, area: PriceArea, days: BTreeMap<NaiveDate, SpotDay>) -> Result<(), StateError> {
        let mut by_month: BTreeMap<(i32, u32), Vec<(NaiveDate, SpotDay)>> = BTreeMap::new();
        for (day, entry) in days {
            by_month
                .entry((day.year(), day.month()))
                .or_default()
                .push((day, entry));
        }
        for ((year, month), entries) in by_month {
            let name = Self::file(area, year, month);
            let mut stored: SpotMonth = load_or_forget(&self.store, name.clone()).await?.unwrap_or_default();
            stored.days.extend(entries);
            self.store.save(name, stored).await?;
        }
        Ok(())
    }
}

/// A price cache file: unlike cursors, cached prices can always be fetched again.
pub(crate) async fn load_or_forget<T: serde::de::DeserializeOwned + Send + 'static>(
    store: &StateStore,
    name: PathBuf,
) -> Result<Option<T>, StateError> {
    store
        .load_cache(name, "price cache file", "its prices will be fetched again")
        .await
}

/// The (year, month) pairs that `[from, to)` touches.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    let mut day = from.with_day(1).unwrap_or(from);
    while day < to {
        out.push((day.year(), day.month()));
        match day.checked_add_months(chrono::Months::new(1)) {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// The price lists of one charge as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CachedCharge {
    pub(crate) charge: ChargeKey,
    pub(crate) fetched_at: DateTime<Utc>,
    /// Empty when the dataset has none: remembered, so a missing charge is not asked every poll.
    pub(crate) rows: Vec<TariffRow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PricelistFile {
    #[serde(default)]
    pub(crate) charges: Vec<CachedCharge>,
}

impl PricelistFile {
    pub(crate) fn get(&self, charge: &ChargeKey) -> Option<&CachedCharge> {
        self.charges.iter().find(|c| &c.charge == charge)
    }

    /// Every one of `wanted` is cached and younger than [`PRICELIST_REFRESH`].
    pub(crate) fn fresh(&self, wanted: &[ChargeKey], now: DateTime<Utc>) -> bool {
        wanted
            .iter()
            .all(|w| self.get(w).is_some_and(|c| now - c.fetched_at < PRICELIST_REFRESH))
    }

    /// Every one of `wanted` has some answer, however old.
    pub(crate) fn covers(&self, wanted: &[ChargeKey]) -> bool {
        wanted.iter().all(|w| self.get(w).is_some())
    }

    /// Records a fetch of `wanted` that returned `rows`, and forgets charges nobody asked for
    /// in [`PRICELIST_FORGET`].
    pub(crate) fn record(&mut self, wanted: &[ChargeKey], rows: &[TariffRow], now: DateTime<Utc>) {
        self.charges.retain(|c| !wanted.contains(&c.charge));
        for charge in wanted {
            if self.get(charge).is_some() {
                continue;
            }
            self.charges.push(CachedCharge {
                charge: charge.clone(),
                fetched_at: now,
                rows: rows.iter().filter(|r| &r.charge == charge).cloned().collect(),
            });
        }
        self.charges.retain(|c| now - c.fetched_at < PRICELIST_FORGET);
    }

    pub(crate) fn rows(&self, wanted: &[ChargeKey]) -> Vec<TariffRow> {
        wanted
            .iter()
            .filter_map(|w| self.get(w))
            .flat_map(|c| c.rows.iter().cloned())
            .collect()
    }
}

pub(crate) fn pricelist_file() -> PathBuf {
    Path::new(DIR).join("pricelists.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hourly(day: NaiveDate, count: usize) -> Vec<SpotPrice> {
        let start = day_range(day).start;
        (0..count)
            .map(|i| SpotPrice {
                start: start + Duration::hours(i as i64),
                end: start + Duration::hours(i as i64 + 1),
                price: i as f64 / 10.0,
            })
            .collect()
    }

    #[test]
    fn prices_are_expected_from_13_danish_time_the_day_before() {
        // 27 October 2025 is CET: 13:00 local on the 26th is 12:00 UTC.
        assert_eq!(published_at(day(2025, 10, 27)), utc("2025-10-26T12:00:00Z"));
        // Summer time: 13:00 CEST is 11:00 UTC.
        assert_eq!(published_at(day(2025, 6, 2)), utc("2025-06-01T11:00:00Z"));
    }

    #[test]
    fn when_a_day_is_asked() {
        let tomorrow = day(2025, 10, 27);
        let before = utc("2025-10-26T11:59:00Z");
        let after = utc("2025-10-26T12:00:00Z");
        assert!(!SpotDay::wants_fetch(tomorrow, None, before));
        assert!(SpotDay::wants_fetch(tomorrow, None, after));
        let short = SpotDay::new(tomorrow, after, &[]);
        assert!(!short.complete);
        assert!(!SpotDay::wants_fetch(
            tomorrow,
            Some(&short),
            after + Duration::minutes(29)
        ));
        assert!(SpotDay::wants_fetch(
            tomorrow,
            Some(&short),
            after + Duration::minutes(30)
        ));
        let past = day(2025, 3, 30);
        let full = SpotDay::new(past, after, &hourly(past, 23));
        assert!(full.complete);
        assert!(!SpotDay::wants_fetch(past, Some(&full), after + Duration::days(400)));
        let holey = SpotDay::new(past, after, &hourly(past, 22));
        assert!(!SpotDay::wants_fetch(past, Some(&holey), after + Duration::hours(23)));
        assert!(SpotDay::wants_fetch(past, Some(&holey), after + Duration::hours(24)));
    }

    #[tokio::test]
    async fn month_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SpotCache::new(StateStore::open(dir.path()).unwrap());
        let now = utc("2025-11-01T00:00:00Z");
        let (a, b) = (day(2025, 9, 30), day(2025, 10, 1));
        let days = BTreeMap::from([
            (a, SpotDay::new(a, now, &hourly(a, 24))),
            (b, SpotDay::new(b, now, &hourly(b, 3))),
        ]);
        cache.save(PriceArea::DK1, days.clone()).await.unwrap();
        assert!(dir.path().join("prices/spot-dk1-2025-09.json").exists());
        assert!(dir.path().join("prices/spot-dk1-2025-10.json").exists());
        assert_eq!(cache.load(PriceArea::DK1, a, day(2025, 10, 2)).await.unwrap(), days);
        assert!(cache
            .load(PriceArea::DK2, a, day(2025, 10, 2))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(cache.load(PriceArea::DK1, b, day(2025, 10, 2)).await.unwrap().len(), 1);
        let back: Vec<SpotPrice> = days[&a].spot_prices().collect();
        assert_eq!(back, hourly(a, 24));

        // Saving a month again keeps its other days and writes a backup.
        cache
            .save(
                PriceArea::DK1,
                BTreeMap::from([(a, SpotDay::new(a, now, &hourly(a, 24)))]),
            )
            .await
            .unwrap();
        assert!(dir.path().join("prices/spot-dk1-2025-09.json.prev").exists());
        assert_eq!(cache.load(PriceArea::DK1, a, day(2025, 10, 2)).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_corrupt_month_is_forgotten_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SpotCache::new(StateStore::open(dir.path()).unwrap());
        std::fs::create_dir_all(dir.path().join("prices")).unwrap();
        std::fs::write(dir.path().join("prices/spot-dk2-2025-10.json"), b"{\"days\": [").unwrap();
        let loaded = cache
            .load(PriceArea::DK2, day(2025, 10, 1), day(2025, 10, 2))
            .await
            .unwrap();
        assert!(loaded.is_empty());
        assert!(!dir.path().join("prices/spot-dk2-2025-10.json").exists());
    }

    #[test]
    fn file_names_and_months() {
        assert_eq!(
            months(day(2025, 11, 30), day(2026, 2, 1)),
            vec![(2025, 11), (2025, 12), (2026, 1)]
        );
        assert_eq!(months(day(2025, 11, 30), day(2025, 12, 1)), vec![(2025, 11)]);
    }

    #[test]
    fn pricelist_file_refreshes_daily_and_forgets_unused_charges() {
        let t0 = utc("2025-10-26T08:00:00Z");
        let a = ChargeKey::new("1", "A");
        let b = ChargeKey::new("1", "B");
        let mut file = PricelistFile::default();
        assert!(!file.fresh(std::slice::from_ref(&a), t0));
        file.record(std::slice::from_ref(&a), &[], t0);
        assert!(file.fresh(std::slice::from_ref(&a), t0 + Duration::hours(23)));
        assert!(!file.fresh(std::slice::from_ref(&a), t0 + Duration::hours(24)));
        assert!(file.covers(std::slice::from_ref(&a)));
        assert!(!file.covers(&[a.clone(), b.clone()]));
        file.record(std::slice::from_ref(&b), &[], t0 + Duration::days(31));
        assert_eq!(file.charges.len(), 1);
        assert_eq!(file.charges[0].charge, b);
    }
}
