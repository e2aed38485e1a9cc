//! Energi Data Service's wire format: `{"total": N, "records": [...]}` with the dataset's columns
//! as keys. Read leniently: unknown columns are ignored, numbers may be `null` or strings, and a
//! record that cannot be used is skipped with a warning naming it, so one bad row never costs
//! a whole answer.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::area::PriceArea;
use super::co2::Co2Row;
use super::spot::{SpotDataset, SpotPrice};
use super::tariffs::{ChargeKey, Resolution, TariffRow};
use super::TZ;

/// The answer of `GET /dataset/{name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) total: Option<u64>,
    /// Kept as raw values so that one record of an unexpected shape is skipped, not fatal.
    pub(crate) records: Vec<Value>,
}

/// The records that deserialise as `T`; the others are logged and skipped.
pub(crate) fn typed_records<T: DeserializeOwned>(dataset: &str, records: Vec<Value>) -> Vec<T> {
    records
        .into_iter()
        .enumerate()
        .filter_map(|(index, raw)| match serde_json::from_value::<T>(raw.clone()) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(dataset, index, record = %raw, "skipping a record that cannot be read: {e}");
                None
            }
        })
        .collect()
}

/// A `DayAheadPrices` row. Prices are DKK per MWh.
#[derive(Debug, Deserialize)]
pub(crate) struct DayAheadRecord {
    #[serde(rename = "TimeUTC", default, deserialize_with = "opt_text")]
    pub(crate) time_utc: Option<String>,
    #[serde(rename = "TimeDK", default, deserialize_with = "opt_text")]
    pub(crate) time_dk: Option<String>,
    #[serde(rename = "PriceArea", default, deserialize_with = "opt_text")]
    pub(crate) price_area: Option<String>,
    #[serde(rename = "DayAheadPriceDKK", default, deserialize_with = "opt_number")]
    pub(crate) price_dkk_per_mwh: Option<f64>,
}

/// An `Elspotprices` row. Prices are DKK per MWh.
#[derive(Debug, Deserialize)]
pub(crate) struct ElspotRecord {
    #[serde(rename = "HourUTC", default, deserialize_with = "opt_text")]
    pub(crate) hour_utc: Option<String>,
    #[serde(rename = "HourDK", default, deserialize_with = "opt_text")]
    pub(crate) hour_dk: Option<String>,
    #[serde(rename = "PriceArea", default, deserialize_with = "opt_text")]
    pub(crate) price_area: Option<String>,
    #[serde(rename = "SpotPriceDKK", default, deserialize_with = "opt_number")]
    pub(crate) price_dkk_per_mwh: Option<f64>,
}

/// What both spot datasets have in common.
pub(crate) trait SpotRecord: DeserializeOwned {
    const DATASET: SpotDataset;
    fn time_utc(&self) -> Option<&str>;
    fn time_dk(&self) -> Option<&str>;
    fn price_area(&self) -> Option<&str>;
    fn price_dkk_per_mwh(&self) -> Option<f64>;
}

impl SpotRecord for DayAheadRecord {
    const DATASET: SpotDataset = SpotDataset::DayAhead;
    fn time_utc(&self) -> Option<&str> {
        self.time_utc.as_deref()
    }
    fn time_dk(&self) -> Option<&str> {
        self.time_dk.as_deref()
    }
    fn price_area(&self) -> Option<&str> {
        self.price_area.as_deref()
    }
    fn price_dkk_per_mwh(&self) -> Option<f64> {
        self.price_dkk_per_mwh
    }
}

impl SpotRecord for ElspotRecord {
    const DATASET: SpotDataset = SpotDataset::Elspot;
    fn time_utc(&self) -> Option<&str> {
        self.hour_utc.as_deref()
    }
    fn time_dk(&self) -> Option<&str> {
        self.hour_dk.as_deref()
    }
    fn price_area(&self) -> Option<&str> {
        self.price_area.as_deref()
    }
    fn price_dkk_per_mwh(&self) -> Option<f64> {
        self.price_dkk_per_mwh
    }
}

/// The usable spot prices of `area` among `records`, in DKK per kWh. Rows of other areas are
/// dropped quietly (a filter the server ignored must not mix zones); unusable rows with a warning.
pub(crate) fn spot_prices<R: SpotRecord>(records: Vec<Value>, area: PriceArea) -> Vec<SpotPrice> {
    let dataset = R::DATASET.name();
    typed_records::<R>(dataset, records)
        .into_iter()
        .filter(|r| {
            r.price_area()
                .is_some_and(|a| a.trim().eq_ignore_ascii_case(area.as_str()))
        })
        .filter_map(|r| {
            let when = r.time_dk().or(r.time_utc()).unwrap_or("?").to_owned();
            let Some(start) = r.time_utc().and_then(parse_utc) else {
                tracing::warn!(dataset, %area, time = %when, "skipping a spot price without a readable UTC time");
                return None;
            };
            let Some(per_mwh) = r.price_dkk_per_mwh().filter(|p| p.is_finite()) else {
                tracing::warn!(dataset, %area, time = %when, "skipping a spot price without a DKK price");
                return None;
            };
            Some(SpotPrice {
                start,
                end: start + R::DATASET.resolution(),
                price: per_mwh / 1000.0,
            })
        })
        .collect()
}

