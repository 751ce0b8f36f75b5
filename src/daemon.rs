//! The daemon's shape: start every part in order, run until a signal, stop in order.
//!
//! ```text
//! config ─► spool (ranges) ─► scheduler (one worker thread per printer, recovery)
//!        ─► server (guarded ZeroMQ ROUTER + PUB, tokio) ─► office thread (spool writes)
//!        ─► tracking: desk thread, poller thread (IV-MTR), push receiver (opt-in)
//!        ─► READY=1 ─► signals: SIGHUP reload · SIGTERM/SIGINT stop · watchdog pings
//! ```
//!
//! Stopping (SIGTERM, SIGINT): new submits are refused with `shutting_down`, every
//! printer worker finishes the label it is sending and stops, the server flushes the
//! replies it owes and closes, and the office drains. Whatever was queued stays in
//! the spool for the next start. Reloading (SIGHUP): the file is read and checked
//! again; if it is bad the old configuration stays and the error is logged; if it is
//! good the printer table and workers are replaced. Endpoints, the spool path and
//! limits need a restart (the log says so when they changed).
//!
//! systemd: `READY=1` once sockets are bound and recovery has run, `STATUS=` lines,
//! `WATCHDOG=1` only while an end-to-end `health` request through the office comes
//! back in time and every printer worker is alive, `STOPPING=1` on the way out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use labeld_drivers::transport::uri::PrinterUri;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, ConfigError, Resolved};
use crate::events::Events;
use crate::protocol::{Op, Request};
use crate::scheduler::{Scheduler, SchedulerOptions};
use crate::server::{Incoming, Server, ServerConfig};
use crate::service::{Office, PrinterTable};
use crate::spool::{LowWater, Spool, SpoolError, SpoolOptions};
use crate::tracking::credentials::{self, Credentials};
use crate::tracking::desk::Desk;
use crate::tracking::feed::FeedLimits;
use crate::tracking::ivmtr::IvClient;
use crate::tracking::poller::Poller;
use crate::tracking::receiver::{FeedSink, Receiver, ReceiverError};
use crate::tracking::settings::TrackingSettings;

/// How long printer workers get to finish the label in flight on SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(60);
/// Events waiting for the PUB socket before new ones are dropped.
const EVENT_QUEUE: usize = 65_536;

/// Why the daemon could not start (or stopped on a fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A directory could not be made.
    #[error("cannot create {path}: {source} (check permissions, or set LABELD_STATE_DIR)")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The spool could not be opened or a serial range set.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The printer workers could not start.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// Sockets could not be bound.
    #[error("server: {0}")]
    Server(String),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// Informed Visibility tracking is configured but cannot start.
    #[error("tracking: {0}")]
    Tracking(String),
}

/// Where the configuration comes from.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A TOML file; `None` runs on the embedded default.
    pub config: Option<PathBuf>,
}

fn load(options: &Options) -> Result<Resolved, DaemonError> {
    let config = match &options.config {
        Some(path) => Config::load(path)?,
        None => Config::default_config(),
    };
    let cwd = std::env::current_dir().map_err(|source| DaemonError::Directory {
        path: PathBuf::from("."),
        source,
    })?;
    Ok(config.resolve(&|k| std::env::var(k).ok(), &cwd)?)
}

fn make_dir(path: &Path, mode: u32) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| DaemonError::Directory {
            path: path.to_owned(),
            source,
        })
}

/// Makes the directories a configuration needs: state, runtime, and the folders of
/// `file:` printers that live under the state directory.
fn prepare_directories(resolved: &Resolved) -> Result<(), DaemonError> {
    make_dir(&resolved.state_dir, 0o750)?;
    make_dir(&resolved.runtime_dir, 0o750)?;
    if let Some(parent) = resolved.spool.parent() {
        make_dir(parent, 0o750)?;
    }
    for p in &resolved.printers {
        if let PrinterUri::File { path } = &p.uri {
            let as_text = path.to_string_lossy();
            if as_text.ends_with('/') && path.starts_with(&resolved.state_dir) {
                make_dir(path, 0o750)?;
            }
        }
    }
    Ok(())
}

