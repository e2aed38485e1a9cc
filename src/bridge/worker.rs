//! One provider account's polling loop.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use super::{diff, note_error, publish_bridge_state, summary, BridgeEvent, Shared};
use crate::model::ApiStatus;
use crate::model::{local_midnight, IntervalReading, Meter, MeterValue, TimeRange};
use crate::mqtt::payloads::{MeterState as StatePayload, ReadingItem, ReadingsBatch};
use crate::mqtt::topics::segment;
use crate::mqtt::{discovery, ConnectionState, MqttEvent};
use crate::providers::{ProviderError, SharedProvider};
use crate::state::AccountState;

/// Intervals per message on the readings topic: large enough for few round trips, small enough
/// for any broker's packet limit (~30 kB).
const BATCH: usize = 200;
const ACK_LIMIT: Duration = Duration::from_secs(60);
/// How far apart two meters' range starts may be and still share one data call.
const SHARED_RANGE_SLACK: chrono::Duration = chrono::Duration::days(2);

pub(crate) struct AccountWorker {
    shared: Shared,
    provider: SharedProvider,
    label: String,
    state: AccountState,
    meters: Vec<Meter>,
    values: HashMap<String, Vec<MeterValue>>,
    payloads: HashMap<String, StatePayload>,
    /// Readings are waiting for the broker: poll again as soon as it is back.
    mqtt_behind: bool,
}

struct Cancelled;

#[derive(Default)]
struct PollReport {
    published: usize,
    errors: usize,
}

