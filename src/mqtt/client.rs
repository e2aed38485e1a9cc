//! The connection task. It alone owns rumqttc's `EventLoop` and polls it without pause; callers
//! talk to it through a channel and get a oneshot answer when the broker has PUBACKed.
//!
//! rumqttc reports a publish's packet id only as `Outgoing::Publish(pkid)`, in the order requests
//! were handed to it. This task is the only submitter, so it maps that order back to callers.
//! With a clean session, rumqttc drops everything queued when the connection breaks; every
//! caller still waiting is then told `Disconnected` and publishes again after the reconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::actor::{Actor, StopSignal};
use crate::backoff_policy::RetryPolicy;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub(crate) struct MqttSettings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) client_id: String,
    pub(crate) keep_alive: Duration,
    pub(crate) availability_topic: String,
    /// Topics to (re)subscribe on every ConnAck.
    pub(crate) subscriptions: Vec<String>,
    // Read only by the broker TLS of the `mqtt-tls` feature; the default build has none.
    #[cfg_attr(not(feature = "mqtt-tls"), allow(dead_code))]
    pub(crate) tls: bool,
    #[cfg_attr(not(feature = "mqtt-tls"), allow(dead_code))]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Reconnect delays.
    pub(crate) reconnect: RetryPolicy,
}

