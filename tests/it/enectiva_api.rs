//! The Enectiva provider against a fake Enectiva API (wiremock) built from the fixtures.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::enectiva::*;
use crate::support::logs::Logs;
use meter2mqtt::clock::Clock;
use meter2mqtt::http::{HttpError, RetryPolicy};
use meter2mqtt::model::ApiStatus;
use meter2mqtt::model::{DeviceInfo, Direction, IntervalReading, Medium, Meter, Quality, TimeRange, Unit, ValueKind};
use meter2mqtt::providers::{Provider, ProviderError};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

const NOW: &str = "2024-11-10T12:00:00Z";

fn meter(id: &str, unit: Unit) -> Meter {
    Meter {
        provider: "enectiva".into(),
        id: id.into(),
        name: format!("meter {id}"),
        medium: Medium::Electricity,
        direction: Direction::Consumption,
        unit,
        cumulative: true,
        timezone: chrono_tz::Europe::Prague,
        device: DeviceInfo::default(),
    }
}

/// Interval readings of `meter` through a fresh provider.
async fn read(fake: &FakeEnectiva, meter: Meter, range: TimeRange) -> Result<Vec<IntervalReading>, ProviderError> {
    fake.provider().readings(&meter, range).await
}

fn fixture_series() -> Series {
    let records = fixture("readings.json")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (at(r["attributes"]["time"].as_str().unwrap()), r.clone()))
        .collect();
    Series::new(records)
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

// ---- meters -------------------------------------------------------------------------------

