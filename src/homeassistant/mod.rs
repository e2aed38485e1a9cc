//! A client for Home Assistant's websocket API: the connection (URL, TLS, authentication, the
//! version Home Assistant reports), kept alive by one background task that reconnects with
//! backoff, and calls answered by id. It knows nothing of statistics: a caller sends any
//! [`Command`] and gets its `result`.

mod client;
mod handshake;
mod link;
mod log_guard;
mod messages;
mod session;
mod status;
mod tls;
mod version;
mod ws_url;

pub(crate) use client::Client;
pub(crate) use link::{
    standard_reconnect, CallError, LinkSettings, STANDARD_CONNECT_TIMEOUT, STANDARD_HEARTBEAT, STANDARD_REQUEST_TIMEOUT,
};
pub(crate) use log_guard::warn_if_frames_are_logged;
pub use log_guard::LOG_DIRECTIVES;
pub use status::{LinkState, LinkStatus};
pub(crate) use version::parse_year_month;
pub(crate) use ws_url::{WsUrl, WsUrlError};

use serde_json::{Map, Value};

/// A request to Home Assistant. The client adds the message id; the body may depend on the
/// version of the Home Assistant it goes to, which a reconnect can change.
pub(crate) trait Command: Send + Sync + std::fmt::Debug + 'static {
    /// The message `type`, e.g. `recorder/import_statistics`.
    fn name(&self) -> &'static str;
    /// What the command is about (a statistic id), for logs and errors.
    fn subject(&self) -> &str;
    /// Every field but `id`.
    fn body(&self, ha_version: Option<&str>) -> Map<String, Value>;
}
