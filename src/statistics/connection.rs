//! The websocket link to Home Assistant, owned by one background task: connect, authenticate,
//! number requests and match answers by id, notice a dead link, reconnect with backoff.
//! Callers talk to it through [`Connection::call`], which always returns within a bound.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::ha_version::MetadataStyle;
use super::protocol::{auth_text, parse_server_text, Command, Failure, ServerMessage};
use super::status::{ConnectionState, StatisticsStatus};
use super::tls;
use super::ws_url::WsUrl;
use crate::http::RetryPolicy;
use crate::secret::Secret;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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

struct Request {
    command: Command,
    reply: oneshot::Sender<Result<Value, CallError>>,
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

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender means every handle is gone: stop as well.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

enum ConnectError {
    AuthInvalid(String),
    Failed(String),
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
                let mut session = Session {
                    ws,
                    style,
                    next_id: 1,
                    pending: HashMap::new(),
                    settings: &settings,
                };
                match session
                    .serve(&mut requests, std::mem::take(&mut held), &mut shutdown)
                    .await
                {
                    SessionEnd::Shutdown => {
                        session.fail_pending(|_| CallError::Stopped);
                        let _ = timeout(Duration::from_secs(2), session.ws.close(None)).await;
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

/// Opens the websocket and authenticates; returns the link and HA's version.
async fn connect(settings: &LinkSettings) -> Result<(Ws, Option<String>), ConnectError> {
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
fn describe(e: &tungstenite::Error) -> String {
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

enum SessionEnd {
    Shutdown,
    Lost(String),
}

struct Pending {
    command: &'static str,
    /// `None` for the link's own pings.
    reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    deadline: Instant,
}

struct Session<'a> {
    ws: Ws,
    style: MetadataStyle,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    settings: &'a LinkSettings,
}

impl Session<'_> {
    /// Answers every request still waiting, once the status tells why.
    fn fail_pending(&mut self, error: impl Fn(&'static str) -> CallError) {
        for (_, p) in self.pending.drain() {
            if let Some(reply) = p.reply {
                let _ = reply.send(Err(error(p.command)));
            }
        }
    }

    async fn serve(
        &mut self,
        requests: &mut mpsc::Receiver<Request>,
        held: Vec<Request>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        for r in held {
            if let Err(reason) = self.send(r.command, Some(r.reply)).await {
                return SessionEnd::Lost(reason);
            }
        }
        let heartbeat = self.settings.heartbeat;
        let mut idle_check = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).min();
            tokio::select! {
                biased;
                _ = stopped(shutdown) => return SessionEnd::Shutdown,
                frame = self.ws.next() => {
                    if let Err(reason) = self.receive(frame) {
                        return SessionEnd::Lost(reason);
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return SessionEnd::Lost(self.expire());
                }
                next = requests.recv() => match next {
                    Some(r) => {
                        if let Err(reason) = self.send(r.command, Some(r.reply)).await {
                            return SessionEnd::Lost(reason);
                        }
                    }
                    None => return SessionEnd::Shutdown,
                },
                _ = idle_check.tick() => {
                    if self.pending.is_empty() {
                        if let Err(reason) = self.send(Command::Ping, None).await {
                            return SessionEnd::Lost(reason);
                        }
                    }
                }
            }
        }
    }

    async fn send(
        &mut self,
        command: Command,
        reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    ) -> Result<(), String> {
        if reply.as_ref().is_some_and(|r| r.is_closed()) {
            // The caller gave up while the request was queued; sending it now would only
            // make HA do work nobody waits for.
            return Ok(());
        }
        let id = self.next_id;
        self.next_id += 1;
        let name = command.name();
        let text = command.to_text(id, self.style);
        tracing::debug!(
            id,
            command = name,
            subject = command.subject(),
            "sending to Home Assistant"
        );
        let request_timeout = self.settings.request_timeout;
        match timeout(request_timeout, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let reason = describe(&e);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(CallError::Unreachable(reason.clone())));
                }
                return Err(reason);
            }
            Err(_) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(CallError::Timeout(request_timeout)));
                }
                return Err(format!(
                    "sending {name} stalled for {}",
                    humantime::format_duration(request_timeout)
                ));
            }
        }
        self.pending.insert(
            id,
            Pending {
                command: name,
                reply,
                deadline: Instant::now() + request_timeout,
            },
        );
        Ok(())
    }

    fn receive(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Result<(), String> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => return Err("Home Assistant closed the connection".into()),
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(describe(&e)),
            None => return Err("the connection closed".into()),
        };
        let messages = match parse_server_text(text.as_str()) {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!("ignoring a message from Home Assistant: {e}");
                return Ok(());
            }
        };
        for message in messages {
            let (id, outcome) = match message {
                ServerMessage::Result { id, outcome } => (id, outcome.map_err(CallError::Failed)),
                ServerMessage::Pong { id } => (id, Ok(Value::Null)),
                _ => continue,
            };
            match self.pending.remove(&id) {
                Some(Pending { reply: Some(reply), .. }) => {
                    let _ = reply.send(outcome);
                }
                Some(Pending { reply: None, .. }) => {}
                None => tracing::debug!(id, "answer to a request nobody waits for any more"),
            }
        }
        Ok(())
    }

    /// Fails the requests past their deadline. HA that does not answer within the timeout is
    /// stuck or the link is dead; the caller reconnects either way.
    fn expire(&mut self) -> String {
        let now = Instant::now();
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        let mut names = Vec::new();
        for id in late {
            if let Some(p) = self.pending.remove(&id) {
                names.push(p.command);
                if let Some(reply) = p.reply {
                    let _ = reply.send(Err(CallError::Timeout(self.settings.request_timeout)));
                }
            }
        }
        format!(
            "no answer to {} within {}",
            names.join(", "),
            humantime::format_duration(self.settings.request_timeout)
        )
    }
}
