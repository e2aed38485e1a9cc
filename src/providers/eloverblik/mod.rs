//! Energinet's ElOverblik (DataHub) API: Danish electricity metering points, their hourly or
//! quarter-hourly time series, and the grid tariffs and subscriptions charged on them.
//!
//! One [`EloverblikProvider`] serves one `[[eloverblik]]` account. The files split the work:
//! `settings` is the account's configuration section, `token` buys the data access token,
//! `client` sends authorised calls, `dto` is the wire format, `metering_points` turns points into
//! meters, `windows` plans request dates, `timeseries` normalises a market document into interval
//! readings, `pass` tracks one read over many meters, `charges` prices them, `pricing` asks
//! [Energi Data Service](crate::energidataservice) for an account's points (cost, compensation,
//! the live price sensors), and `schedule` decides when a data call is worth making.

mod charges;
mod client;
pub(crate) mod dto;
mod error_body;
mod metering_points;
mod pass;
mod pricing;
mod provider;
mod schedule;
mod settings;
pub mod timeseries;
mod token;
mod windows;

pub use provider::{rate_limiter, retry_policy, EloverblikProvider, Options};
pub(crate) use settings::default_base_url;
pub use settings::{default_energidataservice_url, EloverblikApi, Settings, KIND};
pub use windows::TZ;

use crate::providers::kit::rules;
use crate::providers::registry::{AddonAccounts, BuildContext, Registered, Registration};
use crate::providers::{ProviderError, SharedProvider};

/// This provider in [`crate::providers::KINDS`].
pub(crate) const REGISTRATION: Registered<Eloverblik> = Registered::new();

/// The registration of this provider (see [`crate::providers::registry`]).
pub(crate) struct Eloverblik;

impl Registration for Eloverblik {
    const KIND: &'static str = KIND;
    type Settings = Settings;
    const ADDON: Option<AddonAccounts> = Some(AddonAccounts {
        lists: &[],
        fields: &[
            "refresh_token",
            "metering_points",
            "name",
            "base_url",
            "prices",
            "price_area",
            "price_resolution",
            "co2",
            "vat",
            "supplier_markup",
            "supplier_fee",
            "energidataservice_url",
        ],
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
        if let Err(e) = rules::http_url(&settings.energidataservice_url) {
            problem("energidataservice_url", e);
        }
        if !(0.0..=100.0).contains(&settings.vat) {
            problem(
                "vat",
                format!(
                    "{} is not a percentage between 0 and 100 (Danish VAT is 25)",
                    settings.vat
                ),
            );
        } else if settings.vat > 0.0 && settings.vat < 1.0 {
            problem(
                "vat",
                format!(
                    "{} looks like a fraction; vat is in percent: write 25 for 25 %",
                    settings.vat
                ),
            );
        }
        for (field, amount) in [
            ("supplier_markup", settings.supplier_markup),
            ("supplier_fee", settings.supplier_fee),
        ] {
            if !amount.is_finite() || amount.abs() > 100.0 {
                problem(
                    field,
                    format!("{amount} is not an amount of DKK per kWh (e.g. 0.05 for 5 øre)"),
                );
            }
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
            settings, label, context,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energidataservice::{Terms, DEFAULT_BASE_URL};
    use crate::model::Direction;
    use crate::secret::Secret;

    fn settings(vat: f64, url: &str) -> Settings {
        Settings {
            name: None,
            refresh_token: Secret::new("x"),
            base_url: default_base_url(),
            api: EloverblikApi::Customer,
            metering_points: Vec::new(),
            charges: true,
            prices: true,
            price_area: None,
            price_resolution: None,
            co2: true,
            vat,
            supplier_markup: 0.05,
            supplier_fee: f64::NAN,
            energidataservice_url: url.into(),
        }
    }

    fn problems(s: &Settings) -> Vec<(String, String)> {
        let mut out = Vec::new();
        Eloverblik::check(s, &mut |field, message| out.push((field.to_owned(), message)));
        out
    }

    #[test]
    fn price_settings_are_checked_and_vat_is_in_percent() {
        let found = problems(&settings(0.25, "api.energidataservice.dk"));
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["energidataservice_url", "vat", "supplier_fee"]);
        assert!(found[1].1.contains("write 25 for 25 %"), "{}", found[1].1);
        assert!(problems(&settings(125.0, DEFAULT_BASE_URL))[0]
            .1
            .contains("between 0 and 100"));
        let mut ok = settings(25.0, DEFAULT_BASE_URL);
        ok.supplier_fee = 0.02;
        assert!(problems(&ok).is_empty());
        assert_eq!(
            ok.terms(Direction::Consumption),
            Terms::Consumption {
                vat: 0.25,
                markup: 0.05
            }
        );
        assert_eq!(ok.terms(Direction::Production), Terms::Production { fee: 0.02 });
    }
}
