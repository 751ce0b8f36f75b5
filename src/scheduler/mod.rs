//! The scheduler: one worker thread per printer, printing what the spool queues for it.
//!
//! [`Scheduler::start`] runs a worker per configured printer, each on its own OS thread
//! with its own [`Spool`] handle (SQLite connection) and its own link to the printer
//! (drivers and transports are blocking). A worker loops:
//!
//! 1. stop if told to; wait while the printer is paused (operator pause, kept in the
//!    spool so it survives restarts) or while it recovers from a fault;
//! 2. take the next labels from the spool ([`Spool::next_labels`]: priority, then
//!    arrival, one print unit, or for a file printer up to
//!    [`SchedulerOptions::file_batch`] labels of one job);
//! 3. build each unit's job from the stored request and the serials the spool assigned
//!    ([`crate::pieces::unit_job`]), lay it out, render it for the printer's profile and
//!    encode it with the printer's driver ([`crate::output::render_labels`]: every drawn
//!    IMb is read back and checked before any byte is produced);
//! 4. mark the labels sent with the printer's label counter read just before
//!    ([`Spool::mark_sent_many`]), write the bytes, confirm them when the printer
//!    answers status queries and `confirm` is set, and mark them printed
//!    ([`Spool::mark_printed_many`]), publishing `rendering`, `sent`, `printed`,
//!    `progress` and `done` events on the way.
//!
//! # Delivery: at least once, and how close to exactly once
//!
//! A label is marked `sent` before its first byte goes out and `printed` after the
//! printer took it, so a crash or a fault in between leaves it `sent`: possibly
//! printed. Such a label is never simply dropped; what happens to it:
//!
//! - **During a fault** (the write fails, the connection drops, the confirmation query
//!   gets no reply) the unit is *held*: the worker keeps its bytes, polls the printer
//!   with backoff and, once the printer reports ready, decides. With a label counter
//!   (ZPL SGD `odometer.total_label_count`) it waits for the printer to finish what it
//!   has buffered (`~HS`), reads the counter, and marks the unit printed if the counter
//!   moved past the value stored with it; otherwise it sends the unit again. Without a
//!   counter, a unit the printer acknowledged (its status reply arrived, reporting e.g.
//!   paper out) is counted as printed once the printer is ready (it prints from its
//!   buffer), and any other unit is sent again. Held units are settled before any new
//!   work, so a stored counter value is never overtaken by other labels.
//! - **After a crash** (labels left `sent` by a labeld that died), each worker first
//!   settles its printer's `sent` labels the same way: counter moved past the stored
//!   value → printed, `in_flight` event with `reprinted: false`; otherwise (or without a
//!   counter) printed again at once, `in_flight` with `reprinted: true` and the reason.
//!   A device printer has at most one unit in flight, so a crash costs at most one
//!   duplicate, and only where the printer cannot prove the label printed. A file
//!   printer writes a batch per transaction: a crash can duplicate up to one batch of
//!   files, each reported `in_flight`.
//!
//! A `sent` label of a cancelled job is not printed again (held at a fault or left by a
//! crash): it is marked failed ("cancelled while in flight") unless the counter shows
//! it printed (or, at a fault, the printer had acknowledged it).
//!
//! The stored counter value is `max(counter now, counter expected once everything sent
//! before has printed)`, so labels still in the printer's buffer when the next one is
//! sent cannot make an unsent label look printed after a crash.
//!
//! # Faults and the give-up policy
//!
//! A printer being away is never a reason to fail a label. Retriable transport errors
//! (not found, disconnected, timeout, refused, I/O) and status replies with a condition
//! (paper out, head open, ribbon out, paused at the panel, …) publish the printer's
//! state once per change, hold the queue, and retry: reopening with
//! [`SchedulerOptions::backoff_first`] doubling to [`SchedulerOptions::backoff_max`]
//! while the printer cannot be reached, polling its status every
//! [`SchedulerOptions::status_poll`] while it answers but is not ready. When it
//! reports ready again (or, without a status query, accepts a connection) the worker
//! publishes `ready` and goes on where it stopped. Permission errors are held the same
//! way (state `fault`): fixing the udev rule or group resumes printing. With `confirm`
//! set, a printer that accepts a connection but does not answer its status query is
//! offline (switch `confirm` off for a printer that cannot answer); without it, status
//! is best effort and silence counts as ready.
//!
//! Labels fail (with the reason, in the spool and a `failed` event) only when:
//!
//! - the unit cannot be laid out, rendered, verified (an IMb that does not read back
//!   inside the USPS tolerances) or encoded for this printer: retrying cannot help;
//! - the link refuses the bytes themselves (`TransportErrorKind::Config`, such as
//!   binary data on an XON/XOFF serial line): retrying cannot help either;
//! - the same unit broke the connection [`SchedulerOptions::max_unit_faults`] times in a
//!   row, each time right after the printer had accepted a new connection: a "poison"
//!   label that takes the printer down would otherwise block the queue forever (0 turns
//!   this off).
//!
//! Failed labels can be printed again with `reprint`.
//!
//! # File printers
//!
//! A `file:` address naming a directory (ending in `/`; created when missing) gets one
//! file per unit, `job-NNNNNN.<ext>` (`png`, `zpl`, `pdf`, …) numbered in print order: a
//! batch's files are created and written in order, then `fsync`ed from several threads
//! at once so the file system commits them together, the directory `fsync`ed once for
//! the batch, and only then marked printed. A file printer's units are rendered by
//! render threads of its own ([`SchedulerOptions::render_threads`], at a lower CPU
//! priority, [`SchedulerOptions::render_nice`]); while one batch is marked sent,
//! written, synced and marked printed, the threads already render the next one
//! ([`Spool::next_labels_after`]). The spool decides what prints: a batch rendered
//! ahead is used only if the spool then hands out exactly those labels, else it is
//! dropped and rendered again. Any other `file:` address is one file, appended to (the file
//! transport truncates it when the worker first opens it) and synced after every batch.
//! Files never answer, so their labels are `printed` with `confirmed: false`.
//!
//! # Control
//!
//! [`Scheduler::pause`] and [`Scheduler::resume`] persist in the spool and take effect
//! after the unit being sent; [`Scheduler::reload`] replaces changed workers after
//! their current unit; [`Scheduler::shutdown`] lets every worker finish the unit being
//! sent and leaves the rest queued. [`Scheduler::healthy`] is true while every worker
//! thread runs and beats (idle waits wake at least twice a second; a worker blocked in a
//! device operation counts as alive until that operation's deadline).