#[tokio::test]
async fn meters_from_the_fixtures_carry_building_area_and_time_zone() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;

    let meters = fake.provider().meters().await.unwrap();

    let summary: Vec<_> = meters
        .iter()
        .map(|m| (m.id.as_str(), m.medium, m.unit.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("4711", Medium::Electricity, "kWh"),
            ("4712", Medium::Gas, "m³"),
            ("4713", Medium::Water, "m³"),
            ("4714", Medium::Heat, "GJ")
        ]
    );
    let m = &meters[1];
    assert_eq!(m.name, "Plynoměr – kotelna");
    assert!(m.cumulative);
    assert_eq!(m.timezone, chrono_tz::Europe::Prague);
    assert_eq!(m.device.suggested_area.as_deref(), Some("Budova A"));
    assert_eq!(m.device.serial_number.as_deref(), Some("SN4712"));
    assert_eq!(m.device.model.as_deref(), Some("Gas meter"));
    assert_eq!(fake.state.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn include_deactivated_is_asked_for_when_configured() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    Mock::given(method("GET"))
        .and(path("/meters"))
        .and(query_param("include_deactivated", "true"))
        .respond_with(Authorized::new(fake.state.clone(), Fixed(200, fixture("meters.json"))))
        .expect(1)
        .mount(&fake.server)
        .await;
    let mut account = fake.account();
    account.include_deactivated = true;

    assert_eq!(
        fake.provider_with(&account, exact_policy())
            .meters()
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn unknown_media_and_units_become_generic_meters() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/entities", json!({"data": [{"type": "entities", "id": "9", "attributes": {"name": "Hala", "time_zone": "Europe/Vienna"}}]}), 1).await;
    let entity = json!({"entity": {"data": {"type": "entities", "id": "9"}}});
    fake.get(
        "/meters",
        json!({"data": [
            {"type": "meters", "id": "1", "attributes": {"name": "Pára", "energy": "steam", "unit": "t"}, "relationships": entity},
            {"type": "meters", "id": "2", "attributes": {"name": "Chlad", "energy": "cooling", "unit": "MWh", "colour": "blue"}},
            {"type": "meters", "id": "3", "attributes": {}},
        ]}),
        1,
    )
    .await;

    let meters = fake.provider().meters().await.unwrap();

    assert_eq!(
        (meters[0].medium, &meters[0].unit),
        (Medium::Other, &Unit::Other("t".into()))
    );
    assert_eq!(meters[0].timezone, chrono_tz::Europe::Vienna);
    assert_eq!(meters[0].device.suggested_area.as_deref(), Some("Hala"));
    assert_eq!((meters[1].medium, &meters[1].unit), (Medium::Cooling, &Unit::MWh));
    assert_eq!(meters[2].medium, Medium::Other);
    assert_eq!(meters[2].name, "Enectiva meter 3");
}

#[tokio::test]
async fn malformed_meter_records_are_skipped_with_a_warning_naming_them() {
    let (logs, _guard) = Logs::capture();
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    let mut meters = fixture("meters.json");
    let list = meters["data"].as_array_mut().unwrap();
    list.insert(1, json!({"type": "meters", "id": "999", "attributes": "oops"}));
    list.push(json!(42));
    fake.get("/meters", meters, 1).await;

    let got = fake.provider().meters().await.unwrap();

    assert_eq!(
        got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["4711", "4712", "4713", "4714"]
    );
    let warnings = logs.warnings().join("\n");
    assert!(warnings.contains("meters 999"), "{warnings}");
    assert!(warnings.contains("record 5 of GET /meters"), "{warnings}");
}

// ---- readings -----------------------------------------------------------------------------

#[tokio::test]
async fn fixture_readings_become_quarter_hour_intervals() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let series = fake.readings("4711", fixture_series(), 2).await;
    let range = TimeRange::new(at("2024-11-01T00:00:00Z"), at("2024-11-02T00:00:00Z"));

    let got = read(&fake, meter("4711", Unit::KWh), range).await.unwrap();

    // 96 readings make 95 intervals; the one from 23:45 waits for the reading at midnight.
    assert_eq!(got.len(), 95);
    assert_eq!(
        (got[0].start, got[0].end),
        (at("2024-11-01T00:00:00Z"), at("2024-11-01T00:15:00Z"))
    );
    assert_eq!((got[0].value, got[0].reading), (Some(2.46), Some(123461.32)));
    assert_eq!(got[94].end, at("2024-11-01T23:45:00Z"));
    assert_eq!(got[94].reading, Some(123664.79));
    assert!(got
        .iter()
        .all(|r| r.quality == Quality::Measured && r.unit == Unit::KWh && r.value.unwrap() >= 0.0));
    assert!(got.windows(2).all(|w| w[0].end == w[1].start));
    let filters = series.filters.lock().unwrap().clone();
    assert_eq!(
        filters,
        vec![
            vec![
                "readings.time>=2024-11-01T00:00:00Z".to_owned(),
                "readings.time<2024-11-03T00:00:00Z".to_owned()
            ],
            // Nothing closed the last interval within a day: one look further.
            vec!["readings.time>=2024-11-03T00:00:00Z".to_owned()],
        ]
    );
}

#[tokio::test]
async fn the_reading_after_the_range_closes_its_last_interval() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.readings("4711", fixture_series(), 1).await;
    let range = TimeRange::new(at("2024-11-01T10:00:00Z"), at("2024-11-01T11:00:00Z"));

    let got = read(&fake, meter("4711", Unit::KWh), range).await.unwrap();

    let starts: Vec<_> = got.iter().map(|r| r.start.format("%H:%M").to_string()).collect();
    assert_eq!(starts, vec!["10:00", "10:15", "10:30", "10:45"]);
    assert_eq!(got[3].end, at("2024-11-01T11:00:00Z"));
}

#[tokio::test]
async fn sparse_readings_are_closed_by_a_reading_beyond_the_lookahead() {
    let fake = FakeEnectiva::start(at("2025-01-10T00:00:00Z")).await;
    fake.tokens(1).await;
    let monthly = Series::new(
        [
            ("2024-10-01T00:00:00Z", 100.0),
            ("2024-11-01T00:00:00Z", 130.5),
            ("2024-12-01T00:00:00Z", 170.0),
        ]
        .iter()
        .enumerate()
        .map(|(i, (t, v))| (at(t), reading(&format!("m-{i}"), at(t), json!(v))))
        .collect(),
    );
    fake.readings("4711", monthly, 2).await;
    let range = TimeRange::new(at("2024-10-01T00:00:00Z"), at("2024-10-02T00:00:00Z"));

    let got = read(&fake, meter("4711", Unit::CubicMeters), range).await.unwrap();

    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].start, got[0].end, got[0].value),
        (at("2024-10-01T00:00:00Z"), at("2024-11-01T00:00:00Z"), Some(30.5))
    );
}

