//! The spool: a durable SQLite store for jobs, their labels, IMb serials and the print log.
//!
//! What it guarantees, and why:
//!
//! - **An accepted job survives any crash.** Accepting a job writes the job, all its
//!   labels and their IMb serials in one `BEGIN IMMEDIATE` transaction on a database in
//!   WAL mode with `synchronous=FULL`, so once [`Spool::accept_job`] returns `Ok` the
//!   commit is on disk (DESIGN.md, "Decisions already made": the reply is sent only
//!   after the commit). A crash before the commit leaves no trace of the job and no
//!   serial used.
//! - **An IMb serial is never used twice.** Serials come from a persistent counter per
//!   Mailer ID (`serial_ranges.next`) inside a range the operator configures, so several
//!   hosts can share one Mailer ID by giving each its own range (DESIGN.md, "IMb serial
//!   numbers"; Informed Visibility needs each IMb unique for 45 days). The counter only
//!   moves forward: cancelled jobs keep their serials, a range can be added or extended
//!   but never moved back under `next`, and a unique index on `(mailer_id, serial)` in
//!   `labels` backs this up. When fewer serials remain than a threshold, acceptance says
//!   so in [`Accepted::warnings`]; when too few remain it refuses with
//!   [`SpoolError::RangeExhausted`] and allocates nothing.
//! - **Submitting is idempotent.** A client job id seen before returns the stored answer
//!   (`replayed = true`) and allocates nothing; the same id with a different request is
//!   [`SpoolError::IdConflict`].
//! - **Every label's state is known after a crash.** Labels go queued → sent →
//!   printed/failed (or cancelled). [`Spool::unfinished_jobs`] gives, per job, the first
//!   label the printer has not confirmed and the labels left in `sent`: those were
//!   possibly printed, and only the caller (with the printer's counters) can decide
//!   whether to print them again.
//! - **Printed pieces can be matched back.** Confirming a label writes a `print_log` row:
//!   serial ↔ tracking code ↔ job ↔ printer ↔ recipient ↔ time.
//!
//! The spool is pure with respect to the clock: every call that records a time takes
//! `now_ms` (Unix milliseconds) from the caller. SQLite is blocking, and the spool runs
//! it on the caller's thread: the server calls it from a dedicated thread, never from
//! an async task. Several [`Spool`] handles (threads or processes) may share one file;
//! writers queue on SQLite's lock for up to the busy timeout.
//!
//! Not covered yet: print-log retention and CSV export, reprint with the same or new
//! serials, and priorities (the scheduler's issue).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::encode::imb::{EncodeError, Routing, Tracking};

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Version 1 of the schema. `STRICT` tables so SQLite rejects a wrong type instead of
/// storing it; the CHECKs keep states and ranges sane for anyone editing with `sqlite3`.
const SCHEMA_V1: &str = "
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    printer    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'done', 'cancelled')),
    request    TEXT NOT NULL,
    reply      TEXT NOT NULL
) STRICT;
CREATE TABLE labels (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    state      TEXT NOT NULL
               CHECK (state IN ('queued', 'sent', 'printed', 'failed', 'cancelled')),
    mailer_id  TEXT,
    serial     INTEGER,
    tracking   TEXT,
    routing    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    reason     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
) STRICT;
CREATE UNIQUE INDEX labels_serial ON labels (mailer_id, serial) WHERE serial IS NOT NULL;
CREATE INDEX labels_open ON labels (state) WHERE state IN ('queued', 'sent');
CREATE TABLE serial_ranges (
    mailer_id TEXT PRIMARY KEY,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    next      INTEGER NOT NULL,
    CHECK (first <= last AND first <= next AND next <= last + 1)
) STRICT;
CREATE TABLE print_log (
    printed_at INTEGER NOT NULL,
    job_id     TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    printer    TEXT NOT NULL,
    mailer_id  TEXT,
    serial     INTEGER,
    tracking   TEXT,
    recipient  TEXT NOT NULL
) STRICT;
CREATE INDEX print_log_time ON print_log (printed_at);
CREATE INDEX print_log_serial ON print_log (mailer_id, serial);
";

/// The longest client job id accepted.
const MAX_JOB_ID_LEN: usize = 128;

