//! The spool: a durable SQLite store for jobs, their labels, IMb serials, printer pause
//! state and the print log.
//!
//! What it guarantees, and why:
//!
//! - **An accepted job survives any crash.** Accepting a job writes the job, all its
//!   labels and their IMb serials in one `BEGIN IMMEDIATE` transaction on a database in
//!   WAL mode with `synchronous=FULL`, so once [`Spool::accept_job`] returns `Ok` the
//!   commit is on disk (DESIGN.md, "Decisions already made": the reply is sent only
//!   after the commit). A crash before the commit leaves no trace of the job and no
//!   serial used. [`Spool::accept_jobs`] is the group commit: many jobs in one
//!   transaction (one fsync), each inside its own `SAVEPOINT`, so a bad job rolls back
//!   only itself and the others commit together.
//! - **An IMb serial is never used twice.** Serials come from a persistent counter per
//!   Mailer ID (`serial_ranges.next`) inside a range the operator configures, so several
//!   hosts can share one Mailer ID by giving each its own range (DESIGN.md, "IMb serial
//!   numbers"; Informed Visibility needs each IMb unique for 45 days). The counter only
//!   moves forward: cancelled jobs keep their serials, pruning old jobs never gives
//!   serials back, a range can be added or extended but never moved back under `next`,
//!   and a unique index on `(mailer_id, serial)` over original labels backs this up.
//!   The one deliberate exception is [`Spool::reprint`] with [`Serials::Same`]: the same
//!   pieces again, so the copies carry the serials of the labels they reprint (marked
//!   by `labels.original_job`, which the unique index leaves out). When fewer serials
//!   remain than a threshold, acceptance says so in [`Accepted::warnings`]; when too few
//!   remain it refuses with [`SpoolError::RangeExhausted`] and allocates nothing.
//! - **Submitting is idempotent.** A client job id seen before returns the stored answer
//!   (`replayed = true`) and allocates nothing, also when it comes twice in one batch;
//!   the same id with a different request is [`SpoolError::IdConflict`]. A reprint with
//!   a client-chosen new id is idempotent the same way.
//! - **Every label's state is known after a crash.** Labels go queued → sent →
//!   printed/failed (or cancelled). Marking labels sent stores the printer's label
//!   counter read before sending ([`QueuedLabel::odometer`]), so after a crash the
//!   caller can compare it with the printer's counter now. [`Spool::unfinished_jobs`]
//!   gives, per job, the first label the printer has not confirmed and the labels left
//!   in `sent`: those were possibly printed, and only the caller (with the printer's
//!   counters) can decide whether to print them again.
//! - **Jobs print in priority, then arrival order, one print unit at a time.**
//!   [`Spool::next_labels`] hands the scheduler the next labels of one job (priority
//!   0–9, higher first; then arrival, which is the job's rowid; then label index), never
//!   splitting a print unit (the labels of one sheet page, say). It reads only open
//!   labels through a partial index, so a 10,000-label job costs the same per call at its
//!   end as at its start. Per-job label counts are kept by triggers in a narrow
//!   `job_counts` table (not in `jobs`, whose rows carry the request and reply: SQLite
//!   rewrites a whole row on update), so progress and the "job done" check do not count
//!   labels either.
//! - **Printed pieces can be matched back.** Confirming a label writes a `print_log` row:
//!   serial ↔ tracking code ↔ routing code ↔ job ↔ printer ↔ recipient ↔ time, exported
//!   with [`Spool::print_log`] and [`write_print_log_csv`].
//! - **The spool does not grow without bound.** [`Spool::prune`] deletes finished jobs
//!   (their labels with them) and print-log rows older than a cutoff, then runs
//!   `PRAGMA incremental_vacuum` to give the pages back. Files created by this code use
//!   `auto_vacuum = INCREMENTAL`; files created by schema version 1 keep
//!   `auto_vacuum = NONE` (changing it needs a full `VACUUM`, which rewrites the file
//!   and cannot run inside labeld's transactions), so there freed pages are reused by
//!   new rows: the file stops growing but does not shrink. Run
//!   `sqlite3 spool.db 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'` once, with labeld
//!   stopped, to convert such a file.
//! - **A paused printer stays paused across restarts** ([`Spool::set_paused`]).
//!
//! The spool is pure with respect to the clock: every call that records a time takes
//! `now_ms` (Unix milliseconds) from the caller. SQLite is blocking, and the spool runs
//! it on the caller's thread: the server calls it from a dedicated thread, never from
//! an async task. Several [`Spool`] handles (threads or processes) may share one file;
//! handles in one process take turns on one write lock per file (so the next writer
//! starts as soon as the one before commits), and writers in other processes queue on
//! SQLite's lock for up to the busy timeout.
//!
//! Schema versions (`PRAGMA user_version`): 1 had jobs, labels, serial ranges and the
//! print log; 2 adds job priority, print units, the odometer reading, reprints, per-job
//! label counts, printer pause state, the routing code in the print log and the
//! scheduler's indexes. A version-1 file is migrated in place, in one transaction, the
//! first time this code opens it; a new file is created as version 1 and migrated the
//! same way, so both end with the same schema.
//!
//! Not covered: which printers exist (the configuration's business: any printer name is
//! accepted and paused), and deciding whether a label left in `sent` printed (the
//! scheduler's, with the printer's counters).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::encode::imb::{EncodeError, Routing, Tracking};
use crate::protocol::Serials;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// Version 1 of the schema, exactly as version 1 of labeld created it (new files start
/// here and take the same migrations as old ones). `STRICT` tables so SQLite rejects a
/// wrong type instead of storing it; the CHECKs keep states and ranges sane for anyone
/// editing with `sqlite3`.
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

/// Version 1 → 2, in place. Columns are added (never rebuilt: rebuilding `jobs` would
/// need foreign keys off, which cannot change inside a transaction) and back-filled from
/// the version-1 rows: a label's print unit is its index, a job's counts are counted
/// once, a finished job's finish time is its last label change, and print-log rows get
/// their label's routing code.
const MIGRATE_V2: &str = "
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9);
ALTER TABLE jobs ADD COLUMN finished_at INTEGER;
ALTER TABLE jobs ADD COLUMN reprint_of TEXT;
ALTER TABLE jobs ADD COLUMN reprint_serials TEXT CHECK (reprint_serials IN ('same', 'new'));
ALTER TABLE labels ADD COLUMN unit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE labels ADD COLUMN odometer INTEGER;
ALTER TABLE labels ADD COLUMN original_job TEXT;
ALTER TABLE print_log ADD COLUMN routing TEXT NOT NULL DEFAULT '';

UPDATE labels SET unit = idx;
UPDATE print_log SET routing = COALESCE(
    (SELECT l.routing FROM labels l WHERE l.job_id = print_log.job_id AND l.idx = print_log.idx),
    '');

-- Per-job label counts, in their own narrow table: `jobs` rows hold the request and
-- the reply, which for a mailing list run to megabytes, and SQLite rewrites a whole
-- row on any update, so counting there would cost a megabyte per label.
CREATE TABLE job_counts (
    job_id    TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    queued    INTEGER NOT NULL DEFAULT 0,
    sent      INTEGER NOT NULL DEFAULT 0,
    printed   INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO job_counts (job_id, queued, sent, printed, failed, cancelled)
SELECT id,
    (SELECT count(*) FROM labels l WHERE l.job_id = jobs.id AND l.state = 'queued'),
    (SELECT count(*) FROM labels l WHERE l.job_id = jobs.id AND l.state = 'sent'),
    (SELECT count(*) FROM labels l WHERE l.job_id = jobs.id AND l.state = 'printed'),
    (SELECT count(*) FROM labels l WHERE l.job_id = jobs.id AND l.state = 'failed'),
    (SELECT count(*) FROM labels l WHERE l.job_id = jobs.id AND l.state = 'cancelled')
FROM jobs;
UPDATE jobs SET finished_at = COALESCE(
    (SELECT MAX(l.updated_at) FROM labels l WHERE l.job_id = jobs.id), created_at)
WHERE state IN ('done', 'cancelled')
  AND (SELECT queued + sent FROM job_counts c WHERE c.job_id = jobs.id) = 0;

-- Same-serial reprints repeat a serial on purpose; the index guards originals.
DROP INDEX labels_serial;
CREATE UNIQUE INDEX labels_serial ON labels (mailer_id, serial)
    WHERE serial IS NOT NULL AND original_job IS NULL;
-- Open labels by job, in print order: what next_labels, resume_point and
-- unfinished_jobs read, without touching printed labels.
DROP INDEX labels_open;
CREATE INDEX labels_open ON labels (job_id, idx) WHERE state IN ('queued', 'sent');
-- A printer's queue: active jobs by priority, then rowid (arrival).
CREATE INDEX jobs_queue ON jobs (printer, priority DESC) WHERE state = 'active';
-- What prune deletes.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'cancelled');

CREATE TABLE printers (
    name       TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL CHECK (paused IN (0, 1)),
    reason     TEXT,
    updated_at INTEGER NOT NULL
) STRICT;