impl AccountWorker {
    pub fn new(shared: Shared, provider: SharedProvider) -> Self {
        let label = format!("{}/{}", provider.kind(), provider.account());
        AccountWorker {
            shared,
            provider,
            label,
            state: AccountState::default(),
            meters: Vec::new(),
            values: HashMap::new(),
            payloads: HashMap::new(),
            mqtt_behind: false,
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let store = self.shared.store.clone();
        let (kind, account) = (self.provider.kind(), self.provider.account().to_owned());
        match tokio::task::spawn_blocking(move || store.load_account(kind, &account)).await {
            Ok(Ok(state)) => self.state = state,
            Ok(Err(e)) => {
                tracing::error!(account = %self.label, "{e}");
                note_error(&self.shared, &e.to_string());
                publish_bridge_state(&self.shared).await;
                return;
            }
            Err(e) => {
                tracing::error!(account = %self.label, "loading state failed: {e}");
                return;
            }
        }
        let mut connects = self.shared.mqtt.events();
        // Give the broker a moment first, so a normal start does not fetch twice; a broker that
        // stays away does not hold up the other sink.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::timeout(Duration::from_secs(10), self.shared.mqtt.connected()) => {}
        }
        let poll_interval = self.shared.config.bridge.poll_interval;
        let jitter = self.shared.config.bridge.jitter;
        loop {
            let started = tokio::time::Instant::now();
            let wait = poll_interval + random_up_to(jitter);
            let next_poll = (Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()).trunc_subsecs(0);
            let report = match self.poll(&shutdown, next_poll).await {
                Ok(report) => report,
                Err(Cancelled) => break,
            };
            let _ = self.shared.events.send(BridgeEvent::PollFinished {
                provider: self.provider.kind(),
                account: self.provider.account().to_owned(),
                meters: self.meters.len(),
                published: report.published,
                errors: report.errors,
            });
            tracing::info!(
                account = %self.label,
                meters = self.meters.len(),
                published = report.published,
                errors = report.errors,
                next_poll = %next_poll.format("%Y-%m-%d %H:%M:%S UTC"),
                "poll finished"
            );
            let behind = std::mem::take(&mut self.mqtt_behind);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(started + wait) => {}
                _ = next_connack(&mut connects), if behind => {
                    tracing::info!(account = %self.label, "MQTT is back; polling now to send what was held back");
                }
            }
        }
        tracing::debug!(account = %self.label, "stopped");
    }

    async fn poll(&mut self, shutdown: &CancellationToken, next_poll: DateTime<Utc>) -> Result<PollReport, Cancelled> {
        let mut report = PollReport::default();
        let now = Utc::now().trunc_subsecs(0);
        let listed = tokio::select! {
            _ = shutdown.cancelled() => return Err(Cancelled),
            listed = self.provider.meters() => listed,
        };
        match listed {
            Ok(meters) => self.meters = meters,
            Err(e) => {
                report.errors += 1;
                self.fail_all(&e);
                self.publish_states(now, next_poll).await;
                return Ok(report);
            }
        }
        for meter in self.meters.clone() {
            let values = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                values = self.provider.values(&meter) => values,
            };
            match values {
                Ok(values) => {
                    self.values.insert(meter.id.clone(), values);
                }
                Err(e) => tracing::warn!(account = %self.label, meter = %meter.id, "could not read extra values: {e}"),
            }
        }
        self.sync_discovery().await;
        self.update_bridge_meter_count();

        for (from, group) in self.groups_to_fetch(now).await {
            let range = TimeRange::new(from, now);
            tracing::debug!(account = %self.label, meters = group.len(), %range, "fetching readings");
            let results = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                results = self.provider.readings_many(&group, range) => results,
            };
            for (id, result) in results {
                let Some(meter) = group.iter().find(|m| m.id == id).cloned() else {
                    continue;
                };
                match result {
                    Ok(readings) => {
                        let status = self.payload(&meter);
                        status.api_status = ApiStatus::Ok.as_str().into();
                        status.api_error = None;
                        report.published += self.deliver(&meter, readings, shutdown).await?;
                    }
                    Err(e) => {
                        report.errors += 1;
                        self.fail_meter(&meter, &e);
                    }
                }
            }
        }
        self.publish_states(now, next_poll).await;
        self.save().await;
        Ok(report)
    }

    /// Meters grouped by the start of the range they need, so batching providers can ask for
    /// several in one call. Meters with nothing new possible are left out.
    async fn groups_to_fetch(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Vec<Meter>)> {
        let bridge = &self.shared.config.bridge;
        let lookback = chrono::Duration::from_std(bridge.lookback).unwrap_or_default();
        let mut wanted: Vec<(DateTime<Utc>, Meter)> = Vec::new();
        for meter in &self.meters {
            let history = history_start(
                meter,
                bridge.history_start_or_default(now.date_naive()),
                self.provider.max_history(),
                now,
            );
            let cursor = self.state.meters.get(&meter.id).and_then(|m| m.cursor);
            let mut from = cursor.map_or(history, |c| c - lookback);
            let mut sinks_caught_up = true;
            for sink in self.shared.sinks.iter().filter(|s| s.active()) {
                match sink.needs_from(meter).await {
                    Some(t) => {
                        from = from.min(t - lookback);
                        sinks_caught_up &= cursor.is_some_and(|c| t + lookback >= c);
                    }
                    None => {
                        from = history;
                        sinks_caught_up = false;
                    }
                }
            }
            let from = local_day_start(from.max(history), meter.timezone).max(history);
            if let Some(cursor) = cursor {
                if sinks_caught_up && self.provider.next_data_possible(cursor, now) > now {
                    tracing::debug!(account = %self.label, meter = %meter.id, "nothing new can exist yet; no data call");
                    continue;
                }
            }
            if from < now {
                wanted.push((from, meter.clone()));
            }
        }
        // Meters whose ranges start within a couple of days of each other are asked for together
        // from the earliest start: re-reading a day or two is cheaper than another API call, and
        // the diff drops what was sent before.
        wanted.sort_by_key(|(from, _)| *from);
        let mut groups: Vec<(DateTime<Utc>, Vec<Meter>)> = Vec::new();
        for (from, meter) in wanted {
            match groups.last_mut() {
                Some((start, meters)) if from - *start <= SHARED_RANGE_SLACK => meters.push(meter),
                _ => groups.push((from, vec![meter])),
            }
        }
        groups
    }

    /// Publishes what is new or corrected, batch by batch; each batch is recorded and saved the
    /// moment the broker acknowledges it, so a crash re-sends at most one batch.
    async fn deliver(
        &mut self,
        meter: &Meter,
        mut readings: Vec<IntervalReading>,
        shutdown: &CancellationToken,
    ) -> Result<usize, Cancelled> {
        readings.sort_by_key(|r| r.start);
        let lookback = chrono::Duration::from_std(self.shared.config.bridge.lookback).unwrap_or_default();
        let topic = self.shared.topics.meter_readings(meter);
        let pending = diff::pending(
            self.state.meters.entry(meter.id.clone()).or_default(),
            lookback,
            &readings,
        );
        let mut published = 0;
        if !pending.is_empty() && self.shared.mqtt.state() != ConnectionState::Connected {
            // Waiting out the broker would hold up the other sink; the readings stay pending
            // and the next ConnAck wakes this account to send them.
            let message = format!(
                "{} readings of {} held back: the MQTT broker is not connected; they are sent when it is",
                pending.len(),
                meter.id
            );
            tracing::warn!(account = %self.label, "{message}");
            note_error(&self.shared, &message);
            self.mqtt_behind = true;
        }
        let chunks = if self.mqtt_behind {
            [].chunks(BATCH)
        } else {
            pending.chunks(BATCH)
        };
        for chunk in chunks {
            let batch = ReadingsBatch {
                meter: &meter.id,
                provider: &meter.provider,
                unit: meter.unit.as_str(),
                readings: chunk
                    .iter()
                    .map(|p| ReadingItem::new(&p.reading, p.correction))
                    .collect(),
            };
            let payload = serde_json::to_vec(&batch).unwrap_or_default();
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return Err(Cancelled),
                sent = self.shared.mqtt.publish_within(ACK_LIMIT, topic.clone(), payload, false) => sent,
            };
            match sent {
                Ok(()) => {
                    diff::record(self.state.meters.entry(meter.id.clone()).or_default(), chunk);
                    published += chunk.len();
                    self.save().await;
                }
                Err(e) => {
                    let message = format!(
                        "readings of {} not delivered: {e}; they are sent again after the reconnect",
                        meter.id
                    );
                    tracing::warn!(account = %self.label, "{message}");
                    note_error(&self.shared, &message);
                    self.mqtt_behind = true;
                    break;
                }
            }
        }
        if pending.len() > BATCH {
            tracing::info!(account = %self.label, meter = %meter.id, published, "backfill delivered");
        }
        if let Some(ms) = self.state.meters.get_mut(&meter.id) {
            if let Some(cursor) = ms.cursor {
                ms.prune(cursor - lookback - chrono::Duration::days(1));
            }
        }

        let values = self.values.get(&meter.id).cloned().unwrap_or_default();
        for sink in self.shared.sinks.clone() {
            if let Err(e) = sink.deliver(meter, &readings, &values).await {
                let message = format!("{} for {}: {e}", sink.name(), meter.id);
                tracing::warn!(account = %self.label, "{message}");
                note_error(&self.shared, &message);
            }
        }

        let tz = meter.timezone;
        let data_until = self.state.meters.get(&meter.id).and_then(|m| m.cursor);
        let status = self.payload(meter);
        if let Some(latest) = summary::latest(&readings) {
            status.latest = Some(latest);
        }
        if let Some(day) = summary::last_day(&readings, tz) {
            status.last_day = Some(day);
        }
        status.data_until = data_until;
        Ok(published)
    }

    fn payload(&mut self, meter: &Meter) -> &mut StatePayload {
        self.payloads
            .entry(meter.id.clone())
            .or_insert_with(|| StatePayload::new(meter))
    }

    fn fail_meter(&mut self, meter: &Meter, error: &ProviderError) {
        let message = error.to_string();
        tracing::warn!(account = %self.label, meter = %meter.id, status = error.api_status().as_str(), "{message}");
        note_error(&self.shared, &message);
        let status = self.payload(meter);
        status.api_status = error.api_status().as_str().into();
        status.api_error = Some(message);
    }

    fn fail_all(&mut self, error: &ProviderError) {
        let message = error.to_string();
        match error.api_status() {
            ApiStatus::AuthError => tracing::error!(account = %self.label, "{message}"),
            _ => tracing::warn!(account = %self.label, "listing meters failed: {message}"),
        }
        note_error(&self.shared, &message);
        for meter in self.meters.clone() {
            let status = self.payload(&meter);
            status.api_status = error.api_status().as_str().into();
            status.api_error = Some(message.clone());
        }
    }

    async fn publish_states(&mut self, now: DateTime<Utc>, next_poll: DateTime<Utc>) {
        for meter in self.meters.clone() {
            let values = self.values.get(&meter.id).cloned().unwrap_or_default();
            let status = self.payload(&meter);
            status.last_poll = Some(now);
            status.next_poll = Some(next_poll);
            status.extras = values
                .iter()
                .map(|v| {
                    let attributes = serde_json::Value::Object(v.attributes.clone());
                    (
                        crate::mqtt::topics::object_id(&v.key),
                        serde_json::json!({ "value": v.value, "attributes": attributes }),
                    )
                })
                .collect();
            let payload = serde_json::to_vec(status).unwrap_or_default();
            let topic = self.shared.topics.meter_state(&meter);
            self.shared
                .retained
                .publish_if_changed(&self.shared.mqtt, topic, payload);
        }
        publish_bridge_state(&self.shared).await;
    }

    /// Publishes the configs of current meters and clears those of meters that disappeared.
    async fn sync_discovery(&mut self) {
        let shared = self.shared.clone();
        let mut now_published = BTreeSet::new();
        if shared.config.mqtt.discovery {
            for meter in &self.meters {
                let values = self.values.get(&meter.id).map(Vec::as_slice).unwrap_or_default();
                for config in discovery::meter_configs(&shared.topics, meter, values) {
                    now_published.insert(config.topic.clone());
                    shared
                        .retained
                        .publish_if_changed(&shared.mqtt, config.topic.clone(), config.bytes());
                }
            }
        }
        for topic in self.state.discovery.difference(&now_published) {
            tracing::info!(account = %self.label, topic, "clearing the discovery config of a vanished meter or value");
            shared.retained.publish(&shared.mqtt, topic.clone(), Vec::new());
        }
        let current: BTreeSet<&str> = self.meters.iter().map(|m| m.id.as_str()).collect();
        let vanished: Vec<String> = self
            .payloads
            .keys()
            .filter(|id| !current.contains(id.as_str()))
            .cloned()
            .collect();
        for id in vanished {
            self.payloads.remove(&id);
            let topic = format!(
                "{}/{}/{}/state",
                shared.topics.base,
                segment(self.provider.kind()),
                segment(&id)
            );
            shared.retained.publish(&shared.mqtt, topic, Vec::new());
        }
        if self.state.discovery != now_published {
            self.state.discovery = now_published;
            self.save().await;
        }
    }

    fn update_bridge_meter_count(&self) {
        let mut state = self.shared.bridge_state.lock().expect("bridge state lock");
        state.meter_counts.insert(self.label.clone(), self.meters.len());
        state.meters = state.meter_counts.values().sum();
    }

    async fn save(&self) {
        let store = self.shared.store.clone();
        let state = self.state.clone();
        let (kind, account) = (self.provider.kind(), self.provider.account().to_owned());
        match tokio::task::spawn_blocking(move || store.save_account(kind, &account, &state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(account = %self.label, "{e}");
                note_error(&self.shared, &e.to_string());
            }
            Err(e) => tracing::error!(account = %self.label, "saving state failed: {e}"),
        }
    }
}

fn local_day_start(at: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    local_midnight(at.with_timezone(&tz).date_naive(), tz)
}

/// Local midnight of `day` in the meter's zone, but no earlier than the provider allows.
fn history_start(meter: &Meter, day: chrono::NaiveDate, max_history: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    local_midnight(day, meter.timezone).max(now - chrono::Duration::from_std(max_history).unwrap_or_default())
}

async fn next_connack(events: &mut tokio::sync::broadcast::Receiver<MqttEvent>) {
    loop {
        match events.recv().await {
            Ok(MqttEvent::Connected) => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return std::future::pending().await,
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
