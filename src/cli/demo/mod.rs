//! `meter2mqtt demo`: the real bridge over built-in sample data, an embedded broker on
//! localhost, and a subscriber that looks at the result the way Home Assistant would.

mod broker;
mod observer;
mod summary;

pub use broker::{BrokerOptions, EmbeddedBroker};

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::args::DemoArgs;
use super::logging;
use super::start::EXIT_FAILURE;
use super::wiring::{start_mqtt, topics};
use crate::bridge::{Bridge, BridgeEvent};
use crate::clock::system_clock;
use crate::config::Config;
use crate::providers::{sample, Account};
use crate::state::StateStore;
use observer::Observer;
use summary::print_summary;

const DEMO_START: (i32, u32, u32) = (2024, 10, 22);

pub(crate) async fn demo(args: DemoArgs, log: logging::Overrides) -> u8 {
    logging::init(
        &Default::default(),
        &logging::Overrides {
            level: log.level.or(Some("warn".into())),
            format: log.format,
        },
    );
    match run_demo(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("meter2mqtt demo: {e}");
            EXIT_FAILURE
        }
    }
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    let broker = EmbeddedBroker::start(&format!("127.0.0.1:{}", args.port), BrokerOptions::default())
        .await
        .map_err(|e| format!("cannot start the embedded broker on 127.0.0.1:{}: {e}", args.port))?;
    let state_dir = std::env::temp_dir().join(format!("meter2mqtt-demo-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(state_dir.clone());

    let start = NaiveDate::from_ymd_opt(DEMO_START.0, DEMO_START.1, DEMO_START.2).expect("valid date");
    let mut config = Config::default();
    config.mqtt.host = "127.0.0.1".into();
    config.mqtt.port = broker.port();
    config.mqtt.client_id = "meter2mqtt-demo".into();
    config.bridge.history_start = Some(start);
    config.bridge.jitter = Duration::ZERO;
    config.state.dir = state_dir.clone();
    config.accounts = vec![Account::of::<sample::Sample>(
        0,
        sample::Settings {
            name: Some("demo".into()),
            start: Some(start),
            days: Some(7),
            ..Default::default()
        },
    )];

    println!("meter2mqtt {} demo", env!("CARGO_PKG_VERSION"));
    println!("  embedded MQTT broker on 127.0.0.1:{}", broker.port());
    println!(
        "  sample data: 2 meters, hourly, {} .. {} (Europe/Copenhagen; 27 October has 25 hours)",
        start,
        start + chrono::Days::new(6)
    );
    println!();

    let observer = Observer::connect(broker.port(), &topics(&config)).await?;

    let store = StateStore::open(&state_dir).map_err(|e| e.to_string())?;
    let providers = crate::providers::build(&config.accounts, &store).map_err(|e| e.to_string())?;
    let (mqtt, sinks) = start_mqtt(&config, store, system_clock());
    let bridge = Bridge::new(config.bridge.clone(), providers.clone()).with_sink(Arc::new(sinks));
    let mut events = bridge.events();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(bridge.run(shutdown.clone()));

    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Ok(event @ BridgeEvent::PollFinished { .. }) => {
                    let BridgeEvent::PollFinished { errors, .. } = event;
                    return Ok((errors, event.delivered_to(crate::mqtt::SINK)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Err("the bridge stopped before finishing its first poll".to_owned()),
            }
        }
    })
    .await
    .map_err(|_| "the first poll did not finish within 60 s".to_owned())??;
    observer.sync().await?;

    let seen = observer.snapshot();
    print_summary(&seen, &config);
    let cost_day = start + chrono::Days::new(5);
    for provider in &providers {
        if let Some(line) = day_cost(provider.as_ref(), cost_day).await {
            println!("{line}");
        }
    }
    println!("first poll: {} intervals published, {} errors", finished.1, finished.0);

    if args.follow {
        println!(
            "\n--follow: the broker on 127.0.0.1:{} and the bridge keep running (poll every {}); try\n  mosquitto_sub -h 127.0.0.1 -p {} -v -t 'meter2mqtt/#'\nCtrl-C to stop",
            config.mqtt.port,
            humantime::format_duration(config.bridge.poll_interval),
            config.mqtt.port
        );
        tokio::spawn(crate::cli::run::stop_on_signal(shutdown.clone()));
        shutdown.cancelled().await;
    } else {
        shutdown.cancel();
    }
    let _ = running.await;
    mqtt.shutdown().await;
    observer.sync().await?;
    let availability = observer
        .snapshot()
        .retained
        .get(&topics(&config).availability())
        .cloned();
    println!(
        "bridge availability after shutdown: {}",
        availability.as_deref().unwrap_or("(none)")
    );
    broker.stop();
    Ok(())
}

/// What a day's readings cost at the provider's prices, per meter that has prices:
/// `cost of 2024-10-27 (Sample house electricity): 40.12 DKK for 25.300 kWh over 25 hours`.
async fn day_cost(provider: &dyn crate::providers::Provider, day: NaiveDate) -> Option<String> {
    let mut lines = Vec::new();
    for meter in provider.meters().await.ok()? {
        let range = crate::model::TimeRange::new(
            crate::model::local_midnight(day, meter.timezone),
            crate::model::local_midnight(day + chrono::Days::new(1), meter.timezone),
        );
        let Ok(Some(prices)) = provider.prices(&meter, range).await else {
            continue;
        };
        let Ok(readings) = provider.readings(&meter, range).await else {
            continue;
        };
        let (mut amount, mut quantity, mut hours) = (0.0, 0.0, 0);
        for reading in &readings {
            let price = prices
                .points
                .iter()
                .find(|p| p.start <= reading.start && reading.end <= p.end);
            if let (Some(value), Some(price)) = (reading.value, price) {
                amount += value * price.price;
                quantity += value;
                hours += 1;
            }
        }
        lines.push(format!(
            "cost of {day} ({}): {amount:.2} {} for {quantity:.3} {} over {hours} hours",
            meter.name, prices.currency, meter.unit
        ));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
