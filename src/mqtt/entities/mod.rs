//! One module per kind of meter entity, each holding all of it: its discovery config, the topic
//! its state goes to, and the payload published there (govee2mqtt's `EntityInstance` idea). The
//! discovery lists them in their order ([`crate::mqtt::discovery::meter_configs`]); the MQTT
//! sink publishes their states.
//!
//! `state`: the sensors read from the meter's state topic (newest interval, last day, API status);
//! `timestamp`: the times with a topic each (data until, last poll, next poll); `history`: how
//! far a history import has come; `value`: a provider's extra values, on the state topic or, when
//! they change by the clock, on a topic each; `shared`: values meters share (a price area's CO2
//! intensity), on a device and a topic of their own.

mod device;
pub(crate) mod history;
pub(crate) mod shared;
pub(crate) mod state;
pub(crate) mod timestamp;
pub(crate) mod value;

pub(crate) use device::{device_class, MeterDevice};

use crate::mqtt::topics::Topics;

/// Every topic of a meter besides its state topic that holds a retained message: cleared when
/// the meter disappears.
pub(crate) fn field_topics_of(topics: &Topics, provider: &str, meter_id: &str) -> Vec<String> {
    timestamp::Timestamp::ALL
        .iter()
        .map(|t| t.key())
        .chain([history::KEY])
        .map(|field| topics.meter_field_of(provider, meter_id, field))
        .collect()
}
