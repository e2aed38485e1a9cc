//! A provider's extra values (tariffs, monthly totals, registers, prices): a sensor each, read
//! from `extras.<key>` of the state topic, or, for a value that changes by the clock (a price per
//! quarter hour), from a topic of its own that is kept current between polls.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{device_class, MeterDevice};
use crate::model::{Meter, MeterValue, Unit, ValueKind};
use crate::mqtt::discovery::Sensor;
use crate::mqtt::topics::{object_id, Topics};

pub fn sensor(device: &MeterDevice, value: &MeterValue) -> Sensor {
    let mut entity = extra_sensor(device.sensor(&value.key, Some(&value.name)), device.meter, value);
    if is_clocked(value) {
        // Kept current by the clock on a topic of its own: see `mqtt::sink::clocked`.
        entity.state_topic = clocked_topic(device.topics, device.meter, value);
        entity.value_template = Some("{{ value_json.value }}".into());
        entity = entity.attributes("{{ value_json.attributes | tojson }}".into());
    }
    entity
}

/// A value with a timetable changes by the clock.
pub fn is_clocked(value: &MeterValue) -> bool {
    !value.timetable.is_empty()
}

/// `<meter>/value/<key>`: the topic of a value that changes by the clock.
pub fn clocked_topic(topics: &Topics, meter: &Meter, value: &MeterValue) -> String {
    topics.meter_value(meter, &value.key)
}

/// `{"value": <the value at now>, "attributes": {...}}` on a clocked value's topic.
pub fn clocked_payload(value: &MeterValue, now: DateTime<Utc>) -> Vec<u8> {
    let body = json!({
        "value": value.value_at(now),
        "attributes": Value::Object(value.attributes.clone()),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `extras` of the state payload: every value that does not change by the clock, by key.
pub fn extras(values: &[MeterValue]) -> Map<String, Value> {
    values
        .iter()
        .filter(|v| !is_clocked(v))
        .map(|v| {
            let attributes = Value::Object(v.attributes.clone());
            (object_id(&v.key), json!({ "value": v.value, "attributes": attributes }))
        })
        .collect()
}

/// A provider value, read from `extras.<key>` of the state topic.
fn extra_sensor(sensor: Sensor, meter: &Meter, value: &MeterValue) -> Sensor {
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
        ValueKind::Other => {}
    }
    sensor
}
