//! `labelctl track`, `labelctl tracking report` and `labelctl tracking import`.
//!
//! Two layers: the binary without a daemon (argument errors, feed files refused or
//! counted before anything is sent, an unreachable labeld), and the binary against a
//! real labeld started by [`crate::harness`]: print a job with IMbs, import a feed
//! file built from the IV-MTR feed fields (`../shared/reference/iv-tracking.md` §3)
//! with the printed tracking codes, then `track` a piece and write the job's report.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::Daemon;
use crate::labelctl_daemon::{ctl, expect_code, labelctl, stderr, stdout, temp_dir, write};
use crate::tracking_standin::{feed_piece_event, feed_tray_event};

// ---------------------------------------------------------------------------
// Helpers.

/// A loopback endpoint nothing listens on (bound, then released).
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("tcp://127.0.0.1:{port}")
}

/// One IV-MTR feed message (facts §3: `msgGrpId`, `msgSerNbr`, `totMsgCnt`,
/// `recCnt`, `events`).
fn feed(group: &str, events: Vec<Value>) -> Vec<u8> {
    json!({"msgGrpId": group, "msgSerNbr": 1, "totMsgCnt": 1, "recCnt": events.len(),
           "events": events})
    .to_string()
    .into_bytes()
}

/// A piece scan as the feed spells it.
fn piece_event(tracking: &str, routing: &str, when: &str, code: &str, phase: &str) -> Value {
    feed_piece_event(tracking, routing, when, code, phase)
}

/// A tray (handling-unit) event: counted and skipped.
fn tray_event() -> Value {
    feed_tray_event()
}

const TRACKING: &str = "00270123456000001001";

// ---------------------------------------------------------------------------
// Without a daemon.

