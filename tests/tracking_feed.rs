//! IV-MTR feed bodies: a realistic feed (the field list of the facts file §3) as JSON,
//! gzip and zip; messages of one group; `recCnt`; bodies refused whole with an
//! actionable message (truncated JSON, wrong types, huge fields, deep nesting, a
//! non-JSON zip entry); gzip and zip bombs stopped at the limit; arbitrary bytes never
//! panic.

use std::io::{Cursor, Write};

use crate::tracking_standin::{feed_piece_event, feed_tray_event};
use flate2::write::GzEncoder;
use flate2::Compression;
use labeld::tracking::feed::{parse_feed_body, FeedError, FeedLimits, FeedMessage};
use labeld::tracking::scan::ScanSource;
use proptest::prelude::*;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

const T1: &str = "00270123456000001000";
const T2: &str = "00270123456000001001";

/// A piece event with every field the facts file lists for the push feed.
fn piece_event(tracking: &str, time: &str, code: &str, phase: &str) -> Value {
    feed_piece_event(tracking, "60601123456", time, code, phase)
}

/// A tray (handling-unit) event.
fn tray_event() -> Value {
    feed_tray_event()
}

fn events() -> Vec<Value> {
    vec![
        piece_event(
            T1,
            "2026-11-02 18:30:00",
            "271",
            "Phase 1 - Origin Processing",
        ),
        tray_event(),
        piece_event(
            T1,
            "2026-11-03 08:15:00",
            "918",
            "Phase 3c - Destination Sequenced Carrier Sortation",
        ),
        piece_event(
            T2,
            "2026-11-03 08:16:00",
            "918",
            "Phase 3c - Destination Sequenced Carrier Sortation",
        ),
    ]
}

fn message(serial: u64, events: Vec<Value>) -> Value {
    json!({
        "msgGrpId": "G-20261103-01",
        "msgSerNbr": serial,
        "totMsgCnt": 2,
        "recCnt": events.len(),
        "totRecCnt": 5,
        "events": events
    })
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A zip of `(name, data, deflate)` entries, plus a directory entry first.
fn zip_of(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .add_directory("feeds/", SimpleFileOptions::default())
        .unwrap();
    for (name, data, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        writer
            .start_file(
                *name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn parse(data: &[u8]) -> Result<Vec<FeedMessage>, FeedError> {
    parse_feed_body(data, ScanSource::Push, &FeedLimits::default())
}

fn check_realistic(messages: &[FeedMessage]) {
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.group_id.as_deref(), Some("G-20261103-01"));
    assert_eq!(m.message_serial, Some(1));
    assert_eq!(m.total_messages, Some(2));
    assert_eq!(m.skipped, 1, "the tray event");
    assert_eq!(m.scans.len(), 3);
    let s = &m.scans[1];
    assert_eq!(s.tracking, T1);
    assert_eq!(s.routing, "60601123456");
    assert_eq!(s.event_code, "918");
    assert_eq!(s.handling_event_type.as_deref(), Some("L"));
    assert_eq!(s.handling_event_description.as_deref(), Some("Letter"));
    assert_eq!(s.machine.id.as_deref(), Some("042"));
    assert_eq!(s.machine.scanner_type.as_deref(), Some("DBCS"));
    assert_eq!(s.facility.locale_key.as_deref(), Some("1234567"));
    assert_eq!(s.scanned_at.local, "2026-11-03T08:15:00");
    assert_eq!(s.scanned_at.utc_offset_minutes, Some(-360));
    assert!(s.scanned_at.inferred);
    assert_eq!(s.source, ScanSource::Push);
    assert_eq!(m.scans[2].tracking, T2);
}

#[test]
fn a_realistic_feed_reads_as_json_gzip_and_zip() {
    let json = body(&message(1, events()));
    check_realistic(&parse(&json).unwrap());
    check_realistic(&parse(&gzip(&json)).unwrap());
    check_realistic(&parse(&zip_of(&[("feed.json", &json, true)])).unwrap());
    // A gzipped entry inside a zip, and a UTF-8 byte-order mark.
    check_realistic(&parse(&zip_of(&[("feed.json.gz", &gzip(&json), false)])).unwrap());
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&json);
    check_realistic(&parse(&bom).unwrap());
}

#[test]
fn two_messages_of_one_group() {
    let (first, second) = {
        let mut all = events();
        let rest = all.split_off(2);
        (all, rest)
    };
    // As a list in one body.
    let list = json!([message(1, first.clone()), message(2, second.clone())]);
    let messages = parse(&body(&list)).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].message_serial, Some(1));
    assert_eq!(messages[1].message_serial, Some(2));
    assert_eq!(messages[0].group_id, messages[1].group_id);
    assert_eq!((messages[0].scans.len(), messages[0].skipped), (1, 1));
    assert_eq!(messages[1].scans.len(), 2);
    // As two entries of one zip, in entry order.
    let one = body(&message(1, first));
    let two = body(&message(2, second));
    let messages = parse(&zip_of(&[("1.json", &one, true), ("2.json", &two, true)])).unwrap();
    let serials: Vec<_> = messages.iter().map(|m| m.message_serial).collect();
    assert_eq!(serials, [Some(1), Some(2)]);
}

