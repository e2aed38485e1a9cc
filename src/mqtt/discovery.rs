//! Home Assistant MQTT discovery: a bridge device and one device per meter (`via_device` the
//! bridge). Delayed interval values never get a `state_class`: it would make Home Assistant book
//! yesterday's consumption at the hour it was fetched. Hourly history goes in as statistics.

use serde_json::{json, Map, Value};

use super::topics::{object_id, Topics};
use crate::model::{Medium, Meter, MeterValue, Unit, ValueKind};

pub const ORIGIN_NAME: &str = "meter2mqtt";
pub const SUPPORT_URL: &str = env!("CARGO_PKG_REPOSITORY");

/// One retained config message.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    pub topic: String,
    pub payload: Value,
}

pub fn origin() -> Value {
    json!({ "name": ORIGIN_NAME, "sw_version": env!("CARGO_PKG_VERSION"), "support_url": SUPPORT_URL })
}

fn bridge_identifier(topics: &Topics) -> String {
    format!("{}_bridge", topics.node_id())
}

fn meter_identifier(topics: &Topics, meter: &Meter) -> String {
    format!(
        "{}_{}_{}",
        topics.node_id(),
        object_id(&meter.provider),
        object_id(&meter.id)
    )
}

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

fn availability(topics: &Topics) -> Value {
    json!([{ "topic": topics.availability() }])
}

struct Entity<'a> {
    component: &'static str,
    key: &'a str,
    name: Option<&'a str>,
    fields: Map<String, Value>,
}

fn config(topics: &Topics, device: &Value, id_base: &str, entity_base: &str, entity: Entity) -> DiscoveryConfig {
    let unique_id = format!("{id_base}_{}", object_id(entity.key));
    let mut payload = Map::new();
    payload.insert(
        "name".into(),
        entity.name.map_or(Value::Null, |n| Value::String(n.into())),
    );
    payload.insert("unique_id".into(), Value::String(unique_id.clone()));
    payload.insert(
        "default_entity_id".into(),
        Value::String(format!(
            "{}.{}_{}",
            entity.component,
            entity_base,
            object_id(entity.key)
        )),
    );
    payload.insert("device".into(), device.clone());
    payload.insert("origin".into(), origin());
    payload.extend(entity.fields);
    DiscoveryConfig {
        topic: topics.discovery(entity.component, &unique_id),
        payload: Value::Object(payload),
    }
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The bridge device: connectivity, version and last error as diagnostics.
pub fn bridge_configs(topics: &Topics) -> Vec<DiscoveryConfig> {
    let device = json!({
        "identifiers": [bridge_identifier(topics)],
        "name": "meter2mqtt",
        "manufacturer": "meter2mqtt",
        "model": "Meter bridge",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let id_base = bridge_identifier(topics);
    let entity_base = format!("{}_bridge", topics.node_id());
    let state = topics.bridge_state();
    let entities = vec![
        Entity {
            component: "binary_sensor",
            key: "connection",
            name: Some("Connection"),
            fields: fields(json!({
                "state_topic": topics.availability(),
                "payload_on": "online",
                "payload_off": "offline",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
            })),
        },
        Entity {
            component: "sensor",
            key: "version",
            name: Some("Version"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.version }}",
                "entity_category": "diagnostic",
                "icon": "mdi:tag",
                "availability": availability(topics),
            })),
        },
        Entity {
            component: "sensor",
            key: "last_error",
            name: Some("Last error"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ (value_json.last_error or 'none')[:255] }}",
                "json_attributes_topic": state,
                "json_attributes_template": "{{ {'at': value_json.last_error_at, 'message': value_json.last_error} | tojson }}",
                "entity_category": "diagnostic",
                "icon": "mdi:alert-circle-outline",
                "availability": availability(topics),
            })),
        },
        Entity {
            component: "sensor",
            key: "meters",
            name: Some("Meters"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.meters }}",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:counter",
                "availability": availability(topics),
            })),
        },
    ];
    entities
        .into_iter()
        .map(|e| config(topics, &device, &id_base, &entity_base, e))
        .collect()
}