fn printer_table(resolved: &Resolved) -> BTreeMap<String, crate::config::PrinterSetup> {
    resolved
        .printers
        .iter()
        .map(|p| (p.name.clone(), p.clone()))
        .collect()
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    // Not under systemd: NOTIFY_SOCKET is unset and this does nothing.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify");
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
///
/// A [`DaemonError`] when a part cannot start; once running, faults are logged and
/// the daemon keeps serving.
pub fn run(options: &Options) -> Result<(), DaemonError> {
    let resolved = load(options)?;
    prepare_directories(&resolved)?;

    let spool_options = SpoolOptions {
        low_water: LowWater::Percent(resolved.low_water_percent),
        ..SpoolOptions::default()
    };
    let mut spool = Spool::open_with(&resolved.spool, &spool_options)?;
    for r in &resolved.serial_ranges {
        let status = spool.configure_range(&r.mailer_id, r.first, r.last)?;
        tracing::info!(
            mailer_id = %r.mailer_id,
            first = r.first,
            last = r.last,
            next = status.next,
            left = status.left(),
            "serial range"
        );
    }

    let (events, event_rx) = Events::channel(EVENT_QUEUE);
    let scheduler = Scheduler::start(
        resolved.printers.clone(),
        &resolved.spool,
        spool_options.clone(),
        events.clone(),
        SchedulerOptions::default(),
    )
    .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let scheduler = Arc::new(scheduler);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("labeld-io")
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;

    let server_config = ServerConfig {
        requests: resolved
            .requests
            .iter()
            .map(|e| resolved.endpoint(e))
            .collect(),
        events: resolved
            .events
            .iter()
            .map(|e| resolved.endpoint(e))
            .collect(),
        runtime_dir: resolved.runtime_dir.clone(),
        allow_remote: resolved.allow_remote,
        limits: resolved.limits,
        max_frame_bytes: resolved.max_frame_bytes,
        reply_timeout: resolved.reply_timeout,
        max_pending: resolved.max_pending,
    };
    let server = runtime
        .block_on(Server::bind(server_config))
        .map_err(|e| DaemonError::Server(e.to_string()))?;
    let endpoints = serde_json::json!({
        "requests": server.request_endpoints(),
        "events": server.event_endpoints(),
        "pid": std::process::id(),
    });
    let endpoints_file = resolved.runtime_dir.join("endpoints.json");
    if let Err(e) = std::fs::write(&endpoints_file, endpoints.to_string()) {
        tracing::warn!(file = %endpoints_file.display(), error = %e, "cannot write endpoints file");
    }

    let printers: PrinterTable = Arc::new(RwLock::new(printer_table(&resolved)));
    let stopping = Arc::new(AtomicBool::new(false));
    let in_round = Arc::new(AtomicBool::new(false));
    // Requests from the server go to the office (everything that writes) or to the
    // reader (status, health, printers, log), each a thread with its own connection.
    let (server_tx, mut server_rx) = mpsc::channel::<Incoming>(resolved.max_pending);
    let (office_tx, office_rx) = mpsc::channel::<Incoming>(resolved.max_pending);
    let (reader_tx, reader_rx) = mpsc::channel::<Incoming>(resolved.max_pending);
    let office = Office {
        spool,
        spool_path: resolved.spool.clone(),
        printers: Arc::clone(&printers),
        scheduler: Arc::clone(&scheduler),
        events: events.clone(),
        stopping: Arc::clone(&stopping),
        in_round: Arc::clone(&in_round),
        retention: resolved.log_retention,
        prunes: true,
    };
    let reader = Office {
        spool: Spool::open_with(&resolved.spool, &spool_options)?,
        spool_path: resolved.spool.clone(),
        printers: Arc::clone(&printers),
        scheduler: Arc::clone(&scheduler),
        events: events.clone(),
        stopping: Arc::clone(&stopping),
        in_round: Arc::new(AtomicBool::new(false)),
        retention: resolved.log_retention,
        prunes: false,
    };
    let office_thread = std::thread::Builder::new()
        .name("labeld-office".into())
        .spawn(move || office.run(office_rx))
        .map_err(DaemonError::Runtime)?;
    let reader_thread = std::thread::Builder::new()
        .name("labeld-reader".into())
        .spawn(move || reader.run(reader_rx))
        .map_err(DaemonError::Runtime)?;
    // Tracking: the desk answers track/report/import; the poller asks IV-MTR (when
    // enabled) and watches for stalled pieces; the receiver takes pushed feeds.
    let (desk_tx, desk_rx) = mpsc::channel::<Incoming>(resolved.max_pending);
    let desk = Desk::open(
        &resolved.spool,
        resolved.tracking.clone(),
        events.clone(),
        resolved
            .serial_ranges
            .iter()
            .map(|r| r.mailer_id.clone())
            .collect(),
    )
    .map_err(|e| DaemonError::Tracking(e.to_string()))?;
    // `track` with `refresh` is a person waiting: one try with a short timeout, so
    // a slow IV-MTR never holds the desk (and the requests queued behind it) for long.
    let desk = if resolved.tracking.enabled {
        let quick = TrackingSettings {
            tries: 1,
            request_timeout_secs: resolved.tracking.request_timeout_secs.min(10),
            ..resolved.tracking.clone()
        };
        let client = IvClient::new(&quick, iv_credentials(&resolved)?)
            .map_err(|e| DaemonError::Tracking(e.to_string()))?
            .with_stop(Arc::clone(&stopping));
        desk.with_client(client)
    } else {
        desk
    };
    let desk_thread = std::thread::Builder::new()
        .name("labeld-tracking-desk".into())
        .spawn(move || desk.run(desk_rx))
        .map_err(DaemonError::Runtime)?;
    let poller = start_poller(&resolved, &events)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let receiver = start_receiver(&runtime, &resolved, &events, stop_rx.clone())?;

    let watchdog_probe = office_tx.clone();
    runtime.spawn(async move {
        while let Some(incoming) = server_rx.recv().await {
            let to = if crate::tracking::desk::serves(&incoming.request.op) {
                &desk_tx
            } else if crate::service::reads_only(&incoming.request.op) {
                &reader_tx
            } else {
                &office_tx
            };
            if to.send(incoming).await.is_err() {
                break;
            }
        }
    });

    let serve = runtime.spawn(server.serve(server_tx, event_rx, stop_rx));

    tracing::info!(
        requests = ?endpoints["requests"],
        events = ?endpoints["events"],
        spool = %resolved.spool.display(),
        printers = ?resolved.printers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "labeld ready"
    );
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!(
            "serving {} printer(s) on {}",
            resolved.printers.len(),
            resolved.requests.join(", ")
        )),
    ]);

    runtime.block_on(supervise(
        options,
        &resolved,
        &printers,
        &scheduler,
        watchdog_probe,
    ));

    // Stop: refuse submits, let printers finish the label in flight, close sockets.
    stopping.store(true, Ordering::SeqCst);
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: finishing labels in flight"),
    ]);
    tracing::info!("stopping: finishing the labels being sent");
    scheduler.shutdown(STOP_GRACE);
    // A round the office started before `stopping` was set may still commit: let it
    // finish so its replies go out before the sockets close. Rounds started after it
    // only refuse, so this ends quickly.
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while in_round.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = stop_tx.send(true);
    match runtime.block_on(serve) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "server stopped with an error"),
        Err(e) => tracing::error!(error = %e, "server task failed"),
    }
    if office_thread.join().is_err() {
        tracing::error!("office thread panicked");
    }
    if reader_thread.join().is_err() {
        tracing::error!("reader thread panicked");
    }
    if desk_thread.join().is_err() {
        tracing::error!("tracking desk thread panicked");
    }
    poller.stop();
    if let Some(receiver) = receiver {
        match runtime.block_on(receiver) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "push receiver stopped with an error"),
            Err(e) => tracing::error!(error = %e, "push receiver task failed"),
        }
    }
    let _ = std::fs::remove_file(&endpoints_file);
    runtime.shutdown_timeout(Duration::from_secs(2));
    tracing::info!("labeld stopped; queued labels stay in the spool");
    Ok(())
}

