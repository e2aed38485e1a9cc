//! Client-side rate limits: an API's documented call budget, shared by every account that calls
//! it, so that starting any number of accounts together never earns a 429 by itself.
//!
//! Each [`Budget`] is a sliding window (at most `calls` in any `per`), kept as the start times of
//! the calls in the current window: exact, and small (a few hundred instants at most).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most `calls` calls to the endpoints `applies` selects within any `per`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Names the budget in the debug log (e.g. `token calls`).
    pub name: &'static str,
    pub calls: usize,
    pub per: Duration,
    /// Which endpoints (`GET /api/token`, ...) count against this budget.
    pub applies: fn(&str) -> bool,
}

impl Budget {
    /// The window the limiter keeps: `per` and a twentieth more, because the API counts calls
    /// when they arrive, and a call let through at the very edge of the window can arrive sooner
    /// after an earlier one than it was let through.
    fn span(&self) -> Duration {
        self.per + self.per / 20
    }
}

/// Time as the limiter sees it, so tests can run minutes of budget in no time.
pub trait Pace: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// tokio's clock: real time, or the paused clock of a `start_paused` test.
pub struct TokioPace;

impl Pace for TokioPace {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

pub struct RateLimiter {
    api: &'static str,
    budgets: Vec<Budget>,
    /// Per budget, the start times of its calls within the last `per`.
    calls: Mutex<Vec<VecDeque<Instant>>>,
    pace: Arc<dyn Pace>,
}

impl RateLimiter {
    pub fn new(api: &'static str, budgets: Vec<Budget>) -> RateLimiter {
        RateLimiter::with_pace(api, budgets, Arc::new(TokioPace))
    }

    pub(crate) fn with_pace(api: &'static str, budgets: Vec<Budget>, pace: Arc<dyn Pace>) -> RateLimiter {
        let calls = Mutex::new(budgets.iter().map(|_| VecDeque::new()).collect());
        RateLimiter {
            api,
            budgets,
            calls,
            pace,
        }
    }

    /// Waits until a call to `endpoint` fits every budget that applies to it, then counts it.
    pub(crate) async fn acquire(&self, endpoint: &str) {
        loop {
            let wait = match self.try_acquire(endpoint) {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tracing::debug!(
                api = self.api,
                endpoint,
                budget = wait.1,
                wait_secs = wait.0.as_secs_f64(),
                "waiting for the API's rate limit"
            );
            self.pace.sleep(wait.0).await;
        }
    }

    /// Counts the call if every budget has room; otherwise the wait until the fullest one has.
    fn try_acquire(&self, endpoint: &str) -> Result<(), (Duration, &'static str)> {
        let now = self.pace.now();
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wait: Option<(Duration, &'static str)> = None;
        for (budget, started) in self.budgets.iter().zip(calls.iter_mut()) {
            if !(budget.applies)(endpoint) {
                continue;
            }
            while started.front().is_some_and(|&t| now.duration_since(t) >= budget.span()) {
                started.pop_front();
            }
            if started.len() >= budget.calls {
                let oldest = started[started.len() - budget.calls];
                let until = (oldest + budget.span()).saturating_duration_since(now);
                if wait.is_none_or(|(w, _)| until > w) {
                    wait = Some((until, budget.name));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (budget, started) in self.budgets.iter().zip(calls.iter_mut()) {
            if (budget.applies)(endpoint) {
                started.push_back(now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(endpoint: &str) -> bool {
        endpoint.ends_with("/token")
    }

    fn any(_: &str) -> bool {
        true
    }

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            "test",
            vec![
                Budget {
                    name: "token calls",
                    calls: 2,
                    per: Duration::from_secs(60),
                    applies: token,
                },
                Budget {
                    name: "calls",
                    calls: 5,
                    per: Duration::from_secs(60),
                    applies: any,
                },
            ],
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_third_token_call_waits_for_the_window() {
        let limiter = limiter();
        let start = tokio::time::Instant::now();
        limiter.acquire("GET /api/token").await;
        limiter.acquire("GET /api/token").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("GET /api/token").await;
        assert_eq!(start.elapsed(), Duration::from_secs(63), "a minute and a margin");
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_counts_against_the_overall_budget() {
        let limiter = limiter();
        let start = tokio::time::Instant::now();
        limiter.acquire("GET /api/token").await;
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..4 {
            limiter.acquire("POST /api/meterdata/gettimeseries").await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        // The window is full; the oldest call (the token call at 0 s) leaves it at 63 s.
        limiter.acquire("GET /api/meteringpoints").await;
        assert_eq!(start.elapsed(), Duration::from_secs(63));
        // A token call fits its own budget again, but the overall window is full until the
        // calls at 10 s leave it.
        limiter.acquire("GET /api/token").await;
        assert_eq!(start.elapsed(), Duration::from_secs(73));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_budget() {
        let limiter = Arc::new(limiter());
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire("GET /api/token").await;
                    start.elapsed()
                })
            })
            .collect();
        let mut finished = Vec::new();
        for task in tasks {
            finished.push(task.await.unwrap().as_secs());
        }
        finished.sort_unstable();
        assert_eq!(finished, [0, 0, 63, 63, 126, 126]);
    }
}