-- The counts follow every job insert, label insert and label state change. Labels
-- and counts are only deleted with their job (ON DELETE CASCADE).
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (job_id) VALUES (NEW.id);
END;
CREATE TRIGGER labels_count_insert AFTER INSERT ON labels BEGIN
    UPDATE job_counts SET
        queued    = queued    + (NEW.state = 'queued'),
        sent      = sent      + (NEW.state = 'sent'),
        printed   = printed   + (NEW.state = 'printed'),
        failed    = failed    + (NEW.state = 'failed'),
        cancelled = cancelled + (NEW.state = 'cancelled')
    WHERE job_id = NEW.job_id;
END;
CREATE TRIGGER labels_count_update AFTER UPDATE OF state ON labels
WHEN OLD.state <> NEW.state BEGIN
    UPDATE job_counts SET
        queued    = queued    + (NEW.state = 'queued')    - (OLD.state = 'queued'),
        sent      = sent      + (NEW.state = 'sent')      - (OLD.state = 'sent'),
        printed   = printed   + (NEW.state = 'printed')   - (OLD.state = 'printed'),
        failed    = failed    + (NEW.state = 'failed')    - (OLD.state = 'failed'),
        cancelled = cancelled + (NEW.state = 'cancelled') - (OLD.state = 'cancelled')
    WHERE job_id = NEW.job_id;
END;
";

/// The jobs [`Spool::next_labels`] serves on printer `?1`, in order: active jobs, highest
/// priority first, then arrival. Reads the `jobs_queue` index, and of each row only the
/// id, which comes before the (large) request and reply.
const NEXT_JOB_SQL: &str = "
SELECT id, priority FROM jobs
WHERE printer = ?1 AND state = 'active'
ORDER BY priority DESC, rowid";

/// The open labels of job `?1` in print order. Reads the partial `labels_open` index, so
/// printed labels cost nothing.
const OPEN_LABELS_SQL: &str = "
SELECT idx, unit, state, mailer_id, serial, tracking, routing, recipient, attempts, odometer
FROM labels
WHERE job_id = ?1 AND state IN ('queued', 'sent')
ORDER BY idx";

/// [`OPEN_LABELS_SQL`] from index `?2` on (the same index, read from there).
const OPEN_LABELS_FROM_SQL: &str = "
SELECT idx, unit, state, mailer_id, serial, tracking, routing, recipient, attempts, odometer
FROM labels
WHERE job_id = ?1 AND state IN ('queued', 'sent') AND idx >= ?2
ORDER BY idx";

/// Bytes a WAL file is cut back to when the log starts over (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// The longest client job id accepted.
const MAX_JOB_ID_LEN: usize = 128;

/// The highest job priority.
pub const MAX_PRIORITY: u8 = 9;

/// The priority of a job that does not say.
pub const DEFAULT_PRIORITY: u8 = 5;

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
    /// A priority above [`MAX_PRIORITY`].
    #[error("job priority {priority} is invalid: expected 0 to 9 (higher prints first)")]
    BadPriority {
        /// The priority given.
        priority: u8,
    },
    /// A client-chosen tracking code whose serial lies inside the range this host
    /// allocates from: it could collide with an allocated serial.
    #[error("label {index}: serial {serial} of Mailer ID {mailer_id} lies inside this host's allocation range {first}..={last}; omit the serial and let labeld allocate one, or use a serial outside the range")]
    ClientSerialInRange {
        /// 0-based label index.
        index: u32,
        /// The Mailer ID.
        mailer_id: String,
        /// The client's serial.
        serial: u64,
        /// This host's range for it.
        first: u64,
        /// Last serial of the range.
        last: u64,
    },
    /// Print units that go backwards: a unit must be a run of consecutive labels.
    #[error("label {index}: print unit {unit} follows unit {previous} (units must not decrease from one label to the next)")]
    BadUnit {
        /// 0-based label index.
        index: u32,
        /// Its unit.
        unit: u32,
        /// The unit of the label before it.
        previous: u32,
    },
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

/// The state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Some labels are queued or sent.
    Active,
    /// Every label is final (printed, failed or cancelled) and the job was not cancelled.
    Done,
    /// Cancelled; labels that were already sent may still be confirmed.
    Cancelled,
}

impl JobState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<JobState, SpoolError> {
        Ok(match text {
            "active" => JobState::Active,
            "done" => JobState::Done,
            "cancelled" => JobState::Cancelled,
            other => {
                return Err(SpoolError::Corrupt {
                    what: format!("unknown job state {other:?}"),
                })
            }
        })
    }
}

impl std::fmt::Display for JobState {
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
    /// The print unit: labels of a job with the same unit are printed together (all
    /// labels of one sheet page, say); an ordinary label's unit is its index. Units
    /// must not decrease from one label to the next, so a unit is a run of labels.
    pub unit: u32,
    /// A full 20-digit tracking code the client chose itself (its serial is not
    /// allocated here, and must lie outside this host's range for its Mailer ID);
    /// `None` when `imb` asks for a serial or the label has no IMb.
    pub tracking: Option<String>,
}

/// A job to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The client's job id, which makes submitting idempotent; `None` to have one made.
    pub id: Option<String>,
    /// The printer's name.
    pub printer: String,
    /// 0 to [`MAX_PRIORITY`]; higher prints first ([`DEFAULT_PRIORITY`] when the client
    /// does not say).
    pub priority: u8,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelInfo {
    /// 0-based index.
    pub index: u32,
    /// Its print unit.
    pub unit: u32,
    /// Its state.
    pub state: LabelState,
    /// Its Mailer ID and serial, if it has an IMb (JSON: `{"mailer_id", "serial"}`).
    #[serde(with = "serial_json")]
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
    /// The printer's label counter read before the label was last sent, if known.
    pub odometer: Option<u64>,
}

/// A label [`Spool::next_labels`] hands the scheduler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedLabel {
    /// The job id.
    pub job_id: String,
    /// 0-based label index.
    pub index: u32,
    /// Its print unit.
    pub unit: u32,
    /// [`LabelState::Queued`], or [`LabelState::Sent`] when it was handed to the
    /// transport before (a crash, a retry) and not confirmed.
    pub state: LabelState,
    /// The job's priority.
    pub priority: u8,
    /// Its 20-digit tracking code, if it has an IMb.
    pub tracking: Option<String>,
    /// Its Mailer ID and serial, if it has an IMb (JSON: `{"mailer_id", "serial"}`).
    #[serde(with = "serial_json")]
    pub serial: Option<(String, u64)>,
    /// Routing code.
    pub routing: String,
    /// Recipient.
    pub recipient: String,
    /// Times it was sent.
    pub attempts: u32,
    /// The printer's label counter read before the label was last sent, if known.
    pub odometer: Option<u64>,
}

/// How far a job has got: its labels counted by state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// The job id.
    pub job_id: String,
    /// Number of labels.
    pub total: u32,
    /// Labels confirmed printed.
    pub printed: u32,
    /// Labels given up on.
    pub failed: u32,
    /// Labels cancelled before they were sent.
    pub cancelled: u32,
    /// Labels waiting.
    pub queued: u32,
    /// Labels handed to the transport, not yet confirmed.
    pub sent: u32,
    /// `true` when every label is final (printed, failed or cancelled).
    pub done: bool,
}

/// A job with its progress and labels: the answer to a status request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job id.
    pub job_id: String,
    /// Its printer.
    pub printer: String,
    /// Its state.
    pub state: JobState,
    /// 0 to 9, higher first.
    pub priority: u8,
    /// When it was accepted, Unix ms.
    pub created_at: i64,
    /// Its labels counted by state.
    pub progress: JobProgress,
    /// Its labels, in order.
    pub labels: Vec<LabelInfo>,
}

/// A job as submitted: what the scheduler renders its labels from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredJob {
    /// Its printer.
    pub printer: String,
    /// 0 to 9, higher first.
    pub priority: u8,
    /// The request, as canonical JSON (keys sorted, no whitespace).
    pub request_json: String,
    /// When it was accepted, Unix ms.
    pub created_at: i64,
    /// Its state.
    pub state: JobState,
    /// The job it reprints, if it is a reprint.
    pub reprint_of: Option<String>,
}

/// What [`Spool::cancel_job`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReport {
    /// Labels that went from queued to cancelled now.
    pub cancelled: u32,
    /// Labels left in `sent`: they may still print, and can still be confirmed.
    pub in_flight: u32,
    /// The job's state afterwards (a job already done stays done).
    pub state: JobState,
    /// The job's labels counted by state, afterwards.
    pub progress: JobProgress,
}

/// One printed label, as exported for matching Informed Visibility scans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintLogEntry {
    /// When the printer confirmed it, Unix ms.
    pub printed_at_ms: i64,
    /// The job id.
    pub job_id: String,
    /// 0-based label index in the job.
    pub index: u32,
    /// The printer that printed it.
    pub printer: String,
    /// Its Mailer ID, if it has an IMb.
    pub mailer_id: Option<String>,
    /// Its serial, if it has an IMb.
    pub serial: Option<u64>,
    /// Its 20-digit tracking code, if it has an IMb.
    pub tracking: Option<String>,
    /// Its routing code (0, 5, 9 or 11 digits).
    pub routing: String,
    /// Recipient.
    pub recipient: String,
}

/// What [`Spool::prune`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Finished jobs deleted.
    pub jobs: u64,
    /// Their labels, deleted with them.
    pub labels: u64,
    /// Print-log rows deleted.
    pub print_log: u64,
    /// Database pages given back to the file system by `PRAGMA incremental_vacuum`
    /// (0 for a file without incremental auto-vacuum: see the module doc).
    pub pages_freed: u64,
}

