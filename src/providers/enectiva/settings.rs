//! `[[enectiva]]`: one Enectiva account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use super::{EnectivaProvider, KIND};
use crate::de::lenient_opt_string;
use crate::providers::kit::rules;
use crate::providers::registry::{AddonAccounts, BuildContext, Registration};
use crate::providers::{ProviderError, SharedProvider};
use crate::secret::{deserialize_lenient_string, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "deserialize_lenient_string")]
    pub customer_uuid: String,
    pub login_token: Secret,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default)]
    pub include_deactivated: bool,
}

pub fn default_base_url() -> String {
    "https://api.enectiva.cz".into()
}

/// The registration of this provider (see [`crate::providers::registry`]).
pub struct Enectiva;

impl Registration for Enectiva {
    const KIND: &'static str = KIND;
    type Settings = Settings;
    const ADDON: Option<AddonAccounts> = Some(AddonAccounts {
        fields: &["customer_uuid", "login_token", "name", "base_url"],
        describe: "an Enectiva account (customer UUID and login token)",
    });

    fn name(settings: &Settings) -> Option<&str> {
        settings.name.as_deref()
    }

    fn check(settings: &Settings, problem: &mut dyn FnMut(&str, String)) {
        if !rules::looks_like_uuid(&settings.customer_uuid) {
            problem(
                "customer_uuid",
                format!(
                    "{:?} is not a UUID (e.g. 5123d8ef-b501-4c71-b188-83ac399d66b9)",
                    settings.customer_uuid
                ),
            );
        }
        if settings.login_token.is_empty() {
            problem(
                "login_token",
                "must not be empty; Enectiva gives it with the API access for your customer account".into(),
            );
        }
        if let Err(e) = rules::http_url(&settings.base_url) {
            problem("base_url", e);
        }
    }

    fn build(settings: &Settings, label: String, _context: &BuildContext) -> Result<SharedProvider, ProviderError> {
        Ok(std::sync::Arc::new(EnectivaProvider::new(
            settings,
            label,
            Default::default(),
        )?))
    }
}
