//! `labelctl submit`, `status`, `cancel`, `reprint`, and the `--wait` loop they share
//! with `mail`.
//!
//! Waiting never relies on events alone: ZeroMQ drops what was published before a
//! subscription reached labeld, and a slow subscriber loses events. Events only wake
//! the loop early; the truth is the `status` reply, asked for at least every 250 ms,
//! until every label is printed, failed or cancelled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{ArgGroup, Args};
use labeld::client::Subscriber;
use serde_json::{json, Map, Value};

use crate::daemon::{self, Conn, Session, EXIT_INCOMPLETE, EXIT_UNREACHABLE};
use crate::progress::Progress;
use crate::Failure;

/// Longest pause between two status polls while waiting.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Shortest pause between two polls when events keep waking the loop.
const POLL_AT_MOST: Duration = Duration::from_millis(100);
/// Every this many polls, every unfinished job is asked, not just the front ones.
const FULL_SWEEP: u32 = 8;
/// A poll round that takes labeld time T is followed by at least this many T of
/// pause, so a big job's `status` replies never take much of the daemon's time.
const POLL_SHARE: u32 = 4;

/// Arguments of `labelctl submit`.
#[derive(Args)]
pub struct SubmitArgs {
    /// The label job: a JSON file as in docs/labels.md, or `-` for stdin.
    job: PathBuf,
    /// The printer's configured name (`labelctl printers` lists them).
    #[arg(long)]
    printer: String,
    /// Your job id: submitting the same id again returns the first answer and prints
    /// nothing twice.
    #[arg(long = "job-id", value_name = "ID")]
    job_id: Option<String>,
    /// 0-9, higher first (labeld's default: 5).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: Option<u8>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: Conn,
}

/// `--wait` and `--wait-timeout`.
#[derive(Args, Clone, Copy)]
pub struct WaitArgs {
    /// Return only when every label is printed, failed or cancelled: exit 0 when all
    /// printed, 4 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 3). Default: wait as long
    /// as it takes.
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub wait_timeout: Option<f64>,
}

impl WaitArgs {
    /// When to give up, if ever.
    ///
    /// # Errors
    ///
    /// An input error for a bad number.
    pub fn deadline(&self) -> Result<Option<Instant>, Failure> {
        self.wait_timeout
            .map(|s| daemon::seconds("--wait-timeout", s).map(|d| Instant::now() + d))
            .transpose()
    }
}

/// Reads a JSON object from a file or `-` (stdin).
///
/// # Errors
///
/// An input error naming the file (exit 2).
pub fn read_json_object(path: &Path, what: &str) -> Result<(Vec<u8>, Map<String, Value>), Failure> {
    let bytes = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        bytes
    } else {
        std::fs::read(path)
            .map_err(|e| Failure::Input(format!("reading {what} {}: {e}", path.display())))?
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok((bytes, map)),
        Ok(_) => Err(Failure::Input(format!(
            "{what} {} is not a JSON object (see docs/labels.md)",
            path.display()
        ))),
        Err(e) => Err(Failure::Input(format!(
            "{what} {} is not valid JSON: {e}",
            path.display()
        ))),
    }
}