/// A `CO2Emis` (realised) or `CO2EmisProg` (forecast) row: the grams of CO2 emitted per kWh
/// consumed in a price area, per 5 minutes.
#[derive(Debug, Deserialize)]
pub(crate) struct Co2Record {
    #[serde(rename = "Minutes5UTC", default, deserialize_with = "opt_text")]
    pub(crate) time_utc: Option<String>,
    #[serde(rename = "Minutes5DK", default, deserialize_with = "opt_text")]
    pub(crate) time_dk: Option<String>,
    #[serde(rename = "PriceArea", default, deserialize_with = "opt_text")]
    pub(crate) price_area: Option<String>,
    #[serde(rename = "CO2Emission", default, deserialize_with = "opt_number")]
    pub(crate) grams_per_kwh: Option<f64>,
}

/// The usable rows of `area` among `records` (5 minutes each), sorted by time; rows of other
/// areas are dropped quietly, unusable ones with a warning.
pub(crate) fn co2_rows(dataset: &str, records: Vec<Value>, area: PriceArea) -> Vec<Co2Row> {
    let mut rows: Vec<Co2Row> = typed_records::<Co2Record>(dataset, records)
        .into_iter()
        .filter(|r| {
            r.price_area
                .as_deref()
                .is_some_and(|a| a.trim().eq_ignore_ascii_case(area.as_str()))
        })
        .filter_map(|r| {
            let when = r.time_dk.as_deref().or(r.time_utc.as_deref()).unwrap_or("?").to_owned();
            match (r.time_utc.as_deref().and_then(parse_utc), r.grams_per_kwh) {
                (Some(start), Some(value)) => Some(Co2Row { start, value }),
                _ => {
                    tracing::warn!(dataset, %area, time = %when, "skipping a CO2 row without a UTC time or an emission");
                    None
                }
            }
        })
        .collect();
    rows.sort_by_key(|r| r.start);
    rows.dedup_by_key(|r| r.start);
    rows
}

/// A `DatahubPricelist` row: one price list of one charge, valid over `[ValidFrom, ValidTo)` in
/// Danish local time.
#[derive(Debug, Deserialize)]
pub(crate) struct PricelistRecord {
    #[serde(rename = "ChargeOwner", default, deserialize_with = "opt_text")]
    pub(crate) charge_owner: Option<String>,
    #[serde(rename = "GLN_Number", default, deserialize_with = "opt_text")]
    pub(crate) gln_number: Option<String>,
    #[serde(rename = "ChargeType", default, deserialize_with = "opt_text")]
    pub(crate) charge_type: Option<String>,
    #[serde(rename = "ChargeTypeCode", default, deserialize_with = "opt_text")]
    pub(crate) charge_type_code: Option<String>,
    #[serde(rename = "Note", default, deserialize_with = "opt_text")]
    pub(crate) note: Option<String>,
    #[serde(rename = "Description", default, deserialize_with = "opt_text")]
    pub(crate) description: Option<String>,
    #[serde(rename = "ValidFrom", default, deserialize_with = "opt_text")]
    pub(crate) valid_from: Option<String>,
    #[serde(rename = "ValidTo", default, deserialize_with = "opt_text")]
    pub(crate) valid_to: Option<String>,
    #[serde(rename = "VATClass", default, deserialize_with = "opt_text")]
    pub(crate) vat_class: Option<String>,
    #[serde(rename = "TaxIndicator", default, deserialize_with = "opt_flag")]
    pub(crate) tax_indicator: Option<bool>,
    #[serde(rename = "ResolutionDuration", default, deserialize_with = "opt_text")]
    pub(crate) resolution_duration: Option<String>,
    /// `Price1` .. `Price24` and any column added later.
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Value>,
}

/// DataHub's charge type of a tariff (D01 subscription, D02 fee). Subscriptions can share owner
/// and code with a tariff (N1's `B2D` is both), so the type must be checked.
pub(crate) const TARIFF: &str = "D03";

impl PricelistRecord {
    /// `PriceN` (1-based), when it holds a number.
    pub(crate) fn price(&self, n: usize) -> Option<f64> {
        number(self.other.get(&format!("Price{n}"))?)
    }

