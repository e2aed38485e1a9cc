//! The sinks' settings from the configuration, and the MQTT side started from them: what `run`,
//! `demo` and the tests' bridge share. The sinks take settings, not the [`Config`], so that they
//! know nothing of how it is read.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::mqtt::{MqttHandle, MqttSettings, MqttSinkSettings, MqttSinks, Topics};
use crate::state::StateStore;

pub(crate) fn topics(config: &Config) -> Topics {
    Topics::new(&config.mqtt.base_topic, &config.mqtt.discovery_prefix)
}

/// The broker connection: where, who, and the topics the sink needs.
pub(crate) fn mqtt_settings(config: &Config) -> MqttSettings {
    let mqtt = &config.mqtt;
    let topics = topics(config);
    MqttSettings {
        host: mqtt.host.clone(),
        port: mqtt.port,
        username: mqtt.username.clone(),
        password: mqtt.password.clone(),
        client_id: mqtt.client_id.clone(),
        keep_alive: mqtt.keep_alive,
        availability_topic: topics.availability(),
        subscriptions: MqttSinks::subscriptions(&topics),
        tls: mqtt.tls,
        ca_file: mqtt.ca_file.clone(),
        reconnect: MqttSettings::reconnect_policy(),
    }
}

/// What the MQTT sink publishes and how far back it remembers; `clock` says which interval of a
/// price is shown now.
pub(crate) fn mqtt_sink_settings(config: &Config, clock: SharedClock) -> MqttSinkSettings {
    MqttSinkSettings {
        topics: topics(config),
        discovery: config.mqtt.discovery,
        lookback: chrono::Duration::from_std(config.bridge.lookback).unwrap_or_default(),
        clock,
    }
}

/// Connects to the broker and makes the MQTT sink on that connection.
pub fn start_mqtt(config: &Config, store: StateStore, clock: SharedClock) -> (MqttHandle, MqttSinks) {
    start_mqtt_with_topics(config, store, clock, Vec::new())
}

/// The broker connection with the upload series' topics subscribed too, and the MQTT sink.
pub(crate) fn start_mqtt_with_topics(
    config: &Config,
    store: StateStore,
    clock: SharedClock,
    topics: Vec<String>,
) -> (MqttHandle, MqttSinks) {
    let mqtt = start_mqtt_link(config, topics);
    let sinks = MqttSinks::new(mqtt.clone(), mqtt_sink_settings(config, clock), store);
    (mqtt, sinks)
}

/// A websocket link to the configured Home Assistant (inside the add-on the Supervisor's token
/// stands in for a configured one); `None` without `[homeassistant]` or a token.
pub(crate) fn home_assistant_link(config: &Config) -> Option<Result<crate::homeassistant::Client, String>> {
    use crate::homeassistant::{Client, LinkSettings, WsUrl};
    let ha = config.homeassistant.as_ref()?;
    let token = ha
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| std::env::var("SUPERVISOR_TOKEN").ok().map(crate::secret::Secret::new))?;
    let url = match WsUrl::parse(&ha.url) {
        Ok(url) => url,
        Err(e) => return Some(Err(format!("homeassistant.url {:?}: {}", e.url, e.reason))),
    };
    Some(Ok(Client::start(LinkSettings::standard(url, token))))
}

/// The broker connection alone, with the upload series' topics subscribed (tests of uploads).
pub fn start_mqtt_link(config: &Config, topics: Vec<String>) -> MqttHandle {
    let mut settings = mqtt_settings(config);
    settings.subscriptions.extend(topics);
    MqttHandle::start(settings)
}

/// Starts the uploads of `uploads` as the configuration says (Home Assistant's link when a
/// series reads an entity, `history_start`, `lookback`, the topics); `Err` says what is missing.
pub async fn start_uploads(
    config: &Config,
    uploads: Vec<crate::providers::upload::Uploads>,
    mqtt: Option<MqttHandle>,
    store: StateStore,
    run: crate::upload::UploadRun,
) -> Result<crate::upload::Uploader, String> {
    let needs_ha = uploads.iter().flat_map(|u| &u.series).any(|s| s.entity.is_some());
    let ha = match home_assistant_link(config).filter(|_| needs_ha) {
        Some(Ok(client)) => Some(client),
        Some(Err(e)) => return Err(e),
        None if needs_ha => {
            return Err("upload series read Home Assistant entities, but no Home Assistant token is configured ([homeassistant] token)".into())
        }
        None => None,
    };
    let settings = crate::upload::UploadSettings {
        history_start: config.bridge.history_start_or_default(run.clock.now().date_naive()),
        lookback: chrono::Duration::from_std(config.bridge.lookback).unwrap_or_default(),
        topics: topics(config),
        discovery: config.mqtt.discovery,
        clock: run.clock,
        ticks: run.ticks,
        outage: run.outage,
    };
    crate::upload::Uploader::start(uploads, ha, mqtt, store, settings)
        .await
        .map_err(|e| e.to_string())
}