/// Runs `labelctl submit`.
pub fn submit(args: SubmitArgs) -> Result<(), Failure> {
    let (_, job) = read_json_object(&args.job, "job")?;
    let deadline = args.wait.deadline()?;
    let mut session = Session::open(&args.conn)?;
    // Subscribe before submitting when the id is known, so no event is missed.
    let mut subscriber = match (&args.job_id, args.wait.wait) {
        (Some(id), true) => subscribe(&session, id, &args.printer),
        _ => None,
    };
    let mut request = json!({"op": "submit", "printer": args.printer, "job": job});
    if let Some(id) = &args.job_id {
        request["job_id"] = id.clone().into();
    }
    if let Some(p) = args.priority {
        request["priority"] = p.into();
    }
    let accepted = session.call(request)?;
    let job_id = accepted
        .get("job_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !args.wait.wait {
        report_accepted(&accepted, &args.printer, args.conn.json);
        return Ok(());
    }
    if !args.conn.json {
        report_accepted(&accepted, &args.printer, false);
    }
    if subscriber.is_none() {
        subscriber = subscribe(&session, &job_id, &args.printer);
    }
    let total = accepted
        .get("label_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut jobs = vec![Watch::new(job_id, total)];
    let mut waiter = Waiter::new(subscriber);
    waiter.wait(&mut session, &mut jobs, deadline, None)?;
    finish(&jobs, Some(Value::Object(accepted)), args.conn.json)
}

/// Subscribes to a job's and its printer's events; `None` (with a note) when the
/// event socket cannot be reached: waiting then polls only.
pub fn subscribe(session: &Session, job_id: &str, printer: &str) -> Option<Subscriber> {
    let job = format!("job.{job_id}");
    let printer = format!("printer.{printer}");
    // No printer name (a reprint's reply has none): job events only.
    let topics: Vec<&str> = if printer == "printer." {
        vec![&job]
    } else {
        vec![&job, &printer]
    };
    match session.subscribe(&topics) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("labelctl: note: no events ({e}); polling status instead");
            None
        }
    }
}

/// Prints an accepted submit (or reprint): job id, labels and serials.
pub fn report_accepted(accepted: &Map<String, Value>, printer: &str, json: bool) {
    if json {
        println!("{}", Value::Object(accepted.clone()));
        return;
    }
    let job_id = accepted
        .get("job_id")
        .map_or_else(String::new, daemon::text);
    let count = accepted
        .get("label_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let replayed = accepted.get("replayed") == Some(&Value::Bool(true));
    let plural = if count == 1 { "" } else { "s" };
    if replayed {
        println!(
            "job {job_id}: already accepted earlier ({count} label{plural}); nothing is printed twice"
        );
    } else if printer.is_empty() {
        println!("accepted job {job_id}: {count} label{plural}");
    } else {
        println!("accepted job {job_id}: {count} label{plural} for printer {printer}");
    }
    let serials = serials_of(accepted);
    if serials.len() <= 20 {
        for s in &serials {
            println!(
                "  label {}: serial {} (mailer {}), tracking {}",
                s.index, s.serial, s.mailer_id, s.tracking
            );
        }
    } else {
        for line in serial_ranges(&serials) {
            println!("  {line}");
        }
    }
    warn_about(accepted);
}

/// Prints the warnings of an accepted submit on stderr.
pub fn warn_about(accepted: &Map<String, Value>) {
    for w in accepted
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match (w.get("kind").and_then(Value::as_str), w.get("mailer_id")) {
            (Some("low_water"), Some(m)) => eprintln!(
                "labelctl: warning: the serial range of Mailer ID {} is running low: {} left",
                daemon::text(m),
                w.get("left").map_or_else(|| "?".into(), daemon::text)
            ),
            _ => eprintln!("labelctl: warning: {w}"),
        }
    }
}

/// One serial as an accepted reply lists it.
#[derive(Clone, Debug)]
pub struct Serial {
    /// Label index.
    pub index: u64,
    /// Mailer ID.
    pub mailer_id: String,
    /// The serial.
    pub serial: u64,
    /// The tracking code.
    pub tracking: String,
}

/// The serials of an accepted reply.
pub fn serials_of(accepted: &Map<String, Value>) -> Vec<Serial> {
    accepted
        .get("serials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| Serial {
            index: s.get("index").and_then(Value::as_u64).unwrap_or(0),
            mailer_id: s.get("mailer_id").map_or_else(String::new, daemon::text),
            serial: s.get("serial").and_then(Value::as_u64).unwrap_or(0),
            tracking: s.get("tracking").map_or_else(String::new, daemon::text),
        })
        .collect()
}

