//! The documented job API against the code: every JSON example in
//! `docs/protocol.md` is parsed as labeld parses it and follows
//! `docs/protocol.schema.json`; the schema accepts every event and reply the code
//! produces, from constructed values and from a real labeld; and the documented
//! Python client (`examples/client.py`) runs against a real labeld.
//!
//! The schema checks use Python's `jsonschema` and the client needs `pyzmq`
//! (`python3 -m pip install pyzmq jsonschema`). When either is missing those tests
//! print a skip note and pass, unless `LABELD_REQUIRE_TOOLS=1` (CI), when they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use labeld::client::Subscriber;
use labeld::events::{Event, PrinterState};
use labeld::protocol::{parse_request, ClientId, ErrorCode, Limits, ProtocolError, Reply, OPS};
use labeld::spool::{Accepted, AssignedSerial};
use labeld::tracking::store::PieceState;
use serde_json::{json, Value};

use crate::harness::Daemon;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The JSON values of every ```json block of the protocol doc, in order. A block may
/// hold several values (a request and its reply, a run of events).
fn doc_examples() -> Vec<Value> {
    let doc = read("docs/protocol.md");
    let mut values = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("closed json block");
        for value in serde_json::Deserializer::from_str(&body[..end]).into_iter::<Value>() {
            let value = value.unwrap_or_else(|e| panic!("json block: {e}\n{}", &body[..end]));
            values.push(value);
        }
        rest = &body[end + 3..];
    }
    values
}

/// Which schema definition a value is an example of.
fn kind_of(value: &Value) -> &'static str {
    if value.get("op").is_some() {
        "request"
    } else if value.get("ok").is_some() {
        "reply"
    } else if value.get("event").is_some() {
        "event"
    } else {
        panic!(
            "a json block in docs/protocol.md is neither a request, a reply nor an event: {value}"
        )
    }
}

/// One event of every kind, as the daemon publishes them.
fn every_event() -> Vec<Event> {
    let job_id = || "order-4711".to_owned();
    let printer = || "zebra-1".to_owned();
    vec![
        Event::Accepted {
            job_id: job_id(),
            printer: printer(),
            labels: 2,
        },
        Event::Rendering {
            job_id: job_id(),
            labels: vec![0, 1],
        },
        Event::Sent {
            job_id: job_id(),
            labels: vec![0],
            printer: printer(),
        },
        Event::Printed {
            job_id: job_id(),
            labels: vec![0],
            printer: printer(),
            confirmed: true,
        },
        Event::Failed {
            job_id: job_id(),
            labels: vec![1],
            reason: "head open".into(),
        },
        Event::Cancelled {
            job_id: job_id(),
            labels: 1,
        },
        Event::Done {
            job_id: job_id(),
            printed: 1,
            failed: 1,
            cancelled: 0,
        },
        Event::InFlight {
            job_id: job_id(),
            index: 1,
            reprinted: true,
            reason: "no label counter".into(),
        },
        Event::Progress {
            job_id: job_id(),
            done: 100,
            total: 10_000,
        },
        Event::Printer {
            printer: printer(),
            state: PrinterState::PaperOut,
            detail: "paper out".into(),
        },
        Event::SerialsLow {
            mailer_id: "123456".into(),
            left: 5,
            threshold: 10,
        },
        Event::Tracking {
            serial: 1,
            mailer_id: "123456".into(),
            tracking: "00270123456000000001".into(),
            job_id: Some(job_id()),
            from: PieceState::InTransit,
            to: PieceState::ProcessedForDelivery,
        },
    ]
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_doc_examples_are_what_labeld_parses_and_sends() {
    let examples = doc_examples();
    let limits = Limits::default();
    let mut ops = BTreeSet::new();
    let mut event_keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut codes = BTreeSet::new();
    for value in &examples {
        match kind_of(value) {
            "request" => {
                let request = parse_request(value.to_string().as_bytes(), &limits)
                    .unwrap_or_else(|e| panic!("documented request is refused: {e}\n{value}"));
                ops.insert(request.op.name());
            }
            "reply" => {
                assert_eq!(value["v"], json!(1), "{value}");
                if value["ok"] == json!(false) {
                    let code = value["error"]["code"].as_str().expect("error code");
                    assert!(
                        ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                        "documented error code {code} does not exist"
                    );
                    codes.insert(code.to_owned());
                }
            }
            _ => {
                let kind = value["event"].as_str().expect("event kind").to_owned();
                event_keys.insert(kind, keys(value));
            }
        }
    }
    // Every op has an example request.
    assert_eq!(
        ops,
        OPS.iter().copied().collect::<BTreeSet<_>>(),
        "ops with an example"
    );
    // Every event kind has an example with exactly the fields the code sends.
    let produced: BTreeMap<String, BTreeSet<String>> = every_event()
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_slice(&e.to_json()).expect("event json");
            (v["event"].as_str().expect("kind").to_owned(), keys(&v))
        })
        .collect();
    assert_eq!(event_keys, produced, "documented events vs events.rs");

    // The error table lists every code, and nothing else.
    let doc = read("docs/protocol.md");
    let table = &doc[doc.find("### Error codes").expect("error table")..];
    let listed: BTreeSet<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, all, "error code table");
    assert!(codes.len() >= 3, "error reply examples: {codes:?}");

    // The schema knows the same ops, codes and events.
    let schema: Value = serde_json::from_str(&read("docs/protocol.schema.json")).expect("schema");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let defs = schema["$defs"].as_object().expect("$defs");
    let schema_codes: BTreeSet<&str> = schema["$defs"]["error_code"]["enum"]
        .as_array()
        .expect("error_code enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(schema_codes, all, "schema error codes");
    for op in OPS {
        assert_eq!(
            defs[&format!("request_{op}")]["properties"]["op"]["const"],
            json!(op),
            "schema has no request_{op}"
        );
    }
    for (kind, fields) in &produced {
        let def = &defs[&format!("event_{kind}")];
        assert_eq!(&keys(&def["properties"]), fields, "schema event_{kind}");
    }
}

// ---------------------------------------------------------------------------
// Python: jsonschema and the client.

/// Checks that `python3` can import `modules`. `false` (after a skip note) when it
/// cannot, unless `LABELD_REQUIRE_TOOLS=1`, when the test fails.
fn python_has(modules: &[&str], what: &str) -> bool {
    let imports = format!("import {}", modules.join(", "));
    let ok = Command::new("python3")
        .args(["-c", &imports])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let hint = format!(
        "python3 with {} not found (python3 -m pip install {})",
        modules.join(" and "),
        modules
            .iter()
            .map(|m| if *m == "zmq" { "pyzmq" } else { m })
            .collect::<Vec<_>>()
            .join(" ")
    );
    if std::env::var_os("LABELD_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{hint} (LABELD_REQUIRE_TOOLS=1)");
    }
    eprintln!("\n*** SKIPPED: {hint}; {what} was not checked ***\n");
    false
}

/// Validates each value against `protocol.schema.json#/$defs/<kind>` (the label job
/// schema is loaded beside it for `job`).
const VALIDATE_PY: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
docs = sys.argv[1]
def load(name):
    with open(f"{docs}/{name}") as f:
        return json.load(f)
