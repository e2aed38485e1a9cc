//! The price module against a fake Energi Data Service (wiremock) that serves the fixtures and
//! honours `start`, `end`, `filter` and `limit` the way the API does, so a wrong query shows up
//! as missing prices. Time is a pinned clock; retry waits are recorded, never slept.
//!
//! Expected prices are worked out by hand from the fixture numbers in each test.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::client::{retry_policy, ClientOptions, EnergiDataService};
use super::*;
use crate::http::{HttpError, Sleeper};
use crate::model::{PricePurpose, PriceSeries, TimeRange};
use crate::state::StateStore;

const N1: &str = "5790001089030";
const ENERGINET: &str = "5790000432752";
const DAY_AHEAD: &str = "/dataset/DayAheadPrices";
const ELSPOT: &str = "/dataset/Elspotprices";
const PRICELIST: &str = "/dataset/DatahubPricelist";
const CO2_REALISED: &str = "/dataset/CO2Emis";
const CO2_FORECAST: &str = "/dataset/CO2EmisProg";

fn fixture(name: &str) -> Vec<Value> {
    let text = match name {
        "dayahead" => include_str!("../../tests/fixtures/energidataservice/dayaheadprices_2025-10-26.json"),
        "elspot" => include_str!("../../tests/fixtures/energidataservice/elspotprices_2025-03-30.json"),
        "pricelist" => include_str!("../../tests/fixtures/energidataservice/datahubpricelist.json"),
        other => panic!("no fixture {other}"),
    };
    let v: Value = serde_json::from_str(text).unwrap();
    v["records"].as_array().unwrap().clone()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn range(from: &str, to: &str) -> TimeRange {
    TimeRange::new(utc(from), utc(to))
}

/// The four charges the pricelist fixture has: N1's grid tariff, Energinet's system and
/// transmission tariffs, and the electricity tax.
fn fixture_charges() -> Vec<ChargeKey> {
    vec![
        ChargeKey::new(N1, "B2D"),
        ChargeKey::new(ENERGINET, "41000"),
        ChargeKey::new(ENERGINET, "40000"),
        ChargeKey::new(ENERGINET, "EA-001"),
    ]
}

const CONSUMPTION: Terms = Terms::Consumption { vat: 0.25, markup: 0.0 };

/// A dataset as the fake serves it: its rows and the local-time column `start`/`end` select on.
struct Dataset {
    rows: Vec<Value>,
    time_column: &'static str,
}

#[derive(Clone)]
struct FakeEds {
    datasets: Arc<Mutex<HashMap<&'static str, Dataset>>>,
}

impl FakeEds {
    fn new() -> FakeEds {
        let mut map = HashMap::new();
        map.insert(
            DAY_AHEAD,
            Dataset {
                rows: fixture("dayahead"),
                time_column: "TimeDK",
            },
        );
        map.insert(
            ELSPOT,
            Dataset {
                rows: fixture("elspot"),
                time_column: "HourDK",
            },
        );
        map.insert(
            PRICELIST,
            Dataset {
                rows: fixture("pricelist"),
                time_column: "ValidFrom",
            },
        );
        for co2 in [CO2_REALISED, CO2_FORECAST] {
            map.insert(
                co2,
                Dataset {
                    rows: Vec::new(),
                    time_column: "Minutes5DK",
                },
            );
        }
        FakeEds {
            datasets: Arc::new(Mutex::new(map)),
        }
    }

    fn add(&self, dataset: &'static str, rows: Vec<Value>) {
        self.datasets
            .lock()
            .unwrap()
            .get_mut(dataset)
            .unwrap()
            .rows
            .extend(rows);
    }

    fn edit(&self, dataset: &'static str, f: impl Fn(&mut Value)) {
        self.datasets
            .lock()
            .unwrap()
            .get_mut(dataset)
            .unwrap()
            .rows
            .iter_mut()
            .for_each(f);
    }
}

/// `2025-10-26` and `2025-10-26T00:00` compare as `2025-10-26T00:00:00`.
fn full_local(raw: &str) -> String {
    let mut s = raw.to_owned();
    if s.len() == 10 {
        s.push_str("T00:00");
    }
    if s.len() == 16 {
        s.push_str(":00");
    }
    s
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Respond for FakeEds {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let q: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let datasets = self.datasets.lock().unwrap();
        let Some(dataset) = datasets.get(request.url.path()) else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"error": "Not Found", "message": "no such dataset"}));
        };
        let filter: serde_json::Map<String, Value> = match q.get("filter").map(|f| serde_json::from_str(f)) {
            Some(Ok(map)) => map,
            None => serde_json::Map::new(),
            Some(Err(_)) => return ResponseTemplate::new(400).set_body_json(json!({"message": "bad filter"})),
        };
        let start = q.get("start").map(|s| full_local(s));
        let end = q.get("end").map(|s| full_local(s));
        let mut rows: Vec<Value> = dataset
            .rows
            .iter()
            .filter(|row| {
                let t = row[dataset.time_column].as_str().unwrap_or_default();
                start.as_deref().is_none_or(|s| s <= t) && end.as_deref().is_none_or(|e| t < e)
            })
            .filter(|row| {
                filter.iter().all(|(column, allowed)| {
                    let have = as_text(&row[column]);
                    allowed.as_array().unwrap().iter().any(|a| as_text(a) == have)
                })
            })
            .cloned()
            .collect();
        if let Some(sort) = q.get("sort") {
            let column = sort.split_whitespace().next().unwrap_or_default();
            rows.sort_by_key(|row| as_text(&row[column]));
            if sort.ends_with(" desc") {
                rows.reverse();
            }
        }
        let total = rows.len();
        match q.get("limit").map(|l| l.parse::<usize>()) {
            Some(Ok(0)) => {}
            Some(Ok(n)) => rows.truncate(n),
            _ => rows.truncate(100),
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "total": total,
            "filters": q.get("filter"),
            "dataset": request.url.path().trim_start_matches("/dataset/"),
            "records": rows,
        }))
    }
}

