//! The times of a meter, each a timestamp sensor with a topic of its own, published once known:
//! a template over the state topic would have to render something before then, and Home
//! Assistant before 2024.x warns about a timestamp sensor that renders `None`.

use chrono::{DateTime, SecondsFormat, Utc};

use super::MeterDevice;
use crate::model::Meter;
use crate::mqtt::discovery::Sensor;
use crate::mqtt::payloads::MeterState;
use crate::mqtt::topics::Topics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timestamp {
    DataUntil,
    LastPoll,
    NextPoll,
}

impl Timestamp {
    /// In the order Home Assistant lists them.
    pub(crate) const ALL: [Timestamp; 3] = [Timestamp::DataUntil, Timestamp::LastPoll, Timestamp::NextPoll];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Timestamp::DataUntil => "data_until",
            Timestamp::LastPoll => "last_poll",
            Timestamp::NextPoll => "next_poll",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Timestamp::DataUntil => "Data until",
            Timestamp::LastPoll => "Last poll",
            Timestamp::NextPoll => "Next poll",
        }
    }

    pub(crate) fn sensor(self, device: &MeterDevice) -> Sensor {
        let mut sensor = MeterDevice::diagnostic(Sensor {
            device_class: Some("timestamp"),
            ..device.sensor(self.key(), Some(self.name()))
        });
        sensor.state_topic = self.topic(device.topics, device.meter);
        if self == Timestamp::NextPoll {
            sensor.common.enabled_by_default = Some(false);
        }
        sensor
    }

    pub(crate) fn topic(self, topics: &Topics, meter: &Meter) -> String {
        topics.meter_field(meter, self.key())
    }

    fn time(self, state: &MeterState) -> Option<DateTime<Utc>> {
        match self {
            Timestamp::DataUntil => state.data_until,
            Timestamp::LastPoll => state.last_poll,
            Timestamp::NextPoll => state.next_poll,
        }
    }

    /// The time in RFC 3339, once it is known.
    pub(crate) fn payload(self, state: &MeterState) -> Option<Vec<u8>> {
        self.time(state)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true).into_bytes())
    }
}
