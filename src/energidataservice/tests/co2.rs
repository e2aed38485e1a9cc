//! The CO2 datasets against the fake: the newest realised row and the forecast, each asked once
//! per refresh and always with `start`; a missing forecast hour; a server error.

use super::*;
use crate::energidataservice::client::retry_policy;
use crate::energidataservice::co2::{co2_value, FRESH_FOR};
use crate::energidataservice::PriceResolution;

/// 5-minute rows of both areas over `[from, to)`, `value(i)` for the i-th row (DK2 10 higher),
/// leaving out the rows that `skip` says.
fn co2_rows(from: &str, to: &str, value: impl Fn(i64) -> f64, skip: impl Fn(DateTime<Utc>) -> bool) -> Vec<Value> {
    let (mut at, end) = (utc(from), utc(to));
    let mut rows = Vec::new();
    let mut i = 0;
    while at < end {
        if !skip(at) {
            for (area, grams) in [("DK1", value(i)), ("DK2", value(i) + 10.0)] {
                rows.push(json!({
                    "Minutes5UTC": at.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "Minutes5DK": at.with_timezone(&TZ).naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "PriceArea": area,
                    "CO2Emission": grams,
                }));
            }
        }
        at += chrono::Duration::minutes(5);
        i += 1;
    }
    rows
}

