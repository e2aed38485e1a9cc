//! `[[eloverblik]]`: one ElOverblik account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use super::{EloverblikProvider, KIND};
use crate::de::{lenient_opt_string, lenient_strings, yes};
use crate::energidataservice::{PriceArea, Terms, DEFAULT_BASE_URL};
use crate::model::Direction;
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
    /// Prices from Energi Data Service: the cost (consumption) and compensation (production)
    /// statistics and the live price sensors.
    #[serde(default = "yes")]
    pub prices: bool,
    /// `DK1` or `DK2`; by default each metering point's zone follows from its postcode.
    #[serde(default)]
    pub price_area: Option<PriceArea>,
    /// VAT in percent (25 = 25 %), on spot price and tariffs.
    #[serde(default = "default_vat")]
    pub vat: f64,
    /// The supplier's own mark-up in DKK per kWh consumed, VAT included (as household price
    /// lists show it); added after VAT.
    #[serde(default)]
    pub supplier_markup: f64,
    /// The supplier's fee in DKK per kWh produced, deducted from the spot price.
    #[serde(default)]
    pub supplier_fee: f64,
    #[serde(default = "default_energidataservice_url")]
    pub energidataservice_url: String,
}

/// Danish VAT, in percent.
pub fn default_vat() -> f64 {
    25.0
}

pub fn default_energidataservice_url() -> String {
    DEFAULT_BASE_URL.into()
}

impl Settings {
    /// What the supplier side of a consumed or produced kWh is, from the configured amounts.
    pub fn terms(&self, direction: Direction) -> Terms {
        match direction {
            Direction::Consumption => Terms::Consumption {
                vat: self.vat / 100.0,
                markup: self.supplier_markup,
            },
            Direction::Production => Terms::Production { fee: self.supplier_fee },
        }
    }
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
        lists: &[],
        fields: &[
            "refresh_token",
            "metering_points",
            "name",
            "base_url",
            "prices",
            "price_area",
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
