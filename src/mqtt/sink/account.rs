//! One account's MQTT sink: its meters' discovery configs and state topics, and its readings,
//! published batch by batch with the cursor saved the moment the broker acknowledges each one.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How often a read's progress goes out on the state topic.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// While the state cannot be written, how often writing it is tried again between polls.
const SAVE_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

use super::clocked::ClockedValues;
use super::delivery::{self, AccountState, MeterState, Pending};
use super::shared::{MqttSinks, ACK_LIMIT, BATCH, SINK};
use super::summary::Newest;
use crate::model::{Meter, MeterValue};
use crate::mqtt::entities::timestamp::Timestamp;
use crate::mqtt::entities::{field_topics_of, history, shared, state, value};
use crate::mqtt::payloads::{HistoryImport, MeterState as StatePayload, ReadingItem, ReadingsBatch};
use crate::mqtt::{discovery, ConnectionState, MqttEvent};
use crate::sink::{AccountId, Batch, Delivery, PollReport, Progress, Sink, SinkError, StatusBoard};
use crate::state::{sanitize, StateError, StateStore};

pub(crate) struct AccountSink {
    sinks: MqttSinks,
    account: AccountId,
    board: StatusBoard,
    file: PathBuf,
    /// The discovery topics published, apart from `file`: written only when they change.
    discovery_file: PathBuf,
    state: AccountState,
    values: HashMap<String, Vec<MeterValue>>,
    payloads: HashMap<String, StatePayload>,
    newest: HashMap<String, Newest>,
    /// The state file differs from what is on disk.
    dirty: bool,
    /// The last write of the state file failed (disk full, read-only, removed): no more readings
    /// go out until it is written, so a restart repeats at most the last round.
    unsaved: bool,
    /// The cursors as the state file on disk has them (and its `fresh_from` under `None`): what
    /// the bridge is told this sink needs.
    saved: Saved,
    /// The discovery file differs from what is on disk.
    discovery_unsaved: bool,
    /// This poll already said that readings wait for the state to be written.
    held_for_state: bool,

    /// When a read's progress last went out on the state topics.
    progress_published: Option<Instant>,
    /// Readings are waiting for the broker: publish nothing more this poll, and ask for a poll
    /// as soon as it is back.
    behind: bool,
    connects: broadcast::Receiver<MqttEvent>,
    /// Values that change by the clock, each on its own topic.
    clocked: ClockedValues,
}

impl AccountSink {
    pub(crate) async fn open(
        sinks: MqttSinks,
        account: AccountId,
        board: StatusBoard,
    ) -> Result<AccountSink, SinkError> {
        let stem = format!("{}-{}", sanitize(account.kind), sanitize(&account.label));
        let file = PathBuf::from(format!("{stem}.json"));
        let discovery_file = PathBuf::from(format!("{stem}.discovery.json"));
        let loaded = async {
            let state = lost_or_loaded::<AccountState>(&sinks.store, file.clone()).await?;
            let discovery = lost_or_loaded::<BTreeSet<String>>(&sinks.store, discovery_file.clone()).await?;
            Ok::<_, StateError>((state, discovery))
        }
        .await;
        let lookback = sinks.settings.lookback;
        let (mut state, fresh_from) = match loaded {
            Ok((state, discovery)) => {
                let fresh_from = match &state {
                    Loaded::Lost { path, moved_to, reason } => {
                        let from = Utc::now() - lookback;
                        let message = format!(
                            "MQTT state file {} is corrupt ({reason}) and has no usable backup; it was moved to {}. \
                             Lost: the record of what was published. Starting afresh from {}: readings since then are \
                             published again (some a second time), earlier ones are not; readings before it that were \
                             never published (a history import under way) stay unpublished unless you delete {} and \
                             restart, which publishes the whole history again (meters added later start from it too)",
                            path.display(),
                            moved_to.display(),
                            from.format("%Y-%m-%d %H:%M UTC"),
                            path.display(),
                        );
                        tracing::warn!(account = %account, "{message}");
                        board.note_error(&message);
                        Some(from)
                    }
                    _ => None,
                };
                let mut state = state.into_value().unwrap_or_default();
                match discovery {
                    Loaded::Value(discovery) => state.discovery = discovery,
                    Loaded::Lost { path, moved_to, reason } => tracing::warn!(
                        account = %account,
                        "MQTT discovery file {} is corrupt ({reason}) and has no usable backup; it was moved to {}. \
                         Lost: which discovery configs were published, so those of meters that have gone since are \
                         not cleared; current meters are published again",
                        path.display(),
                        moved_to.display(),
                    ),
                    Loaded::Missing => {}
                }
                (state, fresh_from)
            }
            Err(e) => return Err(SinkError(e.to_string())),
        };
        state.fresh_from = state.fresh_from.or(fresh_from);
        let saved = Saved::of(&state);
        let connects = sinks.mqtt.events();
        let clocked = ClockedValues::new(sinks.mqtt.clone(), sinks.retained.clone(), sinks.settings.clock.clone());
        let mut sink = AccountSink {
            clocked,
            sinks,
            account,
            board,
            file,
            discovery_file,
            state,
            values: HashMap::new(),
            payloads: HashMap::new(),
            newest: HashMap::new(),
            dirty: false,
            unsaved: false,
            saved,
            discovery_unsaved: false,
            held_for_state: false,
            progress_published: None,
            behind: false,
            connects,
        };
        if fresh_from.is_some() {
            // The new starting point must outlive a restart, or the next start reads everything.
            sink.save().await;
        }
        Ok(sink)
    }

