//! Tracking benchmarks (divan): how fast labeld takes in USPS scans and answers for
//! its pieces. Numbers and how they were taken: `BENCHMARKS.md`, section "Tracking".
//!
//! `cargo bench --bench tracking` runs:
//! - `feed_parse`: [`parse_feed_body`] on an IV-MTR feed of N piece events (every field
//!   the facts file lists for the push feed), plain JSON and gzip: checking every event
//!   and turning it into a `Scan` (the receiver and `labelctl tracking import` do this
//!   before anything is stored).
//! - `store_feed`: [`TrackingStore::add_feed`] of 5,000 new scans (pieces in the print
//!   log, so each is matched and its state updated), durable (WAL, `synchronous=FULL`).
//! - `spool_100k::{report, due_for_poll, piece}`: on a spool whose print log holds
//!   100,000 printed pieces, 50,000 of them with two scans: the whole job's report
//!   (every state counted, stalled list, durations, per-piece rows), the poller's next
//!   64 pieces, and one piece with its prints and scans.
//!
//! No timing assertions anywhere: these only measure.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use labeld::spool::{NewImb, NewJob, NewLabel, Spool};
use labeld::tracking::feed::{parse_feed_body, FeedLimits, FeedMessage};
use labeld::tracking::scan::{RawScan, Scan, ScanSource};
use labeld::tracking::settings::default_poll;
use labeld::tracking::stages::default_rules;
use labeld::tracking::store::{PieceKey, ReportScope, TrackingStore};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

const MID: &str = "123456";
/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600_000;
const HOUR: i64 = 3_600_000;

/// A feed piece event with the push feed's fields (facts §3).
fn event(tracking: &str, at: &str, code: &str, phase: &str) -> Value {
    json!({
        "imb": format!("{tracking}60601123456"),
        "imbTrackingCode": tracking,
        "routingCodeImbMatchingPortion": "60601123456",
        "imbMid": &tracking[5..11], "imbStid": &tracking[2..5],
        "imbSerialNumber": &tracking[11..],
        "scanDatetime": at, "scanEventCode": code,
        "handlingEventType": "L", "handlingEventTypeDescription": "Letter",
        "mailPhase": phase, "machineName": "DBCS-042", "machineId": "042",
        "scannerType": "DBCS", "scanFacilityName": "CHICAGO IL P&DC",
        "scanFacilityCity": "CHICAGO", "scanFacilityState": "IL",
        "scanFacilityZip": "60607", "scanLocaleKey": "1234567",
        "startTheClockDate": "2026-11-02", "predictedDeliveryDate": "2026-11-05",
        "mailClassDescription": "First-Class Mail", "mailShapeDescription": "Letter",
        "edocJobId": "J1", "edocSubmitterCrid": "1234567"
    })
}

fn tracking(serial: u64) -> String {
    format!("00270{MID}{serial:09}")
}

/// `YYYY-MM-DD HH:MM:SS` for Unix ms.
fn wall(ms: i64) -> String {
    labeld::spool::format_rfc3339_ms(ms)[..19].replace('T', " ")
}

/// One feed message of `n` events over `n` pieces.
fn feed_json(n: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            event(
                &tracking(1 + i as u64),
                &wall(T0 + HOUR + i as i64 * 1000),
                "918",
                "Phase 3c - Destination Sequenced Carrier Sortation",
            )
        })
        .collect();
    json!({"msgGrpId": "G-bench", "msgSerNbr": 1, "totMsgCnt": 1, "recCnt": n, "events": events})
        .to_string()
        .into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[divan::bench(args = [1_000, 10_000])]
fn feed_parse(bencher: Bencher, events: usize) {
    let body = feed_json(events);
    bencher
        .counter(BytesCount::new(body.len()))
        .counter(ItemsCount::new(events))
        .bench(|| {
            parse_feed_body(black_box(&body), ScanSource::Push, &FeedLimits::default())
                .expect("feed")
        });
}

#[divan::bench(args = [10_000])]
fn feed_parse_gzip(bencher: Bencher, events: usize) {
    let body = gzip(&feed_json(events));
    bencher
        .counter(BytesCount::new(body.len()))
        .counter(ItemsCount::new(events))
        .bench(|| {
            parse_feed_body(black_box(&body), ScanSource::Push, &FeedLimits::default())
                .expect("feed")
        });
}

/// A fresh spool file under the system temp dir.
fn spool_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("labeld-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir.join("spool.sqlite")
}

