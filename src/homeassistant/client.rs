//! The websocket link to Home Assistant, owned by one background task (an [`Actor`]): connect,
//! authenticate, serve requests, notice a dead link, reconnect with backoff. Callers talk to it
//! through [`Client::call`], which always returns within a bound.

use std::time::Duration;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{timeout, timeout_at, Instant};

use super::handshake::{connect, ConnectError};
use super::messages::Failure;
use super::session::{Session, SessionEnd};
use super::status::{LinkState, LinkStatus};
use super::ws_url::WsUrl;
use super::Command;
use crate::actor::{Actor, StopSignal};
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
    pub command: Box<dyn Command>,
    pub reply: oneshot::Sender<Result<Value, CallError>>,
}

/// A cheap handle to the connection task.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<LinkStatus>,
    bound: Duration,
    actor: Arc<Actor>,
}

impl Client {
    /// Starts the connection task on the current runtime; it connects in the background.
    pub fn start(settings: LinkSettings) -> Client {
        let (requests, rx) = mpsc::channel(QUEUE);
        let initial = LinkStatus {
            state: LinkState::Connecting,
            ha_version: None,
            url: settings.url.to_string(),
        };
        let (status_tx, status) = watch::channel(initial);
        // A request may wait for one connection attempt, then for its answer.
        let bound = settings.connect_timeout + settings.request_timeout + Duration::from_secs(5);
        let actor = Actor::spawn(|stop| run(settings, rx, status_tx, stop));
        Client {
            requests,
            status,
            bound,
            actor: Arc::new(actor),
        }
    }

    pub fn status(&self) -> LinkStatus {
        self.status.borrow().clone()
    }

    pub fn status_updates(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Sends `command` and waits for its answer, connecting first if needed.
    pub async fn call(&self, command: impl Command) -> Result<Value, CallError> {
        let deadline = Instant::now() + self.bound;
        let (reply, answer) = oneshot::channel();
        let command = Box::new(command);
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

    /// Closes the link and waits (boundedly) for the task to end; later calls fail with
    /// [`CallError::Stopped`].
    pub async fn stop(&self) {
        self.actor.stop(Duration::from_secs(5)).await;
    }
}

async fn run(
    settings: LinkSettings,
    mut requests: mpsc::Receiver<Request>,
    status: watch::Sender<LinkStatus>,
    stop: StopSignal,
) {
    let url = settings.url.to_string();
    let mut delays = settings.reconnect.delays();
    // Requests that arrived while no link existed; each gets one fresh attempt.
    let mut held: Vec<Request> = Vec::new();
    let mut last_warning: Option<String> = None;
    loop {
        let attempt = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
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
                    s.state = LinkState::Connected;
                    s.ha_version = ha_version.clone();
                });
                let mut session = Session::new(ws, ha_version, &settings);
                match session.serve(&mut requests, std::mem::take(&mut held), &stop).await {
                    SessionEnd::Shutdown => {
                        session.fail_pending(|_| CallError::Stopped);
                        session.close().await;
                        break;
                    }
                    SessionEnd::Lost(reason) => {
                        tracing::warn!(url = %url, "connection to Home Assistant lost: {reason}; reconnecting");
                        status.send_modify(|s| s.state = LinkState::Unreachable(reason.clone()));
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
                status.send_modify(|s| s.state = LinkState::AuthFailed(message.clone()));
                // Retrying a refused token cannot succeed and counts as failed logins in HA.
                refuse_all(held, &mut requests, &message, &stop).await;
                status.send_modify(|s| s.state = LinkState::Stopped);
                return;
            }
            Err(ConnectError::Failed(reason)) => {
                if last_warning.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(url = %url, "cannot connect to Home Assistant: {reason}; retrying with backoff");
                    last_warning = Some(reason.clone());
                } else {
                    tracing::debug!(url = %url, "still cannot connect to Home Assistant: {reason}");
                }
                status.send_modify(|s| s.state = LinkState::Unreachable(reason.clone()));
                for r in held.drain(..) {
                    let _ = r.reply.send(Err(CallError::Unreachable(reason.clone())));
                }
            }
        }
        // Back off between attempts; a caller waiting for an answer cuts the wait short.
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
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
    status.send_modify(|s| s.state = LinkState::Stopped);
}

async fn refuse_all(held: Vec<Request>, requests: &mut mpsc::Receiver<Request>, message: &str, stop: &StopSignal) {
    for r in held {
        let _ = r.reply.send(Err(CallError::AuthFailed(message.to_owned())));
    }
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            next = requests.recv() => match next {
                Some(r) => { let _ = r.reply.send(Err(CallError::AuthFailed(message.to_owned()))); }
                None => return,
            },
        }
    }
}
