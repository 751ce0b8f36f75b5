//! One printer's worker: the loop of the module docs, on its own thread.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use labeld_drivers::transport::send::{Backoff, RetryPolicy};
use labeld_drivers::transport::{TransportError, TransportErrorKind};
use labeld_drivers::{lang, Condition, DeviceStatus, Driver, Profile};

use super::device::{self, Device, Kind, Reply};
use super::{now_ms, SchedulerOptions, Shared};
use crate::config::PrinterSetup;
use crate::events::{Event, Events, PrinterState};
use crate::protocol::{self, Limits, Request};
use crate::render::label::RenderOptions;
use crate::spool::{JobProgress, JobState, LabelState, QueuedLabel, Spool, SpoolError};
use crate::{layout, output, pieces};

/// A print unit on its way to the printer.
#[derive(Debug)]
struct Unit {
    job_id: String,
    /// The unit number within the job.
    unit: u32,
    /// Its labels: index and the tracking code the spool assigned.
    pieces: Vec<(u32, Option<String>)>,
    /// The printer-language bytes, once rendered.
    bytes: Option<Vec<u8>>,
    /// Labels the printer's counter counts for it (pages × copies).
    pages: u64,
    /// Marked sent in the spool (by this worker or a previous run).
    sent: bool,
    /// The counter value stored when it was marked sent.
    odometer: Option<u64>,
    /// The printer acknowledged it (its status reply came after the bytes).
    received: bool,
    /// Connection faults in a row while writing or confirming it.
    faults: u32,
}

impl Unit {
    fn indices(&self) -> Vec<u32> {
        self.pieces.iter().map(|(i, _)| *i).collect()
    }
}

/// Whether a unit has its bytes.
enum Rendered {
    Yes,
    /// It cannot print: its labels were failed.
    Failed,
    /// The spool could not be read: try again later.
    Later,
}

/// Why a unit produced no bytes.
enum RenderFailure {
    /// The labels cannot print (the reason goes to the spool and the `failed` event).
    Labels(String),
    /// The spool could not be read; try again later.
    Spool(SpoolError),
}

/// A fault being recovered from.
struct Fault {
    /// Reconnect delays while the printer cannot be reached.
    backoff: Backoff,
    /// The printer answers status queries (poll at the status interval).
    answering: bool,
}

/// A job's parsed request, or why it cannot be used.
type Parsed = Result<Arc<Request>, String>;

/// Parsed requests by job id, most recently used first (a request that cannot be read
/// is remembered too, so a big job's labels fail without parsing it again each time).
struct RequestCache {
    entries: VecDeque<(String, Parsed)>,
    capacity: usize,
}

impl RequestCache {
    fn get(&mut self, job_id: &str) -> Option<Parsed> {
        let at = self.entries.iter().position(|(id, _)| id == job_id)?;
        let entry = self.entries.remove(at)?;
        let request = entry.1.clone();
        self.entries.push_front(entry);
        Some(request)
    }

    fn insert(&mut self, job_id: &str, request: Parsed) {
        self.entries.push_front((job_id.to_owned(), request));
        self.entries.truncate(self.capacity.max(1));
    }

    fn remove(&mut self, job_id: &str) {
        self.entries.retain(|(id, _)| id != job_id);
    }
}

/// A printer's worker (see the module docs of [`super`]).
pub(super) struct Worker {
    setup: PrinterSetup,
    shared: Arc<Shared>,
    spool: Spool,
    events: Events,
    options: SchedulerOptions,
    driver: Box<dyn Driver>,
    device: Device,
    /// Confirm each unit with a status query (configured, and the link can answer).
    confirm: bool,
    requests: RequestCache,
    /// The done count last reported in a `progress` event, per job.
    reported: BTreeMap<String, u32>,
    /// What the printer or link said last.
    device_state: PrinterState,
    device_detail: String,
    /// The state last published (paused included).
    published: Option<PrinterState>,
    /// The operator's pause as this worker acts on it.
    paused: Option<String>,
    fault: Option<Fault>,
    /// Units in flight when a fault hit: settled when the printer is ready again.
    held: Vec<Unit>,
    /// Units to send before any new work (settled held units, crash recovery).
    pending: VecDeque<Unit>,
    /// Units printed whose spool update failed: recorded before any new work.
    unrecorded: Vec<(Unit, bool)>,
    /// The counter once everything sent so far has printed.
    expected: Option<u64>,
    /// Labels left in `sent` by an earlier run still have to be settled.
    recovery: bool,
    /// Delays after spool errors.
    spool_backoff: Backoff,
    /// The next batch, rendering while the one before it is written (dropped before
    /// the pool, so stopping does not wait for it).
    prefetch: Option<Prefetch>,
    /// A file printer's render threads (started with its first batch).
    pool: Option<RenderPool>,
}

/// A worker before its thread starts: everything but the driver, which is not `Send`
/// and is made on the worker's own thread.
pub(super) struct Parts {
    setup: PrinterSetup,
    shared: Arc<Shared>,
    spool: Spool,
    events: Events,
    options: SchedulerOptions,
    device: Device,
    confirm: bool,
}

