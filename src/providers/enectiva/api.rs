//! Authenticated GET requests: the required JSON:API headers, the access token, and one token
//! refresh when the API refuses a token that looked valid.

use reqwest::header::ACCEPT;
use reqwest::Url;

use super::settings::KIND;
use crate::http::{ApiClient, HttpError};
use crate::providers::kit::{authorised, redact_http_error, TokenCache};
use crate::providers::ProviderError;
use crate::secret::Secret;

/// Every request sends it as `Accept`, and requests with a body as `Content-Type` (else 406 / 415).
pub(crate) const JSON_API: &str = "application/vnd.api+json";

pub(crate) struct EnectivaApi {
    account: String,
    base: Url,
    http: ApiClient,
    tokens: TokenCache,
    /// Kept out of every error text, should the API echo it.
    login_token: Secret,
}

impl EnectivaApi {
    pub(crate) fn new(account: String, base: Url, http: ApiClient, tokens: TokenCache, login_token: Secret) -> Self {
        EnectivaApi {
            account,
            base,
            http,
            tokens,
            login_token,
        }
    }

    /// `base_url` with `segments` appended, each percent-encoded (an id can never change the path).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        endpoint_url(&self.base, segments)
    }

    /// `GET` the path made of `segments`, with `query` pairs (repeatable keys such as `filter[]`),
    /// the body read by `decode` (given the endpoint) as part of each attempt, so that an answer
    /// it cannot read is retried like a 5xx.
    pub(crate) async fn get<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        decode: impl Fn(&[u8], &str) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let url = self.url(segments);
        let endpoint = format!("GET /{}", segments.join("/"));
        let refused_again = |message: String| ProviderError::Auth {
            provider: KIND,
            message: format!(
                "account {}: {endpoint} refused a freshly issued access token (HTTP 401: {message}); check that \
                 the login token of this [[enectiva]] account still grants access to this data",
                self.account,
            ),
        };
        authorised(
            &self.tokens,
            &endpoint,
            |token| {
                let (url, endpoint, decode) = (&url, &endpoint, &decode);
                async move {
                    self.http
                        .fetch(
                            endpoint,
                            |client| {
                                client
                                    .get(url.clone())
                                    .query(query)
                                    .bearer_auth(token.value.expose())
                                    .header(ACCEPT, JSON_API)
                            },
                            |response| decode(&response.body, endpoint),
                        )
                        .await
                        .map_err(|e: HttpError| redact_http_error(e, &[&token.value, &self.login_token]))
                }
            },
            refused_again,
        )
        .await
    }
}

pub(crate) fn endpoint_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A base URL that paths can be appended to (`http(s)://host[:port][/prefix]`).
pub(crate) fn parse_base_url(raw: &str) -> Result<Url, HttpError> {
    let invalid = |why: String| HttpError::Client {
        api: KIND,
        message: format!("base_url {raw:?} {why}; write e.g. \"https://api.enectiva.cz\""),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("is not an http(s) URL".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_appended_and_encoded() {
        let base = parse_base_url("https://api.enectiva.cz").unwrap();
        assert_eq!(
            endpoint_url(&base, &["meters", "4711", "readings"]).as_str(),
            "https://api.enectiva.cz/meters/4711/readings"
        );
        let prefixed = parse_base_url("http://127.0.0.1:8080/proxy/").unwrap();
        assert_eq!(
            endpoint_url(&prefixed, &["meters"]).as_str(),
            "http://127.0.0.1:8080/proxy/meters"
        );
        assert_eq!(
            endpoint_url(&base, &["meters", "../x?y"]).as_str(),
            "https://api.enectiva.cz/meters/..%2Fx%3Fy"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for raw in ["api.enectiva.cz", "mailto:a@b.c", "ftp://host", ""] {
            let e = parse_base_url(raw).unwrap_err().to_string();
            assert!(e.contains("base_url"), "{e}");
        }
    }
}