#[test]
fn rec_cnt_must_match_the_events() {
    let mut m = message(1, events());
    m["recCnt"] = json!(5);
    let err = parse(&body(&m)).unwrap_err();
    assert!(matches!(
        err,
        FeedError::RecordCount {
            expected: 5,
            found: 4,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "message says `recCnt` 5 but holds 4 events (the file is incomplete; ask USPS to \
         resend it)"
    );
    // As text it is read too; absent, nothing is checked.
    m["recCnt"] = json!("4");
    assert!(parse(&body(&m)).is_ok());
    m.as_object_mut().unwrap().remove("recCnt");
    assert!(parse(&body(&m)).is_ok());
    m["msgSerNbr"] = json!("first");
    let err = parse(&body(&m)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("message field `msgSerNbr` is invalid:"),
        "{err}"
    );
}

#[test]
fn truncated_json_is_refused_with_its_position() {
    let json = body(&message(1, events()));
    let cut = &json[..json.len() / 2];
    let err = parse(cut).unwrap_err();
    let FeedError::NotJson { line, column, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(*line > 1 && *column >= 1, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "feed file is not JSON: line {line} column {column}: "
        )),
        "{err}"
    );
    // Truncated gzip.
    let gz = gzip(&json);
    let err = parse(&gz[..gz.len() - 12]).unwrap_err();
    assert!(
        matches!(err, FeedError::Gzip { .. } | FeedError::NotJson { .. }),
        "{err:?}"
    );
    // Not JSON at all.
    let err = parse(b"<html>maintenance</html>").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("feed file is not JSON: line 1 column 1: "),
        "{err}"
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // One gzip member of 1 MiB of zeros, repeated: 1 GiB from about 1 MB.
    let member = gzip(&vec![0u8; 1 << 20]);
    let mut bomb = Vec::with_capacity(member.len() * 1024);
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    let limits = FeedLimits {
        max_bytes: 4 << 20,
        ..FeedLimits::default()
    };
    let err = parse_feed_body(&bomb, ScanSource::Push, &limits).unwrap_err();
    assert!(
        matches!(err, FeedError::TooLarge { limit } if limit == 4 << 20),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "feed is larger than 4194304 bytes after decompression (raise the limit only if \
         USPS really sends such files)"
    );
    // The same bomb stored in a zip, and a deflated zip entry over the limit.
    let err = parse_feed_body(
        &zip_of(&[("a.json.gz", &bomb, false)]),
        ScanSource::Push,
        &limits,
    )
    .unwrap_err();
    assert!(matches!(err, FeedError::TooLarge { .. }), "{err:?}");
    let zeros = vec![b' '; 6 << 20];
    let err = parse_feed_body(
        &zip_of(&[("a.json", &zeros, true)]),
        ScanSource::Push,
        &limits,
    )
    .unwrap_err();
    assert!(matches!(err, FeedError::TooLarge { .. }), "{err:?}");
    // The limit counts all entries together.
    let json = body(&message(1, events()));
    let small = FeedLimits {
        max_bytes: json.len() as u64 * 2 - 1,
        ..FeedLimits::default()
    };
    let two = zip_of(&[("1.json", &json, true), ("2.json", &json, true)]);
    assert!(matches!(
        parse_feed_body(&two, ScanSource::Push, &small),
        Err(FeedError::TooLarge { .. })
    ));
    let enough = FeedLimits {
        max_bytes: json.len() as u64 * 2,
        ..FeedLimits::default()
    };
    assert_eq!(
        parse_feed_body(&two, ScanSource::Push, &enough)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn zip_entries_must_be_json() {
    let json = body(&message(1, events()));
    let data = zip_of(&[("feed.json", &json, true), ("readme.txt", b"hello", true)]);
    let err = parse(&data).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("zip entry `readme.txt`: feed file is not JSON: line 1 column 1: "),
        "{err}"
    );
    // macOS resource forks and directories are skipped; a zip of nothing is refused.
    let data = zip_of(&[
        ("feed.json", &json, true),
        ("__MACOSX/._feed.json", b"\0\x05", false),
    ]);
    assert_eq!(parse(&data).unwrap().len(), 1);
    assert!(matches!(parse(&zip_of(&[])), Err(FeedError::EmptyZip)));
    // A truncated zip.
    let data = zip_of(&[("feed.json", &json, true)]);
    assert!(matches!(
        parse(&data[..data.len() - 30]),
        Err(FeedError::Zip { .. })
    ));
    // Too many entries.
    let entries: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("{i}.json"), json.clone()))
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    let limits = FeedLimits {
        max_zip_entries: 4,
        ..FeedLimits::default()
    };
    let err = parse_feed_body(&zip_of(&refs), ScanSource::Push, &limits).unwrap_err();
    assert!(
        matches!(err, FeedError::TooManyEntries { found: 6, limit: 4 }),
        "{err:?}"
    );
}

