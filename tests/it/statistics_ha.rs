//! The statistics sink against a fake Home Assistant websocket API.

use crate::support::eloverblik_fixture as fixture;

use std::time::Duration;

use crate::support::fake_ha::{FakeHa, StoredRow};
use chrono::{DateTime, TimeZone, Timelike, Utc};
use futures_util::{SinkExt, StreamExt};
use meter2mqtt::homeassistant::LinkState as ConnectionState;
use meter2mqtt::http::RetryPolicy;
use meter2mqtt::model::{DeviceInfo, Direction, IntervalReading, Medium, Meter, Quality, Unit};
use meter2mqtt::model::{PricePoint, PricePurpose, PriceSeries};
use meter2mqtt::secret::Secret;
use meter2mqtt::state::StateStore;
use meter2mqtt::statistics::{StatisticsError, StatisticsSettings, StatisticsSink};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const CURRENT: &str = "2025.10.1";
const CONSUMPTION_ID: &str = "meter2mqtt:eloverblik_571313180100000001_consumption";

fn meter(id: &str, direction: Direction) -> Meter {
    Meter {
        provider: "eloverblik".into(),
        id: id.into(),
        name: "House".into(),
        medium: Medium::Electricity,
        direction,
        unit: Unit::KWh,
        cumulative: false,
        timezone: chrono_tz::Europe::Copenhagen,
        device: DeviceInfo::default(),
    }
}

fn house() -> Meter {
    meter("571313180100000001", Direction::Consumption)
}

fn settings(url: &str, token: &str) -> StatisticsSettings {
    let mut s = StatisticsSettings::new(url, Secret::new(token), false);
    s.connect_timeout = Duration::from_secs(5);
    s.request_timeout = Duration::from_secs(5);
    s.reconnect = RetryPolicy {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(100),
        randomization_factor: 0.0,
        ..RetryPolicy::default()
    };
    s
}

fn start(settings: StatisticsSettings, dir: &tempfile::TempDir) -> StatisticsSink {
    StatisticsSink::start(settings, StateStore::open(dir.path()).expect("state dir"))
}

