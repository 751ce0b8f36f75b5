//! Scans and piece states, stored in the spool's SQLite file beside the print log.
//!
//! The tracking store shares the spool's file (WAL, `synchronous=FULL`, a 5 s busy
//! timeout), so a piece's prints and its scans can be joined in SQL on the 20-digit
//! tracking code (the routing part USPS reports may differ from what was printed:
//! facts §3). It owns its own tables, versioned in `tracking_schema` (the spool owns
//! `PRAGMA user_version`), reads the spool's `print_log` and never writes it; it adds
//! one index to it, `tracking_print_log ON print_log(tracking)`, for the join.
//!
//! - `tracking_scans`: every scan received, once ([`Scan::dedup_key`] is unique), with
//!   where it came from and when it arrived.
//! - `tracking_pieces`: per tracking code, the furthest stage reached (never moved
//!   back), first/last scan and processed-for-delivery times, whether the stall was
//!   reported, the poller's bookkeeping and what the pull API says about the piece.
//! - `tracking_feed_messages`: feed messages received, by group id and message serial,
//!   so a redelivered message is skipped.
//!
//! A piece's [`PieceState`] is derived: its stage, or stalled when it is not yet
//! processed for delivery and nothing (scan or print) was heard of it for
//! `stall_days`. [`TrackingStore::mark_stalled`] reports each stall once; a new scan
//! clears it. Every call that records a time takes `now_ms` from the caller. Writes are
//! one `BEGIN IMMEDIATE` transaction each; SQLite is blocking, so keep a store on a
//! thread of its own (it is `Send`), as the spool does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::feed::FeedMessage;
use super::scan::{Facility, Machine, Scan, ScanSource, ScanTime};
use super::settings::PollStep;
use super::stages::{Stage, StageRule};
use crate::spool::{format_rfc3339_ms, PrintLogEntry};

/// The version of the tracking tables this code writes (`tracking_schema.version`).
const SCHEMA_VERSION: i64 = 1;

/// Version 1 of the tracking tables. `STRICT` so SQLite refuses a wrong type; the
/// CHECKs keep stages and sources to the names this code writes.
const SCHEMA_V1: &str = "
CREATE TABLE tracking_scans (
    id                         INTEGER PRIMARY KEY,
    dedup_key                  TEXT NOT NULL UNIQUE,
    tracking                   TEXT NOT NULL,
    routing                    TEXT NOT NULL,
    event_code                 TEXT NOT NULL,
    handling_event_type        TEXT,
    handling_event_description TEXT,
    mail_phase                 TEXT,
    time_text                  TEXT NOT NULL,
    time_local                 TEXT NOT NULL,
    utc_offset_minutes         INTEGER,
    offset_inferred            INTEGER NOT NULL CHECK (offset_inferred IN (0, 1)),
    unix_ms                    INTEGER NOT NULL,
    facility_name              TEXT,
    facility_city              TEXT,
    facility_state             TEXT,
    facility_zip               TEXT,
    facility_locale_key        TEXT,
    machine_name               TEXT,
    machine_id                 TEXT,
    scanner_type               TEXT,
    source                     TEXT NOT NULL CHECK (source IN ('pull', 'push', 'import')),
    received_at                INTEGER NOT NULL
) STRICT;
-- A piece's scans in time order, and its latest scan.
CREATE INDEX tracking_scans_piece ON tracking_scans (tracking, unix_ms);
CREATE TABLE tracking_pieces (
    tracking               TEXT PRIMARY KEY,
    mailer_id              TEXT NOT NULL,
    serial                 INTEGER NOT NULL,
    stage                  TEXT NOT NULL CHECK (stage IN
                           ('printed', 'accepted', 'in_transit', 'processed_for_delivery', 'delivered')),
    first_scan_ms          INTEGER,
    processed_ms           INTEGER,
    last_scan_ms           INTEGER,
    stalled_at_ms          INTEGER,
    polls                  INTEGER NOT NULL DEFAULT 0,
    last_polled_ms         INTEGER,
    next_poll_ms           INTEGER,
    last_error             TEXT,
    expected_delivery_date TEXT,
    mail_class             TEXT,
    mail_shape             TEXT,
    start_the_clock_date   TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX tracking_pieces_serial ON tracking_pieces (mailer_id, serial);
CREATE TABLE tracking_feed_messages (
    group_id       TEXT NOT NULL,
    message_serial INTEGER NOT NULL,
    total_messages INTEGER,
    received_at    INTEGER NOT NULL,
    events         INTEGER NOT NULL,
    inserted       INTEGER NOT NULL,
    duplicates     INTEGER NOT NULL,
    skipped        INTEGER NOT NULL,
    PRIMARY KEY (group_id, message_serial)
) STRICT, WITHOUT ROWID;
";

/// The indexes on the spool's print log this store needs for its joins and job
/// reports (the spool does not mind extra indexes).
const PRINT_LOG_INDEX: &str = "
CREATE INDEX IF NOT EXISTS tracking_print_log ON print_log(tracking);
CREATE INDEX IF NOT EXISTS tracking_print_log_job ON print_log(job_id);";

/// Scans stored per transaction by [`TrackingStore::add_feed`].
pub const FEED_CHUNK: usize = 5_000;

/// Milliseconds in an hour, a day.
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The stages below processed-for-delivery, as stored: the ones that can stall and
/// are polled.
const OPEN_STAGES_SQL: &str = "('printed', 'accepted', 'in_transit')";

/// An error from the tracking store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("tracking store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The spool file cannot be opened.
    #[error("tracking store: cannot open the spool file {}: {source} (labeld creates it at start; check the path and permissions)", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file has no print log: it is not a labeld spool.
    #[error("tracking store: {} has no print_log table; it is not a labeld spool (point tracking at the spool file)", path.display())]
    NotSpool {
        /// The file.
        path: PathBuf,
    },
    /// The file is not in WAL mode.
    #[error("tracking store: the spool file is in journal mode {found:?}, not WAL (let labeld open it first)")]
    NotWal {
        /// The mode found.
        found: String,
    },
    /// The tracking tables were written by a newer labeld.
    #[error("tracking store: tables are version {found}, this labeld knows up to {supported} (upgrade labeld)")]
    SchemaTooNew {
        /// `tracking_schema.version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A stored value this code did not write.
    #[error("tracking store: unexpected {what} in the database (was it edited by hand?)")]
    Corrupt {
        /// What.
        what: String,
    },
    /// Text that does not name a piece.
    #[error("`{text}` is not a piece: {reason}; expected a 20-digit tracking code, a 25-, 29- or 31-digit IMb, or MAILERID-SERIAL")]
    BadPieceKey {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
}

/// Which piece: by 20-digit tracking code, by full IMb digits (20 + routing), or by
/// Mailer ID and serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceKey {
    /// 20 digits.
    Tracking(String),
    /// A Mailer ID and a serial.
    Serial {
        /// 6 or 9 digits.
        mailer_id: String,
        /// The serial.
        serial: u64,
    },
}

/// A piece's derived state: its stage, or stalled (not yet processed for delivery and
/// nothing heard for `stall_days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceState {
    /// See [`Stage`].
    Printed,
    /// See [`Stage`].
    Accepted,
    /// See [`Stage`].
    InTransit,
    /// See [`Stage`].
    ProcessedForDelivery,
    /// See [`Stage`].
    Delivered,
    /// Not processed for delivery, and no scan (or print) for `stall_days`.
    Stalled,
}

impl PieceState {
    /// The name stored, shown and published.
    pub fn as_str(self) -> &'static str {
        match self {
            PieceState::Printed => "printed",
            PieceState::Accepted => "accepted",
            PieceState::InTransit => "in_transit",
            PieceState::ProcessedForDelivery => "processed_for_delivery",
            PieceState::Delivered => "delivered",
            PieceState::Stalled => "stalled",
        }
    }
}

/// A piece whose state changed (for the `tracking.<serial>` event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateChange {
    /// 20 digits.
    pub tracking: String,
    /// Mailer ID.
    pub mailer_id: String,
    /// Serial.
    pub serial: u64,
    /// The job that printed it (the latest print), if it is in the print log.
    pub job_id: Option<String>,
    /// Before.
    pub from: PieceState,
    /// After.
    pub to: PieceState,
}

/// What adding scans did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddReport {
    /// New scans stored.
    pub inserted: u64,
    /// Scans already stored (same piece, time, code, machine, facility).
    pub duplicates: u64,
    /// Scans of pieces labeld did not print (stored, not in the print log).
    pub unmatched: u64,
    /// Printed pieces (in the print log) whose state changed.
    pub changes: Vec<StateChange>,
}

