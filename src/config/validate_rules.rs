//! Checks serde cannot express: ranges, formats, required-but-empty values.

use std::time::Duration;

use super::Config;

pub(super) fn check(config: &Config, push: &mut dyn FnMut(&str, String)) {
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

    for (i, account) in config.eloverblik.iter().enumerate() {
        let key = |k: &str| format!("eloverblik[{i}].{k}");
        if account.refresh_token.is_empty() {
            push(
                &key("refresh_token"),
                "must not be empty; create one at eloverblik.dk under Datadeling → Opret token".into(),
            );
        }
        url_rule(&account.base_url, &key("base_url"), push);
        for id in &account.metering_points {
            if id.len() != 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
                push(
                    &key("metering_points"),
                    format!("{id:?} is not a metering point id (18 digits)"),
                );
            }
        }
    }
    for (i, account) in config.enectiva.iter().enumerate() {
        let key = |k: &str| format!("enectiva[{i}].{k}");
        if !looks_like_uuid(&account.customer_uuid) {
            push(
                &key("customer_uuid"),
                format!(
                    "{:?} is not a UUID (e.g. 5123d8ef-b501-4c71-b188-83ac399d66b9)",
                    account.customer_uuid
                ),
            );
        }
        if account.login_token.is_empty() {
            push(
                &key("login_token"),
                "must not be empty; Enectiva gives it with the API access for your customer account".into(),
            );
        }
        url_rule(&account.base_url, &key("base_url"), push);
    }
    for (i, account) in config.sample.iter().enumerate() {
        if account.days == Some(0) {
            push(
                &format!("sample[{i}].days"),
                "must be at least 1 (or unset for data up to now)".into(),
            );
        }
    }
    let mut names = std::collections::HashSet::new();
    for (kind, name) in config
        .eloverblik
        .iter()
        .map(|a| ("eloverblik", &a.name))
        .chain(config.enectiva.iter().map(|a| ("enectiva", &a.name)))
        .chain(config.sample.iter().map(|a| ("sample", &a.name)))
    {
        if let Some(name) = name {
            if !names.insert((kind, name.clone())) {
                push(
                    &format!("{kind}.name"),
                    format!("two {kind} accounts are named {name:?}; names must be unique"),
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

fn url_rule(url: &str, key: &str, push: &mut dyn FnMut(&str, String)) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => push(key, format!("{url:?} is not an http(s) URL")),
    }
}

fn looks_like_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
