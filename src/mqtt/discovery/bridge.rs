//! The bridge device: connectivity, version, last error and meter count, as diagnostics.

use super::{bridge_identifier, BinarySensor, DiscoveryConfig, Entity, EntityCategory, Ids, Naming, Sensor};
use crate::mqtt::topics::Topics;

pub(crate) fn bridge_configs(topics: &Topics) -> Vec<DiscoveryConfig> {
    let ids = Ids {
        topics,
        device: super::Device {
            identifiers: vec![bridge_identifier(topics)],
            name: "meter2mqtt".into(),
            manufacturer: Some("meter2mqtt".into()),
            model: Some("Meter bridge".into()),
            sw_version: Some(env!("CARGO_PKG_VERSION")),
            ..Default::default()
        },
        id_base: bridge_identifier(topics),
        entity_base: format!("{}_bridge", topics.node_id()),
    };
    let state = topics.bridge_state();
    let diagnostic = |key, name, icon| {
        let mut common = ids.common("sensor", Naming { key, name: Some(name) }, true);
        common.entity_category = Some(EntityCategory::Diagnostic);
        common.icon = Some(icon);
        Sensor::new(common, state.clone())
    };

    let mut connection = ids.common(
        "binary_sensor",
        Naming {
            key: "connection",
            name: Some("Connection"),
        },
        false,
    );
    connection.entity_category = Some(EntityCategory::Diagnostic);
    let connection = BinarySensor {
        common: connection,
        state_topic: topics.availability(),
        payload_on: "online",
        payload_off: "offline",
        device_class: Some("connectivity"),
    };

    let version = Sensor {
        value_template: Some("{{ value_json.version }}".into()),
        ..diagnostic("version", "Version", "mdi:tag")
    };
    let last_error = Sensor {
        value_template: Some("{{ (value_json.last_error or 'none')[:255] }}".into()),
        ..diagnostic("last_error", "Last error", "mdi:alert-circle-outline")
    }
    .attributes("{{ {'at': value_json.last_error_at, 'message': value_json.last_error} | tojson }}".into());
    let meters = Sensor {
        value_template: Some("{{ value_json.meters }}".into()),
        state_class: Some("measurement"),
        ..diagnostic("meters", "Meters", "mdi:counter")
    };

    [
        Entity::BinarySensor(connection),
        Entity::Sensor(version),
        Entity::Sensor(last_error),
        Entity::Sensor(meters),
    ]
    .into_iter()
    .map(|e| ids.config(e))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_device() {
        let configs = bridge_configs(&Topics::new("meter2mqtt", "homeassistant"));
        let topics: Vec<&str> = configs.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/binary_sensor/meter2mqtt_bridge_connection/config",
                "homeassistant/sensor/meter2mqtt_bridge_version/config",
                "homeassistant/sensor/meter2mqtt_bridge_last_error/config",
                "homeassistant/sensor/meter2mqtt_bridge_meters/config",
            ]
        );
        for config in &configs {
            let name = config.entity.common().unique_id.clone();
            insta::assert_json_snapshot!(name, config.entity, {
                ".origin.sw_version" => "[version]",
                ".device.sw_version" => "[version]",
            });
        }
    }
}
