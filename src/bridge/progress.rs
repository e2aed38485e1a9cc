//! The log's view of a long read: a line at most once a minute with how far it has come, and
//! one when it is done. Short reads (a poll's look-back window) say nothing here.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::model::{Meter, TimeRange};
use crate::sink::{AccountId, Progress};

const EVERY: Duration = Duration::from_secs(60);

/// Reads shorter than this are routine polls, not a history import.
const LONG_READ: chrono::Duration = chrono::Duration::days(14);

pub(crate) struct ProgressLog {
    account: AccountId,
    started: Instant,
    last: Option<Instant>,
    intervals: usize,
    reached: HashMap<String, (DateTime<Utc>, TimeRange)>,
}

impl ProgressLog {
    pub(crate) fn new(account: AccountId) -> ProgressLog {
        ProgressLog {
            account,
            started: Instant::now(),
            last: None,
            intervals: 0,
            reached: HashMap::new(),
        }
    }

    /// `meter`'s read of `range` has come to `reached`, with `intervals` more.
    pub(crate) fn advanced(&mut self, meter: &Meter, intervals: usize, reached: DateTime<Utc>, range: TimeRange) {
        self.intervals += intervals;
        self.reached.insert(meter.id.clone(), (reached, range));
        if range.end - range.start < LONG_READ {
            return;
        }
        let now = Instant::now();
        if self.last.is_none_or(|last| now - last >= EVERY) {
            self.last = Some(now);
            let (percent, up_to) = self.overall();
            tracing::info!(
                account = %self.account,
                "history import: {percent} % of {} meter(s), up to {}, {} intervals so far",
                self.reached.len(),
                up_to.format("%Y-%m-%d"),
                self.intervals
            );
        }
    }

    /// A read ended; says so if it was long enough to have reported progress.
    pub(crate) fn finished(&mut self, range: TimeRange) {
        if self.last.is_some() && range.end - range.start >= LONG_READ {
            tracing::info!(
                account = %self.account,
                "history import done: {} intervals in {}",
                self.intervals,
                humantime::format_duration(Duration::from_secs(self.started.elapsed().as_secs()))
            );
        }
    }

    /// The mean percent over the meters read so far, and the earliest date they have reached.
    fn overall(&self) -> (u8, DateTime<Utc>) {
        let percents: Vec<u32> = self
            .reached
            .values()
            .map(|(reached, range)| {
                u32::from(
                    Progress {
                        from: range.start,
                        to: range.end,
                        reached: *reached,
                    }
                    .percent(),
                )
            })
            .collect();
        let mean = percents.iter().sum::<u32>() / percents.len().max(1) as u32;
        let up_to = self.reached.values().map(|(r, _)| *r).min().unwrap_or_default();
        (mean as u8, up_to)
    }
}
