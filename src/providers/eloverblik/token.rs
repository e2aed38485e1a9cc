//! The data access token: bought with the refresh token at `GET /api/token`, used until shortly
//! before it expires, and kept in the state directory so a restart spends no token call (the API
//! allows two a minute per IP address). One refresh at a time: the cache is behind a mutex that
//! is held while a new token is fetched, so concurrent callers wait for that one call.

use std::path::PathBuf;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::dto::TokenResponse;
use super::provider::Clock;
use super::{NEW_TOKEN_HINT, PROVIDER};
use crate::http::{ApiClient, HttpError};
use crate::providers::ProviderError;
use crate::secret::Secret;
use crate::state::{fingerprint, StateStore};

/// What ElOverblik documents when a token carries no readable `exp`.
const DEFAULT_LIFE: Duration = Duration::hours(24);
/// Even a token whose `exp` looks past (a skewed clock) is used this long before asking again,
/// so a wrong clock cannot turn every call into a token call.
const MIN_LIFE: Duration = Duration::minutes(10);

pub const TOKEN_ENDPOINT: &str = "GET /api/token";

#[derive(Clone)]
pub struct AccessToken {
    pub value: Secret,
    /// Refresh from here on: a tenth of the life before expiry, so a long poll never starts with
    /// a token about to lapse.
    pub refresh_after: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    pub fn issued(value: String, now: DateTime<Utc>) -> AccessToken {
        let life = match jwt_expiry(&value) {
            Some(exp) => (exp - now).clamp(MIN_LIFE, DEFAULT_LIFE),
            None => DEFAULT_LIFE,
        };
        AccessToken {
            value: Secret::new(value),
            refresh_after: now + life * 9 / 10,
            expires_at: now + life,
        }
    }

    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now < self.refresh_after
    }
}

/// The `exp` claim of a JWT, read without verifying the signature (only the issuer needs to).
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let claims = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    DateTime::from_timestamp(secs, 0)
}

