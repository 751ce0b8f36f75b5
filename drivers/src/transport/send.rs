//! Sending a job's labels through a [`Transport`] so that none is lost: in order,
//! reconnecting after a fault, and saying exactly which label was in flight.
//!
//! The peers' common failure (`landscape.md` §A.2: "lost or partial jobs", cups#3410,
//! jzebra#153) is a sender that either gives up on a fault or starts the job again
//! from the top. [`send_labels`] does neither. It writes a [`Job`] (a preamble, the
//! labels, a trailer) label by label, each under its own deadline, and on a fault:
//!
//! 1. records a [`Fault`]: the label in flight (the one whose bytes were partly or
//!    wholly written when the error hit, from [`TransportError::written`]), how many of
//!    its bytes went out, at which [`Stage`], and the [`TransportErrorKind`];
//! 2. waits ([`Backoff`]: doubling from a first delay up to a cap, deterministic),
//!    closes and reopens the transport, writes the preamble again (it resynchronises
//!    the printer: ZPL `~JX` drops the partial format the fault left behind);
//! 3. resumes from the first label not known to be complete, so the label in flight
//!    is sent again: every label arrives **at least once**.
//!
//! It gives up after [`RetryPolicy::max_consecutive_faults`] faults with no label
//! completed in between, or when no label has completed for
//! [`RetryPolicy::give_up_after`], and returns what was done ([`SendReport::next`] is
//! where a later attempt resumes). A fault that retrying cannot cure (permissions,
//! configuration) ends it at once.
//!
//! ## What "complete" means
//!
//! Without [`RetryPolicy::confirm`], a label is complete once the transport accepted
//! all of its bytes. On USB and serial links that is close to the truth; over TCP the
//! accepted bytes may still sit in the kernel's send buffer and in the printer's
//! receive window, so a connection reset can lose labels the sender already counted
//! as complete, and the fault then names a later label than the one the printer was
//! reading. `tests/transport_tcp.rs` measures it: with a 16 KiB printer window and the
//! default 64 KiB send buffer, the sender's fault named a label typically 30-60 labels
//! (of about 2 KB) past the one the printer was reading, all of them lost, and a reset
//! after the sender's last write went unnoticed.
//!
//! With a [`Confirm`] query (ZPL `~HQES`: it answers in the error states where `~HS`
//! is silent, `printer-langs.md` §1.5 and §7.3), every label is followed by the query,
//! and the label is complete only when the printer's reply arrives. The printer takes
//! its input in order (a `~` command acts as it is received), so a reply proves it
//! received every byte before the query: received, not printed; "printed" is the
//! caller's status check after the job. Exactly one label is then ever unconfirmed: that label is the one in flight, and
//! the reply (a status report) is handed to [`SendHooks::label_sent`], so the caller
//! sees the printer's state between labels. A missing reply is a
//! [`TransportErrorKind::Timeout`] fault, never a success.
//!
//! This module is pure logic over the trait; time and sleeping come through
//! [`SendHooks`], so the tests drive it with a fake transport and a fake clock.

use super::{Transport, TransportError, TransportErrorKind};
use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// Reconnect delays: `first`, doubling on every call up to `max`; deterministic (no
/// jitter: one worker per printer, so there is no herd to spread out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    first: Duration,
    /// The cap.
    max: Duration,
    /// The delay the next call returns.
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `first` and never above `max` (`first` is clamped to
    /// `max`). A zero `first` means no waiting at all.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let first = first.min(max);
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the following one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to the first delay (after progress).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 200 ms, doubling to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

/// The bytes of one job, cut at label boundaries.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Written first and again after every reopen (the driver's `start_job`: its reset
    /// preamble resynchronises the printer, e.g. ZPL `~JX`).
    pub preamble: &'a [u8],
    /// Each label's bytes, in order (the driver's `write_page` output, one per page).
    pub labels: &'a [&'a [u8]],
    /// Written after the last label (the driver's `end_job`, e.g. Brother's final
    /// print command, PCL's PJL end of job).
    pub trailer: &'a [u8],
}

/// How a reply to a [`Confirm`] query ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyEnd {
    /// After this many ETX (0x03) bytes: 1 for ZPL `~HQES`, 3 for `~HS`.
    Etx(u8),
    /// After exactly this many bytes (fixed-size binary status replies).
    Bytes(usize),
}

impl ReplyEnd {
    /// Whether `reply` is complete.
    pub fn is_complete(self, reply: &[u8]) -> bool {
        match self {
            ReplyEnd::Etx(n) => reply.iter().filter(|&&b| b == 0x03).count() >= usize::from(n),
            ReplyEnd::Bytes(n) => reply.len() >= n,
        }
    }
}

