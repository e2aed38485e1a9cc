//! Turns a `gettimeseries` response into interval readings: each Period starts at its
//! `timeInterval.start` (UTC) and its 1-based positions step by the resolution, so DST days
//! (23 or 25 hours, 92 or 100 quarters) come out right without any calendar arithmetic.

use chrono::{DateTime, Days, Duration, Utc};

use super::dto::{ApiList, Item, MarketDocument, Period, QualityCode, TimeSeries};
use super::windows::{local_day, local_midnight};
use super::KIND;
use crate::model::{IntervalReading, Quality, Unit};
use crate::providers::ProviderError;

/// What one response says about one metering point.
pub(crate) type PointOutcome = (String, Result<Vec<IntervalReading>, ProviderError>);

/// A `gettimeseries` answer as the HTTP layer parses it.
pub type Answer = ApiList<Item<MarketDocument>>;

/// Normalises every item of a parsed response (a body that does not parse was retried by the
/// HTTP layer). A malformed series or a per-item failure is an error for that metering point only.
pub fn outcomes(list: Answer, endpoint: &str) -> Vec<PointOutcome> {
    let mut out = Vec::new();
    for item in list.into_items() {
        let item_id = item.id.clone().filter(|id| !id.trim().is_empty());
        if !item.success {
            match item_id {
                Some(id) => {
                    let message = item.failure_text();
                    out.push((
                        id.clone(),
                        Err(ProviderError::Meter {
                            provider: KIND,
                            meter: id,
                            message,
                        }),
                    ))
                }
                None => tracing::warn!(
                    endpoint,
                    "{} for an item without a metering point id; ignored",
                    item.failure_text()
                ),
            }
            continue;
        }
        let series = item.payload.and_then(|doc| doc.time_series).unwrap_or_default();
        if series.is_empty() {
            if let Some(id) = item_id {
                out.push((id, Ok(Vec::new())));
            }
            continue;
        }
        for ts in series {
            let Some(id) = ts
                .id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .or_else(|| item_id.clone())
            else {
                tracing::warn!(endpoint, "a time series without a metering point id; ignored");
                continue;
            };
            let result = normalise(&ts).map_err(|message| ProviderError::Meter {
                provider: KIND,
                meter: id.clone(),
                message: format!("{endpoint} returned an unusable time series: {message}"),
            });
            out.push((id, result));
        }
    }
    out
}

