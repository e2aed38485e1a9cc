//! docs/recipes.md against what the bridge publishes: the Price, Spot price and CO2 intensity
//! attributes (hourly and quarter-hourly, on the 25- and 23-hour days) go through the key
//! lookups the tools make, as their documentation and sources describe them (written here, not
//! taken from them):
//! - apexcharts-card `data_generator`: `raw_today` + `raw_tomorrow`, `new Date(slot.start)` and
//!   `slot.value`;
//! - TheFes cheapest-energy-hours: `attr_today` / `attr_tomorrow` with `time_key` and
//!   `value_key`, the slot length from consecutive start times;
//! - ev_smart_charging: `current_price` a number; the first of `prices_today` / `raw_today`;
//!   the start key the first of `start` / `time` / `hour`, the price key the first of `price` /
//!   `value`; hourly or 15-minute data by the minutes between the first two slots' starts; at
//!   least 13 slots.
//!
//! The page must use the keys and entity ids checked here.

use chrono::{DateTime, FixedOffset, NaiveDate, Timelike};
use serde_json::Value;

use crate::cost::day;
use crate::price_sensors::{publish, Published};

const SENSORS: [&str; 3] = ["price", "spot_price", "co2_intensity"];

fn recipes() -> String {
    let path = format!("{}/docs/recipes.md", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// ISO 8601 with an offset, as JavaScript's `Date` and Python's `fromisoformat` read it.
fn time(raw: &Value) -> DateTime<FixedOffset> {
    let text = raw.as_str().unwrap_or_else(|| panic!("{raw} is no text"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn slots<'a>(attributes: &'a Value, today: &str, tomorrow: &str) -> Vec<&'a Value> {
    [today, tomorrow]
        .iter()
        .flat_map(|key| attributes[*key].as_array().unwrap_or_else(|| panic!("no list {key}")))
        .collect()
}

/// apexcharts-card: `[...raw_today, ...raw_tomorrow].map((slot) => [new Date(slot.start).getTime(), slot.value])`.
fn apexcharts(attributes: &Value) -> Vec<(i64, f64)> {
    slots(attributes, "raw_today", "raw_tomorrow")
        .into_iter()
        .map(|slot| (time(&slot["start"]).timestamp_millis(), slot["value"].as_f64().unwrap()))
        .collect()
}

/// cheapest-energy-hours: the slot length in minutes, from the first two starts, and the start
/// of the cheapest `hours`-long block.
fn cheapest_hours(attributes: &Value, time_key: &str, value_key: &str, hours: i64) -> (i64, DateTime<FixedOffset>) {
    let items: Vec<(DateTime<FixedOffset>, f64)> = slots(attributes, "raw_today", "raw_tomorrow")
        .into_iter()
        .map(|slot| (time(&slot[time_key]), slot[value_key].as_f64().expect("a number")))
        .collect();
    let minutes = (items[1].0 - items[0].0).num_minutes();
    let width = (hours * 60 / minutes) as usize;
    let best = items
        .windows(width)
        .min_by(|a, b| {
            let sum = |w: &[(DateTime<FixedOffset>, f64)]| w.iter().map(|(_, v)| v).sum::<f64>();
            sum(a).total_cmp(&sum(b))
        })
        .expect("a block");
    (minutes, best[0].0)
}

/// ev_smart_charging's generic lookup: the slot length in minutes and the prices.
fn ev_smart_charging(attributes: &Value) -> Result<(u32, Vec<f64>), String> {
    if !attributes["current_price"].is_number() {
        return Err("current_price is not a number".into());
    }
    let list = ["prices_today", "raw_today"]
        .iter()
        .find_map(|key| attributes.get(*key))
        .and_then(Value::as_array)
        .ok_or("no price list")?;
    let first = list.first().ok_or("empty")?;
    let start_key = ["start", "time", "hour"]
        .into_iter()
        .find(|k| first.get(*k).is_some())
        .ok_or("no start key")?;
    let value_key = ["price", "value"]
        .into_iter()
        .find(|k| first.get(*k).is_some())
        .ok_or("no price key")?;
    let minutes = match time(&list[1][start_key]).minute() as i64 - time(&first[start_key]).minute() as i64 {
        0 => 60,
        15 => 15,
        other => return Err(format!("a periodicity of {other} minutes is not supported")),
    };
    if list.len() <= 12 {
        return Err("12 slots or fewer".into());
    }
    let prices = list.iter().map(|s| s[value_key].as_f64().unwrap()).collect();
    Ok((minutes, prices))
}

fn numbers(attributes: &Value, key: &str) -> Vec<f64> {
    attributes[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn check(published: &Published, minutes: i64, name: &str) {
    let page = recipes();
    for key in SENSORS {
        let sensor = &published.sensors[key];
        let attributes = &sensor["state"]["attributes"];
        let what = format!("{name}, {key}");
        let all: Vec<f64> = [numbers(attributes, "today"), numbers(attributes, "tomorrow")].concat();

        let series = apexcharts(attributes);
        assert_eq!(series.iter().map(|(_, v)| *v).collect::<Vec<_>>(), all, "{what}");
        assert!(
            series.windows(2).all(|w| w[1].0 - w[0].0 == minutes * 60_000),
            "{what}: gaps or overlaps"
        );

        let (slot_minutes, best) = cheapest_hours(attributes, "start", "value", 3);
        assert_eq!(slot_minutes, minutes, "{what}");
        assert!(series.iter().any(|(t, _)| *t == best.timestamp_millis()), "{what}");

        let (periodicity, prices) = ev_smart_charging(attributes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(periodicity as i64, minutes, "{what}");
        assert_eq!(prices, numbers(attributes, "today"), "{what}");

        if minutes == 60 {
            // Snippets written for the Energi Data Service integration's keys.
            let hours = slots(attributes, "raw_today", "raw_tomorrow");
            assert!(hours.iter().all(|s| s["hour"] == s["start"]), "{what}");
            if key == "price" {
                assert!(hours.iter().all(|s| s["price"] == s["value"]), "{what}");
                let (_, best_by_price) = cheapest_hours(attributes, "hour", "price", 3);
                assert_eq!(best_by_price, best, "{what}");
            }
        }
        let entity = sensor["discovery"]["default_entity_id"].as_str().unwrap();
        assert!(page.contains(entity), "docs/recipes.md does not name {entity}");
    }
    for used in [
        "slot.start",
        "slot.value",
        "attr_today='raw_today', attr_tomorrow='raw_tomorrow'",
        "time_key='start', value_key='value'",
    ] {
        assert!(page.contains(used), "docs/recipes.md does not use {used:?}");
    }
}

async fn scenario(today: NaiveDate, resolution: &str, minutes: i64) {
    let published = publish(today, resolution).await;
    check(&published, minutes, &format!("{today} {resolution}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_read_the_published_attributes_hourly_and_quarter_hourly() {
    scenario(day(2025, 10, 26), "hour", 60).await;
    scenario(day(2025, 10, 26), "quarter", 15).await;
    scenario(day(2026, 3, 29), "hour", 60).await;
    scenario(day(2026, 3, 29), "quarter", 15).await;
}