/// An error from the spool. Messages are lowercase, name the subject and end with a
/// hint where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The database file could not be opened or set up.
    #[error(
        "spool {path}: cannot open: {source} (check that the directory exists and is writable)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file was written by a newer labeld.
    #[error("spool schema version {found} is newer than this labeld understands ({supported}) (upgrade labeld or point it at another spool file)")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// WAL could not be turned on (for example on a file system without shared memory).
    #[error(
        "spool: journal mode is {found:?}, not \"wal\" (put the spool on a local file system)"
    )]
    NotWal {
        /// The journal mode SQLite reported.
        found: String,
    },
    /// A database operation failed.
    #[error("spool database error: {0} (if it says \"database is locked\", another process held the spool longer than the busy timeout)")]
    Sqlite(#[from] rusqlite::Error),
    /// A value read back from the database is not what this code writes.
    #[error("spool data is corrupt: {what} (inspect the file with sqlite3)")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
    /// A Mailer ID that is not 6 digits starting 0-8 or 9 digits starting 9.
    #[error("mailer id {mailer_id:?} is invalid: expected 6 digits starting with 0-8 or 9 digits starting with 9")]
    BadMailerId {
        /// The Mailer ID given.
        mailer_id: String,
    },
    /// A serial range that does not fit the Mailer ID.
    #[error("serial range {first}..={last} for mailer id {mailer_id} is invalid: it must satisfy first <= last <= {max}")]
    BadRange {
        /// The Mailer ID.
        mailer_id: String,
        /// First serial given.
        first: u64,
        /// Last serial given.
        last: u64,
        /// Largest serial for this Mailer ID (999999999 for 6 digits, 999999 for 9).
        max: u64,
    },
    /// A new range would end before serials already handed out.
    #[error("serial range for mailer id {mailer_id} cannot end at {last}: serials up to {used_up_to} are already used (a range can only be extended or moved forward)")]
    RangeBehindNext {
        /// The Mailer ID.
        mailer_id: String,
        /// Last serial given.
        last: u64,
        /// The highest serial that may have been used (`next - 1`).
        used_up_to: u64,
    },
    /// A label uses a Mailer ID that has no configured range.
    #[error("mailer id {mailer_id} has no serial range (configure one for this host first)")]
    NoRange {
        /// The Mailer ID.
        mailer_id: String,
    },
    /// Not enough serials left in the range; nothing was allocated.
    #[error("serial range for mailer id {mailer_id} is exhausted: {left} left, {wanted} wanted (extend the range or configure a new one)")]
    RangeExhausted {
        /// The Mailer ID.
        mailer_id: String,
        /// Serials left.
        left: u64,
        /// Serials the job needs.
        wanted: u64,
    },
    /// A client job id reused with a different request.
    #[error("job id {job_id:?} was already used for a different request (choose a new id, or resend the original request unchanged)")]
    IdConflict {
        /// The job id.
        job_id: String,
    },
    /// A client job id that cannot be stored.
    #[error("job id {job_id:?} is invalid: {reason}")]
    BadJobId {
        /// The job id.
        job_id: String,
        /// Why.
        reason: &'static str,
    },
    /// The job's request is not JSON.
    #[error("job request is not valid json: {0}")]
    BadRequestJson(#[source] serde_json::Error),
    /// A job without labels.
    #[error("job has no labels (a job needs at least one)")]
    NoLabels,
    /// A label's IMb fields or routing code are invalid.
    #[error("label {index}: {source}")]
    Imb {
        /// 0-based label index.
        index: u32,
        /// The encoder's error, with its USPS class.
        source: EncodeError,
    },
    /// No such job.
    #[error("job {job_id:?} is not in the spool")]
    UnknownJob {
        /// The job id.
        job_id: String,
    },
    /// No such label.
    #[error("job {job_id:?} has no label {index}")]
    UnknownLabel {
        /// The job id.
        job_id: String,
        /// 0-based label index.
        index: u32,
    },
    /// A state change that the label's current state does not allow.
    #[error("job {job_id:?} label {index}: cannot go from {from} to {to}")]
    BadTransition {
        /// The job id.
        job_id: String,
        /// 0-based label index.
        index: u32,
        /// The label's state.
        from: LabelState,
        /// The state asked for.
        to: LabelState,
    },
}

/// When acceptance warns that a range is running low.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowWater {
    /// Fewer than this percentage of the range left (rounded up).
    Percent(u8),
    /// Fewer than this many serials left.
    Count(u64),
}

/// Settings for [`Spool::open_with`].
#[derive(Clone, Debug)]
pub struct SpoolOptions {
    /// How long a write waits for another handle's transaction before failing.
    pub busy_timeout: Duration,
    /// When to add [`Warning::LowWater`] to an acceptance.
    pub low_water: LowWater,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            busy_timeout: Duration::from_secs(5),
            low_water: LowWater::Percent(10),
        }
    }
}

/// The state of one label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelState {
    /// Waiting for its printer.
    Queued,
    /// Bytes handed to the transport; not yet confirmed.
    Sent,
    /// Confirmed printed.
    Printed,
    /// Gave up (the reason is stored).
    Failed,
    /// Cancelled before it was sent; its serial stays used.
    Cancelled,
}