/// (hour start, value) of each hourly reading with a value.
fn hourly(readings: &[IntervalReading]) -> Vec<(DateTime<Utc>, f64)> {
    readings.iter().filter_map(|r| r.value.map(|v| (r.start, v))).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// HA holds exactly `expected`, with sums running from `base`.
fn assert_rows(rows: &[StoredRow], expected: &[(DateTime<Utc>, f64)], base: f64) {
    assert_eq!(rows.len(), expected.len(), "row count");
    let mut sum = base;
    for (row, &(start, value)) in rows.iter().zip(expected) {
        sum += value;
        assert_eq!(row.start, start);
        assert!(
            close(row.state.unwrap(), value),
            "state at {start}: {:?} != {value}",
            row.state
        );
        assert!(close(row.sum.unwrap(), sum), "sum at {start}: {:?} != {sum}", row.sum);
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

#[tokio::test]
async fn backfill_imports_every_hour_and_a_repeat_sends_nothing() {
    let ha = FakeHa::start(CURRENT, "tok-backfill").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-backfill"), &dir);
    let readings = fixture::readings("timeseries_hour.json");
    assert_eq!(sink.needs_from(&house()).await, None);

    let report = sink.import(&house(), &readings, None).await.expect("import");
    assert_eq!(report.rows_sent(), 72);
    assert_eq!(report.series[0].statistic_id, CONSUMPTION_ID);
    assert_eq!(report.series[0].first_sent, Some(utc(2024, 3, 27, 23)));
    assert_eq!(report.series[0].last_hour, Some(utc(2024, 3, 30, 22)));
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
    assert_eq!(
        ha.metadata(CONSUMPTION_ID).unwrap(),
        json!({"has_sum": true, "mean_type": 0, "unit_class": "energy", "name": "House consumption", "source": "meter2mqtt",
               "statistic_id": CONSUMPTION_ID, "unit_of_measurement": "kWh"})
    );
    assert!(
        ha.warnings().is_empty() && ha.refusals().is_empty(),
        "{:?} {:?}",
        ha.warnings(),
        ha.refusals()
    );
    let status = sink.status();
    assert_eq!(
        (status.state, status.ha_version.as_deref()),
        (ConnectionState::Connected, Some(CURRENT))
    );

    let commands = ha.commands().len();
    let again = sink.import(&house(), &readings, None).await.expect("repeat");
    assert_eq!(again.rows_sent(), 0);
    let overlapping = sink.import(&house(), &readings[24..48], None).await.expect("overlap");
    assert_eq!(overlapping.rows_sent(), 0);
    assert_eq!(ha.commands().len(), commands, "nothing changed, so nothing is sent");
    assert_eq!(sink.needs_from(&house()).await, Some(utc(2024, 3, 30, 22)));
    sink.shutdown().await;
}

#[tokio::test]
async fn both_dst_days_land_on_the_right_utc_hours() {
    let ha = FakeHa::start(CURRENT, "tok-dst").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-dst"), &dir);
    let cph = chrono_tz::Europe::Copenhagen;
    let cases = [
        (
            "timeseries_dst.json",
            "spring",
            23,
            utc(2024, 3, 30, 23),
            utc(2024, 3, 31, 21),
        ),
        (
            "timeseries_dst_autumn.json",
            "autumn",
            25,
            utc(2024, 10, 26, 22),
            utc(2024, 10, 27, 22),
        ),
    ];
    // Both meters at once: their requests share the link and are told apart by id.
    let (spring, autumn) = (
        meter("spring", Direction::Consumption),
        meter("autumn", Direction::Consumption),
    );
    let (spring_readings, autumn_readings) = (fixture::readings(cases[0].0), fixture::readings(cases[1].0));
    let (a, b) = tokio::join!(
        sink.import(&spring, &spring_readings, None),
        sink.import(&autumn, &autumn_readings, None)
    );
    a.expect("spring import");
    b.expect("autumn import");
    for (file, id, hours, first, last) in cases {
        let readings = fixture::readings(file);
        let rows = ha.rows(&format!("meter2mqtt:eloverblik_{id}_consumption"));
        assert_rows(&rows, &hourly(&readings), 0.0);
        assert_eq!(
            (rows.len(), rows[0].start, rows[rows.len() - 1].start),
            (hours, first, last),
            "{file}"
        );
        assert!(
            rows.windows(2)
                .all(|w| w[1].start - w[0].start == chrono::Duration::hours(1)),
            "{file}"
        );
        let local: Vec<u32> = rows.iter().map(|r| r.start.with_timezone(&cph).hour()).collect();
        let expected: Vec<u32> = match id {
            "spring" => (0..24).filter(|h| *h != 2).collect(),
            _ => [0, 1, 2, 2].into_iter().chain(3..24).collect(),
        };
        assert_eq!(local, expected, "{file}");
    }
}

#[tokio::test]
async fn quarter_hours_are_summed_to_hours_and_missing_hours_stay_empty() {
    let ha = FakeHa::start(CURRENT, "tok-quarter").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-quarter"), &dir);
    let solar = meter("571313180100000025", Direction::Production);
    let id = "meter2mqtt:eloverblik_571313180100000025_production";
    let readings = fixture::readings("timeseries_quarter.json");
    assert_eq!(readings.len(), 96);

    // Straight from the fixture: four quarters an hour, missing (A02) ones carry no quantity.
    let doc = fixture::load("timeseries_quarter.json");
    let points = doc["result"][0]["MyEnergyData_MarketDocument"]["TimeSeries"][0]["Period"][0]["Point"]
        .as_array()
        .unwrap()
        .clone();
    let quantity = |p: &Value| {
        p["out_Quantity.quantity"]
            .as_str()
            .map_or(0.0, |q| q.parse::<f64>().unwrap())
    };
    let expected: Vec<(DateTime<Utc>, f64)> = (0..24)
        .map(|h| {
            (
                utc(2024, 6, 11, 22) + chrono::Duration::hours(h),
                points[h as usize * 4..h as usize * 4 + 4].iter().map(quantity).sum(),
            )
        })
        .collect();
    assert!(
        close(expected[12].1, 0.107 + 0.077 + 0.246),
        "the hour with a missing quarter sums the other three"
    );

    sink.import(&solar, &readings, None).await.expect("import");
    assert_rows(&ha.rows(id), &expected, 0.0);

    // An hour whose quarters are all missing gets no row; the next hour's sum continues.
    let other = meter("571313180100000026", Direction::Production);
    let mut gappy = readings.clone();
    for r in &mut gappy[4..8] {
        r.value = None;
        r.quality = Quality::Missing;
    }
    sink.import(&other, &gappy, None)
        .await
        .expect("import with a missing hour");
    let rows = ha.rows("meter2mqtt:eloverblik_571313180100000026_production");
    let without_hour_1: Vec<_> = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, e)| *e)
        .collect();
    assert_rows(&rows, &without_hour_1, 0.0);
}

#[tokio::test]
async fn a_correction_resends_its_hour_and_every_later_sum() {
    let ha = FakeHa::start(CURRENT, "tok-correct").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-correct"), &dir);
    let mut readings = fixture::readings("timeseries_hour.json");
    sink.import(&house(), &readings, None).await.expect("import");
    let before = ha.rows(CONSUMPTION_ID);
    let imports = ha.count("recorder/import_statistics");

    readings[30].value = Some(readings[30].value.unwrap() + 1.5);
    readings[30].quality = Quality::Measured;
    let report = sink
        .import(&house(), &readings[24..48], None)
        .await
        .expect("correction");
    assert_eq!(
        report.rows_sent(),
        42,
        "hour 30 and the 41 later hours whose sums moved"
    );
    assert_eq!(report.series[0].first_sent, Some(readings[30].start));
    assert_eq!(ha.count("recorder/import_statistics"), imports + 1);
    let after = ha.rows(CONSUMPTION_ID);
    assert_eq!(&after[..30], &before[..30], "earlier hours untouched");
    assert_rows(&after, &hourly(&readings), 0.0);
}

#[tokio::test]
async fn a_correction_older_than_the_kept_state_is_judged_by_home_assistants_rows() {
    let ha = FakeHa::start(CURRENT, "tok-old-fix").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-old-fix"), &dir);
    let hours = 2600;
    let mut readings: Vec<IntervalReading> = (0..hours)
        .map(|h| {
            let start = utc(2024, 1, 1, 0) + chrono::Duration::hours(h);
            let value = Some(0.5 + (h % 7) as f64 / 100.0);
            IntervalReading {
                start,
                end: start + chrono::Duration::hours(1),
                value,
                unit: Unit::KWh,
                quality: Quality::Measured,
                reading: None,
            }
        })
        .collect();
    let report = sink.import(&house(), &readings, None).await.expect("backfill");
    assert_eq!(
        (report.rows_sent(), ha.count("recorder/import_statistics")),
        (2600, 4),
        "batches of 720 hours"
    );

    // The state keeps about 100 days; the rest lives in HA only.
    let state: Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("statistics/eloverblik_571313180100000001_consumption.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(state["rows"].as_object().unwrap().len(), 2400);

    readings[5].value = Some(3.0);
    let report = sink
        .import(&house(), &readings[..24], None)
        .await
        .expect("old correction");
    assert_eq!(report.rows_sent(), 2595, "hour 5 and every later sum");
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
    // HA was asked at first use and again for the old hours, a month at most per message, so
    // that years of history never make one huge answer.
    let reads: Vec<Value> = ha
        .commands()
        .into_iter()
        .filter(|c| c["type"] == "recorder/statistics_during_period")
        .collect();
    assert!(reads.len() >= 2, "{reads:?}");
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    for read in &reads {
        let end = read
            .get("end_time")
            .map(time)
            .unwrap_or_else(|| (Utc::now() + chrono::Duration::hours(1)).into());
        assert!(end - time(&read["start_time"]) <= chrono::Duration::days(31), "{read}");
    }
    assert!(
        reads.iter().any(|r| time(&r["start_time"]) <= utc(2024, 1, 1, 5)),
        "the old hours were read back"
    );
    let imports = ha.count("recorder/import_statistics");
    let again = sink.import(&house(), &readings[..24], None).await.expect("repeat");
    assert_eq!(
        (again.rows_sent(), ha.count("recorder/import_statistics")),
        (0, imports)
    );
}

#[tokio::test]
async fn a_restart_continues_the_sums_without_counting_twice() {
    let ha = FakeHa::start(CURRENT, "tok-restart").await;
    let dir = tempfile::tempdir().unwrap();
    let readings = fixture::readings("timeseries_hour.json");

    let first = start(settings(&ha.url(), "tok-restart"), &dir);
    first.import(&house(), &readings[..48], None).await.expect("days 1-2");
    first.shutdown().await;
    let err = first.import(&house(), &readings, None).await.unwrap_err();
    assert!(matches!(err, StatisticsError::Stopped { .. }), "{err}");

    let second = start(settings(&ha.url(), "tok-restart"), &dir);
    assert_eq!(second.needs_from(&house()).await, Some(readings[47].start));
    let report = second.import(&house(), &readings[24..], None).await.expect("days 2-3");
    assert_eq!(report.rows_sent(), 24, "only day 3 is new");
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
}

#[tokio::test]
async fn a_crash_mid_import_resends_at_most_the_last_batch() {
    let ha = FakeHa::start(CURRENT, "tok-crash").await;
    let dir = tempfile::tempdir().unwrap();
    let readings = fixture::readings("timeseries_hour.json");
    let mut batched = settings(&ha.url(), "tok-crash");
    batched.batch_hours = 24;

    // HA refuses the second batch: the first stays imported and recorded, nothing more.
    ha.fail_import_after(1);
    let sink = start(batched.clone(), &dir);
    let err = sink.import(&house(), &readings, None).await.unwrap_err();
    assert!(
        matches!(&err, StatisticsError::Rejected { code, .. } if code == "home_assistant_error"),
        "{err}"
    );
    assert!(err.to_string().contains("Recorder is not ready"), "{err}");
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings[..24]), 0.0);
    sink.shutdown().await;

    let state_file = dir
        .path()
        .join("statistics/eloverblik_571313180100000001_consumption.json");
    let after_day_one = std::fs::read(&state_file).expect("state after the first batch");

    let sink = start(batched.clone(), &dir);
    let imports = ha.count("recorder/import_statistics");
    let report = sink.import(&house(), &readings, None).await.expect("rest");
    assert_eq!(
        (report.rows_sent(), ha.count("recorder/import_statistics") - imports),
        (48, 2)
    );
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
    sink.shutdown().await;

    // A crash after HA acknowledged but before the state was written: the state is behind HA.
    std::fs::write(&state_file, after_day_one).unwrap();
    let sink = start(batched, &dir);
    let imports = ha.count("recorder/import_statistics");
    let report = sink.import(&house(), &readings, None).await.expect("after the crash");
    assert_eq!(report.rows_sent(), 0, "HA's own rows show nothing is missing");
    assert_eq!(ha.count("recorder/import_statistics"), imports);
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
}