#[tokio::test]
async fn more_than_1000_readings_are_paged_and_each_arrives_once() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let start = at("2024-01-01T00:00:00Z");
    let values: Vec<f64> = (0..2500).map(|i| 1000.0 + i as f64 * 0.25).collect();
    let series = fake
        .readings("4711", Series::regular(start, minutes(15), &values), 3)
        .await;
    let end = start + minutes(15 * 2500);
    // The clock stands just after the data: nothing beyond the lookahead can exist yet.
    fake.clock().advance(end - at(NOW) + minutes(60));

    let got = read(&fake, meter("4711", Unit::KWh), TimeRange::new(start, end))
        .await
        .unwrap();

    assert_eq!(got.len(), 2499);
    for (i, interval) in got.iter().enumerate() {
        assert_eq!(interval.start, start + minutes(15 * i as i64));
        assert_eq!(interval.end, start + minutes(15 * (i as i64 + 1)));
        assert_eq!(interval.value, Some(0.25));
    }
    let filters = series.filters.lock().unwrap().clone();
    assert_eq!(
        filters[1][0], "readings.time>2024-01-11T09:45:00Z",
        "page 2 starts after the last time of page 1"
    );
    assert_eq!(filters[2][0], "readings.time>2024-01-21T19:45:00Z");
    assert!(filters
        .iter()
        .all(|f| f.last().unwrap() == "readings.time<2024-01-28T01:00:00Z"));
}

#[tokio::test]
async fn value_or_state_numbers_or_numeric_strings() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let t = |m: i64| at("2024-11-01T00:00:00Z") + minutes(m);
    let records = vec![
        (
            t(0),
            json!({"type": "readings", "id": "a", "attributes": {"time": "2024-11-01T00:00:00Z", "state": "10.5"}}),
        ),
        (
            t(15),
            json!({"type": "readings", "id": "b", "attributes": {"time": "2024-11-01T00:15:00Z", "value": 11}}),
        ),
        (
            t(30),
            json!({"type": "readings", "id": "c", "attributes": {"time": "2024-11-01T00:30:00Z", "value": "12.25", "origin": "x"}}),
        ),
        (
            t(45),
            json!({"type": "readings", "id": "d", "attributes": {"time": "2024-11-01T00:45:00Z", "state": 13}}),
        ),
    ];
    fake.readings("4711", Series::new(records), 2).await;

    let got = read(&fake, meter("4711", Unit::KWh), TimeRange::new(t(0), t(60)))
        .await
        .unwrap();

    let values: Vec<_> = got.iter().map(|r| (r.value.unwrap(), r.reading.unwrap())).collect();
    assert_eq!(values, vec![(0.5, 11.0), (1.25, 12.25), (0.75, 13.0)]);
}

#[tokio::test]
async fn malformed_readings_are_skipped_with_a_warning_and_the_batch_survives() {
    let (logs, _guard) = Logs::capture();
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let t = |m: i64| at("2024-11-01T00:00:00Z") + minutes(m);
    let records = vec![
        (t(0), reading("r-1", t(0), json!(1.0))),
        (t(15), reading("r-bad", t(15), json!("n/a"))),
        (
            t(20),
            json!({"type": "readings", "id": "r-notime", "attributes": {"value": 5}}),
        ),
        (t(25), json!("not a record")),
        (t(30), reading("r-3", t(30), json!(2.0))),
        (t(45), reading("r-4", t(45), json!(4.0))),
    ];
    fake.readings("4711", Series::new(records), 2).await;

    let got = read(&fake, meter("4711", Unit::KWh), TimeRange::new(t(0), t(60)))
        .await
        .unwrap();

    let plain: Vec<_> = got.iter().map(|r| (r.start, r.end, r.value.unwrap())).collect();
    assert_eq!(plain, vec![(t(0), t(30), 1.0), (t(30), t(45), 2.0)]);
    let warnings = logs.warnings().join("\n");
    for named in [
        "readings r-bad",
        "readings r-notime",
        "record 3 of GET /meters/4711/readings",
    ] {
        assert!(warnings.contains(named), "no warning naming {named}: {warnings}");
    }
}

