//! Energi Data Service (Energinet's open data API): public Danish grid data, for any provider
//! whose meters are in Denmark. Today that is electricity prices, as a provider-neutral
//! [`PriceSeries`] beside a metering point's readings: what a consumed kWh cost, or what a
//! produced one earned, interval by interval, and the live price sensors. It needs no account
//! and knows no provider: a provider names a point's price area and charges ([`ChargeKey`]) and
//! asks [`PriceService`].
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
//! Economy: prices are cached in the state store. In the steady state that costs, per price
//! area, one spot call a day (tomorrow's prices, after their 13:00 publication) and one
//! `DatahubPricelist` call a day per set of charges; a past day is never asked twice.
//!
//! CO2: the grid's CO2 intensity per area (`CO2Emis`, `CO2EmisProg`), read every
//! [`CO2_REFRESH`] while the bridge runs: one call per dataset, about 96 a day each per area.
//!
//! Layout: `area` (the zones), `spot` (which dataset holds a day), `dto` (wire format), `client`
//! (the calls), `tariffs` (which list applies when), `series` (prices and costs), `cache`
//! (fetch each price about once), `co2` (the CO2 intensity sensor), `shape` (the attributes
//! price tools read), `error`; [`Prices`] ties them together; `live` makes the price
//! sensors and `service` is what a poll asks (time budget, pause after a failure).

mod area;
mod cache;
mod client;
mod co2;
mod dto;
mod error;
mod live;
mod prices;
pub(crate) mod series;
mod service;
mod shape;
mod spot;
mod tariffs;
#[cfg(test)]
mod tests;

pub(crate) use area::PriceArea;
pub(crate) use client::DEFAULT_BASE_URL;
pub(crate) use co2::CO2_REFRESH;
pub(crate) use co2::{co2_value, Co2Data, Co2Row};
pub(crate) use error::PricesError;
pub(crate) use prices::Prices;
pub(crate) use series::{PriceBreakdown, Terms};
pub(crate) use service::{PriceService, PAUSE};
pub use shape::PriceResolution;
pub(crate) use shape::{timed_sensor, Shape, Slot};
pub(crate) use tariffs::{ChargeKey, MissingCharge, TariffSet};

/// The service's times (`TimeDK`, `ValidFrom`, a price list's hours) are Danish local time.
pub(crate) const TZ: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;
