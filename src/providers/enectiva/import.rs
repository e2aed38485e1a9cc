//! Enectiva's import API (`/import/...`): one reading, data point or profile per request, with
//! the import token as the bearer (no access-token exchange), and the `latest` record of a series
//! for recovery. Shapes the docs do not show (the request envelope, the answer's id) are written
//! and read leniently.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Url;
use serde_json::{json, Map, Value};

use super::api::JSON_API;
use super::api::{endpoint_url, parse_base_url};
use super::error_body::parse_error_body;
use super::{Settings, KIND};
use crate::http::{build_client, ApiClient, Budget, HttpError, RateLimiter, RetryPolicy, Sleeper, TokioSleeper};
use crate::providers::kit::{excerpt, redact_secrets};
use crate::providers::registry::BuildContext;
use crate::providers::upload::{api_time, Delivered, ImportError, Importer, Record, RecordKind, Target};
use crate::providers::ProviderError;
use crate::secret::Secret;

/// What tests swap: a faster retry policy, a recording sleeper, a shorter timeout.
pub struct ImportOptions {
    pub policy: RetryPolicy,
    pub sleeper: Arc<dyn Sleeper>,
    pub timeout: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            // The upload loop tries a failed record again itself; a request gives up sooner
            // than a poll so that the series' status shows the outage.
            policy: RetryPolicy {
                max_retries: 4,
                throttle_floor: Duration::from_secs(10),
                ..RetryPolicy::default()
            },
            sleeper: Arc::new(TokioSleeper),
            timeout: Duration::from_secs(30),
        }
    }
}

pub struct ImportClient {
    account: String,
    customer: String,
    base: Url,
    http: ApiClient,
    token: Secret,
    sender: String,
}

fn every_import(_endpoint: &str) -> bool {
    true
}

/// At most `per_minute` import requests in any minute.
fn limiter(per_minute: u32) -> RateLimiter {
    RateLimiter::new(
        KIND,
        vec![Budget {
            name: "import requests",
            calls: per_minute.max(1) as usize,
            per: Duration::from_secs(60),
            applies: every_import,
        }],
    )
}

