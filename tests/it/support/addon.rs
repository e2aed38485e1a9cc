//! Shared by the add-on tests: distinctive secrets, a fake Supervisor, options files.
// Each test binary uses a part of this module.

use std::path::PathBuf;
use std::time::Duration;

use meter2mqtt::addon::{load_with, AddonEnv, AddonError};
use meter2mqtt::http::RetryPolicy;
use meter2mqtt::secret::Secret;
use meter2mqtt::Config;
use serde_json::{json, Value};
use tempfile::TempDir;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const REFRESH_TOKEN: &str = "ELO-REFRESH-5e1f9a";
pub const REFRESH_TOKEN_2: &str = "ELO-REFRESH-77c0d2";
pub const LOGIN_TOKEN: &str = "ENECTIVA-LOGIN-0b8e44";
pub const SUPERVISOR_TOKEN: &str = "SUPERVISOR-TOKEN-c3a1f7";
pub const MQTT_PASSWORD: &str = "MQTT-PASSWORD-9d26b0";
pub const SECRETS: [&str; 5] = [
    REFRESH_TOKEN,
    REFRESH_TOKEN_2,
    LOGIN_TOKEN,
    SUPERVISOR_TOKEN,
    MQTT_PASSWORD,
];
pub const UUID: &str = "5123d8ef-b501-4c71-b188-83ac399d66b9";
pub const POINT_1: &str = "571313180100000001";
pub const POINT_2: &str = "571313180100000002";

pub fn assert_no_secret(what: &str) {
    for secret in SECRETS {
        assert!(!what.contains(secret), "a secret leaked into: {what}");
    }
}

/// Display and Debug of an error, checked for secrets.
pub fn shown(error: &AddonError) -> String {
    let text = format!("{error}\n{error:?}");
    assert_no_secret(&text);
    text
}

pub fn mqtt_answer() -> Value {
    json!({"result": "ok", "data": {
        "addon": "core_mosquitto", "host": "core-mosquitto", "port": 1883, "ssl": false,
        "username": "addons", "password": MQTT_PASSWORD, "protocol": "3.1.1"
    }})
}

/// A Supervisor that answers `GET /services/mqtt` with `answer` to this add-on's token, and like
/// the real one with 401 to any other caller.
pub async fn supervisor(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/mqtt"))
        .and(header("authorization", format!("Bearer {SUPERVISOR_TOKEN}").as_str()))
        .respond_with(answer)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("401: Unauthorized"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

pub async fn healthy_supervisor() -> MockServer {
    supervisor(ResponseTemplate::new(200).set_body_json(mqtt_answer())).await
}

pub fn env(url: &str) -> AddonEnv {
    AddonEnv {
        supervisor_url: url.to_owned(),
        supervisor_token: Some(Secret::new(SUPERVISOR_TOKEN)),
        retry: RetryPolicy {
            initial_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(1),
            randomization_factor: 0.0,
            max_retries: 1,
            ..RetryPolicy::default()
        },
    }
}

pub fn write_options(options: &Value) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("options.json");
    std::fs::write(&file, serde_json::to_vec_pretty(options).unwrap()).unwrap();
    (dir, file)
}

pub fn one_account() -> Value {
    json!({"eloverblik": [{"refresh_token": REFRESH_TOKEN}]})
}

pub async fn load(options: &Value, server: &MockServer) -> (TempDir, Result<Config, AddonError>) {
    let (dir, file) = write_options(options);
    let result = load_with(&file, &env(&server.uri())).await;
    (dir, result)
}
