//! One upload series while it runs: its source cell, its outbox, and the stretch of Home
//! Assistant's statistics still to read (history for a new series, a gap after an outage, the
//! look-back window of profiles).

use std::collections::VecDeque;

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};

use super::grid::hour_floor;
use super::history::CHUNK_HOURS;
use super::outbox::Outbox;
use super::source::Latest;
use super::status::SeriesStatus;
use crate::providers::upload::{Record, RecordKind, UploadSeries};

pub(crate) struct Series {
    pub(crate) settings: UploadSeries,
    /// Unique within the run; names the outbox and the sensor.
    pub(crate) key: String,
    pub(crate) latest: Latest,
    pub(crate) outbox: Outbox,
    /// Records read from statistics, still to send, oldest first.
    backlog: VecDeque<Record>,
    /// Hours of statistics still to read: `[from, to)`.
    history: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Whether the API was asked for its newest record (a series the outbox knew nothing of).
    pub(crate) started: bool,
    /// Reading statistics failed: not before then.
    pub(crate) history_retry: Option<tokio::time::Instant>,
}

impl Series {
    pub(crate) fn new(settings: UploadSeries, key: String, latest: Latest, outbox: Outbox) -> Series {
        let started = outbox.cursor().is_some();
        Series {
            settings,
            key,
            latest,
            outbox,
            backlog: VecDeque::new(),
            history: None,
            started,
            history_retry: None,
        }
    }

    /// The unit sent with each record: the configured one, else the entity's.
    pub(crate) fn unit(&self) -> Option<String> {
        self.settings.unit.clone().or_else(|| self.latest.unit())
    }

    /// Asks for the statistics of `[since, until)` (`None`: from the cursor, else from
    /// `history_start`) to be read and sent where they are newer than the cursor.
    pub(crate) fn fill(&mut self, since: Option<DateTime<Utc>>, until: DateTime<Utc>, history_start: NaiveDate) {
        if self.settings.entity.is_none() {
            return;
        }
        let first = history_start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let from = match (since, self.outbox.cursor()) {
            (Some(since), _) => since,
            // A reading at the cursor came from the hour before it.
            (None, Some(cursor)) => hour_floor(cursor) - TimeDelta::hours(1),
            (None, None) => first,
        }
        .max(first - TimeDelta::hours(1));
        let until = hour_floor(until);
        if from >= until {
            return;
        }
        self.history = Some(match self.history {
            Some((f, t)) => (f.min(from), t.max(until)),
            None => (from, until),
        });
    }

    /// The next stretch of statistics to read before the next record can be chosen: the
    /// entity, the kind and `[from, end)`. `None` when records are at hand (or nothing is left
    /// to read, or a failed read waits for its retry).
    pub(crate) fn chunk_to_read(&mut self) -> Option<(String, RecordKind, DateTime<Utc>, DateTime<Utc>)> {
        while self.backlog.front().is_some_and(|r| !self.outbox.wants(r)) {
            self.backlog.pop_front();
        }
        if !self.backlog.is_empty() || self.history_retry.is_some_and(|at| at > tokio::time::Instant::now()) {
            return None;
        }
        let (from, to) = self.history?;
        let entity = self.settings.entity.clone()?;
        let end = (from + TimeDelta::hours(CHUNK_HOURS)).min(to);
        Some((entity, self.settings.kind, from, end))
    }

    /// The records read for `[.., end)`: what is still wanted joins the backlog.
    pub(crate) fn read(&mut self, records: Vec<Record>, end: DateTime<Utc>) {
        self.history = self.history.and_then(|(_, to)| (end < to).then_some((end, to)));
        let wanted: Vec<Record> = records.into_iter().filter(|r| self.outbox.wants(r)).collect();
        self.backlog.extend(wanted);
    }

    /// The next record to send, oldest first across history and live ticks (history is read
    /// first where it comes first: see [`Series::chunk_to_read`]).
    pub(crate) fn next(&mut self) -> Option<Record> {
        while self.backlog.front().is_some_and(|r| !self.outbox.wants(r)) {
            self.backlog.pop_front();
        }
        let queued = self.outbox.front();
        match (self.backlog.front().copied(), queued) {
            (Some(old), Some(live)) if live.time < old.time => Some(live),
            (Some(old), _) => Some(old),
            (None, live) => live,
        }
    }

    /// Drops `record` from the backlog once the API answered for it.
    pub(crate) fn done(&mut self, record: &Record) {
        if self.backlog.front().is_some_and(|r| r.time == record.time) {
            self.backlog.pop_front();
        }
    }

    /// Records still to send: queued ones, read ones, and the hours of statistics not read yet
    /// (one record an hour).
    pub(crate) fn pending(&self) -> u64 {
        let unread = self
            .history
            .map_or(0, |(from, to)| (to - from).num_hours().max(0) as u64);
        self.outbox.pending() as u64 + self.backlog.len() as u64 + unread
    }

    pub(crate) fn status(&self) -> SeriesStatus {
        SeriesStatus {
            accepted: self.outbox.cursor(),
            pending: self.pending(),
            refused: self.outbox.refused(),
            dropped: self.outbox.dropped(),
            last_error: self.outbox.last_error().map(str::to_owned),
        }
    }
}