/// `Option<(mailer_id, serial)>` as `{"mailer_id": …, "serial": …}` or `null`.
mod serial_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct MailerSerial {
        mailer_id: String,
        serial: u64,
    }

    #[derive(Serialize)]
    struct MailerSerialRef<'a> {
        mailer_id: &'a str,
        serial: u64,
    }

    pub(super) fn serialize<S: Serializer>(
        value: &Option<(String, u64)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value
            .as_ref()
            .map(|(mailer_id, serial)| MailerSerialRef {
                mailer_id,
                serial: *serial,
            })
            .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(String, u64)>, D::Error> {
        Ok(Option::<MailerSerial>::deserialize(deserializer)?.map(|m| (m.mailer_id, m.serial)))
    }
}

/// A handle on the spool file. Blocking; keep it on one thread (it is `Send`).
pub struct Spool {
    /// The connection; every public call is one transaction on it.
    conn: Connection,
    /// When to warn about a range running low.
    low_water: LowWater,
    /// The write turn shared by every handle on this file in this process (see
    /// [`write_turn`]).
    writers: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

/// A job checked before any database work: everything that can be refused without
/// the database is refused here, so a batch's transaction only sees plausible jobs.
struct PreparedJob {
    /// The client's id, checked.
    id: Option<String>,
    /// The printer's name.
    printer: String,
    /// 0 to 9.
    priority: u8,
    /// The request as canonical JSON.
    request: String,
    /// The labels.
    labels: Vec<NewLabel>,
    /// Their routing codes, parsed.
    routings: Vec<Routing>,
    /// Serials wanted per Mailer ID.
    wanted: BTreeMap<String, u64>,
    /// `labels.len()`.
    label_count: u32,
}

impl PreparedJob {
    fn new(job: NewJob) -> Result<PreparedJob, SpoolError> {
        if let Some(id) = &job.id {
            check_job_id(id)?;
        }
        let request: serde_json::Value =
            serde_json::from_str(&job.request_json).map_err(SpoolError::BadRequestJson)?;
        // Canonical text, so whitespace or key order (serde_json sorts keys) do not
        // turn a resubmit into a conflict.
        let request = request.to_string();
        if job.priority > MAX_PRIORITY {
            return Err(SpoolError::BadPriority {
                priority: job.priority,
            });
        }
        if job.labels.is_empty() {
            return Err(SpoolError::NoLabels);
        }
        let label_count = u32::try_from(job.labels.len()).map_err(|_| SpoolError::Corrupt {
            what: "more than 2^32 labels in one job".into(),
        })?;
        // Validate every label: a zero serial of the right length stands in for the one
        // to be allocated.
        let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
        let mut routings = Vec::with_capacity(job.labels.len());
        let mut previous_unit = None;
        for (index, label) in (0u32..).zip(&job.labels) {
            if let Some(previous) = previous_unit.filter(|&p| label.unit < p) {
                return Err(SpoolError::BadUnit {
                    index,
                    unit: label.unit,
                    previous,
                });
            }
            previous_unit = Some(label.unit);
            let imb_err = |source| SpoolError::Imb { index, source };
            routings.push(Routing::parse(&label.routing).map_err(imb_err)?);
            if let Some(code) = &label.tracking {
                Tracking::parse(code).map_err(imb_err)?;
            }
            if let Some(imb) = &label.imb {
                compose_tracking(&imb.barcode_id, &imb.service_type, &imb.mailer_id, 0)
                    .map_err(imb_err)?;
                match wanted.get_mut(imb.mailer_id.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        wanted.insert(imb.mailer_id.clone(), 1);
                    }
                }
            }
        }
        Ok(PreparedJob {
            id: job.id,
            printer: job.printer,
            priority: job.priority,
            request,
            labels: job.labels,
            routings,
            wanted,
            label_count,
        })
    }
}

/// A job row to insert.
struct JobRow<'a> {
    id: &'a str,
    printer: &'a str,
    priority: u8,
    request: &'a str,
    reply: &'a str,
    created_at: i64,
    reprint_of: Option<&'a str>,
    reprint_serials: Option<&'static str>,
}

/// A label row to insert (always queued).
struct LabelRow<'a> {
    index: u32,
    unit: u32,
    assigned: Option<&'a AssignedSerial>,
    /// A tracking code the client chose (no serial of ours).
    client_tracking: Option<&'a str>,
    routing: &'a str,
    recipient: &'a str,
    /// For a same-serial reprint: the job that first used the serial.
    original_job: Option<&'a str>,
}