mod device;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::PrinterSetup;
use crate::events::{Events, PrinterState};
use crate::spool::{Spool, SpoolError, SpoolOptions};

/// How workers pace themselves; [`Default`] suits real printers.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// First wait before reconnecting to a printer that cannot be reached.
    pub backoff_first: Duration,
    /// Longest wait between reconnect attempts (the wait doubles up to this).
    pub backoff_max: Duration,
    /// How often a printer that answers but is not ready (paper out, head open) is asked
    /// again.
    pub status_poll: Duration,
    /// How long to wait for a status reply, a confirmation or the label counter.
    pub status_timeout: Duration,
    /// Deadline for writing one unit, before the size allowance below.
    pub write_timeout: Duration,
    /// The slowest rate in bytes per second a link is expected to sustain: a unit's
    /// write deadline grows by its size at this rate (0 adds nothing).
    pub min_rate: u32,
    /// Most labels a file printer takes per spool transaction (whole units; one job at a
    /// time). Device printers always take one unit.
    pub file_batch: usize,
    /// Fail a unit after it broke the connection this many times in a row right after a
    /// successful reconnect (0: never).
    pub max_unit_faults: u32,
    /// How long a printer may take to finish the labels it holds before its counter is
    /// read after a fault or restart.
    pub settle: Duration,
    /// Close an idle link after this long (a network printer is then free for other
    /// hosts).
    pub idle_close: Duration,
    /// A worker whose last heartbeat is older than this (and that is not inside a
    /// device operation) makes [`Scheduler::healthy`] false.
    pub stall_after: Duration,
    /// Parsed requests kept per worker (a 10,000-record batch is parsed once).
    pub request_cache: usize,
    /// Threads that render a file printer's batches (0: one per core, at most 4). They
    /// render the next batch while the worker writes the one before.
    pub render_threads: usize,
    /// The render threads' nice value (Linux; 0 leaves it): rendering ahead is
    /// background work, and the office's checks and replies should not queue behind
    /// it for the CPU.
    pub render_nice: i32,
}