#[test]
fn labelctl_tracking_commands_are_listed_in_help() {
    let out = labelctl(&["--help"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("track "), "{text}");
    assert!(text.contains("tracking "), "{text}");
    let out = labelctl(&["tracking", "--help"]);
    expect_code(&out, 0);
    assert!(stdout(&out).contains("report"), "{}", stdout(&out));
    assert!(stdout(&out).contains("import"), "{}", stdout(&out));
}

#[test]
fn labelctl_track_refuses_what_is_not_a_piece_before_connecting() {
    let endpoint = closed_endpoint();
    for bad in [
        "abc",
        "123456-",
        "0027012345600000100",
        "00270123456000001001X",
    ] {
        let out = labelctl(&["track", bad, "--endpoint", &endpoint]);
        expect_code(&out, 2);
        assert!(
            stderr(&out).contains("MAILERID-SERIAL"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    // A well-formed piece needs labeld: unreachable is 3.
    let out = labelctl(&["track", TRACKING, "--endpoint", &endpoint]);
    expect_code(&out, 3);
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    // No piece at all is a usage error.
    expect_code(&labelctl(&["track"]), 2);
}

#[test]
fn labelctl_tracking_report_needs_exactly_one_scope_and_a_valid_date() {
    let endpoint = closed_endpoint();
    expect_code(
        &labelctl(&["tracking", "report", "--endpoint", &endpoint]),
        2,
    );
    expect_code(
        &labelctl(&[
            "tracking",
            "report",
            "--job",
            "a",
            "--since",
            "2026-11-01",
            "--endpoint",
            &endpoint,
        ]),
        2,
    );
    expect_code(
        &labelctl(&[
            "tracking",
            "report",
            "--job",
            "a",
            "--csv",
            "--json",
            "--endpoint",
            &endpoint,
        ]),
        2,
    );
    let out = labelctl(&[
        "tracking",
        "report",
        "--since",
        "yesterday",
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
    // Well-formed, but nobody listens.
    let out = labelctl(&[
        "tracking",
        "report",
        "--since",
        "2026-11-01",
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 3);
}

#[test]
fn labelctl_tracking_import_refuses_a_malformed_file_naming_it_without_a_daemon() {
    let dir = temp_dir("malformed");
    let endpoint = closed_endpoint();
    let truncated = write(
        &dir,
        "truncated.json",
        br#"{"msgGrpId": "g1", "events": [{"imb": "#,
    );
    let out = labelctl(&["tracking", "import", &truncated, "--endpoint", &endpoint]);
    expect_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("truncated.json"), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    assert!(err.contains("nothing of it was sent"), "{err}");
    assert!(
        err.contains("1 of 1 file(s) refused; none went in"),
        "{err}"
    );

    // A bad event: the parser's message names the event and the field.
    let bad_event = feed(
        "g2",
        vec![
            piece_event(TRACKING, "60607", "2026-11-20 08:15:00", "918", "Phase 3c"),
            json!({"imbTrackingCode": TRACKING, "scanDatetime": "2026-11-20 09:00:00"}),
        ],
    );
    let bad = write(&dir, "bad-event.json", &bad_event);
    let out = labelctl(&["tracking", "import", &bad, "--endpoint", &endpoint]);
    expect_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("bad-event.json"), "{err}");
    assert!(err.contains("event 2"), "{err}");
    assert!(err.contains("scanEventCode"), "{err}");

    // A file that is not there.
    let missing = dir.join("missing.json").display().to_string();
    let out = labelctl(&["tracking", "import", &missing, "--endpoint", &endpoint]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));

    // No file at all is a usage error.
    expect_code(&labelctl(&["tracking", "import"]), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_tracking_import_checks_every_file_and_still_counts_the_good_ones() {
    let dir = temp_dir("mixed");
    let endpoint = closed_endpoint();
    // Trays only: nothing to send, so no daemon is needed, and it counts.
    let trays = write(
        &dir,
        "trays.json",
        &feed("g3", vec![tray_event(), tray_event()]),
    );
    let broken = write(&dir, "broken.json", b"not a feed");
    let out = labelctl(&[
        "tracking",
        "import",
        &broken,
        &trays,
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("broken.json"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 of 2 file(s) refused"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("trays.json: 1 message(s), 0 event(s), 2 skipped (tray/container)"),
        "{text}"
    );

    // --json: one object with a row per file.
    let out = labelctl(&[
        "tracking",
        "import",
        &broken,
        &trays,
        "--json",
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 2);
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["ok"], false);
    assert!(v["files"][0]["file"]
        .as_str()
        .expect("file")
        .ends_with("broken.json"));
    assert!(v["files"][0]["error"]
        .as_str()
        .expect("error")
        .contains("not JSON"));
    assert_eq!(v["files"][1]["skipped"], 2);
    assert_eq!(v["files"][1]["error"], Value::Null);

    // A good file with scans needs labeld: unreachable is 3, after the broken file was
    // reported.
    let scans = write(
        &dir,
        "scans.json",
        &feed(
            "g4",
            vec![piece_event(
                TRACKING,
                "60607",
                "2026-11-20 08:15:00",
                "918",
                "Phase 3c",
            )],
        ),
    );
    let out = labelctl(&[
        "tracking",
        "import",
        &broken,
        &scans,
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 3);
    assert!(stderr(&out).contains("broken.json"), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------
// Against a running labeld.

/// `YYYY-MM-DD HH:MM:SS` for now plus `hours`, as a facility's wall clock without an
/// offset (labeld infers the zone from the facility's state).
fn wall_clock(hours: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let text = labeld::spool::format_rfc3339_ms(now + hours * 3_600_000);
    format!("{} {}", &text[..10], &text[11..19])
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn labelctl_e2e_tracking_import_track_and_report() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e");
    let job_id = "iv-mailing";
    let reply = daemon.request(json!({
        "v": 1, "op": "submit_batch", "printer": "zpl-file", "job_id": job_id,
        "template": {"template": "address", "size": "4x6",
                     "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"],
                     "imb": {"mailer_id": "123456", "service_type": "270", "routing": "60601"}},
        "records": [
            {"to": ["JANE ROE", "1 MAIN ST", "CHICAGO IL 60601"]},
            {"to": ["JOHN DOE", "2 ELM ST", "CHICAGO IL 60601"]},
            {"to": ["MARY MAJOR", "3 OAK ST", "CHICAGO IL 60601"]}
        ]
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    daemon.wait_done(job_id, Duration::from_secs(60));
    let serials = reply["serials"].as_array().expect("serials");
    let tracking = |i: usize| {
        serials[i]["tracking"]
            .as_str()
            .expect("tracking")
            .to_owned()
    };
    let serial = |i: usize| serials[i]["serial"].as_u64().expect("serial");

    // Piece 0 goes all the way to processed for delivery (the routing USPS matched
    // is the 11-digit one, not what was printed); piece 1 is accepted; piece 2 has
    // no scan. One tray event is skipped; one scan is of a piece labeld never printed.
    let (t0, t1) = (tracking(0), tracking(1));
    let stranger = "00270123456999999999";
    let events = vec![
        piece_event(
            &t0,
            "60601123401",
            &wall_clock(1),
            "813",
            "Phase 0 - Origin Processing Cancellation of Postage",
        ),
        piece_event(
            &t0,
            "60601123401",
            &wall_clock(2),
            "895",
            "Phase 2c - Destination Primary",
        ),
        piece_event(
            &t0,
            "60601123401",
            &wall_clock(3),
            "918",
            "Phase 3c - Destination Sequenced Carrier Sortation",
        ),
        piece_event(
            &t1,
            "60601",
            &wall_clock(1),
            "813",
            "Phase 1 - Origin Processing",
        ),
        tray_event(),
        piece_event(
            stranger,
            "60601",
            &wall_clock(1),
            "813",
            "Phase 1 - Origin Processing",
        ),
    ];
    let body = feed("e2e-1", events);
    let plain = write(&dir, "feed-1.json", &body);
    let zipped = write(&dir, "feed-1.json.gz", &gzip(&body));

    let out = ctl(&daemon, &["tracking", "import", &plain]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains(
            "feed-1.json: 1 message(s), 5 event(s), 1 skipped (tray/container), 5 inserted, \
             0 duplicate(s), 1 unmatched"
        ),
        "{}",
        stdout(&out)
    );
    // The same scans again, gzip-compressed: nothing is stored twice.
    let out = ctl(&daemon, &["tracking", "import", &zipped, "--json"]);
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["files"][0]["inserted"], 0, "{v}");
    assert_eq!(v["files"][0]["duplicates"], 5, "{v}");

    // A file with one bad event (a 6-digit routing code): refused whole, unless the
    // operator asks for its good events.
    let mixed = feed(
        "e2e-2",
        vec![
            piece_event(
                "00270123456999999998",
                "60601",
                &wall_clock(1),
                "813",
                "Phase 1 - Origin Processing",
            ),
            piece_event(&t1, "606011", &wall_clock(2), "895", "Phase 2"),
        ],
    );
    let mixed = write(&dir, "mixed.json", &mixed);
    let out = ctl(&daemon, &["tracking", "import", &mixed]);
    expect_code(&out, 2);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("--skip-invalid"), "{said}");
    assert!(said.contains("event 2"), "{said}");
    let out = ctl(&daemon, &["tracking", "import", "--skip-invalid", &mixed]);
    expect_code(&out, 0);
    let said = stdout(&out);
    assert!(said.contains("1 inserted"), "{said}");
    assert!(said.contains("1 invalid event(s) left out"), "{said}");

    // One piece, by tracking code and by Mailer ID + serial.
    let out = ctl(&daemon, &["track", &t0]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(&format!("piece {t0}")), "{text}");
    assert!(text.contains("processed_for_delivery"), "{text}");
    assert!(
        text.contains("JANE ROE / 1 MAIN ST / CHICAGO IL 60601"),
        "{text}"
    );
    assert!(text.contains(&format!("{job_id} label 0")), "{text}");
    assert!(text.contains("scans (3, oldest first)"), "{text}");
    for code in ["813", "895", "918"] {
        assert!(text.contains(code), "{code}: {text}");
    }
    assert!(text.contains("CHICAGO IL P&DC, CHICAGO IL 60607"), "{text}");
    assert!(text.contains("DBCS-042 (DBCS)"), "{text}");
    // No offset was sent: the zone is inferred from the state (Central time).
    assert!(
        text.contains("-06:00*") || text.contains("-05:00*"),
        "{text}"
    );
    assert!(text.contains("zone inferred"), "{text}");

    let by_serial = format!("123456-{}", serial(0));
    let out = ctl(&daemon, &["track", &by_serial, "--json"]);
    expect_code(&out, 0);
    let piece: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(piece["tracking"], t0.as_str());
    assert_eq!(piece["state"], "processed_for_delivery");
    assert_eq!(piece["scans"].as_array().expect("scans").len(), 3);
    assert_eq!(piece["scans"][2]["event_code"], "918");
    assert_eq!(piece["scans"][0]["source"], "import");
    assert_eq!(piece["prints"][0]["job_id"], job_id);

    // A piece labeld never heard of.
    let out = ctl(&daemon, &["track", "00270123456888888888"]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));

    // The job's report: text, then CSV to a file.
    let out = ctl(&daemon, &["tracking", "report", "--job", job_id]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("job {job_id}: 3 piece(s)")),
        "{text}"
    );
    let count_of = |state: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(state))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    assert_eq!(count_of("printed").as_deref(), Some("1"), "{text}");
    assert_eq!(count_of("accepted").as_deref(), Some("1"), "{text}");
    assert_eq!(
        count_of("processed_for_delivery").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(count_of("stalled").as_deref(), Some("0"), "{text}");
    assert!(text.contains("no stalled pieces"), "{text}");

    let csv_path = dir.join("report.csv");
    let out = ctl(
        &daemon,
        &[
            "tracking",
            "report",
            "--job",
            job_id,
            "--csv",
            "-o",
            &csv_path.display().to_string(),
        ],
    );
    expect_code(&out, 0);
    let csv_text = std::fs::read_to_string(&csv_path).expect("csv written");
    let mut lines = csv_text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "tracking,mailer_id,serial,job_id,index,printer,recipient,printed_at,printed_at_ms,\
             state,first_scan_at,processed_at,last_scan_at,last_event_code,last_facility"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{csv_text}");
    let row0 = rows
        .iter()
        .find(|r| r.starts_with(&t0))
        .expect("piece 0 has a row");
    assert!(row0.contains(",processed_for_delivery,"), "{row0}");
    assert!(row0.contains(",918,"), "{row0}");
    let row2 = rows
        .iter()
        .find(|r| r.starts_with(&tracking(2)))
        .expect("piece 2 has a row");
    assert!(row2.contains(",printed,"), "{row2}");

    // --json: the reply's report.
    let out = ctl(&daemon, &["tracking", "report", "--job", job_id, "--json"]);
    expect_code(&out, 0);
    let report: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(report["pieces"], 3, "{report}");
    assert_eq!(report["counts"]["processed_for_delivery"], 1, "{report}");
    assert_eq!(report["print_to_processed"]["count"], 1, "{report}");
    std::fs::remove_dir_all(&dir).ok();
}
