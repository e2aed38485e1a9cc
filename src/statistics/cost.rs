//! What each hour cost: every reading times the price of its time, from a provider-neutral
//! [`PriceSeries`]. A reading whose interval the series does not fully cover leaves its hour
//! without a cost, to be imported once the price is known, rather than imported wrong.

use std::collections::BTreeSet;

use super::hourly::{hour_start, Hours};
use crate::model::{IntervalReading, PriceSeries, Quality, Unit};

/// The cost of each hour of `readings` (quantities in `unit`) that `series` prices fully.
/// Readings are booked at the hour they start, as the quantities are.
pub(crate) fn costs(series: &PriceSeries, readings: &[IntervalReading], unit: &Unit) -> Result<Hours, String> {
    let factor = conversion_factor(unit, &series.per_unit).ok_or_else(|| {
        format!(
            "prices are per {} but the meter counts in {unit}, which cannot be converted",
            series.per_unit
        )
    })?;
    let mut hours = Hours::new();
    let mut unpriced = BTreeSet::new();
    for r in readings {
        let Some(value) = r.value.filter(|_| r.quality != Quality::Missing) else {
            continue;
        };
        let hour = hour_start(r.start);
        match series.mean_price(r.start, r.end) {
            Some(price) => *hours.entry(hour).or_insert(0.0) += value * factor * price,
            None => {
                unpriced.insert(hour);
            }
        }
    }
    hours.retain(|hour, _| !unpriced.contains(hour));
    Ok(hours)
}

/// How many `to` one `from` is, within energy or within volume.
fn conversion_factor(from: &Unit, to: &Unit) -> Option<f64> {
    let in_kwh = |u: &Unit| match u {
        Unit::Wh => Some(0.001),
        Unit::KWh => Some(1.0),
        Unit::MWh => Some(1000.0),
        Unit::MJ => Some(1.0 / 3.6),
        Unit::GJ => Some(1000.0 / 3.6),
        _ => None,
    };
    let in_m3 = |u: &Unit| match u {
        Unit::CubicMeters => Some(1.0),
        Unit::Liters => Some(0.001),
        _ => None,
    };
    if from == to {
        return Some(1.0);
    }
    match (in_kwh(from), in_kwh(to)) {
        (Some(a), Some(b)) => return Some(a / b),
        (None, None) => {}
        _ => return None,
    }
    match (in_m3(from), in_m3(to)) {
        (Some(a), Some(b)) => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PricePoint, PricePurpose};
    use chrono::{DateTime, TimeZone, Utc};

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 10, 26, h, m, 0).unwrap()
    }

    fn point(from: (u32, u32), to: (u32, u32), price: f64) -> PricePoint {
        PricePoint {
            start: utc(from.0, from.1),
            end: utc(to.0, to.1),
            price,
        }
    }

    fn series(points: Vec<PricePoint>, per_unit: Unit) -> PriceSeries {
        PriceSeries {
            currency: "DKK".into(),
            per_unit,
            purpose: PricePurpose::Cost,
            points,
        }
    }

    fn series_of(points: &[PricePoint]) -> PriceSeries {
        series(points.to_vec(), Unit::KWh)
    }

    fn reading(from: (u32, u32), to: (u32, u32), value: f64, unit: Unit) -> IntervalReading {
        IntervalReading {
            start: utc(from.0, from.1),
            end: utc(to.0, to.1),
            value: Some(value),
            unit,
            quality: Quality::Measured,
            reading: None,
        }
    }

    #[test]
    fn an_hourly_reading_pays_the_mean_of_its_quarter_prices() {
        let quarters: Vec<PricePoint> = (0..4)
            .map(|q| {
                point(
                    (10, q * 15),
                    if q == 3 { (11, 0) } else { (10, q * 15 + 15) },
                    1.0 + q as f64,
                )
            })
            .collect();
        // Mean of 1, 2, 3 and 4.
        assert_eq!(series_of(&quarters).mean_price(utc(10, 0), utc(11, 0)), Some(2.5));
        assert_eq!(series_of(&quarters).mean_price(utc(10, 15), utc(10, 30)), Some(2.0));
        assert_eq!(
            series_of(&quarters).mean_price(utc(9, 45), utc(10, 15)),
            None,
            "before the prices"
        );
        let gap = vec![point((10, 0), (10, 15), 1.0), point((10, 30), (11, 0), 1.0)];
        assert_eq!(series_of(&gap).mean_price(utc(10, 0), utc(11, 0)), None, "a gap inside");
        let s = series(quarters, Unit::KWh);
        let hours = costs(&s, &[reading((10, 0), (11, 0), 2.0, Unit::KWh)], &Unit::KWh).unwrap();
        assert_eq!(hours[&utc(10, 0).timestamp()], 5.0);
    }

    #[test]
    fn an_hour_with_an_unpriced_reading_gets_no_cost() {
        let s = series(
            vec![point((10, 0), (10, 30), 2.0), point((11, 0), (12, 0), 3.0)],
            Unit::KWh,
        );
        let readings = [
            reading((10, 0), (10, 30), 1.0, Unit::KWh),
            reading((10, 30), (11, 0), 1.0, Unit::KWh),
            reading((11, 0), (12, 0), 1.0, Unit::KWh),
        ];
        let hours = costs(&s, &readings, &Unit::KWh).unwrap();
        assert_eq!(
            hours.into_iter().collect::<Vec<_>>(),
            vec![(utc(11, 0).timestamp(), 3.0)]
        );
    }

    #[test]
    fn units_convert_within_energy_and_volume_only() {
        let s = series(vec![point((10, 0), (11, 0), 2.0)], Unit::KWh);
        let wh = [reading((10, 0), (11, 0), 1500.0, Unit::Wh)];
        assert_eq!(costs(&s, &wh, &Unit::Wh).unwrap()[&utc(10, 0).timestamp()], 3.0);
        let err = costs(&s, &wh, &Unit::CubicMeters).unwrap_err();
        assert!(err.contains("per kWh") && err.contains("m³"), "{err}");
        let water = series(vec![point((10, 0), (11, 0), 40.0)], Unit::CubicMeters);
        let litres = [reading((10, 0), (11, 0), 250.0, Unit::Liters)];
        assert_eq!(
            costs(&water, &litres, &Unit::Liters).unwrap()[&utc(10, 0).timestamp()],
            10.0
        );
    }
}
