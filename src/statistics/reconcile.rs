//! Bringing a ledger in line with Home Assistant's own rows: once per statistic per process
//! (HA may have been restored from a backup, or its statistics cleared, since the state file
//! was written), and whenever an import reaches further back than the ledger.

use std::collections::BTreeMap;

use super::hourly::HOUR;
use super::ledger::{Ledger, Row};
use super::ledger_store::Slot;
use super::recorder::StoredRow;
use super::remote::Remote;
use super::StatisticsError;

/// Looking for the last row before a window, HA is asked a month at a time (one bounded message)...
const LOOKBACK_STEP: i64 = 31 * 24 * HOUR;
/// ...this many times (about five years).
const LOOKBACK_STEPS: i64 = 59;

/// Makes `slot` hold a ledger that mirrors HA from `window_start` on; returns it.
pub(crate) async fn covered<'a>(
    remote: &Remote,
    slot: &'a mut Slot,
    statistic_id: &str,
    window_start: i64,
) -> Result<&'a mut Ledger, StatisticsError> {
    // On failure the slot keeps what it had, so the next attempt starts from the same place.
    let ledger = match slot.ledger.take() {
        Some(ledger) if slot.verified && ledger.from <= window_start => ledger,
        Some(ledger) if slot.verified => match widen(remote, &ledger, window_start).await {
            Ok(widened) => widened,
            Err(e) => {
                slot.ledger = Some(ledger);
                return Err(e);
            }
        },
        file => match rebuild(remote, file.as_ref(), statistic_id, window_start).await {
            Ok(rebuilt) => rebuilt,
            Err(e) => {
                slot.ledger = file;
                return Err(e);
            }
        },
    };
    slot.verified = true;
    Ok(slot.ledger.insert(ledger))
}

/// Adds HA's rows in `[window_start, ledger.from)`.
async fn widen(remote: &Remote, ledger: &Ledger, window_start: i64) -> Result<Ledger, StatisticsError> {
    let stored = remote
        .rows(&ledger.statistic_id, window_start, Some(ledger.from))
        .await?;
    let (earlier, sum_before) = rows_and_sum_before(&stored);
    let sum_before = sum_before.unwrap_or(ledger.sum_before);
    let mut rows = ledger.rows.clone();
    rows.extend(earlier);
    Ok(Ledger::new(&ledger.statistic_id, window_start, sum_before, rows))
}

/// HA's rows from the earlier of the file's start and `window_start` replace the file's.
async fn rebuild(
    remote: &Remote,
    file: Option<&Ledger>,
    statistic_id: &str,
    window_start: i64,
) -> Result<Ledger, StatisticsError> {
    let from = file.map_or(window_start, |f| f.from.min(window_start));
    let stored = remote.rows(statistic_id, from, None).await?;
    let (rows, sum_before) = rows_and_sum_before(&stored);
    let sum_before = match (sum_before, file) {
        (Some(sum), _) => sum,
        // HA has nothing from `from` on: continue where the file says the rows before it end.
        (None, Some(f)) => f.sum_before,
        (None, None) => sum_before_window(remote, statistic_id, from).await?,
    };
    if let Some(f) = file {
        let differing = f
            .rows
            .iter()
            .filter(|(start, row)| rows.get(start) != Some(row))
            .count();
        if differing > 0 {
            tracing::warn!(
                statistic_id,
                differing,
                "Home Assistant's statistics differ from the state file (restored backup or cleared statistics?); following Home Assistant"
            );
        }
    }
    Ok(Ledger::new(statistic_id, from, sum_before, rows))
}

/// Rows usable for sums, and the sum before the first of them. Our rows always satisfy
/// `sum = previous sum + state`, so the first row tells what came before it, including any
/// adjustment made in HA since. A row without a state gets the difference of the sums.
fn rows_and_sum_before(stored: &[StoredRow]) -> (BTreeMap<i64, Row>, Option<f64>) {
    let mut rows = BTreeMap::new();
    let mut sum_before = None;
    let mut previous_sum: Option<f64> = None;
    for r in stored {
        let Some(sum) = r.sum else { continue };
        let state = r.state.unwrap_or_else(|| previous_sum.map_or(0.0, |p| sum - p));
        if sum_before.is_none() {
            sum_before = Some(sum - state);
        }
        previous_sum = Some(sum);
        rows.insert(r.start, Row { state, sum });
    }
    (rows, sum_before)
}

/// The sum of HA's last row before `before`, when neither HA's rows from `before` on nor a
/// state file tell it (state lost, window starting after HA's rows).
async fn sum_before_window(remote: &Remote, statistic_id: &str, before: i64) -> Result<f64, StatisticsError> {
    if !remote.knows(statistic_id).await? {
        return Ok(0.0);
    }
    for step in 0..LOOKBACK_STEPS {
        let end = before - step * LOOKBACK_STEP;
        let stored = remote.rows(statistic_id, end - LOOKBACK_STEP, Some(end)).await?;
        if let Some(sum) = stored.iter().rev().find_map(|r| r.sum) {
            return Ok(sum);
        }
    }
    tracing::warn!(
        statistic_id,
        "Home Assistant knows this statistic but has no rows in the five years before the import; sums start at 0"
    );
    Ok(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_before_comes_from_the_first_usable_row() {
        let stored = [
            StoredRow {
                start: 0,
                state: Some(1.0),
                sum: None,
            },
            StoredRow {
                start: 3600,
                state: Some(2.0),
                sum: Some(12.0),
            },
            StoredRow {
                start: 7200,
                state: None,
                sum: Some(15.0),
            },
        ];
        let (rows, before) = rows_and_sum_before(&stored);
        assert_eq!(before, Some(10.0));
        assert_eq!(
            rows.into_iter().collect::<Vec<_>>(),
            vec![
                (3600, Row { state: 2.0, sum: 12.0 }),
                (7200, Row { state: 3.0, sum: 15.0 })
            ]
        );
        assert_eq!(rows_and_sum_before(&[]), (BTreeMap::new(), None));
    }
}
