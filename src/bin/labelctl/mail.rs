//! `labelctl mail LIST.csv --template T.json --printer P`: a mailing list printed as
//! `submit_batch` jobs of `--chunk` records each, resumable.
//!
//! Chunk `n` gets the job id `<BASE>-<n>`, BASE being `--job-id` or a hash of the
//! list, the template and the printer. Running the same command again after an
//! interruption (Ctrl-C, a crash, a reboot) resubmits every chunk under the same id:
//! labeld answers the chunks it already has with their first reply (`replayed`) and
//! prints nothing twice, and accepts the rest. A changed list gets a new BASE; to
//! continue an old mailing under its ids after editing the list, pass `--job-id`
//! (labeld refuses, with `conflict`, a chunk whose records changed).
//!
//! Every record is checked here first, as labeld would check it (shape, IMb fields,
//! what fits on the label), so a bad row is reported with its CSV line before anything
//! is sent and never leaves half a mailing printed.

use std::path::PathBuf;

use clap::Args;
use labeld::encode::imb::Tracking;
use labeld::protocol::{self, Limits, ProtocolError};
use labeld::{layout, pieces};
use serde_json::{json, Map, Value};

use crate::daemon::{self, Conn, Session};
use crate::jobs::{self, Counts, WaitArgs, Waiter, Watch};
use crate::progress::Progress;
use crate::records::{self, MailList};
use crate::Failure;

/// Arguments of `labelctl mail`.
#[derive(Args)]
pub struct MailArgs {
    /// The mailing list: CSV with a header row. Columns: to1..to6 (or to, lines
    /// separated by |), routing or zip, and optionally tracking.
    list: PathBuf,
    /// The label job every record is merged into (e.g. an address label with
    /// "imb": {"mailer_id": "...", "service_type": "270"}).
    #[arg(long, value_name = "TEMPLATE.json")]
    template: PathBuf,
    /// The printer's configured name.
    #[arg(long)]
    printer: String,
    /// Base of the job ids (`BASE-0`, `BASE-1`, …). Default: a hash of the list,
    /// the template and the printer, so the same command resumes the same mailing.
    #[arg(long = "job-id", value_name = "BASE")]
    job_id: Option<String>,
    /// Records per submit_batch request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    chunk: u32,
    /// 0-9, higher first (labeld's default: 5).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: Option<u8>,
    /// Ignore columns labelctl does not know instead of refusing the list.
    #[arg(long)]
    ignore_extra: bool,
    /// Check the list and print the requests (JSON lines) instead of sending them.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: Conn,
}

/// One chunk as sent.
struct Chunk {
    /// Its job id.
    job_id: String,
    /// Index of its first record in the list.
    first: usize,
    /// The request.
    request: Value,
}

