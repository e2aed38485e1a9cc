//! Virtual time for rate limiters: a wait moves the clock instead of sleeping, so a test can run
//! minutes of API budget at once and a fake API can judge its limits on the same clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meter2mqtt::http::Pace;

pub struct VirtualPace {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl VirtualPace {
    pub fn new() -> Arc<VirtualPace> {
        Arc::new(VirtualPace {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        })
    }

    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap()
    }
}

impl Pace for VirtualPace {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        *self.elapsed.lock().unwrap() += duration;
        Box::pin(tokio::task::yield_now())
    }
}
