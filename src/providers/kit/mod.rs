//! What every provider needs and writes once here: a JWT's timing claims, the access
//! token cache (expiry from the token itself, refreshed ahead, one purchase at a time, optionally
//! persisted), the authorised call that refreshes once on 401, keeping credentials out of error
//! texts, an excerpt of a body for messages, and the checks account settings share.

mod authorised;
pub(crate) mod jwt;
mod redact;
pub(crate) mod rules;
mod token;

pub(crate) use crate::http::excerpt;
pub(crate) use authorised::authorised;
pub(crate) use redact::{redact_http_error, redact_secrets, redact_tokens};
pub(crate) use token::{AccessToken, Issuer, Persistence, RefreshAhead, TokenCache, TokenPolicy};
