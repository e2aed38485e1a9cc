//! The command line: `run`, `check`, `demo`, `fetch`, `upload`. Exit codes: 0 success, 1 a runtime
//! failure (`check` found a problem, `fetch` failed), 2 bad usage or configuration, 3 the state
//! store is unusable.

mod args;
mod check;
pub(crate) mod demo;
mod fetch;
mod logging;
mod run;
mod start;
mod upload;
pub mod wiring;

pub(crate) use args::{Cli, Command};
pub(crate) use start::EXIT_FAILURE;

use std::process::ExitCode;

use clap::Parser;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meter2mqtt: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    crate::http::install_crypto_provider();
    let code = runtime.block_on(dispatch(cli));
    // Blocking tasks (a state write) finish; anything else stuck is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let log = logging::Overrides {
        level: cli.log_level.clone(),
        format: cli.log_format.map(Into::into),
    };
    match cli.command {
        Command::Run(args) => run::run(args, log).await,
        Command::Check(args) => check::check(args, log).await,
        Command::Demo(args) => demo::demo(args, log).await,
        Command::Fetch(args) => fetch::fetch(args, log).await,
        Command::Upload(args) => upload::upload(args, log).await,
    }
}
