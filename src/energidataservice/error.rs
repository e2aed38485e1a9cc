//! What can go wrong getting prices, said so that the user knows what failed, where, and what
//! to do about it.

use chrono::NaiveDate;

use super::area::PriceArea;
use crate::http::HttpError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PricesError {
    #[error("Energi Data Service: reading {dataset} for {area} (Danish days {from} up to {to}) failed: {source}{}", hint(.source))]
    Spot {
        dataset: &'static str,
        area: PriceArea,
        from: NaiveDate,
        /// Exclusive.
        to: NaiveDate,
        source: HttpError,
    },
    #[error("Energi Data Service: reading DatahubPricelist for {charges} failed: {source}{}", hint(.source))]
    Pricelist { charges: String, source: HttpError },
    #[error("Energi Data Service: reading {dataset} for {area} failed: {source}{}; the CO2 intensity sensor shows its last value until the next refresh", hint(.source))]
    Co2 {
        dataset: &'static str,
        area: PriceArea,
        source: HttpError,
    },
    #[error("Energi Data Service: {0}")]
    Client(HttpError),
    #[error("price cache: {0}")]
    State(#[from] StateError),
    #[error("price terms: {0}; check the supplier settings")]
    Terms(String),
    #[error("Energi Data Service: no answer within {seconds} s; the cost and the price sensor catch up later")]
    TimedOut { seconds: u64 },
    #[error("Energi Data Service: the price question stopped: {0}")]
    Stopped(String),
}

/// Energi Data Service is public and takes no credentials, so a refusal or an unreadable answer
/// means the request or the address is wrong, not the user's account.
fn hint(error: &HttpError) -> &'static str {
    match error {
        HttpError::Rejected { .. } => {
            "; the API refused the request: if a custom Energi Data Service address is configured, check it, \
             otherwise please report this as a bug"
        }
        HttpError::Unauthorized { .. } => {
            "; Energi Data Service needs no login, so something else answered: check the configured address \
             and any proxy"
        }
        HttpError::Decode { .. } => FOREIGN_FORMAT,
        e @ HttpError::Exhausted { .. } if e.garbled() => FOREIGN_FORMAT,
        HttpError::Exhausted { .. } | HttpError::Client { .. } => "",
    }
}

const FOREIGN_FORMAT: &str =
    "; the answer is not Energi Data Service's format: check the configured address and any proxy";