impl PieceState {
    /// Every state, in stage order then stalled.
    pub const ALL: [PieceState; 6] = [
        PieceState::Printed,
        PieceState::Accepted,
        PieceState::InTransit,
        PieceState::ProcessedForDelivery,
        PieceState::Delivered,
        PieceState::Stalled,
    ];
}

impl From<Stage> for PieceState {
    fn from(stage: Stage) -> PieceState {
        match stage {
            Stage::Printed => PieceState::Printed,
            Stage::Accepted => PieceState::Accepted,
            Stage::InTransit => PieceState::InTransit,
            Stage::ProcessedForDelivery => PieceState::ProcessedForDelivery,
            Stage::Delivered => PieceState::Delivered,
        }
    }
}

impl std::fmt::Display for PieceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What adding a feed body did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeedReport {
    /// Messages in the body.
    pub messages: u64,
    /// Of those, messages received before (same group id and message serial), skipped.
    pub already_received: u64,
    /// New scans stored.
    pub inserted: u64,
    /// Scans already stored.
    pub duplicates: u64,
    /// New scans of pieces not in the print log (stored all the same).
    pub unmatched: u64,
    /// Tray and container events skipped (of the messages not skipped).
    pub skipped: u64,
    /// Printed pieces (in the print log) whose state changed.
    pub changes: Vec<StateChange>,
}

/// What the IV-MTR pull API says about a piece besides its scans (facts §2.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceInfo {
    /// `expected_delivery_date`, as given.
    pub expected_delivery_date: Option<String>,
    /// `mail_class`, e.g. `"First-Class"`.
    pub mail_class: Option<String>,
    /// `mail_shape`, e.g. `"Letter"`.
    pub mail_shape: Option<String>,
    /// `start_the_clock_date`, as given.
    pub start_the_clock_date: Option<String>,
}

/// Everything known about one piece.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PieceView {
    /// 20 digits.
    pub tracking: String,
    /// Mailer ID (from the tracking code).
    pub mailer_id: String,
    /// Serial (from the tracking code).
    pub serial: u64,
    /// Every print-log row of the piece, oldest first (a same-serial reprint adds one).
    pub prints: Vec<PrintLogEntry>,
    /// Every scan, oldest first.
    pub scans: Vec<Scan>,
    /// The furthest stage reached.
    pub stage: Stage,
    /// The state now.
    pub state: PieceState,
    /// First scan, Unix ms.
    pub first_scan_ms: Option<i64>,
    /// First scan at processed-for-delivery or later, Unix ms.
    pub processed_ms: Option<i64>,
    /// Last scan, Unix ms.
    pub last_scan_ms: Option<i64>,
    /// When the stall was reported (cleared by a scan).
    pub stalled_at_ms: Option<i64>,
    /// IV-MTR lookups made for it.
    pub polls: u64,
    /// The last lookup, Unix ms.
    pub last_polled_ms: Option<i64>,
    /// The next lookup due, Unix ms.
    pub next_poll_ms: Option<i64>,
    /// The last lookup's error, if it failed.
    pub last_error: Option<String>,
    /// What the pull API said about it.
    pub info: PieceInfo,
}

/// Which pieces a report covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportScope {
    /// The pieces a job printed (by the print log's job id).
    Job(String),
    /// The pieces printed at or after this time, Unix ms.
    Since(i64),
}

/// Pieces counted by state; every state is present, zeros included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// [`PieceState::Printed`].
    pub printed: u64,
    /// [`PieceState::Accepted`].
    pub accepted: u64,
    /// [`PieceState::InTransit`].
    pub in_transit: u64,
    /// [`PieceState::ProcessedForDelivery`].
    pub processed_for_delivery: u64,
    /// [`PieceState::Delivered`].
    pub delivered: u64,
    /// [`PieceState::Stalled`].
    pub stalled: u64,
}

impl StateCounts {
    fn slot(&mut self, state: PieceState) -> &mut u64 {
        match state {
            PieceState::Printed => &mut self.printed,
            PieceState::Accepted => &mut self.accepted,
            PieceState::InTransit => &mut self.in_transit,
            PieceState::ProcessedForDelivery => &mut self.processed_for_delivery,
            PieceState::Delivered => &mut self.delivered,
            PieceState::Stalled => &mut self.stalled,
        }
    }

    /// The count of `state`.
    pub fn get(&self, state: PieceState) -> u64 {
        let mut copy = *self;
        *copy.slot(state)
    }

    /// Sum over all states.
    pub fn total(&self) -> u64 {
        PieceState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// How long something took over many pieces, milliseconds. Median and 90th percentile
/// are nearest-rank (a value that occurred). All `None` when `count` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationStats {
    /// Pieces measured.
    pub count: u64,
    /// Shortest.
    pub min_ms: Option<i64>,
    /// Median.
    pub median_ms: Option<i64>,
    /// 90th percentile.
    pub p90_ms: Option<i64>,
    /// Longest.
    pub max_ms: Option<i64>,
}

/// One piece in a report (a CSV row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSummary {
    /// 20 digits.
    pub tracking: String,
    /// Mailer ID.
    pub mailer_id: String,
    /// Serial.
    pub serial: u64,
    /// The job of its latest print in scope.
    pub job_id: String,
    /// Its label index in that job.
    pub index: u32,
    /// The printer.
    pub printer: String,
    /// The recipient.
    pub recipient: String,
    /// When that print was confirmed, Unix ms.
    pub printed_at_ms: i64,
    /// The state now.
    pub state: PieceState,
    /// First scan, Unix ms.
    pub first_scan_ms: Option<i64>,
    /// First processed-for-delivery scan, Unix ms.
    pub processed_ms: Option<i64>,
    /// Last scan, Unix ms.
    pub last_scan_ms: Option<i64>,
    /// The last scan's event code.
    pub last_event_code: Option<String>,
    /// Where the last scan was (`NAME, CITY ST ZIP` as far as known).
    pub last_facility: Option<String>,
}

/// Where a set of printed pieces stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// What it covers.
    pub scope: ReportScope,
    /// When it was made, Unix ms.
    pub generated_at_ms: i64,
    /// The stall threshold used, days.
    pub stall_days: u32,
    /// Distinct pieces (tracking codes).
    pub pieces: u64,
    /// Pieces by state.
    pub counts: StateCounts,
    /// The stalled pieces.
    pub stalled: Vec<PieceSummary>,
    /// From (first) print to first scan, over pieces scanned. A negative difference
    /// (a scan time in an unknown zone) counts as 0.
    pub print_to_first_scan: DurationStats,
    /// From (first) print to processed for delivery, over pieces that got there.
    pub print_to_processed: DurationStats,
    /// Every piece, in print order.
    pub rows: Vec<PieceSummary>,
}

/// A piece the poller should look up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PollTarget {
    /// 20 digits.
    pub tracking: String,
    /// The routing code printed (latest print), for the IMb lookup.
    pub routing: String,
    /// Mailer ID.
    pub mailer_id: String,
    /// Serial.
    pub serial: u64,
    /// When it was (last) printed, Unix ms.
    pub printed_at_ms: i64,
    /// Lookups made so far.
    pub polls: u64,
}

/// The Mailer ID and serial in a 20-digit tracking code (barcode ID 2, STID 3, then a
/// 6-digit Mailer ID when its first digit is 0–8, else 9 digits, then the serial);
/// `None` when `tracking` is not 20 ASCII digits.
pub fn mailer_serial(tracking: &str) -> Option<(String, u64)> {
    let bytes = tracking.as_bytes();
    if bytes.len() != 20 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mid_len = if bytes[5] == b'9' { 9 } else { 6 };
    let mid = &tracking[5..5 + mid_len];
    let serial = tracking[5 + mid_len..].parse().ok()?;
    Some((mid.to_owned(), serial))
}