/// One series' readings, oldest first, one per interval start (a repeated position keeps the
/// later copy).
pub(crate) fn normalise(series: &TimeSeries) -> Result<Vec<IntervalReading>, String> {
    let (unit, scale) = unit_of(series.unit.as_deref());
    let periods = series.periods.as_deref().unwrap_or_default();
    let capacity = periods.iter().map(|p| p.points.as_ref().map_or(0, Vec::len)).sum();
    let mut out = Vec::with_capacity(capacity);
    for period in periods {
        normalise_period(period, &unit, scale, &mut out)?;
    }
    out.sort_by_key(|r| r.start);
    out.dedup_by(|later, earlier| {
        if later.start == earlier.start {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    Ok(out)
}

fn normalise_period(period: &Period, unit: &Unit, scale: f64, out: &mut Vec<IntervalReading>) -> Result<(), String> {
    let resolution = Resolution::parse(period.resolution.as_deref().unwrap_or(""))?;
    let interval = period.time_interval.as_ref().ok_or("a Period has no timeInterval")?;
    let start = parse_time(interval.start.as_deref(), "timeInterval.start")?;
    let end = match interval.end.as_deref() {
        Some(end) => Some(parse_time(Some(end), "timeInterval.end")?),
        None => None,
    };
    for point in period.points.as_deref().unwrap_or_default() {
        let (from, to) = resolution.interval(start, point.position)?;
        if end.is_some_and(|end| to > end) {
            return Err(format!(
                "position {} of the period starting {} lies beyond its end {}",
                point.position,
                start.to_rfc3339(),
                end.map(|e| e.to_rfc3339()).unwrap_or_default()
            ));
        }
        let (value, quality) = match (point.quantity, point.quality) {
            (None, _) | (_, Some(QualityCode::A02)) => (None, Quality::Missing),
            (Some(q), Some(QualityCode::A04 | QualityCode::A01)) => (Some(q * scale), Quality::Measured),
            (Some(q), Some(QualityCode::A05)) => (Some(q * scale), Quality::Incomplete),
            // Estimated, and anything unlabelled: a later re-read may still upgrade it.
            (Some(q), Some(QualityCode::A03 | QualityCode::Unknown) | None) => (Some(q * scale), Quality::Estimated),
        };
        out.push(IntervalReading {
            start: from,
            end: to,
            value,
            unit: unit.clone(),
            quality,
            reading: None,
        });
    }
    Ok(())
}

/// The meters are registered in kWh; a series in Wh or MWh is scaled so readings match.
fn unit_of(raw: Option<&str>) -> (Unit, f64) {
    match raw.map(Unit::parse) {
        None | Some(Unit::KWh) => (Unit::KWh, 1.0),
        Some(Unit::Wh) => (Unit::KWh, 0.001),
        Some(Unit::MWh) => (Unit::KWh, 1000.0),
        Some(other) => (other, 1.0),
    }
}

fn parse_time(raw: Option<&str>, field: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{field} is missing"))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{field} {raw:?} is not an ISO 8601 time ({e})"))
}

/// A Period's step: a fixed duration, or whole Danish days (their length changes with DST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Fixed(Duration),
    Days(u32),
}

impl Resolution {
    /// `PT15M`, `PT1H`, and days as the spec (`P1D`) and the live API (`PT1D`) write them.
    pub(crate) fn parse(raw: &str) -> Result<Resolution, String> {
        let raw = raw.trim();
        let unsupported = || {
            format!("resolution {raw:?} is not supported (quarter-hour, hour and day series are; months and years are not intervals of fixed length)")
        };
        let (body, in_time) = match raw.strip_prefix("PT") {
            Some(rest) => (rest, true),
            None => (raw.strip_prefix('P').ok_or_else(unsupported)?, false),
        };
        let split = body.find(|c: char| !c.is_ascii_digit()).ok_or_else(unsupported)?;
        let (count, designator) = body.split_at(split);
        let count: u32 = count.parse().ok().filter(|n| *n > 0).ok_or_else(unsupported)?;
        match (designator, in_time) {
            ("M", true) => Ok(Resolution::Fixed(Duration::minutes(i64::from(count)))),
            ("H", true) => Ok(Resolution::Fixed(Duration::hours(i64::from(count)))),
            ("D", _) => Ok(Resolution::Days(count)),
            _ => Err(unsupported()),
        }
    }

