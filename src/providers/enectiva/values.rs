//! The values beside interval data: the latest register value and the monthly consumption
//! ("this month", "last month").

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};

use super::deltas::Delta;
use super::meters::medium;
use super::readings::RegisterReading;
use crate::model::{Direction, Meter, MeterValue, Unit, ValueKind};

/// Where monthly deltas came from: the meter's own, or its building's for the meter's medium.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeltaSource {
    Meter,
    Entity { id: String, name: Option<String> },
}

pub(crate) fn register_value(meter: &Meter, latest: Option<RegisterReading>) -> MeterValue {
    let mut attributes = Map::new();
    if let Some(reading) = latest {
        attributes.insert("time".into(), Value::String(reading.time.to_rfc3339()));
    }
    MeterValue {
        key: "register".into(),
        name: "Meter reading".into(),
        value: latest.map(|r| r.value),
        unit: Some(meter.unit.as_str().to_owned()),
        kind: ValueKind::Register,
        attributes,
        timetable: Vec::new(),
        shared: None,
    }
}

/// "This month" and "last month" for `meter`, `today` being its local date. Nothing when no
/// delta belongs to the meter; a month without a delta is an unknown value.
pub(crate) fn monthly_values(
    deltas: &[Delta],
    meter: &Meter,
    energy: Option<&str>,
    source: &DeltaSource,
    today: NaiveDate,
) -> Vec<MeterValue> {
    let own: Vec<&Delta> = deltas.iter().filter(|d| belongs_to(d, meter, energy, source)).collect();
    if own.is_empty() {
        return Vec::new();
    }
    let Some((this_month, last_month)) = first_days(today) else {
        return Vec::new();
    };
    [
        ("this_month", "this month", this_month),
        ("last_month", "last month", last_month),
    ]
    .into_iter()
    .map(|(key, label, month)| month_value(&own, meter, source, key, label, month))
    .collect()
}

/// The first day of `today`'s month and of the month before.
fn first_days(today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let this_month = today.with_day(1)?;
    Some((this_month, this_month.pred_opt()?.with_day(1)?))
}

fn month_value(
    deltas: &[&Delta],
    meter: &Meter,
    source: &DeltaSource,
    key: &str,
    label: &str,
    month: NaiveDate,
) -> MeterValue {
    let of_month: Vec<&&Delta> = deltas.iter().filter(|d| d.month == month).collect();
    // Several records for one month (e.g. one per tariff) add up to the month.
    let value = (!of_month.is_empty()).then(|| of_month.iter().map(|d| d.value).sum::<f64>());
    let unit = of_month
        .iter()
        .find_map(|d| d.unit.as_deref())
        .map(|u| Unit::parse(u).as_str().to_owned())
        .unwrap_or_else(|| meter.unit.as_str().to_owned());
    let what = match meter.direction {
        Direction::Consumption => "Consumption",
        Direction::Production => "Production",
    };
    let mut attributes = Map::new();
    attributes.insert("month".into(), Value::String(month.format("%Y-%m").to_string()));
    let (key, name) = match source {
        DeltaSource::Meter => {
            attributes.insert("source".into(), "meter".into());
            (key.to_owned(), format!("{what} {label}"))
        }
        DeltaSource::Entity { id, name } => {
            attributes.insert("source".into(), "entity".into());
            attributes.insert("entity_id".into(), Value::String(id.clone()));
            if let Some(name) = name {
                attributes.insert("entity".into(), Value::String(name.clone()));
            }
            (
                format!("building_{key}"),
                format!("Building {} {label}", what.to_lowercase()),
            )
        }
    };
    MeterValue {
        key,
        name,
        value,
        unit: Some(unit),
        kind: ValueKind::PeriodTotal,
        attributes,
        timetable: Vec::new(),
        shared: None,
    }
}

