//! An account's side of [Energi Data Service](crate::energidataservice): which price area and
//! charges a metering point has, and the supplier terms from the settings. The service keeps
//! itself from delaying the meter data (see [`PriceService`]).
//!
//! What it gives the bridge: the [`PriceSeries`] of a window (cost for consumption points,
//! compensation for production points), and the live price sensors of a consumption point (the
//! all-in price and the spot price, each with a timetable of today's and tomorrow's intervals).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::dto::{Charges, Tariff};
use super::{Settings, KIND};
use crate::clock::SharedClock;
use crate::energidataservice::{ChargeKey, PriceArea, PriceResolution, PriceService, PricesError, PAUSE, TZ};
use crate::http::Sleeper;
use crate::model::{Direction, Meter, MeterValue, PriceSeries, TimeRange};
use crate::providers::{CheckLine, ProviderError};
use crate::state::StateStore;

/// One account's prices.
pub(crate) struct Pricing {
    service: PriceService,
    area: Option<PriceArea>,
    settings: Settings,
    /// Charges already reported as missing, so that each is logged once, not every poll.
    reported: Mutex<HashSet<String>>,
    /// The last live values per meter, shown while the service is paused.
    live: Mutex<HashMap<String, Vec<MeterValue>>>,
    /// The last CO2 intensity sensor per area and resolution, shown while its datasets fail.
    co2_live: Mutex<HashMap<(PriceArea, PriceResolution), MeterValue>>,
}