    fn payload(&mut self, meter: &Meter) -> &mut StatePayload {
        self.payloads
            .entry(meter.id.clone())
            .or_insert_with(|| StatePayload::new(meter))
    }

    /// Writes the state file. The store logs a failure (at most once a minute); the bridge's
    /// "Last error" shows it, and `unsaved` holds further readings back until a write succeeds.
    async fn save(&mut self) {
        let state = self.state.clone();
        match self.sinks.store.save(self.file.clone(), state.clone()).await {
            Ok(()) => {
                self.saved = Saved::of(&state);
                self.dirty = false;
                self.unsaved = false;
            }
            Err(e) => self.not_saved(e.to_string()),
        }
    }

    fn not_saved(&mut self, message: String) {
        self.unsaved = true;
        self.board.note_error(&message);
    }

    async fn save_discovery(&mut self) {
        let topics = self.state.discovery.clone();
        match self.sinks.store.save(self.discovery_file.clone(), topics).await {
            Ok(()) => self.discovery_unsaved = false,
            Err(e) => {
                self.discovery_unsaved = true;
                self.board.note_error(&e.to_string());
            }
        }
    }

    fn hold_back(&mut self, message: String) {
        tracing::warn!(account = %self.account, "{message}");
        self.board.note_error(&message);
        self.behind = true;
    }

    /// Publishes every meter's pending intervals in rounds: one message per meter at a time,
    /// all of a round in flight together, and the state saved once the broker acknowledged the
    /// round, so a crash re-sends at most one message per meter and a history import writes the
    /// state once per round, not once per message.
    async fn publish(&mut self, queues: &[(&Meter, Vec<Pending>)], record_from: DateTime<Utc>) -> usize {
        let mut published = 0;
        let mut round = 0;
        loop {
            let messages: Vec<(&Meter, &[Pending])> = queues
                .iter()
                .filter_map(|(meter, pending)| pending.chunks(BATCH).nth(round).map(|chunk| (*meter, chunk)))
                .collect();
            if messages.is_empty() {
                break;
            }
            round += 1;
            let sends = messages.iter().map(|(meter, chunk)| {
                let topic = self.sinks.settings.topics.meter_readings(meter);
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
                self.sinks.mqtt.publish_within(ACK_LIMIT, topic, payload, false)
            });
            let results = futures_util::future::join_all(sends).await;
            let mut lost = None;
            for ((meter, chunk), result) in messages.iter().zip(results) {
                match result {
                    Ok(()) => {
                        delivery::record(
                            self.state.meters.entry(meter.id.clone()).or_default(),
                            chunk,
                            record_from,
                        );
                        published += chunk.len();
                        self.dirty = true;
                    }
                    Err(e) => lost = Some((meter.id.clone(), e)),
                }
            }
            if self.dirty {
                self.save().await;
            }
            if self.unsaved {
                // What went out is in memory only: a restart would send this round again, and
                // no further round may join it.
                break;
            }
            if let Some((meter, e)) = lost {
                self.hold_back(format!(
                    "readings of {meter} not delivered: {e}; they are sent again after the reconnect"
                ));
                break;
            }
        }
        published
    }

    /// The state topics of one meter: the JSON state, and each known time on its own topic
    /// (a timestamp sensor shows unknown until its topic has a message, without a warning).
    fn publish_state(&mut self, meter: &Meter) {
        let sinks = self.sinks.clone();
        let topics = &sinks.settings.topics;
        let status = self.payload(meter);
        let publish = |topic, payload| sinks.retained.publish_if_changed(&sinks.mqtt, topic, payload);
        publish(state::topic(topics, meter), state::payload(status));
        for time in Timestamp::ALL {
            if let Some(payload) = time.payload(status) {
                publish(time.topic(topics, meter), payload);
            }
        }
        if let Some(payload) = history::payload(status) {
            publish(history::topic(topics, meter), payload);
        }
    }

