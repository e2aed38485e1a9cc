//! The attributes of the price-like sensors (Price, Spot price, CO2 intensity) in the shape that
//! Home Assistant's price tools read: the Nordpool integration's `raw_today` / `raw_tomorrow`
//! (`start`, `end`, `value`), `today` / `tomorrow` number lists, `tomorrow_valid`,
//! `current_price`, `average` / `min` / `max`, plus the Energi Data Service integration's
//! `hour` / `price` keys, `today_min` / `today_max` objects and `today_mean`. Chart cards,
//! cheapest-hours macros and EV or battery planners then work on them unchanged.
//!
//! Home Assistant's recorder drops an entity's attributes above 16 KiB (with a warning). Hourly
//! lists carry every key (about 9 KiB for a 25-hour day and its next day); quarter-hour lists
//! carry `start` and `value` only (the slot's end is `start` + 15 minutes), which keeps two days
//! of quarters (up to 196 slots) near 12 KiB (tested below and on the published payloads).

use chrono::{DateTime, Days, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{PriceArea, TZ};
use crate::model::{local_midnight, MeterValue, TimedValue, ValueKind};

/// How long a price sensor's slots are: `hour` (Danish grid tariffs are hourly and most
/// households are billed by the hour) or `quarter` (the day-ahead market's own 15 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceResolution {
    Hour,
    Quarter,
}

impl PriceResolution {
    pub(crate) fn length(self) -> Duration {
        match self {
            PriceResolution::Hour => Duration::hours(1),
            PriceResolution::Quarter => Duration::minutes(15),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PriceResolution::Hour => "hour",
            PriceResolution::Quarter => "quarter",
        }
    }
}

/// One slot of a sensor: its value and, for the Price sensor, the parts named by
/// [`Shape::parts`] (spot, tariffs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) value: f64,
    pub(crate) parts: Vec<f64>,
}

/// What a sensor says about its slots beyond the numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) region: PriceArea,
    /// `None` for a quantity that is not money (CO2).
    pub(crate) currency: Option<&'static str>,
    /// A second name for `value` in each slot (`price` on the Price sensor, as the Energi Data
    /// Service integration names it).
    pub(crate) value_alias: Option<&'static str>,
    /// The names of [`Slot::parts`], in order.
    pub(crate) parts: &'static [&'static str],
    pub(crate) resolution: PriceResolution,
}

/// Values are rounded to 4 decimals: 0.01 øre, finer than any price list.
pub(crate) fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Slots of `span` (an hour, a quarter) from shorter ones: each one's value and parts are the
/// time-weighted mean of the slots within it. One the slots do not cover completely is left out
/// (its mean would be the mean of a part). Slots of `span` or longer pass unchanged.
pub(crate) fn means(slots: &[Slot], span: Duration) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    let mut covered: Vec<i64> = Vec::new();
    for slot in slots {
        let slot_length = slot.end - slot.start;
        if slot_length >= span {
            out.push(slot.clone());
            covered.push(slot_length.num_seconds());
            continue;
        }
        // Danish offsets are whole hours, so a UTC hour or quarter is a local one.
        let start = slot.start.duration_trunc(span).unwrap_or(slot.start);
        let weight = slot_length.num_seconds() as f64 / span.num_seconds() as f64;
        match out.last_mut() {
            Some(last) if last.start == start => {
                last.value += slot.value * weight;
                for (sum, part) in last.parts.iter_mut().zip(&slot.parts) {
                    *sum += part * weight;
                }
                *covered.last_mut().expect("one per slot") += slot_length.num_seconds();
            }
            _ => {
                out.push(Slot {
                    start,
                    end: start + span,
                    value: slot.value * weight,
                    parts: slot.parts.iter().map(|p| p * weight).collect(),
                });
                covered.push(slot_length.num_seconds());
            }
        }
    }
    out.into_iter()
        .zip(covered)
        .filter(|(slot, seconds)| *seconds >= (slot.end - slot.start).num_seconds())
        .map(|(slot, _)| slot)
        .collect()
}