    /// The row as a tariff price list: `Ok(None)` for a subscription or fee (not a price per
    /// kWh), `Err` with the reason when the row cannot be used.
    pub(crate) fn into_row(self) -> Result<Option<TariffRow>, String> {
        if self.charge_type.as_deref().map(str::trim) != Some(TARIFF) {
            return Ok(None);
        }
        let owner = self.gln_number.clone().ok_or("no GLN_Number")?;
        let code = self.charge_type_code.clone().ok_or("no ChargeTypeCode")?;
        let raw_from = self.valid_from.as_deref().ok_or("no ValidFrom")?;
        let valid_from = parse_local(raw_from).ok_or_else(|| format!("ValidFrom {raw_from:?} is not a date-time"))?;
        let valid_to = match self.valid_to.as_deref() {
            None => None,
            Some(raw) => Some(parse_local(raw).ok_or_else(|| format!("ValidTo {raw:?} is not a date-time"))?),
        };
        let resolution = match self.resolution_duration.as_deref().map(str::trim) {
            Some("PT1H") => Resolution::Hourly,
            // ElOverblik writes `PT1D` where DataHub means `P1D`; accept both spellings.
            Some("P1D" | "PT1D") => Resolution::Daily,
            other => return Err(format!("resolution {other:?} is neither PT1H nor P1D")),
        };
        let count = match resolution {
            Resolution::Hourly => 24,
            Resolution::Daily => 1,
        };
        let prices: Vec<Option<f64>> = (1..=count).map(|n| self.price(n)).collect();
        if prices[0].is_none() {
            return Err("no Price1".into());
        }
        Ok(Some(TariffRow {
            charge: ChargeKey::new(owner, code),
            name: self.note.clone(),
            owner_name: self.charge_owner.clone(),
            description: self.description.clone(),
            vat_class: self.vat_class.clone(),
            valid_from,
            valid_to,
            resolution,
            prices,
            tax: self.tax_indicator.unwrap_or(false),
        }))
    }

    /// Owner, code and start, to name a row in a log line.
    pub(crate) fn label(&self) -> String {
        format!(
            "{} {} ({}) from {}",
            self.gln_number.as_deref().unwrap_or("?"),
            self.charge_type_code.as_deref().unwrap_or("?"),
            self.note.as_deref().unwrap_or("no name"),
            self.valid_from.as_deref().unwrap_or("?")
        )
    }
}

/// The usable tariff rows among `records`; unusable rows are logged and skipped.
pub(crate) fn tariff_rows(records: Vec<Value>) -> Vec<TariffRow> {
    const DATASET: &str = "DatahubPricelist";
    typed_records::<PricelistRecord>(DATASET, records)
        .into_iter()
        .filter_map(|record| {
            let label = record.label();
            match record.into_row() {
                Ok(row) => row,
                Err(reason) => {
                    tracing::warn!(dataset = DATASET, row = %label, "skipping a price list row: {reason}");
                    None
                }
            }
        })
        .collect()
}

/// A UTC time as the API writes it (`2025-10-26T22:45:00`, no offset); an explicit offset is
/// honoured.
pub(crate) fn parse_utc(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    parse_naive(raw).map(|t| t.and_utc())
}

/// A Danish local time as the API writes it (`2025-10-01T00:00:00`, no offset); an explicit
/// offset is converted to Danish wall-clock time.
pub(crate) fn parse_local(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&TZ).naive_local());
    }
    parse_naive(raw)
}

fn parse_naive(raw: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A number, a decimal string, or `null`/`""` (absent).
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(number))
}

