//! A meter for the unit tests of this provider.

use super::settings::KIND;
use crate::model::{DeviceInfo, Direction, Medium, Meter, Unit};

/// A consumption meter `4711` in Prague, as the unit tests of this provider need one.
pub(crate) fn meter(medium: Medium, unit: Unit) -> Meter {
    Meter {
        provider: KIND.into(),
        id: "4711".into(),
        name: "m".into(),
        medium,
        direction: Direction::Consumption,
        unit,
        cumulative: true,
        timezone: chrono_tz::Europe::Prague,
        device: DeviceInfo::default(),
    }
}
