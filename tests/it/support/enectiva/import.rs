//! A fake of Enectiva's import API (`/import/...`) on wiremock: the import token as bearer
//! (401 otherwise), the JSON:API headers, one record per request, 409 for an identical reading or
//! data point and for an overlapping different profile range, the same range re-posted as an
//! update, 400 for a negative value, `latest` (404 for none). Failures and slow answers can be
//! scripted ahead of the next requests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{CUSTOMER, JSON_API};

pub const IMPORT_TOKEN: &str = "import-token-5e1d2b";

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub collection: String,
    pub import_id: String,
    /// `time`, or a profile's `from`, exactly as sent.
    pub time: String,
    pub value: f64,
    pub status: u16,
}

/// One series' records: per time (a profile's `from`), the value and a profile's `to`.
type Series = BTreeMap<DateTime<Utc>, (f64, Option<DateTime<Utc>>)>;

#[derive(Default)]
struct Store {
    /// Per collection, per `(import_id, suit)`, per time (`from` for profiles): value (and `to`).
    records: BTreeMap<(String, String, String), Series>,
    received: Vec<Received>,
    /// Answers to give before the store is asked: status and delay.
    script: VecDeque<(u16, Duration)>,
    /// How long every stored answer takes.
    delay: Duration,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeImport {
    pub server: Arc<MockServer>,
    store: Arc<Mutex<Store>>,
}

struct Responder(Arc<Mutex<Store>>);

fn error(status: u16, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", JSON_API)
        .set_body_json(json!({"errors": [{"status": status.to_string(), "title": "Error", "detail": detail}]}))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|t| t.to_utc())
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        if header("authorization") != format!("Bearer {IMPORT_TOKEN}") {
            return error(401, "invalid token");
        }
        if header("accept") != JSON_API {
            return error(406, "Not Acceptable");
        }
        let segments: Vec<String> = request
            .url
            .path_segments()
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect();
        let mut store = self.0.lock().unwrap();
        if let Some((status, delay)) = store.script.pop_front() {
            return error(status, "scripted").set_delay(delay);
        }
        // GET /import/<collection>/<customer>/<import_id>/<suit>/latest
        if request.method.as_str() == "GET" {
            let key = (segments[1].clone(), segments[3].clone(), segments[4].clone());
            let newest = store.records.get(&key).and_then(|r| r.iter().next_back());
            return match newest {
                None => error(404, "no record"),
                Some((at, (value, to))) => {
                    let attributes = match to {
                        Some(to) => json!({"from": at.to_rfc3339(), "to": to.to_rfc3339(), "value": value}),
                        None => json!({"time": at.to_rfc3339(), "state": value}),
                    };
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"data": {"id": "1", "type": segments[1], "attributes": attributes}}))
                }
            };
        }
        if header("content-type") != JSON_API {
            return error(415, "Unsupported Media Type");
        }
        if segments.get(2).map(String::as_str) != Some(CUSTOMER) {
            return error(404, "unknown customer");
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let collection = segments[1].clone();
        let attributes = &body["data"]["attributes"];
        let import_id = attributes["import_id"].as_str().unwrap_or_default().to_owned();
        let suit = attributes["suit"].as_str().unwrap_or("default").to_owned();
        let value = attributes["state"]
            .as_f64()
            .or(attributes["value"].as_f64())
            .unwrap_or(f64::NAN);
        let (raw_time, to) = if collection == "profiles" {
            (attributes["from"].clone(), time(&attributes["to"]))
        } else {
            (attributes["time"].clone(), None)
        };
        let answer = |status: u16, store: &mut Store| {
            store.received.push(Received {
                collection: collection.clone(),
                import_id: import_id.clone(),
                time: raw_time.as_str().unwrap_or_default().to_owned(),
                value,
                status,
            });
        };
        let Some(at) = time(&raw_time).filter(|t| t.timestamp_subsec_nanos() == 0) else {
            answer(400, &mut store);
            return error(400, "time must be RFC 3339 in whole seconds");
        };
        if import_id.is_empty() || import_id.contains(' ') || value.is_nan() {
            answer(400, &mut store);
            return error(400, "import_id and a number are required");
        }
        if value < 0.0 {
            answer(400, &mut store);
            return error(400, "state must not be negative");
        }
        let series = store
            .records
            .entry((collection.clone(), import_id.clone(), suit))
            .or_default();
        let status = if collection == "profiles" {
            let to = to.unwrap_or(at);
            let overlapping = series
                .iter()
                .any(|(from, (_, end))| *from != at && *from < to && end.is_some_and(|end| end > at));
            if overlapping {
                409
            } else {
                series.insert(at, (value, Some(to)));
                201
            }
        } else if series.get(&at).is_some_and(|(v, _)| *v == value) {
            409
        } else {
            series.insert(at, (value, None));
            201
        };
        answer(status, &mut store);
        if status == 409 {
            return error(409, "duplicity");
        }
        store.next_id += 1;
        let created = ResponseTemplate::new(201)
            .set_body_json(json!({"data": {"id": store.next_id.to_string(), "type": collection}}));
        // A zero delay would still wait for the timer's next tick (about a millisecond).
        if store.delay.is_zero() {
            created
        } else {
            created.set_delay(store.delay)
        }
    }
}

impl FakeImport {
    pub async fn start() -> FakeImport {
        let server = MockServer::start().await;
        let store = Arc::new(Mutex::new(Store::default()));
        Mock::given(path_regex("^/import/(readings|data_points|profiles)/"))
            .and(method("POST"))
            .respond_with(Responder(store.clone()))
            .mount(&server)
            .await;
        Mock::given(path_regex("^/import/(readings|data_points|profiles)/.+/latest$"))
            .and(method("GET"))
            .respond_with(Responder(store.clone()))
            .mount(&server)
            .await;
        FakeImport {
            server: Arc::new(server),
            store,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The next answers, before anything is stored: `(status, delay)`.
    pub fn script(&self, answers: &[(u16, Duration)]) {
        self.store.lock().unwrap().script.extend(answers.iter().copied());
    }

    /// Every stored answer takes `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.store.lock().unwrap().delay = delay;
    }

    /// Every POST answered by the store (not the scripted ones), in order.
    pub fn received(&self) -> Vec<Received> {
        self.store.lock().unwrap().received.clone()
    }

    /// What is stored of a series: time (a profile's `from`) and value, oldest first.
    pub fn stored(&self, collection: &str, import_id: &str) -> Vec<(DateTime<Utc>, f64)> {
        let store = self.store.lock().unwrap();
        store
            .records
            .get(&(collection.to_owned(), import_id.to_owned(), "default".to_owned()))
            .map(|r| r.iter().map(|(t, (v, _))| (*t, *v)).collect())
            .unwrap_or_default()
    }

    /// Puts a record in as if an earlier upload had.
    pub fn seed(&self, collection: &str, import_id: &str, at: DateTime<Utc>, value: f64) {
        self.store
            .lock()
            .unwrap()
            .records
            .entry((collection.to_owned(), import_id.to_owned(), "default".to_owned()))
            .or_default()
            .insert(at, (value, None));
    }
}
