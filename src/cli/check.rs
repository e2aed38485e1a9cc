//! `meter2mqtt check`: validate, reach the broker and every API, list meters with their newest data.

use std::time::Duration;

use chrono::Utc;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

use super::args::ConfigArgs;
use super::logging;
use super::start::{load_config_quietly, start, StartFailure, EXIT_FAILURE};
use crate::config::Config;
use crate::model::TimeRange;

pub(crate) async fn check(args: ConfigArgs, log: logging::Overrides) -> u8 {
    let config = match load_config_quietly(&args, log) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("configuration: ok ({} account(s))", config.account_count());
    let mut problems = 0;
    let mut warnings = 0;

    match probe_broker(&config).await {
        Ok(()) => println!("mqtt broker {}:{}: ok", config.mqtt.host, config.mqtt.port),
        Err(e) => {
            problems += 1;
            println!("mqtt broker {}:{}: FAILED: {e}", config.mqtt.host, config.mqtt.port);
        }
    }

    let (store, providers) = match start(&config).await {
        Ok(started) => {
            println!("state store {}: ok", config.state.dir.display());
            started
        }
        Err(failure @ StartFailure::State(_)) => {
            eprintln!("meter2mqtt: {failure}");
            return failure.exit_code();
        }
        Err(failure) => {
            println!("state store {}: ok", config.state.dir.display());
            println!("providers: FAILED: {failure}");
            return failure.exit_code();
        }
    };
    let now = Utc::now();
    for provider in providers {
        let label = format!("{} account {}", provider.kind(), provider.account());
        let meters = match provider.meters().await {
            Ok(meters) => meters,
            Err(e) => {
                problems += 1;
                println!("{label}: FAILED ({}): {e}", e.api_status().as_str());
                continue;
            }
        };
        println!("{label}: ok, {} meter(s)", meters.len());
        let range = TimeRange::new(now - chrono::Duration::days(14), now);
        for (id, result) in provider.readings_many(&meters, range).await {
            let meter = meters.iter().find(|m| m.id == id);
            let name = meter.map(|m| m.name.as_str()).unwrap_or("");
            let unit = meter.map(|m| m.unit.to_string()).unwrap_or_default();
            match result {
                Ok(readings) => {
                    let newest = readings.iter().filter(|r| r.value.is_some()).map(|r| r.end).max();
                    let newest = newest
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "no data in the last 14 days".into());
                    println!("  {id}  {name} [{unit}]  data until: {newest}");
                }
                Err(e) => {
                    problems += 1;
                    println!("  {id}  {name}: FAILED ({}): {e}", e.api_status().as_str());
                }
            }
            if let Some(meter) = meter {
                // Extras beside the meter data (prices, charges): a problem there is worth a
                // warning, not a failed check, since the readings flow without them.
                for line in provider.check_lines(meter).await {
                    if line.problem {
                        warnings += 1;
                        println!("    {}: WARNING", line.text);
                    } else {
                        println!("    {}", line.text);
                    }
                }
            }
        }
    }
    problems += check_uploads(&config, &store).await;
    if problems == 0 {
        match warnings {
            0 => println!("all checks passed"),
            n => println!("all checks passed, with {n} warning(s) about extras beside the meter data"),
        }
        0
    } else {
        println!("{problems} problem(s) found");
        EXIT_FAILURE
    }
}

/// The upload lines; the number of problems.
async fn check_uploads(config: &Config, store: &crate::state::StateStore) -> usize {
    let uploads = match crate::providers::uploads(&config.accounts, store) {
        Ok(uploads) => uploads,
        Err(e) => {
            println!("uploads: FAILED: {e}");
            return 1;
        }
    };
    if uploads.is_empty() {
        return 0;
    }
    let ha = match super::wiring::home_assistant_link(config) {
        Some(Ok(client)) => Some(client),
        Some(Err(e)) => {
            println!("uploads: FAILED: {e}");
            None
        }
        None => None,
    };
    let lines = crate::upload::check(&uploads, ha.as_ref()).await;
    if let Some(ha) = ha {
        ha.stop().await;
    }
    for line in &lines {
        println!("{}", line.text);
    }
    lines.iter().filter(|l| l.problem).count()
}

/// Connects once with its own client id and no last will, so a running bridge is not disturbed.
async fn probe_broker(config: &Config) -> Result<(), String> {
    let mqtt = &config.mqtt;
    let mut options = MqttOptions::new(
        format!("{}-check-{}", mqtt.client_id, std::process::id()),
        mqtt.host.clone(),
        mqtt.port,
    );
    options.set_keep_alive(Duration::from_secs(10));
    if let Some(user) = &mqtt.username {
        options.set_credentials(
            user.clone(),
            mqtt.password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
        );
    }
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    return Err(format!(
                        "the broker refused the connection ({code:?}); check mqtt.username and mqtt.password"
                    ))
                }
                Err(e) => return Err(format!("{e}; check mqtt.host and mqtt.port")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 10 s".into()));
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    outcome
}
