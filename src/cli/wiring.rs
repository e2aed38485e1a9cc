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
    let mqtt = MqttHandle::start(mqtt_settings(config));
    let sinks = MqttSinks::new(mqtt.clone(), mqtt_sink_settings(config, clock), store);
    (mqtt, sinks)
}
