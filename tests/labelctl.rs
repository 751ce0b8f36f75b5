//! `labelctl` as scripts call it: arguments in, exact stdout, stderr and exit code out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const APPENDIX_4: &str = "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA";

fn labelctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args(args)
        .output()
        .expect("labelctl runs")
}

fn labelctl_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("labelctl runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("labelctl finishes");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    output
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("utf-8 stderr")
}

#[test]
fn imb_encode_prints_letters() {
    let out = labelctl(&["imb", "encode", "01234567094987654321", "01234567891"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{APPENDIX_4}\n"));
}

#[test]
fn imb_encode_invalid_exits_2_with_usps_class() {
    let cases: &[(&[&str], &str)] = &[
        (&["imb", "encode", "0123456709498765432"], "error 09"),
        (&["imb", "encode", "0123456709498765432X"], "error 10"),
        (&["imb", "encode", "05234567094987654321"], "error 11"),
        (
            &["imb", "encode", "01234567094987654321", "1234"],
            "error 12",
        ),
        (
            &["imb", "encode", "01234567094987654321", "1234X"],
            "error 13",
        ),
    ];
    for (args, class) in cases {
        let out = labelctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(class), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn imb_encode_stream_answers_every_line_in_order() {
    let input = b"01234567094987654321,01234567891\n\
        0123\n\
        \n\
        05234567094987654321\r\n\
        01234567094987654321,1234X\n\
        01234567094987654321";
    let out = labelctl_stdin(&["imb", "encode", "-"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = stdout(&out).lines().collect();
    assert_eq!(
        lines,
        [
            APPENDIX_4,
            "error 09: tracking code has 4 characters; expected 20",
            "error 09: tracking code has 0 characters; expected 20",
            "error 11: barcode identifier 05 has second digit 5; it must be 0-4 (00-04, 10-14, ... 90-94)",
            "error 13: routing code has 'X' at position 5; only digits 0-9 are allowed",
            "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT",
        ]
    );
}

/// Invalid UTF-8 is an ordinary bad line, not a crash.
#[test]
fn imb_encode_stream_survives_binary_garbage() {
    let out = labelctl_stdin(&["imb", "encode", "-"], b"\xff0123456709498765432\n");
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("error 10: tracking code has '\u{fffd}' at position 1"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn imb_decode_round_trips() {
    let out = labelctl(&["imb", "decode", APPENDIX_4]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "01234567094987654321,01234567891\n");
    let no_routing = "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT";
    let out = labelctl(&["imb", "decode", no_routing]);
    assert_eq!(stdout(&out), "01234567094987654321,\n");
}

#[test]
fn imb_decode_rejects_damage() {
    let mut damaged = APPENDIX_4.to_string();
    damaged.replace_range(0..1, "T");
    let out = labelctl(&["imb", "decode", &damaged]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

/// USPS-L-3216A's own example: values 105, 12 … 51, check 90, stop; 167 modules.
#[test]
fn tray_prints_values_and_modules() {
    let out = labelctl(&["tray", "123456781123456123123451"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("values:         105 12 34 56 78 11 23 45 61 23 12 34 51 90 106\n"),
        "{text}"
    );
    assert!(text.contains("modules (167):  110100111001"), "{text}");
    let fields = labelctl(&[
        "tray",
        "--zip",
        "12345",
        "--cin",
        "678",
        "--mailer-id",
        "123456",
        "--serial",
        "12312345",
        "--json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&fields.stdout).expect("json");
    assert_eq!(value["digits"], "123456781123456123123451");
    assert_eq!(value["symbol"]["check"], 90);
}

#[test]
fn container_is_gs1_128_set_b_by_default() {
    let out = labelctl(&["container", "900066875", "EMA000051", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["data"], "99M900066875EMA000051");
    assert_eq!(value["human_readable"], "99  M  900066875  EMA000051");
    assert_eq!(value["symbol"]["module_count"], 277);
    assert_eq!(
        value["symbol"]["values"][1], 102,
        "FNC1 follows the start character"
    );
}

#[test]
fn tray_and_container_reject_bad_fields_with_exit_2() {
    let out = labelctl(&["tray", "1234"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("tray barcode has 4 digits; expected 24"),
        "{}",
        stderr(&out)
    );
    let out = labelctl(&["container", "912345", "ABC"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("mailer id"), "{}", stderr(&out));
}
