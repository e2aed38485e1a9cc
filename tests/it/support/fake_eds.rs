//! A fake Energi Data Service (wiremock) serving the fixtures in
//! `tests/fixtures/energidataservice/` plus whatever rows a test adds. It answers
//! `GET /dataset/{name}` the way the API does: `start`/`end` select on the dataset's local-time
//! column (`end` exclusive), `filter` is a JSON object of allowed values per column, `sort` by a
//! column ascending, and without `limit=0` at most 100 rows. A wrong query therefore shows up as
//! missing prices, not as a passing test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const DAY_AHEAD: &str = "DayAheadPrices";
pub const ELSPOT: &str = "Elspotprices";
pub const PRICELIST: &str = "DatahubPricelist";
pub const CO2_REALISED: &str = "CO2Emis";
pub const CO2_FORECAST: &str = "CO2EmisProg";

/// The `records` of one fixture file.
pub fn fixture_records(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/energidataservice/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    doc["records"].as_array().expect("records").clone()
}

/// The column `start` and `end` select on.
fn local_column(dataset: &str) -> &'static str {
    match dataset {
        DAY_AHEAD => "TimeDK",
        ELSPOT => "HourDK",
        CO2_REALISED | CO2_FORECAST => "Minutes5DK",
        _ => "ValidFrom",
    }
}

#[derive(Clone, Default)]
struct Datasets(Arc<Mutex<HashMap<String, Vec<Value>>>>);

pub struct FakeEds {
    pub server: MockServer,
    datasets: Datasets,
}

impl FakeEds {
    /// Serving the three fixture files.
    pub async fn start() -> FakeEds {
        let datasets = Datasets::default();
        {
            let mut map = datasets.0.lock().unwrap();
            map.insert(DAY_AHEAD.into(), fixture_records("dayaheadprices_2025-10-26.json"));
            map.insert(ELSPOT.into(), fixture_records("elspotprices_2025-03-30.json"));
            map.insert(PRICELIST.into(), fixture_records("datahubpricelist.json"));
            // Empty until a test adds rows (see `co2_rows`).
            map.insert(CO2_REALISED.into(), Vec::new());
            map.insert(CO2_FORECAST.into(), Vec::new());
        }
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(datasets.clone())
            .mount(&server)
            .await;
        FakeEds { server, datasets }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Adds rows to a dataset.
    pub fn add(&self, dataset: &str, rows: Vec<Value>) {
        self.datasets
            .0
            .lock()
            .unwrap()
            .entry(dataset.to_owned())
            .or_default()
            .extend(rows);
    }

    /// Takes a dataset away: it answers 404 from now on.
    pub fn remove(&self, dataset: &str) {
        self.datasets.0.lock().unwrap().remove(dataset);
    }

    /// Every row of a dataset, as served.
    pub fn records(&self, dataset: &str) -> Vec<Value> {
        self.datasets
            .0
            .lock()
            .unwrap()
            .get(dataset)
            .cloned()
            .unwrap_or_default()
    }

    /// How many requests asked for `dataset`.
    pub async fn calls(&self, dataset: &str) -> usize {
        let wanted = format!("/dataset/{dataset}");
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == wanted)
            .count()
    }
}

/// Synthetic 5-minute CO2 rows for both areas over `[from, to)` (UTC), as `CO2Emis` and
/// `CO2EmisProg` have them: g/kWh between 40 and 250, DK2 a little higher, the realised values a
/// little off the forecast (`offset`).
pub fn co2_rows(from: DateTime<Utc>, to: DateTime<Utc>, offset: f64) -> Vec<Value> {
    let tz = chrono_tz::Europe::Copenhagen;
    let mut rows = Vec::new();
    let mut at = from;
    while at < to {
        let i = (at - from).num_minutes() / 5;
        let dk1 = 40.0 + ((i * 37) % 170) as f64 + offset;
        for (area, grams) in [("DK1", dk1), ("DK2", dk1 + 35.0)] {
            rows.push(json!({
                "Minutes5UTC": at.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "Minutes5DK": at.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S").to_string(),
                "PriceArea": area,
                "CO2Emission": grams,
            }));
        }
        at += chrono::Duration::minutes(5);
    }
    rows
}

/// A date or date-time as the API takes it, widened to `YYYY-MM-DDTHH:MM:SS` for comparing.
fn widen(raw: &str) -> String {
    let mut s = raw.trim().to_owned();
    if s.len() == 10 {
        s.push_str("T00:00");
    }
    if s.len() == 16 {
        s.push_str(":00");
    }
    s
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Respond for Datasets {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Some(name) = request.url.path().strip_prefix("/dataset/") else {
            return ResponseTemplate::new(404).set_body_json(json!({"error": "Not Found"}));
        };
        let map = self.0.lock().unwrap();
        let Some(rows) = map.get(name) else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"error": "Not Found", "message": format!("dataset {name} not found")}));
        };
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let filter = match query.get("filter") {
            None => serde_json::Map::new(),
            Some(raw) => match serde_json::from_str::<serde_json::Map<String, Value>>(raw) {
                Ok(f) => f,
                Err(e) => {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "Bad Request", "message": format!("filter: {e}")}))
                }
            },
        };
        let column = local_column(name);
        let start = query.get("start").map(|s| widen(s));
        let end = query.get("end").map(|s| widen(s));
        let mut selected: Vec<Value> = rows
            .iter()
            .filter(|row| {
                let at = row[column].as_str().unwrap_or_default();
                start.as_deref().is_none_or(|s| s <= at) && end.as_deref().is_none_or(|e| at < e)
            })
            .filter(|row| {
                filter.iter().all(|(col, allowed)| {
                    let have = text(&row[col]);
                    match allowed {
                        Value::Array(values) => values.iter().any(|a| text(a) == have),
                        one => text(one) == have,
                    }
                })
            })
            .cloned()
            .collect();
        if let Some(sort) = query.get("sort") {
            let col = sort.split_whitespace().next().unwrap_or_default().to_owned();
            selected.sort_by_key(|row| text(&row[&col]));
            if sort.to_ascii_lowercase().ends_with("desc") {
                selected.reverse();
            }
        }
        let total = selected.len();
        let offset: usize = query.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let limit: usize = match query.get("limit").and_then(|l| l.parse().ok()) {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 100,
        };
        let records: Vec<Value> = selected.into_iter().skip(offset).take(limit).collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "total": total,
            "filters": query.get("filter").cloned().unwrap_or_default(),
            "dataset": name,
            "records": records,
        }))
    }
}
