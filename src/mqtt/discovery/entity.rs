//! The discovery payloads as types: what every entity carries, and one type per entity kind.
//! Optional fields are left out of the JSON when unset, so a payload says only what it means.

use serde::Serialize;

pub(crate) const ORIGIN_NAME: &str = "meter2mqtt";
pub(crate) const SUPPORT_URL: &str = env!("CARGO_PKG_REPOSITORY");

/// The software behind the entities, as Home Assistant shows it in the device's page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Origin {
    pub(crate) name: &'static str,
    pub(crate) sw_version: &'static str,
    pub(crate) support_url: &'static str,
}

impl Origin {
    pub(crate) fn this() -> Origin {
        Origin {
            name: ORIGIN_NAME,
            sw_version: env!("CARGO_PKG_VERSION"),
            support_url: SUPPORT_URL,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Device {
    pub(crate) identifiers: Vec<String>,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suggested_area: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sw_version: Option<&'static str>,
    /// The bridge device, for a meter: Home Assistant shows the meter as connected through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) via_device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Availability {
    pub(crate) topic: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EntityCategory {
    Diagnostic,
}

/// What every entity carries, whatever its kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Common {
    /// `null`: the entity is the device's main feature and takes the device's name.
    pub(crate) name: Option<String>,
    pub(crate) unique_id: String,
    /// `<component>.<object id>`: the entity id Home Assistant gives it (replaces `object_id`).
    pub(crate) default_entity_id: String,
    pub(crate) device: Device,
    pub(crate) origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) availability: Option<Vec<Availability>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) entity_category: Option<EntityCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) icon: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enabled_by_default: Option<bool>,
}

/// A `sensor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Sensor {
    #[serde(flatten)]
    pub(crate) common: Common,
    pub(crate) state_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) json_attributes_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) json_attributes_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit_of_measurement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suggested_display_precision: Option<u8>,
    /// The states of an `enum` sensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) options: Option<Vec<&'static str>>,
}

impl Sensor {
    /// A sensor reading `state_topic`, with every optional field unset.
    pub(crate) fn new(common: Common, state_topic: String) -> Sensor {
        Sensor {
            common,
            state_topic,
            value_template: None,
            json_attributes_topic: None,
            json_attributes_template: None,
            unit_of_measurement: None,
            device_class: None,
            state_class: None,
            suggested_display_precision: None,
            options: None,
        }
    }

    /// Attributes from the same JSON topic as the state.
    pub(crate) fn attributes(mut self, template: String) -> Sensor {
        self.json_attributes_topic = Some(self.state_topic.clone());
        self.json_attributes_template = Some(template);
        self
    }
}

/// A `binary_sensor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BinarySensor {
    #[serde(flatten)]
    pub(crate) common: Common,
    pub(crate) state_topic: String,
    pub(crate) payload_on: &'static str,
    pub(crate) payload_off: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device_class: Option<&'static str>,
}

/// One entity of any kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Entity {
    Sensor(Sensor),
    BinarySensor(BinarySensor),
}

impl Entity {
    /// The platform, as the discovery topic names it.
    pub(crate) fn component(&self) -> &'static str {
        match self {
            Entity::Sensor(_) => "sensor",
            Entity::BinarySensor(_) => "binary_sensor",
        }
    }

    pub(crate) fn common(&self) -> &Common {
        match self {
            Entity::Sensor(s) => &s.common,
            Entity::BinarySensor(b) => &b.common,
        }
    }
}
