//! Where records come from live: the latest value of a Home Assistant entity (`entity`) or of an
//! MQTT topic (`topic`), kept in a [`Latest`] cell that the series' ticks read.

mod entity;
mod topic;

pub(crate) use entity::{follow_entities, EntityFeeds};
pub(crate) use topic::{follow_topics, TopicFeeds};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
struct Sample {
    value: Option<f64>,
    /// When the value was last known to be current.
    seen: Option<DateTime<Utc>>,
    /// The source tells of every change right now (Home Assistant's subscription is up), so
    /// the value is current however long ago it last changed.
    live: bool,
    /// The entity's `unit_of_measurement`.
    unit: Option<String>,
}

/// The latest value of one source, shared between the task that follows it and the series.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latest(Arc<Mutex<Sample>>);

impl Latest {
    fn with<T>(&self, f: impl FnOnce(&mut Sample) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A new value (`None`: the source says it has none, e.g. `unavailable`).
    pub(crate) fn set(&self, value: Option<f64>, now: DateTime<Utc>, live: bool) {
        self.with(|s| {
            s.value = value;
            s.seen = Some(now);
            s.live = live;
        });
    }

    pub(crate) fn set_unit(&self, unit: Option<String>) {
        self.with(|s| s.unit = unit);
    }

    pub(crate) fn unit(&self) -> Option<String> {
        self.with(|s| s.unit.clone())
    }

    /// The source stopped telling of changes (the link is down) at `now`.
    pub(crate) fn lost(&self, now: DateTime<Utc>) {
        self.with(|s| {
            if s.live {
                s.live = false;
                s.seen = Some(now);
            }
        });
    }

    /// The value to record at `tick`: none when there is none or it is older than `max_age`.
    pub(crate) fn at(&self, tick: DateTime<Utc>, max_age: Duration) -> Option<f64> {
        self.with(|s| {
            let value = s.value?;
            let age = (tick - s.seen?).to_std().unwrap_or_default();
            (s.live || age <= max_age).then_some(value)
        })
    }
}

/// A state or payload as a number, if it is a finite one.
pub(crate) fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_value_is_used_while_live_or_young_enough() {
        let latest = Latest::default();
        let half_hour = Duration::from_secs(1800);
        assert_eq!(latest.at(t("2026-01-01T10:00:00Z"), half_hour), None);
        latest.set(Some(5.0), t("2026-01-01T09:00:00Z"), false);
        assert_eq!(latest.at(t("2026-01-01T09:30:00Z"), half_hour), Some(5.0));
        assert_eq!(latest.at(t("2026-01-01T09:31:00Z"), half_hour), None);
        latest.set(Some(6.0), t("2026-01-01T09:00:00Z"), true);
        assert_eq!(latest.at(t("2026-01-01T12:00:00Z"), half_hour), Some(6.0));
        latest.lost(t("2026-01-01T12:00:00Z"));
        assert_eq!(latest.at(t("2026-01-01T12:30:00Z"), half_hour), Some(6.0));
        assert_eq!(latest.at(t("2026-01-01T12:31:00Z"), half_hour), None);
        latest.set(None, t("2026-01-01T12:31:00Z"), true);
        assert_eq!(latest.at(t("2026-01-01T12:31:00Z"), half_hour), None);
        assert_eq!(number(" 12.5 "), Some(12.5));
        assert_eq!(number("unavailable"), None);
        assert_eq!(number("NaN"), None);
    }
}