mod co2;

#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

struct Harness {
    server: MockServer,
    fake: FakeEds,
    now: Arc<Mutex<DateTime<Utc>>>,
    sleeper: Arc<RecordingSleeper>,
    dir: tempfile::TempDir,
    prices: Prices,
}

impl Harness {
    async fn start(now: &str) -> Harness {
        Self::with_mocks(now, Vec::new()).await
    }

    /// `extra` mocks take precedence over the fake (give them a priority below 10) while they
    /// last.
    async fn with_mocks(now: &str, extra: Vec<Mock>) -> Harness {
        let server = MockServer::start().await;
        let fake = FakeEds::new();
        for mock in extra {
            mock.mount(&server).await;
        }
        Mock::given(method("GET"))
            .respond_with(fake.clone())
            .with_priority(10)
            .mount(&server)
            .await;
        let now = Arc::new(Mutex::new(utc(now)));
        let sleeper = Arc::new(RecordingSleeper::default());
        let dir = tempfile::tempdir().unwrap();
        let prices = Self::prices(&server, &now, &sleeper, &dir);
        Harness {
            server,
            fake,
            now,
            sleeper,
            dir,
            prices,
        }
    }

    fn prices(
        server: &MockServer,
        now: &Arc<Mutex<DateTime<Utc>>>,
        sleeper: &Arc<RecordingSleeper>,
        dir: &tempfile::TempDir,
    ) -> Prices {
        let client = EnergiDataService::new(ClientOptions {
            base_url: format!("{}/", server.uri()),
            timeout: Duration::from_secs(10),
            retry: retry_policy(),
            sleeper: sleeper.clone(),
        })
        .unwrap();
        let clock_now = now.clone();
        let clock: crate::clock::SharedClock = Arc::new(move || *clock_now.lock().unwrap());
        Prices::new(client, StateStore::open(dir.path()).unwrap(), clock)
    }

    /// A fresh `Prices` on the same state directory: what a restart sees.
    fn restart(&mut self) {
        self.prices = Self::prices(&self.server, &self.now, &self.sleeper, &self.dir);
    }

    fn set_now(&self, now: &str) {
        *self.now.lock().unwrap() = utc(now);
    }

    /// The query of every call to `dataset`, in order.
    async fn calls(&self, dataset: &str) -> Vec<HashMap<String, String>> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == dataset)
            .map(|r| r.url.query_pairs().into_owned().collect())
            .collect()
    }
}