#[tokio::test]
async fn lost_state_is_rebuilt_from_home_assistant() {
    let ha = FakeHa::start(CURRENT, "tok-lost").await;
    let readings = fixture::readings("timeseries_hour.json");
    let dir = tempfile::tempdir().unwrap();
    start(settings(&ha.url(), "tok-lost"), &dir)
        .import(&house(), &readings[..48], None)
        .await
        .expect("first life");

    let empty = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-lost"), &empty);
    let report = sink.import(&house(), &readings[24..], None).await.expect("second life");
    assert_eq!(report.rows_sent(), 24);
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings), 0.0);
    assert_eq!(sink.needs_from(&house()).await, Some(readings[71].start));
}

#[tokio::test]
async fn rows_already_in_home_assistant_are_continued() {
    let ha = FakeHa::start(CURRENT, "tok-seeded").await;
    let readings = fixture::readings("timeseries_hour.json");
    // HA has an older row, far before anything this import reads, with a sum of 1000.
    let meta = json!({"statistic_id": CONSUMPTION_ID, "source": "meter2mqtt", "name": "House consumption", "has_sum": true,
                      "mean_type": 0, "unit_class": "energy", "unit_of_measurement": "kWh"});
    ha.seed(
        meta,
        &[StoredRow {
            start: utc(2023, 6, 1, 10),
            state: Some(2.0),
            sum: Some(1000.0),
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-seeded"), &dir);
    sink.import(&house(), &readings, None).await.expect("import");
    let rows = ha.rows(CONSUMPTION_ID);
    assert_rows(&rows[1..], &hourly(&readings), 1000.0);
}

#[tokio::test]
async fn home_assistant_down_and_back() {
    let ha = FakeHa::start(CURRENT, "tok-down").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-down"), &dir);
    let readings = fixture::readings("timeseries_hour.json");
    sink.import(&house(), &readings[..24], None).await.expect("day 1");

    ha.set_down(true);
    let err = sink.import(&house(), &readings[..48], None).await.unwrap_err();
    assert!(matches!(err, StatisticsError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unreachable") && err.to_string().contains("next poll"),
        "{err}"
    );
    assert!(
        matches!(sink.status().state, ConnectionState::Unreachable(_)),
        "{:?}",
        sink.status()
    );
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings[..24]), 0.0);

    ha.set_down(false);
    let report = sink.import(&house(), &readings[..48], None).await.expect("back");
    assert_eq!(report.rows_sent(), 24);
    assert_rows(&ha.rows(CONSUMPTION_ID), &hourly(&readings[..48]), 0.0);
    assert_eq!(sink.status().state, ConnectionState::Connected);
}

#[tokio::test]
async fn a_bad_token_is_reported_once_and_not_retried() {
    let ha = FakeHa::start(CURRENT, "tok-right").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-wrong-zz91"), &dir);
    let readings = fixture::readings("timeseries_hour.json");
    for _ in 0..2 {
        let err = sink.import(&house(), &readings, None).await.unwrap_err();
        assert!(matches!(err, StatisticsError::AuthFailed { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("refused the access token") && text.contains("long-lived access token"),
            "{text}"
        );
    }
    assert_eq!(
        sink.status().state,
        ConnectionState::AuthFailed("Invalid access token or password".into())
    );
    assert_eq!(ha.auth_attempts(), 1, "a refused token is not tried again");
    assert!(ha.rows(CONSUMPTION_ID).is_empty());
}

#[tokio::test]
async fn a_token_without_admin_rights_gets_a_clear_error() {
    let ha = FakeHa::start(CURRENT, "tok-user").await;
    ha.set_admin(false);
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-user"), &dir);
    let err = sink
        .import(&house(), &fixture::readings("timeseries_dst.json"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StatisticsError::NotAdmin { .. }), "{err:?}");
    assert!(err.to_string().contains("not an administrator"), "{err}");
    assert_eq!(sink.needs_from(&house()).await, None, "nothing was recorded");
}

#[tokio::test]
async fn unanswered_commands_time_out() {
    let ha = FakeHa::start(CURRENT, "tok-silent").await;
    ha.set_unresponsive(true);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&ha.url(), "tok-silent");
    s.request_timeout = Duration::from_millis(300);
    let sink = start(s, &dir);
    let err = sink
        .import(&house(), &fixture::readings("timeseries_dst.json"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StatisticsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[tokio::test]
async fn a_silent_link_is_noticed_by_the_heartbeat_and_replaced() {
    let ha = FakeHa::start(CURRENT, "tok-heartbeat").await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&ha.url(), "tok-heartbeat");
    s.heartbeat = Duration::from_millis(50);
    s.request_timeout = Duration::from_millis(300);
    let sink = start(s, &dir);
    let mut updates = sink.status_updates();
    let connected = |s: &meter2mqtt::homeassistant::LinkStatus| s.state == ConnectionState::Connected;
    tokio::time::timeout(Duration::from_secs(5), updates.wait_for(connected))
        .await
        .expect("connects")
        .unwrap();

    ha.set_unresponsive(true);
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        updates.wait_for(|s| matches!(s.state, ConnectionState::Unreachable(_))),
    )
    .await
    .expect("the dead link is noticed")
    .unwrap()
    .clone();
    assert!(lost.to_string().contains("no answer to ping"), "{lost}");
    assert!(ha.count("ping") >= 1);
    tokio::time::timeout(Duration::from_secs(5), updates.wait_for(connected))
        .await
        .expect("reconnects by itself")
        .unwrap();
    assert!(ha.auth_attempts() >= 2);
    sink.shutdown().await;
    assert_eq!(sink.status().state, ConnectionState::Stopped);
}

#[tokio::test]
async fn metadata_follows_the_home_assistant_version() {
    let readings = fixture::readings("timeseries_dst.json");
    for (version, current) in [
        ("2024.3.0", false),
        ("2025.9.4", false),
        ("2025.10.1", true),
        ("2025.11.0.dev20251001", true),
    ] {
        let ha = FakeHa::start(version, "tok-version").await;
        let dir = tempfile::tempdir().unwrap();
        let sink = start(settings(&ha.url(), "tok-version"), &dir);
        sink.import(&house(), &readings, None)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        let meta = ha.metadata(CONSUMPTION_ID).unwrap();
        let mut keys: Vec<&str> = meta.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        if current {
            assert_eq!(
                keys,
                [
                    "has_sum",
                    "mean_type",
                    "name",
                    "source",
                    "statistic_id",
                    "unit_class",
                    "unit_of_measurement"
                ],
                "{version}"
            );
        } else {
            assert_eq!(
                keys,
                [
                    "has_mean",
                    "has_sum",
                    "name",
                    "source",
                    "statistic_id",
                    "unit_of_measurement"
                ],
                "{version}"
            );
            assert_eq!(meta["has_mean"], false);
        }
        assert!(ha.warnings().is_empty(), "{version}: {:?}", ha.warnings());
        assert_eq!(sink.status().ha_version.as_deref(), Some(version));
    }
}

/// A price per Danish local hour, for every hour the readings cover.
fn by_local_hour(readings: &[IntervalReading], prices: [f64; 24], per_unit: Unit) -> PriceSeries {
    let cph = chrono_tz::Europe::Copenhagen;
    let first = readings.iter().map(|r| r.start).min().unwrap();
    let last = readings.iter().map(|r| r.end).max().unwrap();
    let hours = (last - first).num_hours();
    let points = (0..hours)
        .map(|h| {
            let start = first + chrono::Duration::hours(h);
            PricePoint {
                start,
                end: start + chrono::Duration::hours(1),
                price: prices[start.with_timezone(&cph).hour() as usize],
            }
        })
        .collect();
    PriceSeries {
        currency: "DKK".into(),
        per_unit,
        purpose: PricePurpose::Cost,
        points,
    }
}

#[tokio::test]
async fn cost_is_each_hour_times_the_price_of_its_local_hour() {
    let ha = FakeHa::start(CURRENT, "tok-cost").await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&ha.url(), "tok-cost");
    s.cost = true;
    let sink = start(s, &dir);
    let prices: [f64; 24] = std::array::from_fn(|h| 1.0 + h as f64 / 10.0);
    let readings = fixture::readings("timeseries_dst_autumn.json");
    let schedule = by_local_hour(&readings, prices, Unit::KWh);
    let report = sink.import(&house(), &readings, Some(&schedule)).await.expect("import");
    assert_eq!(report.series.len(), 2);

    let cost_id = "meter2mqtt:eloverblik_571313180100000001_cost";
    let cph = chrono_tz::Europe::Copenhagen;
    let expected: Vec<(DateTime<Utc>, f64)> = hourly(&readings)
        .into_iter()
        .map(|(t, v)| (t, v * prices[t.with_timezone(&cph).hour() as usize]))
        .collect();
    assert_rows(&ha.rows(cost_id), &expected, 0.0);
    let meta = ha.metadata(cost_id).unwrap();
    assert_eq!(
        (
            meta["unit_of_measurement"].as_str(),
            &meta["unit_class"],
            meta["name"].as_str()
        ),
        (Some("DKK"), &Value::Null, Some("House cost"))
    );

    // Without `cost`, prices are ignored.
    let other = tempfile::tempdir().unwrap();
    let plain = start(settings(&ha.url(), "tok-cost"), &other);
    let solar = meter("2", Direction::Production);
    assert_eq!(
        plain
            .import(&solar, &readings, Some(&schedule))
            .await
            .unwrap()
            .series
            .len(),
        1
    );
    assert!(ha.metadata("meter2mqtt:eloverblik_2_cost").is_none());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let ha = FakeHa::start(CURRENT, "tok-input").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-input"), &dir);
    let mut readings = fixture::readings("timeseries_dst.json");
    readings[3].unit = Unit::MWh;
    let err = sink.import(&house(), &readings, None).await.unwrap_err();
    assert!(
        matches!(err, StatisticsError::InvalidReading { .. }) && err.to_string().contains("MWh"),
        "{err}"
    );

    let water = by_local_hour(&fixture::readings("timeseries_dst.json"), [40.0; 24], Unit::CubicMeters);
    let mut s = settings(&ha.url(), "tok-input");
    s.cost = true;
    let costed = start(s, &tempfile::tempdir().unwrap());
    let err = costed
        .import(&house(), &fixture::readings("timeseries_dst.json"), Some(&water))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatisticsError::Price { .. }) && err.to_string().contains("cannot be converted"),
        "{err}"
    );
    assert_eq!(
        ha.count("recorder/import_statistics"),
        1,
        "only the energy statistic of the second sink was sent"
    );

    let nowhere = start(
        settings("ftp://user:pw-77@ha", "tok-input"),
        &tempfile::tempdir().unwrap(),
    );
    let err = nowhere.import(&house(), &readings[..1], None).await.unwrap_err();
    assert!(
        matches!(err, StatisticsError::InvalidUrl { .. }) && err.to_string().contains("homeassistant.url"),
        "{err}"
    );
    assert!(
        matches!(nowhere.status().state, ConnectionState::Unreachable(ref m) if m.contains("scheme")),
        "{:?}",
        nowhere.status()
    );
    let status = format!("{:?} {}", nowhere.status(), nowhere.status());
    assert!(
        !status.contains("pw-77") && !err.to_string().contains("pw-77"),
        "{status} {err}"
    );
    let tokenless = start(settings(&ha.url(), " "), &tempfile::tempdir().unwrap());
    let err = tokenless.import(&house(), &readings[..1], None).await.unwrap_err();
    assert!(err.to_string().contains("no access token"), "{err}");
    assert_eq!(
        ha.auth_attempts(),
        2,
        "the two working sinks connected, the misconfigured ones did not"
    );
}

/// Every log line of this test binary, at trace level, with the filter the daemon must use.
#[tokio::test]
async fn the_token_never_appears_in_logs_errors_or_status() {
    let (logs, _capturing) = crate::support::logs::Logs::capture();
    let good = "tok-secret-9f3a7c1e5b";
    let bad = "tok-secret-wrong-44d1e0";
    let ha = FakeHa::start(CURRENT, good).await;
    let readings = fixture::readings("timeseries_hour.json");

    let dir = tempfile::tempdir().unwrap();
    let ok = start(settings(&ha.url(), good), &dir);
    ok.import(&house(), &readings, None).await.expect("import");
    ha.set_admin(false);
    let refused = ok
        .import(&house(), &fixture::readings("timeseries_dst.json"), None)
        .await
        .unwrap_err();
    let refused_debug = format!("{refused:?} {refused}");
    ok.shutdown().await;

    let other = tempfile::tempdir().unwrap();
    let wrong_settings = settings(&ha.url(), bad);
    let wrong = start(wrong_settings.clone(), &other);
    let auth_error = wrong.import(&house(), &readings, None).await.unwrap_err();

    let everything = format!(
        "{}\n{auth_error} {auth_error:?}\n{refused_debug}\n{:?} {}\n{wrong_settings:?}",
        logs.text(),
        wrong.status(),
        wrong.status()
    );
    assert!(
        everything.contains("connected to Home Assistant"),
        "the capture works: {everything}"
    );
    assert!(everything.contains("refused the access token"), "{everything}");
    for token in [good, bad] {
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!everything.contains(token), "{token} leaked");
        assert!(!everything.contains(&hex), "{token} leaked as hex");
    }
}

