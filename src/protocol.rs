//! The job API's wire protocol: request checks and parsing, replies, and the one
//! place where every stage's error becomes a wire [`ErrorCode`].
//!
//! Pure: no sockets, no I/O, no clock. The server (issue 5) runs, for each message:
//! [`check`] (frames, size, UTF-8; allocates nothing) → [`parse_request`] → handler
//! → exactly one [`Reply`].
//!
//! # Requests
//!
//! One ZeroMQ frame (after the ROUTER's routing envelope and empty delimiter are
//! removed) holding one JSON object, at most [`Limits::max_request_bytes`] bytes of
//! UTF-8:
//!
//! ```json
//! {"v": 1, "id": "c-17", "op": "submit", "printer": "zebra-1", "job_id": "order-4711",
//!  "priority": 5, "job": {"template": "address", "size": "4x6", "to": ["..."]}}
//! ```
//!
//! - `"v"` is required and must be the integer [`VERSION`]; anything else (missing,
//!   another number, another type) is `unsupported_version` naming the version this
//!   labeld speaks. It is checked before anything but `"id"`.
//! - `"id"` (optional): a string of 1–128 bytes without control characters, or an
//!   integer; echoed in the reply, error replies included once it was read.
//! - `"op"` and its fields, every other key is `bad_field` (`deny_unknown_fields`):
//!
//! | op | fields |
//! |---|---|
//! | `submit` | `printer`, `job` (a label job as in `docs/labels.md`), `job_id`?, `priority`? |
//! | `submit_batch` | `printer`, `template` (a label job without the per-piece fields), `records` (objects merged over the template, key by key), `job_id`?, `priority`? |
//! | `status`, `cancel` | `job_id` |
//! | `reprint` | `job_id`, `serials`: `"same"` or `"new"`, `new_job_id`? |
//! | `printers`, `health` | none |
//! | `pause`, `resume` | `printer` |
//!
//! `printer` is 1–64 characters of `[A-Za-z0-9._-]` starting with a letter or digit
//! (so never `..`, a path or an option). `job_id` is 1–128 bytes without control
//! characters (the spool's rule). `priority` is 0–9, higher first, default
//! [`DEFAULT_PRIORITY`]. A batch has 1 to [`Limits::max_batch_labels`] records, and a
//! `sheet` job at most that many records. IMb tracking and routing codes are checked
//! here (`invalid_imb`, with the USPS error class); what fits on the label is checked
//! by layout and mapped with [`ProtocolError::from_layout`].
//!
//! # Replies
//!
//! ```json
//! {"v":1,"id":"c-17","ok":true,"job_id":"order-4711","label_count":1,"serials":[...],"warnings":[],"replayed":false}
//! {"v":1,"id":"c-17","ok":false,"error":{"code":"bad_field","field":"printer","message":"..."}}
//! ```
//!
//! `"id"` is absent when the request had none (or it could not be read). An error
//! has a stable snake_case `code` ([`ErrorCode`]), a `field` (a dotted path into the
//! request, `records[3].imb.mailer_id`, or `null`), a lowercase `message`, and for IMb
//! data errors `usps_class` (the two-digit USPS error class, also in the message).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::encode::imb::{EncodeError, Routing, Tracking};
use crate::layout::job::CustomElement;
use crate::layout::{ImbData, Job, LayoutError, LayoutErrorKind, JOB_VERSION};
use crate::spool::{Accepted, SpoolError};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The priority of a job that gives none.
pub const DEFAULT_PRIORITY: u8 = 5;

/// The highest priority.
pub const MAX_PRIORITY: u8 = 9;

/// The longest printer name.
pub const MAX_PRINTER_LEN: usize = 64;

/// The longest client job id or request id, in bytes (the spool's limit).
pub const MAX_ID_LEN: usize = 128;

/// Every op, as written in `"op"`.
pub const OPS: [&str; 13] = [
    "submit",
    "submit_batch",
    "status",
    "cancel",
    "reprint",
    "printers",
    "pause",
    "resume",
    "health",
    "log",
    "track",
    "tracking_report",
    "tracking_import",
];

/// Configured bounds, checked before and during parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request (all frames together), bytes.
    pub max_request_bytes: usize,
    /// Most records in one `submit_batch` (and in one `sheet` job).
    pub max_batch_labels: usize,
}

impl Default for Limits {
    /// 4 MiB and 10,000 labels: a 10,000-address mailing list fits.
    fn default() -> Limits {
        Limits {
            max_request_bytes: 4 << 20,
            max_batch_labels: 10_000,
        }
    }
}