/// What a label change does besides the state.
#[derive(Clone, Copy)]
enum Change<'a> {
    /// Handed to the transport, with the printer's label counter read before.
    Sent { odometer: Option<i64> },
    /// Confirmed; `printer` names the printer for the print log (the job's when `None`).
    Printed { printer: Option<&'a str> },
    /// Given up, and why.
    Failed { reason: &'a str },
}

impl Change<'_> {
    fn to(self) -> LabelState {
        match self {
            Change::Sent { .. } => LabelState::Sent,
            Change::Printed { .. } => LabelState::Printed,
            Change::Failed { .. } => LabelState::Failed,
        }
    }

    /// The states a label may leave for this change.
    fn from(self) -> &'static [LabelState] {
        match self {
            // From sent again after a crash, from failed for a retry.
            Change::Sent { .. } => &[LabelState::Queued, LabelState::Sent, LabelState::Failed],
            Change::Printed { .. } => &[LabelState::Sent],
            Change::Failed { .. } => &[LabelState::Queued, LabelState::Sent],
        }
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
        // Only takes effect on a new file, and only before WAL writes its header; an
        // existing file keeps its mode (see the module doc).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SpoolError::NotWal { found: mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // When the log starts over, a log file grown past this (by a long burst of
        // commits) is cut back to it.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut spool = Spool {
            conn,
            low_water: options.low_water,
            writers: writers_of(path),
        };
        spool.migrate()?;
        Ok(spool)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], inside one immediate transaction so two
    /// processes opening a new file at once do not both create it, and a crash during a
    /// migration leaves the old version intact.
    fn migrate(&mut self) -> Result<(), SpoolError> {
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
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
        if found < 2 {
            tx.execute_batch(MIGRATE_V2)?;
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
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
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
    /// The same as [`Spool::accept_jobs`] with one job.
    pub fn accept_job(&mut self, job: NewJob, now_ms: i64) -> Result<Accepted, SpoolError> {
        self.accept_jobs(vec![job], now_ms)
            .pop()
            .unwrap_or_else(|| {
                Err(SpoolError::Corrupt {
                    what: "a batch of one job gave no answer".into(),
                })
            })
    }

    /// Accepts many jobs with one commit (one fsync): the group commit behind the
    /// daemon's throughput. Each job runs inside its own `SAVEPOINT`, so one refused job
    /// (an id conflict, a range exhausted, …) rolls back only itself. Answers come in
    /// input order and are exactly what [`Spool::accept_job`] would give one job at a
    /// time, in that order: a client id seen before, also earlier in the same batch, is
    /// replayed. Nothing is durable until this returns; if the commit itself fails,
    /// every job that would have been accepted gets that error.
    pub fn accept_jobs(
        &mut self,
        jobs: Vec<NewJob>,
        now_ms: i64,
    ) -> Vec<Result<Accepted, SpoolError>> {
        let prepared: Vec<Result<PreparedJob, SpoolError>> =
            jobs.into_iter().map(PreparedJob::new).collect();
        let unreachable = || SpoolError::Corrupt {
            what: "unreachable: a refused job has no answer".into(),
        };
        if prepared.iter().all(Result::is_err) {
            return prepared
                .into_iter()
                .map(|p| p.and_then(|_| Err(unreachable())))
                .collect();
        }
        let low_water = self.low_water;
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(err) => {
                return prepared
                    .into_iter()
                    .map(|p| p.and_then(|_| Err(SpoolError::Sqlite(copy_sqlite_error(&err)))))
                    .collect()
            }
        };
        let mut results = Vec::with_capacity(prepared.len());
        // Set when the transaction itself is lost: every answer so far is void.
        let mut lost: Option<rusqlite::Error> = None;
        for job in prepared {
            let job = match job {
                Ok(job) => job,
                Err(err) => {
                    results.push(Err(err));
                    continue;
                }
            };
            if let Some(err) = &lost {
                results.push(Err(SpoolError::Sqlite(copy_sqlite_error(err))));
                continue;
            }
            let savepoint = match tx.savepoint() {
                Ok(savepoint) => savepoint,
                Err(err) => {
                    results.push(Err(SpoolError::Sqlite(copy_sqlite_error(&err))));
                    lost = Some(err);
                    continue;
                }
            };
            match accept_in(&savepoint, job, now_ms, low_water) {
                Ok(answer) => match savepoint.commit() {
                    Ok(()) => results.push(Ok(answer)),
                    Err(err) => {
                        results.push(Err(SpoolError::Sqlite(copy_sqlite_error(&err))));
                        lost = Some(err);
                    }
                },
                Err(refused) => {
                    // ROLLBACK TO and RELEASE: this job leaves no trace.
                    if let Err(err) = savepoint.finish() {
                        lost = Some(err);
                    }
                    results.push(Err(refused));
                }
            }
            if lost.is_none() && tx.is_autocommit() {
                // SQLite rolled the whole transaction back (an I/O error, a full disk).
                lost = Some(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the batch transaction was rolled back".into()),
                ));
            }
        }
        let failure = match lost {
            Some(err) => Some(err),
            None if results.iter().any(Result::is_ok) => tx.commit().err(),
            None => None, // nothing accepted: the transaction rolls back on drop
        };
        if let Some(err) = failure {
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(SpoolError::Sqlite(copy_sqlite_error(&err)));
                }
            }
        }
        results
    }

    /// Records that label `index` of `job_id` was handed to the transport (from queued,
    /// from sent again after a crash, or from failed for a retry). Counts an attempt and
    /// clears the stored odometer reading ([`Spool::mark_sent_many`] stores one).
    pub fn mark_sent(&mut self, job_id: &str, index: u32, now_ms: i64) -> Result<(), SpoolError> {
        self.change_labels(job_id, &[index], Change::Sent { odometer: None }, now_ms)
            .map(drop)
    }

    /// Records, in one transaction, that labels `indices` of `job_id` were handed to the
    /// transport, with `odometer`: the printer's label counter read just before sending
    /// (`None` when the printer has none), which crash recovery compares with the
    /// counter afterwards. Counts an attempt per label. Any label in a state that cannot
    /// go to sent refuses the whole call.
    pub fn mark_sent_many(
        &mut self,
        job_id: &str,
        indices: &[u32],
        odometer: Option<u64>,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        let odometer = odometer.map(to_sql).transpose()?;
        self.change_labels(job_id, indices, Change::Sent { odometer }, now_ms)
            .map(drop)
    }

    /// Records that the printer confirmed label `index` of `job_id`, and writes its
    /// print-log row (with the job's printer).
    pub fn mark_printed(
        &mut self,
        job_id: &str,
        index: u32,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        self.change_labels(job_id, &[index], Change::Printed { printer: None }, now_ms)
            .map(drop)
    }

    /// Records, in one transaction, that `printer` confirmed labels `indices` of
    /// `job_id` (each must be sent), with a print-log row each. When no label is left
    /// queued or sent, an active job becomes done. Returns the job's progress.
    pub fn mark_printed_many(
        &mut self,
        job_id: &str,
        indices: &[u32],
        printer: &str,
        now_ms: i64,
    ) -> Result<JobProgress, SpoolError> {
        self.change_labels(
            job_id,
            indices,
            Change::Printed {
                printer: Some(printer),
            },
            now_ms,
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
        self.change_labels(job_id, &[index], Change::Failed { reason }, now_ms)
            .map(drop)
    }

    /// Records, in one transaction, that labels `indices` of `job_id` (queued or sent)
    /// failed, and why. Returns the job's progress (failed labels are final, so the job
    /// may become done; [`Spool::mark_sent`] still retries them).
    pub fn mark_failed_many(
        &mut self,
        job_id: &str,
        indices: &[u32],
        reason: &str,
        now_ms: i64,
    ) -> Result<JobProgress, SpoolError> {
        self.change_labels(job_id, indices, Change::Failed { reason }, now_ms)
    }

    /// Label state changes, the job's counts, state and the print log, in one
    /// transaction; any label that cannot make the change refuses the whole call.
    fn change_labels(
        &mut self,
        job_id: &str,
        indices: &[u32],
        change: Change<'_>,
        now_ms: i64,
    ) -> Result<JobProgress, SpoolError> {
        let mut indices = indices.to_vec();
        indices.sort_unstable();
        indices.dedup();
        let to = change.to();
        let (reason, odometer, printer) = match change {
            Change::Sent { odometer } => (None, odometer, None),
            Change::Printed { printer } => (None, None, printer),
            Change::Failed { reason } => (Some(reason), None, None),
        };
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let job_state = read_job_state(&tx, job_id)?;
        {
            let mut get =
                tx.prepare_cached("SELECT state FROM labels WHERE job_id = ?1 AND idx = ?2")?;
            let mut update = tx.prepare_cached(
                "UPDATE labels SET state = ?3, updated_at = ?4, reason = ?5,
                        attempts = attempts + (?3 = 'sent'),
                        odometer = CASE WHEN ?3 = 'sent' THEN ?6 ELSE odometer END
                 WHERE job_id = ?1 AND idx = ?2",
            )?;
            let mut log = tx.prepare_cached(
                "INSERT INTO print_log (printed_at, job_id, idx, printer, mailer_id, serial,
                                        tracking, recipient, routing)
                 SELECT ?3, l.job_id, l.idx, COALESCE(?4, j.printer), l.mailer_id, l.serial,
                        l.tracking, l.recipient, l.routing
                 FROM labels l JOIN jobs j ON j.id = l.job_id
                 WHERE l.job_id = ?1 AND l.idx = ?2",
            )?;
            for &index in &indices {
                let state: Option<String> = get
                    .query_row(params![job_id, index], |row| row.get(0))
                    .optional()?;
                let Some(state) = state else {
                    return Err(SpoolError::UnknownLabel {
                        job_id: job_id.to_owned(),
                        index,
                    });
                };
                let current = LabelState::parse(&state)?;
                if !change.from().contains(&current) {
                    return Err(SpoolError::BadTransition {
                        job_id: job_id.to_owned(),
                        index,
                        from: current,
                        to,
                    });
                }
                update.execute(params![
                    job_id,
                    index,
                    to.as_str(),
                    now_ms,
                    reason,
                    odometer
                ])?;
                if to == LabelState::Printed {
                    log.execute(params![job_id, index, now_ms, printer])?;
                }
            }
        }
        if to == LabelState::Sent && !indices.is_empty() && job_state == JobState::Done {
            // A retried label reopens a job that had finished with failures.
            tx.prepare_cached(
                "UPDATE jobs SET state = 'active', finished_at = NULL WHERE id = ?1",
            )?
            .execute([job_id])?;
        }
        finish_job(&tx, job_id, now_ms)?;
        let (_, progress) = read_progress(&tx, job_id)?;
        tx.commit()?;
        Ok(progress)
    }

    /// Cancels `job_id`: its queued labels become cancelled (their serials stay used)
    /// and an active job becomes cancelled. Labels already sent are left alone: they may
    /// print, and the caller can still confirm them (the print log then has them). A job
    /// already done or cancelled is left as it is (`cancelled = 0`).
    pub fn cancel_job(&mut self, job_id: &str, now_ms: i64) -> Result<CancelReport, SpoolError> {
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (state, _) = read_progress(&tx, job_id)?;
        let mut cancelled = 0;
        if state == JobState::Active {
            // `state IN (…)` lets SQLite use the partial index on open labels.
            cancelled = tx.execute(
                "UPDATE labels SET state = 'cancelled', updated_at = ?2
                 WHERE job_id = ?1 AND state IN ('queued', 'sent') AND state = 'queued'",
                params![job_id, now_ms],
            )?;
            tx.execute(
                "UPDATE jobs SET state = 'cancelled' WHERE id = ?1",
                [job_id],
            )?;
            finish_job(&tx, job_id, now_ms)?;
        }
        let (state, progress) = read_progress(&tx, job_id)?;
        tx.commit()?;
        Ok(CancelReport {
            cancelled: u32::try_from(cancelled).map_err(|_| SpoolError::Corrupt {
                what: "label count over 2^32".into(),
            })?,
            in_flight: progress.sent,
            state,
            progress,
        })
    }

    /// The next labels for `printer`'s worker: queued or sent labels of the active job
    /// that comes first (priority descending, then arrival), in index order. At most
    /// `max` labels (`0` counts as 1), except that a print unit is never split: the
    /// last unit is returned whole. Labels of two jobs are never mixed. Empty when the
    /// printer has nothing to do. Reads nothing but open labels, through indexes.
    pub fn next_labels(&self, printer: &str, max: usize) -> Result<Vec<QueuedLabel>, SpoolError> {
        self.next_labels_from(printer, max, None)
    }

    /// What [`Spool::next_labels`] will return once the labels of `job_id` before index
    /// `from` are no longer open: the same choice, with that job's labels read from
    /// `from` on (and the next job in line when none are left there). A file printer
    /// renders these while it writes the labels before them; the spool is not changed.
    pub fn next_labels_after(
        &self,
        printer: &str,
        max: usize,
        job_id: &str,
        from: u32,
    ) -> Result<Vec<QueuedLabel>, SpoolError> {
        self.next_labels_from(printer, max, Some((job_id, from)))
    }

    fn next_labels_from(
        &self,
        printer: &str,
        max: usize,
        after: Option<(&str, u32)>,
    ) -> Result<Vec<QueuedLabel>, SpoolError> {
        let snapshot = self.conn.unchecked_transaction()?;
        let mut jobs = snapshot.prepare_cached(NEXT_JOB_SQL)?;
        let mut candidates = jobs.query([printer])?;
        let mut labels = snapshot.prepare_cached(OPEN_LABELS_SQL)?;
        let mut labels_from = snapshot.prepare_cached(OPEN_LABELS_FROM_SQL)?;
        let max = max.max(1);
        let mut out: Vec<QueuedLabel> = Vec::new();
        // The first job normally has open labels (a job without any is done or
        // cancelled); the loop only guards against a file edited by hand (and, after
        // `after`, moves on to the next job).
        while out.is_empty() {
            let Some(job) = candidates.next()? else { break };
            let job_id: String = job.get(0)?;
            let priority = priority_from_sql(job.get(1)?)?;
            let mut rows = match after {
                Some((after_job, from)) if after_job == job_id => {
                    labels_from.query(params![job_id, from])?
                }
                _ => labels.query([&job_id])?,
            };
            while let Some(row) = rows.next()? {
                let unit = index_from_sql(row.get(1)?)?;
                if out.len() >= max && out.last().map(|l| l.unit) != Some(unit) {
                    break;
                }
                out.push(QueuedLabel {
                    job_id: job_id.clone(),
                    index: index_from_sql(row.get(0)?)?,
                    unit,
                    state: LabelState::parse(&row.get::<_, String>(2)?)?,
                    priority,
                    serial: serial_from_sql(row.get(3)?, row.get(4)?)?,
                    tracking: row.get(5)?,
                    routing: row.get(6)?,
                    recipient: row.get(7)?,
                    attempts: count_from_sql(row.get(8)?)?,
                    odometer: row.get::<_, Option<i64>>(9)?.map(from_sql).transpose()?,
                });
            }
        }
        Ok(out)
    }

    /// Open labels (queued or sent) of active jobs, per printer: the queue depth. Printers
    /// with nothing to do are absent.
    pub fn queue_depth(&self) -> Result<BTreeMap<String, u64>, SpoolError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT j.printer, SUM(c.queued + c.sent)
             FROM jobs j JOIN job_counts c ON c.job_id = j.id
             WHERE j.state = 'active' GROUP BY j.printer",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let open = from_sql(row.get(1)?)?;
            if open > 0 {
                out.insert(row.get(0)?, open);
            }
        }
        Ok(out)
    }

    /// The first label of `job_id` not confirmed printed (queued or sent), or `None`
    /// when every label is final (printed, failed or cancelled).
    pub fn resume_point(&self, job_id: &str) -> Result<Option<u32>, SpoolError> {
        require_job(&self.conn, job_id)?;
        let first: Option<i64> = self.conn.query_row(
            "SELECT MIN(idx) FROM labels WHERE job_id = ?1 AND state IN ('queued', 'sent')",
            [job_id],
            |row| row.get(0),
        )?;
        first.map(index_from_sql).transpose()
    }

    /// Every job with a label queued or sent, in arrival order: what to re-queue after
    /// a restart. Labels in `sent` are listed as possibly printed (cancelled jobs
    /// included: their sent labels may have printed too).
    pub fn unfinished_jobs(&self) -> Result<Vec<Unfinished>, SpoolError> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.printer, l.idx, l.state
             FROM jobs j JOIN labels l ON l.job_id = j.id
             WHERE l.state IN ('queued', 'sent')
             ORDER BY j.rowid, l.idx",
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
        require_job(&self.conn, job_id)?;
        read_labels(&self.conn, job_id)
    }

    /// A job's state, priority, progress and labels, or `None` for an unknown job. One
    /// consistent snapshot.
    pub fn job_status(&self, job_id: &str) -> Result<Option<JobStatus>, SpoolError> {
        self.job_status_with(job_id, true)
    }

    /// [`Spool::job_status`], reading the labels only when `labels` is true (else
    /// `labels` is empty and only the counts are read).
    ///
    /// # Errors
    ///
    /// As [`Spool::job_status`].
    pub fn job_status_with(
        &self,
        job_id: &str,
        labels: bool,
    ) -> Result<Option<JobStatus>, SpoolError> {
        let snapshot = self.conn.unchecked_transaction()?;
        let row: Option<(String, i64, i64)> = snapshot
            .prepare_cached("SELECT printer, priority, created_at FROM jobs WHERE id = ?1")?
            .query_row([job_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let Some((printer, priority, created_at)) = row else {
            return Ok(None);
        };
        let (state, progress) = read_progress(&snapshot, job_id)?;
        let labels = if labels {
            read_labels(&snapshot, job_id)?
        } else {
            Vec::new()
        };
        Ok(Some(JobStatus {
            job_id: job_id.to_owned(),
            printer,
            state,
            priority: priority_from_sql(priority)?,
            created_at,
            progress,
            labels,
        }))
    }

    /// Whether commits on this handle run SQLite's automatic WAL checkpoint (copying
    /// the log into the database file and syncing it, once the log passes 1,000 pages):
    /// on by default. The daemon's office turns it off, so a client's reply never waits
    /// for a checkpoint, and runs [`Spool::checkpoint`] from a thread of its own.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Sqlite`] when the setting cannot be changed.
    pub fn set_auto_checkpoint(&self, on: bool) -> Result<(), SpoolError> {
        let _pages: i64 = self.conn.query_row(
            &format!("PRAGMA wal_autocheckpoint = {}", if on { 1000 } else { 0 }),
            [],
            |row| row.get(0),
        )?;
        Ok(())
    }

    /// A passive WAL checkpoint: copies what the log holds into the database file as
    /// far as readers allow, without waiting for any lock and without blocking writers.
    /// Returns the log's size in frames and how many of them are in the database now.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Sqlite`] when the checkpoint fails.
    pub fn checkpoint(&self) -> Result<(u64, u64), SpoolError> {
        let (log, done): (i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get(1)?, row.get(2)?))
                })?;
        Ok((log.max(0) as u64, done.max(0) as u64))
    }

    /// [`Spool::checkpoint`] while holding the write turn of this process's handles:
    /// none of them can commit meanwhile, so (unless a reader or another process holds
    /// it back) the whole log is copied and the next commit starts the log over from
    /// its beginning. A checkpoint beside a steady stream of commits never catches up
    /// with the last one, and then the log only grows; this is what bounds it.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Sqlite`] when the checkpoint fails.
    pub fn checkpoint_whole(&self) -> Result<(u64, u64), SpoolError> {
        let _turn = write_turn(&self.writers);
        self.checkpoint()
    }

    /// A job's labels counted by state.
    pub fn job_progress(&self, job_id: &str) -> Result<JobProgress, SpoolError> {
        Ok(read_progress(&self.conn, job_id)?.1)
    }

    /// The job as submitted (its request and printer), or `None` for an unknown job.
    pub fn job_request(&self, job_id: &str) -> Result<Option<StoredJob>, SpoolError> {
        let row: Option<(String, i64, String, i64, String, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT printer, priority, request, created_at, state, reprint_of
                 FROM jobs WHERE id = ?1",
            )?
            .query_row([job_id], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .optional()?;
        row.map(
            |(printer, priority, request_json, created_at, state, reprint_of)| {
                Ok(StoredJob {
                    printer,
                    priority: priority_from_sql(priority)?,
                    request_json,
                    created_at,
                    state: JobState::parse(&state)?,
                    reprint_of,
                })
            },
        )
        .transpose()
    }

    /// The stored answer for `job_id` (with `replayed = true`), if the job exists.
    pub fn job(&self, job_id: &str) -> Result<Option<Accepted>, SpoolError> {
        let reply: Option<String> = self
            .conn
            .query_row("SELECT reply FROM jobs WHERE id = ?1", [job_id], |row| {
                row.get(0)
            })
            .optional()?;
        reply.map(|reply| parse_reply(job_id, &reply)).transpose()
    }

    /// Every job id, in arrival order.
    pub fn job_ids(&self) -> Result<Vec<String>, SpoolError> {
        let mut stmt = self.conn.prepare("SELECT id FROM jobs ORDER BY rowid")?;
        let ids = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Prints `job_id` again as a new job: same printer, priority and request, every
    /// label queued, in one transaction. [`Serials::New`] allocates fresh serials from
    /// the ranges (new pieces; the old serials stay used); [`Serials::Same`] copies the
    /// old labels' serials and tracking codes (the same pieces again). The new job's id
    /// is `new_job_id`, or `<job_id>.r<N>` with the smallest free N from 1. A
    /// `new_job_id` that already names a reprint of `job_id` with the same `serials`
    /// returns that job's stored answer (`replayed = true`); naming any other job is
    /// [`SpoolError::IdConflict`]. An unknown `job_id` is [`SpoolError::UnknownJob`].
    pub fn reprint(
        &mut self,
        job_id: &str,
        serials: Serials,
        new_job_id: Option<String>,
        now_ms: i64,
    ) -> Result<Accepted, SpoolError> {
        if let Some(id) = &new_job_id {
            check_job_id(id)?;
        }
        let mode = match serials {
            Serials::Same => "same",
            Serials::New => "new",
        };
        let low_water = self.low_water;
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<(String, i64, String)> = tx
            .query_row(
                "SELECT printer, priority, request FROM jobs WHERE id = ?1",
                [job_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((printer, priority, request)) = old else {
            return Err(SpoolError::UnknownJob {
                job_id: job_id.to_owned(),
            });
        };
        let priority = priority_from_sql(priority)?;
        let new_id = match new_job_id {
            Some(id) => {
                let stored: Option<(Option<String>, Option<String>, String)> = tx
                    .query_row(
                        "SELECT reprint_of, reprint_serials, reply FROM jobs WHERE id = ?1",
                        [&id],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()?;
                if let Some((of, of_mode, reply)) = stored {
                    if of.as_deref() == Some(job_id) && of_mode.as_deref() == Some(mode) {
                        return parse_reply(&id, &reply);
                    }
                    return Err(SpoolError::IdConflict { job_id: id });
                }
                id
            }
            None => {
                let mut n = 1u64;
                loop {
                    let id = format!("{job_id}.r{n}");
                    if !job_exists(&tx, &id)? {
                        break id;
                    }
                    n += 1;
                }
            }
        };
        check_job_id(&new_id)?;

        let old_labels = read_labels(&tx, job_id)?;
        let originals: Vec<Option<String>> = {
            let mut stmt =
                tx.prepare("SELECT original_job FROM labels WHERE job_id = ?1 ORDER BY idx")?;
            let rows = stmt.query_map([job_id], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let label_count = u32::try_from(old_labels.len()).map_err(|_| SpoolError::Corrupt {
            what: "more than 2^32 labels in one job".into(),
        })?;
        if label_count == 0 {
            return Err(SpoolError::Corrupt {
                what: format!("job {job_id:?} has no labels"),
            });
        }
        let mut assigned = Vec::new();
        let mut warnings = Vec::new();
        let mut original_of = BTreeMap::new();
        match serials {
            Serials::Same => {
                for (label, original) in old_labels.iter().zip(&originals) {
                    if let (Some((mailer_id, serial)), Some(tracking)) =
                        (&label.serial, &label.tracking)
                    {
                        assigned.push(AssignedSerial {
                            index: label.index,
                            mailer_id: mailer_id.clone(),
                            serial: *serial,
                            tracking: tracking.clone(),
                        });
                        original_of.insert(
                            label.index,
                            original.clone().unwrap_or_else(|| job_id.to_owned()),
                        );
                    }
                }
            }
            Serials::New => {
                let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
                for label in &old_labels {
                    if let Some((mailer_id, _)) = &label.serial {
                        *wanted.entry(mailer_id.clone()).or_default() += 1;
                    }
                }
                let (mut next, low) = allocate(&tx, &wanted, low_water)?;
                warnings = low;
                for label in &old_labels {
                    let (Some((mailer_id, _)), Some(tracking)) = (&label.serial, &label.tracking)
                    else {
                        continue;
                    };
                    let corrupt = || SpoolError::Corrupt {
                        what: format!("job {job_id:?} label {}: bad tracking code", label.index),
                    };
                    let (Some(barcode_id), Some(service_type)) =
                        (tracking.get(0..2), tracking.get(2..5))
                    else {
                        return Err(corrupt());
                    };
                    let slot = next.get_mut(mailer_id).ok_or_else(corrupt)?;
                    let serial = *slot;
                    *slot += 1;
                    let tracking = compose_tracking(barcode_id, service_type, mailer_id, serial)
                        .map_err(|source| SpoolError::Imb {
                            index: label.index,
                            source,
                        })?;
                    assigned.push(AssignedSerial {
                        index: label.index,
                        mailer_id: mailer_id.clone(),
                        serial,
                        tracking: tracking.as_str().to_owned(),
                    });
                }
            }
        }
        let answer = Accepted {
            job_id: new_id.clone(),
            label_count,
            serials: assigned,
            warnings,
            replayed: false,
        };
        let reply = reply_json(&answer)?;
        insert_job(
            &tx,
            &JobRow {
                id: &new_id,
                printer: &printer,
                priority,
                request: &request,
                reply: &reply,
                created_at: now_ms,
                reprint_of: Some(job_id),
                reprint_serials: Some(mode),
            },
        )?;
        let mut serial_of = answer.serials.iter().peekable();
        for label in &old_labels {
            let assigned = serial_of.next_if(|a| a.index == label.index);
            insert_label(
                &tx,
                &new_id,
                &LabelRow {
                    index: label.index,
                    unit: label.unit,
                    assigned,
                    // A client's own tracking code is printed again as it was.
                    client_tracking: label.tracking.as_deref().filter(|_| label.serial.is_none()),
                    routing: &label.routing,
                    recipient: &label.recipient,
                    original_job: original_of.get(&label.index).map(String::as_str),
                },
                now_ms,
            )?;
        }
        tx.commit()?;
        Ok(answer)
    }

    /// Pauses or resumes `printer`, remembered across restarts (with the reason, for
    /// status displays).
    pub fn set_paused(
        &mut self,
        printer: &str,
        paused: bool,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        self.conn.execute(
            "INSERT INTO printers (name, paused, reason, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET paused = ?2, reason = ?3, updated_at = ?4",
            params![printer, paused, reason, now_ms],
        )?;
        Ok(())
    }

    /// The printers that are paused, with the reason given when they were.
    pub fn paused_printers(&self) -> Result<BTreeMap<String, Option<String>>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, reason FROM printers WHERE paused = 1")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Print-log rows with `since_ms <= printed_at < until_ms` (no upper bound when
    /// `None`), oldest first, at most `limit`. Page on by passing the last row's time
    /// as `since_ms` (rows with equal times come in the order they were written).
    pub fn print_log(
        &self,
        since_ms: i64,
        until_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<PrintLogEntry>, SpoolError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT printed_at, job_id, idx, printer, mailer_id, serial, tracking, routing,
                    recipient
             FROM print_log WHERE printed_at >= ?1 AND printed_at < ?2
             ORDER BY printed_at, rowid LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![since_ms, until_ms.unwrap_or(i64::MAX), limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(PrintLogEntry {
                printed_at_ms: row.get(0)?,
                job_id: row.get(1)?,
                index: index_from_sql(row.get(2)?)?,
                printer: row.get(3)?,
                mailer_id: row.get(4)?,
                serial: row.get::<_, Option<i64>>(5)?.map(from_sql).transpose()?,
                tracking: row.get(6)?,
                routing: row.get(7)?,
                recipient: row.get(8)?,
            });
        }
        Ok(out)
    }

    /// Retention: deletes jobs that finished (done, or cancelled with nothing left in
    /// `sent`) before `older_than_ms` (a Unix-ms cutoff, say now minus 45 days) with
    /// their labels, and print-log rows written before it; then gives freed pages back
    /// with `PRAGMA incremental_vacuum`. Serial ranges are not touched, so a serial is
    /// never handed out again, whatever is deleted. Active jobs are never deleted.
    pub fn prune(&mut self, older_than_ms: i64) -> Result<PruneReport, SpoolError> {
        let writers = Arc::clone(&self.writers);
        let _turn = write_turn(&writers);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let finished = "state IN ('done', 'cancelled') AND finished_at < ?1
                        AND (SELECT queued + sent FROM job_counts WHERE job_id = jobs.id) = 0";
        let labels: i64 = tx.query_row(
            &format!(
                "SELECT COALESCE(SUM(c.queued + c.sent + c.printed + c.failed + c.cancelled), 0)
                 FROM jobs JOIN job_counts c ON c.job_id = jobs.id WHERE {finished}"
            ),
            [older_than_ms],
            |row| row.get(0),
        )?;
        let jobs = tx.execute(
            &format!("DELETE FROM jobs WHERE {finished}"),
            [older_than_ms],
        )?;
        let print_log = tx.execute(
            "DELETE FROM print_log WHERE printed_at < ?1",
            [older_than_ms],
        )?;
        tx.commit()?;
        let free_before: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
        // Its own write transaction; a no-op unless auto_vacuum is INCREMENTAL.
        self.conn.execute_batch("PRAGMA incremental_vacuum")?;
        let free_after: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
        Ok(PruneReport {
            jobs: u64::try_from(jobs).unwrap_or(u64::MAX),
            labels: from_sql(labels)?,
            print_log: u64::try_from(print_log).unwrap_or(u64::MAX),
            pages_freed: from_sql(free_before.saturating_sub(free_after).max(0))?,
        })
    }
}

/// One job of a batch, inside its savepoint: replay or conflict for a known id, else
/// allocate its serials and insert it.
fn accept_in(
    conn: &Connection,
    job: PreparedJob,
    now_ms: i64,
    low_water: LowWater,
) -> Result<Accepted, SpoolError> {
    if let Some(id) = &job.id {
        let stored: Option<(String, String, String)> = conn
            .prepare_cached("SELECT printer, request, reply FROM jobs WHERE id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        if let Some((printer, stored_request, reply)) = stored {
            if printer != job.printer || stored_request != job.request {
                return Err(SpoolError::IdConflict { job_id: id.clone() });
            }
            return parse_reply(id, &reply);
        }
    }
    let job_id = match job.id {
        Some(id) => id,
        None => generate_id(conn, now_ms)?,
    };
    for (index, label) in (0u32..).zip(&job.labels) {
        let Some(code) = &label.tracking else {
            continue;
        };
        let tracking = Tracking::parse(code).map_err(|source| SpoolError::Imb { index, source })?;
        let serial: u64 = tracking.serial().parse().map_err(|_| SpoolError::Corrupt {
            what: format!("serial of a parsed tracking code {code:?}"),
        })?;
        if let Some(range) = read_range(conn, tracking.mailer_id())? {
            if (range.first..=range.last).contains(&serial) {
                return Err(SpoolError::ClientSerialInRange {
                    index,
                    mailer_id: range.mailer_id,
                    serial,
                    first: range.first,
                    last: range.last,
                });
            }
        }
    }
    let (mut next, warnings) = allocate(conn, &job.wanted, low_water)?;
    let mut serials = Vec::new();
    for (index, label) in (0u32..).zip(&job.labels) {
        let Some(imb) = &label.imb else { continue };
        let slot = next
            .get_mut(imb.mailer_id.as_str())
            .ok_or_else(|| SpoolError::Corrupt {
                what: "serial block missing for a validated mailer id".into(),
            })?;
        let serial = *slot;
        *slot += 1;
        let tracking = compose_tracking(&imb.barcode_id, &imb.service_type, &imb.mailer_id, serial)
            .map_err(|source| SpoolError::Imb { index, source })?;
        serials.push(AssignedSerial {
            index,
            mailer_id: imb.mailer_id.clone(),
            serial,
            tracking: tracking.as_str().to_owned(),
        });
    }
    let answer = Accepted {
        job_id,
        label_count: job.label_count,
        serials,
        warnings,
        replayed: false,
    };
    let reply = reply_json(&answer)?;
    insert_job(
        conn,
        &JobRow {
            id: &answer.job_id,
            printer: &job.printer,
            priority: job.priority,
            request: &job.request,
            reply: &reply,
            created_at: now_ms,
            reprint_of: None,
            reprint_serials: None,
        },
    )?;
    let mut serial_of = answer.serials.iter().peekable();
    for ((index, label), routing) in (0u32..).zip(&job.labels).zip(&job.routings) {
        insert_label(
            conn,
            &answer.job_id,
            &LabelRow {
                index,
                unit: label.unit,
                assigned: serial_of.next_if(|a| a.index == index),
                client_tracking: label.tracking.as_deref(),
                routing: routing.as_str(),
                recipient: &label.recipient,
                original_job: None,
            },
            now_ms,
        )?;
    }
    Ok(answer)
}

/// Takes `wanted[mailer_id]` consecutive serials from each range; returns the first
/// serial of each block and the low-water warnings. Refuses (changing nothing the
/// caller's transaction does not roll back) when a range is missing or too short.
fn allocate(
    conn: &Connection,
    wanted: &BTreeMap<String, u64>,
    low_water: LowWater,
) -> Result<(BTreeMap<String, u64>, Vec<Warning>), SpoolError> {
    let mut first = BTreeMap::new();
    let mut warnings = Vec::new();
    for (mailer_id, &n) in wanted {
        let range = read_range(conn, mailer_id)?.ok_or_else(|| SpoolError::NoRange {
            mailer_id: mailer_id.clone(),
        })?;
        let left = range.left();
        if left < n {
            return Err(SpoolError::RangeExhausted {
                mailer_id: mailer_id.clone(),
                left,
                wanted: n,
            });
        }
        conn.prepare_cached("UPDATE serial_ranges SET next = ?2 WHERE mailer_id = ?1")?
            .execute(params![mailer_id, to_sql(range.next + n)?])?;
        let size = range.last - range.first + 1;
        let threshold = match low_water {
            LowWater::Percent(p) => (size * u64::from(p)).div_ceil(100),
            LowWater::Count(c) => c,
        };
        let left_after = left - n;
        if left_after < threshold {
            warnings.push(Warning::LowWater {
                mailer_id: mailer_id.clone(),
                left: left_after,
                threshold,
            });
        }
        first.insert(mailer_id.clone(), range.next);
    }
    Ok((first, warnings))
}

fn insert_job(conn: &Connection, job: &JobRow<'_>) -> Result<(), SpoolError> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, printer, created_at, state, request, reply, priority, reprint_of,
                           reprint_serials)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        job.id,
        job.printer,
        job.created_at,
        job.request,
        job.reply,
        job.priority,
        job.reprint_of,
        job.reprint_serials,
    ])?;
    Ok(())
}

fn insert_label(
    conn: &Connection,
    job_id: &str,
    label: &LabelRow<'_>,
    now_ms: i64,
) -> Result<(), SpoolError> {
    let assigned = label.assigned;
    conn.prepare_cached(
        "INSERT INTO labels (job_id, idx, unit, state, mailer_id, serial, tracking, routing,
                             recipient, original_job, updated_at)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        job_id,
        label.index,
        label.unit,
        assigned.map(|a| a.mailer_id.as_str()),
        assigned.map(|a| to_sql(a.serial)).transpose()?,
        assigned
            .map(|a| a.tracking.as_str())
            .or(label.client_tracking),
        label.routing,
        label.recipient,
        label.original_job,
        now_ms,
    ])?;
    Ok(())
}

/// When no label of `job_id` is queued or sent: an active job becomes done, and the
/// finish time (what retention counts from) is set once.
fn finish_job(conn: &Connection, job_id: &str, now_ms: i64) -> Result<(), SpoolError> {
    // The counts first: `finished_at` sits after the request and reply in the row, so
    // reading it costs their size; that happens once, when the job finishes.
    let open: Option<i64> = conn
        .prepare_cached("SELECT queued + sent FROM job_counts WHERE job_id = ?1")?
        .query_row([job_id], |row| row.get(0))
        .optional()?;
    if open == Some(0) {
        conn.prepare_cached(
            "UPDATE jobs SET state = CASE state WHEN 'active' THEN 'done' ELSE state END,
                             finished_at = ?2
             WHERE id = ?1 AND finished_at IS NULL",
        )?
        .execute(params![job_id, now_ms])?;
    }
    Ok(())
}

/// A job's state, or [`SpoolError::UnknownJob`].
fn read_job_state(conn: &Connection, job_id: &str) -> Result<JobState, SpoolError> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| row.get(0))
        .optional()?;
    match state {
        Some(state) => JobState::parse(&state),
        None => Err(SpoolError::UnknownJob {
            job_id: job_id.to_owned(),
        }),
    }
}

