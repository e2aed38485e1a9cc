//! The state store: one directory (`/data` in the add-on) holding per-account cursors, cached
//! access tokens and statistics sums. Every write is atomic (temp file, fsync, rename, fsync of
//! the directory), and the previous good copy is kept beside it as `*.prev`. A write that fails
//! (disk full, read-only, directory removed) leaves the last good file in place and nothing
//! half-written beside it; failures are logged at error level at most once a minute.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {}: {action} failed: {source}; check that it exists and this user may write it (config key state.dir)", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("state file {} is corrupt ({reason}); it was moved to {} and no usable backup exists. Restore it, or start again to re-read history from bridge.history_start (already delivered readings will be published again)", path.display(), moved_to.display())]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    #[error("state file {}: could not encode: {source}", path.display())]
    Encode { path: PathBuf, source: serde_json::Error },
}

#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    /// Shared by every clone: the directory fails for all of its users at once.
    writes: Arc<Mutex<WriteHealth>>,
}

/// How often a failing state directory is logged at error level.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Whether writes fail, since when, and when that was last logged.
#[derive(Debug, Default)]
struct WriteHealth {
    failing_since: Option<chrono::DateTime<Utc>>,
    failed: u64,
    logged_at: Option<Instant>,
    /// Failures since the last log line.
    unlogged: u64,
}

impl WriteHealth {
    /// Counts a failure; the line to log at error level, when one is due.
    fn failed(&mut self, now: Instant, error: &StateError) -> Option<String> {
        self.failing_since.get_or_insert_with(Utc::now);
        self.failed += 1;
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < FAILURE_LOG_EVERY)
        {
            self.unlogged += 1;
            return None;
        }
        let also = match std::mem::take(&mut self.unlogged) {
            0 => String::new(),
            n => format!(" ({n} more writes failed since the last message)"),
        };
        self.logged_at = Some(now);
        Some(format!(
            "{error}{also}; the bridge keeps running, keeps the last good state and writes it again once it can"
        ))
    }

    /// Counts a success; the line to log when it ends a run of failures.
    fn succeeded(&mut self) -> Option<String> {
        let since = self.failing_since.take()?;
        let failed = std::mem::take(&mut self.failed);
        self.logged_at = None;
        self.unlogged = 0;
        Some(format!(
            "the state directory can be written again ({failed} writes had failed since {})",
            since.format("%Y-%m-%d %H:%M:%S UTC")
        ))
    }
}

