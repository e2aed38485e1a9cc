//! Parse and normalise one year of quarter-hour data for ten metering points (one batched
//! ElOverblik answer, about 350 000 points), as the provider does for each call.
//!
//! Run: `cargo bench --bench eloverblik_parse`. Prints the body size, the time of each run,
//! throughput in points per second, and the peak resident memory (VmHWM) before and after.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{Days, NaiveDate, TimeZone, Utc};
use meter2mqtt::http::HttpResponse;
use meter2mqtt::providers::eloverblik::{timeseries, TZ};

const POINTS: usize = 10;
const DAYS: u64 = 365;
const RUNS: usize = 7;

/// A `gettimeseries` body as the API writes it: one Period per Danish day (92 or 100 quarters on
/// DST days), decimal strings, a few estimated and missing quarters.
fn body(first_day: NaiveDate) -> (String, usize) {
    let mut out = String::with_capacity(POINTS * DAYS as usize * 96 * 90);
    let mut total = 0;
    out.push_str(r#"{"result":["#);
    for p in 0..POINTS {
        let id = format!("5713131801000{p:05}");
        if p > 0 {
            out.push(',');
        }
        write!(out, r#"{{"MyEnergyData_MarketDocument":{{"mRID":"bench","TimeSeries":[{{"mRID":"{id}","businessType":"A04","curveType":"A01","measurement_Unit.name":"KWH","Period":["#).unwrap();
        for d in 0..DAYS {
            let day = first_day.checked_add_days(Days::new(d)).unwrap();
            let start = midnight(day);
            let end = midnight(day.succ_opt().unwrap());
            let quarters = (end - start).num_minutes() / 15;
            if d > 0 {
                out.push(',');
            }
            write!(
                out,
                r#"{{"resolution":"PT15M","timeInterval":{{"start":"{}","end":"{}"}},"Point":["#,
                start.format("%Y-%m-%dT%H:%M:%SZ"),
                end.format("%Y-%m-%dT%H:%M:%SZ")
            )
            .unwrap();
            for q in 1..=quarters {
                if q > 1 {
                    out.push(',');
                }
                let n = (p as i64 * 7919 + d as i64 * 104_729 + q * 31) % 1000;
                match n {
                    0..=4 => write!(out, r#"{{"position":"{q}","out_Quantity.quality":"A02"}}"#),
                    5..=19 => write!(
                        out,
                        r#"{{"position":"{q}","out_Quantity.quantity":"0.{n:03}","out_Quantity.quality":"A03"}}"#
                    ),
                    _ => write!(
                        out,
                        r#"{{"position":"{q}","out_Quantity.quantity":"0.{n:03}","out_Quantity.quality":"A04"}}"#
                    ),
                }
                .unwrap();
                total += 1;
            }
            out.push_str("]}");
        }
        write!(
            out,
            r#"]}}]}},"success":true,"errorCode":10000,"errorText":"NoError","id":"{id}","stackTrace":null}}"#
        )
        .unwrap();
    }
    out.push_str("]}");
    (out, total)
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    TZ.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// Peak resident set size so far, in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    let (text, expected) = body(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
    let response = HttpResponse {
        status: 200,
        body: Bytes::from(text),
    };
    let before = vm_hwm_kib();
    println!(
        "eloverblik_parse: {POINTS} metering points x {DAYS} days of PT15M = {expected} points, body {:.1} MiB",
        response.body.len() as f64 / (1024.0 * 1024.0)
    );
    let mut times = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        let started = Instant::now();
        let answer: timeseries::Answer = response.json("eloverblik", "bench").expect("the generated body parses");
        let outcomes = timeseries::outcomes(answer, "bench");
        let elapsed = started.elapsed();
        let points: usize = outcomes
            .iter()
            .map(|(_, r)| r.as_ref().expect("every series normalises").len())
            .sum();
        assert_eq!(points, expected, "every generated point comes out once");
        assert_eq!(outcomes.len(), POINTS);
        drop(outcomes);
        println!("  run {run}: {:>8.1} ms", elapsed.as_secs_f64() * 1000.0);
        times.push(elapsed);
    }
    times.sort();
    let median = times[RUNS / 2];
    let best = times[0];
    let rate = |d: Duration| expected as f64 / d.as_secs_f64();
    println!(
        "  median {:.1} ms ({:.0} points/s), best {:.1} ms ({:.0} points/s)",
        median.as_secs_f64() * 1000.0,
        rate(median),
        best.as_secs_f64() * 1000.0,
        rate(best)
    );
    println!(
        "  peak RSS (VmHWM): {} with the body generated, {} after parsing",
        mib(before),
        mib(vm_hwm_kib())
    );
}
