//! The broker a test talks to: mosquitto when it is installed (CI installs it), the crate's
//! embedded broker otherwise, so every broker test runs on every machine.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meter2mqtt::test_support::{BrokerOptions, EmbeddedBroker};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

const MOSQUITTO: [&str; 3] = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"];

/// A broker on a free loopback port that keeps sessions and retained messages across a
/// restart, as a broker with persistence does.
pub struct Broker {
    pub port: u16,
    kind: Kind,
}

enum Kind {
    Mosquitto(Mosquitto),
    Embedded(EmbeddedBroker),
}

impl Broker {
    /// mosquitto when installed; under `CI` its absence is an error, since CI must test against
    /// the real thing. `TEST_BROKER=embedded` picks the embedded broker anyway.
    pub async fn start() -> Broker {
        let embedded_asked = std::env::var("TEST_BROKER").is_ok_and(|b| b == "embedded");
        let mosquitto = MOSQUITTO.into_iter().find(|p| Path::new(p).exists());
        match mosquitto.filter(|_| !embedded_asked) {
            Some(binary) => {
                let mosquitto = Mosquitto::start(binary);
                Broker {
                    port: mosquitto.port,
                    kind: Kind::Mosquitto(mosquitto),
                }
            }
            None => {
                assert!(
                    embedded_asked || std::env::var_os("CI").is_none(),
                    "mosquitto is not installed but CI must run the real-broker tests"
                );
                let embedded = EmbeddedBroker::start("127.0.0.1:0", BrokerOptions::default())
                    .await
                    .unwrap();
                Broker {
                    port: embedded.port(),
                    kind: Kind::Embedded(embedded),
                }
            }
        }
    }

    /// Stops the broker; clients see their connection break.
    pub fn stop(&mut self) {
        match &mut self.kind {
            Kind::Mosquitto(m) => m.stop(),
            Kind::Embedded(e) => e.stop(),
        }
    }

    pub async fn restart(&mut self) {
        match &mut self.kind {
            Kind::Mosquitto(m) => m.restart(),
            Kind::Embedded(e) => e.restart().await.unwrap(),
        }
    }
}

/// A mosquitto process on a free loopback port, with persistence so sessions survive restarts.
struct Mosquitto {
    binary: &'static str,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    fn start(binary: &'static str) -> Mosquitto {
        let mut m = Mosquitto {
            binary,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest none\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(self.binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready when it accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    /// Graceful stop (SIGTERM): mosquitto saves sessions and queued messages.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), "TERM");
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
