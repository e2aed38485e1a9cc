//! The values a meter's state topic shows: newest interval and newest day's total, kept as the
//! windows of a read go by (a day may span two windows).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::model::{local_midnight, IntervalReading};
use crate::mqtt::payloads::{round, DayTotal, Interval};

/// The newest interval with a value, and the intervals of the newest local day with a value.
#[derive(Debug, Default)]
pub(crate) struct Newest {
    latest: Option<IntervalReading>,
    day: Option<(NaiveDate, BTreeMap<i64, IntervalReading>)>,
}

impl Newest {
    pub(crate) fn add(&mut self, readings: &[IntervalReading], tz: Tz) {
        for r in readings.iter().filter(|r| r.value.is_some()) {
            if self.latest.as_ref().is_none_or(|l| r.start >= l.start) {
                self.latest = Some(r.clone());
            }
            let date = r.start.with_timezone(&tz).date_naive();
            match &mut self.day {
                Some((day, _)) if *day > date => {}
                Some((day, intervals)) if *day == date => {
                    intervals.insert(r.start.timestamp(), r.clone());
                }
                _ => self.day = Some((date, BTreeMap::from([(r.start.timestamp(), r.clone())]))),
            }
        }
    }

    pub(crate) fn latest(&self) -> Option<Interval> {
        self.latest.as_ref().map(Interval::of)
    }

    pub(crate) fn last_day(&self, tz: Tz) -> Option<DayTotal> {
        let (_, intervals) = self.day.as_ref()?;
        let readings: Vec<IntervalReading> = intervals.values().cloned().collect();
        last_day(&readings, tz)
    }
}

/// The newest local day with data, its total, and whether every interval of it has a value.
pub(crate) fn last_day(readings: &[IntervalReading], tz: Tz) -> Option<DayTotal> {
    let mut days: BTreeMap<NaiveDate, (f64, i64, i64)> = BTreeMap::new();
    for r in readings {
        let date = r.start.with_timezone(&tz).date_naive();
        let entry = days.entry(date).or_insert((0.0, 0, 0));
        if let Some(v) = r.value {
            entry.0 += v;
            entry.1 += (r.end - r.start).num_seconds();
        }
        entry.2 += 1;
    }
    let (date, (sum, covered, _)) = days.into_iter().rev().find(|(_, (_, covered, _))| *covered > 0)?;
    Some(DayTotal {
        date,
        value: round(sum),
        complete: covered >= day_seconds(date, tz),
    })
}

/// 23, 24 or 25 hours, in seconds.
fn day_seconds(date: NaiveDate, tz: Tz) -> i64 {
    (local_midnight(date + chrono::Days::new(1), tz) - local_midnight(date, tz)).num_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quality, Unit};
    use chrono::{TimeZone, Utc};

    #[test]
    fn autumn_dst_day_needs_25_hours_to_be_complete() {
        let tz = chrono_tz::Europe::Copenhagen;
        let start = Utc.with_ymd_and_hms(2024, 10, 26, 22, 0, 0).unwrap();
        let mk = |n: i64| -> Vec<IntervalReading> {
            (0..n)
                .map(|h| {
                    let s = start + chrono::Duration::hours(h);
                    IntervalReading {
                        start: s,
                        end: s + chrono::Duration::hours(1),
                        value: Some(1.0),
                        unit: Unit::KWh,
                        quality: Quality::Measured,
                        reading: None,
                    }
                })
                .collect()
        };
        let d = last_day(&mk(24), tz).unwrap();
        assert_eq!(d.date.to_string(), "2024-10-27");
        assert!(!d.complete);
        let d = last_day(&mk(25), tz).unwrap();
        assert!(d.complete);
        assert_eq!(d.value, 25.0);

        // The same day in two windows, and an older window after it.
        let day = mk(25);
        let mut newest = Newest::default();
        newest.add(&day[..10], tz);
        newest.add(&day[10..], tz);
        newest.add(&mk(3), tz);
        assert_eq!(newest.last_day(tz).unwrap(), d);
        assert_eq!(newest.latest().unwrap().start, start + chrono::Duration::hours(24));
    }
}