/// `n` labels with IMbs accepted and confirmed printed as job `id`; their tracking
/// codes.
fn print_job(spool: &mut Spool, id: &str, n: u32, at: i64) -> Vec<String> {
    let job = NewJob {
        id: Some(id.into()),
        printer: "dock-1".into(),
        priority: 5,
        labels: (0..n)
            .map(|i| NewLabel {
                imb: Some(NewImb {
                    barcode_id: "00".into(),
                    service_type: "270".into(),
                    mailer_id: MID.into(),
                }),
                routing: "60601".into(),
                recipient: format!("RECIPIENT {i} / 1 MAIN ST / CHICAGO IL 60601"),
                unit: i,
                tracking: None,
            })
            .collect(),
        request_json: format!(r#"{{"job":"{id}"}}"#),
    };
    let accepted = spool.accept_job(job, at - 1000).expect("accept");
    let indices: Vec<u32> = (0..n).collect();
    for chunk in indices.chunks(5_000) {
        spool
            .mark_sent_many(id, chunk, None, at - 500)
            .expect("sent");
        spool
            .mark_printed_many(id, chunk, "dock-1", at)
            .expect("printed");
    }
    accepted
        .serials
        .iter()
        .map(|s| s.tracking.clone())
        .collect()
}

fn scan(tracking: &str, at: i64, code: &str, phase: &str) -> Scan {
    let value = event(tracking, &wall(at), code, phase);
    let raw = RawScan::from_json(value.as_object().expect("object")).expect("raw scan");
    Scan::from_raw(raw, ScanSource::Push).expect("scan")
}

/// A store whose print log has 20,000 printed pieces; each iteration adds 5,000 scans
/// never seen before (a later time each round).
#[divan::bench(sample_count = 20, sample_size = 1)]
fn store_feed(bencher: Bencher) {
    static ROUND: AtomicI64 = AtomicI64::new(0);
    let path = spool_path("store-feed");
    let mut spool = Spool::open(&path).expect("spool");
    spool.configure_range(MID, 1, 999_999_999).expect("range");
    let codes = print_job(&mut spool, "feed", 20_000, T0);
    let store = Mutex::new(TrackingStore::open(&path).expect("store"));
    let rules = default_rules();
    bencher
        .counter(ItemsCount::new(5_000usize))
        .with_inputs(|| {
            let round = ROUND.fetch_add(1, Ordering::Relaxed);
            let scans = (0..5_000)
                .map(|i| {
                    let at = T0 + HOUR + round * 10_000_000 + i * 1000;
                    scan(&codes[i as usize % codes.len()], at, "895", "Phase 2")
                })
                .collect();
            vec![FeedMessage {
                group_id: Some(format!("G-{round}")),
                message_serial: Some(1),
                total_messages: Some(1),
                scans,
                skipped: 0,
                invalid: Vec::new(),
            }]
        })
        .bench_local_values(|messages| {
            store
                .lock()
                .expect("store")
                .add_feed(&messages, &rules, T0 + 40 * 24 * HOUR)
                .expect("add_feed")
        });
}

/// The 100,000-piece spool, made once.
struct Big {
    store: Mutex<TrackingStore>,
    codes: Vec<String>,
}

fn big() -> &'static Big {
    static BIG: OnceLock<Big> = OnceLock::new();
    BIG.get_or_init(|| {
        let path = spool_path("spool-100k");
        let mut spool = Spool::open(&path).expect("spool");
        spool.configure_range(MID, 1, 999_999_999).expect("range");
        let codes = print_job(&mut spool, "big", 100_000, T0);
        let mut store = TrackingStore::open(&path).expect("store");
        let rules = default_rules();
        for chunk in codes[..50_000].chunks(2_500) {
            let scans: Vec<Scan> = chunk
                .iter()
                .flat_map(|t| {
                    [
                        scan(t, T0 + 2 * HOUR, "271", "Phase 1 - Origin Processing"),
                        scan(
                            t,
                            T0 + 30 * HOUR,
                            "918",
                            "Phase 3c - Destination Sequenced Carrier Sortation",
                        ),
                    ]
                })
                .collect();
            store
                .add_scans(&scans, &rules, T0 + 31 * HOUR)
                .expect("scans");
        }
        Big {
            store: Mutex::new(store),
            codes,
        }
    })
}

#[divan::bench_group(sample_count = 10)]
mod spool_100k {
    use super::*;

    #[divan::bench]
    fn report(bencher: Bencher) {
        let big = big();
        bencher.bench(|| {
            big.store
                .lock()
                .expect("store")
                .report(&ReportScope::Job("big".into()), 5, T0 + 10 * 24 * HOUR)
                .expect("report")
        });
    }

    #[divan::bench]
    fn due_for_poll(bencher: Bencher) {
        let big = big();
        let poll = default_poll();
        bencher.bench(|| {
            big.store
                .lock()
                .expect("store")
                .due_for_poll(T0 + 3 * 24 * HOUR, 30 * 24 * HOUR, &poll, 64)
                .expect("due")
        });
    }

    #[divan::bench]
    fn piece(bencher: Bencher) {
        let big = big();
        let rules = default_rules();
        let key = PieceKey::Tracking(big.codes[12_345].clone());
        bencher.bench(|| {
            big.store
                .lock()
                .expect("store")
                .piece(&key, &rules, 5, T0 + 3 * 24 * HOUR)
                .expect("piece")
        });
    }
}
