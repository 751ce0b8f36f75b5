//! Informed Visibility end to end: a real labeld prints a batch to its ZPL file
//! printer, then USPS scans for its pieces arrive three ways — the IV-MTR stand-in
//! (the daemon's poller finds them over several polls), the push receiver (HTTP Basic,
//! redelivered once) and `tracking_import` — and one piece gets nothing and stalls.
//! The test checks every piece's state through `track` and `tracking_report`, the
//! `tracking.<serial>` events, and that no credential or token reaches the log, a
//! reply or an event.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use labeld::client::Subscriber;
use serde_json::{json, Value};

use crate::harness::{config_text, Daemon};
use crate::tracking_standin::{
    dbcs_918_scan, destination_scan, feed_piece_event, origin_scan, StandIn,
};

const WAIT: Duration = Duration::from_secs(60);
const IV_PASSWORD: &str = "Iv-Secret-e2e-5d1f";
const PUSH_PASSWORD: &str = "Push-Secret-e2e-8c2a";
const TOKEN_PREFIX: &str = "TOKEN-e2e-3b9";

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write credentials");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `YYYY-MM-DD HH:MM:SS` for `unix_ms` (UTC wall clock, as a facility's local time).
fn scan_time(unix_ms: i64) -> String {
    let text = labeld::spool::format_rfc3339_ms(unix_ms);
    text[..19].replace('T', " ")
}

/// Collects `tracking.` events on a thread until the test ends.
fn collect_events(endpoint: &str) -> Arc<Mutex<Vec<Value>>> {
    let mut subscriber =
        Subscriber::connect(endpoint, &["tracking."], WAIT).expect("subscribe to events");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || loop {
        match subscriber.next(Duration::from_secs(1)) {
            Ok(Some(received)) => {
                assert_eq!(
                    received.topic,
                    format!("tracking.{}", received.event["serial"]),
                    "topic is tracking.<serial>"
                );
                sink.lock().expect("events").push(received.event);
            }
            Ok(None) => {}
            Err(_) => return,
        }
    });
    // A subscription takes a moment to reach the publisher.
    std::thread::sleep(Duration::from_millis(300));
    seen
}