impl Parts {
    /// Sets up the printer's link (nothing is opened yet).
    pub(super) fn new(
        setup: PrinterSetup,
        shared: Arc<Shared>,
        spool: Spool,
        events: Events,
        options: SchedulerOptions,
    ) -> Result<Parts, TransportError> {
        let driver = lang::driver(&setup.profile);
        let device = Device::new(&setup.uri, driver.as_ref(), shared.heart.clone())?;
        let confirm = setup.confirm && device.has_status();
        if setup.confirm && !confirm {
            tracing::info!(printer = %setup.name, "confirm is set but this printer cannot answer status queries on its link; labels count as printed once written");
        }
        shared.update(|v| v.confirm = confirm);
        Ok(Parts {
            setup,
            shared,
            spool,
            events,
            options,
            device,
            confirm,
        })
    }

    /// The worker's thread: waits for the worker it replaces, then runs the loop.
    pub(super) fn run(self, predecessor: Option<JoinHandle<()>>) {
        if let Some(previous) = predecessor {
            // The worker this one replaces finishes its unit first.
            while !previous.is_finished() {
                self.shared.heart.beat();
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = previous.join();
        }
        let Parts {
            setup,
            shared,
            spool,
            events,
            options,
            device,
            confirm,
        } = self;
        Worker {
            driver: lang::driver(&setup.profile),
            requests: RequestCache {
                entries: VecDeque::new(),
                capacity: options.request_cache,
            },
            setup,
            shared,
            spool,
            events,
            options,
            device,
            confirm,
            reported: BTreeMap::new(),
            device_state: PrinterState::Unknown,
            device_detail: String::new(),
            published: None,
            paused: None,
            fault: None,
            held: Vec::new(),
            pending: VecDeque::new(),
            unrecorded: Vec::new(),
            expected: None,
            recovery: true,
            spool_backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            prefetch: None,
            pool: None,
        }
        .run();
    }
}

impl Worker {
    fn name(&self) -> &str {
        &self.setup.name
    }

    /// The worker's loop; returns when told to stop.
    fn run(mut self) {
        tracing::info!(printer = %self.name(), uri = %self.setup.uri, model = %self.setup.profile.model, confirm = self.confirm, "worker started");
        loop {
            let orders = self.shared.orders();
            for job in &orders.cancelled {
                self.forget(job);
            }
            if orders.stop {
                break;
            }
            if orders.paused != self.paused {
                self.paused = orders.paused;
                let paused = self.paused.is_some();
                self.shared.update(|v| v.paused = paused);
                self.publish_state();
            }
            if self.paused.is_some() {
                self.device.close_if_idle(self.options.idle_close);
                self.shared.wait(Duration::from_secs(1), false);
                continue;
            }
            if self.fault.is_some() {
                self.recover_step();
                continue;
            }
            if let Some((unit, confirmed)) = self.unrecorded.pop() {
                self.printed(unit, confirmed);
                continue;
            }
            if !self.held.is_empty() {
                self.settle_held();
                continue;
            }
            if self.recovery {
                self.recover_in_flight();
                continue;
            }
            if let Some(unit) = self.pending.pop_front() {
                self.attempt(unit);
                continue;
            }
            self.next_work();
        }
        self.device.close();
        tracing::info!(printer = %self.name(), "worker stopped");
    }

    /// Takes the next labels from the spool and prints them, or waits for work.
    fn next_work(&mut self) {
        self.shared.take_work();
        let max = match self.device.kind() {
            Kind::Device => 1,
            Kind::Directory | Kind::File => self.options.file_batch.max(1),
        };
        let labels = match self.spool.next_labels(&self.setup.name, max) {
            Ok(labels) => labels,
            Err(e) => return self.spool_trouble(e),
        };
        self.spool_backoff.reset();
        if labels.is_empty() {
            self.device.close_if_idle(self.options.idle_close);
            self.shared.wait(Duration::from_secs(1), true);
            return;
        }
        let mut units = group_units(labels);
        match self.device.kind() {
            Kind::Device => {
                if let Some(unit) = units.drain(..).next() {
                    self.attempt(unit);
                }
            }
            Kind::Directory | Kind::File => self.print_batch(units),
        }
    }

    // -----------------------------------------------------------------------------------
    // Printing
    // -----------------------------------------------------------------------------------

    /// Renders `unit` if it has no bytes yet.
    fn ensure_rendered(&mut self, unit: &mut Unit) -> Rendered {
        if unit.bytes.is_some() {
            return Rendered::Yes;
        }
        self.events.publish(Event::Rendering {
            job_id: unit.job_id.clone(),
            labels: unit.indices(),
        });
        match self.render(unit) {
            Ok((bytes, pages)) => {
                unit.bytes = Some(bytes);
                unit.pages = pages;
                Rendered::Yes
            }
            Err(RenderFailure::Labels(reason)) => {
                self.fail(unit, &reason);
                Rendered::Failed
            }
            Err(RenderFailure::Spool(e)) => {
                self.spool_trouble(e);
                Rendered::Later
            }
        }
    }

    /// Lays out, renders, verifies and encodes one unit.
    fn render(&mut self, unit: &Unit) -> Result<(Vec<u8>, u64), RenderFailure> {
        let request = self.request(&unit.job_id)?;
        render_unit(
            &request,
            &self.setup.profile,
            self.driver.as_mut(),
            unit.unit,
            &unit.pieces,
        )
        .map_err(RenderFailure::Labels)
    }

    /// Renders units of one job on the render threads (each with its own driver); the
    /// results in order.
    fn render_many(&mut self, request: &Arc<Request>, units: &[Unit]) -> Vec<Rendering> {
        if let Some(batch) = self.render_pool().submit(request, units) {
            return batch.wait();
        }
        // No render thread could start: render here.
        let profile = &self.setup.profile;
        units
            .iter()
            .map(|u| render_unit(request, profile, self.driver.as_mut(), u.unit, &u.pieces))
            .collect()
    }