impl PieceKey {
    /// Reads a piece as a person types it: a 20-digit tracking code, a full IMb of
    /// 25, 29 or 31 digits (its first 20 are the tracking code), or a Mailer ID and a
    /// serial as `MID-SERIAL` or `MID:SERIAL` (a 6-digit Mailer ID starts with 0–8
    /// and has serials up to 9 digits; a 9-digit one starts with 9, serials up to 6).
    pub fn parse(text: &str) -> Result<PieceKey, StoreError> {
        let bad = |reason: String| StoreError::BadPieceKey {
            text: text.chars().take(64).collect(),
            reason,
        };
        let trimmed = text.trim();
        if let Some((mid, serial)) = trimmed.split_once(['-', ':']) {
            let (mid, serial) = (mid.trim(), serial.trim());
            if !mid.bytes().all(|b| b.is_ascii_digit()) || !(mid.len() == 6 || mid.len() == 9) {
                return Err(bad(format!("Mailer ID {mid:?} is not 6 or 9 digits")));
            }
            let nine = mid.starts_with('9');
            if nine != (mid.len() == 9) {
                return Err(bad(format!(
                    "Mailer ID {mid} has {} digits but starts with {}; 9-digit Mailer IDs \
                     start with 9, 6-digit ones with 0-8",
                    mid.len(),
                    &mid[..1]
                )));
            }
            let max_len = 15 - mid.len();
            if serial.is_empty()
                || serial.len() > max_len
                || !serial.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad(format!(
                    "serial {serial:?} is not 1 to {max_len} digits"
                )));
            }
            let serial = serial
                .parse()
                .map_err(|_| bad(format!("serial {serial:?} is not a number")))?;
            return Ok(PieceKey::Serial {
                mailer_id: mid.to_owned(),
                serial,
            });
        }
        if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("it has characters other than digits".into()));
        }
        if ![20, 25, 29, 31].contains(&trimmed.len()) {
            return Err(bad(format!("it has {} digits", trimmed.len())));
        }
        let tracking = &trimmed[..20];
        if tracking.as_bytes()[1] > b'4' {
            return Err(bad(format!(
                "barcode ID {} has a second digit above 4",
                &tracking[..2]
            )));
        }
        Ok(PieceKey::Tracking(tracking.to_owned()))
    }
}

/// A mail phase (or a rule's prefix) as compared: letters and digits only, lowercase,
/// so `"Phase 3c - …"`, `"PHASE 3C"` and `"Phase3c"` agree.
fn phase_key(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The stage a scan means: the first rule whose event codes contain the scan's code
/// (case and surrounding blanks ignored) or whose phase prefix starts the scan's mail
/// phase (compared by [`phase_key`]; an empty prefix matches any phase). No match →
/// [`Stage::InTransit`]: USPS has the piece and it moved.
pub fn stage_of(scan: &Scan, rules: &[StageRule]) -> Stage {
    stage_of_parts(scan.mail_phase.as_deref(), &scan.event_code, rules)
}

/// [`stage_of`] from a scan's mail phase and event code alone (as stored).
pub fn stage_of_parts(mail_phase: Option<&str>, event_code: &str, rules: &[StageRule]) -> Stage {
    let phase = mail_phase.map(phase_key);
    let code = event_code.trim();
    rules
        .iter()
        .find(|rule| {
            rule.event_codes
                .iter()
                .any(|c| c.trim().eq_ignore_ascii_case(code))
                || match (&rule.phase, &phase) {
                    (Some(prefix), Some(phase)) => phase.starts_with(&phase_key(prefix)),
                    _ => false,
                }
        })
        .map_or(Stage::InTransit, |rule| rule.stage)
}

/// A piece's state: its stage, or [`PieceState::Stalled`] when the stage is below
/// processed-for-delivery and nothing was heard (`last_activity_ms`: the later of the
/// last scan and the last print) for `stall_days` or more. `stall_days = 0` turns
/// stalling off.
pub fn piece_state(
    stage: Stage,
    last_activity_ms: i64,
    now_ms: i64,
    stall_days: u32,
) -> PieceState {
    let quiet = now_ms.saturating_sub(last_activity_ms);
    if stall_days > 0
        && stage < Stage::ProcessedForDelivery
        && quiet >= i64::from(stall_days) * DAY_MS
    {
        PieceState::Stalled
    } else {
        stage.into()
    }
}

/// The interval of the poll step a piece of age `age_ms` falls in: the first step
/// whose `until_hours` is above the age (or absent), else the last step. `None` when
/// there are no steps. An interval below one second counts as one second.
fn poll_interval_ms(age_ms: i64, poll: &[PollStep]) -> Option<i64> {
    let step = poll
        .iter()
        .find(|s| {
            s.until_hours
                .is_none_or(|h| age_ms < i64::from(h) * HOUR_MS)
        })
        .or(poll.last())?;
    Some(step.interval_ms().max(1000))
}

/// When a piece printed at `printed_at_ms` and polled now should be polled next: now
/// plus the interval of the step its age falls in. `i64::MAX` (never) when `poll` is
/// empty.
pub fn next_poll_ms(printed_at_ms: i64, now_ms: i64, poll: &[PollStep]) -> i64 {
    let age = now_ms.saturating_sub(printed_at_ms).max(0);
    match poll_interval_ms(age, poll) {
        Some(interval) => now_ms.saturating_add(interval),
        None => i64::MAX,
    }
}

/// Min, nearest-rank median and 90th percentile, and max of `values`.
pub fn duration_stats(mut values: Vec<i64>) -> DurationStats {
    if values.is_empty() {
        return DurationStats::default();
    }
    values.sort_unstable();
    let n = values.len();
    // Nearest rank: the ceil(p * n)-th value, 1-based.
    let rank = |percent: usize| values[(percent * n).div_ceil(100).max(1) - 1];
    DurationStats {
        count: n as u64,
        min_ms: values.first().copied(),
        median_ms: Some(rank(50)),
        p90_ms: Some(rank(90)),
        max_ms: values.last().copied(),
    }
}

/// A stage from its stored name.
fn stage_from_sql(text: &str) -> Result<Stage, StoreError> {
    Ok(match text {
        "printed" => Stage::Printed,
        "accepted" => Stage::Accepted,
        "in_transit" => Stage::InTransit,
        "processed_for_delivery" => Stage::ProcessedForDelivery,
        "delivered" => Stage::Delivered,
        other => {
            return Err(StoreError::Corrupt {
                what: format!("stage {other:?}"),
            })
        }
    })
}

/// A scan source from its stored name.
fn source_from_sql(text: &str) -> Result<ScanSource, StoreError> {
    Ok(match text {
        "pull" => ScanSource::Pull,
        "push" => ScanSource::Push,
        "import" => ScanSource::Import,
        other => {
            return Err(StoreError::Corrupt {
                what: format!("scan source {other:?}"),
            })
        }
    })
}

/// A stored integer that must fit a `u64`/`u32`.
fn unsigned<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt {
        what: format!("{what} {value}"),
    })
}

/// Mailer ID and serial of a tracking code that must be valid.
fn split_tracking(tracking: &str) -> Result<(String, u64), StoreError> {
    mailer_serial(tracking).ok_or_else(|| StoreError::BadPieceKey {
        text: tracking.chars().take(64).collect(),
        reason: "it is not a 20-digit tracking code".into(),
    })
}

/// A facility in a few words: `NAME, CITY ST ZIP`, leaving out what is unknown.
fn describe_facility(facility: &Facility) -> Option<String> {
    let place: Vec<&str> = [&facility.city, &facility.state, &facility.zip]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    let place = place.join(" ");
    match (&facility.name, place.is_empty()) {
        (Some(name), true) => Some(name.clone()),
        (Some(name), false) => Some(format!("{name}, {place}")),
        (None, false) => Some(place),
        (None, true) => None,
    }
}

/// The columns of a scan row, in [`scan_from_row`]'s order.
const SCAN_COLUMNS: &str = "tracking, routing, event_code, handling_event_type,
    handling_event_description, mail_phase, time_text, time_local, utc_offset_minutes,
    offset_inferred, unix_ms, facility_name, facility_city, facility_state, facility_zip,
    facility_locale_key, machine_name, machine_id, scanner_type, source";

fn scan_from_row(row: &Row<'_>) -> Result<Scan, StoreError> {
    let source: String = row.get(19)?;
    Ok(Scan {
        tracking: row.get(0)?,
        routing: row.get(1)?,
        event_code: row.get(2)?,
        handling_event_type: row.get(3)?,
        handling_event_description: row.get(4)?,
        mail_phase: row.get(5)?,
        scanned_at: ScanTime {
            text: row.get(6)?,
            local: row.get(7)?,
            utc_offset_minutes: row.get(8)?,
            inferred: row.get::<_, i64>(9)? != 0,
            unix_ms: row.get(10)?,
        },
        facility: Facility {
            name: row.get(11)?,
            city: row.get(12)?,
            state: row.get(13)?,
            zip: row.get(14)?,
            locale_key: row.get(15)?,
        },
        machine: Machine {
            name: row.get(16)?,
            id: row.get(17)?,
            scanner_type: row.get(18)?,
        },
        source: source_from_sql(&source)?,
    })
}

/// A piece's stored progress, as loaded and updated during one transaction.
#[derive(Clone, Debug)]
struct Progress {
    stage: Stage,
    first_scan_ms: Option<i64>,
    processed_ms: Option<i64>,
    last_scan_ms: Option<i64>,
    stalled_at_ms: Option<i64>,
}