/// `serials 1-25 (Mailer ID 123456)`, a line per Mailer ID; runs of consecutive
/// serials are joined, at most 6 runs shown.
pub fn serial_ranges(serials: &[Serial]) -> Vec<String> {
    let mut by_mailer: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for s in serials {
        by_mailer.entry(&s.mailer_id).or_default().push(s.serial);
    }
    by_mailer
        .into_iter()
        .map(|(mailer, mut list)| {
            list.sort_unstable();
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for s in list {
                match runs.last_mut() {
                    Some((_, end)) if *end + 1 == s => *end = s,
                    _ => runs.push((s, s)),
                }
            }
            let shown: Vec<String> = runs
                .iter()
                .take(6)
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            let more = if runs.len() > 6 {
                format!(" and {} more runs", runs.len() - 6)
            } else {
                String::new()
            };
            format!("serials {}{more} (Mailer ID {mailer})", shown.join(", "))
        })
        .collect()
}

/// How many labels of a job are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for the printer.
    pub queued: u64,
    /// Sent, not yet confirmed.
    pub sent: u64,
    /// Printed.
    pub printed: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl Counts {
    /// Labels in a final state.
    pub fn done(&self) -> u64 {
        self.printed + self.failed + self.cancelled
    }

    /// All labels.
    pub fn total(&self) -> u64 {
        self.done() + self.queued + self.sent
    }

    fn add(&mut self, other: Counts) {
        self.queued += other.queued;
        self.sent += other.sent;
        self.printed += other.printed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
    }

    /// `2 printed, 1 failed` (states with labels only).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.printed, "printed"),
            (self.failed, "failed"),
            (self.cancelled, "cancelled"),
            (self.sent, "sent"),
            (self.queued, "queued"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
        if parts.is_empty() {
            "no labels".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The label counts in a `status` reply: its `progress` object, else counted from
/// its `labels`.
pub fn counts_of(status: &Map<String, Value>) -> Counts {
    let read = |m: &Map<String, Value>| Counts {
        queued: m.get("queued").and_then(Value::as_u64).unwrap_or(0),
        sent: m.get("sent").and_then(Value::as_u64).unwrap_or(0),
        printed: m.get("printed").and_then(Value::as_u64).unwrap_or(0),
        failed: m.get("failed").and_then(Value::as_u64).unwrap_or(0),
        cancelled: m.get("cancelled").and_then(Value::as_u64).unwrap_or(0),
    };
    if let Some(Value::Object(progress)) = status.get("progress") {
        return read(progress);
    }
    if let Some(Value::Array(labels)) = status.get("labels") {
        let mut c = Counts::default();
        for l in labels {
            match l.get("state").and_then(Value::as_str) {
                Some("queued") => c.queued += 1,
                Some("sent") => c.sent += 1,
                Some("printed") => c.printed += 1,
                Some("failed") => c.failed += 1,
                Some("cancelled") => c.cancelled += 1,
                _ => {}
            }
        }
        return c;
    }
    read(status)
}

/// A job being waited for.
#[derive(Clone, Debug)]
pub struct Watch {
    /// Its id.
    pub job_id: String,
    /// Labels in it (from the accepted reply).
    pub total: u64,
    /// Counts from the last `status`.
    pub counts: Counts,
    /// The last `status` reply.
    pub status: Option<Map<String, Value>>,
}

impl Watch {
    /// A job of `total` labels, nothing known yet.
    pub fn new(job_id: String, total: u64) -> Watch {
        Watch {
            job_id,
            total,
            counts: Counts::default(),
            status: None,
        }
    }

    /// Every label is printed, failed or cancelled: `progress.done` (not the job's
    /// state: a cancelled job can still have a label in `sent`, which may print).
    pub fn finished(&self) -> bool {
        let Some(status) = &self.status else {
            return false;
        };
        match status.get("progress").and_then(|p| p.get("done")) {
            Some(Value::Bool(done)) => *done,
            _ => {
                self.counts.queued == 0 && self.counts.sent == 0 && self.counts.done() >= self.total
            }
        }
    }
}

/// The `--wait` loop: events wake it, `status` decides.
pub struct Waiter {
    /// Events, while the subscription works.
    subscriber: Option<Subscriber>,
    /// The printer's last condition, when it is not ready.
    printer_note: Option<String>,
}

impl Waiter {
    /// A waiter woken by `subscriber`'s events (or polling only).
    pub fn new(subscriber: Option<Subscriber>) -> Waiter {
        Waiter {
            subscriber,
            printer_note: None,
        }
    }

    /// Polls until every job is finished, showing `progress` if given.
    ///
    /// # Errors
    ///
    /// Exit 3 when `deadline` passes first or labeld stops answering; the
    /// errors of `status`.
    pub fn wait(
        &mut self,
        session: &mut Session,
        jobs: &mut [Watch],
        deadline: Option<Instant>,
        mut progress: Option<&mut Progress>,
    ) -> Result<(), Failure> {
        let mut round = 0u32;
        loop {
            let started = Instant::now();
            self.poll(session, jobs, round % FULL_SWEEP == 0)?;
            let spent = started.elapsed() * POLL_SHARE;
            round = round.wrapping_add(1);
            let done: u64 = jobs.iter().map(|j| j.counts.done().min(j.total)).sum();
            if let Some(p) = progress.as_deref_mut() {
                p.update(done, self.printer_note.as_deref());
            }
            if jobs.iter().all(Watch::finished) {
                if let Some(p) = progress.as_deref_mut() {
                    p.finish(done);
                }
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let open: u64 = jobs
                    .iter()
                    .map(|j| j.total.saturating_sub(j.counts.done()))
                    .sum();
                let note = self
                    .printer_note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                return Err(Failure::Exit(
                    EXIT_UNREACHABLE,
                    format!(
                        "gave up waiting: {open} label(s) not yet printed{note}; they stay queued"
                    ),
                ));
            }
            self.pause(deadline, spent);
        }
    }

    /// Asks `status` for the unfinished jobs: all of them on a full sweep, else in
    /// order up to the first one that has not started (jobs print in order).
    fn poll(
        &mut self,
        session: &mut Session,
        jobs: &mut [Watch],
        full: bool,
    ) -> Result<(), Failure> {
        for job in jobs.iter_mut().filter(|j| !j.finished()) {
            // Counts only while waiting (a 10,000-label job's full status is megabytes);
            // the labels once, when the job is finished.
            let status =
                session.call(json!({"op": "status", "job_id": job.job_id, "labels": false}))?;
            job.counts = counts_of(&status);
            if job.total == 0 {
                job.total = status
                    .get("progress")
                    .and_then(|p| p.get("total"))
                    .and_then(Value::as_u64)
                    .unwrap_or_else(|| job.counts.total());
            }
            job.status = Some(status);
            if job.finished() {
                job.status = Some(session.call(json!({"op": "status", "job_id": job.job_id}))?);
            }
            if !full && job.counts.done() == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Waits up to [`POLL_EVERY`], less when a job event arrives; never less than
    /// `at_least`.
    fn pause(&mut self, deadline: Option<Instant>, at_least: Duration) {
        let start = Instant::now();
        let mut until = start + POLL_EVERY.max(at_least);
        if let Some(d) = deadline {
            until = until.min(d.max(start));
        }
        let Some(sub) = self.subscriber.as_mut() else {
            std::thread::sleep(until.saturating_duration_since(start));
            return;
        };
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match sub.next(left) {
                Ok(Some(received)) => {
                    if received.topic.starts_with("printer.") {
                        self.printer_note = printer_note(&received.event);
                    } else {
                        // A job moved: poll soon, not at once (events come in bursts).
                        until = until.min(start + POLL_AT_MOST.max(at_least));
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    eprintln!("labelctl: note: event stream lost ({e}); polling status instead");
                    self.subscriber = None;
                    return;
                }
            }
        }
    }
}

/// `printer zebra-1: paper_out (…)` for a printer event that is not "ready".
fn printer_note(event: &Value) -> Option<String> {
    let state = event.get("state").and_then(Value::as_str)?;
    if state == "ready" {
        return None;
    }
    let printer = event.get("printer").map_or_else(String::new, daemon::text);
    let detail = event.get("detail").and_then(Value::as_str).unwrap_or("");
    Some(if detail.is_empty() {
        format!("printer {printer}: {state}")
    } else {
        format!("printer {printer}: {state} ({detail})")
    })
}

/// Reports finished jobs; exit 0 when every label printed, 4 otherwise.
///
/// # Errors
///
/// Exit 4 with the counts.
pub fn finish(jobs: &[Watch], accepted: Option<Value>, json: bool) -> Result<(), Failure> {
    let mut all = Counts::default();
    for j in jobs {
        all.add(j.counts);
    }
    let ok = all.printed == jobs.iter().map(|j| j.total).sum::<u64>();
    if json {
        let statuses: Vec<Value> = jobs
            .iter()
            .map(|j| Value::Object(j.status.clone().unwrap_or_default()))
            .collect();
        let mut out = json!({
            "all_printed": ok,
            "printed": all.printed,
            "failed": all.failed,
            "cancelled": all.cancelled,
        });
        if let Some(a) = accepted {
            out["accepted"] = a;
        }
        if let [one] = statuses.as_slice() {
            out["status"] = one.clone();
        } else {
            out["status"] = Value::Array(statuses);
        }
        println!("{out}");
    } else {
        for j in jobs {
            println!("job {}: {}", j.job_id, j.counts.describe());
            print_problem_labels(j.status.as_ref());
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Exit(
            EXIT_INCOMPLETE,
            format!("not every label printed: {}", all.describe()),
        ))
    }
}

/// Lists failed and cancelled labels with their reasons.
fn print_problem_labels(status: Option<&Map<String, Value>>) {
    let Some(Value::Array(labels)) = status.and_then(|s| s.get("labels")) else {
        return;
    };
    for l in labels {
        let state = l.get("state").and_then(Value::as_str).unwrap_or("");
        if state == "failed" || state == "cancelled" {
            let index = l.get("index").map_or_else(|| "?".into(), daemon::text);
            match l.get("reason").and_then(Value::as_str) {
                Some(reason) => println!("  label {index}: {state}: {reason}"),
                None => println!("  label {index}: {state}"),
            }
        }
    }
}

/// Arguments of `labelctl status`.
#[derive(Args)]
pub struct StatusArgs {
    /// Job ids.
    #[arg(required = true, value_name = "JOB_ID")]
    job_ids: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl status`: each job's labels and their states. A job that cannot be
/// found is reported and the others still shown; the exit code is the worst one.
pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let mut session = Session::open(&args.conn)?;
    each_job(&args.job_ids, |job_id| {
        let status = session.call(json!({"op": "status", "job_id": job_id}))?;
        if args.conn.json {
            println!("{}", Value::Object(status));
        } else {
            print_status(job_id, &status);
        }
        Ok(())
    })
}

fn print_status(job_id: &str, status: &Map<String, Value>) {
    let counts = counts_of(status);
    let field = |k: &str| status.get(k).map(daemon::text);
    let mut about = Vec::new();
    if let Some(p) = field("printer") {
        about.push(format!("printer {p}"));
    }
    if let Some(s) = field("state") {
        about.push(s);
    }
    if let Some(p) = field("priority") {
        about.push(format!("priority {p}"));
    }
    if let Some(ms) = status.get("created_at").and_then(Value::as_i64) {
        about.push(format!("accepted {}", labeld::spool::format_rfc3339_ms(ms)));
    }
    println!(
        "job {job_id} ({}): {} label(s): {}",
        about.join(", "),
        counts.total(),
        counts.describe()
    );
    if let Some(Value::Array(labels)) = status.get("labels") {
        let rows: Vec<Map<String, Value>> = labels
            .iter()
            .filter_map(|l| l.as_object().cloned())
            .collect();
        if !rows.is_empty() {
            daemon::print_table(
                &rows,
                &[
                    "index",
                    "state",
                    "tracking",
                    "routing",
                    "recipient",
                    "attempts",
                    "reason",
                ],
                false,
            );
        }
    }
}

/// Runs `each` for every id, going on after a failure; returns the worst failure.
fn each_job(
    ids: &[String],
    mut each: impl FnMut(&str) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut worst: Option<Failure> = None;
    for id in ids {
        match each(id) {
            Ok(()) => {}
            Err(e @ Failure::Exit(EXIT_UNREACHABLE, _)) => return Err(e),
            Err(e) => {
                if ids.len() > 1 {
                    report_now(&e);
                }
                worst = Some(worse(worst, e));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some(e) if ids.len() > 1 => Err(Failure::Exit(code_of(&e), String::new())),
        Some(e) => Err(e),
    }
}

fn code_of(e: &Failure) -> u8 {
    match e {
        Failure::Input(_) => 2,
        Failure::Other(_) => 1,
        Failure::Exit(c, _) => *c,
    }
}

fn worse(a: Option<Failure>, b: Failure) -> Failure {
    match a {
        Some(a) if code_of(&a) >= code_of(&b) => a,
        _ => b,
    }
}

fn report_now(e: &Failure) {
    match e {
        Failure::Input(m) | Failure::Exit(_, m) if !m.is_empty() => eprintln!("labelctl: {m}"),
        Failure::Other(err) => eprintln!("labelctl: {err:#}"),
        _ => {}
    }
}

/// Arguments of `labelctl cancel`.
#[derive(Args)]
pub struct CancelArgs {
    /// Job ids.
    #[arg(required = true, value_name = "JOB_ID")]
    job_ids: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl cancel`: the jobs' queued labels are dropped (their serials stay
/// used); a label being printed finishes.
pub fn cancel(args: CancelArgs) -> Result<(), Failure> {
    let mut session = Session::open(&args.conn)?;
    each_job(&args.job_ids, |job_id| {
        let reply = session.call(json!({"op": "cancel", "job_id": job_id}))?;
        if args.conn.json {
            println!("{}", Value::Object(reply));
        } else {
            let n = reply.get("cancelled").and_then(Value::as_u64).unwrap_or(0);
            let sent = reply.get("in_flight").and_then(Value::as_u64).unwrap_or(0);
            if sent > 0 {
                println!(
                    "job {job_id}: {n} queued label(s) cancelled; {sent} already sent to the printer may still print"
                );
            } else {
                println!("job {job_id}: {n} queued label(s) cancelled");
            }
        }
        Ok(())
    })
}

/// Arguments of `labelctl reprint`.
#[derive(Args)]
#[command(group(ArgGroup::new("serials").required(true).args(["same", "new"])))]
pub struct ReprintArgs {
    /// The job to print again.
    job_id: String,
    /// The same serials: the same mail pieces again (a label was spoiled).
    #[arg(long)]
    same: bool,
    /// New serials: new mail pieces with the same content.
    #[arg(long)]
    new: bool,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl reprint`.
pub fn reprint(args: ReprintArgs) -> Result<(), Failure> {
    let deadline = args.wait.deadline()?;
    let mut session = Session::open(&args.conn)?;
    let serials = if args.same { "same" } else { "new" };
    let accepted =
        session.call(json!({"op": "reprint", "job_id": args.job_id, "serials": serials}))?;
    let job_id = accepted
        .get("job_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !args.wait.wait || !args.conn.json {
        report_accepted(&accepted, "", args.conn.json);
    }
    if !args.wait.wait {
        return Ok(());
    }
    let printer = accepted
        .get("printer")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let subscriber = subscribe(&session, &job_id, &printer);
    let total = accepted
        .get("label_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut jobs = vec![Watch::new(job_id, total)];
    Waiter::new(subscriber).wait(&mut session, &mut jobs, deadline, None)?;
    finish(&jobs, Some(Value::Object(accepted)), args.conn.json)
}