impl MqttSettings {
    /// Reconnect delays: 1 s doubling up to 60 s, with jitter; reset on ConnAck.
    pub(crate) fn reconnect_policy() -> RetryPolicy {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            ..RetryPolicy::default()
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PublishError {
    #[error("the connection to the MQTT broker broke before the broker acknowledged the message")]
    Disconnected,
    #[error("the MQTT connection is shut down")]
    Closed,
    #[error("the MQTT broker did not acknowledge within {0:?}")]
    Timeout(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// Why the last attempt failed, in words for the user.
    Disconnected(String),
}

#[derive(Debug, Clone)]
pub(crate) enum MqttEvent {
    /// A ConnAck: subscriptions and availability are renewed; retained state must be re-published.
    Connected,
    Message {
        topic: String,
        payload: bytes::Bytes,
    },
}

struct PublishRequest {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    /// `None`: fire and forget (retained messages the bridge re-publishes on every ConnAck).
    done: Option<oneshot::Sender<Result<(), PublishError>>>,
}

/// A cheap, cloneable handle to the connection task.
#[derive(Clone)]
pub struct MqttHandle {
    commands: mpsc::Sender<PublishRequest>,
    events: broadcast::Sender<MqttEvent>,
    state: watch::Receiver<ConnectionState>,
    actor: Arc<Actor>,
}

/// Leaves room below rumqttc's own in-flight window so its packet ids never collide.
const MAX_IN_FLIGHT: usize = 50;
const RUMQTTC_INFLIGHT: u16 = 100;
const REQUEST_CAPACITY: usize = 128;

impl MqttHandle {
    /// Starts the connection task. It connects in the background and keeps reconnecting with
    /// backoff until `shutdown`.
    pub(crate) fn start(settings: MqttSettings) -> MqttHandle {
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (events_tx, _) = broadcast::channel(1024);
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let (client, eventloop) = AsyncClient::new(options(&settings), REQUEST_CAPACITY);
        let task = ConnectionTask {
            settings,
            client,
            commands: commands_rx,
            events: events_tx.clone(),
            state: state_tx,
            submitted: VecDeque::new(),
            in_flight: HashMap::new(),
            connected: false,
            failures: 0,
        };
        let actor = Actor::spawn(|stop| task.run(eventloop, stop));
        MqttHandle {
            commands: commands_tx,
            events: events_tx,
            state: state_rx,
            actor: Arc::new(actor),
        }
    }

    /// Queues a publish without waiting for it; order with other publishes is kept. Used for
    /// retained messages, which are published again on every ConnAck anyway.
    pub(crate) fn publish_nowait(&self, topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) {
        let request = PublishRequest {
            topic: topic.into(),
            payload: payload.into(),
            retain,
            done: None,
        };
        if let Err(e) = self.commands.try_send(request) {
            tracing::debug!("publish not queued ({e}); it goes out again on the next connection");
        }
    }

    /// Publishes with QoS 1 and returns once the broker acknowledged it.
    pub(crate) async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), PublishError> {
        let (done, answer) = oneshot::channel();
        let request = PublishRequest {
            topic: topic.into(),
            payload: payload.into(),
            retain,
            done: Some(done),
        };
        self.commands.send(request).await.map_err(|_| PublishError::Closed)?;
        answer.await.unwrap_or(Err(PublishError::Closed))
    }

    /// `publish` that gives up after `limit`; a request given up on is never sent later.
    pub(crate) async fn publish_within(
        &self,
        limit: Duration,
        topic: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), PublishError> {
        match tokio::time::timeout(limit, self.publish(topic, payload, retain)).await {
            Ok(result) => result,
            Err(_) => Err(PublishError::Timeout(limit)),
        }
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<MqttEvent> {
        self.events.subscribe()
    }

    pub(crate) fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    pub fn state_watch(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Waits until connected (or the task ends).
    pub(crate) async fn connected(&self) {
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| *s == ConnectionState::Connected).await;
    }

    /// Publishes `offline` (retained) when connected, disconnects cleanly and stops the task.
    pub async fn shutdown(&self) {
        // The goodbye itself gives up after 3 s; this only guards against a stuck task.
        self.actor.stop(Duration::from_secs(5)).await;
    }
}

fn options(settings: &MqttSettings) -> MqttOptions {
    let mut options = MqttOptions::new(settings.client_id.clone(), settings.host.clone(), settings.port);
    options.set_keep_alive(settings.keep_alive);
    options.set_clean_session(true);
    options.set_inflight(RUMQTTC_INFLIGHT);
    options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    options.set_last_will(LastWill::new(
        settings.availability_topic.clone(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options.set_credentials(user.clone(), password);
    }
    #[cfg(feature = "mqtt-tls")]
    if settings.tls {
        options.set_transport(tls_transport(settings));
    }
    options
}

#[cfg(feature = "mqtt-tls")]
fn tls_transport(settings: &MqttSettings) -> rumqttc::Transport {
    match settings.ca_file.as_ref().and_then(|p| std::fs::read(p).ok()) {
        Some(ca) => rumqttc::Transport::tls(ca, None, None),
        None => rumqttc::Transport::tls_with_default_config(),
    }
}

struct ConnectionTask {
    settings: MqttSettings,
    client: AsyncClient,
    commands: mpsc::Receiver<PublishRequest>,
    events: broadcast::Sender<MqttEvent>,
    state: watch::Sender<ConnectionState>,
    /// Publishes handed to rumqttc whose packet id is not known yet, in submission order.
    submitted: VecDeque<Option<oneshot::Sender<Result<(), PublishError>>>>,
    in_flight: HashMap<u16, oneshot::Sender<Result<(), PublishError>>>,
    connected: bool,
    failures: u32,
}

impl ConnectionTask {
    /// One `poll()` future lives until it yields an event: a publish request arriving meanwhile
    /// is handed to rumqttc without dropping it, because dropping a poll that is part-way
    /// through writing a packet would corrupt the stream. Only a stop abandons it.
    async fn run(mut self, mut eventloop: EventLoop, stop: StopSignal) {
        let mut delays = self.settings.reconnect.delays();
        loop {
            let event = {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    let can_submit = self.connected && self.submitted.len() + self.in_flight.len() < MAX_IN_FLIGHT;
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => break None,
                        event = &mut poll => break Some(event),
                        request = self.commands.recv(), if can_submit => match request {
                            Some(request) => self.submit(request),
                            None => break None,
                        },
                    }
                }
            };
            match event {
                None => break,
                Some(Ok(event)) => {
                    if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                        delays.reset();
                    }
                    self.on_event(event);
                }
                Some(Err(error)) => {
                    let wait = delays.next_delay();
                    self.on_error(&error, wait);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.shutdown(&mut eventloop).await;
    }

    fn submit(&mut self, request: PublishRequest) {
        if request.done.as_ref().is_some_and(|d| d.is_closed()) {
            // The caller gave up (timeout); sending now could duplicate what it will resend.
            return;
        }
        match self
            .client
            .try_publish(request.topic, QoS::AtLeastOnce, request.retain, request.payload)
        {
            Ok(()) => self.submitted.push_back(request.done),
            Err(e) => {
                tracing::warn!("MQTT request queue refused a publish: {e}");
                if let Some(done) = request.done {
                    let _ = done.send(Err(PublishError::Disconnected));
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                tracing::info!(
                    host = %self.settings.host,
                    port = self.settings.port,
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                self.connected = true;
                self.failures = 0;
                let _ = self.state.send(ConnectionState::Connected);
                for topic in &self.settings.subscriptions {
                    if let Err(e) = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(topic, "could not subscribe: {e}");
                    }
                }
                match self.client.try_publish(
                    self.settings.availability_topic.clone(),
                    QoS::AtLeastOnce,
                    true,
                    "online",
                ) {
                    Ok(()) => self.submitted.push_back(None),
                    Err(e) => tracing::warn!("could not publish availability: {e}"),
                }
                let _ = self.events.send(MqttEvent::Connected);
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let _ = self.events.send(MqttEvent::Message {
                    topic: publish.topic,
                    payload: publish.payload,
                });
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(done) = self.in_flight.remove(&ack.pkid) {
                    let _ = done.send(Ok(()));
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => match self.submitted.pop_front() {
                Some(Some(done)) => {
                    self.in_flight.insert(pkid, done);
                }
                Some(None) => {}
                None => tracing::debug!(pkid, "outgoing publish with no submitter (retransmission)"),
            },
            _ => {}
        }
    }

    fn on_error(&mut self, error: &ConnectionError, wait: Duration) {
        self.fail_pending(PublishError::Disconnected);
        let was_connected = std::mem::replace(&mut self.connected, false);
        self.failures += 1;
        let reason = describe(error, &self.settings);
        let _ = self.state.send(ConnectionState::Disconnected(reason.clone()));
        let retry = humantime::format_duration(Duration::from_millis(wait.as_millis() as u64 / 100 * 100));
        if was_connected {
            tracing::warn!("lost the MQTT connection: {reason}; reconnecting in {retry}");
        } else if matches!(
            error,
            ConnectionError::ConnectionRefused(
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
            )
        ) {
            tracing::error!(attempt = self.failures, "{reason}; retrying in {retry}");
        } else {
            tracing::warn!(attempt = self.failures, "{reason}; retrying in {retry}");
        }
    }

    fn fail_pending(&mut self, error: PublishError) {
        for done in self.submitted.drain(..).flatten() {
            let _ = done.send(Err(error.clone()));
        }
        for (_, done) in self.in_flight.drain() {
            let _ = done.send(Err(error.clone()));
        }
    }

    async fn shutdown(&mut self, eventloop: &mut EventLoop) {
        if self.connected {
            // Last states queued just before the stop still go out, ahead of `offline`.
            while let Ok(request) = self.commands.try_recv() {
                self.submit(request);
            }
            let _ = self.client.try_publish(
                self.settings.availability_topic.clone(),
                QoS::AtLeastOnce,
                true,
                "offline",
            );
            self.submitted.push_back(None);
            let _ = self.client.try_disconnect();
            // Drive the loop until the offline message and DISCONNECT are written, or give up.
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        self.fail_pending(PublishError::Closed);
        let _ = self.state.send(ConnectionState::Disconnected("shut down".into()));
    }
}

fn describe(error: &ConnectionError, settings: &MqttSettings) -> String {
    let at = format!("{}:{}", settings.host, settings.port);
    match error {
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword) => format!(
            "the MQTT broker at {at} rejected the user name or password; check mqtt.username and mqtt.password"
        ),
        ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => format!(
            "the MQTT broker at {at} refused the connection as not authorised; check mqtt.username, mqtt.password and the broker's ACL"
        ),
        ConnectionError::ConnectionRefused(code) => format!("the MQTT broker at {at} refused the connection: {code:?}"),
        ConnectionError::Io(e) => format!("cannot reach the MQTT broker at {at}: {e}; check mqtt.host and mqtt.port and that the broker runs"),
        ConnectionError::NetworkTimeout => format!("connecting to the MQTT broker at {at} timed out"),
        other => format!("MQTT connection to {at} failed: {other}"),
    }
}
