//! `meter2mqtt fetch`: a meter's readings for a range of local days, as CSV or JSON.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::args::{FetchArgs, OutputFormat};
use super::logging;
use super::start::{load_config_quietly, start, EXIT_CONFIG, EXIT_FAILURE};
use crate::model::{local_midnight, IntervalReading, Meter, PriceSeries, TimeRange};
use crate::providers::{Provider, Receive, Window};

pub(crate) async fn fetch(args: FetchArgs, log: logging::Overrides) -> u8 {
    if args.to <= args.from {
        eprintln!(
            "meter2mqtt: --to ({}) must be after --from ({}); --to is exclusive",
            args.to, args.from
        );
        return EXIT_CONFIG;
    }
    let config = match load_config_quietly(&args.config, log) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let providers = match start(&config).await {
        Ok((_, providers)) => providers,
        Err(failure) => {
            eprintln!("meter2mqtt: {failure}");
            return failure.exit_code();
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
        let mut printer = Printer::new(&meter.id, meter.unit.as_str(), args.format, range);
        if args.cost {
            printer.prices = Some(Prices {
                provider: provider.as_ref(),
                meter,
                currency: None,
            });
        }
        provider.read(std::slice::from_ref(meter), range, &mut printer).await;
        return match printer.finish() {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("meter2mqtt: {message}");
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

/// Prints each window as it arrives, so a multi-year range needs no more memory than one API
/// window; on a terminal, stderr shows how far the read has come.
struct Printer<'a> {
    meter: &'a str,
    unit: &'a str,
    format: OutputFormat,
    range: TimeRange,
    out: std::io::BufWriter<std::io::Stdout>,
    printed: usize,
    last_start: Option<DateTime<Utc>>,
    progress: bool,
    error: Option<String>,
    /// With `--cost`: where each window's prices come from.
    prices: Option<Prices<'a>>,
}

struct Prices<'a> {
    provider: &'a dyn Provider,
    meter: &'a Meter,
    /// Of the first series seen, for the CSV header.
    currency: Option<String>,
}

impl<'a> Printer<'a> {
    fn new(meter: &'a str, unit: &'a str, format: OutputFormat, range: TimeRange) -> Printer<'a> {
        Printer {
            meter,
            unit,
            format,
            range,
            out: std::io::BufWriter::new(std::io::stdout()),
            printed: 0,
            last_start: None,
            progress: std::io::stderr().is_terminal(),
            error: None,
            prices: None,
        }
    }

    fn write(&mut self, readings: &[IntervalReading], prices: Option<&PriceSeries>) -> std::io::Result<()> {
        if self.printed == 0 {
            match (self.format, &self.prices) {
                (OutputFormat::Csv, None) => writeln!(self.out, "start,end,value,unit,quality,reading")?,
                (OutputFormat::Csv, Some(_)) => {
                    writeln!(self.out, "start,end,value,unit,quality,reading,cost,currency")?
                }
                (OutputFormat::Json, _) => write!(self.out, "[")?,
            }
        }
        let currency = prices
            .map(|p| p.currency.clone())
            .or_else(|| self.prices.as_ref().and_then(|p| p.currency.clone()))
            .unwrap_or_default();
        for r in readings {
            let cost = match (prices, r.value) {
                (Some(series), Some(value)) => series.mean_price(r.start, r.end).map(|price| value * price),
                _ => None,
            };
            // Windows may overlap by an interval at their edges.
            if self.last_start.is_some_and(|last| r.start <= last) {
                continue;
            }
            self.last_start = Some(r.start);
            match self.format {
                OutputFormat::Csv => {
                    write!(
                        self.out,
                        "{},{},{},{},{},{}",
                        r.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.value.map(|v| v.to_string()).unwrap_or_default(),
                        self.unit,
                        r.quality.as_str(),
                        r.reading.map(|v| v.to_string()).unwrap_or_default(),
                    )?;
                    if self.prices.is_some() {
                        let cost = cost.map(|c| format!("{c:.6}")).unwrap_or_default();
                        write!(self.out, ",{cost},{currency}")?;
                    }
                    writeln!(self.out)?;
                }
                OutputFormat::Json => {
                    write!(self.out, "{}\n  ", if self.printed == 0 { "" } else { "," })?;
                    match (&self.prices, serde_json::to_value(r)?) {
                        (Some(_), serde_json::Value::Object(mut fields)) => {
                            let cost = cost.map(|c| (c * 1e6).round() / 1e6);
                            fields.insert("cost".into(), cost.into());
                            fields.insert("currency".into(), currency.clone().into());
                            serde_json::to_writer(&mut self.out, &fields)?;
                        }
                        (_, value) => serde_json::to_writer(&mut self.out, &value)?,
                    }
                }
            }
            self.printed += 1;
        }
        Ok(())
    }

    fn show_progress(&self, reached: DateTime<Utc>) {
        if !self.progress {
            return;
        }
        let total = (self.range.end - self.range.start).num_seconds().max(1) as f64;
        let done = (reached.min(self.range.end) - self.range.start).num_seconds().max(0) as f64;
        eprint!(
            "\r\x1b[Kmeter2mqtt: {} read up to {} ({:.0} %), {} intervals",
            self.meter,
            reached.format("%Y-%m-%d"),
            100.0 * done / total,
            self.printed
        );
    }

    fn finish(mut self) -> Result<(), String> {
        if self.progress {
            eprint!("\r\x1b[K");
        }
        if let Some(error) = self.error.take() {
            let _ = self.out.flush();
            return Err(error);
        }
        let result = (|| {
            if self.printed == 0 {
                self.write(&[], None)?;
            }
            if self.format == OutputFormat::Json {
                writeln!(self.out, "\n]")?;
            }
            self.out.flush()
        })();
        result.map_err(|e| format!("writing the output failed: {e}"))
    }
}

#[async_trait::async_trait]
impl Receive for Printer<'_> {
    async fn window(&mut self, window: Window) -> ControlFlow<()> {
        let prices = match &mut self.prices {
            Some(source) => match source.provider.prices(source.meter, window.covered).await {
                Ok(series) => {
                    if let Some(s) = &series {
                        source.currency.get_or_insert_with(|| s.currency.clone());
                    }
                    series
                }
                Err(e) => {
                    if self.progress {
                        eprint!("\r\x1b[K");
                    }
                    eprintln!(
                        "meter2mqtt: prices for {}: {e}; the cost column stays empty there",
                        window.covered
                    );
                    None
                }
            },
            None => None,
        };
        for (_, result) in window.results {
            match result {
                Ok(mut readings) => {
                    readings.sort_by_key(|r| r.start);
                    if let Err(e) = self.write(&readings, prices.as_ref()) {
                        self.error = Some(format!("writing the output failed: {e}"));
                        return ControlFlow::Break(());
                    }
                }
                Err(e) => {
                    self.error = Some(e.to_string());
                    return ControlFlow::Break(());
                }
            }
        }
        self.show_progress(window.covered.end);
        ControlFlow::Continue(())
    }
}
