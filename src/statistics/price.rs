//! Hourly prices by local hour of day, for the optional cost statistic.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use super::hourly::Hours;
use crate::model::Unit;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PriceError {
    #[error("price schedule: the currency must not be empty")]
    NoCurrency,
    #[error("price schedule: the price for local hour {hour} is {value}, not a number")]
    NotANumber { hour: usize, value: f64 },
    #[error("price schedule: a period ends ({to}) before it starts ({from})")]
    EmptyPeriod { from: String, to: String },
    #[error("price schedule: the period starting {from} overlaps another period")]
    Overlap { from: String },
}

/// Prices per unit (e.g. DKK per kWh) for each local hour of the day (index 0 = 00:00–01:00),
/// in periods of validity, as grid tariffs are published. On the autumn DST day the repeated
/// local hour is priced twice; on the spring day the skipped one is unused. An hour no period
/// covers gets no cost rather than a guessed one.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSchedule {
    currency: String,
    timezone: Tz,
    per_unit: Unit,
    periods: Vec<PricePeriod>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PricePeriod {
    /// Inclusive; `None`: since always.
    pub valid_from: Option<DateTime<Utc>>,
    /// Exclusive; `None`: until further notice.
    pub valid_to: Option<DateTime<Utc>>,
    pub hourly: [f64; 24],
}

impl PriceSchedule {
    pub fn new(currency: &str, timezone: Tz, per_unit: Unit) -> Result<PriceSchedule, PriceError> {
        if currency.trim().is_empty() {
            return Err(PriceError::NoCurrency);
        }
        Ok(PriceSchedule {
            currency: currency.trim().to_owned(),
            timezone,
            per_unit,
            periods: Vec::new(),
        })
    }

    /// DKK per kWh by Danish local hour, valid at all times: one ElOverblik hourly tariff.
    pub fn danish_hourly(dkk_per_kwh: [f64; 24]) -> Result<PriceSchedule, PriceError> {
        PriceSchedule::new("DKK", chrono_tz::Europe::Copenhagen, Unit::KWh)?.with_period(None, None, dkk_per_kwh)
    }

    pub fn with_period(
        mut self,
        valid_from: Option<DateTime<Utc>>,
        valid_to: Option<DateTime<Utc>>,
        hourly: [f64; 24],
    ) -> Result<PriceSchedule, PriceError> {
        if let Some((hour, &value)) = hourly.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(PriceError::NotANumber { hour, value });
        }
        let from_text = || valid_from.map_or_else(|| "the beginning".to_owned(), |t| t.to_rfc3339());
        if let (Some(from), Some(to)) = (valid_from, valid_to) {
            if to <= from {
                return Err(PriceError::EmptyPeriod {
                    from: from.to_rfc3339(),
                    to: to.to_rfc3339(),
                });
            }
        }
        let new = PricePeriod {
            valid_from,
            valid_to,
            hourly,
        };
        if self.periods.iter().any(|p| p.overlaps(&new)) {
            return Err(PriceError::Overlap { from: from_text() });
        }
        self.periods.push(new);
        Ok(self)
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The price per `per_unit` of the hour starting at `hour_start`, if a period covers it.
    pub fn price_at(&self, hour_start: DateTime<Utc>) -> Option<f64> {
        let local_hour = hour_start.with_timezone(&self.timezone).hour() as usize;
        self.periods
            .iter()
            .find(|p| p.covers(hour_start))
            .map(|p| p.hourly[local_hour])
    }

    /// The cost of each hour of `hours` (quantities in `unit`) that a period covers.
    pub(crate) fn costs(&self, hours: &Hours, unit: &Unit) -> Result<Hours, String> {
        let factor = conversion_factor(unit, &self.per_unit).ok_or_else(|| {
            format!(
                "prices are per {} but the meter counts in {unit}, which cannot be converted",
                self.per_unit
            )
        })?;
        Ok(hours
            .iter()
            .filter_map(|(&start, &quantity)| {
                let at = DateTime::from_timestamp(start, 0)?;
                self.price_at(at).map(|price| (start, quantity * factor * price))
            })
            .collect())
    }
}