#[tokio::test]
async fn realised_and_forecast_are_asked_once_per_refresh_with_start_and_a_missing_hour_stays_out() {
    // 11:20 Danish time on 26 November 2025; local midnight is 23:00 UTC the day before.
    let h = Harness::start("2025-11-26T10:20:00Z").await;
    h.fake.add(
        CO2_REALISED,
        co2_rows(
            "2025-11-25T23:00:00Z",
            "2025-11-26T10:20:00Z",
            |i| 90.0 + i as f64,
            |_| false,
        ),
    );
    // The forecast lacks 03:00-04:00 local (02:00-03:00 UTC) today.
    let missing = |t: DateTime<Utc>| t >= utc("2025-11-26T02:00:00Z") && t < utc("2025-11-26T03:00:00Z");
    h.fake.add(
        CO2_FORECAST,
        co2_rows(
            "2025-11-25T23:00:00Z",
            "2025-11-27T23:00:00Z",
            |i| 100.0 + (i % 4) as f64,
            missing,
        ),
    );

    let data = h.prices.co2(PriceArea::DK1).await.unwrap();
    let newest = data.realised.expect("a realised row");
    assert_eq!(newest.start, utc("2025-11-26T10:15:00Z"));
    assert_eq!(newest.value, 90.0 + 135.0, "row 135 of the day, DK1's");
    assert_eq!(data.forecast.len(), 2 * 24 * 12 - 12);

    let realised = h.calls(CO2_REALISED).await;
    assert_eq!(realised.len(), 1);
    assert_eq!(realised[0]["start"], "2025-11-25");
    assert_eq!(realised[0]["end"], "2025-11-27");
    assert_eq!(realised[0]["sort"], "Minutes5UTC desc");
    assert_eq!(realised[0]["limit"], "1");
    assert_eq!(realised[0]["filter"], r#"{"PriceArea":["DK1"]}"#);
    let forecast = h.calls(CO2_FORECAST).await;
    assert_eq!(forecast.len(), 1);
    assert_eq!(forecast[0]["start"], "2025-11-26");
    assert_eq!(forecast[0]["end"], "2025-11-28");
    assert_eq!(forecast[0]["limit"], "0");

    let now = utc("2025-11-26T10:20:00Z");
    let hourly = co2_value(&data, now, PriceArea::DK1, PriceResolution::Hour);
    assert_eq!(hourly.value, Some(225.0));
    let today = hourly.attributes["raw_today"].as_array().unwrap();
    assert_eq!(
        today.len(),
        23,
        "the missing hour is left out, not averaged from nothing"
    );
    assert_eq!(today[2]["start"], json!("2025-11-26T02:00:00+01:00"));
    assert_eq!(today[3]["start"], json!("2025-11-26T04:00:00+01:00"));
    assert_eq!(
        today[0]["value"],
        json!(101.5),
        "the mean of 100, 101, 102, 103 repeated"
    );
    assert_eq!(hourly.attributes["tomorrow_valid"], json!(true));
    assert_eq!(hourly.attributes["tomorrow"].as_array().unwrap().len(), 24);
    let quarters = co2_value(&data, now, PriceArea::DK1, PriceResolution::Quarter);
    assert_eq!(quarters.attributes["today"].as_array().unwrap().len(), 92);
    assert_eq!(quarters.attributes["tomorrow"].as_array().unwrap().len(), 96);

    // Within the refresh the answer is reused; after it, each dataset is asked once more.
    h.set_now("2025-11-26T10:30:00Z");
    h.prices.co2(PriceArea::DK1).await.unwrap();
    assert_eq!(h.calls(CO2_REALISED).await.len(), 1);
    *h.now.lock().unwrap() = utc("2025-11-26T10:20:00Z") + FRESH_FOR;
    h.prices.co2(PriceArea::DK1).await.unwrap();
    assert_eq!(h.calls(CO2_REALISED).await.len(), 2);
    assert_eq!(h.calls(CO2_FORECAST).await.len(), 2);
    // Another area is its own question.
    let dk2 = h.prices.co2(PriceArea::DK2).await.unwrap();
    assert_eq!(dk2.realised.unwrap().value, 235.0);
}

#[tokio::test]
async fn a_server_error_on_the_forecast_names_the_dataset_and_area() {
    let h = Harness::with_mocks(
        "2025-11-26T10:20:00Z",
        vec![Mock::given(path(CO2_FORECAST))
            .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
            .with_priority(1)],
    )
    .await;
    h.fake.add(
        CO2_REALISED,
        co2_rows("2025-11-25T23:00:00Z", "2025-11-26T10:20:00Z", |_| 120.0, |_| false),
    );
    let error = h.prices.co2(PriceArea::DK1).await.unwrap_err().to_string();
    for part in ["CO2EmisProg", "DK1", "503", "shows its last value"] {
        assert!(error.contains(part), "{part:?} missing in: {error}");
    }
    assert_eq!(
        h.calls(CO2_FORECAST).await.len(),
        1 + retry_policy().max_retries as usize,
        "retried as any Energi Data Service call, without real sleeping"
    );
    // Prices do not depend on it.
    let (series, _) = h
        .prices
        .series(
            PriceArea::DK1,
            &fixture_charges(),
            range("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
            CONSUMPTION,
        )
        .await
        .unwrap();
    assert_eq!(series.points.len(), 100);
}

/// What the live sensors of one consumption point cost Energi Data Service per day in one price
/// area: every 15 minutes the price sensors ask for today and tomorrow and the CO2 sensor for
/// its datasets, as the bridge does between polls. Counted over the second of two days (the
/// first starts with an empty cache). The figures are printed for the record
/// (`cargo test --lib calls_per_day -- --nocapture`).
#[tokio::test]
async fn calls_per_day_with_prices_and_co2_in_one_area() {
    let h = Harness::start("2025-11-25T23:00:00Z").await;
    for d in 26..=28 {
        h.fake.add(DAY_AHEAD, spot_rows(day(2025, 11, d), "DK1", 15, 300.0));
    }
    let (from, to) = ("2025-11-25T23:00:00Z", "2025-11-28T23:00:00Z");
    h.fake
        .add(CO2_REALISED, co2_rows(from, to, |i| 80.0 + (i % 9) as f64, |_| false));
    h.fake
        .add(CO2_FORECAST, co2_rows(from, to, |i| 85.0 + (i % 7) as f64, |_| false));

    let datasets = [DAY_AHEAD, PRICELIST, CO2_REALISED, CO2_FORECAST];
    let mut at_day_two = Vec::new();
    let mut at = utc(from);
    while at < utc("2025-11-27T23:00:00Z") {
        if at == utc("2025-11-26T23:00:00Z") {
            for dataset in datasets {
                at_day_two.push(h.calls(dataset).await.len());
            }
        }
        *h.now.lock().unwrap() = at;
        let today = at.with_timezone(&TZ).date_naive();
        let live = TimeRange::new(
            crate::model::local_midnight(today, TZ),
            crate::model::local_midnight(today + chrono::Days::new(2), TZ),
        );
        let (rows, _) = h
            .prices
            .breakdown(PriceArea::DK1, &fixture_charges(), live, CONSUMPTION)
            .await
            .unwrap();
        assert!(rows.len() >= 96, "today at least, at {at}");
        h.prices.co2(PriceArea::DK1).await.unwrap();
        at += chrono::Duration::minutes(15);
    }
    let mut per_day = Vec::new();
    for (dataset, before) in datasets.iter().zip(at_day_two) {
        per_day.push(h.calls(dataset).await.len() - before);
    }
    println!(
        "Energi Data Service calls in a day, one area: DayAheadPrices {}, DatahubPricelist {}, CO2Emis {}, \
         CO2EmisProg {}, total {}",
        per_day[0],
        per_day[1],
        per_day[2],
        per_day[3],
        per_day.iter().sum::<usize>()
    );
    // Tomorrow once after 13:00, the price lists once, each CO2 dataset every quarter hour.
    assert_eq!(per_day, [1, 1, 96, 96]);
}
