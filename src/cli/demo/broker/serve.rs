//! One client connection: a reader that decodes packets and hands each to its handler, and a
//! writer task that sends what the handlers and the router queue for this client.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, QoS};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PubAck, Publish, SubAck, Subscribe, SubscribeReasonCode,
    UnsubAck, Unsubscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::state::{BrokerOptions, Outbox, State};

const MAX_PACKET: usize = 16 * 1024 * 1024;

/// What one connection knows once CONNECT was accepted.
struct Client {
    id: String,
    will: Option<LastWill>,
}

/// How the packet loop goes on after a packet.
enum Next {
    Continue,
    /// The client said goodbye (DISCONNECT) or was refused: no last will.
    CleanExit,
    /// A protocol violation: drop the connection, the last will goes out.
    Drop,
}

struct Connection {
    number: u64,
    state: Arc<Mutex<State>>,
    options: Arc<BrokerOptions>,
    outbox: Outbox,
    client: Option<Client>,
}

pub(crate) async fn serve(
    socket: TcpStream,
    number: u64,
    state: Arc<Mutex<State>>,
    options: Arc<BrokerOptions>,
    stop: CancellationToken,
) {
    let (mut reader, writer) = socket.into_split();
    let (outbox, rx) = mpsc::unbounded_channel::<Packet>();
    let writer_task = tokio::spawn(write_packets(writer, rx, stop.clone()));
    let mut connection = Connection {
        number,
        state,
        options,
        outbox,
        client: None,
    };

    let mut buf = BytesMut::with_capacity(4096);
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
        match connection.handle(packet) {
            Next::Continue => {}
            Next::CleanExit => {
                clean_exit = true;
                break;
            }
            Next::Drop => break,
        }
    }
    connection.close(clean_exit || stop.is_cancelled());
    drop(connection);
    let _ = writer_task.await;
}

async fn write_packets(mut writer: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Packet>, stop: CancellationToken) {
    let mut buf = BytesMut::new();
    loop {
        let packet = tokio::select! {
            _ = stop.cancelled() => break,
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
}

impl Connection {
    fn handle(&mut self, packet: Packet) -> Next {
        if self.client.is_none() {
            return match packet {
                Packet::Connect(connect) => self.on_connect(connect),
                _ => Next::Drop,
            };
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe),
            Packet::PingReq => {
                let _ = self.outbox.send(Packet::PingResp);
                Next::Continue
            }
            Packet::Disconnect => Next::CleanExit,
            // A second CONNECT is a protocol violation.
            Packet::Connect(_) => Next::Drop,
            // Acks of our QoS 1 deliveries: nothing is retransmitted, so nothing to track.
            _ => Next::Continue,
        }
    }

    fn on_connect(&mut self, connect: Connect) -> Next {
        let accepted = match &self.options.credentials {
            None => true,
            Some((user, pass)) => connect
                .login
                .as_ref()
                .is_some_and(|l| &l.username == user && &l.password == pass),
        };
        if !accepted {
            let _ = self.outbox.send(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::BadUserNamePassword,
                false,
            )));
            return Next::CleanExit;
        }
        let id = if connect.client_id.is_empty() {
            format!("anon-{}", self.number)
        } else {
            connect.client_id.clone()
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let resumed = state.connect(&id, self.number, self.outbox.clone(), connect.clean_session);
        let _ = self
            .outbox
            .send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, resumed)));
        state.flush_queue(&id);
        self.client = Some(Client {
            id,
            will: connect.last_will,
        });
        Next::Continue
    }

    fn on_publish(&mut self, publish: Publish) -> Next {
        if publish.qos == QoS::AtLeastOnce {
            let _ = self.outbox.send(Packet::PubAck(PubAck::new(publish.pkid)));
        }
        self.state.lock().unwrap_or_else(PoisonError::into_inner).route(publish);
        Next::Continue
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) -> Next {
        let Some(client) = &self.client else { return Next::Drop };
        // QoS 2 is granted as 1: this broker has no exactly-once delivery.
        let filters: Vec<(String, QoS)> = subscribe
            .filters
            .into_iter()
            .map(|f| {
                (
                    f.path,
                    if f.qos == QoS::ExactlyOnce {
                        QoS::AtLeastOnce
                    } else {
                        f.qos
                    },
                )
            })
            .collect();
        let codes = filters.iter().map(|(_, q)| SubscribeReasonCode::Success(*q)).collect();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let retained = state.subscribe(&client.id, filters);
        let _ = self.outbox.send(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
        state.deliver_retained(&client.id, retained);
        Next::Continue
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Next {
        let Some(client) = &self.client else { return Next::Drop };
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unsubscribe(&client.id, &unsubscribe.topics);
        let _ = self.outbox.send(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
        Next::Continue
    }

    /// Ends the session's connection; the last will goes out unless the client left cleanly or
    /// the broker itself is stopping.
    fn close(&mut self, quiet: bool) {
        let Some(client) = self.client.take() else { return };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.disconnect(&client.id, self.number);
        if quiet {
            return;
        }
        if let Some(will) = client.will {
            let mut publish = Publish::new(will.topic, will.qos, will.message.to_vec());
            publish.retain = will.retain;
            state.route(publish);
        }
    }
}
