//! The crash test: a 2,000-label mailing to an emulated Zebra on TCP, with labeld
//! killed (SIGKILL, as a power cut would) at 10 random points and started again each
//! time. At the end every piece printed, no serial was used twice, and a piece
//! printed twice only where labeld's log says it was in flight at a crash and could
//! not be proved printed (at most one per crash).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::emulator::ZplPrinter;
use crate::harness::Daemon;

const PIECES: usize = 2000;
const CRASHES: usize = 10;

/// A small deterministic generator (xorshift), seeded from the clock and printed, so
/// a failing run can be repeated with LABELD_CRASH_SEED.
fn points(seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    let mut set = BTreeSet::new();
    while set.len() < CRASHES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        set.insert(20 + (x % (PIECES as u64 - 40)) as usize);
    }
    set.into_iter().collect()
}

/// The piece number printed in a label's text (`PIECE 0042`).
fn piece_of(label: &[u8]) -> Option<usize> {
    let at = label.windows(6).position(|w| w == b"PIECE ")?;
    let digits = label.get(at + 6..at + 10)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[test]
fn kill_nine_ten_times_during_a_mailing_loses_and_duplicates_nothing_unexplained() {
    crash_test(true);
}

/// The same with a printer that has no label counter (older firmware): a label in
/// flight at a crash cannot be proved printed, so it is printed again and logged.
#[test]
fn without_a_label_counter_in_flight_labels_are_reprinted_and_logged() {
    crash_test(false);
}

fn crash_test(odometer: bool) {
    let seed = std::env::var("LABELD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let kill_at = points(seed);
    eprintln!("crash test: seed {seed}, kill after printed labels {kill_at:?}");

    let printer = ZplPrinter::tcp();
    printer.set_odometer_supported(odometer);
    // Native text so the emulator can tell pieces apart by their text.
    let extra = format!(
        "[[printer]]\nname = \"zebra\"\nmodel = \"zpl-203\"\nuri = \"{}\"\nnative = [\"text\"]\n",
        printer.uri()
    );
    let mut d = Daemon::start(&extra);
    let records: Vec<Value> = (0..PIECES)
        .map(|i| {
            json!({"to": [format!("PIECE {i:04}"), "1 MAIN ST", "ANYTOWN ST 98765"],
                   "imb": {"mailer_id": "123456", "service_type": "270", "routing": "98765"}})
        })
        .collect();
    let reply = d.request(json!({
        "op": "submit_batch", "printer": "zebra", "job_id": "mailing",
        "template": {"template": "address", "size": "4x6"},
        "records": records
    }));
    assert_eq!(reply["ok"], true, "{reply}");

    for &target in &kill_at {
        let deadline = Instant::now() + Duration::from_secs(120);
        while printer.printed_count() < target {
            assert!(
                Instant::now() < deadline,
                "stuck at {} labels before the crash at {target}\n{}",
                printer.printed_count(),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        d.kill9();
        d.restart();
    }
    let status = d.wait_done("mailing", Duration::from_secs(300));
    assert_eq!(status["progress"]["printed"], PIECES as u64, "{status}");

    // No serial used twice.
    let labels = status["labels"].as_array().expect("labels");
    let serials: BTreeSet<u64> = labels
        .iter()
        .map(|l| l["serial"]["serial"].as_u64().expect("serial"))
        .collect();
    assert_eq!(serials.len(), PIECES, "a serial was used twice");

    // Every piece printed at least once; the duplicates are explained by the log.
    let mut copies: BTreeMap<usize, usize> = BTreeMap::new();
    for label in printer.printed() {
        let piece = piece_of(&label).expect("every label names its piece");
        *copies.entry(piece).or_default() += 1;
    }
    let missing: Vec<usize> = (0..PIECES).filter(|p| !copies.contains_key(p)).collect();
    assert!(missing.is_empty(), "never printed: {missing:?}");
    let duplicates: Vec<usize> = copies
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&p, _)| p)
        .collect();
    let log = d.log();
    let in_flight_lines = log
        .lines()
        .filter(|l| l.contains("in flight at restart"))
        .count();
    eprintln!("crash test: {in_flight_lines} in-flight decisions logged");
    let reprinted: BTreeSet<usize> = log
        .lines()
        .filter(|l| l.contains("in flight at restart") && l.contains("reprinted=true"))
        .filter_map(|l| {
            let at = l.find("index=")? + 6;
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    eprintln!(
        "crash test: {} labels received, duplicates {duplicates:?}, logged as reprinted {reprinted:?}",
        printer.printed_count()
    );
    for p in &duplicates {
        assert!(
            reprinted.contains(p),
            "piece {p} printed twice but the log never said it was in flight\n{log}"
        );
    }
    assert!(duplicates.len() <= CRASHES, "{duplicates:?}");
    assert!(copies.values().all(|&n| n <= 2), "{copies:?}");
}