impl Default for SchedulerOptions {
    /// Reconnect 200 ms doubling to 30 s, status every 2 s with a 3 s timeout, 30 s per
    /// unit plus 1 s per 512 bytes, 64-label file batches, poison after 8 faults, 5 s to
    /// settle, links closed after 10 s idle, stalled after 10 s without a heartbeat,
    /// file batches rendered on every core (up to 4) at nice 10.
    fn default() -> Self {
        SchedulerOptions {
            backoff_first: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            status_poll: Duration::from_secs(2),
            status_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(30),
            min_rate: 512,
            file_batch: 64,
            max_unit_faults: 8,
            settle: Duration::from_secs(5),
            idle_close: Duration::from_secs(10),
            stall_after: Duration::from_secs(10),
            request_cache: 4,
            render_threads: 0,
            render_nice: 10,
        }
    }
}

/// A scheduler error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// No printer of that name is configured.
    #[error("printer {0:?} is not configured (labelctl printers lists them)")]
    UnknownPrinter(String),
    /// Two printers share a name.
    #[error("printer {0:?} is configured twice; printer names must be unique")]
    DuplicatePrinter(String),
    /// The spool could not be opened or written.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The printer's link cannot be set up (an address the transports refuse).
    #[error("printer {printer}: {message}")]
    Device {
        /// The printer.
        printer: String,
        /// What the transport said.
        message: String,
    },
    /// [`Scheduler::shutdown`] was called.
    #[error("the scheduler is shut down")]
    ShutDown,
    /// A worker thread could not be started.
    #[error("printer {printer}: cannot start its worker thread: {source}")]
    Thread {
        /// The printer.
        printer: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A printer as `printers` reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrinterSnapshot {
    /// The name clients use.
    pub name: String,
    /// The model id.
    pub model: String,
    /// Its language (`zpl`, `png`, …).
    pub language: String,
    /// Resolution, dots per inch.
    pub dpi: f64,
    /// Its address.
    pub uri: String,
    /// Its condition.
    pub state: PrinterState,
    /// What the printer or the link said last.
    pub detail: String,
    /// Paused by an operator.
    pub paused: bool,
    /// Labels queued or in flight for it.
    pub queued: u64,
    /// Labels printed since labeld started.
    pub printed: u64,
    /// The last fault, if any since start.
    pub last_error: Option<String>,
    /// Whether each label is confirmed with a status query.
    pub confirm: bool,
    /// The printer's lifetime label counter, when it has one and it was read.
    pub odometer: Option<u64>,
}

/// What [`Scheduler::reload`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Printers whose worker keeps running.
    pub kept: Vec<String>,
    /// New printers.
    pub started: Vec<String>,
    /// Printers whose settings changed: the old worker stops after its unit, the new one
    /// takes over.
    pub replaced: Vec<String>,
    /// Printers no longer configured (their queued jobs stay in the spool).
    pub stopped: Vec<String>,
}

/// The running workers (see the module docs).
pub struct Scheduler {
    spool_path: PathBuf,
    spool_options: SpoolOptions,
    events: Events,
    options: SchedulerOptions,
    /// The scheduler's own spool handle: pause state and queue depths.
    control: Mutex<Spool>,
    /// Workers in configuration order.
    workers: Mutex<Vec<WorkerHandle>>,
    /// Threads of removed or replaced workers, still finishing their unit.
    retired: Mutex<Vec<(String, JoinHandle<()>)>>,
    /// [`Scheduler::shutdown`] was called.
    closed: AtomicBool,
}

