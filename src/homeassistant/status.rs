//! What the client reports about its connection, for diagnostics.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The first connection attempt has not finished yet.
    Connecting,
    Connected,
    /// Home Assistant refused the token; no further attempts until a restart.
    AuthFailed(String),
    /// The last attempt failed or the connection dropped; attempts continue with backoff.
    Unreachable(String),
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    pub state: LinkState,
    /// From `auth_ok`; kept from the last successful connection while reconnecting.
    pub ha_version: Option<String>,
    /// The websocket endpoint in use.
    pub(crate) url: String,
}

impl LinkStatus {}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.ha_version.as_deref().unwrap_or("unknown version");
        match &self.state {
            LinkState::Connecting => write!(f, "connecting to Home Assistant at {}", self.url),
            LinkState::Connected => write!(f, "connected to Home Assistant {version} at {}", self.url),
            LinkState::AuthFailed(msg) => {
                write!(f, "Home Assistant at {} refused the access token: {msg}", self.url)
            }
            LinkState::Unreachable(msg) => write!(f, "Home Assistant at {} is unreachable: {msg}", self.url),
            LinkState::Stopped => write!(f, "the connection to Home Assistant at {} is closed", self.url),
        }
    }
}
