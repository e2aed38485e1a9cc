//! ElOverblik end to end: a fake DataHub built from the fixtures, a real mosquitto, a fake Home
//! Assistant, and the binary as a user runs it. Every fixture hour arrives once on the readings
//! topic at the right UTC start; the statistics imported into Home Assistant equal the fixture's
//! hourly values and their last sum the total; a restart re-delivers nothing and loses nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::eloverblik_fixture::{access_token, asked_points, timeseries_result};
use crate::support::fake_ha::FakeHa;
use crate::support::{Broker, Collector, Proc};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(60);
const REFRESH_TOKEN: &str = "refresh-e2e-SECRET-31337";
const HA_TOKEN: &str = "ha-e2e-SECRET-4242";
const HOME: &str = "571313180100000001";
const SOLAR: &str = "571313180100000025";
const COPENHAGEN: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/eloverblik/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every Period of every fixture document, per metering point.
fn periods() -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for file in [
        "timeseries_hour.json",
        "timeseries_dst.json",
        "timeseries_dst_autumn.json",
        "timeseries_quarter.json",
    ] {
        for item in fixture(file)["result"].as_array().unwrap() {
            for ts in item["MyEnergyData_MarketDocument"]["TimeSeries"].as_array().unwrap() {
                out.entry(ts["mRID"].as_str().unwrap().to_owned())
                    .or_default()
                    .extend(ts["Period"].as_array().unwrap().iter().cloned());
            }
        }
    }
    out
}

/// The fixture's hourly values of the consumption point: UTC start → kWh.
fn expected_hours() -> BTreeMap<DateTime<Utc>, f64> {
    let mut out = BTreeMap::new();
    for period in &periods()[HOME] {
        let start: DateTime<Utc> = period["timeInterval"]["start"].as_str().unwrap().parse().unwrap();
        for point in period["Point"].as_array().unwrap() {
            let position: i64 = point["position"].as_str().unwrap().parse().unwrap();
            let value: f64 = point["out_Quantity.quantity"].as_str().unwrap().parse().unwrap();
            out.insert(start + chrono::Duration::hours(position - 1), value);
        }
    }
    out
}

