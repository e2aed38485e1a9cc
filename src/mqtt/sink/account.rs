//! One account's MQTT sink: its meters' discovery configs and state topics, and its readings,
//! published batch by batch with the cursor saved the moment the broker acknowledges each one.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::delivery::{self, AccountState, Pending};
use super::{summary, MqttSinks, ACK_LIMIT, BATCH, SINK};
use crate::model::{Meter, MeterValue};
use crate::mqtt::payloads::{MeterState as StatePayload, ReadingItem, ReadingsBatch};
use crate::mqtt::topics::object_id;
use crate::mqtt::{discovery, ConnectionState, MqttEvent};
use crate::sink::{AccountId, Batch, PollReport, Sink, SinkError, StatusBoard};
use crate::state::sanitize;

pub struct AccountSink {
    sinks: MqttSinks,
    account: AccountId,
    board: StatusBoard,
    file: PathBuf,
    state: AccountState,
    values: HashMap<String, Vec<MeterValue>>,
    payloads: HashMap<String, StatePayload>,
    /// Readings are waiting for the broker: publish nothing more this poll, and ask for a poll
    /// as soon as it is back.
    behind: bool,
    connects: broadcast::Receiver<MqttEvent>,
}

impl AccountSink {
    pub async fn open(sinks: MqttSinks, account: AccountId, board: StatusBoard) -> Result<AccountSink, SinkError> {
        let file = PathBuf::from(format!("{}-{}.json", sanitize(account.kind), sanitize(&account.label)));
        let (store, path) = (sinks.store.clone(), file.clone());
        let state = match tokio::task::spawn_blocking(move || store.load_json::<AccountState>(&path)).await {
            Ok(Ok(state)) => state.unwrap_or_default(),
            Ok(Err(e)) => return Err(SinkError(e.to_string())),
            Err(e) => return Err(SinkError(format!("loading the MQTT state of {account} failed: {e}"))),
        };
        let connects = sinks.mqtt.events();
        Ok(AccountSink {
            sinks,
            account,
            board,
            file,
            state,
            values: HashMap::new(),
            payloads: HashMap::new(),
            behind: false,
            connects,
        })
    }

    fn payload(&mut self, meter: &Meter) -> &mut StatePayload {
        self.payloads
            .entry(meter.id.clone())
            .or_insert_with(|| StatePayload::new(meter))
    }

    async fn save(&self) {
        let (store, file, state) = (self.sinks.store.clone(), self.file.clone(), self.state.clone());
        match tokio::task::spawn_blocking(move || store.save_json(&file, &state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(account = %self.account, "{e}");
                self.board.note_error(&e.to_string());
            }
            Err(e) => tracing::error!(account = %self.account, "saving state failed: {e}"),
        }
    }

    fn hold_back(&mut self, message: String) {
        tracing::warn!(account = %self.account, "{message}");
        self.board.note_error(&message);
        self.behind = true;
    }

    /// Publishes `pending` batch by batch; each batch is recorded and saved the moment the
    /// broker acknowledges it, so a crash re-sends at most one batch.
    async fn publish(&mut self, meter: &Meter, pending: &[Pending]) -> usize {
        let topic = self.sinks.settings.topics.meter_readings(meter);
        let mut published = 0;
        for chunk in pending.chunks(BATCH) {
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
            match self
                .sinks
                .mqtt
                .publish_within(ACK_LIMIT, topic.clone(), payload, false)
                .await
            {
                Ok(()) => {
                    delivery::record(self.state.meters.entry(meter.id.clone()).or_default(), chunk);
                    published += chunk.len();
                    self.save().await;
                }
                Err(e) => {
                    self.hold_back(format!(
                        "readings of {} not delivered: {e}; they are sent again after the reconnect",
                        meter.id
                    ));
                    break;
                }
            }
        }
        published
    }

    /// Publishes the configs of current meters and clears those of meters that disappeared.
    async fn sync_discovery(&mut self, meters: &[Meter]) {
        let sinks = self.sinks.clone();
        let mut now_published = BTreeSet::new();
        if sinks.settings.discovery {
            for meter in meters {
                let values = self.values.get(&meter.id).map(Vec::as_slice).unwrap_or_default();
                for config in discovery::meter_configs(&sinks.settings.topics, meter, values) {
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
                sinks.retained.publish(&sinks.mqtt, topic, Vec::new());
            }
        }
        if self.state.discovery != now_published {
            self.state.discovery = now_published;
            self.save().await;
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
        self.values = values.clone();
        self.sync_discovery(meters).await;
    }

    async fn needs_from(&mut self, meter: &Meter) -> Option<DateTime<Utc>> {
        self.state.meters.get(&meter.id).and_then(|m| m.cursor)
    }

    async fn deliver(&mut self, meter: &Meter, batch: Batch<'_>) -> Result<usize, SinkError> {
        let lookback = self.sinks.settings.lookback;
        let pending = delivery::pending(
            self.state.meters.entry(meter.id.clone()).or_default(),
            lookback,
            batch.readings,
        );
        let mut published = 0;
        if !pending.is_empty() && self.sinks.mqtt.state() != ConnectionState::Connected {
            // Waiting out the broker would hold up the other sinks; the readings stay pending
            // and the next ConnAck wakes this account to send them.
            self.hold_back(format!(
                "{} readings of {} held back: the MQTT broker is not connected; they are sent when it is",
                pending.len(),
                meter.id
            ));
        } else if !self.behind {
            published = self.publish(meter, &pending).await;
        }
        if pending.len() > BATCH {
            tracing::info!(account = %self.account, meter = %meter.id, published, "backfill delivered");
        }
        if let Some(ms) = self.state.meters.get_mut(&meter.id) {
            if let Some(cursor) = ms.cursor {
                ms.prune(cursor - lookback - chrono::Duration::days(1));
            }
        }

        let tz = meter.timezone;
        let data_until = self.state.meters.get(&meter.id).and_then(|m| m.cursor);
        let status = self.payload(meter);
        if let Some(latest) = summary::latest(batch.readings) {
            status.latest = Some(latest);
        }
        if let Some(day) = summary::last_day(batch.readings, tz) {
            status.last_day = Some(day);
        }
        status.data_until = data_until;
        Ok(published)
    }

    async fn poll_finished(&mut self, report: &PollReport<'_>) {
        for meter in report.meters {
            let values = self.values.get(&meter.id).cloned().unwrap_or_default();
            let outcome = report.outcomes.get(&meter.id).cloned();
            let status = self.payload(meter);
            if let Some(outcome) = outcome {
                status.api_status = outcome.status.as_str().into();
                status.api_error = outcome.error;
            }
            status.last_poll = Some(report.at);
            status.next_poll = Some(report.next_poll);
            status.extras = values
                .iter()
                .map(|v| {
                    let attributes = serde_json::Value::Object(v.attributes.clone());
                    (
                        object_id(&v.key),
                        serde_json::json!({ "value": v.value, "attributes": attributes }),
                    )
                })
                .collect();
            let payload = serde_json::to_vec(status).unwrap_or_default();
            let topic = self.sinks.settings.topics.meter_state(meter);
            self.sinks.retained.publish_if_changed(&self.sinks.mqtt, topic, payload);
        }
        self.save().await;
    }

    async fn wake(&mut self) {
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
