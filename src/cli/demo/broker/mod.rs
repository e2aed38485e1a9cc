//! A small embedded MQTT 3.1.1 broker: what `demo` runs on, and what the tests use on machines
//! without mosquitto. QoS 0/1, retained messages, wildcards, last will, persistent sessions
//! (`clean_session = false`: subscriptions kept and QoS 1 messages queued while the client is
//! away), optional user/password. It is not meant to face a network: it binds where it is told
//! (the demo uses 127.0.0.1).
//!
//! `state` holds what outlives a connection (sessions, retained messages) and routes publishes;
//! `serve` runs one connection and hands each packet to its handler.

mod serve;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use state::BrokerOptions;
use state::State;

pub struct EmbeddedBroker {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    options: Arc<BrokerOptions>,
    /// Cancelled by `stop`: the accept loop and every connection of this run end.
    running: Mutex<CancellationToken>,
    /// The accept loop, which owns the listening socket.
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedBroker {
    pub async fn start(bind: &str, options: BrokerOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let broker = EmbeddedBroker {
            addr: listener.local_addr()?,
            state: Arc::new(Mutex::new(State::default())),
            options: Arc::new(options),
            running: Mutex::new(CancellationToken::new()),
            acceptor: Mutex::new(None),
        };
        broker.accept(listener);
        Ok(broker)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting and drops every connection (clients see a broken connection). Retained
    /// messages and persistent sessions are kept, as a broker with persistence keeps them.
    pub fn stop(&self) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).cancel();
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .disconnect_all();
    }

    /// Listens again on the same address after [`stop`](Self::stop), with what was kept.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop();
        let acceptor = self.acceptor.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(acceptor) = acceptor {
            // The port is free only once the old listener is dropped.
            let _ = acceptor.await;
        }
        let listener = TcpListener::bind(self.addr).await?;
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = CancellationToken::new();
        self.accept(listener);
        Ok(())
    }

    fn accept(&self, listener: TcpListener) {
        let stop = self.running.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (state, options) = (self.state.clone(), self.options.clone());
        let acceptor = tokio::spawn(async move {
            loop {
                let (socket, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                let _ = socket.set_nodelay(true);
                let connection = state.lock().unwrap_or_else(PoisonError::into_inner).next_connection();
                tokio::spawn(serve::serve(
                    socket,
                    connection,
                    state.clone(),
                    options.clone(),
                    stop.clone(),
                ));
            }
        });
        *self.acceptor.lock().unwrap_or_else(PoisonError::into_inner) = Some(acceptor);
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    use super::*;

    async fn client(port: u16, id: &str, clean: bool) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<Packet>) {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(clean);
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        (client, rx)
    }

    async fn next_publish(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Packet>) -> rumqttc::Publish {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(Packet::Publish(p)) = rx.recv().await {
                    return p;
                }
            }
        })
        .await
        .expect("a publish in time")
    }

    async fn suback(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Packet>) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !matches!(rx.recv().await, Some(Packet::SubAck(_))) {}
        })
        .await
        .expect("a suback in time");
    }

    #[tokio::test]
    async fn retained_and_queued_messages_survive_a_restart() {
        let broker = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
            .await
            .unwrap();
        let (sub, mut sub_rx) = client(broker.port(), "sub", false).await;
        sub.subscribe("t/#", QoS::AtLeastOnce).await.unwrap();
        suback(&mut sub_rx).await;
        let (publisher, _pub_rx) = client(broker.port(), "pub", true).await;
        publisher.publish("t/kept", QoS::AtLeastOnce, true, "r").await.unwrap();
        assert_eq!(next_publish(&mut sub_rx).await.topic, "t/kept");

        broker.restart().await.unwrap();
        // The persistent subscriber is away: its QoS 1 message waits for it.
        let (publisher, _pub_rx) = client(broker.port(), "pub2", true).await;
        let (observer, mut observer_rx) = client(broker.port(), "observer", true).await;
        observer.subscribe("t/kept", QoS::AtLeastOnce).await.unwrap();
        let retained = next_publish(&mut observer_rx).await;
        assert!(retained.retain && retained.payload.as_ref() == b"r");
        publisher
            .publish("t/queued", QoS::AtLeastOnce, false, "q")
            .await
            .unwrap();
        // rumqttc reconnects the persistent subscriber by itself; the queued message follows.
        let mut topics = Vec::new();
        while !topics.contains(&"t/queued".to_owned()) {
            topics.push(next_publish(&mut sub_rx).await.topic);
        }
        drop(sub);
    }
}
