//! A provider whose data the test controls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use meter2mqtt::model::{
    DeviceInfo, Direction, IntervalReading, Medium, Meter, MeterValue, Quality, TimeRange, Unit, ValueKind,
};
use meter2mqtt::providers::{Provider, ProviderError, Receive, Window};

/// A provider whose data the test controls: hourly intervals of one meter up to a watermark.
#[derive(Clone)]
pub struct ScriptedProvider {
    pub first: DateTime<Utc>,
    pub until: Arc<Mutex<DateTime<Utc>>>,
    /// Added to the value of these interval starts (a correction).
    pub corrections: Arc<Mutex<BTreeMap<DateTime<Utc>, f64>>>,
    pub calls: Arc<Mutex<usize>>,
    /// Signalled after every readings call.
    pub fetched: Arc<Notify>,
    /// When false, the account no longer lists the meter.
    pub present: Arc<std::sync::atomic::AtomicBool>,
    /// When set, readings calls fail with this HTTP status (after retries).
    pub failing: Arc<Mutex<Option<u16>>>,
    /// The range of every readings call.
    pub ranges: Arc<Mutex<Vec<TimeRange>>>,
    /// When set, the meter has a live value that changes by itself this often: each values call
    /// gives the number of calls so far.
    pub live_every: Arc<Mutex<Option<std::time::Duration>>>,
    pub values_calls: Arc<Mutex<usize>>,
}

impl ScriptedProvider {
    pub fn new(first: DateTime<Utc>, hours: i64) -> Self {
        ScriptedProvider {
            first,
            until: Arc::new(Mutex::new(first + chrono::Duration::hours(hours))),
            corrections: Default::default(),
            calls: Default::default(),
            fetched: Default::default(),
            present: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            failing: Default::default(),
            ranges: Default::default(),
            live_every: Default::default(),
            values_calls: Default::default(),
        }
    }

    pub fn advance(&self, hours: i64) {
        *self.until.lock().unwrap() += chrono::Duration::hours(hours);
    }

    pub fn value(&self, start: DateTime<Utc>) -> f64 {
        let base = ((start - self.first).num_hours() % 7) as f64 * 0.125 + 0.25;
        base + self.corrections.lock().unwrap().get(&start).copied().unwrap_or(0.0)
    }

    pub fn meter() -> Meter {
        Meter {
            provider: "scripted".into(),
            id: "m1".into(),
            name: "Scripted meter".into(),
            medium: Medium::Electricity,
            direction: Direction::Consumption,
            unit: Unit::KWh,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo::default(),
        }
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn account(&self) -> &str {
        "test"
    }
    async fn meters(&self) -> Result<Vec<Meter>, ProviderError> {
        if self.present.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(vec![Self::meter()])
        } else {
            Ok(vec![])
        }
    }
    async fn values(&self, _meter: &Meter) -> Result<Vec<MeterValue>, ProviderError> {
        if self.live_every.lock().unwrap().is_none() {
            return Ok(Vec::new());
        }
        let mut calls = self.values_calls.lock().unwrap();
        *calls += 1;
        Ok(vec![MeterValue {
            key: "live".into(),
            name: "Live".into(),
            value: Some(*calls as f64),
            unit: None,
            kind: ValueKind::Other,
            attributes: Default::default(),
            timetable: Vec::new(),
            shared: None,
        }])
    }
    fn values_refresh(&self) -> Option<std::time::Duration> {
        *self.live_every.lock().unwrap()
    }
    async fn read(&self, meters: &[Meter], range: TimeRange, out: &mut dyn Receive) {
        for meter in meters {
            let result = self.fetch(meter, range);
            if out.window(Window::of_meter(meter, range, result)).await.is_break() {
                return;
            }
        }
    }
}

impl ScriptedProvider {
    /// One meter's readings in `range`, as the script says.
    fn fetch(&self, meter: &Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        self.ranges.lock().unwrap().push(range);
        if let Some(status) = *self.failing.lock().unwrap() {
            self.fetched.notify_one();
            return Err(ProviderError::Http(meter2mqtt::http::HttpError::Exhausted {
                api: "scripted",
                endpoint: "GET /readings".into(),
                attempts: 6,
                last: format!("HTTP {status}: unavailable"),
                last_status: Some(status),
            }));
        }
        let until = *self.until.lock().unwrap();
        let mut out = Vec::new();
        let mut start = self.first.max(range.start);
        while start + chrono::Duration::hours(1) <= until.min(range.end) {
            out.push(IntervalReading {
                start,
                end: start + chrono::Duration::hours(1),
                value: Some(self.value(start)),
                unit: meter.unit.clone(),
                quality: Quality::Measured,
                reading: None,
            });
            start += chrono::Duration::hours(1);
        }
        self.fetched.notify_one();
        Ok(out)
    }
}
