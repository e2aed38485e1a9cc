//! The ElOverblik provider against a fake API (wiremock) serving the vendored fixtures. Waits are
//! recorded by an injected sleeper, never slept; request counts are exact.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use meter2mqtt::http::{Budget, HttpError, RateLimiter, Sleeper};
use meter2mqtt::model::ApiStatus;
use meter2mqtt::model::{Direction, IntervalReading, Meter, Quality, TimeRange, ValueKind};
use meter2mqtt::providers::eloverblik::{rate_limiter, retry_policy, EloverblikProvider, Options};

use crate::support::pace::VirtualPace;
use meter2mqtt::providers::eloverblik::{EloverblikApi, Settings};
use meter2mqtt::providers::{Provider, ProviderError};
use meter2mqtt::secret::Secret;
use meter2mqtt::state::StateStore;

const REFRESH_TOKEN: &str = "refresh-SECRET-e2f1c0d9b8a7";
const HOME: &str = "571313180100000001";
const CHILD: &str = "571313180100000018";
const SOLAR: &str = "571313180100000025";
const UNLINKED: &str = "571313180100000099";
const TIMESERIES: &str = "/api/meterdata/gettimeseries";
/// The days of `timeseries_hour.json`, as the request path writes them.
const THREE_DAYS: &str = "2024-03-28/2024-03-31/Hour";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The pinned "now" of every test: after all fixture days.
fn now() -> DateTime<Utc> {
    utc("2024-11-01T11:00:00Z")
}

fn range(from: &str, to: &str) -> TimeRange {
    TimeRange::new(utc(from), utc(to))
}

/// A data access token shaped like ElOverblik's: a JWT whose `exp` is a day after [`now`].
fn access_token(name: &str) -> String {
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = json!({"tokenType": "CustomerAPI_DataAccess", "sub": name, "exp": now().timestamp() + 86_400});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#.into()),
        b64(claims.to_string())
    )
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/eloverblik/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

struct Fake {
    server: MockServer,
    state: tempfile::TempDir,
    sleeper: Arc<RecordingSleeper>,
}

impl Fake {
    async fn start() -> Fake {
        Fake {
            server: MockServer::start().await,
            state: tempfile::tempdir().unwrap(),
            sleeper: Arc::default(),
        }
    }

    fn account(&self) -> Settings {
        Settings {
            name: Some("home".into()),
            refresh_token: Secret::new(REFRESH_TOKEN),
            base_url: self.server.uri(),
            api: EloverblikApi::Customer,
            metering_points: Vec::new(),
            charges: true,
            prices: false,
            price_area: None,
            price_resolution: None,
            co2: true,
            vat: 25.0,
            supplier_markup: 0.0,
            supplier_fee: 0.0,
            energidataservice_url: meter2mqtt::providers::eloverblik::default_energidataservice_url(),
        }
    }

    fn options(&self) -> Options {
        let pinned = now();
        Options {
            timeout: Duration::from_secs(10),
            retry: retry_policy(),
            sleeper: self.sleeper.clone(),
            clock: Arc::new(move || pinned),
            limiter: Arc::new(rate_limiter(VirtualPace::new())),
        }
    }

    fn provider(&self) -> EloverblikProvider {
        self.provider_with(self.account(), self.options())
    }

    fn provider_with(&self, account: Settings, options: Options) -> EloverblikProvider {
        EloverblikProvider::new(
            &account,
            account.name.clone().unwrap_or_else(|| "1".into()),
            StateStore::open(self.state.path()).unwrap(),
            options,
        )
        .unwrap()
    }

    fn waits(&self) -> Vec<Duration> {
        self.sleeper.0.lock().unwrap().clone()
    }

    /// `GET /api/token` answers `token`, exactly `times` times in the test.
    async fn token(&self, token: &str, times: u64) {
        Mock::given(method("GET"))
            .and(path("/api/token"))
            .and(header("authorization", format!("Bearer {REFRESH_TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": token })))
            .expect(times)
            .mount(&self.server)
            .await;
    }

    async fn points(&self, body: Value) {
        Mock::given(method("GET"))
            .and(path("/api/meteringpoints/meteringpoints"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    /// One token call and the fixture's metering points.
    async fn serve_points(&self) {
        self.token(&access_token("a"), 1).await;
        self.points(json_fixture("meteringpoints.json")).await;
    }

    /// The token, the fixture's metering points, and the provider's meters.
    async fn ready(&self) -> (EloverblikProvider, Vec<Meter>) {
        self.serve_points().await;
        let provider = self.provider();
        let meters = provider.meters().await.unwrap();
        (provider, meters)
    }

    async fn series(&self, dates_and_aggregation: &str, ids: &[&str], response: ResponseTemplate, times: u64) {
        Mock::given(method("POST"))
            .and(path(format!("{TIMESERIES}/{dates_and_aggregation}")))
            .and(body_json(json!({"meteringPoints": {"meteringPoint": ids}})))
            .respond_with(response)
            .expect(times)
            .mount(&self.server)
            .await;
    }

    /// One data call for `id` alone, answered with a fixture.
    async fn serves(&self, dates_and_aggregation: &str, id: &str, fixture_name: &str) {
        self.series(dates_and_aggregation, &[id], ok_fixture(fixture_name), 1)
            .await;
    }

    async fn requests_to(&self, prefix: &str) -> Vec<Request> {
        let all = self.server.received_requests().await.unwrap_or_default();
        all.into_iter().filter(|r| r.url.path().starts_with(prefix)).collect()
    }
}

fn ok_fixture(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(name), "application/json")
}

/// Answers every id it is asked for with an empty, successful series.
fn empty_series_for_each_id(request: &Request) -> ResponseTemplate {
    let body: Value = request.body_json().unwrap();
    let items: Vec<Value> = body["meteringPoints"]["meteringPoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            json!({"success": true, "errorCode": 10000, "errorText": "NoError", "id": id,
                   "MyEnergyData_MarketDocument": {"TimeSeries": []}})
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({ "result": items }))
}

