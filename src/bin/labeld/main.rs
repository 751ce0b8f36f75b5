//! `labeld`: the label daemon.
//!
//! With no arguments it runs on its embedded default configuration (a preview
//! printer writing PNG files and a ZPL file printer, under `./labeld-data`), serving
//! the job API on `ipc://` and `tcp://127.0.0.1:7310` (events on `:7311`) until
//! SIGTERM or Ctrl-C. `labelctl` is its command-line client. The shape of the
//! process is described in `labeld::daemon`.

mod selftest;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// labeld: direct-to-printer label daemon for US mail.
///
/// Accepts label jobs over ZeroMQ (JSON, see docs/protocol.md), keeps them in a
/// crash-safe SQLite spool, allocates IMb serials, renders every label at the
/// printer's resolution with its IMb verified, and prints over USB, serial, TCP or to
/// files. Without --config it runs on the embedded default configuration (print it
/// with --print-default-config). Logs go to stderr; set LABELD_LOG (e.g. `debug`,
/// `labeld=debug`) to change the level. Signals: SIGHUP reloads the configuration,
/// SIGTERM/SIGINT stop after the labels being sent.
#[derive(Parser, Debug)]
#[command(name = "labeld", version)]
struct Args {
    /// Configuration file (TOML); default: the embedded configuration.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Check the configuration, print what it resolves to, and exit.
    #[arg(long)]
    check_config: bool,
    /// Run the print path once on a preview printer (no daemon) and exit; writes to
    /// $LABELD_PREVIEW_DIR or ./labeld-preview.
    #[arg(long)]
    self_test: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", labeld::config::DEFAULT_TOML);
        return Ok(());
    }
    if args.self_test {
        let dir = std::env::var_os("LABELD_PREVIEW_DIR")
            .map_or_else(|| PathBuf::from("labeld-preview"), PathBuf::from);
        return selftest::run(dir);
    }
    init_logging();
    let options = labeld::daemon::Options {
        config: args.config,
    };
    if args.check_config {
        return check_config(&options);
    }
    labeld::daemon::run(&options).context("labeld cannot start")
}

fn check_config(options: &labeld::daemon::Options) -> anyhow::Result<()> {
    let config = match &options.config {
        Some(path) => labeld::config::Config::load(path)?,
        None => labeld::config::Config::default_config(),
    };
    let cwd = std::env::current_dir()?;
    let r = config.resolve(&|k| std::env::var(k).ok(), &cwd)?;
    println!("configuration ok");
    println!("  spool      {}", r.spool.display());
    println!("  runtime    {}", r.runtime_dir.display());
    for e in &r.requests {
        println!("  requests   {}", r.endpoint(e));
    }
    for e in &r.events {
        println!("  events     {}", r.endpoint(e));
    }
    for s in &r.serial_ranges {
        println!(
            "  serials    mailer id {} {}..={}",
            s.mailer_id, s.first, s.last
        );
    }
    for p in &r.printers {
        println!(
            "  printer    {} ({}, {} dpi) at {}{}",
            p.name,
            p.profile.model,
            p.profile.resolution.x,
            p.uri,
            if p.confirm {
                ", confirms each label"
            } else {
                ""
            }
        );
    }
    check_tracking(&r.tracking)
}

/// `[tracking]`: what it will do, and whether the credentials it needs can be read
/// (without printing them).
fn check_tracking(t: &labeld::tracking::settings::TrackingSettings) -> anyhow::Result<()> {
    use labeld::tracking::credentials::Credentials;
    let env = |k: &str| std::env::var(k).ok();
    if t.enabled {
        let c = Credentials::load(
            t.credentials_file.as_deref(),
            "LABELD_IV_USERNAME",
            "LABELD_IV_PASSWORD",
            &env,
        )
        .context("tracking.credentials_file")?;
        println!(
            "  tracking   IV-MTR at {} as {}, {} requests/hour, window {} days",
            t.api_url, c.username, t.requests_per_hour, t.window_days
        );
    } else {
        println!("  tracking   IV-MTR polling off");
    }
    if let Some(push) = &t.push {
        let c = Credentials::load(
            push.credentials_file.as_deref(),
            "LABELD_IV_PUSH_USERNAME",
            "LABELD_IV_PUSH_PASSWORD",
            &env,
        )
        .context("tracking.push.credentials_file")?;
        let scheme = if push.tls_cert.is_some() {
            "https"
        } else {
            "http (behind a TLS proxy only)"
        };
        println!(
            "  push       {scheme} on {}{} for user {}",
            push.listen, push.path, c.username
        );
    }
    Ok(())
}

/// One line per event on stderr: no colours or timestamps under journald (it adds
/// its own), both on a terminal.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LABELD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
