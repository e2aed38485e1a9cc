//! What was delivered on the readings topics, and which fetched intervals are new, which are
//! corrections, and which were delivered already.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{same_value, IntervalReading, Quality};

/// What the MQTT sink remembers about one provider account (`<kind>-<account>.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AccountState {
    #[serde(default)]
    pub(crate) meters: BTreeMap<String, MeterState>,
    /// Discovery config topics published for this account, to clear those of vanished meters.
    /// Kept in a file of its own (see `AccountSink`): it changes rarely, while this file is
    /// written after every round of a history import. Read here from files of older versions.
    #[serde(default, skip_serializing)]
    pub(crate) discovery: BTreeSet<String>,
    /// Set when this file replaced one that was lost (corrupt, without a usable backup): a meter
    /// without a record starts here instead of at the history start, so that nothing older than
    /// the look-back window is published a second time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fresh_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct MeterState {
    /// End of the last delivered interval.
    pub(crate) cursor: Option<DateTime<Utc>>,
    /// What was delivered for each interval start (unix seconds) inside the look-back window,
    /// so a re-read can tell new and corrected intervals from ones already sent.
    #[serde(default)]
    pub(crate) delivered: BTreeMap<i64, Delivered>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delivered {
    #[serde(rename = "v")]
    pub(crate) value: Option<f64>,
    #[serde(rename = "q")]
    pub(crate) quality: Quality,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub(crate) reading: Option<f64>,
}

impl Delivered {
    pub(crate) fn of(reading: &IntervalReading) -> Self {
        Delivered {
            value: reading.value,
            quality: reading.quality,
            reading: reading.reading,
        }
    }

    pub(crate) fn matches(&self, reading: &IntervalReading) -> bool {
        self.quality == reading.quality
            && same_value(self.value, reading.value)
            && same_value(self.reading, reading.reading)
    }
}

impl MeterState {
    /// Forget intervals that start before `keep_from`: they are outside every future re-read.
    pub(crate) fn prune(&mut self, keep_from: DateTime<Utc>) {
        let cut = keep_from.timestamp();
        self.delivered = self.delivered.split_off(&cut);
    }
}

/// A fetched interval that must be published.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub(crate) reading: IntervalReading,
    pub(crate) correction: bool,
}

/// Compares what was read with what was delivered. Every delivered interval that starts at or
/// after `record_from` (the look-back window before now: what later polls re-read) is in
/// `state.delivered`, so an interval from then on that is absent was never sent (a filled gap,
/// not a correction); an earlier one that ends by the cursor was sent long ago. Keeping records
/// for that window only is what keeps the state small during a history import.
pub(crate) fn pending(state: &MeterState, record_from: DateTime<Utc>, readings: &[IntervalReading]) -> Vec<Pending> {
    let mut out = Vec::new();
    for reading in readings {
        match state.delivered.get(&reading.start.timestamp()) {
            Some(previous) if previous.matches(reading) => {}
            Some(_) => out.push(Pending {
                reading: reading.clone(),
                correction: true,
            }),
            None => {
                let long_delivered = state
                    .cursor
                    .is_some_and(|cursor| reading.end <= cursor && reading.start < record_from);
                if !long_delivered {
                    out.push(Pending {
                        reading: reading.clone(),
                        correction: false,
                    });
                }
            }
        }
    }
    out.sort_by_key(|p| p.reading.start);
    out.dedup_by_key(|p| p.reading.start);
    out
}