/// The home point's readings for the three days of `timeseries_hour.json`.
async fn read_three_days(
    provider: &EloverblikProvider,
    meters: &[Meter],
) -> Result<Vec<IntervalReading>, ProviderError> {
    read(provider, meters, HOME, "2024-03-27T23:00:00Z", "2024-03-30T23:00:00Z").await
}

async fn read(
    provider: &EloverblikProvider,
    meters: &[Meter],
    id: &str,
    from: &str,
    to: &str,
) -> Result<Vec<IntervalReading>, ProviderError> {
    provider.readings(find(meters, id), range(from, to)).await
}

/// A data call for the three days answered with `response`, `times` times, before later mocks.
async fn first_answers(fake: &Fake, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(format!("{TIMESERIES}/{THREE_DAYS}")))
        .respond_with(response)
        .up_to_n_times(times)
        .expect(times)
        .mount(&fake.server)
        .await;
}

/// Everything logged on this thread (the tests' runtime is single-threaded), at every level.
fn find<'a>(meters: &'a [Meter], id: &str) -> &'a Meter {
    meters.iter().find(|m| m.id == id).unwrap()
}

fn sum(readings: &[IntervalReading]) -> f64 {
    readings.iter().filter_map(|r| r.value).sum()
}

#[tokio::test]
async fn metering_points_become_meters() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    assert_eq!((provider.kind(), provider.account()), ("eloverblik", "home"));
    let ids: Vec<&str> = meters.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [HOME, CHILD, SOLAR]);
    assert_eq!(find(&meters, SOLAR).direction, Direction::Production);
    assert_eq!(find(&meters, HOME).name, "Testvej 1 consumption");
    assert_eq!(provider.max_history(), Duration::from_secs(5 * 365 * 86_400));
    fake.server.verify().await;
}

#[tokio::test]
async fn configured_metering_points_narrow_the_set() {
    let fake = Fake::start().await;
    fake.serve_points().await;
    let account = Settings {
        metering_points: vec![SOLAR.into()],
        ..fake.account()
    };
    let meters = fake.provider_with(account, fake.options()).meters().await.unwrap();
    assert_eq!(meters.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [SOLAR]);
}

#[tokio::test]
async fn hourly_days_sum_to_the_fixture_totals() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    fake.serves(THREE_DAYS, HOME, "timeseries_hour.json").await;
    let readings = read_three_days(&provider, &meters).await.unwrap();
    assert_eq!(readings.len(), 72);
    assert!((sum(&readings) - (12.258 + 13.287 + 16.355)).abs() < 1e-9);
    assert!((sum(&readings[24..48]) - 13.287).abs() < 1e-9);
    assert_eq!(readings[0].start, utc("2024-03-27T23:00:00Z"));
    assert_eq!(readings[71].end, utc("2024-03-30T23:00:00Z"));
    assert_eq!(readings[71].quality, Quality::Estimated);
    assert!(readings.windows(2).all(|w| w[0].end == w[1].start));
    fake.server.verify().await;
}

#[tokio::test]
async fn only_intervals_inside_the_asked_range_are_returned() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    // 06:00 local on 28 March to 06:00 on 29 March: whole days 28..30 are asked, 24 hours kept.
    fake.serves("2024-03-28/2024-03-30/Hour", HOME, "timeseries_hour.json")
        .await;
    let readings = read(&provider, &meters, HOME, "2024-03-28T05:00:00Z", "2024-03-29T05:00:00Z")
        .await
        .unwrap();
    assert_eq!(readings.len(), 24);
    assert_eq!(readings[0].start, utc("2024-03-28T05:00:00Z"));
    assert_eq!(readings[23].start, utc("2024-03-29T04:00:00Z"));
    fake.server.verify().await;
}

