//! A progress line on stderr: done/total, labels per second, time left.
//!
//! On a terminal it is one line redrawn in place (`\r`), at most ten times a second;
//! otherwise (a log file, CI) a plain line every few seconds, so logs stay short.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a non-terminal gets a line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// How often a terminal line is redrawn.
const TTY_EVERY: Duration = Duration::from_millis(100);
/// Width of the bar, characters.
const BAR: usize = 24;

/// One progress display.
pub struct Progress {
    /// What is counted ("printed", "submitted").
    verb: &'static str,
    /// Labels in all.
    total: u64,
    /// Whether stderr is a terminal.
    tty: bool,
    /// When the first count arrived, and that count (labels done before this run
    /// started, e.g. on a resumed mailing, do not count towards the rate).
    start: Option<(Instant, u64)>,
    /// When the display last changed, and what it showed.
    last: Option<(Instant, u64)>,
    /// The note last shown.
    note: Option<String>,
    /// Whether a terminal line is waiting for its newline.
    open_line: bool,
}

impl Progress {
    /// A display for `total` labels; `verb` says what `done` counts.
    pub fn new(verb: &'static str, total: u64) -> Progress {
        Progress {
            verb,
            total,
            tty: std::io::stderr().is_terminal(),
            start: None,
            last: None,
            note: None,
            open_line: false,
        }
    }

    /// Shows `done` of the total, with `note` (a printer fault) after it.
    pub fn update(&mut self, done: u64, note: Option<&str>) {
        let now = Instant::now();
        let start = *self.start.get_or_insert((now, done));
        let every = if self.tty { TTY_EVERY } else { PLAIN_EVERY };
        let changed = note != self.note.as_deref();
        let due = match self.last {
            None => true,
            Some((at, shown)) => changed || now - at >= every && (shown != done || self.tty),
        };
        if due {
            self.draw(done, note, start, now);
            self.last = Some((now, done));
            self.note = note.map(str::to_owned);
        }
    }

    /// Shows the final count and ends the line.
    pub fn finish(&mut self, done: u64) {
        let now = Instant::now();
        let start = *self.start.get_or_insert((now, done));
        if self.last.map(|(_, shown)| shown) != Some(done) || self.tty {
            self.draw(done, None, start, now);
        }
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
        self.last = Some((now, done));
    }

    fn draw(&mut self, done: u64, note: Option<&str>, start: (Instant, u64), now: Instant) {
        let line = render(self.verb, done, self.total, start, now, note);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let bar = bar(done, self.total);
            let _ = write!(err, "\r{bar} {line}\x1b[K");
            let _ = err.flush();
            self.open_line = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.open_line {
            eprintln!();
        }
    }
}

fn bar(done: u64, total: u64) -> String {
    let filled = if total == 0 {
        BAR
    } else {
        ((done.min(total) as f64 / total as f64) * BAR as f64) as usize
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR - filled))
}

/// `120/1000 printed (12.0%), 35.2 labels/s, ETA 0:25`.
fn render(
    verb: &str,
    done: u64,
    total: u64,
    (started, first): (Instant, u64),
    now: Instant,
    note: Option<&str>,
) -> String {
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let elapsed = (now - started).as_secs_f64();
    let counted = done.saturating_sub(first);
    let mut line = format!("{done}/{total} {verb} ({percent:.1}%)");
    if elapsed >= 0.5 && counted > 0 {
        let rate = counted as f64 / elapsed;
        line.push_str(&format!(", {rate:.1} labels/s"));
        if done < total {
            let left = (total - done) as f64 / rate;
            line.push_str(&format!(", ETA {}", clock(left)));
        }
    }
    if let Some(note) = note {
        line.push_str(" — ");
        line.push_str(note);
    }
    line
}

/// `1:02:03` or `2:03`.
fn clock(seconds: f64) -> String {
    let s = seconds.round().clamp(0.0, 359_999.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}
