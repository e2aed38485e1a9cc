//! The bridge: one worker per provider account. A worker only orchestrates: it lists the meters,
//! asks every sink from when it needs data (`ranges`), fetches, hands each result to every sink,
//! and reports how the poll went. What reaches a sink, and what it remembers, is the sink's
//! business (see [`crate::sink`]).

mod progress;
mod ranges;
mod rechunk;
mod shared;
mod worker;

pub use shared::BridgeEvent;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::BridgeConfig;
use crate::providers::SharedProvider;
use crate::sink::{SinkFactory, StatusBoard};
use shared::Shared;

pub struct Bridge {
    shared: Shared,
    providers: Vec<SharedProvider>,
}

impl Bridge {
    pub fn new(settings: BridgeConfig, providers: Vec<SharedProvider>) -> Self {
        let (events, _) = broadcast::channel(256);
        Bridge {
            shared: Shared {
                settings,
                sinks: Vec::new(),
                board: StatusBoard::new(providers.len()),
                events,
            },
            providers,
        }
    }

    pub fn with_sink(mut self, sink: Arc<dyn SinkFactory>) -> Self {
        self.shared.sinks.push(sink);
        self
    }

    pub fn events(&self) -> broadcast::Receiver<BridgeEvent> {
        self.shared.events.subscribe()
    }

    /// Runs until `shutdown` is cancelled. Workers stop at the next safe point: a batch a sink
    /// already had acknowledged is always recorded before the task ends.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        for sink in &shared.sinks {
            sink.start(shared.board.clone(), shutdown.clone()).await;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for provider in self.providers {
            tasks.spawn(worker::AccountWorker::new(shared.clone(), provider).run(shutdown.clone()));
        }
        shutdown.cancelled().await;
        // Workers stop at their next safe point; a stuck one must not hold up the exit.
        let drained = tokio::time::timeout(Duration::from_secs(8), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some accounts did not stop in time; their last unacknowledged batch will be fetched again");
            tasks.abort_all();
        }
    }
}