/// The slots at `resolution`: means of an hour or of a quarter (shorter slots, such as 5-minute
/// CO2 rows, are averaged; quarters stay as they are).
pub(crate) fn at_resolution(slots: &[Slot], resolution: PriceResolution) -> Vec<Slot> {
    means(slots, resolution.length())
}

/// The sensor's timetable: each slot's rounded value, so the state follows the clock.
pub(crate) fn timetable(slots: &[Slot]) -> Vec<TimedValue> {
    slots
        .iter()
        .map(|s| TimedValue {
            start: s.start,
            end: s.end,
            value: round(s.value),
        })
        .collect()
}

/// A sensor over `slots` that follows the clock: the slot of now is its value (its timetable),
/// the attributes above.
pub(crate) fn timed_sensor(
    key: &str,
    name: &str,
    unit: &str,
    slots: &[Slot],
    now: DateTime<Utc>,
    shape: &Shape,
) -> MeterValue {
    let mut value = MeterValue {
        key: key.into(),
        name: name.into(),
        value: None,
        unit: Some(unit.into()),
        kind: ValueKind::Price,
        attributes: Map::new(),
        timetable: timetable(slots),
        shared: None,
    };
    value.value = value.value_at(now);
    value.attributes = attributes(slots, now, value.value, shape);
    value
}

/// The attributes of a sensor over `slots` (today's and tomorrow's, at the sensor's
/// resolution), with `current` as `current_price` (the caller's state; the MQTT sink keeps it
/// current between polls).
pub(crate) fn attributes(
    slots: &[Slot],
    now: DateTime<Utc>,
    current: Option<f64>,
    shape: &Shape,
) -> Map<String, Value> {
    let today = now.with_timezone(&TZ).date_naive();
    let tomorrow = today + Days::new(1);
    let day = |d| (local_midnight(d, TZ), local_midnight(d + Days::new(1), TZ));
    let within = |(from, to): (DateTime<Utc>, DateTime<Utc>)| -> Vec<&Slot> {
        slots.iter().filter(|s| from <= s.start && s.start < to).collect()
    };
    let today_slots = within(day(today));
    let mut tomorrow_slots = within(day(tomorrow));
    // Tools plan on a whole day: a day not published completely is not shown at all.
    let tomorrow_valid = covers(&tomorrow_slots, day(tomorrow));
    if !tomorrow_valid {
        tomorrow_slots.clear();
    }
    let values = |list: &[&Slot]| -> Vec<Value> { list.iter().map(|s| json!(round(s.value))).collect() };
    let raw = |list: &[&Slot]| -> Vec<Value> { list.iter().map(|s| raw_slot(s, shape)).collect() };

    let mut m = Map::new();
    m.insert("current_price".into(), json!(current.map(round)));
    let numbers: Vec<f64> = today_slots.iter().map(|s| s.value).collect();
    let extreme = |pick: fn(f64, f64) -> bool| {
        today_slots
            .iter()
            .copied()
            .reduce(|best, s| if pick(s.value, best.value) { s } else { best })
    };
    let (lowest, highest) = (extreme(|a, b| a < b), extreme(|a, b| a > b));
    let mean = (!numbers.is_empty()).then(|| round(numbers.iter().sum::<f64>() / numbers.len() as f64));
    m.insert("average".into(), json!(mean));
    m.insert("min".into(), json!(lowest.map(|s| round(s.value))));
    m.insert("max".into(), json!(highest.map(|s| round(s.value))));
    let at = |s: Option<&Slot>| {
        s.map_or(
            Value::Null,
            |s| json!({ "hour": local(s.start), "price": round(s.value) }),
        )
    };
    m.insert("today_min".into(), at(lowest));
    m.insert("today_max".into(), at(highest));
    m.insert("today_mean".into(), json!(mean));
    m.insert("unit".into(), json!("kWh"));
    if let Some(currency) = shape.currency {
        m.insert("currency".into(), json!(currency));
    }
    m.insert("region".into(), json!(shape.region.as_str()));
    m.insert("price_in_cents".into(), json!(false));
    m.insert("use_cent".into(), json!(false));
    m.insert("resolution".into(), json!(shape.resolution.as_str()));
    m.insert("tomorrow_valid".into(), json!(tomorrow_valid));
    m.insert("today".into(), Value::Array(values(&today_slots)));
    m.insert("tomorrow".into(), Value::Array(values(&tomorrow_slots)));
    m.insert("raw_today".into(), Value::Array(raw(&today_slots)));
    m.insert("raw_tomorrow".into(), Value::Array(raw(&tomorrow_slots)));
    m
}

