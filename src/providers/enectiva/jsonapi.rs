//! Lenient reading of JSON:API documents. Only `data`, `id`, `type`, `attributes` and
//! `relationships` are relied on; a record that is not even a resource is skipped with a warning,
//! and typed parsing of each record happens elsewhere, one record at a time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::error_body::quote;
use super::KIND;
use crate::providers::ProviderError;

/// One resource object of a `data` array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resource {
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) attributes: Map<String, Value>,
    pub(crate) relationships: Map<String, Value>,
}

/// The usable records of a list response, and how many records the server sent in all (the
/// 1000-record limit applies to what was sent, usable or not).
#[derive(Debug, Clone, Default)]
pub(crate) struct Collection {
    pub(crate) resources: Vec<Resource>,
    pub(crate) sent: usize,
}

impl Resource {
    /// `type id`, how warnings name a record.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.kind, self.id)
    }

    /// An attribute that is present and not null.
    pub(crate) fn attr(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name).filter(|v| !v.is_null())
    }

    /// A text attribute; numbers are accepted as their decimal text, blanks count as absent.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        match self.attr(name)? {
            Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The id a to-one relationship points at (`relationships.<name>.data.id`).
    pub(crate) fn related_id(&self, name: &str) -> Option<String> {
        id_text(self.relationships.get(name)?.get("data")?.get("id")?)
    }
}

/// Parses a list response: `{"data": [ ... ]}`.
pub(crate) fn collection(body: &[u8], endpoint: &str, default_type: &str) -> Result<Collection, ProviderError> {
    let data = document_data(body, endpoint)?;
    let Value::Array(items) = data else {
        return Err(unexpected(endpoint, "`data` is not a list"));
    };
    let sent = items.len();
    let resources = items
        .into_iter()
        .enumerate()
        .filter_map(|(index, item)| match resource(item, default_type) {
            Ok(resource) => Some(resource),
            Err(reason) => {
                tracing::warn!(
                    endpoint,
                    record = index,
                    "skipping record {index} of {endpoint} ({reason})"
                );
                None
            }
        })
        .collect();
    Ok(Collection { resources, sent })
}

/// Parses a single-resource response: `{"data": { ... }}`.
pub(crate) fn single(body: &[u8], endpoint: &str, default_type: &str) -> Result<Resource, ProviderError> {
    let data = document_data(body, endpoint)?;
    resource(data, default_type).map_err(|reason| unexpected(endpoint, &reason))
}

fn document_data(body: &[u8], endpoint: &str) -> Result<Value, ProviderError> {
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        unexpected(
            endpoint,
            &format!(
                "not JSON ({e}); body starts with {:?}",
                quote(&String::from_utf8_lossy(body))
            ),
        )
    })?;
    match json {
        Value::Object(mut map) => map
            .remove("data")
            .ok_or_else(|| unexpected(endpoint, "no `data` member")),
        _ => Err(unexpected(endpoint, "the body is not a JSON:API document (an object)")),
    }
}

fn resource(item: Value, default_type: &str) -> Result<Resource, String> {
    let Value::Object(mut map) = item else {
        return Err(format!("not an object but {}", kind_of(&item)));
    };
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(default_type)
        .to_owned();
    let id = map
        .get("id")
        .and_then(id_text)
        .ok_or_else(|| format!("a {kind} record without an id"))?;
    let mut take_object = |name: &str| match map.remove(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(inner)) => Ok(inner),
        Some(other) => Err(format!(
            "{kind} {id}: `{name}` is {} instead of an object",
            kind_of(&other)
        )),
    };
    let attributes = take_object("attributes")?;
    let relationships = take_object("relationships")?;
    Ok(Resource {
        kind,
        id,
        attributes,
        relationships,
    })
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn unexpected(endpoint: &str, message: &str) -> ProviderError {
    ProviderError::Response {
        provider: KIND,
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
    }
}

/// A number, or a string holding one (`"12.5"`, `" 12,5 "`); anything else, NaN and infinities
/// are `None`.
pub(crate) fn number(value: &Value) -> Option<f64> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            // A decimal comma (Czech locale) when there is no decimal point.
            let s = if s.contains('.') {
                s.to_owned()
            } else {
                s.replacen(',', ".", 1)
            };
            s.parse::<f64>().ok()
        }
        _ => None,
    };
    parsed.filter(|v| v.is_finite())
}