impl PricePeriod {
    fn covers(&self, t: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|from| from <= t) && self.valid_to.is_none_or(|to| t < to)
    }

    fn overlaps(&self, other: &PricePeriod) -> bool {
        let starts_before_other_ends = match (self.valid_from, other.valid_to) {
            (Some(from), Some(to)) => from < to,
            _ => true,
        };
        let other_starts_before_end = match (other.valid_from, self.valid_to) {
            (Some(from), Some(to)) => from < to,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_end
    }
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
    use chrono::TimeZone;

    fn prices() -> [f64; 24] {
        std::array::from_fn(|h| h as f64 / 10.0)
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn prices_follow_danish_local_hours_across_dst() {
        let s = PriceSchedule::danish_hourly(prices()).unwrap();
        // Summer: UTC+2.
        assert_eq!(s.price_at(utc(2024, 6, 12, 15)), Some(1.7));
        // 2024-10-27: 00:00Z and 01:00Z are both local hour 2 (CEST, then CET).
        assert_eq!(s.price_at(utc(2024, 10, 27, 0)), Some(0.2));
        assert_eq!(s.price_at(utc(2024, 10, 27, 1)), Some(0.2));
        assert_eq!(s.price_at(utc(2024, 10, 27, 2)), Some(0.3));
        // 2024-03-31: 01:00Z is local 03:00 (02:00 does not exist).
        assert_eq!(s.price_at(utc(2024, 3, 31, 0)), Some(0.1));
        assert_eq!(s.price_at(utc(2024, 3, 31, 1)), Some(0.3));
    }

    #[test]
    fn periods_bound_validity_and_convert_units() {
        let from = utc(2024, 1, 1, 0);
        let s = PriceSchedule::new("DKK", chrono_tz::Europe::Copenhagen, Unit::KWh)
            .unwrap()
            .with_period(Some(from), None, [2.0; 24])
            .unwrap();
        assert_eq!(s.price_at(utc(2023, 12, 31, 23)), None);
        assert_eq!(s.price_at(utc(2024, 1, 1, 0)), Some(2.0));
        let hours: Hours = [
            (utc(2023, 12, 31, 22).timestamp(), 5.0),
            (utc(2024, 1, 2, 3).timestamp(), 1500.0),
        ]
        .into();
        let costs = s.costs(&hours, &Unit::Wh).unwrap();
        assert_eq!(
            costs.into_iter().collect::<Vec<_>>(),
            vec![(utc(2024, 1, 2, 3).timestamp(), 3.0)]
        );
        let err = s.costs(&hours, &Unit::CubicMeters).unwrap_err();
        assert!(err.contains("per kWh") && err.contains("m³"), "{err}");
        let water = PriceSchedule::new("DKK", chrono_tz::Europe::Copenhagen, Unit::CubicMeters)
            .unwrap()
            .with_period(None, None, [40.0; 24])
            .unwrap();
        let litres: Hours = [(0, 250.0)].into();
        assert_eq!(water.costs(&litres, &Unit::Liters).unwrap()[&0], 10.0);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(
            PriceSchedule::new(" ", chrono_tz::UTC, Unit::KWh).unwrap_err(),
            PriceError::NoCurrency
        );
        let mut p = prices();
        p[5] = f64::NAN;
        assert!(matches!(
            PriceSchedule::danish_hourly(p).unwrap_err(),
            PriceError::NotANumber { hour: 5, .. }
        ));
        let base = PriceSchedule::new("DKK", chrono_tz::UTC, Unit::KWh).unwrap();
        let err = base
            .clone()
            .with_period(Some(utc(2024, 2, 1, 0)), Some(utc(2024, 1, 1, 0)), prices())
            .unwrap_err();
        assert!(err.to_string().contains("ends"), "{err}");
        let jan = base
            .with_period(Some(utc(2024, 1, 1, 0)), Some(utc(2024, 2, 1, 0)), prices())
            .unwrap();
        let feb = jan
            .clone()
            .with_period(Some(utc(2024, 2, 1, 0)), None, prices())
            .unwrap();
        assert_eq!(feb.price_at(utc(2024, 2, 1, 0)), Some(0.0));
        let err = jan.with_period(Some(utc(2024, 1, 31, 0)), None, prices()).unwrap_err();
        assert!(matches!(err, PriceError::Overlap { .. }), "{err}");
        assert!(feb.with_period(None, Some(utc(2023, 1, 1, 0)), prices()).is_ok());
    }
}