#[tokio::test]
async fn both_dst_days_have_the_right_hours() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    fake.serves("2024-03-31/2024-04-01/Hour", HOME, "timeseries_dst.json")
        .await;
    fake.serves("2024-10-27/2024-10-28/Hour", HOME, "timeseries_dst_autumn.json")
        .await;
    let home = find(&meters, HOME);

    let spring = provider
        .readings(home, range("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!(spring.len(), 23);
    assert_eq!(spring[0].start, utc("2024-03-30T23:00:00Z"));
    assert_eq!(spring[22].start, utc("2024-03-31T21:00:00Z"));
    assert!((sum(&spring) - 13.757).abs() < 1e-9);

    let autumn = provider
        .readings(home, range("2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"))
        .await
        .unwrap();
    assert_eq!(autumn.len(), 25);
    assert_eq!(autumn[0].start, utc("2024-10-26T22:00:00Z"));
    assert_eq!(autumn[24].start, utc("2024-10-27T22:00:00Z"));
    assert!((sum(&autumn) - 16.159).abs() < 1e-9);
    fake.server.verify().await;
}

#[tokio::test]
async fn quarter_hours_with_missing_estimated_and_incomplete_points() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    fake.serves("2024-06-12/2024-06-13/Quarter", SOLAR, "timeseries_quarter.json")
        .await;
    let readings = read(
        &provider,
        &meters,
        SOLAR,
        "2024-06-11T22:00:00Z",
        "2024-06-12T22:00:00Z",
    )
    .await
    .unwrap();
    assert_eq!(readings.len(), 96);
    let at = |s: &str| readings.iter().find(|r| r.start == utc(s)).unwrap();
    let missing = at("2024-06-12T10:00:00Z");
    assert_eq!((missing.value, missing.quality), (None, Quality::Missing));
    assert_eq!(
        (at("2024-06-12T10:15:00Z").value, at("2024-06-12T10:15:00Z").quality),
        (Some(0.107), Quality::Incomplete)
    );
    assert_eq!(
        (at("2024-06-12T10:30:00Z").value, at("2024-06-12T10:30:00Z").quality),
        (Some(0.077), Quality::Estimated)
    );
    assert_eq!(at("2024-06-12T10:45:00Z").quality, Quality::Measured);
    assert!((sum(&readings) - 14.266).abs() < 1e-9);
    fake.server.verify().await;
}

#[tokio::test]
async fn a_per_item_failure_affects_only_its_point() {
    let fake = Fake::start().await;
    fake.token(&access_token("a"), 1).await;
    let mut points = json_fixture("meteringpoints.json");
    let mut unlinked = points["result"][0].clone();
    unlinked["meteringPointId"] = json!(UNLINKED);
    unlinked["childMeteringPoints"] = json!([]);
    points["result"].as_array_mut().unwrap().push(unlinked);
    fake.points(points).await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();
    fake.series(
        "2024-03-28/2024-03-29/Hour",
        &[HOME, UNLINKED],
        ok_fixture("timeseries_partial_failure.json"),
        1,
    )
    .await;
    let asked = [find(&meters, HOME).clone(), find(&meters, UNLINKED).clone()];
    let results = provider
        .readings_many(&asked, range("2024-03-27T23:00:00Z", "2024-03-28T23:00:00Z"))
        .await;
    assert_eq!(results[0].0, HOME);
    let home = results[0].1.as_ref().unwrap();
    assert_eq!(home.len(), 24);
    assert!((sum(home) - 15.029).abs() < 1e-9);
    assert_eq!(results[1].0, UNLINKED);
    let error = results[1].1.as_ref().unwrap_err();
    assert!(
        matches!(error, ProviderError::Meter { meter, .. } if meter == UNLINKED),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("20010") && text.contains("Relation not found"), "{text}");
    assert_eq!(error.api_status(), ApiStatus::Error);
    fake.server.verify().await;
}

