//! The statistics sink the bridge calls: readings in, hourly external statistics in Home
//! Assistant out, at the hours the energy was used.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::cost;
use super::hourly::{self, Hours};
use super::ledger_store::LedgerStore;
use super::reconcile;
use super::remote::Remote;
use super::series::Series;
use super::StatisticsError;
use crate::backoff_policy::RetryPolicy;
use crate::homeassistant::{self, Client, LinkSettings, LinkState, LinkStatus, WsUrl};
use crate::model::{IntervalReading, Meter, PriceSeries};
use crate::secret::Secret;
use crate::state::StateStore;

#[derive(Debug, Clone)]
pub struct StatisticsSettings {
    /// `http(s)://host:8123`, `ws(s)://host:8123/api/websocket` or `ws://supervisor/core/websocket`.
    pub(crate) url: String,
    pub(crate) token: Secret,
    /// Import a cost statistic for meters whose readings come with a [`PriceSeries`].
    pub cost: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Idle time after which a ping checks the link.
    pub heartbeat: Duration,
    pub reconnect: RetryPolicy,
    /// Hours per `recorder/import_statistics` command; the state advances after each.
    pub batch_hours: usize,
}

impl StatisticsSettings {
    pub fn new(url: impl Into<String>, token: Secret, cost: bool) -> StatisticsSettings {
        StatisticsSettings {
            url: url.into(),
            token,
            cost,
            connect_timeout: homeassistant::STANDARD_CONNECT_TIMEOUT,
            request_timeout: homeassistant::STANDARD_REQUEST_TIMEOUT,
            heartbeat: homeassistant::STANDARD_HEARTBEAT,
            reconnect: homeassistant::standard_reconnect(),
            // A month of hours: well under HA's message size limit, few round trips on a backfill.
            batch_hours: 720,
        }
    }
}

/// What one [`StatisticsSink::import`] changed in Home Assistant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub series: Vec<SeriesReport>,
}