impl Progress {
    /// The state events report: stalled while a stall is reported, else the stage.
    fn reported_state(&self) -> PieceState {
        if self.stalled_at_ms.is_some() {
            PieceState::Stalled
        } else {
            self.stage.into()
        }
    }

    /// Takes one new scan into account: stage never backwards, times widened, any
    /// reported stall cleared.
    fn add(&mut self, stage: Stage, at_ms: i64) {
        self.stage = self.stage.max(stage);
        self.first_scan_ms = Some(self.first_scan_ms.map_or(at_ms, |t| t.min(at_ms)));
        self.last_scan_ms = Some(self.last_scan_ms.map_or(at_ms, |t| t.max(at_ms)));
        if stage >= Stage::ProcessedForDelivery {
            self.processed_ms = Some(self.processed_ms.map_or(at_ms, |t| t.min(at_ms)));
        }
        self.stalled_at_ms = None;
    }
}

/// A piece touched by a batch of scans: its state before, its progress now.
struct Touched {
    before: PieceState,
    progress: Progress,
    /// Its tracking code is in the print log.
    matched: bool,
}

/// Scans added in one transaction, before the pieces are written back.
#[derive(Default)]
struct Batch {
    touched: BTreeMap<String, Touched>,
    inserted: u64,
    duplicates: u64,
    unmatched: u64,
}

/// A piece's progress as stored (`None` when it has no row).
fn load_progress(conn: &Connection, tracking: &str) -> Result<Option<Progress>, StoreError> {
    let row: Option<(String, [Option<i64>; 4])> = conn
        .prepare_cached(
            "SELECT stage, first_scan_ms, processed_ms, last_scan_ms, stalled_at_ms
             FROM tracking_pieces WHERE tracking = ?1",
        )?
        .query_row([tracking], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })
        .optional()?;
    row.map(|(stage, [first, processed, last, stalled])| {
        Ok(Progress {
            stage: stage_from_sql(&stage)?,
            first_scan_ms: first,
            processed_ms: processed,
            last_scan_ms: last,
            stalled_at_ms: stalled,
        })
    })
    .transpose()
}

/// Whether `tracking` is in the print log.
fn in_print_log(conn: &Connection, tracking: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM print_log WHERE tracking = ?1 LIMIT 1")?
        .query_row([tracking], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The job of the latest print of `tracking`.
fn latest_job(conn: &Connection, tracking: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT job_id FROM print_log WHERE tracking = ?1
             ORDER BY printed_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([tracking], |r| r.get(0))
        .optional()?)
}

/// Stores `scans` (skipping ones already stored) and updates `batch`'s pieces.
fn insert_scans(
    conn: &Connection,
    scans: &[Scan],
    rules: &[StageRule],
    now_ms: i64,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO tracking_scans (dedup_key, tracking, routing, event_code,
             handling_event_type, handling_event_description, mail_phase, time_text,
             time_local, utc_offset_minutes, offset_inferred, unix_ms, facility_name,
             facility_city, facility_state, facility_zip, facility_locale_key, machine_name,
             machine_id, scanner_type, source, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22)
         ON CONFLICT (dedup_key) DO NOTHING",
    )?;
    for scan in scans {
        // Refuse a scan whose tracking code is not one before storing anything of it.
        split_tracking(&scan.tracking)?;
        let t = &scan.scanned_at;
        let added = insert.execute(params![
            scan.dedup_key(),
            scan.tracking,
            scan.routing,
            scan.event_code,
            scan.handling_event_type,
            scan.handling_event_description,
            scan.mail_phase,
            t.text,
            t.local,
            t.utc_offset_minutes,
            i64::from(t.inferred),
            t.unix_ms,
            scan.facility.name,
            scan.facility.city,
            scan.facility.state,
            scan.facility.zip,
            scan.facility.locale_key,
            scan.machine.name,
            scan.machine.id,
            scan.machine.scanner_type,
            scan.source.as_str(),
            now_ms,
        ])?;
        if added == 0 {
            batch.duplicates += 1;
            continue;
        }
        batch.inserted += 1;
        let touched = match batch.touched.get_mut(&scan.tracking) {
            Some(touched) => touched,
            None => {
                let progress = load_progress(conn, &scan.tracking)?.unwrap_or(Progress {
                    stage: Stage::Printed,
                    first_scan_ms: None,
                    processed_ms: None,
                    last_scan_ms: None,
                    stalled_at_ms: None,
                });
                let touched = Touched {
                    before: progress.reported_state(),
                    progress,
                    matched: in_print_log(conn, &scan.tracking)?,
                };
                batch
                    .touched
                    .entry(scan.tracking.clone())
                    .or_insert(touched)
            }
        };
        if !touched.matched {
            batch.unmatched += 1;
        }
        touched.progress.add(stage_of(scan, rules), t.unix_ms);
    }
    Ok(())
}

/// Writes `batch`'s pieces back and lists the ones whose state changed.
fn finish_batch(conn: &Connection, batch: &Batch) -> Result<Vec<StateChange>, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO tracking_pieces (tracking, mailer_id, serial, stage, first_scan_ms,
                                      processed_ms, last_scan_ms, stalled_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tracking) DO UPDATE SET
             stage = excluded.stage, first_scan_ms = excluded.first_scan_ms,
             processed_ms = excluded.processed_ms, last_scan_ms = excluded.last_scan_ms,
             stalled_at_ms = excluded.stalled_at_ms",
    )?;
    let mut changes = Vec::new();
    for (tracking, touched) in &batch.touched {
        let (mailer_id, serial) = split_tracking(tracking)?;
        let p = &touched.progress;
        upsert.execute(params![
            tracking,
            mailer_id,
            serial as i64,
            p.stage.as_str(),
            p.first_scan_ms,
            p.processed_ms,
            p.last_scan_ms,
            p.stalled_at_ms,
        ])?;
        let after = p.reported_state();
        // Events are for pieces labeld printed; a scan of the same Mailer ID printed
        // elsewhere is stored and counted, not announced.
        if after != touched.before && touched.matched {
            changes.push(StateChange {
                tracking: tracking.clone(),
                mailer_id,
                serial,
                job_id: latest_job(conn, tracking)?,
                from: touched.before,
                to: after,
            });
        }
    }
    Ok(changes)
}

/// A handle on the tracking tables in the spool's file. Blocking; keep it on one
/// thread (it is `Send`).
pub struct TrackingStore {
    /// The connection; every public write is one transaction on it.
    conn: Connection,
}

/// What [`TrackingStore::prune`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackingPruneReport {
    /// Scans deleted.
    pub scans: u64,
    /// Pieces deleted.
    pub pieces: u64,
    /// Feed-message receipts deleted.
    pub feed_messages: u64,
}

