//! A call with the access token, and one new token when the API answers 401 (the token lapsed
//! early, was revoked, or our clock is slow); a second 401 is final.

use std::future::Future;

use super::token::{AccessToken, TokenCache};
use crate::http::HttpError;
use crate::providers::ProviderError;

/// Sends `call` with a current token. `refused_again` words the error when a newly issued
/// token is refused too: the provider knows what the user can do about it.
pub(crate) async fn authorised<T, F, Fut>(
    tokens: &TokenCache,
    endpoint: &str,
    call: F,
    refused_again: impl FnOnce(String) -> ProviderError,
) -> Result<T, ProviderError>
where
    F: Fn(AccessToken) -> Fut,
    Fut: Future<Output = Result<T, HttpError>>,
{
    let token = tokens.get().await?;
    match call(token.clone()).await {
        Err(HttpError::Unauthorized { status: 401, .. }) => {
            tracing::info!(account = %tokens.label(), endpoint, "the access token was refused; requesting a new one");
            tokens.invalidate(&token).await;
            let fresh = tokens.get().await?;
            call(fresh).await.map_err(|e| match e {
                HttpError::Unauthorized {
                    status: 401, message, ..
                } => refused_again(message),
                other => other.into(),
            })
        }
        other => other.map_err(Into::into),
    }
}
