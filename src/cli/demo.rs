//! `meter2mqtt demo`: the real bridge over built-in sample data, an embedded broker on
//! localhost, and a subscriber that looks at the result the way Home Assistant would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{logging, DemoArgs, EXIT_FAILURE};
use crate::bridge::{Bridge, BridgeEvent};
use crate::broker::{BrokerOptions, EmbeddedBroker};
use crate::config::{Config, SampleAccount};
use crate::mqtt::{MqttHandle, MqttSettings};
use crate::state::StateStore;

const DEMO_START: (i32, u32, u32) = (2024, 10, 22);

pub async fn demo(args: DemoArgs, log: logging::Overrides) -> u8 {
    logging::init(
        &Default::default(),
        &logging::Overrides {
            level: log.level.or(Some("warn".into())),
            format: log.format,
        },
    );
    match run_demo(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("meter2mqtt demo: {e}");
            EXIT_FAILURE
        }
    }
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    let broker = EmbeddedBroker::start(&format!("127.0.0.1:{}", args.port), BrokerOptions::default())
        .await
        .map_err(|e| format!("cannot start the embedded broker on 127.0.0.1:{}: {e}", args.port))?;
    let state_dir = std::env::temp_dir().join(format!("meter2mqtt-demo-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(state_dir.clone());

    let start = NaiveDate::from_ymd_opt(DEMO_START.0, DEMO_START.1, DEMO_START.2).expect("valid date");
    let mut config = Config::default();
    config.mqtt.host = "127.0.0.1".into();
    config.mqtt.port = broker.port();
    config.mqtt.client_id = "meter2mqtt-demo".into();
    config.bridge.history_start = Some(start);
    config.bridge.jitter = Duration::ZERO;
    config.state.dir = state_dir.clone();
    config.sample = vec![SampleAccount {
        name: Some("demo".into()),
        start: Some(start),
        days: Some(7),
        ..SampleAccount::default()
    }];

    println!("meter2mqtt {} demo", env!("CARGO_PKG_VERSION"));
    println!("  embedded MQTT broker on 127.0.0.1:{}", broker.port());
    println!(
        "  sample data: 2 meters, hourly, {} .. {} (Europe/Copenhagen; 27 October has 25 hours)",
        start,
        start + chrono::Days::new(6)
    );
    println!();

    let observer = Observer::connect(broker.port(), &config.mqtt.discovery_prefix, &config.mqtt.base_topic).await?;

    let store = StateStore::open(&state_dir).map_err(|e| e.to_string())?;
    let providers = crate::providers::build(&config, &store).map_err(|e| e.to_string())?;
    let mqtt = MqttHandle::start(MqttSettings::from_config(&config.mqtt, Bridge::subscriptions(&config)));
    let bridge = Bridge::new(Arc::new(config.clone()), mqtt.clone(), store, providers);
    let mut events = bridge.events();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(bridge.run(shutdown.clone()));

    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Ok(BridgeEvent::PollFinished { errors, published, .. }) => return Ok((errors, published)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Err("the bridge stopped before finishing its first poll".to_owned()),
            }
        }
    })
    .await
    .map_err(|_| "the first poll did not finish within 60 s".to_owned())??;
    observer.sync().await?;

    let seen = observer.snapshot();
    print_summary(&seen, &config);
    println!("first poll: {} intervals published, {} errors", finished.1, finished.0);

    if args.follow {
        println!(
            "\n--follow: the broker on 127.0.0.1:{} and the bridge keep running (poll every {}); try\n  mosquitto_sub -h 127.0.0.1 -p {} -v -t 'meter2mqtt/#'\nCtrl-C to stop",
            config.mqtt.port,
            humantime::format_duration(config.bridge.poll_interval),
            config.mqtt.port
        );
        tokio::spawn(crate::cli::run::stop_on_signal(shutdown.clone()));
        shutdown.cancelled().await;
    } else {
        shutdown.cancel();
    }
    let _ = running.await;
    mqtt.shutdown().await;
    observer.sync().await?;
    let availability = observer
        .snapshot()
        .retained
        .get(&format!("{}/bridge/availability", config.mqtt.base_topic))
        .cloned();
    println!(
        "bridge availability after shutdown: {}",
        availability.as_deref().unwrap_or("(none)")
    );
    broker.stop();
    Ok(())
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default, Clone)]
pub(crate) struct Seen {
    /// Latest retained-or-not payload per topic, as text.
    pub retained: BTreeMap<String, String>,
    /// Every readings message, per topic.
    pub readings: BTreeMap<String, Vec<Value>>,
    marker: u64,
}

