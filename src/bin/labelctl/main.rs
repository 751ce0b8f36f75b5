//! `labelctl`: the command line for labeld's operators and scripts.
//!
//! Today it exposes the shared encoder (`imb encode|decode|render`, `tray`,
//! `container`) and the offline print path (`render`, `models`). Queue and printer
//! commands arrive with the daemon.
//!
//! Exit codes: 0 success, 2 invalid input or usage (the message is on stderr and,
//! for IMb input, contains USPS's `error NN`), 1 anything else (I/O). A closed
//! stdout (`labelctl … | head`) is not an error.

mod barcodes;
mod imb;
mod models;
mod printer;
mod render;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// labelctl: encode, decode and render USPS barcodes; later, drive labeld.
#[derive(Parser)]
#[command(name = "labelctl", version, about, propagate_version = true)]
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
}

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
