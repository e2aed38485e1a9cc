//! Tariff histories from `DatahubPricelist`: which price list of a charge applied at an instant,
//! and what a set of charges adds to a kWh then.
//!
//! Validity and hours are Danish wall-clock time, as DataHub writes them. Using the local hour
//! handles both daylight-saving days without special cases: on the 25-hour day the repeated
//! hour 02–03 reads as hour 2 both times and takes `Price3` twice; on the 23-hour day hour 2
//! never occurs and `Price3` goes unused.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::TZ;

/// A charge as DataHub identifies it: the owner's GLN and the charge type code. ElOverblik's
/// `getcharges` calls them `owner` and `priceId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ChargeKey {
    pub(crate) owner_gln: String,
    pub(crate) code: String,
}

impl ChargeKey {
    pub(crate) fn new(owner_gln: impl Into<String>, code: impl Into<String>) -> ChargeKey {
        ChargeKey {
            owner_gln: owner_gln.into().trim().to_owned(),
            code: code.into().trim().to_owned(),
        }
    }
}

impl fmt::Display for ChargeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "charge {} of owner {}", self.code, self.owner_gln)
    }
}

/// A charge for which `DatahubPricelist` has no tariff rows at all: a wrong code, a charge that
/// is not a tariff, or one the dataset does not carry. Its hours cannot be priced.
pub(crate) type MissingCharge = ChargeKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Resolution {
    /// `PT1H`: `Price1`..`Price24` for local hours 00–01 .. 23–24.
    Hourly,
    /// `P1D`: `Price1` for every hour of the day.
    Daily,
}

/// One price list of one charge: DKK per kWh excluding VAT, valid over `[valid_from, valid_to)`
/// in Danish local time (`valid_to` `None` = open ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TariffRow {
    pub(crate) charge: ChargeKey,
    /// `Note`, e.g. `Nettarif B lav`.
    pub(crate) name: Option<String>,
    /// `ChargeOwner`, e.g. `N1 A/S - 131`.
    pub(crate) owner_name: Option<String>,
    /// `Description`, e.g. `Tarif for timeaflæst måler`.
    pub(crate) description: Option<String>,
    /// `VATClass`, kept for display only: VAT is applied to every tariff, as the price facts
    /// say, and the meaning of DataHub's class codes is not part of them.
    pub(crate) vat_class: Option<String>,
    pub(crate) valid_from: NaiveDateTime,
    pub(crate) valid_to: Option<NaiveDateTime>,
    pub(crate) resolution: Resolution,
    /// 24 prices for an hourly list, one for a daily one; `Price1` is always present.
    pub(crate) prices: Vec<Option<f64>>,
    /// `TaxIndicator`: the charge is a tax (Elafgift), not a grid or system tariff.
    pub(crate) tax: bool,
}

impl TariffRow {
    pub(crate) fn covers(&self, local: NaiveDateTime) -> bool {
        self.valid_from <= local && self.valid_to.is_none_or(|to| local < to)
    }

    /// The price for local hour `hour` (0–23).
    ///
    /// A missing `PriceN` falls back to `Price1`: DataHub lists a tariff that is flat over the
    /// day with `Price1` alone and the other hours empty, even when its resolution is `PT1H`.
    /// Reading an empty hour as "no price" would leave every such day unpriced; reading it as
    /// zero would under-price it.
    pub(crate) fn price_for_hour(&self, hour: u32) -> Option<f64> {
        let first = self.prices.first().copied().flatten();
        match self.resolution {
            Resolution::Daily => first,
            Resolution::Hourly => self
                .prices
                .get(usize::try_from(hour).ok()?)
                .copied()
                .flatten()
                .or(first),
        }
    }
}

/// Every price list of one charge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TariffHistory {
    pub(crate) charge: ChargeKey,
    rows: Vec<TariffRow>,
}

impl TariffHistory {
    pub(crate) fn new(charge: ChargeKey, mut rows: Vec<TariffRow>) -> TariffHistory {
        // Stable: of two rows starting together, the later one in the answer stays later.
        rows.sort_by_key(|r| r.valid_from);
        TariffHistory { charge, rows }
    }

    pub(crate) fn rows(&self) -> &[TariffRow] {
        &self.rows
    }

    /// The row in force at `instant`. Where rows overlap (an open-ended list not yet closed when
    /// its successor was published), the one that started last is the newer decision and wins.
    pub(crate) fn row_at(&self, instant: DateTime<Utc>) -> Option<&TariffRow> {
        let local = instant.with_timezone(&TZ).naive_local();
        self.rows.iter().rfind(|r| r.covers(local))
    }
}

/// What a set of charges adds to one kWh at an instant, excluding VAT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TariffSum {
    /// Every tariff, taxes included.
    pub(crate) total: f64,
    /// The part that is tax (rows with `TaxIndicator`), e.g. Elafgift.
    pub(crate) tax: f64,
}

/// The tariffs of one metering point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TariffSet {
    histories: Vec<TariffHistory>,
    missing: Vec<MissingCharge>,
}

impl TariffSet {
    /// The histories of `wanted` from `rows`; rows of other charges are dropped (a filter on two
    /// columns also matches owner/code pairs nobody asked for).
    pub(crate) fn new(wanted: &[ChargeKey], rows: Vec<TariffRow>) -> TariffSet {
        let mut keys = wanted.to_vec();
        keys.sort();
        keys.dedup();
        let mut histories = Vec::new();
        let mut missing = Vec::new();
        for key in keys {
            let own: Vec<TariffRow> = rows.iter().filter(|r| r.charge == key).cloned().collect();
            if own.is_empty() {
                missing.push(key);
            } else {
                histories.push(TariffHistory::new(key, own));
            }
        }
        TariffSet { histories, missing }
    }

    /// No charges at all: production, or a point without tariffs. Adds nothing to any hour.
    pub(crate) fn none() -> TariffSet {
        TariffSet {
            histories: Vec::new(),
            missing: Vec::new(),
        }
    }

    pub(crate) fn histories(&self) -> &[TariffHistory] {
        &self.histories
    }

    /// Charges without any price list: the caller logs or shows them.
    pub(crate) fn missing(&self) -> &[MissingCharge] {
        &self.missing
    }

    /// The sum of every charge at `instant`, or `None` when any charge has no price then: a
    /// partial sum would be a wrong price, and an absent price is better than a wrong one.
    pub(crate) fn at(&self, instant: DateTime<Utc>) -> Option<TariffSum> {
        if !self.missing.is_empty() {
            return None;
        }
        let hour = instant.with_timezone(&TZ).hour();
        let mut sum = TariffSum { total: 0.0, tax: 0.0 };
        for history in &self.histories {
            let row = history.row_at(instant)?;
            let price = row.price_for_hour(hour)?;
            sum.total += price;
            if row.tax {
                sum.tax += price;
            }
        }
        Some(sum)
    }
}

#[cfg(test)]
mod tests;