impl ImportClient {
    /// The client of one account, pacing itself by `import_requests_per_minute`.
    pub fn new(
        settings: &Settings,
        token: Secret,
        account: String,
        options: ImportOptions,
    ) -> Result<ImportClient, ProviderError> {
        let base = parse_base_url(&settings.base_url)?;
        let client = build_client(KIND, options.timeout)?;
        let http = ApiClient::new(KIND, client, options.policy, parse_error_body)
            .with_sleeper(options.sleeper)
            .with_limiter(Arc::new(limiter(settings.import_requests_per_minute)));
        Ok(ImportClient {
            account,
            customer: settings.customer_uuid.trim().to_owned(),
            base,
            http,
            token,
            sender: format!("meter2mqtt/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// Paced by the limiter every account of the run shares for this host and pace.
    pub(crate) fn sharing(mut self, settings: &Settings, context: &BuildContext) -> ImportClient {
        let per_minute = settings.import_requests_per_minute;
        let key = format!("import:{}:{per_minute}", self.base.host_str().unwrap_or_default());
        let shared = context.shared(&key, || limiter(per_minute));
        self.http = self.http.with_limiter(shared);
        self
    }

    fn collection(kind: RecordKind) -> &'static str {
        match kind {
            RecordKind::Reading => "readings",
            RecordKind::DataPoint => "data_points",
            RecordKind::Profile => "profiles",
        }
    }

    /// The JSON:API document for one record.
    fn body(&self, target: &Target<'_>, record: &Record) -> Value {
        let mut attributes = Map::new();
        attributes.insert("import_id".into(), target.import_id.into());
        attributes.insert("suit".into(), target.suit.into());
        match target.kind {
            RecordKind::Reading => {
                attributes.insert("time".into(), api_time(record.time).into());
                attributes.insert("state".into(), record.value.into());
            }
            RecordKind::DataPoint => {
                attributes.insert("time".into(), api_time(record.time).into());
                attributes.insert("value".into(), record.value.into());
            }
            RecordKind::Profile => {
                let to = record.to.unwrap_or(record.time + chrono::Duration::hours(1));
                attributes.insert("from".into(), api_time(record.time).into());
                attributes.insert("to".into(), api_time(to).into());
                attributes.insert("value".into(), record.value.into());
            }
        }
        if let Some(unit) = target.unit {
            attributes.insert("unit".into(), unit.into());
        }
        attributes.insert("sender".into(), self.sender.as_str().into());
        json!({ "data": { "type": Self::collection(target.kind), "attributes": attributes } })
    }

    /// An error as the series' status shows it: what failed, for which account, without the token.
    fn failure(&self, target: &Target<'_>, error: HttpError) -> Result<Delivered, ImportError> {
        let text = redact_secrets(&error.to_string(), &[&self.token]);
        match error {
            HttpError::Rejected { status: 409, .. } => Ok(Delivered::Duplicate),
            HttpError::Rejected { status: 400..=499, message, .. } => {
                Ok(Delivered::Refused(redact_secrets(&message, &[&self.token])))
            }
            HttpError::Unauthorized { status, .. } => Err(ImportError::Auth(format!(
                "account {}: the import token was refused (HTTP {status}) for {} {}: {text}; check import_token of this \
                 [[enectiva]] account (the import token, not the login token) and that it may import this series",
                self.account,
                target.kind.as_str(),
                target.import_id,
            ))),
            _ => Err(ImportError::Unavailable(text)),
        }
    }
}

#[async_trait]
impl Importer for ImportClient {
    fn title(&self) -> &str {
        "Enectiva"
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn account(&self) -> &str {
        &self.account
    }

    async fn send(&self, target: &Target<'_>, record: &Record) -> Result<Delivered, ImportError> {
        let collection = Self::collection(target.kind);
        let url = endpoint_url(&self.base, &["import", collection, &self.customer]);
        let endpoint = format!("POST /import/{collection}");
        let body = self.body(target, record).to_string();
        let sent = self
            .http
            .send(&endpoint, |client| {
                client
                    .post(url.clone())
                    .bearer_auth(self.token.expose())
                    .header(ACCEPT, JSON_API)
                    .header(CONTENT_TYPE, JSON_API)
                    .body(body.clone())
            })
            .await;
        match sent {
            Ok(response) => Ok(Delivered::Stored(created_id(&response.body))),
            Err(error) => self.failure(target, error),
        }
    }

    async fn latest(&self, target: &Target<'_>) -> Result<Option<DateTime<Utc>>, ImportError> {
        let collection = Self::collection(target.kind);
        let url = endpoint_url(
            &self.base,
            &[
                "import",
                collection,
                &self.customer,
                target.import_id,
                target.suit,
                "latest",
            ],
        );
        let endpoint = format!("GET /import/{collection}/latest");
        let answer = self
            .http
            .send(&endpoint, |client| {
                client
                    .get(url.clone())
                    .bearer_auth(self.token.expose())
                    .header(ACCEPT, JSON_API)
            })
            .await;
        match answer {
            Ok(response) => latest_time(&response.body, target.kind).map(Some).ok_or_else(|| {
                ImportError::Unavailable(format!(
                    "{KIND}: {endpoint} for {}: no time in the answer (body starts with {:?})",
                    target.import_id,
                    excerpt(&String::from_utf8_lossy(&response.body), 200)
                ))
            }),
            Err(HttpError::Rejected { status: 404, .. }) => Ok(None),
            Err(error) => match self.failure(target, error) {
                Ok(Delivered::Refused(reason)) => Err(ImportError::Unavailable(format!(
                    "{KIND}: {endpoint} for {} was refused: {reason}",
                    target.import_id
                ))),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}

/// The new record's id: `data.id`, or an `id` at the top.
fn created_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value.pointer("/data/id").or_else(|| value.get("id"))?;
    match id {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The record's time in a `latest` answer: a JSON:API resource (or a list of one) whose
/// attributes carry `time` (readings, data points) or `from` (profiles); a bare object too.
fn latest_time(body: &[u8], kind: RecordKind) -> Option<DateTime<Utc>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let data = match value.get("data") {
        Some(Value::Array(items)) => items.last()?.clone(),
        Some(data) => data.clone(),
        None => value,
    };
    let keys: &[&str] = match kind {
        RecordKind::Profile => &["from", "time"],
        _ => &["time", "from"],
    };
    let attributes = data.get("attributes").unwrap_or(&data);
    keys.iter()
        .filter_map(|key| attributes.get(*key).and_then(Value::as_str))
        .find_map(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_latest_times_are_read_leniently() {
        assert_eq!(
            created_id(br#"{"data":{"id":"r-1","type":"readings"}}"#),
            Some("r-1".into())
        );
        assert_eq!(created_id(br#"{"id":42}"#), Some("42".into()));
        assert_eq!(created_id(b""), None);
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            latest_time(
                br#"{"data":{"id":"1","attributes":{"time":"2026-01-01T10:00:00+01:00","state":1}}}"#,
                RecordKind::Reading
            ),
            Some(t("2026-01-01T09:00:00Z"))
        );
        assert_eq!(
            latest_time(
                br#"{"data":[{"attributes":{"from":"2026-01-01T09:00:00Z","to":"2026-01-01T10:00:00Z"}}]}"#,
                RecordKind::Profile
            ),
            Some(t("2026-01-01T09:00:00Z"))
        );
        assert_eq!(
            latest_time(br#"{"time":"2026-01-01T09:00:00Z"}"#, RecordKind::DataPoint),
            Some(t("2026-01-01T09:00:00Z"))
        );
        assert_eq!(latest_time(br#"{"data":{}}"#, RecordKind::Reading), None);
    }
}
