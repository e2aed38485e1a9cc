//! `[[eloverblik]]`: one ElOverblik account as the user configures it, the checks serde cannot
//! express, and how the add-on offers it.

use serde::Deserialize;

use crate::de::{lenient_opt_string, lenient_strings, yes};
use crate::energidataservice::{PriceArea, PriceResolution, Terms, DEFAULT_BASE_URL};
use crate::model::Direction;
use crate::secret::Secret;

/// Machine name: topic segment, unique-id prefix, log field.
pub const KIND: &str = "eloverblik";

/// Where a refresh token is made; every authentication error tells the user this.
pub(crate) const NEW_TOKEN_HINT: &str =
    "make a new refresh token at eloverblik.dk (Datadeling → Opret token) and set it as eloverblik.refresh_token";

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
    /// `hour` or `quarter`: the slots of the live price sensors; by default each metering
    /// point's own resolution (PT15M: quarter, else hour). The cost statistic always prices
    /// each reading at its own resolution.
    #[serde(default)]
    pub price_resolution: Option<PriceResolution>,
    /// A CO2 intensity sensor per price area in use, from Energi Data Service (only where
    /// `prices` is on).
    #[serde(default = "yes")]
    pub co2: bool,
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
pub(crate) fn default_vat() -> f64 {
    25.0
}

pub fn default_energidataservice_url() -> String {
    DEFAULT_BASE_URL.into()
}

impl Settings {
    /// What the supplier side of a consumed or produced kWh is, from the configured amounts.
    pub(crate) fn terms(&self, direction: Direction) -> Terms {
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

pub(crate) fn default_base_url() -> String {
    "https://api.eloverblik.dk/customerapi".into()
}