protocol, label_job = load("protocol.schema.json"), load("label-job.schema.json")
Draft202012Validator.check_schema(protocol)
registry = Registry().with_resources(
    [(s["$id"], Resource.from_contents(s)) for s in (protocol, label_job)])
instances = json.load(sys.stdin)
def leaves(error):
    if not error.context:
        yield error
    for sub in error.context or []:
        yield from leaves(sub)
bad = 0
for kind, values in instances.items():
    validator = Draft202012Validator(
        {"$ref": f"protocol.schema.json#/$defs/{kind}"}, registry=registry)
    for value in values:
        errors = list(validator.iter_errors(value))
        if errors:
            bad += 1
            print(f"{kind} does not follow the schema: {json.dumps(value)[:400]}")
            deepest = sorted((l for e in errors for l in leaves(e)),
                             key=lambda l: -len(l.absolute_path))
            for leaf in deepest[:4]:
                path = "/".join(map(str, leaf.absolute_path)) or "(root)"
                print(f"  at {path}: {leaf.message[:300]}")
total = sum(map(len, instances.values()))
print(f"{total} checked, {bad} invalid")
sys.exit(1 if bad else 0)
"#;

fn validate(instances: &BTreeMap<&str, Vec<Value>>) {
    let mut child = Command::new("python3")
        .args(["-c", VALIDATE_PY, &format!("{ROOT}/docs")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(instances).expect("json");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&input).expect("write instances");
    }
    let out = child.wait_with_output().expect("python3 finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schema validation failed:\n{text}");
    eprintln!("{}", text.trim_end());
}