impl TrackingStore {
    /// Retention, beside [`crate::spool::Spool::prune`]: deletes the scans and piece
    /// rows of pieces that are no longer in the print log (pruned, or never printed
    /// here) and were last heard of before `older_than_ms`, and feed-message receipts
    /// older than that. A piece still in the print log keeps everything.
    ///
    /// # Errors
    ///
    /// SQLite failed (what was deleted before stays deleted: each piece goes whole).
    pub fn prune(&mut self, older_than_ms: i64) -> Result<TrackingPruneReport, StoreError> {
        // Candidates first, without the write lock; then short transactions that check
        // each again (a print or a scan may have come in between).
        let candidates: Vec<String> = self
            .conn
            .prepare(
                "SELECT tracking FROM tracking_scans GROUP BY tracking
                     HAVING MAX(received_at) < ?1
                 UNION
                 SELECT tracking FROM tracking_pieces p
                     WHERE COALESCE(p.last_scan_ms, p.last_polled_ms, 0) < ?1
                       AND NOT EXISTS (SELECT 1 FROM tracking_scans s
                                       WHERE s.tracking = p.tracking)
                 EXCEPT
                 SELECT tracking FROM print_log WHERE tracking IS NOT NULL",
            )?
            .query_map([older_than_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut report = TrackingPruneReport::default();
        let gone = "NOT EXISTS (SELECT 1 FROM print_log WHERE tracking = ?1)
                    AND COALESCE((SELECT MAX(received_at) FROM tracking_scans
                                  WHERE tracking = ?1), 0) < ?2";
        for chunk in candidates.chunks(500) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for tracking in chunk {
                let scans = tx.execute(
                    &format!("DELETE FROM tracking_scans WHERE tracking = ?1 AND {gone}"),
                    params![tracking, older_than_ms],
                )?;
                let pieces = tx.execute(
                    &format!(
                        "DELETE FROM tracking_pieces WHERE tracking = ?1 AND {gone}
                           AND COALESCE(last_scan_ms, last_polled_ms, 0) < ?2"
                    ),
                    params![tracking, older_than_ms],
                )?;
                report.scans += u64::try_from(scans).unwrap_or(u64::MAX);
                report.pieces += u64::try_from(pieces).unwrap_or(u64::MAX);
            }
            tx.commit()?;
        }
        let feed_messages = self.conn.execute(
            "DELETE FROM tracking_feed_messages WHERE received_at < ?1",
            [older_than_ms],
        )?;
        report.feed_messages = u64::try_from(feed_messages).unwrap_or(u64::MAX);
        Ok(report)
    }
}

impl TrackingStore {
    /// Makes the stored stages follow `rules`: when they differ from the rules the
    /// stages were computed with (a fingerprint is kept), every piece's stage and
    /// processed-for-delivery time are computed again from its scans, so a corrected
    /// `[[tracking.stage]]` table fixes pieces already stored (a stage may go back).
    /// Returns how many pieces changed. Run at start, before polling.
    ///
    /// # Errors
    ///
    /// SQLite failed; nothing changed.
    pub fn apply_rules(&mut self, rules: &[StageRule]) -> Result<u64, StoreError> {
        let fingerprint = serde_json::to_string(rules).unwrap_or_default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS tracking_rules (fingerprint TEXT NOT NULL) STRICT",
        )?;
        let stored: Option<String> = tx
            .query_row("SELECT fingerprint FROM tracking_rules LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        if stored.as_deref() == Some(fingerprint.as_str()) {
            return Ok(0);
        }
        // Every piece with scans: the furthest stage, and the first scan at or past
        // processed for delivery.
        let mut recomputed: BTreeMap<String, (Stage, Option<i64>)> = BTreeMap::new();
        {
            let mut scans =
                tx.prepare("SELECT tracking, mail_phase, event_code, unix_ms FROM tracking_scans")?;
            let mut rows = scans.query([])?;
            while let Some(row) = rows.next()? {
                let tracking: String = row.get(0)?;
                let phase: Option<String> = row.get(1)?;
                let code: String = row.get(2)?;
                let at: i64 = row.get(3)?;
                let stage = stage_of_parts(phase.as_deref(), &code, rules);
                let entry = recomputed.entry(tracking).or_insert((Stage::Printed, None));
                entry.0 = entry.0.max(stage);
                if stage >= Stage::ProcessedForDelivery {
                    entry.1 = Some(entry.1.map_or(at, |t| t.min(at)));
                }
            }
        }
        let mut changed = 0u64;
        {
            let mut update = tx.prepare(
                "UPDATE tracking_pieces SET stage = ?2, processed_ms = ?3
                 WHERE tracking = ?1 AND (stage != ?2 OR processed_ms IS NOT ?3)",
            )?;
            for (tracking, (stage, processed_ms)) in &recomputed {
                changed += update.execute(params![tracking, stage.as_str(), processed_ms])? as u64;
            }
        }
        tx.execute("DELETE FROM tracking_rules", [])?;
        tx.execute(
            "INSERT INTO tracking_rules (fingerprint) VALUES (?1)",
            [&fingerprint],
        )?;
        tx.commit()?;
        Ok(changed)
    }
}

impl std::fmt::Debug for TrackingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingStore")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

impl TrackingStore {
    /// Opens the tracking tables in the spool file at `spool_path`, which must exist
    /// and hold the spool's print log (labeld opens the spool first): WAL,
    /// `synchronous=FULL`, 5 s busy timeout; the tables are created or brought to the
    /// current version, and the print log gets the `tracking_print_log` index.
    pub fn open(spool_path: &Path) -> Result<TrackingStore, StoreError> {
        let open_err = |source| StoreError::Open {
            path: spool_path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            spool_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal { found: mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = TrackingStore { conn };
        store.migrate(spool_path)?;
        Ok(store)
    }

    /// Creates the tables or checks their version, in one immediate transaction.
    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let has_print_log: bool = tx
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'print_log'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !has_print_log {
            return Err(StoreError::NotSpool {
                path: path.to_owned(),
            });
        }
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS tracking_schema (version INTEGER NOT NULL) STRICT",
        )?;
        let found: Option<i64> =
            tx.query_row("SELECT MAX(version) FROM tracking_schema", [], |r| r.get(0))?;
        match found {
            None => {
                tx.execute_batch(SCHEMA_V1)?;
                tx.execute(
                    "INSERT INTO tracking_schema (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            Some(_) => {}
        }
        tx.execute_batch(PRINT_LOG_INDEX)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores `scans` in one transaction. A scan already stored (same
    /// [`Scan::dedup_key`]) is counted as a duplicate. Each piece's stage moves only
    /// forward (by [`stage_of`] with `rules`), its first, last and processed times
    /// widen and a reported stall is cleared. Returns what changed, with each piece
    /// whose reported state changed listed once.
    pub fn add_scans(
        &mut self,
        scans: &[Scan],
        rules: &[StageRule],
        now_ms: i64,
    ) -> Result<AddReport, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut batch = Batch::default();
        insert_scans(&tx, scans, rules, now_ms, &mut batch)?;
        let changes = finish_batch(&tx, &batch)?;
        tx.commit()?;
        Ok(AddReport {
            inserted: batch.inserted,
            duplicates: batch.duplicates,
            unmatched: batch.unmatched,
            changes,
        })
    }

    /// Stores a feed body that was checked whole ([`crate::tracking::feed`]): one
    /// transaction per message, and per [`FEED_CHUNK`] scans within a large message,
    /// so a big delivery never holds the spool's write lock for long (printing writes
    /// the same file). A message's receipt is written with its last chunk: a message
    /// whose group id and message serial were received before is skipped (a
    /// redelivery), and one cut short by a crash is stored again in full on
    /// redelivery (its scans are de-duplicated). Messages without both ids rely on scan
    /// de-duplication. A piece whose state changed in several chunks is listed once,
    /// from its first state to its last.
    pub fn add_feed(
        &mut self,
        messages: &[FeedMessage],
        rules: &[StageRule],
        now_ms: i64,
    ) -> Result<FeedReport, StoreError> {
        let serial_sql = |serial: u64| {
            i64::try_from(serial).map_err(|_| StoreError::Corrupt {
                what: format!("message serial {serial}"),
            })
        };
        let mut report = FeedReport::default();
        let mut changes: BTreeMap<String, StateChange> = BTreeMap::new();
        for message in messages {
            report.messages += 1;
            let key = match (&message.group_id, message.message_serial) {
                (Some(group), Some(serial)) => Some((group.as_str(), serial_sql(serial)?)),
                _ => None,
            };
            if let Some((group, serial)) = key {
                let seen = self
                    .conn
                    .prepare_cached(
                        "SELECT 1 FROM tracking_feed_messages
                         WHERE group_id = ?1 AND message_serial = ?2",
                    )?
                    .query_row(params![group, serial], |_| Ok(()))
                    .optional()?
                    .is_some();
                if seen {
                    report.already_received += 1;
                    continue;
                }
            }
            report.skipped += message.skipped;
            let (inserted, duplicates) = (report.inserted, report.duplicates);
            let chunks: Vec<&[Scan]> = if message.scans.is_empty() {
                vec![&[]]
            } else {
                message.scans.chunks(FEED_CHUNK).collect()
            };
            let last = chunks.len() - 1;
            for (i, chunk) in chunks.into_iter().enumerate() {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut batch = Batch::default();
                insert_scans(&tx, chunk, rules, now_ms, &mut batch)?;
                for change in finish_batch(&tx, &batch)? {
                    match changes.get_mut(&change.tracking) {
                        Some(earlier) => earlier.to = change.to,
                        None => {
                            changes.insert(change.tracking.clone(), change);
                        }
                    }
                }
                report.inserted += batch.inserted;
                report.duplicates += batch.duplicates;
                report.unmatched += batch.unmatched;
                if let (Some((group, serial)), true) = (key, i == last) {
                    tx.prepare_cached(
                        "INSERT INTO tracking_feed_messages (group_id, message_serial,
                             total_messages, received_at, events, inserted, duplicates, skipped)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        group,
                        serial,
                        message.total_messages.map(serial_sql).transpose()?,
                        now_ms,
                        message.scans.len() as i64 + message.skipped as i64,
                        (report.inserted - inserted) as i64,
                        (report.duplicates - duplicates) as i64,
                        message.skipped as i64,
                    ])?;
                }
                tx.commit()?;
            }
        }
        report.changes = changes.into_values().filter(|c| c.from != c.to).collect();
        Ok(report)
    }

    /// Records what the pull API says about a piece. Fields given replace stored ones;
    /// fields `None` keep what is stored.
    pub fn set_piece_info(&mut self, tracking: &str, info: &PieceInfo) -> Result<(), StoreError> {
        let (mailer_id, serial) = split_tracking(tracking)?;
        self.conn
            .prepare_cached(
                "INSERT INTO tracking_pieces (tracking, mailer_id, serial, stage,
                     expected_delivery_date, mail_class, mail_shape, start_the_clock_date)
                 VALUES (?1, ?2, ?3, 'printed', ?4, ?5, ?6, ?7)
                 ON CONFLICT (tracking) DO UPDATE SET
                     expected_delivery_date = COALESCE(?4, expected_delivery_date),
                     mail_class = COALESCE(?5, mail_class),
                     mail_shape = COALESCE(?6, mail_shape),
                     start_the_clock_date = COALESCE(?7, start_the_clock_date)",
            )?
            .execute(params![
                tracking,
                mailer_id,
                serial as i64,
                info.expected_delivery_date,
                info.mail_class,
                info.mail_shape,
                info.start_the_clock_date,
            ])?;
        Ok(())
    }

