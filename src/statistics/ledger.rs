//! What Home Assistant holds for one statistic, as far as this sink knows, and the rows an
//! import must send to bring it in line with new hourly values.
//!
//! The ledger mirrors HA's rows from `from` on (an hour absent from `rows` has no row in HA);
//! `sum_before` is the sum of HA's last row before `from`. Rows enter it only after HA
//! acknowledged them, so a crash between sending and saving re-sends the same rows with the
//! same sums, which HA overwrites: nothing is ever counted twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hourly::{Hours, HOUR};

/// How far back from the newest row the ledger keeps rows; older corrections are compared
/// against HA's own rows, read back when needed.
pub(crate) const RETAINED_HOURS: i64 = 100 * 24;

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(f64, f64)", into = "(f64, f64)")]
pub(crate) struct Row {
    /// The hour's quantity.
    pub(crate) state: f64,
    /// Cumulative total up to the end of the hour.
    pub(crate) sum: f64,
}

impl From<(f64, f64)> for Row {
    fn from((state, sum): (f64, f64)) -> Row {
        Row { state, sum }
    }
}

impl From<Row> for (f64, f64) {
    fn from(r: Row) -> (f64, f64) {
        (r.state, r.sum)
    }
}

/// A row to send: hour start (unix seconds) and its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PlannedRow {
    pub(crate) start: i64,
    pub(crate) row: Row,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    format: u32,
    pub(crate) statistic_id: String,
    pub(crate) from: i64,
    pub(crate) sum_before: f64,
    pub(crate) rows: BTreeMap<i64, Row>,
}

impl Ledger {
    pub(crate) fn new(statistic_id: &str, from: i64, sum_before: f64, rows: BTreeMap<i64, Row>) -> Ledger {
        let rows = rows.into_iter().filter(|(start, _)| *start >= from).collect();
        Ledger {
            format: FORMAT,
            statistic_id: statistic_id.to_owned(),
            from,
            sum_before,
            rows,
        }
    }

    pub(crate) fn is_current_format(&self) -> bool {
        self.format == FORMAT
    }

    pub(crate) fn last_start(&self) -> Option<i64> {
        self.rows.keys().next_back().copied()
    }

    pub(crate) fn last_sum(&self) -> f64 {
        self.rows.values().next_back().map_or(self.sum_before, |r| r.sum)
    }

    /// The rows that differ once `hours` replace what the ledger holds for those hours: new
    /// hours, changed hours, and every later hour whose sum the change moves. Hours before
    /// `from` are outside what the ledger can judge; the caller widens it first.
    pub(crate) fn plan(&self, hours: &Hours) -> Vec<PlannedRow> {
        let mut states: BTreeMap<i64, f64> = self.rows.iter().map(|(&start, r)| (start, r.state)).collect();
        states.extend(hours.range(self.from..).map(|(&start, &v)| (start, v)));
        let mut running = self.sum_before;
        let mut planned = Vec::new();
        for (start, state) in states {
            running += state;
            let row = Row { state, sum: running };
            if self.rows.get(&start).is_none_or(|known| !same(known, &row)) {
                planned.push(PlannedRow { start, row });
            }
        }
        planned
    }

    /// Records rows HA acknowledged.
    pub(crate) fn apply(&mut self, rows: &[PlannedRow]) {
        for p in rows {
            if p.start >= self.from {
                self.rows.insert(p.start, p.row);
            }
        }
    }

    /// Keeps the `RETAINED_HOURS` hours up to the newest row; `true` when it forgot any.
    pub(crate) fn prune(&mut self) -> bool {
        let Some(last) = self.last_start() else { return false };
        let cut = last + HOUR - RETAINED_HOURS * HOUR;
        if cut <= self.from {
            return false;
        }
        let kept = self.rows.split_off(&cut);
        if let Some(last_dropped) = self.rows.values().next_back() {
            self.sum_before = last_dropped.sum;
        }
        self.rows = kept;
        self.from = cut;
        true
    }
}

