//! Energi Data Service, Energinet's open data API: `GET {base}/dataset/{name}` with `start` and
//! `end` (Danish local dates, `end` exclusive), a JSON `filter`, `sort` and `limit=0` (every
//! row; without it an answer stops at 100). No account, no token.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::area::PriceArea;
use super::co2::Co2Row;
use super::dto::{self, DayAheadRecord, ElspotRecord, Envelope};
use super::error::PricesError;
use super::spot::{days_covering, runs_by_dataset, SpotDataset, SpotPrice};
use super::tariffs::{ChargeKey, TariffRow};
use crate::http::error_body::{field, plain_text, scalar_text, MAX_MESSAGE};
use crate::http::{build_client, excerpt, ApiClient, HttpError, RetryPolicy, Sleeper, TokioSleeper};
use crate::model::TimeRange;

/// The API's name in logs and errors.
pub(crate) const API: &str = "energidataservice";
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.energidataservice.dk";

/// `limit=0` asks for every row; without it an answer stops at 100.
const ALL: usize = 0;

/// Price lists are asked from this date on, because a list stays valid until replaced (for
/// years, for some charges) and `start` selects rows by `ValidFrom`: starting late would miss
/// the list in force. Every charge in force today has been re-issued since.
pub(crate) const PRICELIST_FROM: NaiveDate = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a valid date");

/// Energi Data Service documents no rate limit or Retry-After; a public service under load
/// deserves a pause, so a 429 or 503 waits at least 30 s. Four retries bound a failing poll to
/// a few minutes; the next poll tries again.
pub(crate) fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(120),
        multiplier: 2.0,
        randomization_factor: 0.3,
        max_retries: 4,
        throttle_floor: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(10 * 60),
    }
}

#[derive(Clone)]
pub(crate) struct ClientOptions {
    /// Overridable for tests, proxies and mirrors.
    pub(crate) base_url: String,
    /// Per request: a year of quarter-hour prices is a few megabytes.
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) sleeper: Arc<dyn Sleeper>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            base_url: DEFAULT_BASE_URL.into(),
            timeout: Duration::from_secs(120),
            retry: retry_policy(),
            sleeper: Arc::new(TokioSleeper),
        }
    }
}

pub(crate) struct EnergiDataService {
    http: ApiClient,
    base_url: String,
}

