//! The websocket link to Home Assistant, owned by one background task (an [`Actor`]): connect,
//! authenticate, serve requests, notice a dead link, reconnect with backoff. Callers talk to it
//! through [`Client::call`], which always returns within a bound.

use std::time::Duration;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{timeout, timeout_at, Instant};

use super::handshake::{connect, ConnectError};
use super::link::{CallError, LinkSettings, Request, Subscription};
use super::session::{Session, SessionEnd};
use super::status::{LinkState, LinkStatus};
use super::Command;
use crate::actor::{Actor, StopSignal};
use crate::backoff_policy::Delays;

/// Requests waiting for the task; callers block on a full queue only up to their bound.
const QUEUE: usize = 64;

/// A cheap handle to the connection task.
#[derive(Clone)]
pub(crate) struct Client {
    requests: mpsc::Sender<Request>,
    subscriptions: mpsc::UnboundedSender<Subscription>,
    status: watch::Receiver<LinkStatus>,
    bound: Duration,
    actor: Arc<Actor>,
}

impl Client {
    /// Starts the connection task on the current runtime; it connects in the background.
    pub(crate) fn start(settings: LinkSettings) -> Client {
        let (requests, rx) = mpsc::channel(QUEUE);
        let (subscriptions, new_subscriptions) = mpsc::unbounded_channel();
        let initial = LinkStatus {
            state: LinkState::Connecting,
            ha_version: None,
            url: settings.url.to_string(),
        };
        let (status_tx, status) = watch::channel(initial);
        // A request may wait for one connection attempt, then for its answer.
        let bound = settings.connect_timeout + settings.request_timeout + Duration::from_secs(5);
        let actor = Actor::spawn(|stop| run(settings, rx, new_subscriptions, status_tx, stop));
        Client {
            requests,
            subscriptions,
            status,
            bound,
            actor: Arc::new(actor),
        }
    }

    pub(crate) fn status(&self) -> LinkStatus {
        self.status.borrow().clone()
    }

