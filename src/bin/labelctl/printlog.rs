//! `labelctl log --since DATE`: the print log (serial ↔ job ↔ printer ↔ recipient ↔
//! time) for matching Informed Visibility scans back to pieces.
//!
//! Pages through labeld's `log` op: each page starts at the last row's millisecond
//! (`next_since_ms`), and rows already written from that millisecond are skipped, so
//! no row is lost or written twice at a page boundary.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Map, Value};

use labeld::spool::{format_rfc3339_ms, write_print_log_csv, PrintLogEntry};

use crate::daemon::{self, Conn, Session};
use crate::dates;
use crate::Failure;

/// Rows per page asked of labeld.
const PAGE: u64 = 10_000;
/// labeld's largest page (`protocol::MAX_LOG_ROWS`).
const MAX_PAGE: u64 = labeld::protocol::MAX_LOG_ROWS as u64;

/// Arguments of `labelctl log`.
#[derive(Args)]
pub struct LogArgs {
    /// From (inclusive): YYYY-MM-DD (UTC midnight), RFC 3339, or Unix milliseconds.
    #[arg(long, value_name = "DATE")]
    since: String,
    /// Until (exclusive), same forms; default: now.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Only this printer's labels.
    #[arg(long)]
    printer: Option<String>,
    /// Write CSV (a header, then one row per printed label).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Write to this file instead of stdout (CSV unless --json).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Csv,
    JsonLines,
}

/// Runs `labelctl log`.
pub fn run(args: LogArgs) -> Result<(), Failure> {
    let since =
        dates::parse_date(&args.since).map_err(|m| Failure::Input(format!("--since: {m}")))?;
    let until = args
        .until
        .as_deref()
        .map(|u| dates::parse_date(u).map_err(|m| Failure::Input(format!("--until: {m}"))))
        .transpose()?;
    if until.is_some_and(|u| u <= since) {
        return Err(Failure::Input(
            "--until must be after --since (the range is [since, until))".into(),
        ));
    }
    let format = if args.conn.json {
        Format::JsonLines
    } else if args.csv || args.output.is_some() {
        Format::Csv
    } else {
        Format::Table
    };
    let mut session = Session::open(&args.conn)?;
    let rows = fetch(&mut session, since, until, args.printer.as_deref())?;
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out, &rows, format)?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "labelctl: {} row(s) written to {}",
                rows.len(),
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            write(&mut out, &rows, format)?;
            out.flush().context("writing the log")?;
        }
    }
    Ok(())
}

/// Every row printed in `[since, until)`, oldest first.
fn fetch(
    session: &mut Session,
    mut since: i64,
    until: Option<i64>,
    printer: Option<&str>,
) -> Result<Vec<PrintLogEntry>, Failure> {
    let mut limit = PAGE;
    let mut rows = Vec::new();
    // Rows already taken from the millisecond the next page starts at.
    let mut boundary: HashSet<String> = HashSet::new();
    loop {
        let mut request = json!({"op": "log", "since_ms": since, "limit": limit});
        if let Some(u) = until {
            request["until_ms"] = u.into();
        }
        let reply = session.call(request)?;
        let page: Vec<PrintLogEntry> = match reply.get("rows") {
            Some(rows) => serde_json::from_value(rows.clone()).map_err(|e| {
                Failure::Other(anyhow::anyhow!(
                    "labeld sent print-log rows this labelctl cannot read: {e}"
                ))
            })?,
            None => Vec::new(),
        };
        let next = reply.get("next_since_ms").and_then(Value::as_i64);
        let mut fresh = 0usize;
        let mut taken_at_next: HashSet<String> = HashSet::new();
        for row in page {
            let key = serde_json::to_string(&row).unwrap_or_default();
            if row.printed_at_ms == since && boundary.contains(&key) {
                continue;
            }
            fresh += 1;
            if Some(row.printed_at_ms) == next {
                taken_at_next.insert(key);
            }
            if printer.is_none_or(|p| row.printer == p) {
                rows.push(row);
            }
        }
        let Some(next) = next else {
            return Ok(rows);
        };
        if next == since && fresh == 0 {
            // A whole page within one millisecond: ask for a bigger page.
            if limit >= MAX_PAGE {
                return Err(Failure::Other(anyhow::anyhow!(
                    "more than {MAX_PAGE} print-log rows share the millisecond {since}; cannot page past them"
                )));
            }
            limit = (limit * 10).min(MAX_PAGE);
            continue;
        }
        if next == since {
            boundary.extend(taken_at_next);
        } else {
            boundary = taken_at_next;
        }
        since = next;
    }
}

fn write(out: &mut dyn Write, rows: &[PrintLogEntry], format: Format) -> Result<(), Failure> {
    match format {
        Format::JsonLines => {
            for row in rows {
                let mut value = serde_json::to_value(row).context("encoding a row")?;
                value["printed_at"] = format_rfc3339_ms(row.printed_at_ms).into();
                writeln!(out, "{value}").context("writing the log")?;
            }
        }
        Format::Csv => write_print_log_csv(rows, &mut &mut *out).context("writing CSV")?,
        Format::Table => print_rows(rows),
    }
    Ok(())
}

/// The human table: the columns a person looks for first.
fn print_rows(rows: &[PrintLogEntry]) {
    if rows.is_empty() {
        println!("no labels printed in that time");
        return;
    }
    let columns = [
        "printed_at",
        "printer",
        "job_id",
        "index",
        "tracking",
        "routing",
        "recipient",
    ];
    let shown: Vec<Map<String, Value>> = rows
        .iter()
        .map(|r| {
            let mut row = match serde_json::to_value(r) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            row.insert(
                "printed_at".into(),
                format_rfc3339_ms(r.printed_at_ms).into(),
            );
            columns
                .iter()
                .map(|c| ((*c).to_owned(), row.get(*c).cloned().unwrap_or(Value::Null)))
                .collect()
        })
        .collect();
    daemon::print_table(&shown, &columns, false);
}
