//! One account's uploads: a single loop that sends one record at a time (the API wants one
//! request after another per customer), taking the series in turn, oldest record first within
//! each. The cursor of a series moves only on the API's answer.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::history::hourly_records;
use super::series::Series;
use super::status::Board;
use crate::backoff_policy::RetryPolicy;
use crate::clock::SharedClock;
use crate::homeassistant::Client;
use crate::providers::upload::{Delivered, ImportError, Record, SharedImporter, Target};

/// What the ticks hand the loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// A live record of series `.0`.
    Record(usize, Record),
    /// Read statistics of series `series` over `[since, until)` (`since` `None`: from its cursor).
    Fill {
        series: usize,
        since: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    },
}

/// How long to wait before asking Home Assistant's statistics again after a failure.
const HISTORY_RETRY: Duration = Duration::from_secs(60);
/// A series' sensor state is published at most this often while records flow.
const SHOW_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct AccountLoop {
    pub(crate) importer: SharedImporter,
    pub(crate) series: Vec<Series>,
    pub(crate) ha: Option<Client>,
    pub(crate) board: Board,
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
    pub(crate) history_start: NaiveDate,
    pub(crate) clock: SharedClock,
    /// Waits after the API stayed unavailable through a request's retries.
    pub(crate) outage: RetryPolicy,
    /// The token was refused: nothing is sent until a restart; live records are still queued.
    pub(crate) auth_failed: bool,
    /// Cancelled at shutdown: a request still waiting is given up (its record is sent again
    /// after the restart, which the API answers 409 if it had stored it).
    pub(crate) stop: CancellationToken,
}

enum Step {
    Sent,
    Idle,
    Stop,
}

impl AccountLoop {
    pub(crate) async fn run(mut self) {
        let stop = self.stop.clone();
        let now = self.clock.now();
        for series in &mut self.series {
            series.fill(None, now, self.history_start);
        }
        self.show_all();
        let mut turn = 0;
        let mut delays = self.outage.delays();
        let mut shown = tokio::time::Instant::now();
        loop {
            self.drain().await;
            if stop.is_cancelled() {
                break;
            }
            if self.auth_failed {
                if !self.wait(&stop, Duration::from_secs(3600)).await {
                    break;
                }
                continue;
            }
            match self.step(&mut turn).await {
                Step::Sent => {
                    delays.reset();
                    if shown.elapsed() >= SHOW_EVERY {
                        self.show_all();
                        shown = tokio::time::Instant::now();
                    }
                }
                Step::Idle => {
                    self.show_all();
                    if !self.wait(&stop, Duration::from_secs(30)).await {
                        break;
                    }
                }
                Step::Stop => {
                    self.show_all();
                    let wait = delays.next_delay();
                    if !self.wait(&stop, wait).await {
                        break;
                    }
                }
            }
        }
        // Ticks already taken are kept for the next start.
        self.drain().await;
        self.show_all();
    }

    /// Waits for an event, `limit` or the stop; false on stop.
    async fn wait(&mut self, stop: &CancellationToken, limit: Duration) -> bool {
        tokio::select! {
            _ = stop.cancelled() => false,
            event = self.events.recv() => {
                if let Some(event) = event {
                    self.apply(event).await;
                }
                true
            }
            _ = tokio::time::sleep(limit) => true,
        }
    }

