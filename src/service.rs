//! The office: where requests become spool transactions and scheduler calls.
//!
//! One thread owns the write side of the spool and answers every request the server
//! hands it ([`Incoming`]). It works in rounds: it takes every request waiting (up to
//! a bound), checks and plans the submits ([`crate::pieces::plan`], a layout of each
//! print unit so a label that does not fit is refused now, not at the printer), and
//! commits all of them in **one** spool transaction — one `fsync` for the round,
//! however many jobs it holds (group commit). Only then are their replies sent: an
//! `accepted` reply always means the job, its labels and their serials are on disk.
//! The other operations of the round run after that commit, in arrival order, so a
//! `status` or `cancel` right behind a `submit` sees the job.
//!
//! What a reply waits for is kept to that commit: the office's connection never runs
//! a WAL checkpoint (a thread of its own does, every 100 ms), and writers inside labeld
//! take turns on one lock per spool file instead of polling SQLite's busy handler (see
//! `spool`), so a commit queued behind a printer worker's starts the moment that one
//! ends. After a round that handled thousands of labels the office gives the memory
//! freed back to the system ([`release_free_memory`]).
//!
//! Faults inside labeld are answered with `internal` and logged with the detail; a
//! client never sees SQL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::config::PrinterSetup;
use crate::encode::imb::Tracking;
use crate::events::{Event, Events};
use crate::layout;
use crate::pieces::{self, Piece};
use crate::protocol::{
    ErrorCode, LogQuery, Op, ProtocolError, Reply, Request, Serials, Submit, SubmitBatch,
};
use crate::scheduler::Scheduler;
use crate::server::Incoming;
use crate::spool::{Accepted, NewImb, NewJob, NewLabel, Spool, SpoolError, Warning};

/// Most requests committed in one round.
const MAX_ROUND_REQUESTS: usize = 512;
/// Most labels committed in one round (a round of big batches stops early).
const MAX_ROUND_LABELS: usize = 50_000;
/// How often the office prunes the spool (and at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// A round that accepted or listed at least this many labels gives the memory it freed
/// back to the system afterwards ([`release_free_memory`]).
const TRIM_AFTER_LABELS: usize = 1000;
/// … and again this long after, when the server has sent the round's replies.
const TRIM_AGAIN_AFTER: Duration = Duration::from_millis(50);

/// The printers clients may name, shared with the daemon so SIGHUP can replace them.
pub type PrinterTable = Arc<RwLock<BTreeMap<String, PrinterSetup>>>;

/// What the office needs.
pub struct Office {
    /// The spool (write side).
    pub spool: Spool,
    /// Its file, for `health`.
    pub spool_path: PathBuf,
    /// Configured printers.
    pub printers: PrinterTable,
    /// The printer workers.
    pub scheduler: Arc<Scheduler>,
    /// The event stream.
    pub events: Events,
    /// Set when the daemon is stopping: submits are refused.
    pub stopping: Arc<AtomicBool>,
    /// True while the office works on a round: the daemon waits for it to clear
    /// before it closes the sockets, so every reply of a committed round goes out.
    pub in_round: Arc<AtomicBool>,
    /// Print log and finished jobs older than this are deleted.
    pub retention: Duration,
    /// This office prunes the spool (the writing one does; the reader does not).
    pub prunes: bool,
}

/// Operations that only read: the daemon answers them from a second office with its
/// own spool connection, so a large batch being checked and committed never holds up
/// `status`, `health`, `printers` or `log`. (They see committed state only: a `status`
/// sent before its `submit`'s reply arrived may answer `not_found`.)
pub fn reads_only(op: &Op) -> bool {
    matches!(op, Op::Status(_) | Op::Log(_) | Op::Health | Op::Printers)
}

