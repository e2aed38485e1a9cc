//! The sensors read from a meter's state topic: its newest interval (the device's main value),
//! its last day, the API's health; the topic, and the payload they read.

use super::MeterDevice;
use crate::model::Meter;
use crate::mqtt::discovery::Sensor;
use crate::mqtt::payloads::MeterState;
use crate::mqtt::topics::Topics;

/// Every `api_status` the state topic can carry.
pub(crate) const API_STATES: [&str; 6] = ["pending", "ok", "auth_error", "rate_limited", "unavailable", "error"];

/// The newest interval. Delayed data, so no state_class.
pub(crate) fn latest(device: &MeterDevice) -> Sensor {
    device
        .amount(Sensor {
            value_template: Some("{{ value_json.latest.value if value_json.latest else None }}".into()),
            suggested_display_precision: Some(3),
            ..device.sensor("latest", None)
        })
        .attributes("{{ (value_json.latest or {}) | tojson }}".into())
}

pub(crate) fn last_day(device: &MeterDevice) -> Sensor {
    device
        .amount(Sensor {
            value_template: Some("{{ value_json.last_day.value if value_json.last_day else None }}".into()),
            suggested_display_precision: Some(2),
            ..device.sensor("last_day", Some("Last day"))
        })
        .attributes("{{ (value_json.last_day or {}) | tojson }}".into())
}

pub(crate) fn api_status(device: &MeterDevice) -> Sensor {
    let mut api_status = MeterDevice::diagnostic(Sensor {
        value_template: Some("{{ value_json.api_status }}".into()),
        device_class: Some("enum"),
        options: Some(API_STATES.to_vec()),
        ..device.sensor("api_status", Some("API status"))
    })
    .attributes("{{ {'error': value_json.api_error} | tojson }}".into());
    api_status.common.icon = Some("mdi:api");
    api_status
}

pub(crate) fn topic(topics: &Topics, meter: &Meter) -> String {
    topics.meter_state(meter)
}

pub(crate) fn payload(state: &MeterState) -> Vec<u8> {
    serde_json::to_vec(state).unwrap_or_default()
}
