//! labeld end to end over real ZeroMQ sockets: submit, serials, idempotency, cancel,
//! reprint, pause/resume, reload, stop, and a table of hostile requests that each get
//! a typed error while the daemon keeps serving.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::Daemon;

const WAIT: Duration = Duration::from_secs(60);

/// An address job whose serial labeld allocates.
fn address_job(name: &str) -> Value {
    json!({
        "template": "address", "size": "4x6",
        "imb": {"mailer_id": "123456", "service_type": "270", "routing": "987654321"},
        "to": [name, "123 MAIN ST", "ANYTOWN ST 98765-4321"],
        "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"]
    })
}

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_submitted_label_is_printed_with_an_allocated_serial() {
    let d = Daemon::start("");
    let reply = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "first", "job": address_job("JANE ROE")
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["job_id"], "first");
    assert_eq!(reply["label_count"], 1);
    let serial = &reply["serials"][0];
    assert_eq!(serial["mailer_id"], "123456");
    let tracking = serial["tracking"].as_str().expect("tracking");
    assert_eq!(tracking.len(), 20);
    assert!(tracking.starts_with("00270123456"), "{tracking}");

    let status = d.wait_done("first", WAIT);
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["progress"]["printed"], 1, "{status}");
    let files = files_in(&d.dir.join("zpl"));
    assert_eq!(files.len(), 1, "{files:?}");
    let zpl = std::fs::read(&files[0]).expect("zpl file");
    assert!(zpl.starts_with(b"^XA") || zpl.windows(3).any(|w| w == b"^XA"));

    // The same job id again: the first answer, nothing printed twice.
    let again = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "first", "job": address_job("JANE ROE")
    }));
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(again["replayed"], true);
    assert_eq!(again["serials"], reply["serials"]);
    // A different request under the same id is a conflict.
    let clash = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "first", "job": address_job("JOHN DOE")
    }));
    assert_eq!(clash["error"]["code"], "conflict", "{clash}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files_in(&d.dir.join("zpl")).len(), 1);

    // A second job gets the next serial.
    let second = d.request(json!({
        "op": "submit", "printer": "preview", "job": address_job("JOHN DOE")
    }));
    assert_eq!(second["ok"], true, "{second}");
    let s1 = serial["serial"].as_u64().expect("serial");
    let s2 = second["serials"][0]["serial"].as_u64().expect("serial");
    assert!(s2 > s1, "{s1} then {s2}");
    let id = second["job_id"].as_str().expect("generated id").to_owned();
    d.wait_done(&id, WAIT);
    let pngs = files_in(&d.dir.join("preview"));
    assert_eq!(pngs.len(), 1);
    let png = std::fs::read(&pngs[0]).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // The print log has both pieces with their tracking codes.
    let log = d.request(json!({"op": "log", "since_ms": 0}));
    assert_eq!(log["ok"], true, "{log}");
    let rows = log["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{log}");
    assert_eq!(rows[0]["tracking"], tracking);
    assert_eq!(
        rows[0]["recipient"],
        "JANE ROE / 123 MAIN ST / ANYTOWN ST 98765-4321"
    );
}

