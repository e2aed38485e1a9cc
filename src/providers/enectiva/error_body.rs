//! Reads the JSON:API error envelope (`{"errors":[{"status","title","detail","code"}]}`) into the
//! code and message an [`crate::http::HttpError`] carries.

use serde_json::Value;

use crate::http::error_body::scalar_text;
use crate::providers::kit::{excerpt, redact_tokens};

/// An [`crate::http::ErrorBody`] for Enectiva: the API's own `detail` (and `title`) of every
/// error, joined; the first `code` if one is given. A body in another shape is quoted briefly.
pub(crate) fn parse_error_body(body: &str) -> (Option<String>, String) {
    let (code, message) = match serde_json::from_str::<Value>(body) {
        Ok(json) => from_json(&json).unwrap_or_else(|| (None, quote(body))),
        Err(_) => (None, quote(body)),
    };
    (code, redact_tokens(&message))
}

fn from_json(json: &Value) -> Option<(Option<String>, String)> {
    if let Some(errors) = json.get("errors").and_then(Value::as_array) {
        let mut code = None;
        let mut parts = Vec::new();
        for error in errors {
            if code.is_none() {
                code = error.get("code").and_then(scalar_text);
            }
            let title = error.get("title").and_then(scalar_text);
            let detail = error.get("detail").and_then(scalar_text);
            let part = match (title, detail) {
                (Some(title), Some(detail)) if !detail.to_lowercase().contains(&title.to_lowercase()) => {
                    format!("{title}: {detail}")
                }
                (_, Some(detail)) => detail,
                (Some(title), None) => title,
                (None, None) => continue,
            };
            parts.push(part);
        }
        return (!parts.is_empty()).then(|| (code, parts.join("; ")));
    }
    // Not JSON:API, but a plain `{"error": "..."}` or `{"message": "..."}` still says something.
    ["error", "message", "detail"]
        .iter()
        .find_map(|key| json.get(*key).and_then(scalar_text))
        .map(|m| (None, m))
}

/// The start of a body, for messages about it.
pub(crate) fn quote(body: &str) -> String {
    if body.trim().is_empty() {
        "no details given".to_owned()
    } else {
        excerpt(body, 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_api_details_are_carried() {
        let body = r#"{"errors":[{"status":"401","title":"Unauthorized","detail":"token expired"}]}"#;
        assert_eq!(parse_error_body(body), (None, "Unauthorized: token expired".into()));
    }

    #[test]
    fn several_errors_and_a_code() {
        let body = r#"{"errors":[{"detail":"filter is invalid","code":"bad_filter"},{"title":"Bad Request"}]}"#;
        assert_eq!(
            parse_error_body(body),
            (Some("bad_filter".into()), "filter is invalid; Bad Request".into())
        );
    }

    #[test]
    fn a_detail_repeating_its_title_is_not_doubled() {
        let body = r#"{"errors":[{"title":"Not Found","detail":"Not found"}]}"#;
        assert_eq!(parse_error_body(body).1, "Not found");
    }

    #[test]
    fn other_shapes_are_quoted() {
        assert_eq!(parse_error_body(r#"{"error":"rate limited"}"#).1, "rate limited");
        assert_eq!(
            parse_error_body("<html>Bad Gateway</html>").1,
            "<html>Bad Gateway</html>"
        );
        assert_eq!(parse_error_body("").1, "no details given");
        assert_eq!(parse_error_body(r#"{"errors":[]}"#).1, r#"{"errors":[]}"#);
        let long = "x".repeat(500);
        assert_eq!(parse_error_body(&long).1.chars().count(), 201);
    }

    #[test]
    fn tokens_echoed_in_error_bodies_are_hidden() {
        let body = r#"{"errors":[{"detail":"token eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.c2ln is expired"}]}"#;
        assert_eq!(parse_error_body(body).1, "token [redacted] is expired");
    }
}
