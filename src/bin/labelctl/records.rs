//! A mailing list in CSV → the records of `submit_batch` requests.
//!
//! The first row names the columns (case and surrounding blanks do not matter):
//!
//! | column | becomes |
//! |---|---|
//! | `to1` … `to6` | address lines, top to bottom; empty cells are skipped |
//! | `to` | address lines separated by `|` (instead of `to1`…`to6`) |
//! | `routing` or `zip` | the delivery point ZIP (`98765-4321` → `987654321`): `imb.routing` |
//! | `tracking` | optional: a full 20-digit tracking code for this piece |
//!
//! Any other column is an error naming it, unless extra columns are ignored. Each row
//! becomes `{"to": [...], "imb": {...}}`: the template's `imb` fields (Mailer ID,
//! Service Type, Barcode ID: the daemon allocates the serial) with the row's routing,
//! or `{"tracking", "routing"}` when the row brings its own tracking code. A batch
//! record replaces the template's keys whole, so the record's `imb` carries the
//! template's fields too.
//!
//! Pure (CSV bytes in, JSON out), so the tests include this file directly.

use serde_json::{Map, Value};

/// The most address lines a label takes.
pub const MAX_LINES: usize = 6;

/// What one CSV column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    /// `toN`: address line N (0-based here).
    Line(usize),
    /// `to`: all lines, `|`-separated.
    Lines,
    /// `routing` / `zip`.
    Routing,
    /// `tracking`.
    Tracking,
    /// An extra column, ignored on request.
    Ignored,
}

/// A mailing list read from CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct MailList {
    /// One record per data row, in order.
    pub records: Vec<Map<String, Value>>,
    /// The CSV line each record starts on (the header is line 1).
    pub lines: Vec<u64>,
    /// The columns that were ignored (`--ignore-extra`).
    pub ignored: Vec<String>,
}

/// Reads a mailing list. `template_imb` is the template's `imb` object, if it has one.
///
/// # Errors
///
/// A message naming the column or the CSV line at fault.
pub fn read_mail_list(
    csv_bytes: &[u8],
    template_imb: Option<&Map<String, Value>>,
    ignore_extra: bool,
) -> Result<MailList, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(csv_bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("reading the header row: {e}"))?
        .clone();
    let (columns, ignored) = map_columns(headers.iter(), ignore_extra)?;
    let has_routing = columns.contains(&Column::Routing);
    let mut records = Vec::new();
    let mut lines_of = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| format!("reading the list: {e}"))?;
        let line = row.position().map_or(0, csv::Position::line);
        let at = |what: String| format!("line {line}: {what}");
        let mut numbered: [Option<&str>; MAX_LINES] = [None; MAX_LINES];
        let mut piped: Option<&str> = None;
        let mut routing = String::new();
        let mut tracking = String::new();
        for (column, cell) in columns.iter().zip(row.iter()) {
            match *column {
                Column::Line(n) => numbered[n] = Some(cell),
                Column::Lines => piped = Some(cell),
                Column::Routing => {
                    routing = cell.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
                }
                Column::Tracking => tracking = cell.to_owned(),
                Column::Ignored => {}
            }
        }
        let lines: Vec<String> = match piped {
            Some(text) => text
                .split('|')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            None => numbered
                .iter()
                .flatten()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        if lines.is_empty() {
            return Err(at("no address lines (every address column is empty)".into()));
        }
        if lines.len() > MAX_LINES {
            return Err(at(format!(
                "{} address lines; a label takes at most {MAX_LINES}",
                lines.len()
            )));
        }
        if let Some(bad) = routing.chars().find(|c| !c.is_ascii_digit()) {
            return Err(at(format!(
                "routing/zip {routing:?} has {bad:?}; expected 5, 9 or 11 digits (98765, 98765-4321)"
            )));
        }
        let mut record = Map::new();
        record.insert(
            "to".into(),
            Value::Array(lines.into_iter().map(Value::String).collect()),
        );
        if !tracking.is_empty() {
            let mut imb = Map::new();
            imb.insert("tracking".into(), Value::String(tracking));
            imb.insert("routing".into(), Value::String(routing));
            record.insert("imb".into(), Value::Object(imb));
        } else if let Some(template) = template_imb.filter(|_| has_routing) {
            let mut imb = template.clone();
            imb.insert("routing".into(), Value::String(routing));
            record.insert("imb".into(), Value::Object(imb));
        } else if !routing.is_empty() {
            return Err(at(
                "a routing/zip but no tracking, and the template has no \"imb\"; add \
                 \"imb\": {\"mailer_id\": \"…\", \"service_type\": \"…\"} to the template \
                 so the daemon can allocate serials"
                    .into(),
            ));
        }
        records.push(record);
        lines_of.push(line);
    }
    if records.is_empty() {
        return Err("the list has a header but no rows".into());
    }
    Ok(MailList {
        records,
        lines: lines_of,
        ignored,
    })
}

/// Maps header names to columns.
fn map_columns<'a>(
    headers: impl Iterator<Item = &'a str>,
    ignore_extra: bool,
) -> Result<(Vec<Column>, Vec<String>), String> {
    let mut columns = Vec::new();
    let mut ignored = Vec::new();
    for (i, raw) in headers.enumerate() {
        let name = raw
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase();
        let column = match name.as_str() {
            "to" => Column::Lines,
            "routing" | "zip" => Column::Routing,
            "tracking" => Column::Tracking,
            n => match n.strip_prefix("to").and_then(|d| d.parse::<usize>().ok()) {
                Some(k) if (1..=MAX_LINES).contains(&k) && n.len() == 3 => Column::Line(k - 1),
                _ if ignore_extra => {
                    ignored.push(raw.trim().to_owned());
                    Column::Ignored
                }
                _ => {
                    return Err(format!(
                        "column {} {raw:?} is not one labelctl knows; expected to1..to6 or to \
                         (lines separated by |), routing or zip, tracking (or pass --ignore-extra)",
                        i + 1
                    ))
                }
            },
        };
        if column != Column::Ignored && columns.contains(&column) {
            return Err(format!(
                "column {} {raw:?} repeats another column (routing and zip are the same column)",
                i + 1
            ));
        }
        columns.push(column);
    }
    let numbered = columns.iter().any(|c| matches!(c, Column::Line(_)));
    if numbered && columns.contains(&Column::Lines) {
        return Err("the list has both to and to1..to6 columns; use one or the other".into());
    }
    if !numbered && !columns.contains(&Column::Lines) {
        return Err("the list has no address column; expected to1..to6 or to".into());
    }
    Ok((columns, ignored))
}

/// The default job-id base of a mailing: `mail-` and 16 hex digits of a hash of the
/// list, the template and the printer. The same command gives the same ids, so running
/// it again resubmits the same jobs (replayed, nothing printed twice).
pub fn default_base(csv_bytes: &[u8], template: &Value, printer: &str) -> String {
    // FNV-1a 64 over length-prefixed parts: stable across builds and platforms
    // (std's hasher is not), and the parts cannot run into each other.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let template = template.to_string();
    for part in [csv_bytes, template.as_bytes(), printer.as_bytes()] {
        for &b in (part.len() as u64).to_le_bytes().iter().chain(part) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("mail-{hash:016x}")
}

/// The job id of chunk `n` of a mailing.
pub fn chunk_job_id(base: &str, n: usize) -> String {
    format!("{base}-{n}")
}
