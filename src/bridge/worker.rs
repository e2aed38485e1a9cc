//! One provider account's polling loop. It only orchestrates: list meters → the range each sink
//! needs → read, one API window at a time → hand each window to every sink → report how the
//! poll went. A poll that ended with a transient failure (the API down, throttling, garbled
//! answers) is tried again sooner than the next regular poll; one that failed for a reason only
//! the user can fix keeps the regular interval and says so.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::progress::ProgressLog;
use super::ranges::{self, Wanted};
use super::rechunk::Rechunk;
use super::{BridgeEvent, Shared};
use crate::model::{local_midnight, IntervalReading, Meter, MeterValue, PriceSeries, TimeRange};
use crate::providers::{ProviderError, Receive, SharedProvider, Window};
use crate::sink::{AccountId, Batch, Outcome, PollReport, Progress, Sink, StatusBoard};

/// How long the first poll waits for the sinks to be ready (the broker to connect), so a normal
/// start does not fetch twice; a sink that stays away does not hold up the others.
const READY_WAIT: Duration = Duration::from_secs(10);

/// After a poll that ended with a transient failure, the next try comes this soon, doubling with
/// each further such poll up to the poll interval.
const RETRY_FIRST: Duration = Duration::from_secs(5 * 60);

pub(crate) struct AccountWorker {
    shared: Shared,
    provider: SharedProvider,
    account: AccountId,
    sinks: Vec<Box<dyn Sink>>,
    meters: Vec<Meter>,
    values: HashMap<String, Vec<MeterValue>>,
    /// Polls in a row that ended with a transient failure.
    failed_polls: u32,
}

struct Cancelled;

#[derive(Default)]
struct Tally {
    delivered: Vec<(&'static str, usize)>,
    errors: usize,
    /// A meter or the listing failed for a transient reason (DataHub down, rate limited, garbled
    /// answers): worth trying again soon.
    transient: bool,
    outcomes: HashMap<String, Outcome>,
}

impl AccountWorker {
    pub(crate) fn new(shared: Shared, provider: SharedProvider) -> Self {
        let account = AccountId {
            kind: provider.kind(),
            label: provider.account().to_owned(),
        };
        AccountWorker {
            shared,
            provider,
            account,
            sinks: Vec::new(),
            meters: Vec::new(),
            values: HashMap::new(),
            failed_polls: 0,
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        for factory in self.shared.sinks.clone() {
            match factory.open(&self.account, &self.shared.board).await {
                Ok(sink) => self.sinks.push(sink),
                Err(e) => {
                    tracing::error!(account = %self.account, sink = factory.name(), "{e}");
                    self.shared.board.note_error(&e.to_string());
                    return;
                }
            }
        }
        let ready = futures_util::future::join_all(self.sinks.iter_mut().map(|s| s.ready()));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::timeout(READY_WAIT, ready) => {}
        }
        'polls: loop {
            let polled_at = Utc::now().trunc_subsecs(0);
            let tally = match self.poll(&shutdown, polled_at).await {
                Ok(tally) => tally,
                Err(Cancelled) => break,
            };
            let wait = self.next_wait(&tally);
            let next_poll = (Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()).trunc_subsecs(0);
            self.report(polled_at, next_poll, &tally.outcomes).await;
            self.log_poll(&tally, next_poll);
            let _ = self.shared.events.send(BridgeEvent::PollFinished {
                provider: self.account.kind,
                account: self.account.label.clone(),
                meters: self.meters.len(),
                delivered: tally.delivered,
                errors: tally.errors,
            });
            let until = Instant::now() + wait;
            loop {
                // Live values between polls, while the next poll is further away than their
                // refresh.
                let refresh = self
                    .provider
                    .values_refresh()
                    .map(|every| Instant::now() + every)
                    .filter(|at| *at < until);
                let refresh_due = async {
                    match refresh {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let wake = futures_util::future::select_all(self.sinks.iter_mut().map(|s| s.wake()));
                tokio::select! {
                    _ = shutdown.cancelled() => break 'polls,
                    _ = tokio::time::sleep_until(until) => break,
                    _ = wake => break,
                    _ = refresh_due => {}
                }
                if self.refresh_values(&shutdown).await.is_err() {
                    break 'polls;
                }
            }
        }
        tracing::debug!(account = %self.account, "stopped");
    }

    /// The regular interval with its random spread; after polls that ended with a transient
    /// failure, 5 minutes, doubling up to the interval. A good poll resets it, and so does one
    /// whose failures need the user (trying sooner cannot help them).
    fn next_wait(&mut self, tally: &Tally) -> Duration {
        let settings = &self.shared.settings;
        let regular = settings.poll_interval + random_up_to(settings.jitter);
        if !tally.transient {
            self.failed_polls = 0;
            return regular;
        }
        self.failed_polls += 1;
        let soon = RETRY_FIRST.saturating_mul(1 << (self.failed_polls - 1).min(16));
        let wait = soon.min(settings.poll_interval);
        tracing::info!(account = %self.account, retry_in = %humantime::format_duration(wait), "the poll failed for a reason that can pass (the API down, throttling or garbled answers); trying again sooner than the next regular poll");
        wait
    }

    fn log_poll(&self, tally: &Tally, next_poll: DateTime<Utc>) {
        let counts: Vec<String> = self
            .sinks
            .iter()
            .zip(&tally.delivered)
            .map(|(sink, (_, n))| format!("{}={n}", sink.verb()))
            .collect();
        tracing::info!(
            account = %self.account,
            meters = self.meters.len(),
            errors = tally.errors,
            next_poll = %next_poll.format("%Y-%m-%d %H:%M:%S UTC"),
            "poll finished {}",
            counts.join(" ")
        );
    }

    async fn poll(&mut self, shutdown: &CancellationToken, now: DateTime<Utc>) -> Result<Tally, Cancelled> {
        let mut tally = Tally {
            delivered: self.sinks.iter().map(|s| (s.name(), 0)).collect(),
            ..Tally::default()
        };
        let listed = tokio::select! {
            _ = shutdown.cancelled() => return Err(Cancelled),
            listed = self.provider.meters() => listed,
        };
        match listed {
            Ok(meters) => self.meters = meters,
            Err(e) => {
                tally.errors += 1;
                tally.transient |= e.is_transient();
                let outcome = failed(&self.account, &self.shared.board, None, &e);
                tally.outcomes = self.meters.iter().map(|m| (m.id.clone(), outcome.clone())).collect();
                return Ok(tally);
            }
        }
        self.read_values(shutdown).await?;
        self.shared.board.set_meters(&self.account, self.meters.len());
        for sink in &mut self.sinks {
            sink.meters_listed(&self.meters, &self.values).await;
        }

        let mut log = ProgressLog::new(self.account.clone());
        for (from, group) in self.groups(now).await {
            let range = TimeRange::new(from, now);
            tracing::debug!(account = %self.account, meters = group.len(), %range, "fetching readings");
            let wants_prices = self.sinks.iter().any(|s| s.active() && s.wants_prices());
            let mut delivering = Delivering {
                account: &self.account,
                board: &self.shared.board,
                provider: &self.provider,
                sinks: &mut self.sinks,
                meters: &group,
                range,
                wants_prices,
                shutdown,
                tally: &mut tally,
                rechunk: Rechunk::default(),
                failed: HashSet::new(),
                log: &mut log,
            };
            self.provider.read(&group, range, &mut delivering).await;
            if shutdown.is_cancelled() {
                return Err(Cancelled);
            }
            delivering.finish().await;
        }
        Ok(tally)
    }

    async fn read_values(&mut self, shutdown: &CancellationToken) -> Result<(), Cancelled> {
        for meter in &self.meters {
            let values = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                values = self.provider.values(meter) => values,
            };
            match values {
                Ok(values) => {
                    self.values.insert(meter.id.clone(), values);
                }
                Err(e) => {
                    tracing::warn!(account = %self.account, meter = %meter.id, "could not read extra values: {e}")
                }
            }
        }
        Ok(())
    }