/// Synthetic spot rows for a Danish day in the API's shape (`step_minutes` 60: Elspotprices,
/// 15: DayAheadPrices), price `first + i × 10` DKK/MWh for the i-th interval.
fn spot_rows(day: NaiveDate, area: &str, step_minutes: i64, first: f64) -> Vec<Value> {
    let local_midnight = |d: NaiveDate| {
        TZ.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    };
    let (start, end) = (local_midnight(day), local_midnight(day.succ_opt().unwrap()));
    let mut rows = Vec::new();
    let mut t = start;
    let mut i = 0.0;
    while t < end {
        let utc_text = t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
        let dk_text = t
            .with_timezone(&TZ)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let price = first + i * 10.0;
        rows.push(if step_minutes == 60 {
            json!({"HourUTC": utc_text, "HourDK": dk_text, "PriceArea": area, "SpotPriceDKK": price, "SpotPriceEUR": null})
        } else {
            json!({"TimeUTC": utc_text, "TimeDK": dk_text, "PriceArea": area, "DayAheadPriceDKK": price, "DayAheadPriceEUR": null})
        });
        t += chrono::Duration::minutes(step_minutes);
        i += 1.0;
    }
    rows
}

fn price_at(series: &PriceSeries, start: &str) -> f64 {
    series
        .points
        .iter()
        .find(|p| p.start == utc(start))
        .unwrap_or_else(|| panic!("no price at {start}"))
        .price
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

/// The tariffs of the fixture on a winter day, excluding VAT, by local hour: B2D (N1, from
/// 1 October 2025) + system 0.072 + transmission 0.049 + Elafgift 0.72.
fn winter_tariffs(local_hour: u32) -> f64 {
    let b2d = match local_hour {
        0..=5 => 0.0512,
        17..=20 => 0.3993,
        _ => 0.1536,
    };
    b2d + 0.072 + 0.049 + 0.72
}

#[tokio::test]
async fn the_25_hour_day_in_quarters_with_the_repeated_hour_on_price3() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    let day = range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
    let (series, missing) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), day, CONSUMPTION)
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(series.purpose, PricePurpose::Cost);
    assert_eq!(series.points.len(), 100);
    assert_eq!(series.points[0].start, utc("2025-10-25T22:00:00Z"));
    assert_eq!(series.points[99].end, utc("2025-10-26T23:00:00Z"));
    assert!(series.points.windows(2).all(|w| w[0].end == w[1].start));
    assert!(series
        .points
        .iter()
        .all(|p| p.end - p.start == chrono::Duration::minutes(15)));

    // 00:00 local (22:00 UTC the day before): 340 DKK/MWh, night tariffs.
    assert_close(
        price_at(&series, "2025-10-25T22:00:00Z"),
        (0.340 + 0.0512 + 0.841) * 1.25,
    );
    // The first 02:00 (CEST, 00:00 UTC): 460 DKK/MWh, Price3.
    assert_close(price_at(&series, "2025-10-26T00:00:00Z"), (0.460 + 0.8922) * 1.25);
    // The second 02:00 (CET, 01:00 UTC): 520 DKK/MWh, Price3 again.
    assert_close(price_at(&series, "2025-10-26T01:00:00Z"), (0.520 + 0.8922) * 1.25);
    assert_close(
        price_at(&series, "2025-10-26T01:45:00Z"),
        (0.370 + winter_tariffs(2)) * 1.25,
    );
    // 11:45 local: the cheapest quarter, 90 DKK/MWh, day tariff Price12 = 0.1536.
    assert_close(price_at(&series, "2025-10-26T10:45:00Z"), (0.090 + 0.9946) * 1.25);
    // 18:15 local (17:15 UTC): 520 DKK/MWh, winter peak Price19 = 0.3993.
    assert_close(price_at(&series, "2025-10-26T17:15:00Z"), (0.520 + 1.2403) * 1.25);
    // 23:45 local: 460 DKK/MWh, Price24 = 0.1536.
    assert_close(price_at(&series, "2025-10-26T22:45:00Z"), (0.460 + 0.9946) * 1.25);

    let calls = h.calls(DAY_AHEAD).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["start"], "2025-10-26");
    assert_eq!(calls[0]["end"], "2025-10-27");
    assert_eq!(calls[0]["filter"], r#"{"PriceArea":["DK1"]}"#);
    assert_eq!(calls[0]["sort"], "TimeUTC asc");
    assert_eq!(calls[0]["limit"], "0");
    let lists = h.calls(PRICELIST).await;
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0]["start"], "2015-01-01");
    let filter: Value = serde_json::from_str(&lists[0]["filter"]).unwrap();
    assert_eq!(
        filter,
        json!({"ChargeType": ["D03"], "ChargeTypeCode": ["40000", "41000", "B2D", "EA-001"], "GLN_Number": [ENERGINET, N1]})
    );
}

