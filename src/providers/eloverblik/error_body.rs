//! ElOverblik error bodies come in several shapes: a bare JSON string with the API's code
//! (`"#30002: Period not allowed, ToDate is equal to FromDate."`), the ASP.NET default
//! `{"StatusCode":500,"Message":"..."}`, RFC 7807 problem details, the per-item wrapper with
//! `errorCode` / `errorText`, or plain text from a gateway (`DataHub unavailable`).

use serde_json::Value;

use crate::http::error_body::{field, plain_text, scalar_text, MAX_MESSAGE};
use crate::providers::kit::excerpt;

/// Pulls the API's own error code and message out of an error body (an [`crate::http::ErrorBody`]).
pub(crate) fn parse_error_body(body: &str) -> (Option<String>, String) {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return (None, "no details in the response".to_owned());
    }
    let (code, message) = match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(map)) => from_object(&map).unwrap_or_else(|| (None, trimmed.to_owned())),
        _ => split_code(&plain_text(trimmed)),
    };
    (code, excerpt(&message, MAX_MESSAGE))
}

/// `#30002: Period not allowed` → (`30002`, `Period not allowed`).
fn split_code(text: &str) -> (Option<String>, String) {
    let Some(rest) = text.trim().strip_prefix('#') else {
        return (None, text.trim().to_owned());
    };
    match rest.split_once(':') {
        Some((code, message)) if !code.is_empty() && code.trim().bytes().all(|b| b.is_ascii_digit()) => {
            (Some(code.trim().to_owned()), message.trim().to_owned())
        }
        _ => (None, text.trim().to_owned()),
    }
}

fn from_object(map: &serde_json::Map<String, Value>) -> Option<(Option<String>, String)> {
    if let Some(item) = map
        .get("result")
        .and_then(Value::as_array)
        .and_then(|items| items.first())
    {
        if let Some(found) = item.as_object().and_then(from_object) {
            return Some(found);
        }
    }
    let text = |key: &str| field(map, key);
    if let Some(error_text) = text("errorText") {
        let code = map.get("errorCode").and_then(scalar_text);
        return Some((code, error_text.to_owned()));
    }
    if let Some(message) = text("Message").or_else(|| text("message")) {
        let (code, message) = split_code(message);
        return Some((code, message));
    }
    // RFC 7807 problem details: the title names the problem, the detail explains it.
    match (text("title"), text("detail")) {
        (Some(title), Some(detail)) => Some((None, format!("{title}: {detail}"))),
        (Some(one), None) | (None, Some(one)) => Some((None, one.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> (Option<String>, String) {
        parse_error_body(body)
    }

    #[test]
    fn bare_json_string_with_code() {
        let body = include_str!("../../../tests/fixtures/eloverblik/error_400_30002.json");
        assert_eq!(
            parse(body),
            (
                Some("30002".into()),
                "Period not allowed, ToDate is equal to FromDate.".into()
            )
        );
        assert_eq!(
            parse("\"#20013: No meteringpoints in request conforms to valid meteringpoint format.\""),
            (
                Some("20013".into()),
                "No meteringpoints in request conforms to valid meteringpoint format.".into()
            )
        );
    }

    #[test]
    fn asp_net_status_message() {
        let body = include_str!("../../../tests/fixtures/eloverblik/error_500.json");
        assert_eq!(parse(body), (None, "An error occurred processing your request".into()));
    }

    #[test]
    fn plain_text_and_empty() {
        let body = include_str!("../../../tests/fixtures/eloverblik/error_503.txt");
        assert_eq!(parse(body), (None, "DataHub unavailable".into()));
        assert_eq!(parse("  \n"), (None, "no details in the response".into()));
        assert_eq!(
            parse("#30003: Requested to date is after today."),
            (Some("30003".into()), "Requested to date is after today.".into())
        );
    }

    #[test]
    fn problem_details_and_item_wrapper() {
        assert_eq!(
            parse(r#"{"type":"x","title":"Unauthorized","status":401,"detail":"Token expired"}"#),
            (None, "Unauthorized: Token expired".into())
        );
        assert_eq!(
            parse(
                r#"{"result":[{"success":false,"errorCode":10004,"errorText":"Number of metering points exceeds maximum"}]}"#
            ),
            (Some("10004".into()), "Number of metering points exceeds maximum".into())
        );
        assert_eq!(
            parse(r#"{"errorCode":"20010","errorText":"Relation not found"}"#),
            (Some("20010".into()), "Relation not found".into())
        );
    }

    #[test]
    fn unknown_shapes_are_kept_verbatim_and_short() {
        assert_eq!(parse(r#"{"weird":true}"#), (None, r#"{"weird":true}"#.into()));
        assert_eq!(parse("#abc: not a code"), (None, "#abc: not a code".into()));
        assert_eq!(parse("[1,2]"), (None, "[1,2]".into()));
        let long = "x".repeat(1000);
        let (_, message) = parse(&long);
        assert_eq!(message.chars().count(), MAX_MESSAGE + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn html_pages_are_summarised() {
        assert_eq!(
            parse("<html><head><title>502 Bad Gateway</title></head><body>...</body></html>"),
            (None, "an HTML error page: 502 Bad Gateway".into())
        );
        assert_eq!(
            parse("<html><body>oops</body></html>"),
            (None, "an HTML error page without a title".into())
        );
    }
}
