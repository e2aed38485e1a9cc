//! The persisted outbox of one series: the records still to send, the cursor (the newest record
//! the API answered for), and what it refused. It is a journal: one short JSON line per event
//! (a record queued, answered, refused), appended at once, so a restart, even after kill -9,
//! finds every queued record and re-sends at most the one that was in flight. When the journal
//! has grown to several times what it describes, it is rewritten as one snapshot line
//! atomically (temp, fsync, rename). A torn last line (power loss mid-append) is ignored.
//!
//! Queued records are synced to disk at once (they exist nowhere else); answers are left to the
//! kernel's writeback: a process that dies (even by kill -9) loses none of them, and losing one
//! to a power cut only sends a record again, which the API answers 409. A backfill of hours
//! thus writes each journal page once per writeback, not once per record.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::providers::upload::{Record, RecordKind};
use crate::state::{StateError, StateStore};

/// At most this many queued records per series (a month of one-minute ticks is 44 640); older
/// ones are dropped first, and counted.
const MAX_PENDING: usize = 50_000;
/// Profiles remembered for re-posting when Home Assistant's statistic changes: 40 days of hours.
const MAX_POSTED: usize = 40 * 24;
/// The journal is rewritten when it holds this many lines and four times what it describes.
const COMPACT_AFTER: usize = 4096;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    #[serde(default)]
    cursor: Option<i64>,
    #[serde(default)]
    pending: Vec<(i64, f64)>,
    #[serde(default)]
    posted: Vec<(i64, f64)>,
    #[serde(default)]
    refused: u64,
    #[serde(default)]
    dropped: u64,
    #[serde(default)]
    last_error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    Snap(Snapshot),
    /// Queued.
    Push {
        t: i64,
        v: f64,
    },
    /// Answered: stored, updated, or already there.
    Ok {
        t: i64,
        v: f64,
    },
    /// Refused, with the API's reason.
    No {
        t: i64,
        why: String,
    },
    /// The API's own newest record (a new series' starting point).
    At {
        t: i64,
    },
}

pub(crate) struct Outbox {
    store: StateStore,
    name: PathBuf,
    file: tokio::fs::File,
    kind: RecordKind,
    cursor: Option<i64>,
    pending: VecDeque<(i64, f64)>,
    posted: BTreeMap<i64, f64>,
    refused: u64,
    dropped: u64,
    last_error: Option<String>,
    lines: usize,
}

