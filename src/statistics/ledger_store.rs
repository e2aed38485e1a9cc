//! Ledgers on disk (`statistics/<object_id>.json` in the state directory) and in memory, one
//! lock per statistic so that two imports of the same meter never interleave.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use super::ledger::Ledger;
use super::series::Series;
use super::StatisticsError;
use crate::state::StateStore;

#[derive(Debug, Default)]
pub(crate) struct Slot {
    loaded: bool,
    pub(crate) ledger: Option<Ledger>,
    /// Compared with HA's own rows since this process started.
    pub(crate) verified: bool,
    /// The last write of the ledger failed: it mirrors what HA acknowledged, and is written at
    /// the next import even when nothing else changed.
    pub(crate) unsaved: bool,
    /// The newest hour of the ledger as last read from or written to disk.
    pub(crate) saved_until: Option<i64>,
}

impl Slot {
    /// The newest hour this sink may say it holds: the ledger's own, unless its last write
    /// failed; then the one on disk, so that no cursor moves past what is written.
    pub(crate) fn position(&self) -> Option<i64> {
        if self.unsaved {
            self.saved_until
        } else {
            self.ledger.as_ref().and_then(|l| l.last_start())
        }
    }
}

pub(crate) struct LedgerStore {
    state: StateStore,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl LedgerStore {
    pub(crate) fn new(state: StateStore) -> LedgerStore {
        LedgerStore {
            state,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The statistic's slot, loaded from disk on first use, held until the guard drops.
    pub(crate) async fn lock(&self, series: &Series) -> Result<OwnedMutexGuard<Slot>, StatisticsError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(series.statistic_id.clone()).or_default().clone()
        };
        let mut guard = slot.lock_owned().await;
        if !guard.loaded {
            guard.ledger = self.load(series).await?;
            guard.saved_until = guard.ledger.as_ref().and_then(|l| l.last_start());
            guard.loaded = true;
        }
        Ok(guard)
    }

    pub(crate) async fn save(&self, ledger: &Ledger) -> Result<(), StatisticsError> {
        let statistic_id = ledger.statistic_id.clone();
        self.state
            .save(file_name(&statistic_id), ledger.clone())
            .await
            .map_err(|source| StatisticsError::State { statistic_id, source })
    }

    /// A missing, unreadable or foreign file is no ledger: HA's rows rebuild it at first use.
    async fn load(&self, series: &Series) -> Result<Option<Ledger>, StatisticsError> {
        let path = file_name(&series.statistic_id);
        let loaded = self
            .state
            .load_cache::<Ledger>(
                path.clone(),
                "statistics state file",
                "rebuilding it from Home Assistant's own rows",
            )
            .await;
        match loaded {
            Ok(Some(ledger)) if ledger.statistic_id == series.statistic_id && ledger.is_current_format() => {
                Ok(Some(ledger))
            }
            Ok(Some(_)) => {
                tracing::warn!(file = %path.display(), "statistics state file is for another statistic or format; rebuilding it from Home Assistant");
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(source) => Err(StatisticsError::State {
                statistic_id: series.statistic_id.clone(),
                source,
            }),
        }
    }
}

fn file_name(statistic_id: &str) -> PathBuf {
    let object_id = statistic_id.split_once(':').map_or(statistic_id, |(_, object)| object);
    PathBuf::from("statistics").join(format!("{}.json", crate::state::sanitize(object_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn series() -> Series {
        Series {
            statistic_id: "meter2mqtt:p_1_consumption".into(),
            object_id: "p_1_consumption".into(),
            name: "n".into(),
            unit: "kWh".into(),
            unit_class: Some("energy"),
        }
    }

    #[tokio::test]
    async fn saves_loads_and_survives_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LedgerStore::new(StateStore::open(dir.path()).unwrap());
        assert!(store.lock(&series()).await.unwrap().ledger.is_none());
        let ledger = Ledger::new("meter2mqtt:p_1_consumption", 0, 1.5, BTreeMap::new());
        store.save(&ledger).await.unwrap();
        let file = dir.path().join("statistics/p_1_consumption.json");
        assert!(file.exists());

        let fresh = LedgerStore::new(StateStore::open(dir.path()).unwrap());
        assert_eq!(fresh.lock(&series()).await.unwrap().ledger, Some(ledger));

        std::fs::write(&file, b"{ not json").unwrap();
        std::fs::remove_file(dir.path().join("statistics/p_1_consumption.json.prev")).ok();
        let fresh = LedgerStore::new(StateStore::open(dir.path()).unwrap());
        assert_eq!(fresh.lock(&series()).await.unwrap().ledger, None);
    }

    #[tokio::test]
    async fn a_file_of_another_statistic_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = LedgerStore::new(StateStore::open(dir.path()).unwrap());
        let other = Ledger::new("meter2mqtt:other", 0, 0.0, BTreeMap::new());
        let raw = serde_json::to_vec(&other).unwrap();
        std::fs::create_dir_all(dir.path().join("statistics")).unwrap();
        std::fs::write(dir.path().join("statistics/p_1_consumption.json"), raw).unwrap();
        assert!(store.lock(&series()).await.unwrap().ledger.is_none());
    }
}