fn states_of(events: &Arc<Mutex<Vec<Value>>>, serial: u64) -> Vec<String> {
    events
        .lock()
        .expect("events")
        .iter()
        .filter(|e| e["serial"] == serial)
        .map(|e| e["to"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn wait_for(what: &str, d: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} within {WAIT:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn printed_pieces_are_tracked_from_polls_pushes_and_imports() {
    let iv = StandIn::start();
    iv.add_user("mailroom", IV_PASSWORD);
    iv.set_token_prefix(TOKEN_PREFIX);

    let dir = std::env::temp_dir().join(format!("labeld-tracking-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    write_private(
        &dir.join("iv.toml"),
        &format!("username = \"mailroom\"\npassword = \"{IV_PASSWORD}\"\n"),
    );
    write_private(
        &dir.join("push.toml"),
        &format!("username = \"usps-feed\"\npassword = \"{PUSH_PASSWORD}\"\n"),
    );
    let port = free_port();
    let tracking = format!(
        r#"
[tracking]
enabled = true
oauth_url = "{oauth}"
api_url = "{api}"
credentials_file = "iv.toml"
requests_per_hour = 360000
tries = 2
max_backoff_secs = 1
stall_days = 3

[[tracking.poll]]
every_seconds = 1

[tracking.push]
listen = "127.0.0.1:{port}"
path = "/iv/feed"
credentials_file = "push.toml"
"#,
        oauth = iv.oauth_url(),
        api = iv.api_url(),
    );
    let d = Daemon::start_with(dir.clone(), &config_text(&dir, &tracking));
    let events = collect_events(&d.events);

    // Six pieces, printed.
    let records: Vec<Value> = (0..6)
        .map(|i| {
            json!({"to": [format!("RECIPIENT {i}"), "1 MAIN ST", "DENVER CO 80202"],
                   "imb": {"mailer_id": "123456", "service_type": "270", "routing": "80202"}})
        })
        .collect();
    let reply = d.request(json!({
        "op": "submit_batch", "printer": "zpl-file", "job_id": "tracked",
        "template": {"template": "address", "size": "4x6"}, "records": records
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    let status = d.wait_done("tracked", WAIT);
    assert_eq!(status["progress"]["printed"], 6, "{status}");
    let log = d.request(json!({"op": "log", "since_ms": 0}));
    let rows = log["rows"].as_array().expect("print log rows");
    assert_eq!(rows.len(), 6, "{log}");
    let pieces: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["tracking"].as_str().expect("tracking").to_owned(),
                r["routing"].as_str().expect("routing").to_owned(),
                r["serial"].as_u64().expect("serial"),
            )
        })
        .collect();
    let printed_at = rows[0]["printed_at_ms"].as_i64().expect("printed_at_ms");
    let later = |hours: i64| scan_time(printed_at + hours * 3_600_000);

    // Pull: piece 0's scans arrive over two polls, piece 1 gets one origin scan.
    // USPS knows them with a 9-digit routing code although 5 digits were printed.
    let imb = |i: usize| format!("{}{}", pieces[i].0, pieces[i].1);
    iv.queue_scans(
        &imb(0),
        vec![
            vec![origin_scan(&later(2))],
            vec![destination_scan(&later(20)), dbcs_918_scan(&later(30))],
        ],
    );
    iv.add_scans(&imb(1), vec![origin_scan(&later(3))]);

    // Push: piece 2 processed for delivery, piece 3 accepted, plus a tray event.
    let body = json!({
        "msgGrpId": "grp-e2e-1", "msgSerNbr": 1, "totMsgCnt": 1, "recCnt": 3,
        "events": [
            feed_piece_event(&pieces[2].0, "802021234", &later(26),
                       "918", "Phase 3c - Destination Sequenced Carrier Sortation"),
            feed_piece_event(&pieces[3].0, "80202", &later(4), "271", "Phase 1 - Origin Processing"),
            {"imtb": "802661231123456000000011", "imtbMid": "123456",
             "scanDatetime": later(4), "scanEventCode": "271"},
        ]
    })
    .to_string();
    let url = format!("http://127.0.0.1:{port}/iv/feed");
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let refused = agent
        .post(&url)
        .header("Authorization", basic("usps-feed", "wrong"))
        .header("Content-Type", "application/json")
        .send(body.as_str())
        .expect("push reply");
    assert_eq!(refused.status().as_u16(), 401);
    for delivery in 0..2 {
        let mut pushed = agent
            .post(&url)
            .header("Authorization", basic("usps-feed", PUSH_PASSWORD))
            .header("Content-Type", "application/json")
            .send(body.as_str())
            .expect("push reply");
        let text = pushed.body_mut().read_to_string().expect("push body");
        assert_eq!(pushed.status().as_u16(), 200, "{text}");
        let counts: Value = serde_json::from_str(&text).expect("push reply JSON");
        if delivery == 0 {
            assert_eq!(counts["inserted"], 2, "{counts}");
            assert_eq!(counts["skipped"], 1, "{counts}");
        } else {
            assert_eq!(counts["already_received"], 1, "redelivery: {counts}");
            assert_eq!(counts["inserted"], 0, "redelivery: {counts}");
        }
    }

    // Import: piece 4 in transit.
    let imported = d.request(json!({
        "op": "tracking_import", "source": "feed-e2e.json",
        "events": [feed_piece_event(&pieces[4].0, "80202", &later(12), "895", "Phase 2b - Destination SCF")]
    }));
    assert_eq!(imported["ok"], true, "{imported}");
    assert_eq!(imported["inserted"], 1, "{imported}");
    let bad = d.request(json!({
        "op": "tracking_import",
        "events": [{"imbTrackingCode": "123", "scanDatetime": later(1), "scanEventCode": "895"}]
    }));
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["error"]["code"], "bad_field", "{bad}");
    assert_eq!(bad["error"]["field"], "events[0].imbTrackingCode", "{bad}");

    // Piece 5 gets nothing: move its print ten days back, as if time had passed.
    let spool = rusqlite::Connection::open(dir.join("spool.sqlite")).expect("spool");
    spool
        .busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    spool
        .execute(
            "UPDATE print_log SET printed_at = printed_at - 864000000 WHERE tracking = ?1",
            [&pieces[5].0],
        )
        .expect("age piece 5");

    let state = |i: usize| -> String {
        let reply = d.request(json!({"op": "track", "piece": pieces[i].0}));
        reply["piece"]["state"].as_str().unwrap_or("").to_owned()
    };
    wait_for("piece 0 processed for delivery by polling", &d, || {
        state(0) == "processed_for_delivery"
    });
    wait_for("piece 1 accepted by polling", &d, || state(1) == "accepted");
    wait_for("piece 5 stalled event", &d, || {
        states_of(&events, pieces[5].2).contains(&"stalled".to_owned())
    });

    // One piece in full, by bare serial (one Mailer ID is configured).
    let tracked = d.request(json!({"op": "track", "piece": pieces[0].2.to_string()}));
    assert_eq!(tracked["ok"], true, "{tracked}");
    let piece = &tracked["piece"];
    assert_eq!(piece["tracking"], pieces[0].0.as_str());
    assert_eq!(piece["prints"].as_array().map(Vec::len), Some(1), "{piece}");
    assert_eq!(
        piece["prints"][0]["recipient"],
        "RECIPIENT 0 / 1 MAIN ST / DENVER CO 80202"
    );
    let codes: Vec<&str> = piece["scans"]
        .as_array()
        .expect("scans")
        .iter()
        .map(|s| s["event_code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(codes, ["271", "895", "918"], "{piece}");
    assert_eq!(piece["scans"][2]["facility"]["state"], "CO");
    let unknown = d.request(json!({"op": "track", "piece": "00270123456999999999"}));
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");

    // The report: every state, the stalled piece, durations.
    let report = d.request(json!({"op": "tracking_report", "job_id": "tracked", "pieces": true}));
    assert_eq!(report["ok"], true, "{report}");
    let report = &report["report"];
    assert_eq!(report["pieces"], 6, "{report}");
    let counts = &report["counts"];
    let expected = json!({"printed": 0, "accepted": 2, "in_transit": 1,
                          "processed_for_delivery": 2, "delivered": 0, "stalled": 1});
    assert_eq!(counts, &expected, "{report}");
    let stalled = report["stalled"].as_array().expect("stalled");
    assert_eq!(stalled.len(), 1, "{report}");
    assert_eq!(stalled[0]["tracking"], pieces[5].0.as_str());
    assert_eq!(report["print_to_processed"]["count"], 2, "{report}");
    assert_eq!(report["rows"].as_array().map(Vec::len), Some(6), "{report}");

    // Events: every piece's way, in order.
    let want: BTreeMap<usize, Vec<&str>> = BTreeMap::from([
        (0, vec!["accepted", "processed_for_delivery"]),
        (1, vec!["accepted"]),
        (2, vec!["processed_for_delivery"]),
        (3, vec!["accepted"]),
        (4, vec!["in_transit"]),
        (5, vec!["stalled"]),
    ]);
    for (i, states) in want {
        wait_for(&format!("events of piece {i}: {states:?}"), &d, || {
            states_of(&events, pieces[i].2) == states
        });
    }
    let first = events
        .lock()
        .expect("events")
        .iter()
        .find(|e| e["serial"] == pieces[0].2)
        .cloned()
        .expect("event");
    assert_eq!(first["event"], "tracking");
    assert_eq!(first["job_id"], "tracked");
    assert_eq!(first["tracking"], pieces[0].0.as_str());
    assert_eq!(first["from"], "printed");

    // Every lookup carried a bearer token from the stand-in, never a password.
    let lookups: Vec<_> = iv
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/piece/imb/"))
        .collect();
    assert!(
        lookups.len() >= 3,
        "at least two polls of piece 0 and one of piece 1"
    );
    assert!(lookups.iter().all(|r| r
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer "))));

    // No secret anywhere: log, replies, events.
    let mut everything = d.log();
    everything.push_str(&tracked.to_string());
    everything.push_str(&report.to_string());
    for e in events.lock().expect("events").iter() {
        everything.push_str(&e.to_string());
    }
    let tokens = iv.issued_tokens();
    assert!(!tokens.is_empty(), "the daemon logged in");
    for secret in
        tokens
            .iter()
            .map(String::as_str)
            .chain([IV_PASSWORD, PUSH_PASSWORD, TOKEN_PREFIX])
    {
        assert!(
            !everything.contains(secret),
            "a secret ({}…) leaked:\n{everything}",
            &secret[..4]
        );
    }
}

/// Tracking turned on without readable credentials stops labeld at start with an
/// error naming what is missing; `--check-config` says the same, and a credentials
/// file others can read is refused.
#[test]
fn tracking_without_usable_credentials_stops_the_start_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("labeld-tracking-creds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("labeld.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_labeld"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("LABELD_IV_USERNAME")
            .env_remove("LABELD_IV_PASSWORD")
            .env_remove("LABELD_STATE_DIR")
            .env_remove("STATE_DIRECTORY")
            .output()
            .expect("run labeld")
    };
    let extra = "\n[tracking]\nenabled = true\ncredentials_file = \"iv.toml\"\n";
    std::fs::write(&config, config_text(&dir, extra)).expect("config");

    for args in [&["--check-config"][..], &[][..]] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail:\n{stderr}");
        assert!(
            stderr.contains("iv.toml"),
            "{args:?} names the file:\n{stderr}"
        );
    }

    std::fs::write(
        dir.join("iv.toml"),
        format!("username = \"mailroom\"\npassword = \"{IV_PASSWORD}\"\n"),
    )
    .expect("credentials");
    std::fs::set_permissions(dir.join("iv.toml"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = run(&["--check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 0644 credentials file is refused");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains(IV_PASSWORD), "{stderr}");

    std::fs::set_permissions(dir.join("iv.toml"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let out = run(&["--check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("as mailroom"), "{stdout}");
    assert!(!stdout.contains(IV_PASSWORD), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `track` with `refresh` asks IV-MTR at once (the one-click lookup), without
/// waiting for the poller, whose first poll here is hours away.
#[test]
fn track_with_refresh_looks_the_piece_up_now() {
    let iv = StandIn::start();
    iv.add_user("mailroom", IV_PASSWORD);
    let dir = std::env::temp_dir().join(format!("labeld-tracking-refresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    write_private(
        &dir.join("iv.toml"),
        &format!("username = \"mailroom\"\npassword = \"{IV_PASSWORD}\"\n"),
    );
    let tracking = format!(
        "\n[tracking]\nenabled = true\noauth_url = \"{}\"\napi_url = \"{}\"\n\
         credentials_file = \"iv.toml\"\n[[tracking.poll]]\nevery_minutes = 600\n",
        iv.oauth_url(),
        iv.api_url()
    );
    let d = Daemon::start_with(dir.clone(), &config_text(&dir, &tracking));
    let reply = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "one",
        "job": {"template": "address", "size": "4x6",
                "to": ["ONE PIECE", "1 MAIN ST", "DENVER CO 80202"],
                "imb": {"mailer_id": "123456", "service_type": "270", "routing": "80202"}}
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    d.wait_done("one", WAIT);
    let log = d.request(json!({"op": "log", "since_ms": 0}));
    let row = &log["rows"][0];
    let tracking_code = row["tracking"].as_str().expect("tracking").to_owned();
    let printed_at = row["printed_at_ms"].as_i64().expect("printed_at_ms");
    iv.add_scans(
        &format!("{tracking_code}80202"),
        vec![
            origin_scan(&scan_time(printed_at + 3_600_000)),
            dbcs_918_scan(&scan_time(printed_at + 30 * 3_600_000)),
        ],
    );

    let stored = d.request(json!({"op": "track", "piece": tracking_code}));
    assert_eq!(stored["piece"]["state"], "printed", "{stored}");
    assert_eq!(stored["piece"]["scans"].as_array().map(Vec::len), Some(0));

    let fresh = d.request(json!({"op": "track", "piece": tracking_code, "refresh": true}));
    assert_eq!(fresh["ok"], true, "{fresh}");
    assert!(fresh.get("refresh_error").is_none(), "{fresh}");
    assert_eq!(fresh["piece"]["state"], "processed_for_delivery", "{fresh}");
    assert_eq!(fresh["piece"]["scans"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        iv.count("GET", &format!("{tracking_code}80202")),
        1,
        "one lookup"
    );

    // IV-MTR down: the stored answer comes back with the reason.
    iv.expire_all_tokens();
    iv.add_user("mailroom", "changed-elsewhere");
    let failed = d.request(json!({"op": "track", "piece": tracking_code, "refresh": true}));
    assert_eq!(failed["ok"], true, "{failed}");
    assert_eq!(failed["piece"]["state"], "processed_for_delivery");
    let why = failed["refresh_error"].as_str().expect("refresh_error");
    assert!(
        !why.contains(IV_PASSWORD) && !why.contains("changed-elsewhere"),
        "{why}"
    );
}
