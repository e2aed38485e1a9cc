//! From spot prices and tariffs to what a kWh cost (or earned), interval by interval, and what a
//! set of readings cost in total, broken into its parts.
//!
//! The intervals are the spot price's: hourly before 1 October 2025, quarter-hourly from then.
//! Tariffs change only on the local hour, so each spot interval has one tariff sum, read at its
//! start. An interval is priced only when its spot price and every tariff are known.
//!
//! Not honoured: the reduced electricity tax for electric heating (`taxReduction` in ElOverblik's
//! metering point details). The API gives only a flag ("entitled to a potential reduction") and a
//! date, no rate; the reduced rate applies to the consumption above a yearly threshold, so the
//! price of an hour would depend on the meter's running yearly total, not on the hour. The
//! full Elafgift from `DatahubPricelist` is used for every kWh, which overstates the tax of such
//! a customer's consumption above the threshold.

use serde::Serialize;

use super::spot::SpotPrice;
use super::tariffs::TariffSet;
use crate::model::{PricePoint, PricePurpose, PriceSeries, Unit};

/// The supplier's side of a price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Terms {
    /// What a consumed kWh costs: `(spot + Σ tariffs) × (1 + vat) + markup`.
    ///
    /// `vat` is the rate, 0.25 in Denmark. `markup` is the supplier's own charge in DKK per kWh
    /// as the user copies it from the supplier's price list, which for households already
    /// includes VAT: it is added after VAT and never multiplied by it.
    Consumption { vat: f64, markup: f64 },
    /// What a produced kWh earns: `spot − fee`. No tariffs and no VAT: a household producer
    /// is paid the bare spot price, less the supplier's fee in DKK per kWh.
    Production { fee: f64 },
}

impl Terms {
    pub(crate) fn purpose(&self) -> PricePurpose {
        match self {
            Terms::Consumption { .. } => PricePurpose::Cost,
            Terms::Production { .. } => PricePurpose::Compensation,
        }
    }

    /// Whether tariffs take part: only consumption pays them.
    pub(crate) fn uses_tariffs(&self) -> bool {
        matches!(self, Terms::Consumption { .. })
    }

    /// A VAT rate outside 0–100 % or a non-finite amount is a configuration mistake.
    pub(crate) fn check(&self) -> Result<(), String> {
        match *self {
            Terms::Consumption { vat, markup } => {
                if !(0.0..=1.0).contains(&vat) {
                    return Err(format!(
                        "VAT rate {vat} is not a fraction between 0 and 1 (Danish VAT is 0.25)"
                    ));
                }
                if !markup.is_finite() {
                    return Err(format!("supplier mark-up {markup} is not a number of DKK per kWh"));
                }
            }
            Terms::Production { fee } => {
                if !fee.is_finite() {
                    return Err(format!("supplier fee {fee} is not a number of DKK per kWh"));
                }
            }
        }
        Ok(())
    }
}

/// One interval's price in DKK per kWh, in its parts. `total = spot + tariffs + vat + markup`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct PriceBreakdown {
    pub(crate) start: chrono::DateTime<chrono::Utc>,
    pub(crate) end: chrono::DateTime<chrono::Utc>,
    /// Spot price, excluding VAT.
    pub(crate) spot: f64,
    /// Every tariff, taxes included, excluding VAT.
    pub(crate) tariffs: f64,
    /// The part of `tariffs` that is tax (Elafgift).
    pub(crate) tax: f64,
    /// VAT on spot and tariffs.
    pub(crate) vat: f64,
    /// The supplier's own amount: the mark-up (VAT included) on consumption, minus the fee on
    /// production.
    pub(crate) markup: f64,
    pub(crate) total: f64,
}

/// The priced intervals of `spot`; where a tariff is unknown the interval is left out.
pub(crate) fn breakdown(spot: &[SpotPrice], tariffs: &TariffSet, terms: Terms) -> Vec<PriceBreakdown> {
    spot.iter()
        .filter_map(|s| match terms {
            Terms::Consumption { vat, markup } => {
                let t = tariffs.at(s.start)?;
                let vat_amount = (s.price + t.total) * vat;
                Some(PriceBreakdown {
                    start: s.start,
                    end: s.end,
                    spot: s.price,
                    tariffs: t.total,
                    tax: t.tax,
                    vat: vat_amount,
                    markup,
                    total: s.price + t.total + vat_amount + markup,
                })
            }
            Terms::Production { fee } => Some(PriceBreakdown {
                start: s.start,
                end: s.end,
                spot: s.price,
                tariffs: 0.0,
                tax: 0.0,
                vat: 0.0,
                markup: -fee,
                total: s.price - fee,
            }),
        })
        .collect()
}