impl LabelState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelState::Queued => "queued",
            LabelState::Sent => "sent",
            LabelState::Printed => "printed",
            LabelState::Failed => "failed",
            LabelState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<LabelState, SpoolError> {
        Ok(match text {
            "queued" => LabelState::Queued,
            "sent" => LabelState::Sent,
            "printed" => LabelState::Printed,
            "failed" => LabelState::Failed,
            "cancelled" => LabelState::Cancelled,
            other => {
                return Err(SpoolError::Corrupt {
                    what: format!("unknown label state {other:?}"),
                })
            }
        })
    }
}

impl std::fmt::Display for LabelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IMb fields of a label that the caller chooses; the spool adds the serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImb {
    /// Barcode Identifier, 2 digits (second digit 0-4).
    pub barcode_id: String,
    /// Service Type ID (STID), 3 digits.
    pub service_type: String,
    /// Mailer ID, 6 digits (0-8 first) or 9 digits (9 first); it must have a range.
    pub mailer_id: String,
}

/// One label of a job to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLabel {
    /// The IMb without its serial, or `None` for a label without an IMb.
    pub imb: Option<NewImb>,
    /// Routing code: 0, 5, 9 or 11 digits.
    pub routing: String,
    /// Who the piece goes to, as it should appear in the print log.
    pub recipient: String,
}

/// A job to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The client's job id, which makes submitting idempotent; `None` to have one made.
    pub id: Option<String>,
    /// The printer's name.
    pub printer: String,
    /// The labels, in print order.
    pub labels: Vec<NewLabel>,
    /// The request as the client sent it (JSON); compared on resubmit.
    pub request_json: String,
}

/// A serial the spool assigned to a label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedSerial {
    /// 0-based label index.
    pub index: u32,
    /// The Mailer ID.
    pub mailer_id: String,
    /// The serial.
    pub serial: u64,
    /// The 20-digit tracking code it completes.
    pub tracking: String,
}

/// Something the caller should pass on (event stream, logs) although the job was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// A serial range is running low.
    LowWater {
        /// The Mailer ID.
        mailer_id: String,
        /// Serials left after this job.
        left: u64,
        /// The threshold.
        threshold: u64,
    },
}

/// The answer to an accepted job; stored, and returned again on resubmit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The job id (the client's, or the one the spool made).
    pub job_id: String,
    /// Number of labels.
    pub label_count: u32,
    /// The serials assigned, in label order (labels without an IMb have none).
    pub serials: Vec<AssignedSerial>,
    /// Warnings raised when the job was first accepted.
    pub warnings: Vec<Warning>,
    /// `true` when this is the stored answer to an earlier submit of the same id.
    pub replayed: bool,
}

/// A configured serial range and how far it has been used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeStatus {
    /// The Mailer ID.
    pub mailer_id: String,
    /// First serial of the range.
    pub first: u64,
    /// Last serial of the range (inclusive).
    pub last: u64,
    /// The next serial to hand out (`last + 1` when exhausted).
    pub next: u64,
}

impl RangeStatus {
    /// Serials still available.
    pub fn left(&self) -> u64 {
        (self.last + 1).saturating_sub(self.next)
    }
}

/// A job with labels not yet final: what crash recovery needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// The job id.
    pub job_id: String,
    /// Its printer.
    pub printer: String,
    /// The first label that is queued or sent (not confirmed printed).
    pub resume_at: u32,
    /// Labels in `sent`: possibly printed; the caller decides whether to print again.
    pub in_flight: Vec<u32>,
    /// Number of labels still queued.
    pub queued: u32,
}

/// One label as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelInfo {
    /// 0-based index.
    pub index: u32,
    /// Its state.
    pub state: LabelState,
    /// Its Mailer ID and serial, if it has an IMb.
    pub serial: Option<(String, u64)>,
    /// Its 20-digit tracking code, if it has an IMb.
    pub tracking: Option<String>,
    /// Routing code.
    pub routing: String,
    /// Recipient.
    pub recipient: String,
    /// Times it was sent.
    pub attempts: u32,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