/// Equal within float noise: sums are re-added on every plan and read back through JSON.
fn same(a: &Row, b: &Row) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
    close(a.state, b.state) && close(a.sum, b.sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR;

    fn hours(values: &[(i64, f64)]) -> Hours {
        values.iter().map(|&(h, v)| (h * H, v)).collect()
    }

    fn sums(planned: &[PlannedRow]) -> Vec<(i64, f64, f64)> {
        planned.iter().map(|p| (p.start / H, p.row.state, p.row.sum)).collect()
    }

    fn imported(values: &[(i64, f64)]) -> Ledger {
        let mut l = Ledger::new("meter2mqtt:m", 0, 0.0, BTreeMap::new());
        let plan = l.plan(&hours(values));
        l.apply(&plan);
        l
    }

    #[test]
    fn first_import_chains_sums_and_repeat_sends_nothing() {
        let l = Ledger::new("meter2mqtt:m", 0, 10.0, BTreeMap::new());
        let plan = l.plan(&hours(&[(1, 1.0), (2, 2.0), (4, 0.5)]));
        assert_eq!(sums(&plan), vec![(1, 1.0, 11.0), (2, 2.0, 13.0), (4, 0.5, 13.5)]);
        let mut l = l;
        l.apply(&plan);
        assert!(l.plan(&hours(&[(1, 1.0), (2, 2.0), (4, 0.5)])).is_empty());
        assert!(l.plan(&hours(&[(2, 2.0)])).is_empty());
        assert_eq!((l.last_sum(), l.last_start()), (13.5, Some(4 * H)));
    }

    #[test]
    fn a_correction_resends_its_hour_and_every_moved_sum() {
        let l = imported(&[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]);
        assert_eq!(
            sums(&l.plan(&hours(&[(1, 3.0)]))),
            vec![(1, 3.0, 4.0), (2, 1.0, 5.0), (3, 1.0, 6.0)]
        );
        // Two corrections that cancel out leave later sums alone.
        assert_eq!(
            sums(&l.plan(&hours(&[(1, 2.0), (2, 0.0)]))),
            vec![(1, 2.0, 3.0), (2, 0.0, 3.0)]
        );
        // A new hour in a gap moves the sums after it.
        let gap = imported(&[(0, 1.0), (5, 1.0)]);
        assert_eq!(sums(&gap.plan(&hours(&[(3, 2.0)]))), vec![(3, 2.0, 3.0), (5, 1.0, 4.0)]);
    }

    #[test]
    fn sums_broken_by_an_interrupted_import_are_repaired() {
        // As if a correction of hour 1 was acknowledged but the batch with hours 2.. was not.
        let mut l = imported(&[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]);
        l.apply(&[PlannedRow {
            start: H,
            row: Row { state: 3.0, sum: 4.0 },
        }]);
        assert_eq!(sums(&l.plan(&hours(&[(1, 3.0)]))), vec![(2, 1.0, 5.0), (3, 1.0, 6.0)]);
    }

    #[test]
    fn float_noise_is_not_a_change() {
        let l = imported(&[(0, 0.1), (1, 0.2)]);
        assert!(l.plan(&hours(&[(0, 0.1 + 1e-13)])).is_empty());
        assert_eq!(l.plan(&hours(&[(0, 0.1001)])).len(), 2);
    }

    #[test]
    fn hours_before_the_ledger_are_left_to_the_caller() {
        let l = Ledger::new("meter2mqtt:m", 10 * H, 5.0, BTreeMap::new());
        assert_eq!(sums(&l.plan(&hours(&[(9, 1.0), (10, 1.0)]))), vec![(10, 1.0, 6.0)]);
    }

    #[test]
    fn pruning_keeps_sums_continuous() {
        let values: Vec<(i64, f64)> = (0..(RETAINED_HOURS + 5)).map(|h| (h, 1.0)).collect();
        let mut l = imported(&values);
        let before = l.last_sum();
        assert!(l.prune());
        assert_eq!((l.from, l.sum_before, l.last_sum()), (5 * H, 5.0, before));
        assert_eq!(l.rows.len() as i64, RETAINED_HOURS);
        assert!(!l.prune());
        assert!(l.plan(&hours(&values[5..])).is_empty());
        let next = RETAINED_HOURS + 5;
        assert_eq!(sums(&l.plan(&hours(&[(next, 2.0)]))), vec![(next, 2.0, before + 2.0)]);
    }

    #[test]
    fn serialises_compactly_and_round_trips() {
        let l = imported(&[(0, 0.5), (1, 0.25)]);
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains(r#""rows":{"0":[0.5,0.5],"3600":[0.25,0.75]}"#), "{json}");
        let back: Ledger = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert!(back.is_current_format());
    }
}
