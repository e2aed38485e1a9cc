//! What `run`, `check` and `fetch` do before their own work (load the configuration, open the
//! state store, build every account), and the one mapping from what went wrong to the exit code
//! (the table is in docs/architecture.md).

use super::args::ConfigArgs;
use super::logging;
use crate::config::{Config, ConfigError, Sources};
use crate::providers::{ProviderError, SharedProvider};
use crate::state::StateStore;

/// A runtime failure: `check` found a problem, `fetch` failed, `demo` failed.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Bad usage or configuration (every problem is printed).
pub(crate) const EXIT_CONFIG: u8 = 2;
/// The state directory cannot be created or written.
pub(crate) const EXIT_STATE: u8 = 3;

/// Loads the configuration or prints every problem and says which exit code to use.
pub(crate) fn load_config(args: &ConfigArgs) -> Result<Config, u8> {
    let sources = Sources {
        file: args.config.clone(),
        overrides: args.overrides.clone(),
        env: None,
    };
    Config::load(&sources).map_err(|e| report_config_error(&e))
}

/// `load_config` for the one-shot commands, whose logging stays at `warn` unless asked.
pub(crate) fn load_config_quietly(args: &ConfigArgs, log: logging::Overrides) -> Result<Config, u8> {
    let config = load_config(args)?;
    logging::init(
        &config.log,
        &logging::Overrides {
            level: log.level.or(Some("warn".into())),
            format: log.format,
        },
    );
    Ok(config)
}

pub(crate) fn report_config_error(error: &ConfigError) -> u8 {
    eprintln!("meter2mqtt: {error}");
    EXIT_CONFIG
}

/// Opens the state store off the runtime.
async fn open_store(config: &Config) -> Result<StateStore, String> {
    let dir = config.state.dir.clone();
    match tokio::task::spawn_blocking(move || StateStore::open(dir)).await {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("opening the state store failed: {e}")),
    }
}

/// Why a command could not start.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The state store cannot be opened (the message says why).
    State(String),
    /// An account cannot be built.
    Providers(ProviderError),
}

impl StartFailure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            StartFailure::State(_) => EXIT_STATE,
            StartFailure::Providers(ProviderError::Config { .. }) => EXIT_CONFIG,
            StartFailure::Providers(_) => EXIT_FAILURE,
        }
    }
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartFailure::State(message) => f.write_str(message),
            StartFailure::Providers(e) => e.fmt(f),
        }
    }
}

/// Opens the state store and builds every configured account.
pub(crate) async fn start(config: &Config) -> Result<(StateStore, Vec<SharedProvider>), StartFailure> {
    let store = open_store(config).await.map_err(StartFailure::State)?;
    let providers = crate::providers::build(&config.accounts, &store).map_err(StartFailure::Providers)?;
    Ok((store, providers))
}
