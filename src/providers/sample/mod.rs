//! Built-in sample data: two meters (electricity and gas) with deterministic hourly consumption.
//! Drives `demo`, the tests, and a first try of the bridge without any credentials
//! (`[[sample]]`). It registers like any other provider.

mod provider;
mod settings;

pub use provider::sample_price;

pub(crate) use provider::SampleProvider;
pub(crate) use settings::{Settings, KIND};

use crate::providers::registry::{BuildContext, Registered, Registration};
use crate::providers::{ProviderError, SharedProvider};

/// This provider in [`crate::providers::KINDS`].
pub(crate) const REGISTRATION: Registered<Sample> = Registered::new();

/// The registration of this provider (see [`crate::providers::registry`]).
pub(crate) struct Sample;

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
