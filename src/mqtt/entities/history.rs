//! How far a history import has come, in percent: a topic of its own, since before the first
//! read there is no progress to show.

use super::MeterDevice;
use crate::model::Meter;
use crate::mqtt::discovery::Sensor;
use crate::mqtt::payloads::MeterState;
use crate::mqtt::topics::Topics;

pub(crate) const KEY: &str = "history_import";

pub(crate) fn sensor(device: &MeterDevice) -> Sensor {
    let mut history_import = MeterDevice::diagnostic(Sensor {
        value_template: Some("{{ value_json.percent }}".into()),
        unit_of_measurement: Some("%".into()),
        suggested_display_precision: Some(0),
        ..device.sensor(KEY, Some("History import"))
    });
    history_import.state_topic = topic(device.topics, device.meter);
    let mut history_import = history_import.attributes("{{ value_json | tojson }}".into());
    history_import.common.icon = Some("mdi:progress-download");
    history_import
}

pub(crate) fn topic(topics: &Topics, meter: &Meter) -> String {
    topics.meter_field(meter, KEY)
}

/// The progress, once a read has reported some.
pub(crate) fn payload(state: &MeterState) -> Option<Vec<u8>> {
    state.history_import.as_ref().and_then(|h| serde_json::to_vec(h).ok())
}