impl std::fmt::Debug for Office {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Office")
            .field("spool", &self.spool_path)
            .finish_non_exhaustive()
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A submit that passed its checks, waiting for the round's commit.
struct Prepared {
    reply_to: Incoming,
    job: NewJob,
}

impl Office {
    /// Answers requests until `incoming` closes (the server stopped). Blocking: run it
    /// on its own thread.
    pub fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) {
        let started = Instant::now();
        // The writing office leaves WAL checkpoints to a thread of its own: a reply
        // never waits for the log to be copied into the database and synced.
        let checkpointer = self.prunes.then(|| Checkpointer::start(&self.spool_path));
        if let Some(Some(_)) = &checkpointer {
            if let Err(e) = self.spool.set_auto_checkpoint(false) {
                tracing::warn!(error = %e, "office: cannot leave checkpoints to their thread");
            }
        }
        let mut last_prune: Option<Instant> = None;
        // A small runtime of its own, only to wait for the next request with a timeout
        // (the office itself is blocking code).
        let waiter = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "office cannot start its timer; stopping");
                return;
            }
        };
        // Set after heavy work: trim once the replies have gone out (the server turns a
        // big answer into bytes after the office is done with it).
        let mut trim_at: Option<Instant> = None;
        loop {
            if trim_at.is_some_and(|t| Instant::now() >= t) {
                trim_at = None;
                release_free_memory();
            }
            if self.prunes && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.prune();
                last_prune = Some(Instant::now());
            }
            // Wait for the first request of a round; wake now and then to prune.
            let first = match incoming.try_recv() {
                Ok(first) => first,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let wait = trim_at.map_or(Duration::from_secs(1), |t| {
                        t.saturating_duration_since(Instant::now())
                    });
                    let next = waiter
                        .block_on(async { tokio::time::timeout(wait, incoming.recv()).await });
                    match next {
                        Ok(Some(first)) => first,
                        Ok(None) => break,
                        Err(_) => continue,
                    }
                }
            };
            // Set before any `stopping` check of the round (see `Office::in_round`).
            self.in_round.store(true, Ordering::SeqCst);
            let mut labels = label_estimate(&first.request);
            let mut round = vec![first];
            while round.len() < MAX_ROUND_REQUESTS && labels < MAX_ROUND_LABELS {
                match incoming.try_recv() {
                    Ok(next) => {
                        labels += label_estimate(&next.request);
                        round.push(next);
                    }
                    Err(_) => break,
                }
            }
            let heavy = self.round(round, started);
            self.in_round.store(false, Ordering::SeqCst);
            if heavy.max(labels) >= TRIM_AFTER_LABELS {
                // A big batch (or a big job's status) leaves tens of MiB free in malloc's
                // arenas; without this they stay counted in labeld's RSS.
                release_free_memory();
                trim_at = Some(Instant::now() + TRIM_AGAIN_AFTER);
            }
        }
        drop(checkpointer);
        tracing::info!("office stopped");
    }

    /// One round; returns how many labels its status answers listed (a big job's
    /// `status` allocates megabytes).
    fn round(&mut self, round: Vec<Incoming>, started: Instant) -> usize {
        let mut listed = 0;
        let mut submits = Vec::new();
        let mut others = Vec::new();
        for incoming in round {
            match &incoming.request.op {
                Op::Submit(_) | Op::SubmitBatch(_) => {
                    if self.stopping.load(Ordering::SeqCst) {
                        let id = incoming.request.id.clone();
                        answer(
                            incoming,
                            Reply::error(&ProtocolError::shutting_down().with_id(id)),
                        );
                        continue;
                    }
                    let prepared = catch_panic(|| self.prepare(&incoming.request));
                    match prepared {
                        Ok(job) => submits.push(Prepared {
                            reply_to: incoming,
                            job,
                        }),
                        Err(e) => {
                            let id = incoming.request.id.clone();
                            answer(incoming, Reply::error(&e.with_id(id)));
                        }
                    }
                }
                _ => others.push(incoming),
            }
        }
        if !submits.is_empty() {
            // SIGTERM may have come while the round was being prepared: commit
            // nothing the daemon might not be able to answer.
            if self.stopping.load(Ordering::SeqCst) {
                for p in submits {
                    let id = p.reply_to.request.id.clone();
                    answer(
                        p.reply_to,
                        Reply::error(&ProtocolError::shutting_down().with_id(id)),
                    );
                }
            } else {
                self.commit(submits);
            }
        }
        for incoming in others {
            let id = incoming.request.id.clone();
            let op = &incoming.request.op;
            let reply = match catch_panic(|| self.operate(op, started)) {
                Ok(data) => {
                    if let Some(Value::Array(labels)) = data.get("labels") {
                        listed += labels.len();
                    }
                    Reply::data(id, data)
                }
                Err(e) => Reply::error(&e.with_id(id)),
            };
            answer(incoming, reply);
        }
        listed
    }

    /// Checks a submit and turns it into a spool job (no database access).
    fn prepare(&self, request: &Request) -> Result<NewJob, ProtocolError> {
        let (printer, job_id, priority) = match &request.op {
            Op::Submit(Submit {
                printer,
                job_id,
                priority,
                ..
            })
            | Op::SubmitBatch(SubmitBatch {
                printer,
                job_id,
                priority,
                ..
            }) => (printer, job_id, *priority),
            other => {
                return Err(ProtocolError::new(
                    ErrorCode::Internal,
                    None,
                    format!("{} is not a submit", other.name()),
                ))
            }
        };
        if !self.known_printer(printer) {
            return Err(ProtocolError::unknown_printer(printer));
        }
        let pieces = pieces::plan(request)?;
        check_fit(request, &pieces)?;
        let labels = pieces
            .into_iter()
            .map(|p| NewLabel {
                imb: p.allocate.map(|a| NewImb {
                    barcode_id: a.barcode_id,
                    service_type: a.service_type,
                    mailer_id: a.mailer_id,
                }),
                tracking: p.tracking,
                routing: p.routing,
                recipient: p.recipient,
                unit: p.unit,
            })
            .collect();
        // The stored request has no client message id: a retry of the same submit
        // under a new message id is the same request.
        let stored = Request {
            id: None,
            op: request.op.clone(),
        };
        Ok(NewJob {
            id: job_id.clone(),
            printer: printer.clone(),
            labels,
            request_json: stored.to_json(),
            priority,
        })
    }

    fn known_printer(&self, name: &str) -> bool {
        self.printers
            .read()
            .map(|t| t.contains_key(name))
            .unwrap_or(false)
    }

    /// One transaction for every prepared submit of the round, then the replies.
    fn commit(&mut self, submits: Vec<Prepared>) {
        // The jobs move into the spool (a batch's labels and request are megabytes: no
        // copy); the replies only need each job's printer.
        let (waiting, jobs): (Vec<(Incoming, String)>, Vec<NewJob>) = submits
            .into_iter()
            .map(|p| ((p.reply_to, p.job.printer.clone()), p.job))
            .unzip();
        let results = self.spool.accept_jobs(jobs, now_ms());
        for ((reply_to, printer), result) in waiting.into_iter().zip(results) {
            let id = reply_to.request.id.clone();
            let reply = match result {
                Ok(accepted) => {
                    self.announce(&printer, &accepted);
                    Reply::accepted(id, accepted)
                }
                Err(e) => Reply::error(&self.spool_error(&e).with_id(id)),
            };
            answer(reply_to, reply);
        }
    }

    /// Events and a scheduler wake-up for a newly accepted job.
    fn announce(&self, printer: &str, accepted: &Accepted) {
        if accepted.replayed {
            return;
        }
        self.events.publish(Event::Accepted {
            job_id: accepted.job_id.clone(),
            printer: printer.to_owned(),
            labels: accepted.label_count,
        });
        for w in &accepted.warnings {
            let Warning::LowWater {
                mailer_id,
                left,
                threshold,
            } = w;
            self.events.publish(Event::SerialsLow {
                mailer_id: mailer_id.clone(),
                left: *left,
                threshold: *threshold,
            });
        }
        self.scheduler.wake(printer);
    }

    fn spool_error(&self, e: &SpoolError) -> ProtocolError {
        let p = ProtocolError::from_spool(e);
        if p.code == ErrorCode::Internal {
            tracing::error!(error = %e, "spool");
        }
        p
    }

    /// Every operation but the submits.
    fn operate(&mut self, op: &Op, started: Instant) -> Result<Map<String, Value>, ProtocolError> {
        let now = now_ms();
        match op {
            Op::Status(r) => {
                let status = self
                    .spool
                    .job_status_with(&r.job_id, r.labels)
                    .map_err(|e| self.spool_error(&e))?
                    .ok_or_else(|| not_found(&r.job_id))?;
                let mut reply = object(serde_json::to_value(status))?;
                if !r.labels {
                    reply.remove("labels");
                }
                Ok(reply)
            }
            Op::Cancel(r) => {
                let report = self
                    .spool
                    .cancel_job(&r.job_id, now)
                    .map_err(|e| self.spool_error(&e))?;
                self.scheduler.cancel(&r.job_id);
                self.events.publish(Event::Cancelled {
                    job_id: r.job_id.clone(),
                    labels: report.cancelled,
                });
                Ok(as_map(json!({
                    "job_id": r.job_id,
                    "cancelled": report.cancelled,
                    "in_flight": report.in_flight,
                    "state": report.state,
                    "progress": report.progress,
                })))
            }
            Op::Reprint(r) => {
                let accepted = self
                    .spool
                    .reprint(&r.job_id, r.serials, r.new_job_id.clone(), now)
                    .map_err(|e| self.spool_error(&e))?;
                let printer = self
                    .spool
                    .job_request(&accepted.job_id)
                    .map_err(|e| self.spool_error(&e))?
                    .map(|j| j.printer)
                    .unwrap_or_default();
                self.announce(&printer, &accepted);
                let mut data = object(serde_json::to_value(&accepted))?;
                data.insert("reprint_of".into(), r.job_id.clone().into());
                data.insert(
                    "serials_kind".into(),
                    match r.serials {
                        Serials::Same => "same",
                        Serials::New => "new",
                    }
                    .into(),
                );
                Ok(data)
            }
            Op::Printers => {
                let printers = self.scheduler.printers();
                Ok(as_map(json!({ "printers": printers })))
            }
            Op::Pause(p) | Op::Resume(p) => {
                if !self.known_printer(&p.printer) {
                    return Err(ProtocolError::unknown_printer(&p.printer));
                }
                let pause = matches!(op, Op::Pause(_));
                let done = if pause {
                    self.scheduler.pause(&p.printer)
                } else {
                    self.scheduler.resume(&p.printer)
                };
                done.map_err(|e| {
                    ProtocolError::new(ErrorCode::Conflict, Some("printer"), e.to_string())
                })?;
                Ok(as_map(json!({"printer": p.printer, "paused": pause})))
            }
            Op::Health => {
                let queued: u64 = self
                    .spool
                    .queue_depth()
                    .map_err(|e| self.spool_error(&e))?
                    .values()
                    .sum();
                Ok(as_map(json!({
                    "status": if self.scheduler.healthy() { "ok" } else { "degraded" },
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime_s": started.elapsed().as_secs(),
                    "printers": self.printers.read().map(|t| t.len()).unwrap_or(0),
                    "open_labels": queued,
                    "events_dropped": self.events.dropped(),
                    "spool": self.spool_path.display().to_string(),
                })))
            }
            Op::Log(LogQuery {
                since_ms,
                until_ms,
                limit,
            }) => {
                let rows = self
                    .spool
                    .print_log(*since_ms, *until_ms, *limit)
                    .map_err(|e| self.spool_error(&e))?;
                let more = rows.len() == *limit;
                let next = rows.last().map(|r| r.printed_at_ms);
                let mut data = as_map(json!({ "rows": rows }));
                if more {
                    // Rows share a millisecond rarely; the client skips ones it has.
                    data.insert("next_since_ms".into(), next.unwrap_or(*since_ms).into());
                }
                Ok(data)
            }
            Op::Submit(_) | Op::SubmitBatch(_) => Err(ProtocolError::new(
                ErrorCode::Internal,
                None,
                "submit reached the wrong handler",
            )),
            #[allow(unreachable_patterns)]
            other => Err(ProtocolError::new(
                ErrorCode::UnknownOp,
                Some("op"),
                format!("op {} is not served by this labeld", other.name()),
            )),
        }
    }

    fn prune(&mut self) {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX));
        match self.spool.prune(cutoff) {
            Ok(report) => tracing::info!(?report, "spool pruned"),
            Err(e) => tracing::error!(error = %e, "spool prune failed"),
        }
    }
}