    pub(crate) fn status_updates(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Sends `command` and waits for its answer, connecting first if needed.
    pub(crate) async fn call(&self, command: impl Command) -> Result<Value, CallError> {
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

    /// Subscribes with `command` (e.g. `subscribe_entities`) on this and every later connection;
    /// its events arrive on the receiver, each connection's afresh. Dropping the receiver ends it.
    pub(crate) fn subscribe(&self, command: impl Command) -> mpsc::UnboundedReceiver<Value> {
        let (events, receiver) = mpsc::unbounded_channel();
        let _ = self.subscriptions.send(Subscription {
            command: Arc::new(command),
            events,
        });
        receiver
    }

    /// Closes the link and waits (boundedly) for the task to end; later calls fail with
    /// [`CallError::Stopped`].
    pub(crate) async fn stop(&self) {
        self.actor.stop(Duration::from_secs(5)).await;
    }
}

/// What the task does after a step.
enum Flow {
    Continue,
    Stop,
}

/// The connection task's state between attempts.
struct Link {
    settings: LinkSettings,
    url: String,
    requests: mpsc::Receiver<Request>,
    new_subscriptions: mpsc::UnboundedReceiver<Subscription>,
    subscriptions: Vec<Subscription>,
    status: watch::Sender<LinkStatus>,
    stop: StopSignal,
    delays: Delays,
    /// Requests that arrived while no link existed; each gets one fresh attempt.
    held: Vec<Request>,
    /// The last connection failure warned about, so a long outage warns once.
    last_warning: Option<String>,
}

async fn run(
    settings: LinkSettings,
    requests: mpsc::Receiver<Request>,
    new_subscriptions: mpsc::UnboundedReceiver<Subscription>,
    status: watch::Sender<LinkStatus>,
    stop: StopSignal,
) {
    let mut link = Link {
        url: settings.url.to_string(),
        delays: settings.reconnect.delays(),
        settings,
        requests,
        new_subscriptions,
        subscriptions: Vec::new(),
        status,
        stop,
        held: Vec::new(),
        last_warning: None,
    };
    loop {
        let attempt = tokio::select! {
            biased;
            _ = link.stop.cancelled() => break,
            attempt = timeout(link.settings.connect_timeout, connect(&link.settings)) => attempt.unwrap_or_else(|_| {
                Err(ConnectError::Failed(format!("no websocket handshake within {}", humantime::format_duration(link.settings.connect_timeout))))
            }),
        };
        let flow = match attempt {
            Ok((ws, ha_version)) => link.serve(ws, ha_version).await,
            Err(ConnectError::AuthInvalid(message)) => {
                link.refused(message).await;
                return;
            }
            Err(ConnectError::Failed(reason)) => {
                link.failed(reason);
                Flow::Continue
            }
        };
        if matches!(flow, Flow::Stop) || matches!(link.back_off().await, Flow::Stop) {
            break;
        }
    }
    for r in link.held.drain(..) {
        let _ = r.reply.send(Err(CallError::Stopped));
    }
    link.status.send_modify(|s| s.state = LinkState::Stopped);
}

impl Link {
    /// Serves requests over a fresh connection until it is lost or the task stops.
    async fn serve(&mut self, ws: super::handshake::Ws, ha_version: Option<String>) -> Flow {
        self.delays.reset();
        self.last_warning = None;
        tracing::info!(url = %self.url, ha_version = ha_version.as_deref().unwrap_or("unknown"), "connected to Home Assistant");
        self.status.send_modify(|s| {
            s.state = LinkState::Connected;
            s.ha_version = ha_version.clone();
        });
        let mut session = Session::new(ws, ha_version, &self.settings);
        match session
            .serve(
                &mut self.requests,
                std::mem::take(&mut self.held),
                &mut self.subscriptions,
                &mut self.new_subscriptions,
                &self.stop,
            )
            .await
        {
            SessionEnd::Shutdown => {
                session.fail_pending(|_| CallError::Stopped);
                session.close().await;
                Flow::Stop
            }
            SessionEnd::Lost(reason) => {
                tracing::warn!(url = %self.url, "connection to Home Assistant lost: {reason}; reconnecting");
                self.status
                    .send_modify(|s| s.state = LinkState::Unreachable(reason.clone()));
                session.fail_pending(|command| {
                    CallError::Unreachable(format!("the connection ended before the answer to {command}: {reason}"))
                });
                Flow::Continue
            }
        }
    }

    /// Home Assistant refused the token: retrying cannot succeed and counts as failed logins
    /// in HA, so every request is refused until the task stops.
    async fn refused(&mut self, message: String) {
        tracing::error!(
            url = %self.url,
            "Home Assistant refused the access token ({message}); statistics stay off until the token is fixed and meter2mqtt restarted"
        );
        self.status
            .send_modify(|s| s.state = LinkState::AuthFailed(message.clone()));
        refuse_all(std::mem::take(&mut self.held), &mut self.requests, &message, &self.stop).await;
        self.status.send_modify(|s| s.state = LinkState::Stopped);
    }

    fn failed(&mut self, reason: String) {
        if self.last_warning.as_deref() != Some(reason.as_str()) {
            tracing::warn!(url = %self.url, "cannot connect to Home Assistant: {reason}; retrying with backoff");
            self.last_warning = Some(reason.clone());
        } else {
            tracing::debug!(url = %self.url, "still cannot connect to Home Assistant: {reason}");
        }
        self.status
            .send_modify(|s| s.state = LinkState::Unreachable(reason.clone()));
        for r in self.held.drain(..) {
            let _ = r.reply.send(Err(CallError::Unreachable(reason.clone())));
        }
    }

    /// Waits before the next attempt; a caller waiting for an answer cuts the wait short.
    async fn back_off(&mut self) -> Flow {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => return Flow::Stop,
            next = self.requests.recv() => match next {
                Some(r) => self.held.push(r),
                None => return Flow::Stop,
            },
            _ = tokio::time::sleep(self.delays.next_delay()) => {}
        }
        while let Ok(r) = self.requests.try_recv() {
            self.held.push(r);
        }
        Flow::Continue
    }
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
