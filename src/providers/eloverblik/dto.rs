//! The wire format, as lenient as the API needs: numbers arrive as strings or numbers, lists as
//! `null`, error codes as integers or strings. Unknown fields are ignored.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// `{"result": [...]}`: the root of every list response.
#[derive(Debug, Deserialize)]
pub struct ApiList<T> {
    pub(crate) result: Option<Vec<T>>,
}

impl<T> ApiList<T> {
    pub(crate) fn into_items(self) -> Vec<T> {
        self.result.unwrap_or_default()
    }
}

/// `{"result": "<token>"}` from `GET /api/token`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) result: Option<String>,
}

/// The per-item wrapper of batched calls: one per requested metering point.
#[derive(Debug, Deserialize)]
pub struct Item<T> {
    #[serde(default)]
    pub(crate) success: bool,
    #[serde(default, rename = "errorCode", deserialize_with = "opt_code")]
    pub(crate) error_code: Option<String>,
    #[serde(rename = "errorText")]
    pub(crate) error_text: Option<String>,
    pub(crate) id: Option<String>,
    /// Time series carry the payload as `MyEnergyData_MarketDocument`, charges as `result`.
    #[serde(rename = "result", alias = "MyEnergyData_MarketDocument")]
    pub(crate) payload: Option<T>,
}

impl<T> Item<T> {
    /// `code 20010: Relation not found`, for a per-meter error message.
    pub(crate) fn failure_text(&self) -> String {
        let text = self
            .error_text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("no reason given");
        match &self.error_code {
            Some(code) => format!("the API reported error {code}: {text}"),
            None => format!("the API reported an error: {text}"),
        }
    }
}

/// A metering point from the customer API's list, or the third-party API's authorisation list
/// (which lacks the supplier and relation fields).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeteringPoint {
    #[serde(rename = "meteringPointId", deserialize_with = "lenient_string")]
    pub(crate) id: String,
    #[serde(rename = "typeOfMP")]
    pub(crate) type_of_mp: Option<String>,
    pub(crate) meter_reading_occurrence: Option<String>,
    pub(crate) street_name: Option<String>,
    pub(crate) building_number: Option<String>,
    pub(crate) floor_id: Option<String>,
    pub(crate) room_id: Option<String>,
    pub(crate) postcode: Option<String>,
    pub(crate) city_name: Option<String>,
    pub(crate) balance_supplier_name: Option<String>,
    /// Absent in the third-party API, where every listed point is authorised.
    pub(crate) has_relation: Option<bool>,
    pub(crate) child_metering_points: Option<Vec<ChildMeteringPoint>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChildMeteringPoint {
    #[serde(rename = "meteringPointId", deserialize_with = "lenient_string")]
    pub(crate) id: String,
    #[serde(rename = "typeOfMP")]
    pub(crate) type_of_mp: Option<String>,
    pub(crate) meter_reading_occurrence: Option<String>,
}

/// A third-party authorisation (power of attorney); its id lists the points it covers.
#[derive(Debug, Deserialize)]
pub(crate) struct Authorization {
    pub(crate) id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MarketDocument {
    #[serde(rename = "TimeSeries")]
    pub(crate) time_series: Option<Vec<TimeSeries>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimeSeries {
    #[serde(rename = "mRID")]
    pub(crate) id: Option<String>,
    #[serde(rename = "measurement_Unit.name")]
    pub(crate) unit: Option<String>,
    #[serde(rename = "Period")]
    pub(crate) periods: Option<Vec<Period>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Period {
    pub(crate) resolution: Option<String>,
    #[serde(rename = "timeInterval")]
    pub(crate) time_interval: Option<TimeInterval>,
    #[serde(rename = "Point")]
    pub(crate) points: Option<Vec<Point>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimeInterval {
    pub(crate) start: Option<String>,
    pub(crate) end: Option<String>,
}

/// One position of a period. Deserialised without allocating: a year of quarter hours for ten
/// points is a third of a million of these.
#[derive(Debug, Deserialize)]
pub(crate) struct Point {
    #[serde(deserialize_with = "lenient_u32")]
    pub(crate) position: u32,
    #[serde(rename = "out_Quantity.quantity", default, deserialize_with = "opt_lenient_f64")]
    pub(crate) quantity: Option<f64>,
    #[serde(rename = "out_Quantity.quality")]
    pub(crate) quality: Option<QualityCode>,
}

/// DataHub quality codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QualityCode {
    /// Adjusted by DataHub (no longer issued since 2020; final settlement values).
    A01,
    /// Not available: the grid operator reported the value missing.
    A02,
    /// Estimated by the grid operator.
    A03,
    /// As provided / measured.
    A04,
    /// Incomplete: an aggregate with at least one missing component.
    A05,
    Unknown,
}

impl<'de> Deserialize<'de> for QualityCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Code;
        impl Visitor<'_> for Code {
            type Value = QualityCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quality code such as \"A04\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QualityCode, E> {
                Ok(match v.trim() {
                    "A01" => QualityCode::A01,
                    "A02" => QualityCode::A02,
                    "A03" => QualityCode::A03,
                    "A04" => QualityCode::A04,
                    "A05" => QualityCode::A05,
                    _ => QualityCode::Unknown,
                })
            }
        }
        deserializer.deserialize_str(Code)
    }
}

