//! Shared by the add-on tests: distinctive secrets, fake Supervisors, options files.
// Each test binary uses a part of this module.

use std::path::PathBuf;
use std::time::Duration;

use meter2mqtt::addon::{load_with, AddonEnv, AddonError};
use meter2mqtt::http::RetryPolicy;
use meter2mqtt::secret::Secret;
use meter2mqtt::Config;

use super::fake_ha::FakeHa;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

/// A Supervisor on a loopback port, as the app reaches the real one at `http://supervisor`: it
/// answers `GET /services/mqtt` with the broker at `broker_port` (user `addons`,
/// [`MQTT_PASSWORD`]) to this add-on's token and 401 to any other caller, and passes every other
/// request (the websocket upgrade at `/core/websocket`) through to Home Assistant. Returns the
/// port.
pub async fn proxying_supervisor(broker_port: u16, ha: &FakeHa) -> u16 {
    let ha_addr = ha.url().trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let ha_addr = ha_addr.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let n = client.peek(&mut head).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&head[..n]).into_owned();
                if request.starts_with("GET /services/mqtt") {
                    let mut buf = vec![0u8; 4096];
                    let _ = client.read(&mut buf).await;
                    let authorized = request.contains(&format!("Bearer {SUPERVISOR_TOKEN}"));
                    let (status, body) = if authorized {
                        let mut answer = mqtt_answer();
                        answer["data"]["host"] = json!("127.0.0.1");
                        answer["data"]["port"] = json!(broker_port);
                        ("200 OK", answer.to_string())
                    } else {
                        (
                            "401 Unauthorized",
                            json!({"result": "error", "message": "unauthorized"}).to_string(),
                        )
                    };
                    let response = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = client.write_all(response.as_bytes()).await;
                } else if let Ok(mut upstream) = TcpStream::connect(&ha_addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    port
}
