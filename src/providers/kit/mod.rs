//! What every provider needs and writes once here: a JWT's timing claims, the access
//! token cache (expiry from the token itself, refreshed ahead, one purchase at a time, optionally
//! persisted), the authorised call that refreshes once on 401, keeping credentials out of error
//! texts, an excerpt of a body for messages, and the checks account settings share.

mod authorised;
pub mod jwt;
mod redact;
pub mod rules;
mod token;

pub use crate::http::excerpt;
pub use authorised::authorised;
pub use redact::{redact_http_error, redact_secrets, redact_tokens};
pub use token::{AccessToken, Issuer, Persistence, RefreshAhead, TokenCache, TokenPolicy};
