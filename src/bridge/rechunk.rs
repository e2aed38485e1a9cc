//! Windows end where the API's pages or days end, which may be inside an hour (a page of
//! quarter-hourly register readings). A sink that sums hours must see each hour whole, so the
//! readings of an unfinished last hour wait for the meter's next window, or the end of the read.

use std::collections::HashMap;

use chrono::{DurationRound, TimeDelta};

use crate::model::IntervalReading;

#[derive(Default)]
pub(crate) struct Rechunk {
    held: HashMap<String, Vec<IntervalReading>>,
}

impl Rechunk {
    /// What of `meter`'s window (after what was held before it) can go on now.
    pub(crate) fn release(&mut self, meter: &str, readings: Vec<IntervalReading>) -> Vec<IntervalReading> {
        let mut all = self.held.remove(meter).unwrap_or_default();
        all.extend(readings);
        let Some(last) = all.iter().max_by_key(|r| r.start) else {
            return all;
        };
        let hour = TimeDelta::hours(1);
        let last_hour = last.start.duration_trunc(hour).unwrap_or(last.start);
        if last.end >= last_hour + hour {
            return all;
        }
        let (open, done): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.start >= last_hour);
        self.held.insert(meter.to_owned(), open);
        done
    }

    /// The meter failed: what was held for it is dropped (it is read again next poll).
    pub(crate) fn forget(&mut self, meter: &str) {
        self.held.remove(meter);
    }

    /// Everything still held, at the end of a read: an unfinished hour is all there is so far.
    pub(crate) fn drain(&mut self) -> Vec<(String, Vec<IntervalReading>)> {
        self.held.drain().filter(|(_, r)| !r.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quality, Unit};
    use chrono::{DateTime, TimeZone, Utc};

    fn quarter(h: u32, q: u32) -> IntervalReading {
        let start: DateTime<Utc> = Utc.with_ymd_and_hms(2024, 3, 1, h, q * 15, 0).unwrap();
        IntervalReading {
            start,
            end: start + TimeDelta::minutes(15),
            value: Some(1.0),
            unit: Unit::KWh,
            quality: Quality::Measured,
            reading: None,
        }
    }

    #[test]
    fn an_unfinished_hour_waits_for_the_next_window() {
        let mut r = Rechunk::default();
        let first = r.release(
            "m",
            vec![
                quarter(10, 0),
                quarter(10, 1),
                quarter(10, 2),
                quarter(10, 3),
                quarter(11, 0),
            ],
        );
        assert_eq!(first.len(), 4, "10:00 is whole; 11:00 has one quarter so far");
        let second = r.release("m", vec![quarter(11, 1), quarter(11, 2), quarter(11, 3)]);
        assert_eq!(second.len(), 4);
        assert!(second
            .iter()
            .all(|q| q.start >= Utc.with_ymd_and_hms(2024, 3, 1, 11, 0, 0).unwrap()));
        assert!(r.drain().is_empty());
        r.release("m", vec![quarter(12, 0)]);
        let rest = r.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1.len(), 1);
        r.release("m", vec![quarter(13, 0)]);
        r.forget("m");
        assert!(r.drain().is_empty());
    }

    #[test]
    fn hours_and_longer_intervals_go_at_once() {
        let mut r = Rechunk::default();
        let start = Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap();
        let day = IntervalReading {
            end: start + TimeDelta::days(1),
            ..quarter(10, 0)
        };
        assert_eq!(r.release("m", vec![day]).len(), 1);
        assert!(r.release("m", Vec::new()).is_empty());
    }
}
