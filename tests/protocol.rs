//! The job API's wire protocol: a table of malformed and hostile requests, each
//! mapped to its exact code and field; every op round-tripping; the error mapping
//! from layout, encoder and spool; reply shapes; and arbitrary bytes never panic.

use labeld::layout::{self, Job};
use labeld::protocol::{
    check, parse_request, ClientId, ErrorCode, Limits, Op, ProtocolError, Reply, Request, Serials,
};
use labeld::spool::{Accepted, AssignedSerial, SpoolError};
use proptest::prelude::*;
use serde_json::{json, Value};

const LIMITS: Limits = Limits {
    max_request_bytes: 1 << 20,
    max_batch_labels: 100,
};

const ADDRESS: &str = r#"{"template":"address","size":"4x6","imb":{"tracking":"00270123456200800001","routing":"987654321"},"to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765-4321"]}"#;

/// `check` then `parse_request`, as the server runs them.
fn run(body: &[u8]) -> Result<Request, ProtocolError> {
    check(&[body], &LIMITS)?;
    parse_request(body, &LIMITS)
}

fn submit_with(job: &str) -> String {
    format!(r#"{{"v":1,"op":"submit","printer":"zebra-1","job":{job}}}"#)
}

fn address_with_imb(tracking: &str, routing: &str) -> String {
    submit_with(&format!(
        r#"{{"template":"address","size":"4x6","imb":{{"tracking":"{tracking}","routing":"{routing}"}},"to":["A","B"]}}"#
    ))
}

fn batch(n: usize) -> String {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"to": [format!("NAME {i}"), "1 MAIN ST", "AUSTIN TX 78701"]}))
        .collect();
    json!({"v":1,"op":"submit_batch","printer":"zebra-1",
           "template":{"template":"address","size":"4x6"},"records":records})
    .to_string()
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"v":1,"op":"health","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn hostile_requests_get_typed_errors() {
    use ErrorCode::*;
    let ten_mb = format!(
        r#"{{"v":1,"op":"status","job_id":"{}"}}"#,
        "a".repeat(10 << 20)
    );
    let long_key = format!("job.{}...", "k".repeat(64));
    let cases: Vec<(&str, Vec<u8>, ErrorCode, Option<&str>)> = vec![
        // 0: framing and encoding
        ("empty", b"".to_vec(), MalformedJson, None),
        ("blanks", b"  \n ".to_vec(), MalformedJson, None),
        ("not utf-8", b"{\"v\":1,\"op\":\"he\xffalth\"}".to_vec(), MalformedJson, None),
        ("10 MB string", ten_mb.into_bytes(), RequestTooLarge, None),
        ("truncated", br#"{"v":1,"op":"hea"#.to_vec(), MalformedJson, None),
        // 5
        ("truncated after comma", br#"{"v":1,"#.to_vec(), MalformedJson, None),
        ("trailing garbage", br#"{"v":1,"op":"health"} x"#.to_vec(), MalformedJson, None),
        ("array", br#"[1,2]"#.to_vec(), MalformedJson, None),
        ("string", br#""health""#.to_vec(), MalformedJson, None),
        ("null", b"null".to_vec(), MalformedJson, None),
        // 10
        ("raw NUL in string", b"{\"v\":1,\"op\":\"he\0alth\"}".to_vec(), MalformedJson, None),
        ("deeply nested", nested(100_000).into_bytes(), MalformedJson, None),
        ("nested just past the limit", nested(200).into_bytes(), MalformedJson, None),
        ("single quotes", b"{'v':1}".to_vec(), MalformedJson, None),
        ("huge exponent", br#"{"v":1e400,"op":"health"}"#.to_vec(), MalformedJson, None),
        // 15: version
        ("missing v", br#"{"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v 2", br#"{"v":2,"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v 0", br#"{"v":0,"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v string", br#"{"v":"1","op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v float", br#"{"v":1.5,"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        // 20
        ("v huge", br#"{"v":18446744073709551617,"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v null", br#"{"v":null,"op":"health"}"#.to_vec(), UnsupportedVersion, Some("v")),
        ("v 2 with unknown fields", br#"{"v":2,"op":"fly","wings":2}"#.to_vec(), UnsupportedVersion, Some("v")),
        // op
        ("missing op", br#"{"v":1}"#.to_vec(), BadField, Some("op")),
        ("op number", br#"{"v":1,"op":7}"#.to_vec(), BadField, Some("op")),
        // 25
        ("unknown op", br#"{"v":1,"op":"format_disk"}"#.to_vec(), UnknownOp, Some("op")),
        ("op wrong case", br#"{"v":1,"op":"HEALTH"}"#.to_vec(), UnknownOp, Some("op")),
        ("op empty", br#"{"v":1,"op":""}"#.to_vec(), UnknownOp, Some("op")),
        // id
        ("id object", br#"{"v":1,"id":{},"op":"health"}"#.to_vec(), BadField, Some("id")),
        ("id float", br#"{"v":1,"id":1.5,"op":"health"}"#.to_vec(), BadField, Some("id")),
        // 30
        ("id empty", br#"{"v":1,"id":"","op":"health"}"#.to_vec(), BadField, Some("id")),
        ("id control char", br#"{"v":1,"id":"a\u0001","op":"health"}"#.to_vec(), BadField, Some("id")),
        // unknown fields
        ("unknown top-level field", br#"{"v":1,"op":"health","verbose":true}"#.to_vec(), BadField, Some("verbose")),
        ("printers takes no fields", br#"{"v":1,"op":"printers","printer":"a"}"#.to_vec(), BadField, Some("printer")),
        ("unknown field in job", submit_with(r#"{"template":"address","size":"4x6","to":["A"],"colour":"red"}"#).into_bytes(), BadField, Some("job.colour")),
        // 35: printers
        ("printer missing", br#"{"v":1,"op":"pause"}"#.to_vec(), BadField, Some("printer")),
        ("printer ../x", br#"{"v":1,"op":"pause","printer":"../x"}"#.to_vec(), BadField, Some("printer")),
        ("printer /dev/sda", br#"{"v":1,"op":"resume","printer":"/dev/sda"}"#.to_vec(), BadField, Some("printer")),
        ("printer ..", br#"{"v":1,"op":"pause","printer":".."}"#.to_vec(), BadField, Some("printer")),
        ("printer empty", br#"{"v":1,"op":"pause","printer":""}"#.to_vec(), BadField, Some("printer")),
        // 40
        ("printer NUL", br#"{"v":1,"op":"pause","printer":"a\u0000"}"#.to_vec(), BadField, Some("printer")),
        ("printer 65 chars", format!(r#"{{"v":1,"op":"pause","printer":"{}"}}"#, "p".repeat(65)).into_bytes(), BadField, Some("printer")),
        ("printer option-like", br#"{"v":1,"op":"pause","printer":"-rf"}"#.to_vec(), BadField, Some("printer")),
        ("printer backslash", br#"{"v":1,"op":"pause","printer":"..\\x"}"#.to_vec(), BadField, Some("printer")),
        ("printer number", br#"{"v":1,"op":"pause","printer":5}"#.to_vec(), BadField, Some("printer")),
        // 45: job ids
        ("job_id missing", br#"{"v":1,"op":"status"}"#.to_vec(), BadField, Some("job_id")),
        ("job_id number", br#"{"v":1,"op":"cancel","job_id":42}"#.to_vec(), BadField, Some("job_id")),
        ("job_id empty", br#"{"v":1,"op":"status","job_id":""}"#.to_vec(), BadField, Some("job_id")),
        ("job_id too long", format!(r#"{{"v":1,"op":"status","job_id":"{}"}}"#, "j".repeat(129)).into_bytes(), BadField, Some("job_id")),
        ("job_id newline", br#"{"v":1,"op":"status","job_id":"a\nb"}"#.to_vec(), BadField, Some("job_id")),
        // 50: reprint
        ("serials missing", br#"{"v":1,"op":"reprint","job_id":"a"}"#.to_vec(), BadField, Some("serials")),
        ("serials other", br#"{"v":1,"op":"reprint","job_id":"a","serials":"old"}"#.to_vec(), BadField, Some("serials")),
        ("serials bool", br#"{"v":1,"op":"reprint","job_id":"a","serials":true}"#.to_vec(), BadField, Some("serials")),
        // priority and numbers
        ("priority 10", format!(r#"{{"v":1,"op":"submit","printer":"p","priority":10,"job":{ADDRESS}}}"#).into_bytes(), BadField, Some("priority")),
        ("priority negative", format!(r#"{{"v":1,"op":"submit","printer":"p","priority":-1,"job":{ADDRESS}}}"#).into_bytes(), BadField, Some("priority")),
        // 55
        ("priority huge", format!(r#"{{"v":1,"op":"submit","printer":"p","priority":99999999999999999999999,"job":{ADDRESS}}}"#).into_bytes(), BadField, Some("priority")),
        ("priority string", format!(r#"{{"v":1,"op":"submit","printer":"p","priority":"high","job":{ADDRESS}}}"#).into_bytes(), BadField, Some("priority")),
        // submit
        ("job missing", br#"{"v":1,"op":"submit","printer":"p"}"#.to_vec(), BadField, Some("job")),
        ("job string", br#"{"v":1,"op":"submit","printer":"p","job":"label.json"}"#.to_vec(), BadField, Some("job")),
        ("job unknown template", submit_with(r#"{"template":"poster"}"#).into_bytes(), BadField, Some("job")),
        // 60
        ("job missing to", submit_with(r#"{"template":"address","size":"4x6"}"#).into_bytes(), BadField, Some("job.to")),
        ("job to wrong type", submit_with(r#"{"template":"address","size":"4x6","to":"JOHN"}"#).into_bytes(), BadField, Some("job")),
        ("job huge width", submit_with(r#"{"template":"custom","width":1e999,"height":1,"elements":[]}"#).into_bytes(), MalformedJson, None),
        ("job version 2", submit_with(r#"{"template":"address","version":2,"size":"4x6","to":["A"]}"#).into_bytes(), UnsupportedVersion, Some("job.version")),
        ("job version huge", submit_with(r#"{"template":"address","version":4294967296,"size":"4x6","to":["A"]}"#).into_bytes(), BadField, Some("job")),
        // 65: IMb data, with the USPS class
        ("imb tracking short", address_with_imb("0027012345620080000", "").into_bytes(), InvalidImb, Some("job.imb.tracking")),
        ("imb tracking letter", address_with_imb("0027012345620080000X", "").into_bytes(), InvalidImb, Some("job.imb.tracking")),
        ("imb barcode id digit", address_with_imb("07270123456200800001", "").into_bytes(), InvalidImb, Some("job.imb.barcode_id")),
        ("imb routing 4 digits", address_with_imb("00270123456200800001", "9876").into_bytes(), InvalidImb, Some("job.imb.routing")),
        ("imb routing letter", address_with_imb("00270123456200800001", "9876A").into_bytes(), InvalidImb, Some("job.imb.routing")),
        // 70
        ("imb in sheet record", submit_with(r#"{"template":"sheet","records":[{"to":["A"]},{"to":["B"],"imb":{"tracking":"1","routing":""}}]}"#).into_bytes(), InvalidImb, Some("job.records[1].imb.tracking")),
        ("imb in custom element", submit_with(r#"{"template":"custom","width":4,"height":2,"elements":[{"type":"imb","x":0,"y":0,"tracking":"00270123456200800001","routing":"12"}]}"#).into_bytes(), InvalidImb, Some("job.elements[0].routing")),
        // batches
        ("batch over the cap", batch(101).into_bytes(), BatchTooLarge, Some("records")),
        ("batch empty", batch(0).into_bytes(), BadField, Some("records")),
        ("batch record not object", br#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address","size":"4x6"},"records":[{"to":["A"]},7]}"#.to_vec(), BadField, Some("records[1]")),
        // 75
        ("batch record changes template", br#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address","size":"4x6"},"records":[{"template":"tray","to":["A"]}]}"#.to_vec(), BadField, Some("records[0].template")),
        ("batch record unknown field (Cyrillic o)", r#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address","size":"4x6"},"records":[{"to":["A"]},{"to":["B"],"tо":["C"]}]}"#.as_bytes().to_vec(), BadField, Some("records[1].tо")),
        ("batch record bad imb", br#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address","size":"4x6"},"records":[{"to":["A"],"imb":{"tracking":"00270123456200800001","routing":"1"}}]}"#.to_vec(), InvalidImb, Some("records[0].imb.routing")),
        ("batch template missing", br#"{"v":1,"op":"submit_batch","printer":"p","records":[{"to":["A"]}]}"#.to_vec(), BadField, Some("template")),
        ("batch template without template", br#"{"v":1,"op":"submit_batch","printer":"p","template":{"size":"4x6"},"records":[{"to":["A"]}]}"#.to_vec(), BadField, Some("records[0].template")),
        // 80
        ("batch records not array", br#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address"},"records":{"to":["A"]}}"#.to_vec(), BadField, Some("records")),
        ("sheet over the cap", submit_with(&format!(r#"{{"template":"sheet","records":[{}]}}"#, vec![r#"{"to":["A"]}"#; 101].join(","))).into_bytes(), BatchTooLarge, Some("job.records")),
        // 82: big client text stays out of messages and fields
        ("500 KB string of the wrong type", submit_with(&format!(r#"{{"template":"address","size":"4x6","to":"{}"}}"#, "x".repeat(500_000))).into_bytes(), BadField, Some("job")),
        ("500 KB unknown key in job", submit_with(&format!(r#"{{"template":"address","size":"4x6","to":["A"],"{}":1}}"#, "k".repeat(500_000))).into_bytes(), BadField, Some(long_key.as_str())),
        ("500 KB unknown op", format!(r#"{{"v":1,"op":"{}"}}"#, "o".repeat(500_000)).into_bytes(), UnknownOp, Some("op")),
        ("50,000 unknown keys", format!("{{\"v\":1,\"op\":\"health\",{}}}", (0..50_000).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(",")).into_bytes(), BadField, Some("k0")),
    ];
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (i, (name, body, code, field)) in cases.iter().enumerate() {
        let err = match run(body) {
            Ok(req) => panic!("case {i} ({name}): accepted as {req:?}"),
            Err(e) => e,
        };
        assert_eq!(
            (err.code, err.field.as_deref()),
            (*code, *field),
            "case {i} ({name}): {err}"
        );
        assert!(!err.message.is_empty(), "case {i} ({name})");
        assert!(
            err.message.len() < 1024,
            "case {i} ({name}): message is {} bytes",
            err.message.len()
        );
        // Every error makes a well-formed reply.
        let reply: Value = serde_json::from_slice(&Reply::error(&err).to_bytes()).unwrap();
        assert_eq!(reply["ok"], json!(false), "case {i}");
        assert_eq!(reply["error"]["code"], json!(code.as_str()), "case {i}");
    }
}

#[test]
fn imb_errors_carry_the_usps_class() {
    let err = run(address_with_imb("0027012345620080000X", "").as_bytes()).unwrap_err();
    assert_eq!(err.usps_class, Some(10));
    assert!(err.message.starts_with("error 10:"), "{}", err.message);
    let err = run(address_with_imb("00270123456200800001", "9876").as_bytes()).unwrap_err();
    assert_eq!(err.usps_class, Some(12));
    let reply: Value = serde_json::from_slice(&Reply::error(&err).to_bytes()).unwrap();
    assert_eq!(reply["error"]["usps_class"], json!(12));
}

#[test]
fn errors_echo_the_client_id_once_read() {
    let err = run(br#"{"v":2,"id":"c-1","op":"health"}"#).unwrap_err();
    assert_eq!(err.id, Some(ClientId::Str("c-1".into())));
    let err = run(br#"{"v":1,"id":9,"op":"nope"}"#).unwrap_err();
    assert_eq!(err.id, Some(ClientId::Int(9)));
    let reply: Value = serde_json::from_slice(&Reply::error(&err).to_bytes()).unwrap();
    assert_eq!(
        reply,
        json!({"v":1,"id":9,"ok":false,"error":{"code":"unknown_op","field":"op",
               "message":reply["error"]["message"].clone()}})
    );
    // An invalid id is not echoed.
    let err = run(br#"{"v":1,"id":{"a":1},"op":"health"}"#).unwrap_err();
    assert_eq!(err.id, None);
    let reply: Value = serde_json::from_slice(&Reply::error(&err).to_bytes()).unwrap();
    assert!(reply.get("id").is_none());
}

#[test]
fn every_op_round_trips() {
    let valid = [
        format!(
            r#"{{"v":1,"id":"r1","op":"submit","printer":"zebra-1","job_id":"order-1","priority":9,"job":{ADDRESS}}}"#
        ),
        format!(r#"{{"v":1,"op":"submit","printer":"zebra-1","job":{ADDRESS}}}"#),
        batch(3),
        batch(100),
        r#"{"v":1,"id":7,"op":"status","job_id":"order-1"}"#.to_owned(),
        r#"{"v":1,"op":"status","job_id":"order-1","labels":false}"#.to_owned(),
        r#"{"v":1,"op":"cancel","job_id":"order-1"}"#.to_owned(),
        r#"{"v":1,"op":"reprint","job_id":"order-1","serials":"same"}"#.to_owned(),
        r#"{"v":1,"op":"reprint","job_id":"order-1","serials":"new"}"#.to_owned(),
        r#"{"v":1,"op":"printers"}"#.to_owned(),
        r#"{"v":1,"op":"pause","printer":"Brother_QL.820"}"#.to_owned(),
        r#"{"v":1,"op":"resume","printer":"zebra-1"}"#.to_owned(),
        r#"{"v":1,"op":"health","id":null}"#.to_owned(),
        r#"{"v":1,"op":"log","since_ms":1700000000000,"until_ms":1800000000000,"limit":500}"#
            .to_owned(),
        r#"{"v":1,"op":"log"}"#.to_owned(),
        r#"{"v":1,"op":"track","piece":"00270123456200800001"}"#.to_owned(),
        r#"{"v":1,"op":"track","piece":"123456-200800001","refresh":true}"#.to_owned(),
        r#"{"v":1,"op":"tracking_report","job_id":"order-1","pieces":true}"#.to_owned(),
        r#"{"v":1,"op":"tracking_report","since_ms":1700000000000}"#.to_owned(),
        r#"{"v":1,"op":"tracking_import","source":"feed.json","events":[{"imbTrackingCode":"00270123456200800001","routingCodeImbMatchingPortion":"98765","scanDatetime":"2026-11-20 08:15:00","scanEventCode":"918","mailPhase":"Phase 3c - Destination Sequenced Carrier Sortation","scanFacilityState":"CO"}]}"#.to_owned(),
    ];
    let mut names = std::collections::BTreeSet::new();
    for (i, text) in valid.iter().enumerate() {
        let req = run(text.as_bytes()).unwrap_or_else(|e| panic!("case {i}: {e}"));
        names.insert(req.op.name());
        let again = run(req.to_json().as_bytes()).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(again, req, "case {i}");
    }
    assert_eq!(names.len(), labeld::protocol::OPS.len(), "{names:?}");
}

#[test]
fn parsed_fields() {
    let req = run(format!(r#"{{"v":1,"id":"r1","op":"submit","printer":"zebra-1","job_id":"order-1","priority":9,"job":{ADDRESS}}}"#).as_bytes()).unwrap();
    assert_eq!(req.id, Some(ClientId::Str("r1".into())));
    let Op::Submit(s) = req.op else { panic!() };
    assert_eq!(
        (s.printer.as_str(), s.job_id.as_deref(), s.priority),
        ("zebra-1", Some("order-1"), 9)
    );
    assert!(matches!(s.job, Job::Address(_)));

    let Op::Submit(s) = run(submit_with(ADDRESS).as_bytes()).unwrap().op else {
        panic!()
    };
    assert_eq!(s.priority, labeld::protocol::DEFAULT_PRIORITY);

    let Op::SubmitBatch(b) = run(batch(3).as_bytes()).unwrap().op else {
        panic!()
    };
    assert_eq!(b.jobs().len(), 3);
    let Job::Address(j) = &b.jobs()[2] else {
        panic!()
    };
    assert_eq!(j.to[0], "NAME 2");

    let Op::Reprint(r) = run(br#"{"v":1,"op":"reprint","job_id":"x","serials":"same"}"#)
        .unwrap()
        .op
    else {
        panic!()
    };
    assert_eq!(r.serials, Serials::Same);
}

#[test]
fn layout_errors_map_to_wire_codes() {
    // Six lines of long text on a small label do not fit.
    let long = "W".repeat(60);
    let job = Job::from_json(&format!(
        r#"{{"template":"address","size":"2.25x1.25","to":["{long}","B"]}}"#
    ))
    .unwrap();
    let err = layout::layout(&job).unwrap_err();
    let p = ProtocolError::from_layout(&err);
    assert_eq!(p.code, ErrorCode::LabelDoesNotFit, "{p}");
    assert_eq!(p.field.as_deref(), Some(err.element.as_str()));

    let err =
        Job::from_json(r#"{"template":"address","size":"4x6","to":["A"],"x":1}"#).unwrap_err();
    let p = ProtocolError::from_layout(&err);
    assert_eq!(
        (p.code, p.field.as_deref()),
        (ErrorCode::BadField, Some("x"))
    );

    let err = Job::from_json(r#"{"template":"address","version":3,"size":"4x6","to":["A"]}"#)
        .unwrap_err();
    assert_eq!(
        ProtocolError::from_layout(&err).code,
        ErrorCode::UnsupportedVersion
    );

    let job = Job::from_json(
        r#"{"template":"tray","barcode":"12","destination":"A","content":"B","origin":"C"}"#,
    )
    .unwrap();
    let err = layout::layout(&job).unwrap_err();
    assert_eq!(
        ProtocolError::from_layout(&err).code,
        ErrorCode::InvalidBarcode
    );

    let job = Job::from_json(r#"{"template":"address","size":"4x6","to":["A"],"imb":{"tracking":"00270123456200800001","routing":"1"}}"#).unwrap();
    let err = layout::layout(&job).unwrap_err();
    let p = ProtocolError::from_layout(&err).under("records[4]");
    assert_eq!(
        (p.code, p.field.as_deref(), p.usps_class),
        (
            ErrorCode::InvalidImb,
            Some("records[4].imb.routing"),
            Some(12)
        )
    );
    assert!(p.message.contains("error 12"), "{}", p.message);
}

#[test]
fn spool_errors_map_to_wire_codes() {
    let cases = [
        (
            SpoolError::RangeExhausted {
                mailer_id: "123456".into(),
                left: 1,
                wanted: 2,
            },
            ErrorCode::SerialsExhausted,
        ),
        (
            SpoolError::NoRange {
                mailer_id: "123456".into(),
            },
            ErrorCode::NoSerialRange,
        ),
        (
            SpoolError::IdConflict { job_id: "a".into() },
            ErrorCode::Conflict,
        ),
        (
            SpoolError::UnknownJob { job_id: "a".into() },
            ErrorCode::NotFound,
        ),
        (
            SpoolError::BadJobId {
                job_id: String::new(),
                reason: "it is empty",
            },
            ErrorCode::BadField,
        ),
        (SpoolError::NoLabels, ErrorCode::BadField),
        (
            SpoolError::Corrupt {
                what: "/var/lib/labeld/spool.db secret".into(),
            },
            ErrorCode::Internal,
        ),
    ];
    for (i, (err, code)) in cases.iter().enumerate() {
        let p = ProtocolError::from_spool(err);
        assert_eq!(p.code, *code, "case {i}: {p}");
    }
    let p = ProtocolError::from_spool(&cases[6].0);
    assert!(
        !p.message.contains("secret"),
        "internal details stay in the log"
    );
    let p = ProtocolError::from_spool(&cases[0].0);
    assert!(p.message.contains("exhausted"), "{}", p.message);

    let imb = labeld::encode::imb::encode_str("0027012345620080000", "").unwrap_err();
    let p = ProtocolError::from_spool(&SpoolError::Imb {
        index: 3,
        source: imb,
    });
    assert_eq!(
        (p.code, p.field.as_deref(), p.usps_class),
        (ErrorCode::InvalidImb, Some("labels[3].tracking"), Some(9))
    );
}

#[test]
fn reply_shapes() {
    let accepted = Accepted {
        job_id: "order-1".into(),
        label_count: 1,
        serials: vec![AssignedSerial {
            index: 0,
            mailer_id: "123456".into(),
            serial: 1,
            tracking: "00270123456000000001".into(),
        }],
        warnings: vec![],
        replayed: false,
    };
    let v: Value =
        serde_json::from_slice(&Reply::accepted(Some(ClientId::Int(3)), accepted).to_bytes())
            .unwrap();
    assert_eq!(v["v"], json!(1));
    assert_eq!(v["id"], json!(3));
    assert_eq!(v["ok"], json!(true));
    assert_eq!(v["job_id"], json!("order-1"));
    assert_eq!(v["serials"][0]["serial"], json!(1));

    let mut data = serde_json::Map::new();
    data.insert("ok".into(), json!("spoofed"));
    data.insert("printers".into(), json!([]));
    let v = Reply::data(None, data).to_value();
    assert_eq!(v, json!({"v":1,"ok":true,"printers":[]}));

    for (err, code) in [
        (ProtocolError::busy(), "busy"),
        (ProtocolError::shutting_down(), "shutting_down"),
        (ProtocolError::unknown_printer("nope"), "unknown_printer"),
    ] {
        let v = Reply::error(&err.with_id(Some(ClientId::Str("x".into())))).to_value();
        assert_eq!(v["id"], json!("x"));
        assert_eq!(v["error"]["code"], json!(code));
        assert!(v["error"].get("usps_class").is_none());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = check(&[&bytes], &LIMITS).and_then(|()| parse_request(&bytes, &LIMITS));
        // Without the check too: parse_request must stand on its own.
        let _ = parse_request(&bytes, &LIMITS);
    }

    #[test]
    fn json_like_input_never_panics(text in r#"\{("(v|op|id|printer|job_id|job|records|template|serials|priority)":(1|2|-1|1e999|"[a-z./]{0,6}"|null|\[\]|\{\}|true),?){0,6}\}?"#) {
        match run(text.as_bytes()) {
            Ok(req) => { run(req.to_json().as_bytes()).unwrap(); }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}