    fn render_pool(&mut self) -> &RenderPool {
        let threads = match self.options.render_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            n => n,
        };
        let nice = self.options.render_nice;
        let (profile, name) = (&self.setup.profile, &self.setup.name);
        self.pool
            .get_or_insert_with(|| RenderPool::start(profile, threads, nice, name))
    }

    /// Starts rendering the batch that follows the labels of `job_id` before `from`
    /// (see [`Spool::next_labels_after`]), so it is ready when those are written. Only
    /// fresh (queued) units; anything in the way just means no head start.
    fn prefetch_after(&mut self, request: &Arc<Request>, job_id: &str, from: u32) {
        self.prefetch = None;
        let max = self.options.file_batch.max(1);
        let Ok(labels) = self
            .spool
            .next_labels_after(&self.setup.name, max, job_id, from)
        else {
            return;
        };
        let mut units = group_units(labels);
        if let Some(at) = units.iter().position(|u| u.sent) {
            units.truncate(at);
        }
        let Some(next_job) = units.first().map(|u| u.job_id.clone()) else {
            return;
        };
        let request = if next_job == job_id {
            request.clone()
        } else {
            match self.request(&next_job) {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        let batch = self.render_pool().submit(&request, &units);
        self.prefetch = batch.map(|batch| Prefetch {
            job_id: next_job,
            units: units.into_iter().map(|u| (u.unit, u.pieces)).collect(),
            batch,
        });
    }

    /// The renderings of `units` (of job `job_id`): the prefetched ones when they are
    /// exactly these units, else rendered now.
    fn renderings(
        &mut self,
        request: &Arc<Request>,
        job_id: &str,
        units: &[Unit],
    ) -> Vec<Rendering> {
        if let Some(prefetch) = self.prefetch.take() {
            let same = prefetch.job_id == job_id
                && prefetch.units.len() == units.len()
                && prefetch
                    .units
                    .iter()
                    .zip(units)
                    .all(|((n, pieces), u)| *n == u.unit && *pieces == u.pieces);
            if same {
                return prefetch.batch.wait();
            }
        }
        self.render_many(request, units)
    }

    /// The job's request, parsed (cached).
    fn request(&mut self, job_id: &str) -> Result<Arc<Request>, RenderFailure> {
        if let Some(parsed) = self.requests.get(job_id) {
            return parsed.map_err(RenderFailure::Labels);
        }
        let stored = self
            .spool
            .job_request(job_id)
            .map_err(RenderFailure::Spool)?;
        let parsed = match stored {
            None => Err("the job's request is missing from the spool".to_owned()),
            Some(stored) => {
                let limits = Limits {
                    max_request_bytes: usize::MAX,
                    max_batch_labels: usize::MAX,
                };
                protocol::parse_request(stored.request_json.as_bytes(), &limits)
                    .map(Arc::new)
                    .map_err(|e| format!("the stored request cannot be read: {e}"))
            }
        };
        self.requests.insert(job_id, parsed.clone());
        parsed.map_err(RenderFailure::Labels)
    }

    /// Sends one unit: counter, mark sent, write, confirm, mark printed. Any trouble
    /// holds the unit (it is settled when the printer is ready again) or fails it.
    fn attempt(&mut self, mut unit: Unit) {
        match self.ensure_rendered(&mut unit) {
            Rendered::Yes => {}
            Rendered::Failed => return,
            Rendered::Later => {
                if unit.sent {
                    // Settled before any new work: keep it first.
                    self.pending.push_front(unit);
                }
                return;
            }
        }
        let timeout = self.options.status_timeout;
        if let Err(e) = self.device.ensure_open(timeout) {
            self.held.push(unit);
            return self.transport_fault(e);
        }
        let counter = match self.device.counter(timeout) {
            Ok(c) => c,
            Err(e) => {
                self.held.push(unit);
                return self.transport_fault(e);
            }
        };
        if let Some(c) = counter {
            self.shared.update(|v| v.odometer = Some(c));
        }
        let odometer = counter.map(|c| self.expected.map_or(c, |x| x.max(c)));
        match self
            .spool
            .mark_sent_many(&unit.job_id, &unit.indices(), odometer, now_ms())
        {
            Ok(()) => {}
            Err(e) if is_stale(&e) => {
                // Cancelled (or finished) since it was taken: nothing to send.
                tracing::debug!(printer = %self.name(), job = %unit.job_id, error = %e, "unit skipped");
                return;
            }
            Err(e) => {
                self.pending.push_front(unit);
                return self.spool_trouble(e);
            }
        }
        unit.sent = true;
        unit.odometer = odometer;
        unit.received = false;
        let bytes = unit.bytes.as_deref().unwrap_or_default();
        let deadline = self.write_deadline(bytes.len());
        if let Err(e) = self.device.write_unit(bytes, deadline) {
            return self.write_fault(unit, e);
        }
        self.events.publish(Event::Sent {
            job_id: unit.job_id.clone(),
            labels: unit.indices(),
            printer: self.setup.name.clone(),
        });
        let mut confirmed = false;
        if self.confirm {
            match self.device.status(self.driver.as_ref(), timeout) {
                Err(e) => return self.write_fault(unit, e),
                Ok(Reply::Silent) => {
                    let e = TransportError::new(
                        TransportErrorKind::Timeout,
                        self.device.describe(),
                        "no reply to the confirmation query after a label (is it switched off?)",
                    );
                    return self.write_fault(unit, e);
                }
                Ok(Reply::Status(s)) if !s.is_ready() => {
                    // The printer has the label; it prints once the condition clears.
                    unit.received = true;
                    self.held.push(unit);
                    return self.condition_fault(&s);
                }
                Ok(Reply::Status(s)) => {
                    confirmed = true;
                    self.note_ready(&s.detail);
                }
                Ok(Reply::Garbled(why)) => {
                    tracing::warn!(printer = %self.name(), reason = %why, "confirmation reply not understood; the label counts as delivered");
                }
                Ok(Reply::NoQuery) => {}
            }
        } else {
            self.note_ready("");
        }
        self.expected = odometer.map(|o| o + unit.pages);
        unit.faults = 0;
        self.printed(unit, confirmed);
    }

    /// A file printer's batch: several units of one job in one pair of spool
    /// transactions (sent, then printed).
    fn print_batch(&mut self, units: Vec<Unit>) {
        let (fresh, sent): (Vec<Unit>, Vec<Unit>) = units.into_iter().partition(|u| !u.sent);
        // Left in flight by a fault or a crash: the careful path, one by one.
        self.pending.extend(sent);
        let Some(job_id) = fresh.first().map(|u| u.job_id.clone()) else {
            return;
        };
        for unit in &fresh {
            self.events.publish(Event::Rendering {
                job_id: unit.job_id.clone(),
                labels: unit.indices(),
            });
        }
        let request = match self.request(&job_id) {
            Ok(r) => r,
            Err(RenderFailure::Labels(reason)) => {
                for unit in &fresh {
                    self.fail(unit, &reason);
                }
                return;
            }
            // Nothing was marked: the batch comes again.
            Err(RenderFailure::Spool(e)) => return self.spool_trouble(e),
        };
        let results = self.renderings(&request, &job_id, &fresh);
        if let Some(last) = fresh
            .iter()
            .flat_map(|u| u.pieces.last())
            .map(|p| p.0)
            .max()
        {
            // The render threads take the next batch while this one is written.
            self.prefetch_after(&request, &job_id, last.saturating_add(1));
        }
        let mut ready = Vec::with_capacity(fresh.len());
        for (mut unit, result) in fresh.into_iter().zip(results) {
            match result {
                Ok((bytes, pages)) => {
                    unit.bytes = Some(bytes);
                    unit.pages = pages;
                    ready.push(unit);
                }
                Err(reason) => self.fail(&unit, &reason),
            }
        }
        if ready.is_empty() {
            return;
        }
        if let Err(e) = self.device.ensure_open(self.options.status_timeout) {
            self.held.extend(ready);
            return self.transport_fault(e);
        }
        let indices: Vec<u32> = ready.iter().flat_map(Unit::indices).collect();
        match self.spool.mark_sent_many(&job_id, &indices, None, now_ms()) {
            Ok(()) => {}
            Err(e) if is_stale(&e) => {
                // A label was cancelled meanwhile: take the batch again.
                tracing::debug!(printer = %self.name(), job = %job_id, error = %e, "batch taken again");
                return;
            }
            Err(e) => return self.spool_trouble(e),
        }
        let mut written: Vec<Unit> = Vec::with_capacity(ready.len());
        let mut rest = ready.into_iter().map(|mut u| {
            u.sent = true;
            u
        });
        let mut trouble = None;
        if self.device.kind() == Kind::Directory {
            let units: Vec<Unit> = rest.by_ref().collect();
            let total: usize = units
                .iter()
                .filter_map(|u| u.bytes.as_ref())
                .map(Vec::len)
                .sum();
            let deadline = self.write_deadline(total);
            let bytes: Vec<&[u8]> = units
                .iter()
                .map(|u| u.bytes.as_deref().unwrap_or_default())
                .collect();
            let (done, error) = self.device.write_files(&bytes, deadline);
            let mut units = units.into_iter();
            written.extend(units.by_ref().take(done));
            self.held.extend(units);
            trouble = error;
        } else {
            for unit in rest.by_ref() {
                let bytes = unit.bytes.as_deref().unwrap_or_default();
                let deadline = self.write_deadline(bytes.len());
                match self.device.write_unit(bytes, deadline) {
                    Ok(()) => written.push(unit),
                    Err(e) if e.kind == TransportErrorKind::Config => {
                        self.fail(&unit, &e.to_string());
                    }
                    Err(e) => {
                        self.held.push(unit);
                        trouble = Some(e);
                        break;
                    }
                }
            }
        }
        if trouble.is_none() {
            if let Err(e) = self.device.sync() {
                // Not on disk for sure: write them again once the disk is back.
                self.held.append(&mut written);
                trouble = Some(e);
            }
        }
        if let Some(e) = trouble {
            self.held.extend(rest);
            self.publish_batch(written, false);
            return self.transport_fault(e);
        }
        self.note_ready("");
        self.publish_batch(written, false);
    }

    /// `sent` and `printed` for units of one job written together.
    fn publish_batch(&mut self, units: Vec<Unit>, confirmed: bool) {
        let Some(first) = units.first() else {
            return;
        };
        let job_id = first.job_id.clone();
        let indices: Vec<u32> = units.iter().flat_map(Unit::indices).collect();
        self.events.publish(Event::Sent {
            job_id: job_id.clone(),
            labels: indices.clone(),
            printer: self.setup.name.clone(),
        });
        match self
            .spool
            .mark_printed_many(&job_id, &indices, &self.setup.name, now_ms())
        {
            Ok(progress) => self.after_printed(&job_id, indices, confirmed, &progress),
            Err(e) if is_stale(&e) => {
                tracing::warn!(printer = %self.name(), job = %job_id, error = %e, "labels printed but no longer sent in the spool");
            }
            Err(e) => {
                tracing::warn!(printer = %self.name(), job = %job_id, error = %e, "cannot record printed labels; retrying");
                self.unrecorded
                    .extend(units.into_iter().map(|u| (u, confirmed)));
            }
        }
    }

    /// Records a printed unit and publishes it.
    fn printed(&mut self, unit: Unit, confirmed: bool) {
        let indices = unit.indices();
        match self
            .spool
            .mark_printed_many(&unit.job_id, &indices, &self.setup.name, now_ms())
        {
            Ok(progress) => {
                self.spool_backoff.reset();
                self.after_printed(&unit.job_id, indices, confirmed, &progress);
            }
            Err(e) if is_stale(&e) => {
                tracing::warn!(printer = %self.name(), job = %unit.job_id, error = %e, "label printed but no longer sent in the spool");
            }
            Err(e) => {
                self.unrecorded.push((unit, confirmed));
                self.spool_trouble(e);
            }
        }
    }

    fn after_printed(
        &mut self,
        job_id: &str,
        labels: Vec<u32>,
        confirmed: bool,
        progress: &JobProgress,
    ) {
        let n = labels.len() as u64;
        self.shared.update(|v| v.printed += n);
        self.events.publish(Event::Printed {
            job_id: job_id.to_owned(),
            labels,
            printer: self.setup.name.clone(),
            confirmed,
        });
        self.progress(progress);
    }

    /// Fails a unit's labels with `reason`.
    fn fail(&mut self, unit: &Unit, reason: &str) {
        let indices = unit.indices();
        match self
            .spool
            .mark_failed_many(&unit.job_id, &indices, reason, now_ms())
        {
            Ok(progress) => {
                self.events.publish(Event::Failed {
                    job_id: unit.job_id.clone(),
                    labels: indices,
                    reason: reason.to_owned(),
                });
                self.progress(&progress);
            }
            Err(e) if is_stale(&e) => {}
            Err(e) => self.spool_trouble(e),
        }
    }

    /// `progress` every 1 % or 100 labels of a job with more than one label; `done` at
    /// the end.
    fn progress(&mut self, p: &JobProgress) {
        let done = p.printed + p.failed + p.cancelled;
        if p.total > 1 {
            let step = (p.total / 100).clamp(1, 100);
            let last = self.reported.get(&p.job_id).copied();
            if last.is_none_or(|l| l / step != done / step) || (p.done && last != Some(done)) {
                self.events.publish(Event::Progress {
                    job_id: p.job_id.clone(),
                    done,
                    total: p.total,
                });
                if self.reported.len() >= 1024 {
                    self.reported.clear();
                }
                self.reported.insert(p.job_id.clone(), done);
            }
        }
        if p.done {
            self.events.publish(Event::Done {
                job_id: p.job_id.clone(),
                printed: p.printed,
                failed: p.failed,
                cancelled: p.cancelled,
            });
            self.forget(&p.job_id.clone());
            if p.total >= TRIM_AFTER_LABELS {
                // Its request and renderings were megabytes: give the memory back.
                crate::service::release_free_memory();
            }
        }
    }

    fn forget(&mut self, job_id: &str) {
        self.requests.remove(job_id);
        self.reported.remove(job_id);
    }

    fn write_deadline(&self, len: usize) -> Instant {
        RetryPolicy {
            label_timeout: self.options.write_timeout,
            min_rate: self.options.min_rate,
            ..RetryPolicy::default()
        }
        .write_deadline(Instant::now(), len)
    }

    // -----------------------------------------------------------------------------------
    // Faults
    // -----------------------------------------------------------------------------------

    /// A fault while writing or confirming `unit`: fail it if the link refuses its bytes
    /// or it keeps breaking the connection, else hold it.
    fn write_fault(&mut self, mut unit: Unit, e: TransportError) {
        if e.kind == TransportErrorKind::Config {
            self.fail(&unit, &e.to_string());
            return self.transport_fault(e);
        }
        unit.faults += 1;
        let limit = self.options.max_unit_faults;
        if limit > 0 && unit.faults >= limit {
            let reason = format!(
                "the printer connection failed {} times in a row while this label was sent \
                 (last: {e}); it may contain something the printer cannot take",
                unit.faults
            );
            self.fail(&unit, &reason);
        } else {
            self.held.push(unit);
        }
        self.transport_fault(e);
    }

    fn transport_fault(&mut self, e: TransportError) {
        let (state, detail) = device::error_state(&e);
        self.enter_fault(state, detail, false);
    }

    fn condition_fault(&mut self, status: &DeviceStatus) {
        let (state, detail) = condition_state(status);
        self.enter_fault(state, detail, true);
    }

    fn enter_fault(&mut self, state: PrinterState, detail: String, answering: bool) {
        self.expected = None;
        let error = detail.clone();
        self.shared.update(|v| v.last_error = Some(error));
        self.set_device_state(state, detail);
        match self.fault.as_mut() {
            Some(f) => f.answering = answering,
            None => {
                self.fault = Some(Fault {
                    backoff: Backoff::new(self.options.backoff_first, self.options.backoff_max),
                    answering,
                })
            }
        }
    }

    /// One step of fault recovery: wait, then look at the printer again.
    fn recover_step(&mut self) {
        let Some(fault) = self.fault.as_mut() else {
            return;
        };
        let delay = if fault.answering {
            self.options.status_poll
        } else {
            fault.backoff.next_delay()
        };
        if self.shared.wait(delay, false) {
            return;
        }
        if self.check_ready() {
            self.settle_held();
        }
    }

    /// Reaches the printer and reads its status: `true` when ready (the fault, if any,
    /// is over); otherwise the fault is entered or updated.
    fn check_ready(&mut self) -> bool {
        let timeout = self.options.status_timeout;
        if let Err(e) = self.device.ensure_open(timeout) {
            self.transport_fault(e);
            return false;
        }
        match self.device.status(self.driver.as_ref(), timeout) {
            Err(e) => {
                self.transport_fault(e);
                false
            }
            Ok(Reply::Silent) if !self.confirm => {
                // Without `confirm` status is best effort: a printer that never answers
                // is taken as ready once it accepts a connection.
                self.note_ready("no reply to the status query");
                true
            }
            Ok(Reply::Silent) => {
                let detail = format!(
                    "{}: no reply to the status query (switched off, another host holds it,                      or it cannot answer: then set confirm = false)",
                    self.device.describe()
                );
                self.enter_fault(PrinterState::Offline, detail, false);
                false
            }
            Ok(Reply::Status(s)) if !s.is_ready() => {
                self.condition_fault(&s);
                false
            }
            Ok(Reply::Status(s)) => {
                self.note_ready(&s.detail);
                true
            }
            Ok(Reply::Garbled(why)) => {
                tracing::warn!(printer = %self.name(), reason = %why, "status reply not understood; taken as ready");
                self.note_ready("");
                true
            }
            Ok(Reply::NoQuery) => {
                self.note_ready("");
                true
            }
        }
    }

    /// The printer is ready: the fault (if any) is over.
    fn note_ready(&mut self, detail: &str) {
        self.fault = None;
        if self.device_state != PrinterState::Ready || self.device_detail != detail {
            self.set_device_state(PrinterState::Ready, detail.to_owned());
        }
    }

    /// Decides the held units once the printer is ready: printed (its counter moved
    /// past them, or it had acknowledged them) or to be sent again.
    fn settle_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return;
        }
        let want_counter = held.iter().any(|u| u.sent && u.odometer.is_some());
        let counter = if want_counter && self.device.may_have_counter() {
            self.let_printer_finish();
            match self.device.counter(self.options.status_timeout) {
                Ok(c) => c,
                Err(e) => {
                    self.held = held;
                    return self.transport_fault(e);
                }
            }
        } else {
            None
        };
        if let Some(c) = counter {
            self.shared.update(|v| v.odometer = Some(c));
        }
        self.expected = None;
        for unit in held {
            if !unit.sent {
                self.pending.push_back(unit);
                continue;
            }
            let printed = match (unit.odometer, counter) {
                (Some(o), Some(c)) => c >= o + unit.pages.max(1),
                _ => unit.received,
            };
            if printed {
                tracing::debug!(printer = %self.name(), job = %unit.job_id, labels = ?unit.indices(), by_counter = counter.is_some(), "held labels printed");
                self.printed(unit, counter.is_some());
            } else if self.cancelled(&unit.job_id) {
                self.fail(
                    &unit,
                    "cancelled while in flight; the printer did not show it printed, so it is \
                     not sent again",
                );
            } else {
                tracing::info!(printer = %self.name(), job = %unit.job_id, labels = ?unit.indices(), "held labels sent again");
                self.pending.push_back(unit);
            }
        }
    }

