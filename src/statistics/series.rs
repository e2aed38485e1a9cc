//! The identity of one statistic in Home Assistant: id, name, unit and unit class.

use crate::model::{Meter, PricePurpose, Unit};

/// The `source` of every statistic, and the domain part of every statistic id.
pub(crate) const SOURCE: &str = "meter2mqtt";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Series {
    /// `meter2mqtt:<object_id>`.
    pub(crate) statistic_id: String,
    /// `[a-z0-9_]`, no leading, trailing or doubled `_`, as HA requires.
    pub(crate) object_id: String,
    pub(crate) name: String,
    pub(crate) unit: String,
    /// HA's unit converter class, which lets the Energy dashboard convert units.
    pub(crate) unit_class: Option<&'static str>,
}

impl Series {
    /// The meter's own quantity: `<provider>_<meter>_consumption` or `_production`. Named after
    /// the meter, with its direction added only when the meter's name does not already say it.
    pub(crate) fn energy(meter: &Meter) -> Series {
        let direction = meter.direction.as_str();
        let name = display_name(meter);
        let name = if has_word(name, direction) {
            name.to_owned()
        } else {
            format!("{name} {direction}")
        };
        Series::new(
            meter,
            direction,
            name,
            meter.unit.as_str().to_owned(),
            unit_class(&meter.unit),
        )
    }

    /// What the meter's quantity cost (`_cost`) or earned (`_compensation`), in `currency`.
    /// The name replaces a direction word the meter's name ends with: `Testvej 1 consumption`
    /// gives `Testvej 1 cost`.
    pub(crate) fn money(meter: &Meter, purpose: PricePurpose, currency: &str) -> Series {
        let word = match purpose {
            PricePurpose::Cost => "cost",
            PricePurpose::Compensation => "compensation",
        };
        let name = display_name(meter);
        let base = name
            .strip_suffix(meter.direction.as_str())
            .filter(|rest| rest.ends_with(' '))
            .map_or(name, str::trim_end);
        Series::new(meter, word, format!("{base} {word}"), currency.to_owned(), None)
    }

    fn new(meter: &Meter, suffix: &str, name: String, unit: String, unit_class: Option<&'static str>) -> Series {
        let object_id = slug(&format!("{}_{}_{suffix}", meter.provider, meter.id));
        Series {
            statistic_id: format!("{SOURCE}:{object_id}"),
            object_id,
            name,
            unit,
            unit_class,
        }
    }
}

fn display_name(meter: &Meter) -> &str {
    if meter.name.trim().is_empty() {
        &meter.id
    } else {
        meter.name.trim()
    }
}

/// Whether `word` is one of the words of `name`, in any case.
fn has_word(name: &str, word: &str) -> bool {
    name.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// Energy units convert within HA's `energy` class and volumes within `volume`; any other
/// unit gets no class, so HA keeps it as it is.
pub(crate) fn unit_class(unit: &Unit) -> Option<&'static str> {
    if unit.is_energy() {
        Some("energy")
    } else if unit.is_volume() {
        Some("volume")
    } else {
        None
    }
}

