//! Home Assistant MQTT discovery: a bridge device, one device per meter and one per source of
//! shared values such as a price area's CO2 intensity (`via_device` the bridge), built from typed payloads (`entity`). Delayed interval values never get a
//! `state_class`: it would make Home Assistant book yesterday's consumption at the hour it was
//! fetched. Hourly history goes in as statistics.
//!
//! Everything here is a pure function of the topics, the meter and its values, so the payloads
//! are snapshot-tested without a broker.

mod bridge;
mod entity;
mod meter;
mod upload;

pub(crate) use bridge::bridge_configs;
pub(crate) use entity::{Availability, BinarySensor, Common, Device, Entity, EntityCategory, Origin, Sensor};
pub(crate) use meter::meter_configs;
pub(crate) use upload::{upload_config, UploadSensor};

use super::topics::{object_id, Topics};

/// One retained config message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiscoveryConfig {
    pub(crate) topic: String,
    pub(crate) entity: Entity,
}

impl DiscoveryConfig {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.entity).unwrap_or_default()
    }
}

/// What one entity is called: its key within the device and its display name.
pub(crate) struct Naming<'a> {
    pub(crate) key: &'a str,
    pub(crate) name: Option<&'a str>,
}

/// The ids of one device's entities: `<id_base>_<key>` is the unique id,
/// `<component>.<entity_base>_<key>` the entity id.
pub(crate) struct Ids<'a> {
    pub(crate) topics: &'a Topics,
    pub(crate) device: Device,
    pub(crate) id_base: String,
    pub(crate) entity_base: String,
}

impl Ids<'_> {
    pub(crate) fn common(&self, component: &str, naming: Naming, availability: bool) -> Common {
        let key = object_id(naming.key);
        Common {
            name: naming.name.map(str::to_owned),
            unique_id: format!("{}_{key}", self.id_base),
            default_entity_id: format!("{component}.{}_{key}", self.entity_base),
            device: self.device.clone(),
            origin: Origin::this(),
            availability: availability.then(|| {
                vec![Availability {
                    topic: self.topics.availability(),
                }]
            }),
            entity_category: None,
            icon: None,
            enabled_by_default: None,
        }
    }

    pub(crate) fn config(&self, entity: Entity) -> DiscoveryConfig {
        DiscoveryConfig {
            topic: self.topics.discovery(entity.component(), &entity.common().unique_id),
            entity,
        }
    }
}

pub(crate) fn bridge_identifier(topics: &Topics) -> String {
    format!("{}_bridge", topics.node_id())
}
