//! The provider-neutral domain: meters and the interval readings they produce.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What a meter measures. Decides the Home Assistant device class and unit class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    Electricity,
    Gas,
    Water,
    Heat,
    Cooling,
    Other,
}

impl Medium {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Consumption,
    Production,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Consumption => "consumption",
            Direction::Production => "production",
        }
    }
}

/// A unit exactly as Home Assistant spells it; anything else is carried through verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unit {
    Wh,
    KWh,
    MWh,
    GJ,
    MJ,
    CubicMeters,
    Liters,
    Other(String),
}

impl Unit {
    /// Maps the spellings APIs use (`KWH`, `m3`, `l`, ...) onto Home Assistant's.
    pub fn parse(raw: &str) -> Unit {
        match raw.trim() {
            "Wh" | "wh" | "WH" => Unit::Wh,
            "kWh" | "KWH" | "kwh" | "KWh" => Unit::KWh,
            "MWh" | "MWH" | "mwh" => Unit::MWh,
            "GJ" | "gj" | "Gj" => Unit::GJ,
            "MJ" | "mj" | "Mj" => Unit::MJ,
            "m³" | "m3" | "M3" | "m^3" | "MTQ" => Unit::CubicMeters,
            "L" | "l" | "litre" | "liter" | "liters" | "litres" => Unit::Liters,
            other => Unit::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Unit::Wh => "Wh",
            Unit::KWh => "kWh",
            Unit::MWh => "MWh",
            Unit::GJ => "GJ",
            Unit::MJ => "MJ",
            Unit::CubicMeters => "m³",
            Unit::Liters => "L",
            Unit::Other(s) => s,
        }
    }

    pub(crate) fn is_energy(&self) -> bool {
        matches!(self, Unit::Wh | Unit::KWh | Unit::MWh | Unit::GJ | Unit::MJ)
    }

    pub(crate) fn is_volume(&self) -> bool {
        matches!(self, Unit::CubicMeters | Unit::Liters)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Unit::parse(&s))
    }
}

/// How much the provider trusts a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Measured,
    Estimated,
    Incomplete,
    /// No value for the interval (yet); a later poll may bring one.
    Missing,
}

impl Quality {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Quality::Measured => "measured",
            Quality::Estimated => "estimated",
            Quality::Incomplete => "incomplete",
            Quality::Missing => "missing",
        }
    }
}

/// How the last call to a meter's API went, as sinks show it (`api_status` on the state topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiStatus {
    Ok,
    AuthError,
    RateLimited,
    Unavailable,
    Error,
}

impl ApiStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiStatus::Ok => "ok",
            ApiStatus::AuthError => "auth_error",
            ApiStatus::RateLimited => "rate_limited",
            ApiStatus::Unavailable => "unavailable",
            ApiStatus::Error => "error",
        }
    }
}

/// What Home Assistant shows about the physical device behind a meter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub suggested_area: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// Provider kind, e.g. `eloverblik`; part of every topic and unique id.
    pub provider: String,
    /// Unique within the provider (a GSRN metering point id, an Enectiva meter id).
    pub id: String,
    pub name: String,
    pub medium: Medium,
    pub direction: Direction,
    pub unit: Unit,
    /// Register (cumulative) meters report a running total beside each interval's consumption.
    pub cumulative: bool,
    /// The zone whose calendar days make the meter's day totals.
    pub timezone: Tz,
    pub device: DeviceInfo,
}

/// One interval of consumption or production. `value` is `None` only when `quality` is `Missing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalReading {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub value: Option<f64>,
    pub unit: Unit,
    pub quality: Quality,
    /// The register value at `end`, for cumulative meters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<f64>,
}

pub(crate) fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        // Providers send decimal strings with at most a few decimals; 1e-9 absorbs float noise only.
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        _ => false,
    }
}

/// A value a provider offers beside interval data: a tariff, a monthly total, a register reading.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValue {
    /// Stable key, part of the entity's unique id (`[a-z0-9_]`).
    pub key: String,
    pub name: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub kind: ValueKind,
    /// Extra detail shown as entity attributes (e.g. the 24 hourly prices of a tariff).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// When the value changes by the clock (a price per quarter hour): the value of each
    /// interval, sorted. Sinks show the interval's value that holds now, kept current between
    /// polls; empty for values that change only when a poll reads them.
    pub timetable: Vec<TimedValue>,
    /// Set when the value is not the meter's own but a public one that meters share (the CO2
    /// intensity of a price area): it is shown once, on a device of its own.
    pub shared: Option<SharedSource>,
}

/// A public series that meters share, shown as a device of its own (`Energi Data Service DK1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSource {
    /// Where it comes from (`energidataservice`): the first part of its topics and ids.
    pub(crate) source: String,
    /// Which one of that source (`DK1`).
    pub(crate) id: String,
    /// The device's name.
    pub(crate) name: String,
    pub(crate) manufacturer: String,
}