/// The fake refuses what HA refuses; otherwise the tests above would prove little.
#[tokio::test]
async fn the_fake_validates_like_home_assistant() {
    async fn ask_all(ha: &FakeHa, token: &str, commands: &[Value]) -> Vec<Value> {
        let url = format!("{}/api/websocket", ha.url().replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.next().await.unwrap().unwrap();
        let auth = json!({"type": "auth", "access_token": token}).to_string();
        ws.send(Message::text(auth)).await.unwrap();
        ws.next().await.unwrap().unwrap();
        let mut answers = Vec::new();
        for command in commands {
            ws.send(Message::text(command.to_string())).await.unwrap();
            let answer = ws.next().await.unwrap().unwrap();
            answers.push(serde_json::from_str(answer.to_text().unwrap()).unwrap());
        }
        answers
    }
    async fn ask(ha: &FakeHa, token: &str, command: Value) -> Value {
        ask_all(ha, token, &[command]).await.remove(0)
    }
    let import = |metadata: Value, start: &str| json!({"id": 1, "type": "recorder/import_statistics", "metadata": metadata, "stats": [{"start": start, "state": 1.0, "sum": 1.0}]});
    let meta = |id: &str, source: &str| json!({"has_sum": true, "mean_type": 0, "unit_class": "energy", "name": "x", "source": source, "statistic_id": id, "unit_of_measurement": "kWh"});
    let old = FakeHa::start("2024.3.0", "t").await;
    let answer = ask(
        &old,
        "t",
        import(meta("meter2mqtt:a", "meter2mqtt"), "2024-01-01T00:00:00+00:00"),
    )
    .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("extra keys not allowed"),
        "{answer}"
    );

    let current = FakeHa::start(CURRENT, "t").await;
    for (metadata, start, message) in [
        (
            meta("meter2mqtt:a", "meter2mqtt"),
            "2024-01-01T00:00:00",
            "Naive timestamp",
        ),
        (
            meta("meter2mqtt:a", "meter2mqtt"),
            "2024-01-01T00:30:00+00:00",
            "Invalid timestamp",
        ),
        (
            meta("meter2mqtt:Bad", "meter2mqtt"),
            "2024-01-01T00:00:00+00:00",
            "Invalid statistic_id",
        ),
        (
            meta("meter2mqtt:a__b", "meter2mqtt"),
            "2024-01-01T00:00:00+00:00",
            "Invalid statistic_id",
        ),
        (
            meta("meter2mqtt:a", "other"),
            "2024-01-01T00:00:00+00:00",
            "Invalid source",
        ),
    ] {
        let answer = ask(&current, "t", import(metadata, start)).await;
        assert_eq!(
            (answer["success"].as_bool(), answer["error"]["message"].as_str()),
            (Some(false), Some(message)),
            "{answer}"
        );
    }
    let mut legacy = meta("meter2mqtt:a", "meter2mqtt");
    legacy
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "mean_type" && k != "unit_class");
    legacy["has_mean"] = json!(false);
    let answer = ask(&current, "t", import(legacy, "2024-01-01T00:00:00+00:00")).await;
    assert_eq!(answer["success"], true);
    assert_eq!(
        current.warnings().len(),
        2,
        "HA logs a deprecation warning for each missing key"
    );
    let pings = [json!({"id": 5, "type": "ping"}), json!({"id": 5, "type": "ping"})];
    let answers = ask_all(&current, "t", &pings).await;
    assert_eq!(
        (answers[0]["type"].as_str(), answers[1]["error"]["code"].as_str()),
        (Some("pong"), Some("id_reuse"))
    );
}