    /// Waits (up to the settle time) until the printer says it has nothing left to print
    /// (ZPL `~HS`), so its counter counts what it has received.
    fn let_printer_finish(&mut self) {
        let deadline = Instant::now() + self.options.settle;
        loop {
            match self
                .device
                .busy(self.driver.as_ref(), self.options.status_timeout)
            {
                Ok(Some(true)) if Instant::now() < deadline => {
                    self.shared.heart.beat();
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => return,
            }
        }
    }

    /// After a start: settle the labels this printer left in `sent` (see the module docs).
    fn recover_in_flight(&mut self) {
        if !self.check_ready() {
            return;
        }
        let units = match self.sent_units() {
            Ok(units) => units,
            Err(e) => return self.spool_trouble(e),
        };
        if units.is_empty() {
            self.recovery = false;
            return;
        }
        let counter =
            if self.device.may_have_counter() && units.iter().any(|(u, _)| u.odometer.is_some()) {
                self.let_printer_finish();
                match self.device.counter(self.options.status_timeout) {
                    Ok(c) => c,
                    Err(e) => return self.transport_fault(e),
                }
            } else {
                None
            };
        if let Some(c) = counter {
            self.shared.update(|v| v.odometer = Some(c));
        }
        self.recovery = false;
        let copies = u64::from(self.setup.profile.copies.max(1));
        for (unit, cancelled) in units {
            let (printed, reason) = match (unit.odometer, counter) {
                (Some(o), Some(c)) if c >= o + copies => (
                    true,
                    format!("the printer's label counter is {c}, past {o} read before it was sent"),
                ),
                (Some(o), Some(c)) => (
                    false,
                    format!(
                        "the printer's label counter is {c}, not past {o} read before it was sent"
                    ),
                ),
                (None, Some(_)) => (
                    false,
                    "no label counter value was stored when it was sent".to_owned(),
                ),
                (_, None) => (
                    false,
                    "the printer has no label counter labeld can read".to_owned(),
                ),
            };
            let reprint = !printed && !cancelled;
            for &index in &unit.indices() {
                let reason = if !printed && cancelled {
                    format!("{reason}; its job was cancelled, so it is not printed again")
                } else {
                    reason.clone()
                };
                self.events.publish(Event::InFlight {
                    job_id: unit.job_id.clone(),
                    index,
                    reprinted: reprint,
                    reason,
                });
            }
            if printed {
                self.printed(unit, true);
            } else if cancelled {
                self.fail(&unit, &format!("cancelled while in flight; {reason}"));
            } else {
                self.pending.push_back(unit);
            }
        }
    }

    /// Whether `job_id` was cancelled (a spool error counts as not).
    fn cancelled(&self, job_id: &str) -> bool {
        self.spool
            .job_request(job_id)
            .ok()
            .flatten()
            .is_some_and(|j| j.state == JobState::Cancelled)
    }

    /// This printer's labels left in `sent`, as units in arrival order, each with
    /// whether its job was cancelled.
    fn sent_units(&self) -> Result<Vec<(Unit, bool)>, SpoolError> {
        let mut out = Vec::new();
        for job in self.spool.unfinished_jobs()? {
            if job.printer != self.setup.name || job.in_flight.is_empty() {
                continue;
            }
            let cancelled = self
                .spool
                .job_request(&job.job_id)?
                .is_some_and(|j| j.state == JobState::Cancelled);
            let labels = self.spool.job_labels(&job.job_id)?;
            let mut units: Vec<Unit> = Vec::new();
            for l in labels.into_iter().filter(|l| l.state == LabelState::Sent) {
                match units.last_mut() {
                    Some(u) if u.unit == l.unit => u.pieces.push((l.index, l.tracking)),
                    _ => units.push(Unit {
                        job_id: job.job_id.clone(),
                        unit: l.unit,
                        pieces: vec![(l.index, l.tracking)],
                        bytes: None,
                        pages: 1,
                        sent: true,
                        odometer: l.odometer,
                        received: false,
                        faults: 0,
                    }),
                }
            }
            out.extend(units.into_iter().map(|u| (u, cancelled)));
        }
        Ok(out)
    }

    /// A spool error: log it and wait before trying again.
    fn spool_trouble(&mut self, e: SpoolError) {
        let delay = self.spool_backoff.next_delay();
        tracing::warn!(printer = %self.name(), error = %e, retry_ms = delay.as_millis() as u64, "spool error");
        self.shared.wait(delay, false);
    }

    // -----------------------------------------------------------------------------------
    // State
    // -----------------------------------------------------------------------------------

    fn set_device_state(&mut self, state: PrinterState, detail: String) {
        self.device_state = state;
        self.device_detail = detail;
        self.publish_state();
    }

    /// Publishes the printer's state (the operator's pause wins) when it changed.
    fn publish_state(&mut self) {
        let (state, detail) = match &self.paused {
            Some(reason) => (PrinterState::Paused, reason.clone()),
            None => (self.device_state, self.device_detail.clone()),
        };
        let shown = detail.clone();
        self.shared.update(|v| {
            v.state = state;
            v.detail = shown;
        });
        // "Not contacted yet" is no news.
        if self.published != Some(state) && state != PrinterState::Unknown {
            self.published = Some(state);
            self.events.publish(Event::Printer {
                printer: self.setup.name.clone(),
                state,
                detail,
            });
        }
    }
}

/// A job with at least this many labels gives the memory it freed back to the system
/// when it is done.
const TRIM_AFTER_LABELS: u32 = 1000;

/// A unit's labels: index and the tracking code the spool assigned.
type Pieces = Vec<(u32, Option<String>)>;

/// A unit's bytes and the labels the printer's counter counts for them, or why it cannot
/// print.
type Rendering = Result<(Vec<u8>, u64), String>;

/// One unit for a render thread.
struct RenderTask {
    request: Arc<Request>,
    unit: u32,
    pieces: Pieces,
    /// Its place in the batch.
    seq: usize,
    /// Set when the batch is no longer wanted: skip the work.
    dropped: Arc<AtomicBool>,
    done: mpsc::Sender<(usize, Rendering)>,
}

/// A file printer's render threads, each with its own driver, kept for the worker's
/// life (threads made per batch cost a malloc arena each and keep its memory).
struct RenderPool {
    tasks: Option<mpsc::Sender<RenderTask>>,
    threads: Vec<JoinHandle<()>>,
}

impl RenderPool {
    fn start(profile: &Profile, threads: usize, nice: i32, printer: &str) -> RenderPool {
        let (tasks, queue) = mpsc::channel::<RenderTask>();
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let profile = profile.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("render-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    render_thread(&profile, &queue);
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    tracing::warn!(printer = %printer, error = %e, "cannot start a render thread");
                    break;
                }
            }
        }
        RenderPool {
            tasks: (!handles.is_empty()).then_some(tasks),
            threads: handles,
        }
    }

    /// Queues `units` of `request`; `None` when the threads are gone.
    fn submit(&self, request: &Arc<Request>, units: &[Unit]) -> Option<RenderBatch> {
        let tasks = self.tasks.as_ref()?;
        let (done, results) = mpsc::channel();
        let dropped = Arc::new(AtomicBool::new(false));
        for (seq, unit) in units.iter().enumerate() {
            let task = RenderTask {
                request: request.clone(),
                unit: unit.unit,
                pieces: unit.pieces.clone(),
                seq,
                dropped: dropped.clone(),
                done: done.clone(),
            };
            tasks.send(task).ok()?;
        }
        Some(RenderBatch {
            results,
            count: units.len(),
            dropped,
        })
    }
}