#[tokio::test]
async fn the_23_hour_day_hourly_from_elspotprices() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    let day = range("2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z");
    let terms = Terms::Consumption { vat: 0.25, markup: 0.1 };
    let (series, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), day, terms)
        .await
        .unwrap();
    assert_eq!(series.points.len(), 23);
    assert!(series
        .points
        .iter()
        .all(|p| p.end - p.start == chrono::Duration::hours(1)));
    // Local hour 2 does not exist: 01:00 UTC is 03:00 CEST.
    assert!(series
        .points
        .iter()
        .all(|p| p.start.with_timezone(&TZ).format("%H").to_string() != "02"));
    // The winter list of B2D (valid to 1 April): 0.0498 at night, 0.1494 by day, 0.3886 at peak;
    // the mark-up of 0.1 comes after VAT.
    let night = 0.0498 + 0.072 + 0.049 + 0.72;
    assert_close(price_at(&series, "2025-03-29T23:00:00Z"), (0.450 + night) * 1.25 + 0.1);
    assert_close(price_at(&series, "2025-03-30T01:00:00Z"), (0.490 + night) * 1.25 + 0.1);
    assert_close(
        price_at(&series, "2025-03-30T15:00:00Z"),
        (0.770 + 0.3886 + 0.841) * 1.25 + 0.1,
    );
    assert_close(
        price_at(&series, "2025-03-30T21:00:00Z"),
        (0.530 + 0.1494 + 0.841) * 1.25 + 0.1,
    );
    let calls = h.calls(ELSPOT).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0]["start"].as_str(), calls[0]["end"].as_str()),
        ("2025-03-30", "2025-03-31")
    );
    assert_eq!(calls[0]["sort"], "HourUTC asc");
    assert!(h.calls(DAY_AHEAD).await.is_empty());
}

#[tokio::test]
async fn the_switch_to_quarter_hours_and_a_tariff_change_at_the_same_midnight() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    h.fake.add(ELSPOT, spot_rows(day(2025, 9, 30), "DK1", 60, 500.0));
    h.fake.add(ELSPOT, spot_rows(day(2025, 9, 30), "DK2", 60, 900.0));
    h.fake.add(DAY_AHEAD, spot_rows(day(2025, 10, 1), "DK1", 15, 100.0));
    // 22:00 local on 30 September to 02:00 local on 1 October.
    let r = range("2025-09-30T20:00:00Z", "2025-10-01T00:00:00Z");
    let (series, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    let lengths: Vec<i64> = series.points.iter().map(|p| (p.end - p.start).num_minutes()).collect();
    assert_eq!(lengths, [60, 60, 15, 15, 15, 15, 15, 15, 15, 15]);
    // 23:00 local on 30 September: hour 23 of the day is 500 + 23 × 10 DKK/MWh; the summer B2D
    // list's Price24 is 0.0768 (the winter list would say 0.1536).
    assert_close(
        price_at(&series, "2025-09-30T21:00:00Z"),
        (0.730 + 0.0768 + 0.841) * 1.25,
    );
    // 00:00 local on 1 October: the first quarter, 100 DKK/MWh; the winter list's Price1.
    assert_close(
        price_at(&series, "2025-09-30T22:00:00Z"),
        (0.100 + 0.0512 + 0.841) * 1.25,
    );
    // 01:45 local: the eighth quarter, 170 DKK/MWh.
    assert_close(
        price_at(&series, "2025-09-30T23:45:00Z"),
        (0.170 + 0.0512 + 0.841) * 1.25,
    );

    let elspot = h.calls(ELSPOT).await;
    let day_ahead = h.calls(DAY_AHEAD).await;
    assert_eq!((elspot.len(), day_ahead.len()), (1, 1));
    assert_eq!(
        (elspot[0]["start"].as_str(), elspot[0]["end"].as_str()),
        ("2025-09-30", "2025-10-01")
    );
    assert_eq!(
        (day_ahead[0]["start"].as_str(), day_ahead[0]["end"].as_str()),
        ("2025-10-01", "2025-10-02")
    );
}

