//! A small embedded MQTT 3.1.1 broker for `demo` and for tests on machines without mosquitto:
//! QoS 0/1, retained messages, wildcards, last will, optional user/password. It is not meant to
//! face a network: it binds where it is told (the demo uses 127.0.0.1).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, matches, QoS};
use rumqttc::{ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const MAX_PACKET: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// When set, CONNECT must carry exactly these credentials.
    pub credentials: Option<(String, String)>,
}

struct Session {
    connection: u64,
    tx: mpsc::UnboundedSender<Packet>,
    filters: Vec<(String, QoS)>,
    next_pkid: u16,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    retained: BTreeMap<String, Publish>,
}

pub struct EmbeddedBroker {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl EmbeddedBroker {
    pub async fn start(bind: &str, options: BrokerOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let state = Arc::new(Mutex::new(State::default()));
        let options = Arc::new(options);
        let accept_stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = 0u64;
            loop {
                let (socket, _) = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                connection += 1;
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve(
                    socket,
                    connection,
                    state.clone(),
                    options.clone(),
                    accept_stop.clone(),
                ));
            }
        });
        Ok(EmbeddedBroker { addr, stop })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and drops every connection (clients see a broken connection).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    socket: TcpStream,
    connection: u64,
    state: Arc<Mutex<State>>,
    options: Arc<BrokerOptions>,
    stop: CancellationToken,
) {
    let (mut reader, mut writer) = socket.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Packet>();
    let writer_stop = stop.clone();
    let writer_task = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        loop {
            let packet = tokio::select! {
                _ = writer_stop.cancelled() => break,
                packet = rx.recv() => match packet { Some(p) => p, None => break },
            };
            buf.clear();
            if packet.write(&mut buf, MAX_PACKET).is_err() || writer.write_all(&buf).await.is_err() {
                break;
            }
            if matches!(packet, Packet::ConnAck(ref ack) if ack.code != ConnectReturnCode::Success) {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let mut buf = BytesMut::with_capacity(4096);
    let mut client: Option<(String, Option<rumqttc::LastWill>)> = None;
    let mut clean_exit = false;
    'read: loop {
        let packet = loop {
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(packet) => break packet,
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(_) => break 'read,
            }
            let read = tokio::select! {
                _ = stop.cancelled() => break 'read,
                read = reader.read_buf(&mut buf) => read,
            };
            match read {
                Ok(0) | Err(_) => break 'read,
                Ok(_) => {}
            }
        };
        match (packet, &client) {
            (Packet::Connect(connect), None) => {
                let accepted = match &options.credentials {
                    None => true,
                    Some((user, pass)) => connect
                        .login
                        .as_ref()
                        .is_some_and(|l| &l.username == user && &l.password == pass),
                };
                if !accepted {
                    let _ = tx.send(Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::BadUserNamePassword,
                        false,
                    )));
                    clean_exit = true;
                    break 'read;
                }
                let id = if connect.client_id.is_empty() {
                    format!("anon-{connection}")
                } else {
                    connect.client_id.clone()
                };
                {
                    let mut st = state.lock().expect("broker state");
                    // A second connection with the same id takes over, as the spec says.
                    st.sessions.insert(
                        id.clone(),
                        Session {
                            connection,
                            tx: tx.clone(),
                            filters: Vec::new(),
                            next_pkid: 0,
                        },
                    );
                }
                client = Some((id, connect.last_will));
                let _ = tx.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)));
            }
            (_, None) => break 'read,
            (Packet::Publish(publish), Some(_)) => {
                if publish.qos == QoS::AtLeastOnce {
                    let _ = tx.send(Packet::PubAck(PubAck::new(publish.pkid)));
                }
                route(&state, publish);
            }
            (Packet::Subscribe(subscribe), Some((id, _))) => {
                let mut st = state.lock().expect("broker state");
                let retained: Vec<Publish> = st.retained.values().cloned().collect();
                let mut deliveries = Vec::new();
                let mut codes = Vec::new();
                for filter in subscribe.filters {
                    let qos = if filter.qos == QoS::ExactlyOnce {
                        QoS::AtLeastOnce
                    } else {
                        filter.qos
                    };
                    codes.push(SubscribeReasonCode::Success(qos));
                    deliveries.extend(
                        retained
                            .iter()
                            .filter(|p| matches(&p.topic, &filter.path))
                            .map(|p| (p.clone(), qos)),
                    );
                    if let Some(session) = st.sessions.get_mut(id) {
                        session.filters.retain(|(f, _)| f != &filter.path);
                        session.filters.push((filter.path, qos));
                    }
                }
                let _ = tx.send(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
                if let Some(session) = st.sessions.get_mut(id) {
                    for (publish, qos) in deliveries {
                        send(session, &publish, qos, true);
                    }
                }
            }
            (Packet::Unsubscribe(unsubscribe), Some((id, _))) => {
                let mut st = state.lock().expect("broker state");
                if let Some(session) = st.sessions.get_mut(id) {
                    session.filters.retain(|(f, _)| !unsubscribe.topics.contains(f));
                }
                let _ = tx.send(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
            }
            (Packet::PingReq, Some(_)) => {
                let _ = tx.send(Packet::PingResp);
            }
            (Packet::Disconnect, Some(_)) => {
                clean_exit = true;
                break 'read;
            }
            // Acks of our QoS 1 deliveries: nothing is retransmitted, so nothing to track.
            (_, Some(_)) => {}
        }
    }

    if let Some((id, will)) = client {
        {
            let mut st = state.lock().expect("broker state");
            if st.sessions.get(&id).is_some_and(|s| s.connection == connection) {
                st.sessions.remove(&id);
            }
        }
        if !clean_exit && !stop.is_cancelled() {
            if let Some(will) = will {
                let mut publish = Publish::new(will.topic, will.qos, will.message.to_vec());
                publish.retain = will.retain;
                route(&state, publish);
            }
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

fn route(state: &Mutex<State>, publish: Publish) {
    let mut st = state.lock().expect("broker state");
    if publish.retain {
        if publish.payload.is_empty() {
            st.retained.remove(&publish.topic);
        } else {
            st.retained.insert(publish.topic.clone(), publish.clone());
        }
    }
    for session in st.sessions.values_mut() {
        let granted = session
            .filters
            .iter()
            .filter(|(f, _)| matches(&publish.topic, f))
            .map(|(_, q)| *q)
            .max_by_key(|q| *q as u8);
        if let Some(granted) = granted {
            let qos = if (publish.qos as u8) < (granted as u8) {
                publish.qos
            } else {
                granted
            };
            send(session, &publish, qos, false);
        }
    }
}

fn send(session: &mut Session, publish: &Publish, qos: QoS, retain: bool) {
    let mut out = Publish::new(publish.topic.clone(), qos, publish.payload.to_vec());
    out.retain = retain;
    if qos != QoS::AtMostOnce {
        session.next_pkid = session.next_pkid.checked_add(1).filter(|p| *p != 0).unwrap_or(1);
        out.pkid = session.next_pkid;
    }
    let _ = session.tx.send(Packet::Publish(out));
}