/// A stable error code on the wire. Clients match on these; never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not UTF-8, not JSON, nested too deeply, or not a JSON object.
    MalformedJson,
    /// The message has other than one frame.
    BadFrames,
    /// `"v"` is missing or not [`VERSION`] (or a label job's `"version"` is unknown).
    UnsupportedVersion,
    /// `"op"` names no operation.
    UnknownOp,
    /// A field is missing, unknown, of the wrong type or out of range.
    BadField,
    /// No printer of that name is configured.
    UnknownPrinter,
    /// IMb data breaks a USPS rule (the USPS error class is given).
    InvalidImb,
    /// Tray, container or Code 128 data that cannot be encoded.
    InvalidBarcode,
    /// An element does not fit on the label.
    LabelDoesNotFit,
    /// More records than [`Limits::max_batch_labels`].
    BatchTooLarge,
    /// More bytes than [`Limits::max_request_bytes`].
    RequestTooLarge,
    /// The Mailer ID has no serial range configured on this host.
    NoSerialRange,
    /// The Mailer ID's serial range has too few serials left.
    SerialsExhausted,
    /// Queues are full; retry later.
    Busy,
    /// The daemon is stopping; retry after it restarts.
    ShuttingDown,
    /// No such job (or label).
    NotFound,
    /// A job id already used for another request, or a state change not allowed now.
    Conflict,
    /// A fault inside labeld; the daemon log has the details.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::MalformedJson,
        ErrorCode::BadFrames,
        ErrorCode::UnsupportedVersion,
        ErrorCode::UnknownOp,
        ErrorCode::BadField,
        ErrorCode::UnknownPrinter,
        ErrorCode::InvalidImb,
        ErrorCode::InvalidBarcode,
        ErrorCode::LabelDoesNotFit,
        ErrorCode::BatchTooLarge,
        ErrorCode::RequestTooLarge,
        ErrorCode::NoSerialRange,
        ErrorCode::SerialsExhausted,
        ErrorCode::Busy,
        ErrorCode::ShuttingDown,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Internal,
    ];

    /// The code as written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BadFrames => "bad_frames",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::BadField => "bad_field",
            ErrorCode::UnknownPrinter => "unknown_printer",
            ErrorCode::InvalidImb => "invalid_imb",
            ErrorCode::InvalidBarcode => "invalid_barcode",
            ErrorCode::LabelDoesNotFit => "label_does_not_fit",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::NoSerialRange => "no_serial_range",
            ErrorCode::SerialsExhausted => "serials_exhausted",
            ErrorCode::Busy => "busy",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client's request id, echoed in the reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientId {
    /// An integer id.
    Int(i64),
    /// A string id (1–128 bytes, no control characters).
    Str(String),
}