/// IV-MTR credentials: the configured file, else `LABELD_IV_USERNAME` and
/// `LABELD_IV_PASSWORD`.
fn iv_credentials(resolved: &Resolved) -> Result<Credentials, DaemonError> {
    Credentials::load(
        resolved.tracking.credentials_file.as_deref(),
        credentials::IV_USERNAME_VAR,
        credentials::IV_PASSWORD_VAR,
        &|k| std::env::var(k).ok(),
    )
    .map_err(|e| DaemonError::Tracking(format!("IV-MTR credentials: {e}")))
}

/// The poller: with credentials when `tracking.enabled`, else only stall checks.
fn start_poller(resolved: &Resolved, events: &Events) -> Result<Poller, DaemonError> {
    let credentials = if resolved.tracking.enabled {
        Some(iv_credentials(resolved)?)
    } else {
        None
    };
    Poller::start(
        &resolved.spool,
        resolved.tracking.clone(),
        credentials,
        events.clone(),
        resolved.log_retention,
    )
    .map_err(|e| DaemonError::Tracking(e.to_string()))
}

/// The push receiver, when `[tracking.push]` is configured: bound now (so a bad
/// address or certificate stops the start), served until `stop`.
fn start_receiver(
    runtime: &tokio::runtime::Runtime,
    resolved: &Resolved,
    events: &Events,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<Result<(), ReceiverError>>>, DaemonError> {
    let Some(push) = &resolved.tracking.push else {
        return Ok(None);
    };
    let credentials = Credentials::load(
        push.credentials_file.as_deref(),
        credentials::PUSH_USERNAME_VAR,
        credentials::PUSH_PASSWORD_VAR,
        &|k| std::env::var(k).ok(),
    )
    .map_err(|e| DaemonError::Tracking(format!("push receiver credentials: {e}")))?;
    let sink = FeedSink {
        spool_path: resolved.spool.clone(),
        rules: resolved.tracking.stages.clone(),
        events: events.clone(),
        limits: FeedLimits {
            max_bytes: push.max_feed_bytes.max(push.max_body_bytes),
            ..FeedLimits::default()
        },
        rejected_dir: push.rejected_dir.clone(),
    };
    let receiver = runtime
        .block_on(Receiver::bind(push, credentials, sink))
        .map_err(|e| DaemonError::Tracking(format!("push receiver: {e}")))?;
    tracing::info!(listen = %receiver.local_addr(), path = %push.path, "tracking: push receiver");
    Ok(Some(runtime.spawn(receiver.serve(stop))))
}

/// Waits for signals, reloads on SIGHUP, pings the watchdog; returns on SIGTERM or
/// SIGINT.
async fn supervise(
    options: &Options,
    running: &Resolved,
    printers: &PrinterTable,
    scheduler: &Arc<Scheduler>,
    incoming: mpsc::Sender<Incoming>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    let watchdog = sd_notify::watchdog_enabled();
    let ping_every = watchdog.map_or(Duration::from_secs(3600), |d| d / 2);
    let mut ticker = tokio::time::interval(ping_every);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); return; }
            _ = int.recv() => { tracing::info!("SIGINT"); return; }
            _ = hup.recv() => reload(options, running, printers, scheduler),
            _ = ticker.tick(), if watchdog.is_some() => {
                if alive(&incoming, ping_every).await && scheduler.healthy() {
                    notify(&[sd_notify::NotifyState::Watchdog]);
                } else {
                    tracing::warn!("health check failed; not pinging the watchdog");
                }
            }
        }
    }
}