#[tokio::test]
async fn batches_of_ten_grouped_by_resolution() {
    let fake = Fake::start().await;
    fake.token(&access_token("a"), 1).await;
    let template = json_fixture("meteringpoints.json")["result"][0].clone();
    let mut points: Vec<Value> = (0..11)
        .map(|i| {
            let mut p = template.clone();
            p["meteringPointId"] = json!(format!("5713131801000001{i:02}"));
            p["childMeteringPoints"] = json!([]);
            p
        })
        .collect();
    points.push(json_fixture("meteringpoints.json")["result"][1].clone());
    fake.points(json!({ "result": points })).await;
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^{TIMESERIES}/2024-03-28/2024-03-29/(Hour|Quarter)$"
        )))
        .respond_with(empty_series_for_each_id)
        .expect(3)
        .mount(&fake.server)
        .await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();
    assert_eq!(meters.len(), 12);
    let results = provider
        .readings_many(&meters, range("2024-03-27T23:00:00Z", "2024-03-28T23:00:00Z"))
        .await;
    assert_eq!(results.len(), 12);
    assert!(results
        .iter()
        .zip(&meters)
        .all(|((id, r), m)| id == &m.id && r.as_ref().is_ok_and(Vec::is_empty)));
    let calls = fake.requests_to(TIMESERIES).await;
    let sizes: Vec<(String, usize)> = calls
        .iter()
        .map(|r| {
            let body: Value = r.body_json().unwrap();
            let aggregation = r.url.path().rsplit('/').next().unwrap().to_owned();
            (
                aggregation,
                body["meteringPoints"]["meteringPoint"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(sizes, [("Quarter".into(), 1), ("Hour".into(), 10), ("Hour".into(), 1)]);
    fake.server.verify().await;
}

#[tokio::test]
async fn long_ranges_are_read_in_windows_of_at_most_730_days() {
    let (capture, _guard) = crate::support::logs::Logs::capture();
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    for dates in [
        "2020-01-01/2021-12-31",
        "2021-12-31/2023-12-31",
        "2023-12-31/2024-11-01",
    ] {
        fake.series(&format!("{dates}/Hour"), &[HOME], ok_fixture("timeseries_hour.json"), 1)
            .await;
    }
    // Up to "now" (2024-11-01 12:00 local): today is never asked for.
    let readings = provider
        .readings(find(&meters, HOME), TimeRange::new(utc("2019-12-31T23:00:00Z"), now()))
        .await
        .unwrap();
    // Each window answered with the same three days; they are kept once.
    assert_eq!(readings.len(), 72);
    let logs = capture.text();
    for progress in [
        "reading history: call 1 of 3, 2020-01-01 to 2021-12-31 (Hour), 1 metering point(s)",
        "reading history: call 3 of 3, 2023-12-31 to 2024-11-01 (Hour), 1 metering point(s)",
    ] {
        assert!(logs.contains(progress), "{logs}");
    }
    fake.server.verify().await;
}

#[tokio::test]
async fn today_alone_makes_no_data_call() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    let readings = provider
        .readings(find(&meters, HOME), TimeRange::new(utc("2024-10-31T23:00:00Z"), now()))
        .await
        .unwrap();
    assert!(readings.is_empty());
    assert!(fake.requests_to(TIMESERIES).await.is_empty());
}

#[tokio::test]
async fn unknown_meter_is_reported() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    let stranger = Meter {
        id: "571313180199999999".into(),
        ..find(&meters, HOME).clone()
    };
    let error = provider
        .readings(&stranger, range("2024-03-27T23:00:00Z", "2024-03-28T23:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::UnknownMeter { .. }), "{error:?}");
    assert!(fake.requests_to(TIMESERIES).await.is_empty());
}

#[tokio::test]
async fn too_many_requests_waits_at_least_sixty_seconds() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    first_answers(
        &fake,
        ResponseTemplate::new(429).set_body_string("Too many requests"),
        1,
    )
    .await;
    fake.serves(THREE_DAYS, HOME, "timeseries_hour.json").await;
    let readings = read_three_days(&provider, &meters).await.unwrap();
    assert_eq!(readings.len(), 72);
    assert_eq!(fake.waits(), [Duration::from_secs(60)]);
    fake.server.verify().await;
}

#[tokio::test]
async fn retry_after_is_honoured_when_longer_than_the_floor() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    for retry_after in ["120", "10"] {
        first_answers(
            &fake,
            ResponseTemplate::new(429).insert_header("Retry-After", retry_after),
            1,
        )
        .await;
    }
    fake.serves(THREE_DAYS, HOME, "timeseries_hour.json").await;
    let result = read_three_days(&provider, &meters).await;
    assert_eq!(result.unwrap().len(), 72);
    // 120 s as asked; a Retry-After of 10 s is raised to the 60 s floor.
    assert_eq!(fake.waits(), [Duration::from_secs(120), Duration::from_secs(60)]);
    fake.server.verify().await;
}

#[tokio::test]
async fn a_503_storm_is_bounded_and_reported_as_unavailable() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    // Every data call answers 503. Two calls are due (hourly and quarter-hourly points), but
    // once the first has spent its retries the second is not made: DataHub is down for both.
    Mock::given(method("POST"))
        .and(path_regex(TIMESERIES))
        .respond_with(ResponseTemplate::new(503).set_body_string(fixture("error_503.txt")))
        .expect(5)
        .mount(&fake.server)
        .await;
    let results = provider
        .readings_many(&meters, range("2024-03-27T23:00:00Z", "2024-03-30T23:00:00Z"))
        .await;
    assert_eq!(results.len(), 3);
    for (id, result) in &results {
        let error = result.as_ref().unwrap_err();
        assert_eq!(error.api_status(), ApiStatus::Unavailable, "{id}");
        assert!(
            matches!(
                error,
                ProviderError::Http(HttpError::Exhausted {
                    attempts: 5,
                    last_status: Some(503),
                    ..
                })
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("DataHub unavailable"), "{error}");
    }
    let text = results[0].1.as_ref().unwrap_err().to_string();
    assert!(
        text.contains("POST /api/meterdata/gettimeseries/2024-03-28/2024-03-31/Quarter"),
        "{text}"
    );
    assert_eq!(fake.waits(), [Duration::from_secs(60); 4]);
    fake.server.verify().await;
}

#[tokio::test]
async fn server_errors_retry_with_backoff_then_succeed() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    first_answers(
        &fake,
        ResponseTemplate::new(500).set_body_raw(fixture("error_500.json"), "application/json"),
        2,
    )
    .await;
    fake.serves(THREE_DAYS, HOME, "timeseries_hour.json").await;
    let result = read_three_days(&provider, &meters).await;
    assert_eq!(result.unwrap().len(), 72);
    let waits = fake.waits();
    assert_eq!(waits.len(), 2);
    // Exponential from 5 s with ±30 % jitter; a 500 is no throttle, so no 60 s floor.
    assert!((3.5..=6.5).contains(&waits[0].as_secs_f64()), "{waits:?}");
    assert!((7.0..=13.0).contains(&waits[1].as_secs_f64()), "{waits:?}");
    fake.server.verify().await;
}