    /// The interval of a 1-based `position` in a period starting at `start`.
    pub(crate) fn interval(
        self,
        start: DateTime<Utc>,
        position: u32,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let out_of_range = || format!("position {position} is out of range");
        let steps = position
            .checked_sub(1)
            .ok_or("position 0 found; positions start at 1")?;
        match self {
            Resolution::Fixed(step) => {
                let offset = step
                    .checked_mul(i32::try_from(steps).map_err(|_| out_of_range())?)
                    .ok_or_else(out_of_range)?;
                let from = start.checked_add_signed(offset).ok_or_else(out_of_range)?;
                let to = from.checked_add_signed(step).ok_or_else(out_of_range)?;
                Ok((from, to))
            }
            Resolution::Days(days) => {
                let first = local_day(start);
                let skip = u64::from(steps) * u64::from(days);
                let day = first.checked_add_days(Days::new(skip)).ok_or_else(out_of_range)?;
                let next = day
                    .checked_add_days(Days::new(u64::from(days)))
                    .ok_or_else(out_of_range)?;
                Ok((local_midnight(day), local_midnight(next)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpError, HttpResponse};
    use bytes::Bytes;

    /// What the provider does with an answer: parse (in the HTTP layer), then normalise.
    fn decode(response: &HttpResponse, endpoint: &str) -> Result<Vec<PointOutcome>, ProviderError> {
        Ok(outcomes(response.json::<Answer>(KIND, endpoint)?, endpoint))
    }

    fn fixture(name: &str) -> HttpResponse {
        let path = format!("{}/tests/fixtures/eloverblik/{name}", env!("CARGO_MANIFEST_DIR"));
        HttpResponse {
            status: 200,
            body: Bytes::from(std::fs::read(path).unwrap()),
        }
    }

    fn readings_of(name: &str) -> Vec<IntervalReading> {
        let mut outcomes = decode(&fixture(name), "test").unwrap();
        assert_eq!(outcomes.len(), 1);
        outcomes.remove(0).1.unwrap()
    }

    fn total(readings: &[IntervalReading]) -> f64 {
        readings.iter().filter_map(|r| r.value).sum()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hourly_days_are_contiguous_and_sum_to_the_fixture() {
        let r = readings_of("timeseries_hour.json");
        assert_eq!(r.len(), 72);
        assert_eq!(r[0].start, utc("2024-03-27T23:00:00Z"));
        assert_eq!(r[71].end, utc("2024-03-30T23:00:00Z"));
        assert!(r.windows(2).all(|w| w[0].end == w[1].start));
        assert!((total(&r) - (12.258 + 13.287 + 16.355)).abs() < 1e-9);
        assert_eq!(r[71].quality, Quality::Estimated);
        assert!(r[..71]
            .iter()
            .all(|x| x.quality == Quality::Measured && x.unit == Unit::KWh));
    }

    #[test]
    fn dst_days_have_23_and_25_hours() {
        let spring = readings_of("timeseries_dst.json");
        assert_eq!(spring.len(), 23);
        assert_eq!(spring[0].start, utc("2024-03-30T23:00:00Z"));
        // Local 01:00 is followed by 03:00: one UTC hour apart.
        assert_eq!(spring[1].start, utc("2024-03-31T00:00:00Z"));
        assert_eq!(spring[2].start, utc("2024-03-31T01:00:00Z"));
        assert_eq!(spring[22].end, utc("2024-03-31T22:00:00Z"));
        let autumn = readings_of("timeseries_dst_autumn.json");
        assert_eq!(autumn.len(), 25);
        assert_eq!(autumn[0].start, utc("2024-10-26T22:00:00Z"));
        assert_eq!(autumn[24].end, utc("2024-10-27T23:00:00Z"));
        assert!(autumn.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn quarter_hours_with_missing_incomplete_and_estimated_points() {
        let r = readings_of("timeseries_quarter.json");
        assert_eq!(r.len(), 96);
        assert_eq!(r[1].start - r[0].start, Duration::minutes(15));
        assert_eq!((r[48].value, r[48].quality), (None, Quality::Missing));
        assert_eq!(r[48].start, utc("2024-06-12T10:00:00Z"));
        assert_eq!((r[49].value, r[49].quality), (Some(0.107), Quality::Incomplete));
        assert_eq!((r[50].value, r[50].quality), (Some(0.077), Quality::Estimated));
        assert!((total(&r) - 14.266).abs() < 1e-9);
    }

    #[test]
    fn per_item_failure_touches_only_its_point() {
        let outcomes = decode(&fixture("timeseries_partial_failure.json"), "test").unwrap();
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].1.as_ref().unwrap().len(), 24);
        let err = outcomes[1].1.as_ref().unwrap_err().to_string();
        assert_eq!(outcomes[1].0, "571313180100000099");
        assert!(err.contains("20010") && err.contains("Relation not found"), "{err}");
    }

    fn series(json: &str) -> Result<Vec<IntervalReading>, String> {
        normalise(&serde_json::from_str::<TimeSeries>(json).unwrap())
    }

    #[test]
    fn unusable_series_say_why() {
        let period = |res: &str, start: &str, pos: &str| {
            format!(
                r#"{{"mRID":"1","Period":[{{"resolution":"{res}","timeInterval":{{"start":"{start}","end":"2024-01-02T23:00:00Z"}},"Point":[{{"position":"{pos}","out_Quantity.quantity":"1","out_Quantity.quality":"A04"}}]}}]}}"#
            )
        };
        let err = series(&period("P1M", "2024-01-01T23:00:00Z", "1")).unwrap_err();
        assert!(err.contains("resolution \"P1M\" is not supported"), "{err}");
        let err = series(&period("PT1H", "yesterday", "1")).unwrap_err();
        assert!(
            err.contains("timeInterval.start \"yesterday\" is not an ISO 8601 time"),
            "{err}"
        );
        let err = series(&period("PT1H", "2024-01-01T23:00:00Z", "0")).unwrap_err();
        assert!(err.contains("position 0"), "{err}");
        let err = series(&period("PT1H", "2024-01-01T23:00:00Z", "25")).unwrap_err();
        assert!(
            err.contains("position 25 of the period starting 2024-01-01T23:00:00+00:00 lies beyond its end"),
            "{err}"
        );
        let err = series(&period("PT15M", "2024-01-01T23:00:00Z", "4294967295")).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        let err = series(r#"{"Period":[{"resolution":"PT1H","Point":[]}]}"#).unwrap_err();
        assert!(err.contains("no timeInterval"), "{err}");
    }

    #[test]
    fn resolutions() {
        assert_eq!(Resolution::parse("PT15M"), Ok(Resolution::Fixed(Duration::minutes(15))));
        assert_eq!(Resolution::parse("PT1H"), Ok(Resolution::Fixed(Duration::hours(1))));
        assert_eq!(Resolution::parse("P1D"), Ok(Resolution::Days(1)));
        assert_eq!(Resolution::parse("PT1D"), Ok(Resolution::Days(1)));
        for bad in ["", "P", "PT", "PT0H", "P1Y", "PT1Y", "P1M", "1H", "PTxH"] {
            assert!(Resolution::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_resolution_follows_danish_days_across_dst() {
        let (from, to) = Resolution::Days(1).interval(utc("2024-10-25T22:00:00Z"), 2).unwrap();
        assert_eq!((from, to), (utc("2024-10-26T22:00:00Z"), utc("2024-10-27T23:00:00Z")));
    }

    #[test]
    fn repeated_positions_keep_the_later_copy_and_units_scale() {
        let r = series(
            r#"{"measurement_Unit.name":"MWH","Period":[{"resolution":"PT1H","timeInterval":{"start":"2024-01-01T23:00:00Z"},"Point":[
                {"position":"2","out_Quantity.quantity":"0.002","out_Quantity.quality":"A04"},
                {"position":"1","out_Quantity.quantity":"0.001","out_Quantity.quality":"A03"},
                {"position":"1","out_Quantity.quantity":"0.003","out_Quantity.quality":"A04"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].value, r[0].quality, &r[0].unit),
            (Some(3.0), Quality::Measured, &Unit::KWh)
        );
        assert_eq!(r[1].value, Some(2.0));
    }

    #[test]
    fn malformed_and_truncated_bodies_are_errors() {
        for body in [
            &b"{\"result\": [{\"success\": true, \"MyEnergyData_Mark"[..],
            b"<html>",
            b"{\"result\": 7}",
            b"",
        ] {
            let response = HttpResponse {
                status: 200,
                body: Bytes::from_static(body),
            };
            let err = decode(&response, "POST /x").unwrap_err();
            assert!(matches!(err, ProviderError::Http(HttpError::Decode { .. })), "{err}");
            assert!(
                err.to_string()
                    .contains("POST /x returned a body that could not be parsed"),
                "{err}"
            );
        }
    }
}