/// A `health` request through the same queue clients use, answered in time.
async fn alive(incoming: &mpsc::Sender<Incoming>, within: Duration) -> bool {
    let (tx, rx) = oneshot::channel();
    let probe = Incoming {
        request: Request {
            id: None,
            op: Op::Health,
        },
        reply: tx,
    };
    if incoming.try_send(probe).is_err() {
        // Full: the office is busy, which is not the same as stuck; a stuck office
        // fails the next probe.
        return true;
    }
    matches!(tokio::time::timeout(within, rx).await, Ok(Ok(_)))
}

fn reload(options: &Options, running: &Resolved, printers: &PrinterTable, scheduler: &Scheduler) {
    notify(&[sd_notify::NotifyState::Reloading]);
    match load(options) {
        Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
        Ok(new) => {
            if let Err(e) = prepare_directories(&new) {
                tracing::error!(error = %e, "reload failed; keeping the running configuration");
            } else {
                if new.requests != running.requests
                    || new.events != running.events
                    || new.spool != running.spool
                    || new.limits != running.limits
                {
                    tracing::warn!(
                        "endpoints, spool or limits changed: they take effect after a restart"
                    );
                }
                if new.tracking != running.tracking {
                    tracing::warn!("[tracking] changed: it takes effect after a restart");
                }
                if new.serial_ranges != running.serial_ranges {
                    tracing::warn!("serial ranges changed: they take effect after a restart");
                }
                match printers.write() {
                    Ok(mut table) => *table = printer_table(&new),
                    Err(_) => tracing::error!("printer table lock poisoned"),
                }
                if let Err(e) = scheduler.reload(new.printers.clone()) {
                    tracing::error!(error = %e, "reload: printer workers not replaced");
                }
                tracing::info!(
                    printers = ?new.printers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                    "configuration reloaded"
                );
            }
        }
    }
    notify(&[sd_notify::NotifyState::Ready]);
}