/// A job's state and label counts (kept by triggers, so this reads two short rows).
fn read_progress(conn: &Connection, job_id: &str) -> Result<(JobState, JobProgress), SpoolError> {
    let row: Option<(String, [i64; 5])> = conn
        .prepare_cached(
            "SELECT j.state, c.queued, c.sent, c.printed, c.failed, c.cancelled
             FROM jobs j JOIN job_counts c ON c.job_id = j.id WHERE j.id = ?1",
        )?
        .query_row([job_id], |row| {
            Ok((
                row.get(0)?,
                [
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ],
            ))
        })
        .optional()?;
    let Some((state, [queued, sent, printed, failed, cancelled])) = row else {
        return Err(SpoolError::UnknownJob {
            job_id: job_id.to_owned(),
        });
    };
    let progress = JobProgress {
        job_id: job_id.to_owned(),
        total: count_from_sql(queued + sent + printed + failed + cancelled)?,
        printed: count_from_sql(printed)?,
        failed: count_from_sql(failed)?,
        cancelled: count_from_sql(cancelled)?,
        queued: count_from_sql(queued)?,
        sent: count_from_sql(sent)?,
        done: queued == 0 && sent == 0,
    };
    Ok((JobState::parse(&state)?, progress))
}

fn read_labels(conn: &Connection, job_id: &str) -> Result<Vec<LabelInfo>, SpoolError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, unit, state, mailer_id, serial, tracking, routing, recipient, attempts,
                reason, updated_at, odometer
         FROM labels WHERE job_id = ?1 ORDER BY idx",
    )?;
    let mut rows = stmt.query([job_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(LabelInfo {
            index: index_from_sql(row.get(0)?)?,
            unit: index_from_sql(row.get(1)?)?,
            state: LabelState::parse(&row.get::<_, String>(2)?)?,
            serial: serial_from_sql(row.get(3)?, row.get(4)?)?,
            tracking: row.get(5)?,
            routing: row.get(6)?,
            recipient: row.get(7)?,
            attempts: count_from_sql(row.get(8)?)?,
            reason: row.get(9)?,
            updated_at: row.get(10)?,
            odometer: row.get::<_, Option<i64>>(11)?.map(from_sql).transpose()?,
        });
    }
    Ok(out)
}