impl StateStore {
    /// Opens (creating if needed) the directory and proves it is writable. The directory holds
    /// access tokens: it is created private (0700, files 0600), and looser permissions left by an
    /// older version or a copy are tightened here.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StateError> {
        let dir = dir.into();
        private::create_dir_all(&dir).map_err(|source| StateError::Io {
            path: dir.clone(),
            action: "creating the directory",
            source,
        })?;
        match private::tighten(&dir) {
            Ok(0) => {}
            Ok(count) => tracing::info!(
                dir = %dir.display(),
                count,
                "state directory: made {count} files and directories private to this user (they hold access tokens)"
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                "state directory: could not make it private to this user: {e}"
            ),
        }
        let store = StateStore {
            dir,
            writes: Arc::default(),
        };
        store.write_atomic(Path::new(".write-test"), b"ok")?;
        let _ = fs::remove_file(store.dir.join(".write-test"));
        Ok(store)
    }

    /// Reads a JSON file of the store. A missing file is `None`. A corrupt one is moved aside and
    /// its `.prev` backup used when that is sound; otherwise the error says what to do.
    pub(crate) fn load_json<T: DeserializeOwned>(&self, name: &Path) -> Result<Option<T>, StateError> {
        let path = self.dir.join(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path,
                    action: "reading a state file",
                    source,
                })
            }
        };
        let reason = match serde_json::from_slice::<T>(&bytes) {
            Ok(value) => return Ok(Some(value)),
            Err(e) => e.to_string(),
        };
        let moved_to = path.with_extension(format!("json.corrupt-{}", Utc::now().format("%Y%m%dT%H%M%SZ")));
        fs::rename(&path, &moved_to).map_err(|source| StateError::Io {
            path: path.clone(),
            action: "moving a corrupt state file aside",
            source,
        })?;
        let backup = path.with_extension("json.prev");
        if let Ok(bytes) = fs::read(&backup) {
            if let Ok(value) = serde_json::from_slice::<T>(&bytes) {
                tracing::error!(
                    file = %path.display(),
                    moved_to = %moved_to.display(),
                    "state file is corrupt ({reason}); moved aside and restored the previous copy: intervals of the last poll may be published again"
                );
                self.write_atomic(name, &bytes)?;
                return Ok(Some(value));
            }
        }
        Err(StateError::Corrupt { path, moved_to, reason })
    }

    /// Writes `value` atomically, keeping the file it replaces as `.prev`. A failure is logged
    /// here (at error level, at most once a minute for the whole directory); the caller decides
    /// what may not advance because of it.
    pub(crate) fn save_json<T: Serialize>(&self, name: &Path, value: &T) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec(value).map_err(|source| StateError::Encode {
            path: path.clone(),
            source,
        })?;
        if path.exists() {
            keep_backup(&path);
        }
        let result = self.write_atomic(name, &bytes);
        let mut health = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(()) => {
                if let Some(line) = health.succeeded() {
                    tracing::info!(dir = %self.dir.display(), "{line}");
                }
            }
            Err(e) => {
                if let Some(line) = health.failed(Instant::now(), e) {
                    tracing::error!(dir = %self.dir.display(), "{line}");
                }
            }
        }
        result
    }

    /// Replaces `name` with `bytes` atomically, without a `.prev` backup: for files that keep
    /// their own history (the upload outboxes' journals).
    pub(crate) fn replace(&self, name: &Path, bytes: &[u8]) -> Result<(), StateError> {
        self.write_atomic(name, bytes)
    }

    /// The path of `name` in the store, for messages.
    pub(crate) fn path_of(&self, name: &Path) -> PathBuf {
        self.dir.join(name)
    }

    /// The bytes of `name` as they are (a journal that reads itself); `None` if it is missing.
    pub(crate) fn read_raw(&self, name: &Path) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                path,
                action: "reading a state file",
                source,
            }),
        }
    }

    /// Opens `name` for appending, creating it (and its directory) private.
    pub(crate) fn open_append(&self, name: &Path) -> Result<fs::File, StateError> {
        let path = self.dir.join(name);
        let io = |action: &'static str| {
            let path = path.clone();
            move |source| StateError::Io { path, action, source }
        };
        if let Some(parent) = path.parent() {
            private::create_dir_all(parent).map_err(io("creating a directory"))?;
        }
        private::open_append(&path).map_err(io("opening for appending"))
    }

    /// Temp file, fsync, rename: the file at `name` is the old one or the new one, never a part.
    /// A temp file a failure leaves half-written is removed.
    fn write_atomic(&self, name: &Path, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            private::create_dir_all(parent).map_err(|source| StateError::Io {
                path: parent.to_owned(),
                action: "creating a directory",
                source,
            })?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let io = |action: &'static str| {
            let path = path.clone();
            move |source| StateError::Io { path, action, source }
        };
        let mut file = private::create_file(&tmp).map_err(io("creating a temporary file"))?;
        let written = file
            .write_all(bytes)
            .map_err(io("writing"))
            .and_then(|()| file.sync_all().map_err(io("syncing to disk")));
        drop(file);
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path).map_err(io("renaming into place"))) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if let Some(parent) = path.parent() {
            // The rename is durable only once the directory entry is.
            if let Ok(dir) = fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

/// Keeps the last good copy of `path` as `.prev`: a hard link costs no copy and survives the
/// rename that replaces `path` (a copy where links are not possible). Either goes to a temp name
/// first and is renamed over the old backup, so a full disk never leaves a truncated backup nor
/// loses the old one. Best effort: the write itself matters more.
fn keep_backup(path: &Path) {
    let backup = path.with_extension("json.prev");
    let tmp = path.with_extension(format!("prev-tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let made = fs::hard_link(path, &tmp).or_else(|_| fs::copy(path, &tmp).map(|_| ()));
    if made.and_then(|()| fs::rename(&tmp, &backup)).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Owner-only permissions for everything in the state directory.
mod private {
    use std::fs;
    use std::io;
    use std::path::Path;

    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    pub(crate) const DIR_MODE: u32 = 0o700;
    pub(crate) const FILE_MODE: u32 = 0o600;

    pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(DIR_MODE);
        builder.create(dir)
    }

    /// Truncates an existing file: only temporary files, named per process, are created here.
    pub(crate) fn create_file(path: &Path) -> io::Result<fs::File> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(FILE_MODE);
        options.open(path)
    }

    pub(super) fn open_append(path: &Path) -> io::Result<fs::File> {
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        options.mode(FILE_MODE);
        options.open(path)
    }

    /// Removes group and other permissions from `dir` and everything below it; the number of
    /// entries changed.
    #[cfg(unix)]
    pub(crate) fn tighten(dir: &Path) -> io::Result<usize> {
        let mut changed = 0;
        let mut pending = vec![dir.to_owned()];
        while let Some(path) = pending.pop() {
            let meta = fs::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                continue;
            }
            let wanted = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & !0o077 | wanted & 0o700))?;
                changed += 1;
            }
            if meta.is_dir() {
                for entry in fs::read_dir(&path)? {
                    pending.push(entry?.path());
                }
            }
        }
        Ok(changed)
    }

    #[cfg(not(unix))]
    pub(crate) fn tighten(_dir: &Path) -> io::Result<usize> {
        Ok(0)
    }
}

