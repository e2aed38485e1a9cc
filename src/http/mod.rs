//! The HTTP layer every provider shares: one client configuration (rustls, timeouts) and one retry
//! policy for 429, 5xx, timeouts and connection errors.

pub(crate) mod error_body;
mod limiter;
mod retry;

// The policy's type is shared with the MQTT and websocket reconnects; the HTTP calls use it here.
pub use crate::backoff_policy::RetryPolicy;
pub use limiter::{Budget, Pace, RateLimiter, TokioPace};
pub(crate) use retry::ApiClient;
pub use retry::{HttpResponse, Sleeper, TokioSleeper};

use std::sync::Once;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// A 4xx other than 401/403/429: the request itself is wrong; retrying cannot help.
    #[error("{api}: {endpoint} was rejected with HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" (code {c})")).unwrap_or_default())]
    Rejected {
        api: &'static str,
        endpoint: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// 401 / 403: the caller decides whether a token refresh can help.
    #[error("{api}: {endpoint} was refused with HTTP {status}: {message}")]
    Unauthorized {
        api: &'static str,
        endpoint: String,
        status: u16,
        message: String,
    },
    /// Retries ran out on a transient failure.
    #[error("{api}: {endpoint} still failing after {attempts} attempts: {last}")]
    Exhausted {
        api: &'static str,
        endpoint: String,
        attempts: u32,
        last: String,
        last_status: Option<u16>,
    },
    /// The body could not be read as the API documents it.
    #[error("{api}: {endpoint} returned a body that could not be parsed: {message}")]
    Decode {
        api: &'static str,
        endpoint: String,
        message: String,
    },
    #[error("{api}: could not build the HTTP client: {message}")]
    Client { api: &'static str, message: String },
}

impl HttpError {
    /// Retries ran out (on 5xx, 429, timeouts, connection errors or garbled answers), or an
    /// answer could not be read: the API may well answer at the next try. A refusal (401/403), a
    /// rejected request (other 4xx) or a client that cannot be built will not change by itself.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            HttpError::Exhausted { .. } | HttpError::Decode { .. } => true,
            HttpError::Rejected { .. } | HttpError::Unauthorized { .. } | HttpError::Client { .. } => false,
        }
    }

    /// Retries ran out on answers that came (2xx) but could not be read: cut short, not JSON, or
    /// not the shape the endpoint documents.
    pub(crate) fn garbled(&self) -> bool {
        matches!(self, HttpError::Exhausted { last_status: Some(status), .. } if (200..300).contains(status))
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            HttpError::Rejected { status, .. } | HttpError::Unauthorized { status, .. } => Some(*status),
            HttpError::Exhausted { last_status, .. } => *last_status,
            _ => None,
        }
    }
}

/// The start of a text, at most `max` characters (with `…` when cut), for messages that quote
/// a body: enough to recognise it, short enough for a log line.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

pub(crate) const USER_AGENT: &str = concat!("meter2mqtt/", env!("CARGO_PKG_VERSION"));

/// reqwest is built without a bundled crypto provider; ring is the smaller one.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client with the timeouts every call needs.
pub(crate) fn build_client(api: &'static str, timeout: Duration) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| HttpError::Client {
            api,
            message: e.to_string(),
        })
}
