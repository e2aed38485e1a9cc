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