fn job_exists(conn: &Connection, job_id: &str) -> Result<bool, SpoolError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| row.get(0))
        .optional()?;
    Ok(found.is_some())
}

fn require_job(conn: &Connection, job_id: &str) -> Result<(), SpoolError> {
    if job_exists(conn, job_id)? {
        Ok(())
    } else {
        Err(SpoolError::UnknownJob {
            job_id: job_id.to_owned(),
        })
    }
}

/// A stored answer, marked as replayed.
fn parse_reply(job_id: &str, reply: &str) -> Result<Accepted, SpoolError> {
    let mut answer: Accepted = serde_json::from_str(reply).map_err(|e| SpoolError::Corrupt {
        what: format!("stored reply of job {job_id:?}: {e}"),
    })?;
    answer.replayed = true;
    Ok(answer)
}

fn reply_json(answer: &Accepted) -> Result<String, SpoolError> {
    serde_json::to_string(answer).map_err(|e| SpoolError::Corrupt {
        what: format!("cannot serialize the reply: {e}"),
    })
}

/// The same SQLite error again, for every job of a batch that one failure voids
/// (`rusqlite::Error` is not `Clone`; the code and message are what matter).
/// The write lock of the spool file at `path`, shared by every [`Spool`] this process
/// opens on it. SQLite lets one writer in at a time; a connection that finds the file
/// locked sleeps in its busy handler (1, 2, 5, 10 ms, …) and tries again, so a commit
/// that waits behind a printer worker's transaction would wake up to several
/// milliseconds after the file is free. Queuing on this lock first, the next writer in
/// labeld starts the moment the one before commits. Writers in other processes still
/// meet SQLite's lock and the busy timeout.
fn writers_of(path: &Path) -> Arc<Mutex<()>> {
    static WRITERS: OnceLock<Mutex<BTreeMap<PathBuf, Weak<Mutex<()>>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut table = WRITERS
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    table.retain(|_, w| w.strong_count() > 0);
    if let Some(shared) = table.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    let shared = Arc::new(Mutex::new(()));
    table.insert(key, Arc::downgrade(&shared));
    shared
}