/// One value of a [`MeterValue::timetable`], valid over `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimedValue {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) value: f64,
}

impl MeterValue {
    /// The value at `now`: the timetable's entry when there is a timetable (`None` outside it),
    /// else [`MeterValue::value`].
    pub(crate) fn value_at(&self, now: DateTime<Utc>) -> Option<f64> {
        if self.timetable.is_empty() {
            return self.value;
        }
        self.timetable
            .iter()
            .find(|t| t.start <= now && now < t.end)
            .map(|t| t.value)
    }

    /// When the value shown next changes by the clock: the next timetable boundary after `now`.
    pub(crate) fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timetable
            .iter()
            .flat_map(|t| [t.start, t.end])
            .filter(|t| *t > now)
            .min()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A register total that only grows (Home Assistant `total_increasing`).
    Register,
    /// Consumption over a calendar period (a month): shown, never fed to statistics.
    PeriodTotal,
    /// A price per unit (DKK/kWh).
    Price,
    /// An amount of money per period (a subscription).
    Monetary,
    /// A quantity that holds now and is averaged over time, not money (the grid's CO2
    /// intensity).
    Measurement,
    Other,
}

/// What a price series is for: what the meter's quantity cost, or what it earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricePurpose {
    /// The price paid per unit consumed (all-in: energy, grid tariffs, taxes, VAT).
    Cost,
    /// The price received per unit produced.
    Compensation,
}

/// One price, valid over `[start, end)`, per unit of the series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price: f64,
}

/// Prices over time for one meter, as a provider knows them: piecewise constant, sorted and
/// non-overlapping. A gap means the price of that time is not known (yet). Provider-neutral:
/// the statistics sink multiplies readings by it without knowing where prices come from.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSeries {
    /// ISO 4217, e.g. `DKK`.
    pub currency: String,
    /// The unit the prices are per, e.g. kWh.
    pub per_unit: Unit,
    pub purpose: PricePurpose,
    pub points: Vec<PricePoint>,
}

impl PriceSeries {
    /// The time-weighted mean price over `[start, end)`: a quantity used evenly over the interval
    /// pays each price for its share. `None` when any part of the interval has no price.
    pub(crate) fn mean_price(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<f64> {
        let points = &self.points;
        if end <= start {
            return None;
        }
        let mut at = start;
        let mut weighted = 0.0;
        let first = points.partition_point(|p| p.end <= start);
        for p in &points[first..] {
            if p.start >= end {
                break;
            }
            if p.start > at {
                return None;
            }
            let until = p.end.min(end);
            weighted += p.price * (until - at).num_milliseconds() as f64;
            at = until;
            if at >= end {
                break;
            }
        }
        (at >= end).then(|| weighted / (end - start).num_milliseconds() as f64)
    }
}

/// The first instant of `day` in `tz`: local midnight, or (in zones whose DST change skips
/// midnight) the first hour that exists.
pub(crate) fn local_midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    (0..4)
        .filter_map(|hour| tz.from_local_datetime(&day.and_hms_opt(hour, 0, 0)?).earliest())
        .map(|t| t.with_timezone(&Utc))
        .next()
        .unwrap_or_else(|| day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

/// A half-open UTC time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        TimeRange { start, end }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} .. {}", self.start.to_rfc3339(), self.end.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_spelled_as_home_assistant_does() {
        assert_eq!(Unit::parse("KWH").as_str(), "kWh");
        assert_eq!(Unit::parse("m3").as_str(), "m³");
        assert_eq!(Unit::parse("l").as_str(), "L");
        assert_eq!(Unit::parse("GJ").as_str(), "GJ");
        assert_eq!(Unit::parse("MWh").as_str(), "MWh");
        assert_eq!(Unit::parse("furlongs"), Unit::Other("furlongs".into()));
    }

    #[test]
    fn local_midnight_on_dst_days() {
        let cph = chrono_tz::Europe::Copenhagen;
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            local_midnight(d(2024, 3, 31), cph).to_rfc3339(),
            "2024-03-30T23:00:00+00:00"
        );
        assert_eq!(
            local_midnight(d(2024, 4, 1), cph).to_rfc3339(),
            "2024-03-31T22:00:00+00:00"
        );
        assert_eq!(
            local_midnight(d(2024, 10, 28), cph).to_rfc3339(),
            "2024-10-27T23:00:00+00:00"
        );
        // Santiago skips 00:00 on 8 September 2024: the day starts at 01:00 local (04:00 UTC).
        assert_eq!(
            local_midnight(d(2024, 9, 8), chrono_tz::America::Santiago).to_rfc3339(),
            "2024-09-08T04:00:00+00:00"
        );
    }
}
