//! `meter2mqtt run`: the daemon.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::args::RunArgs;
use super::logging;
use super::start::{load_config, start, StartFailure, EXIT_CONFIG};
use super::wiring::start_mqtt_with_topics;
use crate::bridge::Bridge;
use crate::clock::system_clock;
use crate::config::Config;
use crate::secret::Secret;
use crate::state::StateStore;
use crate::statistics::{StatisticsSettings, StatisticsSink};

pub(crate) async fn run(args: RunArgs, log: logging::Overrides) -> u8 {
    let loaded = if args.addon {
        crate::addon::load(&args.options).await.map_err(|e| {
            eprintln!("meter2mqtt: {e}");
            EXIT_CONFIG
        })
    } else {
        load_config(&args.config)
    };
    let config = match loaded {
        Ok(config) => config,
        Err(code) => return code,
    };
    logging::init(&config.log, &log);
    run_config(config).await
}

/// Runs the bridge with a loaded configuration until SIGTERM or SIGINT.
pub(crate) async fn run_config(config: Config) -> u8 {
    if config.account_count() == 0 {
        let sections: Vec<String> = crate::providers::KINDS
            .iter()
            .map(|k| format!("[[{}]]", k.kind()))
            .collect();
        eprintln!(
            "meter2mqtt: no provider account is configured; add a section for one: {} ([[sample]] tries the bridge on built-in data)",
            sections.join(", ")
        );
        return EXIT_CONFIG;
    }
    let (store, providers) = match start(&config).await {
        Ok(started) => started,
        Err(failure @ StartFailure::State(_)) => {
            eprintln!("meter2mqtt: {failure}");
            return failure.exit_code();
        }
        Err(failure) => {
            tracing::error!("{failure}");
            return failure.exit_code();
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        accounts = providers.len(),
        broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port),
        state = %config.state.dir.display(),
        "meter2mqtt starting"
    );
    let uploads = match crate::providers::uploads(&config.accounts, &store) {
        Ok(uploads) => uploads,
        Err(e) => {
            tracing::error!("{e}");
            return EXIT_CONFIG;
        }
    };
    let statistics = start_statistics(&config, &store);
    let (mqtt, sinks) = start_mqtt_with_topics(
        &config,
        store.clone(),
        system_clock(),
        crate::upload::topic_subscriptions(&uploads),
    );
    let uploader = match start_uploads(&config, uploads, &mqtt, &store).await {
        Ok(uploader) => uploader,
        Err(code) => return code,
    };
    let mut bridge = Bridge::new(config.bridge.clone(), providers).with_sink(Arc::new(sinks));
    if let Some(sink) = &statistics {
        bridge = bridge.with_sink(Arc::new(sink.clone()));
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    bridge.run(shutdown).await;
    if let Some(uploader) = uploader {
        uploader.shutdown().await;
    }
    if let Some(sink) = statistics {
        sink.shutdown().await;
    }
    mqtt.shutdown().await;
    tracing::info!("meter2mqtt stopped");
    0
}

/// The uploads into the APIs that ingest readings, when any series is configured.
async fn start_uploads(
    config: &Config,
    uploads: Vec<crate::providers::upload::Uploads>,
    mqtt: &crate::mqtt::MqttHandle,
    store: &StateStore,
) -> Result<Option<crate::upload::Uploader>, u8> {
    if uploads.is_empty() {
        return Ok(None);
    }
    let series: usize = uploads.iter().map(|u| u.series.len()).sum();
    tracing::info!(series, "uploading series from Home Assistant and MQTT");
    let run = crate::upload::UploadRun::live(system_clock());
    super::wiring::start_uploads(config, uploads, Some(mqtt.clone()), store.clone(), run)
        .await
        .map(Some)
        .map_err(|e| {
            tracing::error!("uploads: {e}");
            EXIT_CONFIG
        })
}

/// The Energy dashboard import, when `[homeassistant]` asks for it. Inside the add-on the
/// Supervisor's token stands in for a configured one.
fn start_statistics(config: &Config, store: &StateStore) -> Option<StatisticsSink> {
    let ha = config.homeassistant.as_ref().filter(|ha| ha.statistics)?;
    let token = ha
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| std::env::var("SUPERVISOR_TOKEN").ok().map(Secret::new))?;
    tracing::info!(url = %ha.url, cost = ha.cost, "importing hourly statistics into Home Assistant");
    Some(StatisticsSink::start(
        StatisticsSettings::new(ha.url.clone(), token, ha.cost),
        store.clone(),
    ))
}

/// Cancels `token` on SIGINT or SIGTERM.
pub(crate) async fn stop_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                token.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    token.cancel();
}
