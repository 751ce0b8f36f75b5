//! `labelctl printer status|send`: talk to one printer directly, for operators
//! checking a cable, a setting or a status, and for tests.
//!
//! `status` exits 0 when the printer said it is ready, 3 when it is not (or said
//! nothing we can trust: silence is never "ready"), 2 when it cannot be reached.

use crate::Failure;
use clap::{Args, Subcommand};
use labeld_drivers::lang::zpl::{self, Zpl};
use labeld_drivers::transport::{self, PrinterUri, Transport, TransportError};
use labeld_drivers::{lang, models, DeviceStatus, Driver, Language, StatusParseError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `labelctl printer` subcommands.
#[derive(Subcommand)]
pub enum PrinterCommand {
    /// Query a printer's status in its language and print it.
    Status(StatusArgs),
    /// Stream a file of printer-language bytes to a printer.
    Send(SendArgs),
}

/// Arguments of `labelctl printer status`.
#[derive(Args)]
pub struct StatusArgs {
    /// usb://VID:PID[?serial=SN], usblp:///dev/usb/lp0, serial:///dev/ttyUSB0?baud=9600,
    /// tcp://HOST[:9100] or file:///path.
    uri: String,
    /// The printer model (decides the status language); default: from the USB ids,
    /// else zpl-203.
    #[arg(long)]
    model: Option<String>,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `labelctl printer send`.
#[derive(Args)]
pub struct SendArgs {
    /// The printer's address (as for `status`).
    uri: String,
    /// The file of printer-language bytes (e.g. from `labelctl render`).
    file: PathBuf,
    /// Seconds the whole write may take.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

/// Runs one `labelctl printer` subcommand.
pub fn run(cmd: PrinterCommand) -> Result<(), Failure> {
    match cmd {
        PrinterCommand::Status(args) => status(args),
        PrinterCommand::Send(args) => send(args),
    }
}

fn connect(uri_text: &str) -> Result<(PrinterUri, Box<dyn Transport>), Failure> {
    let uri = PrinterUri::parse(uri_text).map_err(|e| Failure::Input(e.to_string()))?;
    let mut link = transport::open(&uri).map_err(unreachable)?;
    link.open().map_err(unreachable)?;
    Ok((uri, link))
}

fn unreachable(err: TransportError) -> Failure {
    Failure::Exit(2, format!("cannot reach the printer: {err}"))
}

fn seconds(value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Failure::Input(format!("timeout {value} is not a number of seconds")))
}

fn status(args: StatusArgs) -> Result<(), Failure> {
    let timeout = seconds(args.timeout)?;
    let (uri, mut link) = connect(&args.uri)?;
    let model = match &args.model {
        Some(id) => models::find(id).ok_or_else(|| {
            Failure::Input(format!("unknown model {id:?} (labelctl models lists them)"))
        })?,
        None => match uri {
            PrinterUri::Usb {
                vendor, product, ..
            } => models::find_usb(vendor, product),
            _ => None,
        }
        .or_else(|| models::find("zpl-203"))
        .ok_or_else(|| Failure::Input("no default model".into()))?,
    };
    let driver = lang::driver(&model.profile());
    let info = link.device_info().ok();
    let outcome = query(link.as_mut(), driver.as_ref(), timeout);
    let odometer = match (&outcome, driver.language()) {
        (Ok(Some(_)), Language::Zpl) => odometer(link.as_mut(), timeout),
        _ => None,
    };
    link.close();
    let (status, note) = match outcome {
        Ok(Some(status)) => (Some(status), None),
        Ok(None) => (None, Some("the printer did not answer the status query (it may be in an error state: head open, media out)".to_owned())),
        Err(QueryError::Transport(e)) => return Err(unreachable(e)),
        Err(QueryError::Parse(e)) => (None, Some(format!("the reply was not understood: {e}"))),
        Err(QueryError::NoQuery) => (None, Some(format!("{} printers have no status query", driver.language().name()))),
    };
    let ready = status.as_ref().is_some_and(DeviceStatus::is_ready);
    if args.json {
        let json = serde_json::json!({
            "uri": uri.to_string(),
            "model": model.id,
            "ready": ready,
            "conditions": status.as_ref().map(|s| s.conditions.iter().map(|c| c.name()).collect::<Vec<_>>()),
            "detail": status.as_ref().map(|s| s.detail.clone()),
            "labels_remaining": status.as_ref().and_then(|s| s.labels_remaining),
            "odometer": odometer,
            "note": note,
            "device_id": info.as_ref().and_then(|i| i.device_id.as_ref()).map(|d| d.raw().to_string()),
            "port_status": info.as_ref().and_then(|i| i.port_status).map(|p| p.0),
        });
        println!("{json}");
    } else {
        println!("{uri} ({}):", model.id);
        match &status {
            Some(s) if s.is_ready() => println!("  ready"),
            Some(s) => println!(
                "  not ready: {}",
                s.conditions
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => println!("  unknown (treated as not ready)"),
        }
        if let Some(s) = &status {
            if !s.detail.is_empty() {
                println!("  detail: {}", s.detail);
            }
            if let Some(n) = s.labels_remaining {
                println!("  labels remaining in batch: {n}");
            }
            if let Some(n) = odometer {
                println!("  labels printed (odometer): {n}");
            }
        }
        if let Some(note) = &note {
            println!("  note: {note}");
        }
    }
    if ready {
        Ok(())
    } else {
        Err(Failure::Exit(3, String::new()))
    }
}

enum QueryError {
    NoQuery,
    Transport(TransportError),
    Parse(StatusParseError),
}

/// Sends the status query and reads until the reply parses, or `timeout` passes.
/// `Ok(None)`: the printer said nothing.
fn query(
    link: &mut dyn Transport,
    driver: &dyn Driver,
    timeout: Duration,
) -> Result<Option<DeviceStatus>, QueryError> {
    let request = driver.query_status().ok_or(QueryError::NoQuery)?;
    let deadline = Instant::now() + timeout;
    link.write_all(request, deadline)
        .map_err(QueryError::Transport)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let n = link
            .read_reply(&mut buf, left)
            .map_err(QueryError::Transport)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        match driver.parse_status(&reply) {
            Ok(status) => return Ok(Some(status)),
            Err(StatusParseError::Short { .. }) => continue,
            Err(e) => return Err(QueryError::Parse(e)),
        }
    }
    if reply.is_empty() {
        return Ok(None);
    }
    driver
        .parse_status(&reply)
        .map(Some)
        .map_err(QueryError::Parse)
}

/// The ZPL printer's lifetime label count, if it answers the SGD query (older
/// firmware does not: then `None`, which is not an error).
fn odometer(link: &mut dyn Transport, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    link.write_all(Zpl::odometer_query(), deadline).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while !deadline.saturating_duration_since(Instant::now()).is_zero() {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = link.read_reply(&mut buf, left).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
        match zpl::parse_odometer(&reply) {
            Ok(count) => return Some(count),
            Err(StatusParseError::Short { .. }) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn send(args: SendArgs) -> Result<(), Failure> {
    let timeout = seconds(args.timeout)?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::Input(format!("reading {}: {e}", args.file.display())))?;
    let (uri, mut link) = connect(&args.uri)?;
    let started = Instant::now();
    let result = link.write_all(&bytes, started + timeout);
    link.close();
    match result {
        Ok(()) => {
            println!(
                "{uri}: wrote {} bytes in {:.3} s",
                bytes.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => Err(Failure::Exit(
            2,
            format!(
                "{uri}: wrote {} of {} bytes, then: {e}",
                e.written,
                bytes.len()
            ),
        )),
    }
}