/// Everything Home Assistant shows for one meter.
pub fn meter_configs(topics: &Topics, meter: &Meter, values: &[MeterValue]) -> Vec<DiscoveryConfig> {
    let mut device = json!({
        "identifiers": [meter_identifier(topics, meter)],
        "name": meter.name,
        "via_device": bridge_identifier(topics),
    });
    let d = &meter.device;
    for (key, value) in [
        ("manufacturer", &d.manufacturer),
        ("model", &d.model),
        ("serial_number", &d.serial_number),
        ("suggested_area", &d.suggested_area),
    ] {
        if let Some(v) = value {
            device[key] = Value::String(v.clone());
        }
    }
    let id_base = meter_identifier(topics, meter);
    let entity_base = format!("{}_{}", object_id(&meter.provider), object_id(&meter.id));
    let state = topics.meter_state(meter);
    let unit = meter.unit.as_str();
    let class = device_class(meter.medium, &meter.unit);
    let amount = |mut m: Map<String, Value>| {
        m.insert("unit_of_measurement".into(), Value::String(unit.into()));
        if let Some(class) = class {
            m.insert("device_class".into(), Value::String(class.into()));
        }
        m
    };

    let mut entities = vec![
        // The device's main value: the newest interval. Delayed data, so no state_class.
        Entity {
            component: "sensor",
            key: "latest",
            name: None,
            fields: amount(fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.latest.value if value_json.latest else None }}",
                "json_attributes_topic": state,
                "json_attributes_template": "{{ (value_json.latest or {}) | tojson }}",
                "suggested_display_precision": 3,
                "availability": availability(topics),
            }))),
        },
        Entity {
            component: "sensor",
            key: "last_day",
            name: Some("Last day"),
            fields: amount(fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.last_day.value if value_json.last_day else None }}",
                "json_attributes_topic": state,
                "json_attributes_template": "{{ (value_json.last_day or {}) | tojson }}",
                "suggested_display_precision": 2,
                "availability": availability(topics),
            }))),
        },
        Entity {
            component: "sensor",
            key: "data_until",
            name: Some("Data until"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.data_until or None }}",
                "device_class": "timestamp",
                "entity_category": "diagnostic",
                "availability": availability(topics),
            })),
        },
        Entity {
            component: "sensor",
            key: "last_poll",
            name: Some("Last poll"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.last_poll or None }}",
                "device_class": "timestamp",
                "entity_category": "diagnostic",
                "availability": availability(topics),
            })),
        },
        Entity {
            component: "sensor",
            key: "next_poll",
            name: Some("Next poll"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.next_poll or None }}",
                "device_class": "timestamp",
                "entity_category": "diagnostic",
                "enabled_by_default": false,
                "availability": availability(topics),
            })),
        },
        Entity {
            component: "sensor",
            key: "api_status",
            name: Some("API status"),
            fields: fields(json!({
                "state_topic": state,
                "value_template": "{{ value_json.api_status }}",
                "json_attributes_topic": state,
                "json_attributes_template": "{{ {'error': value_json.api_error} | tojson }}",
                "device_class": "enum",
                "options": ["pending", "ok", "auth_error", "rate_limited", "unavailable", "error"],
                "entity_category": "diagnostic",
                "icon": "mdi:api",
                "availability": availability(topics),
            })),
        },
    ];

    for value in values {
        entities.push(Entity {
            component: "sensor",
            key: &value.key,
            name: Some(&value.name),
            fields: value_fields(topics, meter, value),
        });
    }
    entities
        .into_iter()
        .map(|e| config(topics, &device, &id_base, &entity_base, e))
        .collect()
}

fn value_fields(topics: &Topics, meter: &Meter, value: &MeterValue) -> Map<String, Value> {
    let state = topics.meter_state(meter);
    let key = object_id(&value.key);
    let mut m = fields(json!({
        "state_topic": state,
        "value_template": format!("{{{{ value_json.extras.{key}.value if value_json.extras.{key} is defined else None }}}}"),
        "json_attributes_topic": state,
        "json_attributes_template": format!("{{{{ (value_json.extras.{key}.attributes if value_json.extras.{key} is defined else {{}}) | tojson }}}}"),
        "availability": availability(topics),
    }));
    let unit = value.unit.as_deref().map(Unit::parse);
    if let Some(unit) = &value.unit {
        m.insert(
            "unit_of_measurement".into(),
            Value::String(Unit::parse(unit).as_str().to_owned()),
        );
    }
    let class = unit.as_ref().and_then(|u| device_class(meter.medium, u));
    match value.kind {
        ValueKind::Register => {
            if let Some(class) = class {
                m.insert("device_class".into(), class.into());
            }
            m.insert("state_class".into(), "total_increasing".into());
            m.insert("suggested_display_precision".into(), 3.into());
        }
        ValueKind::PeriodTotal => {
            if let Some(class) = class {
                m.insert("device_class".into(), class.into());
            }
            m.insert("suggested_display_precision".into(), 2.into());
        }
        ValueKind::Price => {
            m.insert("state_class".into(), "measurement".into());
            m.insert("icon".into(), "mdi:cash-clock".into());
            m.insert("suggested_display_precision".into(), 4.into());
        }
        ValueKind::Monetary => {
            if value
                .unit
                .as_deref()
                .is_some_and(|u| u.len() == 3 && u.chars().all(|c| c.is_ascii_uppercase()))
            {
                m.insert("device_class".into(), "monetary".into());
            }
            m.insert("icon".into(), "mdi:cash".into());
            m.insert("suggested_display_precision".into(), 2.into());
        }
        ValueKind::Other => {}
    }
    m
}

/// An empty retained payload removes an entity from Home Assistant.
pub fn removal(topic: &str) -> DiscoveryConfig {
    DiscoveryConfig {
        topic: topic.to_owned(),
        payload: Value::Null,
    }
}

impl DiscoveryConfig {
    pub fn bytes(&self) -> Vec<u8> {
        if self.payload.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.payload).unwrap_or_default()
        }
    }
}
