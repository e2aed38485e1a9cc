//! The short-lived access token: bought with the long-lived login token at
//! `POST /access_tokens`, valid about five minutes, and replaced a minute before it expires. The
//! caching itself is the provider kit's [`TokenCache`]; it is not persisted: a restart costs one
//! call, which the API does not ration.

use async_trait::async_trait;
use chrono::Duration;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::api::JSON_API;
use super::jsonapi;
use super::settings::KIND;
use crate::clock::SharedClock;
use crate::http::{ApiClient, HttpError};
use crate::providers::kit::{redact_http_error, redact_secrets, Issuer, RefreshAhead, TokenCache, TokenPolicy};
use crate::providers::ProviderError;
use crate::secret::Secret;

const ENDPOINT: &str = "POST /access_tokens";

/// Enectiva documents a lifetime of five minutes; assumed when a token's own `exp` cannot be
/// read. A token is replaced a minute before it expires, so a request never leaves with a
/// dying one.
const POLICY: TokenPolicy = TokenPolicy {
    default_life: Duration::minutes(5),
    min_life: Duration::zero(),
    max_life: Duration::days(1),
    refresh: RefreshAhead::Margin(Duration::seconds(60)),
};

/// What a token request needs besides the HTTP client.
pub(crate) struct Credentials {
    pub(crate) account: String,
    pub(crate) customer_uuid: String,
    pub(crate) login_token: Secret,
    pub(crate) url: reqwest::Url,
}

pub(crate) fn cache(http: ApiClient, credentials: Credentials, clock: SharedClock) -> TokenCache {
    let label = format!("{KIND}/{}", credentials.account);
    TokenCache::new(label, Box::new(LoginToken { http, credentials }), POLICY, clock, None)
}

struct LoginToken {
    http: ApiClient,
    credentials: Credentials,
}

#[async_trait]
impl Issuer for LoginToken {
    async fn issue(&self) -> Result<Secret, ProviderError> {
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
        // The answer holds the new token: errors say what was wrong with it, never what it holds.
        self.http
            .fetch_secret(
                ENDPOINT,
                |client| {
                    client
                        .post(url.clone())
                        .bearer_auth(login_token.expose())
                        .header(ACCEPT, JSON_API)
                        .header(CONTENT_TYPE, JSON_API)
                        .body(body.clone())
                },
                |response| {
                    let resource = jsonapi::single(&response.body, ENDPOINT, "access_tokens")
                        .map_err(|_| "not a JSON:API document with one access_tokens resource")?;
                    resource
                        .text("encoded")
                        .map(Secret::new)
                        .ok_or("the response has no data.attributes.encoded (the access token)")
                },
            )
            .await
            .map_err(|e| self.refused(e))
    }
}

impl LoginToken {
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