/// A building's deltas cover all its meters: only those of this meter's medium and unit count.
fn belongs_to(delta: &Delta, meter: &Meter, energy: Option<&str>, source: &DeltaSource) -> bool {
    if *source == DeltaSource::Meter {
        return true;
    }
    let same_energy = match (delta.energy.as_deref(), energy) {
        (Some(theirs), Some(ours)) => theirs.trim().eq_ignore_ascii_case(ours.trim()),
        (Some(theirs), None) => medium(theirs) == meter.medium,
        (None, _) => true,
    };
    let same_unit = delta.unit.as_deref().is_none_or(|u| Unit::parse(u) == meter.unit);
    same_energy && same_unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Medium;
    use crate::providers::enectiva::test_meter::meter;
    use chrono::{DateTime, Utc};

    fn delta(month: &str, value: f64, energy: Option<&str>, unit: Option<&str>) -> Delta {
        Delta {
            month: NaiveDate::parse_from_str(month, "%Y-%m-%d").unwrap(),
            value,
            unit: unit.map(Into::into),
            energy: energy.map(Into::into),
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn this_and_last_month_of_the_meter() {
        let deltas = [
            delta("2024-09-01", 154.5, None, None),
            delta("2024-10-01", 172.0, None, Some("kWh")),
        ];
        let got = monthly_values(
            &deltas,
            &meter(Medium::Electricity, Unit::KWh),
            None,
            &DeltaSource::Meter,
            day("2024-10-31"),
        );
        let plain: Vec<_> = got
            .iter()
            .map(|v| (v.key.as_str(), v.name.as_str(), v.value, v.kind))
            .collect();
        assert_eq!(
            plain,
            vec![
                (
                    "this_month",
                    "Consumption this month",
                    Some(172.0),
                    ValueKind::PeriodTotal
                ),
                (
                    "last_month",
                    "Consumption last month",
                    Some(154.5),
                    ValueKind::PeriodTotal
                )
            ]
        );
        assert_eq!(got[0].attributes["month"], "2024-10");
        assert_eq!(got[1].unit.as_deref(), Some("kWh"));
    }

    #[test]
    fn january_looks_back_into_december_and_missing_months_are_unknown() {
        let deltas = [delta("2023-12-01", 9.0, None, None)];
        let got = monthly_values(
            &deltas,
            &meter(Medium::Gas, Unit::CubicMeters),
            None,
            &DeltaSource::Meter,
            day("2024-01-01"),
        );
        assert_eq!((got[0].value, got[1].value), (None, Some(9.0)));
        assert_eq!(got[0].unit.as_deref(), Some("m³"));
    }

    #[test]
    fn building_deltas_of_the_meters_medium_only() {
        let source = DeltaSource::Entity {
            id: "88".into(),
            name: Some("Budova A".into()),
        };
        let deltas = [
            delta("2024-10-01", 172.0, Some("electricity"), Some("kWh")),
            delta("2024-10-01", 30.0, Some("gas"), Some("m3")),
            delta("2024-10-01", 2.0, Some("heat"), Some("GJ")),
        ];
        let gas = meter(Medium::Gas, Unit::CubicMeters);
        let got = monthly_values(&deltas, &gas, Some("gas"), &source, day("2024-10-15"));
        assert_eq!(got[0].key, "building_this_month");
        assert_eq!(got[0].name, "Building consumption this month");
        assert_eq!(got[0].value, Some(30.0));
        assert_eq!(got[0].attributes["entity"], "Budova A");
        // Without the raw energy the mapped medium decides.
        assert_eq!(
            monthly_values(&deltas, &gas, None, &source, day("2024-10-15"))[0].value,
            Some(30.0)
        );
        // A water meter has no deltas in this building.
        assert!(monthly_values(
            &deltas,
            &meter(Medium::Water, Unit::CubicMeters),
            Some("cold_water"),
            &source,
            day("2024-10-15")
        )
        .is_empty());
    }

    #[test]
    fn register_value_carries_its_time() {
        let time = DateTime::<Utc>::from_timestamp(1_730_505_600, 0).unwrap();
        let v = register_value(
            &meter(Medium::Heat, Unit::GJ),
            Some(RegisterReading { time, value: 12.5 }),
        );
        assert_eq!(
            (v.key.as_str(), v.value, v.unit.as_deref(), v.kind),
            ("register", Some(12.5), Some("GJ"), ValueKind::Register)
        );
        assert_eq!(v.attributes["time"], "2024-11-02T00:00:00+00:00");
        assert_eq!(register_value(&meter(Medium::Heat, Unit::GJ), None).value, None);
    }
}
