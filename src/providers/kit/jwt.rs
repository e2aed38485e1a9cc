//! The timing claims of a JWT access token. The signature is not checked: the token is only
//! handed back to the server that signed it, and we only need to know when to replace it.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// APIs differ on padding; both forms are valid base64url.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) expires: Option<DateTime<Utc>>,
    pub(crate) issued: Option<DateTime<Utc>>,
}

/// `exp` and `iat` from the payload (the second dot-separated part); `None` if the token is not
/// a JWT with a JSON payload. Claims may be integers, floats or numeric strings.
pub(crate) fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let json: Value = serde_json::from_slice(&BASE64URL.decode(payload.trim()).ok()?).ok()?;
    let instant = |name: &str| {
        let secs = match json.get(name)? {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        DateTime::from_timestamp(secs.floor() as i64, 0)
    };
    Some(Claims {
        expires: instant("exp"),
        issued: instant("iat"),
    })
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
    fn the_fixture_tokens_expire_at_their_exp() {
        let enectiva: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/enectiva/access_token.json")).unwrap();
        let token = enectiva["data"]["attributes"]["encoded"].as_str().unwrap();
        assert_eq!(claims(token).unwrap().expires, Some(at(1_732_270_200)));
        let eloverblik: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/eloverblik/token.json")).unwrap();
        let token = eloverblik["result"].as_str().unwrap();
        assert_eq!(claims(token).unwrap().expires, Some(at(1_708_470_000)));
    }

    #[test]
    fn padded_payloads_and_float_or_string_claims_are_read() {
        let engine = base64::engine::general_purpose::URL_SAFE;
        let token = format!("h.{}.s", engine.encode(r#"{"exp":1700000300.5,"iat":"1700000000"}"#));
        assert_eq!(
            claims(&token),
            Some(Claims {
                expires: Some(at(1_700_000_300)),
                issued: Some(at(1_700_000_000))
            })
        );
        assert_eq!(
            claims(&jwt(r#"{"exp":1708470000}"#)).unwrap().expires,
            Some(at(1_708_470_000))
        );
    }

    #[test]
    fn garbage_has_no_claims() {
        assert_eq!(claims("not-a-jwt"), None);
        assert_eq!(claims("a.%%%.c"), None);
        assert_eq!(claims("a.!!!.c"), None);
        assert_eq!(claims(&jwt("[1,2]")).map(|c| c.expires), Some(None));
        assert_eq!(claims(&jwt(r#"{"sub":"x"}"#)).map(|c| c.expires), Some(None));
        assert_eq!(claims(&jwt("not json")), None);
    }
}