    async fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.apply(event).await;
        }
    }

    async fn apply(&mut self, event: Event) {
        match event {
            Event::Record(index, record) => {
                let Some(series) = self.series.get_mut(index) else {
                    return;
                };
                if let Err(e) = series.outbox.push(&record).await {
                    tracing::error!(series = %series.settings.label(), "cannot queue a record: {e}");
                }
            }
            Event::Fill { series, since, until } => {
                if let Some(series) = self.series.get_mut(series) {
                    series.fill(since, until, self.history_start);
                }
            }
        }
    }

    fn show_all(&self) {
        for series in &self.series {
            self.board.show(&series.key, &series.status());
        }
    }

    /// Sends the next record of the next series that has one.
    async fn step(&mut self, turn: &mut usize) -> Step {
        let count = self.series.len();
        for offset in 0..count {
            let index = (*turn + offset) % count;
            if !self.series[index].started {
                match self.start(index).await {
                    Ok(()) => {}
                    Err(step) => return step,
                }
            }
            if let Err(e) = self.read_history(index).await {
                let series = &mut self.series[index];
                tracing::warn!(series = %series.settings.label(), "{e}; trying again in a minute");
                series.outbox.set_error(Some(e));
                series.history_retry = Some(tokio::time::Instant::now() + HISTORY_RETRY);
                continue;
            }
            let Some(record) = self.series[index].next() else {
                continue;
            };
            *turn = index + 1;
            return self.send(index, record).await;
        }
        Step::Idle
    }

    /// Reads the statistics that come before the series' next record, if any, queuing the live
    /// records that arrive meanwhile.
    async fn read_history(&mut self, index: usize) -> Result<(), String> {
        let Some(ha) = self.ha.clone() else { return Ok(()) };
        // A chunk may hold nothing still wanted (hours the API has): read on until records are
        // at hand or the statistics are read to the end.
        while let Some((entity, kind, from, end)) = self.series[index].chunk_to_read() {
            let Some(records) = self.meanwhile(hourly_records(&ha, &entity, kind, from, end)).await else {
                return Ok(());
            };
            let records = records?;
            self.series[index].read(records, end);
        }
        Ok(())
    }

    /// A series the outbox knew nothing of starts after the API's newest record.
    async fn start(&mut self, index: usize) -> Result<(), Step> {
        let (import_id, suit, kind) = {
            let s = &self.series[index].settings;
            (s.import_id.clone(), s.suit.clone(), s.kind)
        };
        let target = Target {
            kind,
            import_id: &import_id,
            suit: &suit,
            unit: None,
        };
        let importer = self.importer.clone();
        let Some(answer) = self.meanwhile(importer.latest(&target)).await else {
            return Err(Step::Stop);
        };
        let series = &mut self.series[index];
        match answer {
            Ok(latest) => {
                series.started = true;
                if let Some(latest) = latest {
                    tracing::info!(series = %series.settings.label(), latest = %latest, "the API holds records up to here; sending what is newer");
                    if let Err(e) = series.outbox.start_at(latest).await {
                        tracing::error!(series = %series.settings.label(), "{e}");
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.failed(index, e)),
        }
    }

    async fn send(&mut self, index: usize, record: Record) -> Step {
        let series = &self.series[index];
        let (unit, import_id, suit, kind) = (
            series.unit(),
            series.settings.import_id.clone(),
            series.settings.suit.clone(),
            series.settings.kind,
        );
        let target = Target {
            kind,
            import_id: &import_id,
            suit: &suit,
            unit: unit.as_deref(),
        };
        let importer = self.importer.clone();
        let Some(answer) = self.meanwhile(importer.send(&target, &record)).await else {
            return Step::Stop;
        };
        let series = &mut self.series[index];
        let label = series.settings.label();
        let written = match answer {
            Ok(Delivered::Stored(_)) | Ok(Delivered::Duplicate) => {
                series.done(&record);
                series.outbox.stored(&record).await
            }
            Ok(Delivered::Refused(why)) => {
                tracing::warn!(series = %label, time = %record.time, value = record.value, "the API refused the record: {why}; going on with the next");
                series.done(&record);
                series.outbox.refused_with(&record, why).await
            }
            Err(e) => return self.failed(index, e),
        };
        if let Err(e) = written {
            tracing::error!(series = %label, "cannot record the answer: {e}; stopping the uploads of this account");
            return Step::Stop;
        }
        Step::Sent
    }

    /// Awaits `request` while queuing the live records that arrive meanwhile: an answer can take
    /// minutes of retries, and a tick must reach its outbox at once.
    /// `None` when the uploads stop first.
    async fn meanwhile<T>(&mut self, request: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::pin!(request);
        let stop = self.stop.clone();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                answer = &mut request => return Some(answer),
                Some(event) = self.events.recv() => self.apply(event).await,
            }
        }
    }

    /// The API is unavailable (wait, then the same record again) or refuses the token (nothing
    /// can succeed: every series shows it, and nothing more is sent until a restart).
    fn failed(&mut self, index: usize, error: ImportError) -> Step {
        match error {
            ImportError::Unavailable(why) => {
                tracing::warn!(account = %self.importer.account(), "{why}; the uploads wait and try the same record again");
                self.series[index].outbox.set_error(Some(why));
                Step::Stop
            }
            ImportError::Auth(why) => {
                tracing::error!(account = %self.importer.account(), "{why}; the uploads of this account stop until the token is fixed and meter2mqtt restarted");
                for series in &mut self.series {
                    series.outbox.set_error(Some(why.clone()));
                }
                self.show_all();
                self.auth_failed = true;
                Step::Stop
            }
        }
    }
}
