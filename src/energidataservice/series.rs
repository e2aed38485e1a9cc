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
use crate::model::{IntervalReading, PricePoint, PricePurpose, PriceSeries, Unit};

/// Danish VAT on electricity.
pub const DANISH_VAT: f64 = 0.25;

/// The supplier's side of a price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Terms {
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
    pub fn purpose(&self) -> PricePurpose {
        match self {
            Terms::Consumption { .. } => PricePurpose::Cost,
            Terms::Production { .. } => PricePurpose::Compensation,
        }
    }

    /// Whether tariffs take part: only consumption pays them.
    pub fn uses_tariffs(&self) -> bool {
        matches!(self, Terms::Consumption { .. })
    }

    /// A VAT rate outside 0–100 % or a non-finite amount is a configuration mistake.
    pub fn check(&self) -> Result<(), String> {
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
pub struct PriceBreakdown {
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    /// Spot price, excluding VAT.
    pub spot: f64,
    /// Every tariff, taxes included, excluding VAT.
    pub tariffs: f64,
    /// The part of `tariffs` that is tax (Elafgift).
    pub tax: f64,
    /// VAT on spot and tariffs.
    pub vat: f64,
    /// The supplier's own amount: the mark-up (VAT included) on consumption, minus the fee on
    /// production.
    pub markup: f64,
    pub total: f64,
}

/// The priced intervals of `spot`; where a tariff is unknown the interval is left out.
pub fn breakdown(spot: &[SpotPrice], tariffs: &TariffSet, terms: Terms) -> Vec<PriceBreakdown> {
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
pub fn to_series(rows: &[PriceBreakdown], purpose: PricePurpose) -> PriceSeries {
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

/// What a set of readings cost, in DKK, in the parts of [`PriceBreakdown`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CostSummary {
    /// Energy priced, in kWh.
    pub kwh: f64,
    /// Energy that fell where no price is known; it is in none of the amounts.
    pub unpriced_kwh: f64,
    pub spot: f64,
    pub tariffs: f64,
    pub tax: f64,
    pub vat: f64,
    pub markup: f64,
    pub total: f64,
}

/// What `readings` cost at the prices of `rows` (sorted, as [`breakdown`] makes them).
///
/// A reading longer than a price interval (an hourly reading against quarter-hour prices)
/// spreads its energy evenly over its duration, so each quarter takes a quarter of the hour's
/// energy: the hour is priced at the mean of its four quarter prices. Readings in units that
/// are not energy in Wh/kWh/MWh cannot be priced per kWh and are left out.
pub fn cost(rows: &[PriceBreakdown], readings: &[IntervalReading]) -> CostSummary {
    let mut sum = CostSummary::default();
    for reading in readings {
        let (Some(value), Some(factor)) = (reading.value, kwh_per_unit(&reading.unit)) else {
            continue;
        };
        let energy = value * factor;
        let length = (reading.end - reading.start).num_milliseconds();
        if length <= 0 {
            continue;
        }
        let mut priced = 0.0;
        let first = rows.partition_point(|r| r.end <= reading.start);
        for row in rows[first..].iter().take_while(|r| r.start < reading.end) {
            let overlap = (row.end.min(reading.end) - row.start.max(reading.start)).num_milliseconds();
            let share = energy * overlap as f64 / length as f64;
            priced += share;
            sum.spot += share * row.spot;
            sum.tariffs += share * row.tariffs;
            sum.tax += share * row.tax;
            sum.vat += share * row.vat;
            sum.markup += share * row.markup;
            sum.total += share * row.total;
        }
        sum.kwh += priced;
        sum.unpriced_kwh += energy - priced;
    }
    sum
}

fn kwh_per_unit(unit: &Unit) -> Option<f64> {
    match unit {
        Unit::Wh => Some(0.001),
        Unit::KWh => Some(1.0),
        Unit::MWh => Some(1000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::super::tariffs::{ChargeKey, Resolution, TariffRow};
    use super::*;
    use crate::model::Quality;

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

    fn reading(start: &str, minutes: i64, kwh: Option<f64>, unit: Unit) -> IntervalReading {
        IntervalReading {
            start: utc(start),
            end: utc(start) + Duration::minutes(minutes),
            value: kwh,
            unit,
            quality: Quality::Measured,
            reading: None,
        }
    }

    #[test]
    fn an_hourly_reading_takes_the_mean_of_its_quarters() {
        let (_, set) = two_charges();
        let spot = quarters("2025-11-03T10:00:00Z", &[0.1, 0.2, 0.3, 0.6]);
        let rows = breakdown(&spot, &set, Terms::Consumption { vat: 0.25, markup: 0.0 });
        let hour = cost(&rows, &[reading("2025-11-03T10:00:00Z", 60, Some(2.0), Unit::KWh)]);
        // Mean spot 0.3: 2 kWh × 0.3 = 0.6 spot; tariffs 2 × 0.5; VAT 25 % of 1.6.
        assert!((hour.spot - 0.6).abs() < 1e-12);
        assert!((hour.tariffs - 1.0).abs() < 1e-12);
        assert!((hour.tax - 0.6).abs() < 1e-12);
        assert!((hour.vat - 0.4).abs() < 1e-12);
        assert!((hour.total - 2.0).abs() < 1e-12);
        assert_eq!((hour.kwh, hour.unpriced_kwh), (2.0, 0.0));
    }

    #[test]
    fn energy_outside_the_prices_is_counted_as_unpriced() {
        let (_, set) = two_charges();
        let spot = quarters("2025-11-03T10:00:00Z", &[0.1, 0.2]);
        let rows = breakdown(&spot, &set, Terms::Consumption { vat: 0.0, markup: 0.0 });
        let sum = cost(
            &rows,
            &[
                reading("2025-11-03T10:00:00Z", 60, Some(4.0), Unit::KWh),
                reading("2025-11-03T10:00:00Z", 15, Some(1000.0), Unit::Wh),
                reading("2025-11-03T10:00:00Z", 15, None, Unit::KWh),
                reading("2025-11-03T10:00:00Z", 15, Some(9.0), Unit::CubicMeters),
            ],
        );
        // Half the hour is priced: 2 kWh at 0.1 and 0.2 (+0.5 tariffs each), plus 1 kWh at 0.6.
        assert!((sum.kwh - 3.0).abs() < 1e-12);
        assert!((sum.unpriced_kwh - 2.0).abs() < 1e-12);
        assert!((sum.total - (0.6 + 0.7 + 0.6)).abs() < 1e-12);
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