    /// The meters' states with their values, and the values that have topics of their own
    /// (clocked or shared).
    fn publish_values(&mut self, meters: &[Meter]) {
        let mut clocked = Vec::new();
        for meter in meters {
            let values = self.values.get(&meter.id).cloned().unwrap_or_default();
            let topics = &self.sinks.settings.topics;
            // Shared values go to their source's topic, the same from every meter that has them.
            clocked.extend(values.iter().filter_map(|v| match shared::topic(topics, v) {
                Some(topic) => Some((topic, v.clone())),
                None if value::is_clocked(v) => Some((value::clocked_topic(topics, meter, v), v.clone())),
                None => None,
            }));
            let status = self.payload(meter);
            status.extras = value::extras(&values);
            self.publish_state(meter);
        }
        self.clocked.set(clocked, self.sinks.settings.clock.now());
    }

    /// Publishes the configs of current meters and clears those of meters that disappeared.
    async fn sync_discovery(&mut self, meters: &[Meter]) {
        let sinks = self.sinks.clone();
        let mut now_published = BTreeSet::new();
        if sinks.settings.discovery {
            for meter in meters {
                let values = self.values.get(&meter.id).map(Vec::as_slice).unwrap_or_default();
                let configs = discovery::meter_configs(&sinks.settings.topics, meter, values)
                    .into_iter()
                    .chain(shared::configs(&sinks.settings.topics, values));
                for config in configs {
                    now_published.insert(config.topic.clone());
                    sinks
                        .retained
                        .publish_if_changed(&sinks.mqtt, config.topic.clone(), config.bytes());
                }
            }
        }
        for topic in self.state.discovery.difference(&now_published) {
            tracing::info!(account = %self.account, topic, "clearing the discovery config of a vanished meter or value");
            sinks.retained.publish(&sinks.mqtt, topic.clone(), Vec::new());
        }
        let current: BTreeSet<&str> = meters.iter().map(|m| m.id.as_str()).collect();
        let vanished: Vec<String> = self
            .payloads
            .keys()
            .filter(|id| !current.contains(id.as_str()))
            .cloned()
            .collect();
        for id in vanished {
            if let Some(payload) = self.payloads.remove(&id) {
                let topic = sinks.settings.topics.meter_state_of(&payload.provider, &id);
                sinks.retained.publish(&sinks.mqtt, topic.clone(), Vec::new());
                for field in field_topics_of(&sinks.settings.topics, &payload.provider, &id) {
                    sinks.retained.publish(&sinks.mqtt, field, Vec::new());
                }
            }
            self.newest.remove(&id);
        }
        if self.state.discovery != now_published || self.discovery_unsaved {
            self.state.discovery = now_published;
            self.save_discovery().await;
        }
    }
}