#[test]
fn a_batch_prints_every_record_in_order_and_reports_progress() {
    let d = Daemon::start("");
    let records: Vec<Value> = (0..40)
        .map(|i| {
            json!({"to": [format!("RECIPIENT {i:04}"), "1 MAIN ST", "ANYTOWN ST 98765"],
                   "imb": {"mailer_id": "123456", "service_type": "270", "routing": "98765"}})
        })
        .collect();
    let reply = d.request(json!({
        "op": "submit_batch", "printer": "zpl-file", "job_id": "batch-1",
        "template": {"template": "address", "size": "4x6"},
        "records": records
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["label_count"], 40);
    let serials: Vec<u64> = reply["serials"]
        .as_array()
        .expect("serials")
        .iter()
        .map(|s| s["serial"].as_u64().expect("serial"))
        .collect();
    assert!(serials.windows(2).all(|w| w[1] == w[0] + 1), "{serials:?}");
    let status = d.wait_done("batch-1", WAIT);
    assert_eq!(status["progress"]["printed"], 40, "{status}");
    assert_eq!(files_in(&d.dir.join("zpl")).len(), 40);
}

#[test]
fn cancel_reprint_pause_and_resume() {
    let d = Daemon::start("");
    let paused = d.request(json!({"op": "pause", "printer": "zpl-file"}));
    assert_eq!(paused["ok"], true, "{paused}");
    let reply = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "held", "job": address_job("HELD")
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        files_in(&d.dir.join("zpl")).is_empty(),
        "printed while paused"
    );
    let printers = d.request(json!({"op": "printers"}));
    let zpl = printers["printers"]
        .as_array()
        .expect("printers")
        .iter()
        .find(|p| p["name"] == "zpl-file")
        .expect("zpl-file listed")
        .clone();
    assert_eq!(zpl["paused"], true, "{printers}");

    // Cancel while held: nothing prints, the serial stays used.
    let cancel = d.request(json!({"op": "cancel", "job_id": "held"}));
    assert_eq!(cancel["ok"], true, "{cancel}");
    assert_eq!(cancel["cancelled"], 1, "{cancel}");
    let resumed = d.request(json!({"op": "resume", "printer": "zpl-file"}));
    assert_eq!(resumed["ok"], true, "{resumed}");
    let next = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "after", "job": address_job("AFTER")
    }));
    assert!(
        next["serials"][0]["serial"].as_u64() > reply["serials"][0]["serial"].as_u64(),
        "a cancelled job's serial is never reused: {reply} then {next}"
    );
    d.wait_done("after", WAIT);
    assert_eq!(files_in(&d.dir.join("zpl")).len(), 1);

    // Reprint: the same serials (the same pieces again) or new ones.
    let same = d.request(json!({"op": "reprint", "job_id": "after", "serials": "same"}));
    assert_eq!(same["ok"], true, "{same}");
    assert_eq!(
        same["serials"][0]["tracking"],
        next["serials"][0]["tracking"]
    );
    let new = d.request(json!({"op": "reprint", "job_id": "after", "serials": "new"}));
    assert_eq!(new["ok"], true, "{new}");
    assert_ne!(
        new["serials"][0]["tracking"],
        next["serials"][0]["tracking"]
    );
    for r in [&same, &new] {
        d.wait_done(r["job_id"].as_str().expect("reprint id"), WAIT);
    }
    assert_eq!(files_in(&d.dir.join("zpl")).len(), 3);
    let unknown = d.request(json!({"op": "reprint", "job_id": "nope", "serials": "new"}));
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");
}

