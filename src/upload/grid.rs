//! The clock grid of a series: instants that are whole multiples of its interval since the Unix
//! epoch (so "15m" ticks at :00, :15, :30, :45 UTC, and "1h" on the hour).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// The first grid instant strictly after `after`.
pub(crate) fn next_tick(after: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let step = interval.as_secs().max(1) as i64;
    let next = (after.timestamp().div_euclid(step) + 1) * step;
    Utc.timestamp_opt(next, 0).single().unwrap_or(after)
}

/// Whether `time` lies on the grid.
pub(crate) fn on_grid(time: DateTime<Utc>, interval: Duration) -> bool {
    let step = interval.as_secs().max(1) as i64;
    time.timestamp_subsec_nanos() == 0 && time.timestamp().rem_euclid(step) == 0
}

/// The start of the hour `time` lies in.
pub(crate) fn hour_floor(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(time.timestamp().div_euclid(3600) * 3600, 0)
        .single()
        .unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn ticks_fall_on_multiples_of_the_interval() {
        let quarter = Duration::from_secs(900);
        assert_eq!(
            next_tick(t("2026-01-01T10:07:31.5Z"), quarter),
            t("2026-01-01T10:15:00Z")
        );
        assert_eq!(next_tick(t("2026-01-01T10:15:00Z"), quarter), t("2026-01-01T10:30:00Z"));
        assert_eq!(
            next_tick(t("2026-01-01T23:59:59Z"), Duration::from_secs(3600)),
            t("2026-01-02T00:00:00Z")
        );
        assert!(on_grid(t("2026-01-01T10:45:00Z"), quarter));
        assert!(!on_grid(t("2026-01-01T10:46:00Z"), quarter));
        assert_eq!(hour_floor(t("2026-01-01T10:46:12Z")), t("2026-01-01T10:00:00Z"));
    }
}