/// Records a delivered batch: the cursor only moves forward; intervals from `record_from` on are
/// remembered for telling corrections from repeats.
pub(crate) fn record(state: &mut MeterState, delivered: &[Pending], record_from: DateTime<Utc>) {
    for p in delivered {
        if p.reading.start >= record_from {
            state
                .delivered
                .insert(p.reading.start.timestamp(), Delivered::of(&p.reading));
        }
        if state.cursor.is_none_or(|c| p.reading.end > c) {
            state.cursor = Some(p.reading.end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Unit;
    use chrono::TimeZone;

    fn r(hour: i64, value: Option<f64>, quality: Quality) -> IntervalReading {
        let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(hour);
        IntervalReading {
            start,
            end: start + chrono::Duration::hours(1),
            value,
            unit: Unit::KWh,
            quality,
            reading: None,
        }
    }

    #[test]
    fn discovery_topics_are_read_from_older_files_but_no_longer_written_here() {
        let old = r#"{"meters": {"m1": {"cursor": null}}, "discovery": ["homeassistant/sensor/x/config"]}"#;
        let state: AccountState = serde_json::from_str(old).unwrap();
        assert!(state.discovery.contains("homeassistant/sensor/x/config"));
        let written = serde_json::to_value(&state).unwrap();
        assert!(written.get("discovery").is_none(), "{written}");
        assert!(written["meters"]["m1"].is_object());
    }

    #[test]
    fn first_delivery_then_nothing_then_corrections() {
        let from = r(-24 * 7, None, Quality::Missing).start;
        let mut state = MeterState::default();
        let day1: Vec<_> = (0..24).map(|h| r(h, Some(1.0), Quality::Measured)).collect();
        let p = pending(&state, from, &day1);
        assert_eq!(p.len(), 24);
        assert!(p.iter().all(|p| !p.correction));
        record(&mut state, &p, from);
        assert_eq!(state.cursor, Some(day1[23].end));

        assert!(pending(&state, from, &day1).is_empty());

        let mut changed = day1.clone();
        changed[5].value = Some(2.0);
        changed[6].quality = Quality::Estimated;
        changed.push(r(24, Some(0.5), Quality::Measured));
        let p = pending(&state, from, &changed);
        assert_eq!(p.len(), 3);
        assert!(p[0].correction && p[1].correction && !p[2].correction);
    }

    #[test]
    fn missing_then_filled_is_a_correction() {
        let from = r(-24 * 7, None, Quality::Missing).start;
        let mut state = MeterState::default();
        let p = pending(&state, from, &[r(0, None, Quality::Missing)]);
        record(&mut state, &p, from);
        let p = pending(&state, from, &[r(0, Some(1.0), Quality::Measured)]);
        assert_eq!(p.len(), 1);
        assert!(p[0].correction);
    }

    #[test]
    fn only_the_window_is_remembered_and_nothing_before_it_is_resent() {
        // A history import: everything before the last day is older than the window.
        let from = r(76, None, Quality::Missing).start;
        let mut state = MeterState::default();
        let all: Vec<_> = (0..100).map(|h| r(h, Some(1.0), Quality::Measured)).collect();
        let p = pending(&state, from, &all);
        assert_eq!(p.len(), 100);
        record(&mut state, &p, from);
        assert_eq!(state.delivered.len(), 24, "records for the window only");
        assert_eq!(state.cursor, Some(all[99].end));
        assert!(pending(&state, from, &all).is_empty(), "a re-read sends nothing");
        // A correction inside the window is still seen.
        let mut corrected = all.clone();
        corrected[90].value = Some(2.0);
        let p = pending(&state, from, &corrected);
        assert_eq!(p.len(), 1);
        assert!(p[0].correction);
    }

    #[test]
    fn prune_keeps_window() {
        let mut m = MeterState::default();
        for t in [100, 200, 300] {
            m.delivered.insert(
                t,
                Delivered {
                    value: Some(1.0),
                    quality: Quality::Measured,
                    reading: None,
                },
            );
        }
        m.prune(DateTime::from_timestamp(200, 0).unwrap());
        assert_eq!(m.delivered.keys().copied().collect::<Vec<_>>(), vec![200, 300]);
    }

    #[test]
    fn gap_inside_window_is_new_not_correction() {
        let from = r(-24 * 7, None, Quality::Missing).start;
        let mut state = MeterState::default();
        let first: Vec<_> = [0, 1, 3].iter().map(|h| r(*h, Some(1.0), Quality::Measured)).collect();
        let p = pending(&state, from, &first);
        record(&mut state, &p, from);
        let p = pending(&state, from, &[r(2, Some(1.0), Quality::Measured)]);
        assert_eq!(p.len(), 1);
        assert!(!p[0].correction);
    }
}
