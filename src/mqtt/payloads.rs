//! JSON payloads on the state and readings topics: the contract other subscribers (Node-RED,
//! Telegraf, scripts) rely on. See docs/topics.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{IntervalReading, Meter, Quality};
use crate::sink::BridgeStatus;

/// `<base>/<provider>/<meter>/readings`: new or corrected intervals, QoS 1, not retained.
#[derive(Debug, Serialize)]
pub struct ReadingsBatch<'a> {
    pub meter: &'a str,
    pub provider: &'a str,
    pub unit: &'a str,
    pub readings: Vec<ReadingItem>,
}

/// One interval as the topics show it (the state topic's `latest`, each readings item).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub value: Option<f64>,
    pub quality: Quality,
    /// The register value at `end` (cumulative meters only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reading: Option<f64>,
}

impl Interval {
    pub fn of(reading: &IntervalReading) -> Self {
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
pub struct ReadingItem {
    #[serde(flatten)]
    pub interval: Interval,
    /// True when this interval was published before with another value or quality.
    pub correction: bool,
}

impl ReadingItem {
    pub fn new(reading: &IntervalReading, correction: bool) -> Self {
        ReadingItem {
            interval: Interval::of(reading),
            correction,
        }
    }
}

/// Providers send decimals; binary floats add noise in the last digits that JSON would show.
pub fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// `<base>/<provider>/<meter>/state`: retained; everything the discovery templates read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MeterState {
    pub meter: String,
    pub provider: String,
    pub name: String,
    pub unit: String,
    /// The most recent interval with data.
    pub latest: Option<Interval>,
    /// The newest local calendar day for which data exists, and its total.
    pub last_day: Option<DayTotal>,
    /// End of the newest delivered interval.
    pub data_until: Option<DateTime<Utc>>,
    pub last_poll: Option<DateTime<Utc>>,
    pub next_poll: Option<DateTime<Utc>>,
    pub api_status: String,
    /// The last error in words, or null when the last poll went well.
    pub api_error: Option<String>,
    /// How far the last read came: a history import shows its progress here.
    pub history_import: Option<HistoryImport>,
    /// Provider values beside interval data, by key.
    pub extras: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryImport {
    /// Whole percent of the read done.
    pub percent: u8,
    /// The local day the read has reached.
    pub reached: NaiveDate,
    /// The local day the read started from.
    pub from: NaiveDate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayTotal {
    pub date: NaiveDate,
    pub value: f64,
    /// Every interval of the day is present with a value.
    pub complete: bool,
}

impl MeterState {
    pub fn new(meter: &Meter) -> Self {
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
pub struct BridgeState {
    pub version: &'static str,
    pub started: DateTime<Utc>,
    pub meters: usize,
    pub accounts: usize,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl BridgeState {
    pub fn of(status: &BridgeStatus) -> BridgeState {
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
