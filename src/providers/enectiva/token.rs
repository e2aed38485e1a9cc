//! The short-lived access token: bought with the long-lived login token, reused until shortly
//! before it expires, and bought again by one task at a time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::Mutex;

use super::clock::Clock;
use super::redact::{redact_http_error, redact_secrets};
use super::{jsonapi, jwt, JSON_API, KIND};
use crate::http::{ApiClient, HttpError};
use crate::providers::ProviderError;
use crate::secret::Secret;

const ENDPOINT: &str = "POST /access_tokens";

/// What a token request needs besides the HTTP client.
pub struct Credentials {
    pub account: String,
    pub customer_uuid: String,
    pub login_token: Secret,
    pub url: reqwest::Url,
}

pub struct TokenSource {
    http: ApiClient,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    /// Held across a refresh, so concurrent callers wait for that one refresh instead of each
    /// buying their own token.
    cached: Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: Secret,
    refresh_at: DateTime<Utc>,
}

impl TokenSource {
    pub fn new(http: ApiClient, credentials: Credentials, clock: Arc<dyn Clock>) -> Self {
        TokenSource {
            http,
            credentials,
            clock,
            cached: Mutex::new(None),
        }
    }

    pub fn login_token(&self) -> &Secret {
        &self.credentials.login_token
    }

    /// A token that is good for at least another minute (see [`jwt::refresh_at`]).
    pub async fn token(&self) -> Result<Secret, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| self.clock.now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let value = self.request().await?;
        let refresh_at = jwt::refresh_at(jwt::claims(value.expose()), self.clock.now());
        tracing::debug!(account = %self.credentials.account, refresh_at = %refresh_at.to_rfc3339(), "new Enectiva access token");
        *cached = Some(AccessToken {
            value: value.clone(),
            refresh_at,
        });
        Ok(value)
    }

    /// Forgets `rejected` after the API refused it, unless another task already replaced it.
    pub async fn discard(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == rejected) {
            *cached = None;
        }
    }

    async fn request(&self) -> Result<Secret, ProviderError> {
        let Credentials {
            customer_uuid,
            login_token,
            url,
            ..
        } = &self.credentials;
        let body = serde_json::json!({
            "data": {
                "type": "login_tokens",
                "attributes": { "customer_uuid": customer_uuid, "login_token": login_token.expose() }
            }
        });
        let body = serde_json::to_vec(&body).map_err(|e| ProviderError::Response {
            provider: KIND,
            endpoint: ENDPOINT.into(),
            message: format!("could not encode the request: {e}"),
        })?;
        let response = self
            .http
            .send(ENDPOINT, |client| {
                client
                    .post(url.clone())
                    .bearer_auth(login_token.expose())
                    .header(ACCEPT, JSON_API)
                    .header(CONTENT_TYPE, JSON_API)
                    .body(body.clone())
            })
            .await
            .map_err(|e| self.refused(e))?;
        let resource = jsonapi::single(&response.body, ENDPOINT, "access_tokens")?;
        let encoded = resource.text("encoded").ok_or_else(|| ProviderError::Response {
            provider: KIND,
            endpoint: ENDPOINT.into(),
            message: "the response has no data.attributes.encoded (the access token)".into(),
        })?;
        Ok(Secret::new(encoded))
    }

    /// A refused login token is the user's to fix; say what to check.
    fn refused(&self, error: HttpError) -> ProviderError {
        let login_token = &self.credentials.login_token;
        let (status, detail) = match &error {
            HttpError::Unauthorized { status, message, .. } => (*status, message),
            HttpError::Rejected {
                status: status @ (400 | 422),
                message,
                ..
            } => (*status, message),
            _ => return ProviderError::Http(redact_http_error(error, &[login_token])),
        };
        ProviderError::Auth {
            provider: KIND,
            message: format!(
                "account {}: the login token was refused ({ENDPOINT}: HTTP {status}: {}); check customer_uuid and \
                 login_token of this [[enectiva]] account, or ask Enectiva for a new login token",
                self.credentials.account,
                redact_secrets(detail, &[login_token]),
            ),
        }
    }
}
