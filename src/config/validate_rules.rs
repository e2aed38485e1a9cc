//! Checks serde cannot express: ranges, formats, required-but-empty values.

use std::time::Duration;

use super::Config;

pub(super) fn check(config: &Config, push: &mut dyn FnMut(&str, String)) {
    mqtt(config, push);
    bridge(config, push);
    state_and_log(config, push);
    home_assistant(config, push);
    accounts(config, push);
}

fn mqtt(config: &Config, push: &mut dyn FnMut(&str, String)) {
    let mqtt = &config.mqtt;
    if mqtt.host.trim().is_empty() {
        push(
            "mqtt.host",
            "must not be empty; the broker's host name or IP address, e.g. \"localhost\"".into(),
        );
    }
    if mqtt.port == 0 {
        push(
            "mqtt.port",
            "must be between 1 and 65535 (MQTT's usual port is 1883)".into(),
        );
    }
    if mqtt.client_id.trim().is_empty() || mqtt.client_id.len() > 64 {
        push("mqtt.client_id", "must be 1 to 64 characters".into());
    }
    topic_rule(&mqtt.base_topic, "mqtt.base_topic", push);
    topic_rule(&mqtt.discovery_prefix, "mqtt.discovery_prefix", push);
    if mqtt.password.is_some() && mqtt.username.is_none() {
        push(
            "mqtt.password",
            "is set but mqtt.username is not; set both or neither".into(),
        );
    }
    if mqtt.keep_alive < Duration::from_secs(5) || mqtt.keep_alive > Duration::from_secs(3600) {
        push("mqtt.keep_alive", "must be between 5s and 1h".into());
    }
    if mqtt.tls && !cfg!(feature = "mqtt-tls") {
        push(
            "mqtt.tls",
            "this build has no broker TLS; rebuild with `--features mqtt-tls` or set tls = false".into(),
        );
    }
}

fn bridge(config: &Config, push: &mut dyn FnMut(&str, String)) {
    let bridge = &config.bridge;
    if bridge.poll_interval < Duration::from_secs(1) || bridge.poll_interval > Duration::from_secs(7 * 86400) {
        push(
            "bridge.poll_interval",
            "must be between 1s and 7d; the APIs publish new data at most hourly, so \"1h\" is plenty".into(),
        );
    }
    if bridge.lookback > Duration::from_secs(60 * 86400) {
        push("bridge.lookback", "must be at most 60d".into());
    }
    if bridge.jitter > bridge.poll_interval {
        push("bridge.jitter", "must not exceed bridge.poll_interval".into());
    }
    if let Some(start) = bridge.history_start {
        let today = chrono::Utc::now().date_naive();
        if start > today {
            push("bridge.history_start", format!("{start} is in the future"));
        }
    }
}

fn state_and_log(config: &Config, push: &mut dyn FnMut(&str, String)) {
    if config.state.dir.as_os_str().is_empty() {
        push(
            "state.dir",
            "must not be empty; a directory the bridge may write, e.g. \"./state\"".into(),
        );
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        push(
            "log.level",
            format!(
                "{:?} is not a log filter ({e}); use error, warn, info, debug or trace",
                config.log.level
            ),
        );
    }
}

fn home_assistant(config: &Config, push: &mut dyn FnMut(&str, String)) {
    if let Some(ha) = &config.homeassistant {
        if !(ha.url.starts_with("http://")
            || ha.url.starts_with("https://")
            || ha.url.starts_with("ws://")
            || ha.url.starts_with("wss://"))
        {
            push(
                "homeassistant.url",
                format!(
                    "{:?} is not a URL; write e.g. \"http://homeassistant.local:8123\"",
                    ha.url
                ),
            );
        }
        if ha.token.as_ref().is_none_or(|t| t.is_empty()) && std::env::var_os("SUPERVISOR_TOKEN").is_none() {
            push(
                "homeassistant.token",
                "is required: create a long-lived access token in Home Assistant (your profile → Security) and set it here".into(),
            );
        }
    }
}

/// Each account's own checks (its provider's), and unique names within a provider.
fn accounts(config: &Config, push: &mut dyn FnMut(&str, String)) {
    for account in &config.accounts {
        let Some(kind) = crate::providers::kind(account.kind) else {
            continue;
        };
        let prefix = format!("{}[{}]", account.kind, account.index);
        kind.check(account.any_settings(), &mut |field, message| {
            push(&format!("{prefix}.{field}"), message)
        });
        for (index, series) in kind.upload_series(account.any_settings()).iter().enumerate() {
            if series.entity.is_some() && config.homeassistant.is_none() {
                push(
                    &format!("{prefix}.upload[{index}].entity"),
                    "reads a Home Assistant entity, but [homeassistant] is not configured; add it (url and token) or use topic"
                        .into(),
                );
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for account in &config.accounts {
        if let Some(name) = account.name() {
            if !names.insert((account.kind, name)) {
                push(
                    &format!("{}.name", account.kind),
                    format!("two {} accounts are named {name:?}; names must be unique", account.kind),
                );
            }
        }
    }
}

fn topic_rule(topic: &str, key: &str, push: &mut dyn FnMut(&str, String)) {
    if topic.is_empty() || topic.starts_with('/') || topic.ends_with('/') {
        push(
            key,
            format!("{topic:?} must be a non-empty topic without leading or trailing '/'"),
        );
    } else if topic.contains(['+', '#', '\0']) {
        push(key, format!("{topic:?} must not contain the MQTT wildcards '+' or '#'"));
    }
}