#[async_trait]
impl Sink for AccountSink {
    fn name(&self) -> &'static str {
        SINK
    }

    fn verb(&self) -> &'static str {
        "published"
    }

    async fn ready(&mut self) {
        self.sinks.mqtt.connected().await;
    }

    async fn meters_listed(&mut self, meters: &[Meter], values: &HashMap<String, Vec<MeterValue>>) {
        // A new poll: whatever was held back is tried again.
        self.behind = false;
        self.held_for_state = false;
        self.values = values.clone();
        self.sync_discovery(meters).await;
    }

    async fn needs_from(&mut self, meter: &Meter) -> Option<DateTime<Utc>> {
        self.saved.cursor(&meter.id)
    }

    async fn deliver(&mut self, batches: &[Batch<'_>]) -> Delivery {
        let record_from = Utc::now() - self.sinks.settings.lookback - chrono::Duration::days(1);
        if self.unsaved {
            // Whatever can be written now goes first; then the readings can follow.
            self.save().await;
        }
        let fresh_from = self.state.fresh_from;
        let queues: Vec<(&Meter, Vec<Pending>)> = batches
            .iter()
            .map(|b| {
                let state = self
                    .state
                    .meters
                    .entry(b.meter.id.clone())
                    .or_insert_with(|| MeterState {
                        cursor: fresh_from,
                        ..MeterState::default()
                    });
                (b.meter, delivery::pending(state, record_from, b.readings))
            })
            .collect();
        let waiting: usize = queues.iter().map(|(_, p)| p.len()).sum();
        let mut published = 0;
        if waiting > 0 && self.unsaved {
            if !self.held_for_state {
                // Once a poll: the store itself reports the failing directory.
                self.held_for_state = true;
                tracing::warn!(
                    account = %self.account,
                    "{waiting} readings held back: the MQTT state cannot be written; they are sent once it can"
                );
            }
        } else if waiting > 0 && self.sinks.mqtt.state() != ConnectionState::Connected {
            // Waiting out the broker would hold up the other sinks; the readings stay pending
            // and the next ConnAck wakes this account to send them.
            self.hold_back(format!(
                "{waiting} readings held back: the MQTT broker is not connected; they are sent when it is"
            ));
        } else if !self.behind {
            published = self.publish(&queues, record_from).await;
        }
        for b in batches {
            if let Some(ms) = self.state.meters.get_mut(&b.meter.id) {
                let before = ms.delivered.len();
                ms.prune(record_from);
                self.dirty |= ms.delivered.len() != before;
            }
            let tz = b.meter.timezone;
            let newest = self.newest.entry(b.meter.id.clone()).or_default();
            newest.add(b.readings, tz);
            let (latest, last_day) = (newest.latest(), newest.last_day(tz));
            let data_until = self.state.meters.get(&b.meter.id).and_then(|m| m.cursor);
            let status = self.payload(b.meter);
            status.latest = latest.or(status.latest.take());
            status.last_day = last_day.or(status.last_day.take());
            status.data_until = data_until;
        }
        Delivery {
            sent: published,
            failed: Vec::new(),
        }
    }

    async fn progress(&mut self, meter: &Meter, progress: Progress) {
        let tz = meter.timezone;
        self.payload(meter).history_import = Some(HistoryImport {
            percent: progress.percent(),
            reached: progress.reached.with_timezone(&tz).date_naive(),
            from: progress.from.with_timezone(&tz).date_naive(),
        });
        let due = self.progress_published.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if due {
            self.progress_published = Some(Instant::now());
            self.publish_state(meter);
        }
    }

    async fn values_refreshed(&mut self, meters: &[Meter], values: &HashMap<String, Vec<MeterValue>>) {
        self.values = values.clone();
        self.sync_discovery(meters).await;
        self.publish_values(meters);
    }

    async fn poll_finished(&mut self, report: &PollReport<'_>) {
        for meter in report.meters {
            let outcome = report.outcomes.get(&meter.id).cloned();
            let status = self.payload(meter);
            if let Some(outcome) = outcome {
                status.api_status = outcome.status.as_str().into();
                status.api_error = outcome.error;
            }
            status.last_poll = Some(report.at);
            status.next_poll = Some(report.next_poll);
        }
        self.publish_values(report.meters);
        self.progress_published = None;
        if self.dirty {
            self.save().await;
        }
    }

    async fn wake(&mut self) {
        if self.unsaved {
            loop {
                tokio::time::sleep(SAVE_RETRY).await;
                self.save().await;
                if !self.unsaved {
                    break;
                }
            }
            tracing::info!(account = %self.account, "the MQTT state is written again; polling now to send what was held back");
            return;
        }
        if !self.behind {
            return std::future::pending().await;
        }
        loop {
            match self.connects.recv().await {
                Ok(MqttEvent::Connected) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
        self.behind = false;
        tracing::info!(account = %self.account, "MQTT is back; polling now to send what was held back");
    }
}

/// A state file as found at start-up.
enum Loaded<T> {
    Missing,
    Value(T),
    /// Corrupt, and its `.prev` backup too or there is none: the file was moved aside.
    Lost {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
}

impl<T> Loaded<T> {
    fn into_value(self) -> Option<T> {
        match self {
            Loaded::Value(value) => Some(value),
            Loaded::Missing | Loaded::Lost { .. } => None,
        }
    }
}

/// Reads a state file; a corrupt one without a usable backup is reported, not an error, so that
/// the account starts afresh instead of not at all. Other errors (unreadable) stay errors.
async fn lost_or_loaded<T: serde::de::DeserializeOwned + Send + 'static>(
    store: &StateStore,
    path: PathBuf,
) -> Result<Loaded<T>, StateError> {
    match store.load::<T>(path).await {
        Ok(Some(value)) => Ok(Loaded::Value(value)),
        Ok(None) => Ok(Loaded::Missing),
        Err(StateError::Corrupt { path, moved_to, reason }) => Ok(Loaded::Lost { path, moved_to, reason }),
        Err(e) => Err(e),
    }
}

/// Where each meter's record on disk ends.
struct Saved {
    cursors: HashMap<String, Option<DateTime<Utc>>>,
    fresh_from: Option<DateTime<Utc>>,
}

impl Saved {
    fn of(state: &AccountState) -> Saved {
        Saved {
            cursors: state.meters.iter().map(|(id, m)| (id.clone(), m.cursor)).collect(),
            fresh_from: state.fresh_from,
        }
    }

    fn cursor(&self, meter: &str) -> Option<DateTime<Utc>> {
        match self.cursors.get(meter) {
            Some(cursor) => *cursor,
            None => self.fresh_from,
        }
    }
}
