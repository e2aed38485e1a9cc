//! The recorder commands this sink uses, typed, with errors that name the statistic.

use serde_json::Value;
use tokio::sync::watch;

use super::ledger::PlannedRow;
use super::recorder::{metadata_lists, parse_period_rows, Recorder, StoredRow};
use super::series::Series;
use super::StatisticsError;
use crate::homeassistant::{CallError, Client, Command, LinkStatus};

const HOUR: i64 = 3600;
/// The span of one `statistics_during_period` read: a month of hours.
const READ_CHUNK: i64 = 31 * 24 * HOUR;

#[derive(Clone)]
pub(crate) struct Remote {
    client: Client,
}

impl Remote {
    pub(crate) fn new(client: Client) -> Remote {
        Remote { client }
    }

    pub(crate) fn status_updates(&self) -> watch::Receiver<LinkStatus> {
        self.client.status_updates()
    }

    pub(crate) async fn stop(&self) {
        self.client.stop().await;
    }

    /// Returns once HA acknowledged the rows (`success: true`).
    pub(crate) async fn import(&self, series: &Series, rows: Vec<PlannedRow>) -> Result<(), StatisticsError> {
        self.call(Recorder::ImportStatistics {
            series: series.clone(),
            rows,
        })
        .await
        .map(drop)
    }

    /// HA's hourly rows of `statistic_id` in `[start, end)` (`end` open: up to now), oldest
    /// first. Read a month at a time: a multi-year history in one answer would be one message of
    /// tens of megabytes for HA to build and for us to hold.
    pub(crate) async fn rows(
        &self,
        statistic_id: &str,
        start: i64,
        end: Option<i64>,
    ) -> Result<Vec<StoredRow>, StatisticsError> {
        let limit = end.unwrap_or_else(|| chrono::Utc::now().timestamp() + HOUR);
        let mut rows = Vec::new();
        let mut from = start;
        loop {
            let to = from.saturating_add(READ_CHUNK);
            let last = to >= limit;
            let command = Recorder::StatisticsDuringPeriod {
                statistic_id: statistic_id.to_owned(),
                start: from,
                end: if last { end } else { Some(to) },
            };
            let name = command.name();
            let result = self.call(command).await?;
            rows.extend(
                parse_period_rows(&result, statistic_id).map_err(|detail| protocol(name, statistic_id, detail))?,
            );
            if last {
                return Ok(rows);
            }
            from = to;
        }
    }

    /// Whether HA knows the statistic at all.
    pub(crate) async fn knows(&self, statistic_id: &str) -> Result<bool, StatisticsError> {
        let command = Recorder::GetStatisticsMetadata {
            statistic_id: statistic_id.to_owned(),
        };
        let name = command.name();
        let result = self.call(command).await?;
        metadata_lists(&result, statistic_id).map_err(|detail| protocol(name, statistic_id, detail))
    }

    async fn call(&self, command: Recorder) -> Result<Value, StatisticsError> {
        let name = command.name();
        let subject = command.subject().to_owned();
        self.client
            .call(command)
            .await
            .map_err(|e| self.error(name, subject, e))
    }

    fn error(&self, command: &'static str, statistic_id: String, e: CallError) -> StatisticsError {
        let url = self.client.status().url;
        match e {
            CallError::Unreachable(reason) => StatisticsError::Unreachable { url, reason },
            CallError::AuthFailed(message) => StatisticsError::AuthFailed { url, message },
            CallError::Timeout(after) => StatisticsError::Timeout {
                command,
                statistic_id,
                after,
            },
            CallError::Failed(f) if f.code == "unauthorized" => StatisticsError::NotAdmin {
                url,
                command,
                statistic_id,
            },
            CallError::Failed(f) => StatisticsError::Rejected {
                command,
                statistic_id,
                code: f.code,
                message: f.message,
            },
            CallError::Stopped => StatisticsError::Stopped { statistic_id },
        }
    }
}

fn protocol(command: &'static str, statistic_id: &str, detail: String) -> StatisticsError {
    StatisticsError::Protocol {
        command,
        statistic_id: statistic_id.to_owned(),
        detail,
    }
}
