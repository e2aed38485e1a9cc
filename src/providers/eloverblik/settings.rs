//! `[[eloverblik]]`: one ElOverblik account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use super::{EloverblikProvider, KIND};
use crate::de::{lenient_opt_string, lenient_strings, yes};
use crate::providers::kit::rules;
use crate::providers::registry::{AddonAccounts, BuildContext, Registration};
use crate::providers::{ProviderError, SharedProvider};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A label for logs and state files; defaults to the account's position.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    pub refresh_token: Secret,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// `customer` (default) or `thirdparty`.
    #[serde(default)]
    pub api: EloverblikApi,
    /// Empty: every metering point the token gives access to.
    #[serde(default, deserialize_with = "lenient_strings")]
    pub metering_points: Vec<String>,
    /// Publish tariffs and subscriptions from `getcharges`.
    #[serde(default = "yes")]
    pub charges: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EloverblikApi {
    #[default]
    Customer,
    #[serde(alias = "third_party", alias = "third-party")]
    Thirdparty,
}

pub fn default_base_url() -> String {
    "https://api.eloverblik.dk/customerapi".into()
}

/// The registration of this provider (see [`crate::providers::registry`]).
pub struct Eloverblik;

impl Registration for Eloverblik {
    const KIND: &'static str = KIND;
    type Settings = Settings;
    const ADDON: Option<AddonAccounts> = Some(AddonAccounts {
        fields: &["refresh_token", "metering_points", "name", "base_url"],
        describe: "an ElOverblik account (a refresh token)",
    });

    fn name(settings: &Settings) -> Option<&str> {
        settings.name.as_deref()
    }

    fn check(settings: &Settings, problem: &mut dyn FnMut(&str, String)) {
        if settings.refresh_token.is_empty() {
            problem(
                "refresh_token",
                "must not be empty; create one at eloverblik.dk under Datadeling → Opret token".into(),
            );
        }
        if let Err(e) = rules::http_url(&settings.base_url) {
            problem("base_url", e);
        }
        for id in &settings.metering_points {
            if id.len() != 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
                problem(
                    "metering_points",
                    format!("{id:?} is not a metering point id (18 digits)"),
                );
            }
        }
    }

    fn build(settings: &Settings, label: String, context: &BuildContext) -> Result<SharedProvider, ProviderError> {
        Ok(std::sync::Arc::new(EloverblikProvider::from_settings(
            settings,
            label,
            context,
        )?))
    }
}
