//! The websocket link to Home Assistant, owned by one background task: connect, authenticate,
//! serve requests, notice a dead link, reconnect with backoff. Callers talk to it through
//! [`Connection::call`], which always returns within a bound.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

use super::ha_version::MetadataStyle;
use super::handshake::{connect, ConnectError};
use super::protocol::{Command, Failure};
use super::session::{Session, SessionEnd};
use super::status::{ConnectionState, StatisticsStatus};
use super::ws_url::WsUrl;
use crate::http::RetryPolicy;
use crate::secret::Secret;

/// Requests waiting for the task; callers block on a full queue only up to their bound.
const QUEUE: usize = 64;

#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub url: WsUrl,
    pub token: Secret,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Idle time after which a ping checks that the link still works.
    pub heartbeat: Duration,
    pub reconnect: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    Unreachable(String),
    AuthFailed(String),
    Timeout(Duration),
    Failed(Failure),
    Stopped,
}

pub struct Request {
    pub command: Command,
    pub reply: oneshot::Sender<Result<Value, CallError>>,
}

/// A cheap handle to the connection task.
#[derive(Clone)]
pub struct Connection {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<StatisticsStatus>,
    bound: Duration,
}

/// Stops the task; held by whoever may shut the sink down.
pub struct Stopper {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Connection {
    pub fn spawn(settings: LinkSettings) -> (Connection, Stopper) {
        let (requests, rx) = mpsc::channel(QUEUE);
        let initial = StatisticsStatus {
            state: ConnectionState::Connecting,
            ha_version: None,
            url: settings.url.to_string(),
        };
        let (status_tx, status) = watch::channel(initial);
        let (shutdown, shutdown_rx) = watch::channel(false);
        // A request may wait for one connection attempt, then for its answer.
        let bound = settings.connect_timeout + settings.request_timeout + Duration::from_secs(5);
        let task = tokio::spawn(run(settings, rx, status_tx, shutdown_rx));
        (
            Connection {
                requests,
                status,
                bound,
            },
            Stopper { shutdown, task },
        )
    }

    pub fn status(&self) -> StatisticsStatus {
        self.status.borrow().clone()
    }

    pub fn status_updates(&self) -> watch::Receiver<StatisticsStatus> {
        self.status.clone()
    }

    /// Sends `command` and waits for its answer, connecting first if needed.
    pub async fn call(&self, command: Command) -> Result<Value, CallError> {
        let deadline = Instant::now() + self.bound;
        let (reply, answer) = oneshot::channel();
        match timeout_at(deadline, self.requests.send(Request { command, reply })).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(CallError::Stopped),
            Err(_) => return Err(CallError::Timeout(self.bound)),
        }
        match timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Stopped),
            Err(_) => Err(CallError::Timeout(self.bound)),
        }
    }
}

impl Stopper {
    /// Closes the link and waits (boundedly) for the task to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        if timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender means every handle is gone: stop as well.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn run(
    settings: LinkSettings,
    mut requests: mpsc::Receiver<Request>,
    status: watch::Sender<StatisticsStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let url = settings.url.to_string();
    let mut delays = settings.reconnect.delays();
    // Requests that arrived while no link existed; each gets one fresh attempt.
    let mut held: Vec<Request> = Vec::new();
    let mut last_warning: Option<String> = None;
    loop {
        let attempt = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            attempt = timeout(settings.connect_timeout, connect(&settings)) => attempt.unwrap_or_else(|_| {
                Err(ConnectError::Failed(format!("no websocket handshake within {}", humantime::format_duration(settings.connect_timeout))))
            }),
        };
        match attempt {
            Ok((ws, ha_version)) => {
                delays.reset();
                last_warning = None;
                tracing::info!(url = %url, ha_version = ha_version.as_deref().unwrap_or("unknown"), "connected to Home Assistant");
                status.send_modify(|s| {
                    s.state = ConnectionState::Connected;
                    s.ha_version = ha_version.clone();
                });
                let style = MetadataStyle::for_version(ha_version.as_deref());
                let mut session = Session::new(ws, style, &settings);
                match session
                    .serve(&mut requests, std::mem::take(&mut held), &mut shutdown)
                    .await
                {
                    SessionEnd::Shutdown => {
                        session.fail_pending(|_| CallError::Stopped);
                        session.close().await;
                        break;
                    }
                    SessionEnd::Lost(reason) => {
                        tracing::warn!(url = %url, "connection to Home Assistant lost: {reason}; reconnecting");
                        status.send_modify(|s| s.state = ConnectionState::Unreachable(reason.clone()));
                        session.fail_pending(|command| {
                            CallError::Unreachable(format!(
                                "the connection ended before the answer to {command}: {reason}"
                            ))
                        });
                    }
                }
            }
            Err(ConnectError::AuthInvalid(message)) => {
                tracing::error!(
                    url = %url,
                    "Home Assistant refused the access token ({message}); statistics stay off until the token is fixed and meter2mqtt restarted"
                );
                status.send_modify(|s| s.state = ConnectionState::AuthFailed(message.clone()));
                // Retrying a refused token cannot succeed and counts as failed logins in HA.
                refuse_all(held, &mut requests, &message, &mut shutdown).await;
                status.send_modify(|s| s.state = ConnectionState::Stopped);
                return;
            }
            Err(ConnectError::Failed(reason)) => {
                if last_warning.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(url = %url, "cannot connect to Home Assistant: {reason}; retrying with backoff");
                    last_warning = Some(reason.clone());
                } else {
                    tracing::debug!(url = %url, "still cannot connect to Home Assistant: {reason}");
                }
                status.send_modify(|s| s.state = ConnectionState::Unreachable(reason.clone()));
                for r in held.drain(..) {
                    let _ = r.reply.send(Err(CallError::Unreachable(reason.clone())));
                }
            }
        }
        // Back off between attempts; a caller waiting for an answer cuts the wait short.
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            next = requests.recv() => match next {
                Some(r) => held.push(r),
                None => break,
            },
            _ = tokio::time::sleep(delays.next_delay()) => {}
        }
        while let Ok(r) = requests.try_recv() {
            held.push(r);
        }
    }
    for r in held {
        let _ = r.reply.send(Err(CallError::Stopped));
    }
    status.send_modify(|s| s.state = ConnectionState::Stopped);
}

async fn refuse_all(
    held: Vec<Request>,
    requests: &mut mpsc::Receiver<Request>,
    message: &str,
    shutdown: &mut watch::Receiver<bool>,
) {
    for r in held {
        let _ = r.reply.send(Err(CallError::AuthFailed(message.to_owned())));
    }
    loop {
        tokio::select! {
            biased;
            _ = stopped(shutdown) => return,
            next = requests.recv() => match next {
                Some(r) => { let _ = r.reply.send(Err(CallError::AuthFailed(message.to_owned()))); }
                None => return,
            },
        }
    }
}