fn time(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

impl Outbox {
    /// Opens (or starts) the journal `name` in the state directory.
    pub(crate) async fn open(store: &StateStore, name: PathBuf, kind: RecordKind) -> Result<Outbox, StateError> {
        let (blocking_store, path) = (store.clone(), name.clone());
        let (text, file) = tokio::task::spawn_blocking(move || {
            let text = blocking_store
                .read_raw(&path)?
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            blocking_store.open_append(&path).map(|file| (text, file))
        })
        .await
        .map_err(|e| StateError::Io {
            path: name.clone(),
            action: "opening an upload outbox",
            source: std::io::Error::other(e),
        })??;
        let mut outbox = Outbox {
            store: store.clone(),
            name,
            file: tokio::fs::File::from_std(file),
            kind,
            cursor: None,
            pending: VecDeque::new(),
            posted: BTreeMap::new(),
            refused: 0,
            dropped: 0,
            last_error: None,
            lines: 0,
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for (number, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Line>(line) {
                Ok(line) => outbox.apply(line),
                Err(e) if number + 1 == lines.len() => {
                    tracing::warn!(file = %outbox.name.display(), "ignoring the torn last line of an upload outbox ({e}); at most one record is sent again");
                }
                Err(e) => {
                    tracing::warn!(file = %outbox.name.display(), line = number + 1, "ignoring a damaged line of an upload outbox: {e}")
                }
            }
            outbox.lines += 1;
        }
        Ok(outbox)
    }

    fn apply(&mut self, line: Line) {
        match line {
            Line::Snap(s) => {
                self.cursor = s.cursor;
                self.pending = s.pending.into();
                self.posted = s.posted.into_iter().collect();
                self.refused = s.refused;
                self.dropped = s.dropped;
                self.last_error = s.last_error;
            }
            Line::Push { t, v } => self.enqueue(t, v),
            Line::Ok { t, v } => {
                self.answered(t);
                if self.kind == RecordKind::Profile {
                    self.posted.insert(t, v);
                    while self.posted.len() > MAX_POSTED {
                        self.posted.pop_first();
                    }
                }
                self.last_error = None;
            }
            Line::No { t, why } => {
                self.answered(t);
                self.refused += 1;
                self.last_error = Some(why);
            }
            Line::At { t } => self.cursor = self.cursor.max(Some(t)),
        }
    }

    fn enqueue(&mut self, t: i64, v: f64) {
        if let Some(queued) = self.pending.iter_mut().find(|(q, _)| *q == t) {
            queued.1 = v;
            return;
        }
        self.pending.push_back((t, v));
        if self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
    }

    fn answered(&mut self, t: i64) {
        if let Some(at) = self.pending.iter().position(|(q, _)| *q == t) {
            self.pending.remove(at);
        }
        self.cursor = self.cursor.max(Some(t));
    }

    /// The newest record the API answered for (a profile's start).
    pub(crate) fn cursor(&self) -> Option<DateTime<Utc>> {
        self.cursor.map(time)
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The oldest queued record.
    pub(crate) fn front(&self) -> Option<Record> {
        self.pending.front().map(|&(t, v)| self.record(t, v))
    }

    fn record(&self, t: i64, value: f64) -> Record {
        Record {
            time: time(t),
            to: (self.kind == RecordKind::Profile).then(|| time(t + 3600)),
            value,
        }
    }

    /// Whether `record` is still to be sent: newer than the cursor, or (a profile) a changed
    /// value of an hour already posted.
    pub(crate) fn wants(&self, record: &Record) -> bool {
        let t = record.time.timestamp();
        if self.pending.iter().any(|&(q, v)| q == t && v == record.value) {
            return false;
        }
        if self.cursor.is_none_or(|c| t > c) {
            return true;
        }
        self.kind == RecordKind::Profile && self.posted.get(&t).is_some_and(|&v| v != record.value)
    }

    /// Queues `record` if it is still to be sent; whether it was.
    pub(crate) async fn push(&mut self, record: &Record) -> Result<bool, StateError> {
        if !self.wants(record) {
            return Ok(false);
        }
        let (t, v) = (record.time.timestamp(), record.value);
        self.write(Line::Push { t, v }, true).await?;
        self.enqueue(t, v);
        Ok(true)
    }

    /// The API stored `record` (or had it already).
    pub(crate) async fn stored(&mut self, record: &Record) -> Result<(), StateError> {
        let line = Line::Ok {
            t: record.time.timestamp(),
            v: record.value,
        };
        self.write_and_apply(line).await
    }

    /// The API refused `record` for good.
    pub(crate) async fn refused_with(&mut self, record: &Record, why: String) -> Result<(), StateError> {
        let line = Line::No {
            t: record.time.timestamp(),
            why,
        };
        self.write_and_apply(line).await
    }

    /// The API's newest record, for a series this outbox knew nothing of.
    pub(crate) async fn start_at(&mut self, time: DateTime<Utc>) -> Result<(), StateError> {
        self.write_and_apply(Line::At { t: time.timestamp() }).await
    }

    /// An error that is not about one record (the API is down), shown until the next answer.
    pub(crate) fn set_error(&mut self, error: Option<String>) {
        self.last_error = error;
    }

    async fn write_and_apply(&mut self, line: Line) -> Result<(), StateError> {
        let encoded = serde_json::to_string(&line).unwrap_or_default();
        self.apply(line);
        self.append(encoded, false).await?;
        if self.lines > COMPACT_AFTER && self.lines > 4 * (self.pending.len() + self.posted.len() + 1) {
            self.compact().await?;
        }
        Ok(())
    }

    async fn write(&mut self, line: Line, sync: bool) -> Result<(), StateError> {
        let encoded = serde_json::to_string(&line).unwrap_or_default();
        self.append(encoded, sync).await
    }

    async fn append(&mut self, mut encoded: String, sync: bool) -> Result<(), StateError> {
        encoded.push('\n');
        let io = |action: &'static str| {
            let path = self.store.path_of(&self.name);
            move |source| StateError::Io { path, action, source }
        };
        self.file
            .write_all(encoded.as_bytes())
            .await
            .map_err(io("appending to an upload outbox"))?;
        self.file.flush().await.map_err(io("appending to an upload outbox"))?;
        if sync {
            self.file.sync_data().await.map_err(io("syncing an upload outbox"))?;
        }
        self.lines += 1;
        Ok(())
    }

    /// Rewrites the journal as one snapshot line.
    pub(crate) async fn compact(&mut self) -> Result<(), StateError> {
        let snapshot = Line::Snap(Snapshot {
            cursor: self.cursor,
            pending: self.pending.iter().copied().collect(),
            posted: self.posted.iter().map(|(&t, &v)| (t, v)).collect(),
            refused: self.refused,
            dropped: self.dropped,
            last_error: self.last_error.clone(),
        });
        let mut bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        bytes.push(b'\n');
        let (store, name) = (self.store.clone(), self.name.clone());
        let file = tokio::task::spawn_blocking(move || {
            store.replace(&name, &bytes)?;
            store.open_append(&name)
        })
        .await
        .map_err(|e| StateError::Io {
            path: self.name.clone(),
            action: "compacting an upload outbox",
            source: std::io::Error::other(e),
        })??;
        self.file = tokio::fs::File::from_std(file);
        self.lines = 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn reading(at: &str, value: f64) -> Record {
        Record {
            time: t(at),
            to: None,
            value,
        }
    }

    #[tokio::test]
    async fn queued_records_survive_a_restart_and_answers_move_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let name = PathBuf::from("upload/x.jsonl");
        let mut outbox = Outbox::open(&store, name.clone(), RecordKind::Reading).await.unwrap();
        assert!(outbox.push(&reading("2026-01-01T10:00:00Z", 1.0)).await.unwrap());
        assert!(outbox.push(&reading("2026-01-01T10:15:00Z", 2.0)).await.unwrap());
        assert!(!outbox.push(&reading("2026-01-01T10:15:00Z", 2.0)).await.unwrap());
        outbox.stored(&reading("2026-01-01T10:00:00Z", 1.0)).await.unwrap();
        drop(outbox);
        let mut again = Outbox::open(&store, name.clone(), RecordKind::Reading).await.unwrap();
        assert_eq!(again.cursor(), Some(t("2026-01-01T10:00:00Z")));
        assert_eq!(again.front(), Some(reading("2026-01-01T10:15:00Z", 2.0)));
        assert!(
            !again.wants(&reading("2026-01-01T10:00:00Z", 5.0)),
            "never two records at one time"
        );
        again
            .refused_with(&reading("2026-01-01T10:15:00Z", 2.0), "bad".into())
            .await
            .unwrap();
        assert_eq!(
            (again.pending(), again.refused(), again.last_error()),
            (0, 1, Some("bad"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(&name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_torn_last_line_is_ignored_and_the_journal_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let name = PathBuf::from("upload/p.jsonl");
        let mut outbox = Outbox::open(&store, name.clone(), RecordKind::Profile).await.unwrap();
        let start = t("2026-01-01T00:00:00Z");
        for hour in 0..(COMPACT_AFTER as i64 + 10) {
            let record = Record {
                time: start + chrono::Duration::hours(hour),
                to: None,
                value: 1.0,
            };
            outbox.stored(&record).await.unwrap();
        }
        let size = std::fs::metadata(dir.path().join(&name)).unwrap().len();
        assert!(size < 64 * 1024, "compacted: {size} bytes");
        let last = start + chrono::Duration::hours(COMPACT_AFTER as i64 + 9);
        assert_eq!(outbox.cursor(), Some(last));
        let corrected = Record {
            time: last,
            to: None,
            value: 2.0,
        };
        assert!(outbox.wants(&corrected), "a changed profile is posted again");
        assert!(!outbox.wants(&Record {
            value: 1.0,
            ..corrected
        }));
        drop(outbox);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(&name))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"push\":{\"t\":17"))
            .unwrap();
        let again = Outbox::open(&store, name, RecordKind::Profile).await.unwrap();
        assert_eq!((again.cursor(), again.pending()), (Some(last), 0));
    }

    #[tokio::test]
    async fn a_month_of_quarter_hours_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let name = PathBuf::from("upload/m.jsonl");
        let mut outbox = Outbox::open(&store, name.clone(), RecordKind::Reading).await.unwrap();
        let start = t("2026-01-01T00:00:00Z");
        for quarter in 0..(31 * 96) {
            let record = Record {
                time: start + chrono::Duration::minutes(15 * quarter),
                to: None,
                value: 1000.0 + quarter as f64 * 0.25,
            };
            outbox.push(&record).await.unwrap();
        }
        outbox.compact().await.unwrap();
        let size = std::fs::metadata(dir.path().join(&name)).unwrap().len();
        // 50 such series stay within a few MB.
        assert!(size * 50 < 4 * 1024 * 1024, "{size} bytes for one series");
        assert_eq!(outbox.pending(), 31 * 96);
    }
}