/// A request that cannot be served, as the client will read it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolError {
    /// The wire code.
    pub code: ErrorCode,
    /// Dotted path of the offending field in the request, if one is to blame.
    pub field: Option<String>,
    /// Lowercase, names the subject and what is allowed.
    pub message: String,
    /// The USPS error class (09–13) of an IMb data error.
    pub usps_class: Option<u8>,
    /// The request's `"id"`, when parsing got far enough to read it.
    pub id: Option<ClientId>,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl ProtocolError {
    /// A new error.
    pub fn new(code: ErrorCode, field: Option<&str>, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            field: field.map(str::to_owned),
            message: message.into(),
            usps_class: None,
            id: None,
        }
    }

    /// `bad_field` for `field`.
    pub fn bad_field(field: &str, message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(ErrorCode::BadField, Some(field), message)
    }

    /// `unknown_printer`: the server's answer for a name that is not configured.
    pub fn unknown_printer(name: &str) -> ProtocolError {
        ProtocolError::new(
            ErrorCode::UnknownPrinter,
            Some("printer"),
            format!("printer {name:?} is not configured (op \"printers\" lists them)"),
        )
    }

    /// `busy`: a full queue.
    pub fn busy() -> ProtocolError {
        ProtocolError::new(
            ErrorCode::Busy,
            None,
            "labeld is busy: its queues are full (retry after a short wait)",
        )
    }

    /// `shutting_down`.
    pub fn shutting_down() -> ProtocolError {
        ProtocolError::new(
            ErrorCode::ShuttingDown,
            None,
            "labeld is shutting down (retry after it restarts; queued jobs are kept)",
        )
    }

    /// The same error with `prefix` put before its field (`records[3]` + `imb` →
    /// `records[3].imb`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> ProtocolError {
        self.field = Some(join(prefix, self.field.as_deref().unwrap_or("")));
        self
    }

    /// The same error carrying the request's id.
    #[must_use]
    pub fn with_id(mut self, id: Option<ClientId>) -> ProtocolError {
        self.id = id;
        self
    }

    // ---- The one place where stage errors become wire codes. ----

    /// A layout error: `field` is the element (`imb`, `to line 2`); IMb data errors
    /// add the IMb field (`imb.mailer_id`) and the USPS class.
    pub fn from_layout(err: &LayoutError) -> ProtocolError {
        let code = match &err.kind {
            LayoutErrorKind::Json { message } => {
                // serde names unknown and missing fields in backquotes.
                let field = backquoted(message)
                    .filter(|_| {
                        message.starts_with("unknown field") || message.starts_with("missing field")
                    })
                    .unwrap_or("");
                return ProtocolError::bad_field(
                    &clip(field),
                    format!("label job: {}", clip_msg(message)),
                )
                .tidy_field();
            }
            LayoutErrorKind::Version { .. } => ErrorCode::UnsupportedVersion,
            LayoutErrorKind::Imb(e) => {
                return ProtocolError::from_encode(e)
                    .under(&err.element)
                    .with_message(err.to_string());
            }
            LayoutErrorKind::Tray(_)
            | LayoutErrorKind::Container(_)
            | LayoutErrorKind::Code128(_) => ErrorCode::InvalidBarcode,
            LayoutErrorKind::BarcodeTooWide { .. }
            | LayoutErrorKind::LineTooWide { .. }
            | LayoutErrorKind::TooTall { .. }
            | LayoutErrorKind::OutsideLabel { .. }
            | LayoutErrorKind::Overlap { .. } => ErrorCode::LabelDoesNotFit,
            LayoutErrorKind::LineCount { .. }
            | LayoutErrorKind::EmptyLine
            | LayoutErrorKind::UnsupportedChar { .. }
            | LayoutErrorKind::LineTooLong { .. }
            | LayoutErrorKind::Value { .. }
            | LayoutErrorKind::Image { .. } => ErrorCode::BadField,
        };
        ProtocolError::new(code, Some(&err.element), err.to_string()).tidy_field()
    }

    /// An IMb data error: `field` is the IMb field's key (`mailer_id`, `routing`),
    /// the message starts with the USPS class (`error 09: ...`).
    pub fn from_encode(err: &EncodeError) -> ProtocolError {
        let mut e = ProtocolError::new(
            ErrorCode::InvalidImb,
            Some(err.field().key()),
            err.to_string(),
        );
        e.usps_class = Some(err.usps_class().code());
        e
    }

    /// A spool error. Faults of the store itself are `internal` with a generic
    /// message (the server logs the detail).
    pub fn from_spool(err: &SpoolError) -> ProtocolError {
        let msg = err.to_string();
        match err {
            SpoolError::NoRange { .. } => {
                ProtocolError::new(ErrorCode::NoSerialRange, Some("imb.mailer_id"), msg)
            }
            SpoolError::RangeExhausted { .. } => {
                ProtocolError::new(ErrorCode::SerialsExhausted, Some("imb.mailer_id"), msg)
            }
            SpoolError::IdConflict { .. } => {
                ProtocolError::new(ErrorCode::Conflict, Some("job_id"), msg)
            }
            SpoolError::BadTransition { .. } => ProtocolError::new(ErrorCode::Conflict, None, msg),
            SpoolError::ClientSerialInRange { .. } => {
                ProtocolError::new(ErrorCode::Conflict, Some("imb.tracking"), msg)
            }
            SpoolError::BadPriority { .. } => ProtocolError::bad_field("priority", msg),
            // Another writer held the spool past the busy timeout: nothing was
            // written, and the same request later will do.
            SpoolError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                ProtocolError::new(
                    ErrorCode::Busy,
                    None,
                    "labeld is busy: the spool was locked longer than its busy timeout (retry after a short wait)",
                )
            }
            SpoolError::BadJobId { .. } => ProtocolError::bad_field("job_id", msg),
            SpoolError::NoLabels => ProtocolError::new(ErrorCode::BadField, None, msg),
            SpoolError::Imb { index, source } => {
                let mut e = ProtocolError::from_encode(source).under(&format!("labels[{index}]"));
                e.message = msg;
                e
            }
            SpoolError::UnknownJob { .. } | SpoolError::UnknownLabel { .. } => {
                ProtocolError::new(ErrorCode::NotFound, Some("job_id"), msg)
            }
            _ => ProtocolError::new(
                ErrorCode::Internal,
                None,
                "internal error in the spool (the daemon log has the details)",
            ),
        }
    }

    fn with_message(mut self, message: String) -> ProtocolError {
        self.message = message;
        self
    }

    /// An empty field is no field.
    fn tidy_field(mut self) -> ProtocolError {
        if self.field.as_deref() == Some("") {
            self.field = None;
        }
        self
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// The first `` `name` `` in a serde message.
fn backquoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

// ---------------------------------------------------------------------------
// Checks before parsing.

/// Checks a message before any JSON is parsed; allocates nothing.
///
/// `parts` are the frames after the routing envelope: exactly one is expected. Its
/// size is checked against [`Limits::max_request_bytes`] before its UTF-8.
///
/// # Errors
///
/// `bad_frames`, `request_too_large`, or `malformed_json` (empty or not UTF-8).
pub fn check(parts: &[&[u8]], limits: &Limits) -> Result<(), ProtocolError> {
    let total = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    if total > limits.max_request_bytes {
        return Err(ProtocolError::new(
            ErrorCode::RequestTooLarge,
            None,
            format!(
                "request is {total} bytes; the limit is {} bytes (split a batch into smaller ones)",
                limits.max_request_bytes
            ),
        ));
    }
    let [body] = parts else {
        return Err(ProtocolError::new(
            ErrorCode::BadFrames,
            None,
            format!(
                "request has {} frames; expected exactly one frame holding a JSON object",
                parts.len()
            ),
        ));
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ProtocolError::new(
            ErrorCode::MalformedJson,
            None,
            "request is empty; expected a JSON object",
        ));
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ProtocolError::new(
            ErrorCode::MalformedJson,
            None,
            format!(
                "request is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Requests.

/// A parsed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The client's id, echoed in the reply.
    pub id: Option<ClientId>,
    /// What to do.
    pub op: Op,
}

/// An operation and its arguments.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Submit one label job.
    Submit(Submit),
    /// Submit one template with many records.
    SubmitBatch(SubmitBatch),
    /// A job's status.
    Status(StatusQuery),
    /// Cancel a job's unprinted labels.
    Cancel(JobRef),
    /// Print a job again.
    Reprint(Reprint),
    /// List printers with their live status.
    Printers,
    /// Stop a printer's queue after the label in flight.
    Pause(PrinterRef),
    /// Restart a printer's queue.
    Resume(PrinterRef),
    /// Is the daemon alive and serving.
    Health,
    /// Print-log rows (serial ↔ job ↔ printer ↔ recipient ↔ time).
    Log(LogQuery),
    /// One printed piece with its USPS scans and tracking state.
    Track(TrackQuery),
    /// Tracking states of a job's pieces or of everything printed since a time.
    TrackingReport(ReportQuery),
    /// Store scans from an IV-MTR feed file (`labelctl tracking import`).
    TrackingImport(TrackingImport),
}

impl Op {
    /// The op as written in `"op"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Op::Submit(_) => "submit",
            Op::SubmitBatch(_) => "submit_batch",
            Op::Status(_) => "status",
            Op::Cancel(_) => "cancel",
            Op::Reprint(_) => "reprint",
            Op::Printers => "printers",
            Op::Pause(_) => "pause",
            Op::Resume(_) => "resume",
            Op::Health => "health",
            Op::Log(_) => "log",
            Op::Track(_) => "track",
            Op::TrackingReport(_) => "tracking_report",
            Op::TrackingImport(_) => "tracking_import",
        }
    }
}