/// One slot of `raw_today` / `raw_tomorrow`: every key hourly, `start` and `value` per quarter.
fn raw_slot(slot: &Slot, shape: &Shape) -> Value {
    let mut m = Map::new();
    m.insert("start".into(), json!(local(slot.start)));
    if shape.resolution == PriceResolution::Hour {
        m.insert("end".into(), json!(local(slot.end)));
    }
    m.insert("value".into(), json!(round(slot.value)));
    if shape.resolution == PriceResolution::Hour {
        m.insert("hour".into(), json!(local(slot.start)));
        if let Some(alias) = shape.value_alias {
            m.insert(alias.into(), json!(round(slot.value)));
        }
        for (name, part) in shape.parts.iter().zip(&slot.parts) {
            m.insert((*name).into(), json!(round(*part)));
        }
    }
    Value::Object(m)
}

/// Whether `slots` run from the day's start to its end without a gap.
fn covers(slots: &[&Slot], (from, to): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    let mut at = from;
    for s in slots {
        if s.start != at {
            return false;
        }
        at = s.end;
    }
    at == to
}

/// Local Danish time with its offset, as the tools parse it.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&TZ).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn quarters(from: DateTime<Utc>, count: i64, value: impl Fn(i64) -> f64) -> Vec<Slot> {
        (0..count)
            .map(|q| Slot {
                start: from + Duration::minutes(15 * q),
                end: from + Duration::minutes(15 * (q + 1)),
                value: value(q),
                parts: vec![value(q) / 2.0, 0.5],
            })
            .collect()
    }

    /// Home Assistant's recorder keeps an entity's attributes only up to this many bytes (its
    /// `MAX_STATE_ATTRS_BYTES`), serialised as compact JSON.
    const MAX_ATTRIBUTES: usize = 16 * 1024;

    fn hourly(slots: &[Slot]) -> Vec<Slot> {
        means(slots, Duration::hours(1))
    }

    const SHAPE: Shape = Shape {
        region: PriceArea::DK1,
        currency: Some("DKK"),
        value_alias: Some("price"),
        parts: &["spot", "tariffs"],
        resolution: PriceResolution::Hour,
    };

    #[test]
    fn an_hour_is_the_time_weighted_mean_of_its_quarters_and_a_partial_hour_is_left_out() {
        let at = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let hours = hourly(&quarters(at, 7, |q| q as f64));
        assert_eq!(hours.len(), 1, "the second hour has 3 of 4 quarters");
        assert_eq!(hours[0].start, at);
        assert_eq!(hours[0].end, at + Duration::hours(1));
        assert_eq!(hours[0].value, 1.5);
        assert_eq!(hours[0].parts, vec![0.75, 0.5]);
    }

    #[test]
    fn tomorrow_is_shown_only_when_it_is_complete() {
        // 26 October 2025 has 25 hours; local midnight is 22:00 UTC the day before.
        let midnight = Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap();
        let now = midnight + Duration::hours(13);
        let next = Utc.with_ymd_and_hms(2025, 10, 26, 23, 0, 0).unwrap();
        let mut all = quarters(midnight, 100, |q| (q % 7) as f64 * 0.1);
        all.extend(quarters(next, 95, |_| 1.0));
        let m = attributes(&hourly(&all), now, Some(0.3), &SHAPE);
        assert_eq!(m["today"].as_array().unwrap().len(), 25);
        assert_eq!(
            m["tomorrow_valid"],
            json!(false),
            "one quarter short: the last hour is out"
        );
        assert_eq!(m["raw_tomorrow"], json!([]));
        assert_eq!(m["raw_today"][2]["start"], json!("2025-10-26T02:00:00+02:00"));
        assert_eq!(m["raw_today"][3]["start"], json!("2025-10-26T02:00:00+01:00"));
        assert_eq!(m["raw_today"][0]["price"], m["raw_today"][0]["value"]);
        all.extend(quarters(next + Duration::minutes(95 * 15), 1, |_| 1.0));
        let m = attributes(&hourly(&all), now, Some(0.3), &SHAPE);
        assert_eq!(m["tomorrow_valid"], json!(true));
        assert_eq!(m["tomorrow"].as_array().unwrap().len(), 24);
    }

    #[test]
    fn extremes_name_their_hour_and_quarters_carry_start_and_value_only() {
        let midnight = Utc.with_ymd_and_hms(2025, 11, 25, 23, 0, 0).unwrap();
        let slots = quarters(midnight, 96, |q| if q == 9 { -0.25 } else { 0.1 + q as f64 / 1000.0 });
        let shape = Shape {
            resolution: PriceResolution::Quarter,
            ..SHAPE
        };
        let m = attributes(&slots, midnight, None, &shape);
        assert_eq!(
            m["today_min"],
            json!({"hour": "2025-11-26T02:15:00+01:00", "price": -0.25})
        );
        assert_eq!(m["today_max"]["price"], json!(0.195));
        assert_eq!(m["min"], json!(-0.25));
        assert_eq!(
            m["raw_today"][1],
            json!({"start": "2025-11-26T00:15:00+01:00", "value": 0.101})
        );
        assert_eq!(m["current_price"], Value::Null);
    }

    /// The largest day pair: a 25-hour day and a 24-hour one, every value at its longest
    /// (negative, four decimals).
    fn longest_pair(resolution: PriceResolution) -> Map<String, Value> {
        let midnight = Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap();
        let slots: Vec<Slot> = quarters(midnight, 196, |q| -10.0 - q as f64 / 1e4 - 0.00001);
        let shape = Shape { resolution, ..SHAPE };
        let slots = at_resolution(&slots, resolution);
        let mut m = attributes(&slots, midnight + Duration::hours(13), Some(-10.1234), &shape);
        m.insert("vat_included".into(), json!(true));
        m
    }

    #[test]
    fn two_days_of_quarters_or_hours_fit_the_recorder() {
        for resolution in [PriceResolution::Quarter, PriceResolution::Hour] {
            let m = longest_pair(resolution);
            assert_eq!(m["tomorrow_valid"], json!(true), "{resolution:?}");
            let bytes = serde_json::to_vec(&m).unwrap().len();
            assert!(bytes <= MAX_ATTRIBUTES, "{resolution:?}: {bytes} bytes");
        }
        // With every key on every quarter, it would not.
        let m = longest_pair(PriceResolution::Quarter);
        let every_key: Vec<Value> = m["raw_today"]
            .as_array()
            .unwrap()
            .iter()
            .map(|slot| {
                json!({"start": slot["start"], "end": slot["start"], "value": slot["value"], "hour": slot["start"],
                       "price": slot["value"], "spot": slot["value"], "tariffs": slot["value"]})
            })
            .collect();
        let doubled = json!({"raw_today": every_key, "raw_tomorrow": every_key});
        assert!(serde_json::to_vec(&doubled).unwrap().len() > MAX_ATTRIBUTES);
    }
}