#[tokio::test]
async fn a_register_reset_is_reported_and_never_negative() {
    let (logs, _guard) = Logs::capture();
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let start = at("2024-11-01T00:00:00Z");
    fake.readings(
        "4711",
        Series::regular(start, minutes(15), &[100.0, 110.0, 5.0, 8.0]),
        2,
    )
    .await;

    let got = read(
        &fake,
        meter("4711", Unit::KWh),
        TimeRange::new(start, start + minutes(60)),
    )
    .await
    .unwrap();

    let plain: Vec<_> = got
        .iter()
        .map(|r| (r.start, r.value.unwrap(), r.reading.unwrap()))
        .collect();
    assert_eq!(plain, vec![(start, 10.0, 110.0), (start + minutes(30), 3.0, 8.0)]);
    let warnings = logs.warnings();
    let reset: Vec<_> = warnings.iter().filter(|w| w.contains("went down")).collect();
    assert_eq!(reset.len(), 1, "{warnings:?}");
    assert!(
        reset[0].contains("meter 4711")
            && reset[0].contains("2024-11-01T00:15:00+00:00")
            && reset[0].contains("2024-11-01T00:30:00+00:00")
    );
}

#[tokio::test]
async fn an_unknown_meter_is_reported_as_such() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get_error("/meters/999/readings", 404, "meter not found", 1).await;
    let range = TimeRange::new(at("2024-11-01T00:00:00Z"), at("2024-11-02T00:00:00Z"));

    let error = read(&fake, meter("999", Unit::KWh), range).await.unwrap_err();

    assert!(
        matches!(error, ProviderError::UnknownMeter { ref meter, .. } if meter == "999"),
        "{error:?}"
    );
}

// ---- tokens -------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_expiring_mid_backfill_is_replaced_before_it_runs_out() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(2).await;
    let start = at("2024-01-01T00:00:00Z");
    let values: Vec<f64> = (0..4500).map(|i| i as f64).collect();
    // Each request takes 90 s to reach the API: six requests outlast one 300 s token, and a token
    // used until its last minute would expire on the way.
    *fake.state.request_time.lock().unwrap() = chrono::Duration::seconds(90);
    let series = Series::regular(start, minutes(15), &values);
    let series = fake.readings("4711", series, 6).await;
    let range = TimeRange::new(start, start + minutes(15 * 4500));

    let got = read(&fake, meter("4711", Unit::KWh), range).await.unwrap();

    assert_eq!(got.len(), 4499);
    let refused = fake.state.refused.load(Ordering::SeqCst);
    assert_eq!(refused, 0, "no request may leave with a token that expires on the way");
    assert_eq!(fake.minted().len(), 2, "one token for the first 240 s, one after");
    assert_eq!(series.pages.load(Ordering::SeqCst), 6);
    assert_eq!(fake.clock().now() - at(NOW), chrono::Duration::seconds(6 * 90));
}

#[tokio::test]
async fn concurrent_calls_share_one_token() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let start = at("2024-11-01T00:00:00Z");
    for id in ["1", "2", "3"] {
        fake.readings(id, Series::regular(start, minutes(15), &[1.0, 2.0, 3.0]), 2)
            .await;
    }
    let provider = fake.provider();
    let range = TimeRange::new(start, start + minutes(60));
    let (m1, m2, m3) = (meter("1", Unit::KWh), meter("2", Unit::KWh), meter("3", Unit::KWh));

    let (a, b, c) = tokio::join!(
        provider.readings(&m1, range),
        provider.readings(&m2, range),
        provider.readings(&m3, range)
    );

    assert_eq!((a.unwrap().len(), b.unwrap().len(), c.unwrap().len()), (2, 2, 2));
    assert_eq!(fake.minted().len(), 1);
}

