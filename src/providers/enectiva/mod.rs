//! Enectiva (Czech energy management platform), through its JSON:API: meters with cumulative
//! register readings, buildings ("entities"), and monthly deltas.

mod api;
mod deltas;
mod error_body;
mod import;
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

pub use import::{ImportClient, ImportOptions};
pub use provider::{EnectivaProvider, Options};
pub use settings::{Settings, KIND};

use crate::providers::kit::rules;
use crate::providers::registry::{AddonAccounts, AddonList, BuildContext, Registered, Registration};
use crate::providers::upload::{UploadSeries, Uploads};
use crate::providers::{ProviderError, SharedProvider};
use crate::secret::Secret;

/// This provider in [`crate::providers::KINDS`].
pub(crate) const REGISTRATION: Registered<Enectiva> = Registered::new();

/// The registration of this provider (see [`crate::providers::registry`]).
pub(crate) struct Enectiva;

impl Registration for Enectiva {
    const KIND: &'static str = KIND;
    type Settings = Settings;
    const ADDON: Option<AddonAccounts> = Some(AddonAccounts {
        fields: &["customer_uuid", "login_token", "import_token", "name", "base_url"],
        lists: &[AddonList {
            option: "enectiva_upload",
            key: "upload",
            fields: &[
                "entity",
                "topic",
                "value",
                "import_id",
                "suit",
                "type",
                "unit",
                "interval",
            ],
        }],
        describe: "an Enectiva account (customer UUID and login token or import token)",
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
        let given = |token: &Option<Secret>| token.as_ref().is_some_and(|t| !t.is_empty());
        match (&settings.login_token, &settings.import_token) {
            (None, None) => problem(
                "login_token",
                "is required (or import_token, for an account that only uploads); Enectiva gives both on its API dashboard".into(),
            ),
            (login, import) => {
                if login.is_some() && !given(login) {
                    problem(
                        "login_token",
                        "must not be empty; Enectiva gives it with the API access for your customer account".into(),
                    );
                }
                if import.is_some() && !given(import) {
                    problem(
                        "import_token",
                        "must not be empty; create an import token on Enectiva's API dashboard".into(),
                    );
                }
            }
        }
        if !settings.upload.is_empty() && settings.import_token.is_none() {
            problem(
                "import_token",
                "is required for upload series; create an import token on Enectiva's API dashboard".into(),
            );
        }
        if settings.import_requests_per_minute == 0 {
            problem("import_requests_per_minute", "must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (index, series) in settings.upload.iter().enumerate() {
            series.check(&mut |field, message| problem(&format!("upload[{index}].{field}"), message));
            if !seen.insert((series.import_id.as_str(), series.suit.as_str(), series.kind)) {
                problem(
                    &format!("upload[{index}].import_id"),
                    format!(
                        "{:?} (suit {:?}) is uploaded twice; each series once",
                        series.import_id, series.suit
                    ),
                );
            }
        }
        if let Err(e) = rules::http_url(&settings.base_url) {
            problem("base_url", e);
        }
    }

    fn upload_series(settings: &Settings) -> &[UploadSeries] {
        &settings.upload
    }

    fn reads(settings: &Settings) -> bool {
        settings.login_token.is_some()
    }

    fn uploads(settings: &Settings, label: String, context: &BuildContext) -> Result<Option<Uploads>, ProviderError> {
        let Some(token) = settings.import_token.clone().filter(|_| !settings.upload.is_empty()) else {
            return Ok(None);
        };
        let importer = ImportClient::new(settings, token, label, Default::default())?.sharing(settings, context);
        Ok(Some(Uploads {
            importer: std::sync::Arc::new(importer),
            series: settings.upload.clone(),
        }))
    }

    fn build(settings: &Settings, label: String, _context: &BuildContext) -> Result<SharedProvider, ProviderError> {
        Ok(std::sync::Arc::new(EnectivaProvider::new(
            settings,
            label,
            Default::default(),
        )?))
    }
}