/// `submit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// Printer name.
    pub printer: String,
    /// Client-chosen job id: the same id with the same request returns the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// 0–9, higher first.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// The label job.
    pub job: Job,
}

/// `submit_batch`: each record's keys replace the template's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    /// Printer name.
    pub printer: String,
    /// Client-chosen job id for the whole batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// 0–9, higher first.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// The shared part of every label job (must name its `"template"`).
    pub template: Map<String, Value>,
    /// The per-piece fields.
    pub records: Vec<Map<String, Value>>,
    /// The merged jobs, one per record (filled by [`parse_request`]).
    #[serde(skip)]
    jobs: Vec<Job>,
}

impl SubmitBatch {
    /// The label jobs, one per record, in order.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }
}

/// `cancel` (and the job of a `status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRef {
    /// The job id.
    pub job_id: String,
}

/// `status`: a job, with or without its labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// The job id.
    pub job_id: String,
    /// List every label (default); `false` answers the counts only, which is what a
    /// client waiting for a 10,000-label job wants to poll.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub labels: bool,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_yes(value: &bool) -> bool {
    *value
}

/// Which serials a reprint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Serials {
    /// The serials printed before (the same pieces again).
    Same,
    /// Freshly allocated serials (new pieces).
    New,
}

/// `reprint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reprint {
    /// The job id.
    pub job_id: String,
    /// Same or new serials.
    pub serials: Serials,
    /// The reprint's own job id: the same reprint sent again returns the first
    /// answer and prints nothing twice. Default: `<job_id>.r<N>`, a new job each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_job_id: Option<String>,
}

/// `pause` and `resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterRef {
    /// Printer name.
    pub printer: String,
}

/// `log`: print-log rows printed in `[since_ms, until_ms)`, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Unix milliseconds, inclusive; default 0.
    #[serde(default)]
    pub since_ms: i64,
    /// Unix milliseconds, exclusive; default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// At most this many rows (1 to [`MAX_LOG_ROWS`]); page with `since_ms`.
    pub limit: usize,
}

/// `track`: one piece, named by its 20-digit tracking code, its full IMb digits,
/// `MID-SERIAL`, or a bare serial when one Mailer ID is configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// The piece.
    pub piece: String,
    /// Ask IV-MTR now, before answering (needs `[tracking] enabled`); a failed
    /// lookup still answers with what is stored, and says why in `refresh_error`.
    #[serde(default)]
    pub refresh: bool,
}

/// `tracking_report`: exactly one of `job_id` and `since_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// The pieces of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The pieces printed since this time, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Include one row per piece (for CSV); default false.
    #[serde(default)]
    pub pieces: bool,
}

/// `tracking_import`: piece events of an IV-MTR feed, as USPS spells them
/// (camelCase), checked one by one when parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingImport {
    /// Where they came from (a file name), for the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The events as received.
    pub events: Vec<Map<String, Value>>,
    /// The same events, checked (filled by [`parse_request`]).
    #[serde(skip)]
    pub scans: Vec<crate::tracking::scan::Scan>,
}

/// The most events one `tracking_import` request carries (labelctl sends a file in
/// chunks of this many).
pub const MAX_IMPORT_EVENTS: usize = 5_000;

/// The most print-log rows one `log` request returns.
pub const MAX_LOG_ROWS: usize = 100_000;

fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}

impl Request {
    /// The request as JSON (what a client sends).
    pub fn to_json(&self) -> String {
        let payload = match &self.op {
            Op::Submit(x) => serde_json::to_value(x),
            Op::SubmitBatch(x) => serde_json::to_value(x),
            Op::Status(x) => serde_json::to_value(x),
            Op::Cancel(x) => serde_json::to_value(x),
            Op::Reprint(x) => serde_json::to_value(x),
            Op::Pause(x) | Op::Resume(x) => serde_json::to_value(x),
            Op::Log(x) => serde_json::to_value(x),
            Op::Track(x) => serde_json::to_value(x),
            Op::TrackingReport(x) => serde_json::to_value(x),
            Op::TrackingImport(x) => serde_json::to_value(x),
            Op::Printers | Op::Health => Ok(Value::Object(Map::new())),
        };
        // Plain structs of strings, numbers and maps always serialize; an error
        // here would be a bug, and an empty payload is still a readable request.
        let mut map = match payload {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        map.insert("v".into(), VERSION.into());
        if let Some(id) = &self.id {
            map.insert("id".into(), serde_json::to_value(id).unwrap_or(Value::Null));
        }
        map.insert("op".into(), self.op.name().into());
        Value::Object(map).to_string()
    }
}

/// Parses a request that passed [`check`].
///
/// # Errors
///
/// A [`ProtocolError`] with its code and field; see the module doc for the order.
pub fn parse_request(body: &[u8], limits: &Limits) -> Result<Request, ProtocolError> {
    // serde_json checks UTF-8 and stops at 128 levels of nesting with an error.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::new(
            ErrorCode::MalformedJson,
            None,
            format!("request is not valid JSON: {}", clip_msg(&e.to_string())),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(ProtocolError::new(
            ErrorCode::MalformedJson,
            None,
            "request is not a JSON object",
        ));
    };
    let raw_id = map.remove("id");
    let soft_id = raw_id.as_ref().and_then(|v| client_id(v).ok());
    let fail = |e: ProtocolError| e.with_id(soft_id.clone());