impl Drop for RenderPool {
    fn drop(&mut self) {
        self.tasks = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Raises the calling thread's nice value by `nice` (Linux: nice is per thread).
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes
    // its scheduling priority, and a failure (not permitted) leaves it as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        let current = libc::getpriority(libc::PRIO_PROCESS as _, tid as libc::id_t);
        libc::setpriority(
            libc::PRIO_PROCESS as _,
            tid as libc::id_t,
            current.saturating_add(nice).min(19),
        );
    }
}

/// A render thread: units from the queue until the pool is dropped.
fn render_thread(profile: &Profile, queue: &Mutex<mpsc::Receiver<RenderTask>>) {
    let mut driver = lang::driver(profile);
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(task) = next else { return };
        if task.dropped.load(Ordering::Relaxed) {
            continue;
        }
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            render_unit(
                &task.request,
                profile,
                driver.as_mut(),
                task.unit,
                &task.pieces,
            )
        }));
        let result = rendered.unwrap_or_else(|_| {
            driver = lang::driver(profile);
            Err("the renderer panicked on this label".to_owned())
        });
        let _ = task.done.send((task.seq, result));
    }
}

/// A batch queued on the render threads.
struct RenderBatch {
    results: mpsc::Receiver<(usize, Rendering)>,
    count: usize,
    dropped: Arc<AtomicBool>,
}