#[tokio::test]
async fn a_refused_access_token_is_replaced_once() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(2).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    // The server revokes the first token (e.g. a key rotation) although it has not expired.
    fake.first("/meters", 1, Fixed(401, fixture("error_401.json"))).await;
    fake.get("/meters", fixture("meters.json"), 1).await;

    assert_eq!(fake.provider().meters().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_second_refusal_is_an_auth_error() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(2).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    Mock::given(method("GET"))
        .and(path("/meters"))
        .respond_with(Fixed(401, error_body(401, "insufficient scope")))
        .expect(2)
        .mount(&fake.server)
        .await;

    let error = fake.provider().meters().await.unwrap_err();

    assert_eq!(error.api_status(), ApiStatus::AuthError);
    let text = error.to_string();
    assert!(matches!(error, ProviderError::Auth { .. }), "{error:?}");
    assert!(
        text.contains("account home") && text.contains("GET /meters") && text.contains("insufficient scope"),
        "{text}"
    );
}

#[tokio::test]
async fn a_rejected_login_token_is_an_auth_error_saying_what_to_check() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    let mut account = fake.account();
    account.login_token = Some(meter2mqtt::secret::Secret::new("stale-8842"));

    let error = fake.provider_with(&account, exact_policy()).meters().await.unwrap_err();

    assert_eq!(error.api_status(), ApiStatus::AuthError);
    let text = error.to_string();
    assert!(matches!(error, ProviderError::Auth { .. }), "{error:?}");
    for expected in [
        "account home",
        "HTTP 401",
        "login token is invalid",
        "customer_uuid",
        "login_token",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(!text.contains("stale-8842"));
    assert!(fake.sleeper.waits().is_empty(), "a refused login token is not retried");
}

// ---- retries ------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_back_off_and_retry() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.first("/entities", 2, Fixed(429, fixture("error_429.json"))).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;

    assert_eq!(fake.provider().meters().await.unwrap().len(), 4);
    assert_eq!(
        fake.sleeper.waits(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
}

#[tokio::test]
async fn truncated_and_malformed_answers_are_retried_like_server_errors() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.first(
        "/meters",
        1,
        ResponseTemplate::new(200).set_body_string("{\"data\": [{\"id\""),
    )
    .await;
    fake.first(
        "/meters",
        1,
        ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"),
    )
    .await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;

    assert_eq!(fake.provider().meters().await.unwrap().len(), 4);
    assert_eq!(fake.sleeper.waits().len(), 2);
}