/// Takes the write turn (a panicked holder's turn is free again: the lock guards no
/// data).
fn write_turn(writers: &Mutex<()>) -> MutexGuard<'_, ()> {
    writers.lock().unwrap_or_else(|e| e.into_inner())
}

fn copy_sqlite_error(err: &rusqlite::Error) -> rusqlite::Error {
    match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// The 20-digit tracking code of `serial` under `mailer_id`, zero-padded to the
/// serial's width.
fn compose_tracking(
    barcode_id: &str,
    service_type: &str,
    mailer_id: &str,
    serial: u64,
) -> Result<Tracking, EncodeError> {
    let width = serial_width(mailer_id);
    Tracking::from_fields(
        barcode_id,
        service_type,
        mailer_id,
        &format!("{serial:0width$}"),
    )
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
    let mut n: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(rowid), 0) + 1 FROM jobs")?
        .query_row([], |row| row.get(0))?;
    loop {
        let id = format!("auto-{now_ms}-{n}");
        if !job_exists(conn, &id)? {
            return Ok(id);
        }
        n += 1;
    }
}

fn read_range(conn: &Connection, mailer_id: &str) -> Result<Option<RangeStatus>, SpoolError> {
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT first, last, next FROM serial_ranges WHERE mailer_id = ?1")?
        .query_row([mailer_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
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
        what: format!("value {value} does not fit in sqlite"),
    })
}

