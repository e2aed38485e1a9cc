//! The live Price, Spot price and CO2 intensity sensors as Home Assistant and the price tools
//! see them: their discovery configs and retained state payloads, on the 25-hour day (26 October
//! 2025) and the 23-hour day (29 March 2026), hourly and quarter-hourly, with tomorrow published.
//! Every attributes payload published must fit Home Assistant's recorder (16 KiB), on a 24-hour
//! day too. `recipes` feeds the same payloads through the key lookups of the price tools.
//!
//! The bridge runs against the fake ElOverblik and Energi Data Service of `cost`, its clock
//! pinned at 14:20 Danish time (tomorrow's prices are out after 13:00).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::cost::{day, day_ahead_rows, fake_eloverblik, home_account, midnight, HOME};
use crate::support::fake_eds::{co2_rows, FakeEds, CO2_FORECAST, CO2_REALISED, DAY_AHEAD, PRICELIST};
use crate::support::{Broker, Collector};

const WAIT: Duration = Duration::from_secs(90);
/// Home Assistant's recorder keeps attributes up to this many bytes (`MAX_STATE_ATTRS_BYTES`).
const RECORDER_LIMIT: usize = 16 * 1024;

/// What the sensors published, by sensor key (`price`, `spot_price`, `co2_intensity`):
/// `{"discovery": ..., "state": ...}`; and the size in bytes of every attributes payload
/// published, by topic.
pub(crate) struct Published {
    pub(crate) sensors: BTreeMap<&'static str, Value>,
    attribute_sizes: BTreeMap<String, usize>,
}

/// The fake Energi Data Service with `today` and tomorrow priced (both areas) and CO2 rows:
/// realised up to `now`, forecast for both days. For 2026 the fixture's Energinet lists, which
/// end with 2025, are continued unchanged.
async fn fake_eds(today: NaiveDate, now: DateTime<Utc>) -> FakeEds {
    let eds = FakeEds::start().await;
    let tomorrow = today.succ_opt().unwrap();
    let after = tomorrow.succ_opt().unwrap();
    if today != day(2025, 10, 26) {
        eds.add(DAY_AHEAD, day_ahead_rows(today));
    }
    eds.add(DAY_AHEAD, day_ahead_rows(tomorrow));
    let continued: Vec<Value> = eds
        .records(PRICELIST)
        .into_iter()
        .filter(|r| r["ValidTo"] == "2026-01-01T00:00:00")
        .map(|mut r| {
            r["ValidFrom"] = json!("2026-01-01T00:00:00");
            r["ValidTo"] = Value::Null;
            r
        })
        .collect();
    eds.add(PRICELIST, continued);
    eds.add(CO2_REALISED, co2_rows(midnight(today), now, -4.0));
    eds.add(CO2_FORECAST, co2_rows(midnight(today), midnight(after), 0.0));
    eds
}

/// Runs one poll at 14:20 Danish time on `today` with `price_resolution`.
pub(crate) async fn publish(today: NaiveDate, resolution: &str) -> Published {
    publish_with(today, json!({ "price_resolution": resolution })).await
}

/// Runs one poll at 14:20 Danish time on `today` with the `settings` of the account.
async fn publish_with(today: NaiveDate, settings: Value) -> Published {
    use meter2mqtt::clock::SharedClock;

    let now = midnight(today) + Span::minutes(14 * 60 + 20);
    let now = if today == day(2025, 10, 26) {
        // The repeated hour makes 14:20 local one hour later after midnight.
        now + Span::hours(1)
    } else if today == day(2026, 3, 29) {
        now - Span::hours(1)
    } else {
        now
    };
    let clock: SharedClock = Arc::new(move || now);
    let broker = Broker::start().await;
    let eloverblik = fake_eloverblik().await;
    let eds = fake_eds(today, now).await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, &dir.path().join("state"));
    let name = format!(
        "sensors-{today}-{}",
        settings.to_string().replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let provider = home_account(&eloverblik, &eds, &config, clock.clone(), settings);
    let collector = Collector::connect(broker.port, &name, &["homeassistant/#", "meter2mqtt/#"], false).await;
    let mut bridge = crate::support::TestBridge::start_at(&config, vec![Arc::new(provider)], vec![], clock);
    bridge.next_poll().await;

    let configs = [
        (
            "price",
            format!("homeassistant/sensor/meter2mqtt_eloverblik_{HOME}_price/config"),
        ),
        (
            "spot_price",
            format!("homeassistant/sensor/meter2mqtt_eloverblik_{HOME}_spot_price/config"),
        ),
        (
            "co2_intensity",
            "homeassistant/sensor/meter2mqtt_energidataservice_dk1_co2_intensity/config".to_owned(),
        ),
    ];
    let mut sensors = BTreeMap::new();
    for (key, topic) in configs {
        collector
            .wait_until(WAIT, &format!("the {key} config"), |m| {
                m.iter().any(|m| m.topic == topic && !m.payload.is_empty())
            })
            .await;
        let discovery: Value = serde_json::from_str(&collector.on(&topic).pop().unwrap().payload).unwrap();
        let state_topic = discovery["state_topic"].as_str().unwrap().to_owned();
        collector
            .wait_until(WAIT, &format!("the {key} state"), |m| {
                m.iter().any(|m| m.topic == state_topic)
            })
            .await;
        let state: Value = serde_json::from_str(&collector.on(&state_topic).pop().unwrap().payload).unwrap();
        sensors.insert(key, json!({ "discovery": discovery, "state": state }));
    }
    bridge.stop().await;

    let mut attribute_sizes = BTreeMap::new();
    for message in collector.messages() {
        let Ok(body) = serde_json::from_str::<Value>(&message.payload) else {
            continue;
        };
        let mut sizes = Vec::new();
        if let Some(attributes) = body.get("attributes") {
            sizes.push(serde_json::to_vec(attributes).unwrap().len());
        }
        for extra in body
            .get("extras")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|e| e.values())
        {
            sizes.push(serde_json::to_vec(&extra["attributes"]).unwrap().len());
        }
        if let Some(largest) = sizes.into_iter().max() {
            let size = attribute_sizes.entry(message.topic.clone()).or_insert(0);
            *size = largest.max(*size);
        }
    }
    Published {
        sensors,
        attribute_sizes,
    }
}

