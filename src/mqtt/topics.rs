//! The topic layout (see docs/topics.md). Topic segments from ids are sanitised so a meter id can
//! never inject a level or a wildcard.

use crate::model::{Meter, SharedSource};

/// `[A-Za-z0-9_-]`, everything else `_`.
pub(crate) fn segment(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Lowercase `[a-z0-9_]`, as Home Assistant wants for object ids.
pub(crate) fn object_id(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

#[derive(Debug, Clone)]
pub(crate) struct Topics {
    pub(crate) base: String,
    pub(crate) discovery_prefix: String,
}

impl Topics {
    pub(crate) fn new(base: &str, discovery_prefix: &str) -> Self {
        Topics {
            base: base.to_owned(),
            discovery_prefix: discovery_prefix.to_owned(),
        }
    }

    pub(crate) fn availability(&self) -> String {
        format!("{}/bridge/availability", self.base)
    }

    pub(crate) fn bridge_state(&self) -> String {
        format!("{}/bridge/state", self.base)
    }

    /// The state of one upload series of provider `kind` (see `discovery::upload_config`).
    pub(crate) fn upload_state(&self, kind: &str, key: &str) -> String {
        format!("{}/{}/upload/{}/state", self.base, segment(kind), segment(key))
    }

    /// The time of the newest record the API accepted for that series: a topic of its own,
    /// published once there is one, so that its timestamp sensor never renders `None`.
    pub(crate) fn upload_accepted(&self, kind: &str, key: &str) -> String {
        format!("{}/{}/upload/{}/accepted", self.base, segment(kind), segment(key))
    }

    pub(crate) fn meter_base(&self, meter: &Meter) -> String {
        self.meter_base_of(&meter.provider, &meter.id)
    }

    fn meter_base_of(&self, provider: &str, meter_id: &str) -> String {
        format!("{}/{}/{}", self.base, segment(provider), segment(meter_id))
    }

    pub(crate) fn meter_state(&self, meter: &Meter) -> String {
        self.meter_state_of(&meter.provider, &meter.id)
    }

    /// The state topic of a meter known only by its ids (one that has vanished).
    pub(crate) fn meter_state_of(&self, provider: &str, meter_id: &str) -> String {
        format!("{}/state", self.meter_base_of(provider, meter_id))
    }

    /// `<meter>/data_until`, `<meter>/last_poll`, `<meter>/next_poll`: one timestamp each.
    pub(crate) fn meter_field(&self, meter: &Meter, field: &str) -> String {
        self.meter_field_of(&meter.provider, &meter.id, field)
    }

    /// A field topic of a meter known only by its ids (one that has vanished).
    pub(crate) fn meter_field_of(&self, provider: &str, meter_id: &str, field: &str) -> String {
        format!("{}/{field}", self.meter_base_of(provider, meter_id))
    }

    /// `<meter>/value/<key>`: a value that changes by the clock (a price per quarter hour), kept
    /// current between polls, as `{"value": ..., "attributes": {...}}`.
    pub(crate) fn meter_value(&self, meter: &Meter, key: &str) -> String {
        format!("{}/value/{}", self.meter_base(meter), object_id(key))
    }

    /// `<source>/<id>/<key>`: a value meters share (the CO2 intensity of a price area), as
    /// `{"value": ..., "attributes": {...}}`.
    pub(crate) fn shared_value(&self, shared: &SharedSource, key: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.base,
            segment(&shared.source),
            segment(&shared.id),
            object_id(key)
        )
    }

    pub(crate) fn meter_readings(&self, meter: &Meter) -> String {
        format!("{}/readings", self.meter_base(meter))
    }

    /// Home Assistant publishes `online` here when it (re)starts.
    pub(crate) fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    pub(crate) fn discovery(&self, component: &str, unique_id: &str) -> String {
        format!("{}/{}/{}/config", self.discovery_prefix, component, unique_id)
    }

    /// Whether `topic` is a discovery config (of any bridge under this prefix).
    pub(crate) fn is_discovery(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.discovery_prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.ends_with("/config"))
    }

    /// A filter for everything under the discovery prefix.
    pub(crate) fn discovery_filter(&self) -> String {
        format!("{}/#", self.discovery_prefix)
    }

    /// Where the demo's observer round-trips a marker to know the broker passed on everything
    /// before it; no bridge publishes there.
    pub(crate) fn demo_marker(&self) -> String {
        format!("{}/demo/marker", self.base)
    }

    /// A filter for everything under the base topic.
    pub(crate) fn base_filter(&self) -> String {
        format!("{}/#", self.base)
    }

    /// Prefix of every unique id, so two bridges with different base topics never collide.
    pub(crate) fn node_id(&self) -> String {
        object_id(&self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises() {
        assert_eq!(segment("a/b+c#d"), "a_b_c_d");
        assert_eq!(object_id("Meter2MQTT/Home"), "meter2mqtt_home");
        assert_eq!(object_id("__x--y__"), "x_y");
    }

    #[test]
    fn discovery_topics_are_recognised() {
        let topics = Topics::new("meter2mqtt", "homeassistant");
        assert!(topics.is_discovery(&topics.discovery("sensor", "x")));
        assert!(!topics.is_discovery("homeassistant/status"));
        assert!(!topics.is_discovery("homeassistantx/sensor/x/config"));
        assert!(!topics.is_discovery("meter2mqtt/eloverblik/1/state"));
        assert_eq!(topics.discovery_filter(), "homeassistant/#");
    }
}