impl RenderBatch {
    /// Waits for every unit; the results in the batch's order.
    fn wait(self) -> Vec<Rendering> {
        let mut out: Vec<Option<Rendering>> = (0..self.count).map(|_| None).collect();
        for _ in 0..self.count {
            let Ok((seq, result)) = self.results.recv() else {
                break;
            };
            if let Some(slot) = out.get_mut(seq) {
                *slot = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err("the render thread stopped".to_owned())))
            .collect()
    }
}

impl Drop for RenderBatch {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::Relaxed);
    }
}

/// The next batch of a file printer, rendering ahead.
struct Prefetch {
    job_id: String,
    /// Its units: number and pieces with their tracking codes.
    units: Vec<(u32, Pieces)>,
    batch: RenderBatch,
}

/// Lays out, renders, verifies and encodes one unit of `request` for `profile`; the
/// bytes and the labels the printer's counter counts for them (pages × copies), or why
/// the unit cannot print.
fn render_unit(
    request: &Request,
    profile: &Profile,
    driver: &mut dyn Driver,
    unit: u32,
    pieces: &[(u32, Option<String>)],
) -> Rendering {
    let assigned: Vec<(u32, Option<&str>)> =
        pieces.iter().map(|(i, t)| (*i, t.as_deref())).collect();
    let job = pieces::unit_job(request, unit, &assigned).map_err(|e| e.message)?;
    let labels = layout::layout(&job).map_err(|e| format!("layout: {e}"))?;
    let out = output::render_labels(&labels, profile, driver, &RenderOptions::default())
        .map_err(|e| e.to_string())?;
    let pages = out.pages.len() as u64 * u64::from(profile.copies.max(1));
    Ok((out.bytes, pages))
}

