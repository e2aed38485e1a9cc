//! Checks account settings share; each provider's registration applies the ones it needs.

/// An `http(s)://host...` URL a base path can be appended to.
pub(crate) fn http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("{url:?} is not an http(s) URL")),
    }
}

/// `5123d8ef-b501-4c71-b188-83ac399d66b9`.
pub(crate) fn looks_like_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_uuids() {
        assert!(http_url("https://api.enectiva.cz").is_ok());
        assert!(http_url("http://127.0.0.1:9/x").is_ok());
        for bad in ["api.enectiva.cz", "ftp://x", "", "http://"] {
            assert!(http_url(bad).unwrap_err().contains("http(s) URL"), "{bad}");
        }
        assert!(looks_like_uuid("5123d8ef-b501-4c71-b188-83ac399d66b9"));
        assert!(!looks_like_uuid("5123d8ef-b501-4c71-b188"));
        assert!(!looks_like_uuid("5123d8ef-b501-4c71-b188-83ac399d66bz"));
    }
}
