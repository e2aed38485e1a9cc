//! Spot prices and the two datasets that hold them: hourly `Elspotprices` up to 30 September
//! 2025, quarter-hourly `DayAheadPrices` from 1 October 2025, when the day-ahead market moved to
//! 15-minute products.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::TZ;
use crate::model::{local_midnight, TimeRange};

/// The first Danish day whose spot prices are quarter-hourly (`DayAheadPrices`).
pub(crate) const DAY_AHEAD_FROM: NaiveDate = NaiveDate::from_ymd_opt(2025, 10, 1).expect("a valid date");

/// One spot price in DKK per kWh, excluding VAT, valid over `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpotPrice {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) price: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SpotDataset {
    /// `Elspotprices`: hourly, `HourUTC` / `HourDK` / `SpotPriceDKK`.
    Elspot,
    /// `DayAheadPrices`: quarter-hourly, `TimeUTC` / `TimeDK` / `DayAheadPriceDKK`.
    DayAhead,
}

impl SpotDataset {
    /// The dataset holding the prices of a Danish day. The switch is at a local midnight, so a
    /// day never needs both.
    pub(crate) fn for_day(day: NaiveDate) -> SpotDataset {
        if day < DAY_AHEAD_FROM {
            SpotDataset::Elspot
        } else {
            SpotDataset::DayAhead
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SpotDataset::Elspot => "Elspotprices",
            SpotDataset::DayAhead => "DayAheadPrices",
        }
    }

    /// The UTC time column, for `sort`.
    pub(crate) fn time_column(self) -> &'static str {
        match self {
            SpotDataset::Elspot => "HourUTC",
            SpotDataset::DayAhead => "TimeUTC",
        }
    }

    pub(crate) fn resolution(self) -> Duration {
        match self {
            SpotDataset::Elspot => Duration::hours(1),
            SpotDataset::DayAhead => Duration::minutes(15),
        }
    }

    /// How many prices a complete Danish day has: 23, 24 or 25 hours, or four times that.
    pub(crate) fn prices_per_day(self, day: NaiveDate) -> usize {
        let length = day_range(day).end - day_range(day).start;
        usize::try_from(length.num_minutes() / self.resolution().num_minutes()).unwrap_or(0)
    }
}

/// A Danish day in UTC: from local midnight to the next.
pub(crate) fn day_range(day: NaiveDate) -> TimeRange {
    let next = day.succ_opt().unwrap_or(day);
    TimeRange::new(local_midnight(day, TZ), local_midnight(next, TZ))
}

/// The Danish days `[first, end)` that cover a UTC range; `None` for an empty range.
pub(crate) fn days_covering(range: TimeRange) -> Option<(NaiveDate, NaiveDate)> {
    if range.is_empty() {
        return None;
    }
    let first = range.start.with_timezone(&TZ).date_naive();
    // The end is exclusive: a range ending at local midnight does not need the next day.
    let last = (range.end - Duration::nanoseconds(1)).with_timezone(&TZ).date_naive();
    Some((first, last.succ_opt().unwrap_or(last)))
}

/// `[from, to)` cut at [`DAY_AHEAD_FROM`] into one run per dataset.
pub(crate) fn runs_by_dataset(from: NaiveDate, to: NaiveDate) -> Vec<(SpotDataset, NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    if from < DAY_AHEAD_FROM {
        out.push((SpotDataset::Elspot, from, to.min(DAY_AHEAD_FROM)));
    }
    if to > DAY_AHEAD_FROM {
        out.push((SpotDataset::DayAhead, from.max(DAY_AHEAD_FROM), to));
    }
    out
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

    #[test]
    fn day_lengths_follow_daylight_saving() {
        assert_eq!(SpotDataset::Elspot.prices_per_day(day(2025, 3, 30)), 23);
        assert_eq!(SpotDataset::Elspot.prices_per_day(day(2025, 3, 31)), 24);
        assert_eq!(SpotDataset::DayAhead.prices_per_day(day(2025, 10, 26)), 100);
        assert_eq!(SpotDataset::DayAhead.prices_per_day(day(2025, 10, 27)), 96);
        assert_eq!(SpotDataset::DayAhead.prices_per_day(day(2026, 3, 29)), 92);
    }

    #[test]
    fn the_dataset_switches_at_danish_midnight_on_1_october_2025() {
        assert_eq!(SpotDataset::for_day(day(2025, 9, 30)), SpotDataset::Elspot);
        assert_eq!(SpotDataset::for_day(day(2025, 10, 1)), SpotDataset::DayAhead);
        assert_eq!(day_range(DAY_AHEAD_FROM).start, utc("2025-09-30T22:00:00Z"));
        assert_eq!(
            runs_by_dataset(day(2025, 9, 29), day(2025, 10, 3)),
            vec![
                (SpotDataset::Elspot, day(2025, 9, 29), day(2025, 10, 1)),
                (SpotDataset::DayAhead, day(2025, 10, 1), day(2025, 10, 3)),
            ]
        );
        assert_eq!(
            runs_by_dataset(day(2025, 3, 30), day(2025, 3, 31)),
            vec![(SpotDataset::Elspot, day(2025, 3, 30), day(2025, 3, 31))]
        );
        assert_eq!(
            runs_by_dataset(day(2025, 10, 26), day(2025, 10, 27)),
            vec![(SpotDataset::DayAhead, day(2025, 10, 26), day(2025, 10, 27))]
        );
        assert!(runs_by_dataset(day(2025, 10, 2), day(2025, 10, 2)).is_empty());
    }

    #[test]
    fn covering_days_use_danish_dates_and_an_exclusive_end() {
        let r = |a: &str, b: &str| TimeRange::new(utc(a), utc(b));
        // 22:00 UTC on 25 October is local midnight of the 26th (CEST).
        assert_eq!(
            days_covering(r("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z")),
            Some((day(2025, 10, 26), day(2025, 10, 27)))
        );
        assert_eq!(
            days_covering(r("2025-10-25T21:59:00Z", "2025-10-26T23:00:01Z")),
            Some((day(2025, 10, 25), day(2025, 10, 28)))
        );
        assert_eq!(days_covering(r("2025-10-26T00:00:00Z", "2025-10-26T00:00:00Z")), None);
    }
}