#[test]
fn wrong_types_name_the_event_and_field() {
    let mut bad = events();
    bad[2]["imbTrackingCode"] = json!({"digits": T1});
    let err = parse(&body(&message(1, bad))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 3: scan field `imbTrackingCode` is invalid: expected text or a number, found an \
         object"
    );
    // In a list of messages, and in a zip: the entry and the message are named too.
    let mut bad = events();
    bad[3]["scanDatetime"] = json!("yesterday");
    let list = body(&json!([message(1, events()), message(2, bad)]));
    let err = parse(&zip_of(&[("feed.json", &list, true)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "zip entry `feed.json`: message 2: event 4: scan field `scanDatetime` is invalid: \
         \"yesterday\" does not start with a date such as 2026-11-20 or 11/20/2026"
    );
    // A missing event code, an event that is not an object, one that is nothing known.
    let mut bad = events();
    bad[0].as_object_mut().unwrap().remove("scanEventCode");
    assert_eq!(
        parse(&body(&message(1, bad))).unwrap_err().to_string(),
        "event 1: scan field `scanEventCode` is missing"
    );
    let mut bad = events();
    bad[1] = json!("tray");
    assert_eq!(
        parse(&body(&message(1, bad))).unwrap_err().to_string(),
        "event 2: is not an object"
    );
    let mut bad = events();
    bad[1] = json!({"scanEventCode": "918"});
    assert!(parse(&body(&message(1, bad)))
        .unwrap_err()
        .to_string()
        .starts_with("event 2: has no `imb`, `imbTrackingCode`, `imtb` or `imcb`"));
    // The wrong shape at the top.
    for (text, message) in [
        ("42", "feed is not an IV-MTR feed: the top level is a number; expected an object with an `events` list"),
        ("{}", "feed is not an IV-MTR feed: a message has no `events` list"),
        (r#"{"events": {}}"#, "feed is not an IV-MTR feed: `events` is an object; expected a list of events"),
        (r#"[{"events": []}, 7]"#, "feed is not an IV-MTR feed: item 2 of the top-level list is a number; expected message objects"),
    ] {
        assert_eq!(parse(text.as_bytes()).unwrap_err().to_string(), message, "{text}");
    }
    // An empty message is fine.
    let messages = parse(br#"{"msgGrpId": 17, "events": []}"#).unwrap();
    assert_eq!(messages[0].group_id.as_deref(), Some("17"));
    assert!(messages[0].scans.is_empty());
}

#[test]
fn a_ten_megabyte_field_is_refused() {
    let mut bad = events();
    bad[0]["machineName"] = json!("x".repeat(10 << 20));
    let err = parse(&body(&message(1, bad))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 1: scan field `machineName` is invalid: has 10485760 characters; at most 256 \
         are accepted"
    );
    // In a field labeld does not read, it costs nothing and is accepted.
    let mut big = events();
    big[0]["idTag"] = json!("x".repeat(10 << 20));
    assert_eq!(parse(&body(&message(1, big))).unwrap()[0].scans.len(), 3);
}

#[test]
fn deep_nesting_is_refused_without_overflowing() {
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // In a field labeld reads: serde_json's recursion limit refuses it.
    let text = format!(r#"{{"events": [{{"imb": {nested}}}]}}"#);
    let err = parse(text.as_bytes()).unwrap_err();
    assert!(matches!(err, FeedError::NotJson { .. }), "{err:?}");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    // In a field labeld skips: skipped without recursion, and the event is still read.
    let mut event = serde_json::to_string(&events()[0]).unwrap();
    event.pop();
    let text = format!(r#"{{"events": [{event}, "unknownField": {nested}}}]}}"#);
    let messages = parse(text.as_bytes()).unwrap();
    assert_eq!(messages[0].scans.len(), 1);
    assert_eq!(messages[0].scans[0].tracking, T1);
}

#[test]
fn the_event_limit_holds_across_messages() {
    let limits = FeedLimits {
        max_events: 7,
        ..FeedLimits::default()
    };
    let list = body(&json!([message(1, events()), message(2, events())]));
    let err = parse_feed_body(&list, ScanSource::Push, &limits).unwrap_err();
    assert!(
        matches!(err, FeedError::TooManyEvents { limit: 7 }),
        "{err:?}"
    );
    let limits = FeedLimits {
        max_events: 8,
        ..FeedLimits::default()
    };
    assert_eq!(
        parse_feed_body(&list, ScanSource::Push, &limits)
            .unwrap()
            .len(),
        2
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec![&b""[..], b"\x1f\x8b", b"PK\x03\x04", b"{\"events\":[", b"["]),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut data = prefix.to_vec();
        data.extend_from_slice(&bytes);
        let _ = parse(&data);
    }

    #[test]
    fn damaged_feeds_never_panic(cut in 0usize..2000, flip in any::<u8>(), at in any::<prop::sample::Index>()) {
        let json = body(&message(1, events()));
        for form in [json.clone(), gzip(&json), zip_of(&[("f.json", &json, true)])] {
            let mut data = form[..cut.min(form.len())].to_vec();
            if !data.is_empty() {
                let i = at.index(data.len());
                data[i] ^= flip;
            }
            let _ = parse(&data);
        }
    }
}
