//! tracing-subscriber set-up: an env filter from the CLI, `METER2MQTT_LOG` or `log.level`, text or
//! JSON lines on stderr.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) level: Option<String>,
    pub(crate) format: Option<LogFormat>,
}

pub(crate) fn init(config: &LogConfig, overrides: &Overrides) {
    let level = overrides.level.clone().unwrap_or_else(|| config.level.clone());
    // At trace, tungstenite prints websocket frames, the first of which carries the Home
    // Assistant token: those targets are capped whatever the user asks for.
    let capped = |level: &str| format!("{level},{}", crate::homeassistant::LOG_DIRECTIVES.join(","));
    let filter = EnvFilter::try_new(capped(&level)).unwrap_or_else(|e| {
        eprintln!("meter2mqtt: log level {level:?} is not a valid filter ({e}); using info");
        EnvFilter::new(capped("info"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match overrides.format.unwrap_or(config.format) {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // Already set (tests run several commands in one process): keep the first.
    let _ = result;
}
