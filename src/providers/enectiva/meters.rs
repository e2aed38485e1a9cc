//! Enectiva meters and entities (buildings) as [`Meter`]s. Media and units are mapped where they
//! are known; anything else becomes a generic meter instead of an error.

use std::collections::HashMap;

use chrono_tz::Tz;

use super::jsonapi::Resource;
use super::KIND;
use crate::model::{DeviceInfo, Direction, Medium, Meter, Unit};

/// Where Enectiva's customers are; also what an entity without `time_zone` means.
pub(crate) const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Prague;

/// What a building contributes to its meters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entity {
    pub(crate) name: Option<String>,
    pub(crate) timezone: Tz,
}

/// What the provider keeps about a meter beyond [`Meter`]: where its deltas come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct MeterContext {
    pub(crate) entity_id: Option<String>,
    /// `energy` as the API spells it, to pick this meter's medium out of an entity's deltas.
    pub(crate) energy: Option<String>,
}

pub(crate) fn entities(resources: &[Resource]) -> HashMap<String, Entity> {
    resources
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                Entity {
                    name: r.text("name"),
                    timezone: timezone(r, DEFAULT_TIMEZONE),
                },
            )
        })
        .collect()
}

fn timezone(resource: &Resource, fallback: Tz) -> Tz {
    let Some(name) = resource.text("time_zone") else {
        return fallback;
    };
    name.parse().unwrap_or_else(|_| {
        tracing::warn!(record = %resource.label(), "unknown time_zone {name:?}; using {fallback}");
        fallback
    })
}

pub(crate) fn meter(resource: &Resource, entities: &HashMap<String, Entity>) -> (Meter, MeterContext) {
    let entity_id = resource.related_id("entity");
    let entity = entity_id.as_ref().and_then(|id| entities.get(id));
    let energy = resource.text("energy");
    let medium = energy.as_deref().map(medium).unwrap_or(Medium::Other);
    let unit = match resource.text("unit") {
        Some(raw) => Unit::parse(&raw),
        None => default_unit(resource, medium),
    };
    let meter = Meter {
        provider: KIND.into(),
        id: resource.id.clone(),
        name: ["name", "external_id", "identification_code"]
            .iter()
            .find_map(|key| resource.text(key))
            .unwrap_or_else(|| format!("Enectiva meter {}", resource.id)),
        medium,
        direction: direction(resource.text("direction").as_deref()),
        unit,
        cumulative: true,
        timezone: timezone(resource, entity.map_or(DEFAULT_TIMEZONE, |e| e.timezone)),
        device: DeviceInfo {
            manufacturer: None,
            model: energy.as_deref().map(model),
            serial_number: resource.text("identification_code"),
            suggested_area: entity.and_then(|e| e.name.clone()),
        },
    };
    (meter, MeterContext { entity_id, energy })
}

pub(crate) fn medium(energy: &str) -> Medium {
    match normalise(energy).as_str() {
        "electricity" | "electric" | "electrical_energy" | "power" => Medium::Electricity,
        "gas" | "natural_gas" => Medium::Gas,
        "water" | "cold_water" | "hot_water" | "warm_water" | "drinking_water" => Medium::Water,
        "heat" | "heating" | "thermal_energy" => Medium::Heat,
        "cooling" | "cold" | "chilled_water" => Medium::Cooling,
        _ => Medium::Other,
    }
}

/// Readings come in the meter's default unit; a meter that does not name it gets the unit its
/// medium is metered in everywhere (kWh, m³, GJ), and a warning.
fn default_unit(resource: &Resource, medium: Medium) -> Unit {
    let unit = match medium {
        Medium::Electricity => Unit::KWh,
        Medium::Gas | Medium::Water => Unit::CubicMeters,
        Medium::Heat => Unit::GJ,
        Medium::Cooling | Medium::Other => Unit::Other(String::new()),
    };
    tracing::warn!(record = %resource.label(), "meter names no unit; assuming {:?}", unit.as_str());
    unit
}

fn direction(raw: Option<&str>) -> Direction {
    match raw.map(normalise).as_deref() {
        Some("production" | "generation" | "supply" | "export" | "feed_in") => Direction::Production,
        _ => Direction::Consumption,
    }
}

/// `cold_water` → `Cold water meter`.
fn model(energy: &str) -> String {
    let words = normalise(energy).replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => format!("{}{} meter", first.to_uppercase(), chars.as_str()),
        None => "Meter".into(),
    }
}