#[tokio::test]
async fn persistent_server_errors_carry_the_apis_message() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    fake.series(
        THREE_DAYS,
        &[HOME],
        ResponseTemplate::new(500).set_body_raw(fixture("error_500.json"), "application/json"),
        5,
    )
    .await;
    let error = read_three_days(&provider, &meters).await.unwrap_err();
    assert_eq!(error.api_status(), ApiStatus::Unavailable);
    assert!(
        error
            .to_string()
            .contains("HTTP 500: An error occurred processing your request"),
        "{error}"
    );
    fake.server.verify().await;
}

#[tokio::test]
async fn timeouts_are_retried_and_then_reported() {
    let fake = Fake::start().await;
    fake.serve_points().await;
    let options = Options {
        timeout: Duration::from_millis(200),
        retry: meter2mqtt::http::RetryPolicy {
            max_retries: 1,
            ..retry_policy()
        },
        ..fake.options()
    };
    let provider = fake.provider_with(fake.account(), options);
    let meters = provider.meters().await.unwrap();
    fake.series(
        THREE_DAYS,
        &[HOME],
        ok_fixture("timeseries_hour.json").set_delay(Duration::from_secs(3)),
        2,
    )
    .await;
    let error = read_three_days(&provider, &meters).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ProviderError::Http(HttpError::Exhausted {
                attempts: 2,
                last_status: None,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(error.api_status(), ApiStatus::Unavailable);
    assert_eq!(fake.waits().len(), 1);
    fake.server.verify().await;
}

#[tokio::test]
async fn a_truncated_and_a_malformed_answer_are_retried_and_the_good_one_used() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    let full = fixture("timeseries_hour.json");
    first_answers(
        &fake,
        ResponseTemplate::new(200).set_body_raw(full[..full.len() / 2].to_owned(), "application/json"),
        1,
    )
    .await;
    first_answers(
        &fake,
        ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        1,
    )
    .await;
    fake.serves(THREE_DAYS, HOME, "timeseries_hour.json").await;
    let result = read_three_days(&provider, &meters).await;
    assert_eq!(result.unwrap().len(), 72);
    // The backoff of a 5xx (from 5 s), not the 60 s floor of a 429/503.
    let waits = fake.waits();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits.iter().all(|w| *w < Duration::from_secs(60)), "{waits:?}");
    fake.server.verify().await;
}

