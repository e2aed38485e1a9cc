//! The sinks' settings from the configuration, and the MQTT side started from them: what `run`,
//! `demo` and the tests' bridge share. The sinks take settings, not the [`Config`], so that they
//! know nothing of how it is read.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::mqtt::{MqttHandle, MqttSettings, MqttSinkSettings, MqttSinks, Topics};
use crate::state::StateStore;

pub fn topics(config: &Config) -> Topics {
    Topics::new(&config.mqtt.base_topic, &config.mqtt.discovery_prefix)
}

/// The broker connection: where, who, and the topics the sink needs.
pub fn mqtt_settings(config: &Config) -> MqttSettings {
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
pub fn mqtt_sink_settings(config: &Config, clock: SharedClock) -> MqttSinkSettings {
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
    let mut settings = mqtt_settings(config);
    settings.subscriptions.extend(topics);
    let mqtt = MqttHandle::start(settings);
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

/// What the uploads need from the configuration.
pub(crate) fn upload_settings(config: &Config, clock: SharedClock) -> crate::upload::UploadSettings {
    crate::upload::UploadSettings {
        history_start: config.bridge.history_start_or_default(clock.now().date_naive()),
        lookback: chrono::Duration::from_std(config.bridge.lookback).unwrap_or_default(),
        topics: topics(config),
        discovery: config.mqtt.discovery,
        clock,
        ticks: crate::upload::Ticks::Clock,
        outage: crate::upload::UploadSettings::outage_policy(),
    }
}