/// The token file. Not `Debug`: it holds the access token in clear.
#[derive(Serialize, Deserialize)]
struct Persisted {
    /// A token is only good for the API that issued it.
    base_url: String,
    access_token: String,
    refresh_after: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
struct Slot {
    loaded: bool,
    current: Option<AccessToken>,
}

pub struct TokenCache {
    /// The account label, for logs.
    account: String,
    http: ApiClient,
    token_url: String,
    base_url: String,
    refresh_token: Secret,
    store: StateStore,
    file: PathBuf,
    clock: Clock,
    slot: tokio::sync::Mutex<Slot>,
}

impl TokenCache {
    pub fn new(
        account: &str,
        http: ApiClient,
        base_url: &str,
        refresh_token: Secret,
        store: StateStore,
        clock: Clock,
    ) -> TokenCache {
        let file = PathBuf::from(format!(
            "{PROVIDER}-token-{}.json",
            fingerprint(refresh_token.expose().trim())
        ));
        TokenCache {
            account: account.to_owned(),
            http,
            token_url: format!("{base_url}/api/token"),
            base_url: base_url.to_owned(),
            refresh_token,
            store,
            file,
            clock,
            slot: tokio::sync::Mutex::new(Slot::default()),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// A token good for the next call: the cached one, the persisted one, or a new one.
    pub async fn get(&self) -> Result<AccessToken, ProviderError> {
        let mut slot = self.slot.lock().await;
        if !slot.loaded {
            slot.current = self.load().await;
            slot.loaded = true;
        }
        let now = (self.clock)();
        if let Some(token) = slot.current.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(token.clone());
        }
        let fresh = self.fetch(now).await?;
        self.persist(&fresh).await;
        slot.current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `rejected` after the API refused it, unless another caller already replaced it.
    pub async fn invalidate(&self, rejected: &AccessToken) {
        let mut slot = self.slot.lock().await;
        if slot.current.as_ref().is_some_and(|t| t.value == rejected.value) {
            slot.current = None;
        }
    }

    async fn fetch(&self, now: DateTime<Utc>) -> Result<AccessToken, ProviderError> {
        // A pasted token often ends in a newline, which no HTTP header may carry.
        let refresh = self.refresh_token.expose().trim();
        let response = self
            .http
            .send(TOKEN_ENDPOINT, |client| client.get(&self.token_url).bearer_auth(refresh))
            .await
            .map_err(|e| match e {
                HttpError::Unauthorized { status, message, .. } => ProviderError::Auth {
                    provider: PROVIDER,
                    message: format!(
                        "the refresh token was refused at {TOKEN_ENDPOINT} (HTTP {status}: {message}); it has expired or \
                         been revoked: {NEW_TOKEN_HINT}"
                    ),
                },
                other => other.into(),
            })?;
        let body: TokenResponse = response.json(PROVIDER, TOKEN_ENDPOINT)?;
        let value = body
            .result
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ProviderError::Response {
                provider: PROVIDER,
                endpoint: TOKEN_ENDPOINT.to_owned(),
                message: "the answer holds no access token in \"result\"".to_owned(),
            })?;
        let token = AccessToken::issued(value, now);
        tracing::info!(account = %self.account, valid_until = %token.expires_at.to_rfc3339(), "ElOverblik issued a new data access token");
        Ok(token)
    }

    async fn load(&self) -> Option<AccessToken> {
        let (store, file) = (self.store.clone(), self.file.clone());
        let loaded = tokio::task::spawn_blocking(move || store.load_json::<Persisted>(&file)).await;
        let persisted = match loaded {
            Ok(Ok(persisted)) => persisted?,
            Ok(Err(e)) => {
                tracing::warn!(account = %self.account, "could not read the saved ElOverblik access token ({e}); a new one will be requested");
                return None;
            }
            Err(e) => {
                tracing::warn!(account = %self.account, "reading the saved ElOverblik access token failed: {e}");
                return None;
            }
        };
        let now = (self.clock)();
        if persisted.base_url != self.base_url || persisted.expires_at <= now {
            return None;
        }
        tracing::debug!(account = %self.account, valid_until = %persisted.expires_at.to_rfc3339(), "reusing the saved ElOverblik access token");
        Some(AccessToken {
            value: Secret::new(persisted.access_token),
            refresh_after: persisted.refresh_after,
            expires_at: persisted.expires_at,
        })
    }

    async fn persist(&self, token: &AccessToken) {
        let persisted = Persisted {
            base_url: self.base_url.clone(),
            access_token: token.value.expose().to_owned(),
            refresh_after: token.refresh_after,
            expires_at: token.expires_at,
        };
        let (store, file) = (self.store.clone(), self.file.clone());
        match tokio::task::spawn_blocking(move || store.save_json(&file, &persisted)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(account = %self.account, "could not save the ElOverblik access token ({e}); the next start spends a token call")
            }
            Err(e) => tracing::warn!(account = %self.account, "saving the ElOverblik access token failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims))
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn reads_exp_claim() {
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":1708470000}"#)), Some(at(1_708_470_000)));
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":1708470000.5}"#)), Some(at(1_708_470_000)));
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"x"}"#)), None);
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        let fixture: TokenResponse =
            serde_json::from_str(include_str!("../../../tests/fixtures/eloverblik/token.json")).unwrap();
        assert_eq!(jwt_expiry(&fixture.result.unwrap()), Some(at(1_708_470_000)));
    }

    #[test]
    fn life_follows_exp_within_bounds() {
        let now = at(1_700_000_000);
        let hour = AccessToken::issued(jwt(&format!(r#"{{"exp":{}}}"#, 1_700_000_000 + 3600)), now);
        assert_eq!(hour.expires_at, now + Duration::hours(1));
        assert_eq!(hour.refresh_after, now + Duration::minutes(54));
        assert!(hour.is_fresh(now + Duration::minutes(53)));
        assert!(!hour.is_fresh(now + Duration::minutes(54)));

        let no_exp = AccessToken::issued("opaque".into(), now);
        assert_eq!(no_exp.expires_at, now + Duration::hours(24));
        let far = AccessToken::issued(jwt(r#"{"exp":1900000000}"#), now);
        assert_eq!(far.expires_at, now + Duration::hours(24));
        let past = AccessToken::issued(jwt(r#"{"exp":1600000000}"#), now);
        assert_eq!(past.expires_at, now + Duration::minutes(10));
    }
}
