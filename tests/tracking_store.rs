//! The tracking store on a real spool file: scans joined to the print log on the
//! tracking code, stages that never go back, one copy of a scan seen by pull and push,
//! unmatched scans, state changes listed once, stalls reported once and cleared by a
//! scan, reports (counts, durations, CSV), the poll schedule, idempotent feed
//! redelivery and same-serial reprints.

use std::path::{Path, PathBuf};

use labeld::protocol::Serials;
use labeld::spool::{NewImb, NewJob, NewLabel, Spool};
use labeld::tracking::feed::FeedMessage;
use labeld::tracking::scan::{days_from_civil, RawScan, Scan, ScanSource};
use labeld::tracking::settings::default_poll;
use labeld::tracking::stages::{default_rules, Stage};
use labeld::tracking::store::{
    next_poll_ms, write_report_csv, PieceInfo, PieceKey, PieceState, ReportScope, StoreError,
    TrackingStore,
};

const MID: &str = "123456";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const WINDOW: i64 = 30 * DAY;

/// 2026-11-02T00:00:00Z, a Monday after the end of daylight saving time.
fn t0() -> i64 {
    days_from_civil(2026, 11, 2) * DAY
}

/// A fresh directory under the system temp dir, named after the test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "labeld-tracking-store-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A spool with a serial range and the tracking store on the same file.
fn open(name: &str) -> (PathBuf, Spool, TrackingStore) {
    let dir = temp_dir(name);
    let path = dir.join("spool.db");
    let mut spool = Spool::open(&path).unwrap();
    spool.configure_range(MID, 1000, 999_999).unwrap();
    let store = TrackingStore::open(&path).unwrap();
    (dir, spool, store)
}

/// Accepts job `id` with `n` IMb labels (routing `12345`) and confirms them printed at
/// `at`; returns their tracking codes.
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
                routing: "12345".into(),
                recipient: format!("recipient {i}"),
                unit: i,
                tracking: None,
            })
            .collect(),
        request_json: format!(r#"{{"job":"{id}"}}"#),
    };
    let accepted = spool.accept_job(job, at - 1000).unwrap();
    let indices: Vec<u32> = (0..n).collect();
    spool.mark_sent_many(id, &indices, None, at - 500).unwrap();
    spool.mark_printed_many(id, &indices, "dock-1", at).unwrap();
    accepted
        .serials
        .iter()
        .map(|s| s.tracking.clone())
        .collect()
}

/// RFC 3339 UTC text for a Unix-ms time.
fn utc(ms: i64) -> String {
    labeld::spool::format_rfc3339_ms(ms)
}

/// A feed-spelled scan of `tracking` (routing `60601`) at `at_ms` UTC.
fn scan(tracking: &str, at_ms: i64, code: &str, phase: &str) -> Scan {
    scan_with(tracking, "60601", at_ms, code, phase)
}

fn scan_with(tracking: &str, routing: &str, at_ms: i64, code: &str, phase: &str) -> Scan {
    let json = serde_json::json!({
        "imb": format!("{tracking}{routing}"),
        "scanDatetime": utc(at_ms),
        "scanEventCode": code,
        "mailPhase": phase,
        "machineName": "DBCS-042",
        "scanFacilityName": "CHICAGO IL P&DC",
        "scanFacilityCity": "CHICAGO",
        "scanFacilityState": "IL",
        "scanFacilityZip": "60607",
        "scanLocaleKey": "1234567",
    });
    let raw = RawScan::from_json(json.as_object().unwrap()).unwrap();
    Scan::from_raw(raw, ScanSource::Push).unwrap()
}

