//! The one place that touches the `backoff` crate (unmaintained: RUSTSEC-2025-0012), so it can be
//! swapped without touching callers.

use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial_interval: Duration,
    pub max_interval: Duration,
    pub multiplier: f64,
    /// ±fraction of jitter around each delay.
    pub randomization_factor: f64,
    /// Attempts after the first; retries are always bounded.
    pub max_retries: u32,
    /// The least wait after a 429 or 503 (ElOverblik asks for 60 s).
    pub throttle_floor: Duration,
    /// Upper bound for a server's Retry-After, so a bogus header cannot park a task for days.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(300),
            multiplier: 2.0,
            randomization_factor: 0.3,
            max_retries: 5,
            throttle_floor: Duration::ZERO,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn delays(&self) -> Delays {
        Delays {
            inner: ExponentialBackoff {
                current_interval: self.initial_interval,
                initial_interval: self.initial_interval,
                randomization_factor: self.randomization_factor,
                multiplier: self.multiplier,
                max_interval: self.max_interval,
                max_elapsed_time: None,
                ..ExponentialBackoff::default()
            },
        }
    }
}

/// Successive exponential delays with jitter.
pub(crate) struct Delays {
    inner: ExponentialBackoff,
}

impl Delays {
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.inner.next_backoff().unwrap_or(self.inner.max_interval)
    }

    pub(crate) fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let policy = RetryPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(10),
            randomization_factor: 0.0,
            ..RetryPolicy::default()
        };
        let mut d = policy.delays();
        let got: Vec<u64> = (0..6).map(|_| d.next_delay().as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        d.reset();
        assert_eq!(d.next_delay().as_secs(), 1);
    }

    #[test]
    fn jitter_stays_in_band() {
        let policy = RetryPolicy {
            initial_interval: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let first = policy.delays().next_delay().as_secs_f64();
            assert!((7.0..=13.0).contains(&first), "{first}");
        }
    }
}
