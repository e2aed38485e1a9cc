//! What callers and the connection task exchange: the link's settings, a request and how a call
//! fails.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::messages::Failure;
use super::ws_url::WsUrl;
use super::Command;
use crate::backoff_policy::RetryPolicy;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub(crate) struct LinkSettings {
    pub(crate) url: WsUrl,
    pub(crate) token: Secret,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// Idle time after which a ping checks that the link still works.
    pub(crate) heartbeat: Duration,
    pub(crate) reconnect: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    Unreachable(String),
    AuthFailed(String),
    Timeout(Duration),
    Failed(Failure),
    Stopped,
}

pub(crate) struct Request {
    pub(crate) command: Box<dyn Command>,
    pub(crate) reply: oneshot::Sender<Result<Value, CallError>>,
}

/// A standing subscription: its command is sent again on every connection, and its events go
/// to `events` until the receiver is dropped.
pub(super) struct Subscription {
    pub command: std::sync::Arc<dyn Command>,
    pub events: tokio::sync::mpsc::UnboundedSender<Value>,
}

/// How the daemon keeps a link: 15 s to connect, a minute per answer, a ping after 50 s of
/// silence, reconnects from 2 s backing off to 5 minutes.
pub(crate) const STANDARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
pub(crate) const STANDARD_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const STANDARD_HEARTBEAT: Duration = Duration::from_secs(50);

/// The standard link's reconnects: from 2 s, backing off to 5 minutes.
pub(crate) fn standard_reconnect() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(300),
        ..RetryPolicy::default()
    }
}

impl LinkSettings {
    /// The link as the daemon keeps it (the `STANDARD_*` values).
    pub(crate) fn standard(url: WsUrl, token: Secret) -> LinkSettings {
        LinkSettings {
            url,
            token,
            connect_timeout: STANDARD_CONNECT_TIMEOUT,
            request_timeout: STANDARD_REQUEST_TIMEOUT,
            heartbeat: STANDARD_HEARTBEAT,
            reconnect: standard_reconnect(),
        }
    }
}
