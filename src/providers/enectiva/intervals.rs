//! Cumulative register values as consumption per interval: each interval runs from one reading
//! to the next, its `value` the difference and its `reading` the register value at its end.

use crate::model::{IntervalReading, Meter, Quality, TimeRange};

use super::readings::RegisterReading;

/// The intervals that start in `range`. `readings` must reach past `range.end` by one reading for
/// the last interval to be complete; they need not be sorted or unique.
///
/// A register that goes down (a reset or meter exchange) yields no interval for that step, never
/// negative consumption; counting continues from the new value.
pub(crate) fn intervals(meter: &Meter, readings: Vec<RegisterReading>, range: TimeRange) -> Vec<IntervalReading> {
    let readings = sorted_unique(meter, readings);
    readings
        .windows(2)
        .filter(|pair| range.start <= pair[0].time && pair[0].time < range.end)
        .filter_map(|pair| {
            let (from, to) = (pair[0], pair[1]);
            if to.value < from.value {
                tracing::warn!(
                    meter = %meter.id,
                    from = %from.time.to_rfc3339(),
                    to = %to.time.to_rfc3339(),
                    "register of meter {} went down from {} to {} between {} and {} (reset or meter exchange?); \
                     skipping that interval and counting on from the new value",
                    meter.id, from.value, to.value, from.time.to_rfc3339(), to.time.to_rfc3339()
                );
                return None;
            }
            Some(IntervalReading {
                start: from.time,
                end: to.time,
                value: Some(round(to.value - from.value)),
                unit: meter.unit.clone(),
                quality: Quality::Measured,
                reading: Some(to.value),
            })
        })
        .collect()
}

fn sorted_unique(meter: &Meter, mut readings: Vec<RegisterReading>) -> Vec<RegisterReading> {
    readings.sort_by_key(|r| r.time);
    let mut out: Vec<RegisterReading> = Vec::with_capacity(readings.len());
    for reading in readings {
        match out.last_mut() {
            Some(last) if last.time == reading.time => {
                if last.value != reading.value {
                    tracing::warn!(
                        meter = %meter.id,
                        time = %reading.time.to_rfc3339(),
                        "meter {} has two readings at {} ({} and {}); using the later one",
                        meter.id, reading.time.to_rfc3339(), last.value, reading.value
                    );
                }
                *last = reading;
            }
            _ => out.push(reading),
        }
    }
    out
}

/// Subtracting two register values leaves binary noise (123461.32 - 123458.86 = 2.4599999999918);
/// registers carry a few decimals at most, so six decimals keep every real digit.
fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Medium, Unit};
    use crate::providers::enectiva::test_meter;
    use chrono::{DateTime, Duration, Utc};

    fn meter() -> Meter {
        test_meter::meter(Medium::Gas, Unit::CubicMeters)
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_730_419_200, 0).unwrap() + Duration::minutes(minutes)
    }

    fn series(values: &[f64]) -> Vec<RegisterReading> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| RegisterReading {
                time: t(15 * i as i64),
                value,
            })
            .collect()
    }

    fn plain(got: &[IntervalReading]) -> Vec<(i64, i64, f64, f64)> {
        let m = |d: DateTime<Utc>| (d - t(0)).num_minutes();
        got.iter()
            .map(|r| (m(r.start), m(r.end), r.value.unwrap(), r.reading.unwrap()))
            .collect()
    }

    #[test]
    fn differences_between_consecutive_readings() {
        let got = intervals(
            &meter(),
            series(&[123458.86, 123461.32, 123465.05]),
            TimeRange::new(t(0), t(60)),
        );
        assert_eq!(plain(&got), vec![(0, 15, 2.46, 123461.32), (15, 30, 3.73, 123465.05)]);
        assert!(got
            .iter()
            .all(|r| r.quality == Quality::Measured && r.unit == Unit::CubicMeters));
    }

    #[test]
    fn only_intervals_starting_in_the_range() {
        let got = intervals(
            &meter(),
            series(&[1.0, 2.0, 4.0, 7.0, 11.0]),
            TimeRange::new(t(15), t(45)),
        );
        assert_eq!(plain(&got), vec![(15, 30, 2.0, 4.0), (30, 45, 3.0, 7.0)]);
    }

    #[test]
    fn a_reset_is_skipped_not_negative() {
        let got = intervals(
            &meter(),
            series(&[100.0, 110.0, 5.0, 8.0, 8.0]),
            TimeRange::new(t(0), t(120)),
        );
        assert_eq!(
            plain(&got),
            vec![(0, 15, 10.0, 110.0), (30, 45, 3.0, 8.0), (45, 60, 0.0, 8.0)]
        );
    }

    #[test]
    fn unsorted_and_duplicate_readings() {
        let mut readings = series(&[1.0, 2.0, 3.0]);
        readings.reverse();
        readings.push(RegisterReading {
            time: t(15),
            value: 2.5,
        });
        let got = intervals(&meter(), readings, TimeRange::new(t(0), t(60)));
        assert_eq!(plain(&got), vec![(0, 15, 1.5, 2.5), (15, 30, 0.5, 3.0)]);
    }

    #[test]
    fn too_few_readings_make_no_interval() {
        assert!(intervals(&meter(), series(&[1.0]), TimeRange::new(t(0), t(60))).is_empty());
        assert!(intervals(&meter(), Vec::new(), TimeRange::new(t(0), t(60))).is_empty());
    }
}
