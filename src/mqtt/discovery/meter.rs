//! Everything Home Assistant shows for one meter: its newest interval and day, when data was
//! read, the API's health, and the provider's extra values (tariffs, monthly totals, registers).

use super::{bridge_identifier, Device, DiscoveryConfig, Entity, EntityCategory, Ids, Naming, Sensor};
use crate::model::{Medium, Meter, MeterValue, Unit, ValueKind};
use crate::mqtt::topics::{object_id, Topics};

/// The Home Assistant device class for an amount of `medium` in `unit`, where one fits.
pub fn device_class(medium: Medium, unit: &Unit) -> Option<&'static str> {
    match medium {
        Medium::Gas if unit.is_volume() => Some("gas"),
        Medium::Water if unit.is_volume() => Some("water"),
        _ if unit.is_energy() => Some("energy"),
        _ if unit.is_volume() => Some("volume"),
        _ => None,
    }
}

/// Every `api_status` the state topic can carry.
const API_STATES: [&str; 6] = ["pending", "ok", "auth_error", "rate_limited", "unavailable", "error"];

pub fn meter_configs(topics: &Topics, meter: &Meter, values: &[MeterValue]) -> Vec<DiscoveryConfig> {
    let d = &meter.device;
    let ids = Ids {
        topics,
        device: Device {
            identifiers: vec![meter_identifier(topics, meter)],
            name: meter.name.clone(),
            manufacturer: d.manufacturer.clone(),
            model: d.model.clone(),
            serial_number: d.serial_number.clone(),
            suggested_area: d.suggested_area.clone(),
            sw_version: None,
            via_device: Some(bridge_identifier(topics)),
        },
        id_base: meter_identifier(topics, meter),
        entity_base: format!("{}_{}", object_id(&meter.provider), object_id(&meter.id)),
    };
    let state = topics.meter_state(meter);
    let sensor = |key, name| Sensor::new(ids.common("sensor", Naming { key, name }, true), state.clone());
    let amount = |sensor: Sensor| Sensor {
        unit_of_measurement: Some(meter.unit.as_str().to_owned()),
        device_class: device_class(meter.medium, &meter.unit),
        ..sensor
    };
    let diagnostic = |mut sensor: Sensor| {
        sensor.common.entity_category = Some(EntityCategory::Diagnostic);
        sensor
    };
    // Each time has a topic of its own, published once known: a template over the state topic
    // would have to render something before then, and Home Assistant before 2024.x warns
    // about a timestamp sensor that renders `None`.
    let timestamp = |key: &'static str, name| {
        let mut s = diagnostic(Sensor {
            device_class: Some("timestamp"),
            ..sensor(key, Some(name))
        });
        s.state_topic = topics.meter_field(meter, key);
        s
    };

    // The device's main value: the newest interval. Delayed data, so no state_class.
    let latest = amount(Sensor {
        value_template: Some("{{ value_json.latest.value if value_json.latest else None }}".into()),
        suggested_display_precision: Some(3),
        ..sensor("latest", None)
    })
    .attributes("{{ (value_json.latest or {}) | tojson }}".into());
    let last_day = amount(Sensor {
        value_template: Some("{{ value_json.last_day.value if value_json.last_day else None }}".into()),
        suggested_display_precision: Some(2),
        ..sensor("last_day", Some("Last day"))
    })
    .attributes("{{ (value_json.last_day or {}) | tojson }}".into());
    let mut next_poll = timestamp("next_poll", "Next poll");
    next_poll.common.enabled_by_default = Some(false);
    let mut api_status = diagnostic(Sensor {
        value_template: Some("{{ value_json.api_status }}".into()),
        device_class: Some("enum"),
        options: Some(API_STATES.to_vec()),
        ..sensor("api_status", Some("API status"))
    })
    .attributes("{{ {'error': value_json.api_error} | tojson }}".into());
    api_status.common.icon = Some("mdi:api");

    // Its own topic too: before the first read there is no progress to show.
    let mut history_import = diagnostic(Sensor {
        value_template: Some("{{ value_json.percent }}".into()),
        unit_of_measurement: Some("%".into()),
        suggested_display_precision: Some(0),
        ..sensor("history_import", Some("History import"))
    });
    history_import.state_topic = topics.meter_field(meter, "history_import");
    let mut history_import = history_import.attributes("{{ value_json | tojson }}".into());
    history_import.common.icon = Some("mdi:progress-download");

    let mut entities = vec![
        latest,
        last_day,
        timestamp("data_until", "Data until"),
        timestamp("last_poll", "Last poll"),
        next_poll,
        api_status,
        history_import,
    ];
    // Shared values have a device of their own: see `shared`.
    for value in values.iter().filter(|v| v.shared.is_none()) {
        let mut entity = value_sensor(sensor(&value.key, Some(&value.name)), meter, value);
        if !value.timetable.is_empty() {
            // Kept current by the clock on a topic of its own: see `mqtt::sink::clocked`.
            entity.state_topic = topics.meter_value(meter, &value.key);
            entity.value_template = Some("{{ value_json.value }}".into());
            entity = entity.attributes("{{ value_json.attributes | tojson }}".into());
        }
        entities.push(entity);
    }
    entities.into_iter().map(|s| ids.config(Entity::Sensor(s))).collect()
}

fn meter_identifier(topics: &Topics, meter: &Meter) -> String {
    format!(
        "{}_{}_{}",
        topics.node_id(),
        object_id(&meter.provider),
        object_id(&meter.id)
    )
}