    /// The tracking code a key names: itself, or for a Mailer ID and serial the latest
    /// print's tracking code (else a tracked piece's).
    fn resolve(&self, key: &PieceKey) -> Result<Option<String>, StoreError> {
        match key {
            PieceKey::Tracking(tracking) => Ok(Some(tracking.clone())),
            PieceKey::Serial { mailer_id, serial } => {
                let serial = *serial as i64;
                let printed: Option<String> = self
                    .conn
                    .prepare_cached(
                        "SELECT tracking FROM print_log
                         WHERE mailer_id = ?1 AND serial = ?2 AND tracking IS NOT NULL
                         ORDER BY printed_at DESC, rowid DESC LIMIT 1",
                    )?
                    .query_row(params![mailer_id, serial], |r| r.get(0))
                    .optional()?;
                if printed.is_some() {
                    return Ok(printed);
                }
                Ok(self
                    .conn
                    .prepare_cached(
                        "SELECT tracking FROM tracking_pieces
                         WHERE mailer_id = ?1 AND serial = ?2 ORDER BY tracking LIMIT 1",
                    )?
                    .query_row(params![mailer_id, serial], |r| r.get(0))
                    .optional()?)
            }
        }
    }

    /// Everything known about one piece: its prints, its scans oldest first, its
    /// stage (the stored one, or further if `rules` now read its scans as further),
    /// its state now, and what the pull API said. `None` when labeld neither printed
    /// it nor heard of it.
    pub fn piece(
        &self,
        key: &PieceKey,
        rules: &[StageRule],
        stall_days: u32,
        now_ms: i64,
    ) -> Result<Option<PieceView>, StoreError> {
        let Some(tracking) = self.resolve(key)? else {
            return Ok(None);
        };
        let Some((mailer_id, serial)) = mailer_serial(&tracking) else {
            return Ok(None);
        };
        let mut prints = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT printed_at, job_id, idx, printer, mailer_id, serial, tracking, routing,
                        recipient
                 FROM print_log WHERE tracking = ?1 ORDER BY printed_at, rowid",
            )?;
            let mut rows = stmt.query([&tracking])?;
            while let Some(row) = rows.next()? {
                prints.push(PrintLogEntry {
                    printed_at_ms: row.get(0)?,
                    job_id: row.get(1)?,
                    index: unsigned(row.get(2)?, "label index")?,
                    printer: row.get(3)?,
                    mailer_id: row.get(4)?,
                    serial: row
                        .get::<_, Option<i64>>(5)?
                        .map(|s| unsigned(s, "serial"))
                        .transpose()?,
                    tracking: row.get(6)?,
                    routing: row.get(7)?,
                    recipient: row.get(8)?,
                });
            }
        }
        let mut scans = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {SCAN_COLUMNS} FROM tracking_scans WHERE tracking = ?1
                 ORDER BY unix_ms, id"
            ))?;
            let mut rows = stmt.query([&tracking])?;
            while let Some(row) = rows.next()? {
                scans.push(scan_from_row(row)?);
            }
        }
        type PieceRow = (
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<String>,
            PieceInfo,
        );
        let row: Option<PieceRow> = self
            .conn
            .prepare_cached(
                "SELECT stage, first_scan_ms, processed_ms, last_scan_ms, stalled_at_ms, polls,
                        last_polled_ms, next_poll_ms, last_error, expected_delivery_date,
                        mail_class, mail_shape, start_the_clock_date
                 FROM tracking_pieces WHERE tracking = ?1",
            )?
            .query_row([&tracking], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    PieceInfo {
                        expected_delivery_date: r.get(9)?,
                        mail_class: r.get(10)?,
                        mail_shape: r.get(11)?,
                        start_the_clock_date: r.get(12)?,
                    },
                ))
            })
            .optional()?;
        if prints.is_empty() && scans.is_empty() && row.is_none() {
            return Ok(None);
        }
        let (stored, first, processed, last, stalled_at, polls, polled, next, error, info) =
            match row {
                Some((
                    stage,
                    first,
                    processed,
                    last,
                    stalled,
                    polls,
                    polled,
                    next,
                    error,
                    info,
                )) => (
                    stage_from_sql(&stage)?,
                    first,
                    processed,
                    last,
                    stalled,
                    unsigned(polls, "poll count")?,
                    polled,
                    next,
                    error,
                    info,
                ),
                None => (
                    Stage::Printed,
                    None,
                    None,
                    None,
                    None,
                    0,
                    None,
                    None,
                    None,
                    PieceInfo::default(),
                ),
            };
        let mut progress = Progress {
            stage: stored,
            first_scan_ms: first,
            processed_ms: processed,
            last_scan_ms: last,
            stalled_at_ms: stalled_at,
        };
        for scan in &scans {
            progress.add(stage_of(scan, rules), scan.scanned_at.unix_ms);
        }
        let last_print = prints.iter().map(|p| p.printed_at_ms).max();
        let activity = last_print.max(progress.last_scan_ms).unwrap_or(now_ms);
        Ok(Some(PieceView {
            state: piece_state(progress.stage, activity, now_ms, stall_days),
            tracking,
            mailer_id,
            serial,
            prints,
            scans,
            stage: progress.stage,
            first_scan_ms: progress.first_scan_ms,
            processed_ms: progress.processed_ms,
            last_scan_ms: progress.last_scan_ms,
            stalled_at_ms: stalled_at,
            polls,
            last_polled_ms: polled,
            next_poll_ms: next,
            last_error: error,
            info,
        }))
    }

    /// Where the pieces of a job, or printed since a time, stand: one set-based query
    /// over the print log joined to the pieces and each piece's last scan.
    pub fn report(
        &self,
        scope: &ReportScope,
        stall_days: u32,
        now_ms: i64,
    ) -> Result<Report, StoreError> {
        let (condition, param): (&str, rusqlite::types::Value) = match scope {
            ReportScope::Job(job_id) => ("job_id = ?1", job_id.clone().into()),
            ReportScope::Since(since_ms) => ("printed_at >= ?1", (*since_ms).into()),
        };
        let sql = format!(
            "WITH scoped AS (
                 SELECT rowid AS rid, tracking, printed_at, job_id, idx, printer, recipient,
                        ROW_NUMBER() OVER (PARTITION BY tracking
                                           ORDER BY printed_at DESC, rowid DESC) AS rn,
                        MIN(printed_at) OVER (PARTITION BY tracking) AS first_printed
                 FROM print_log
                 WHERE tracking IS NOT NULL AND {condition}
             )
             SELECT s.tracking, s.job_id, s.idx, s.printer, s.recipient, s.printed_at,
                    s.first_printed,
                    (SELECT MAX(p.printed_at) FROM print_log p WHERE p.tracking = s.tracking),
                    t.stage, t.first_scan_ms, t.processed_ms, t.last_scan_ms,
                    x.event_code, x.facility_name, x.facility_city, x.facility_state,
                    x.facility_zip
             FROM scoped s
             LEFT JOIN tracking_pieces t ON t.tracking = s.tracking
             LEFT JOIN tracking_scans x ON x.id = (
                 SELECT y.id FROM tracking_scans y WHERE y.tracking = s.tracking
                 ORDER BY y.unix_ms DESC, y.id DESC LIMIT 1)
             WHERE s.rn = 1
             ORDER BY s.printed_at, s.rid"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([param])?;
        let mut counts = StateCounts::default();
        let mut to_first_scan = Vec::new();
        let mut to_processed = Vec::new();
        let mut out = Vec::new();
        let mut stalled = Vec::new();
        while let Some(row) = rows.next()? {
            let tracking: String = row.get(0)?;
            let Some((mailer_id, serial)) = mailer_serial(&tracking) else {
                // The spool only logs checked tracking codes.
                return Err(StoreError::Corrupt {
                    what: format!("tracking code {tracking:?} in the print log"),
                });
            };
            let printed_at: i64 = row.get(5)?;
            let first_printed: i64 = row.get(6)?;
            let last_printed: i64 = row.get::<_, Option<i64>>(7)?.unwrap_or(printed_at);
            let stage = match row.get::<_, Option<String>>(8)? {
                Some(stage) => stage_from_sql(&stage)?,
                None => Stage::Printed,
            };
            let first_scan_ms: Option<i64> = row.get(9)?;
            let processed_ms: Option<i64> = row.get(10)?;
            let last_scan_ms: Option<i64> = row.get(11)?;
            let activity = last_scan_ms.map_or(last_printed, |t| t.max(last_printed));
            let state = piece_state(stage, activity, now_ms, stall_days);
            *counts.slot(state) += 1;
            if let Some(t) = first_scan_ms {
                to_first_scan.push((t - first_printed).max(0));
            }
            if let Some(t) = processed_ms {
                to_processed.push((t - first_printed).max(0));
            }
            let facility = Facility {
                name: row.get(13)?,
                city: row.get(14)?,
                state: row.get(15)?,
                zip: row.get(16)?,
                locale_key: None,
            };
            let summary = PieceSummary {
                tracking,
                mailer_id,
                serial,
                job_id: row.get(1)?,
                index: unsigned(row.get(2)?, "label index")?,
                printer: row.get(3)?,
                recipient: row.get(4)?,
                printed_at_ms: printed_at,
                state,
                first_scan_ms,
                processed_ms,
                last_scan_ms,
                last_event_code: row.get(12)?,
                last_facility: describe_facility(&facility),
            };
            if state == PieceState::Stalled {
                stalled.push(summary.clone());
            }
            out.push(summary);
        }
        Ok(Report {
            scope: scope.clone(),
            generated_at_ms: now_ms,
            stall_days,
            pieces: out.len() as u64,
            counts,
            stalled,
            print_to_first_scan: duration_stats(to_first_scan),
            print_to_processed: duration_stats(to_processed),
            rows: out,
        })
    }

    /// Pieces the poller should look up now, most overdue first, at most `limit`:
    /// printed within `window_ms` (latest print), not yet processed for delivery, and
    /// either due (`next_poll_ms <= now`) or never polled and older than the interval
    /// of the first poll step (the step for age 0).
    pub fn due_for_poll(
        &self,
        now_ms: i64,
        window_ms: i64,
        poll: &[PollStep],
        limit: usize,
    ) -> Result<Vec<PollTarget>, StoreError> {
        let Some(first_interval) = poll_interval_ms(0, poll) else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "WITH printed AS (
                 SELECT tracking, routing, printed_at,
                        ROW_NUMBER() OVER (PARTITION BY tracking
                                           ORDER BY printed_at DESC, rowid DESC) AS rn
                 FROM print_log WHERE tracking IS NOT NULL AND printed_at >= ?1
             )
             SELECT p.tracking, p.routing, p.printed_at, COALESCE(t.polls, 0),
                    COALESCE(t.next_poll_ms, p.printed_at + ?2) AS due
             FROM printed p LEFT JOIN tracking_pieces t ON t.tracking = p.tracking
             WHERE p.rn = 1
               AND COALESCE(t.stage, 'printed') IN {OPEN_STAGES_SQL}
               AND COALESCE(t.next_poll_ms, p.printed_at + ?2) <= ?3
             ORDER BY due, p.tracking
             LIMIT ?4"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![
            now_ms.saturating_sub(window_ms),
            first_interval,
            now_ms,
            limit
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let tracking: String = row.get(0)?;
            let Some((mailer_id, serial)) = mailer_serial(&tracking) else {
                return Err(StoreError::Corrupt {
                    what: format!("tracking code {tracking:?} in the print log"),
                });
            };
            out.push(PollTarget {
                tracking,
                routing: row.get(1)?,
                mailer_id,
                serial,
                printed_at_ms: row.get(2)?,
                polls: unsigned(row.get(3)?, "poll count")?,
            });
        }
        Ok(out)
    }

    /// Records a lookup of `tracking` made at `now_ms`, the next one due at
    /// `next_poll_ms` (see [`next_poll_ms`]), and its error if it failed (`None`
    /// clears the last error).
    pub fn record_poll(
        &mut self,
        tracking: &str,
        now_ms: i64,
        next_poll_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let (mailer_id, serial) = split_tracking(tracking)?;
        self.conn
            .prepare_cached(
                "INSERT INTO tracking_pieces (tracking, mailer_id, serial, stage, polls,
                                              last_polled_ms, next_poll_ms, last_error)
                 VALUES (?1, ?2, ?3, 'printed', 1, ?4, ?5, ?6)
                 ON CONFLICT (tracking) DO UPDATE SET
                     polls = polls + 1, last_polled_ms = ?4, next_poll_ms = ?5,
                     last_error = ?6",
            )?
            .execute(params![
                tracking,
                mailer_id,
                serial as i64,
                now_ms,
                next_poll_ms,
                error
            ])?;
        Ok(())
    }

    /// Marks pieces printed within `window_ms` that have newly stalled (below
    /// processed-for-delivery, nothing heard for `stall_days`) and returns them, each
    /// once: the stall is remembered until a scan clears it. `stall_days = 0` marks
    /// nothing.
    pub fn mark_stalled(
        &mut self,
        now_ms: i64,
        stall_days: u32,
        window_ms: i64,
    ) -> Result<Vec<StateChange>, StoreError> {
        if stall_days == 0 {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut found = Vec::new();
        {
            let sql = format!(
                "WITH printed AS (
                     SELECT tracking, job_id, printed_at,
                            ROW_NUMBER() OVER (PARTITION BY tracking
                                               ORDER BY printed_at DESC, rowid DESC) AS rn
                     FROM print_log WHERE tracking IS NOT NULL AND printed_at >= ?1
                 )
                 SELECT p.tracking, p.job_id, COALESCE(t.stage, 'printed')
                 FROM printed p LEFT JOIN tracking_pieces t ON t.tracking = p.tracking
                 WHERE p.rn = 1 AND t.stalled_at_ms IS NULL
                   AND COALESCE(t.stage, 'printed') IN {OPEN_STAGES_SQL}
                   AND MAX(p.printed_at, COALESCE(t.last_scan_ms, p.printed_at)) <= ?2
                 ORDER BY p.tracking"
            );
            let mut stmt = tx.prepare(&sql)?;
            let mut rows = stmt.query(params![
                now_ms.saturating_sub(window_ms),
                now_ms.saturating_sub(i64::from(stall_days) * DAY_MS),
            ])?;
            while let Some(row) = rows.next()? {
                let stage: String = row.get(2)?;
                found.push((
                    row.get::<_, String>(0)?,
                    row.get(1)?,
                    stage_from_sql(&stage)?,
                ));
            }
        }
        let mut changes = Vec::with_capacity(found.len());
        {
            let mut mark = tx.prepare_cached(
                "INSERT INTO tracking_pieces (tracking, mailer_id, serial, stage, stalled_at_ms)
                 VALUES (?1, ?2, ?3, 'printed', ?4)
                 ON CONFLICT (tracking) DO UPDATE SET stalled_at_ms = ?4",
            )?;
            for (tracking, job_id, stage) in found {
                let Some((mailer_id, serial)) = mailer_serial(&tracking) else {
                    return Err(StoreError::Corrupt {
                        what: format!("tracking code {tracking:?} in the print log"),
                    });
                };
                mark.execute(params![tracking, mailer_id, serial as i64, now_ms])?;
                changes.push(StateChange {
                    tracking,
                    mailer_id,
                    serial,
                    job_id: Some(job_id),
                    from: stage.into(),
                    to: PieceState::Stalled,
                });
            }
        }
        tx.commit()?;
        Ok(changes)
    }
}

