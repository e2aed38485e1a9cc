//! Sending a request with the shared retry policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::{HttpError, RateLimiter, RetryPolicy};

/// Waiting between attempts goes through this, so tests can record the waits instead of
/// sleeping (tokio's paused clock would also fire reqwest's own timeouts while awaiting I/O).
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Pulls the API's own error code and message out of an error body.
pub(crate) type ErrorBody = fn(&str) -> (Option<String>, String);

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn json<T: DeserializeOwned>(&self, api: &'static str, endpoint: &str) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode {
            api,
            endpoint: endpoint.to_owned(),
            message: format!("{e} (body starts with {:?})", preview(&self.body)),
        })
    }
}

/// A reqwest client bound to one API, with its retry policy and error-body format.
#[derive(Clone)]
pub(crate) struct ApiClient {
    api: &'static str,
    client: reqwest::Client,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    error_body: ErrorBody,
    /// The API's call budget, shared with every other client of the same API.
    limiter: Option<Arc<RateLimiter>>,
}

enum Attempt {
    Done(HttpResponse),
    Fatal(HttpError),
    Transient {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
}

impl ApiClient {
    pub(crate) fn new(api: &'static str, client: reqwest::Client, policy: RetryPolicy, error_body: ErrorBody) -> Self {
        ApiClient {
            api,
            client,
            policy,
            sleeper: Arc::new(TokioSleeper),
            error_body,
            limiter: None,
        }
    }

    pub(crate) fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    pub(crate) fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Sends the request `make` builds, retrying 429, 5xx, timeouts and connection errors with
    /// exponential backoff (never sooner than Retry-After or the policy's throttle floor), at most
    /// `max_retries` times. `endpoint` names the call in logs and errors (e.g. `GET /api/token`).
    pub(crate) async fn send<F>(&self, endpoint: &str, make: F) -> Result<HttpResponse, HttpError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        self.fetch(endpoint, make, |response| {
            Ok::<_, std::convert::Infallible>(response.clone())
        })
        .await
    }

    /// [`send`](Self::send), and the 2xx body parsed as `T`.
    pub(crate) async fn fetch_json<T, F>(&self, endpoint: &str, make: F) -> Result<T, HttpError>
    where
        T: DeserializeOwned,
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        self.fetch(endpoint, make, |response| serde_json::from_slice::<T>(&response.body))
            .await
    }

    /// [`send`](Self::send), and the 2xx answer turned into `T` by `decode` as part of the same
    /// attempt: an answer that an outage cut short or garbled (not JSON, the wrong shape for the
    /// endpoint) is retried like a 5xx, within the same budget, and the error that is finally
    /// reported quotes the start of the last body.
    pub(crate) async fn fetch<T, E, F, D>(&self, endpoint: &str, make: F, decode: D) -> Result<T, HttpError>
    where
        E: std::fmt::Display,
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        D: Fn(&HttpResponse) -> Result<T, E>,
    {
        self.fetch_quoting(endpoint, make, decode, true).await
    }

    /// [`fetch`](Self::fetch) for an answer that carries a secret (a token endpoint): errors say
    /// why the body was unusable (`decode` must word that without quoting it), never what it holds.
    pub(crate) async fn fetch_secret<T, E, F, D>(&self, endpoint: &str, make: F, decode: D) -> Result<T, HttpError>
    where
        E: std::fmt::Display,
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        D: Fn(&HttpResponse) -> Result<T, E>,
    {
        self.fetch_quoting(endpoint, make, decode, false).await
    }

    async fn fetch_quoting<T, E, F, D>(&self, endpoint: &str, make: F, decode: D, quote: bool) -> Result<T, HttpError>
    where
        E: std::fmt::Display,
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        D: Fn(&HttpResponse) -> Result<T, E>,
    {
        let mut delays = self.policy.delays();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                limiter.acquire(endpoint).await;
            }
            let (reason, status, retry_after) = match self.attempt(endpoint, make(&self.client)).await {
                Attempt::Done(response) => match decode(&response) {
                    Ok(value) => return Ok(value),
                    Err(e) => (garbled(&response, &e, quote), Some(response.status), None),
                },
                Attempt::Fatal(error) => return Err(error),
                Attempt::Transient {
                    reason,
                    status,
                    retry_after,
                } => (reason, status, retry_after),
            };
            if attempt > self.policy.max_retries {
                return Err(HttpError::Exhausted {
                    api: self.api,
                    endpoint: endpoint.to_owned(),
                    attempts: attempt,
                    last: reason,
                    last_status: status,
                });
            }
            let mut wait = delays.next_delay();
            if matches!(status, Some(429) | Some(503)) {
                wait = wait.max(self.policy.throttle_floor);
            }
            if let Some(after) = retry_after {
                wait = wait.max(after.min(self.policy.max_retry_after));
            }
            tracing::warn!(
                api = self.api,
                endpoint,
                attempt,
                wait_secs = wait.as_secs_f64(),
                "{reason}; retrying in {}",
                humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
            );
            self.sleeper.sleep(wait).await;
        }
    }

    async fn attempt(&self, endpoint: &str, request: reqwest::RequestBuilder) -> Attempt {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Transient {
                    reason: describe(&e),
                    status: None,
                    retry_after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return Attempt::Transient {
                    reason: format!("reading the response failed: {}", describe(&e)),
                    status: Some(status),
                    retry_after,
                }
            }
        };
        if (200..300).contains(&status) {
            return Attempt::Done(HttpResponse { status, body });
        }
        let text = String::from_utf8_lossy(&body);
        let (code, message) = (self.error_body)(&text);
        let endpoint = endpoint.to_owned();
        match status {
            429 | 500..=599 => Attempt::Transient {
                reason: format!("HTTP {status}: {message}"),
                status: Some(status),
                retry_after,
            },
            401 | 403 => Attempt::Fatal(HttpError::Unauthorized {
                api: self.api,
                endpoint,
                status,
                message,
            }),
            _ => Attempt::Fatal(HttpError::Rejected {
                api: self.api,
                endpoint,
                status,
                code,
                message,
            }),
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// reqwest's Display stops at "error sending request"; the cause is in the source chain.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "request timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut out = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Why a 2xx answer was not usable, quoting the start of its body.
fn garbled(response: &HttpResponse, error: &impl std::fmt::Display, quote: bool) -> String {
    let status = response.status;
    if quote {
        let start = preview(&response.body);
        format!("HTTP {status} with a body that could not be parsed: {error} (body starts with {start:?})")
    } else {
        format!("HTTP {status} with a body that could not be parsed: {error}")
    }
}

pub(crate) fn preview(body: &[u8]) -> String {
    super::excerpt(&String::from_utf8_lossy(body), 120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }
}