fn from_sql(value: i64) -> Result<u64, SpoolError> {
    u64::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("negative value {value} where a serial or count belongs"),
    })
}

fn index_from_sql(value: i64) -> Result<u32, SpoolError> {
    u32::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("label index {value} out of range"),
    })
}

fn count_from_sql(value: i64) -> Result<u32, SpoolError> {
    u32::try_from(value).map_err(|_| SpoolError::Corrupt {
        what: format!("count {value} out of range"),
    })
}

fn priority_from_sql(value: i64) -> Result<u8, SpoolError> {
    u8::try_from(value)
        .ok()
        .filter(|&p| p <= MAX_PRIORITY)
        .ok_or_else(|| SpoolError::Corrupt {
            what: format!("priority {value} out of range"),
        })
}

fn serial_from_sql(
    mailer_id: Option<String>,
    serial: Option<i64>,
) -> Result<Option<(String, u64)>, SpoolError> {
    match (mailer_id, serial) {
        (Some(m), Some(s)) => Ok(Some((m, from_sql(s)?))),
        _ => Ok(None),
    }
}

/// Writes `entries` as CSV with a header row: `printed_at` (RFC 3339, UTC, ms),
/// `printed_at_ms`, `job_id`, `index`, `printer`, `mailer_id`, `serial` (zero-padded
/// to its width: 9 digits for a 6-digit Mailer ID, 6 for a 9-digit one), `tracking`,
/// `routing`, `imb` (tracking then routing: the 20–31 digits the barcode encodes, what
/// Informed Visibility reports) and `recipient`. Fields without a value are empty.
pub fn write_print_log_csv(
    entries: &[PrintLogEntry],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| std::io::Error::other(e);
    writer
        .write_record([
            "printed_at",
            "printed_at_ms",
            "job_id",
            "index",
            "printer",
            "mailer_id",
            "serial",
            "tracking",
            "routing",
            "imb",
            "recipient",
        ])
        .map_err(csv_err)?;
    for e in entries {
        let serial = match (&e.mailer_id, e.serial) {
            (Some(m), Some(s)) => format!("{s:0width$}", width = serial_width(m)),
            (None, Some(s)) => s.to_string(),
            _ => String::new(),
        };
        let imb = match &e.tracking {
            Some(t) => format!("{t}{}", e.routing),
            None => String::new(),
        };
        writer
            .write_record([
                format_rfc3339_ms(e.printed_at_ms).as_str(),
                e.printed_at_ms.to_string().as_str(),
                e.job_id.as_str(),
                e.index.to_string().as_str(),
                e.printer.as_str(),
                e.mailer_id.as_deref().unwrap_or(""),
                serial.as_str(),
                e.tracking.as_deref().unwrap_or(""),
                e.routing.as_str(),
                imb.as_str(),
                e.recipient.as_str(),
            ])
            .map_err(csv_err)?;
    }
    writer.flush()
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds: `2024-03-01T12:00:00.000Z`.
/// Years outside 0000–9999 are written with as many digits as they need.
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day). Howard Hinnant's
/// `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms"): eras of 400
/// years (146,097 days) counted from 0000-03-01, so leap days fall at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month from March = 0
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // In range by construction: month 1..=12, day 1..=31.
    (year, month as u32, day as u32)
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

    #[test]
    fn handles_on_one_file_share_one_write_turn() {
        let (dir, first) = temp_spool("turn");
        // The same file by another spelling of its path.
        let second = Spool::open(dir.join(".").join("spool.db")).unwrap();
        assert!(Arc::ptr_eq(&first.writers, &second.writers));
        let (other_dir, other) = temp_spool("turn-other");
        assert!(!Arc::ptr_eq(&first.writers, &other.writers));
        // While one handle holds the turn, another handle's write waits for it.
        let turn = write_turn(&first.writers);
        let writer = std::thread::spawn(move || {
            let mut second = second;
            second.configure_range("123456", 1, 10).unwrap();
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!writer.is_finished(), "the write waits for the turn");
        drop(turn);
        writer.join().unwrap();
        assert!(first.range("123456").unwrap().is_some());
        drop(first);
        drop(other);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other_dir);
    }

    fn job(id: Option<&str>, mailer_ids: &[&str]) -> NewJob {
        NewJob {
            id: id.map(str::to_owned),
            printer: "dock-1".into(),
            priority: DEFAULT_PRIORITY,
            labels: (0u32..)
                .zip(mailer_ids)
                .map(|(unit, m)| NewLabel {
                    imb: Some(NewImb {
                        barcode_id: "00".into(),
                        service_type: "270".into(),
                        mailer_id: (*m).into(),
                    }),
                    routing: "12345678901".into(),
                    recipient: "A. Person".into(),
                    unit,
                    tracking: None,
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
        let mut j = job(None, &["123456"]);
        j.priority = 10;
        assert!(matches!(
            spool.accept_job(j, 1),
            Err(SpoolError::BadPriority { priority: 10 })
        ));
        let mut j = job(None, &["123456"; 3]);
        j.labels[2].unit = 0;
        let err = spool.accept_job(j, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label 2: print unit 0 follows unit 1 (units must not decrease from one label to the next)"
        );
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
        assert!(matches!(
            spool.mark_sent("nope", 0, 2),
            Err(SpoolError::UnknownJob { .. })
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
        // A refused label in a batch refuses the whole batch.
        assert!(matches!(
            spool.mark_printed_many("j", &[1, 2], "dock-1", 6),
            Err(SpoolError::BadTransition { index: 2, .. })
        ));
        assert_eq!(spool.job_labels("j").unwrap()[1].state, LabelState::Sent);
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rfc3339_formatting() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(format_rfc3339_ms(ms), text, "{ms}");
        }
        // Every day boundary for 1,000 years round-trips through the calendar.
        let mut expect = (1970i64, 1u32, 1u32);
        for days in 0..366_000 {
            assert_eq!(civil_from_days(days), expect, "day {days}");
            let (y, m, d) = expect;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            expect = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    /// The scheduler's two queries read indexes only, and at the end of a 10,000-label
    /// job they touch the few open labels, not the 9,990 printed ones.
    #[test]
    fn next_labels_reads_only_open_labels() {
        let (dir, mut spool) = temp_spool("plan");
        spool.configure_range("123456", 0, 999_999).unwrap();
        spool
            .accept_job(job(Some("big"), &["123456"; 10_000]), 1)
            .unwrap();
        let done: Vec<u32> = (0..9_990).collect();
        spool.mark_sent_many("big", &done, Some(1), 2).unwrap();
        spool.mark_printed_many("big", &done, "dock-1", 3).unwrap();

        for (sql, index) in [
            (NEXT_JOB_SQL, "jobs_queue"),
            (OPEN_LABELS_SQL, "labels_open"),
        ] {
            let plan: Vec<String> = spool
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(["dock-1"], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains(&format!("USING INDEX {index}")), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
        let mut stmt = spool.conn.prepare(OPEN_LABELS_SQL).unwrap();
        let open = stmt
            .query_map(["big"], |row| row.get::<_, i64>(0))
            .unwrap()
            .count();
        assert_eq!(open, 10);
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::FullscanStep), 0);
        let steps = stmt.get_status(rusqlite::StatementStatus::VmStep);
        assert!(steps < 1_000, "{steps} VM steps for 10 open labels");

        let next = spool.next_labels("dock-1", 4).unwrap();
        let got: Vec<u32> = next.iter().map(|l| l.index).collect();
        assert_eq!(got, [9_990, 9_991, 9_992, 9_993]);
        drop(stmt);
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
