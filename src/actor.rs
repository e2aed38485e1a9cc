//! The connection-actor pattern both long-lived links use (the MQTT broker, Home Assistant's
//! websocket): one background task owns the connection; callers hold cheap handles that talk to
//! it over channels; one [`Actor`] stops it. The task receives a [`StopSignal`] and ends at its
//! next safe point once it fires.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What an actor's task watches to know it must wind down.
pub(crate) type StopSignal = CancellationToken;

/// The task behind a connection, and the one way to stop it.
pub(crate) struct Actor {
    stop: StopSignal,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Actor {
    /// Spawns `run` on the current runtime with the signal it must watch.
    pub(crate) fn spawn<F>(run: impl FnOnce(StopSignal) -> F) -> Actor
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = StopSignal::new();
        let task = tokio::spawn(run(stop.clone()));
        Actor {
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Fires the stop signal and waits for the task to finish its goodbye (an `offline`
    /// message, a websocket close); after `grace` it is aborted. Later calls return at once.
    pub(crate) async fn stop(&self, grace: Duration) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                tracing::debug!("a connection task did not stop within {grace:?}; aborted");
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stop_waits_for_the_goodbye_and_aborts_a_stuck_task() {
        let (said_goodbye, goodbye) = tokio::sync::oneshot::channel();
        let polite = Actor::spawn(|stop| async move {
            stop.cancelled().await;
            let _ = said_goodbye.send(());
        });
        polite.stop(Duration::from_secs(1)).await;
        assert!(goodbye.await.is_ok());
        assert!(polite.stop.is_cancelled());
        polite.stop(Duration::from_secs(1)).await;

        let stuck = Actor::spawn(|_| std::future::pending());
        let started = tokio::time::Instant::now();
        stuck.stop(Duration::from_secs(5)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