#[test]
fn the_schema_accepts_the_doc_examples_and_what_the_code_produces() {
    if !python_has(&["jsonschema", "referencing"], "docs/protocol.schema.json") {
        return;
    }
    let mut instances: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for value in doc_examples() {
        instances.entry(kind_of(&value)).or_default().push(value);
    }
    for event in every_event() {
        let value = serde_json::from_slice(&event.to_json()).expect("event json");
        instances.entry("event").or_default().push(value);
    }
    // An error reply of every code, with and without an id and a field.
    for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
        let field = (i % 2 == 0).then_some("records[3].imb.mailer_id");
        let id = match i % 3 {
            0 => None,
            1 => Some(ClientId::Int(-7)),
            _ => Some(ClientId::Str("c-17".into())),
        };
        let err = ProtocolError::new(code, field, "what is wrong").with_id(id);
        instances
            .entry("reply")
            .or_default()
            .push(Reply::error(&err).to_value());
    }
    let accepted = Accepted {
        job_id: "order-4711".into(),
        label_count: 2,
        serials: vec![AssignedSerial {
            index: 1,
            mailer_id: "987654321".into(),
            serial: 999_999,
            tracking: "00270987654321999999".into(),
        }],
        warnings: Vec::new(),
        replayed: true,
    };
    instances
        .entry("reply")
        .or_default()
        .push(Reply::accepted(Some(ClientId::Int(1)), accepted).to_value());
    validate(&instances);
}

