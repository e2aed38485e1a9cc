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
mod token;
mod values;

pub use error_body::parse_error_body;
pub use import::{ImportClient, ImportOptions};
pub use provider::{EnectivaProvider, Options};
pub use settings::{default_base_url, Enectiva, Settings};

/// This provider in [`crate::providers::KINDS`].
pub const REGISTRATION: crate::providers::registry::Registered<Enectiva> =
    crate::providers::registry::Registered::new();

/// The provider's machine name: part of every topic, unique id and error.
pub const KIND: &str = "enectiva";

/// Every request sends it as `Accept`, and requests with a body as `Content-Type` (else 406 / 415).
pub const JSON_API: &str = "application/vnd.api+json";

#[cfg(test)]
mod test_meter {
    use crate::model::{DeviceInfo, Direction, Medium, Meter, Unit};

    /// A consumption meter `4711` in Prague, as the unit tests of this provider need one.
    pub fn meter(medium: Medium, unit: Unit) -> Meter {
        Meter {
            provider: super::KIND.into(),
            id: "4711".into(),
            name: "m".into(),
            medium,
            direction: Direction::Consumption,
            unit,
            cumulative: true,
            timezone: chrono_tz::Europe::Prague,
            device: DeviceInfo::default(),
        }
    }
}
