//! When a data call is worth making. DataHub publishes a day's data once, one to three days
//! after the day, and grid operators correct it later now and then. So:
//!
//! - while a meter's data does not reach the end of yesterday (Danish time), the next day's data
//!   can arrive any time: read at every poll;
//! - once it does, nothing new can appear before today ends, and only corrections remain: read
//!   again when the last read is [`CORRECTION_RECHECK`] old (or at once after a restart).

use chrono::{DateTime, Duration, Utc};

use super::windows::{local_day, local_midnight};

/// How often data already complete through yesterday is re-read for corrections.
pub(crate) const CORRECTION_RECHECK: Duration = Duration::hours(6);

/// The earliest instant a data call can find something new, given data delivered up to
/// `data_until` and the last successful read at `last_read`.
pub(crate) fn next_data_possible(
    data_until: DateTime<Utc>,
    now: DateTime<Utc>,
    last_read: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let today = local_midnight(local_day(now));
    if data_until < today {
        return now;
    }
    last_read.map_or(now, |read| (read + CORRECTION_RECHECK).min(now + CORRECTION_RECHECK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn incomplete_yesterday_means_read_now() {
        // 12 June 2024, 10:00 local; yesterday ends at local midnight = 2024-06-11T22:00Z.
        let now = utc("2024-06-12T08:00:00Z");
        let read = Some(now - Duration::minutes(30));
        assert_eq!(next_data_possible(utc("2024-06-11T21:00:00Z"), now, read), now);
        assert_eq!(next_data_possible(utc("2024-06-09T22:00:00Z"), now, read), now);
    }

    #[test]
    fn complete_data_is_rechecked_every_six_hours() {
        let now = utc("2024-06-12T08:00:00Z");
        let complete = utc("2024-06-11T22:00:00Z");
        // Never read since start: read once.
        assert_eq!(next_data_possible(complete, now, None), now);
        // Read two hours ago: the next read is four hours away, so the bridge skips this poll.
        let next = next_data_possible(complete, now, Some(now - Duration::hours(2)));
        assert_eq!(next, now + Duration::hours(4));
        assert!(next > now);
        // Read six hours ago or more: due.
        assert!(next_data_possible(complete, now, Some(now - Duration::hours(6))) <= now);
        // A last read in the future (clock moved back) never delays by more than the recheck.
        assert_eq!(
            next_data_possible(complete, now, Some(now + Duration::days(2))),
            now + CORRECTION_RECHECK
        );
    }

    #[test]
    fn a_new_day_reopens_reading() {
        let complete = utc("2024-06-11T22:00:00Z");
        let last_read = Some(utc("2024-06-12T21:30:00Z"));
        // 00:30 local on 13 June: yesterday (12 June) is not delivered yet.
        let now = utc("2024-06-12T22:30:00Z");
        assert_eq!(next_data_possible(complete, now, last_read), now);
    }

    #[test]
    fn dst_days_use_danish_midnight() {
        // 27 Oct 2024 (25 hours) ends at 2024-10-27T23:00Z; at 01:00 local on the 28th it is complete.
        let now = utc("2024-10-28T00:00:00Z");
        let read = Some(now);
        assert!(next_data_possible(utc("2024-10-27T23:00:00Z"), now, read) > now);
        assert_eq!(next_data_possible(utc("2024-10-27T22:00:00Z"), now, read), now);
    }
}
