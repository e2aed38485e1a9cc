//! Turning what a user writes as "the Home Assistant URL" into the websocket endpoint.

/// A URL that cannot lead to Home Assistant's websocket API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Home Assistant URL {url:?} is not usable: {reason}")]
pub(crate) struct WsUrlError {
    /// As written, with any credentials in it redacted.
    pub(crate) url: String,
    pub(crate) reason: String,
}

/// The websocket endpoint of Home Assistant, and how to name it in logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsUrl {
    endpoint: String,
    display: String,
    secure: bool,
}

impl WsUrl {
    /// Accepts `http(s)://host[:port][/prefix]` (the address people open in a browser; the
    /// websocket path is appended), `ws(s)://.../api/websocket`, and the add-on's
    /// `ws://supervisor/core/websocket`, which is used as it is.
    pub(crate) fn parse(raw: &str) -> Result<WsUrl, WsUrlError> {
        let invalid = |reason: &str| WsUrlError {
            url: redact_userinfo(raw.trim()),
            reason: reason.into(),
        };
        let trimmed = raw.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| invalid("it has no scheme"))?;
        let (ws_scheme, secure) = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => ("ws", false),
            "https" | "wss" => ("wss", true),
            _ => return Err(invalid("the scheme must be http, https, ws or wss")),
        };
        if rest.contains(['?', '#']) {
            return Err(invalid("query strings and fragments are not supported"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.starts_with('@') || authority.ends_with(':') {
            return Err(invalid("it names no host"));
        }
        if authority.contains('@') {
            // Home Assistant authenticates with the token only; credentials in the URL would be
            // sent to a proxy in clear text and end up in logs.
            return Err(invalid(
                "user names or passwords in the URL are not supported; the access token is enough",
            ));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(invalid("it contains white space"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("/websocket") {
            path.to_owned()
        } else if path.ends_with("/api") {
            format!("{path}/websocket")
        } else {
            format!("{path}/api/websocket")
        };
        let endpoint = format!("{ws_scheme}://{authority}{path}");
        Ok(WsUrl {
            display: endpoint.clone(),
            endpoint,
            secure,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }
}

impl std::fmt::Display for WsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Drops `user:password@` from a URL so that a rejected URL can be quoted in an error.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(raw: &str) -> String {
        WsUrl::parse(raw).unwrap().as_str().to_owned()
    }

    #[test]
    fn browser_urls_become_websocket_endpoints() {
        assert_eq!(
            endpoint("http://homeassistant.local:8123"),
            "ws://homeassistant.local:8123/api/websocket"
        );
        assert_eq!(
            endpoint("http://homeassistant.local:8123/"),
            "ws://homeassistant.local:8123/api/websocket"
        );
        assert_eq!(endpoint("https://ha.example.org"), "wss://ha.example.org/api/websocket");
        assert_eq!(
            endpoint("  HTTPS://ha.example.org/  "),
            "wss://ha.example.org/api/websocket"
        );
        assert_eq!(
            endpoint("https://proxy.example.org/ha/"),
            "wss://proxy.example.org/ha/api/websocket"
        );
        assert_eq!(endpoint("http://10.0.0.2:8123/api"), "ws://10.0.0.2:8123/api/websocket");
        assert_eq!(endpoint("http://[::1]:8123"), "ws://[::1]:8123/api/websocket");
    }

    #[test]
    fn websocket_urls_are_kept() {
        assert_eq!(
            endpoint("ws://supervisor/core/websocket"),
            "ws://supervisor/core/websocket"
        );
        assert_eq!(endpoint("ws://ha:8123/api/websocket"), "ws://ha:8123/api/websocket");
        assert_eq!(endpoint("wss://ha:8123/api/websocket/"), "wss://ha:8123/api/websocket");
        assert!(WsUrl::parse("wss://ha:8123/api/websocket").unwrap().is_secure());
        assert!(!WsUrl::parse("ws://supervisor/core/websocket").unwrap().is_secure());
    }

    #[test]
    fn unusable_urls_say_why() {
        for (raw, why) in [
            ("homeassistant.local:8123", "no scheme"),
            ("ftp://ha", "scheme must be"),
            ("http://", "no host"),
            ("http:///api", "no host"),
            ("http://ha:8123/?x=1", "query"),
            ("http://ha 8123", "white space"),
            ("http://user:pw@ha:8123", "user names"),
        ] {
            let err = WsUrl::parse(raw).unwrap_err().to_string();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn credentials_never_reach_the_error() {
        let err = WsUrl::parse("http://user:hunter2@ha:8123").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("[redacted]@ha:8123"), "{err}");
    }
}