/// The provider-neutral series of the totals.
pub(crate) fn to_series(rows: &[PriceBreakdown], purpose: PricePurpose) -> PriceSeries {
    PriceSeries {
        currency: "DKK".into(),
        per_unit: Unit::KWh,
        purpose,
        points: rows
            .iter()
            .map(|r| PricePoint {
                start: r.start,
                end: r.end,
                price: r.total,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::super::tariffs::{ChargeKey, Resolution, TariffRow};
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn quarters(from: &str, prices: &[f64]) -> Vec<SpotPrice> {
        let start = utc(from);
        prices
            .iter()
            .enumerate()
            .map(|(i, &price)| SpotPrice {
                start: start + Duration::minutes(15 * i as i64),
                end: start + Duration::minutes(15 * (i as i64 + 1)),
                price,
            })
            .collect()
    }

    /// A grid tariff of 0.2 and a tax of 0.3, both flat all day.
    fn two_charges() -> (Vec<ChargeKey>, TariffSet) {
        let from = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let row = |code: &str, price: f64, tax: bool| TariffRow {
            charge: ChargeKey::new("1", code),
            name: None,
            owner_name: None,
            description: None,
            vat_class: None,
            valid_from: from,
            valid_to: None,
            resolution: Resolution::Daily,
            prices: vec![Some(price)],
            tax,
        };
        let keys = vec![ChargeKey::new("1", "grid"), ChargeKey::new("1", "tax")];
        let set = TariffSet::new(&keys, vec![row("grid", 0.2, false), row("tax", 0.3, true)]);
        (keys, set)
    }

    #[test]
    fn consumption_adds_vat_on_spot_and_tariffs_and_markup_after_vat() {
        let (_, set) = two_charges();
        let spot = quarters("2025-11-03T10:00:00Z", &[0.4, -0.1]);
        let rows = breakdown(
            &spot,
            &set,
            Terms::Consumption {
                vat: 0.25,
                markup: 0.05,
            },
        );
        assert_eq!(rows.len(), 2);
        // (0.4 + 0.5) × 1.25 + 0.05
        assert!((rows[0].total - 1.175).abs() < 1e-12);
        assert!((rows[0].vat - 0.225).abs() < 1e-12);
        assert!((rows[0].tax - 0.3).abs() < 1e-12);
        // A negative spot price lowers the VAT base too: (−0.1 + 0.5) × 1.25 + 0.05
        assert!((rows[1].total - 0.55).abs() < 1e-12);
        let series = to_series(&rows, PricePurpose::Cost);
        assert_eq!(series.currency, "DKK");
        assert_eq!(series.per_unit, Unit::KWh);
        assert_eq!(series.points[1].start, utc("2025-11-03T10:15:00Z"));
        assert_eq!(series.points[1].price, rows[1].total);
    }

    #[test]
    fn production_is_spot_less_fee_without_tariffs_or_vat() {
        let (_, set) = two_charges();
        let spot = quarters("2025-11-03T10:00:00Z", &[0.4, -0.1]);
        let rows = breakdown(&spot, &set, Terms::Production { fee: 0.02 });
        assert!((rows[0].total - 0.38).abs() < 1e-12);
        assert!((rows[1].total - -0.12).abs() < 1e-12);
        assert_eq!((rows[1].tariffs, rows[1].vat), (0.0, 0.0));
        assert_eq!(Terms::Production { fee: 0.0 }.purpose(), PricePurpose::Compensation);
    }

    #[test]
    fn unknown_tariffs_leave_the_interval_out() {
        let keys = vec![ChargeKey::new("1", "gone")];
        let set = TariffSet::new(&keys, Vec::new());
        let spot = quarters("2025-11-03T10:00:00Z", &[0.4]);
        assert!(breakdown(&spot, &set, Terms::Consumption { vat: 0.25, markup: 0.0 }).is_empty());
        // Production does not need the tariffs.
        assert_eq!(breakdown(&spot, &set, Terms::Production { fee: 0.0 }).len(), 1);
    }

    #[test]
    fn terms_are_checked() {
        assert!(Terms::Consumption { vat: 0.25, markup: 0.0 }.check().is_ok());
        let err = Terms::Consumption { vat: 25.0, markup: 0.0 }.check().unwrap_err();
        assert!(err.contains("0.25"), "{err}");
        assert!(Terms::Consumption {
            vat: 0.25,
            markup: f64::NAN
        }
        .check()
        .is_err());
        assert!(Terms::Production { fee: f64::INFINITY }.check().is_err());
        assert!(Terms::Production { fee: -0.01 }.check().is_ok());
    }
}
