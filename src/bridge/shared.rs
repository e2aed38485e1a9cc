//! What every worker shares, and the events the bridge reports.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::config::BridgeConfig;
use crate::sink::{SinkFactory, StatusBoard};

/// What happened, for the demo, tests and logs.
#[derive(Debug, Clone)]
pub enum BridgeEvent {
    PollFinished {
        provider: &'static str,
        account: String,
        meters: usize,
        /// Intervals each sink sent on, by sink name.
        delivered: Vec<(&'static str, usize)>,
        errors: usize,
    },
}

impl BridgeEvent {
    /// What the sink named `sink` sent on in this poll.
    pub fn delivered_to(&self, sink: &str) -> usize {
        match self {
            BridgeEvent::PollFinished { delivered, .. } => {
                delivered.iter().filter(|(name, _)| *name == sink).map(|(_, n)| n).sum()
            }
        }
    }
}

/// The parts every worker shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) settings: BridgeConfig,
    pub(crate) sinks: Vec<Arc<dyn SinkFactory>>,
    pub(crate) board: StatusBoard,
    pub(crate) events: broadcast::Sender<BridgeEvent>,
}