/// A handle on the spool file. Blocking; keep it on one thread (it is `Send`).
pub struct Spool {
    /// The connection; every public call is one transaction on it.
    conn: Connection,
    /// When to warn about a range running low.
    low_water: LowWater,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating if needed) the spool at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Spool, SpoolError> {
        Spool::open_with(path, &SpoolOptions::default())
    }

    /// Opens (creating if needed) the spool at `path`: WAL, `synchronous=FULL`,
    /// foreign keys, busy timeout, and the schema migrated to the current version.
    pub fn open_with(path: impl AsRef<Path>, options: &SpoolOptions) -> Result<Spool, SpoolError> {
        let path = path.as_ref();
        let open_err = |source| SpoolError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SpoolError::NotWal { found: mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut spool = Spool {
            conn,
            low_water: options.low_water,
        };
        spool.migrate()?;
        Ok(spool)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], inside one immediate transaction so two
    /// processes opening a new file at once do not both create it.
    fn migrate(&mut self) -> Result<(), SpoolError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(SpoolError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 1 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if found < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds or changes the serial range of `mailer_id` to `first..=last`. `next` never
    /// moves back: it becomes `max(next, first)`, and `last` must not fall below it.
    pub fn configure_range(
        &mut self,
        mailer_id: &str,
        first: u64,
        last: u64,
    ) -> Result<RangeStatus, SpoolError> {
        let max = max_serial(mailer_id)?;
        if first > last || last > max {
            return Err(SpoolError::BadRange {
                mailer_id: mailer_id.to_owned(),
                first,
                last,
                max,
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = read_range(&tx, mailer_id)?;
        let next = old.as_ref().map_or(first, |old| old.next.max(first));
        if last < next {
            return Err(SpoolError::RangeBehindNext {
                mailer_id: mailer_id.to_owned(),
                last,
                used_up_to: next - 1,
            });
        }
        tx.execute(
            "INSERT INTO serial_ranges (mailer_id, first, last, next) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (mailer_id) DO UPDATE SET first = ?2, last = ?3, next = ?4",
            params![mailer_id, to_sql(first)?, to_sql(last)?, to_sql(next)?],
        )?;
        tx.commit()?;
        Ok(RangeStatus {
            mailer_id: mailer_id.to_owned(),
            first,
            last,
            next,
        })
    }

    /// The range of `mailer_id`, if one is configured.
    pub fn range(&self, mailer_id: &str) -> Result<Option<RangeStatus>, SpoolError> {
        read_range(&self.conn, mailer_id)
    }

    /// Accepts a job: its row, its labels and their serials in one transaction. A known
    /// client id returns the stored answer (`replayed = true`) and allocates nothing.
    pub fn accept_job(&mut self, job: NewJob, now_ms: i64) -> Result<Accepted, SpoolError> {
        if let Some(id) = &job.id {
            check_job_id(id)?;
        }
        let request: serde_json::Value =
            serde_json::from_str(&job.request_json).map_err(SpoolError::BadRequestJson)?;
        // Canonical text, so whitespace or key order (serde_json sorts keys) do not
        // turn a resubmit into a conflict.
        let request = request.to_string();
        if job.labels.is_empty() {
            return Err(SpoolError::NoLabels);
        }
        let label_count = u32::try_from(job.labels.len()).map_err(|_| SpoolError::Corrupt {
            what: "more than 2^32 labels in one job".into(),
        })?;
        // Validate everything before touching the database: a zero serial of the right
        // length stands in for the one to be allocated.
        let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
        let mut routings = Vec::with_capacity(job.labels.len());
        for (index, label) in (0u32..).zip(&job.labels) {
            let imb_err = |source| SpoolError::Imb { index, source };
            routings.push(Routing::parse(&label.routing).map_err(imb_err)?);
            if let Some(imb) = &label.imb {
                let width = serial_width(&imb.mailer_id);
                Tracking::from_fields(
                    &imb.barcode_id,
                    &imb.service_type,
                    &imb.mailer_id,
                    &"0".repeat(width),
                )
                .map_err(imb_err)?;
                *wanted.entry(imb.mailer_id.as_str()).or_default() += 1;
            }
        }

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(id) = &job.id {
            let stored: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT printer, request, reply FROM jobs WHERE id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            if let Some((printer, stored_request, reply)) = stored {
                if printer != job.printer || stored_request != request {
                    return Err(SpoolError::IdConflict { job_id: id.clone() });
                }
                let mut answer: Accepted =
                    serde_json::from_str(&reply).map_err(|e| SpoolError::Corrupt {
                        what: format!("stored reply of job {id:?}: {e}"),
                    })?;
                answer.replayed = true;
                return Ok(answer);
            }
        }
        let job_id = match job.id {
            Some(id) => id,
            None => generate_id(&tx, now_ms)?,
        };

        // Allocate: per Mailer ID, one block of consecutive serials.
        let mut next_serial: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut warnings = Vec::new();
        for (&mailer_id, &n) in &wanted {
            let range = read_range(&tx, mailer_id)?.ok_or_else(|| SpoolError::NoRange {
                mailer_id: mailer_id.to_owned(),
            })?;
            let left = range.left();
            if left < n {
                return Err(SpoolError::RangeExhausted {
                    mailer_id: mailer_id.to_owned(),
                    left,
                    wanted: n,
                });
            }
            let new_next = range.next + n;
            tx.execute(
                "UPDATE serial_ranges SET next = ?2 WHERE mailer_id = ?1",
                params![mailer_id, to_sql(new_next)?],
            )?;
            let size = range.last - range.first + 1;
            let threshold = match self.low_water {
                LowWater::Percent(p) => (size * u64::from(p)).div_ceil(100),
                LowWater::Count(c) => c,
            };
            let left_after = left - n;
            if left_after < threshold {
                warnings.push(Warning::LowWater {
                    mailer_id: mailer_id.to_owned(),
                    left: left_after,
                    threshold,
                });
            }
            next_serial.insert(mailer_id, (range.next, 0));
        }

        // The job row first (labels reference it); its reply is filled in below, in the
        // same transaction.
        tx.execute(
            "INSERT INTO jobs (id, printer, created_at, state, request, reply)
             VALUES (?1, ?2, ?3, 'active', ?4, '')",
            params![job_id, job.printer, now_ms, request],
        )?;
        let mut serials = Vec::new();
        {
            let mut insert = tx.prepare(
                "INSERT INTO labels (job_id, idx, state, mailer_id, serial, tracking, routing,
                                     recipient, updated_at)
                 VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for ((index, label), routing) in (0u32..).zip(&job.labels).zip(&routings) {
                let assigned = match &label.imb {
                    None => None,
                    Some(imb) => {
                        let slot =
                            next_serial.get_mut(imb.mailer_id.as_str()).ok_or_else(|| {
                                SpoolError::Corrupt {
                                    what: "serial block missing for a validated mailer id".into(),
                                }
                            })?;
                        let serial = slot.0 + slot.1;
                        slot.1 += 1;
                        let width = serial_width(&imb.mailer_id);
                        let tracking = Tracking::from_fields(
                            &imb.barcode_id,
                            &imb.service_type,
                            &imb.mailer_id,
                            &format!("{serial:0width$}"),
                        )
                        .map_err(|source| SpoolError::Imb { index, source })?;
                        Some(AssignedSerial {
                            index,
                            mailer_id: imb.mailer_id.clone(),
                            serial,
                            tracking: tracking.as_str().to_owned(),
                        })
                    }
                };
                insert.execute(params![
                    job_id,
                    index,
                    assigned.as_ref().map(|a| a.mailer_id.as_str()),
                    assigned.as_ref().map(|a| to_sql(a.serial)).transpose()?,
                    assigned.as_ref().map(|a| a.tracking.as_str()),
                    routing.as_str(),
                    label.recipient,
                    now_ms,
                ])?;
                serials.extend(assigned);
            }
        }
        let answer = Accepted {
            job_id: job_id.clone(),
            label_count,
            serials,
            warnings,
            replayed: false,
        };
        let reply = serde_json::to_string(&answer).map_err(|e| SpoolError::Corrupt {
            what: format!("cannot serialize the reply: {e}"),
        })?;
        tx.execute(
            "UPDATE jobs SET reply = ?2 WHERE id = ?1",
            params![job_id, reply],
        )?;
        tx.commit()?;
        Ok(answer)
    }

    /// Records that label `index` of `job_id` was handed to the transport (from queued,
    /// from sent again after a crash, or from failed for a retry). Counts an attempt.
    pub fn mark_sent(&mut self, job_id: &str, index: u32, now_ms: i64) -> Result<(), SpoolError> {
        self.transition(
            job_id,
            index,
            &[LabelState::Queued, LabelState::Sent, LabelState::Failed],
            LabelState::Sent,
            now_ms,
            None,
        )
    }

    /// Records that the printer confirmed label `index` of `job_id`, and writes its
    /// print-log row.
    pub fn mark_printed(
        &mut self,
        job_id: &str,
        index: u32,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        self.transition(
            job_id,
            index,
            &[LabelState::Sent],
            LabelState::Printed,
            now_ms,
            None,
        )
    }

    /// Records that label `index` of `job_id` failed, and why. [`Spool::mark_sent`]
    /// retries it.
    pub fn mark_failed(
        &mut self,
        job_id: &str,
        index: u32,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        self.transition(
            job_id,
            index,
            &[LabelState::Queued, LabelState::Sent],
            LabelState::Failed,
            now_ms,
            Some(reason),
        )
    }

    /// One label state change, with the job's state and the print log, in one transaction.
    fn transition(
        &mut self,
        job_id: &str,
        index: u32,
        from: &[LabelState],
        to: LabelState,
        now_ms: i64,
        reason: Option<&str>,
    ) -> Result<(), SpoolError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM labels WHERE job_id = ?1 AND idx = ?2",
                params![job_id, index],
                |row| row.get(0),
            )
            .optional()?;
        let Some(state) = state else {
            return Err(SpoolError::UnknownLabel {
                job_id: job_id.to_owned(),
                index,
            });
        };
        let current = LabelState::parse(&state)?;
        if !from.contains(&current) {
            return Err(SpoolError::BadTransition {
                job_id: job_id.to_owned(),
                index,
                from: current,
                to,
            });
        }
        tx.execute(
            "UPDATE labels SET state = ?3, updated_at = ?4, reason = ?5,
                    attempts = attempts + (?3 = 'sent')
             WHERE job_id = ?1 AND idx = ?2",
            params![job_id, index, to.as_str(), now_ms, reason],
        )?;
        match to {
            LabelState::Printed => {
                tx.execute(
                    "INSERT INTO print_log (printed_at, job_id, idx, printer, mailer_id, serial,
                                            tracking, recipient)
                     SELECT ?3, l.job_id, l.idx, j.printer, l.mailer_id, l.serial, l.tracking,
                            l.recipient
                     FROM labels l JOIN jobs j ON j.id = l.job_id
                     WHERE l.job_id = ?1 AND l.idx = ?2",
                    params![job_id, index, now_ms],
                )?;
            }
            LabelState::Sent => {
                tx.execute(
                    "UPDATE jobs SET state = 'active' WHERE id = ?1 AND state = 'done'",
                    [job_id],
                )?;
            }
            _ => {}
        }
        tx.execute(
            "UPDATE jobs SET state = 'done' WHERE id = ?1 AND state = 'active'
             AND NOT EXISTS (SELECT 1 FROM labels
                             WHERE job_id = ?1 AND state IN ('queued', 'sent'))",
            [job_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Cancels `job_id`: its queued labels become cancelled (their serials stay used).
    /// Labels already sent are left for the caller to confirm. Returns how many labels
    /// were cancelled.
    pub fn cancel_job(&mut self, job_id: &str, now_ms: i64) -> Result<u32, SpoolError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE id = ?1",
            [job_id],
        )?;
        if changed == 0 {
            return Err(SpoolError::UnknownJob {
                job_id: job_id.to_owned(),
            });
        }
        let cancelled = tx.execute(
            "UPDATE labels SET state = 'cancelled', updated_at = ?2
             WHERE job_id = ?1 AND state = 'queued'",
            params![job_id, now_ms],
        )?;
        tx.commit()?;
        u32::try_from(cancelled).map_err(|_| SpoolError::Corrupt {
            what: "label count over 2^32".into(),
        })
    }

    /// The first label of `job_id` not confirmed printed (queued or sent), or `None`
    /// when every label is final (printed, failed or cancelled).
    pub fn resume_point(&self, job_id: &str) -> Result<Option<u32>, SpoolError> {
        self.require_job(job_id)?;
        let first: Option<i64> = self.conn.query_row(
            "SELECT MIN(idx) FROM labels WHERE job_id = ?1 AND state IN ('queued', 'sent')",
            [job_id],
            |row| row.get(0),
        )?;
        first.map(index_from_sql).transpose()
    }

    /// Every job with a label queued or sent, oldest first: what to re-queue after a
    /// restart. Labels in `sent` are listed as possibly printed.
    pub fn unfinished_jobs(&self) -> Result<Vec<Unfinished>, SpoolError> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.printer, l.idx, l.state
             FROM jobs j JOIN labels l ON l.job_id = j.id
             WHERE l.state IN ('queued', 'sent')
             ORDER BY j.created_at, j.rowid, l.idx",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<Unfinished> = Vec::new();
        while let Some(row) = rows.next()? {
            let job_id: String = row.get(0)?;
            let index = index_from_sql(row.get(2)?)?;
            let state = LabelState::parse(&row.get::<_, String>(3)?)?;
            let job = match out.last_mut() {
                Some(last) if last.job_id == job_id => last,
                _ => {
                    out.push(Unfinished {
                        job_id,
                        printer: row.get(1)?,
                        resume_at: index,
                        in_flight: Vec::new(),
                        queued: 0,
                    });
                    // Invariant: just pushed.
                    out.last_mut().ok_or_else(|| SpoolError::Corrupt {
                        what: "unreachable".into(),
                    })?
                }
            };
            match state {
                LabelState::Sent => job.in_flight.push(index),
                _ => job.queued += 1,
            }
        }
        Ok(out)
    }

    /// The labels of `job_id`, in order.
    pub fn job_labels(&self, job_id: &str) -> Result<Vec<LabelInfo>, SpoolError> {
        self.require_job(job_id)?;
        let mut stmt = self.conn.prepare(
            "SELECT idx, state, mailer_id, serial, tracking, routing, recipient, attempts,
                    reason, updated_at
             FROM labels WHERE job_id = ?1 ORDER BY idx",
        )?;
        let mut rows = stmt.query([job_id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mailer_id: Option<String> = row.get(2)?;
            let serial: Option<i64> = row.get(3)?;
            let serial = match (mailer_id, serial) {
                (Some(m), Some(s)) => Some((m, from_sql(s)?)),
                _ => None,
            };
            out.push(LabelInfo {
                index: index_from_sql(row.get(0)?)?,
                state: LabelState::parse(&row.get::<_, String>(1)?)?,
                serial,
                tracking: row.get(4)?,
                routing: row.get(5)?,
                recipient: row.get(6)?,
                attempts: u32::try_from(row.get::<_, i64>(7)?).map_err(|_| {
                    SpoolError::Corrupt {
                        what: "negative attempts".into(),
                    }
                })?,
                reason: row.get(8)?,
                updated_at: row.get(9)?,
            });
        }
        Ok(out)
    }

    /// The stored answer for `job_id` (with `replayed = true`), if the job exists.
    pub fn job(&self, job_id: &str) -> Result<Option<Accepted>, SpoolError> {
        let reply: Option<String> = self
            .conn
            .query_row("SELECT reply FROM jobs WHERE id = ?1", [job_id], |row| {
                row.get(0)
            })
            .optional()?;
        reply
            .map(|reply| {
                let mut answer: Accepted =
                    serde_json::from_str(&reply).map_err(|e| SpoolError::Corrupt {
                        what: format!("stored reply of job {job_id:?}: {e}"),
                    })?;
                answer.replayed = true;
                Ok(answer)
            })
            .transpose()
    }

    /// Every job id, oldest first.
    pub fn job_ids(&self) -> Result<Vec<String>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM jobs ORDER BY created_at, rowid")?;
        let ids = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    fn require_job(&self, job_id: &str) -> Result<(), SpoolError> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT 1 FROM jobs WHERE id = ?1", [job_id], |row| {
                row.get(0)
            })
            .optional()?;
        match found {
            Some(_) => Ok(()),
            None => Err(SpoolError::UnknownJob {
                job_id: job_id.to_owned(),
            }),
        }
    }
}