    match map.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        found => {
            let found = match found {
                None => "missing".to_owned(),
                Some(v) => clip(&v.to_string()),
            };
            return Err(fail(ProtocolError::new(
                ErrorCode::UnsupportedVersion,
                Some("v"),
                format!("v is {found}; this labeld speaks protocol version {VERSION} (send \"v\": {VERSION})"),
            )));
        }
    }
    let id = match raw_id {
        None | Some(Value::Null) => None,
        Some(v) => Some(client_id(&v).map_err(|m| ProtocolError::bad_field("id", m))?),
    };
    let fail = |e: ProtocolError| e.with_id(id.clone());

    let op = match map.remove("op") {
        None => {
            return Err(fail(ProtocolError::bad_field(
                "op",
                format!("op is missing; expected one of {}", OPS.join(", ")),
            )))
        }
        Some(Value::String(op)) => op,
        Some(other) => {
            return Err(fail(ProtocolError::bad_field(
                "op",
                format!(
                    "op is {}; expected a string, one of {}",
                    kind(&other),
                    OPS.join(", ")
                ),
            )))
        }
    };
    let op = parse_op(&op, map, limits).map_err(fail)?;
    Ok(Request { id, op })
}

fn parse_op(op: &str, map: Map<String, Value>, limits: &Limits) -> Result<Op, ProtocolError> {
    Ok(match op {
        "submit" => {
            let mut f = Fields::new(op, map, &["printer", "job_id", "priority", "job"])?;
            let printer = printer(f.req("printer")?)?;
            let job_id = f.opt("job_id")?.map(job_id).transpose()?;
            let priority = priority(f.opt("priority")?)?;
            let job_value: Value = f.req("job")?;
            let job = parse_job(&job_value, "job", limits)?;
            Op::Submit(Submit {
                printer,
                job_id,
                priority,
                job,
            })
        }
        "submit_batch" => {
            let mut f = Fields::new(
                op,
                map,
                &["printer", "job_id", "priority", "template", "records"],
            )?;
            let printer = printer(f.req("printer")?)?;
            let job_id = f.opt("job_id")?.map(job_id).transpose()?;
            let priority = priority(f.opt("priority")?)?;
            let template: Map<String, Value> = f.req("template")?;
            // Count before reading the records' contents.
            let records: Vec<Value> = f.req("records")?;
            if records.len() > limits.max_batch_labels {
                return Err(ProtocolError::new(
                    ErrorCode::BatchTooLarge,
                    Some("records"),
                    format!(
                        "batch has {} records; the limit is {} (split it into several batches)",
                        records.len(),
                        limits.max_batch_labels
                    ),
                ));
            }
            if records.is_empty() {
                return Err(ProtocolError::bad_field(
                    "records",
                    "records is empty; a batch needs at least one record",
                ));
            }
            let mut objects = Vec::with_capacity(records.len());
            let mut jobs = Vec::with_capacity(records.len());
            for (i, record) in records.into_iter().enumerate() {
                let at = format!("records[{i}]");
                let Value::Object(record) = record else {
                    return Err(ProtocolError::bad_field(
                        &at,
                        format!("{at} is {}; expected an object", kind(&record)),
                    ));
                };
                if record.contains_key("template") {
                    return Err(ProtocolError::bad_field(
                        &format!("{at}.template"),
                        "a record cannot change the template; send another batch",
                    ));
                }
                let mut merged = template.clone();
                merged.extend(record.iter().map(|(k, v)| (k.clone(), v.clone())));
                jobs.push(parse_job(&Value::Object(merged), &at, limits)?);
                objects.push(record);
            }
            Op::SubmitBatch(SubmitBatch {
                printer,
                job_id,
                priority,
                template,
                records: objects,
                jobs,
            })
        }
        "status" => {
            let mut f = Fields::new(op, map, &["job_id", "labels"])?;
            Op::Status(StatusQuery {
                job_id: job_id(f.req("job_id")?)?,
                labels: f.opt("labels")?.unwrap_or(true),
            })
        }
        "cancel" => {
            let mut f = Fields::new(op, map, &["job_id"])?;
            Op::Cancel(JobRef {
                job_id: job_id(f.req("job_id")?)?,
            })
        }
        "reprint" => {
            let mut f = Fields::new(op, map, &["job_id", "serials", "new_job_id"])?;
            let job_id = job_id(f.req("job_id")?)?;
            let serials = f.req("serials")?;
            let new_job_id = f
                .opt("new_job_id")?
                .map(|id: String| {
                    check_id(&id).map(|()| id).map_err(|m| {
                        ProtocolError::bad_field("new_job_id", format!("new_job_id {m}"))
                    })
                })
                .transpose()?;
            Op::Reprint(Reprint {
                job_id,
                serials,
                new_job_id,
            })
        }
        "pause" | "resume" => {
            let mut f = Fields::new(op, map, &["printer"])?;
            let r = PrinterRef {
                printer: printer(f.req("printer")?)?,
            };
            if op == "pause" {
                Op::Pause(r)
            } else {
                Op::Resume(r)
            }
        }
        "printers" => {
            Fields::new(op, map, &[])?;
            Op::Printers
        }
        "health" => {
            Fields::new(op, map, &[])?;
            Op::Health
        }
        "log" => {
            let mut f = Fields::new(op, map, &["since_ms", "until_ms", "limit"])?;
            let since_ms: i64 = f.opt("since_ms")?.unwrap_or(0);
            let until_ms: Option<i64> = f.opt("until_ms")?;
            let limit: u64 = f.opt("limit")?.unwrap_or(MAX_LOG_ROWS as u64);
            if limit == 0 || limit > MAX_LOG_ROWS as u64 {
                return Err(ProtocolError::bad_field(
                    "limit",
                    format!("limit is {limit}; expected 1 to {MAX_LOG_ROWS} (page with since_ms)"),
                ));
            }
            Op::Log(LogQuery {
                since_ms,
                until_ms,
                limit: limit as usize,
            })
        }
        "track" => {
            let mut f = Fields::new(op, map, &["piece", "refresh"])?;
            let piece: String = f.req("piece")?;
            let refresh: bool = f.opt("refresh")?.unwrap_or(false);
            if piece.is_empty() || piece.len() > 40 {
                return Err(ProtocolError::bad_field(
                    "piece",
                    "piece must be a 20-digit tracking code, IMb digits, or MID-SERIAL",
                ));
            }
            Op::Track(TrackQuery { piece, refresh })
        }
        "tracking_report" => {
            let mut f = Fields::new(op, map, &["job_id", "since_ms", "pieces"])?;
            let job_id = f.opt("job_id")?.map(job_id).transpose()?;
            let since_ms: Option<i64> = f.opt("since_ms")?;
            let pieces: bool = f.opt("pieces")?.unwrap_or(false);
            if job_id.is_some() == since_ms.is_some() {
                return Err(ProtocolError::bad_field(
                    "job_id",
                    "give exactly one of job_id and since_ms",
                ));
            }
            Op::TrackingReport(ReportQuery {
                job_id,
                since_ms,
                pieces,
            })
        }
        "tracking_import" => {
            let mut f = Fields::new(op, map, &["source", "events"])?;
            let source: Option<String> = f.opt("source")?;
            if source.as_ref().is_some_and(|s| s.len() > 4096) {
                return Err(ProtocolError::bad_field(
                    "source",
                    "source is over 4096 bytes",
                ));
            }
            let events: Vec<Value> = f.req("events")?;
            if events.len() > MAX_IMPORT_EVENTS {
                return Err(ProtocolError::new(
                    ErrorCode::BatchTooLarge,
                    Some("events"),
                    format!(
                        "{} events; send at most {MAX_IMPORT_EVENTS} per request",
                        events.len()
                    ),
                ));
            }
            let mut objects = Vec::with_capacity(events.len());
            let mut scans = Vec::with_capacity(events.len());
            for (i, event) in events.into_iter().enumerate() {
                let at = format!("events[{i}]");
                let Value::Object(event) = event else {
                    return Err(ProtocolError::bad_field(
                        &at,
                        format!("{at} is {}; expected an object", kind(&event)),
                    ));
                };
                let scan = crate::tracking::scan::RawScan::from_json(&event)
                    .and_then(|raw| {
                        crate::tracking::scan::Scan::from_raw(
                            raw,
                            crate::tracking::scan::ScanSource::Import,
                        )
                    })
                    .map_err(|e| scan_error(&at, &e))?;
                scans.push(scan);
                objects.push(event);
            }
            Op::TrackingImport(TrackingImport {
                source,
                events: objects,
                scans,
            })
        }
        other => {
            return Err(ProtocolError::new(
                ErrorCode::UnknownOp,
                Some("op"),
                format!(
                    "op {:?} is unknown; expected one of {}",
                    clip(other),
                    OPS.join(", ")
                ),
            ))
        }
    })
}

