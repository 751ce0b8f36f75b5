//! `labelctl track`, `labelctl tracking report` and `labelctl tracking import`: what
//! USPS's Informed Visibility scans say about the pieces labeld printed
//! (`docs/tracking.md`).
//!
//! - `track PIECE`: one piece (its labels, every scan, its state) from the `track` op.
//! - `tracking report --job ID | --since DATE`: counts per state, the stalled pieces,
//!   print → first scan and print → processed for delivery, from `tracking_report`;
//!   `--csv` writes one row per piece with the store's own CSV writer, so the columns
//!   are the same wherever a report is written.
//! - `tracking import FILE…`: feed files that reached the mailer another way. Each
//!   file is read and checked whole with the daemon's own feed parser before anything
//!   of it is sent, so a malformed file is refused here with the parser's message and
//!   nothing of it reaches labeld; its scans then go as `tracking_import` requests of
//!   at most [`IMPORT_BATCH_EVENTS`] events (and [`IMPORT_BATCH_BYTES`]), each event
//!   rebuilt by [`feed_event`]. labeld stores a scan once, so importing a file again
//!   (or after a refusal halfway) stores nothing twice.
//!
//! Exit codes as the other daemon commands: 0 done, 1 anything else, 2 bad input or
//! refused (for `import`: any file refused, the others still go), 3 labeld
//! unreachable, timed out or busy.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use labeld::spool::{format_rfc3339_ms, PrintLogEntry};
use labeld::tracking::feed::{parse_feed_body, FeedLimits};
use labeld::tracking::feed_event::feed_event;
use labeld::tracking::scan::{Scan, ScanSource};
use labeld::tracking::store::{
    write_report_csv, DurationStats, PieceInfo, PieceState, PieceSummary, Report, ReportScope,
};

use crate::daemon::{self, Conn, Session, EXIT_REFUSED};
use crate::dates;
use crate::Failure;

/// Most events in one `tracking_import` request (labeld refuses more with
/// `batch_too_large`).
pub const IMPORT_BATCH_EVENTS: usize = labeld::protocol::MAX_IMPORT_EVENTS;
/// Most bytes of events in one `tracking_import` request, kept under labeld's default
/// `max_request_bytes` (4 MiB) so a file of long events is split earlier.
pub const IMPORT_BATCH_BYTES: usize = 3 * 1024 * 1024;

/// Marks a scan time whose zone labeld inferred from the facility's state.
const INFERRED_MARK: &str = "*";
/// Marks a scan time whose zone is unknown (no offset, no known state).
const UNKNOWN_ZONE_MARK: &str = "?";

/// Arguments of `labelctl track`.
#[derive(Args)]
pub struct TrackArgs {
    /// The piece: its 20-digit tracking code, the full IMb digits (25, 29 or 31),
    /// MAILERID-SERIAL, or a bare serial when labeld has one Mailer ID.
    #[arg(value_name = "IMB_OR_SERIAL")]
    piece: String,
    /// Ask IV-MTR now instead of showing only what labeld has stored (needs
    /// `[tracking] enabled` in labeld's configuration).
    #[arg(long)]
    refresh: bool,
    #[command(flatten)]
    conn: Conn,
}

/// `labelctl tracking …`.
#[derive(Subcommand)]
pub enum TrackingCommand {
    /// Where a job's pieces (or those printed since a date) stand: counts per state,
    /// stalled pieces, time to first scan and to processed for delivery.
    Report(ReportArgs),
    /// Check IV-MTR data-feed files (JSON, gzip or zip) and hand their scans to labeld.
    Import(ImportArgs),
}

