//! The contract between the bridge and the places readings go. The bridge's worker lists an
//! account's meters, asks each [`Sink`] from when it needs data, fetches, and hands every window
//! of readings to every sink; each sink keeps its own cursor and state, so one can be down while
//! the others go on. MQTT and Home Assistant statistics are sinks; neither knows a provider, and
//! the bridge knows neither.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::model::{ApiStatus, IntervalReading, Meter, MeterValue, PriceSeries};

/// One provider account, as sinks name it: `<kind>/<label>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId {
    pub(crate) kind: &'static str,
    pub(crate) label: String,
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.label)
    }
}

/// One meter's readings from one window of a read, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub meter: &'a Meter,
    pub readings: &'a [IntervalReading],
    /// The meter's prices over the window, when the provider knows them and a sink asked.
    pub(crate) prices: Option<&'a PriceSeries>,
}

/// What a sink did with one window's batches.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Intervals sent on.
    pub sent: usize,
    /// Meters whose batch could not be taken, and why.
    pub failed: Vec<(String, SinkError)>,
}

/// How far a read of one meter has come: from `from` towards `to`, done up to `reached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
    pub(crate) reached: DateTime<Utc>,
}

impl Progress {
    /// Whole percent done, 0 to 100.
    pub(crate) fn percent(&self) -> u8 {
        let total = (self.to - self.from).num_seconds();
        if total <= 0 || self.reached >= self.to {
            return 100;
        }
        let done = (self.reached - self.from).num_seconds().clamp(0, total);
        (done * 100 / total) as u8
    }
}

/// How the last call for one meter went.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: ApiStatus,
    /// The error in words, or `None` when the call went well.
    pub error: Option<String>,
}

impl Outcome {
    pub(crate) fn ok() -> Outcome {
        Outcome {
            status: ApiStatus::Ok,
            error: None,
        }
    }
}

/// What a poll of one account found, for the sinks that show it.
#[derive(Debug, Clone)]
pub struct PollReport<'a> {
    pub at: DateTime<Utc>,
    pub next_poll: DateTime<Utc>,
    pub(crate) meters: &'a [Meter],
    /// Per meter id; a meter without an entry was not due for a data call.
    pub outcomes: &'a HashMap<String, Outcome>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub(crate) String);

/// One destination for one account's readings.
#[async_trait]
pub trait Sink: Send + Sync {
    /// For logs and errors, e.g. `Home Assistant statistics`.
    fn name(&self) -> &'static str;

    /// What the sink does with what it takes, for the poll's log line (`published=24`).
    fn verb(&self) -> &'static str;

    /// False when the sink cannot take anything until a restart (a refused token): it then must
    /// not make every poll re-read the whole history for it.
    fn active(&self) -> bool {
        true
    }

    /// Whether batches should carry prices (a cost statistic).
    fn wants_prices(&self) -> bool {
        false
    }

    /// Resolves once the sink can take readings (its connection is up). The worker waits for
    /// this, boundedly, before its first poll.
    async fn ready(&mut self) {}

    /// The account's meters as just listed, with their values beside the interval data.
    async fn meters_listed(&mut self, _meters: &[Meter], _values: &HashMap<String, Vec<MeterValue>>) {}

    /// The meters' values read again between polls (live prices, CO2 intensity).
    async fn values_refreshed(&mut self, _meters: &[Meter], _values: &HashMap<String, Vec<MeterValue>>) {}

    /// The end of what this sink holds for `meter`; `None`: nothing yet, read from the history
    /// start. The bridge re-reads a look-back window before it, for late corrections.
    async fn needs_from(&mut self, meter: &Meter) -> Option<DateTime<Utc>>;

    /// Takes what is new or corrected in one window's batches (one per meter).
    async fn deliver(&mut self, batches: &[Batch<'_>]) -> Delivery;

    /// How far the current read of `meter` has come (a history import shows it).
    async fn progress(&mut self, _meter: &Meter, _progress: Progress) {}

    /// The poll is over.
    async fn poll_finished(&mut self, _report: &PollReport<'_>) {}

    /// Resolves when the sink wants a poll now (its destination is back with readings held
    /// back); never, by default.
    async fn wake(&mut self) {
        std::future::pending::<()>().await
    }
}

/// Makes a sink for each account, and runs what the sink needs beside them.
#[async_trait]
pub trait SinkFactory: Send + Sync {
    fn name(&self) -> &'static str;

    /// Starts the sink's background work for as long as `shutdown` is not cancelled.
    async fn start(&self, _board: StatusBoard, _shutdown: CancellationToken) {}

    /// The sink of one account (its state loaded); an error stops that account.
    async fn open(&self, account: &AccountId, board: &StatusBoard) -> Result<Box<dyn Sink>, SinkError>;
}

/// What the bridge as a whole reports: how many meters each account has and the last error
/// anywhere. Sinks that show it watch [`StatusBoard::changes`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BridgeStatus {
    pub(crate) started: DateTime<Utc>,
    pub(crate) accounts: usize,
    pub(crate) meters: BTreeMap<String, usize>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_error_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct StatusBoard {
    status: Arc<Mutex<BridgeStatus>>,
    changed: Arc<watch::Sender<u64>>,
}

impl StatusBoard {
    pub(crate) fn new(accounts: usize) -> StatusBoard {
        StatusBoard {
            status: Arc::new(Mutex::new(BridgeStatus {
                started: Utc::now(),
                accounts,
                meters: BTreeMap::new(),
                last_error: None,
                last_error_at: None,
            })),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    pub(crate) fn note_error(&self, message: &str) {
        self.update(|s| {
            s.last_error = Some(message.to_owned());
            s.last_error_at = Some(Utc::now());
        });
    }

    pub(crate) fn set_meters(&self, account: &AccountId, count: usize) {
        self.update(|s| {
            s.meters.insert(account.to_string(), count);
        });
    }

    pub(crate) fn snapshot(&self) -> BridgeStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Fires on every change.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, change: impl FnOnce(&mut BridgeStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.send_modify(|n| *n += 1);
    }
}
