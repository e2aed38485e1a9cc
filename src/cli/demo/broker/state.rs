//! What the broker keeps beyond one connection: sessions (subscriptions, and for persistent
//! sessions the QoS 1 messages that arrived while the client was away) and retained messages.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rumqttc::mqttbytes::{matches, QoS};
use rumqttc::{Packet, Publish};
use tokio::sync::mpsc;

/// A persistent session keeps at most this many messages for an absent client; older ones go.
const QUEUE_LIMIT: usize = 10_000;

/// How the broker admits clients.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// When set, CONNECT must carry exactly these credentials.
    pub credentials: Option<(String, String)>,
}

pub(crate) type Outbox = mpsc::UnboundedSender<Packet>;

struct Session {
    /// The live connection, if the client is connected.
    online: Option<(u64, Outbox)>,
    /// `clean_session = false`: survives disconnects.
    persistent: bool,
    filters: Vec<(String, QoS)>,
    queued: VecDeque<Publish>,
    next_pkid: u16,
}

#[derive(Default)]
pub(crate) struct State {
    sessions: HashMap<String, Session>,
    retained: BTreeMap<String, Publish>,
    connections: u64,
}

impl State {
    pub(crate) fn next_connection(&mut self) -> u64 {
        self.connections += 1;
        self.connections
    }

    /// Attaches `connection` to the session of `client_id`; returns whether a session was
    /// present. A second connection with the same id takes over, as the spec says.
    pub(crate) fn connect(&mut self, client_id: &str, connection: u64, outbox: Outbox, clean: bool) -> bool {
        let resumed = !clean && self.sessions.get(client_id).is_some_and(|s| s.persistent);
        if !resumed {
            self.sessions.remove(client_id);
        }
        let session = self.sessions.entry(client_id.to_owned()).or_insert_with(|| Session {
            online: None,
            persistent: !clean,
            filters: Vec::new(),
            queued: VecDeque::new(),
            next_pkid: 0,
        });
        session.online = Some((connection, outbox));
        session.persistent = !clean;
        resumed
    }

    /// Sends what waited for a resumed session (after its CONNACK went out).
    pub(crate) fn flush_queue(&mut self, client_id: &str) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            while let Some(publish) = session.queued.pop_front() {
                session.send(&publish, publish.qos, false);
            }
        }
    }

    /// Detaches `connection`; a clean session ends with it.
    pub(crate) fn disconnect(&mut self, client_id: &str, connection: u64) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if session.online.as_ref().is_some_and(|(c, _)| *c == connection) {
            session.online = None;
            if !session.persistent {
                self.sessions.remove(client_id);
            }
        }
    }

    /// Every client loses its connection; persistent sessions stay.
    pub(crate) fn disconnect_all(&mut self) {
        self.sessions.retain(|_, s| {
            s.online = None;
            s.persistent
        });
    }

    /// Adds the filters and returns the retained messages they match, with the granted QoS.
    pub(crate) fn subscribe(&mut self, client_id: &str, filters: Vec<(String, QoS)>) -> Vec<(Publish, QoS)> {
        let mut deliveries = Vec::new();
        let Some(session) = self.sessions.get_mut(client_id) else {
            return deliveries;
        };
        for (filter, qos) in filters {
            deliveries.extend(
                self.retained
                    .values()
                    .filter(|p| matches(&p.topic, &filter))
                    .map(|p| (p.clone(), qos)),
            );
            session.filters.retain(|(f, _)| f != &filter);
            session.filters.push((filter, qos));
        }
        deliveries
    }

    pub(crate) fn deliver_retained(&mut self, client_id: &str, deliveries: Vec<(Publish, QoS)>) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            for (publish, qos) in deliveries {
                session.send(&publish, qos, true);
            }
        }
    }

    pub(crate) fn unsubscribe(&mut self, client_id: &str, topics: &[String]) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.filters.retain(|(f, _)| !topics.contains(f));
        }
    }

    /// Keeps a retained message and hands the publish to every matching subscriber.
    pub(crate) fn route(&mut self, publish: Publish) {
        if publish.retain {
            if publish.payload.is_empty() {
                self.retained.remove(&publish.topic);
            } else {
                self.retained.insert(publish.topic.clone(), publish.clone());
            }
        }
        for session in self.sessions.values_mut() {
            let granted = session
                .filters
                .iter()
                .filter(|(f, _)| matches(&publish.topic, f))
                .map(|(_, q)| *q)
                .max_by_key(|q| *q as u8);
            let Some(granted) = granted else { continue };
            let qos = if (publish.qos as u8) < (granted as u8) {
                publish.qos
            } else {
                granted
            };
            if session.online.is_some() {
                session.send(&publish, qos, false);
            } else if qos == QoS::AtLeastOnce {
                if session.queued.len() == QUEUE_LIMIT {
                    session.queued.pop_front();
                }
                let mut queued = publish.clone();
                queued.qos = qos;
                session.queued.push_back(queued);
            }
        }
    }
}

impl Session {
    fn send(&mut self, publish: &Publish, qos: QoS, retain: bool) {
        let Some((_, outbox)) = &self.online else { return };
        let mut out = Publish::new(publish.topic.clone(), qos, publish.payload.to_vec());
        out.retain = retain;
        if qos != QoS::AtMostOnce {
            self.next_pkid = self.next_pkid.checked_add(1).filter(|p| *p != 0).unwrap_or(1);
            out.pkid = self.next_pkid;
        }
        let _ = outbox.send(Packet::Publish(out));
    }
}