/// Labels of one job, grouped into units in order.
fn group_units(labels: Vec<QueuedLabel>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for l in labels {
        match units.last_mut() {
            Some(u) if u.unit == l.unit && u.job_id == l.job_id => {
                u.sent |= l.state == LabelState::Sent;
                u.pieces.push((l.index, l.tracking));
            }
            _ => units.push(Unit {
                job_id: l.job_id,
                unit: l.unit,
                pieces: vec![(l.index, l.tracking)],
                bytes: None,
                pages: 1,
                sent: l.state == LabelState::Sent,
                odometer: l.odometer,
                received: false,
                faults: 0,
            }),
        }
    }
    units
}

/// Spool errors that mean "the labels changed under us" rather than trouble.
fn is_stale(e: &SpoolError) -> bool {
    matches!(
        e,
        SpoolError::BadTransition { .. }
            | SpoolError::UnknownJob { .. }
            | SpoolError::UnknownLabel { .. }
    )
}

/// A status reply's conditions as the printer state and detail to publish.
fn condition_state(status: &DeviceStatus) -> (PrinterState, String) {
    let c = status.conditions;
    let state = if c.contains(Condition::MediaOut) {
        PrinterState::PaperOut
    } else if c.contains(Condition::HeadOpen) {
        PrinterState::HeadOpen
    } else if c.contains(Condition::RibbonOut) {
        PrinterState::RibbonOut
    } else if c.contains(Condition::Offline) {
        PrinterState::Offline
    } else {
        PrinterState::Fault
    };
    let names: Vec<&str> = c.iter().map(Condition::name).collect();
    let detail = if status.detail.is_empty() {
        names.join(", ")
    } else {
        status.detail.clone()
    };
    (state, detail)
}
