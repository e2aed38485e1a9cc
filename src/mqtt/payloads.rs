//! JSON payloads on the state and readings topics: the contract other subscribers (Node-RED,
//! Telegraf, scripts) rely on. See docs/topics.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{IntervalReading, Meter, Quality};
use crate::sink::BridgeStatus;

/// `<base>/<provider>/<meter>/readings`: new or corrected intervals, QoS 1, not retained.
#[derive(Debug, Serialize)]
pub(crate) struct ReadingsBatch<'a> {
    pub(crate) meter: &'a str,
    pub(crate) provider: &'a str,
    pub(crate) unit: &'a str,
    pub(crate) readings: Vec<ReadingItem>,
}

/// One interval as the topics show it (the state topic's `latest`, each readings item).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Interval {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) value: Option<f64>,
    pub(crate) quality: Quality,
    /// The register value at `end` (cumulative meters only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reading: Option<f64>,
}

impl Interval {
    pub(crate) fn of(reading: &IntervalReading) -> Self {
        Interval {
            start: reading.start,
            end: reading.end,
            value: reading.value.map(round),
            quality: reading.quality,
            reading: reading.reading.map(round),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReadingItem {
    #[serde(flatten)]
    pub(crate) interval: Interval,
    /// True when this interval was published before with another value or quality.
    pub(crate) correction: bool,
}

impl ReadingItem {
    pub(crate) fn new(reading: &IntervalReading, correction: bool) -> Self {
        ReadingItem {
            interval: Interval::of(reading),
            correction,
        }
    }
}

/// Providers send decimals; binary floats add noise in the last digits that JSON would show.
pub(crate) fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// `<base>/<provider>/<meter>/state`: retained; everything the discovery templates read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct MeterState {
    pub(crate) meter: String,
    pub(crate) provider: String,
    pub(crate) name: String,
    pub(crate) unit: String,
    /// The most recent interval with data.
    pub(crate) latest: Option<Interval>,
    /// The newest local calendar day for which data exists, and its total.
    pub(crate) last_day: Option<DayTotal>,
    /// End of the newest delivered interval.
    pub(crate) data_until: Option<DateTime<Utc>>,
    pub(crate) last_poll: Option<DateTime<Utc>>,
    pub(crate) next_poll: Option<DateTime<Utc>>,
    pub(crate) api_status: String,
    /// The last error in words, or null when the last poll went well.
    pub(crate) api_error: Option<String>,
    /// How far the last read came: a history import shows its progress here.
    pub(crate) history_import: Option<HistoryImport>,
    /// Provider values beside interval data, by key.
    pub(crate) extras: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct HistoryImport {
    /// Whole percent of the read done.
    pub(crate) percent: u8,
    /// The local day the read has reached.
    pub(crate) reached: NaiveDate,
    /// The local day the read started from.
    pub(crate) from: NaiveDate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct DayTotal {
    pub(crate) date: NaiveDate,
    pub(crate) value: f64,
    /// Every interval of the day is present with a value.
    pub(crate) complete: bool,
}

impl MeterState {
    pub(crate) fn new(meter: &Meter) -> Self {
        MeterState {
            meter: meter.id.clone(),
            provider: meter.provider.clone(),
            name: meter.name.clone(),
            unit: meter.unit.to_string(),
            latest: None,
            last_day: None,
            data_until: None,
            last_poll: None,
            next_poll: None,
            api_status: "pending".into(),
            api_error: None,
            history_import: None,
            extras: serde_json::Map::new(),
        }
    }
}

/// `<base>/bridge/state`: retained.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BridgeState {
    pub(crate) version: &'static str,
    pub(crate) started: DateTime<Utc>,
    pub(crate) meters: usize,
    pub(crate) accounts: usize,
    pub(crate) last_error: Option<String>,
    pub(crate) last_error_at: Option<DateTime<Utc>>,
}

impl BridgeState {
    pub(crate) fn of(status: &BridgeStatus) -> BridgeState {
        BridgeState {
            version: env!("CARGO_PKG_VERSION"),
            started: status.started,
            meters: status.meters.values().sum(),
            accounts: status.accounts,
            last_error: status.last_error.clone(),
            last_error_at: status.last_error_at,
        }
    }
}