impl Drop for Scheduler {
    /// Tells every worker to stop after its unit (without waiting): a scheduler dropped
    /// without [`Scheduler::shutdown`] leaves no thread printing.
    fn drop(&mut self) {
        for w in lock(&self.workers).iter() {
            w.shared.stop();
        }
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("spool", &self.spool_path)
            .field("printers", &self.printer_names())
            .finish_non_exhaustive()
    }
}

/// One worker as the scheduler sees it.
struct WorkerHandle {
    setup: PrinterSetup,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts a worker per printer. Each opens its own handle on the spool at
    /// `spool_path`; pause state comes from the spool.
    ///
    /// # Errors
    ///
    /// A duplicate printer name, a spool that cannot be opened, an address no
    /// transport takes, or a thread that cannot start.
    pub fn start(
        printers: Vec<PrinterSetup>,
        spool_path: &Path,
        spool_options: SpoolOptions,
        events: Events,
        options: SchedulerOptions,
    ) -> Result<Scheduler, SchedulerError> {
        let mut names = std::collections::BTreeSet::new();
        for p in &printers {
            if !names.insert(p.name.as_str()) {
                return Err(SchedulerError::DuplicatePrinter(p.name.clone()));
            }
        }
        let control = Spool::open_with(spool_path, &spool_options)?;
        let scheduler = Scheduler {
            spool_path: spool_path.to_owned(),
            spool_options,
            events,
            options,
            control: Mutex::new(control),
            workers: Mutex::new(Vec::new()),
            retired: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        };
        let paused = lock(&scheduler.control).paused_printers()?;
        let mut started = Vec::with_capacity(printers.len());
        for setup in printers {
            let reason = paused.get(&setup.name);
            match scheduler.spawn(setup, reason, None) {
                Ok(handle) => started.push(handle),
                Err(e) => {
                    for mut h in started {
                        h.shared.stop();
                        if let Some(t) = h.thread.take() {
                            let _ = t.join();
                        }
                    }
                    return Err(e);
                }
            }
        }
        *lock(&scheduler.workers) = started;
        Ok(scheduler)
    }

    /// Starts one worker. `paused` is the stored pause (with its reason); `predecessor`
    /// is the thread of the worker it replaces, which it waits for.
    fn spawn(
        &self,
        setup: PrinterSetup,
        paused: Option<&Option<String>>,
        predecessor: Option<JoinHandle<()>>,
    ) -> Result<WorkerHandle, SchedulerError> {
        let spool = Spool::open_with(&self.spool_path, &self.spool_options)?;
        let shared = Arc::new(Shared::new(&setup, paused.cloned()));
        let worker = worker::Parts::new(
            setup.clone(),
            shared.clone(),
            spool,
            self.events.clone(),
            self.options.clone(),
        )
        .map_err(|e| SchedulerError::Device {
            printer: setup.name.clone(),
            message: e.to_string(),
        })?;
        let thread = std::thread::Builder::new()
            .name(format!("printer-{}", setup.name))
            .spawn(move || worker.run(predecessor))
            .map_err(|source| SchedulerError::Thread {
                printer: setup.name.clone(),
                source,
            })?;
        Ok(WorkerHandle {
            setup,
            shared,
            thread: Some(thread),
        })
    }

    /// The configured printer names, in configuration order.
    pub fn printer_names(&self) -> Vec<String> {
        lock(&self.workers)
            .iter()
            .map(|w| w.setup.name.clone())
            .collect()
    }

    /// Whether `printer` is configured.
    pub fn has_printer(&self, printer: &str) -> bool {
        lock(&self.workers).iter().any(|w| w.setup.name == printer)
    }

    /// Tells `printer`'s worker there is new work (a job was accepted). Unknown names
    /// are ignored: the job waits in the spool until such a printer is configured.
    pub fn wake(&self, printer: &str) {
        if let Some(w) = lock(&self.workers).iter().find(|w| w.setup.name == printer) {
            w.shared.wake();
        }
    }

