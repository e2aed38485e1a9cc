//! One provider account's polling loop. It only orchestrates: list meters → the range each sink
//! needs → fetch → hand each result to every sink → report how the poll went.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use super::ranges::{self, Wanted};
use super::{BridgeEvent, Shared};
use crate::model::{local_midnight, ApiStatus, Meter, MeterValue, TimeRange};
use crate::providers::{ProviderError, SharedProvider};
use crate::sink::{AccountId, Batch, Outcome, PollReport, Sink};

/// How long the first poll waits for the sinks to be ready (the broker to connect), so a normal
/// start does not fetch twice; a sink that stays away does not hold up the others.
const READY_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct AccountWorker {
    shared: Shared,
    provider: SharedProvider,
    account: AccountId,
    sinks: Vec<Box<dyn Sink>>,
    meters: Vec<Meter>,
    values: HashMap<String, Vec<MeterValue>>,
}

struct Cancelled;

#[derive(Default)]
struct Tally {
    delivered: Vec<(&'static str, usize)>,
    errors: usize,
}

impl AccountWorker {
    pub fn new(shared: Shared, provider: SharedProvider) -> Self {
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
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
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
        let poll_interval = self.shared.settings.poll_interval;
        let jitter = self.shared.settings.jitter;
        loop {
            let started = tokio::time::Instant::now();
            let wait = poll_interval + random_up_to(jitter);
            let next_poll = (Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()).trunc_subsecs(0);
            let tally = match self.poll(&shutdown, next_poll).await {
                Ok(tally) => tally,
                Err(Cancelled) => break,
            };
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
            let _ = self.shared.events.send(BridgeEvent::PollFinished {
                provider: self.account.kind,
                account: self.account.label.clone(),
                meters: self.meters.len(),
                delivered: tally.delivered,
                errors: tally.errors,
            });
            let wake = futures_util::future::select_all(self.sinks.iter_mut().map(|s| s.wake()));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(started + wait) => {}
                _ = wake => {}
            }
        }
        tracing::debug!(account = %self.account, "stopped");
    }

    async fn poll(&mut self, shutdown: &CancellationToken, next_poll: DateTime<Utc>) -> Result<Tally, Cancelled> {
        let mut tally = Tally {
            delivered: self.sinks.iter().map(|s| (s.name(), 0)).collect(),
            errors: 0,
        };
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        let now = Utc::now().trunc_subsecs(0);
        let listed = tokio::select! {
            _ = shutdown.cancelled() => return Err(Cancelled),
            listed = self.provider.meters() => listed,
        };
        match listed {
            Ok(meters) => self.meters = meters,
            Err(e) => {
                tally.errors += 1;
                let outcome = self.failed(None, &e);
                outcomes.extend(self.meters.iter().map(|m| (m.id.clone(), outcome.clone())));
                self.report(now, next_poll, &outcomes).await;
                return Ok(tally);
            }
        }
        self.read_values(shutdown).await?;
        self.shared.board.set_meters(&self.account, self.meters.len());
        for sink in &mut self.sinks {
            sink.meters_listed(&self.meters, &self.values).await;
        }

        for (from, group) in self.groups(now).await {
            let range = TimeRange::new(from, now);
            tracing::debug!(account = %self.account, meters = group.len(), %range, "fetching readings");
            let results = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                results = self.provider.readings_many(&group, range) => results,
            };
            for (id, result) in results {
                let Some(meter) = group.iter().find(|m| m.id == id) else {
                    continue;
                };
                match result {
                    Ok(mut readings) => {
                        outcomes.insert(id, Outcome::ok());
                        readings.sort_by_key(|r| r.start);
                        let prices = self.prices(meter, range).await;
                        let batch = Batch {
                            range,
                            readings: &readings,
                            prices: prices.as_ref(),
                        };
                        self.deliver(meter, batch, &mut tally, shutdown).await?;
                    }
                    Err(e) => {
                        tally.errors += 1;
                        outcomes.insert(id, self.failed(Some(meter), &e));
                    }
                }
            }
        }
        self.report(now, next_poll, &outcomes).await;
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

    /// The prices of `range`, when a sink wants them and the provider knows them.
    async fn prices(&self, meter: &Meter, range: TimeRange) -> Option<crate::model::PriceSeries> {
        let wanted = self.sinks.iter().any(|s| s.active() && s.wants_prices());
        if !wanted {
            return None;
        }
        let provider = self.provider.clone();
        match provider.prices(meter, range).await {
            Ok(prices) => prices,
            Err(e) => {
                tracing::warn!(account = %self.account, meter = %meter.id, "prices not available: {e}");
                None
            }
        }
    }

    /// Hands one meter's readings to every sink; a sink's failure is its own.
    async fn deliver(
        &mut self,
        meter: &Meter,
        batch: Batch<'_>,
        tally: &mut Tally,
        shutdown: &CancellationToken,
    ) -> Result<(), Cancelled> {
        for (index, sink) in self.sinks.iter_mut().enumerate() {
            let delivered = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                delivered = sink.deliver(meter, batch) => delivered,
            };
            match delivered {
                Ok(count) => tally.delivered[index].1 += count,
                Err(e) => {
                    let message = format!("{} for {}: {e}", sink.name(), meter.id);
                    tracing::warn!(account = %self.account, "{message}");
                    self.shared.board.note_error(&message);
                }
            }
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

    /// Logs and notes a failure; the outcome the sinks show for it.
    fn failed(&self, meter: Option<&Meter>, error: &ProviderError) -> Outcome {
        let message = error.to_string();
        let status = error.api_status();
        match (meter, status) {
            (Some(meter), _) => {
                tracing::warn!(account = %self.account, meter = %meter.id, status = status.as_str(), "{message}")
            }
            (None, ApiStatus::AuthError) => tracing::error!(account = %self.account, "{message}"),
            (None, _) => tracing::warn!(account = %self.account, "listing meters failed: {message}"),
        }
        self.shared.board.note_error(&message);
        Outcome {
            status,
            error: Some(message),
        }
    }
}

fn random_up_to(limit: Duration) -> Duration {
    if limit.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::random_range(0..=limit.as_millis() as u64))
    }
}
