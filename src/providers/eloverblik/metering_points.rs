//! Metering points become meters. The customer API lists them (with child points) in one call;
//! the third-party API lists the authorisations customers granted, then each one's points.
//!
//! Direction follows the DataHub type code: E18 and the child types that measure energy going
//! out or being generated (D01 renewable production, D04 surplus production, D05 net production,
//! D06 supply to grid, D09 own production, D11 net to grid, D18 other production) are
//! production; E17 and every other child type (D07 consumption from grid, D10 net from grid,
//! D12 total consumption, D14 electrical heating, D15 net consumption, ...) are consumption.

use std::collections::{HashMap, HashSet};

use super::client::Api;
use super::dto::{ApiList, Authorization, MeteringPoint};
use super::windows::Aggregation;
use super::EloverblikApi;
use super::{KIND, TZ};
use crate::energidataservice::PriceArea;
use crate::model::{DeviceInfo, Direction, Medium, Meter, Unit};
use crate::providers::ProviderError;

const CUSTOMER_LIST: &str = "/api/meteringpoints/meteringpoints?includeAll=true";
const AUTHORIZATIONS: &str = "/api/authorization/authorizations";

/// What reading a point needs beyond its [`Meter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PointInfo {
    pub(crate) aggregation: Aggregation,
    /// Child points carry no charges of their own.
    pub(crate) child: bool,
    /// The spot price zone, from the postcode (children share their parent's address).
    pub(crate) area: Option<PriceArea>,
}

pub(crate) struct Listing {
    pub(crate) meters: Vec<Meter>,
    pub(crate) points: HashMap<String, PointInfo>,
}

/// Every metering point the token can read.
pub(crate) async fn fetch(api: &Api) -> Result<Vec<MeteringPoint>, ProviderError> {
    match api.paths.flavour {
        EloverblikApi::Customer => list(api, CUSTOMER_LIST).await,
        EloverblikApi::Thirdparty => {
            let authorizations: ApiList<Authorization> = api.get(AUTHORIZATIONS).await?;
            let mut points = Vec::new();
            for id in authorizations.into_items().into_iter().filter_map(|a| a.id) {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    tracing::warn!("skipping authorisation {id:?}: not an id the API could have issued");
                    continue;
                }
                points.extend(
                    list(
                        api,
                        &format!("/api/authorization/authorization/meteringpoints/authorizationId/{id}"),
                    )
                    .await?,
                );
            }
            Ok(points)
        }
    }
}

async fn list(api: &Api, path: &str) -> Result<Vec<MeteringPoint>, ProviderError> {
    let list: ApiList<MeteringPoint> = api.get(path).await?;
    Ok(list.into_items())
}

/// The meters to read: every linked point and its children, narrowed to `wanted` when given.
/// Points registered to the customer but not linked (`hasRelation: false`) cannot be read and
/// are skipped unless `wanted` names them, so that the API's own error explains why.
pub(crate) fn to_meters(points: Vec<MeteringPoint>, wanted: &[String]) -> Listing {
    let wanted: HashSet<&str> = wanted.iter().map(|s| s.trim()).collect();
    let keep = |id: &str| wanted.is_empty() || wanted.contains(id);
    let mut meters = Vec::new();
    let mut infos = HashMap::new();
    for point in points {
        let linked = point.has_relation.unwrap_or(true);
        if !linked && !wanted.contains(point.id.as_str()) {
            tracing::info!(
                metering_point = %point.id,
                "skipping a metering point registered to you but not linked in ElOverblik; link it there to read it"
            );
            continue;
        }
        let address = address(&point);
        let area = point.postcode.as_deref().and_then(PriceArea::from_postcode);
        let supplier = point.balance_supplier_name.clone().filter(|s| !s.trim().is_empty());
        let parent = (&point.id, &point.type_of_mp, &point.meter_reading_occurrence, false);
        let children = point
            .child_metering_points
            .iter()
            .flatten()
            .map(|c| (&c.id, &c.type_of_mp, &c.meter_reading_occurrence, true));
        for (id, type_of_mp, occurrence, child) in std::iter::once(parent).chain(children) {
            if id.trim().is_empty() || !keep(id) || infos.contains_key(id) {
                continue;
            }
            let aggregation = Aggregation::for_occurrence(occurrence.as_deref());
            infos.insert(
                id.clone(),
                PointInfo {
                    aggregation,
                    child,
                    area,
                },
            );
            meters.push(meter(id, type_of_mp.as_deref(), &address, supplier.clone()));
        }
    }
    for id in &wanted {
        if !infos.contains_key(*id) {
            tracing::warn!(
                metering_point = %id,
                "eloverblik.metering_points names a metering point this token cannot read; check the id, and that it \
                 is linked to your login in ElOverblik (or authorised for your third-party token)"
            );
        }
    }
    Listing { meters, points: infos }
}

fn meter(id: &str, type_code: Option<&str>, address: &str, supplier: Option<String>) -> Meter {
    let code = type_code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("unknown type");
    let label = type_label(code);
    Meter {
        provider: KIND.to_owned(),
        id: id.to_owned(),
        name: format!("{address} {}", label.to_lowercase()),
        medium: Medium::Electricity,
        direction: direction(code),
        unit: Unit::KWh,
        cumulative: false,
        timezone: TZ,
        device: DeviceInfo {
            manufacturer: supplier,
            model: Some(format!("{label} ({code})")),
            serial_number: Some(id.to_owned()),
            suggested_area: None,
        },
    }
}