fn normalise(raw: &str) -> String {
    raw.trim().to_lowercase().replace(['-', ' '], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::enectiva::jsonapi;

    fn fixture_meters() -> Vec<(Meter, MeterContext)> {
        let entities_doc = include_bytes!("../../../tests/fixtures/enectiva/entities.json");
        let meters_doc = include_bytes!("../../../tests/fixtures/enectiva/meters.json");
        let entities = entities(
            &jsonapi::collection(entities_doc, "GET /entities", "entities")
                .unwrap()
                .resources,
        );
        let meters = jsonapi::collection(meters_doc, "GET /meters", "meters")
            .unwrap()
            .resources;
        meters.iter().map(|r| meter(r, &entities)).collect()
    }

    fn resource(attributes: serde_json::Value) -> Resource {
        Resource {
            kind: "meters".into(),
            id: "1".into(),
            attributes: attributes.as_object().unwrap().clone(),
            relationships: Default::default(),
        }
    }

    #[test]
    fn fixture_meters_with_their_building() {
        let meters = fixture_meters();
        let media: Vec<_> = meters
            .iter()
            .map(|(m, _)| (m.id.as_str(), m.medium, m.unit.as_str()))
            .collect();
        assert_eq!(
            media,
            vec![
                ("4711", Medium::Electricity, "kWh"),
                ("4712", Medium::Gas, "m³"),
                ("4713", Medium::Water, "m³"),
                ("4714", Medium::Heat, "GJ")
            ]
        );
        let (m, ctx) = &meters[0];
        assert_eq!(m.name, "Hlavní elektroměr – budova A");
        assert!(m.cumulative);
        assert_eq!(m.provider, "enectiva");
        assert_eq!(m.timezone, chrono_tz::Europe::Prague);
        assert_eq!(m.device.serial_number.as_deref(), Some("SN4711"));
        assert_eq!(m.device.model.as_deref(), Some("Electricity meter"));
        assert_eq!(m.device.suggested_area.as_deref(), Some("Budova A"));
        assert_eq!(
            ctx,
            &MeterContext {
                entity_id: Some("88".into()),
                energy: Some("electricity".into())
            }
        );
        assert_eq!(meters[2].0.device.model.as_deref(), Some("Cold water meter"));
    }

    #[test]
    fn unknown_media_and_units_make_a_generic_meter() {
        let (m, _) = meter(
            &resource(serde_json::json!({"energy": "steam", "unit": "t"})),
            &HashMap::new(),
        );
        assert_eq!((m.medium, m.unit), (Medium::Other, Unit::Other("t".into())));
        assert_eq!(m.name, "Enectiva meter 1");
        assert_eq!(m.device.suggested_area, None);
        assert_eq!(m.timezone, DEFAULT_TIMEZONE);
    }

    #[test]
    fn media_spellings() {
        assert_eq!(medium("Hot-Water"), Medium::Water);
        assert_eq!(medium("water"), Medium::Water);
        assert_eq!(medium("HEAT"), Medium::Heat);
        assert_eq!(medium("cooling"), Medium::Cooling);
        assert_eq!(medium("natural gas"), Medium::Gas);
        assert_eq!(medium(""), Medium::Other);
    }

    #[test]
    fn units_of_each_medium() {
        for (unit, expected) in [
            ("MWh", Unit::MWh),
            ("L", Unit::Liters),
            ("m3", Unit::CubicMeters),
            ("kWh", Unit::KWh),
        ] {
            let (m, _) = meter(
                &resource(serde_json::json!({"energy": "heat", "unit": unit})),
                &HashMap::new(),
            );
            assert_eq!(m.unit, expected);
        }
    }

    #[test]
    fn a_missing_unit_is_the_medium_default() {
        let unit = |energy: &str| {
            meter(&resource(serde_json::json!({ "energy": energy })), &HashMap::new())
                .0
                .unit
        };
        assert_eq!(unit("electricity"), Unit::KWh);
        assert_eq!(unit("gas"), Unit::CubicMeters);
        assert_eq!(unit("heat"), Unit::GJ);
        assert_eq!(unit("steam"), Unit::Other(String::new()));
    }

    #[test]
    fn timezones_from_meter_entity_or_default() {
        let mut entities = HashMap::new();
        entities.insert(
            "5".to_owned(),
            Entity {
                name: Some("Hall".into()),
                timezone: chrono_tz::Europe::Vienna,
            },
        );
        let mut r = resource(serde_json::json!({"energy": "gas"}));
        r.relationships = serde_json::json!({"entity": {"data": {"type": "entities", "id": "5"}}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(meter(&r, &entities).0.timezone, chrono_tz::Europe::Vienna);
        r.attributes.insert("time_zone".into(), "Europe/Bratislava".into());
        assert_eq!(meter(&r, &entities).0.timezone, chrono_tz::Europe::Bratislava);
        r.attributes.insert("time_zone".into(), "Mars/Olympus".into());
        assert_eq!(meter(&r, &entities).0.timezone, chrono_tz::Europe::Vienna);
    }

    #[test]
    fn production_meters() {
        let (m, _) = meter(
            &resource(serde_json::json!({"direction": "production"})),
            &HashMap::new(),
        );
        assert_eq!(m.direction, Direction::Production);
        let (m, _) = meter(&resource(serde_json::json!({"direction": 3})), &HashMap::new());
        assert_eq!(m.direction, Direction::Consumption);
    }
}
