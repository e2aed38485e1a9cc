//! The device of one meter: what every entity of it shares.

use crate::model::{Medium, Meter, Unit};
use crate::mqtt::discovery::{bridge_identifier, Device, DiscoveryConfig, Entity, EntityCategory, Ids, Naming, Sensor};
use crate::mqtt::topics::{object_id, Topics};

/// The Home Assistant device class for an amount of `medium` in `unit`, where one fits.
pub(crate) fn device_class(medium: Medium, unit: &Unit) -> Option<&'static str> {
    match medium {
        Medium::Gas if unit.is_volume() => Some("gas"),
        Medium::Water if unit.is_volume() => Some("water"),
        _ if unit.is_energy() => Some("energy"),
        _ if unit.is_volume() => Some("volume"),
        _ => None,
    }
}

/// What every entity of one meter shares: its device, its ids, its state topic.
pub(crate) struct MeterDevice<'a> {
    pub(crate) topics: &'a Topics,
    pub(crate) meter: &'a Meter,
    ids: Ids<'a>,
    state: String,
}

impl<'a> MeterDevice<'a> {
    pub(crate) fn new(topics: &'a Topics, meter: &'a Meter) -> MeterDevice<'a> {
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
        MeterDevice {
            topics,
            meter,
            ids,
            state: topics.meter_state(meter),
        }
    }

    /// A sensor of this meter read from its state topic.
    pub(crate) fn sensor(&self, key: &str, name: Option<&str>) -> Sensor {
        Sensor::new(
            self.ids.common("sensor", Naming { key, name }, true),
            self.state.clone(),
        )
    }

    /// An amount in the meter's unit.
    pub(crate) fn amount(&self, sensor: Sensor) -> Sensor {
        Sensor {
            unit_of_measurement: Some(self.meter.unit.as_str().to_owned()),
            device_class: device_class(self.meter.medium, &self.meter.unit),
            ..sensor
        }
    }

    pub(crate) fn diagnostic(mut sensor: Sensor) -> Sensor {
        sensor.common.entity_category = Some(EntityCategory::Diagnostic);
        sensor
    }

    pub(crate) fn config(&self, sensor: Sensor) -> DiscoveryConfig {
        self.ids.config(Entity::Sensor(sensor))
    }
}

fn meter_identifier(topics: &Topics, meter: &Meter) -> String {
    format!(
        "{}_{}_{}",
        topics.node_id(),
        object_id(&meter.provider),
        object_id(&meter.id)
    )
}
