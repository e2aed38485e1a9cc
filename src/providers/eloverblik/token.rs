//! The data access token: bought with the refresh token at `GET /api/token`, valid a day, kept
//! in the state directory so a restart spends no token call (the API allows two a minute per IP
//! address). The caching itself is the provider kit's [`TokenCache`].

use async_trait::async_trait;
use chrono::Duration;

use super::dto::TokenResponse;
use super::settings::{KIND, NEW_TOKEN_HINT};
use crate::clock::SharedClock;
use crate::http::{ApiClient, HttpError};
use crate::providers::kit::{Issuer, Persistence, RefreshAhead, TokenCache, TokenPolicy};
use crate::providers::ProviderError;
use crate::secret::Secret;
use crate::state::StateStore;

pub(crate) const TOKEN_ENDPOINT: &str = "GET /api/token";

/// A day's token (what ElOverblik documents when a token carries no readable `exp`), replaced
/// after 90 % of its life; even one whose `exp` looks past (a skewed clock) is used ten minutes.
const POLICY: TokenPolicy = TokenPolicy {
    default_life: Duration::hours(24),
    min_life: Duration::minutes(10),
    max_life: Duration::hours(24),
    refresh: RefreshAhead::AtFraction(0.9),
};

/// The account's token cache, persisted per refresh token and API.
pub(crate) fn cache(
    account: &str,
    http: ApiClient,
    base_url: &str,
    refresh_token: Secret,
    store: StateStore,
    clock: SharedClock,
) -> TokenCache {
    let persistence = Persistence::new(store, KIND, &refresh_token, base_url);
    let issuer = RefreshToken {
        http,
        token_url: format!("{base_url}/api/token"),
        refresh_token,
    };
    TokenCache::new(
        format!("{KIND}/{account}"),
        Box::new(issuer),
        POLICY,
        clock,
        Some(persistence),
    )
}

struct RefreshToken {
    http: ApiClient,
    token_url: String,
    refresh_token: Secret,
}

#[async_trait]
impl Issuer for RefreshToken {
    async fn issue(&self) -> Result<Secret, ProviderError> {
        // A pasted token often ends in a newline, which no HTTP header may carry.
        let refresh = self.refresh_token.expose().trim();
        // An answer without a token is as unusable as one cut short: retried the same way. The
        // body holds the new token, so neither it nor serde's quote of it may reach an error.
        self.http
            .fetch_secret(
                TOKEN_ENDPOINT,
                |client| client.get(&self.token_url).bearer_auth(refresh),
                |response| {
                    let body: TokenResponse = serde_json::from_slice(&response.body).map_err(|e| {
                        format!("not the documented JSON ({:?} error at line {} column {})", e.classify(), e.line(), e.column())
                    })?;
                    body.result
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .map(Secret::new)
                        .ok_or_else(|| "the answer holds no access token in \"result\"".to_owned())
                },
            )
            .await
            .map_err(|e| match e {
                HttpError::Unauthorized { status, message, .. } => ProviderError::Auth {
                    provider: KIND,
                    message: format!(
                        "the refresh token was refused at {TOKEN_ENDPOINT} (HTTP {status}: {message}); it has expired or \
                         been revoked: {NEW_TOKEN_HINT}"
                    ),
                },
                other => other.into(),
            })
    }
}
