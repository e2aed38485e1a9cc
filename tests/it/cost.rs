//! Cost and compensation end to end: a fake ElOverblik (metering points with a postcode, the
//! tariffs of `getcharges` with `owner` + `priceId`, hourly consumption and quarter-hourly
//! production), a fake Energi Data Service built from the fixtures, a fake Home Assistant, and
//! the binary as a user runs it. The imported `..._cost` and `..._compensation` statistics must
//! equal, hour by hour, what this file works out by hand from the raw fixture rows (not through
//! the library's price code).
//!
//! Days (Danish):
//! - 2025-03-30, the 23-hour day: hourly `Elspotprices` (fixture), the winter grid tariff.
//! - 2025-07-15, a summer day: hourly `Elspotprices` (synthetic, below), with negative prices
//!   around noon; the summer grid tariff.
//! - 2025-09-30 and 2025-10-01: the switch from hourly `Elspotprices` to quarter-hourly
//!   `DayAheadPrices` at midnight, where the grid tariff also changes from its summer list to its
//!   winter list (synthetic spot rows): one read spans both.
//! - 2025-10-26, the 25-hour day: quarter-hourly `DayAheadPrices` (fixture); the repeated local
//!   hour 02–03 pays `Price3` twice.
//! - 2025-12-10, a winter day: quarter-hourly `DayAheadPrices` (synthetic), negative quarters at
//!   night.
//!
//! The synthetic spot rows are realistic in form (both areas, DK2 a little dearer, DKK and EUR
//! per MWh, UTC and local columns) and in size (−2 .. 0.7 DKK/kWh); their values are made up.
//! The tariffs are the `DatahubPricelist` fixture's own rows, history included.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, TimeZone, Timelike, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::eloverblik_fixture::{access_token, asked_points, timeseries_result};
use crate::support::fake_eds::{co2_rows, FakeEds, CO2_FORECAST, CO2_REALISED, DAY_AHEAD, ELSPOT, PRICELIST};
use crate::support::fake_ha::FakeHa;
use crate::support::{Broker, Proc};

const WAIT: Duration = Duration::from_secs(90);
pub(crate) const REFRESH_TOKEN: &str = "refresh-cost-SECRET-777";
const HA_TOKEN: &str = "ha-cost-SECRET-778";
pub(crate) const HOME: &str = "571313180100000001";
const SOLAR: &str = "571313180100000025";
const N1: &str = "5790001089030";
const ENERGINET: &str = "5790000432752";
const TZ: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;
/// The account's terms in the config below.
const VAT: f64 = 0.25;
const MARKUP: f64 = 0.05;
const FEE: f64 = 0.02;
const EUR_DKK: f64 = 7.46;

pub(crate) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The days priced, see the module note.
fn days() -> Vec<NaiveDate> {
    vec![
        day(2025, 3, 30),
        day(2025, 7, 15),
        day(2025, 9, 30),
        day(2025, 10, 1),
        day(2025, 10, 26),
        day(2025, 12, 10),
    ]
}

