//! A fake Enectiva API on wiremock: it checks the JSON:API headers (406 / 415 otherwise), mints
//! JWT access tokens that expire by a clock the test moves, refuses expired or unknown tokens
//! with 401, and serves readings honouring the `filter[]` time filters and the 1000-record limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use meter2mqtt::clock::Clock;
use meter2mqtt::http::{RetryPolicy, Sleeper};
use meter2mqtt::providers::enectiva::{EnectivaProvider, Options, Settings};
use meter2mqtt::secret::Secret;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub mod import;

pub const JSON_API: &str = "application/vnd.api+json";
pub const CUSTOMER: &str = "5123d8ef-b501-4c71-b188-83ac399d66b9";
pub const LOGIN: &str = "login-token-7f3a9c";
/// Enectiva's documented access token lifetime.
pub const TOKEN_LIFETIME_SECS: i64 = 300;

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/enectiva/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A clock that only moves when told to.
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new(now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(TestClock(Mutex::new(now)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Records each wait instead of sleeping.
#[derive(Default)]
pub struct RecordingSleeper(Mutex<Vec<Duration>>);

impl RecordingSleeper {
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

/// Exact waits: 1 s, 2 s, 4 s, at most 3 retries.
pub fn exact_policy() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(1),
        multiplier: 2.0,
        randomization_factor: 0.0,
        max_retries: 3,
        ..RetryPolicy::default()
    }
}

/// What the fake remembers across requests.
pub struct FakeState {
    pub clock: Arc<TestClock>,
    /// Every access token handed out, in order.
    pub minted: Mutex<Vec<String>>,
    /// Data requests refused for an expired or unknown token.
    pub refused: AtomicUsize,
    /// How long a data request takes to reach the API's token check; the clock moves by it. A
    /// token that is valid when sent but expires on the way is refused, as by the real API.
    pub request_time: Mutex<chrono::Duration>,
}

pub struct FakeEnectiva {
    pub server: MockServer,
    pub state: Arc<FakeState>,
    pub sleeper: Arc<RecordingSleeper>,
}

impl FakeEnectiva {
    pub async fn start(now: DateTime<Utc>) -> Self {
        let state = Arc::new(FakeState {
            clock: TestClock::new(now),
            minted: Mutex::new(Vec::new()),
            refused: AtomicUsize::new(0),
            request_time: Mutex::new(chrono::Duration::zero()),
        });
        FakeEnectiva {
            server: MockServer::start().await,
            state,
            sleeper: Arc::new(RecordingSleeper::default()),
        }
    }

    pub fn account(&self) -> Settings {
        Settings {
            name: Some("home".into()),
            customer_uuid: CUSTOMER.into(),
            login_token: Some(Secret::new(LOGIN)),
            import_token: None,
            base_url: self.server.uri(),
            include_deactivated: false,
            upload: Vec::new(),
            import_requests_per_minute: 60,
        }
    }

    pub fn provider_with(&self, account: &Settings, policy: RetryPolicy) -> EnectivaProvider {
        let options = Options {
            policy,
            sleeper: self.sleeper.clone(),
            clock: self.state.clock.clone(),
            timeout: Duration::from_secs(10),
        };
        EnectivaProvider::new(account, account.name.clone().unwrap_or_else(|| "1".into()), options).unwrap()
    }

    pub fn provider(&self) -> EnectivaProvider {
        self.provider_with(&self.account(), exact_policy())
    }

    pub fn clock(&self) -> &TestClock {
        &self.state.clock
    }

    pub fn minted(&self) -> Vec<String> {
        self.state.minted.lock().unwrap().clone()
    }

    /// `POST /access_tokens`, expected `times` times.
    pub async fn tokens(&self, times: u64) {
        Mock::given(method("POST"))
            .and(path("/access_tokens"))
            .respond_with(TokenEndpoint(self.state.clone()))
            .expect(times)
            .named("POST /access_tokens")
            .mount(&self.server)
            .await;
    }

    /// `GET <route>` answering `body` (after the header and token checks), expected `times` times.
    pub async fn get(&self, route: &str, body: Value, times: u64) {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(Authorized::new(self.state.clone(), Fixed(200, body)))
            .expect(times)
            .named(format!("GET {route}"))
            .mount(&self.server)
            .await;
    }

    /// `GET <route>` answering with `status` and a JSON:API error carrying `detail`.
    pub async fn get_error(&self, route: &str, status: u16, detail: &str, times: u64) {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(Authorized::new(
                self.state.clone(),
                Fixed(status, error_body(status, detail)),
            ))
            .expect(times)
            .named(format!("GET {route} ({status})"))
            .mount(&self.server)
            .await;
    }

    /// The first `times` requests of `GET <route>` get `response` (unchecked), later ones the
    /// regular mocks.
    pub async fn first(&self, route: &str, times: u64, response: impl Respond + 'static) {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(response)
            .up_to_n_times(times)
            .with_priority(1)
            .expect(times)
            .named(format!("first {times} of GET {route}"))
            .mount(&self.server)
            .await;
    }

    /// `GET /meters/{id}/readings` over `series`, as the real API pages it.
    pub async fn readings(&self, meter: &str, series: Series, times: u64) -> Arc<Series> {
        let series = Arc::new(series);
        Mock::given(method("GET"))
            .and(path(format!("/meters/{meter}/readings")))
            .respond_with(Authorized::new(self.state.clone(), SeriesResponder(series.clone())))
            .expect(times)
            .named(format!("GET /meters/{meter}/readings"))
            .mount(&self.server)
            .await;
        series
    }
}

impl FakeEnectiva {
    /// Token, listing, deltas and readings routes with no call-count expectation, for end-to-end
    /// runs whose number of polls is not the point.
    pub async fn serve_any(&self, route_bodies: &[(&str, Value)], series: Vec<(&str, Series)>) {
        Mock::given(method("POST"))
            .and(path("/access_tokens"))
            .respond_with(TokenEndpoint(self.state.clone()))
            .mount(&self.server)
            .await;
        for (route, body) in route_bodies {
            Mock::given(method("GET"))
                .and(path(*route))
                .respond_with(Authorized::new(self.state.clone(), Fixed(200, body.clone())))
                .mount(&self.server)
                .await;
        }
        for (meter, series) in series {
            Mock::given(method("GET"))
                .and(path(format!("/meters/{meter}/readings")))
                .respond_with(Authorized::new(self.state.clone(), SeriesResponder(Arc::new(series))))
                .mount(&self.server)
                .await;
        }
    }
}

impl FakeEnectiva {
    /// The fixture's first meter (4711) with hourly register readings `registers` from
    /// `first_hour`, its entity and no deltas: the account of the add-on's end-to-end runs.
    pub async fn serve_one_meter(&self, first_hour: DateTime<Utc>, registers: &[f64]) {
        self.serve_any(
            &[
                ("/meters", json!({"data": [fixture("meters.json")["data"][0].clone()]})),
                ("/entities", fixture("entities.json")),
                ("/entities/88/deltas", fixture("entity_deltas.json")),
                ("/meters/4711/deltas", json!({"data": []})),
            ],
            vec![(
                "4711",
                Series::regular(first_hour, chrono::Duration::hours(1), registers),
            )],
        )
        .await;
    }
}

pub fn error_body(status: u16, detail: &str) -> Value {
    json!({"errors": [{"status": status.to_string(), "title": reason(status), "detail": detail}]})
}

fn reason(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        406 => "Not Acceptable",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

fn json_api(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string().into_bytes(), JSON_API)
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(request: &Request) -> Option<&str> {
    header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "))
}

/// A JWT like Enectiva's: ES256 header, `exp` in whole seconds, a unique `jti`, a fake signature.
pub fn jwt(exp: i64, jti: usize) -> String {
    let payload = json!({"scp": ["meters", "readings", "entities", "entity_deltas", "meter_deltas"], "jti": format!("t{jti}"), "exp": exp});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

fn exp_of(token: &str) -> Option<i64> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<Value>(&payload).ok()?.get("exp")?.as_i64()
}

struct TokenEndpoint(Arc<FakeState>);

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if header(request, "accept") != Some(JSON_API) {
            return json_api(406, &error_body(406, "Accept must be application/vnd.api+json"));
        }
        if header(request, "content-type") != Some(JSON_API) {
            return json_api(415, &error_body(415, "Content-Type must be application/vnd.api+json"));
        }
        let expected =
            json!({"data": {"type": "login_tokens", "attributes": {"customer_uuid": CUSTOMER, "login_token": LOGIN}}});
        if bearer(request) != Some(LOGIN) || request.body_json::<Value>().ok() != Some(expected) {
            return json_api(401, &error_body(401, "login token is invalid"));
        }
        let mut minted = self.0.minted.lock().unwrap();
        let token = jwt(self.0.clock.now().timestamp() + TOKEN_LIFETIME_SECS, minted.len());
        minted.push(token.clone());
        json_api(
            201,
            &json!({"data": {"id": format!("t{}", minted.len()), "type": "access_tokens", "attributes": {"encoded": token}}}),
        )
    }
}

/// Checks what every data request must carry, then lets `inner` answer.
pub struct Authorized<R> {
    state: Arc<FakeState>,
    inner: R,
}

impl<R> Authorized<R> {
    pub fn new(state: Arc<FakeState>, inner: R) -> Self {
        Authorized { state, inner }
    }
}

impl<R: Respond> Respond for Authorized<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if header(request, "accept") != Some(JSON_API) {
            return json_api(406, &error_body(406, "Accept must be application/vnd.api+json"));
        }
        self.state.clock.advance(*self.state.request_time.lock().unwrap());
        let token = bearer(request).unwrap_or_default();
        let known = self.state.minted.lock().unwrap().iter().any(|t| t == token);
        let fresh = exp_of(token).is_some_and(|exp| exp > self.state.clock.now().timestamp());
        if !known || !fresh {
            self.state.refused.fetch_add(1, Ordering::SeqCst);
            return json_api(401, &fixture("error_401.json"));
        }
        self.inner.respond(request)
    }
}