/// The largest serial for `mailer_id`, or an error if it is not a valid Mailer ID.
fn max_serial(mailer_id: &str) -> Result<u64, SpoolError> {
    let bytes = mailer_id.as_bytes();
    let valid = bytes.iter().all(u8::is_ascii_digit)
        && match bytes.len() {
            6 => bytes[0] != b'9',
            9 => bytes[0] == b'9',
            _ => false,
        };
    if !valid {
        return Err(SpoolError::BadMailerId {
            mailer_id: mailer_id.to_owned(),
        });
    }
    Ok(if bytes.len() == 6 {
        999_999_999
    } else {
        999_999
    })
}

/// Digits of the serial that goes with `mailer_id` (15 minus its length).
fn serial_width(mailer_id: &str) -> usize {
    15usize.saturating_sub(mailer_id.len())
}

fn check_job_id(id: &str) -> Result<(), SpoolError> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_JOB_ID_LEN {
        "it is longer than 128 bytes"
    } else if id.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(SpoolError::BadJobId {
        job_id: id.chars().take(MAX_JOB_ID_LEN).collect(),
        reason,
    })
}

/// A job id for a job the client did not name: `auto-<now_ms>-<n>`, checked unused.
fn generate_id(conn: &Connection, now_ms: i64) -> Result<String, SpoolError> {
    let mut n: i64 = conn.query_row("SELECT COALESCE(MAX(rowid), 0) + 1 FROM jobs", [], |row| {
        row.get(0)
    })?;
    loop {
        let id = format!("auto-{now_ms}-{n}");
        let taken: Option<i64> = conn
            .query_row("SELECT 1 FROM jobs WHERE id = ?1", [&id], |row| row.get(0))
            .optional()?;
        if taken.is_none() {
            return Ok(id);
        }
        n += 1;
    }
}

