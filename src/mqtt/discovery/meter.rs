//! Everything Home Assistant shows for one meter: its newest interval and day, when data was
//! read, the API's health, and the provider's extra values (tariffs, monthly totals, registers).
//! Each kind of entity is defined in [`crate::mqtt::entities`]; this lists them in their order.

use crate::model::{Meter, MeterValue};
use crate::mqtt::entities::timestamp::Timestamp;
use crate::mqtt::entities::{history, state, value, MeterDevice};
use crate::mqtt::topics::Topics;

use super::DiscoveryConfig;

pub(crate) fn meter_configs(topics: &Topics, meter: &Meter, values: &[MeterValue]) -> Vec<DiscoveryConfig> {
    let device = MeterDevice::new(topics, meter);
    let mut entities = vec![state::latest(&device), state::last_day(&device)];
    entities.extend(Timestamp::ALL.iter().map(|t| t.sensor(&device)));
    entities.push(state::api_status(&device));
    entities.push(history::sensor(&device));
    // Shared values have a device of their own: see `entities::shared`.
    entities.extend(
        values
            .iter()
            .filter(|v| v.shared.is_none())
            .map(|v| value::sensor(&device, v)),
    );
    entities.into_iter().map(|s| device.config(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiStatus, DeviceInfo, Direction, Medium, Unit, ValueKind};
    use crate::mqtt::entities::device_class;
    use crate::mqtt::entities::state::API_STATES;

    fn meter(medium: Medium, unit: Unit) -> Meter {
        Meter {
            provider: "sample".into(),
            id: "house".into(),
            name: "House".into(),
            medium,
            direction: Direction::Consumption,
            unit,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo {
                manufacturer: Some("Maker".into()),
                model: None,
                serial_number: Some("S1".into()),
                suggested_area: Some("Basement".into()),
            },
        }
    }

    fn value(key: &str, kind: ValueKind, unit: Option<&str>) -> MeterValue {
        MeterValue {
            key: key.into(),
            name: key.replace('_', " "),
            value: Some(1.0),
            unit: unit.map(str::to_owned),
            kind,
            attributes: Default::default(),
            timetable: Vec::new(),
            shared: None,
        }
    }

    #[test]
    fn a_meter_with_every_kind_of_value() {
        let values = [
            value("register", ValueKind::Register, Some("m3")),
            value("this_month", ValueKind::PeriodTotal, Some("m3")),
            value("tariff", ValueKind::Price, Some("DKK/kWh")),
            value("subscriptions", ValueKind::Monetary, Some("DKK")),
            value("other", ValueKind::Other, None),
        ];
        let topics = Topics::new("meter2mqtt", "homeassistant");
        let configs = meter_configs(&topics, &meter(Medium::Water, Unit::CubicMeters), &values);
        assert_eq!(configs.len(), 7 + values.len());
        for config in &configs {
            assert_eq!(
                config.topic,
                format!("homeassistant/sensor/{}/config", config.entity.common().unique_id)
            );
            let name = config.entity.common().unique_id.clone();
            insta::assert_json_snapshot!(name, config.entity, { ".origin.sw_version" => "[version]" });
        }
    }

    #[test]
    fn a_price_that_changes_by_the_clock_has_its_own_topic() {
        let start = chrono::DateTime::parse_from_rfc3339("2025-10-26T00:00:00+02:00")
            .unwrap()
            .to_utc();
        let mut price = value("price", ValueKind::Price, Some("DKK/kWh"));
        price.name = "Price".into();
        price.timetable = vec![crate::model::TimedValue {
            start,
            end: start + chrono::Duration::minutes(15),
            value: 2.1,
        }];
        let topics = Topics::new("meter2mqtt", "homeassistant");
        let mut m = meter(Medium::Electricity, Unit::KWh);
        m.provider = "eloverblik".into();
        m.id = "571313180100000001".into();
        m.name = "Testvej 1 consumption".into();
        let configs = meter_configs(&topics, &m, &[price]);
        let config = configs.last().unwrap();
        insta::assert_json_snapshot!("price_sensor", config.entity, { ".origin.sw_version" => "[version]" });
    }

    #[test]
    fn device_classes_fit_the_unit() {
        assert_eq!(device_class(Medium::Gas, &Unit::CubicMeters), Some("gas"));
        assert_eq!(device_class(Medium::Gas, &Unit::KWh), Some("energy"));
        assert_eq!(device_class(Medium::Water, &Unit::Liters), Some("water"));
        assert_eq!(device_class(Medium::Heat, &Unit::GJ), Some("energy"));
        assert_eq!(device_class(Medium::Heat, &Unit::CubicMeters), Some("volume"));
        assert_eq!(device_class(Medium::Other, &Unit::Other("pcs".into())), None);
    }

    #[test]
    fn api_status_options_cover_every_status() {
        for status in [
            ApiStatus::Ok,
            ApiStatus::AuthError,
            ApiStatus::RateLimited,
            ApiStatus::Unavailable,
            ApiStatus::Error,
        ] {
            assert!(API_STATES.contains(&status.as_str()), "{}", status.as_str());
        }
    }
}
