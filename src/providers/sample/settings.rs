//! The `[[sample]]` section.

use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::de::{duration, lenient_opt_string, opt_date};

/// Machine name: topic segment, unique-id prefix, config section.
pub(crate) const KIND: &str = "sample";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    /// First local day of sample data; default: a week ago.
    #[serde(deserialize_with = "opt_date")]
    pub(crate) start: Option<NaiveDate>,
    /// Days of data; unset: data up to now minus `delay`, growing as time passes.
    pub(crate) days: Option<u32>,
    #[serde(deserialize_with = "duration")]
    pub(crate) delay: Duration,
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