    /// Reads the values again and hands them to the sinks.
    async fn refresh_values(&mut self, shutdown: &CancellationToken) -> Result<(), Cancelled> {
        self.read_values(shutdown).await?;
        for sink in &mut self.sinks {
            sink.values_refreshed(&self.meters, &self.values).await;
        }
        Ok(())
    }

    async fn report(&mut self, at: DateTime<Utc>, next_poll: DateTime<Utc>, outcomes: &HashMap<String, Outcome>) {
        let report = PollReport {
            at,
            next_poll,
            meters: &self.meters,
            outcomes,
        };
        for sink in &mut self.sinks {
            sink.poll_finished(&report).await;
        }
    }

    /// The meters to read, grouped by the start of the range they need.
    async fn groups(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Vec<Meter>)> {
        let settings = &self.shared.settings;
        let lookback = chrono::Duration::from_std(settings.lookback).unwrap_or_default();
        let first_day = settings.history_start_or_default(now.date_naive());
        let max_history = chrono::Duration::from_std(self.provider.max_history()).unwrap_or_default();
        let mut needs = Vec::with_capacity(self.meters.len());
        for meter in &self.meters {
            let mut meter_needs = Vec::new();
            for sink in self.sinks.iter_mut().filter(|s| s.active()) {
                meter_needs.push(sink.needs_from(meter).await);
            }
            needs.push(meter_needs);
        }
        let wanted = self
            .meters
            .iter()
            .zip(needs)
            .map(|(meter, needs)| Wanted {
                meter,
                needs,
                history_start: local_midnight(first_day, meter.timezone).max(now - max_history),
            })
            .collect();
        let provider = &self.provider;
        ranges::groups(wanted, lookback, now, |data_until| {
            provider.next_data_possible(data_until, now)
        })
    }
}

/// Hands each window of a read to every sink, as the provider produces them.
struct Delivering<'a> {
    account: &'a AccountId,
    board: &'a StatusBoard,
    provider: &'a SharedProvider,
    sinks: &'a mut Vec<Box<dyn Sink>>,
    meters: &'a [Meter],
    range: TimeRange,
    wants_prices: bool,
    shutdown: &'a CancellationToken,
    tally: &'a mut Tally,
    rechunk: Rechunk,
    /// Meters whose read failed in this pass: later windows of theirs are not delivered.
    failed: HashSet<String>,
    log: &'a mut ProgressLog,
}