/// A status query sent after every label; its reply confirms that the printer has
/// consumed the label (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// The query bytes (a driver's `query_status()`, e.g. ZPL `~HQES`).
    pub query: &'static [u8],
    /// How the reply ends.
    pub reply_end: ReplyEnd,
    /// How long to wait for the whole reply.
    pub timeout: Duration,
}

/// A reply longer than this is taken as complete (a confused printer must not grow a
/// buffer without bound; any reply at all proves the label was consumed).
const REPLY_MAX: usize = 64 * 1024;

/// When to give up, how long to wait, and how to confirm labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Deadline for writing one label (and the preamble or trailer), before the size
    /// allowance below.
    pub label_timeout: Duration,
    /// The slowest rate, in bytes per second, the link is expected to sustain: each
    /// write's deadline grows by its length at this rate, so a big label on a slow
    /// serial line is not cut short (InvenTree#12873). 0 adds nothing.
    pub min_rate: u32,
    /// Delays between reopen attempts.
    pub backoff: Backoff,
    /// Give up after this many faults in a row with no label completed between them.
    pub max_consecutive_faults: u32,
    /// Give up when no label has completed for this long since a fault.
    pub give_up_after: Duration,
    /// A status query confirming each label, where the printer's language has one.
    pub confirm: Option<Confirm>,
}

impl Default for RetryPolicy {
    /// 30 s per label plus 1 s per 512 bytes, 200 ms → 30 s backoff, give up after 10
    /// faults in a row or 5 minutes without progress, no confirmation query.
    fn default() -> Self {
        RetryPolicy {
            label_timeout: Duration::from_secs(30),
            min_rate: 512,
            backoff: Backoff::default(),
            max_consecutive_faults: 10,
            give_up_after: Duration::from_secs(300),
            confirm: None,
        }
    }
}

impl RetryPolicy {
    /// The deadline for writing `len` bytes starting at `now`.
    pub fn write_deadline(&self, now: Instant, len: usize) -> Instant {
        let allowance = match self.min_rate {
            0 => Duration::ZERO,
            rate => Duration::from_millis((len as u64).saturating_mul(1000) / u64::from(rate)),
        };
        let total = self.label_timeout.saturating_add(allowance);
        now.checked_add(total)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
    }
}

/// Where in the job a fault hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reopening the transport.
    Open,
    /// Writing the preamble.
    Preamble,
    /// Writing a label.
    Label,
    /// Writing the confirmation query or waiting for its reply (the label was
    /// wholly written).
    Confirm,
    /// Writing the trailer.
    Trailer,
}

impl Stage {
    /// A stable lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Preamble => "preamble",
            Stage::Label => "label",
            Stage::Confirm => "confirm",
            Stage::Trailer => "trailer",
        }
    }
}

/// One transport fault during [`send_labels`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The label in flight: the one whose bytes were partly or wholly written when the
    /// error hit. At [`Stage::Open`] and [`Stage::Preamble`] it is the label that was
    /// about to be sent (none of its bytes went out); at [`Stage::Trailer`] it is the
    /// number of labels.
    pub label: usize,
    /// Where the fault hit.
    pub stage: Stage,
    /// Bytes of that label written before the fault: the transport's
    /// [`TransportError::written`] at [`Stage::Label`], the whole label at
    /// [`Stage::Confirm`], 0 otherwise.
    pub written: usize,
    /// The kind of fault.
    pub kind: TransportErrorKind,
    /// The transport's message.
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label {} ({}, {} bytes written): {:?}: {}",
            self.label,
            self.stage.name(),
            self.written,
            self.kind,
            self.message
        )
    }
}

/// How [`send_labels`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every label and the trailer were written (and confirmed, with a [`Confirm`]).
    Complete,
    /// Faults went on for longer than the policy allows; the last one is the last
    /// entry of [`SendReport::faults`].
    GaveUp,
    /// A fault that retrying cannot cure (permissions, configuration).
    Failed,
    /// [`SendHooks`] asked to stop (cancel, pause, shutdown); the trailer was not
    /// written, so a resumed job needs it (a later call with `start` = `next` sends it).
    Stopped,
}

/// What [`send_labels`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The first label not known to be complete: labels `start..next` are done, and a
    /// later attempt resumes here. Equals the number of labels when all are done.
    pub next: usize,
    /// Every fault, in order.
    pub faults: Vec<Fault>,
    /// Bytes the transport accepted, resends and queries included.
    pub bytes_written: u64,
}

/// The caller's side of [`send_labels_with`]: the clock, sleeping, and progress.
/// Every method has a default, so `impl SendHooks for T {}` is real time with no
/// progress reports.
pub trait SendHooks {
    /// The current time.
    fn now(&mut self) -> Instant {
        Instant::now()
    }

    /// Waits `delay` before a reopen; `Break` stops sending (shutdown during an outage).
    fn sleep(&mut self, delay: Duration) -> ControlFlow<()> {
        std::thread::sleep(delay);
        ControlFlow::Continue(())
    }