impl Pricing {
    pub(crate) fn new(
        settings: &Settings,
        store: StateStore,
        clock: SharedClock,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Pricing, ProviderError> {
        let service =
            PriceService::new(&settings.energidataservice_url, store, clock, sleeper).map_err(to_provider_error)?;
        Ok(Pricing {
            service,
            area: settings.price_area,
            settings: settings.clone(),
            reported: Mutex::new(HashSet::new()),
            live: Mutex::new(HashMap::new()),
            co2_live: Mutex::new(HashMap::new()),
        })
    }

    /// The configured area, else the point's own.
    pub(crate) fn area(&self, point_area: Option<PriceArea>) -> Option<PriceArea> {
        self.area.or(point_area)
    }

    /// The prices of `meter` over `range`; `None` while the service is paused after a failure or
    /// when the point's area is unknown. `charges` is the point's charges (consumption only).
    pub(crate) async fn series(
        &self,
        meter: &Meter,
        area: Option<PriceArea>,
        charges: Option<&Charges>,
        range: TimeRange,
    ) -> Result<Option<PriceSeries>, ProviderError> {
        let Some(area) = self.area(area) else {
            self.report_once(&format!("area {}", meter.id), || {
                format!(
                    "metering point {}: no price area (its postcode is not a Danish one); set price_area = \"DK1\" \
                     or \"DK2\" in its [[eloverblik]] account to get its cost",
                    meter.id
                )
            });
            return Ok(None);
        };
        let keys = match meter.direction {
            Direction::Consumption => match self.keys(meter, charges) {
                Some(keys) => keys,
                None => return Ok(None),
            },
            Direction::Production => Vec::new(),
        };
        let terms = self.settings.terms(meter.direction);
        let answer = self
            .service
            .series(area, keys, range, terms)
            .await
            .map_err(to_provider_error)?;
        Ok(answer.map(|(series, missing)| {
            self.report_missing(meter, charges, &missing);
            series
        }))
    }

    /// The all-in price and the spot price of a consumption point, now, with today's and
    /// tomorrow's slots at the configured resolution, else at the point's own. While the
    /// service is paused, the last values stand in.
    pub(crate) async fn live_values(
        &self,
        meter: &Meter,
        area: Option<PriceArea>,
        charges: Option<&Charges>,
        point_resolution: PriceResolution,
    ) -> Vec<MeterValue> {
        if meter.direction != Direction::Consumption {
            return Vec::new();
        }
        let (Some(area), Some(keys)) = (self.area(area), self.keys(meter, charges)) else {
            return Vec::new();
        };
        let terms = self.settings.terms(Direction::Consumption);
        let resolution = self.settings.price_resolution.unwrap_or(point_resolution);
        let fresh = match self.service.live_values(area, keys, terms, resolution).await {
            Ok(Some((values, missing))) => {
                self.report_missing(meter, charges, &missing);
                Some(values)
            }
            Ok(None) | Err(_) => None,
        };
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match fresh {
            Some(values) => {
                live.insert(meter.id.clone(), values.clone());
                values
            }
            None => live.get(&meter.id).cloned().unwrap_or_default(),
        }
    }

    /// Whether the CO2 intensity sensor is on.
    pub(crate) fn co2_enabled(&self) -> bool {
        self.settings.co2
    }

    /// The CO2 intensity sensor of the point's area, its forecast at the configured resolution,
    /// else at `default` (the account's, so that every meter of an area gives the same sensor).
    /// While the datasets fail, the last value stands in.
    pub(crate) async fn co2_value(
        &self,
        point_area: Option<PriceArea>,
        default: PriceResolution,
    ) -> Option<MeterValue> {
        let area = self.area(point_area)?;
        let resolution = self.settings.price_resolution.unwrap_or(default);
        let fresh = self.service.co2_value(area, resolution).await.ok().flatten();
        let mut last = self.co2_live.lock().unwrap_or_else(PoisonError::into_inner);
        match fresh {
            Some(value) => {
                last.insert((area, resolution), value.clone());
                Some(value)
            }
            None => last.get(&(area, resolution)).cloned(),
        }
    }

    /// What `check` shows: the price area and where it comes from; for consumption each tariff
    /// (owner, code, name) and whether `DatahubPricelist` has its price history; for production
    /// what a kWh earns.
    pub(crate) async fn check_lines(
        &self,
        point_area: Option<PriceArea>,
        charges: Option<Result<Charges, ProviderError>>,
    ) -> Vec<CheckLine> {
        let mut lines = Vec::new();
        match (self.area, point_area) {
            (Some(area), _) => lines.push(CheckLine::info(format!(
                "price area: {area} (price_area in the config)"
            ))),
            (None, Some(area)) => lines.push(CheckLine::info(format!("price area: {area} (from the postcode)"))),
            (None, None) => {
                lines.push(CheckLine::problem(
                    "price area: unknown (no Danish postcode); set price_area = \"DK1\" or \"DK2\"",
                ));
                return lines;
            }
        }
        if let (true, Some(area)) = (self.settings.co2, self.area(point_area)) {
            lines.push(self.co2_line(area).await);
        }
        let charges = match charges {
            None => {
                lines.push(CheckLine::info(format!(
                    "compensation: the spot price less a supplier fee of {} DKK/kWh",
                    self.settings.supplier_fee
                )));
                return lines;
            }
            Some(Err(e)) => {
                lines.push(CheckLine::problem(format!("charges: {e}")));
                return lines;
            }
            Some(Ok(charges)) => charges,
        };
        let tariffs = charges.tariffs.as_deref().unwrap_or_default();
        if tariffs.is_empty() {
            lines.push(CheckLine::info("charges: no tariffs listed"));
            return lines;
        }
        let keys: Vec<ChargeKey> = tariffs.iter().filter_map(charge_key).collect();
        let found = match self.service.tariffs(keys).await {
            Ok(Some(set)) => Some(set),
            Ok(None) => {
                lines.push(CheckLine::problem(format!(
                    "Energi Data Service: paused after a failure (asked again in {} minutes)",
                    PAUSE.num_minutes()
                )));
                None
            }
            Err(e) => {
                lines.push(CheckLine::problem(e.to_string()));
                None
            }
        };
        for tariff in tariffs {
            let what = format!(
                "tariff {} {} {:?}",
                tariff.owner.as_deref().unwrap_or("?"),
                tariff.price_id.as_deref().unwrap_or("(no priceId)"),
                tariff.name.as_deref().unwrap_or("?")
            );
            let line = match (charge_key(tariff), &found) {
                (None, _) => {
                    CheckLine::problem(format!("{what}: no priceId, so its price history cannot be looked up"))
                }
                (Some(_), None) => CheckLine::info(format!("{what}: price history not checked")),
                (Some(key), Some(set)) => match set.histories().iter().find(|h| h.charge == key) {
                    Some(history) => CheckLine::info(format!(
                        "{what}: price history found in Energi Data Service ({} price lists)",
                        history.rows().len()
                    )),
                    None => CheckLine::problem(format!("{what}: no price history in Energi Data Service")),
                },
            };
            lines.push(line);
        }
        lines
    }

    /// Whether the CO2 datasets answer for `area`.
    async fn co2_line(&self, area: PriceArea) -> CheckLine {
        match self.service.co2_check(area).await {
            Ok(Some(data)) => match data.realised {
                Some(newest) => CheckLine::info(format!(
                    "CO2 intensity ({area}): CO2Emis and CO2EmisProg reachable; newest {} g/kWh at {}, {} forecast rows",
                    newest.value,
                    newest.start.with_timezone(&TZ).format("%Y-%m-%d %H:%M"),
                    data.forecast.len()
                )),
                None => CheckLine::problem(format!(
                    "CO2 intensity ({area}): CO2Emis reachable but has no rows since yesterday; the sensor shows \
                     unknown until it has"
                )),
            },
            Ok(None) => CheckLine::problem(format!(
                "CO2 intensity ({area}): Energi Data Service paused after a failure (asked again in {} minutes)",
                PAUSE.num_minutes()
            )),
            Err(e) => CheckLine::problem(format!("CO2 intensity ({area}): {e}")),
        }
    }

    /// The point's charges as price list keys; `None` (logged once) when a tariff cannot be
    /// matched, because a cost without one of its tariffs would be wrong.
    fn keys(&self, meter: &Meter, charges: Option<&Charges>) -> Option<Vec<ChargeKey>> {
        let tariffs = charges?.tariffs.as_deref().unwrap_or_default();
        let mut keys = Vec::new();
        for tariff in tariffs {
            match charge_key(tariff) {
                Some(key) => keys.push(key),
                None => {
                    self.report_once(&format!("nokey {} {:?}", meter.id, tariff.name), || {
                        format!(
                            "metering point {}: tariff {:?} of owner {} has no priceId (the third-party API does not \
                             give one), so its price history cannot be looked up; no cost is imported for this \
                             point",
                            meter.id,
                            tariff.name.as_deref().unwrap_or("?"),
                            tariff.owner.as_deref().unwrap_or("?")
                        )
                    });
                    return None;
                }
            }
        }
        Some(keys)
    }

    fn report_missing(&self, meter: &Meter, charges: Option<&Charges>, missing: &[ChargeKey]) {
        for key in missing {
            let name = charges
                .and_then(|c| c.tariffs.as_deref())
                .unwrap_or_default()
                .iter()
                .find(|t| charge_key(t).as_ref() == Some(key))
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            self.report_once(&format!("missing {} {key}", meter.id), || {
                format!(
                    "metering point {}: charge {name:?} (owner {}, code {}) has no price history in Energi Data \
                     Service's DatahubPricelist; the cost of the hours it applies to is not imported",
                    meter.id, key.owner_gln, key.code
                )
            });
        }
    }

    fn report_once(&self, key: &str, message: impl FnOnce() -> String) {
        if self
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned())
        {
            tracing::warn!("{}", message());
        }
    }
}

/// ElOverblik's `owner` + `priceId` are `GLN_Number` + `ChargeTypeCode` in the price lists.
fn charge_key(tariff: &Tariff) -> Option<ChargeKey> {
    let owner = tariff.owner.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    let code = tariff.price_id.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    Some(ChargeKey::new(owner, code))
}

fn to_provider_error(e: PricesError) -> ProviderError {
    ProviderError::Prices {
        provider: KIND,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tariff_without_a_price_id_has_no_key() {
        let tariff = |price_id: Option<&str>| Tariff {
            name: Some("Nettarif C".into()),
            owner: Some("5790001089030".into()),
            price_id: price_id.map(str::to_owned),
            valid_from_date: None,
            valid_to_date: None,
            period_type: Some("PT1H".into()),
            prices: None,
        };
        assert_eq!(
            charge_key(&tariff(Some(" B2D "))),
            Some(ChargeKey::new("5790001089030", "B2D"))
        );
        assert_eq!(charge_key(&tariff(None)), None);
    }
}