/// Writes a report's pieces as CSV with a header row: `tracking`, `mailer_id`,
/// `serial` (zero-padded: 9 digits for a 6-digit Mailer ID, 6 for a 9-digit one),
/// `job_id`, `index`, `printer`, `recipient`, `printed_at` (RFC 3339, UTC),
/// `printed_at_ms`, `state`, `first_scan_at`, `processed_at`, `last_scan_at` (RFC 3339,
/// UTC), `last_event_code`, `last_facility`. Fields without a value are empty.
pub fn write_report_csv(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| std::io::Error::other(e);
    writer
        .write_record([
            "tracking",
            "mailer_id",
            "serial",
            "job_id",
            "index",
            "printer",
            "recipient",
            "printed_at",
            "printed_at_ms",
            "state",
            "first_scan_at",
            "processed_at",
            "last_scan_at",
            "last_event_code",
            "last_facility",
        ])
        .map_err(csv_err)?;
    let time = |t: Option<i64>| t.map(format_rfc3339_ms).unwrap_or_default();
    for p in &report.rows {
        let width = if p.mailer_id.len() == 9 { 6 } else { 9 };
        writer
            .write_record([
                p.tracking.as_str(),
                p.mailer_id.as_str(),
                format!("{:0width$}", p.serial).as_str(),
                p.job_id.as_str(),
                p.index.to_string().as_str(),
                p.printer.as_str(),
                p.recipient.as_str(),
                format_rfc3339_ms(p.printed_at_ms).as_str(),
                p.printed_at_ms.to_string().as_str(),
                p.state.as_str(),
                time(p.first_scan_ms).as_str(),
                time(p.processed_ms).as_str(),
                time(p.last_scan_ms).as_str(),
                p.last_event_code.as_deref().unwrap_or(""),
                p.last_facility.as_deref().unwrap_or(""),
            ])
            .map_err(csv_err)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::scan::RawScan;
    use crate::tracking::stages::default_rules;

    const MINUTE_MS: i64 = 60_000;

    fn steps() -> Vec<PollStep> {
        crate::tracking::settings::default_poll()
    }

    #[test]
    fn next_poll_follows_the_age_steps() {
        let printed = 1_000_000;
        // Age 0 and just under 48 h: every 120 minutes.
        assert_eq!(
            next_poll_ms(printed, printed, &steps()),
            printed + 120 * MINUTE_MS
        );
        let at = printed + 48 * HOUR_MS - 1;
        assert_eq!(next_poll_ms(printed, at, &steps()), at + 120 * MINUTE_MS);
        // 48 h to 168 h: every 360 minutes.
        let at = printed + 48 * HOUR_MS;
        assert_eq!(next_poll_ms(printed, at, &steps()), at + 360 * MINUTE_MS);
        // Beyond: every 720 minutes.
        let at = printed + 400 * HOUR_MS;
        assert_eq!(next_poll_ms(printed, at, &steps()), at + 720 * MINUTE_MS);
        // Without an open-ended step, the last step's interval holds.
        let bounded = vec![PollStep {
            until_hours: Some(1),
            every_minutes: 15,
            every_seconds: None,
        }];
        assert_eq!(
            next_poll_ms(0, 10 * HOUR_MS, &bounded),
            10 * HOUR_MS + 15 * MINUTE_MS
        );
        // A clock behind the print time counts as age 0; no steps, never.
        assert_eq!(
            next_poll_ms(printed, printed - 5, &steps()),
            printed - 5 + 120 * MINUTE_MS
        );
        assert_eq!(next_poll_ms(0, 0, &[]), i64::MAX);
        // Seconds add to minutes; zero counts as one second.
        let mut short = vec![PollStep {
            until_hours: None,
            every_minutes: 1,
            every_seconds: Some(30),
        }];
        assert_eq!(next_poll_ms(0, 0, &short), 90_000);
        short[0].every_minutes = 0;
        short[0].every_seconds = None;
        assert_eq!(next_poll_ms(0, 0, &short), 1000);
    }

    #[test]
    fn durations_are_nearest_rank() {
        assert_eq!(duration_stats(vec![]), DurationStats::default());
        let one = duration_stats(vec![7]);
        assert_eq!(
            (one.min_ms, one.median_ms, one.p90_ms, one.max_ms),
            (Some(7), Some(7), Some(7), Some(7))
        );
        let ten = duration_stats((1..=10).rev().collect());
        assert_eq!(ten.count, 10);
        assert_eq!(
            (ten.min_ms, ten.median_ms, ten.p90_ms, ten.max_ms),
            (Some(1), Some(5), Some(9), Some(10))
        );
        let four = duration_stats(vec![40, 10, 30, 20]);
        assert_eq!((four.median_ms, four.p90_ms), (Some(20), Some(40)));
    }

    #[test]
    fn piece_state_stalls_only_below_processed() {
        let day = DAY_MS;
        assert_eq!(
            piece_state(Stage::Accepted, 0, 5 * day - 1, 5),
            PieceState::Accepted
        );
        assert_eq!(
            piece_state(Stage::Accepted, 0, 5 * day, 5),
            PieceState::Stalled
        );
        assert_eq!(
            piece_state(Stage::Printed, 0, 9 * day, 5),
            PieceState::Stalled
        );
        assert_eq!(
            piece_state(Stage::ProcessedForDelivery, 0, 9 * day, 5),
            PieceState::ProcessedForDelivery
        );
        assert_eq!(
            piece_state(Stage::Delivered, 0, 9 * day, 5),
            PieceState::Delivered
        );
        assert_eq!(
            piece_state(Stage::InTransit, 0, 90 * day, 0),
            PieceState::InTransit
        );
    }

    fn scan(phase: Option<&str>, code: &str) -> Scan {
        let raw = RawScan {
            imb: Some("00270123456123456789".into()),
            scan_datetime: Some("2026-11-20 08:15:00".into()),
            event_code: Some(code.into()),
            mail_phase: phase.map(str::to_owned),
            ..RawScan::default()
        };
        Scan::from_raw(raw, ScanSource::Pull).unwrap()
    }

    #[test]
    fn stages_by_rule() {
        let rules = default_rules();
        let cases = [
            // 0: code rule comes first
            (
                Some("Phase 2 - Destination Processing"),
                "918",
                Stage::ProcessedForDelivery,
            ),
            // 1-3: phase spelled three ways
            (
                Some("Phase 3c - Destination Sequenced Carrier Sortation"),
                "891",
                Stage::ProcessedForDelivery,
            ),
            (Some("PHASE 3C"), "891", Stage::ProcessedForDelivery),
            (Some("Phase3c"), "891", Stage::ProcessedForDelivery),
            // 4: 3a is only in transit
            (
                Some("Phase 3a - Destination Secondary"),
                "891",
                Stage::InTransit,
            ),
            // 5: origin
            (
                Some("Phase 0 Origin Processing Cancellation of Postage"),
                "010",
                Stage::Accepted,
            ),
            // 6: delivery
            (Some("Phase 4c - Delivery"), "xx1", Stage::Delivered),
            // 7: no phase, unknown code
            (None, "123", Stage::InTransit),
            // 8: a phase no rule knows
            (Some("Miscellaenous"), "123", Stage::InTransit),
        ];
        for (i, (phase, code, stage)) in cases.into_iter().enumerate() {
            assert_eq!(stage_of(&scan(phase, code), &rules), stage, "case {i}");
        }
    }

    #[test]
    fn piece_keys() {
        assert_eq!(
            PieceKey::parse(" 00270123456123456789 ").unwrap(),
            PieceKey::Tracking("00270123456123456789".into())
        );
        assert_eq!(
            PieceKey::parse("0027012345612345678960601123456").unwrap(),
            PieceKey::Tracking("00270123456123456789".into())
        );
        assert_eq!(
            PieceKey::parse("123456-42").unwrap(),
            PieceKey::Serial {
                mailer_id: "123456".into(),
                serial: 42
            }
        );
        assert_eq!(
            PieceKey::parse("912345678:000042").unwrap(),
            PieceKey::Serial {
                mailer_id: "912345678".into(),
                serial: 42
            }
        );
        let err = PieceKey::parse("0027012345612345678960").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`0027012345612345678960` is not a piece: it has 22 digits; expected a 20-digit \
             tracking code, a 25-, 29- or 31-digit IMb, or MAILERID-SERIAL"
        );
        for bad in [
            "923456-1",
            "123456789-1",
            "123456-",
            "123456-1234567890",
            "912345678-1234567",
            "abc",
            "05270123456123456789",
        ] {
            assert!(PieceKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mailer_serial_splits_by_first_digit() {
        assert_eq!(
            mailer_serial("00270123456123456789"),
            Some(("123456".into(), 123_456_789))
        );
        assert_eq!(
            mailer_serial("00270912345678123456"),
            Some(("912345678".into(), 123_456))
        );
        assert_eq!(mailer_serial("0027012345612345678"), None);
    }
}