/// The fields of one op: unknown keys are rejected up front (the hand-written
/// `deny_unknown_fields`), then each field is read with its own type so an error
/// names it.
/// A scan that breaks a rule, as a `bad_field` naming the event and its field.
fn scan_error(at: &str, e: &crate::tracking::scan::ScanError) -> ProtocolError {
    use crate::tracking::scan::ScanError;
    let field = match e {
        ScanError::Missing { field } | ScanError::Invalid { field, .. } => {
            format!("{at}.{field}")
        }
        #[allow(unreachable_patterns)]
        _ => at.to_owned(),
    };
    ProtocolError::bad_field(&field, format!("{at}: {e}"))
}

struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn new(op: &str, map: Map<String, Value>, known: &[&str]) -> Result<Fields, ProtocolError> {
        if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
            let expected = if known.is_empty() {
                "it takes no fields besides v, id and op".to_owned()
            } else {
                format!("expected v, id, op, {}", known.join(", "))
            };
            let key = clip(key);
            return Err(ProtocolError::bad_field(
                &key,
                format!("unknown field {key:?} for op {op}; {expected}"),
            ));
        }
        Ok(Fields { map })
    }

    /// An optional field; `null` counts as absent.
    fn opt<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, ProtocolError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|e| {
                ProtocolError::bad_field(key, format!("{key}: {}", clip_msg(&e.to_string())))
            }),
        }
    }

    fn req<T: DeserializeOwned>(&mut self, key: &str) -> Result<T, ProtocolError> {
        self.opt(key)?
            .ok_or_else(|| ProtocolError::bad_field(key, format!("{key} is missing")))
    }
}

