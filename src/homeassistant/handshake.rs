//! Opening the websocket and authenticating with the access token.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::link::LinkSettings;
use super::messages::{auth_text, parse_server_text, ServerMessage};
use super::tls;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) enum ConnectError {
    AuthInvalid(String),
    Failed(String),
}

/// Opens the websocket and authenticates; returns the link and HA's version.
pub(crate) async fn connect(settings: &LinkSettings) -> Result<(Ws, Option<String>), ConnectError> {
    let connector = if settings.url.is_secure() {
        Connector::Rustls(tls::client_config().map_err(ConnectError::Failed)?)
    } else {
        Connector::Plain
    };
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(settings.url.as_str(), None, true, Some(connector))
            .await
            .map_err(|e| ConnectError::Failed(describe(&e)))?;
    let offered_version = match next_message(&mut ws).await? {
        ServerMessage::AuthRequired { ha_version } => ha_version,
        other => return Err(ConnectError::Failed(format!("expected auth_required, got {other:?}"))),
    };
    ws.send(Message::text(auth_text(&settings.token)))
        .await
        .map_err(|e| ConnectError::Failed(describe(&e)))?;
    match next_message(&mut ws).await? {
        ServerMessage::AuthOk { ha_version } => Ok((ws, ha_version.or(offered_version))),
        ServerMessage::AuthInvalid { message } => Err(ConnectError::AuthInvalid(message)),
        other => Err(ConnectError::Failed(format!(
            "expected auth_ok or auth_invalid, got {other:?}"
        ))),
    }
}

async fn next_message(ws: &mut Ws) -> Result<ServerMessage, ConnectError> {
    loop {
        let frame = match ws.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(ConnectError::Failed(describe(&e))),
            None => {
                return Err(ConnectError::Failed(
                    "the connection closed during authentication".into(),
                ))
            }
        };
        match frame {
            Message::Text(text) => {
                let mut messages = parse_server_text(text.as_str())
                    .map_err(|e| ConnectError::Failed(format!("during authentication: {e}")))?;
                if messages.is_empty() {
                    continue;
                }
                return Ok(messages.remove(0));
            }
            Message::Close(_) => {
                return Err(ConnectError::Failed(
                    "Home Assistant closed the connection during authentication".into(),
                ))
            }
            _ => continue,
        }
    }
}

/// A tungstenite error in words a user can act on.
pub(crate) fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!(
            "HTTP {} instead of a websocket; check that homeassistant.url points at Home Assistant itself",
            response.status()
        ),
        tungstenite::Error::Io(io) => io.to_string(),
        tungstenite::Error::Tls(tls) => format!("TLS failed: {tls}"),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "the connection was closed".into(),
        other => other.to_string(),
    }
}
