//! The topic layout (see docs/topics.md). Topic segments from ids are sanitised so a meter id can
//! never inject a level or a wildcard.

use crate::model::Meter;

/// `[A-Za-z0-9_-]`, everything else `_`.
pub fn segment(raw: &str) -> String {
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
pub fn object_id(raw: &str) -> String {
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

/// The state fields a meter also publishes on topics of their own (see [`Topics::meter_field`]):
/// sensors read them there, so nothing is published (and HA shows "unknown") until they are known.
pub const FIELD_TOPICS: [&str; 4] = ["data_until", "last_poll", "next_poll", "history_import"];

#[derive(Debug, Clone)]
pub struct Topics {
    pub base: String,
    pub discovery_prefix: String,
}

impl Topics {
    pub fn new(base: &str, discovery_prefix: &str) -> Self {
        Topics {
            base: base.to_owned(),
            discovery_prefix: discovery_prefix.to_owned(),
        }
    }

    pub fn availability(&self) -> String {
        format!("{}/bridge/availability", self.base)
    }

    pub fn bridge_state(&self) -> String {
        format!("{}/bridge/state", self.base)
    }

    pub fn meter_base(&self, meter: &Meter) -> String {
        self.meter_base_of(&meter.provider, &meter.id)
    }

    fn meter_base_of(&self, provider: &str, meter_id: &str) -> String {
        format!("{}/{}/{}", self.base, segment(provider), segment(meter_id))
    }

    pub fn meter_state(&self, meter: &Meter) -> String {
        self.meter_state_of(&meter.provider, &meter.id)
    }

    /// The state topic of a meter known only by its ids (one that has vanished).
    pub fn meter_state_of(&self, provider: &str, meter_id: &str) -> String {
        format!("{}/state", self.meter_base_of(provider, meter_id))
    }

    /// `<meter>/data_until`, `<meter>/last_poll`, `<meter>/next_poll`: one timestamp each.
    pub fn meter_field(&self, meter: &Meter, field: &str) -> String {
        format!("{}/{field}", self.meter_base(meter))
    }

    /// `<meter>/value/<key>`: a value that changes by the clock (a price per quarter hour), kept
    /// current between polls, as `{"value": ..., "attributes": {...}}`.
    pub fn meter_value(&self, meter: &Meter, key: &str) -> String {
        format!("{}/value/{}", self.meter_base(meter), object_id(key))
    }

    pub fn meter_readings(&self, meter: &Meter) -> String {
        format!("{}/readings", self.meter_base(meter))
    }

    /// Home Assistant publishes `online` here when it (re)starts.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    pub fn discovery(&self, component: &str, unique_id: &str) -> String {
        format!("{}/{}/{}/config", self.discovery_prefix, component, unique_id)
    }

    /// Prefix of every unique id, so two bridges with different base topics never collide.
    pub fn node_id(&self) -> String {
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
}
