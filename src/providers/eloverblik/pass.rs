//! One read pass over many metering points, one API call at a time: which points have failed
//! (they get no later calls: their cursors must not move past a window that is missing), which
//! the API answered for, and whether the API is down for the whole account (then the remaining
//! calls are not made: they would only wait through the same retries).

use std::collections::{HashMap, HashSet};

use super::timeseries::PointOutcome;
use super::KIND;
use crate::http::HttpError;
use crate::model::{IntervalReading, TimeRange};
use crate::providers::ProviderError;

pub(crate) type MeterResult = (String, Result<Vec<IntervalReading>, ProviderError>);

#[derive(Default)]
pub(crate) struct Pass {
    failed: HashSet<String>,
    answered: HashSet<String>,
    outage: Option<ProviderError>,
}

impl Pass {
    /// The ids of `chunk` still worth a call.
    pub(crate) fn live<'a>(&self, chunk: &[&'a str]) -> Vec<&'a str> {
        chunk.iter().copied().filter(|id| !self.failed.contains(*id)).collect()
    }

    /// The account-wide failure that makes further calls pointless, if one happened.
    pub(crate) fn outage(&self) -> Option<&ProviderError> {
        self.outage.as_ref()
    }

    /// The points the API answered for, with data or with an error of their own.
    pub(crate) fn answered(&self) -> &HashSet<String> {
        &self.answered
    }

    /// One call's outcomes as each asked point's result for `covered`: its readings inside it,
    /// oldest first, or its error. A point the answer leaves out has failed.
    pub(crate) fn answer(
        &mut self,
        asked: &[&str],
        outcomes: Vec<PointOutcome>,
        covered: TimeRange,
    ) -> Vec<MeterResult> {
        let mut by_id: HashMap<String, Result<Vec<IntervalReading>, ProviderError>> = HashMap::new();
        for (id, outcome) in outcomes {
            if !asked.contains(&id.as_str()) {
                tracing::debug!(metering_point = %id, "the API answered for a metering point not asked for; ignored");
                continue;
            }
            self.answered.insert(id.clone());
            let outcome = outcome.map(|mut readings| {
                readings.retain(|r| r.start >= covered.start && r.start < covered.end);
                readings
            });
            match (by_id.get_mut(&id), outcome) {
                (Some(Ok(readings)), Ok(more)) => readings.extend(more),
                (Some(slot @ Ok(_)), Err(e)) => *slot = Err(e),
                (Some(Err(_)), _) => {}
                (None, outcome) => {
                    by_id.insert(id, outcome);
                }
            }
        }
        asked
            .iter()
            .map(|id| {
                let result = match by_id.remove(*id) {
                    Some(Ok(mut readings)) => {
                        readings.sort_by_key(|r| r.start);
                        readings.dedup_by_key(|r| r.start);
                        Ok(readings)
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(ProviderError::Meter {
                        provider: KIND,
                        meter: (*id).to_owned(),
                        message: format!("the API's answer for {covered} left this metering point out"),
                    }),
                };
                if result.is_err() {
                    self.failed.insert((*id).to_owned());
                }
                ((*id).to_owned(), result)
            })
            .collect()
    }

    /// A whole call failed: every point in it fails with the same error.
    pub(crate) fn fail(&mut self, asked: &[&str], error: ProviderError) -> Vec<MeterResult> {
        if account_wide(&error) {
            self.outage = Some(error.clone());
        }
        asked
            .iter()
            .map(|id| {
                self.failed.insert((*id).to_owned());
                ((*id).to_owned(), Err(error.clone()))
            })
            .collect()
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
    use super::*;
    use crate::model::{Quality, Unit};
    use chrono::DateTime;

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

    fn covered(from: i64, to: i64) -> TimeRange {
        TimeRange::new(
            DateTime::from_timestamp(from, 0).unwrap(),
            DateTime::from_timestamp(to, 0).unwrap(),
        )
    }

    #[test]
    fn left_out_and_unasked_points() {
        let mut pass = Pass::default();
        let results = pass.answer(
            &["a", "b"],
            vec![("a".into(), Ok(vec![reading(0)])), ("z".into(), Ok(vec![reading(0)]))],
            covered(0, 3600),
        );
        assert_eq!(results.len(), 2);
        assert_eq!(pass.live(&["a", "b"]), ["a"]);
        assert!(pass.answered().contains("a") && !pass.answered().contains("z") && !pass.answered().contains("b"));
        let err = results[1].1.as_ref().unwrap_err().to_string();
        assert!(err.contains("left this metering point out"), "{err}");
    }

    #[test]
    fn only_account_wide_failures_stop_the_pass() {
        let mut pass = Pass::default();
        let rejected = HttpError::Rejected {
            api: KIND,
            endpoint: "x".into(),
            status: 400,
            code: None,
            message: "bad".into(),
        };
        pass.fail(&["a"], rejected.into());
        let forbidden = HttpError::Unauthorized {
            api: KIND,
            endpoint: "x".into(),
            status: 403,
            message: "no".into(),
        };
        pass.fail(&["a"], forbidden.into());
        assert!(pass.outage().is_none());
        let down = HttpError::Exhausted {
            api: KIND,
            endpoint: "x".into(),
            attempts: 5,
            last: "503".into(),
            last_status: Some(503),
        };
        pass.fail(&["b"], down.into());
        assert!(pass.outage().is_some());
        assert!(pass.live(&["a", "b", "c"]) == ["c"]);
    }

    #[test]
    fn answers_are_cut_to_the_window_sorted_and_unique() {
        let mut pass = Pass::default();
        let results = pass.answer(
            &["a"],
            vec![(
                "a".into(),
                Ok(vec![reading(7200), reading(0), reading(3600), reading(3600)]),
            )],
            covered(0, 7200),
        );
        let starts: Vec<i64> = results[0]
            .1
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.start.timestamp())
            .collect();
        assert_eq!(starts, [0, 3600]);
    }
}
