//! `meter2mqtt fetch`: a meter's readings for a range of local days, as CSV or JSON.

use std::io::Write;

use super::{logging, FetchArgs, OutputFormat, EXIT_CONFIG, EXIT_FAILURE};
use crate::model::{local_midnight, IntervalReading, TimeRange};

pub async fn fetch(args: FetchArgs, log: logging::Overrides) -> u8 {
    if args.to <= args.from {
        eprintln!(
            "meter2mqtt: --to ({}) must be after --from ({}); --to is exclusive",
            args.to, args.from
        );
        return EXIT_CONFIG;
    }
    let config = match super::load_config_quietly(&args.config, log) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let store = match super::open_store(&config).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let providers = match crate::providers::build(&config.accounts, &store) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("meter2mqtt: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut known = Vec::new();
    for provider in &providers {
        let meters = match provider.meters().await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("meter2mqtt: {} account {}: {e}", provider.kind(), provider.account());
                continue;
            }
        };
        let Some(meter) = meters.iter().find(|m| m.id == args.meter) else {
            known.extend(meters.iter().map(|m| m.id.clone()));
            continue;
        };
        let range = TimeRange::new(
            local_midnight(args.from, meter.timezone),
            local_midnight(args.to, meter.timezone),
        );
        return match provider.readings(meter, range).await {
            Ok(readings) => match print(&readings, meter.unit.as_str(), args.format) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("meter2mqtt: writing the output failed: {e}");
                    EXIT_FAILURE
                }
            },
            Err(e) => {
                eprintln!("meter2mqtt: {e}");
                EXIT_FAILURE
            }
        };
    }
    eprintln!(
        "meter2mqtt: no configured account has meter {:?}; known meters: {}",
        args.meter,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    );
    EXIT_FAILURE
}

fn print(readings: &[IntervalReading], unit: &str, format: OutputFormat) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Csv => {
            writeln!(out, "start,end,value,unit,quality,reading")?;
            for r in readings {
                writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    r.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.value.map(|v| v.to_string()).unwrap_or_default(),
                    unit,
                    r.quality.as_str(),
                    r.reading.map(|v| v.to_string()).unwrap_or_default(),
                )?;
            }
        }
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, readings)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