#[tokio::test]
async fn a_garbled_answer_that_persists_names_the_endpoint_and_quotes_the_body() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.first(
        "/meters",
        4,
        ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"),
    )
    .await;

    let error = fake.provider().meters().await.unwrap_err();
    assert!(
        matches!(
            error,
            ProviderError::Http(HttpError::Exhausted {
                attempts: 4,
                last_status: Some(200),
                ..
            })
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    let text = error.to_string();
    assert!(
        text.contains("GET /meters") && text.contains("body starts with \"<html>proxy error</html>\""),
        "{text}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_when_sent() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.first(
        "/meters",
        1,
        ResponseTemplate::new(429)
            .insert_header("retry-after", "30")
            .set_body_json(fixture("error_429.json")),
    )
    .await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;

    fake.provider().meters().await.unwrap();
    assert_eq!(fake.sleeper.waits(), vec![Duration::from_secs(30)]);
}

#[tokio::test]
async fn server_errors_give_up_after_bounded_retries_with_the_apis_message() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get_error("/entities", 500, "database unavailable", 4).await;

    let error = fake.provider().meters().await.unwrap_err();

    assert_eq!(error.api_status(), ApiStatus::Unavailable);
    assert!(
        matches!(
            error,
            ProviderError::Http(HttpError::Exhausted {
                attempts: 4,
                last_status: Some(500),
                ..
            })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("database unavailable"), "{error}");
    assert_eq!(
        fake.sleeper.waits(),
        vec![Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]
    );
}

#[tokio::test]
async fn the_default_policy_retries_five_times_with_jittered_backoff() {
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get_error("/entities", 503, "maintenance", 6).await;

    let error = fake
        .provider_with(&fake.account(), RetryPolicy::default())
        .meters()
        .await
        .unwrap_err();

    assert_eq!(error.api_status(), ApiStatus::Unavailable);
    let waits = fake.sleeper.waits();
    assert_eq!(waits.len(), 5);
    for (wait, nominal) in waits.iter().zip([2.0, 4.0, 8.0, 16.0, 32.0]) {
        let secs = wait.as_secs_f64();
        assert!(
            secs >= nominal * 0.7 - 1e-9 && secs <= nominal * 1.3 + 1e-9,
            "{secs} s is not {nominal} s ± 30 %"
        );
    }
}

// ---- headers ------------------------------------------------------------------------------

#[tokio::test]
async fn the_fake_refuses_requests_without_the_json_api_headers() {
    // Proves that every other test, which passes through these checks, sent the headers.
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;
    meter2mqtt::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let body =
        json!({"data": {"type": "login_tokens", "attributes": {"customer_uuid": CUSTOMER, "login_token": LOGIN}}});
    let url = |p: &str| format!("{}{p}", fake.server.uri());

    let no_content_type = client
        .post(url("/access_tokens"))
        .bearer_auth(LOGIN)
        .header("accept", JSON_API)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_content_type.status(), 415);
    let no_accept = client.get(url("/meters")).bearer_auth("whatever").send().await.unwrap();
    assert_eq!(no_accept.status(), 406);
}

// ---- values -------------------------------------------------------------------------------

#[tokio::test]
async fn values_are_the_latest_register_and_the_buildings_months() {
    let now = at("2024-10-15T10:00:00Z");
    let fake = FakeEnectiva::start(now).await;
    fake.tokens(1).await;
    fake.get("/entities", fixture("entities.json"), 1).await;
    fake.get("/meters", fixture("meters.json"), 1).await;
    let values: Vec<f64> = (0..48).map(|i| 500.0 + i as f64).collect();
    fake.readings(
        "4711",
        Series::regular(at("2024-10-13T00:00:00Z"), minutes(60), &values),
        2,
    )
    .await;
    fake.get_error("/meters/4711/deltas", 404, "Not found", 1).await;
    fake.get("/entities/88/deltas", fixture("entity_deltas.json"), 2).await;
    let provider = fake.provider();
    let meters = provider.meters().await.unwrap();

    let first = provider.values(&meters[0]).await.unwrap();
    // Meter deltas are known to be missing now: the second call goes straight to the building.
    let second = provider.values(&meters[0]).await.unwrap();

    assert_eq!(first, second);
    let plain: Vec<_> = first
        .iter()
        .map(|v| (v.key.as_str(), v.value, v.unit.as_deref(), v.kind))
        .collect();
    assert_eq!(
        plain,
        vec![
            ("register", Some(547.0), Some("kWh"), ValueKind::Register),
            ("building_this_month", Some(172.0), Some("kWh"), ValueKind::PeriodTotal),
            ("building_last_month", Some(154.5), Some("kWh"), ValueKind::PeriodTotal),
        ]
    );
    assert_eq!(first[0].attributes["time"], "2024-10-14T23:00:00+00:00");
    assert_eq!(first[1].attributes["entity"], "Budova A");
}

