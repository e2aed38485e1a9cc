//! IntervalReadings straight from the ElOverblik fixture files, independent of the provider:
//! positions are 1-based within each Period, quantities are strings, A02 means missing.

use chrono::{DateTime, Duration, Utc};
use meter2mqtt::model::{IntervalReading, Quality, Unit};
use serde_json::Value;

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
