//! Enectiva (Czech energy management platform), through its JSON:API: meters with cumulative
//! register readings, buildings ("entities"), and monthly deltas.

mod api;
mod deltas;
mod error_body;
mod intervals;
mod jsonapi;
mod meters;
mod paging;
mod provider;
mod readings;
mod settings;
#[cfg(test)]
mod test_meter;
mod token;
mod values;

pub use provider::{EnectivaProvider, Options};
pub use settings::{Settings, KIND};

use crate::providers::kit::rules;
use crate::providers::registry::{AddonAccounts, BuildContext, Registered, Registration};
use crate::providers::{ProviderError, SharedProvider};

/// This provider in [`crate::providers::KINDS`].
pub(crate) const REGISTRATION: Registered<Enectiva> = Registered::new();

/// The registration of this provider (see [`crate::providers::registry`]).
pub(crate) struct Enectiva;

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