#[tokio::test]
async fn statistics_imported_while_the_ledger_cannot_be_written_are_recorded_once_it_can() {
    use crate::support::read_only::ReadOnly;

    let house = house();
    let ha = FakeHa::start(CURRENT, "tok-disk").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start(settings(&ha.url(), "tok-disk"), &dir);
    let readings = fixture::readings("timeseries_hour.json");
    sink.import(&house, &readings[..48], None).await.unwrap();
    assert_eq!(sink.needs_from(&house).await, Some(readings[47].start));

    let read_only = ReadOnly::make(&dir.path().join("statistics"));
    let err = sink.import(&house, &readings, None).await.unwrap_err();
    assert!(matches!(err, StatisticsError::State { .. }), "{err}");
    assert!(err.to_string().contains("state.dir"), "{err}");
    // HA has the third day; the bridge is told what the disk holds.
    assert_eq!(
        ha.rows("meter2mqtt:eloverblik_571313180100000001_consumption").len(),
        72
    );
    assert_eq!(sink.needs_from(&house).await, Some(readings[47].start));

    drop(read_only);
    let report = sink.import(&house, &readings, None).await.unwrap();
    assert_eq!(report.rows_sent(), 0, "HA had it already");
    assert_eq!(sink.needs_from(&house).await, Some(readings[71].start));
    sink.shutdown().await;
    // Written: a restart starts after the third day.
    let restarted = start(settings(&ha.url(), "tok-disk"), &dir);
    assert_eq!(restarted.needs_from(&house).await, Some(readings[71].start));
}