/// How often the checkpointer copies the spool's WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// A WAL this long (frames of one page, 4 KiB) that the checkpointer could not copy
/// completely is copied with the writers held ([`Spool::checkpoint_whole`]).
const RESTART_LOG_FRAMES: u64 = 4096;

/// A thread with its own spool connection that runs passive WAL checkpoints
/// ([`Spool::checkpoint`]) every [`CHECKPOINT_EVERY`], so the office's commits (which
/// every `accepted` reply waits for) never run one. Without it, the commit that takes
/// the log past 1,000 pages copies them into the database file and syncs it before the
/// replies of its round can go. Stops when dropped.
struct Checkpointer {
    stop: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// `None` (and the office checkpoints as SQLite does by default) when its
    /// connection or thread cannot start.
    fn start(spool_path: &std::path::Path) -> Option<Checkpointer> {
        let spool = match Spool::open(spool_path) {
            Ok(spool) => spool,
            Err(e) => {
                tracing::warn!(error = %e, "office: no checkpoint connection; commits checkpoint");
                return None;
            }
        };
        let stop = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                let (lock, signal) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut failing = false;
                while !*stopped {
                    stopped = signal
                        .wait_timeout(stopped, CHECKPOINT_EVERY)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    let copied = spool.checkpoint().and_then(|(log, done)| {
                        if done < log && log >= RESTART_LOG_FRAMES {
                            // Commits kept coming while it copied: once the log is
                            // this long, copy it all with the writers held back for
                            // that moment, so the log can start over.
                            spool.checkpoint_whole()
                        } else {
                            Ok((log, done))
                        }
                    });
                    match copied {
                        Ok(_) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "spool checkpoint failed; retrying");
                        }
                        Err(_) => {}
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Checkpointer {
                stop,
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "office: no checkpoint thread; commits checkpoint");
                None
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, signal) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        signal.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `f`; a panic (a labeld bug on some input) becomes an `internal` error for
/// that request instead of ending the office.
fn catch_panic<T>(f: impl FnOnce() -> Result<T, ProtocolError>) -> Result<T, ProtocolError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %what, "office: a request made labeld panic; answered internal");
        Err(ProtocolError::new(
            ErrorCode::Internal,
            None,
            "internal error in labeld (the daemon log has the details)",
        ))
    })
}