    /// Label `index` is complete; `reply` is the confirmation reply (a status report
    /// the caller can parse), empty without [`Confirm`]. `Break` stops at this label
    /// boundary (the worker's safe point).
    fn label_sent(&mut self, index: usize, reply: &[u8]) -> ControlFlow<()> {
        let _ = (index, reply);
        ControlFlow::Continue(())
    }

    /// A fault was recorded (for logs and events).
    fn fault(&mut self, fault: &Fault) {
        let _ = fault;
    }
}

/// Real time, no progress reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealTime;

impl SendHooks for RealTime {}

/// Sends `job.labels[start..]` on an **open** transport (see the module docs), in real
/// time.
pub fn send_labels(
    transport: &mut dyn Transport,
    job: &Job<'_>,
    start: usize,
    policy: &RetryPolicy,
) -> SendReport {
    send_labels_with(transport, job, start, policy, &mut RealTime)
}

/// [`send_labels`] with the caller's clock, sleep and progress hooks.
///
/// The transport must be open; the preamble is written first. A `start` past the last
/// label sends only the preamble and trailer.
pub fn send_labels_with(
    transport: &mut dyn Transport,
    job: &Job<'_>,
    start: usize,
    policy: &RetryPolicy,
    hooks: &mut dyn SendHooks,
) -> SendReport {
    Sender {
        transport,
        job,
        policy,
        hooks,
        report: SendReport {
            outcome: Outcome::Complete,
            next: start.min(job.labels.len()),
            faults: Vec::new(),
            bytes_written: 0,
        },
        consecutive: 0,
        trouble_since: None,
        backoff: {
            let mut b = policy.backoff;
            b.reset();
            b
        },
        reply: Vec::new(),
    }
    .run()
}

/// The state of one [`send_labels_with`] call.
struct Sender<'s, 'j> {
    /// The link.
    transport: &'s mut dyn Transport,
    /// What to send.
    job: &'s Job<'j>,
    /// When to give up.
    policy: &'s RetryPolicy,
    /// Clock and progress.
    hooks: &'s mut dyn SendHooks,
    /// Built up as we go; `report.next` is the label to send next.
    report: SendReport,
    /// Faults since the last completed label.
    consecutive: u32,
    /// When the current run of faults began (`None` while things go well).
    trouble_since: Option<Instant>,
    /// Delays between reopens; reset by progress.
    backoff: Backoff,
    /// The last confirmation reply.
    reply: Vec<u8>,
}

/// What to do after recording a fault.
enum Next {
    /// Reopen and carry on.
    Reopen,
    /// Stop with this outcome.
    Stop(Outcome),
}

impl Sender<'_, '_> {
    fn run(mut self) -> SendReport {
        /// Records a fault, then reopens (`continue`) or stops (`break`).
        macro_rules! fault {
            ($reopen:ident, $stage:expr, $written:expr, $err:expr) => {
                match self.fault($stage, $written, $err) {
                    Next::Reopen => {
                        $reopen = true;
                        continue;
                    }
                    Next::Stop(outcome) => {
                        self.report.outcome = outcome;
                        break;
                    }
                }
            };
        }
        let labels = self.job.labels;
        let mut reopen = false;
        let mut preamble = true;
        loop {
            if reopen {
                if let Some(outcome) = self.should_give_up() {
                    self.report.outcome = outcome;
                    break;
                }
                let delay = self.backoff.next_delay();
                if self.hooks.sleep(delay).is_break() {
                    self.report.outcome = Outcome::Stopped;
                    break;
                }
                // Every reopen follows a fault: drop what is still queued.
                self.transport.abort();
                if let Err(e) = self.transport.open() {
                    fault!(reopen, Stage::Open, 0, e);
                }
                reopen = false;
                preamble = true;
            }
            if preamble {
                if let Err(e) = self.write(self.job.preamble) {
                    fault!(reopen, Stage::Preamble, 0, e);
                }
                preamble = false;
            }
            let next = self.report.next;
            let Some(label) = labels.get(next) else {
                if let Err(e) = self.write(self.job.trailer) {
                    fault!(reopen, Stage::Trailer, 0, e);
                }
                self.report.outcome = Outcome::Complete;
                break;
            };
            if let Err((stage, written, e)) = self.send_label(label) {
                fault!(reopen, stage, written, e);
            }
            // Progress: the run of faults, if any, is over.
            self.report.next = next + 1;
            self.consecutive = 0;
            self.trouble_since = None;
            self.backoff.reset();
            if self.hooks.label_sent(next, &self.reply).is_break() {
                self.report.outcome = Outcome::Stopped;
                break;
            }
        }
        self.report
    }

