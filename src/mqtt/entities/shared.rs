//! Values that meters share (the CO2 intensity of a price area): one device per source, such
//! as `Energi Data Service DK1`, connected through the bridge device and belonging to no meter.
//! Each has a topic of its own (`<base>/<source>/<id>/<key>`) with the payload of a clocked
//! value (`value::clocked_payload`, published by `sink::clocked`); two meters of the same area give the same config and payload, published once.

use crate::model::{MeterValue, SharedSource, ValueKind};
use crate::mqtt::discovery::{bridge_identifier, Device, DiscoveryConfig, Entity, Ids, Naming, Sensor};
use crate::mqtt::topics::{object_id, Topics};

/// The configs of the shared values among `values`.
pub(crate) fn configs(topics: &Topics, values: &[MeterValue]) -> Vec<DiscoveryConfig> {
    values
        .iter()
        .filter_map(|value| Some((value.shared.as_ref()?, value)))
        .map(|(shared, value)| config(topics, shared, value))
        .collect()
}

/// The topic of a shared value; `None` for a meter's own.
pub(crate) fn topic(topics: &Topics, value: &MeterValue) -> Option<String> {
    value
        .shared
        .as_ref()
        .map(|shared| topics.shared_value(shared, &value.key))
}

fn config(topics: &Topics, shared: &SharedSource, value: &MeterValue) -> DiscoveryConfig {
    let base = format!("{}_{}", object_id(&shared.source), object_id(&shared.id));
    let identifier = format!("{}_{base}", topics.node_id());
    let ids = Ids {
        topics,
        device: Device {
            identifiers: vec![identifier.clone()],
            name: shared.name.clone(),
            manufacturer: Some(shared.manufacturer.clone()),
            via_device: Some(bridge_identifier(topics)),
            ..Default::default()
        },
        id_base: identifier,
        entity_base: base,
    };
    let naming = Naming {
        key: &value.key,
        name: Some(&value.name),
    };
    let mut sensor = Sensor {
        value_template: Some("{{ value_json.value }}".into()),
        unit_of_measurement: value.unit.clone(),
        ..Sensor::new(
            ids.common("sensor", naming, true),
            topics.shared_value(shared, &value.key),
        )
    }
    .attributes("{{ value_json.attributes | tojson }}".into());
    // No device class: Home Assistant has none for an intensity per kWh (`carbon_dioxide` is a
    // concentration in ppm), and without one any unit is accepted.
    if value.kind == ValueKind::Measurement {
        sensor.state_class = Some("measurement");
        sensor.suggested_display_precision = Some(0);
    }
    if value.unit.as_deref() == Some("g/kWh") {
        sensor.common.icon = Some("mdi:molecule-co2");
    }
    ids.config(Entity::Sensor(sensor))
}