#[tokio::test]
async fn values_use_the_meters_own_deltas_where_available() {
    // 1 November 00:30 in Prague is still 31 October in UTC: the meter's calendar decides.
    let now = at("2024-10-31T23:30:00Z");
    let fake = FakeEnectiva::start(now).await;
    fake.tokens(1).await;
    fake.get(
        "/meters/4712",
        json!({"data": {"type": "meters", "id": "4712", "attributes": {"energy": "gas", "unit": "m3"}, "relationships": {"entity": {"data": {"type": "entities", "id": "88"}}}}}),
        1,
    )
    .await;
    // The latest reading lies a month back: the search widens past the first three days.
    let series = fake
        .readings(
            "4712",
            Series::regular(at("2024-10-01T00:00:00Z"), minutes(60), &[7.0, 8.5]),
            2,
        )
        .await;
    let deltas = json!({"data": [
        {"type": "meter_deltas", "id": "a", "attributes": {"time": "2024-10-01T00:00:00", "value": "31.5", "unit": "m3"}},
        {"type": "meter_deltas", "id": "b", "attributes": {"time": "2024-11-01T00:00:00", "value": 0.4, "unit": "m3"}},
    ]});
    fake.get("/meters/4712/deltas", deltas, 1).await;
    let mut gas = meter("4712", Unit::CubicMeters);
    gas.medium = Medium::Gas;

    let values = fake.provider().values(&gas).await.unwrap();

    let plain: Vec<_> = values
        .iter()
        .map(|v| (v.key.as_str(), v.name.as_str(), v.value, v.unit.as_deref()))
        .collect();
    assert_eq!(
        plain,
        vec![
            ("register", "Meter reading", Some(8.5), Some("m³")),
            ("this_month", "Consumption this month", Some(0.4), Some("m³")),
            ("last_month", "Consumption last month", Some(31.5), Some("m³")),
        ]
    );
    assert_eq!(
        series.filters.lock().unwrap()[1],
        vec![
            "readings.time>=2024-09-26T23:30:00Z",
            "readings.time<2024-10-28T23:30:00Z"
        ]
    );
}

// ---- secrets ------------------------------------------------------------------------------

#[tokio::test]
async fn no_secret_reaches_an_error_or_a_log_line() {
    let (logs, _guard) = Logs::capture();
    let fake = FakeEnectiva::start(at(NOW)).await;
    fake.tokens(3).await;
    // A server that echoes the request headers in its error details.
    Mock::given(method("GET"))
        .and(path("/entities"))
        .respond_with(Authorized::new(fake.state.clone(), EchoAuthorization))
        .expect(4)
        .mount(&fake.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/meters/4711/readings"))
        .respond_with(Fixed(
            401,
            error_body(401, &format!("token for login {LOGIN} was revoked")),
        ))
        .expect(2)
        .mount(&fake.server)
        .await;
    let provider = fake.provider();
    let mut errors = Vec::new();

    errors.push(provider.meters().await.unwrap_err());
    let range = TimeRange::new(at("2024-11-01T00:00:00Z"), at("2024-11-02T00:00:00Z"));
    errors.push(provider.readings(&meter("4711", Unit::KWh), range).await.unwrap_err());
    let mut refused = fake.account();
    refused.login_token = Some(meter2mqtt::secret::Secret::new("stale-8842"));
    errors.push(fake.provider_with(&refused, exact_policy()).meters().await.unwrap_err());

    let mut secrets: Vec<String> = fake.minted();
    assert_eq!(secrets.len(), 2, "one token, and its replacement after the 401");
    secrets.extend([LOGIN.to_owned(), "stale-8842".to_owned()]);
    let texts: Vec<String> = errors
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .chain([logs.text(), format!("{:?}", fake.account())])
        .collect();
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret leaked into: {text}");
        }
    }
    assert!(
        texts[0].contains("[redacted]"),
        "the echoed header was there to hide: {}",
        texts[0]
    );
    assert!(logs.text().contains("retrying"), "the retries were logged");
}

/// Answers 500 with the request's Authorization header in the error detail.
struct EchoAuthorization;

impl wiremock::Respond for EchoAuthorization {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let body: Value = error_body(500, &format!("upstream failed for Authorization: {auth}"));
        ResponseTemplate::new(500).set_body_raw(body.to_string().into_bytes(), JSON_API)
    }
}
