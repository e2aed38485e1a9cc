//! A provider's extra values (tariffs, monthly totals, registers, prices): a sensor each, read
//! from `extras.<key>` of the state topic, or, for a value that changes by the clock (a price per
//! quarter hour), from a topic of its own that is kept current between polls.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{device_class, MeterDevice};
use crate::model::{Meter, MeterValue, Unit, ValueKind};
use crate::mqtt::discovery::Sensor;
use crate::mqtt::topics::{object_id, Topics};

pub(crate) fn sensor(device: &MeterDevice, value: &MeterValue) -> Sensor {
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
pub(crate) fn is_clocked(value: &MeterValue) -> bool {
    !value.timetable.is_empty()
}

/// `<meter>/value/<key>`: the topic of a value that changes by the clock.
pub(crate) fn clocked_topic(topics: &Topics, meter: &Meter, value: &MeterValue) -> String {
    topics.meter_value(meter, &value.key)
}

/// The attribute that price tools read as the value now (Nordpool's `current_price`).
const CURRENT: &str = "current_price";

/// `{"value": <the value at now>, "attributes": {...}}` on a clocked value's topic. An attribute
/// named [`CURRENT`] repeats the value and follows it.
pub(crate) fn clocked_payload(value: &MeterValue, now: DateTime<Utc>) -> Vec<u8> {
    let current = value.value_at(now);
    let mut attributes = value.attributes.clone();
    if let Some(slot) = attributes.get_mut(CURRENT) {
        *slot = json!(current);
    }
    let body = json!({
        "value": current,
        "attributes": Value::Object(attributes),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `extras` of the state payload: every value of the meter's own that does not change by the
/// clock, by key.
pub(crate) fn extras(values: &[MeterValue]) -> Map<String, Value> {
    values
        .iter()
        .filter(|v| !is_clocked(v) && v.shared.is_none())
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
        ValueKind::Measurement => {
            sensor.state_class = Some("measurement");
        }
        ValueKind::Other => {}
    }
    sensor
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::TimedValue;

    #[test]
    fn current_price_follows_the_clock_with_the_value() {
        let at = Utc.with_ymd_and_hms(2025, 11, 26, 10, 0, 0).unwrap();
        let quarter = chrono::Duration::minutes(15);
        let mut attributes = Map::new();
        attributes.insert(CURRENT.into(), json!(1.0));
        attributes.insert("average".into(), json!(1.5));
        let value = MeterValue {
            key: "price".into(),
            name: "Price".into(),
            value: Some(1.0),
            unit: Some("DKK/kWh".into()),
            kind: ValueKind::Price,
            attributes,
            timetable: vec![
                TimedValue {
                    start: at,
                    end: at + quarter,
                    value: 1.0,
                },
                TimedValue {
                    start: at + quarter,
                    end: at + quarter * 2,
                    value: 2.0,
                },
            ],
            shared: None,
        };
        let at_second: Value = serde_json::from_slice(&clocked_payload(&value, at + quarter)).unwrap();
        assert_eq!(at_second["value"], json!(2.0));
        assert_eq!(at_second["attributes"][CURRENT], json!(2.0));
        assert_eq!(at_second["attributes"]["average"], json!(1.5));
        let after: Value = serde_json::from_slice(&clocked_payload(&value, at + quarter * 2)).unwrap();
        assert_eq!(after["attributes"][CURRENT], Value::Null);
        // Without the attribute, none is added.
        let mut plain = value.clone();
        plain.attributes.remove(CURRENT);
        let body: Value = serde_json::from_slice(&clocked_payload(&plain, at)).unwrap();
        assert!(body["attributes"].get(CURRENT).is_none());
    }
}