/// `gettimeseries/{from}/{to}/{aggregation}`: the fixture periods of the asked points that fall
/// inside the asked Danish days, as DataHub would answer.
struct TimeSeries {
    periods: BTreeMap<String, Vec<Value>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Respond for TimeSeries {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let parts: Vec<&str> = request.url.path().rsplitn(4, '/').collect();
        let (aggregation, to, from) = (parts[0], parts[1], parts[2]);
        self.calls.lock().unwrap().push(format!("{from}/{to}/{aggregation}"));
        let day = |s: &str| {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            COPENHAGEN
                .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                .earliest()
                .unwrap()
                .with_timezone(&Utc)
        };
        let (from, to) = (day(from), day(to));
        let result: Vec<Value> = asked_points(&request.body)
            .iter()
            .map(|id| {
                let periods: Vec<Value> = self
                    .periods
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter(|p| {
                        let start: DateTime<Utc> = p["timeInterval"]["start"].as_str().unwrap().parse().unwrap();
                        start >= from && start < to
                    })
                    .cloned()
                    .collect();
                timeseries_result("e2e", id, periods)
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({ "result": result }))
    }
}

struct FakeDataHub {
    server: MockServer,
    timeseries_calls: Arc<Mutex<Vec<String>>>,
}

async fn fake_datahub() -> FakeDataHub {
    let server = MockServer::start().await;
    let bearer = format!("Bearer {REFRESH_TOKEN}");
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .and(wiremock::matchers::header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": access_token() })))
        .named("token")
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/meteringpoints/meteringpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("meteringpoints.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/meteringpoints/meteringpoint/getcharges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("charges.json")))
        .mount(&server)
        .await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path_regex("^/api/meterdata/gettimeseries/"))
        .respond_with(TimeSeries {
            periods: periods(),
            calls: calls.clone(),
        })
        .mount(&server)
        .await;
    FakeDataHub {
        server,
        timeseries_calls: calls,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datahub_to_mqtt_and_the_energy_dashboard() {
    let broker = Broker::start().await;
    let datahub = fake_datahub().await;
    let ha = FakeHa::start("2025.10.1", HA_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n[bridge]\nhistory_start = \"2024-03-28\"\njitter = \"0s\"\n[state]\ndir = \"{}\"\n\
             [homeassistant]\nurl = \"{}\"\ntoken = \"{HA_TOKEN}\"\ncost = true\n\
             [[eloverblik]]\nrefresh_token = \"{REFRESH_TOKEN}\"\nbase_url = \"{}\"\nenergidataservice_url = \"{}\"\n",
            broker.port,
            dir.path().join("state").display(),
            ha.url(),
            datahub.server.uri(),
            // No price dataset there: Energi Data Service answers 404, which must not hold up
            // the meter data or the consumption statistics.
            datahub.server.uri()
        ),
    )
    .unwrap();
    let collector = Collector::connect(
        broker.port,
        "eloverblik-e2e",
        &["homeassistant/#", "meter2mqtt/#"],
        false,
    )
    .await;

    let mut daemon = Proc::spawn(
        &["run", "--config", config.to_str().unwrap(), "--log-level", "debug"],
        &[],
    );
    daemon.wait_for_line("poll finished", 1).await;
    let expected = expected_hours();
    assert_eq!(expected.len(), 72 + 23 + 25);

    // MQTT: every fixture hour once, at its UTC start, adding up to the fixture's total.
    let home_topic = format!("meter2mqtt/eloverblik/{HOME}/readings");
    collector
        .wait_until(WAIT, "all hours", |m| {
            m.iter()
                .filter(|m| m.topic == home_topic)
                .map(|m| m.payload.matches("\"start\"").count())
                .sum::<usize>()
                >= expected.len()
        })
        .await;
    let mut got: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for m in collector.on(&home_topic) {
        let batch: Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(batch["unit"], "kWh");
        for r in batch["readings"].as_array().unwrap() {
            let start: DateTime<Utc> = r["start"].as_str().unwrap().parse().unwrap();
            assert!(
                got.insert(start, r["value"].as_f64().unwrap()).is_none(),
                "{start} delivered twice"
            );
        }
    }
    assert_eq!(got, expected);
    assert!(
        got.contains_key(&Utc.with_ymd_and_hms(2024, 3, 31, 0, 0, 0).unwrap()),
        "spring-forward day starts at 00:00Z"
    );
    assert!(
        !got.contains_key(&Utc.with_ymd_and_hms(2024, 3, 31, 22, 0, 0).unwrap()),
        "the 23-hour day ends at 22:00Z"
    );
    assert!(
        got.contains_key(&Utc.with_ymd_and_hms(2024, 10, 27, 22, 0, 0).unwrap()),
        "the 25-hour day ends at 23:00Z"
    );

    // Quarter-hours of the production point, missing one included, with its quality.
    let solar: Vec<Value> = collector
        .on(&format!("meter2mqtt/eloverblik/{SOLAR}/readings"))
        .iter()
        .flat_map(|m| {
            serde_json::from_str::<Value>(&m.payload).unwrap()["readings"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(solar.len(), 96);
    let qualities: Vec<&str> = solar[48..51].iter().map(|r| r["quality"].as_str().unwrap()).collect();
    assert_eq!(qualities, ["missing", "incomplete", "estimated"]);
    assert!(solar[48]["value"].is_null());

    // Discovery: both meters, the child point, the tariff and subscriptions.
    for key in [
        "latest",
        "last_day",
        "api_status",
        "data_until",
        "tariff",
        "subscriptions",
    ] {
        let topic = format!("homeassistant/sensor/meter2mqtt_eloverblik_{HOME}_{key}/config");
        assert!(
            collector.on(&topic).iter().any(|m| !m.payload.is_empty()),
            "missing {topic}"
        );
    }
    let main: Value = serde_json::from_str(
        &collector
            .on(&format!("meter2mqtt_eloverblik_{HOME}_latest/config"))
            .pop()
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(main["device"]["serial_number"], HOME);
    assert_eq!(main["device_class"], "energy");
    assert!(main.get("state_class").is_none());

    // Energy dashboard: the imported hours are the fixture's, the last sum the total.
    let id = format!("meter2mqtt:eloverblik_{HOME}_consumption");
    let deadline = tokio::time::Instant::now() + WAIT;
    while ha.rows(&id).len() < expected.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "statistics rows: {}",
            ha.rows(&id).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = ha.rows(&id);
    let imported: BTreeMap<DateTime<Utc>, f64> = rows.iter().map(|r| (r.start, r.state.unwrap())).collect();
    assert_eq!(imported.len(), expected.len());
    for (start, value) in &expected {
        assert!(
            (imported[start] - value).abs() < 1e-9,
            "{start}: {} vs {value}",
            imported[start]
        );
    }
    let total: f64 = expected.values().sum();
    assert!(
        (rows.last().unwrap().sum.unwrap() - total).abs() < 1e-6,
        "{} vs {total}",
        rows.last().unwrap().sum.unwrap()
    );
    assert!(
        ha.rows(&format!("meter2mqtt:eloverblik_{HOME}_cost")).is_empty(),
        "no cost without prices: imported later rather than wrong"
    );
    let production = ha.rows(&format!("meter2mqtt:eloverblik_{SOLAR}_production"));
    assert_eq!(production.len(), 24, "quarter-hours summed to hours");

    let first_calls = datahub.timeseries_calls.lock().unwrap().len();
    assert_eq!(daemon.terminate(Duration::from_secs(5)).await, 0);
    let log = daemon.text();
    for secret in [REFRESH_TOKEN, HA_TOKEN] {
        assert!(!log.contains(secret));
    }

    // Restart: nothing re-delivered, nothing lost, no new token call.
    assert_eq!(token_calls(&datahub.server).await, 1);
    let mut daemon = Proc::spawn(
        &["run", "--config", config.to_str().unwrap(), "--log-level", "debug"],
        &[],
    );
    daemon.wait_for_line("poll finished", 1).await;
    assert!(daemon
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("poll finished") && l.contains("published=0")));
    assert_eq!(daemon.terminate(Duration::from_secs(5)).await, 0);
    assert_eq!(
        token_calls(&datahub.server).await,
        1,
        "the access token survives the restart"
    );
    assert_eq!(ha.rows(&id).len(), expected.len());
    let counts = collector.reading_counts();
    assert!(counts.values().all(|n| *n == 1), "re-delivered after restart");
    eprintln!(
        "timeseries calls: first poll {first_calls}, after restart {}",
        datahub.timeseries_calls.lock().unwrap().len() - first_calls
    );
}

async fn token_calls(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/token")
        .count()
}
