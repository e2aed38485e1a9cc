//! What the integration tests share: the broker, a recording subscriber, a scripted provider,
//! the in-process bridge harness, the binary as a process or in the app image, and the fakes of
//! every API.

pub mod addon;
mod broker;
pub mod collector;
pub mod eloverblik_fixture;
pub mod enectiva;
pub mod fake_eds;
pub mod fake_ha;
pub mod flaky_datahub;
pub mod generated_datahub;
mod harness;
pub mod image;
pub mod logs;
pub mod pace;
mod process;
pub mod read_only;
pub mod recording;
mod scripted;

pub use broker::{free_port, unsafe_kill, Broker};
pub use collector::{Collector, Message};
pub use harness::{config, utc, TestBridge};
pub use process::{bin, Proc};
pub use scripted::ScriptedProvider;