/// Checks a printer name: 1–64 characters of `[A-Za-z0-9._-]`, starting with a
/// letter or digit.
///
/// # Errors
///
/// The reason, for a message.
pub fn check_printer_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("printer is empty; give a configured printer's name".into());
    }
    if name.len() > MAX_PRINTER_LEN {
        return Err(format!(
            "printer name is {} bytes; at most {MAX_PRINTER_LEN} allowed",
            name.len()
        ));
    }
    if let Some((i, c)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "printer name has {c:?} at byte {i}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "printer name {name:?} must start with a letter or digit"
        ));
    }
    Ok(())
}

fn printer(name: String) -> Result<String, ProtocolError> {
    check_printer_name(&name).map_err(|m| ProtocolError::bad_field("printer", m))?;
    Ok(name)
}

fn job_id(id: String) -> Result<String, ProtocolError> {
    check_id(&id).map_err(|m| ProtocolError::bad_field("job_id", format!("job_id {m}")))?;
    Ok(id)
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("is empty".into())
    } else if id.len() > MAX_ID_LEN {
        Err(format!(
            "is {} bytes; at most {MAX_ID_LEN} allowed",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Err("contains a control character".into())
    } else {
        Ok(())
    }
}

fn client_id(v: &Value) -> Result<ClientId, String> {
    match v {
        Value::String(s) => check_id(s)
            .map(|()| ClientId::Str(s.clone()))
            .map_err(|m| format!("id {m}")),
        Value::Number(n) => n.as_i64().map(ClientId::Int).ok_or_else(|| {
            format!(
                "id is {}; expected an integer or a string",
                clip(&n.to_string())
            )
        }),
        other => Err(format!(
            "id is {}; expected an integer or a string",
            kind(other)
        )),
    }
}

fn priority(p: Option<Value>) -> Result<u8, ProtocolError> {
    let Some(p) = p else {
        return Ok(DEFAULT_PRIORITY);
    };
    match p.as_u64() {
        Some(n) if n <= u64::from(MAX_PRIORITY) => Ok(n as u8),
        _ => Err(ProtocolError::bad_field(
            "priority",
            format!(
                "priority is {}; expected an integer 0 to {MAX_PRIORITY}",
                clip(&p.to_string())
            ),
        )),
    }
}

/// A label job at `at`, with its IMb data checked.
fn parse_job(value: &Value, at: &str, limits: &Limits) -> Result<Job, ProtocolError> {
    let job = Job::deserialize(value).map_err(|e| {
        let message = e.to_string();
        let field = backquoted(&message).filter(|_| {
            message.starts_with("unknown field") || message.starts_with("missing field")
        });
        let field = field.map_or_else(|| at.to_owned(), |f| join(at, &clip(f)));
        ProtocolError::bad_field(&field, format!("{at}: {}", clip_msg(&message)))
    })?;
    if let Some(found) = job.version().filter(|&v| v != JOB_VERSION) {
        return Err(ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            Some(&join(at, "version")),
            format!(
                "{at}.version is {found}; this labeld understands label job version {JOB_VERSION}"
            ),
        ));
    }
    let imb = |d: &ImbData, path: String| check_imb_data(d, &path);
    match &job {
        Job::Address(j) => j.imb.as_ref().map_or(Ok(()), |d| imb(d, join(at, "imb")))?,
        Job::Envelope(j) => j.imb.as_ref().map_or(Ok(()), |d| imb(d, join(at, "imb")))?,
        Job::Sheet(j) => {
            if j.records.len() > limits.max_batch_labels {
                return Err(ProtocolError::new(
                    ErrorCode::BatchTooLarge,
                    Some(&join(at, "records")),
                    format!(
                        "sheet job has {} records; the limit is {} (split it into several jobs)",
                        j.records.len(),
                        limits.max_batch_labels
                    ),
                ));
            }
            for (i, r) in j.records.iter().enumerate() {
                if let Some(d) = &r.imb {
                    imb(d, join(at, &format!("records[{i}].imb")))?;
                }
            }
        }
        Job::Custom(j) => {
            for (i, e) in j.elements.iter().enumerate() {
                if let CustomElement::Imb(e) = e {
                    check_imb(&e.tracking, &e.routing).map_err(|err| {
                        ProtocolError::from_encode(&err).under(&join(at, &format!("elements[{i}]")))
                    })?;
                }
            }
        }
        Job::Tray(_) | Job::Placard(_) => {}
    }
    Ok(job)
}

