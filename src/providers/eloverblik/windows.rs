//! Request dates: the API takes Danish local days, `dateTo` exclusive, never after today and
//! never equal to `dateFrom` (error 30002), at most 730 days a call.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

use crate::energidataservice::PriceResolution;
use crate::model::TimeRange;

/// Request dates are Danish local days; the API answers in UTC.
pub const TZ: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;

/// The API's limit for one call.
pub(crate) const MAX_DAYS: u32 = 730;

/// Intervals one call may bring: the body (about 90 bytes an interval) and its readings sit in
/// memory until they are delivered, so a call is sized to keep that to a few megabytes
/// whatever the history length. Ten quarter-hour points get a month a call, one hourly point
/// the API's two years.
pub(crate) const INTERVALS_PER_CALL: u32 = 30_000;

/// How the API aggregates a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Aggregation {
    Quarter,
    Hour,
}

impl Aggregation {
    /// `Quarter` where the point is read every 15 minutes; `Hour` for everything else (hourly
    /// points, and profiled or daily points, which DataHub spreads over hours).
    pub(crate) fn for_occurrence(meter_reading_occurrence: Option<&str>) -> Aggregation {
        match meter_reading_occurrence.map(str::trim) {
            Some("PT15M") => Aggregation::Quarter,
            _ => Aggregation::Hour,
        }
    }

    /// The live price sensors' resolution that matches the point's readings.
    pub(crate) fn price_resolution(self) -> PriceResolution {
        match self {
            Aggregation::Quarter => PriceResolution::Quarter,
            Aggregation::Hour => PriceResolution::Hour,
        }
    }

    pub(crate) fn as_path(self) -> &'static str {
        match self {
            Aggregation::Quarter => "Quarter",
            Aggregation::Hour => "Hour",
        }
    }

    pub(crate) fn per_day(self) -> u32 {
        match self {
            Aggregation::Quarter => 96,
            Aggregation::Hour => 24,
        }
    }

    /// The days one call for `points` metering points may cover (see [`INTERVALS_PER_CALL`]).
    pub(crate) fn max_days_for(self, points: usize) -> u32 {
        let per_day = self.per_day() * u32::try_from(points.max(1)).unwrap_or(u32::MAX);
        (INTERVALS_PER_CALL / per_day).clamp(1, MAX_DAYS)
    }
}

/// One call's dates: `[from, to)` in Danish local days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
}

impl Window {
    /// The part of `range` this window's days cover, in UTC.
    pub(crate) fn covering(&self, range: TimeRange) -> TimeRange {
        TimeRange::new(
            local_midnight(self.from).max(range.start),
            local_midnight(self.to).min(range.end),
        )
    }

    pub(crate) fn path_segment(&self) -> String {
        format!("{}/{}", self.from.format("%Y-%m-%d"), self.to.format("%Y-%m-%d"))
    }
}

/// The Danish day `instant` falls on.
pub(crate) fn local_day(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&TZ).date_naive()
}

/// Danish midnight at the start of `day`, in UTC. Midnight always exists in Denmark (the DST
/// switches happen at 02:00 and 03:00), so this cannot fail for a real date.
pub(crate) fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    TZ.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| naive.and_utc())
}

