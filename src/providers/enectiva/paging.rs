//! Reading past the API's 1000-record limit: lists come oldest first, so each next request
//! narrows the time filter to start after the last record received.

use chrono::{DateTime, SecondsFormat, Utc};

use super::api::EnectivaApi;
use super::readings::{self, RegisterReading};
use super::KIND;
use crate::model::Meter;
use crate::providers::ProviderError;

/// The most records a list response holds (documented).
pub(crate) const PAGE_LIMIT: usize = 1000;

/// Readings with `from <= time < until` (no upper bound without `until`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) from: DateTime<Utc>,
    pub(crate) until: Option<DateTime<Utc>>,
}

/// The pages of one meter's readings in `window`, oldest first, fetched one at a time.
pub(crate) struct Pages<'a> {
    api: &'a EnectivaApi,
    meter: &'a Meter,
    until: Option<DateTime<Utc>>,
    endpoint: String,
    lower: Lower,
    done: bool,
}

impl<'a> Pages<'a> {
    pub(crate) fn new(api: &'a EnectivaApi, meter: &'a Meter, window: Window) -> Pages<'a> {
        Pages {
            api,
            meter,
            until: window.until,
            endpoint: format!("GET /meters/{}/readings", meter.id),
            lower: Lower::From(window.from),
            done: false,
        }
    }

    /// The next page's usable readings; `None` after the last page.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<RegisterReading>>, ProviderError> {
        if self.done {
            return Ok(None);
        }
        let mut query = vec![("filter[]", self.lower.filter())];
        if let Some(until) = self.until {
            query.push(("filter[]", format!("readings.time<{}", timestamp(until))));
        }
        let meter = self.meter;
        let page = self
            .api
            .get(&["meters", &meter.id, "readings"], &query, |body, endpoint| {
                readings::page(body, endpoint, meter)
            })
            .await
            .map_err(|e| unknown_meter(e, self.meter))?;
        if page.sent < PAGE_LIMIT {
            self.done = true;
            return Ok(Some(page.readings));
        }
        match page.latest.map(Lower::After) {
            Some(next) if next.is_past(self.lower) => self.lower = next,
            // The server ignored the filter or sent records without times: asking again would loop.
            _ => {
                return Err(ProviderError::Response {
                    provider: KIND,
                    endpoint: self.endpoint.clone(),
                    message: format!(
                        "a full page of {} records brought no reading later than {}; cannot read further",
                        page.sent,
                        self.lower.time().to_rfc3339()
                    ),
                })
            }
        }
        Ok(Some(page.readings))
    }
}

/// Every usable reading in `window`, page by page, oldest first. `enough` may end the paging
/// early once the readings so far suffice.
pub(crate) async fn read_window(
    api: &EnectivaApi,
    meter: &Meter,
    window: Window,
    enough: impl Fn(&[RegisterReading]) -> bool,
) -> Result<Vec<RegisterReading>, ProviderError> {
    let mut pages = Pages::new(api, meter, window);
    let mut out = Vec::new();
    while let Some(page) = pages.next().await? {
        out.extend(page);
        if enough(&out) {
            break;
        }
    }
    Ok(out)
}

/// A 404 on a meter's readings means the meter is gone (or never belonged to this account).
fn unknown_meter(error: ProviderError, meter: &Meter) -> ProviderError {
    match &error {
        ProviderError::Http(http) if http.status() == Some(404) => ProviderError::UnknownMeter {
            provider: KIND,
            meter: meter.id.clone(),
        },
        _ => error,
    }
}

#[derive(Debug, Clone, Copy)]
enum Lower {
    From(DateTime<Utc>),
    After(DateTime<Utc>),
}

impl Lower {
    fn filter(self) -> String {
        match self {
            Lower::From(t) => format!("readings.time>={}", timestamp(t)),
            Lower::After(t) => format!("readings.time>{}", timestamp(t)),
        }
    }

    fn time(self) -> DateTime<Utc> {
        match self {
            Lower::From(t) | Lower::After(t) => t,
        }
    }

    fn is_past(self, previous: Lower) -> bool {
        match previous {
            Lower::From(t) => self.time() >= t,
            Lower::After(t) => self.time() > t,
        }
    }
}

/// Whole seconds unless the time has a fraction, so that paging after a fractional time does
/// not return the same record again.
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_documented() {
        let t = DateTime::parse_from_rfc3339("2019-10-02T00:00:00Z").unwrap().to_utc();
        assert_eq!(Lower::From(t).filter(), "readings.time>=2019-10-02T00:00:00Z");
        assert_eq!(Lower::After(t).filter(), "readings.time>2019-10-02T00:00:00Z");
        let fractional = t + chrono::Duration::milliseconds(500);
        assert_eq!(timestamp(fractional), "2019-10-02T00:00:00.500Z");
    }

    #[test]
    fn paging_must_move_forward() {
        let t = DateTime::from_timestamp(1000, 0).unwrap();
        let later = DateTime::from_timestamp(1001, 0).unwrap();
        assert!(Lower::After(t).is_past(Lower::From(t)));
        assert!(!Lower::After(t).is_past(Lower::After(t)));
        assert!(Lower::After(later).is_past(Lower::After(t)));
    }
}