#[tokio::test]
async fn the_client_asks_both_datasets_for_a_range_across_the_switch() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    h.fake.add(ELSPOT, spot_rows(day(2025, 9, 30), "DK2", 60, 900.0));
    h.fake.add(DAY_AHEAD, spot_rows(day(2025, 10, 1), "DK2", 15, 100.0));
    let client = EnergiDataService::new(ClientOptions {
        base_url: h.server.uri(),
        ..ClientOptions::default()
    })
    .unwrap();
    let prices = client
        .spot_prices(PriceArea::DK2, range("2025-09-30T21:30:00Z", "2025-09-30T22:30:00Z"))
        .await
        .unwrap();
    // The hour 23–24 local overlaps the range; then two quarters of 1 October.
    assert_eq!(prices.len(), 3);
    assert_eq!(prices[0].start, utc("2025-09-30T21:00:00Z"));
    assert_close(prices[0].price, 1.130);
    assert_close(prices[2].price, 0.110);
    assert_eq!((h.calls(ELSPOT).await.len(), h.calls(DAY_AHEAD).await.len()), (1, 1));
}

#[tokio::test]
async fn negative_spot_prices_for_consumption_and_production() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    // The fixture's two cheapest DK1 quarters (11:30 and 11:45 local), made negative.
    h.fake.edit(DAY_AHEAD, |row| {
        if row["PriceArea"] == "DK1"
            && (row["TimeDK"] == "2025-10-26T11:30:00" || row["TimeDK"] == "2025-10-26T11:45:00")
        {
            let p = row["DayAheadPriceDKK"].as_f64().unwrap();
            row["DayAheadPriceDKK"] = json!(-p);
        }
    });
    let r = range("2025-10-26T10:30:00Z", "2025-10-26T11:00:00Z");
    let (cost, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert_eq!(cost.points.len(), 2);
    assert_close(cost.points[0].price, (-0.270 + 0.9946) * 1.25);
    assert_close(cost.points[1].price, (-0.090 + 0.9946) * 1.25);
    let (paid, missing) = h
        .prices
        .series(PriceArea::DK1, &[], r, Terms::Production { fee: 0.01 })
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(paid.purpose, PricePurpose::Compensation);
    assert_close(paid.points[0].price, -0.280);
    assert_close(paid.points[1].price, -0.100);
}

#[tokio::test]
async fn a_charge_without_price_lists_is_reported_and_its_hours_are_not_priced() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    let mut charges = fixture_charges();
    let unknown = ChargeKey::new(N1, "B2D-GONE");
    charges.push(unknown.clone());
    let r = range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
    let (series, missing) = h.prices.series(PriceArea::DK1, &charges, r, CONSUMPTION).await.unwrap();
    assert_eq!(missing, vec![unknown.clone()]);
    assert!(series.points.is_empty());
    // Production needs no tariffs and is priced all the same, without a price list call.
    let before = h.calls(PRICELIST).await.len();
    let (paid, missing) = h
        .prices
        .series(PriceArea::DK1, &charges, r, Terms::Production { fee: 0.0 })
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(paid.points.len(), 100);
    assert_eq!(h.calls(PRICELIST).await.len(), before);
    // The answer "no rows" is cached like any other: no second call within the day.
    let (_, missing) = h.prices.series(PriceArea::DK1, &charges, r, CONSUMPTION).await.unwrap();
    assert_eq!(missing, vec![unknown]);
    assert_eq!(h.calls(PRICELIST).await.len(), 1);
}

