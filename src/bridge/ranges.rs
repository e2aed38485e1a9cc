//! Which meters to read in a poll, and from when: each sink says up to when it holds data, the
//! poll re-reads a look-back window before the oldest of those, from the start of that local
//! day, and meters whose starts are close share one range so batching providers spend fewer
//! calls.

use chrono::{DateTime, Duration, Utc};

use crate::model::{local_midnight, Meter};

/// How far apart two meters' range starts may be and still share one data call.
const SHARED_RANGE_SLACK: Duration = Duration::days(2);

/// One meter's situation at the start of a poll.
pub(crate) struct Wanted<'a> {
    pub(crate) meter: &'a Meter,
    /// Where every sink's data ends; `None` for a sink that holds nothing yet.
    pub(crate) needs: Vec<Option<DateTime<Utc>>>,
    /// The first instant a backfill reads.
    pub(crate) history_start: DateTime<Utc>,
}

/// Meters grouped by the start of the range they need, oldest first. A meter every sink has
/// caught up on is left out while `nothing_new_before` says nothing new can exist yet (it gets
/// the newest end any sink holds).
pub(crate) fn groups(
    wanted: Vec<Wanted<'_>>,
    lookback: Duration,
    now: DateTime<Utc>,
    nothing_new_before: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Vec<Meter>)> {
    let mut starts: Vec<(DateTime<Utc>, &Meter)> = Vec::new();
    for w in wanted {
        let history = w.history_start;
        let held: Option<Vec<DateTime<Utc>>> = w.needs.iter().copied().collect();
        let from = match &held {
            Some(ends) if !ends.is_empty() => ends.iter().min().map_or(history, |t| *t - lookback),
            _ => history,
        };
        if let Some((ends, newest)) = held.as_ref().and_then(|ends| Some((ends, *ends.iter().max()?))) {
            let caught_up = ends.iter().all(|t| *t + lookback >= newest);
            if caught_up && nothing_new_before(newest) > now {
                tracing::debug!(meter = %w.meter.id, "nothing new can exist yet; no data call");
                continue;
            }
        }
        let tz = w.meter.timezone;
        let from = local_midnight(from.max(history).with_timezone(&tz).date_naive(), tz).max(history);
        if from < now {
            starts.push((from, w.meter));
        }
    }
    // Re-reading a day or two is cheaper than another API call, and the sinks drop what they
    // already have.
    starts.sort_by_key(|(from, _)| *from);
    let mut groups: Vec<(DateTime<Utc>, Vec<Meter>)> = Vec::new();
    for (from, meter) in starts {
        match groups.last_mut() {
            Some((start, meters)) if from - *start <= SHARED_RANGE_SLACK => meters.push(meter.clone()),
            _ => groups.push((from, vec![meter.clone()])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceInfo, Direction, Medium, Unit};
    use chrono::TimeZone;

    fn meter(id: &str) -> Meter {
        Meter {
            provider: "p".into(),
            id: id.into(),
            name: id.into(),
            medium: Medium::Electricity,
            direction: Direction::Consumption,
            unit: Unit::KWh,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo::default(),
        }
    }

    fn utc(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap()
    }

    #[test]
    fn the_oldest_sink_decides_and_ranges_start_on_local_days() {
        let (a, b, c) = (meter("a"), meter("b"), meter("c"));
        let history = utc(1, 0);
        let wanted = vec![
            // MQTT at 20 March 05:00, statistics at 19 March 10:00: from 12 March 10:00, whose
            // local day starts 11 March 23:00 UTC.
            Wanted {
                meter: &a,
                needs: vec![Some(utc(20, 5)), Some(utc(19, 10))],
                history_start: history,
            },
            // A sink that holds nothing: from the history start.
            Wanted {
                meter: &b,
                needs: vec![Some(utc(20, 5)), None],
                history_start: history,
            },
            // Within two days of `a`: read with it.
            Wanted {
                meter: &c,
                needs: vec![Some(utc(21, 3))],
                history_start: history,
            },
        ];
        let groups = groups(wanted, Duration::days(7), utc(25, 0), |_| utc(1, 0));
        let summary: Vec<(DateTime<Utc>, Vec<&str>)> = groups
            .iter()
            .map(|(from, ms)| (*from, ms.iter().map(|m| m.id.as_str()).collect()))
            .collect();
        assert_eq!(summary, vec![(utc(1, 0), vec!["b"]), (utc(11, 23), vec!["a", "c"])]);
    }

    #[test]
    fn caught_up_meters_skip_the_call_until_new_data_can_exist() {
        let a = meter("a");
        let wanted = || {
            vec![Wanted {
                meter: &a,
                needs: vec![Some(utc(20, 0)), Some(utc(19, 23))],
                history_start: utc(1, 0),
            }]
        };
        assert!(groups(wanted(), Duration::days(7), utc(20, 12), |_| utc(21, 0)).is_empty());
        assert_eq!(
            groups(wanted(), Duration::days(7), utc(20, 12), |_| utc(20, 0)).len(),
            1
        );
        // A sink far behind the other is not caught up: the call is made for it.
        let behind = vec![Wanted {
            meter: &a,
            needs: vec![Some(utc(20, 0)), Some(utc(2, 0))],
            history_start: utc(1, 0),
        }];
        assert_eq!(groups(behind, Duration::days(7), utc(20, 12), |_| utc(21, 0)).len(), 1);
    }
}
