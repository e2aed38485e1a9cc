//! Interval readings summed into the UTC hours Home Assistant keeps statistics for.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::StatisticsError;
use crate::model::{IntervalReading, Quality, Unit};

pub(crate) const HOUR: i64 = 3600;

/// Hour start (unix seconds) → the quantity used in that hour.
pub(crate) type Hours = BTreeMap<i64, f64>;

/// Sums `readings` per UTC hour. An hour appears only when at least one interval in it has a
/// value: missing intervals add nothing and are never filled in. An interval longer than an
/// hour (a daily value) is booked in full at the hour it starts, so day and month totals stay
/// right; HA has no finer truth to show. A later copy of an interval replaces an earlier one.
pub(crate) fn aggregate(
    statistic_id: &str,
    unit: &Unit,
    readings: &[IntervalReading],
) -> Result<Hours, StatisticsError> {
    let invalid = |r: &IntervalReading, reason: String| StatisticsError::InvalidReading {
        statistic_id: statistic_id.to_owned(),
        start: r.start.to_rfc3339(),
        reason,
    };
    let mut by_start: BTreeMap<DateTime<Utc>, &IntervalReading> = BTreeMap::new();
    for r in readings {
        if r.end <= r.start {
            return Err(invalid(r, format!("it ends ({}) before it starts", r.end.to_rfc3339())));
        }
        if r.quality == Quality::Missing {
            by_start.insert(r.start, r);
            continue;
        }
        match r.value {
            None => {
                return Err(invalid(
                    r,
                    format!("it has no value although its quality is {}", r.quality.as_str()),
                ))
            }
            Some(v) if !v.is_finite() => return Err(invalid(r, format!("its value {v} is not a number"))),
            Some(_) => {}
        }
        if &r.unit != unit {
            return Err(invalid(
                r,
                format!("it is in {} but the meter counts in {unit}", r.unit),
            ));
        }
        by_start.insert(r.start, r);
    }

    let mut hours = Hours::new();
    let mut previous: Option<&IntervalReading> = None;
    for r in by_start.values() {
        if let Some(p) = previous {
            if r.start < p.end {
                return Err(invalid(
                    r,
                    format!(
                        "it overlaps the interval {} .. {}",
                        p.start.to_rfc3339(),
                        p.end.to_rfc3339()
                    ),
                ));
            }
        }
        previous = Some(r);
        if r.quality == Quality::Missing {
            continue;
        }
        if let Some(v) = r.value {
            *hours.entry(hour_start(r.start)).or_insert(0.0) += v;
        }
    }
    Ok(hours)
}

pub(crate) fn hour_start(t: DateTime<Utc>) -> i64 {
    let ts = t.timestamp();
    ts - ts.rem_euclid(HOUR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 12, h, m, 0).unwrap()
    }

    fn reading(start: DateTime<Utc>, minutes: i64, value: Option<f64>, quality: Quality) -> IntervalReading {
        IntervalReading {
            start,
            end: start + chrono::Duration::minutes(minutes),
            value,
            unit: Unit::KWh,
            quality,
            reading: None,
        }
    }

    fn ts(t: DateTime<Utc>) -> i64 {
        t.timestamp()
    }

    #[test]
    fn quarters_sum_to_hours_and_missing_hours_stay_absent() {
        let readings = vec![
            reading(at(10, 0), 15, Some(0.25), Quality::Measured),
            reading(at(10, 15), 15, Some(0.5), Quality::Estimated),
            reading(at(10, 30), 15, None, Quality::Missing),
            reading(at(10, 45), 15, Some(0.125), Quality::Incomplete),
            reading(at(11, 0), 15, None, Quality::Missing),
            reading(at(11, 15), 15, None, Quality::Missing),
            reading(at(12, 0), 60, Some(2.0), Quality::Measured),
        ];
        let hours = aggregate("x:y", &Unit::KWh, &readings).unwrap();
        assert_eq!(
            hours.into_iter().collect::<Vec<_>>(),
            vec![(ts(at(10, 0)), 0.875), (ts(at(12, 0)), 2.0)]
        );
    }

    #[test]
    fn long_intervals_book_at_their_start_hour_and_later_copies_win() {
        let day = reading(at(0, 0), 24 * 60, Some(12.0), Quality::Measured);
        let mut again = reading(at(0, 0), 24 * 60, Some(13.0), Quality::Measured);
        again.quality = Quality::Estimated;
        let hours = aggregate("x:y", &Unit::KWh, &[day, again]).unwrap();
        assert_eq!(hours.into_iter().collect::<Vec<_>>(), vec![(ts(at(0, 0)), 13.0)]);
    }

    #[test]
    fn bad_readings_are_refused_with_the_reason() {
        let ok = reading(at(10, 0), 60, Some(1.0), Quality::Measured);
        let cases = [
            (
                IntervalReading {
                    end: ok.start,
                    ..ok.clone()
                },
                "ends",
            ),
            (
                IntervalReading {
                    value: None,
                    ..ok.clone()
                },
                "no value",
            ),
            (
                IntervalReading {
                    value: Some(f64::NAN),
                    ..ok.clone()
                },
                "not a number",
            ),
            (
                IntervalReading {
                    value: Some(f64::INFINITY),
                    ..ok.clone()
                },
                "not a number",
            ),
            (
                IntervalReading {
                    unit: Unit::Wh,
                    ..ok.clone()
                },
                "in Wh but the meter counts in kWh",
            ),
        ];
        for (bad, why) in cases {
            let err = aggregate("meter2mqtt:m", &Unit::KWh, &[bad]).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("meter2mqtt:m") && err.contains("2024-06-12T10:00:00"),
                "{err}"
            );
        }
        let overlapping = [ok.clone(), reading(at(10, 30), 15, Some(1.0), Quality::Measured)];
        let err = aggregate("x:y", &Unit::KWh, &overlapping).unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
    }

    #[test]
    fn hour_start_floors_before_the_epoch_too() {
        assert_eq!(hour_start(at(10, 59)), ts(at(10, 0)));
        let early = Utc.with_ymd_and_hms(1969, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(hour_start(early), -3600);
    }
}