#[tokio::test]
async fn a_past_day_is_fetched_once_even_across_restarts_and_price_lists_daily() {
    let mut h = Harness::start("2025-11-10T12:00:00Z").await;
    let r = range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
    let (first, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    let (again, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert_eq!(first, again);
    h.restart();
    h.set_now("2025-11-11T11:59:00Z");
    let (after_restart, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert_eq!(first, after_restart);
    assert_eq!(h.calls(DAY_AHEAD).await.len(), 1);
    assert_eq!(h.calls(PRICELIST).await.len(), 1);
    assert!(h.dir.path().join("prices/spot-dk1-2025-10.json").exists());
    // A day after the first price list call, the lists are asked again; spot prices are not.
    h.set_now("2025-11-11T12:00:00Z");
    h.prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert_eq!(h.calls(PRICELIST).await.len(), 2);
    assert_eq!(h.calls(DAY_AHEAD).await.len(), 1);
    // The other area is a file and a call of its own.
    h.prices
        .series(PriceArea::DK2, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert_eq!(h.calls(DAY_AHEAD).await.len(), 2);
    assert!(h.dir.path().join("prices/spot-dk2-2025-10.json").exists());
}

async fn points(h: &Harness, r: TimeRange) -> usize {
    let (series, _) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    series.points.len()
}

#[tokio::test]
async fn tomorrow_is_asked_only_after_13_and_again_while_it_is_missing() {
    // 12:00 Danish time (CEST) on Saturday 25 October 2025.
    let h = Harness::start("2025-10-25T10:00:00Z").await;
    h.fake.add(DAY_AHEAD, spot_rows(day(2025, 10, 25), "DK1", 15, 300.0));
    // Tomorrow's prices are not published yet: the fake's rows of the 26th get a time no query
    // selects.
    let on_26th = |row: &Value| row["TimeDK"].as_str().unwrap().starts_with("2025-10-26");
    let tomorrow: Vec<Value> = fixture("dayahead").into_iter().filter(on_26th).collect();
    h.fake.edit(DAY_AHEAD, |row| {
        if on_26th(row) {
            row["TimeDK"] = json!("withheld");
        }
    });
    let today_and_tomorrow = range("2025-10-24T22:00:00Z", "2025-10-26T23:00:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 96);
    h.set_now("2025-10-25T10:59:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 96);
    let calls = h.calls(DAY_AHEAD).await;
    assert_eq!(calls.len(), 1, "only today, and only once, before 13:00");
    assert_eq!(
        (calls[0]["start"].as_str(), calls[0]["end"].as_str()),
        ("2025-10-25", "2025-10-26")
    );

    // 13:00: tomorrow is asked, but the publication is late.
    h.set_now("2025-10-25T11:00:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 96);
    let calls = h.calls(DAY_AHEAD).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[1]["start"].as_str(), calls[1]["end"].as_str()),
        ("2025-10-26", "2025-10-27")
    );
    h.set_now("2025-10-25T11:29:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 96);
    assert_eq!(
        h.calls(DAY_AHEAD).await.len(),
        2,
        "a short answer stands for half an hour"
    );

    // Published: the withheld rows stay out of every answer, the real ones come in.
    h.fake.add(DAY_AHEAD, tomorrow);
    h.set_now("2025-10-25T11:30:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 196);
    h.set_now("2025-10-25T20:00:00Z");
    assert_eq!(points(&h, today_and_tomorrow).await, 196);
    assert_eq!(h.calls(DAY_AHEAD).await.len(), 3);
}

#[tokio::test]
async fn malformed_json_is_retried_then_a_clear_error() {
    let h = Harness::with_mocks(
        "2025-11-10T12:00:00Z",
        vec![Mock::given(path(DAY_AHEAD))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"total\": 3, \"records\": [{"))
            .with_priority(1)],
    )
    .await;
    let err = h
        .prices
        .series(
            PriceArea::DK1,
            &[],
            range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
            Terms::Production { fee: 0.0 },
        )
        .await
        .unwrap_err();
    // Cut short like an answer during an outage: retried within the budget, then reported.
    assert!(matches!(
        &err,
        PricesError::Spot {
            dataset: "DayAheadPrices",
            area: PriceArea::DK1,
            source: HttpError::Exhausted {
                attempts: 5,
                last_status: Some(200),
                ..
            },
            ..
        }
    ));
    assert_eq!(h.sleeper.0.lock().unwrap().len(), 4);
    let msg = err.to_string();
    for part in [
        "DayAheadPrices",
        "DK1",
        "2025-10-26",
        "could not be parsed",
        "EOF while parsing",
        "body starts with \"{\\\"total\\\": 3",
        "check the configured address",
    ] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }
    // Nothing was cached: the next poll asks again.
    assert!(!h.dir.path().join("prices/spot-dk1-2025-10.json").exists());
}

#[tokio::test]
async fn a_server_error_is_retried_without_real_sleeping() {
    let h = Harness::with_mocks(
        "2025-11-10T12:00:00Z",
        vec![Mock::given(path(DAY_AHEAD))
            .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
            .up_to_n_times(1)
            .with_priority(1)],
    )
    .await;
    let (series, _) = h
        .prices
        .series(
            PriceArea::DK2,
            &fixture_charges(),
            range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
            CONSUMPTION,
        )
        .await
        .unwrap();
    assert_eq!(series.points.len(), 100);
    // DK2's first quarter: 365 DKK/MWh (the fixture's DK2 rows sit 25 above DK1's).
    assert_close(series.points[0].price, (0.365 + 0.8922) * 1.25);
    assert_eq!(h.sleeper.0.lock().unwrap().len(), 1);
    assert_eq!(h.calls(DAY_AHEAD).await.len(), 2);
}

#[tokio::test]
async fn a_refused_request_says_why_and_is_not_retried() {
    let h = Harness::with_mocks(
        "2025-11-10T12:00:00Z",
        vec![Mock::given(path(PRICELIST))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"error": "Bad Request", "message": "Invalid filter: unknown column"})),
            )
            .with_priority(1)],
    )
    .await;
    let err = h
        .prices
        .series(
            PriceArea::DK1,
            &fixture_charges(),
            range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
            CONSUMPTION,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    for part in [
        "DatahubPricelist",
        "5790001089030/B2D",
        "5790000432752/EA-001",
        "HTTP 400",
        "Invalid filter: unknown column",
        "refused the request",
    ] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }
    assert!(h.sleeper.0.lock().unwrap().is_empty());
    assert_eq!(h.calls(PRICELIST).await.len(), 1);
}