impl ImportReport {
    pub fn rows_sent(&self) -> usize {
        self.series.iter().map(|s| s.rows_sent).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReport {
    pub statistic_id: String,
    /// Hourly rows sent and acknowledged: new hours, corrected hours and the later hours whose
    /// sums a correction moved. 0 when nothing changed (and then no command was sent).
    pub(crate) rows_sent: usize,
    pub first_sent: Option<DateTime<Utc>>,
    /// The newest hour HA holds for the statistic, and its cumulative sum.
    pub last_hour: Option<DateTime<Utc>>,
    pub(crate) last_sum: Option<f64>,
}

/// A cheap, cloneable handle; the websocket lives in a background task.
#[derive(Clone)]
pub struct StatisticsSink {
    inner: Arc<Inner>,
}

struct Inner {
    link: Result<Remote, StatisticsError>,
    status: watch::Receiver<LinkStatus>,
    /// Keeps the status channel of a sink that never connects open.
    _fixed_status: Option<watch::Sender<LinkStatus>>,
    ledgers: LedgerStore,
    cost: bool,
    batch_hours: usize,
}

impl StatisticsSink {
    /// Spawns the websocket task (connect, auth, reconnect with backoff) on the current tokio
    /// runtime; returns at once. A URL or token that cannot work is reported by every `import`
    /// and by `status`.
    pub fn start(settings: StatisticsSettings, state: StateStore) -> StatisticsSink {
        homeassistant::warn_if_frames_are_logged();
        let parsed = WsUrl::parse(&settings.url)
            .map_err(|e| StatisticsError::InvalidUrl {
                url: e.url,
                reason: e.reason,
            })
            .and_then(|url| {
                if settings.token.is_empty() {
                    Err(StatisticsError::AuthFailed {
                        url: url.to_string(),
                        message: "no access token is configured".into(),
                    })
                } else {
                    Ok(url)
                }
            });
        let (link, status, fixed_status) = match parsed {
            Ok(url) => {
                let client = Client::start(LinkSettings {
                    url,
                    token: settings.token.clone(),
                    connect_timeout: settings.connect_timeout,
                    request_timeout: settings.request_timeout,
                    heartbeat: settings.heartbeat,
                    reconnect: settings.reconnect.clone(),
                });
                let remote = Remote::new(client);
                let status = remote.status_updates();
                (Ok(remote), status, None)
            }
            Err(e) => {
                tracing::error!("statistics import is off: {e}");
                // The URL as the error quotes it: credentials a user put in it are redacted.
                let (state, url) = match &e {
                    StatisticsError::AuthFailed { message, url } => {
                        (LinkState::AuthFailed(message.clone()), url.clone())
                    }
                    StatisticsError::InvalidUrl { url, .. } => (LinkState::Unreachable(e.to_string()), url.clone()),
                    other => (LinkState::Unreachable(other.to_string()), String::new()),
                };
                let (fixed, status) = watch::channel(LinkStatus {
                    state,
                    ha_version: None,
                    url,
                });
                (Err(e), status, Some(fixed))
            }
        };
        StatisticsSink {
            inner: Arc::new(Inner {
                link,
                status,
                _fixed_status: fixed_status,
                ledgers: LedgerStore::new(state),
                cost: settings.cost,
                batch_hours: settings.batch_hours.max(1),
            }),
        }
    }

    /// Earliest interval start this sink still needs for `meter`: the start of the newest hour
    /// imported (it may have been partial). `None`: never imported, read from history start.
    pub async fn needs_from(&self, meter: &Meter) -> Option<DateTime<Utc>> {
        let series = Series::energy(meter);
        match self.inner.ledgers.lock(&series).await {
            Ok(slot) => slot.position().and_then(|s| DateTime::from_timestamp(s, 0)),
            Err(e) => {
                tracing::warn!("{e}; reading {} from the history start", series.statistic_id);
                None
            }
        }
    }

    /// Imports what is new or changed in `readings`. Returns after HA acknowledged every row
    /// and the state recorded it; an error leaves the state at the last acknowledged batch,
    /// so the next call sends the rest.
    pub async fn import(
        &self,
        meter: &Meter,
        readings: &[IntervalReading],
        prices: Option<&PriceSeries>,
    ) -> Result<ImportReport, StatisticsError> {
        let energy = Series::energy(meter);
        let hours = hourly::aggregate(&energy.statistic_id, &meter.unit, readings)?;
        let mut report = ImportReport {
            series: vec![self.import_series(&energy, &hours).await?],
        };
        if let Some(prices) = prices.filter(|_| self.inner.cost) {
            let cost = Series::money(meter, prices.purpose, &prices.currency);
            let cost_hours = cost::costs(prices, readings, &meter.unit).map_err(|reason| StatisticsError::Price {
                statistic_id: cost.statistic_id.clone(),
                reason,
            })?;
            report.series.push(self.import_series(&cost, &cost_hours).await?);
        }
        Ok(report)
    }

    /// Whether readings with prices get a cost statistic.
    pub(crate) fn cost_enabled(&self) -> bool {
        self.inner.cost
    }

    pub fn status(&self) -> LinkStatus {
        self.inner.status.borrow().clone()
    }

    /// Every change of [`status`](Self::status), e.g. for a diagnostic entity.
    pub fn status_updates(&self) -> watch::Receiver<LinkStatus> {
        self.inner.status.clone()
    }

    /// Closes the connection; later imports fail with [`StatisticsError::Stopped`].
    pub async fn shutdown(&self) {
        if let Ok(remote) = &self.inner.link {
            remote.stop().await;
        }
    }

    async fn import_series(&self, series: &Series, hours: &Hours) -> Result<SeriesReport, StatisticsError> {
        let remote = match &self.inner.link {
            Ok(remote) => remote,
            Err(e) => return Err(clone_config_error(e)),
        };
        let mut report = SeriesReport {
            statistic_id: series.statistic_id.clone(),
            rows_sent: 0,
            first_sent: None,
            last_hour: None,
            last_sum: None,
        };
        let ledgers = &self.inner.ledgers;
        let mut slot = ledgers.lock(series).await?;
        let Some(&window_start) = hours.keys().next() else {
            if let Some(ledger) = &slot.ledger {
                report.last_hour = ledger.last_start().and_then(|s| DateTime::from_timestamp(s, 0));
                report.last_sum = ledger.last_start().map(|_| ledger.last_sum());
            }
            return Ok(report);
        };
        let before = slot.ledger.clone();
        let mut unsaved = slot.unsaved;
        let mut saved_until = slot.saved_until;
        let ledger = reconcile::covered(remote, &mut slot, &series.statistic_id, window_start).await?;
        let reconciled = before.as_ref() != Some(&*ledger);
        let planned = ledger.plan(hours);
        // The ledger mirrors what HA acknowledged, so it stays in memory when the disk refuses
        // it (HA's rows are the truth; a restart rebuilds from them) and is written later; until
        // then the bridge is told the position on disk.
        let mut written = Ok(());
        for batch in planned.chunks(self.inner.batch_hours) {
            remote.import(series, batch.to_vec()).await?;
            ledger.apply(batch);
            ledger.prune();
            report.rows_sent += batch.len();
            written = ledgers.save(ledger).await;
            if written.is_err() {
                break;
            }
            (unsaved, saved_until) = (false, ledger.last_start());
        }
        // Nothing to send, but what HA told us is worth keeping.
        if written.is_ok() && planned.is_empty() && (ledger.prune() | reconciled | unsaved) {
            written = ledgers.save(ledger).await;
            if written.is_ok() {
                (unsaved, saved_until) = (false, ledger.last_start());
            }
        }
        if let Err(e) = written {
            slot.unsaved = true;
            slot.saved_until = saved_until;
            return Err(e);
        }
        report.first_sent = planned.first().and_then(|p| DateTime::from_timestamp(p.start, 0));
        report.last_hour = ledger.last_start().and_then(|s| DateTime::from_timestamp(s, 0));
        report.last_sum = ledger.last_start().map(|_| ledger.last_sum());
        slot.unsaved = unsaved;
        slot.saved_until = saved_until;
        if report.rows_sent > 0 {
            tracing::info!(
                statistic_id = %series.statistic_id,
                rows = report.rows_sent,
                from = %report.first_sent.map(|t| t.to_rfc3339()).unwrap_or_default(),
                "imported hourly statistics into Home Assistant"
            );
        } else {
            tracing::debug!(statistic_id = %series.statistic_id, "statistics unchanged; nothing sent");
        }
        Ok(report)
    }
}

/// The configuration error again, for each import that cannot run because of it.
fn clone_config_error(e: &StatisticsError) -> StatisticsError {
    match e {
        StatisticsError::InvalidUrl { url, reason } => StatisticsError::InvalidUrl {
            url: url.clone(),
            reason: reason.clone(),
        },
        StatisticsError::AuthFailed { url, message } => StatisticsError::AuthFailed {
            url: url.clone(),
            message: message.clone(),
        },
        other => StatisticsError::Unreachable {
            url: String::new(),
            reason: other.to_string(),
        },
    }
}
