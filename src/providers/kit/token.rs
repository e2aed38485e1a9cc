//! The short-lived access token every provider buys with its long-lived credential: cached until
//! shortly before it expires (read from the JWT's own claims), bought by one caller at a time
//! (the cache is behind a mutex held across the purchase, so concurrent callers wait for that one
//! call), and optionally kept in the state directory so a restart spends no token call where the
//! API rations them.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::jwt;
use crate::clock::SharedClock;
use crate::providers::ProviderError;
use crate::secret::Secret;
use crate::state::{fingerprint, StateStore};

/// Buys a new access token with the provider's long-lived credential.
#[async_trait]
pub(crate) trait Issuer: Send + Sync {
    async fn issue(&self) -> Result<Secret, ProviderError>;
}

/// When a token is replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RefreshAhead {
    /// Once this fraction of its life has passed (a long-lived token: a poll never starts with
    /// one about to lapse).
    AtFraction(f64),
    /// This long before it expires, but not before half its life (a token of minutes).
    Margin(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TokenPolicy {
    /// Assumed when the token carries no readable `exp`.
    pub(crate) default_life: Duration,
    /// A token whose claims say less (a skewed clock) is still used this long, so a wrong
    /// clock cannot turn every call into a token call. Zero: use it for the call at hand only.
    pub(crate) min_life: Duration,
    pub(crate) max_life: Duration,
    pub(crate) refresh: RefreshAhead,
}

#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: Secret,
    /// Replace from here on.
    pub(crate) refresh_after: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// A token obtained at `now` (our clock). With `iat` the server's own lifetime
    /// (`exp - iat`) is measured from `now`, which makes a wrong system clock harmless.
    pub(crate) fn issued(value: Secret, now: DateTime<Utc>, policy: &TokenPolicy) -> AccessToken {
        let life = match jwt::claims(value.expose()) {
            Some(jwt::Claims {
                expires: Some(exp),
                issued: Some(iat),
            }) if exp > iat => exp - iat,
            Some(jwt::Claims { expires: Some(exp), .. }) => exp - now,
            _ => {
                tracing::debug!(
                    "the access token carries no readable expiry (exp); assuming {} minutes",
                    policy.default_life.num_minutes()
                );
                policy.default_life
            }
        };
        if life <= Duration::zero() && policy.min_life.is_zero() {
            tracing::warn!(
                "a freshly issued access token is already expired by this machine's clock; check the system time (NTP)"
            );
        }
        let life = life.clamp(policy.min_life, policy.max_life);
        let ahead = match policy.refresh {
            RefreshAhead::AtFraction(fraction) => {
                Duration::milliseconds((life.num_milliseconds() as f64 * fraction) as i64)
            }
            RefreshAhead::Margin(margin) => (life - margin).max(life / 2),
        };
        AccessToken {
            value,
            refresh_after: now + ahead.max(Duration::zero()),
            expires_at: now + life,
        }
    }

    pub(crate) fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now < self.refresh_after
    }
}

/// Where a cached token is kept between runs. A token is only good for the API that issued it
/// and the credential that bought it: the file name carries the credential's fingerprint, the
/// file the API's address.
pub(crate) struct Persistence {
    pub(crate) store: StateStore,
    pub(crate) file: PathBuf,
    pub(crate) scope: String,
}

impl Persistence {
    /// `<kind>-token-<fingerprint of credential>.json` in the state directory.
    pub(crate) fn new(store: StateStore, kind: &str, credential: &Secret, scope: &str) -> Persistence {
        Persistence {
            store,
            file: PathBuf::from(format!("{kind}-token-{}.json", fingerprint(credential.expose().trim()))),
            scope: scope.to_owned(),
        }
    }
}