    /// Forgets what the workers cached about `job_id` after the spool cancelled it.
    /// Labels already sent finish (and are confirmed); queued ones were cancelled by
    /// the spool and are not taken again.
    pub fn cancel(&self, job_id: &str) {
        for w in lock(&self.workers).iter() {
            w.shared.cancelled(job_id);
        }
    }

    /// Pauses `printer`: stored in the spool (it stays paused across restarts); the
    /// worker stops after the unit it is sending and publishes `paused`.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownPrinter`], or the spool's error.
    pub fn pause(&self, printer: &str) -> Result<(), SchedulerError> {
        self.set_paused(printer, true)
    }

    /// Resumes `printer` (stored in the spool).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownPrinter`], or the spool's error.
    pub fn resume(&self, printer: &str) -> Result<(), SchedulerError> {
        self.set_paused(printer, false)
    }

    fn set_paused(&self, printer: &str, paused: bool) -> Result<(), SchedulerError> {
        let shared = lock(&self.workers)
            .iter()
            .find(|w| w.setup.name == printer)
            .map(|w| w.shared.clone())
            .ok_or_else(|| SchedulerError::UnknownPrinter(printer.to_owned()))?;
        let reason = paused.then_some("paused by operator");
        lock(&self.control).set_paused(printer, paused, reason, now_ms())?;
        shared.set_paused(paused);
        Ok(())
    }

    /// Every configured printer's live state, in configuration order.
    pub fn printers(&self) -> Vec<PrinterSnapshot> {
        let depth = match lock(&self.control).queue_depth() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read queue depths");
                BTreeMap::new()
            }
        };
        lock(&self.workers)
            .iter()
            .map(|w| {
                let view = w.shared.view();
                let profile = &w.setup.profile;
                PrinterSnapshot {
                    name: w.setup.name.clone(),
                    model: profile.model.clone(),
                    language: profile.language.name().to_owned(),
                    dpi: profile.resolution.x,
                    uri: w.setup.uri.to_string(),
                    state: if view.paused {
                        PrinterState::Paused
                    } else {
                        view.state
                    },
                    detail: view.detail,
                    paused: view.paused,
                    queued: depth.get(&w.setup.name).copied().unwrap_or(0),
                    printed: view.printed,
                    last_error: view.last_error,
                    confirm: view.confirm,
                    odometer: view.odometer,
                }
            })
            .collect()
    }

    /// Applies a new printer list (SIGHUP): unchanged printers keep their worker; changed
    /// ones are replaced after their current unit (the new worker waits for the old one
    /// to stop, so no label is taken twice); new ones start; removed ones stop after
    /// their current unit. Queued jobs stay in the spool either way.
    ///
    /// # Errors
    ///
    /// A duplicate name, or a new worker that cannot start (the printers before it in
    /// the list are applied; the failing one and those after it are left as they were).
    pub fn reload(&self, printers: Vec<PrinterSetup>) -> Result<ReloadReport, SchedulerError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SchedulerError::ShutDown);
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &printers {
            if !names.insert(p.name.as_str()) {
                return Err(SchedulerError::DuplicatePrinter(p.name.clone()));
            }
        }
        let paused = lock(&self.control).paused_printers()?;
        let mut workers = lock(&self.workers);
        let mut report = ReloadReport::default();
        let mut old: Vec<WorkerHandle> = std::mem::take(&mut *workers);
        let mut next = Vec::with_capacity(printers.len());
        let mut result = Ok(());
        for setup in printers {
            let position = old.iter().position(|w| w.setup.name == setup.name);
            let current = position.map(|i| old.remove(i));
            match current {
                Some(w)
                    if w.setup == setup && w.thread.as_ref().is_some_and(|t| !t.is_finished()) =>
                {
                    report.kept.push(setup.name.clone());
                    next.push(w);
                }
                current => {
                    if result.is_err() {
                        next.extend(current);
                        continue;
                    }
                    let name = setup.name.clone();
                    let (predecessor, replaced) = match current {
                        Some(mut w) => {
                            w.shared.stop();
                            (w.thread.take(), Some(w))
                        }
                        // A printer removed by an earlier reload and added back: its old
                        // worker may still be finishing a unit; the new one waits for it.
                        None => {
                            let mut retired = lock(&self.retired);
                            let found = retired.iter().position(|(n, _)| *n == name);
                            (found.map(|i| retired.remove(i).1), None)
                        }
                    };
                    match self.spawn(setup, paused.get(&name), predecessor) {
                        Ok(handle) => {
                            if replaced.is_some() {
                                report.replaced.push(name);
                            } else {
                                report.started.push(name);
                            }
                            next.push(handle);
                        }
                        Err(e) => {
                            // The old worker was told to stop; its thread is retired.
                            tracing::warn!(printer = %name, error = %e, "cannot start the new worker");
                            result = Err(e);
                        }
                    }
                }
            }
        }
        let mut retired = lock(&self.retired);
        for mut w in old {
            w.shared.stop();
            report.stopped.push(w.setup.name.clone());
            retired.extend(w.thread.take().map(|t| (w.setup.name.clone(), t)));
        }
        retired.retain(|(_, t)| !t.is_finished());
        *workers = next;
        drop(workers);
        tracing::info!(
            kept = report.kept.len(),
            started = ?report.started,
            replaced = ?report.replaced,
            stopped = ?report.stopped,
            "printers reloaded"
        );
        result.map(|()| report)
    }

    /// Whether every worker thread is running and has beaten within
    /// [`SchedulerOptions::stall_after`] (or is inside a device operation that has not
    /// passed its deadline). `false` after [`Scheduler::shutdown`].
    pub fn healthy(&self) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let workers = lock(&self.workers);
        workers.iter().all(|w| {
            let running = w.thread.as_ref().is_some_and(|t| !t.is_finished());
            running && w.shared.heart.alive(self.options.stall_after)
        })
    }

    /// Stops every worker after the unit it is sending (SIGTERM); the rest stays queued.
    /// Waits up to `grace` for the threads; returns `true` when all of them stopped in
    /// time (a worker still blocked in a device write is left to the process exit).
    /// Takes `&self` so a scheduler shared behind an `Arc` can be stopped; afterwards
    /// [`Scheduler::reload`] refuses and the other calls find no printers.
    pub fn shutdown(&self, grace: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        let mut threads = Vec::new();
        for mut w in std::mem::take(&mut *lock(&self.workers)) {
            w.shared.stop();
            threads.extend(w.thread.take().map(|t| (w.setup.name.clone(), t)));
        }
        threads.extend(
            std::mem::take(&mut *lock(&self.retired))
                .into_iter()
                .map(|(name, t)| (format!("{name} (retired)"), t)),
        );
        let mut all = true;
        for (name, thread) in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!(printer = %name, "worker still busy at the end of the shutdown grace period");
                all = false;
            }
        }
        all
    }
}

