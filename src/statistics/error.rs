//! What can go wrong while importing statistics, worded for the person who has to act on it.

use std::time::Duration;

use crate::homeassistant::WsUrlError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    #[error("Home Assistant URL {url:?} is not usable: {reason}; write e.g. \"http://homeassistant.local:8123\" (config key homeassistant.url)")]
    InvalidUrl { url: String, reason: String },

    #[error(
        "Home Assistant at {url} is unreachable: {reason}; statistics are imported at the next poll once it is back"
    )]
    Unreachable { url: String, reason: String },

    #[error("Home Assistant at {url} refused the access token ({message}); create a new long-lived access token (your profile → Security) and set homeassistant.token, then restart")]
    AuthFailed { url: String, message: String },

    #[error("Home Assistant at {url} refused {command} for {statistic_id}: the token's user is not an administrator; importing statistics needs a long-lived access token of an administrator")]
    NotAdmin {
        url: String,
        command: &'static str,
        statistic_id: String,
    },

    #[error("Home Assistant rejected {command} for {statistic_id}: {message} (code {code})")]
    Rejected {
        command: &'static str,
        statistic_id: String,
        code: String,
        message: String,
    },

    #[error("Home Assistant did not answer {command} for {statistic_id} within {}; it is retried at the next poll", humantime::format_duration(*after))]
    Timeout {
        command: &'static str,
        statistic_id: String,
        after: Duration,
    },

    #[error("Home Assistant answered {command} for {statistic_id} in an unexpected way: {detail}")]
    Protocol {
        command: &'static str,
        statistic_id: String,
        detail: String,
    },

    #[error("reading {start} of {statistic_id} cannot be imported: {reason}")]
    InvalidReading {
        statistic_id: String,
        start: String,
        reason: String,
    },

    #[error("cost statistic {statistic_id}: {reason}")]
    Price { statistic_id: String, reason: String },

    #[error("statistics state for {statistic_id}: {source}")]
    State { statistic_id: String, source: StateError },

    #[error("the statistics sink was shut down; {statistic_id} was not imported")]
    Stopped { statistic_id: String },
}

impl From<WsUrlError> for StatisticsError {
    fn from(e: WsUrlError) -> Self {
        StatisticsError::InvalidUrl {
            url: e.url,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeassistant::WsUrl;

    #[test]
    fn an_unusable_url_names_the_config_key() {
        for raw in ["homeassistant.local:8123", "ftp://ha", "http://user:pw@ha:8123"] {
            let err = StatisticsError::from(WsUrl::parse(raw).unwrap_err()).to_string();
            assert!(err.contains("homeassistant.url"), "{err}");
        }
    }
}
