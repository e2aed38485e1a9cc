//! The live side of an account's series: at each tick of a series' clock grid, the source's
//! latest value becomes a record timed at the tick; profiles re-read their look-back window of
//! statistics once an hour. Ticks come from the clock, or (tests, `--ticks` in benchmarks) from
//! a channel.

use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::account::Event;
use super::grid::{hour_floor, next_tick, on_grid};
use super::source::Latest;
use crate::clock::SharedClock;
use crate::providers::upload::{Record, RecordKind};

/// Home Assistant compiles an hour's statistics a little after the hour; profiles look then.
const PROFILE_DELAY: TimeDelta = TimeDelta::minutes(10);

/// What the ticks of one series need.
pub(crate) struct Ticking {
    pub(crate) label: String,
    pub(crate) kind: RecordKind,
    pub(crate) interval: Duration,
    pub(crate) latest: Latest,
    /// Whether gaps can be filled from statistics (a Home Assistant entity).
    pub(crate) fills: bool,
    /// Set when a tick found no usable value: the next good tick asks for the gap to be filled.
    gap: bool,
}

impl Ticking {
    pub(crate) fn new(label: String, kind: RecordKind, interval: Duration, latest: Latest, fills: bool) -> Ticking {
        Ticking {
            label,
            kind,
            interval,
            latest,
            fills,
            gap: false,
        }
    }

    fn grid(&self) -> Duration {
        match self.kind {
            RecordKind::Profile => Duration::from_secs(3600),
            _ => self.interval,
        }
    }
}

/// Where tick times come from.
pub enum Ticks {
    /// The wall clock (the [`SharedClock`] of the run).
    Clock,
    /// Times sent on this channel (tests); each applies to the series whose grid it is on.
    Manual(broadcast::Sender<DateTime<Utc>>),
}

pub(crate) async fn run(
    mut series: Vec<Ticking>,
    ticks: broadcast::Receiver<DateTime<Utc>>,
    manual: bool,
    clock: SharedClock,
    lookback: TimeDelta,
    events: mpsc::UnboundedSender<Event>,
    stop: CancellationToken,
) {
    let mut ticks = ticks;
    let mut last = clock.now();
    loop {
        let tick = if manual {
            tokio::select! {
                _ = stop.cancelled() => return,
                tick = ticks.recv() => match tick {
                    Ok(tick) => tick,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        } else {
            let next = series
                .iter()
                .map(|s| match s.kind {
                    RecordKind::Profile => next_tick(last - PROFILE_DELAY, s.grid()) + PROFILE_DELAY,
                    _ => next_tick(last, s.grid()),
                })
                .min();
            let Some(next) = next else { return };
            let wait = (next - clock.now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            next
        };
        last = tick;
        for (index, s) in series.iter_mut().enumerate() {
            let sent = match s.kind {
                RecordKind::Profile => {
                    if !on_grid(tick - PROFILE_DELAY, s.grid()) && !manual_hour(manual, tick) {
                        continue;
                    }
                    events.send(Event::Fill {
                        series: index,
                        since: Some(hour_floor(tick) - lookback),
                        until: tick,
                    })
                }
                _ => {
                    if !on_grid(tick, s.grid()) {
                        continue;
                    }
                    let Some(value) = s.latest.at(tick, s.grid() * 2) else {
                        tracing::debug!(series = %s.label, tick = %tick, "no current numeric value at this tick; no record");
                        s.gap = true;
                        continue;
                    };
                    if std::mem::take(&mut s.gap) && s.fills {
                        let _ = events.send(Event::Fill {
                            series: index,
                            since: None,
                            until: tick,
                        });
                    }
                    events.send(Event::Record(
                        index,
                        Record {
                            time: tick,
                            to: None,
                            value,
                        },
                    ))
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// A manual tick on the hour also refreshes profiles (tests drive hours without the delay).
fn manual_hour(manual: bool, tick: DateTime<Utc>) -> bool {
    manual && on_grid(tick, Duration::from_secs(3600))
}
