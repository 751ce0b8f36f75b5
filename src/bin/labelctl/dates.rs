//! Dates on the command line: `--since`/`--until` values to Unix milliseconds (the
//! way back is `labeld::spool::format_rfc3339_ms`).
//!
//! Accepted input, always read as UTC unless an offset is written:
//!
//! - `YYYY-MM-DD`: midnight UTC of that day;
//! - RFC 3339: `2025-03-01T14:30:00Z`, `2025-03-01T14:30:00.250-05:00` (a space or
//!   `t` may replace the `T`; a fraction is cut to milliseconds);
//! - Unix milliseconds: `0`, or a number of at least 12 digits (`1740839400000`).
//!   Shorter numbers are refused: they are usually Unix *seconds*, which read as
//!   milliseconds would mean January 1970 and export everything.
//!
//! Pure and `std`-only (the proleptic Gregorian calendar of Howard Hinnant's
//! `days_from_civil`), so the tests include this file directly.

/// The smallest number read as Unix milliseconds (besides `0`): 1973-03-03.
const MIN_UNIX_MS: i64 = 100_000_000_000;

const MS_PER_DAY: i64 = 86_400_000;

/// Parses a `--since`/`--until` value into Unix milliseconds.
///
/// # Errors
///
/// A message naming the value and the accepted forms.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let forms = "expected YYYY-MM-DD, RFC 3339 (2025-03-01T14:30:00Z) or Unix milliseconds";
    if t.is_empty() {
        return Err(format!("date is empty; {forms}"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = t
            .parse()
            .map_err(|_| format!("date {t:?} is too large; {forms}"))?;
        if ms != 0 && ms < MIN_UNIX_MS {
            return Err(format!(
                "date {t:?} is too small for Unix milliseconds (Unix seconds? add three zeros); {forms}"
            ));
        }
        return Ok(ms);
    }
    let bad = |why: &str| format!("date {t:?}: {why}; {forms}");
    let b = t.as_bytes();
    if b.len() < 10 {
        return Err(bad("too short"));
    }
    let days = civil_days(&t[..10]).map_err(|e| bad(&e))?;
    if b.len() == 10 {
        return Ok(days * MS_PER_DAY);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad("expected 'T' after the date"));
    }
    let rest = &t[11..];
    let (clock, offset) = split_offset(rest)
        .ok_or_else(|| bad("a time needs its offset: Z or +HH:MM / -HH:MM (write Z for UTC)"))?;
    let clock_ms = clock_ms(clock).map_err(|e| bad(&e))?;
    let offset_ms = offset_ms(offset).map_err(|e| bad(&e))?;
    Ok(days * MS_PER_DAY + clock_ms - offset_ms)
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn civil_days(date: &str) -> Result<i64, String> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("the date must be written YYYY-MM-DD".into());
    }
    let y = digits(&date[0..4]).ok_or("the year must be 4 digits")?;
    let m = digits(&date[5..7]).ok_or("the month must be 2 digits")?;
    let d = digits(&date[8..10]).ok_or("the day must be 2 digits")?;
    if !(1..=12).contains(&m) {
        return Err(format!("month {m} does not exist"));
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err(format!("day {d} does not exist in {y:04}-{m:02}"));
    }
    Ok(days_from_civil(y, m, d))
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Splits `HH:MM:SS[.frac]` from its offset (`Z`, `+HH:MM`, `-HH:MM`).
fn split_offset(rest: &str) -> Option<(&str, &str)> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, "Z"));
    }
    let at = rest.rfind(['+', '-'])?;
    Some((&rest[..at], &rest[at..]))
}

fn clock_ms(clock: &str) -> Result<i64, String> {
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let b = hms.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return Err("the time must be written HH:MM:SS".into());
    }
    let h = digits(&hms[0..2]).ok_or("the hour must be 2 digits")?;
    let m = digits(&hms[3..5]).ok_or("the minute must be 2 digits")?;
    // 60 is a leap second; it reads as the next second, as most systems do.
    let s = digits(&hms[6..8]).ok_or("the second must be 2 digits")?;
    if h > 23 || m > 59 || s > 60 {
        return Err(format!("{hms} is not a time of day"));
    }
    let milli = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the fraction of a second must be 1 to 9 digits".into());
            }
            let three: String = f.chars().chain("00".chars()).take(3).collect();
            digits(&three).unwrap_or(0)
        }
    };
    Ok(((h * 60 + m) * 60 + s) * 1000 + milli)
}

fn offset_ms(offset: &str) -> Result<i64, String> {
    if offset == "Z" {
        return Ok(0);
    }
    let b = offset.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return Err("the offset must be Z, +HH:MM or -HH:MM".into());
    }
    let h = digits(&offset[1..3]).ok_or("the offset hours must be 2 digits")?;
    let m = digits(&offset[4..6]).ok_or("the offset minutes must be 2 digits")?;
    if h > 23 || m > 59 {
        return Err(format!("{offset} is not an offset"));
    }
    let sign = if b[0] == b'-' { -1 } else { 1 };
    Ok(sign * (h * 60 + m) * 60_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant, `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