fn redacted(sensors: &BTreeMap<&'static str, Value>) -> Value {
    let mut out = json!(sensors);
    for sensor in out.as_object_mut().unwrap().values_mut() {
        for field in ["origin", "device"] {
            if let Some(v) = sensor["discovery"][field].get_mut("sw_version") {
                *v = json!("[version]");
            }
        }
    }
    out
}

/// Slots and sizes of one scenario, with the sizes printed for the closing note
/// (`cargo test --test it price_sensors -- --nocapture`).
fn check(name: &str, published: &Published, slots_today: usize, slots_tomorrow: usize) {
    for key in ["price", "spot_price", "co2_intensity"] {
        let attributes = &published.sensors[key]["state"]["attributes"];
        assert_eq!(
            attributes["today"].as_array().unwrap().len(),
            slots_today,
            "{name} {key}"
        );
        assert_eq!(
            attributes["raw_today"].as_array().unwrap().len(),
            slots_today,
            "{name} {key}"
        );
        assert_eq!(
            attributes["tomorrow"].as_array().unwrap().len(),
            slots_tomorrow,
            "{name} {key}"
        );
        assert_eq!(attributes["tomorrow_valid"], json!(true), "{name} {key}");
    }
    for (topic, size) in &published.attribute_sizes {
        println!("{name}: {topic}: attributes {size} bytes");
        assert!(
            *size <= RECORDER_LIMIT,
            "{name}: the attributes on {topic} are {size} bytes, over the recorder's {RECORDER_LIMIT}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_the_25_hour_day_hourly() {
    let published = publish(day(2025, 10, 26), "hour").await;
    check("25-hour day, hourly", &published, 25, 24);
    insta::assert_json_snapshot!("sensors_25_hour_day_hourly", redacted(&published.sensors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_the_25_hour_day_quarter_hourly() {
    let published = publish(day(2025, 10, 26), "quarter").await;
    check("25-hour day, quarter-hourly", &published, 100, 96);
    insta::assert_json_snapshot!("sensors_25_hour_day_quarter", redacted(&published.sensors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_the_23_hour_day_hourly() {
    let published = publish(day(2026, 3, 29), "hour").await;
    check("23-hour day, hourly", &published, 23, 24);
    insta::assert_json_snapshot!("sensors_23_hour_day_hourly", redacted(&published.sensors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_the_23_hour_day_quarter_hourly() {
    let published = publish(day(2026, 3, 29), "quarter").await;
    check("23-hour day, quarter-hourly", &published, 92, 96);
    insta::assert_json_snapshot!("sensors_23_hour_day_quarter", redacted(&published.sensors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_a_24_hour_day_fit_the_recorder() {
    let today = day(2025, 11, 26);
    check("24-hour day, hourly", &publish(today, "hour").await, 24, 24);
    check("24-hour day, quarter-hourly", &publish(today, "quarter").await, 96, 96);
}

/// Without `price_resolution` the price sensors take their point's resolution (the consumption
/// point reads hourly) and the CO2 sensor, one per area, the account's finest (the production
/// point reads per quarter hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_prices_follow_their_point_and_co2_the_finest_point() {
    let published = publish_with(day(2025, 10, 26), json!({ "metering_points": [] })).await;
    let slots = |key: &str| {
        published.sensors[key]["state"]["attributes"]["raw_today"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(slots("price"), 25);
    assert_eq!(slots("spot_price"), 25);
    assert_eq!(slots("co2_intensity"), 100);
}
