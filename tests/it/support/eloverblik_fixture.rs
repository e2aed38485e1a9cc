//! The ElOverblik fixture files read independently of the provider (positions are 1-based within
//! each Period, quantities are strings, A02 means missing), and the pieces of a fake DataHub
//! answer the tests share.

use chrono::{DateTime, Duration, Utc};
use meter2mqtt::model::{IntervalReading, Quality, Unit};
use serde_json::{json, Value};

/// A data access token shaped like ElOverblik's, valid for a day (the benchmark's fake has it).
pub use super::generated_datahub::access_token;

pub fn load(file: &str) -> Value {
    let path = format!("{}/tests/fixtures/eloverblik/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every interval of the first time series in `file`.
pub fn readings(file: &str) -> Vec<IntervalReading> {
    let doc = load(file);
    let series = &doc["result"][0]["MyEnergyData_MarketDocument"]["TimeSeries"][0];
    let unit = Unit::parse(series["measurement_Unit.name"].as_str().expect("unit"));
    let mut out = Vec::new();
    for period in series["Period"].as_array().expect("periods") {
        let step = match period["resolution"].as_str() {
            Some("PT15M") => Duration::minutes(15),
            Some("PT1H") => Duration::hours(1),
            other => panic!("resolution {other:?} not used by these tests"),
        };
        let start: DateTime<Utc> = period["timeInterval"]["start"]
            .as_str()
            .expect("start")
            .parse()
            .expect("start time");
        for point in period["Point"].as_array().expect("points") {
            let position: i32 = point["position"]
                .as_str()
                .expect("position")
                .parse()
                .expect("position number");
            let at = start + step * (position - 1);
            let quality = match point["out_Quantity.quality"].as_str() {
                Some("A02") => Quality::Missing,
                Some("A03") => Quality::Estimated,
                Some("A05") => Quality::Incomplete,
                _ => Quality::Measured,
            };
            let value = point["out_Quantity.quantity"]
                .as_str()
                .map(|q| q.parse::<f64>().expect("quantity"));
            out.push(IntervalReading {
                start: at,
                end: at + step,
                value,
                unit: unit.clone(),
                quality,
                reading: None,
            });
        }
    }
    out
}

/// The metering point ids a `gettimeseries` request body asks for.
pub fn asked_points(body: &[u8]) -> Vec<String> {
    let body: Value = serde_json::from_slice(body).unwrap();
    body["meteringPoints"]["meteringPoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// One point's entry in a `gettimeseries` answer: its periods (none: an empty series).
pub fn timeseries_result(document: &str, id: &str, periods: Vec<Value>) -> Value {
    let series = if periods.is_empty() {
        json!([])
    } else {
        json!([{"mRID": id, "businessType": "A04", "curveType": "A01", "measurement_Unit.name": "KWH",
                "MarketEvaluationPoint": {"mRID": {"codingScheme": "A10", "name": id}}, "Period": periods}])
    };
    json!({"MyEnergyData_MarketDocument": {"mRID": document, "TimeSeries": series},
           "success": true, "errorCode": 10000, "errorText": "NoError", "id": id, "stackTrace": null})
}