/// Local midnight of `d` in UTC.
pub(crate) fn midnight(d: NaiveDate) -> DateTime<Utc> {
    TZ.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// `[start, end)` of every `step` of Danish day `d`, in UTC.
fn steps(d: NaiveDate, step: Span) -> Vec<DateTime<Utc>> {
    let (from, to) = (midnight(d), midnight(d.succ_opt().unwrap()));
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        out.push(at);
        at += step;
    }
    out
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn local_text(t: DateTime<Utc>) -> String {
    t.with_timezone(&TZ).format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Hourly `Elspotprices` rows of a day: both areas, negative around noon.
fn elspot_rows(d: NaiveDate) -> Vec<Value> {
    let mut rows = Vec::new();
    for (i, hour) in steps(d, Span::hours(1)).into_iter().enumerate() {
        let mut dk1 = 250.0 + 45.0 * ((i * 5) % 9) as f64;
        if (11..14).contains(&i) {
            dk1 -= 420.0;
        }
        for (area, price) in [("DK1", dk1), ("DK2", dk1 + 17.5)] {
            rows.push(json!({
                "HourUTC": utc_text(hour), "HourDK": local_text(hour), "PriceArea": area,
                "SpotPriceDKK": price, "SpotPriceEUR": price / EUR_DKK,
            }));
        }
    }
    rows
}

/// Quarter-hourly `DayAheadPrices` rows of a day: both areas, negative 02:00–03:00.
pub(crate) fn day_ahead_rows(d: NaiveDate) -> Vec<Value> {
    let mut rows = Vec::new();
    for (q, quarter) in steps(d, Span::minutes(15)).into_iter().enumerate() {
        let dk1 = if (8..12).contains(&q) {
            -(15.0 + 2.5 * q as f64)
        } else {
            200.0 + 30.5 * ((q * 7) % 13) as f64
        };
        for (area, price) in [("DK1", dk1), ("DK2", dk1 + 12.25)] {
            rows.push(json!({
                "TimeUTC": utc_text(quarter), "TimeDK": local_text(quarter), "PriceArea": area,
                "DayAheadPriceDKK": price, "DayAheadPriceEUR": price / EUR_DKK,
            }));
        }
    }
    rows
}

/// The consumption of each hour, as DataHub's quantity strings.
fn home_quantity(i: usize) -> String {
    format!("{:.3}", 0.2 + 0.037 * ((i * 3) % 11) as f64)
}

/// The production of each quarter: nothing at night.
fn solar_quantity(at: DateTime<Utc>, q: usize) -> String {
    let hour = at.with_timezone(&TZ).hour();
    if (6..20).contains(&hour) {
        format!("{:.3}", 0.05 + 0.01 * ((q * 3) % 17) as f64)
    } else {
        "0.000".into()
    }
}

fn period(d: NaiveDate, resolution: &str, quantities: Vec<String>) -> Value {
    let points: Vec<Value> = quantities
        .into_iter()
        .enumerate()
        .map(|(i, q)| json!({"position": (i + 1).to_string(), "out_Quantity.quantity": q, "out_Quantity.quality": "A04"}))
        .collect();
    json!({
        "resolution": resolution,
        "timeInterval": {"start": format!("{}Z", utc_text(midnight(d))), "end": format!("{}Z", utc_text(midnight(d.succ_opt().unwrap())))},
        "Point": points,
    })
}

/// Every Period per metering point.
fn periods() -> BTreeMap<&'static str, Vec<(NaiveDate, Value)>> {
    let mut out: BTreeMap<&'static str, Vec<(NaiveDate, Value)>> = BTreeMap::new();
    for d in days() {
        let hours = steps(d, Span::hours(1)).len();
        out.entry(HOME)
            .or_default()
            .push((d, period(d, "PT1H", (0..hours).map(home_quantity).collect())));
        let quarters: Vec<String> = steps(d, Span::minutes(15))
            .into_iter()
            .enumerate()
            .map(|(q, at)| solar_quantity(at, q))
            .collect();
        out.entry(SOLAR).or_default().push((d, period(d, "PT15M", quarters)));
    }
    out
}

/// `gettimeseries/{from}/{to}/{aggregation}`: the periods of the asked days.
struct TimeSeries;

impl Respond for TimeSeries {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let parts: Vec<&str> = request.url.path().rsplitn(4, '/').collect();
        let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let (to, from) = (parse(parts[1]), parse(parts[2]));
        let all = periods();
        let result: Vec<Value> = asked_points(&request.body)
            .iter()
            .map(|id| {
                let chosen: Vec<Value> = all
                    .get(id.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|(d, _)| *d >= from && *d < to)
                    .map(|(_, p)| p.clone())
                    .collect();
                timeseries_result("cost", id, chosen)
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({ "result": result }))
    }
}

/// A tariff as `getcharges` lists it today; its prices here do not matter (the history comes
/// from Energi Data Service), its `owner` and `priceId` do.
fn tariff(owner: &str, price_id: &str, name: &str, period_type: &str) -> Value {
    let count = if period_type == "PT1H" { 24 } else { 1 };
    let prices: Vec<Value> = (1..=count)
        .map(|p| json!({"position": p.to_string(), "price": 0.1}))
        .collect();
    json!({"prices": prices, "priceId": price_id, "name": name, "description": name, "owner": owner,
           "validFromDate": "2020-12-31T23:00:00.000Z", "validToDate": null, "periodType": period_type})
}

fn charges() -> Value {
    let home = json!({"meteringPointId": HOME, "subscriptions": [], "fees": [], "tariffs": [
        tariff(N1, "B2D", "Nettarif B lav", "PT1H"),
        tariff(ENERGINET, "41000", "Systemtarif", "PT1H"),
        tariff(ENERGINET, "40000", "Transmissions nettarif", "PT1H"),
        tariff(ENERGINET, "EA-001", "Elafgift", "P1D"),
    ]});
    let solar = json!({"meteringPointId": SOLAR, "subscriptions": [], "fees": [], "tariffs": []});
    let item = |id: &str, result: Value| json!({"result": result, "success": true, "errorCode": 10000, "errorText": "NoError", "id": id, "stackTrace": null});
    json!({"result": [item(HOME, home), item(SOLAR, solar)]})
}

pub(crate) async fn fake_eloverblik() -> MockServer {
    let server = MockServer::start().await;
    let bearer = format!("Bearer {REFRESH_TOKEN}");
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .and(wiremock::matchers::header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": access_token() })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/meteringpoints/meteringpoints"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(crate::support::eloverblik_fixture::load("meteringpoints.json")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/meteringpoints/meteringpoint/getcharges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(charges()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/meterdata/gettimeseries/"))
        .respond_with(TimeSeries)
        .mount(&server)
        .await;
    server
}

/// The fake Energi Data Service: the fixtures plus the synthetic days.
async fn fake_eds() -> FakeEds {
    let eds = FakeEds::start().await;
    for d in [day(2025, 7, 15), day(2025, 9, 30)] {
        eds.add(ELSPOT, elspot_rows(d));
    }
    for d in [day(2025, 10, 1), day(2025, 12, 10)] {
        eds.add(DAY_AHEAD, day_ahead_rows(d));
    }
    eds
}

// ---- The hand computation, from the raw rows alone. ----

/// DK1 spot prices in DKK per kWh by UTC start, with their length.
struct Spot {
    prices: BTreeMap<DateTime<Utc>, (Span, f64)>,
}

impl Spot {
    fn from(eds: &FakeEds) -> Spot {
        let mut prices = BTreeMap::new();
        let utc =
            |s: &str| Utc.from_utc_datetime(&chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap());
        for row in eds.records(ELSPOT).iter().filter(|r| r["PriceArea"] == "DK1") {
            let start = utc(row["HourUTC"].as_str().unwrap());
            // Hourly prices are for days before 1 October 2025 only.
            if start < midnight(day(2025, 10, 1)) {
                prices.insert(start, (Span::hours(1), row["SpotPriceDKK"].as_f64().unwrap() / 1000.0));
            }
        }
        for row in eds.records(DAY_AHEAD).iter().filter(|r| r["PriceArea"] == "DK1") {
            let start = utc(row["TimeUTC"].as_str().unwrap());
            if start >= midnight(day(2025, 10, 1)) {
                prices.insert(
                    start,
                    (Span::minutes(15), row["DayAheadPriceDKK"].as_f64().unwrap() / 1000.0),
                );
            }
        }
        Spot { prices }
    }

    /// The price in force at `at`.
    fn at(&self, at: DateTime<Utc>) -> f64 {
        let (start, (length, price)) = self.prices.range(..=at).next_back().expect("a spot price");
        assert!(at < *start + *length, "no spot price at {at}");
        *price
    }

    /// The mean over the hour starting at `hour`, by quarter hours.
    fn hour_mean(&self, hour: DateTime<Utc>) -> f64 {
        (0..4).map(|q| self.at(hour + Span::minutes(15 * q))).sum::<f64>() / 4.0
    }
}

/// The sum of the four charges' prices (DKK per kWh, excluding VAT) for the local hour that
/// starts at `hour`, and the part of it that is tax: each charge's row valid then (the one that
/// started last), `PriceN` for local hour N−1, a daily list's `Price1` for every hour.
fn tariffs_at(pricelist: &[Value], hour: DateTime<Utc>) -> (f64, f64) {
    let local = hour.with_timezone(&TZ);
    let at = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut total = 0.0;
    let mut tax = 0.0;
    for (owner, code) in [
        (N1, "B2D"),
        (ENERGINET, "41000"),
        (ENERGINET, "40000"),
        (ENERGINET, "EA-001"),
    ] {
        let row = pricelist
            .iter()
            .filter(|r| r["GLN_Number"] == owner && r["ChargeTypeCode"] == code)
            .filter(|r| {
                let from = r["ValidFrom"].as_str().unwrap();
                let to = r["ValidTo"].as_str();
                from <= at.as_str() && to.is_none_or(|to| at.as_str() < to)
            })
            .max_by_key(|r| r["ValidFrom"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {code} list at {at}"));
        let column = if row["ResolutionDuration"] == "P1D" {
            "Price1".to_owned()
        } else {
            format!("Price{}", local.hour() + 1)
        };
        let price = row[column.as_str()]
            .as_f64()
            .unwrap_or_else(|| row["Price1"].as_f64().unwrap());
        total += price;
        if row["TaxIndicator"].as_i64() == Some(1) || row["TaxIndicator"] == true {
            tax += price;
        }
    }
    (total, tax)
}

/// One hour of consumption, in the parts of its cost.
#[derive(Debug, Default, Clone, Copy)]
struct Parts {
    kwh: f64,
    spot: f64,
    tariffs: f64,
    tax: f64,
    vat: f64,
    markup: f64,
}

impl Parts {
    fn total(&self) -> f64 {
        self.spot + self.tariffs + self.vat + self.markup
    }

    fn add(&mut self, other: Parts) {
        self.kwh += other.kwh;
        self.spot += other.spot;
        self.tariffs += other.tariffs;
        self.tax += other.tax;
        self.vat += other.vat;
        self.markup += other.markup;
    }
}

/// Per UTC hour of the consumption point: what it cost, in its parts.
fn expected_cost(eds: &FakeEds) -> BTreeMap<DateTime<Utc>, Parts> {
    let spot = Spot::from(eds);
    let pricelist = eds.records(PRICELIST);
    let mut out = BTreeMap::new();
    for d in days() {
        for (i, hour) in steps(d, Span::hours(1)).into_iter().enumerate() {
            let kwh: f64 = home_quantity(i).parse().unwrap();
            let spot_price = spot.hour_mean(hour);
            let (tariffs, tax) = tariffs_at(&pricelist, hour);
            out.insert(
                hour,
                Parts {
                    kwh,
                    spot: kwh * spot_price,
                    tariffs: kwh * tariffs,
                    tax: kwh * tax,
                    vat: kwh * (spot_price + tariffs) * VAT,
                    markup: kwh * MARKUP,
                },
            );
        }
    }
    out
}

/// Per UTC hour of the production point: what its quarters earned at spot less the fee.
fn expected_compensation(eds: &FakeEds) -> BTreeMap<DateTime<Utc>, f64> {
    let spot = Spot::from(eds);
    let mut out: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for d in days() {
        for (q, quarter) in steps(d, Span::minutes(15)).into_iter().enumerate() {
            let kwh: f64 = solar_quantity(quarter, q).parse().unwrap();
            let hour = quarter - Span::minutes(i64::from(quarter.minute()));
            *out.entry(hour).or_default() += kwh * (spot.at(quarter) - FEE);
        }
    }
    out
}

async fn wait_for_rows(ha: &FakeHa, id: &str, count: usize) -> Vec<crate::support::fake_ha::StoredRow> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = ha.rows(id);
        if rows.len() >= count {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: {} of {count} rows",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_hours(id: &str, rows: &[crate::support::fake_ha::StoredRow], expected: &BTreeMap<DateTime<Utc>, f64>) {
    let got: BTreeMap<DateTime<Utc>, f64> = rows.iter().map(|r| (r.start, r.state.unwrap())).collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{id}: the hours imported"
    );
    for (hour, want) in expected {
        assert!(
            (got[hour] - want).abs() < 1e-6,
            "{id} at {hour} ({}): imported {} DKK, by hand {want} DKK",
            hour.with_timezone(&TZ),
            got[hour]
        );
    }
    // The running sum adds up too.
    let total: f64 = expected.values().sum();
    let last = rows.last().unwrap().sum.unwrap();
    assert!((last - total).abs() < 1e-6, "{id}: sum {last} vs {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_and_compensation_match_the_hand_computed_prices() {
    let broker = Broker::start().await;
    let eloverblik = fake_eloverblik().await;
    let eds = fake_eds().await;
    let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n[bridge]\nhistory_start = \"2025-03-29\"\njitter = \"0s\"\n\
             [state]\ndir = \"{}\"\n[homeassistant]\nurl = \"{}\"\ntoken = \"{HA_TOKEN}\"\ncost = true\n\
             [[eloverblik]]\nrefresh_token = \"{REFRESH_TOKEN}\"\nbase_url = \"{}\"\nenergidataservice_url = \"{}\"\n\
             vat = 25\nsupplier_markup = {MARKUP}\nsupplier_fee = {FEE}\n",
            broker.port,
            dir.path().join("state").display(),
            ha.url(),
            eloverblik.uri(),
            eds.uri(),
        ),
    )
    .unwrap();
    let mut daemon = Proc::spawn(
        &["run", "--config", config.to_str().unwrap(), "--log-level", "debug"],
        &[],
    );
    daemon.wait_for_line("poll finished", 1).await;

    let cost = expected_cost(&eds);
    assert_eq!(cost.len(), 23 + 24 + 24 + 24 + 25 + 24);
    let cost_id = format!("meter2mqtt:eloverblik_{HOME}_cost");
    let rows = wait_for_rows(&ha, &cost_id, cost.len()).await;
    let totals: BTreeMap<DateTime<Utc>, f64> = cost.iter().map(|(h, p)| (*h, p.total())).collect();
    assert_hours(&cost_id, &rows, &totals);
    let metadata = ha.metadata(&cost_id).expect("cost metadata");
    assert_eq!(metadata["unit_of_measurement"], "DKK");

    let paid = expected_compensation(&eds);
    assert_eq!(paid.len(), cost.len());
    assert!(
        paid.values().any(|v| *v < 0.0),
        "negative prices make some hours cost the producer"
    );
    let paid_id = format!("meter2mqtt:eloverblik_{SOLAR}_compensation");
    let rows = wait_for_rows(&ha, &paid_id, paid.len()).await;
    assert_hours(&paid_id, &rows, &paid);

    // The figures of one fixture day, for the record.
    for d in days() {
        let mut parts = Parts::default();
        for (_, p) in cost.range(midnight(d)..midnight(d.succ_opt().unwrap())) {
            parts.add(*p);
        }
        eprintln!(
            "{d}: {:.3} kWh cost {:.6} DKK = spot {:.6} + tariffs {:.6} (of which tax {:.6}) + VAT {:.6} + mark-up {:.6}",
            parts.kwh,
            parts.total(),
            parts.spot,
            parts.tariffs,
            parts.tax,
            parts.vat,
            parts.markup
        );
    }
    // Every spot dataset was asked, and each price list once.
    assert!(eds.calls(ELSPOT).await >= 1 && eds.calls(DAY_AHEAD).await >= 1);
    assert_eq!(eds.calls(PRICELIST).await, 1);
    assert_eq!(daemon.terminate(Duration::from_secs(5)).await, 0);
    let log = daemon.text();
    assert!(!log.contains(REFRESH_TOKEN) && !log.contains(HA_TOKEN));
}

/// The live price sensor as Home Assistant sees it, at a pinned 11:20 (CET) on 26 October 2025:
/// its discovery config and the retained message on its state topic (the point reads hourly, so
/// the price of the hour 11:00–12:00, with today's 25 hours as attributes). Tomorrow's prices
/// are not published before 13:00, so none are asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_price_sensor_and_its_state_at_a_pinned_time() {
    use std::sync::Arc;

    use meter2mqtt::clock::SharedClock;

    let now = Utc.with_ymd_and_hms(2025, 10, 26, 10, 20, 0).unwrap();
    let clock: SharedClock = Arc::new(move || now);
    let broker = Broker::start().await;
    let eloverblik = fake_eloverblik().await;
    let eds = fake_eds().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::config(broker.port, &dir.path().join("state"));
    let provider = home_account(
        &eloverblik,
        &eds,
        &config,
        clock.clone(),
        json!({ "supplier_markup": MARKUP }),
    );
    let collector =
        crate::support::Collector::connect(broker.port, "price-sensor", &["homeassistant/#", "meter2mqtt/#"], false)
            .await;
    let mut bridge = crate::support::TestBridge::start_at(&config, vec![Arc::new(provider)], vec![], clock);
    bridge.next_poll().await;

    let config_topic = format!("homeassistant/sensor/meter2mqtt_eloverblik_{HOME}_price/config");
    collector
        .wait_until(WAIT, "the price sensor's config", |m| {
            m.iter().any(|m| m.topic == config_topic && !m.payload.is_empty())
        })
        .await;
    let discovery: Value = serde_json::from_str(&collector.on(&config_topic).pop().unwrap().payload).unwrap();
    let state_topic = discovery["state_topic"].as_str().expect("a state topic").to_owned();
    collector
        .wait_until(WAIT, "the price sensor's state", |m| {
            m.iter().any(|m| m.topic == state_topic)
        })
        .await;
    let state: Value = serde_json::from_str(&collector.on(&state_topic).pop().unwrap().payload).unwrap();
    bridge.stop().await;

    // By hand: 11:15 CET is local hour 11, the winter lists: B2D Price12 0.1536, system 0.072,
    // transmission 0.049, tax 0.72. The point reads hourly, so the sensor is hourly: the spot
    // price is the mean of the fixture's four DK1 quarters of 10:00-11:00 UTC.
    let spot = eds
        .records(DAY_AHEAD)
        .into_iter()
        .filter(|r| r["PriceArea"] == "DK1" && r["TimeUTC"].as_str().unwrap().starts_with("2025-10-26T10:"))
        .map(|r| r["DayAheadPriceDKK"].as_f64().unwrap() / 1000.0)
        .sum::<f64>()
        / 4.0;
    let price = (spot + 0.1536 + 0.072 + 0.049 + 0.72) * (1.0 + VAT) + MARKUP;
    assert!((state["value"].as_f64().unwrap() - price).abs() < 1e-4, "{state}");

    insta::assert_json_snapshot!("price_sensor_discovery", discovery, {
        ".origin.sw_version" => "[version]",
        ".device.sw_version" => "[version]",
    });
    insta::assert_json_snapshot!("price_sensor_state", state);
}

/// The account of `HOME` against the fakes, on the state directory of `config`, its clock
/// pinned; `extra` settings on top of the fakes' addresses.
pub(crate) fn home_account(
    eloverblik: &MockServer,
    eds: &FakeEds,
    config: &meter2mqtt::Config,
    clock: meter2mqtt::clock::SharedClock,
    extra: Value,
) -> meter2mqtt::providers::eloverblik::EloverblikProvider {
    use meter2mqtt::providers::eloverblik::{EloverblikProvider, Options, Settings};
    let mut settings = json!({
        "refresh_token": REFRESH_TOKEN,
        "base_url": eloverblik.uri(),
        "energidataservice_url": eds.uri(),
        "metering_points": [HOME],
    });
    for (key, value) in extra.as_object().expect("settings") {
        settings[key] = value.clone();
    }
    let settings: Settings = serde_json::from_value(settings).unwrap();
    let options = Options {
        clock,
        ..Options::default()
    };
    let store = meter2mqtt::state::StateStore::open(&config.state.dir).unwrap();
    EloverblikProvider::new(&settings, "1".into(), store, options).unwrap()
}

/// `check` lists each point's price area, its tariffs and whether their history was found, and
/// whether the CO2 datasets answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_price_areas_and_tariff_histories() {
    let eds = fake_eds().await;
    let now = Utc::now();
    eds.add(CO2_REALISED, co2_rows(now - Span::hours(2), now, 0.0));
    eds.add(
        CO2_FORECAST,
        co2_rows(now - Span::hours(24), now + Span::hours(48), 0.0),
    );
    let text = check_text(&eds).await;
    for line in [
        "price area: DK1 (from the postcode)",
        "tariff 5790001089030 B2D \"Nettarif B lav\": price history found in Energi Data Service (3 price lists)",
        "tariff 5790000432752 EA-001 \"Elafgift\": price history found in Energi Data Service (1 price lists)",
        "compensation: the spot price less a supplier fee of 0 DKK/kWh",
        "CO2 intensity (DK1): CO2Emis and CO2EmisProg reachable; newest ",
        "all checks passed",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// A CO2 dataset that does not answer is a WARNING naming it, not a failed check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_when_the_co2_datasets_do_not_answer() {
    let eds = fake_eds().await;
    eds.remove(CO2_REALISED);
    let text = check_text(&eds).await;
    let line = text
        .lines()
        .find(|l| l.contains("CO2 intensity (DK1)"))
        .unwrap_or_else(|| panic!("no CO2 line in:\n{text}"));
    assert!(line.contains("CO2Emis") && line.ends_with(": WARNING"), "{line}");
    assert!(text.contains("all checks passed"), "{text}");
}

/// `check` of one account against the fakes; its output.
async fn check_text(eds: &FakeEds) -> String {
    let broker = Broker::start().await;
    let eloverblik = fake_eloverblik().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n[state]\ndir = \"{}\"\n\
             [[eloverblik]]\nrefresh_token = \"{REFRESH_TOKEN}\"\nbase_url = \"{}\"\nenergidataservice_url = \"{}\"\n",
            broker.port,
            dir.path().join("state").display(),
            eloverblik.uri(),
            eds.uri(),
        ),
    )
    .unwrap();
    let mut check = Proc::spawn(&["check", "--config", config.to_str().unwrap()], &[]);
    let code = check.wait_exit(WAIT).await;
    let text = check.text();
    assert_eq!(code, 0, "{text}");
    text
}