/// A timestamp with an offset (`2024-11-01T00:00:00Z`), or a local one without (`2024-01-01T00:00:00`,
/// `2024-01-01 00:00:00`, `2024-01-01`) read in `tz`. A local time that does not exist (the hour a
/// DST change skips) is `None`; an ambiguous one is the earlier instant.
pub(crate) fn parse_time(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    parse_local(text)
        .and_then(|local| tz.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// The wall-clock part of a timestamp without offset.
pub(crate) fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_records_are_skipped_and_counted() {
        let body = json!({"data": [
            {"type": "meters", "id": "1", "attributes": {"name": "a"}},
            "garbage",
            {"type": "meters", "attributes": {"name": "no id"}},
            {"id": 7, "attributes": null, "relationships": {"entity": {"data": {"type": "entities", "id": 88}}}},
            {"type": "meters", "id": "9", "attributes": "broken"},
        ]});
        let c = collection(body.to_string().as_bytes(), "GET /meters", "meters").unwrap();
        assert_eq!(c.sent, 5);
        assert_eq!(c.resources.len(), 2);
        assert_eq!(c.resources[1].label(), "meters 7");
        assert_eq!(c.resources[1].related_id("entity").as_deref(), Some("88"));
        assert!(c.resources[1].attributes.is_empty());
    }

    #[test]
    fn documents_that_are_not_lists_fail_with_the_endpoint_named() {
        for body in [r#"{"data": {}}"#, r#"{"errors": []}"#, "[]", "<html>"] {
            let e = collection(body.as_bytes(), "GET /meters", "meters").unwrap_err();
            assert!(e.to_string().contains("GET /meters"), "{e}");
        }
    }

    #[test]
    fn text_accepts_numbers_and_drops_blanks() {
        let r = Resource {
            kind: "meters".into(),
            id: "1".into(),
            attributes: json!({"a": " x ", "b": 5, "c": "  ", "d": null, "e": [1]})
                .as_object()
                .unwrap()
                .clone(),
            relationships: Map::new(),
        };
        assert_eq!(r.text("a").as_deref(), Some("x"));
        assert_eq!(r.text("b").as_deref(), Some("5"));
        assert_eq!(r.text("c"), None);
        assert_eq!(r.text("d"), None);
        assert_eq!(r.text("e"), None);
        assert_eq!(r.text("missing"), None);
    }

    #[test]
    fn numbers_leniently() {
        assert_eq!(number(&json!(12.5)), Some(12.5));
        assert_eq!(number(&json!("12.5")), Some(12.5));
        assert_eq!(number(&json!(" 12,5 ")), Some(12.5));
        assert_eq!(number(&json!("1e3")), Some(1000.0));
        assert_eq!(number(&json!("abc")), None);
        assert_eq!(number(&json!("NaN")), None);
        assert_eq!(number(&json!("inf")), None);
        assert_eq!(number(&json!(true)), None);
        assert_eq!(number(&Value::Null), None);
    }

    #[test]
    fn times_with_and_without_offset() {
        let prague = chrono_tz::Europe::Prague;
        assert_eq!(
            parse_time("2024-11-01T00:15:00Z", prague).unwrap().to_rfc3339(),
            "2024-11-01T00:15:00+00:00"
        );
        assert_eq!(
            parse_time("2024-11-01T01:15:00+01:00", prague).unwrap().to_rfc3339(),
            "2024-11-01T00:15:00+00:00"
        );
        assert_eq!(
            parse_time("2024-01-01T00:00:00", prague).unwrap().to_rfc3339(),
            "2023-12-31T23:00:00+00:00"
        );
        assert_eq!(
            parse_time("2024-07-01 00:00:00", prague).unwrap().to_rfc3339(),
            "2024-06-30T22:00:00+00:00"
        );
        assert_eq!(
            parse_time("2024-07-01", prague).unwrap().to_rfc3339(),
            "2024-06-30T22:00:00+00:00"
        );
        // 02:30 does not exist on 31 March 2024 in Prague; 02:30 on 27 October exists twice.
        assert_eq!(parse_time("2024-03-31T02:30:00", prague), None);
        assert_eq!(
            parse_time("2024-10-27T02:30:00", prague).unwrap().to_rfc3339(),
            "2024-10-27T00:30:00+00:00"
        );
        assert_eq!(parse_time("yesterday", prague), None);
    }
}