// ---------------------------------------------------------------------------------------
// What the scheduler and a worker share
// ---------------------------------------------------------------------------------------

/// Liveness: the last heartbeat, and the deadline of a device operation in progress.
pub(crate) struct Heart {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last beat.
    beat_ms: AtomicU64,
    /// Milliseconds since `epoch` until which the worker is inside a device call (0:
    /// not).
    busy_until_ms: AtomicU64,
}

impl Heart {
    fn new() -> Heart {
        Heart {
            epoch: Instant::now(),
            beat_ms: AtomicU64::new(0),
            busy_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The worker is alive now.
    pub(crate) fn beat(&self) {
        self.beat_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The worker enters a device call that may block until `deadline`.
    pub(crate) fn busy_until(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(self.epoch).as_millis();
        self.busy_until_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The same, for `timeout` from now (with a second to spare).
    pub(crate) fn busy_for(&self, timeout: Duration) {
        self.busy_until(Instant::now() + timeout + Duration::from_secs(1));
    }

    /// The device call returned.
    pub(crate) fn idle(&self) {
        self.busy_until_ms.store(0, Ordering::Relaxed);
        self.beat();
    }

    fn alive(&self, stall_after: Duration) -> bool {
        let now = self.now_ms();
        let beat = self.beat_ms.load(Ordering::Relaxed);
        let stall = u64::try_from(stall_after.as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(beat) <= stall || now < self.busy_until_ms.load(Ordering::Relaxed)
    }
}

/// Requests from the scheduler to a worker.
#[derive(Debug, Default)]
struct Control {
    /// New work may be queued.
    work: bool,
    /// The operator's pause (with its reason).
    paused: Option<String>,
    /// Stop after the current unit.
    stop: bool,
    /// Jobs cancelled since the worker last looked.
    cancelled: Vec<String>,
}

/// What a worker takes from [`Control`] at a safe point.
#[derive(Debug)]
pub(crate) struct Orders {
    pub(crate) stop: bool,
    pub(crate) paused: Option<String>,
    pub(crate) cancelled: Vec<String>,
}

/// A worker's state as `printers` shows it.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) state: PrinterState,
    pub(crate) detail: String,
    pub(crate) paused: bool,
    pub(crate) printed: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) confirm: bool,
    pub(crate) odometer: Option<u64>,
}

/// Shared between the scheduler and one worker.
pub(crate) struct Shared {
    control: Mutex<Control>,
    signal: Condvar,
    view: Mutex<View>,
    pub(crate) heart: Arc<Heart>,
}

impl Shared {
    fn new(setup: &PrinterSetup, paused: Option<Option<String>>) -> Shared {
        let heart = Heart::new();
        heart.beat();
        Shared {
            control: Mutex::new(Control {
                work: true,
                paused: paused.map(|r| r.unwrap_or_else(|| "paused by operator".to_owned())),
                stop: false,
                cancelled: Vec::new(),
            }),
            signal: Condvar::new(),
            view: Mutex::new(View {
                state: PrinterState::Unknown,
                detail: String::new(),
                paused: false,
                printed: 0,
                last_error: None,
                confirm: setup.confirm,
                odometer: None,
            }),
            heart: Arc::new(heart),
        }
    }

    fn change(&self, f: impl FnOnce(&mut Control)) {
        f(&mut lock(&self.control));
        self.signal.notify_all();
    }

    fn wake(&self) {
        self.change(|c| c.work = true);
    }

    fn stop(&self) {
        self.change(|c| c.stop = true);
    }

    fn set_paused(&self, paused: bool) {
        self.change(|c| c.paused = paused.then(|| "paused by operator".to_owned()));
    }

    fn cancelled(&self, job_id: &str) {
        self.change(|c| {
            if c.cancelled.len() < 4096 {
                c.cancelled.push(job_id.to_owned());
            }
        });
    }

    fn view(&self) -> View {
        lock(&self.view).clone()
    }

    /// Updates the view.
    pub(crate) fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.view));
    }