/// Arguments of `labelctl tracking report`.
#[derive(Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["job", "since"])))]
pub struct ReportArgs {
    /// The pieces this job printed.
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// The pieces printed since then: YYYY-MM-DD (UTC midnight), RFC 3339, or Unix
    /// milliseconds.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Write CSV: a header, then one row per piece.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Write to this file instead of stdout (CSV unless --json).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `labelctl tracking import`.
#[derive(Args)]
pub struct ImportArgs {
    /// Feed files: JSON, gzip-compressed JSON, or zip.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Send a file's good events even when some are invalid (they are listed), instead
    /// of refusing the whole file. For a feed labeld's push receiver refused and kept
    /// in its `tracking-rejected` folder.
    #[arg(long)]
    skip_invalid: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl tracking …`.
pub fn run(command: TrackingCommand) -> Result<(), Failure> {
    match command {
        TrackingCommand::Report(args) => report(args),
        TrackingCommand::Import(args) => import(args),
    }
}

// ---------------------------------------------------------------------------
// track

/// What `labelctl track` reads of the `track` reply's `piece` (labeld's `PieceView`;
/// fields it does not show are ignored).
#[derive(Deserialize)]
struct PieceReply {
    tracking: String,
    mailer_id: String,
    serial: u64,
    #[serde(default)]
    prints: Vec<PrintLogEntry>,
    #[serde(default)]
    scans: Vec<Scan>,
    state: PieceState,
    #[serde(default)]
    polls: u64,
    #[serde(default)]
    last_polled_ms: Option<i64>,
    #[serde(default)]
    next_poll_ms: Option<i64>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    info: PieceInfo,
}

/// Checks the piece argument before asking labeld: digits, or digits-digits. labeld
/// judges the rest (lengths, Mailer IDs) and names the field.
///
/// # Errors
///
/// A message naming the text and the accepted forms.
pub fn check_piece_arg(text: &str) -> Result<String, String> {
    let piece = text.trim();
    let forms = "expected a 20-digit tracking code, the full IMb digits (25, 29 or 31), \
                 MAILERID-SERIAL (123456-1001), or a serial";
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match piece.split_once(['-', ':']) {
        Some((mid, serial)) => digits(mid) && digits(serial),
        None => digits(piece) && (piece.len() <= 15 || [20, 25, 29, 31].contains(&piece.len())),
    };
    if ok {
        Ok(piece.to_owned())
    } else if piece.is_empty() {
        Err(format!("the piece is empty; {forms}"))
    } else {
        Err(format!("{piece:?} is not a piece; {forms}"))
    }
}

/// Runs `labelctl track`.
pub fn track(args: TrackArgs) -> Result<(), Failure> {
    let piece = check_piece_arg(&args.piece).map_err(Failure::Input)?;
    let mut session = Session::open(&args.conn)?;
    let mut reply =
        session.call(json!({"op": "track", "piece": piece, "refresh": args.refresh}))?;
    if let Some(why) = reply.get("refresh_error").and_then(Value::as_str) {
        eprintln!("labelctl: IV-MTR lookup failed ({why}); showing what labeld has stored");
    }
    let value = reply.remove("piece").unwrap_or(Value::Null);
    if args.conn.json {
        println!("{value}");
        return Ok(());
    }
    let view: PieceReply = serde_json::from_value(value).map_err(|e| {
        Failure::Other(anyhow::anyhow!(
            "labeld sent a piece this labelctl cannot read: {e}"
        ))
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(describe_piece(&view).as_bytes())
        .context("writing the piece")?;
    Ok(())
}

/// The human text for one piece.
fn describe_piece(view: &PieceReply) -> String {
    let mut text = format!(
        "piece {} (mailer {}, serial {}): {}\n",
        view.tracking, view.mailer_id, view.serial, view.state
    );
    text.push('\n');
    match view.prints.as_slice() {
        [] => text.push_str("label: not in the print log (printed elsewhere, or pruned)\n"),
        prints => {
            if prints.len() == 1 {
                text.push_str("label\n");
            } else {
                text.push_str(&format!(
                    "labels ({}, oldest first: the serial was printed again)\n",
                    prints.len()
                ));
            }
            for print in prints {
                let routing = if print.routing.is_empty() {
                    "-"
                } else {
                    &print.routing
                };
                text.push_str(&fields(&[
                    ("job", format!("{} label {}", print.job_id, print.index)),
                    ("printer", print.printer.clone()),
                    ("printed", format_rfc3339_ms(print.printed_at_ms)),
                    ("to", print.recipient.clone()),
                    ("routing", routing.to_owned()),
                ]));
            }
        }
    }
    let info = describe_info(&view.info);
    if !info.is_empty() {
        text.push_str(&fields(&info));
    }
    text.push('\n');
    if view.scans.is_empty() {
        text.push_str("no scans yet\n");
    } else {
        text.push_str(&format!("scans ({}, oldest first)\n", view.scans.len()));
        let rows: Vec<Map<String, Value>> = view.scans.iter().map(scan_row).collect();
        text.push_str(&daemon::table(
            &rows,
            &["time", "code", "phase", "facility", "machine", "source"],
        ));
        if view.scans.iter().any(|s| s.scanned_at.inferred) {
            text.push_str(&format!(
                "{INFERRED_MARK} zone inferred from the facility's state (USPS sent no offset)\n"
            ));
        }
        if view
            .scans
            .iter()
            .any(|s| s.scanned_at.utc_offset_minutes.is_none())
        {
            text.push_str(&format!(
                "{UNKNOWN_ZONE_MARK} zone unknown (no offset, and no known facility state): \
                 the facility's local time\n"
            ));
        }
    }
    if view.polls > 0 || view.last_error.is_some() {
        let mut poll = format!("IV-MTR looked up {} time(s)", view.polls);
        if let Some(at) = view.last_polled_ms {
            poll.push_str(&format!(", last {}", format_rfc3339_ms(at)));
        }
        if let Some(at) = view.next_poll_ms {
            poll.push_str(&format!(", next {}", format_rfc3339_ms(at)));
        }
        text.push_str(&format!("\n{poll}\n"));
        if let Some(error) = &view.last_error {
            text.push_str(&format!("last lookup failed: {error}\n"));
        }
    }
    text
}

/// What the pull API said about the piece, as `key value` pairs (none when nothing).
fn describe_info(info: &PieceInfo) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    let class: Vec<&str> = [&info.mail_class, &info.mail_shape]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !class.is_empty() {
        pairs.push(("mail", class.join(", ")));
    }
    if let Some(date) = &info.start_the_clock_date {
        pairs.push(("accepted", date.clone()));
    }
    if let Some(date) = &info.expected_delivery_date {
        pairs.push(("expected", date.clone()));
    }
    pairs
}

/// Indented `key  value` lines, keys padded to one width.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("  {k:<width$}  {v}\n"))
        .collect()
}

/// A scan's time as shown: RFC 3339 in the facility's zone, marked when the zone was
/// inferred or is unknown.
pub fn scan_time(scan: &Scan) -> String {
    let time = &scan.scanned_at;
    let mark = match (time.utc_offset_minutes, time.inferred) {
        (None, _) => UNKNOWN_ZONE_MARK,
        (Some(_), true) => INFERRED_MARK,
        (Some(_), false) => "",
    };
    format!("{}{mark}", time.to_rfc3339())
}

/// `NAME, CITY ST ZIP` as far as known, `-` when nothing is.
pub fn facility_text(scan: &Scan) -> String {
    let f = &scan.facility;
    let place: Vec<&str> = [&f.city, &f.state, &f.zip]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let parts: Vec<String> = f
        .name
        .iter()
        .cloned()
        .chain((!place.is_empty()).then(|| place.join(" ")))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The machine's name (or id), with its scanner type when known.
fn machine_text(scan: &Scan) -> String {
    let m = &scan.machine;
    let name = m.name.as_deref().or(m.id.as_deref());
    match (name, m.scanner_type.as_deref()) {
        (Some(n), Some(t)) if !n.eq_ignore_ascii_case(t) => format!("{n} ({t})"),
        (Some(n), _) => n.to_owned(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "-".into(),
    }
}

fn scan_row(scan: &Scan) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("time".into(), scan_time(scan).into());
    row.insert("code".into(), scan.event_code.clone().into());
    row.insert(
        "phase".into(),
        scan.mail_phase.clone().unwrap_or_else(|| "-".into()).into(),
    );
    row.insert("facility".into(), facility_text(scan).into());
    row.insert("machine".into(), machine_text(scan).into());
    row.insert("source".into(), scan.source.as_str().into());
    row
}

// ---------------------------------------------------------------------------
// tracking report

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Csv,
    Json,
}

/// Runs `labelctl tracking report`.
pub fn report(args: ReportArgs) -> Result<(), Failure> {
    let scope = match (&args.job, &args.since) {
        (Some(job), _) => ReportScope::Job(job.clone()),
        (None, Some(since)) => ReportScope::Since(
            dates::parse_date(since).map_err(|m| Failure::Input(format!("--since: {m}")))?,
        ),
        (None, None) => return Err(Failure::Input("give --job ID or --since DATE".into())),
    };
    let format = if args.conn.json {
        ReportFormat::Json
    } else if args.csv || args.output.is_some() {
        ReportFormat::Csv
    } else {
        ReportFormat::Text
    };
    let mut request = match &scope {
        ReportScope::Job(job) => json!({"op": "tracking_report", "job_id": job}),
        ReportScope::Since(ms) => json!({"op": "tracking_report", "since_ms": ms}),
    };
    if format == ReportFormat::Csv {
        request["pieces"] = true.into();
    }
    let mut session = Session::open(&args.conn)?;
    let mut reply = session.call(request)?;
    let value = reply.remove("report").unwrap_or(Value::Null);
    let text = match format {
        ReportFormat::Json => format!("{value}\n").into_bytes(),
        ReportFormat::Csv | ReportFormat::Text => {
            let report: Report = serde_json::from_value(value).map_err(|e| {
                Failure::Other(anyhow::anyhow!(
                    "labeld sent a report this labelctl cannot read: {e}"
                ))
            })?;
            if format == ReportFormat::Csv {
                let mut bytes = Vec::new();
                write_report_csv(&report, &mut bytes).context("writing CSV")?;
                bytes
            } else {
                describe_report(&report).into_bytes()
            }
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("labelctl: report written to {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&text).context("writing the report")?;
            out.flush().context("writing the report")?;
        }
    }
    Ok(())
}

/// Milliseconds as hours with one decimal, `-` for none.
pub fn hours(ms: Option<i64>) -> String {
    match ms {
        // Display only: an f64 holds any duration of pieces exactly enough.
        Some(ms) => format!("{:.1} h", ms as f64 / 3_600_000.0),
        None => "-".into(),
    }
}

/// The human text of a report.
pub fn describe_report(report: &Report) -> String {
    let scope = match &report.scope {
        ReportScope::Job(job) => format!("job {job}"),
        ReportScope::Since(ms) => format!("printed since {}", format_rfc3339_ms(*ms)),
    };
    let mut text = format!("{scope}: {} piece(s)\n", report.pieces);
    let counts: Vec<Map<String, Value>> = PieceState::ALL
        .iter()
        .map(|state| {
            let mut row = Map::new();
            row.insert("state".into(), state.as_str().into());
            row.insert("pieces".into(), report.counts.get(*state).into());
            row
        })
        .collect();
    text.push_str(&daemon::table(&counts, &["state", "pieces"]));
    text.push('\n');
    let duration_row = |name: &str, d: &DurationStats| {
        let mut row = Map::new();
        row.insert("from print to".into(), name.into());
        row.insert("pieces".into(), d.count.into());
        row.insert("median".into(), hours(d.median_ms).into());
        row.insert("p90".into(), hours(d.p90_ms).into());
        row.insert("max".into(), hours(d.max_ms).into());
        row
    };
    text.push_str(&daemon::table(
        &[
            duration_row("first scan", &report.print_to_first_scan),
            duration_row("processed for delivery", &report.print_to_processed),
        ],
        &["from print to", "pieces", "median", "p90", "max"],
    ));
    text.push('\n');
    if report.stalled.is_empty() {
        text.push_str(&format!(
            "no stalled pieces (stalled: not processed for delivery and nothing heard for {} day(s))\n",
            report.stall_days
        ));
    } else {
        text.push_str(&format!(
            "stalled ({}: not processed for delivery and nothing heard for {} day(s))\n",
            report.stalled.len(),
            report.stall_days
        ));
        let rows: Vec<Map<String, Value>> = report.stalled.iter().map(stalled_row).collect();
        text.push_str(&daemon::table(
            &rows,
            &[
                "serial",
                "job",
                "recipient",
                "printed_at",
                "last_scan",
                "last_facility",
            ],
        ));
    }
    text
}

fn stalled_row(piece: &PieceSummary) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("serial".into(), piece.serial.into());
    row.insert("job".into(), piece.job_id.clone().into());
    row.insert("recipient".into(), piece.recipient.clone().into());
    row.insert(
        "printed_at".into(),
        format_rfc3339_ms(piece.printed_at_ms).into(),
    );
    row.insert(
        "last_scan".into(),
        piece
            .last_scan_ms
            .map_or_else(|| "never".into(), format_rfc3339_ms)
            .into(),
    );
    row.insert(
        "last_facility".into(),
        piece.last_facility.clone().map_or(Value::Null, Value::from),
    );
    row
}

// ---------------------------------------------------------------------------
// tracking import

/// What importing one file did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileOutcome {
    /// The file as given.
    pub file: String,
    /// Feed messages in it.
    pub messages: u64,
    /// Piece events (scans) in it.
    pub events: u64,
    /// Tray and container events, not sent.
    pub skipped: u64,
    /// New scans labeld stored.
    pub inserted: u64,
    /// Scans labeld already had.
    pub duplicates: u64,
    /// Scans of pieces labeld did not print (stored all the same).
    pub unmatched: u64,
    /// Pieces whose state changed.
    pub changed: u64,
    /// With `--skip-invalid`: the events left out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<String>,
    /// Why the file was refused (nothing or only part of it was stored), if it was.
    pub error: Option<String>,
}

impl FileOutcome {
    /// One line for a person.
    pub fn describe(&self) -> String {
        let mut text = match &self.error {
            Some(error) => format!("{}: refused: {error}", self.file),
            None => format!(
                "{}: {} message(s), {} event(s), {} skipped (tray/container), {} inserted, \
                 {} duplicate(s), {} unmatched, {} piece(s) changed state",
                self.file,
                self.messages,
                self.events,
                self.skipped,
                self.inserted,
                self.duplicates,
                self.unmatched,
                self.changed
            ),
        };
        if !self.invalid.is_empty() {
            text.push_str(&format!(
                "\n{}: {} invalid event(s) left out:",
                self.file,
                self.invalid.len()
            ));
            for why in self.invalid.iter().take(20) {
                text.push_str(&format!("\n  {why}"));
            }
            if self.invalid.len() > 20 {
                text.push_str(&format!("\n  … and {} more", self.invalid.len() - 20));
            }
        }
        text
    }
}

/// Splits events into request batches: at most `max_events` each, and at most
/// `max_bytes` of JSON each (an event larger than that goes alone). Order is kept.
pub fn batches(
    events: Vec<Map<String, Value>>,
    max_events: usize,
    max_bytes: usize,
) -> Vec<Vec<Map<String, Value>>> {
    let mut out: Vec<Vec<Map<String, Value>>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0usize;
    for event in events {
        // The size of the event as sent, plus a comma.
        let size = Value::Object(event.clone()).to_string().len() + 1;
        if !current.is_empty() && (current.len() >= max_events || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(event);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The name a file is reported to labeld under: its file name (the path can say more
/// about this machine than labeld needs).
fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// Reads and checks one file: its messages' counts and its events, or why it is
/// refused ([`FileOutcome::describe`] puts the file's name in front).
fn check_file(
    path: &Path,
    skip_invalid: bool,
) -> Result<(FileOutcome, Vec<Map<String, Value>>), String> {
    let limits = FeedLimits {
        skip_invalid_events: skip_invalid,
        ..FeedLimits::default()
    };
    // A compressed file may hold up to `max_bytes` of JSON; a file larger than that
    // on disk is not read at all.
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    if size > limits.max_bytes {
        return Err(format!(
            "the file is {size} bytes; feeds of more than {} bytes are refused \
             (split it); nothing of it was sent",
            limits.max_bytes
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let messages = parse_feed_body(&bytes, ScanSource::Import, &limits).map_err(|e| {
        let hint = if skip_invalid {
            ""
        } else {
            " (--skip-invalid sends its good events)"
        };
        format!("{e}; nothing of it was sent{hint}")
    })?;
    let mut outcome = FileOutcome {
        file: path.display().to_string(),
        messages: messages.len() as u64,
        ..FileOutcome::default()
    };
    let mut events = Vec::new();
    for message in &messages {
        outcome.skipped += message.skipped;
        outcome.invalid.extend(message.invalid.iter().cloned());
        events.extend(message.scans.iter().map(feed_event));
    }
    outcome.events = events.len() as u64;
    Ok((outcome, events))
}

/// Sends one checked file's events. A refusal of a batch stops that file (its message
/// says how much went in); a transport failure or a busy daemon stops everything.
fn send_file(
    session: &mut Session,
    outcome: &mut FileOutcome,
    source: &str,
    events: Vec<Map<String, Value>>,
) -> Result<(), Failure> {
    let parts = batches(events, IMPORT_BATCH_EVENTS, IMPORT_BATCH_BYTES);
    let total = parts.len();
    let mut first_event = 0usize;
    for (i, part) in parts.into_iter().enumerate() {
        let count = part.len();
        let request = json!({"op": "tracking_import", "source": source, "events": part});
        let reply = session.call_reply(request)?;
        if let Some(failure) = daemon::reply_error(&reply) {
            let (code, message) = match failure {
                Failure::Exit(code, message) => (code, message),
                Failure::Input(message) => (EXIT_REFUSED, message),
                Failure::Other(e) => (1, format!("{e:#}")),
            };
            if code != EXIT_REFUSED {
                return Err(Failure::Exit(code, format!("{}: {message}", outcome.file)));
            }
            let stored = if i == 0 {
                "nothing of it was stored".to_owned()
            } else {
                format!(
                    "events 1-{first_event} were stored; importing the file again stores nothing twice"
                )
            };
            // Field paths in a refusal count from the batch; say where the batch starts.
            outcome.error = Some(format!(
                "{message} (batch {} of {total}, events {}-{} of the file; {stored})",
                i + 1,
                first_event + 1,
                first_event + count
            ));
            return Ok(());
        }
        let number = |key: &str| reply.get(key).and_then(Value::as_u64).unwrap_or(0);
        outcome.inserted += number("inserted");
        outcome.duplicates += number("duplicates");
        outcome.unmatched += number("unmatched");
        outcome.changed += number("changed");
        first_event += count;
    }
    Ok(())
}

/// Runs `labelctl tracking import`.
pub fn import(args: ImportArgs) -> Result<(), Failure> {
    // Connected on the first file that has events to send, so refusing malformed
    // files needs no daemon.
    let mut session: Option<Session> = None;
    let mut outcomes = Vec::new();
    for path in &args.files {
        let outcome = match check_file(path, args.skip_invalid) {
            Err(message) => FileOutcome {
                file: path.display().to_string(),
                error: Some(message),
                ..FileOutcome::default()
            },
            Ok((mut outcome, events)) => {
                if !events.is_empty() {
                    let session = match &mut session {
                        Some(s) => s,
                        None => session.insert(Session::open(&args.conn)?),
                    };
                    send_file(session, &mut outcome, &source_name(path), events)?;
                }
                outcome
            }
        };
        if !args.conn.json {
            match &outcome.error {
                Some(_) => eprintln!("labelctl: {}", outcome.describe()),
                None => println!("{}", outcome.describe()),
            }
        }
        outcomes.push(outcome);
    }
    let refused = outcomes.iter().filter(|o| o.error.is_some()).count();
    if args.conn.json {
        let value = json!({"ok": refused == 0, "files": outcomes});
        println!("{value}");
    }
    if refused == 0 {
        Ok(())
    } else {
        let rest = if refused == outcomes.len() {
            "none went in"
        } else {
            "the others went in"
        };
        Err(Failure::Exit(
            EXIT_REFUSED,
            format!("{refused} of {} file(s) refused; {rest}", outcomes.len()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_arguments_are_digits_or_mid_serial() {
        for good in [
            "00270123456000001001",
            "0027012345600000100160601",
            "123456-1001",
            "123456:1001",
            "1001",
            " 1001 ",
        ] {
            assert!(check_piece_arg(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "abc",
            "123456-",
            "-5",
            "0027012345600000100",
            "1234567890123456",
        ] {
            let err = check_piece_arg(bad).expect_err(bad);
            assert!(err.contains("MAILERID-SERIAL"), "{bad}: {err}");
        }
    }

    #[test]
    fn batches_respect_both_limits_and_keep_order() {
        let event = |i: usize| {
            let mut m = Map::new();
            m.insert("n".into(), i.into());
            m
        };
        let events: Vec<_> = (0..12).map(event).collect();
        let by_count = batches(events.clone(), 5, usize::MAX);
        assert_eq!(
            by_count.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5, 5, 2]
        );
        // {"n":0} is 7 bytes + 1: three fit in 24 bytes, not four.
        let by_bytes = batches(events.clone(), 100, 24);
        assert!(by_bytes.iter().all(|b| b.len() <= 3));
        let flat: Vec<_> = by_bytes.into_iter().flatten().collect();
        assert_eq!(flat, events);
        // An event larger than the byte limit still goes, alone.
        assert_eq!(batches(vec![event(1), event(2)], 10, 1).len(), 2);
        assert!(batches(Vec::new(), 10, 10).is_empty());
    }

    #[test]
    fn hours_have_one_decimal() {
        assert_eq!(hours(Some(5_400_000)), "1.5 h");
        assert_eq!(hours(Some(0)), "0.0 h");
        assert_eq!(hours(None), "-");
    }
}