/// The store as the async runtime uses it: the atomic sync code above, run on the blocking pool
/// (a read may repair a corrupt file, a write ends in two fsyncs).
impl StateStore {
    /// [`StateStore::load_json`] off the runtime.
    pub(crate) async fn load<T: DeserializeOwned + Send + 'static>(
        &self,
        name: impl Into<PathBuf>,
    ) -> Result<Option<T>, StateError> {
        let (store, name) = (self.clone(), name.into());
        let path = self.dir.join(&name);
        tokio::task::spawn_blocking(move || store.load_json(&name))
            .await
            .unwrap_or_else(|e| Err(stopped(path, e)))
    }

    /// [`StateStore::save_json`] off the runtime.
    pub(crate) async fn save<T: Serialize + Send + 'static>(
        &self,
        name: impl Into<PathBuf>,
        value: T,
    ) -> Result<(), StateError> {
        let (store, name) = (self.clone(), name.into());
        let path = self.dir.join(&name);
        tokio::task::spawn_blocking(move || store.save_json(&name, &value))
            .await
            .unwrap_or_else(|e| Err(stopped(path, e)))
    }

    /// A cache file (prices, statistics ledgers): what it holds can be had again, so a corrupt
    /// file (moved aside by the store) is a warning saying what happens `then`, and no cache.
    pub(crate) async fn load_cache<T: DeserializeOwned + Send + 'static>(
        &self,
        name: impl Into<PathBuf>,
        what: &str,
        then: &str,
    ) -> Result<Option<T>, StateError> {
        match self.load(name).await {
            Err(StateError::Corrupt { path, moved_to, reason }) => {
                tracing::warn!(
                    file = %path.display(),
                    moved_to = %moved_to.display(),
                    "{what} is corrupt ({reason}); {then}"
                );
                Ok(None)
            }
            other => other,
        }
    }
}

/// A blocking state task that did not finish (it panicked or the runtime is shutting down).
fn stopped(path: PathBuf, error: tokio::task::JoinError) -> StateError {
    StateError::Io {
        path,
        action: "running the state file task",
        source: std::io::Error::other(error.to_string()),
    }
}

