//! The timing claims of a JWT access token. The signature is not checked: the token is only
//! handed back to the server that signed it, and we only need to know when to replace it.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::jsonapi::number;

/// Enectiva documents a lifetime of five minutes; used when a token's own `exp` cannot be read.
pub const DOCUMENTED_LIFETIME: Duration = Duration::minutes(5);

/// Replace a token this long before it expires, so a request never leaves with a dying one.
pub const REFRESH_MARGIN: Duration = Duration::seconds(60);

const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub expires: Option<DateTime<Utc>>,
    pub issued: Option<DateTime<Utc>>,
}

/// `exp` and `iat` from the payload (the second dot-separated part); `None` if the token is not
/// a JWT with a JSON payload.
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let json: Value = serde_json::from_slice(&BASE64URL.decode(payload.trim()).ok()?).ok()?;
    let instant = |name: &str| {
        let secs = json.get(name).and_then(number)?;
        DateTime::from_timestamp(secs.floor() as i64, 0)
    };
    Some(Claims {
        expires: instant("exp"),
        issued: instant("iat"),
    })
}

/// When a token obtained at `obtained` (our clock) should be replaced.
///
/// With `iat` the server's own lifetime (`exp - iat`) is measured from `obtained`, which makes a
/// wrong system clock harmless; without it `exp` is taken as is. A token whose expiry already
/// lies behind our clock is used for the request at hand only.
pub fn refresh_at(claims: Option<Claims>, obtained: DateTime<Utc>) -> DateTime<Utc> {
    let expires = match claims {
        Some(Claims {
            expires: Some(exp),
            issued: Some(iat),
        }) if exp > iat => obtained + (exp - iat),
        Some(Claims { expires: Some(exp), .. }) => exp,
        _ => {
            tracing::warn!(
                "the Enectiva access token carries no readable expiry (exp); assuming the documented {} minutes",
                DOCUMENTED_LIFETIME.num_minutes()
            );
            obtained + DOCUMENTED_LIFETIME
        }
    };
    let lifetime = expires - obtained;
    if lifetime <= Duration::zero() {
        tracing::warn!(
            expires = %expires.to_rfc3339(),
            now = %obtained.to_rfc3339(),
            "a freshly issued Enectiva access token is already expired by this machine's clock; check the system time (NTP)"
        );
        return obtained;
    }
    // Short-lived tokens are renewed at half their life rather than never being reused.
    (expires - REFRESH_MARGIN).max(obtained + lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn jwt(payload: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", engine.encode(r#"{"alg":"ES256"}"#), engine.encode(payload))
    }

    #[test]
    fn the_fixture_token_expires_at_its_exp() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/enectiva/access_token.json")).unwrap();
        let token = fixture["data"]["attributes"]["encoded"].as_str().unwrap();
        let c = claims(token).unwrap();
        assert_eq!(c.expires, Some(at(1_732_270_200)));
        assert_eq!(c.issued, None);
    }

    #[test]
    fn padded_payloads_and_float_claims_are_read() {
        let engine = base64::engine::general_purpose::URL_SAFE;
        let token = format!("h.{}.s", engine.encode(r#"{"exp":1700000300.5,"iat":"1700000000"}"#));
        assert_eq!(
            claims(&token),
            Some(Claims {
                expires: Some(at(1_700_000_300)),
                issued: Some(at(1_700_000_000))
            })
        );
    }

    #[test]
    fn garbage_has_no_claims() {
        assert_eq!(claims("not-a-jwt"), None);
        assert_eq!(claims("a.%%%.c"), None);
        assert_eq!(claims(&jwt("[1,2]")).map(|c| c.expires), Some(None));
        assert_eq!(claims(&jwt("not json")), None);
    }

    #[test]
    fn refreshed_a_minute_before_expiry() {
        let obtained = at(1000);
        let c = Claims {
            expires: Some(at(1300)),
            issued: None,
        };
        assert_eq!(refresh_at(Some(c), obtained), at(1240));
    }

    #[test]
    fn iat_makes_a_skewed_clock_harmless() {
        // Our clock is 10 minutes ahead of the server's.
        let obtained = at(1600);
        let c = Claims {
            expires: Some(at(1300)),
            issued: Some(at(1000)),
        };
        assert_eq!(refresh_at(Some(c), obtained), at(1840));
    }

    #[test]
    fn unreadable_expiry_assumes_the_documented_lifetime() {
        assert_eq!(refresh_at(None, at(1000)), at(1240));
        assert_eq!(
            refresh_at(
                Some(Claims {
                    expires: None,
                    issued: None
                }),
                at(1000)
            ),
            at(1240)
        );
    }

    #[test]
    fn short_and_expired_tokens() {
        let short = Claims {
            expires: Some(at(1040)),
            issued: None,
        };
        assert_eq!(refresh_at(Some(short), at(1000)), at(1020));
        let expired = Claims {
            expires: Some(at(900)),
            issued: None,
        };
        assert_eq!(refresh_at(Some(expired), at(1000)), at(1000));
    }
}
