//! Reading configuration values leniently and with messages a user can act on: durations
//! (`"90s"`, `"1h"`, `"7d"` or seconds), dates, and optional labels that may arrive as numbers.
//! Used by the configuration and by every provider's settings.

use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::secret::deserialize_lenient_string;

pub(crate) use crate::secret::deserialize_lenient_strings as lenient_strings;

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct S(#[serde(deserialize_with = "deserialize_lenient_string")] String);
    Ok(Option::<S>::deserialize(d)?
        .map(|s| s.0)
        .filter(|s| !s.trim().is_empty()))
}

/// `"1h"`, `"90s"`, `"7d"` (humantime), or a number of seconds.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a duration such as \"90s\", \"1h\" or \"7d\""))?
    {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{t:?} is not a duration ({e}); write e.g. \"90s\", \"1h\" or \"7d\""
            ))
        }),
    }
}

pub(crate) fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(Some).map_err(|_| {
            serde::de::Error::custom(format!("{s:?} is not a date; write YYYY-MM-DD, e.g. \"2025-01-01\""))
        }),
    }
}
