//! What the add-on reads from its environment, gathered in one value so that tests pass their own
//! instead of changing the process-global environment.

use std::time::Duration;

use crate::backoff_policy::RetryPolicy;
use crate::secret::Secret;

/// Where the Supervisor answers inside every add-on container.
pub(crate) const DEFAULT_SUPERVISOR_URL: &str = "http://supervisor";

/// The Supervisor's own name for the add-on's API token.
pub(crate) const TOKEN_VAR: &str = "SUPERVISOR_TOKEN";

/// Overrides the Supervisor's address (tests, development outside Home Assistant). Not a
/// `METER2MQTT_*` name: that prefix is reserved for configuration keys.
pub(crate) const URL_VAR: &str = "SUPERVISOR_URL";

#[derive(Debug, Clone)]
pub struct AddonEnv {
    /// Base URL of the Supervisor API, without a trailing slash.
    pub supervisor_url: String,
    pub supervisor_token: Option<Secret>,
    /// How often and how patiently to ask the Supervisor; it may be busy while Home Assistant boots.
    pub retry: RetryPolicy,
}

impl AddonEnv {
    pub(crate) fn from_process_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Reads `SUPERVISOR_URL` and `SUPERVISOR_TOKEN` from the given variables; an empty value
    /// counts as unset.
    pub(crate) fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut url = None;
        let mut token = None;
        for (name, value) in vars {
            if value.trim().is_empty() {
                continue;
            }
            match name.as_str() {
                URL_VAR => url = Some(value.trim().trim_end_matches('/').to_owned()),
                TOKEN_VAR => token = Some(Secret::new(value.trim())),
                _ => {}
            }
        }
        AddonEnv {
            supervisor_url: url.unwrap_or_else(|| DEFAULT_SUPERVISOR_URL.to_owned()),
            supervisor_token: token,
            retry: supervisor_retry(),
        }
    }
}

/// About half a minute of retries in all: long enough for a Supervisor that is still starting,
/// short enough that a real failure shows in the add-on log promptly.
fn supervisor_retry() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(10),
        max_retries: 5,
        ..RetryPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_to_the_supervisor_host() {
        let env = AddonEnv::from_vars(vars(&[("PATH", "/bin")]));
        assert_eq!(env.supervisor_url, "http://supervisor");
        assert!(env.supervisor_token.is_none());
    }

    #[test]
    fn reads_url_and_token_and_ignores_empty_values() {
        let env = AddonEnv::from_vars(vars(&[
            ("SUPERVISOR_URL", "http://127.0.0.1:9/"),
            ("SUPERVISOR_TOKEN", "abc"),
        ]));
        assert_eq!(env.supervisor_url, "http://127.0.0.1:9");
        assert_eq!(env.supervisor_token.as_ref().map(Secret::expose), Some("abc"));

        let env = AddonEnv::from_vars(vars(&[("SUPERVISOR_URL", " "), ("SUPERVISOR_TOKEN", "")]));
        assert_eq!(env.supervisor_url, "http://supervisor");
        assert!(env.supervisor_token.is_none());
    }
}
