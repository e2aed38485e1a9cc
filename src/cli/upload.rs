//! `meter2mqtt upload`: sends a stretch of Home Assistant's statistics of the configured upload
//! series (all, or one `--series`), or with `--dry-run` prints what it would send, as CSV.

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};

use super::args::UploadArgs;
use super::logging;
use super::start::{load_config_quietly, start, EXIT_CONFIG, EXIT_FAILURE};
use crate::providers::upload::{api_time, Delivered, ImportError, Target, UploadSeries, Uploads};

pub(super) async fn upload(args: UploadArgs, log: logging::Overrides) -> u8 {
    let config = match load_config_quietly(&args.config, log) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let store = match start(&config).await {
        Ok((store, _)) => store,
        Err(failure) => {
            eprintln!("meter2mqtt: {failure}");
            return failure.exit_code();
        }
    };
    let uploads = match crate::providers::uploads(&config.accounts, &store) {
        Ok(uploads) => uploads,
        Err(e) => {
            eprintln!("meter2mqtt: {e}");
            return EXIT_CONFIG;
        }
    };
    let chosen: Vec<(&Uploads, &UploadSeries)> = uploads
        .iter()
        .flat_map(|u| u.series.iter().map(move |s| (u, s)))
        .filter(|(_, s)| args.series.as_ref().is_none_or(|id| *id == s.import_id))
        .collect();
    if chosen.is_empty() {
        eprintln!(
            "meter2mqtt: no upload series{} is configured (the upload list of an account)",
            args.series
                .as_ref()
                .map(|id| format!(" with import_id {id:?}"))
                .unwrap_or_default()
        );
        return EXIT_CONFIG;
    }
    let ha = match super::wiring::home_assistant_link(&config) {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            eprintln!("meter2mqtt: {e}");
            return EXIT_CONFIG;
        }
        None => {
            eprintln!(
                "meter2mqtt: upload reads Home Assistant's statistics: configure [homeassistant] (url and token)"
            );
            return EXIT_CONFIG;
        }
    };
    let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let from = day(args.from);
    let to = args.to.map(day).unwrap_or_else(Utc::now);
    if args.dry_run {
        println!("import_id,suit,type,time,to,value,unit");
    }
    let mut code = 0;
    for (upload, series) in chosen {
        let Some(entity) = &series.entity else {
            eprintln!("{}: reads an MQTT topic, which has no history; skipped", series.label());
            continue;
        };
        match send_series(&ha, upload, series, entity, from, to, args.dry_run).await {
            Ok(summary) if !args.dry_run => eprintln!("{}: {summary}", series.label()),
            Ok(_) => {}
            Err(e) => {
                eprintln!("{}: FAILED: {e}", series.label());
                code = EXIT_FAILURE;
            }
        }
    }
    ha.stop().await;
    code
}

async fn send_series(
    ha: &crate::homeassistant::Client,
    upload: &Uploads,
    series: &UploadSeries,
    entity: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    dry_run: bool,
) -> Result<String, String> {
    let target = Target {
        kind: series.kind,
        import_id: &series.import_id,
        suit: &series.suit,
        unit: series.unit.as_deref(),
    };
    let (mut stored, mut duplicates, mut refused) = (0, 0, 0);
    let mut start = from;
    while start < to {
        let end = (start + TimeDelta::days(7)).min(to);
        let records = crate::upload::hourly_records(ha, entity, series.kind, start, end).await?;
        for record in records {
            if dry_run {
                println!(
                    "{},{},{},{},{},{},{}",
                    series.import_id,
                    series.suit,
                    series.kind.as_str(),
                    api_time(record.time),
                    record.to.map(api_time).unwrap_or_default(),
                    record.value,
                    series.unit.as_deref().unwrap_or_default()
                );
                continue;
            }
            match upload.importer.send(&target, &record).await {
                Ok(Delivered::Stored(_)) => stored += 1,
                Ok(Delivered::Duplicate) => duplicates += 1,
                Ok(Delivered::Refused(why)) => {
                    refused += 1;
                    eprintln!("{} at {}: refused: {why}", series.label(), api_time(record.time));
                }
                Err(ImportError::Auth(why) | ImportError::Unavailable(why)) => return Err(why),
            }
        }
        start = end;
    }
    Ok(format!(
        "{stored} stored, {duplicates} already there, {refused} refused"
    ))
}