#[test]
fn sigterm_stops_cleanly_and_the_queue_survives_a_restart() {
    let mut d = Daemon::start("");
    d.request(json!({"op": "pause", "printer": "preview"}));
    let reply = d.request(json!({
        "op": "submit", "printer": "preview", "job_id": "survivor", "job": address_job("KEPT")
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    let status = d.stop().expect("exit status");
    assert!(status.success(), "{status}\n{}", d.log());
    assert!(d.log().contains("labeld stopped"), "{}", d.log());
    d.restart();
    // The pause survived too; resume and the job prints.
    let s = d.request(json!({"op": "status", "job_id": "survivor"}));
    assert_eq!(s["progress"]["queued"], 1, "{s}");
    d.request(json!({"op": "resume", "printer": "preview"}));
    d.wait_done("survivor", WAIT);
}

#[test]
fn sighup_reloads_printers_without_dropping_queued_jobs() {
    let d = Daemon::start("");
    d.request(json!({"op": "pause", "printer": "zpl-file"}));
    let reply = d.request(json!({
        "op": "submit", "printer": "zpl-file", "job_id": "queued", "job": address_job("Q")
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    let extra = "[[printer]]\nname = \"second\"\nmodel = \"epl-203\"\nuri = \"file:epl/\"\n";
    d.write_config(&crate::harness::config_text(&d.dir, extra));
    d.signal(libc::SIGHUP);
    let mut found = false;
    for _ in 0..200 {
        let p = d.request(json!({"op": "printers"}));
        if p["printers"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "second"))
        {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(found, "reload did not add the printer\n{}", d.log());
    d.request(json!({"op": "resume", "printer": "zpl-file"}));
    d.wait_done("queued", WAIT);
    let epl = d.request(json!({
        "op": "submit", "printer": "second", "job_id": "on-second", "job": address_job("E")
    }));
    assert_eq!(epl["ok"], true, "{epl}");
    d.wait_done("on-second", WAIT);
    // A broken file keeps the running configuration.
    d.write_config("this is not toml [");
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let h = d.request(json!({"op": "health"}));
    assert_eq!(h["ok"], true, "{h}");
    assert!(d.log().contains("reload failed"), "{}", d.log());
}

/// One hostile or malformed request and the error code it must get.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    code: &'static str,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, code: &'static str) -> Case {
    Case {
        name,
        body: body.into(),
        code,
    }
}

fn submit_with(job: Value) -> String {
    json!({"v": 1, "op": "submit", "printer": "zpl-file", "job": job}).to_string()
}

fn job_with(key: &str, value: Value) -> String {
    let mut job = address_job("X");
    job[key] = value;
    submit_with(job)
}

fn imb_with(imb: Value) -> String {
    job_with("imb", imb)
}

fn hostile_requests() -> Vec<Case> {
    let big = "A".repeat(10 << 20);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let many_records: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    vec![
        case("empty frame", "", "malformed_json"),
        case("truncated json", r#"{"v":1,"op":"sub"#, "malformed_json"),
        case("not utf-8", vec![0xff, 0xfe, 0x7b, 0x7d], "malformed_json"),
        case("json array", "[1,2,3]", "malformed_json"),
        case("json null", "null", "malformed_json"),
        case("json string", "\"submit\"", "malformed_json"),
        case("json number", "42", "malformed_json"),
        case("nan token", r#"{"v":NaN,"op":"health"}"#, "malformed_json"),
        case("nested 5000 deep", deep, "malformed_json"),
        case("trailing garbage", r#"{"v":1,"op":"health"} x"#, "malformed_json"),
        case("missing v", r#"{"op":"health"}"#, "unsupported_version"),
        case("v 2", r#"{"v":2,"op":"health"}"#, "unsupported_version"),
        case("v string", r#"{"v":"1","op":"health"}"#, "unsupported_version"),
        case("v float", r#"{"v":1.5,"op":"health"}"#, "unsupported_version"),
        case("v huge", r#"{"v":1e400,"op":"health"}"#, "malformed_json"),
        case("v negative", r#"{"v":-1,"op":"health"}"#, "unsupported_version"),
        case("id object", r#"{"v":1,"id":{},"op":"health"}"#, "bad_field"),
        case("id huge number", r#"{"v":1,"id":1e30,"op":"health"}"#, "bad_field"),
        case(
            "id too long",
            format!(r#"{{"v":1,"id":"{}","op":"health"}}"#, "i".repeat(200)),
            "bad_field",
        ),
        case("op missing", r#"{"v":1}"#, "bad_field"),
        case("op number", r#"{"v":1,"op":5}"#, "bad_field"),
        case("op unknown", r#"{"v":1,"op":"format_disk"}"#, "unknown_op"),
        case("unknown top-level field", r#"{"v":1,"op":"health","x":1}"#, "bad_field"),
        case(
            "printer missing",
            json!({"v":1,"op":"submit","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer path traversal",
            json!({"v":1,"op":"submit","printer":"../../etc/passwd","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer absolute path",
            json!({"v":1,"op":"submit","printer":"/dev/usb/lp0","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer option-like",
            json!({"v":1,"op":"submit","printer":"-rf","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer with space",
            json!({"v":1,"op":"submit","printer":"zpl file","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer 65 chars",
            json!({"v":1,"op":"submit","printer":"p".repeat(65),"job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer number",
            json!({"v":1,"op":"submit","printer":7,"job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "printer unknown",
            json!({"v":1,"op":"submit","printer":"nope","job":address_job("X")}).to_string(),
            "unknown_printer",
        ),
        case(
            "job missing",
            json!({"v":1,"op":"submit","printer":"zpl-file"}).to_string(),
            "bad_field",
        ),
        case("job string", submit_with(json!("address")), "bad_field"),
        case(
            "template unknown",
            submit_with(json!({"template": "poster", "to": ["A"]})),
            "bad_field",
        ),
        case("job unknown field", job_with("colour", json!("red")), "bad_field"),
        case("to is a number", job_with("to", json!(5)), "bad_field"),
        case(
            "tracking 19 digits",
            imb_with(json!({"tracking": "0027012345620080000", "routing": ""})),
            "invalid_imb",
        ),
        case(
            "tracking with a letter",
            imb_with(json!({"tracking": "0027012345620080000A", "routing": ""})),
            "invalid_imb",
        ),
        case(
            "barcode id second digit 5",
            imb_with(json!({"tracking": "05270123456200800001", "routing": ""})),
            "invalid_imb",
        ),
        case(
            "routing 4 digits",
            imb_with(json!({"tracking": "00270123456200800001", "routing": "9876"})),
            "invalid_imb",
        ),
        case(
            "mailer id 5 digits",
            imb_with(json!({"mailer_id": "12345", "service_type": "270", "routing": ""})),
            "invalid_imb",
        ),
        case(
            "service type missing",
            imb_with(json!({"mailer_id": "123456", "routing": ""})),
            "bad_field",
        ),
        case(
            "both imb forms",
            imb_with(json!({"tracking": "00270123456200800001", "mailer_id": "123456", "routing": ""})),
            "bad_field",
        ),
        case(
            "no serial range for the mailer id",
            imb_with(json!({"mailer_id": "654321", "service_type": "270", "routing": ""})),
            "no_serial_range",
        ),
        case(
            "address does not fit",
            job_with("to", json!(vec!["W".repeat(80); 3])),
            "label_does_not_fit",
        ),
        case(
            "priority 10",
            json!({"v":1,"op":"submit","printer":"zpl-file","priority":10,"job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "priority huge",
            r#"{"v":1,"op":"submit","printer":"zpl-file","priority":1e20,"job":{}}"#,
            "bad_field",
        ),
        case(
            "priority string",
            json!({"v":1,"op":"submit","printer":"zpl-file","priority":"high","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "job id empty",
            json!({"v":1,"op":"submit","printer":"zpl-file","job_id":"","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "job id control character",
            json!({"v":1,"op":"submit","printer":"zpl-file","job_id":"a\u{1}b","job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "job id 200 bytes",
            json!({"v":1,"op":"submit","printer":"zpl-file","job_id":"j".repeat(200),"job":address_job("X")}).to_string(),
            "bad_field",
        ),
        case(
            "ten megabyte string",
            format!(r#"{{"v":1,"op":"submit","printer":"zpl-file","job":{{"template":"address","to":["{big}"]}}}}"#),
            "request_too_large",
        ),
        case(
            "batch without records",
            json!({"v":1,"op":"submit_batch","printer":"zpl-file","template":{"template":"address"},"records":[]}).to_string(),
            "bad_field",
        ),
        case(
            "batch too large",
            json!({"v":1,"op":"submit_batch","printer":"zpl-file","template":{"template":"address"},"records":many_records}).to_string(),
            "batch_too_large",
        ),
        case(
            "batch records not an array",
            json!({"v":1,"op":"submit_batch","printer":"zpl-file","template":{"template":"address"},"records":{}}).to_string(),
            "bad_field",
        ),
        case(
            "batch record not an object",
            json!({"v":1,"op":"submit_batch","printer":"zpl-file","template":{"template":"address"},"records":[1]}).to_string(),
            "bad_field",
        ),
        case(
            "batch record changes the template",
            json!({"v":1,"op":"submit_batch","printer":"zpl-file","template":{"template":"address"},"records":[{"template":"tray"}]}).to_string(),
            "bad_field",
        ),
        case(
            "status of an unknown job",
            r#"{"v":1,"op":"status","job_id":"never-submitted"}"#,
            "not_found",
        ),
        case("status without job id", r#"{"v":1,"op":"status"}"#, "bad_field"),
        case(
            "cancel unknown job",
            r#"{"v":1,"op":"cancel","job_id":"never-submitted"}"#,
            "not_found",
        ),
        case(
            "reprint serials maybe",
            r#"{"v":1,"op":"reprint","job_id":"x","serials":"maybe"}"#,
            "bad_field",
        ),
        case(
            "pause unknown printer",
            r#"{"v":1,"op":"pause","printer":"nope"}"#,
            "unknown_printer",
        ),
        case("resume without printer", r#"{"v":1,"op":"resume"}"#, "bad_field"),
        case("log limit 0", r#"{"v":1,"op":"log","limit":0}"#, "bad_field"),
        case("log limit huge", r#"{"v":1,"op":"log","limit":1e12}"#, "bad_field"),
        case(
            "log since a word",
            r#"{"v":1,"op":"log","since_ms":"yesterday"}"#,
            "bad_field",
        ),
        case("health with a field", r#"{"v":1,"op":"health","deep":true}"#, "bad_field"),
    ]
}

#[test]
fn hostile_requests_get_typed_errors_and_the_daemon_keeps_serving() {
    let d = Daemon::start("");
    let cases = hostile_requests();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut client = d.client();
    let mut wrong = Vec::new();
    for c in &cases {
        client.send_raw(c.body.clone()).expect("send");
        let reply = client
            .recv()
            .unwrap_or_else(|e| panic!("{}: no reply: {e}", c.name));
        let code = reply["error"]["code"]
            .as_str()
            .unwrap_or("(none)")
            .to_owned();
        if reply["ok"] != false || code != c.code {
            wrong.push(format!("{}: expected {}, got {reply}", c.name, c.code));
        }
        let message = reply["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{}: no message: {reply}", c.name);
        assert!(message.len() < 2000, "{}: message echoes the input", c.name);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Still serving, nothing was accepted or printed.
    let health = d.request(json!({"op": "health"}));
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["open_labels"], 0, "{health}");
    assert!(files_in(&d.dir.join("zpl")).is_empty());
}

#[test]
fn a_peer_announcing_a_huge_frame_is_cut_off_and_others_are_served() {
    use std::io::{Read, Write};
    let d = Daemon::start("");
    let path = d.requests.trim_start_matches("ipc://").to_owned();
    let mut peer = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    peer.set_read_timeout(Some(Duration::from_secs(5))).ok();
    // ZMTP 3.1 greeting, NULL mechanism, then a READY command as a DEALER.
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    let mut mechanism = b"NULL".to_vec();
    mechanism.resize(20, 0);
    greeting.extend(mechanism);
    greeting.push(0);
    greeting.extend([0u8; 31]);
    peer.write_all(&greeting).expect("greeting");
    let mut theirs = [0u8; 64];
    peer.read_exact(&mut theirs).expect("server greeting");
    let mut ready = vec![0x04];
    let mut body = vec![5];
    body.extend(b"READY");
    body.push(11);
    body.extend(b"Socket-Type");
    body.extend(6u32.to_be_bytes());
    body.extend(b"DEALER");
    ready.push(body.len() as u8);
    ready.extend(body);
    peer.write_all(&ready).expect("ready");
    // A message frame announcing 2^40 bytes.
    let mut frame = vec![0x02];
    frame.extend((1u64 << 40).to_be_bytes());
    frame.extend([b'{'; 64]);
    let _ = peer.write_all(&frame);
    // The connection is closed by labeld...
    let mut rest = Vec::new();
    let _ = peer.read_to_end(&mut rest);
    // ...and labeld is alive and serving others.
    let health = d.request(json!({"op": "health"}));
    assert_eq!(health["ok"], true, "{health}\n{}", d.log());
}

#[test]
fn sigterm_during_a_big_submit_answers_it_and_keeps_its_word() {
    let mut d = Daemon::start("");
    d.request(json!({"op": "pause", "printer": "zpl-file"}));
    let records: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"to": [format!("R{i}"), "1 MAIN ST"],
                        "imb": {"mailer_id": "123456", "service_type": "270", "routing": ""}})
        })
        .collect();
    let mut client = d.client();
    let Value::Object(batch) = json!({
        "op": "submit_batch", "printer": "zpl-file", "job_id": "big",
        "template": {"template": "address", "size": "4x6"}, "records": records
    }) else {
        unreachable!()
    };
    client.send(batch).expect("send");
    // Long enough for the ~2 MB request to arrive on a loaded machine (a request
    // still on the wire when the sockets close is not labeld's to answer), short
    // enough that checking and committing 10,000 records is still going on.
    std::thread::sleep(Duration::from_millis(300));
    d.signal(libc::SIGTERM);
    // Whatever the timing, the request is answered...
    let reply = client.recv().expect("a reply before the sockets close");
    let status = d.stop().expect("exit status");
    assert!(status.success(), "{status}\n{}", d.log());
    d.restart();
    // ...and the answer is the truth: accepted means in the spool, refused means not.
    let after = d.request(json!({"op": "status", "job_id": "big"}));
    if reply["ok"] == true {
        assert_eq!(after["progress"]["total"], 10_000, "{after}");
    } else {
        assert_eq!(reply["error"]["code"], "shutting_down", "{reply}");
        assert_eq!(after["error"]["code"], "not_found", "{after}");
    }
}

#[test]
fn labels_reach_a_tcp_and_a_serial_printer_and_a_paper_out_holds_the_queue() {
    use crate::emulator::{Fault, ZplPrinter};
    let tcp = ZplPrinter::tcp();
    let pty = ZplPrinter::serial();
    let extra = format!(
        "[[printer]]\nname = \"dock-tcp\"\nmodel = \"zebra-gk420d\"\nuri = \"{}\"\n\
         [[printer]]\nname = \"dock-serial\"\nmodel = \"zpl-203\"\nuri = \"{}\"\n",
        tcp.uri(),
        pty.uri()
    );
    let d = Daemon::start(&extra);
    let mut events = labeld::client::Subscriber::connect(&d.events, &["printer.dock-tcp"], WAIT)
        .expect("subscribe");
    for (printer, id) in [("dock-tcp", "to-tcp"), ("dock-serial", "to-serial")] {
        let r = d.request(json!({
            "op": "submit", "printer": printer, "job_id": id, "job": address_job("WIRE")
        }));
        assert_eq!(r["ok"], true, "{r}");
    }
    let tcp_done = d.wait_done("to-tcp", WAIT);
    assert_eq!(tcp_done["progress"]["printed"], 1, "{tcp_done}");
    d.wait_done("to-serial", WAIT);
    assert_eq!(tcp.printed().len(), 1);
    assert_eq!(pty.printed().len(), 1);

    // Paper out: the next label is held, the printer's state is published, and it
    // prints once the paper is back.
    tcp.set_fault(Some(Fault::PaperOut));
    let r = d.request(json!({
        "op": "submit", "printer": "dock-tcp", "job_id": "held", "job": address_job("HELD")
    }));
    assert_eq!(r["ok"], true, "{r}");
    let mut saw_paper_out = false;
    let deadline = std::time::Instant::now() + WAIT;
    while !saw_paper_out && std::time::Instant::now() < deadline {
        if let Ok(Some(e)) = events.next(Duration::from_millis(200)) {
            saw_paper_out = e.event["state"] == "paper_out";
        }
    }
    assert!(saw_paper_out, "no paper_out event\n{}", d.log());
    let s = d.request(json!({"op": "status", "job_id": "held"}));
    assert_ne!(
        s["progress"]["printed"], 1,
        "printed while out of paper: {s}"
    );
    tcp.set_fault(None);
    let s = d.wait_done("held", WAIT);
    assert_eq!(s["progress"]["printed"], 1, "{s}");
    assert_eq!(tcp.printed().len(), 2, "printed exactly once");
}
