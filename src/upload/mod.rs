//! The second direction of flow: Home Assistant entities and MQTT topics → an API that ingests
//! readings (see [`crate::providers::upload`] for the contract a provider fulfils).
//!
//! ```text
//! source (HA entity / MQTT topic) ──tick──▶ outbox (per series, persisted) ──▶ importer (provider)
//! HA long-term statistics ──history, gaps, profiles──────────────────────────▶
//! ```
//!
//! Per account one loop sends one record at a time, series in turn, oldest first; the cursor of
//! a series moves only on the API's answer. Nothing here knows a provider.

mod account;
mod check;
mod grid;
mod history;
mod outbox;
mod series;
mod source;
mod status;
mod ticks;

pub(crate) use check::check;
pub use ticks::Ticks;

use std::path::PathBuf;

use chrono::{Duration as TimeDelta, NaiveDate};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::account::AccountLoop;
use self::outbox::Outbox;
use self::series::Series;
use self::source::{EntityFeeds, Latest, TopicFeeds};
use self::status::Board;
use self::ticks::Ticking;
use crate::backoff_policy::RetryPolicy;
use crate::clock::SharedClock;
use crate::homeassistant::Client;
use crate::mqtt::discovery::UploadSensor;
use crate::mqtt::{MqttHandle, Topics};
use crate::providers::upload::Uploads;
use crate::state::{sanitize, StateError, StateStore};

pub(crate) use self::history::hourly_records;

/// How the uploads run (from the configuration, see `cli::wiring::start_uploads`).
pub(crate) struct UploadSettings {
    /// Where a new series' history starts when the API holds nothing of it.
    pub(crate) history_start: NaiveDate,
    /// How far back profiles are re-read for changed hours.
    pub(crate) lookback: TimeDelta,
    pub(crate) topics: Topics,
    pub(crate) discovery: bool,
    pub(crate) clock: SharedClock,
    pub(crate) ticks: Ticks,
    /// Waits after the API stayed unavailable through a request's own retries.
    pub(crate) outage: RetryPolicy,
}

/// What a run of the uploads takes besides the configuration: the clock, where ticks come
/// from, and the waits after the API stayed unavailable.
pub struct UploadRun {
    pub clock: SharedClock,
    pub ticks: Ticks,
    pub outage: RetryPolicy,
}

impl UploadRun {
    /// As the daemon runs: the wall clock's ticks; after an outage half a minute, doubling to a
    /// quarter of an hour.
    pub fn live(clock: SharedClock) -> UploadRun {
        UploadRun {
            clock,
            ticks: Ticks::Clock,
            outage: RetryPolicy {
                initial_interval: std::time::Duration::from_secs(30),
                max_interval: std::time::Duration::from_secs(900),
                max_retries: u32::MAX,
                ..RetryPolicy::default()
            },
        }
    }
}

/// The MQTT topics upload series read; the broker connection subscribes to them.
pub(crate) fn topic_subscriptions(uploads: &[Uploads]) -> Vec<String> {
    let mut topics: Vec<String> = uploads
        .iter()
        .flat_map(|u| u.series.iter().filter_map(|s| s.topic.clone()))
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

/// A series' key: unique in the run, the outbox file's and the sensor's name.
fn series_key(account: &str, import_id: &str, suit: &str, kind: &str) -> String {
    sanitize(&format!("{account}_{import_id}_{suit}_{kind}"))
}

#[derive(Debug)]
struct Ping;

impl crate::homeassistant::Command for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn subject(&self) -> &str {
        "the link"
    }

    fn body(&self, _ha_version: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// The running uploads.
pub struct Uploader {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    ha: Option<Client>,
}

impl Uploader {
    /// Opens every series' outbox and starts the sources, ticks and account loops.
    pub(crate) async fn start(
        uploads: Vec<Uploads>,
        ha: Option<Client>,
        mqtt: Option<MqttHandle>,
        store: StateStore,
        settings: UploadSettings,
    ) -> Result<Uploader, StateError> {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let board = Board::new(mqtt.clone(), settings.topics.clone(), settings.discovery);
        let mut entity_feeds = EntityFeeds::new();
        let mut topic_feeds = TopicFeeds::new();
        let (manual, tick_source) = match &settings.ticks {
            Ticks::Clock => (false, broadcast::channel(1).0),
            Ticks::Manual(sender) => (true, sender.clone()),
        };
        for upload in uploads {
            let importer = upload.importer.clone();
            let mut series = Vec::new();
            let mut ticking = Vec::new();
            for s in upload.series {
                let kind = s.kind.as_str();
                let key = series_key(importer.account(), &s.import_id, &s.suit, kind);
                let name = PathBuf::from("upload").join(format!("{}-{key}.jsonl", sanitize(importer.kind())));
                let outbox = Outbox::open(&store, name, s.kind).await?;
                let latest = Latest::default();
                if let Some(entity) = &s.entity {
                    entity_feeds.entry(entity.clone()).or_default().push(latest.clone());
                }
                if let Some(topic) = &s.topic {
                    let pointer = s.value.clone().unwrap_or_default();
                    topic_feeds
                        .entry(topic.clone())
                        .or_default()
                        .push((pointer, latest.clone()));
                }
                board.add(UploadSensor {
                    kind: importer.kind().to_owned(),
                    key: key.clone(),
                    name: format!("{} upload {}", importer.title(), s.import_id),
                });
                ticking.push(Ticking::new(
                    s.label(),
                    s.kind,
                    s.interval,
                    latest.clone(),
                    s.entity.is_some(),
                ));
                series.push(Series::new(s, key, latest, outbox));
            }
            let (events_tx, events) = mpsc::unbounded_channel();
            tasks.spawn(ticks::run(
                ticking,
                tick_source.subscribe(),
                manual,
                settings.clock.clone(),
                settings.lookback,
                events_tx,
                stop.clone(),
            ));
            let account = AccountLoop {
                importer,
                series,
                ha: ha.clone(),
                board: board.clone(),
                events,
                history_start: settings.history_start,
                clock: settings.clock.clone(),
                outage: settings.outage.clone(),
                auth_failed: false,
                stop: stop.clone(),
            };
            tasks.spawn(account.run());
        }
        if let (Some(ha), false) = (&ha, entity_feeds.is_empty()) {
            tasks.spawn(source::follow_entities(
                ha,
                entity_feeds,
                settings.clock.clone(),
                stop.clone(),
            ));
        }
        if let (Some(mqtt), false) = (&mqtt, topic_feeds.is_empty()) {
            tasks.spawn(source::follow_topics(
                mqtt.clone(),
                topic_feeds,
                settings.clock.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(board.follow(stop.clone()));
        Ok(Uploader { stop, tasks, ha })
    }

    /// Lets what Home Assistant sent so far reach the sources: a round trip on the same link
    /// (its events come before the answer), then the woken tasks run. For tests, which drive
    /// ticks by hand on a current-thread runtime.
    #[doc(hidden)]
    pub async fn settle(&self) {
        if let Some(ha) = &self.ha {
            let _ = ha.call(Ping).await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// Stops at the next safe point (an answered record is always recorded first).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