fn read_range(conn: &Connection, mailer_id: &str) -> Result<Option<RangeStatus>, SpoolError> {
    let row: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT first, last, next FROM serial_ranges WHERE mailer_id = ?1",
            [mailer_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    row.map(|(first, last, next)| {
        Ok(RangeStatus {
            mailer_id: mailer_id.to_owned(),
            first: from_sql(first)?,
            last: from_sql(last)?,
            next: from_sql(next)?,
        })
    })
    .transpose()
}

fn to_sql(value: u64) -> Result<i64, SpoolError> {
    i64::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("serial {value} does not fit in sqlite"),
    })
}

fn from_sql(value: i64) -> Result<u64, SpoolError> {
    u64::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("negative serial {value}"),
    })
}

fn index_from_sql(value: i64) -> Result<u32, SpoolError> {
    u32::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("label index {value} out of range"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_spool(name: &str) -> (PathBuf, Spool) {
        let dir =
            std::env::temp_dir().join(format!("labeld-spool-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spool.db");
        let spool = Spool::open(&path).unwrap();
        (dir, spool)
    }

    fn job(id: Option<&str>, mailer_ids: &[&str]) -> NewJob {
        NewJob {
            id: id.map(str::to_owned),
            printer: "dock-1".into(),
            labels: mailer_ids
                .iter()
                .map(|m| NewLabel {
                    imb: Some(NewImb {
                        barcode_id: "00".into(),
                        service_type: "270".into(),
                        mailer_id: (*m).into(),
                    }),
                    routing: "12345678901".into(),
                    recipient: "A. Person".into(),
                })
                .collect(),
            request_json: r#"{"v":1}"#.into(),
        }
    }

    #[test]
    fn max_serial_follows_mailer_id_length() {
        assert_eq!(max_serial("123456").unwrap(), 999_999_999);
        assert_eq!(max_serial("912345678").unwrap(), 999_999);
        for bad in ["", "12345", "923456", "812345678", "12345a", "1234567"] {
            assert!(
                matches!(max_serial(bad), Err(SpoolError::BadMailerId { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn range_validation() {
        let (dir, mut spool) = temp_spool("range");
        assert!(matches!(
            spool.configure_range("912345678", 0, 1_000_000),
            Err(SpoolError::BadRange { max: 999_999, .. })
        ));
        assert!(matches!(
            spool.configure_range("123456", 10, 9),
            Err(SpoolError::BadRange { .. })
        ));
        spool.configure_range("123456", 100, 199).unwrap();
        spool.accept_job(job(None, &["123456"; 10]), 1).unwrap();
        // Extending is fine; next stays.
        let r = spool.configure_range("123456", 100, 299).unwrap();
        assert_eq!((r.next, r.left()), (110, 190));
        // Moving first back does not move next back.
        let r = spool.configure_range("123456", 0, 299).unwrap();
        assert_eq!(r.next, 110);
        // Ending before used serials is refused.
        let err = spool.configure_range("123456", 0, 105).unwrap_err();
        assert!(matches!(
            err,
            SpoolError::RangeBehindNext {
                used_up_to: 109,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "serial range for mailer id 123456 cannot end at 105: serials up to 109 are already used (a range can only be extended or moved forward)"
        );
        // Moving forward jumps next.
        let r = spool.configure_range("123456", 500, 599).unwrap();
        assert_eq!(r.next, 500);
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tracking_code_is_composed_with_padded_serial() {
        let (dir, mut spool) = temp_spool("tracking");
        spool.configure_range("123456", 7, 100).unwrap();
        spool.configure_range("912345678", 42, 100).unwrap();
        let a = spool
            .accept_job(job(Some("j"), &["123456", "912345678", "123456"]), 1)
            .unwrap();
        let got: Vec<_> = a.serials.iter().map(|s| s.tracking.as_str()).collect();
        assert_eq!(
            got,
            [
                "00270123456000000007",
                "00270912345678000042",
                "00270123456000000008"
            ]
        );
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn invalid_label_allocates_nothing() {
        let (dir, mut spool) = temp_spool("invalid");
        spool.configure_range("123456", 0, 100).unwrap();
        let mut j = job(None, &["123456", "123456"]);
        j.labels[1].routing = "1234".into();
        assert!(matches!(
            spool.accept_job(j, 1),
            Err(SpoolError::Imb { index: 1, .. })
        ));
        let mut j = job(None, &["123456"]);
        j.labels[0].imb.as_mut().unwrap().barcode_id = "05".into();
        assert!(matches!(
            spool.accept_job(j, 1),
            Err(SpoolError::Imb { index: 0, .. })
        ));
        assert!(matches!(
            spool.accept_job(job(None, &["654321"]), 1),
            Err(SpoolError::NoRange { .. })
        ));
        assert_eq!(spool.range("123456").unwrap().unwrap().next, 0);
        assert!(spool.job_ids().unwrap().is_empty());
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn state_transitions() {
        let (dir, mut spool) = temp_spool("states");
        spool.configure_range("123456", 0, 100).unwrap();
        spool.accept_job(job(Some("j"), &["123456"; 3]), 1).unwrap();
        assert!(matches!(
            spool.mark_printed("j", 0, 2),
            Err(SpoolError::BadTransition {
                from: LabelState::Queued,
                to: LabelState::Printed,
                ..
            })
        ));
        assert!(matches!(
            spool.mark_sent("j", 3, 2),
            Err(SpoolError::UnknownLabel { index: 3, .. })
        ));
        spool.mark_sent("j", 0, 2).unwrap();
        spool.mark_printed("j", 0, 3).unwrap();
        spool.mark_failed("j", 1, "paper out", 4).unwrap();
        spool.mark_sent("j", 1, 5).unwrap();
        let labels = spool.job_labels("j").unwrap();
        assert_eq!(labels[1].attempts, 1);
        assert_eq!(labels[1].state, LabelState::Sent);
        assert_eq!(spool.resume_point("j").unwrap(), Some(1));
        assert!(matches!(
            spool.resume_point("nope"),
            Err(SpoolError::UnknownJob { .. })
        ));
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