pub(crate) fn direction(type_code: &str) -> Direction {
    match type_code {
        "E18" | "D01" | "D04" | "D05" | "D06" | "D09" | "D11" | "D18" => Direction::Production,
        _ => Direction::Consumption,
    }
}

/// DataHub's names for the metering point types.
pub(crate) fn type_label(type_code: &str) -> &'static str {
    match type_code {
        "E17" => "Consumption",
        "E18" => "Production",
        "E20" => "Exchange",
        "D01" => "Renewable production",
        "D02" => "Analysis",
        "D04" => "Surplus production",
        "D05" => "Net production",
        "D06" => "Supply to grid",
        "D07" => "Consumption from grid",
        "D08" => "Wholesale services",
        "D09" => "Own production",
        "D10" => "Net from grid",
        "D11" => "Net to grid",
        "D12" => "Total consumption",
        "D13" => "Grid loss correction",
        "D14" => "Electrical heating",
        "D15" => "Net consumption",
        "D17" => "Other consumption",
        "D18" => "Other production",
        "D20" => "Reactive energy exchange",
        "D99" => "Internal use",
        _ => "Metering point",
    }
}

/// `Testvej 1, 2. tv`, else `8000 Aarhus C`, else the point's last digits.
fn address(point: &MeteringPoint) -> String {
    let part = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let street = [part(&point.street_name), part(&point.building_number)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if !street.is_empty() {
        let unit = [part(&point.floor_id).map(|f| format!("{f}.")), part(&point.room_id)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        let street = street.join(" ");
        return if unit.is_empty() {
            street
        } else {
            format!("{street}, {}", unit.join(" "))
        };
    }
    let city = [part(&point.postcode), part(&point.city_name)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if !city.is_empty() {
        return city.join(" ");
    }
    let tail: String = point
        .id
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("Metering point …{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<MeteringPoint> {
        serde_json::from_str::<ApiList<MeteringPoint>>(include_str!(
            "../../../tests/fixtures/eloverblik/meteringpoints.json"
        ))
        .unwrap()
        .into_items()
    }

    #[test]
    fn fixture_points_and_children_become_meters() {
        let listing = to_meters(fixture(), &[]);
        let ids: Vec<&str> = listing.meters.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["571313180100000001", "571313180100000018", "571313180100000025"]);
        let [home, child, solar] = &listing.meters[..] else {
            panic!("three meters")
        };
        assert_eq!(home.name, "Testvej 1 consumption");
        assert_eq!(home.direction, Direction::Consumption);
        assert_eq!(home.device.manufacturer.as_deref(), Some("Test Elhandel A/S"));
        assert_eq!(home.device.model.as_deref(), Some("Consumption (E17)"));
        assert_eq!(home.device.serial_number.as_deref(), Some("571313180100000001"));
        assert_eq!(
            (home.unit.as_str(), home.medium, home.timezone),
            ("kWh", Medium::Electricity, TZ)
        );
        assert_eq!(child.name, "Testvej 1 consumption from grid");
        assert_eq!(child.direction, Direction::Consumption);
        assert_eq!(solar.name, "Solvej 3 production");
        assert_eq!(solar.direction, Direction::Production);
        assert_eq!(
            listing.points["571313180100000025"],
            PointInfo {
                aggregation: Aggregation::Quarter,
                child: false,
                area: Some(PriceArea::DK1)
            }
        );
        assert_eq!(
            listing.points["571313180100000018"],
            PointInfo {
                aggregation: Aggregation::Hour,
                child: true,
                area: Some(PriceArea::DK1)
            }
        );
    }

    #[test]
    fn configured_ids_narrow_the_set() {
        let listing = to_meters(fixture(), &["571313180100000018".into(), "571313180100000099".into()]);
        assert_eq!(listing.meters.len(), 1);
        assert_eq!(listing.meters[0].id, "571313180100000018");
        assert_eq!(listing.points.len(), 1);
    }

    #[test]
    fn unlinked_points_are_skipped_unless_named() {
        let mut points = fixture();
        points[1].has_relation = Some(false);
        assert_eq!(to_meters(points.clone(), &[]).meters.len(), 2);
        assert_eq!(to_meters(points, &["571313180100000025".into()]).meters.len(), 1);
    }

    #[test]
    fn duplicates_are_listed_once() {
        let mut points = fixture();
        points.push(points[0].clone());
        assert_eq!(to_meters(points, &[]).meters.len(), 3);
    }

    #[test]
    fn child_type_directions() {
        for code in ["E18", "D01", "D04", "D05", "D06", "D09", "D11", "D18"] {
            assert_eq!(direction(code), Direction::Production, "{code}");
        }
        for code in ["E17", "D07", "D10", "D12", "D14", "D15", "D17", "D99", "X1"] {
            assert_eq!(direction(code), Direction::Consumption, "{code}");
        }
    }

    #[test]
    fn names_fall_back_from_street_to_city_to_id() {
        let mut p = MeteringPoint {
            id: "571313180100000001".into(),
            ..MeteringPoint::default()
        };
        p.floor_id = Some("2".into());
        assert_eq!(address(&p), "Metering point …000001");
        p.postcode = Some("8000".into());
        p.city_name = Some("Aarhus C".into());
        assert_eq!(address(&p), "8000 Aarhus C");
        p.street_name = Some("Testvej".into());
        p.building_number = Some("1".into());
        p.room_id = Some("tv".into());
        assert_eq!(address(&p), "Testvej 1, 2. tv");
        let m = meter(&p.id, None, "Testvej 1", None);
        assert_eq!(
            (m.name.as_str(), m.device.model.as_deref()),
            ("Testvej 1 metering point", Some("Metering point (unknown type)"))
        );
    }
}
