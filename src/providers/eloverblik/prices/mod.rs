//! Electricity prices from Energi Data Service (Energinet's open data API), as a provider-neutral
//! [`PriceSeries`] beside a metering point's readings: what a consumed kWh cost, or what a
//! produced one earned, interval by interval.
//!
//! The facts it builds on:
//! - Spot prices are per bidding zone (DK1 west, DK2 east of the Great Belt), in DKK per MWh:
//!   hourly in `Elspotprices` up to 30 September 2025, quarter-hourly in `DayAheadPrices` from
//!   1 October 2025. Tomorrow's are published about 13:00 Danish time.
//! - Grid tariffs, system tariffs and the electricity tax are price lists in `DatahubPricelist`,
//!   one row per list with `ValidFrom`/`ValidTo` in Danish local time and 24 hourly prices (or
//!   one for the day) in DKK per kWh excluding VAT. A metering point's charges (ElOverblik's
//!   `owner` + `priceId`) are `GLN_Number` + `ChargeTypeCode` there.
//! - A consumed kWh costs `(spot + Σ tariffs) × (1 + VAT) + supplier mark-up`; a produced kWh
//!   earns `spot − supplier fee`. See [`Terms`].
//!
//! Not honoured: the reduced electricity tax for electric heating (see [`series`]'s note).
//!
//! Layout: `area` (the zones), `spot` (which dataset holds a day), `dto` (wire format), `client`
//! (the calls), `tariffs` (which list applies when), `series` (prices and costs), `cache`
//! (fetch each price about once), `error`; [`Prices`] ties them together.

mod area;
mod client;
mod dto;
mod error;
pub mod series;
mod spot;
mod tariffs;

pub use area::{PriceArea, UnknownArea};
pub use client::{retry_policy, ClientOptions, EnergiDataService, DEFAULT_BASE_URL, PRICELIST_FROM};
pub use error::PricesError;
pub use series::{cost, CostSummary, PriceBreakdown, Terms, DANISH_VAT};
pub use spot::{SpotPrice, DAY_AHEAD_FROM};
pub use tariffs::{ChargeKey, MissingCharge, Resolution, TariffHistory, TariffRow, TariffSet, TariffSum};

use super::TZ;