const ORIGIN: &str = "Phase 1 - Origin Processing";
const TRANSIT: &str = "Phase 2 - Destination Processing";
const DPS: &str = "Phase 3c - Destination Sequenced Carrier Sortation";
const DELIVERY: &str = "Phase 4c - Delivery";

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stage_never_goes_back_and_changes_are_listed_once() {
    let (dir, mut spool, mut store) = open("stage");
    let t = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let rules = default_rules();
    // Out of order in one call: processed for delivery, then the earlier origin scan.
    let report = store
        .add_scans(
            &[
                scan(&t, t0() + 2 * DAY, "918", DPS),
                scan(&t, t0() + DAY, "271", ORIGIN),
            ],
            &rules,
            t0() + 3 * DAY,
        )
        .unwrap();
    assert_eq!(
        (report.inserted, report.duplicates, report.unmatched),
        (2, 0, 0)
    );
    assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
    let change = &report.changes[0];
    assert_eq!(change.tracking, t);
    assert_eq!(change.mailer_id, MID);
    assert_eq!(change.serial, 1000);
    assert_eq!(change.job_id.as_deref(), Some("job-1"));
    assert_eq!(
        (change.from, change.to),
        (PieceState::Printed, PieceState::ProcessedForDelivery)
    );
    // A later in-transit scan does not move the stage back, and changes nothing.
    let report = store
        .add_scans(
            &[scan(&t, t0() + 3 * DAY, "881", TRANSIT)],
            &rules,
            t0() + 3 * DAY,
        )
        .unwrap();
    assert_eq!(report.inserted, 1);
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    let view = store
        .piece(&PieceKey::Tracking(t.clone()), &rules, 5, t0() + 3 * DAY)
        .unwrap()
        .unwrap();
    assert_eq!(view.stage, Stage::ProcessedForDelivery);
    assert_eq!(view.state, PieceState::ProcessedForDelivery);
    let times: Vec<i64> = view.scans.iter().map(|s| s.scanned_at.unix_ms).collect();
    assert_eq!(times, [t0() + DAY, t0() + 2 * DAY, t0() + 3 * DAY]);
    assert_eq!(view.first_scan_ms, Some(t0() + DAY));
    assert_eq!(view.processed_ms, Some(t0() + 2 * DAY));
    assert_eq!(view.last_scan_ms, Some(t0() + 3 * DAY));
    assert_eq!(view.prints.len(), 1);
    assert_eq!(view.prints[0].job_id, "job-1");
    // The same piece by Mailer ID and serial.
    let by_serial = store
        .piece(
            &PieceKey::parse("123456-1000").unwrap(),
            &rules,
            5,
            t0() + 3 * DAY,
        )
        .unwrap()
        .unwrap();
    assert_eq!(by_serial, view);
    // Delivered moves it on once more.
    let report = store
        .add_scans(
            &[scan(&t, t0() + 4 * DAY, "X1", DELIVERY)],
            &rules,
            t0() + 4 * DAY,
        )
        .unwrap();
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].to, PieceState::Delivered);
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn a_scan_from_pull_and_push_is_stored_once() {
    let (dir, mut spool, mut store) = open("dedup");
    let t = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let rules = default_rules();
    // The pull API's spelling, local time without offset (Illinois: Central time).
    let pull = serde_json::json!({
        "imb": format!("{t}60601"),
        "scan_date_time": "2026-11-03 08:15:00",
        "scan_event_code": "918",
        "mail_phase": DPS,
        "machine_name": "DBCS-042",
        "scan_facility_state": "IL",
        "scan_facility_zip": "60607",
        "scan_facility_locale_key": "1234567",
    });
    // The feed's spelling of the same event, with an explicit offset and a ZIP+4.
    let push = serde_json::json!({
        "imbTrackingCode": t,
        "routingCodeImbMatchingPortion": "60601123456",
        "scanDatetime": "2026-11-03T08:15:00.000-06:00",
        "scanEventCode": 918,
        "mailPhase": DPS,
        "machineName": "dbcs-042",
        "scanFacilityState": "IL",
        "scanFacilityZip": "60607-1234",
        "scanLocaleKey": "1234567",
    });
    let pull = Scan::from_raw(
        RawScan::from_json(pull.as_object().unwrap()).unwrap(),
        ScanSource::Pull,
    )
    .unwrap();
    let push = Scan::from_raw(
        RawScan::from_json(push.as_object().unwrap()).unwrap(),
        ScanSource::Push,
    )
    .unwrap();
    assert_eq!(pull.scanned_at.unix_ms, push.scanned_at.unix_ms);
    let first = store
        .add_scans(std::slice::from_ref(&pull), &rules, t0() + DAY)
        .unwrap();
    assert_eq!((first.inserted, first.duplicates), (1, 0));
    let second = store.add_scans(&[push, pull], &rules, t0() + DAY).unwrap();
    assert_eq!((second.inserted, second.duplicates), (0, 2));
    assert!(second.changes.is_empty());
    let view = store
        .piece(&PieceKey::Tracking(t), &rules, 5, t0() + DAY)
        .unwrap()
        .unwrap();
    assert_eq!(view.scans.len(), 1);
    assert_eq!(view.scans[0].source, ScanSource::Pull);
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn scans_match_on_the_tracking_code_whatever_their_routing() {
    let (dir, mut spool, mut store) = open("routing");
    let t = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let rules = default_rules();
    // Printed with routing 12345; USPS reports an 11-digit routing code.
    let report = store
        .add_scans(
            &[scan_with(&t, "60601123456", t0() + DAY, "271", ORIGIN)],
            &rules,
            t0() + DAY,
        )
        .unwrap();
    assert_eq!((report.inserted, report.unmatched), (1, 0));
    let view = store
        .piece(
            &PieceKey::parse(&format!("{t}12345")).unwrap(),
            &rules,
            5,
            t0() + DAY,
        )
        .unwrap()
        .unwrap();
    assert_eq!(view.prints[0].routing, "12345");
    assert_eq!(view.scans[0].routing, "60601123456");
    assert_eq!(view.state, PieceState::Accepted);
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn unmatched_scans_are_counted_and_stored() {
    let (dir, mut spool, mut store) = open("unmatched");
    let printed = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let rules = default_rules();
    let stranger = "00270123456000000042";
    let report = store
        .add_scans(
            &[
                scan(stranger, t0() + DAY, "271", ORIGIN),
                scan(stranger, t0() + 2 * DAY, "881", TRANSIT),
                scan(&printed, t0() + DAY, "271", ORIGIN),
            ],
            &rules,
            t0() + 2 * DAY,
        )
        .unwrap();
    assert_eq!((report.inserted, report.unmatched), (3, 2));
    // Only the printed piece's change is announced.
    assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
    assert_eq!(report.changes[0].tracking, printed);
    assert_eq!(report.changes[0].job_id.as_deref(), Some("job-1"));
    let view = store
        .piece(
            &PieceKey::Tracking(stranger.into()),
            &rules,
            5,
            t0() + 2 * DAY,
        )
        .unwrap()
        .unwrap();
    assert!(view.prints.is_empty());
    assert_eq!(view.scans.len(), 2);
    // Never printed, never scanned: nothing to show.
    assert_eq!(
        store
            .piece(
                &PieceKey::Tracking("00270123456000000043".into()),
                &rules,
                5,
                t0()
            )
            .unwrap(),
        None
    );
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn stalls_are_reported_once_and_cleared_by_a_scan() {
    let (dir, mut spool, mut store) = open("stall");
    let codes = print_job(&mut spool, "job-1", 2, t0());
    let (quiet, done) = (&codes[0], &codes[1]);
    let rules = default_rules();
    store
        .add_scans(&[scan(done, t0() + DAY, "918", DPS)], &rules, t0() + DAY)
        .unwrap();
    assert!(store
        .mark_stalled(t0() + 5 * DAY - 1, 5, WINDOW)
        .unwrap()
        .is_empty());
    let stalled = store.mark_stalled(t0() + 5 * DAY, 5, WINDOW).unwrap();
    assert_eq!(stalled.len(), 1, "{stalled:?}");
    assert_eq!(&stalled[0].tracking, quiet);
    assert_eq!(stalled[0].job_id.as_deref(), Some("job-1"));
    assert_eq!(
        (stalled[0].from, stalled[0].to),
        (PieceState::Printed, PieceState::Stalled)
    );
    // Reported once.
    assert!(store
        .mark_stalled(t0() + 6 * DAY, 5, WINDOW)
        .unwrap()
        .is_empty());
    let report = store
        .report(&ReportScope::Job("job-1".into()), 5, t0() + 6 * DAY)
        .unwrap();
    assert_eq!(report.counts.stalled, 1);
    assert_eq!(report.counts.processed_for_delivery, 1);
    assert_eq!(report.stalled.len(), 1);
    assert_eq!(&report.stalled[0].tracking, quiet);
    // A scan clears it, and the change says so.
    let added = store
        .add_scans(
            &[scan(quiet, t0() + 6 * DAY, "271", ORIGIN)],
            &rules,
            t0() + 6 * DAY,
        )
        .unwrap();
    assert_eq!(added.changes.len(), 1);
    assert_eq!(
        (added.changes[0].from, added.changes[0].to),
        (PieceState::Stalled, PieceState::Accepted)
    );
    let view = store
        .piece(
            &PieceKey::Tracking(quiet.clone()),
            &rules,
            5,
            t0() + 6 * DAY,
        )
        .unwrap()
        .unwrap();
    assert_eq!(view.state, PieceState::Accepted);
    assert_eq!(view.stalled_at_ms, None);
    // Quiet again for five days after that scan: stalled again, once.
    assert!(store
        .mark_stalled(t0() + 10 * DAY, 5, WINDOW)
        .unwrap()
        .is_empty());
    let again = store.mark_stalled(t0() + 11 * DAY, 5, WINDOW).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].from, PieceState::Accepted);
    // Outside the window nothing is marked.
    let (dir2, mut spool2, mut store2) = open("stall-window");
    print_job(&mut spool2, "old", 1, t0());
    assert!(store2
        .mark_stalled(t0() + 40 * DAY, 5, WINDOW)
        .unwrap()
        .is_empty());
    drop((spool, store, spool2, store2));
    cleanup(&dir);
    cleanup(&dir2);
}

#[test]
fn report_counts_every_state_with_durations_and_csv() {
    let (dir, mut spool, mut store) = open("report");
    let codes = print_job(&mut spool, "job-1", 5, t0());
    let other = print_job(&mut spool, "job-2", 1, t0() + 2 * DAY);
    let rules = default_rules();
    store
        .add_scans(
            &[
                // 0: accepted after 1 h.
                scan(&codes[0], t0() + HOUR, "271", ORIGIN),
                // 1: first scan after 10 h, processed after 1 day.
                scan(&codes[1], t0() + 10 * HOUR, "271", ORIGIN),
                scan(&codes[1], t0() + DAY, "918", DPS),
                // 2: processed after 2 days, then delivered.
                scan(&codes[2], t0() + 2 * DAY, "918", DPS),
                scan(&codes[2], t0() + 3 * DAY, "X1", DELIVERY),
                // 3: in transit after 4 h.
                scan(&codes[3], t0() + 4 * HOUR, "881", TRANSIT),
                // 4: nothing.
            ],
            &rules,
            t0() + 3 * DAY,
        )
        .unwrap();
    let now = t0() + 3 * DAY;
    let report = store
        .report(&ReportScope::Job("job-1".into()), 5, now)
        .unwrap();
    assert_eq!(report.pieces, 5);
    let c = report.counts;
    assert_eq!(
        (
            c.printed,
            c.accepted,
            c.in_transit,
            c.processed_for_delivery,
            c.delivered,
            c.stalled
        ),
        (1, 1, 1, 1, 1, 0)
    );
    assert_eq!(c.total(), 5);
    let first = report.print_to_first_scan;
    assert_eq!(first.count, 4);
    assert_eq!(first.min_ms, Some(HOUR));
    assert_eq!(first.median_ms, Some(4 * HOUR));
    assert_eq!(first.max_ms, Some(2 * DAY));
    let processed = report.print_to_processed;
    assert_eq!(processed.count, 2);
    assert_eq!(
        (processed.min_ms, processed.max_ms),
        (Some(DAY), Some(2 * DAY))
    );
    let row = &report.rows[2];
    assert_eq!(row.tracking, codes[2]);
    assert_eq!(row.state, PieceState::Delivered);
    assert_eq!(row.last_event_code.as_deref(), Some("X1"));
    assert_eq!(
        row.last_facility.as_deref(),
        Some("CHICAGO IL P&DC, CHICAGO IL 60607")
    );
    assert_eq!(row.index, 2);
    assert_eq!(row.recipient, "recipient 2");
    // Serialises (the desk sends it as JSON).
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["counts"]["stalled"], 0);
    // Ten days on, the quiet ones have stalled.
    let later = store
        .report(&ReportScope::Job("job-1".into()), 5, t0() + 10 * DAY)
        .unwrap();
    assert_eq!(later.counts.stalled, 3);
    // Since a time: job-2's piece only.
    let since = store
        .report(&ReportScope::Since(t0() + DAY), 5, now)
        .unwrap();
    assert_eq!(since.pieces, 1);
    assert_eq!(since.rows[0].tracking, other[0]);
    assert_eq!(since.counts.printed, 1);
    // CSV: a header and a row per piece, times in RFC 3339.
    let mut csv = Vec::new();
    write_report_csv(&report, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(
        lines[0].starts_with("tracking,mailer_id,serial,job_id,index,printer,recipient,printed_at")
    );
    assert!(
        lines[2].contains(&format!(
            "{},123456,000001001,job-1,1,dock-1,recipient 1,{},{},processed_for_delivery,{},{},{},918,",
            codes[1],
            utc(t0()),
            t0(),
            utc(t0() + 10 * HOUR),
            utc(t0() + DAY),
            utc(t0() + DAY)
        )),
        "{}",
        lines[2]
    );
    assert!(lines[5].contains(",printed,,,,,"), "{}", lines[5]);
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn polling_schedule() {
    let (dir, mut spool, mut store) = open("poll");
    let steps = default_poll();
    let a = print_job(&mut spool, "job-a", 2, t0());
    let b = print_job(&mut spool, "job-b", 1, t0() + HOUR);
    let due = |store: &TrackingStore, at: i64| -> Vec<String> {
        store
            .due_for_poll(at, WINDOW, &steps, 10)
            .unwrap()
            .into_iter()
            .map(|p| p.tracking)
            .collect()
    };
    // The first step polls every 2 hours: nothing is old enough after one hour.
    assert!(due(&store, t0() + HOUR).is_empty());
    assert_eq!(due(&store, t0() + 2 * HOUR), [a[0].clone(), a[1].clone()]);
    // Most overdue first.
    assert_eq!(
        due(&store, t0() + 3 * HOUR),
        [a[0].clone(), a[1].clone(), b[0].clone()]
    );
    let targets = store
        .due_for_poll(t0() + 3 * HOUR, WINDOW, &steps, 1)
        .unwrap();
    assert_eq!(targets.len(), 1, "limit");
    assert_eq!(targets[0].routing, "12345");
    assert_eq!(targets[0].mailer_id, MID);
    assert_eq!(targets[0].serial, 1000);
    assert_eq!(targets[0].printed_at_ms, t0());
    assert_eq!(targets[0].polls, 0);
    // Polled at 3 h (age 3 h: next in 2 h), with an error.
    let next = next_poll_ms(t0(), t0() + 3 * HOUR, &steps);
    assert_eq!(next, t0() + 5 * HOUR);
    store
        .record_poll(&a[0], t0() + 3 * HOUR, next, Some("IV-MTR answered 503"))
        .unwrap();
    assert_eq!(due(&store, t0() + 3 * HOUR), [a[1].clone(), b[0].clone()]);
    assert_eq!(due(&store, t0() + 5 * HOUR)[..1], [a[1].clone()]);
    assert!(due(&store, t0() + 5 * HOUR).contains(&a[0]));
    let view = store
        .piece(
            &PieceKey::Tracking(a[0].clone()),
            &default_rules(),
            5,
            t0() + 3 * HOUR,
        )
        .unwrap()
        .unwrap();
    assert_eq!(view.polls, 1);
    assert_eq!(view.last_polled_ms, Some(t0() + 3 * HOUR));
    assert_eq!(view.next_poll_ms, Some(next));
    assert_eq!(view.last_error.as_deref(), Some("IV-MTR answered 503"));
    store
        .record_poll(&a[0], t0() + 5 * HOUR, t0() + 7 * HOUR, None)
        .unwrap();
    let polled = store
        .due_for_poll(t0() + 7 * HOUR, WINDOW, &steps, 10)
        .unwrap();
    let a0 = polled.iter().find(|p| p.tracking == a[0]).unwrap();
    assert_eq!(a0.polls, 2);
    // Processed for delivery: no longer polled.
    store
        .add_scans(
            &[scan(&a[1], t0() + 4 * HOUR, "918", DPS)],
            &default_rules(),
            t0() + 4 * HOUR,
        )
        .unwrap();
    assert!(!due(&store, t0() + 7 * HOUR).contains(&a[1]));
    // Outside the window: no longer polled.
    assert!(due(&store, t0() + WINDOW + 30 * 60_000)
        .iter()
        .all(|t| t == &b[0]));
    assert!(due(&store, t0() + WINDOW + 2 * HOUR).is_empty());
    // Piece info from the pull API; a later partial answer keeps the rest.
    let info = PieceInfo {
        expected_delivery_date: Some("2026-11-05".into()),
        mail_class: Some("First-Class".into()),
        mail_shape: Some("Letter".into()),
        start_the_clock_date: None,
    };
    store.set_piece_info(&b[0], &info).unwrap();
    store
        .set_piece_info(
            &b[0],
            &PieceInfo {
                expected_delivery_date: Some("2026-11-06".into()),
                ..PieceInfo::default()
            },
        )
        .unwrap();
    let view = store
        .piece(&PieceKey::Tracking(b[0].clone()), &default_rules(), 5, t0())
        .unwrap()
        .unwrap();
    assert_eq!(
        view.info.expected_delivery_date.as_deref(),
        Some("2026-11-06")
    );
    assert_eq!(view.info.mail_class.as_deref(), Some("First-Class"));
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn feed_redelivery_is_idempotent() {
    let (dir, mut spool, mut store) = open("feed");
    let codes = print_job(&mut spool, "job-1", 2, t0());
    let rules = default_rules();
    let message = |serial: u64, scans: Vec<Scan>| FeedMessage {
        group_id: Some("G-2026-11-03".into()),
        message_serial: Some(serial),
        total_messages: Some(2),
        scans,
        skipped: 1,
        invalid: Vec::new(),
    };
    let body = vec![
        message(
            1,
            vec![
                scan(&codes[0], t0() + DAY, "271", ORIGIN),
                scan(&codes[1], t0() + DAY, "271", ORIGIN),
            ],
        ),
        message(2, vec![scan(&codes[0], t0() + 2 * DAY, "918", DPS)]),
    ];
    let first = store.add_feed(&body, &rules, t0() + 2 * DAY).unwrap();
    assert_eq!(first.messages, 2);
    assert_eq!(first.already_received, 0);
    assert_eq!(
        (first.inserted, first.duplicates, first.unmatched),
        (3, 0, 0)
    );
    assert_eq!(first.skipped, 2);
    // One change per piece, from its state before the body to after it.
    assert_eq!(first.changes.len(), 2);
    let c0 = first
        .changes
        .iter()
        .find(|c| c.tracking == codes[0])
        .unwrap();
    assert_eq!(
        (c0.from, c0.to),
        (PieceState::Printed, PieceState::ProcessedForDelivery)
    );
    // The same body again: both messages skipped, nothing stored, nothing changed.
    let again = store.add_feed(&body, &rules, t0() + 3 * DAY).unwrap();
    assert_eq!((again.messages, again.already_received), (2, 2));
    assert_eq!((again.inserted, again.duplicates, again.skipped), (0, 0, 0));
    assert!(again.changes.is_empty());
    // Without a group id, scan de-duplication does the work.
    let anonymous = FeedMessage {
        group_id: None,
        message_serial: None,
        total_messages: None,
        scans: vec![scan(&codes[1], t0() + DAY, "271", ORIGIN)],
        skipped: 0,
        invalid: Vec::new(),
    };
    let report = store
        .add_feed(&[anonymous.clone(), anonymous], &rules, t0() + 3 * DAY)
        .unwrap();
    assert_eq!((report.messages, report.already_received), (2, 0));
    assert_eq!((report.inserted, report.duplicates), (0, 2));
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn a_same_serial_reprint_shows_two_prints() {
    let (dir, mut spool, mut store) = open("reprint");
    let t = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let again = spool
        .reprint("job-1", Serials::Same, None, t0() + HOUR)
        .unwrap();
    assert_eq!(again.serials[0].tracking, t);
    spool
        .mark_sent_many(&again.job_id, &[0], None, t0() + HOUR)
        .unwrap();
    spool
        .mark_printed_many(&again.job_id, &[0], "dock-2", t0() + 2 * HOUR)
        .unwrap();
    let rules = default_rules();
    let view = store
        .piece(&PieceKey::Tracking(t.clone()), &rules, 5, t0() + 2 * HOUR)
        .unwrap()
        .unwrap();
    let jobs: Vec<&str> = view.prints.iter().map(|p| p.job_id.as_str()).collect();
    assert_eq!(jobs, ["job-1", again.job_id.as_str()]);
    assert_eq!(view.prints[1].printer, "dock-2");
    // A change names the latest print's job; the report counts the piece once.
    let added = store
        .add_scans(&[scan(&t, t0() + DAY, "271", ORIGIN)], &rules, t0() + DAY)
        .unwrap();
    assert_eq!(
        added.changes[0].job_id.as_deref(),
        Some(again.job_id.as_str())
    );
    let report = store
        .report(&ReportScope::Since(t0()), 5, t0() + DAY)
        .unwrap();
    assert_eq!(report.pieces, 1);
    assert_eq!(report.rows[0].printer, "dock-2");
    // Time to first scan counts from the first print.
    assert_eq!(report.print_to_first_scan.min_ms, Some(DAY));
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn opens_only_a_spool_and_leaves_its_version_alone() {
    let dir = temp_dir("open");
    // No file: refused, not created.
    let missing = dir.join("missing.db");
    assert!(matches!(
        TrackingStore::open(&missing),
        Err(StoreError::Open { .. })
    ));
    assert!(!missing.exists());
    // A SQLite file that is not a spool.
    let other = dir.join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .unwrap();
    let err = TrackingStore::open(&other).unwrap_err();
    assert!(matches!(err, StoreError::NotSpool { .. }), "{err}");
    assert!(err.to_string().contains("not a labeld spool"), "{err}");
    // A spool: opened twice, the spool's own version untouched, the spool still works.
    let path = dir.join("spool.db");
    let mut spool = Spool::open(&path).unwrap();
    spool.configure_range(MID, 1000, 2000).unwrap();
    drop(TrackingStore::open(&path).unwrap());
    let store = TrackingStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'tracking_print_log'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    // A newer tracking schema is refused.
    conn.execute("INSERT INTO tracking_schema (version) VALUES (99)", [])
        .unwrap();
    let err = TrackingStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    drop(store);
    drop(Spool::open(&path).unwrap());
    print_job(&mut spool, "after", 1, t0());
    drop((spool, conn));
    cleanup(&dir);
}

#[test]
fn many_pieces_report_in_one_query() {
    let (dir, mut spool, mut store) = open("many");
    let codes = print_job(&mut spool, "big", 2000, t0());
    let rules = default_rules();
    let scans: Vec<Scan> = codes
        .iter()
        .step_by(2)
        .map(|t| scan(t, t0() + DAY, "918", DPS))
        .collect();
    let added = store.add_scans(&scans, &rules, t0() + DAY).unwrap();
    assert_eq!(added.inserted, 1000);
    assert_eq!(added.changes.len(), 1000);
    let report = store
        .report(&ReportScope::Job("big".into()), 5, t0() + DAY)
        .unwrap();
    assert_eq!(report.pieces, 2000);
    assert_eq!(report.counts.processed_for_delivery, 1000);
    assert_eq!(report.counts.printed, 1000);
    assert_eq!(report.print_to_processed.count, 1000);
    drop((spool, store));
    cleanup(&dir);
}

#[test]
fn prune_keeps_printed_pieces_and_drops_the_rest_after_retention() {
    let (dir, mut spool, mut store) = open("prune");
    let printed = print_job(&mut spool, "job-1", 1, t0()).remove(0);
    let rules = default_rules();
    let stranger = "00270123456000000042";
    store
        .add_scans(
            &[
                scan(stranger, t0() + DAY, "271", ORIGIN),
                scan(&printed, t0() + DAY, "271", ORIGIN),
            ],
            &rules,
            t0() + DAY,
        )
        .unwrap();
    let key = |t: &str| PieceKey::Tracking(t.into());
    // Before the cutoff passes the scans' receipt: nothing goes.
    let none = store.prune(t0()).unwrap();
    assert_eq!((none.scans, none.pieces), (0, 0));
    // After it: the stranger's scan and piece go, the printed piece stays whole.
    let later = t0() + 10 * DAY;
    let report = store.prune(later).unwrap();
    assert_eq!((report.scans, report.pieces), (1, 1), "{report:?}");
    assert_eq!(store.piece(&key(stranger), &rules, 5, later).unwrap(), None);
    let kept = store
        .piece(&key(&printed), &rules, 5, later)
        .unwrap()
        .unwrap();
    assert_eq!(kept.scans.len(), 1);
    // Once the spool prunes its print-log row, the piece's tracking goes too.
    spool.prune(later).unwrap();
    let report = store.prune(later).unwrap();
    assert_eq!((report.scans, report.pieces), (1, 1), "{report:?}");
    assert_eq!(store.piece(&key(&printed), &rules, 5, later).unwrap(), None);
    drop((spool, store));
    cleanup(&dir);
}

/// A message larger than one transaction's worth ([`FEED_CHUNK`]) is stored in
/// several; the counts, the single change per piece and redelivery work as for a
/// small one.
#[test]
fn a_large_feed_message_is_stored_in_chunks() {
    let (dir, mut spool, mut store) = open("feed-chunks");
    let codes = print_job(&mut spool, "job-1", 3, t0());
    let rules = default_rules();
    let n = labeld::tracking::store::FEED_CHUNK * 2 + 17;
    // Many scans of three pieces (distinct times), then piece 0 reaches DPS last.
    let mut scans: Vec<Scan> = (0..n - 1)
        .map(|i| {
            let at = t0() + DAY + (i as i64) * 60_000;
            scan(&codes[i % 3], at, "271", ORIGIN)
        })
        .collect();
    scans.push(scan(&codes[0], t0() + 30 * DAY, "918", DPS));
    let body = vec![FeedMessage {
        group_id: Some("G-big".into()),
        message_serial: Some(1),
        total_messages: Some(1),
        scans,
        skipped: 0,
        invalid: Vec::new(),
    }];
    let first = store.add_feed(&body, &rules, t0() + 31 * DAY).unwrap();
    assert_eq!((first.inserted, first.duplicates), (n as u64, 0));
    assert_eq!(first.changes.len(), 3, "one change per piece");
    let c0 = first
        .changes
        .iter()
        .find(|c| c.tracking == codes[0])
        .unwrap();
    assert_eq!(
        (c0.from, c0.to),
        (PieceState::Printed, PieceState::ProcessedForDelivery)
    );
    let again = store.add_feed(&body, &rules, t0() + 31 * DAY).unwrap();
    assert_eq!((again.already_received, again.inserted), (1, 0));
    drop((spool, store));
    cleanup(&dir);
}

/// A corrected stage table fixes the pieces already stored, in reports and polling
/// too (not only in `piece`).
#[test]
fn changed_stage_rules_are_applied_to_stored_pieces() {
    let (dir, mut spool, mut store) = open("rules");
    let codes = print_job(&mut spool, "job-1", 1, t0());
    let box_mail = "Phase 3b - Destination Box Mail";
    // An old table that did not know box mail.
    let old: Vec<_> = default_rules()
        .into_iter()
        .filter(|r| r.phase.as_deref() != Some("Phase 3b"))
        .collect();
    assert_eq!(store.apply_rules(&old).unwrap(), 0, "nothing stored yet");
    store
        .add_scans(
            &[scan(&codes[0], t0() + DAY, "000", box_mail)],
            &old,
            t0() + DAY,
        )
        .unwrap();
    let report = |store: &TrackingStore| {
        store
            .report(&ReportScope::Job("job-1".into()), 5, t0() + 2 * DAY)
            .unwrap()
            .counts
    };
    assert_eq!(report(&store).in_transit, 1);
    // The corrected (default) table: box mail is the last sort.
    assert_eq!(store.apply_rules(&default_rules()).unwrap(), 1);
    assert_eq!(report(&store).processed_for_delivery, 1);
    assert_eq!(
        store.apply_rules(&default_rules()).unwrap(),
        0,
        "same rules again"
    );
    let due = store
        .due_for_poll(t0() + 3 * DAY, 30 * DAY, &default_poll(), 10)
        .unwrap();
    assert!(due.is_empty(), "processed pieces are not polled: {due:?}");
    drop((spool, store));
    cleanup(&dir);
}