/// The token file. Not `Debug`: it holds the access token in clear.
#[derive(Serialize, Deserialize)]
struct Persisted {
    /// The API it is good for.
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

pub(crate) struct TokenCache {
    /// Provider and account, for logs.
    label: String,
    issuer: Box<dyn Issuer>,
    policy: TokenPolicy,
    clock: SharedClock,
    persistence: Option<Persistence>,
    slot: tokio::sync::Mutex<Slot>,
}

impl TokenCache {
    pub(crate) fn new(
        label: String,
        issuer: Box<dyn Issuer>,
        policy: TokenPolicy,
        clock: SharedClock,
        persistence: Option<Persistence>,
    ) -> TokenCache {
        TokenCache {
            label,
            issuer,
            policy,
            clock,
            persistence,
            slot: tokio::sync::Mutex::new(Slot::default()),
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// A token good for the next call: the cached one, the persisted one, or a new one.
    pub(crate) async fn get(&self) -> Result<AccessToken, ProviderError> {
        let mut slot = self.slot.lock().await;
        if !slot.loaded {
            slot.current = self.load().await;
            slot.loaded = true;
        }
        if let Some(token) = slot.current.as_ref().filter(|t| t.is_fresh(self.clock.now())) {
            return Ok(token.clone());
        }
        let value = self.issuer.issue().await?;
        let fresh = AccessToken::issued(value, self.clock.now(), &self.policy);
        tracing::info!(account = %self.label, valid_until = %fresh.expires_at.to_rfc3339(), "a new access token was issued");
        self.persist(&fresh).await;
        slot.current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `rejected` after the API refused it, unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, rejected: &AccessToken) {
        let mut slot = self.slot.lock().await;
        if slot.current.as_ref().is_some_and(|t| t.value == rejected.value) {
            slot.current = None;
        }
    }

    async fn load(&self) -> Option<AccessToken> {
        let p = self.persistence.as_ref()?;
        let persisted = match p.store.load::<Persisted>(p.file.clone()).await {
            Ok(persisted) => persisted?,
            Err(e) => {
                tracing::warn!(account = %self.label, "could not read the saved access token ({e}); a new one will be requested");
                return None;
            }
        };
        if persisted.base_url != p.scope || persisted.expires_at <= self.clock.now() {
            return None;
        }
        tracing::debug!(account = %self.label, valid_until = %persisted.expires_at.to_rfc3339(), "reusing the saved access token");
        Some(AccessToken {
            value: Secret::new(persisted.access_token),
            refresh_after: persisted.refresh_after,
            expires_at: persisted.expires_at,
        })
    }

    async fn persist(&self, token: &AccessToken) {
        let Some(p) = &self.persistence else { return };
        let persisted = Persisted {
            base_url: p.scope.clone(),
            access_token: token.value.expose().to_owned(),
            refresh_after: token.refresh_after,
            expires_at: token.expires_at,
        };
        if let Err(e) = p.store.save(p.file.clone(), persisted).await {
            tracing::warn!(account = %self.label, "could not save the access token ({e}); the next start spends a token call")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(claims: &str) -> Secret {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims)))
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// ElOverblik's: a day's token, replaced after 90 % of its life, never trusted for less
    /// than 10 minutes.
    const DAILY: TokenPolicy = TokenPolicy {
        default_life: Duration::hours(24),
        min_life: Duration::minutes(10),
        max_life: Duration::hours(24),
        refresh: RefreshAhead::AtFraction(0.9),
    };

    /// Enectiva's: five minutes, replaced a minute ahead.
    const MINUTES: TokenPolicy = TokenPolicy {
        default_life: Duration::minutes(5),
        min_life: Duration::zero(),
        max_life: Duration::days(365),
        refresh: RefreshAhead::Margin(Duration::seconds(60)),
    };

    #[test]
    fn a_fraction_of_the_life_within_bounds() {
        let now = at(1_700_000_000);
        let hour = AccessToken::issued(jwt(&format!(r#"{{"exp":{}}}"#, 1_700_000_000 + 3600)), now, &DAILY);
        assert_eq!(hour.expires_at, now + Duration::hours(1));
        assert_eq!(hour.refresh_after, now + Duration::minutes(54));
        assert!(hour.is_fresh(now + Duration::minutes(53)));
        assert!(!hour.is_fresh(now + Duration::minutes(54)));

        let no_exp = AccessToken::issued(Secret::new("opaque"), now, &DAILY);
        assert_eq!(no_exp.expires_at, now + Duration::hours(24));
        let far = AccessToken::issued(jwt(r#"{"exp":1900000000}"#), now, &DAILY);
        assert_eq!(far.expires_at, now + Duration::hours(24));
        let past = AccessToken::issued(jwt(r#"{"exp":1600000000}"#), now, &DAILY);
        assert_eq!(past.expires_at, now + Duration::minutes(10));
    }

    #[test]
    fn a_margin_before_expiry() {
        let token = AccessToken::issued(jwt(r#"{"exp":1300}"#), at(1000), &MINUTES);
        assert_eq!(token.refresh_after, at(1240));
        // Unreadable: the documented five minutes.
        assert_eq!(
            AccessToken::issued(Secret::new("x"), at(1000), &MINUTES).refresh_after,
            at(1240)
        );
        // Short-lived tokens are renewed at half their life rather than never being reused.
        let short = AccessToken::issued(jwt(r#"{"exp":1040}"#), at(1000), &MINUTES);
        assert_eq!(short.refresh_after, at(1020));
        // Already expired by our clock: used for the call at hand only.
        let expired = AccessToken::issued(jwt(r#"{"exp":900}"#), at(1000), &MINUTES);
        assert_eq!(expired.refresh_after, at(1000));
    }

    #[test]
    fn iat_makes_a_skewed_clock_harmless() {
        // Our clock is 10 minutes ahead of the server's.
        let token = AccessToken::issued(jwt(r#"{"exp":1300,"iat":1000}"#), at(1600), &MINUTES);
        assert_eq!(token.refresh_after, at(1840));
    }

    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Issuer for std::sync::Arc<Counting> {
        async fn issue(&self) -> Result<Secret, ProviderError> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(jwt(&format!(r#"{{"exp":{},"n":{n}}}"#, 1_700_000_000 + 3600)))
        }
    }

    #[tokio::test]
    async fn one_purchase_for_concurrent_callers_persisted_for_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let now = at(1_700_000_000);
        let issued = std::sync::Arc::new(Counting(Default::default()));
        let cache = |issuer: std::sync::Arc<Counting>, scope: &str| {
            TokenCache::new(
                "test/1".into(),
                Box::new(issuer),
                DAILY,
                std::sync::Arc::new(move || now),
                Some(Persistence::new(store.clone(), "test", &Secret::new("refresh"), scope)),
            )
        };
        let first = cache(issued.clone(), "https://api");
        let (a, b) = tokio::join!(first.get(), first.get());
        assert!(a.unwrap().value == b.unwrap().value);
        assert_eq!(issued.0.load(std::sync::atomic::Ordering::SeqCst), 1);

        cache(issued.clone(), "https://api").get().await.unwrap();
        assert_eq!(
            issued.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the saved token is reused"
        );
        cache(issued.clone(), "https://other").get().await.unwrap();
        assert_eq!(
            issued.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "not at another API"
        );

        let token = first.get().await.unwrap();
        first.invalidate(&token).await;
        first.get().await.unwrap();
        assert_eq!(issued.0.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