/// Lowercase ASCII letters and digits; every other run of characters becomes one `_`.
fn slug(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceInfo, Direction, Medium};

    fn meter(provider: &str, id: &str, name: &str, direction: Direction, unit: Unit) -> Meter {
        Meter {
            provider: provider.into(),
            id: id.into(),
            name: name.into(),
            medium: Medium::Electricity,
            direction,
            unit,
            cumulative: false,
            timezone: chrono_tz::Europe::Copenhagen,
            device: DeviceInfo::default(),
        }
    }

    /// HA's rule for external statistic ids (recorder `VALID_STATISTIC_ID`), written out.
    fn valid_statistic_id(id: &str) -> bool {
        let Some((domain, object)) = id.split_once(':') else {
            return false;
        };
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !p.starts_with('_')
                && !p.ends_with('_')
        };
        part_ok(domain) && part_ok(object) && !id.contains("__")
    }

    #[test]
    fn ids_follow_the_recorder_rule() {
        let cases = [
            (
                (
                    "eloverblik",
                    "571313180100000001",
                    "House",
                    Direction::Consumption,
                    Unit::KWh,
                ),
                (
                    "meter2mqtt:eloverblik_571313180100000001_consumption",
                    "House consumption",
                    "kWh",
                    Some("energy"),
                ),
            ),
            (
                (
                    "Enectiva",
                    "__Gas Meter #2 (Kůlna)__",
                    "",
                    Direction::Production,
                    Unit::CubicMeters,
                ),
                (
                    "meter2mqtt:enectiva_gas_meter_2_k_lna_production",
                    "__Gas Meter #2 (Kůlna)__ production",
                    "m³",
                    Some("volume"),
                ),
            ),
        ];
        for ((provider, id, name, direction, unit), expected) in cases {
            let s = Series::energy(&meter(provider, id, name, direction, unit));
            assert_eq!(
                (s.statistic_id.as_str(), s.name.as_str(), s.unit.as_str(), s.unit_class),
                expected
            );
        }
        for id in ["a--b", "-x-", "ÆØÅ", "x__y", "12"] {
            let s = Series::money(
                &meter("p", id, "n", Direction::Consumption, Unit::KWh),
                PricePurpose::Cost,
                "DKK",
            );
            assert!(valid_statistic_id(&s.statistic_id), "{}", s.statistic_id);
        }
    }

    #[test]
    fn each_word_once_in_the_names() {
        let home = meter(
            "eloverblik",
            "1",
            "Testvej 1 consumption",
            Direction::Consumption,
            Unit::KWh,
        );
        let child = meter(
            "eloverblik",
            "2",
            "Testvej 1 consumption from grid",
            Direction::Consumption,
            Unit::KWh,
        );
        let solar = meter(
            "eloverblik",
            "3",
            "Testvej 1 production",
            Direction::Production,
            Unit::KWh,
        );
        assert_eq!(Series::energy(&home).name, "Testvej 1 consumption");
        assert_eq!(Series::energy(&child).name, "Testvej 1 consumption from grid");
        assert_eq!(Series::energy(&solar).name, "Testvej 1 production");
        assert_eq!(Series::money(&home, PricePurpose::Cost, "DKK").name, "Testvej 1 cost");
        let paid = Series::money(&solar, PricePurpose::Compensation, "DKK");
        assert_eq!(
            (paid.name.as_str(), paid.statistic_id.as_str()),
            ("Testvej 1 compensation", "meter2mqtt:eloverblik_3_compensation")
        );
        assert_eq!(
            Series::energy(&home).statistic_id,
            "meter2mqtt:eloverblik_1_consumption"
        );
        // A name that does not end in the direction keeps all its words.
        assert_eq!(
            Series::money(&child, PricePurpose::Cost, "DKK").name,
            "Testvej 1 consumption from grid cost"
        );
    }

    #[test]
    fn cost_and_unit_classes() {
        let m = meter("eloverblik", "1", "House", Direction::Consumption, Unit::MWh);
        let cost = Series::money(&m, PricePurpose::Cost, "DKK");
        assert_eq!(cost.statistic_id, "meter2mqtt:eloverblik_1_cost");
        assert_eq!(
            (cost.unit.as_str(), cost.unit_class, cost.name.as_str()),
            ("DKK", None, "House cost")
        );
        assert_eq!(unit_class(&Unit::GJ), Some("energy"));
        assert_eq!(unit_class(&Unit::MJ), Some("energy"));
        assert_eq!(unit_class(&Unit::Wh), Some("energy"));
        assert_eq!(unit_class(&Unit::Liters), Some("volume"));
        assert_eq!(unit_class(&Unit::Other("pcs".into())), None);
    }
}