/// File-name-safe: `[a-z0-9_-]`, everything else `_`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A short stable fingerprint (FNV-1a) of a secret, so a cached token is tied to the credential
/// that bought it without storing or revealing the credential.
pub(crate) fn fingerprint(secret: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in secret.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Cursor {
        meter: String,
        at: Option<DateTime<Utc>>,
    }

    fn state() -> Cursor {
        Cursor {
            meter: "m1".into(),
            at: Some(Utc::now()),
        }
    }

    fn file() -> &'static Path {
        Path::new("sample-1.json")
    }

    #[test]
    fn round_trip_and_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load_json::<Cursor>(file()).unwrap(), None);
        let s = state();
        store.save_json(file(), &s).unwrap();
        store.save_json(file(), &s).unwrap();
        assert_eq!(store.load_json::<Cursor>(file()).unwrap(), Some(s));
        assert!(dir.path().join("sample-1.json.prev").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn corrupt_file_restores_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let s = state();
        store.save_json(file(), &s).unwrap();
        store.save_json(file(), &s).unwrap();
        fs::write(dir.path().join("sample-1.json"), b"{\"meter\": {").unwrap();
        assert_eq!(store.load_json::<Cursor>(file()).unwrap(), Some(s));
        let moved = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("corrupt"))
            .count();
        assert_eq!(moved, 1);
    }

    #[test]
    fn corrupt_file_without_backup_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("sample-1.json"), b"garbage").unwrap();
        let err = store.load_json::<Cursor>(file()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("corrupt") && msg.contains("moved to"), "{msg}");
        assert!(!dir.path().join("sample-1.json").exists());
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn new_directories_and_files_are_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let store = StateStore::open(&dir).unwrap();
        store
            .save_json(Path::new("tokens/eloverblik-1.json"), &state())
            .unwrap();
        store
            .save_json(Path::new("tokens/eloverblik-1.json"), &state())
            .unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("tokens")), 0o700);
        assert_eq!(mode(&dir.join("tokens/eloverblik-1.json")), 0o600);
        assert_eq!(mode(&dir.join("tokens/eloverblik-1.json.prev")), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn looser_permissions_are_tightened_at_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("statistics")).unwrap();
        fs::write(dir.path().join("statistics/p_1.json"), b"{}").unwrap();
        fs::write(dir.path().join("sample-1.json"), b"{}").unwrap();
        for (path, mode) in [
            ("", 0o755),
            ("statistics", 0o775),
            ("statistics/p_1.json", 0o644),
            ("sample-1.json", 0o666),
        ] {
            fs::set_permissions(dir.path().join(path), fs::Permissions::from_mode(mode)).unwrap();
        }
        let logs = crate::test_logs::capture();
        StateStore::open(dir.path()).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.path().join("statistics")), 0o700);
        assert_eq!(mode(&dir.path().join("statistics/p_1.json")), 0o600);
        assert_eq!(mode(&dir.path().join("sample-1.json")), 0o600);
        assert!(logs.contains("made 4 files and directories private"), "{}", logs.text());
        // Already private: nothing to say the second time.
        let logs = crate::test_logs::capture();
        StateStore::open(dir.path()).unwrap();
        assert!(!logs.contains("private"), "{}", logs.text());
    }

    /// A full disk, for real: the temp file the write goes through is `/dev/full`, where every
    /// write fails with ENOSPC (as root too, unlike permission bits).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_keeps_the_last_good_file_and_leaves_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let good = state();
        store.save_json(file(), &good).unwrap();
        let tmp = dir.path().join(format!("sample-1.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let logs = crate::test_logs::capture();
        let newer = Cursor {
            meter: "m2".into(),
            at: None,
        };
        let err = store.save_json(file(), &newer).unwrap_err().to_string();
        assert!(err.contains("writing failed") && err.contains("state.dir"), "{err}");
        assert!(logs.contains("keeps the last good state"), "{}", logs.text());
        assert_eq!(store.load_json::<Cursor>(file()).unwrap(), Some(good.clone()));
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
        // Once the disk takes writes again, the newer state goes in and that is said once.
        store.save_json(file(), &newer).unwrap();
        assert_eq!(store.load_json::<Cursor>(file()).unwrap(), Some(newer));
        assert!(
            logs.contains("can be written again (1 writes had failed"),
            "{}",
            logs.text()
        );
    }

    #[test]
    fn a_failing_directory_is_logged_at_most_once_a_minute() {
        let error = || StateError::Io {
            path: PathBuf::from("/data"),
            action: "writing",
            source: std::io::Error::other("No space left on device"),
        };
        let mut health = WriteHealth::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert!(health.failed(at(0), &error()).unwrap().contains("No space left"));
        assert_eq!(health.failed(at(10), &error()), None);
        assert_eq!(health.failed(at(59), &error()), None);
        let line = health.failed(at(60), &error()).unwrap();
        assert!(line.contains("2 more writes failed since the last message"), "{line}");
        assert_eq!(health.failed(at(61), &error()), None);
        assert!(health.succeeded().unwrap().contains("5 writes had failed"));
        assert_eq!(health.succeeded(), None);
        // A new run of failures is reported at once.
        assert!(health.failed(at(62), &error()).is_some());
    }

    #[test]
    fn sanitize_and_fingerprint() {
        assert_eq!(sanitize("My Account/1"), "my_account_1");
        assert_eq!(fingerprint("abc"), fingerprint("abc"));
        assert_ne!(fingerprint("abc"), fingerprint("abd"));
        assert!(!fingerprint("secret-token").contains("secret"));
    }
}