/// The local days covering `range`, cut at `today` (data for today is not complete, and a later
/// `dateTo` is error 30003), split into windows of at most `max_days`. Empty when nothing of
/// the range can have data yet.
pub(crate) fn plan(range: TimeRange, today: NaiveDate, max_days: u32) -> Vec<Window> {
    if range.is_empty() {
        return Vec::new();
    }
    let from = local_day(range.start);
    let mut to = local_day(range.end);
    if local_midnight(to) < range.end {
        to = to.checked_add_days(Days::new(1)).unwrap_or(to);
    }
    let to = to.min(today);
    let step = Days::new(u64::from(max_days.max(1)));
    let mut windows = Vec::new();
    let mut start = from;
    while start < to {
        let end = start.checked_add_days(step).map_or(to, |end| end.min(to));
        windows.push(Window { from: start, to: end });
        start = end;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn segments(windows: &[Window]) -> Vec<String> {
        windows.iter().map(Window::path_segment).collect()
    }

    #[test]
    fn utc_range_becomes_local_days() {
        // 2024-03-27T23:00Z is local midnight of 28 March; the end is midnight of 31 March.
        let range = TimeRange::new(utc("2024-03-27T23:00:00Z"), utc("2024-03-30T23:00:00Z"));
        assert_eq!(
            segments(&plan(range, day("2025-01-01"), MAX_DAYS)),
            ["2024-03-28/2024-03-31"]
        );
    }

    #[test]
    fn partial_days_are_widened_to_whole_days() {
        let range = TimeRange::new(utc("2024-03-28T10:00:00Z"), utc("2024-03-29T10:00:00Z"));
        assert_eq!(
            segments(&plan(range, day("2025-01-01"), MAX_DAYS)),
            ["2024-03-28/2024-03-30"]
        );
    }

    #[test]
    fn never_past_today_and_never_from_equals_to() {
        let today = day("2024-06-12");
        let range = TimeRange::new(utc("2024-06-10T22:00:00Z"), utc("2024-06-12T13:00:00Z"));
        assert_eq!(segments(&plan(range, today, MAX_DAYS)), ["2024-06-11/2024-06-12"]);
        // Only today asked for: nothing can be complete yet, so no call (30002 otherwise).
        let range = TimeRange::new(utc("2024-06-11T22:00:00Z"), utc("2024-06-12T13:00:00Z"));
        assert!(plan(range, today, MAX_DAYS).is_empty());
        let range = TimeRange::new(utc("2024-07-01T00:00:00Z"), utc("2024-07-02T00:00:00Z"));
        assert!(plan(range, today, MAX_DAYS).is_empty());
        assert!(plan(
            TimeRange::new(utc("2024-01-02T00:00:00Z"), utc("2024-01-01T00:00:00Z")),
            today,
            MAX_DAYS
        )
        .is_empty());
    }

    #[test]
    fn long_ranges_split_into_limited_windows() {
        let range = TimeRange::new(utc("2019-12-31T23:00:00Z"), utc("2024-12-31T23:00:00Z"));
        let windows = plan(range, day("2030-01-01"), MAX_DAYS);
        assert_eq!(
            segments(&windows),
            [
                "2020-01-01/2021-12-31",
                "2021-12-31/2023-12-31",
                "2023-12-31/2025-01-01"
            ]
        );
        assert!(windows
            .iter()
            .all(|w| (w.to - w.from).num_days() <= i64::from(MAX_DAYS)));
        assert!(windows.windows(2).all(|p| p[0].to == p[1].from));
        // Ten quarter-hour points: a month a call; one: most of a year.
        assert_eq!(Aggregation::Quarter.max_days_for(10), 31);
        assert_eq!(Aggregation::Quarter.max_days_for(1), 312);
        assert_eq!(Aggregation::Hour.max_days_for(1), MAX_DAYS);
        assert_eq!(Aggregation::Hour.max_days_for(10), 125);
        let quarters = plan(range, day("2030-01-01"), Aggregation::Quarter.max_days_for(10));
        assert_eq!(quarters.len(), 59);
        assert_eq!(quarters.first().unwrap().from, day("2020-01-01"));
        assert_eq!(quarters.last().unwrap().to, day("2025-01-01"));
        let covered = quarters[0].covering(range);
        assert_eq!(covered.start, range.start);
        assert_eq!(covered.end, utc("2020-01-31T23:00:00Z"));
    }

    #[test]
    fn dst_midnights() {
        assert_eq!(local_midnight(day("2024-03-31")), utc("2024-03-30T23:00:00Z"));
        assert_eq!(local_midnight(day("2024-04-01")), utc("2024-03-31T22:00:00Z"));
        assert_eq!(local_midnight(day("2024-10-27")), utc("2024-10-26T22:00:00Z"));
        assert_eq!(local_midnight(day("2024-10-28")), utc("2024-10-27T23:00:00Z"));
        assert_eq!(local_day(utc("2024-10-27T22:30:00Z")), day("2024-10-27"));
    }

    #[test]
    fn aggregation_follows_reading_occurrence() {
        assert_eq!(Aggregation::for_occurrence(Some("PT15M")), Aggregation::Quarter);
        assert_eq!(Aggregation::for_occurrence(Some("PT1H")), Aggregation::Hour);
        assert_eq!(Aggregation::for_occurrence(Some("P1M")), Aggregation::Hour);
        assert_eq!(Aggregation::for_occurrence(None), Aggregation::Hour);
    }
}
