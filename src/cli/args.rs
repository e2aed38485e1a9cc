//! The command line's arguments (clap).

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "meter2mqtt",
    version,
    about = "Utility meter data from energy data APIs to MQTT and Home Assistant"
)]
pub(crate) struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive); overrides log.level.
    #[arg(long, global = true, env = "METER2MQTT_LOG")]
    pub(crate) log_level: Option<String>,
    /// Log line format; overrides log.format.
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the bridge (the daemon).
    Run(RunArgs),
    /// Validate the configuration, reach every API and the broker, list meters; non-zero exit on any problem.
    Check(ConfigArgs),
    /// The whole pipeline on built-in sample data with an embedded broker; no credentials needed.
    Demo(DemoArgs),
    /// Print a meter's readings for a date range as CSV or JSON.
    Fetch(FetchArgs),
    /// Send a stretch of Home Assistant's statistics of the upload series (or print it as CSV).
    Upload(UploadArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ConfigArgs {
    /// TOML configuration file (must exist when given).
    #[arg(short, long, env = "METER2MQTT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Override a key, e.g. --set mqtt.port=1884 (repeatable; highest precedence).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Run as a Home Assistant add-on: options from the add-on's options file, MQTT from the
    /// Supervisor, state beside the options file, statistics through the Supervisor.
    #[arg(long, conflicts_with = "config")]
    pub(crate) addon: bool,
    /// The add-on options file (with --addon).
    #[arg(long, default_value = crate::addon::DEFAULT_OPTIONS_PATH, requires = "addon")]
    pub(crate) options: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the embedded broker and the bridge running after the summary, so an MQTT client or
    /// Home Assistant can connect to the printed port, until Ctrl-C.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Port for the embedded broker (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum OutputFormat {
    #[default]
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Meter id (e.g. an 18-digit metering point id).
    #[arg(long)]
    pub(crate) meter: String,
    /// First local day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub(crate) from: NaiveDate,
    /// Last local day (YYYY-MM-DD), exclusive.
    #[arg(long)]
    pub(crate) to: NaiveDate,
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    pub(crate) format: OutputFormat,
    /// Add what each interval cost (or earned), where the provider knows prices (ElOverblik:
    /// spot price, the tariffs valid then, VAT); empty where a price is not known.
    #[arg(long)]
    pub(crate) cost: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only the series with this import_id.
    #[arg(long)]
    pub series: Option<String>,
    /// First day (YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day (YYYY-MM-DD, UTC), exclusive; default: now.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Print what would be sent, as CSV, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}
