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
pub mod dto;
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
pub use settings::{default_base_url, default_energidataservice_url, default_vat, Eloverblik, EloverblikApi, Settings};

/// This provider in [`crate::providers::KINDS`].
pub const REGISTRATION: crate::providers::registry::Registered<Eloverblik> =
    crate::providers::registry::Registered::new();

/// Machine name: topic segment, unique-id prefix, log field.
pub const KIND: &str = "eloverblik";

/// Request dates are Danish local days; the API answers in UTC.
pub const TZ: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;

/// Where a refresh token is made; every authentication error tells the user this.
pub(crate) const NEW_TOKEN_HINT: &str =
    "make a new refresh token at eloverblik.dk (Datadeling → Opret token) and set it as eloverblik.refresh_token";