    /// Writes one label and, with [`Confirm`], waits for the reply to the query after
    /// it. On error: the stage, the bytes of the label written, the error.
    fn send_label(&mut self, label: &[u8]) -> Result<(), (Stage, usize, TransportError)> {
        self.reply.clear();
        self.write(label).map_err(|e| {
            let written = e.written.min(label.len());
            (Stage::Label, written, e)
        })?;
        let Some(confirm) = self.policy.confirm else {
            return Ok(());
        };
        self.confirm(&confirm)
            .map_err(|e| (Stage::Confirm, label.len(), e))
    }

    /// Sends the query and reads until the reply is complete or the timeout passes.
    fn confirm(&mut self, confirm: &Confirm) -> Result<(), TransportError> {
        let start = self.hooks.now();
        let deadline = start + confirm.timeout;
        self.transport.write_all(confirm.query, deadline)?;
        self.report.bytes_written += confirm.query.len() as u64;
        let mut buf = [0u8; 512];
        while !confirm.reply_end.is_complete(&self.reply) && self.reply.len() < REPLY_MAX {
            let remaining = deadline.saturating_duration_since(self.hooks.now());
            let n = if remaining.is_zero() {
                0
            } else {
                self.transport.read_reply(&mut buf, remaining)?
            };
            if n == 0 {
                let got = if self.reply.is_empty() {
                    "no reply".to_owned()
                } else {
                    format!("an incomplete reply ({} bytes)", self.reply.len())
                };
                return Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    self.transport.describe(),
                    format!(
                        "{got} to the confirmation query within {} ms (the printer may be \
                         paused, out of media or its head open: query its status)",
                        confirm.timeout.as_millis()
                    ),
                ));
            }
            self.reply.extend_from_slice(&buf[..n.min(buf.len())]);
        }
        Ok(())
    }

    /// Writes `bytes` (nothing for an empty slice) under the policy's deadline.
    fn write(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let deadline = self.policy.write_deadline(self.hooks.now(), bytes.len());
        match self.transport.write_all(bytes, deadline) {
            Ok(()) => {
                self.report.bytes_written += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.report.bytes_written += e.written.min(bytes.len()) as u64;
                Err(e)
            }
        }
    }

    /// Records a fault and decides whether to go on.
    fn fault(&mut self, stage: Stage, written: usize, e: TransportError) -> Next {
        let fault = Fault {
            label: self.report.next,
            stage,
            written,
            kind: e.kind,
            message: e.to_string(),
        };
        self.hooks.fault(&fault);
        self.report.faults.push(fault);
        if !e.kind.is_retriable() {
            return Next::Stop(Outcome::Failed);
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.trouble_since.is_none() {
            self.trouble_since = Some(self.hooks.now());
        }
        Next::Reopen
    }

    /// `Some` when the fault streak has gone on too long.
    fn should_give_up(&mut self) -> Option<Outcome> {
        if self.consecutive >= self.policy.max_consecutive_faults {
            return Some(Outcome::GaveUp);
        }
        let since = self.trouble_since?;
        (self.hooks.now().saturating_duration_since(since) >= self.policy.give_up_after)
            .then_some(Outcome::GaveUp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    // -----------------------------------------------------------------------------------
    // Backoff
    // -----------------------------------------------------------------------------------

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let got: Vec<_> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000),
                ms(1000)
            ]
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
        assert_eq!(b.next_delay(), ms(200));
    }

    #[test]
    fn backoff_edge_cases() {
        let ms = Duration::from_millis;
        // 0: a first delay above the cap is clamped.
        let mut b = Backoff::new(ms(500), ms(300));
        assert_eq!((b.next_delay(), b.next_delay()), (ms(300), ms(300)));
        // 1: zero means never wait.
        let mut b = Backoff::new(Duration::ZERO, ms(300));
        assert!((0..5).all(|_| b.next_delay().is_zero()));
        // 2: no overflow near Duration::MAX.
        let mut b = Backoff::new(Duration::MAX / 3, Duration::MAX);
        for _ in 0..5 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::MAX);
        // 3: the default.
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(), ms(200));
        assert_eq!((0..20).map(|_| b.next_delay()).max(), Some(ms(30_000)));
    }

    #[test]
    fn reply_ends() {
        assert!(!ReplyEnd::Etx(1).is_complete(b"\x02PRINTER STATUS"));
        assert!(ReplyEnd::Etx(1).is_complete(b"\x02PRINTER STATUS\x03"));
        assert!(!ReplyEnd::Etx(3).is_complete(b"\x02a\x03\r\n\x02b\x03\r\n"));
        assert!(ReplyEnd::Etx(3).is_complete(b"\x02a\x03\r\n\x02b\x03\r\n\x02c\x03"));
        assert!(!ReplyEnd::Bytes(32).is_complete(&[0; 31]));
        assert!(ReplyEnd::Bytes(32).is_complete(&[0; 32]));
    }

    #[test]
    fn write_deadline_grows_with_size() {
        let now = Instant::now();
        let p = RetryPolicy {
            label_timeout: Duration::from_secs(2),
            min_rate: 1000,
            ..RetryPolicy::default()
        };
        assert_eq!(p.write_deadline(now, 0), now + Duration::from_secs(2));
        assert_eq!(p.write_deadline(now, 5000), now + Duration::from_secs(7));
        let flat = RetryPolicy { min_rate: 0, ..p };
        assert_eq!(flat.write_deadline(now, 5000), now + Duration::from_secs(2));
    }

    // -----------------------------------------------------------------------------------
    // A fake transport and a fake clock
    // -----------------------------------------------------------------------------------

    /// An in-memory link that fails at chosen byte offsets of everything it accepts.
    #[derive(Default)]
    struct Fake {
        /// Every byte accepted, over all connections.
        accepted: Vec<u8>,
        /// What each connection received.
        connections: Vec<Vec<u8>>,
        /// Offsets into `accepted` at which a write fails: the bytes before the offset
        /// are accepted, then the write fails (once per offset).
        fail_at: VecDeque<(usize, TransportErrorKind)>,
        /// Results of the coming `open` calls (Ok when empty).
        open_results: VecDeque<Result<(), TransportErrorKind>>,
        /// Whether the link is open.
        open: bool,
        /// Replies to queue whenever a write ends with this query.
        query: Option<(&'static [u8], Vec<u8>)>,
        /// Reply bytes waiting to be read.
        pending: VecDeque<u8>,
        /// Queries to leave unanswered (counted down).
        silent_queries: usize,
        /// Close calls.
        closes: usize,
    }

    impl Fake {
        fn open_now() -> Fake {
            Fake {
                open: true,
                connections: vec![Vec::new()],
                ..Fake::default()
            }
        }
    }

    impl Transport for Fake {
        fn describe(&self) -> String {
            "fake://".into()
        }
        fn open(&mut self) -> Result<(), TransportError> {
            if let Some(Err(kind)) = self.open_results.pop_front() {
                return Err(TransportError::new(kind, "fake://", "open failed"));
            }
            self.open = true;
            self.pending.clear();
            self.connections.push(Vec::new());
            Ok(())
        }
        fn write_all(&mut self, bytes: &[u8], _deadline: Instant) -> Result<(), TransportError> {
            if !self.open {
                return Err(TransportError::new(
                    TransportErrorKind::Disconnected,
                    "fake://",
                    "not open",
                ));
            }
            let room = match self.fail_at.front() {
                Some(&(at, _)) => at.saturating_sub(self.accepted.len()),
                None => usize::MAX,
            };
            let take = bytes.len().min(room);
            self.accepted.extend_from_slice(&bytes[..take]);
            if let Some(c) = self.connections.last_mut() {
                c.extend_from_slice(&bytes[..take]);
            }
            if take < bytes.len() {
                let (_, kind) = self.fail_at.pop_front().unwrap();
                self.open = false;
                return Err(TransportError::new(kind, "fake://", "cut").with_written(take));
            }
            if let Some((query, reply)) = &self.query {
                if bytes == *query {
                    if self.silent_queries > 0 {
                        self.silent_queries -= 1;
                    } else {
                        self.pending.extend(reply.iter());
                    }
                }
            }
            Ok(())
        }
        fn read_reply(
            &mut self,
            buf: &mut [u8],
            _timeout: Duration,
        ) -> Result<usize, TransportError> {
            let mut n = 0;
            // Hand the reply over in pieces of at most 4 bytes, to exercise reassembly.
            while n < buf.len().min(4) {
                match self.pending.pop_front() {
                    Some(b) => {
                        buf[n] = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            Ok(n)
        }
        fn close(&mut self) {
            self.open = false;
            self.closes += 1;
        }
    }

    /// A clock that only moves when slept on.
    struct FakeClock {
        now: Instant,
        sleeps: Vec<Duration>,
        sent: Vec<usize>,
        stop_after: Option<usize>,
    }

    impl FakeClock {
        fn new() -> FakeClock {
            FakeClock {
                now: Instant::now(),
                sleeps: Vec::new(),
                sent: Vec::new(),
                stop_after: None,
            }
        }
    }

    impl SendHooks for FakeClock {
        fn now(&mut self) -> Instant {
            self.now
        }
        fn sleep(&mut self, delay: Duration) -> ControlFlow<()> {
            self.sleeps.push(delay);
            self.now += delay;
            ControlFlow::Continue(())
        }
        fn label_sent(&mut self, index: usize, _reply: &[u8]) -> ControlFlow<()> {
            self.sent.push(index);
            if self.stop_after == Some(index) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }

    const PRE: &[u8] = b"~JX";

    fn labels(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("^XA^FD#{i:05}^FS^XZ\n").into_bytes())
            .collect()
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(800)),
            ..RetryPolicy::default()
        }
    }

    fn run(
        fake: &mut Fake,
        labels: &[Vec<u8>],
        start: usize,
        policy: &RetryPolicy,
    ) -> (SendReport, FakeClock) {
        let refs: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
        let job = Job {
            preamble: PRE,
            labels: &refs,
            trailer: b"END",
        };
        let mut clock = FakeClock::new();
        let report = send_labels_with(fake, &job, start, policy, &mut clock);
        (report, clock)
    }

    /// The whole job as sent without faults.
    fn clean(labels: &[Vec<u8>]) -> Vec<u8> {
        let mut v = PRE.to_vec();
        labels.iter().for_each(|l| v.extend_from_slice(l));
        v.extend_from_slice(b"END");
        v
    }

    /// Offset in the clean stream of byte `offset` of label `index`.
    fn at(labels: &[Vec<u8>], index: usize, offset: usize) -> usize {
        PRE.len() + labels[..index].iter().map(Vec::len).sum::<usize>() + offset
    }

    // -----------------------------------------------------------------------------------
    // send_labels
    // -----------------------------------------------------------------------------------

    #[test]
    fn no_faults() {
        let l = labels(5);
        let mut fake = Fake::open_now();
        let (report, clock) = run(&mut fake, &l, 0, &policy());
        assert_eq!(report.outcome, Outcome::Complete);
        assert_eq!(report.next, 5);
        assert!(report.faults.is_empty());
        assert_eq!(fake.accepted, clean(&l));
        assert_eq!(report.bytes_written, clean(&l).len() as u64);
        assert_eq!(clock.sent, [0, 1, 2, 3, 4]);
        assert!(clock.sleeps.is_empty());
    }

    #[test]
    fn a_cut_mid_label_resends_that_label_after_the_preamble() {
        let l = labels(5);
        let mut fake = Fake::open_now();
        fake.fail_at
            .push_back((at(&l, 2, 7), TransportErrorKind::Disconnected));
        let (report, clock) = run(&mut fake, &l, 0, &policy());
        assert_eq!(report.outcome, Outcome::Complete);
        assert_eq!(
            report.faults,
            [Fault {
                label: 2,
                stage: Stage::Label,
                written: 7,
                kind: TransportErrorKind::Disconnected,
                message: "fake://: cut".into(),
            }]
        );
        // Connection 1: preamble, labels 0-1, 7 bytes of label 2.
        let mut first = PRE.to_vec();
        first.extend(l[0].iter().chain(&l[1]).chain(&l[2][..7]));
        assert_eq!(fake.connections[0], first);
        // Connection 2: preamble, labels 2-4, trailer.
        let mut second = PRE.to_vec();
        l[2..].iter().for_each(|x| second.extend_from_slice(x));
        second.extend_from_slice(b"END");
        assert_eq!(fake.connections[1], second);
        assert_eq!(clock.sleeps, [Duration::from_millis(100)]);
        assert_eq!(clock.sent, [0, 1, 2, 3, 4]);
        assert_eq!(fake.closes, 1);
    }

    #[test]
    fn fault_positions() {
        use Stage::*;
        use TransportErrorKind::Disconnected as D;
        let l = labels(4);
        let len = l[0].len();
        // (fail offset in the clean stream, expected label, stage, written)
        let cases = [
            // 0: inside the preamble.
            (1, 0, Preamble, 0),
            // 1: at the very start of label 0 (preamble accepted whole).
            (at(&l, 0, 0), 0, Label, 0),
            // 2: the last byte of label 1 missing.
            (at(&l, 1, len - 1), 1, Label, len - 1),
            // 3: right after label 1: label 1 is complete, label 2 is in flight.
            (at(&l, 2, 0), 2, Label, 0),
            // 4: in the trailer.
            (at(&l, 4, 1), 4, Trailer, 0),
        ];
        for (i, (offset, label, stage, written)) in cases.into_iter().enumerate() {
            let mut fake = Fake::open_now();
            fake.fail_at.push_back((offset, D));
            let (report, _) = run(&mut fake, &l, 0, &policy());
            assert_eq!(report.outcome, Outcome::Complete, "case {i}");
            let f = &report.faults[..];
            assert_eq!(f.len(), 1, "case {i}");
            assert_eq!(
                (f[0].label, f[0].stage, f[0].written),
                (label, stage, written),
                "case {i}"
            );
            // Every label arrived, in order, after the last preamble.
            let last = fake.connections.last().unwrap();
            let mut tail = PRE.to_vec();
            l[label.min(4)..]
                .iter()
                .for_each(|x| tail.extend_from_slice(x));
            tail.extend_from_slice(b"END");
            assert_eq!(last, &tail, "case {i}");
        }
    }

    #[test]
    fn many_cuts_every_label_at_least_once() {
        let l = labels(200);
        let mut fake = Fake::open_now();
        // Cut every 97 bytes of the accepted stream: faults in labels, preambles, trailer.
        for k in 1..=30 {
            fake.fail_at
                .push_back((k * 97, TransportErrorKind::Disconnected));
        }
        let p = RetryPolicy {
            max_consecutive_faults: 3,
            ..policy()
        };
        let (report, clock) = run(&mut fake, &l, 0, &p);
        assert_eq!(report.outcome, Outcome::Complete, "{:?}", report.faults);
        assert_eq!(report.faults.len(), 30);
        assert_eq!(report.bytes_written as usize, fake.accepted.len());
        assert_eq!(clock.sent, (0..200).collect::<Vec<_>>());
        // Each fault names the label whose bytes the cut fell in, and its byte count.
        let mut expected_next = 0;
        for (conn, fault) in fake.connections.iter().zip(&report.faults) {
            let body = conn.strip_prefix(PRE).unwrap_or(&[]);
            let mut rest = body;
            let mut label = expected_next;
            while label < l.len() && rest.starts_with(&l[label]) {
                rest = &rest[l[label].len()..];
                label += 1;
            }
            assert_eq!(fault.label, label, "{fault}");
            if fault.stage == Stage::Label {
                assert_eq!(fault.written, rest.len(), "{fault}");
                assert!(l[label].starts_with(rest));
            }
            expected_next = label;
        }
    }

    #[test]
    fn resumes_from_start() {
        let l = labels(5);
        let mut fake = Fake::open_now();
        let (report, clock) = run(&mut fake, &l, 3, &policy());
        assert_eq!(report.next, 5);
        let mut v = PRE.to_vec();
        v.extend(l[3].iter().chain(&l[4]).chain(b"END"));
        assert_eq!(fake.accepted, v);
        assert_eq!(clock.sent, [3, 4]);
        // A start past the end sends preamble and trailer only.
        let mut fake = Fake::open_now();
        let (report, _) = run(&mut fake, &l, 99, &policy());
        assert_eq!((report.outcome, report.next), (Outcome::Complete, 5));
        assert_eq!(fake.accepted, b"~JXEND");
    }

    #[test]
    fn open_failures_back_off_then_give_up() {
        use TransportErrorKind::*;
        let l = labels(3);
        let mut fake = Fake::open_now();
        fake.fail_at.push_back((at(&l, 1, 3), Disconnected));
        fake.open_results
            .extend([Err(Refused), Err(Timeout), Err(NotFound), Err(Refused)]);
        let p = RetryPolicy {
            max_consecutive_faults: 4,
            ..policy()
        };
        let (report, clock) = run(&mut fake, &l, 0, &p);
        assert_eq!(report.outcome, Outcome::GaveUp);
        assert_eq!(report.next, 1);
        let kinds: Vec<_> = report
            .faults
            .iter()
            .map(|f| (f.stage, f.kind, f.label))
            .collect();
        assert_eq!(
            kinds,
            [
                (Stage::Label, Disconnected, 1),
                (Stage::Open, Refused, 1),
                (Stage::Open, Timeout, 1),
                (Stage::Open, NotFound, 1),
            ]
        );
        let ms = Duration::from_millis;
        assert_eq!(clock.sleeps, [ms(100), ms(200), ms(400)]);
    }

    #[test]
    fn progress_resets_the_streak_and_the_backoff() {
        use TransportErrorKind::*;
        let l = labels(6);
        let mut fake = Fake::open_now();
        // Cut 1: 2 bytes into label 1; then one refused reopen.
        let cut1 = at(&l, 1, 2);
        fake.fail_at.push_back((cut1, Disconnected));
        fake.open_results.extend([Err(Refused), Ok(())]);
        // Cut 2: the third connection completes labels 1 and 2, then is cut 1 byte into
        // label 3; then one more refused reopen.
        let cut2 = cut1 + PRE.len() + l[1].len() + l[2].len() + 1;
        fake.fail_at.push_back((cut2, Disconnected));
        fake.open_results.push_back(Err(Refused));
        let p = RetryPolicy {
            max_consecutive_faults: 3,
            ..policy()
        };
        let (report, clock) = run(&mut fake, &l, 0, &p);
        // Four faults, but never three in a row: progress in between reset the count.
        assert_eq!(report.outcome, Outcome::Complete, "{:#?}", report.faults);
        let f: Vec<_> = report
            .faults
            .iter()
            .map(|f| (f.label, f.stage, f.written))
            .collect();
        assert_eq!(
            f,
            [
                (1, Stage::Label, 2),
                (1, Stage::Open, 0),
                (3, Stage::Label, 1),
                (3, Stage::Open, 0),
            ]
        );
        let ms = Duration::from_millis;
        assert_eq!(clock.sleeps, [ms(100), ms(200), ms(100), ms(200)]);
        assert_eq!(clock.sent, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn gives_up_after_time_without_progress() {
        let l = labels(3);
        let mut fake = Fake::open_now();
        fake.fail_at
            .push_back((at(&l, 0, 1), TransportErrorKind::Disconnected));
        fake.open_results
            .extend((0..100).map(|_| Err(TransportErrorKind::Refused)));
        let p = RetryPolicy {
            max_consecutive_faults: u32::MAX,
            give_up_after: Duration::from_secs(5),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(2)),
            ..policy()
        };
        let (report, clock) = run(&mut fake, &l, 0, &p);
        assert_eq!(report.outcome, Outcome::GaveUp);
        assert_eq!(report.next, 0);
        // 0.5 + 1 + 2 + 2 = 5.5 s ≥ 5 s: four reopen attempts.
        assert_eq!(clock.sleeps.len(), 4);
        assert_eq!(report.faults.len(), 5);
    }

    #[test]
    fn non_retriable_faults_stop_at_once() {
        let l = labels(3);
        let mut fake = Fake::open_now();
        fake.fail_at
            .push_back((at(&l, 1, 0), TransportErrorKind::PermissionDenied));
        let (report, clock) = run(&mut fake, &l, 0, &policy());
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(report.next, 1);
        assert_eq!(report.faults.len(), 1);
        assert!(clock.sleeps.is_empty());
    }

    #[test]
    fn hooks_stop_at_a_label_boundary() {
        let l = labels(5);
        let mut fake = Fake::open_now();
        let refs: Vec<&[u8]> = l.iter().map(Vec::as_slice).collect();
        let job = Job {
            preamble: PRE,
            labels: &refs,
            trailer: b"END",
        };
        let mut clock = FakeClock::new();
        clock.stop_after = Some(1);
        let report = send_labels_with(&mut fake, &job, 0, &policy(), &mut clock);
        assert_eq!((report.outcome, report.next), (Outcome::Stopped, 2));
        assert!(!fake.accepted.ends_with(b"END"));
    }

    const REPLY: &[u8] = b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   0 00000000 00000000\r\n   WARNINGS: 0 00000000 00000000\r\n\x03";

    fn confirming() -> RetryPolicy {
        RetryPolicy {
            confirm: Some(Confirm {
                query: b"~HQES",
                reply_end: ReplyEnd::Etx(1),
                timeout: Duration::from_secs(1),
            }),
            ..policy()
        }
    }

    #[test]
    fn confirmation_queries_follow_every_label() {
        let l = labels(3);
        let mut fake = Fake::open_now();
        fake.query = Some((b"~HQES", REPLY.to_vec()));
        struct Replies(Vec<Vec<u8>>);
        impl SendHooks for Replies {
            fn label_sent(&mut self, _: usize, reply: &[u8]) -> ControlFlow<()> {
                self.0.push(reply.to_vec());
                ControlFlow::Continue(())
            }
        }
        let refs: Vec<&[u8]> = l.iter().map(Vec::as_slice).collect();
        let job = Job {
            preamble: PRE,
            labels: &refs,
            trailer: b"",
        };
        let mut replies = Replies(Vec::new());
        let report = send_labels_with(&mut fake, &job, 0, &confirming(), &mut replies);
        assert_eq!(report.outcome, Outcome::Complete);
        assert_eq!(replies.0, vec![REPLY.to_vec(); 3]);
        let mut v = PRE.to_vec();
        l.iter().for_each(|x| {
            v.extend_from_slice(x);
            v.extend_from_slice(b"~HQES");
        });
        assert_eq!(fake.accepted, v);
    }

    #[test]
    fn a_silent_printer_is_a_timeout_and_the_label_is_resent() {
        let l = labels(3);
        let mut fake = Fake::open_now();
        fake.query = Some((b"~HQES", REPLY.to_vec()));
        // The first two queries go unanswered: label 0 is in flight twice.
        fake.silent_queries = 2;
        let (report, clock) = run(&mut fake, &l, 0, &confirming());
        assert_eq!(report.outcome, Outcome::Complete);
        let f: Vec<_> = report
            .faults
            .iter()
            .map(|f| (f.label, f.stage, f.written, f.kind))
            .collect();
        let len = l[0].len();
        assert_eq!(
            f,
            [
                (0, Stage::Confirm, len, TransportErrorKind::Timeout),
                (0, Stage::Confirm, len, TransportErrorKind::Timeout),
            ]
        );
        assert!(report.faults[0]
            .message
            .contains("no reply to the confirmation query"));
        assert_eq!(clock.sent, [0, 1, 2]);
    }
}