/// What a real labeld answers and publishes, request by request, follows the schema.
#[test]
fn a_real_labeld_replies_and_publishes_as_the_schema_says() {
    if !python_has(&["jsonschema", "referencing"], "labeld's live replies") {
        return;
    }
    let daemon = Daemon::start("");
    let mut events =
        Subscriber::connect(&daemon.events, &[""], Duration::from_secs(10)).expect("subscribe");
    let mut client = daemon.client();
    let mut replies = Vec::new();
    let mut ask = |request: Value| -> Value {
        let reply = client.request(request.clone()).expect("reply");
        replies.push(reply.clone());
        reply
    };
    // Let the subscription reach labeld before the first job (slow joiner).
    ask(json!({"op": "health"}));
    std::thread::sleep(Duration::from_millis(200));

    let job = json!({"template": "address", "size": "4x6",
        "imb": {"mailer_id": "123456", "service_type": "270", "routing": "987654321"},
        "to": ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"]});
    let submit = json!({"op": "submit", "printer": "preview", "job_id": "schema-1", "job": job});
    let first = ask(submit.clone());
    assert_eq!(first["ok"], json!(true), "{first}");
    assert_eq!(ask(submit)["replayed"], json!(true));
    // A client-chosen serial (outside this host's ranges), and a batch with a label
    // without an IMb.
    let own = json!({"template": "address", "size": "4x6",
        "imb": {"tracking": "00270654321000000001", "routing": "98765"},
        "to": ["JANE ROE", "PO BOX 12", "ANYTOWN ST 98765"]});
    let reply =
        ask(json!({"op": "submit", "printer": "zpl-file", "job_id": "schema-own", "job": own}));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    // A client serial inside the host's range is refused.
    let mut inside = own.clone();
    inside["imb"]["tracking"] = json!("00270123456200800001");
    let reply = ask(json!({"op": "submit", "printer": "zpl-file", "job": inside}));
    assert_eq!(reply["error"]["code"], json!("conflict"), "{reply}");
    ask(
        json!({"op": "submit_batch", "printer": "zpl-file", "job_id": "schema-batch",
        "template": {"template": "address", "size": "4x6"},
        "records": [{"to": ["A ONE", "1 MAIN ST"]},
                    {"to": ["B TWO", "2 MAIN ST"],
                     "imb": {"mailer_id": "123456", "service_type": "270", "routing": "98765"}}]}),
    );
    daemon.wait_done("schema-1", Duration::from_secs(60));
    daemon.wait_done("schema-batch", Duration::from_secs(60));
    daemon.wait_done("schema-own", Duration::from_secs(60));
    ask(json!({"op": "status", "job_id": "schema-own"}));
    ask(json!({"op": "status", "job_id": "schema-1"}));
    ask(json!({"op": "status", "job_id": "schema-batch"}));
    let counts = ask(json!({"op": "status", "job_id": "schema-batch", "labels": false}));
    assert!(counts.get("labels").is_none(), "{counts}");
    assert_eq!(counts["progress"]["total"], json!(2), "{counts}");
    let reprint = ask(json!({"op": "reprint", "job_id": "schema-1", "serials": "same"}));
    if let Some(id) = reprint["job_id"].as_str() {
        daemon.wait_done(id, Duration::from_secs(60));
    }
    ask(json!({"op": "pause", "printer": "zpl-file"}));
    ask(json!({"op": "submit", "printer": "zpl-file", "job_id": "schema-held", "job": job}));
    ask(json!({"op": "cancel", "job_id": "schema-held"}));
    ask(json!({"op": "status", "job_id": "schema-held"}));
    ask(json!({"op": "resume", "printer": "zpl-file"}));
    ask(json!({"op": "printers"}));
    let log = ask(json!({"op": "log", "limit": 10}));
    // Tracking: a scan for a printed piece (publishes `tracking.<serial>`), the piece,
    // the job's report.
    let printed = log["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find_map(|r| r["tracking"].as_str()))
        .expect("a printed piece with an IMb")
        .to_owned();
    let imported = ask(
        json!({"op": "tracking_import", "source": "schema.json", "events": [{
        "imbTrackingCode": printed, "routingCodeImbMatchingPortion": "98765",
        "scanDatetime": "2026-11-20 08:15:00", "scanEventCode": "918",
        "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
        "handlingEventType": "L", "scanFacilityState": "CO", "scanFacilityZip": "80266"}]}),
    );
    assert_eq!(imported["ok"], json!(true), "{imported}");
    ask(json!({"op": "track", "piece": printed}));
    ask(json!({"op": "tracking_report", "job_id": "schema-1", "pieces": true}));
    ask(json!({"op": "track", "piece": "00270123456999999999"}));
    ask(json!({"op": "health"}));
    // Errors.
    ask(json!({"op": "status", "job_id": "no-such-job"}));
    ask(json!({"op": "submit", "printer": "nope", "job": job}));
    ask(json!({"op": "fly"}));
    ask(json!({"v": 2, "op": "health"}));

    let mut published = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match events
            .next(Duration::from_millis(200))
            .expect("event socket")
        {
            Some(received) => {
                let topic_ok = ["job.", "printer.", "serials.", "tracking."]
                    .iter()
                    .any(|p| received.topic.starts_with(p));
                assert!(topic_ok, "topic {}", received.topic);
                published.push(received.event);
            }
            None => break,
        }
    }
    assert!(
        published.iter().any(|e| e["event"] == "printed"),
        "no printed event among {published:?}"
    );
    let mut instances: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    instances.insert("reply", replies);
    instances.insert("event", published);
    validate(&instances);
}

/// A REQ socket, then a DEALER sending `["", json]`: both get their `health` reply.
const REQ_PY: &str = r#"
import json, sys, zmq
ctx = zmq.Context()
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.RCVTIMEO, 30000)
req.setsockopt(zmq.LINGER, 0)
req.connect(sys.argv[1])
req.send(json.dumps({"v": 1, "id": "req-1", "op": "health"}).encode())
reply = json.loads(req.recv())
assert reply["ok"] is True and reply["id"] == "req-1", reply
dealer = ctx.socket(zmq.DEALER)
dealer.setsockopt(zmq.RCVTIMEO, 30000)
dealer.setsockopt(zmq.LINGER, 0)
dealer.connect(sys.argv[1])
dealer.send_multipart([b"", json.dumps({"v": 1, "id": 2, "op": "health"}).encode()])
frames = dealer.recv_multipart()
assert len(frames) == 2 and frames[0] == b"", frames
assert json.loads(frames[1])["id"] == 2, frames
print("REQ and DEALER-with-delimiter ok")
"#;

/// `python3 examples/client.py` against a real labeld, as `docs/protocol.md` says.
#[test]
fn the_python_client_runs_against_labeld() {
    if !python_has(&["zmq"], "examples/client.py") {
        return;
    }
    let daemon = Daemon::start("");
    let script: PathBuf = Path::new(ROOT).join("examples/client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--requests", &daemon.requests])
        .args(["--events", &daemon.events])
        .args(["--printer", "preview"])
        .args(["--job-prefix", "pyclient"])
        .args(["--timeout", "60"])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client.py exited {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- labeld\n{}",
        out.status,
        daemon.log()
    );
    let expected = [
        "health: ok",
        "printers: preview=",
        "submitted pyclient-1: 1 label, serial 123456/",
        "resubmitted pyclient-1: replayed, same serial 123456/",
        "changed request under pyclient-1: conflict (field job_id)",
        "pyclient-1: printed (1 of 1)",
        "reprinted pyclient-1 as ",
        "paused preview",
        "submitted pyclient-2: 1 label",
        "cancelled pyclient-2: 1 label",
        "resumed preview",
        "status of an unknown job: not_found",
        "all steps passed",
    ];
    let mut lines = stdout.lines();
    for want in expected {
        assert!(
            lines.any(|l| l.starts_with(want)),
            "client.py output lacks (in order) a line starting {want:?}:\n{stdout}"
        );
    }
    // REQ framing works too, and a DEALER that adds the empty delimiter itself gets it
    // back, as the doc says.
    let out = Command::new("python3")
        .args(["-c", REQ_PY, &daemon.requests])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "REQ/DEALER framing:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The serial the client was given is the first of the range, and the resubmit
    // did not take another: the reprint got the second.
    assert!(
        stdout.contains("serial 123456/1 (00270123456000000001)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("new serial 123456/2 (00270123456000000002)"),
        "{stdout}"
    );
}