#[tokio::test]
async fn malformed_and_truncated_json_are_retried_then_clear_errors() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    let full = fixture("timeseries_hour.json");
    let truncated = full[..full.len() / 2].to_owned();
    let cases = [
        ("2024-03-28/2024-03-29/Hour", truncated),
        ("2024-03-29/2024-03-30/Hour", "<html>oops</html>".to_owned()),
        ("2024-03-30/2024-03-31/Hour", r#"{"result": [{"success": true, "id": "571313180100000001", "MyEnergyData_MarketDocument": {"TimeSeries": [{"mRID": "571313180100000001", "Period": [{"resolution": "PT1H", "timeInterval": {"start": "2024-03-29T23:00:00Z"}, "Point": [{"position": "one", "out_Quantity.quantity": "1"}]}]}]}}]}"#.to_owned()),
    ];
    // Every attempt of the budget (five) gets the same garbled answer.
    for (dates, body) in &cases {
        fake.series(
            dates,
            &[HOME],
            ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"),
            5,
        )
        .await;
    }
    let day = |from: &str, to: &str| range(from, to);
    let home = find(&meters, HOME);
    for (asked, dates, expected, quoted) in [
        (
            day("2024-03-27T23:00:00Z", "2024-03-28T23:00:00Z"),
            cases[0].0,
            "EOF while parsing",
            "{",
        ),
        (
            day("2024-03-28T23:00:00Z", "2024-03-29T23:00:00Z"),
            cases[1].0,
            "expected value",
            "<html>oops</html>",
        ),
        (
            day("2024-03-29T23:00:00Z", "2024-03-30T23:00:00Z"),
            cases[2].0,
            "position \"one\" is not a whole number",
            "{\\\"result\\\": [{",
        ),
    ] {
        let error = provider.readings(home, asked).await.unwrap_err();
        assert!(
            matches!(
                &error,
                ProviderError::Http(HttpError::Exhausted {
                    attempts: 5,
                    last_status: Some(200),
                    ..
                })
            ),
            "{error:?}"
        );
        assert!(error.is_transient(), "{error:?}");
        let text = error.to_string();
        for part in [
            &format!("POST /api/meterdata/gettimeseries/{dates}"),
            "could not be parsed",
            expected,
            &format!("body starts with \"{quoted}"),
        ] {
            assert!(text.contains(part), "{part:?} missing in: {text}");
        }
        assert_eq!(error.api_status(), ApiStatus::Unavailable);
    }
    fake.server.verify().await;
    // Malformed metering points: the listing fails, clearly, without a panic.
    let fake = Fake::start().await;
    fake.token(&access_token("a"), 1).await;
    fake.points(json!({"result": [{"meteringPointId": {"nested": true}}]}))
        .await;
    let error = fake.provider().meters().await.unwrap_err();
    assert!(
        error.to_string().contains(
            "GET /api/meteringpoints/meteringpoints still failing after 5 attempts: HTTP 200 with a body that could \
             not be parsed"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_keeps_the_apis_code() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    fake.series(
        THREE_DAYS,
        &[HOME],
        ResponseTemplate::new(400).set_body_raw(fixture("error_400_30002.json"), "application/json"),
        1,
    )
    .await;
    let error = read_three_days(&provider, &meters).await.unwrap_err();
    assert!(
        matches!(&error, ProviderError::Http(HttpError::Rejected { status: 400, code: Some(code), .. }) if code == "30002"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("(code 30002): Period not allowed, ToDate is equal to FromDate."),
        "{error}"
    );
    assert!(fake.waits().is_empty());
    fake.server.verify().await;
}

#[tokio::test]
async fn an_access_token_expiring_mid_run_is_refreshed_once() {
    let fake = Fake::start().await;
    let (first, second) = (access_token("first"), access_token("second"));
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": first })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&fake.server)
        .await;
    fake.token(&second, 1).await;
    fake.points(json_fixture("meteringpoints.json")).await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();
    let series = |token: &str, response: ResponseTemplate, times: u64| {
        Mock::given(method("POST"))
            .and(path(format!("{TIMESERIES}/2024-03-28/2024-03-31/Hour")))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(response)
            .expect(times)
    };
    series(
        &first,
        ResponseTemplate::new(401).set_body_json(json!({"title": "Unauthorized", "detail": "Token expired"})),
        1,
    )
    .mount(&fake.server)
    .await;
    series(&second, ok_fixture("timeseries_hour.json"), 2)
        .mount(&fake.server)
        .await;
    let home = find(&meters, HOME);
    let asked = range("2024-03-27T23:00:00Z", "2024-03-30T23:00:00Z");
    assert_eq!(provider.readings(home, asked).await.unwrap().len(), 72);
    // The new token is kept: no further token call.
    assert_eq!(provider.readings(home, asked).await.unwrap().len(), 72);
    assert_eq!(fake.requests_to("/api/token").await.len(), 2);
    fake.server.verify().await;
}

#[tokio::test]
async fn a_second_401_after_refresh_is_an_auth_error() {
    let fake = Fake::start().await;
    fake.token(&access_token("a"), 2).await;
    fake.points(json_fixture("meteringpoints.json")).await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();
    fake.series(THREE_DAYS, &[HOME], ResponseTemplate::new(401), 2).await;
    let error = read_three_days(&provider, &meters).await.unwrap_err();
    assert_eq!(error.api_status(), ApiStatus::AuthError);
    assert!(
        error.to_string().contains("refused a newly issued access token"),
        "{error}"
    );
    assert!(error.to_string().contains("Opret token"), "{error}");
    fake.server.verify().await;
}

#[tokio::test]
async fn an_expired_refresh_token_says_how_to_make_a_new_one() {
    let fake = Fake::start().await;
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"type": "about:blank", "title": "Unauthorized", "status": 401})),
        )
        .expect(1)
        .mount(&fake.server)
        .await;
    let error = fake.provider().meters().await.unwrap_err();
    assert!(matches!(error, ProviderError::Auth { .. }), "{error:?}");
    assert_eq!(error.api_status(), ApiStatus::AuthError);
    let text = error.to_string();
    assert!(
        text.contains("expired or been revoked") && text.contains("Datadeling → Opret token"),
        "{text}"
    );
    assert!(fake.waits().is_empty());
    fake.server.verify().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_token_call() {
    let fake = Fake::start().await;
    fake.serve_points().await;
    let provider = fake.provider();
    let (a, b, c) = tokio::join!(provider.meters(), provider.meters(), provider.meters());
    assert_eq!((a.unwrap().len(), b.unwrap().len(), c.unwrap().len()), (3, 3, 3));
    fake.server.verify().await;
}

