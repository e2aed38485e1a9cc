//! What every API's error-body parser shares. Each parser stays with its API, since each knows
//! its own envelope (ElOverblik's per-item wrapper, Enectiva's JSON:API `errors`, Energi Data
//! Service's `message`); what they have in common is written once here: a JSON scalar as text, a
//! non-empty text field, and a body in no JSON shape at all (a bare JSON string, plain text, a
//! gateway's HTML page) as one line.

use serde_json::{Map, Value};

/// Longest message kept from a body: enough for any API message, short enough for a log line.
pub(crate) const MAX_MESSAGE: usize = 300;

/// A string or number as text (error codes come as either); blank and other values are none.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// The text of `key` in a JSON object, trimmed; `None` when absent, blank or not a string.
pub(crate) fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A body that is not a JSON object, as one line: a bare JSON string's text, a summary of an HTML
/// page (its title), or the text itself, trimmed.
pub(crate) fn plain_text(body: &str) -> String {
    let trimmed = body.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::String(text)) => text,
        Err(_) if trimmed.starts_with('<') => html_title(trimmed),
        _ => trimmed.to_owned(),
    }
}

fn html_title(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|at| at + "<title>".len())
        .and_then(|start| {
            lower[start..]
                .find("</title>")
                .map(|len| html[start..start + len].trim())
        })
        .filter(|t| !t.is_empty());
    match title {
        Some(title) => format!("an HTML error page: {title}"),
        None => "an HTML error page without a title".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_and_fields() {
        assert_eq!(scalar_text(&json!(10004)), Some("10004".into()));
        assert_eq!(scalar_text(&json!(" E42 ")), Some("E42".into()));
        assert_eq!(scalar_text(&json!("  ")), None);
        assert_eq!(scalar_text(&json!(null)), None);
        let map = json!({"message": " gone ", "blank": "", "n": 1});
        let map = map.as_object().unwrap();
        assert_eq!(field(map, "message"), Some("gone"));
        assert_eq!(field(map, "blank"), None);
        assert_eq!(field(map, "n"), None);
        assert_eq!(field(map, "absent"), None);
    }

    #[test]
    fn plain_bodies() {
        assert_eq!(
            plain_text("\"#30002: Period not allowed\""),
            "#30002: Period not allowed"
        );
        assert_eq!(plain_text(" DataHub unavailable\n"), "DataHub unavailable");
        assert_eq!(plain_text("[1,2]"), "[1,2]");
        assert_eq!(
            plain_text("<html><head><title>502 Bad Gateway</title></head></html>"),
            "an HTML error page: 502 Bad Gateway"
        );
        assert_eq!(
            plain_text("<html><body>oops</body></html>"),
            "an HTML error page without a title"
        );
    }
}
