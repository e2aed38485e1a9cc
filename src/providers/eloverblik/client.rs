//! Authorised calls: the data access token on every request, and one token refresh when the API
//! answers 401 (the token lapsed early or was revoked), after which a second 401 is final.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::settings::{EloverblikApi, KIND, NEW_TOKEN_HINT};
use crate::http::{ApiClient, HttpError};
use crate::providers::kit::{authorised, AccessToken, TokenCache};
use crate::providers::ProviderError;

/// The paths that differ between the customer and the third-party API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paths {
    pub(crate) flavour: EloverblikApi,
    pub(crate) charges: &'static str,
}

impl Paths {
    pub(crate) fn of(flavour: EloverblikApi) -> Paths {
        let charges = match flavour {
            EloverblikApi::Customer => "/api/meteringpoints/meteringpoint/getcharges",
            EloverblikApi::Thirdparty => "/api/meteringpoint/getcharges",
        };
        Paths { flavour, charges }
    }
}

pub(crate) struct Api {
    http: ApiClient,
    tokens: TokenCache,
    base_url: String,
    pub(crate) paths: Paths,
}

enum Method<'a, B> {
    Get,
    Post(&'a B),
}

impl Api {
    pub(crate) fn new(http: ApiClient, tokens: TokenCache, base_url: String, paths: Paths) -> Api {
        Api {
            http,
            tokens,
            base_url,
            paths,
        }
    }

    /// `GET {base_url}{path}`, the answer parsed as `T`; `path` starts with `/api/` and may carry
    /// a query. An answer that does not parse is retried like a 5xx.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        self.call::<T, ()>(path, Method::Get).await
    }

    /// `POST {base_url}{path}` with a JSON body, the answer parsed as `T`.
    pub(crate) async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ProviderError> {
        self.call(path, Method::Post(body)).await
    }

    /// The label a call has in logs and errors: method and path, never the host or a token.
    pub(crate) fn endpoint(method: &str, path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        format!("{method} {path}")
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        method: Method<'_, B>,
    ) -> Result<T, ProviderError> {
        let endpoint = Api::endpoint(if matches!(method, Method::Get) { "GET" } else { "POST" }, path);
        let url = format!("{}{path}", self.base_url);
        let refused_again = |message: String| ProviderError::Auth {
            provider: KIND,
            message: format!(
                "{endpoint} refused a newly issued access token too (HTTP 401: {message}); if this persists, \
                 {NEW_TOKEN_HINT}"
            ),
        };
        authorised(
            &self.tokens,
            &endpoint,
            |token| {
                let (endpoint, url, method) = (&endpoint, &url, &method);
                async move { self.send(endpoint, url, method, &token).await }
            },
            refused_again,
        )
        .await
    }

    async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        endpoint: &str,
        url: &str,
        method: &Method<'_, B>,
        token: &AccessToken,
    ) -> Result<T, HttpError> {
        let bearer = token.value.expose();
        self.http
            .fetch_json(endpoint, |client| match method {
                Method::Get => client.get(url).bearer_auth(bearer),
                Method::Post(body) => client.post(url).bearer_auth(bearer).json(body),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_drop_the_query() {
        assert_eq!(
            Api::endpoint("GET", "/api/meteringpoints/meteringpoints?includeAll=true"),
            "GET /api/meteringpoints/meteringpoints"
        );
        assert_eq!(Api::endpoint("POST", "/api/x"), "POST /api/x");
    }
}