/// Runs `labelctl mail`.
pub fn run(args: MailArgs) -> Result<(), Failure> {
    let deadline = args.wait.deadline()?;
    protocol::check_printer_name(&args.printer)
        .map_err(|m| Failure::Input(format!("--printer: {m}")))?;
    let csv_bytes = std::fs::read(&args.list)
        .map_err(|e| Failure::Input(format!("reading {}: {e}", args.list.display())))?;
    let (_, template) = jobs::read_json_object(&args.template, "template")?;
    let template_imb = template.get("imb").and_then(Value::as_object);
    let list = records::read_mail_list(&csv_bytes, template_imb, args.ignore_extra)
        .map_err(|m| Failure::Input(format!("{}: {m}", args.list.display())))?;
    if !list.ignored.is_empty() {
        eprintln!(
            "labelctl: note: ignoring column(s) {}",
            list.ignored.join(", ")
        );
    }
    let base = match &args.job_id {
        Some(b) => b.clone(),
        None => records::default_base(&csv_bytes, &Value::Object(template.clone()), &args.printer),
    };
    check_base(&base, list.records.len(), args.chunk as usize)?;
    preflight(&template, &list, &args)?;
    let chunks = chunks(&base, &template, &list, &args);
    if args.dry_run {
        for c in &chunks {
            println!("{}", c.request);
        }
        eprintln!(
            "labelctl: {} record(s) checked; {} request(s) not sent (--dry-run)",
            list.records.len(),
            chunks.len()
        );
        return Ok(());
    }

    let mut session = Session::open(&args.conn)?;
    let subscriber = if args.wait.wait {
        // Before anything is submitted, so no event of ours is missed.
        jobs::subscribe(&session, &format!("{base}-"), &args.printer)
    } else {
        None
    };
    let total = list.records.len() as u64;
    let mut submitted = Progress::new("submitted", total);
    let mut accepted: Vec<Map<String, Value>> = Vec::with_capacity(chunks.len());
    let mut sent = 0u64;
    for chunk in &chunks {
        let reply = session
            .call(chunk.request.clone())
            .map_err(|e| locate(e, chunk, &list))?;
        sent += reply
            .get("label_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        submitted.update(sent, None);
        accepted.push(reply);
    }
    submitted.finish(sent);
    drop(submitted);
    let replayed = accepted
        .iter()
        .filter(|a| a.get("replayed") == Some(&Value::Bool(true)))
        .count();
    if !args.conn.json {
        for a in &accepted {
            report_chunk(a);
        }
        println!(
            "mailing {base}: {total} label(s) in {} job(s) for printer {}{}",
            chunks.len(),
            args.printer,
            if replayed > 0 {
                format!("; {replayed} job(s) were already accepted (replayed, not printed twice)")
            } else {
                String::new()
            }
        );
    } else {
        for a in &accepted {
            jobs::warn_about(a);
        }
    }
    if !args.wait.wait {
        if args.conn.json {
            println!("{}", summary(&base, &args.printer, total, &accepted, None));
        }
        return Ok(());
    }

    let mut watched: Vec<Watch> = accepted
        .iter()
        .zip(&chunks)
        .map(|(a, c)| {
            Watch::new(
                c.job_id.clone(),
                a.get("label_count").and_then(Value::as_u64).unwrap_or(0),
            )
        })
        .collect();
    let mut progress = Progress::new("printed", total);
    Waiter::new(subscriber).wait(&mut session, &mut watched, deadline, Some(&mut progress))?;
    drop(progress);
    let mut all = Counts::default();
    for w in &watched {
        all.queued += w.counts.queued;
        all.sent += w.counts.sent;
        all.printed += w.counts.printed;
        all.failed += w.counts.failed;
        all.cancelled += w.counts.cancelled;
    }
    if args.conn.json {
        println!(
            "{}",
            summary(&base, &args.printer, total, &accepted, Some(all))
        );
    } else {
        println!("mailing {base}: {}", all.describe());
        for (w, c) in watched.iter().zip(&chunks) {
            problem_rows(w, c, &list);
        }
    }
    if all.printed == total {
        Ok(())
    } else {
        Err(Failure::Exit(
            daemon::EXIT_INCOMPLETE,
            format!("not every label printed: {}", all.describe()),
        ))
    }
}

/// A job id base leaves room for `-<n>` within labeld's 128 bytes.
fn check_base(base: &str, records: usize, chunk: usize) -> Result<(), Failure> {
    let last = records.div_ceil(chunk).saturating_sub(1);
    let longest = records::chunk_job_id(base, last);
    if base.is_empty() || base.chars().any(char::is_control) {
        return Err(Failure::Input(
            "--job-id must be non-empty text without control characters".into(),
        ));
    }
    if longest.len() > protocol::MAX_ID_LEN {
        return Err(Failure::Input(format!(
            "--job-id is too long: {longest:?} has {} bytes; job ids have at most {}",
            longest.len(),
            protocol::MAX_ID_LEN
        )));
    }
    Ok(())
}

/// The requests, `--chunk` records each.
fn chunks(
    base: &str,
    template: &Map<String, Value>,
    list: &MailList,
    args: &MailArgs,
) -> Vec<Chunk> {
    list.records
        .chunks(args.chunk as usize)
        .enumerate()
        .map(|(n, records)| {
            let job_id = records::chunk_job_id(base, n);
            let mut request = json!({
                "op": "submit_batch",
                "printer": args.printer,
                "job_id": job_id,
                "template": template,
                "records": records,
            });
            if let Some(p) = args.priority {
                request["priority"] = p.into();
            }
            Chunk {
                job_id,
                first: n * args.chunk as usize,
                request,
            }
        })
        .collect()
}

/// Checks every record as labeld will: the request's shape and IMb fields, then the
/// layout of each label with a stand-in serial.
fn preflight(
    template: &Map<String, Value>,
    list: &MailList,
    args: &MailArgs,
) -> Result<(), Failure> {
    let request = json!({
        "v": protocol::VERSION,
        "op": "submit_batch",
        "printer": args.printer,
        "template": template,
        "records": list.records,
    });
    let limits = Limits {
        max_request_bytes: usize::MAX,
        max_batch_labels: usize::MAX,
    };
    let fail = |e: ProtocolError| {
        let line = record_index(e.field.as_deref())
            .and_then(|i| list.lines.get(i))
            .map(|l| format!("line {l}: "))
            .unwrap_or_default();
        let field = e
            .field
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        Failure::Input(format!(
            "{}: {line}{}{field}: {} (nothing was sent)",
            args.list.display(),
            e.code,
            e.message
        ))
    };
    let parsed = protocol::parse_request(request.to_string().as_bytes(), &limits).map_err(fail)?;
    let planned = pieces::plan(&parsed).map_err(fail)?;
    for (i, piece) in planned.iter().enumerate() {
        let stand_in = piece.allocate.as_ref().and_then(|a| {
            let width = if a.mailer_id.starts_with('9') { 6 } else { 9 };
            Tracking::from_fields(
                &a.barcode_id,
                &a.service_type,
                &a.mailer_id,
                &"0".repeat(width),
            )
            .ok()
            .map(|t| t.as_str().to_owned())
        });
        let unit = piece.unit;
        let job =
            pieces::unit_job(&parsed, unit, &[(i as u32, stand_in.as_deref())]).map_err(fail)?;
        layout::layout(&job)
            .map_err(|e| fail(ProtocolError::from_layout(&e).under(&format!("records[{unit}]"))))?;
    }
    Ok(())
}

/// `records[12].imb` → 12.
fn record_index(field: Option<&str>) -> Option<usize> {
    let rest = field?.strip_prefix("records[")?;
    rest[..rest.find(']')?].parse().ok()
}

/// A refused chunk, with the CSV line of the record at fault.
fn locate(err: Failure, chunk: &Chunk, list: &MailList) -> Failure {
    match err {
        Failure::Exit(code, message) => {
            let line = message
                .find("records[")
                .and_then(|at| record_index(Some(&message[at..])))
                .and_then(|i| list.lines.get(chunk.first + i))
                .map(|l| format!(" (list line {l})"))
                .unwrap_or_default();
            Failure::Exit(code, format!("job {}{line}: {message}", chunk.job_id))
        }
        other => other,
    }
}

/// `job mail-…-0: 1000 labels, serials 1-1000 (Mailer ID 123456)`.
fn report_chunk(accepted: &Map<String, Value>) {
    let job_id = accepted
        .get("job_id")
        .map_or_else(String::new, daemon::text);
    let count = accepted
        .get("label_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let serials = jobs::serial_ranges(&jobs::serials_of(accepted)).join("; ");
    let replayed = if accepted.get("replayed") == Some(&Value::Bool(true)) {
        " (already accepted earlier: replayed)"
    } else {
        ""
    };
    if serials.is_empty() {
        println!("job {job_id}: {count} label(s){replayed}");
    } else {
        println!("job {job_id}: {count} label(s), {serials}{replayed}");
    }
}

/// Failed and cancelled labels with their list lines.
fn problem_rows(watch: &Watch, chunk: &Chunk, list: &MailList) {
    let Some(Value::Array(labels)) = watch.status.as_ref().and_then(|s| s.get("labels")) else {
        return;
    };
    for l in labels {
        let state = l.get("state").and_then(Value::as_str).unwrap_or("");
        if state != "failed" && state != "cancelled" {
            continue;
        }
        let index = l.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let line = list
            .lines
            .get(chunk.first + index)
            .map_or_else(|| "?".into(), u64::to_string);
        let reason = l.get("reason").and_then(Value::as_str).unwrap_or("");
        println!(
            "  list line {line} (job {} label {index}): {state}{}{reason}",
            chunk.job_id,
            if reason.is_empty() { "" } else { ": " }
        );
    }
}

fn summary(
    base: &str,
    printer: &str,
    total: u64,
    accepted: &[Map<String, Value>],
    done: Option<Counts>,
) -> Value {
    let mut out = json!({
        "base": base,
        "printer": printer,
        "labels": total,
        "jobs": accepted,
    });
    if let Some(c) = done {
        out["all_printed"] = (c.printed == total).into();
        out["printed"] = c.printed.into();
        out["failed"] = c.failed.into();
        out["cancelled"] = c.cancelled.into();
    }
    out
}