/// An IMb in either form ([`ImbData::serial_request`]): a full tracking code, or the
/// fields of one whose serial the daemon allocates (checked with a zero serial).
fn check_imb_data(d: &ImbData, path: &str) -> Result<(), ProtocolError> {
    let request = d
        .serial_request()
        .map_err(|(field, message)| ProtocolError::bad_field(&join(path, field), message))?;
    let checked = match request {
        None => check_imb(&d.tracking, &d.routing),
        Some(r) => {
            let width = if r.mailer_id.starts_with('9') { 6 } else { 9 };
            Tracking::from_fields(
                &r.barcode_id,
                &r.service_type,
                &r.mailer_id,
                &"0".repeat(width),
            )
            .map(drop)
            .and_then(|()| Routing::parse(&d.routing).map(drop))
        }
    };
    checked.map_err(|e| ProtocolError::from_encode(&e).under(path))
}

fn check_imb(tracking: &str, routing: &str) -> Result<(), EncodeError> {
    Tracking::parse(tracking)?;
    Routing::parse(routing)?;
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 64 characters of client text in a message.
fn clip(s: &str) -> String {
    clip_to(s, 64)
}

/// At most 256 characters of a serde message (which may quote client text).
fn clip_msg(s: &str) -> String {
    clip_to(s, 256)
}

fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Replies.

/// The `"error"` object of a failed reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The wire code.
    pub code: ErrorCode,
    /// The offending field's path, or `null`.
    pub field: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
    /// USPS error class of IMb data errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usps_class: Option<u8>,
}

/// What a reply says.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// A submit was accepted (or replayed): its fields sit beside `"ok": true`.
    Accepted(Accepted),
    /// Any other success: the object's fields sit beside `"ok": true`.
    Data(Map<String, Value>),
    /// A typed error.
    Error(ErrorBody),
}

/// One reply to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The request's `"id"`.
    pub id: Option<ClientId>,
    /// What happened.
    pub outcome: Outcome,
}

impl Reply {
    /// The reply to an accepted submit.
    pub fn accepted(id: Option<ClientId>, accepted: Accepted) -> Reply {
        Reply {
            id,
            outcome: Outcome::Accepted(accepted),
        }
    }

    /// A success carrying `data`'s fields (`v`, `id` and `ok` in it are overwritten).
    pub fn data(id: Option<ClientId>, data: Map<String, Value>) -> Reply {
        Reply {
            id,
            outcome: Outcome::Data(data),
        }
    }

    /// The reply to a request that failed; the id is the error's.
    pub fn error(err: &ProtocolError) -> Reply {
        Reply {
            id: err.id.clone(),
            outcome: Outcome::Error(ErrorBody {
                code: err.code,
                field: err.field.clone(),
                message: err.message.clone(),
                usps_class: err.usps_class,
            }),
        }
    }

    /// The reply as a JSON value.
    pub fn to_value(&self) -> Value {
        let (ok, mut map) = match &self.outcome {
            Outcome::Accepted(a) => (
                true,
                match serde_json::to_value(a) {
                    Ok(Value::Object(m)) => m,
                    // Accepted is plain data and always serializes to an object.
                    _ => Map::new(),
                },
            ),
            Outcome::Data(d) => (true, d.clone()),
            Outcome::Error(e) => {
                let mut m = Map::new();
                m.insert(
                    "error".into(),
                    serde_json::to_value(e).unwrap_or(Value::Null),
                );
                (false, m)
            }
        };
        map.insert("v".into(), VERSION.into());
        match &self.id {
            Some(id) => {
                map.insert("id".into(), serde_json::to_value(id).unwrap_or(Value::Null));
            }
            None => {
                map.remove("id");
            }
        }
        map.insert("ok".into(), ok.into());
        Value::Object(map)
    }

    /// The reply as the bytes of one frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_value().to_string().into_bytes()
    }
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_match_serde() {
        for c in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                Value::String(c.as_str().into())
            );
        }
    }

    #[test]
    fn check_counts_size_before_utf8() {
        let limits = Limits {
            max_request_bytes: 4,
            max_batch_labels: 1,
        };
        let big = [0xffu8; 5];
        assert_eq!(
            check(&[&big], &limits).unwrap_err().code,
            ErrorCode::RequestTooLarge
        );
        assert_eq!(
            check(&[&big[..4]], &limits).unwrap_err().code,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            check(&[b"{}", b"{}"], &limits).unwrap_err().code,
            ErrorCode::BadFrames
        );
        assert_eq!(check(&[], &limits).unwrap_err().code, ErrorCode::BadFrames);
        assert!(check(&[b"{}"], &limits).is_ok());
    }

    #[test]
    fn printer_names() {
        for ok in ["zebra-1", "a", "Brother_QL.820", &"x".repeat(64)] {
            assert!(check_printer_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            ".x",
            "-rf",
            "../x",
            "/dev/sda",
            "a b",
            "a\0",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_printer_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_deserialize_agrees_for_payloads() {
        // The derives carry deny_unknown_fields for Rust clients; keep them in step.
        let v = serde_json::json!({"job_id": "a", "serials": "new"});
        let r: Reprint = serde_json::from_value(v).unwrap();
        assert_eq!(r.serials, Serials::New);
        assert!(serde_json::from_value::<Reprint>(
            serde_json::json!({"job_id": "a", "serials": "new", "x": 1})
        )
        .is_err());
    }
}
