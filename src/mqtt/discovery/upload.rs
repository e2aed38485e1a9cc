//! The diagnostic sensor of one upload series (Home Assistant / MQTT → an import API), on the
//! bridge device: the time of the newest record the API accepted, with the backlog, the refused
//! records and the last error as attributes.

use super::{bridge_identifier, DiscoveryConfig, Entity, EntityCategory, Ids, Naming, Sensor};
use crate::mqtt::topics::{object_id, Topics};

/// One upload series, as its sensor shows it.
#[derive(Debug, Clone)]
pub(crate) struct UploadSensor {
    /// The provider's machine name (topic segment).
    pub(crate) kind: String,
    /// Unique within the provider: account, import id, suit, type.
    pub(crate) key: String,
    /// `"<API> upload <import_id>"`.
    pub(crate) name: String,
}

pub(crate) fn upload_config(topics: &Topics, sensor: &UploadSensor) -> DiscoveryConfig {
    let ids = Ids {
        topics,
        device: super::Device {
            identifiers: vec![bridge_identifier(topics)],
            name: "meter2mqtt".into(),
            ..Default::default()
        },
        id_base: format!("{}_{}_upload", topics.node_id(), object_id(&sensor.kind)),
        entity_base: format!("{}_{}_upload", topics.node_id(), object_id(&sensor.kind)),
    };
    let mut common = ids.common(
        "sensor",
        Naming {
            key: &sensor.key,
            name: Some(&sensor.name),
        },
        true,
    );
    common.entity_category = Some(EntityCategory::Diagnostic);
    common.icon = Some("mdi:cloud-upload-outline");
    // The time has a topic of its own (published once known) and the figures ride on the state
    // topic: Home Assistant before 2024.x warns about a timestamp sensor whose template renders
    // `None`, which one template over a state with `"accepted": null` would do.
    let accepted = Sensor {
        device_class: Some("timestamp"),
        json_attributes_topic: Some(topics.upload_state(&sensor.kind, &sensor.key)),
        json_attributes_template: Some(
            "{{ {'pending': value_json.pending, 'refused': value_json.refused, 'last_error': value_json.last_error} | tojson }}"
                .into(),
        ),
        ..Sensor::new(common, topics.upload_accepted(&sensor.kind, &sensor.key))
    };
    ids.config(Entity::Sensor(accepted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sensor_of_an_upload_series() {
        let config = upload_config(
            &Topics::new("meter2mqtt", "homeassistant"),
            &UploadSensor {
                kind: "acme".into(),
                key: "home_heat-main_default_reading".into(),
                name: "Acme upload heat-main".into(),
            },
        );
        assert_eq!(
            config.topic,
            "homeassistant/sensor/meter2mqtt_acme_upload_home_heat_main_default_reading/config"
        );
        insta::assert_json_snapshot!(config.entity, {".device.sw_version" => "[version]", ".origin.sw_version" => "[version]"});
    }
}
