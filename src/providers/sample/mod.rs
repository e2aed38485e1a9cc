//! Built-in sample data: two meters (electricity and gas) with deterministic hourly consumption.
//! Drives `demo`, the tests, and a first try of the bridge without any credentials
//! (`[[sample]]`). It registers like any other provider.

mod provider;

pub use provider::{price_value, sample_price, sample_value, SampleProvider};

use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::de::{duration, lenient_opt_string, opt_date};
use crate::providers::registry::{BuildContext, Registered, Registration};
use crate::providers::{ProviderError, SharedProvider};

/// Machine name: topic segment, unique-id prefix, config section.
pub const KIND: &str = "sample";

/// This provider in [`crate::providers::KINDS`].
pub const REGISTRATION: Registered<Sample> = Registered::new();

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    /// First local day of sample data; default: a week ago.
    #[serde(deserialize_with = "opt_date")]
    pub start: Option<NaiveDate>,
    /// Days of data; unset: data up to now minus `delay`, growing as time passes.
    pub days: Option<u32>,
    #[serde(deserialize_with = "duration")]
    pub delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: None,
            start: None,
            days: None,
            delay: Duration::ZERO,
        }
    }
}

/// The registration of this provider (see [`crate::providers::registry`]).
pub struct Sample;

impl Registration for Sample {
    const KIND: &'static str = KIND;
    type Settings = Settings;

    fn name(settings: &Settings) -> Option<&str> {
        settings.name.as_deref()
    }

    fn check(settings: &Settings, problem: &mut dyn FnMut(&str, String)) {
        if settings.days == Some(0) {
            problem("days", "must be at least 1 (or unset for data up to now)".into());
        }
    }

    fn build(settings: &Settings, label: String, _context: &BuildContext) -> Result<SharedProvider, ProviderError> {
        Ok(std::sync::Arc::new(SampleProvider::new(settings, label)))
    }
}