    /// Takes the orders at a safe point.
    pub(crate) fn orders(&self) -> Orders {
        self.heart.beat();
        let mut c = lock(&self.control);
        Orders {
            stop: c.stop,
            paused: c.paused.clone(),
            cancelled: std::mem::take(&mut c.cancelled),
        }
    }

    /// Waits up to `timeout` for a stop, a pause change, cancelled jobs or (when
    /// `for_work`) new work, beating at least twice a second. Consumes the work flag.
    /// Returns `true` when a stop or a pause change cut the wait short.
    pub(crate) fn wait(&self, timeout: Duration, for_work: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut c = lock(&self.control);
        let paused_at_start = c.paused.is_some();
        loop {
            self.heart.beat();
            if c.stop
                || c.paused.is_some() != paused_at_start
                || !c.cancelled.is_empty()
                || (for_work && c.work)
            {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            c = self
                .signal
                .wait_timeout(c, left.min(Duration::from_millis(500)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if for_work {
            c.work = false;
        }
        let interrupted = c.stop || c.paused.is_some() != paused_at_start;
        drop(c);
        self.heart.beat();
        interrupted
    }

    /// Consumes the work flag (before looking at the spool, so a wake that comes while
    /// the worker is reading is not lost).
    pub(crate) fn take_work(&self) {
        lock(&self.control).work = false;
    }
}

/// Locks a mutex, recovering it from a panicked holder (the data are plain state).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
