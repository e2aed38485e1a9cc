//! What can stop the add-on from starting, each said so that the user knows what to do.
//!
//! No variant carries a token, a password or an option's secret value: only option names, paths,
//! URLs, HTTP statuses and the Supervisor's own messages.

use std::path::PathBuf;

use crate::config::ConfigIssue;

/// Points the user at the Mosquitto broker app (an add-on before 2026), the usual MQTT service provider.
const INSTALL_MOSQUITTO: &str = "install and start the Mosquitto broker app (Settings → Apps → App store → \
     Mosquitto broker; releases before 2026 call it an add-on: Settings → Add-ons → Add-on store), then restart \
     meter2mqtt";

#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error(
        "app options file {} does not exist; the Supervisor writes it when the app (add-on) starts. \
         Outside the app, use `meter2mqtt run --config FILE` instead of `--addon`",
        .0.display()
    )]
    OptionsMissing(PathBuf),

    #[error("app options file {} cannot be read: {source}", path.display())]
    OptionsUnreadable { path: PathBuf, source: std::io::Error },

    #[error(
        "app options file {} is not a JSON object ({message}); save the app's Configuration tab again \
         so that the Supervisor rewrites it",
        path.display()
    )]
    OptionsNotJson { path: PathBuf, message: String },

    #[error(
        "the app options have {} problem{} (fix {} on the app's Configuration tab):\n{}",
        .0.len(),
        plural(.0.len()),
        if .0.len() == 1 { "it" } else { "them" },
        list(.0)
    )]
    InvalidOptions(Vec<ConfigIssue>),

    #[error(
        "SUPERVISOR_TOKEN is not set: `meter2mqtt run --addon` only works inside the Home Assistant app (add-on), \
         where the Supervisor provides it. Outside the app, use `meter2mqtt run --config FILE`"
    )]
    MissingSupervisorToken,

    #[error("SUPERVISOR_URL {url:?} is not an http(s) URL; leave it unset to use http://supervisor")]
    BadSupervisorUrl { url: String },

    #[error(
        "could not reach the Home Assistant Supervisor at {url}: {message}; the Supervisor may be restarting: \
         restart this app once Home Assistant is up again"
    )]
    SupervisorUnreachable { url: String, message: String },

    #[error(
        "the Supervisor refused to give this app the MQTT service (HTTP {status}: {message}); reinstall or \
         update the app so that its `services: mqtt:need` permission is granted"
    )]
    SupervisorRefused { status: u16, message: String },

    #[error("no MQTT broker is available from the Supervisor ({message}): {INSTALL_MOSQUITTO}")]
    MqttServiceUnavailable { message: String },

    #[error("the Supervisor's answer about the MQTT service could not be used: {message}")]
    SupervisorAnswer { message: String },

    #[error(
        "the MQTT service from the Supervisor ({host}:{port}) requires TLS, and this build of meter2mqtt has no \
         broker TLS; configure the broker app to offer a plain listener, or use a build with the `mqtt-tls` \
         feature"
    )]
    MqttTlsUnavailable { host: String, port: u16 },

    #[error(
        "the MQTT service from the Supervisor has settings meter2mqtt cannot use:\n{}\nCheck the broker app's \
         configuration, or {INSTALL_MOSQUITTO}",
        list(.0)
    )]
    InvalidMqttService(Vec<ConfigIssue>),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {}: {}", i.key, i.message))
        .collect::<Vec<_>>()
        .join("\n")
}