/// Gives the heap memory malloc holds free back to the system (glibc's `malloc_trim`:
/// freed pages inside its arenas are returned, not only the top of the heap). labeld
/// calls it after work that allocated megabytes (a big batch accepted or printed, a big
/// job's status), so its resident size follows what it holds rather than its peak.
/// Elsewhere than Linux with glibc it does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain size and only works on malloc's own free
    // lists; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sends a reply; a client that went away is not an error.
fn answer(incoming: Incoming, reply: Reply) {
    let _ = incoming.reply.send(reply);
}

fn label_estimate(request: &Request) -> usize {
    match &request.op {
        Op::SubmitBatch(b) => b.jobs().len(),
        _ => 1,
    }
}

fn not_found(job_id: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotFound,
        Some("job_id"),
        format!("no job {job_id:?} (it may have been pruned after the retention period)"),
    )
}

fn object(v: Result<Value, serde_json::Error>) -> Result<Map<String, Value>, ProtocolError> {
    match v {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ProtocolError::new(
            ErrorCode::Internal,
            None,
            "cannot serialize the answer",
        )),
    }
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Lays out every print unit with a stand-in serial, so that a label that does not
/// fit (or data that cannot be encoded) is refused at submit.
fn check_fit(request: &Request, pieces: &[Piece]) -> Result<(), ProtocolError> {
    let zero = |p: &Piece| {
        p.allocate.as_ref().and_then(|a| {
            let width = if a.mailer_id.starts_with('9') { 6 } else { 9 };
            Tracking::from_fields(
                &a.barcode_id,
                &a.service_type,
                &a.mailer_id,
                &"0".repeat(width),
            )
            .ok()
            .map(|t| t.as_str().to_owned())
        })
    };
    let stand_ins: Vec<(u32, Option<String>)> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32, zero(p)))
        .collect();
    let mut unit_start = 0usize;
    while unit_start < pieces.len() {
        let unit = pieces[unit_start].unit;
        let unit_end = pieces[unit_start..]
            .iter()
            .position(|p| p.unit != unit)
            .map_or(pieces.len(), |n| unit_start + n);
        let assigned: Vec<(u32, Option<&str>)> = stand_ins[unit_start..unit_end]
            .iter()
            .map(|(i, t)| (*i, t.as_deref()))
            .collect();
        let job = pieces::unit_job(request, unit, &assigned)?;
        let at = match &request.op {
            Op::SubmitBatch(_) => format!("records[{unit}]"),
            _ => "job".to_owned(),
        };
        layout::layout(&job).map_err(|e| ProtocolError::from_layout(&e).under(&at))?;
        unit_start = unit_end;
    }
    Ok(())
}
