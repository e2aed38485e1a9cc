//! Asking the Home Assistant Supervisor for the MQTT broker (`GET /services/mqtt`), which the
//! Mosquitto add-on (or another provider) registered there.

use std::time::Duration;

use serde_json::{Map, Value};

use super::AddonError;
use crate::http::{build_client, ApiClient, HttpError, RetryPolicy};
use crate::secret::Secret;

const API: &str = "Home Assistant Supervisor";
const ENDPOINT: &str = "GET /services/mqtt";

/// The broker as the Supervisor describes it. Values stay as the Supervisor sent them so that the
/// configuration's own validation judges them; the password becomes a `Secret` there.
pub(crate) struct MqttService {
    /// `host`, `port` and, when set, `username` and `password`, keyed as in `[mqtt]`.
    pub(crate) settings: Map<String, Value>,
    pub(crate) ssl: bool,
}

/// The Supervisor's base URL, checked, without a trailing slash.
pub(crate) fn base_url(raw: &str) -> Result<String, AddonError> {
    let bad = || AddonError::BadSupervisorUrl { url: raw.to_owned() };
    let url = reqwest::Url::parse(raw).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// The Home Assistant websocket API as the Supervisor proxies it: `ws://supervisor/core/websocket`.
pub(crate) fn websocket_url(base: &str) -> String {
    let rest = base.strip_prefix("https://").map(|r| format!("wss://{r}"));
    let ws = rest.unwrap_or_else(|| format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)));
    format!("{ws}/core/websocket")
}

pub(crate) async fn mqtt_service(base: &str, token: &Secret, retry: &RetryPolicy) -> Result<MqttService, AddonError> {
    let client = build_client(API, Duration::from_secs(10)).map_err(|e| AddonError::SupervisorUnreachable {
        url: base.to_owned(),
        message: e.to_string(),
    })?;
    let api = ApiClient::new(API, client, retry.clone(), supervisor_message);
    let url = format!("{base}/services/mqtt");
    let response = api
        .send(ENDPOINT, |c| c.get(&url).bearer_auth(token.expose()))
        .await
        .map_err(|e| http_error(base, e))?;
    parse_answer(&response.body)
}

fn http_error(base: &str, error: HttpError) -> AddonError {
    match error {
        HttpError::Unauthorized { status, message, .. } => AddonError::SupervisorRefused { status, message },
        // The Supervisor answers 400 "Service not enabled" when no add-on provides MQTT.
        HttpError::Rejected {
            status: 400 | 404,
            message,
            ..
        } => AddonError::MqttServiceUnavailable { message },
        HttpError::Rejected { status, message, .. } => AddonError::SupervisorAnswer {
            message: format!("HTTP {status}: {message}"),
        },
        HttpError::Exhausted { last, .. } => AddonError::SupervisorUnreachable {
            url: base.to_owned(),
            message: last,
        },
        other => AddonError::SupervisorUnreachable {
            url: base.to_owned(),
            message: other.to_string(),
        },
    }
}

/// The Supervisor's error bodies are `{"result": "error", "message": "..."}`; anything else is
/// shown as text, shortened.
fn supervisor_message(body: &str) -> (Option<String>, String) {
    let from_json = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    let message = from_json.unwrap_or_else(|| body.trim().chars().take(200).collect());
    (
        None,
        if message.is_empty() {
            "no message".to_owned()
        } else {
            message
        },
    )
}

/// Reads `{"result": "ok", "data": {host, port, ssl, username, password, protocol}}`. Errors name
/// fields, never values: the answer holds the broker password.
fn parse_answer(body: &[u8]) -> Result<MqttService, AddonError> {
    let answer = |message: &str| AddonError::SupervisorAnswer {
        message: message.to_owned(),
    };
    let root: Value = serde_json::from_slice(body).map_err(|_| answer("the body is not JSON"))?;
    match root.get("result").and_then(Value::as_str) {
        Some("ok") => {}
        Some(_) => {
            let message = root
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the Supervisor gave no reason");
            return Err(AddonError::MqttServiceUnavailable {
                message: message.to_owned(),
            });
        }
        None => return Err(answer("it has no \"result\"")),
    }
    let data = root
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| answer("it has no \"data\" object"))?;

    let mut settings = Map::new();
    for required in ["host", "port"] {
        let value = data.get(required).filter(|v| !v.is_null());
        let value = value.ok_or_else(|| answer(&format!("it names no broker {required}")))?;
        settings.insert(required.to_owned(), value.clone());
    }
    for optional in ["username", "password"] {
        if let Some(value) = data.get(optional).filter(|v| !v.is_null() && v.as_str() != Some("")) {
            settings.insert(optional.to_owned(), value.clone());
        }
    }
    // `protocol` ("3.1" or "3.1.1") is not used: meter2mqtt speaks MQTT 3.1.1, which every broker
    // offering 3.1 also accepts.
    let ssl = match data.get("ssl") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(ssl)) => *ssl,
        Some(_) => return Err(answer("its \"ssl\" is not true or false")),
    };
    Ok(MqttService { settings, ssl })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_scheme() {
        assert_eq!(websocket_url("http://supervisor"), "ws://supervisor/core/websocket");
        assert_eq!(
            websocket_url("https://example.org:8443/x"),
            "wss://example.org:8443/x/core/websocket"
        );
    }

    #[test]
    fn base_url_must_be_http() {
        assert_eq!(base_url("http://supervisor/").unwrap(), "http://supervisor");
        assert!(matches!(
            base_url("supervisor"),
            Err(AddonError::BadSupervisorUrl { .. })
        ));
        assert!(matches!(
            base_url("ftp://supervisor"),
            Err(AddonError::BadSupervisorUrl { .. })
        ));
    }

    #[test]
    fn bad_answers_never_echo_the_password() {
        for body in [
            r#"{"result":"ok","data":{"password":"pw-7f3a","port":1883}}"#,
            r#"{"result":"ok","data":{"host":"core-mosquitto","port":1883,"password":"pw-7f3a","ssl":"pw-7f3a"}}"#,
            r#"{"result":"ok","data":"pw-7f3a"}"#,
            r#"{"data":{"password":"pw-7f3a"}}"#,
            r#"{"result":"ok","data":{"password":"pw-7f3a""#,
        ] {
            let error = parse_answer(body.as_bytes()).err().expect("a bad answer is an error");
            assert!(!format!("{error} {error:?}").contains("pw-7f3a"), "{error}");
        }
    }

    #[test]
    fn error_bodies_give_the_supervisor_message() {
        assert_eq!(
            supervisor_message(r#"{"result":"error","message":"Service not enabled"}"#).1,
            "Service not enabled"
        );
        assert_eq!(supervisor_message("401: Unauthorized\n").1, "401: Unauthorized");
        assert_eq!(supervisor_message("").1, "no message");
    }
}
