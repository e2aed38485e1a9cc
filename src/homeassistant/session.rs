//! One authenticated websocket connection: requests numbered from 1, answers matched by id,
//! deadlines for answers, and a ping when the link has been idle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

use super::handshake::{describe, Ws};
use super::link::{CallError, LinkSettings, Request, Subscription};
use super::messages::{parse_server_text, ServerMessage};
use super::Command;
use crate::actor::StopSignal;

/// What goes out: a caller's command, a standing subscription, or the link's own keep-alive.
enum Outgoing {
    Call(Box<dyn Command>),
    Subscribe(Arc<dyn Command>),
    Ping,
}

pub(crate) enum SessionEnd {
    Shutdown,
    Lost(String),
}

struct Pending {
    command: &'static str,
    /// `None` for the link's own pings.
    reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    deadline: Instant,
}

pub(crate) struct Session<'a> {
    ws: Ws,
    /// The version this connection's Home Assistant reported; command bodies may depend on it.
    ha_version: Option<String>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    /// Where the events of each subscription made on this connection go.
    subscribed: HashMap<u64, mpsc::UnboundedSender<Value>>,
    settings: &'a LinkSettings,
}

impl<'a> Session<'a> {
    pub(crate) fn new(ws: Ws, ha_version: Option<String>, settings: &'a LinkSettings) -> Session<'a> {
        Session {
            ws,
            ha_version,
            next_id: 1,
            pending: HashMap::new(),
            subscribed: HashMap::new(),
            settings,
        }
    }

    pub(crate) async fn close(&mut self) {
        let _ = timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }

    /// Answers every request still waiting, once the status tells why.
    pub(crate) fn fail_pending(&mut self, error: impl Fn(&'static str) -> CallError) {
        for (_, p) in self.pending.drain() {
            if let Some(reply) = p.reply {
                let _ = reply.send(Err(error(p.command)));
            }
        }
    }

    pub(crate) async fn serve(
        &mut self,
        requests: &mut mpsc::Receiver<Request>,
        held: Vec<Request>,
        subscriptions: &mut Vec<Subscription>,
        new_subscriptions: &mut mpsc::UnboundedReceiver<Subscription>,
        stop: &StopSignal,
    ) -> SessionEnd {
        while let Ok(s) = new_subscriptions.try_recv() {
            subscriptions.push(s);
        }
        subscriptions.retain(|s| !s.events.is_closed());
        for s in subscriptions.iter() {
            if let Err(reason) = self.subscribe(s).await {
                return SessionEnd::Lost(reason);
            }
        }
        for r in held {
            if let Err(reason) = self.send(Outgoing::Call(r.command), Some(r.reply)).await {
                return SessionEnd::Lost(reason);
            }
        }
        let heartbeat = self.settings.heartbeat;
        let mut idle_check = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).min();
            tokio::select! {
                biased;
                _ = stop.cancelled() => return SessionEnd::Shutdown,
                frame = self.ws.next() => {
                    if let Err(reason) = self.receive(frame) {
                        return SessionEnd::Lost(reason);
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return SessionEnd::Lost(self.expire());
                }
                // A subscription made before a request goes out first.
                Some(s) = new_subscriptions.recv() => {
                    let sent = self.subscribe(&s).await;
                    subscriptions.push(s);
                    if let Err(reason) = sent {
                        return SessionEnd::Lost(reason);
                    }
                }
                next = requests.recv() => match next {
                    Some(r) => {
                        if let Err(reason) = self.send(Outgoing::Call(r.command), Some(r.reply)).await {
                            return SessionEnd::Lost(reason);
                        }
                    }
                    None => return SessionEnd::Shutdown,
                },
                _ = idle_check.tick() => {
                    if self.pending.is_empty() {
                        if let Err(reason) = self.send(Outgoing::Ping, None).await {
                            return SessionEnd::Lost(reason);
                        }
                    }
                }
            }
        }
    }

    async fn subscribe(&mut self, subscription: &Subscription) -> Result<(), String> {
        let id = self
            .send(Outgoing::Subscribe(subscription.command.clone()), None)
            .await?;
        if let Some(id) = id {
            self.subscribed.insert(id, subscription.events.clone());
        }
        Ok(())
    }

    /// Sends `outgoing`; its id once it is on its way.
    async fn send(
        &mut self,
        outgoing: Outgoing,
        reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    ) -> Result<Option<u64>, String> {
        if reply.as_ref().is_some_and(|r| r.is_closed()) {
            // The caller gave up while the request was queued; sending it now would only
            // make HA do work nobody waits for.
            return Ok(None);
        }
        let id = self.next_id;
        self.next_id += 1;
        let (name, subject, mut body) = match &outgoing {
            Outgoing::Call(command) => (
                command.name(),
                command.subject(),
                command.body(self.ha_version.as_deref()),
            ),
            Outgoing::Subscribe(command) => (
                command.name(),
                command.subject(),
                command.body(self.ha_version.as_deref()),
            ),
            Outgoing::Ping => ("ping", "the connection", Map::new()),
        };
        body.insert("id".into(), id.into());
        body.insert("type".into(), name.into());
        let text = Value::Object(body).to_string();
        tracing::debug!(id, command = name, subject, "sending to Home Assistant");
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
        Ok(Some(id))
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
                ServerMessage::Event { id, event } => {
                    if let Some(events) = self.subscribed.get(&id) {
                        if events.send(event).is_err() {
                            self.subscribed.remove(&id);
                        }
                    }
                    continue;
                }
                ServerMessage::Result { id, outcome } => {
                    if let (Err(failure), true) = (&outcome, self.subscribed.contains_key(&id)) {
                        tracing::warn!(
                            id,
                            "Home Assistant refused a subscription: {}: {}",
                            failure.code,
                            failure.message
                        );
                        self.subscribed.remove(&id);
                    }
                    (id, outcome.map_err(CallError::Failed))
                }
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