/// A subscriber that sees what Home Assistant (or any other client) would.
struct Observer {
    client: AsyncClient,
    seen: Arc<Mutex<Seen>>,
    base: String,
    next_marker: Mutex<u64>,
}

impl Observer {
    async fn connect(port: u16, discovery_prefix: &str, base: &str) -> Result<Self, String> {
        let mut options = MqttOptions::new("meter2mqtt-demo-observer", "127.0.0.1", port);
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client
            .subscribe_many([
                rumqttc::SubscribeFilter::new(format!("{discovery_prefix}/#"), QoS::AtLeastOnce),
                rumqttc::SubscribeFilter::new(format!("{base}/#"), QoS::AtLeastOnce),
            ])
            .await
            .map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let sink = seen.clone();
        let marker_topic = format!("{base}/demo/marker");
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let mut s = sink.lock().expect("observer lock");
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        if p.topic == marker_topic {
                            s.marker = text.parse().unwrap_or(0);
                        } else if p.topic.ends_with("/readings") {
                            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                                s.readings.entry(p.topic.clone()).or_default().push(v);
                            }
                        } else if text.is_empty() {
                            s.retained.remove(&p.topic);
                        } else {
                            s.retained.insert(p.topic.clone(), text);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .map_err(|_| "observer could not subscribe".to_owned())?
            .ok();
        Ok(Observer {
            client,
            seen,
            base: base.to_owned(),
            next_marker: Mutex::new(0),
        })
    }

