//! What one `readings_many` pass has gathered: per metering point its readings or its error,
//! which points the API answered for, and whether the API is down for the whole account (then
//! the remaining calls of the pass are not made: they would only wait through the same retries).

use std::collections::{HashMap, HashSet};

use super::timeseries::PointOutcome;
use super::windows::Window;
use super::KIND;
use crate::http::HttpError;
use crate::model::{IntervalReading, Meter, TimeRange};
use crate::providers::ProviderError;

pub type MeterResult = (String, Result<Vec<IntervalReading>, ProviderError>);

#[derive(Default)]
pub struct Gathered {
    results: HashMap<String, Result<Vec<IntervalReading>, ProviderError>>,
    answered: HashSet<String>,
    outage: Option<ProviderError>,
}

impl Gathered {
    /// Registers `ids` as to be read; they start with no readings.
    pub fn expect(&mut self, ids: &[&str]) {
        for id in ids {
            self.results.entry((*id).to_owned()).or_insert_with(|| Ok(Vec::new()));
        }
    }

    /// The ids of `chunk` still worth a call.
    pub fn live<'a>(&self, chunk: &[&'a str]) -> Vec<&'a str> {
        chunk
            .iter()
            .copied()
            .filter(|id| self.results.get(*id).is_some_and(Result::is_ok))
            .collect()
    }

    /// The account-wide failure that makes further calls pointless, if one happened.
    pub fn outage(&self) -> Option<&ProviderError> {
        self.outage.as_ref()
    }

    /// Adds one call's outcomes; a point the answer leaves out has failed.
    pub fn merge(&mut self, asked: &[&str], outcomes: Vec<PointOutcome>, window: Window) {
        let mut answered = HashSet::new();
        for (id, outcome) in outcomes {
            let Some(slot) = self.results.get_mut(&id).filter(|_| asked.contains(&id.as_str())) else {
                tracing::debug!(metering_point = %id, "the API answered for a metering point not asked for; ignored");
                continue;
            };
            match (slot.as_mut(), outcome) {
                (Ok(readings), Ok(more)) => readings.extend(more),
                (Ok(_), Err(error)) => *slot = Err(error),
                (Err(_), _) => {}
            }
            answered.insert(id);
        }
        for id in asked.iter().filter(|id| !answered.contains(**id)) {
            let message = format!(
                "the API's answer for {} to {} left this metering point out",
                window.from, window.to
            );
            self.results.insert(
                (*id).to_owned(),
                Err(ProviderError::Meter {
                    provider: KIND,
                    meter: (*id).to_owned(),
                    message,
                }),
            );
        }
        self.answered.extend(answered);
    }

    /// A whole call failed: every point in it fails with the same error.
    pub fn fail(&mut self, asked: &[&str], error: ProviderError) {
        if account_wide(&error) {
            self.outage = Some(error.clone());
        }
        for id in asked {
            self.results.insert((*id).to_owned(), Err(error.clone()));
        }
    }

    /// Results in the order of `meters`, readings cut to `range`, oldest first; and the points
    /// the API answered for.
    pub fn finish(mut self, meters: &[Meter], range: TimeRange) -> (Vec<MeterResult>, HashSet<String>) {
        let out = meters
            .iter()
            .map(|meter| {
                let result = match self.results.remove(&meter.id) {
                    None => Err(ProviderError::UnknownMeter {
                        provider: KIND,
                        meter: meter.id.clone(),
                    }),
                    Some(Err(error)) => Err(error),
                    Some(Ok(mut readings)) => {
                        readings.retain(|r| r.start >= range.start && r.start < range.end);
                        readings.sort_by_key(|r| r.start);
                        readings.dedup_by_key(|r| r.start);
                        Ok(readings)
                    }
                };
                (meter.id.clone(), result)
            })
            .collect();
        (out, self.answered)
    }
}

/// Failures no other call of the pass would escape: the API is down (retries ran out), or the
/// account is refused (a data call's 401 has become an authentication error by now). A 403 is
/// left out: the third-party API answers it for points whose authorisation lapsed, and other
/// points may still be readable.
fn account_wide(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Auth { .. } | ProviderError::Http(HttpError::Exhausted { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::super::TZ;
    use super::*;
    use crate::model::{Direction, Medium, Quality, Unit};
    use chrono::{DateTime, NaiveDate};

    fn window() -> Window {
        let day = NaiveDate::from_ymd_opt(2024, 3, 28).unwrap();
        Window {
            from: day,
            to: day.succ_opt().unwrap(),
        }
    }

    fn reading(secs: i64) -> IntervalReading {
        let start = DateTime::from_timestamp(secs, 0).unwrap();
        IntervalReading {
            start,
            end: start,
            value: Some(1.0),
            unit: Unit::KWh,
            quality: Quality::Measured,
            reading: None,
        }
    }

    #[test]
    fn left_out_and_unasked_points() {
        let mut g = Gathered::default();
        g.expect(&["a", "b"]);
        g.merge(
            &["a", "b"],
            vec![("a".into(), Ok(vec![reading(0)])), ("z".into(), Ok(vec![reading(0)]))],
            window(),
        );
        assert_eq!(g.live(&["a", "b"]), ["a"]);
        assert!(g.answered.contains("a") && !g.answered.contains("z") && !g.answered.contains("b"));
        let err = g.results["b"].as_ref().unwrap_err().to_string();
        assert!(err.contains("left this metering point out"), "{err}");
    }

    #[test]
    fn only_account_wide_failures_stop_the_pass() {
        let mut g = Gathered::default();
        g.expect(&["a"]);
        let rejected = HttpError::Rejected {
            api: KIND,
            endpoint: "x".into(),
            status: 400,
            code: None,
            message: "bad".into(),
        };
        g.fail(&["a"], rejected.into());
        let forbidden = HttpError::Unauthorized {
            api: KIND,
            endpoint: "x".into(),
            status: 403,
            message: "no".into(),
        };
        g.fail(&["a"], forbidden.into());
        assert!(g.outage().is_none());
        let down = HttpError::Exhausted {
            api: KIND,
            endpoint: "x".into(),
            attempts: 5,
            last: "503".into(),
            last_status: Some(503),
        };
        g.fail(&["a"], down.into());
        assert!(g.outage().is_some());
    }

    #[test]
    fn finish_cuts_to_the_range_in_meter_order() {
        let mut g = Gathered::default();
        g.expect(&["a"]);
        g.merge(
            &["a"],
            vec![(
                "a".into(),
                Ok(vec![reading(7200), reading(0), reading(3600), reading(3600)]),
            )],
            window(),
        );
        let range = TimeRange::new(
            DateTime::from_timestamp(0, 0).unwrap(),
            DateTime::from_timestamp(7200, 0).unwrap(),
        );
        let meter = |id: &str| Meter {
            provider: KIND.into(),
            id: id.into(),
            name: id.into(),
            medium: Medium::Electricity,
            direction: Direction::Consumption,
            unit: Unit::KWh,
            cumulative: false,
            timezone: TZ,
            device: Default::default(),
        };
        let (out, answered) = g.finish(&[meter("q"), meter("a")], range);
        assert_eq!(out.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["q", "a"]);
        assert!(matches!(out[0].1, Err(ProviderError::UnknownMeter { .. })));
        let starts: Vec<i64> = out[1].1.as_ref().unwrap().iter().map(|r| r.start.timestamp()).collect();
        assert_eq!(starts, [0, 3600]);
        assert!(answered.contains("a"));
    }
}