#[tokio::test]
async fn the_token_survives_a_restart() {
    let fake = Fake::start().await;
    fake.serve_points().await;
    assert_eq!(fake.provider().meters().await.unwrap().len(), 3);
    // A second instance on the same state directory: no token call (the mock expects one in all).
    assert_eq!(fake.provider().meters().await.unwrap().len(), 3);
    fake.server.verify().await;
    let files: Vec<String> = std::fs::read_dir(fake.state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("eloverblik-token-") && name.ends_with(".json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!files[0].contains(REFRESH_TOKEN));
}

#[tokio::test]
async fn a_saved_token_is_tied_to_its_refresh_token() {
    let fake = Fake::start().await;
    fake.points(json_fixture("meteringpoints.json")).await;
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": access_token("any") })))
        .expect(2)
        .mount(&fake.server)
        .await;
    fake.provider().meters().await.unwrap();
    let other = Settings {
        refresh_token: Secret::new("another-refresh-token"),
        ..fake.account()
    };
    fake.provider_with(other, fake.options()).meters().await.unwrap();
    fake.server.verify().await;
}

#[tokio::test]
async fn polling_is_skipped_while_nothing_new_can_exist() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^{TIMESERIES}/2024-10-25/2024-11-01/(Hour|Quarter)$"
        )))
        .respond_with(empty_series_for_each_id)
        .expect(2)
        .mount(&fake.server)
        .await;
    // Data complete through yesterday (31 October, Danish time).
    let complete = utc("2024-10-31T23:00:00Z");
    let incomplete = utc("2024-10-30T23:00:00Z");
    // Before any read since start: read now.
    assert!(provider.next_data_possible(complete, now()) <= now());
    let week = TimeRange::new(utc("2024-10-24T22:00:00Z"), now());
    assert!(provider
        .readings_many(&meters, week)
        .await
        .iter()
        .all(|(_, r)| r.is_ok()));
    // Just read: complete data waits six hours for corrections; incomplete data is read at once.
    assert_eq!(
        provider.next_data_possible(complete, now()),
        now() + chrono::Duration::hours(6)
    );
    assert!(provider.next_data_possible(incomplete, now()) <= now());
    fake.server.verify().await;
}

#[tokio::test]
async fn charges_become_a_tariff_and_subscriptions() {
    let fake = Fake::start().await;
    let (provider, meters) = fake.ready().await;
    Mock::given(method("POST"))
        .and(path("/api/meteringpoints/meteringpoint/getcharges"))
        .and(body_json(json!({"meteringPoints": {"meteringPoint": [HOME, SOLAR]}})))
        .respond_with(ok_fixture("charges.json"))
        .expect(1)
        .mount(&fake.server)
        .await;
    // Only parent points are asked for, in one call, cached for the next values() calls.
    let values = provider.values(find(&meters, HOME)).await.unwrap();
    let tariff = values.iter().find(|v| v.key == "tariff").unwrap();
    assert_eq!(tariff.kind, ValueKind::Price);
    // 11:00 UTC on 1 November is 12:00 in Denmark: position 13.
    assert_eq!(tariff.value, Some(0.172068));
    assert_eq!(tariff.attributes["prices"].as_array().unwrap().len(), 24);
    let subscriptions = values.iter().find(|v| v.key == "subscriptions").unwrap();
    assert_eq!(
        (subscriptions.kind, subscriptions.value),
        (ValueKind::Monetary, Some(28.122861))
    );
    assert_eq!(subscriptions.unit.as_deref(), Some("DKK/month"));
    assert!(provider.values(find(&meters, CHILD)).await.unwrap().is_empty());
    assert_eq!(provider.values(find(&meters, HOME)).await.unwrap(), values);
    // The fixture has no entry for the production point: its own error, not a panic.
    let error = provider.values(find(&meters, SOLAR)).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("returned no charges for this metering point"),
        "{error}"
    );
    fake.server.verify().await;
}