/// The `getcharges` result for one metering point.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Charges {
    pub(crate) subscriptions: Option<Vec<Charge>>,
    pub(crate) tariffs: Option<Vec<Tariff>>,
}

/// A subscription (or fee): a fixed amount per period.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Charge {
    pub(crate) name: Option<String>,
    pub(crate) owner: Option<String>,
    #[serde(default, deserialize_with = "opt_lenient_f64")]
    pub(crate) price: Option<f64>,
    #[serde(default, deserialize_with = "opt_lenient_f64")]
    pub(crate) quantity: Option<f64>,
    pub(crate) valid_from_date: Option<String>,
    pub(crate) valid_to_date: Option<String>,
    pub(crate) period_type: Option<String>,
}

/// A tariff: a price per kWh, per hour of the day (`PT1H`, 24 positions) or for the whole day.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tariff {
    pub(crate) name: Option<String>,
    pub(crate) owner: Option<String>,
    /// The charge's code (`ChargeTypeCode` in Energi Data Service); the third-party API has none.
    #[serde(default)]
    pub(crate) price_id: Option<String>,
    pub(crate) valid_from_date: Option<String>,
    pub(crate) valid_to_date: Option<String>,
    pub(crate) period_type: Option<String>,
    pub(crate) prices: Option<Vec<TariffPrice>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TariffPrice {
    #[serde(deserialize_with = "lenient_u32")]
    pub(crate) position: u32,
    #[serde(default, deserialize_with = "opt_lenient_f64")]
    pub(crate) price: Option<f64>,
}

/// The ids of a batched request body.
#[derive(Debug, serde::Serialize)]
pub(crate) struct MeteringPointsRequest<'a> {
    #[serde(rename = "meteringPoints")]
    pub(crate) metering_points: MeteringPointIds<'a>,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct MeteringPointIds<'a> {
    #[serde(rename = "meteringPoint")]
    pub(crate) metering_point: &'a [&'a str],
}

impl<'a> MeteringPointsRequest<'a> {
    pub(crate) fn new(ids: &'a [&'a str]) -> Self {
        MeteringPointsRequest {
            metering_points: MeteringPointIds { metering_point: ids },
        }
    }
}

/// A number that may arrive as a JSON number or a decimal string (`"0.422"`); `null` and `""`
/// are absent.
fn opt_lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct Number;
    impl<'de> Visitor<'de> for Number {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number or a string holding one")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Some(n)),
                _ => Err(E::custom(format!("{v:?} is not a decimal number"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_option(Number)
}

/// A position: `"12"` or `12`.
fn lenient_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    struct Position;
    impl Visitor<'_> for Position {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a position (a whole number, possibly as a string)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("position {v} is out of range")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("position {v} is out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("position {v:?} is not a whole number")))
        }
    }
    deserializer.deserialize_any(Position)
}

