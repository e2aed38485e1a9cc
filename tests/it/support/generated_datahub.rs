//! A fake ElOverblik that generates its answers: N quarter-hourly consumption points with
//! deterministic values for any days asked, written straight into the response body. Shared by
//! the endurance tests and the backfill benchmark (`#[path]`-included there).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::Deserialize;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Danish calendar

pub fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    Copenhagen
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("Danish midnight always exists")
        .with_timezone(&Utc)
}

pub fn danish_today() -> NaiveDate {
    Utc::now().with_timezone(&Copenhagen).date_naive()
}

pub fn quarters_between(from: NaiveDate, to: NaiveDate) -> u64 {
    ((local_midnight(to) - local_midnight(from)).num_minutes() / 15) as u64
}

// ---------------------------------------------------------------------------------------------
// The fake ElOverblik

pub fn point_id(index: usize) -> String {
    format!("5713131801{:08}", index + 1)
}

/// Only the `exp` claim matters: the bridge reads it to decide when to buy the next token.
pub fn access_token() -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = (Utc::now() + chrono::Duration::hours(24)).timestamp();
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(r#"{{"tokenType":"CustomerAPI_DataAccess","exp":{exp}}}"#)),
        b64("bench")
    )
}

/// Consumption points read every 15 minutes (`PT15M` is what makes the provider ask for
/// `Quarter`), shaped like the fixture's.
pub fn metering_points_body(points: usize) -> String {
    let mut out = String::from(r#"{"result":["#);
    for i in 0..points {
        if i > 0 {
            out.push(',');
        }
        write!(
            out,
            r#"{{"streetCode":"0116","streetName":"Benchvej","buildingNumber":"{n}","floorId":"","roomId":"","citySubDivisionName":null,"municipalityCode":"751","locationDescription":"","settlementMethod":"E02","meterReadingOccurrence":"PT15M","firstConsumerPartyName":"Bench Testesen","secondConsumerPartyName":null,"meterNumber":"{meter}","consumerStartDate":"2015-01-01T23:00:00.000Z","meteringPointId":"{id}","typeOfMP":"E17","balanceSupplierName":"Bench Elhandel A/S","postcode":"8000","cityName":"Aarhus C","hasRelation":true,"consumerCVR":null,"dataAccessCVR":null,"childMeteringPoints":[]}}"#,
            n = i + 1,
            meter = 30_000_000 + i,
            id = point_id(i),
        )
        .expect("writing to a String");
    }
    out.push_str("]}");
    out
}

/// Deterministic thousandths of a kWh, so runs are comparable and values differ from quarter to
/// quarter (a constant series would hide per-value costs).
pub fn thousandths(seed: u64, instant: i64) -> u64 {
    let mut x = seed ^ (instant as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) % 1000
}

/// A `gettimeseries` answer for `ids` and the Danish days `[from, to)`: one Period per day,
/// 92/96/100 quarters (or 23/24/25 hours), written straight into one String because a year of
/// ten points is tens of megabytes.
pub fn timeseries_body(ids: &[String], from: NaiveDate, to: NaiveDate, step_minutes: i64) -> String {
    let days: Vec<(DateTime<Utc>, DateTime<Utc>)> = from
        .iter_days()
        .take_while(|d| *d < to)
        .map(|d| (local_midnight(d), local_midnight(d + Days::new(1))))
        .collect();
    let resolution = if step_minutes == 15 { "PT15M" } else { "PT1H" };
    let per_day = (24 * 60 / step_minutes) as usize;
    let stamp = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (doc_start, doc_end) = (stamp(&local_midnight(from)), stamp(&local_midnight(to.max(from))));
    let mut out = String::with_capacity(ids.len() * (days.len() * per_day * 80 + 1024) + 64);
    out.push_str(r#"{"result":["#);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let seed = id.parse::<u64>().unwrap_or_default();
        write!(
            out,
            r#"{{"MyEnergyData_MarketDocument":{{"mRID":"bench:{i}","createdDateTime":"{now}","sender_MarketParticipant.name":"","sender_MarketParticipant.mRID":{{"codingScheme":null,"name":null}},"period.timeInterval":{{"start":"{doc_start}","end":"{doc_end}"}},"TimeSeries":[{{"mRID":"{id}","businessType":"A01","curveType":"A01","measurement_Unit.name":"KWH","MarketEvaluationPoint":{{"mRID":{{"codingScheme":"A10","name":"{id}"}}}},"Period":["#,
            now = stamp(&Utc::now()),
        )
        .expect("writing to a String");
        for (d, (start, end)) in days.iter().enumerate() {
            if d > 0 {
                out.push(',');
            }
            write!(
                out,
                r#"{{"resolution":"{resolution}","timeInterval":{{"start":"{}","end":"{}"}},"Point":["#,
                stamp(start),
                stamp(end)
            )
            .expect("writing to a String");
            let positions = (*end - *start).num_minutes() / step_minutes;
            for position in 1..=positions {
                if position > 1 {
                    out.push(',');
                }
                let value = thousandths(seed, start.timestamp() + (position - 1) * step_minutes * 60);
                write!(
                    out,
                    r#"{{"position":"{position}","out_Quantity.quantity":"0.{value:03}","out_Quantity.quality":"A04"}}"#
                )
                .expect("writing to a String");
            }
            out.push_str("]}");
        }
        write!(
            out,
            r#"]}}]}},"success":true,"errorCode":10000,"errorText":"NoError","id":"{id}","stackTrace":null}}"#
        )
        .expect("writing to a String");
    }
    out.push_str("]}");
    out
}

pub struct TokenReply;

impl Respond for TokenReply {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        json(format!(r#"{{"result":"{}"}}"#, access_token()))
    }
}

pub struct PointsReply(String);

impl Respond for PointsReply {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        json(self.0.clone())
    }
}

#[derive(Deserialize)]
pub struct SeriesRequest {
    #[serde(rename = "meteringPoints")]
    metering_points: SeriesIds,
}

#[derive(Deserialize)]
pub struct SeriesIds {
    #[serde(rename = "meteringPoint")]
    ids: Vec<String>,
}

/// Serves days before `today` only, as DataHub has nothing for today; `today` is fixed when the
/// scenario starts so that the expected count cannot move under a run that crosses midnight.
pub struct SeriesReply {
    today: NaiveDate,
}

impl Respond for SeriesReply {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let segments: Vec<&str> = request.url.path().rsplitn(4, '/').collect();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let (Some(from), Some(to)) = (day(segments[2]), day(segments[1])) else {
            return ResponseTemplate::new(400).set_body_string(r##""#30000: bad date""##);
        };
        let step = if segments[0] == "Quarter" { 15 } else { 60 };
        let ids = match serde_json::from_slice::<SeriesRequest>(&request.body) {
            Ok(r)
                if r.metering_points
                    .ids
                    .iter()
                    .all(|id| id.bytes().all(|b| b.is_ascii_digit())) =>
            {
                r.metering_points.ids
            }
            _ => return ResponseTemplate::new(400).set_body_string(r##""#30000: bad request body""##),
        };
        json(timeseries_body(&ids, from, to.min(self.today), step))
    }
}

pub fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

pub async fn start_fake_eloverblik(points: usize, today: NaiveDate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/token"))
        .respond_with(TokenReply)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/meteringpoints/meteringpoints"))
        .respond_with(PointsReply(metering_points_body(points)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/meterdata/gettimeseries/[^/]+/[^/]+/(Quarter|Hour)$"))
        .respond_with(SeriesReply { today })
        .mount(&server)
        .await;
    // Unused while the account says `charges = false`, but a valid answer if that changes.
    Mock::given(method("POST"))
        .and(path("/api/meteringpoints/meteringpoint/getcharges"))
        .respond_with(json(r#"{"result":[]}"#.into()))
        .mount(&server)
        .await;
    server
}

/// Calls served, per endpoint, from wiremock's request log.
pub async fn api_calls(server: &MockServer) -> String {
    let mut calls: BTreeMap<&str, usize> = BTreeMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let p = request.url.path();
        let name = match p {
            "/api/token" => "token",
            "/api/meteringpoints/meteringpoints" => "points",
            "/api/meteringpoints/meteringpoint/getcharges" => "charges",
            _ if p.starts_with("/api/meterdata/gettimeseries/") => "timeseries",
            _ => "other",
        };
        *calls.entry(name).or_default() += 1;
    }
    calls
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