#[tokio::test]
async fn stale_price_lists_stand_in_when_the_refresh_fails() {
    let h = Harness::with_mocks(
        "2025-11-10T12:00:00Z",
        // Every price list call fails.
        vec![Mock::given(path(PRICELIST))
            .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
            .with_priority(1)],
    )
    .await;
    let r = range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
    let err = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still failing after 5 attempts"), "{err}");
    assert_eq!(h.sleeper.0.lock().unwrap().len(), 4);
    assert!(h
        .sleeper
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|d| *d >= Duration::from_secs(30)));

    // With lists from an earlier day in the cache, a failing refresh is not fatal.
    let earlier = Harness::start("2025-11-09T12:00:00Z").await;
    earlier.prices.tariffs(&fixture_charges()).await.unwrap();
    std::fs::create_dir_all(h.dir.path().join("prices")).unwrap();
    std::fs::copy(
        earlier.dir.path().join("prices/pricelists.json"),
        h.dir.path().join("prices/pricelists.json"),
    )
    .unwrap();
    let (series, missing) = h
        .prices
        .series(PriceArea::DK1, &fixture_charges(), r, CONSUMPTION)
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(series.points.len(), 100);
    assert_eq!(h.calls(PRICELIST).await.len(), 10);
}

#[tokio::test]
async fn bad_terms_fail_before_any_call() {
    let h = Harness::start("2025-11-10T12:00:00Z").await;
    let err = h
        .prices
        .series(
            PriceArea::DK1,
            &fixture_charges(),
            range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
            Terms::Consumption { vat: 25.0, markup: 0.0 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PricesError::Terms(_)));
    assert!(err.to_string().contains("0.25"), "{err}");
    assert!(h.server.received_requests().await.unwrap().is_empty());
}