#[async_trait]
impl Receive for Delivering<'_> {
    async fn window(&mut self, window: Window) -> ControlFlow<()> {
        let mut ready: Vec<(&Meter, Vec<IntervalReading>)> = Vec::new();
        for (id, result) in window.results {
            let Some(meter) = self.meters.iter().find(|m| m.id == id) else {
                continue;
            };
            match result {
                Err(e) => {
                    self.tally.errors += 1;
                    self.tally.transient |= e.is_transient();
                    self.tally
                        .outcomes
                        .insert(id.clone(), failed(self.account, self.board, Some(meter), &e));
                    self.rechunk.forget(&id);
                    self.failed.insert(id);
                }
                Ok(_) if self.failed.contains(&id) => {}
                Ok(readings) => {
                    self.tally.outcomes.entry(id.clone()).or_insert_with(Outcome::ok);
                    self.log.advanced(meter, readings.len(), window.covered.end, self.range);
                    let progress = Progress {
                        from: self.range.start,
                        to: self.range.end,
                        reached: window.covered.end,
                    };
                    for sink in self.sinks.iter_mut() {
                        sink.progress(meter, progress).await;
                    }
                    ready.push((meter, self.rechunk.release(&id, readings)));
                }
            }
        }
        self.deliver(ready, window.covered).await
    }
}

impl Delivering<'_> {
    /// What the rechunker still holds goes out at the end of the read.
    async fn finish(mut self) {
        let held: Vec<(String, Vec<IntervalReading>)> = self.rechunk.drain();
        let ready: Vec<(&Meter, Vec<IntervalReading>)> = held
            .into_iter()
            .filter_map(|(id, readings)| self.meters.iter().find(|m| m.id == id).map(|m| (m, readings)))
            .collect();
        let _ = self.deliver(ready, self.range).await;
        self.log.finished(self.range);
    }

    async fn deliver(&mut self, ready: Vec<(&Meter, Vec<IntervalReading>)>, covered: TimeRange) -> ControlFlow<()> {
        let ready: Vec<_> = ready.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        if ready.is_empty() {
            return ControlFlow::Continue(());
        }
        let mut prices: Vec<Option<PriceSeries>> = Vec::with_capacity(ready.len());
        for (meter, _) in &ready {
            prices.push(self.prices(meter, covered).await);
        }
        let batches: Vec<Batch> = ready
            .iter()
            .zip(&prices)
            .map(|((meter, readings), prices)| Batch {
                meter,
                readings,
                prices: prices.as_ref(),
            })
            .collect();
        for (index, sink) in self.sinks.iter_mut().enumerate() {
            let delivery = tokio::select! {
                _ = self.shutdown.cancelled() => return ControlFlow::Break(()),
                delivery = sink.deliver(&batches) => delivery,
            };
            self.tally.delivered[index].1 += delivery.sent;
            for (meter, e) in delivery.failed {
                let message = format!("{} for {meter}: {e}", sink.name());
                tracing::warn!(account = %self.account, "{message}");
                self.board.note_error(&message);
            }
        }
        ControlFlow::Continue(())
    }

    /// The prices of `covered`, when a sink wants them and the provider knows them.
    async fn prices(&self, meter: &Meter, covered: TimeRange) -> Option<PriceSeries> {
        if !self.wants_prices {
            return None;
        }
        match self.provider.prices(meter, covered).await {
            Ok(prices) => prices,
            Err(e) => {
                tracing::warn!(account = %self.account, meter = %meter.id, "prices not available: {e}");
                None
            }
        }
    }
}

/// Logs and notes a failure; the outcome the sinks show for it. A failure that needs the user
/// says that waiting will not help, in the log (at error level) and in the API status's error.
fn failed(account: &AccountId, board: &StatusBoard, meter: Option<&Meter>, error: &ProviderError) -> Outcome {
    let mut message = error.to_string();
    if !error.is_transient() {
        message.push_str(NEEDS_USER);
    }
    let status = error.api_status();
    match (meter, error.is_transient()) {
        (Some(meter), true) => {
            tracing::warn!(account = %account, meter = %meter.id, status = status.as_str(), "{message}")
        }
        (Some(meter), false) => {
            tracing::error!(account = %account, meter = %meter.id, status = status.as_str(), "{message}")
        }
        (None, false) => tracing::error!(account = %account, "listing meters failed: {message}"),
        (None, true) => tracing::warn!(account = %account, "listing meters failed: {message}"),
    }
    board.note_error(&message);
    Outcome {
        status,
        error: Some(message),
    }
}

/// Appended to a failure that will not pass by itself.
const NEEDS_USER: &str = " (this needs your action: trying sooner cannot help, so the next try is the regular poll)";

fn random_up_to(limit: Duration) -> Duration {
    if limit.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::random_range(0..=limit.as_millis() as u64))
    }
}