/// `errorCode`: `10000` or `"10000"`.
fn opt_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Number(i64),
        Text(String),
    }
    Ok(match Option::<Code>::deserialize(deserializer)? {
        Some(Code::Number(n)) => Some(n.to_string()),
        Some(Code::Text(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    })
}

/// Metering point ids are 18 digits; a careless producer may send them as numbers.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    crate::secret::deserialize_lenient_string(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_accept_strings_numbers_and_absence() {
        let p: Point =
            serde_json::from_str(r#"{"position":"7","out_Quantity.quantity":"0.422","out_Quantity.quality":"A04"}"#)
                .unwrap();
        assert_eq!(
            (p.position, p.quantity, p.quality),
            (7, Some(0.422), Some(QualityCode::A04))
        );
        let p: Point = serde_json::from_str(r#"{"position":8,"out_Quantity.quantity":1.5}"#).unwrap();
        assert_eq!((p.position, p.quantity, p.quality), (8, Some(1.5), None));
        let p: Point =
            serde_json::from_str(r#"{"position":"9","out_Quantity.quantity":null,"out_Quantity.quality":"A02"}"#)
                .unwrap();
        assert_eq!((p.quantity, p.quality), (None, Some(QualityCode::A02)));
        let p: Point = serde_json::from_str(r#"{"position":"9","out_Quantity.quality":"Z99"}"#).unwrap();
        assert_eq!(p.quality, Some(QualityCode::Unknown));
    }

    #[test]
    fn bad_numbers_are_errors_that_say_what() {
        let err = serde_json::from_str::<Point>(r#"{"position":"x1"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("position \"x1\" is not a whole number"), "{err}");
        let err = serde_json::from_str::<Point>(r#"{"position":"1","out_Quantity.quantity":"1,5"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"1,5\" is not a decimal number"), "{err}");
        let err = serde_json::from_str::<Point>(r#"{"position":-3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("position -3 is out of range"), "{err}");
        assert!(serde_json::from_str::<Point>(r#"{"out_Quantity.quantity":"1"}"#).is_err());
    }

    #[test]
    fn item_wrapper_reads_both_payload_names_and_code_shapes() {
        let item: Item<serde_json::Value> =
            serde_json::from_str(r#"{"success":false,"errorCode":"20010","errorText":"Relation not found","id":"1","MyEnergyData_MarketDocument":null}"#)
                .unwrap();
        assert_eq!(item.error_code.as_deref(), Some("20010"));
        assert_eq!(item.failure_text(), "the API reported error 20010: Relation not found");
        let item: Item<serde_json::Value> =
            serde_json::from_str(r#"{"success":true,"errorCode":10000,"result":{"a":1}}"#).unwrap();
        assert_eq!(item.error_code.as_deref(), Some("10000"));
        assert!(item.payload.is_some());
        let item: Item<serde_json::Value> = serde_json::from_str(r#"{"success":false}"#).unwrap();
        assert_eq!(item.failure_text(), "the API reported an error: no reason given");
    }

    #[test]
    fn fixtures_deserialise() {
        let points: ApiList<MeteringPoint> =
            serde_json::from_str(include_str!("../../../tests/fixtures/eloverblik/meteringpoints.json")).unwrap();
        let points = points.into_items();
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0].child_metering_points.as_ref().unwrap()[0]
                .type_of_mp
                .as_deref(),
            Some("D07")
        );
        let charges: ApiList<Item<Charges>> =
            serde_json::from_str(include_str!("../../../tests/fixtures/eloverblik/charges.json")).unwrap();
        let charges = charges.into_items();
        let tariffs = charges[0].payload.as_ref().unwrap().tariffs.as_ref().unwrap();
        assert_eq!(tariffs[0].prices.as_ref().unwrap().len(), 24);
        let null_list: ApiList<MeteringPoint> = serde_json::from_str(r#"{"result":null}"#).unwrap();
        assert!(null_list.into_items().is_empty());
    }

    #[test]
    fn request_body_shape() {
        let ids = ["571313180100000001", "571313180100000025"];
        let body = serde_json::to_string(&MeteringPointsRequest::new(&ids)).unwrap();
        assert_eq!(
            body,
            r#"{"meteringPoints":{"meteringPoint":["571313180100000001","571313180100000025"]}}"#
        );
    }
}
