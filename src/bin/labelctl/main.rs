//! `labelctl`: the command line for labeld's operators and scripts.
//!
//! It exposes the shared encoder (`imb encode|decode|render`, `tray`, `container`),
//! the offline print path (`render`, `preview`, `models`, `printer`, `printers
//! --discover`), and labeld's job API (`submit`, `mail`, `status`, `cancel`,
//! `reprint`, `pause`, `resume`, `printers`, `health`, `watch`, `log`, and the
//! Informed Visibility commands `track`, `tracking report`, `tracking import`), which
//! it speaks over ZeroMQ like any other client (`labeld::client`).
//!
//! Exit codes (also in `labelctl --help`):
//!
//! - 0: success;
//! - 1: anything else (I/O, a fault inside labeld, an unreadable reply);
//! - 2: invalid input or usage, or labeld refused the request (the message is on
//!   stderr with labeld's `code`, `field` and `message`; for IMb input it contains
//!   USPS's `error NN`);
//! - 3: labeld unreachable, timed out, busy or shutting down (`printer status`: the
//!   printer is not ready);
//! - 4: `--wait`: some labels failed or were cancelled.
//!
//! A closed stdout (`labelctl … | head`) is not an error.

mod barcodes;
mod daemon;
mod dates;
mod discover;
mod imb;
mod jobs;
mod mail;
mod models;
mod preview;
mod printer;
mod printers;
mod printlog;
mod progress;
mod records;
mod render;
mod tracking;
mod watch;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// labelctl: drive labeld (submit jobs and mailing lists, watch, manage printers)
/// and encode, decode and render USPS barcodes.
#[derive(Parser)]
#[command(
    name = "labelctl",
    version,
    about,
    propagate_version = true,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Intelligent Mail barcode (USPS-B-3200): encode, decode, render.
    #[command(subcommand)]
    Imb(imb::ImbCommand),
    /// The 24-digit Intelligent Mail tray barcode (Code 128 set C).
    Tray(barcodes::TrayArgs),
    /// The Intelligent Mail container barcode (GS1-128, AI 99).
    Container(barcodes::ContainerArgs),
    /// List the printer models and generic profiles labeld knows.
    Models(models::ModelsArgs),
    /// Render a label job offline into a printer language, PNG or PDF.
    Render(render::RenderArgs),
    /// Talk to one printer: status, send.
    #[command(subcommand)]
    Printer(printer::PrinterCommand),
    /// Submit a label job to labeld; with --wait, return when it is printed.
    Submit(jobs::SubmitArgs),
    /// Print a mailing list (CSV) with a template, in resumable chunks.
    Mail(mail::MailArgs),
    /// Show jobs and their labels' states.
    Status(jobs::StatusArgs),
    /// Cancel the labels of jobs that have not printed yet.
    Cancel(jobs::CancelArgs),
    /// Print a job again, with the same serials or new ones.
    Reprint(jobs::ReprintArgs),
    /// Stop a printer's queue after the label in flight.
    Pause(daemon::PrinterArgs),
    /// Restart a paused printer's queue.
    Resume(daemon::PrinterArgs),
    /// List labeld's printers and their live status; --discover lists USB printers.
    Printers(printers::PrintersArgs),
    /// Is labeld up and serving.
    Health(daemon::HealthArgs),
    /// Follow labeld's events, one line each.
    Watch(watch::WatchArgs),
    /// Export the print log (serial, job, printer, recipient, time).
    Log(printlog::LogArgs),
    /// Render a job to PNG or PDF here; serials labeld would allocate preview as zero.
    Preview(preview::PreviewArgs),
    /// One printed piece: its label, every USPS scan, its state.
    Track(tracking::TrackArgs),
    /// Informed Visibility: report where pieces stand, import feed files.
    #[command(subcommand)]
    Tracking(tracking::TrackingCommand),
}

/// The exit codes, shown under `labelctl --help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  anything else: I/O, a fault inside labeld, an unreadable reply
  2  invalid input, or labeld refused the request (its code, field and message
     are printed on stderr; with --json the reply is printed on stdout)
  3  labeld unreachable, timed out, busy or shutting down (try again);
     `printer status`: the printer is not ready
  4  --wait: some labels failed or were cancelled

Daemon commands find labeld at --endpoint / $LABELD_ENDPOINT (default
tcp://127.0.0.1:7310) and its events at --events / $LABELD_EVENTS (default
tcp://127.0.0.1:7311).";

/// An error that already knows how the process should exit.
#[derive(Debug)]
pub enum Failure {
    /// Bad input from the user: exit 2.
    Input(String),
    /// Anything else (I/O): exit 1.
    Other(anyhow::Error),
    /// A specific exit code with a message (empty: nothing to print).
    Exit(u8, String),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::Other(err)
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Failure {
        Failure::Other(err.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Imb(cmd) => imb::run(cmd),
        Command::Tray(args) => barcodes::tray(args),
        Command::Container(args) => barcodes::container(args),
        Command::Models(args) => models::run(args),
        Command::Render(args) => render::run(args),
        Command::Printer(cmd) => printer::run(cmd),
        Command::Submit(args) => jobs::submit(args),
        Command::Mail(args) => mail::run(args),
        Command::Status(args) => jobs::status(args),
        Command::Cancel(args) => jobs::cancel(args),
        Command::Reprint(args) => jobs::reprint(args),
        Command::Pause(args) => daemon::pause_resume(args, true),
        Command::Resume(args) => daemon::pause_resume(args, false),
        Command::Printers(args) => printers::run(args),
        Command::Health(args) => daemon::health(args),
        Command::Watch(args) => watch::run(args),
        Command::Log(args) => printlog::run(args),
        Command::Preview(args) => preview::run(args),
        Command::Track(args) => tracking::track(args),
        Command::Tracking(cmd) => tracking::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("labelctl: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Exit(code, message)) => {
            if !message.is_empty() {
                eprintln!("labelctl: {message}");
            }
            ExitCode::from(code)
        }
        Err(Failure::Other(err)) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(Failure::Other(err)) => {
            eprintln!("labelctl: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Whether the error chain ends in a closed pipe (the reader went away).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
