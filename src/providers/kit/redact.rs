//! Keeping credentials out of error texts: error bodies end up in logs and on MQTT, and a server
//! that echoes the request must not put a token there.

use crate::http::HttpError;
use crate::secret::{Secret, REDACTED};

/// Hides what looks like a credential: a JWT (`eyJ…` with two dots, as Enectiva's access tokens
/// are) and whatever follows the word `Bearer`.
pub(crate) fn redact_tokens(text: &str) -> String {
    let mut out = Vec::new();
    let mut after_bearer = false;
    for word in text.split(' ') {
        let looks_like_jwt = word.contains("eyJ") && word.matches('.').count() >= 2;
        out.push(if after_bearer || looks_like_jwt { REDACTED } else { word });
        after_bearer = word.eq_ignore_ascii_case("bearer");
    }
    out.join(" ")
}

/// Hides every occurrence of the given secrets.
pub(crate) fn redact_secrets(text: &str, secrets: &[&Secret]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret.expose(), REDACTED))
}

/// The same error with the given secrets hidden in every text it carries.
pub(crate) fn redact_http_error(error: HttpError, secrets: &[&Secret]) -> HttpError {
    let hide = |text: String| redact_secrets(&text, secrets);
    match error {
        HttpError::Rejected {
            api,
            endpoint,
            status,
            code,
            message,
        } => HttpError::Rejected {
            api,
            endpoint,
            status,
            code,
            message: hide(message),
        },
        HttpError::Unauthorized {
            api,
            endpoint,
            status,
            message,
        } => HttpError::Unauthorized {
            api,
            endpoint,
            status,
            message: hide(message),
        },
        HttpError::Exhausted {
            api,
            endpoint,
            attempts,
            last,
            last_status,
        } => HttpError::Exhausted {
            api,
            endpoint,
            attempts,
            last: hide(last),
            last_status,
        },
        HttpError::Decode { api, endpoint, message } => HttpError::Decode {
            api,
            endpoint,
            message: hide(message),
        },
        HttpError::Client { api, message } => HttpError::Client {
            api,
            message: hide(message),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_and_bearer_credentials_are_hidden() {
        assert_eq!(
            redact_tokens("token eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.c2ln is expired"),
            "token [redacted] is expired"
        );
        assert_eq!(
            redact_tokens("header was Bearer s3cr3t-login, rejected"),
            "header was Bearer [redacted] rejected"
        );
        assert_eq!(redact_tokens("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn known_secrets_are_hidden_wherever_they_appear() {
        let login = Secret::new("L0GIN");
        assert_eq!(redact_secrets("bad token:L0GIN!", &[&login]), "bad token:[redacted]!");
        // An empty secret would otherwise "match" between every character.
        assert_eq!(redact_secrets("abc", &[&Secret::new("")]), "abc");
    }

    #[test]
    fn http_errors_lose_their_secrets() {
        let login = Secret::new("L0GIN");
        let error = HttpError::Exhausted {
            api: "enectiva",
            endpoint: "GET /meters".into(),
            attempts: 3,
            last: "HTTP 500: echo L0GIN".into(),
            last_status: Some(500),
        };
        let text = redact_http_error(error, &[&login]).to_string();
        assert!(!text.contains("L0GIN") && text.contains("echo [redacted]"), "{text}");
    }
}