#[tokio::test]
async fn charges_can_be_switched_off() {
    let fake = Fake::start().await;
    fake.serve_points().await;
    Mock::given(path_regex("getcharges"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&fake.server)
        .await;
    let account = Settings {
        charges: false,
        ..fake.account()
    };
    let provider = fake.provider_with(account, fake.options());
    let meters = provider.meters().await.unwrap();
    assert!(provider.values(find(&meters, HOME)).await.unwrap().is_empty());
    fake.server.verify().await;
}

#[tokio::test]
async fn the_third_party_api_lists_points_by_authorisation() {
    let fake = Fake::start().await;
    fake.token(&access_token("a"), 1).await;
    let auth = "0d3f7c1a-5b2e-4c8d-9f10-2a3b4c5d6e7f";
    Mock::given(method("GET"))
        .and(path("/api/authorization/authorizations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"result": [{"id": auth, "customerName": "Test"}]})),
        )
        .expect(1)
        .mount(&fake.server)
        .await;
    let mut points = json_fixture("meteringpoints.json");
    for p in points["result"].as_array_mut().unwrap() {
        let object = p.as_object_mut().unwrap();
        object.remove("hasRelation");
        object.remove("balanceSupplierName");
    }
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/authorization/authorization/meteringpoints/authorizationId/{auth}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(points))
        .expect(1)
        .mount(&fake.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/meteringpoint/getcharges"))
        .respond_with(ok_fixture("charges.json"))
        .expect(1)
        .mount(&fake.server)
        .await;
    let account = Settings {
        api: EloverblikApi::Thirdparty,
        ..fake.account()
    };
    let provider = fake.provider_with(account, fake.options());
    let meters = provider.meters().await.unwrap();
    assert_eq!(meters.len(), 3);
    assert_eq!(find(&meters, HOME).device.manufacturer, None);
    assert!(!provider.values(find(&meters, HOME)).await.unwrap().is_empty());
    fake.server.verify().await;
}

/// Every log line and error message of a run full of failures, with no secret in any of them.
#[tokio::test]
async fn no_secret_reaches_a_log_line_or_an_error() {
    let (capture, _guard) = crate::support::logs::Logs::capture();
    let fake = Fake::start().await;
    let (first, second) = (access_token("first"), access_token("second"));
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": first })))
        .up_to_n_times(1)
        .mount(&fake.server)
        .await;
    fake.token(&second, 1).await;
    fake.points(json_fixture("meteringpoints.json")).await;
    Mock::given(method("POST"))
        .and(path_regex(TIMESERIES))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&fake.server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(TIMESERIES))
        .respond_with(ResponseTemplate::new(503).set_body_string("DataHub unavailable"))
        .mount(&fake.server)
        .await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();
    let mut messages = Vec::new();
    for (_, result) in provider
        .readings_many(&meters, range("2024-03-27T23:00:00Z", "2024-03-30T23:00:00Z"))
        .await
    {
        let error = result.unwrap_err();
        messages.push(format!("{error} {error:?}"));
    }
    // And a refused refresh token.
    let refused = Fake::start().await;
    Mock::given(path("/api/token"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&refused.server)
        .await;
    let error = refused.provider().meters().await.unwrap_err();
    messages.push(format!("{error} {error:?}"));

    let logs = capture.text();
    assert!(logs.contains("retrying in"), "the capture saw the run: {logs}");
    assert!(logs.contains("requesting a new one"), "{logs}");
    for secret in [REFRESH_TOKEN, first.as_str(), second.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the logs");
        for message in &messages {
            assert!(!message.contains(secret), "a secret reached an error: {message}");
        }
    }
}

/// DataHub's token endpoint as documented (2 calls a minute per IP address, 429 beyond), with
/// the minute shortened to two seconds so the test runs in real time: the limiter's wait must
/// hold against a server that counts calls when they arrive.
struct TwoTokensPer {
    window: Duration,
    calls: Mutex<Vec<std::time::Instant>>,
    rejected: Arc<std::sync::atomic::AtomicUsize>,
}

impl wiremock::Respond for TwoTokensPer {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = std::time::Instant::now();
        let mut calls = self.calls.lock().unwrap();
        calls.retain(|at| now - *at < self.window);
        if calls.len() >= 2 {
            self.rejected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return ResponseTemplate::new(429).set_body_string("Too many requests");
        }
        calls.push(now);
        ResponseTemplate::new(200).set_body_json(json!({ "result": access_token("a") }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_starting_together_share_the_rate_limit_and_never_cause_a_429() {
    let window = Duration::from_secs(2);
    let fake = Fake::start().await;
    let rejected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(TwoTokensPer {
            window,
            calls: Mutex::default(),
            rejected: rejected.clone(),
        })
        .expect(3)
        .mount(&fake.server)
        .await;
    fake.points(json_fixture("meteringpoints.json")).await;
    fake.series(THREE_DAYS, &[HOME], ok_fixture("timeseries_hour.json"), 3)
        .await;

    fn token(endpoint: &str) -> bool {
        endpoint == "GET /api/token"
    }
    let limiter = Arc::new(RateLimiter::new(
        "eloverblik",
        vec![Budget {
            name: "token calls",
            calls: 2,
            per: window,
            applies: token,
        }],
    ));
    let started = std::time::Instant::now();
    // Three accounts of one household, as `providers::build` makes them: one limiter per host.
    let providers: Vec<EloverblikProvider> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let account = Settings {
                name: Some(name.into()),
                metering_points: vec![HOME.into()],
                ..fake.account()
            };
            let options = Options {
                limiter: limiter.clone(),
                ..fake.options()
            };
            fake.provider_with(account, options)
        })
        .collect();
    let listed = futures_util::future::join_all(providers.iter().map(|p| p.meters())).await;
    for meters in &listed {
        assert!(!meters.as_ref().unwrap().is_empty());
    }
    assert_eq!(rejected.load(std::sync::atomic::Ordering::SeqCst), 0, "no 429");
    // The third token waited for the window to pass; nobody slept on a 429.
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    assert!(fake.waits().is_empty(), "no retries: {:?}", fake.waits());

    // And every account delivers.
    for (provider, meters) in providers.iter().zip(&listed) {
        let home = meters.as_ref().unwrap().iter().find(|m| m.id == HOME).unwrap().clone();
        let readings = provider
            .readings(&home, range("2024-03-27T23:00:00Z", "2024-03-30T23:00:00Z"))
            .await
            .unwrap();
        assert_eq!(readings.len(), 72);
    }
    assert_eq!(rejected.load(std::sync::atomic::Ordering::SeqCst), 0, "no 429");
}