/// A provider value, read from `extras.<key>` of the state topic.
fn value_sensor(sensor: Sensor, meter: &Meter, value: &MeterValue) -> Sensor {
    let key = object_id(&value.key);
    let unit = value.unit.as_deref().map(Unit::parse);
    let class = unit.as_ref().and_then(|u| device_class(meter.medium, u));
    let mut sensor = Sensor {
        value_template: Some(format!(
            "{{{{ value_json.extras.{key}.value if value_json.extras.{key} is defined else None }}}}"
        )),
        unit_of_measurement: unit.as_ref().map(|u| u.as_str().to_owned()),
        ..sensor
    }
    .attributes(format!(
        "{{{{ (value_json.extras.{key}.attributes if value_json.extras.{key} is defined else {{}}) | tojson }}}}"
    ));
    match value.kind {
        ValueKind::Register => {
            sensor.device_class = class;
            sensor.state_class = Some("total_increasing");
            sensor.suggested_display_precision = Some(3);
        }
        ValueKind::PeriodTotal => {
            sensor.device_class = class;
            sensor.suggested_display_precision = Some(2);
        }
        ValueKind::Price => {
            sensor.state_class = Some("measurement");
            sensor.common.icon = Some("mdi:cash-clock");
            sensor.suggested_display_precision = Some(4);
        }
        ValueKind::Monetary => {
            let currency = value
                .unit
                .as_deref()
                .is_some_and(|u| u.len() == 3 && u.chars().all(|c| c.is_ascii_uppercase()));
            if currency {
                sensor.device_class = Some("monetary");
            }
            sensor.common.icon = Some("mdi:cash");
            sensor.suggested_display_precision = Some(2);
        }
        ValueKind::Measurement => {
            sensor.state_class = Some("measurement");
        }
        ValueKind::Other => {}
    }
    sensor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiStatus, DeviceInfo, Direction};

    fn meter(medium: Medium, unit: Unit) -> Meter {
        Meter {
            provider: "sample".into(),
            id: "house".into(),
            name: "House".into(),
            medium,
            direction: Direction::Consumption,
            unit,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo {
                manufacturer: Some("Maker".into()),
                model: None,
                serial_number: Some("S1".into()),
                suggested_area: Some("Basement".into()),
            },
        }
    }

    fn value(key: &str, kind: ValueKind, unit: Option<&str>) -> MeterValue {
        MeterValue {
            key: key.into(),
            name: key.replace('_', " "),
            value: Some(1.0),
            unit: unit.map(str::to_owned),
            kind,
            attributes: Default::default(),
            timetable: Vec::new(),
            shared: None,
        }
    }

    #[test]
    fn a_meter_with_every_kind_of_value() {
        let values = [
            value("register", ValueKind::Register, Some("m3")),
            value("this_month", ValueKind::PeriodTotal, Some("m3")),
            value("tariff", ValueKind::Price, Some("DKK/kWh")),
            value("subscriptions", ValueKind::Monetary, Some("DKK")),
            value("other", ValueKind::Other, None),
        ];
        let topics = Topics::new("meter2mqtt", "homeassistant");
        let configs = meter_configs(&topics, &meter(Medium::Water, Unit::CubicMeters), &values);
        assert_eq!(configs.len(), 7 + values.len());
        for config in &configs {
            assert_eq!(
                config.topic,
                format!("homeassistant/sensor/{}/config", config.entity.common().unique_id)
            );
            let name = config.entity.common().unique_id.clone();
            insta::assert_json_snapshot!(name, config.entity, { ".origin.sw_version" => "[version]" });
        }
    }

    #[test]
    fn a_price_that_changes_by_the_clock_has_its_own_topic() {
        let start = chrono::DateTime::parse_from_rfc3339("2025-10-26T00:00:00+02:00")
            .unwrap()
            .to_utc();
        let mut price = value("price", ValueKind::Price, Some("DKK/kWh"));
        price.name = "Price".into();
        price.timetable = vec![crate::model::TimedValue {
            start,
            end: start + chrono::Duration::minutes(15),
            value: 2.1,
        }];
        let topics = Topics::new("meter2mqtt", "homeassistant");
        let mut m = meter(Medium::Electricity, Unit::KWh);
        m.provider = "eloverblik".into();
        m.id = "571313180100000001".into();
        m.name = "Testvej 1 consumption".into();
        let configs = meter_configs(&topics, &m, &[price]);
        let config = configs.last().unwrap();
        insta::assert_json_snapshot!("price_sensor", config.entity, { ".origin.sw_version" => "[version]" });
    }

    #[test]
    fn device_classes_fit_the_unit() {
        assert_eq!(device_class(Medium::Gas, &Unit::CubicMeters), Some("gas"));
        assert_eq!(device_class(Medium::Gas, &Unit::KWh), Some("energy"));
        assert_eq!(device_class(Medium::Water, &Unit::Liters), Some("water"));
        assert_eq!(device_class(Medium::Heat, &Unit::GJ), Some("energy"));
        assert_eq!(device_class(Medium::Heat, &Unit::CubicMeters), Some("volume"));
        assert_eq!(device_class(Medium::Other, &Unit::Other("pcs".into())), None);
    }

    #[test]
    fn api_status_options_cover_every_status() {
        for status in [
            ApiStatus::Ok,
            ApiStatus::AuthError,
            ApiStatus::RateLimited,
            ApiStatus::Unavailable,
            ApiStatus::Error,
        ] {
            assert!(API_STATES.contains(&status.as_str()), "{}", status.as_str());
        }
    }
}
