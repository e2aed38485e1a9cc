//! A fake ElOverblik served by a task on the test's own runtime, so that a `start_paused` test
//! can run hours of outage and backoff against real HTTP: every byte of an answer is in the
//! socket before the runtime idles, and the paused clock only jumps over real waits. wiremock
//! answers from a thread of its own, which would let the clock jump while an answer is on its
//! way and fire the client's timeouts. It also cuts connections, which wiremock cannot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::generated_datahub::{access_token, metering_points_body, point_id, timeseries_body};

/// How a data call fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// `503` with DataHub's text, or `429`.
    Status(u16),
    /// The connection is reset once the request is in.
    Reset,
    /// A 200 whose JSON stops half-way (its length header agrees: the proxy cut it).
    Truncated,
    /// A 200 that is not DataHub's JSON (an error page of a proxy).
    Malformed,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Status(503),
        Fault::Status(429),
        Fault::Reset,
        Fault::Truncated,
        Fault::Malformed,
    ];
}

#[derive(Default)]
struct Script {
    /// Answers to the next data calls, before anything else.
    next: VecDeque<Fault>,
    /// While set, every data call fails, going round these faults.
    outage: Vec<Fault>,
    turn: usize,
    /// The refresh token is revoked: every call answers 401 (the access tokens it bought die too).
    revoked: bool,
    data_calls: usize,
}

#[derive(Clone)]
pub struct FlakyDatahub {
    pub uri: String,
    script: Arc<Mutex<Script>>,
}

impl FlakyDatahub {
    /// One quarter-hourly point; days before `today` have data.
    pub async fn start(today: NaiveDate) -> FlakyDatahub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone(), today));
            }
        });
        FlakyDatahub { uri, script }
    }

    pub fn point() -> String {
        point_id(0)
    }

    /// Every data call fails from now on, going round `faults`, until [`recover`](Self::recover).
    pub fn outage(&self, faults: &[Fault]) {
        let mut script = self.script.lock().unwrap();
        script.outage = faults.to_vec();
        script.turn = 0;
    }

    pub fn recover(&self) {
        self.script.lock().unwrap().outage.clear();
    }

    /// The next data calls answer these, in order; then as before.
    pub fn next_answers(&self, faults: &[Fault]) {
        self.script.lock().unwrap().next.extend(faults);
    }

    pub fn revoke(&self) {
        self.script.lock().unwrap().revoked = true;
    }

    pub fn data_calls(&self) -> usize {
        self.script.lock().unwrap().data_calls
    }

    fn fault(&self) -> Option<Fault> {
        let mut script = self.script.lock().unwrap();
        script.data_calls += 1;
        if let Some(fault) = script.next.pop_front() {
            return Some(fault);
        }
        if script.outage.is_empty() {
            return None;
        }
        let fault = script.outage[script.turn % script.outage.len()];
        script.turn += 1;
        Some(fault)
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Mutex<Script>>, today: NaiveDate) {
    let Some((head, body)) = read_request(&mut stream).await else {
        return;
    };
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let datahub = FlakyDatahub {
        uri: String::new(),
        script,
    };
    let (status, text) = match (method, path) {
        _ if datahub.script.lock().unwrap().revoked => (401, r#""Unauthorized: the token is revoked""#.to_owned()),
        ("GET", "/api/token") => (200, format!(r#"{{"result":"{}"}}"#, access_token())),
        ("GET", p) if p.starts_with("/api/meteringpoints/meteringpoints") => (200, metering_points_body(1)),
        ("POST", p) if p.starts_with("/api/meterdata/gettimeseries/") => {
            let segments: Vec<&str> = p.rsplitn(4, '/').collect();
            let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            let step = if segments[0] == "Quarter" { 15 } else { 60 };
            let ids: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let ids: Vec<String> = ids["meteringPoints"]["meteringPoint"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            let full = timeseries_body(&ids, day(segments[2]), day(segments[1]).min(today), step);
            match datahub.fault() {
                None => (200, full),
                Some(Fault::Status(503)) => (503, "DataHub unavailable".to_owned()),
                Some(Fault::Status(status)) => (status, "Too many requests".to_owned()),
                Some(Fault::Truncated) => (200, full[..full.len() / 2].to_owned()),
                Some(Fault::Malformed) => (200, "<html><body>502 Bad Gateway</body></html>".to_owned()),
                Some(Fault::Reset) => {
                    // A zero linger makes the close a RST instead of a FIN.
                    let _ = stream.set_zero_linger();
                    return;
                }
            }
        }
        _ => (404, "not found".to_owned()),
    };
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request's head and body (by its content-length).
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = buffer[end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some((head, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}
