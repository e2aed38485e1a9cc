//! The messages of Home Assistant's websocket API that every client needs: authentication,
//! results and pongs. What a command says is its sender's business (see [`super::Command`]).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::secret::Secret;

/// The authentication message. Built here, sent at once, never logged.
pub(crate) fn auth_text(token: &Secret) -> String {
    json!({ "type": "auth", "access_token": token.expose() }).to_string()
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ServerMessage {
    AuthRequired {
        ha_version: Option<String>,
    },
    AuthOk {
        ha_version: Option<String>,
    },
    AuthInvalid {
        message: String,
    },
    Result {
        id: u64,
        outcome: Result<Value, Failure>,
    },
    Pong {
        id: u64,
    },
    /// An event of the subscription made by request `id`.
    Event {
        id: u64,
        event: Value,
    },
    /// Anything newer than this code; ignored.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub(crate) code: String,
    pub(crate) message: String,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    ha_version: Option<String>,
    message: Option<String>,
    success: Option<bool>,
    result: Option<Value>,
    error: Option<RawFailure>,
    event: Option<Value>,
}

#[derive(Deserialize)]
struct RawFailure {
    code: Option<Value>,
    message: Option<String>,
}

/// One websocket text frame: a message, or an array of them when HA coalesces.
pub(crate) fn parse_server_text(text: &str) -> Result<Vec<ServerMessage>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    match value {
        Value::Array(items) => items.into_iter().map(parse_one).collect(),
        one => Ok(vec![parse_one(one)?]),
    }
}

fn parse_one(value: Value) -> Result<ServerMessage, String> {
    let raw: RawMessage = serde_json::from_value(value).map_err(|e| format!("not a Home Assistant message ({e})"))?;
    let need_id = |kind: &str| raw.id.ok_or_else(|| format!("a {kind} message without an id"));
    Ok(match raw.kind.as_str() {
        "auth_required" => ServerMessage::AuthRequired {
            ha_version: raw.ha_version,
        },
        "auth_ok" => ServerMessage::AuthOk {
            ha_version: raw.ha_version,
        },
        "auth_invalid" => ServerMessage::AuthInvalid {
            message: raw.message.unwrap_or_else(|| "invalid access token".into()),
        },
        "pong" => ServerMessage::Pong { id: need_id("pong")? },
        "event" => ServerMessage::Event {
            id: need_id("event")?,
            event: raw.event.unwrap_or(Value::Null),
        },
        "result" => {
            let id = need_id("result")?;
            let outcome = if raw.success == Some(true) {
                Ok(raw.result.unwrap_or(Value::Null))
            } else {
                let error = raw.error.unwrap_or(RawFailure {
                    code: None,
                    message: None,
                });
                let code = match error.code {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => "unknown_error".into(),
                };
                Err(Failure {
                    code,
                    message: error.message.unwrap_or_else(|| "no message".into()),
                })
            };
            ServerMessage::Result { id, outcome }
        }
        _ => ServerMessage::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_messages() {
        assert_eq!(
            auth_text(&Secret::new("t\"ok")),
            r#"{"access_token":"t\"ok","type":"auth"}"#
        );
        let parsed = parse_server_text(r#"{"type": "auth_required", "ha_version": "2025.10.1"}"#).unwrap();
        assert_eq!(
            parsed,
            vec![ServerMessage::AuthRequired {
                ha_version: Some("2025.10.1".into())
            }]
        );
        let parsed =
            parse_server_text(r#"{"type": "auth_invalid", "message": "Invalid access token or password"}"#).unwrap();
        assert_eq!(
            parsed,
            vec![ServerMessage::AuthInvalid {
                message: "Invalid access token or password".into()
            }]
        );
        assert_eq!(
            parse_server_text(r#"{"type": "auth_ok"}"#).unwrap(),
            vec![ServerMessage::AuthOk { ha_version: None }]
        );
    }

    #[test]
    fn results_errors_and_batches() {
        let text = r#"[{"id": 1, "type": "result", "success": true, "result": null},
                       {"id": 2, "type": "result", "success": false, "error": {"code": "unauthorized", "message": "Unauthorized"}},
                       {"id": 3, "type": "pong"}, {"id": 4, "type": "event", "event": {}}]"#;
        let parsed = parse_server_text(text).unwrap();
        assert_eq!(
            parsed[0],
            ServerMessage::Result {
                id: 1,
                outcome: Ok(Value::Null)
            }
        );
        assert_eq!(
            parsed[1],
            ServerMessage::Result {
                id: 2,
                outcome: Err(Failure {
                    code: "unauthorized".into(),
                    message: "Unauthorized".into()
                })
            }
        );
        assert_eq!(parsed[2], ServerMessage::Pong { id: 3 });
        assert_eq!(
            parsed[3],
            ServerMessage::Event {
                id: 4,
                event: serde_json::json!({})
            }
        );
        assert_eq!(
            parse_server_text(r#"{"type": "later"}"#).unwrap()[0],
            ServerMessage::Other
        );
        assert!(parse_server_text("not json").unwrap_err().contains("not JSON"));
        assert!(parse_server_text(r#"{"no_type": 1}"#)
            .unwrap_err()
            .contains("not a Home Assistant message"));
        assert!(parse_server_text(r#"{"type": "result", "success": true}"#)
            .unwrap_err()
            .contains("without an id"));
        let odd =
            parse_server_text(r#"{"id": 5, "type": "result", "success": false, "error": {"code": 500}}"#).unwrap();
        assert_eq!(
            odd[0],
            ServerMessage::Result {
                id: 5,
                outcome: Err(Failure {
                    code: "500".into(),
                    message: "no message".into()
                })
            }
        );
    }
}