    /// Round-trips a marker through the broker: everything published before it has arrived.
    async fn sync(&self) -> Result<(), String> {
        let marker = {
            let mut m = self.next_marker.lock().expect("marker lock");
            *m += 1;
            *m
        };
        self.client
            .publish(
                format!("{}/demo/marker", self.base),
                QoS::AtLeastOnce,
                false,
                marker.to_string(),
            )
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..200 {
            if self.seen.lock().expect("observer lock").marker >= marker {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("the observer did not receive its marker back from the broker".into())
    }

    fn snapshot(&self) -> Seen {
        self.seen.lock().expect("observer lock").clone()
    }
}

fn print_summary(seen: &Seen, config: &Config) {
    let prefix = format!("{}/", config.mqtt.discovery_prefix);
    let mut devices: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for (topic, text) in &seen.retained {
        if !(topic.starts_with(&prefix) && topic.ends_with("/config")) {
            continue;
        }
        let Ok(config) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let id = config["device"]["identifiers"][0].as_str().unwrap_or("?").to_owned();
        let entry = devices
            .entry(id)
            .or_insert_with(|| (config["device"].clone(), Vec::new()));
        entry.1.push(config);
    }
    let entity_count: usize = devices.values().map(|(_, e)| e.len()).sum();
    println!(
        "Home Assistant would show {} devices with {} entities:",
        devices.len(),
        entity_count
    );
    // The bridge device first, then meters in name order.
    let mut ordered: Vec<_> = devices.into_iter().collect();
    ordered.sort_by_key(|(_, (device, _))| {
        (
            device.get("via_device").is_some(),
            device["name"].as_str().unwrap_or("").to_owned(),
        )
    });
    for (_, (device, mut entities)) in ordered {
        let name = device["name"].as_str().unwrap_or("?");
        let mut about = vec![];
        for key in ["manufacturer", "model", "serial_number"] {
            if let Some(v) = device[key].as_str() {
                about.push(v.to_owned());
            }
        }
        let via = if device.get("via_device").is_some() {
            "  (via the meter2mqtt bridge)"
        } else {
            ""
        };
        println!("\n  Device: {name}  [{}]{via}", about.join(", "));
        entities.sort_by_key(|e| (e["entity_category"].is_string(), e["name"].as_str().map(str::to_owned)));
        let width = entities
            .iter()
            .map(|e| e["name"].as_str().unwrap_or(name).chars().count())
            .max()
            .unwrap_or(10);
        for entity in &entities {
            let label = entity["name"].as_str().unwrap_or(name);
            let value = render_value(entity, seen);
            let unit = entity["unit_of_measurement"].as_str().unwrap_or("");
            let mut notes = vec![];
            if let Some(c) = entity["device_class"].as_str() {
                notes.push(format!("device_class {c}"));
            }
            if let Some(c) = entity["state_class"].as_str() {
                notes.push(format!("state_class {c}"));
            }
            if entity["entity_category"].as_str() == Some("diagnostic") {
                notes.push("diagnostic".into());
            }
            let id = entity["default_entity_id"].as_str().unwrap_or("?");
            println!(
                "    {label:<width$}  {:>22}  {id}  ({})",
                format!("{value} {unit}").trim_end(),
                notes.join(", ")
            );
        }
    }
    println!();
    for (topic, messages) in &seen.readings {
        print_readings(topic, messages);
    }
}

/// The state Home Assistant would compute: the `value_json.<path>` the template reads.
fn render_value(entity: &Value, seen: &Seen) -> String {
    let Some(topic) = entity["state_topic"].as_str() else {
        return "?".into();
    };
    let Some(payload) = seen.retained.get(topic) else {
        return "unknown".into();
    };
    let Some(template) = entity["value_template"].as_str() else {
        return if Some(payload.as_str()) == entity["payload_on"].as_str() {
            "on".into()
        } else if Some(payload.as_str()) == entity["payload_off"].as_str() {
            "off".into()
        } else {
            payload.clone()
        };
    };
    let Ok(json) = serde_json::from_str::<Value>(payload) else {
        return "unknown".into();
    };
    let Some(at) = template.find("value_json.") else {
        return "?".into();
    };
    let path: String = template[at + "value_json.".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let mut value = &json;
    for key in path.trim_end_matches('.').split('.') {
        value = &value[key];
    }
    // `(value_json.x or 'none')`: the template's own fallback is what Home Assistant shows.
    let fallback = template.split(" or '").nth(1).and_then(|rest| rest.split('\'').next());
    match value {
        Value::Null => fallback.unwrap_or("unknown").into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (entity["suggested_display_precision"].as_u64(), n.as_f64()) {
            (Some(digits), Some(f)) => format!("{f:.*}", digits as usize),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn print_readings(topic: &str, messages: &[Value]) {
    let mut items: Vec<&Value> = messages
        .iter()
        .flat_map(|m| m["readings"].as_array().into_iter().flatten())
        .collect();
    items.sort_by_key(|r| r["start"].as_str().unwrap_or("").to_owned());
    let unit = messages.first().and_then(|m| m["unit"].as_str()).unwrap_or("");
    let total: f64 = items.iter().filter_map(|r| r["value"].as_f64()).sum();
    let corrections = items.iter().filter(|r| r["correction"].as_bool() == Some(true)).count();
    let first = items.first().and_then(|r| r["start"].as_str()).unwrap_or("-");
    let last = items.last().and_then(|r| r["end"].as_str()).unwrap_or("-");
    println!(
        "  {topic}: {} intervals in {} message(s), {first} .. {last}, total {total:.3} {unit}, {corrections} corrections",
        items.len(),
        messages.len()
    );
    let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for r in &items {
        if let Some(start) = r["start"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
            *per_day
                .entry(start.with_timezone(&chrono_tz::Europe::Copenhagen).date_naive())
                .or_default() += 1;
        }
    }
    let days: Vec<String> = per_day
        .iter()
        .map(|(d, n)| format!("{}:{n}", d.format("%m-%d")))
        .collect();
    println!("    hours per local day: {}", days.join(" "));
}