pub struct Fixed(pub u16, pub Value);

impl Respond for Fixed {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        json_api(self.0, &self.1)
    }
}

/// Readings with their times; `record` may be deliberately malformed.
pub struct Series {
    pub records: Vec<(DateTime<Utc>, Value)>,
    pub pages: AtomicUsize,
    /// The `filter[]` values of each request, in order.
    pub filters: Mutex<Vec<Vec<String>>>,
}

impl Series {
    pub fn new(records: Vec<(DateTime<Utc>, Value)>) -> Self {
        Series {
            records,
            pages: AtomicUsize::new(0),
            filters: Mutex::new(Vec::new()),
        }
    }

    /// Well-formed readings `value` at `start + i * step`.
    pub fn regular(start: DateTime<Utc>, step: chrono::Duration, values: &[f64]) -> Self {
        Series::new(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let time = start + step * i as i32;
                    (time, reading(&format!("r-{}", i + 1), time, json!(v)))
                })
                .collect(),
        )
    }
}

pub fn reading(id: &str, time: DateTime<Utc>, value: Value) -> Value {
    json!({"type": "readings", "id": id, "attributes": {"time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "value": value}})
}

struct SeriesResponder(Arc<Series>);

impl Respond for SeriesResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let filters: Vec<String> = request
            .url
            .query_pairs()
            .filter(|(k, _)| k == "filter[]")
            .map(|(_, v)| v.into_owned())
            .collect();
        self.0.filters.lock().unwrap().push(filters.clone());
        let mut keep: Vec<Box<dyn Fn(DateTime<Utc>) -> bool>> = Vec::new();
        for filter in &filters {
            let Some(condition) = filter.strip_prefix("readings.time") else {
                return json_api(400, &error_body(400, &format!("unknown filter {filter}")));
            };
            let (op, value) = if let Some(v) = condition.strip_prefix(">=") {
                (">=", v)
            } else if let Some(v) = condition.strip_prefix('>') {
                (">", v)
            } else if let Some(v) = condition.strip_prefix('<') {
                ("<", v)
            } else {
                return json_api(400, &error_body(400, &format!("unknown operator in {filter}")));
            };
            let Ok(bound) = DateTime::parse_from_rfc3339(value) else {
                return json_api(400, &error_body(400, &format!("invalid time in {filter}")));
            };
            let bound = bound.to_utc();
            keep.push(match op {
                ">=" => Box::new(move |t| t >= bound),
                ">" => Box::new(move |t| t > bound),
                _ => Box::new(move |t| t < bound),
            });
        }
        let data: Vec<Value> = self
            .0
            .records
            .iter()
            .filter(|(t, _)| keep.iter().all(|k| k(*t)))
            .take(1000)
            .map(|(_, r)| r.clone())
            .collect();
        self.0.pages.fetch_add(1, Ordering::SeqCst);
        json_api(200, &json!({ "data": data }))
    }
}

impl TestClock {
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }

    pub fn now_date(&self) -> chrono::NaiveDate {
        self.now().date_naive()
    }
}