impl EnergiDataService {
    pub(crate) fn new(options: ClientOptions) -> Result<Self, PricesError> {
        let client = build_client(API, options.timeout).map_err(PricesError::Client)?;
        let http = ApiClient::new(API, client, options.retry, parse_error_body).with_sleeper(options.sleeper);
        Ok(EnergiDataService {
            http,
            base_url: options.base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Spot prices of `area` that overlap `range`, in DKK per kWh excluding VAT, sorted. Asks
    /// whole Danish days (dates, never local times, which are ambiguous on the 25-hour day):
    /// `Elspotprices` for days before 1 October 2025, `DayAheadPrices` from then, so a range
    /// across the switch costs two calls.
    pub(crate) async fn spot_prices(&self, area: PriceArea, range: TimeRange) -> Result<Vec<SpotPrice>, PricesError> {
        let Some((from, to)) = days_covering(range) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (dataset, run_from, run_to) in runs_by_dataset(from, to) {
            let records = self
                .dataset(
                    dataset.name(),
                    run_from,
                    run_to,
                    json!({ "PriceArea": [area.as_str()] }),
                    &format!("{} asc", dataset.time_column()),
                    ALL,
                )
                .await
                .map_err(|source| PricesError::Spot {
                    dataset: dataset.name(),
                    area,
                    from: run_from,
                    to: run_to,
                    source,
                })?;
            out.extend(match dataset {
                SpotDataset::Elspot => dto::spot_prices::<ElspotRecord>(records, area),
                SpotDataset::DayAhead => dto::spot_prices::<DayAheadRecord>(records, area),
            });
        }
        out.retain(|p| p.start < range.end && range.start < p.end);
        // Without `sort` the API answers newest first; never rely on the order asked for.
        out.sort_by_key(|p| p.start);
        out.dedup_by_key(|p| p.start);
        Ok(out)
    }

    /// Every tariff price list of `charges` whose `ValidFrom` lies between [`PRICELIST_FROM`] and
    /// `until` (exclusive). One call filters owners and codes separately, which also matches
    /// owner/code pairs nobody asked for; only the asked pairs are kept.
    pub(crate) async fn pricelists(
        &self,
        charges: &[ChargeKey],
        until: NaiveDate,
    ) -> Result<Vec<TariffRow>, PricesError> {
        if charges.is_empty() {
            return Ok(Vec::new());
        }
        let mut owners: Vec<&str> = charges.iter().map(|c| c.owner_gln.as_str()).collect();
        let mut codes: Vec<&str> = charges.iter().map(|c| c.code.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        codes.sort_unstable();
        codes.dedup();
        let filter = json!({
            "GLN_Number": owners,
            "ChargeTypeCode": codes,
            "ChargeType": [dto::TARIFF],
        });
        let records = self
            .dataset("DatahubPricelist", PRICELIST_FROM, until, filter, "ValidFrom asc", ALL)
            .await
            .map_err(|source| PricesError::Pricelist {
                charges: describe(charges),
                source,
            })?;
        let mut rows = dto::tariff_rows(records);
        rows.retain(|r| charges.contains(&r.charge));
        Ok(rows)
    }

    /// The CO2 rows of `area` from `dataset` over the Danish days `[start, end)`, sorted; with
    /// `newest_only`, just the newest row.
    pub(crate) async fn co2(
        &self,
        dataset: &'static str,
        area: PriceArea,
        start: NaiveDate,
        end: NaiveDate,
        newest_only: bool,
    ) -> Result<Vec<Co2Row>, PricesError> {
        let filter = json!({ "PriceArea": [area.as_str()] });
        let (sort, limit) = if newest_only {
            ("Minutes5UTC desc", 1)
        } else {
            ("Minutes5UTC asc", ALL)
        };
        let records = self
            .dataset(dataset, start, end, filter, sort, limit)
            .await
            .map_err(|source| PricesError::Co2 { dataset, area, source })?;
        Ok(dto::co2_rows(dataset, records, area))
    }

    /// One call for at most `limit` rows ([`ALL`]: every row).
    async fn dataset(
        &self,
        name: &str,
        start: NaiveDate,
        end: NaiveDate,
        filter: Value,
        sort: &str,
        limit: usize,
    ) -> Result<Vec<Value>, HttpError> {
        let endpoint = format!("GET /dataset/{name}");
        let url = format!("{}/dataset/{name}", self.base_url);
        let query = [
            ("start", start.format("%Y-%m-%d").to_string()),
            ("end", end.format("%Y-%m-%d").to_string()),
            ("filter", filter.to_string()),
            ("sort", sort.to_owned()),
            ("limit", limit.to_string()),
        ];
        let envelope: Envelope = self.http.fetch_json(&endpoint, |c| c.get(&url).query(&query)).await?;
        if let Some(total) = envelope.total.filter(|_| limit == ALL) {
            if usize::try_from(total).is_ok_and(|t| t > envelope.records.len()) {
                tracing::warn!(
                    api = API,
                    endpoint,
                    total,
                    received = envelope.records.len(),
                    "the answer holds fewer rows than it says exist; prices may be missing"
                );
            }
        }
        Ok(envelope.records)
    }
}

/// `5790000432752/40000, 5790001089030/B2D`, for an error message.
pub(crate) fn describe(charges: &[ChargeKey]) -> String {
    let mut parts: Vec<String> = charges.iter().map(|c| format!("{}/{}", c.owner_gln, c.code)).collect();
    parts.sort();
    parts.dedup();
    format!("the charges {}", parts.join(", "))
}

/// Energi Data Service's error bodies are not documented; take the message wherever a JSON
/// object keeps one (`message`, `error`, `detail`, `title`), and otherwise read the body as plain
/// text (bare strings, plain text, HTML pages).
fn parse_error_body(body: &str) -> (Option<String>, String) {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return (None, "no details in the response".to_owned());
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
        let code = map.get("code").and_then(scalar_text);
        let mut parts: Vec<&str> = ["error", "title", "message", "detail"]
            .iter()
            .filter_map(|k| field(&map, k))
            .collect();
        parts.dedup();
        if !parts.is_empty() {
            return (code, parts.join(": "));
        }
    }
    (None, excerpt(&plain_text(trimmed), MAX_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        assert_eq!(
            parse_error_body(r#"{"error":"Bad Request","message":"Invalid filter: unknown column 'Foo'"}"#),
            (None, "Bad Request: Invalid filter: unknown column 'Foo'".into())
        );
        assert_eq!(
            parse_error_body(r#"{"code":"E42","message":"start must be before end"}"#),
            (Some("E42".into()), "start must be before end".into())
        );
        assert_eq!(
            parse_error_body("Service Unavailable"),
            (None, "Service Unavailable".into())
        );
        assert_eq!(
            parse_error_body("<html><title>502 Bad Gateway</title></html>"),
            (None, "an HTML error page: 502 Bad Gateway".into())
        );
    }

    #[test]
    fn charges_are_named_owner_and_code() {
        let c = [
            ChargeKey::new("5790001089030", "B2D"),
            ChargeKey::new("5790000432752", "40000"),
        ];
        assert_eq!(describe(&c), "the charges 5790000432752/40000, 5790001089030/B2D");
    }
}