/// Text, or a number where text was meant (a GLN or code written as a JSON number).
fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// `TaxIndicator` is `0`/`1` in the dataset; `true`/`false` and their strings are accepted too.
fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => n.as_f64().map(|x| x != 0.0),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn envelope(text: &str) -> Envelope {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn day_ahead_fixture_keeps_the_asked_area_in_dkk_per_kwh() {
        let e = envelope(include_str!(
            "../../tests/fixtures/energidataservice/dayaheadprices_2025-10-26.json"
        ));
        assert_eq!(e.total, Some(200));
        let dk1 = spot_prices::<DayAheadRecord>(e.records, PriceArea::DK1);
        assert_eq!(dk1.len(), 100);
        // The fixture lists newest first; the first DK1 row is 23:45 local (22:45 UTC), 460 DKK/MWh.
        assert_eq!(dk1[0].start, parse_utc("2025-10-26T22:45:00").unwrap());
        assert_eq!(dk1[0].end, parse_utc("2025-10-26T23:00:00").unwrap());
        assert!((dk1[0].price - 0.46).abs() < 1e-12);
    }

    #[test]
    fn elspot_fixture_is_hourly() {
        let e = envelope(include_str!(
            "../../tests/fixtures/energidataservice/elspotprices_2025-03-30.json"
        ));
        let prices = spot_prices::<ElspotRecord>(e.records, PriceArea::DK1);
        assert_eq!(prices.len(), 23);
        assert!(prices.iter().all(|p| p.end - p.start == chrono::Duration::hours(1)));
        assert!(spot_prices::<ElspotRecord>(
            envelope(include_str!(
                "../../tests/fixtures/energidataservice/elspotprices_2025-03-30.json"
            ))
            .records,
            PriceArea::DK2
        )
        .is_empty());
    }

    #[test]
    fn unusable_spot_rows_are_skipped_not_fatal() {
        let records = vec![
            json!({"TimeUTC": "2025-10-26T10:00:00", "PriceArea": "DK1", "DayAheadPriceDKK": -12.5}),
            json!({"TimeUTC": "2025-10-26T10:15:00", "PriceArea": "DK1", "DayAheadPriceDKK": null}),
            json!({"TimeUTC": "yesterday", "PriceArea": "DK1", "DayAheadPriceDKK": 1.0}),
            json!({"TimeUTC": "2025-10-26T10:30:00Z", "PriceArea": "dk1", "DayAheadPriceDKK": "250.5", "New": 1}),
            json!("not a record"),
            json!({"TimeUTC": ["x"], "PriceArea": "DK1", "DayAheadPriceDKK": 1.0}),
        ];
        let prices = spot_prices::<DayAheadRecord>(records, PriceArea::DK1);
        assert_eq!(prices.len(), 2);
        assert!((prices[0].price - -0.0125).abs() < 1e-12);
        assert!((prices[1].price - 0.2505).abs() < 1e-12);
    }

    #[test]
    fn pricelist_fixture_rows() {
        let e = envelope(include_str!(
            "../../tests/fixtures/energidataservice/datahubpricelist.json"
        ));
        let rows = tariff_rows(e.records);
        assert_eq!(rows.len(), 6);
        let tax = rows.iter().find(|r| r.charge.code == "EA-001").unwrap();
        assert!(tax.tax);
        assert_eq!(tax.resolution, Resolution::Daily);
        assert_eq!(tax.prices, vec![Some(0.72)]);
        assert_eq!(
            tax.valid_to,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0)
        );
        let b2d: Vec<_> = rows.iter().filter(|r| r.charge.code == "B2D").collect();
        assert_eq!(b2d.len(), 3);
        assert!(b2d.iter().all(|r| r.resolution == Resolution::Hourly && !r.tax));
        assert_eq!(b2d[0].prices[17], Some(0.1996));
        assert_eq!(b2d[0].charge.owner_gln, "5790001089030");
        assert_eq!(b2d[0].name.as_deref(), Some("Nettarif B lav"));
    }

    #[test]
    fn pricelist_rows_that_are_not_tariffs_or_are_broken() {
        let base = json!({
            "GLN_Number": 5790001089030_u64, "ChargeType": "D03", "ChargeTypeCode": 40000,
            "ValidFrom": "2025-01-01T00:00:00", "ValidTo": null, "ResolutionDuration": "PT1D",
            "TaxIndicator": "true", "Price1": "0.1", "Price2": null
        });
        let with = |key: &str, value: Value| {
            let mut v = base.clone();
            v[key] = value;
            v
        };
        let rows = tariff_rows(vec![
            base.clone(),
            with("ChargeType", json!("D01")),
            with("ValidFrom", json!("soon")),
            with("ValidTo", json!("never")),
            with("ResolutionDuration", json!("PT15M")),
            with("Price1", Value::Null),
            with("GLN_Number", Value::Null),
        ]);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.charge, ChargeKey::new("5790001089030", "40000"));
        assert_eq!(row.resolution, Resolution::Daily);
        assert!(row.tax);
        assert_eq!(row.valid_to, None);
        assert_eq!(row.prices, vec![Some(0.1)]);
    }

    #[test]
    fn times_with_and_without_offsets() {
        assert_eq!(
            parse_utc("2025-10-26T01:00:00").unwrap().to_rfc3339(),
            "2025-10-26T01:00:00+00:00"
        );
        assert_eq!(
            parse_utc("2025-10-26T03:00:00+02:00").unwrap().to_rfc3339(),
            "2025-10-26T01:00:00+00:00"
        );
        // 22:00 UTC on 30 September is Danish midnight (CEST).
        assert_eq!(
            parse_local("2025-09-30T22:00:00Z").unwrap(),
            NaiveDate::from_ymd_opt(2025, 10, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        );
        assert_eq!(
            parse_local("2025-10-01"),
            NaiveDate::from_ymd_opt(2025, 10, 1).unwrap().and_hms_opt(0, 0, 0)
        );
        assert_eq!(parse_local("01-10-2025"), None);
    }
}
