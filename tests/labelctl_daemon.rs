//! `labelctl`'s daemon commands: `submit`, `mail`, `status`, `cancel`, `reprint`,
//! `pause`, `resume`, `printers` (and `--discover`), `health`, `watch`, `log`,
//! `preview`.
//!
//! Three layers: the pure parts of the binary (dates, the CSV mapping) included
//! directly; the binary without a daemon (exit codes, `--dry-run`, discovery,
//! preview); and the binary against a real labeld started by [`crate::harness`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::Daemon;

#[allow(dead_code)]
#[path = "../src/bin/labelctl/dates.rs"]
mod dates;

#[allow(dead_code)]
#[path = "../src/bin/labelctl/records.rs"]
mod records;

// ---------------------------------------------------------------------------
// Helpers (the labelctl tests of tracking use them too).

pub(crate) fn labelctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args(args)
        .env_remove("LABELD_ENDPOINT")
        .env_remove("LABELD_EVENTS")
        .stdin(Stdio::null())
        .output()
        .expect("labelctl runs")
}

fn labelctl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("labelctl runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[track_caller]
pub(crate) fn expect_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A fresh temporary directory for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "labelctl-daemon-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub(crate) fn write(dir: &Path, name: &str, contents: &(impl AsRef<[u8]> + ?Sized)) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents.as_ref()).expect("write file");
    path.display().to_string()
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

const TEMPLATE: &str = r#"{"template": "address", "size": "4x6",
  "imb": {"mailer_id": "123456", "service_type": "270"},
  "to": ["PLACEHOLDER"],
  "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"]}"#;

const JOB: &str = r#"{"template": "address", "size": "4x6",
  "imb": {"mailer_id": "123456", "service_type": "270", "routing": "98765"},
  "to": ["JANE ROE", "1 MAIN ST", "ANYTOWN ST 98765"]}"#;

/// A list of `n` rows: to1..to3 and zip.
fn mailing_list(n: usize) -> String {
    let mut csv = String::from("to1,to2,to3,zip\n");
    for i in 0..n {
        csv.push_str(&format!(
            "RESIDENT {i},{} MAIN ST,ANYTOWN ST 98765,98765-{:04}\n",
            100 + i,
            1000 + i
        ));
    }
    csv
}

fn template_imb() -> serde_json::Map<String, Value> {
    json!({"mailer_id": "123456", "service_type": "270"})
        .as_object()
        .cloned()
        .expect("object")
}

// ---------------------------------------------------------------------------
// Dates (`log --since/--until`).

#[test]
fn labelctl_dates_read_days_rfc3339_and_unix_ms() {
    assert_eq!(dates::parse_date("2025-03-01"), Ok(1_740_787_200_000));
    assert_eq!(dates::parse_date("1970-01-01"), Ok(0));
    assert_eq!(
        dates::parse_date("2024-02-29T12:34:56.789Z"),
        Ok(1_709_210_096_789)
    );
    assert_eq!(
        dates::parse_date("2025-03-01T14:30:00.25-05:00"),
        Ok(1_740_857_400_250)
    );
    assert_eq!(
        dates::parse_date("2025-03-01 19:30:00.250123+00:00"),
        Ok(1_740_857_400_250)
    );
    assert_eq!(dates::parse_date("1969-12-31T23:59:59Z"), Ok(-1000));
    assert_eq!(dates::parse_date("1740787200000"), Ok(1_740_787_200_000));
    assert_eq!(dates::parse_date("0"), Ok(0));
}

#[test]
fn labelctl_dates_refuse_what_is_not_a_date() {
    for bad in [
        "",
        "yesterday",
        "2025-02-29",
        "2025-13-01",
        "2025-3-1",
        "2025-03-01T10:00:00",
        "2025-03-01T25:00:00Z",
        "2025-03-01T10:00:00+0500",
        "2025-03-01T10:00:00.Z",
        "1700000000",
        "99999999999999999999999",
    ] {
        let err = dates::parse_date(bad).expect_err(bad);
        assert!(err.contains("expected YYYY-MM-DD"), "{bad}: {err}");
    }
    // Unix seconds are named as the likely mistake.
    assert!(dates::parse_date("1700000000")
        .expect_err("seconds")
        .contains("Unix seconds"));
}

#[test]
fn labelctl_dates_round_trip_through_the_spool_format() {
    for ms in [
        0i64,
        1,
        999,
        86_399_999,
        951_782_400_000, // 2000-02-29
        1_709_210_096_789,
        4_102_444_799_999, // 2099-12-31T23:59:59.999
        -1000,
    ] {
        let text = labeld::spool::format_rfc3339_ms(ms);
        assert_eq!(dates::parse_date(&text), Ok(ms), "{text}");
    }
}

// ---------------------------------------------------------------------------
// The mailing list → records mapping.

#[test]
fn labelctl_mail_maps_numbered_lines_and_zip() {
    let csv = "TO1, to2 ,to3,Zip\nJANE ROE,,ANYTOWN ST 98765,98765-4321\n\"DOE, JOHN\",2 ELM,SOMEWHERE CA 90210,90210\n";
    let list =
        records::read_mail_list(csv.as_bytes(), Some(&template_imb()), false).expect("list reads");
    assert_eq!(list.lines, vec![2, 3]);
    assert_eq!(
        Value::Object(list.records[0].clone()),
        json!({"to": ["JANE ROE", "ANYTOWN ST 98765"],
               "imb": {"mailer_id": "123456", "service_type": "270", "routing": "987654321"}})
    );
    assert_eq!(
        list.records[1]["to"],
        json!(["DOE, JOHN", "2 ELM", "SOMEWHERE CA 90210"])
    );
    assert_eq!(list.records[1]["imb"]["routing"], "90210");
}

#[test]
fn labelctl_mail_maps_piped_lines_and_tracking() {
    let csv = "to,routing,tracking\nA | B ||C,,00270123456200800001\nD,12345,\n";
    let list =
        records::read_mail_list(csv.as_bytes(), Some(&template_imb()), false).expect("list reads");
    assert_eq!(list.records[0]["to"], json!(["A", "B", "C"]));
    // A row with its own tracking code does not take the template's IMb fields.
    assert_eq!(
        list.records[0]["imb"],
        json!({"tracking": "00270123456200800001", "routing": ""})
    );
    assert_eq!(
        list.records[1]["imb"],
        json!({"mailer_id": "123456", "service_type": "270", "routing": "12345"})
    );
}

#[test]
fn labelctl_mail_without_routing_keeps_the_template_imb() {
    let csv = "to1\nA\n";
    let list =
        records::read_mail_list(csv.as_bytes(), Some(&template_imb()), false).expect("list reads");
    assert_eq!(Value::Object(list.records[0].clone()), json!({"to": ["A"]}));
}

#[test]
fn labelctl_mail_refuses_unknown_and_conflicting_columns() {
    let imb = template_imb();
    let err =
        |csv: &str| records::read_mail_list(csv.as_bytes(), Some(&imb), false).expect_err(csv);
    let e = err("to1,zip,color\nA,12345,red\n");
    assert!(
        e.contains("\"color\"") && e.contains("--ignore-extra"),
        "{e}"
    );
    assert!(err("to1,to7\nA,B\n").contains("\"to7\""));
    assert!(err("to,to1\nA,B\n").contains("both to and to1..to6"));
    assert!(err("zip,routing,to1\n1,2,A\n").contains("repeats"));
    assert!(err("zip\n12345\n").contains("no address column"));
    assert!(err("to1\n").contains("no rows"));
    let e = err("to1,to2\nA,B\n,\n");
    assert!(
        e.starts_with("line 3:") && e.contains("no address lines"),
        "{e}"
    );
    let e = err("to,zip\n1|2|3|4|5|6|7,12345\n");
    assert!(e.contains("7 address lines"), "{e}");
    let e = err("to1,zip\nA,98765-43X1\n");
    assert!(e.starts_with("line 2:") && e.contains("'X'"), "{e}");
    // A routing code with nowhere to go.
    let e = records::read_mail_list(b"to1,zip\nA,12345\n", None, false).expect_err("no imb");
    assert!(e.contains("template has no \"imb\""), "{e}");
}

#[test]
fn labelctl_mail_ignores_extra_columns_on_request() {
    let list = records::read_mail_list(
        b"id,to1,Color,zip\n7,A,red,12345\n",
        Some(&template_imb()),
        true,
    )
    .expect("list reads");
    assert_eq!(list.ignored, vec!["id".to_owned(), "Color".to_owned()]);
    assert_eq!(list.records[0]["to"], json!(["A"]));
}

#[test]
fn labelctl_mail_job_ids_are_deterministic() {
    let template = json!({"template": "address", "size": "4x6"});
    let a = records::default_base(b"to1\nA\n", &template, "zebra");
    assert_eq!(a, records::default_base(b"to1\nA\n", &template, "zebra"));
    assert!(a.starts_with("mail-") && a.len() == 21, "{a}");
    assert_ne!(a, records::default_base(b"to1\nB\n", &template, "zebra"));
    assert_ne!(a, records::default_base(b"to1\nA\n", &template, "zebra-2"));
    assert_ne!(
        a,
        records::default_base(b"to1\nA\n", &json!({"template": "address"}), "zebra")
    );
    // The parts cannot run into each other.
    assert_ne!(
        records::default_base(b"ab", &json!(null), "c"),
        records::default_base(b"a", &json!(null), "bc")
    );
    assert_eq!(records::chunk_job_id("mail-x", 3), "mail-x-3");
}

// ---------------------------------------------------------------------------
// The binary without a daemon.

#[test]
fn labelctl_help_documents_exit_codes() {
    let out = labelctl(&["--help"]);
    expect_code(&out, 0);
    let help = stdout(&out);
    for needle in [
        "Exit codes:",
        "  3  labeld unreachable",
        "  4  --wait",
        "LABELD_ENDPOINT",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    for cmd in [
        "submit", "mail", "status", "cancel", "reprint", "pause", "resume", "printers", "health",
        "watch", "log", "preview",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from:\n{help}"
        );
    }
}

#[test]
fn labelctl_unreachable_daemon_exits_3() {
    let dir = temp_dir("unreachable");
    let job = write(&dir, "job.json", JOB);
    let endpoint = format!("tcp://127.0.0.1:{}", closed_port());
    let runs: Vec<Vec<&str>> = vec![
        vec!["health"],
        vec!["status", "some-job"],
        vec!["cancel", "some-job"],
        vec!["reprint", "some-job", "--new"],
        vec!["pause", "zebra"],
        vec!["resume", "zebra"],
        vec!["printers"],
        vec!["log", "--since", "2025-01-01"],
        vec!["submit", &job, "--printer", "zebra", "--wait"],
    ];
    for args in runs {
        let mut all = args.clone();
        all.extend(["--endpoint", &endpoint, "--timeout", "30"]);
        let out = labelctl(&all);
        expect_code(&out, 3);
        assert!(
            stderr(&out).contains(&endpoint) && stderr(&out).contains("is labeld running"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = labelctl(&["watch", "--events", &endpoint, "--count", "1"]);
    expect_code(&out, 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_endpoint_comes_from_the_environment() {
    let endpoint = format!("tcp://127.0.0.1:{}", closed_port());
    let out = labelctl_env(&["health"], &[("LABELD_ENDPOINT", &endpoint)]);
    expect_code(&out, 3);
    assert!(stderr(&out).contains(&endpoint), "{}", stderr(&out));
    // The flag wins over the environment.
    let flag = format!("tcp://127.0.0.1:{}", closed_port());
    let out = labelctl_env(
        &["health", "--endpoint", &flag],
        &[("LABELD_ENDPOINT", &endpoint)],
    );
    expect_code(&out, 3);
    assert!(stderr(&out).contains(&flag), "{}", stderr(&out));
}

#[test]
fn labelctl_missing_ipc_socket_exits_3() {
    let dir = temp_dir("ipc");
    let endpoint = format!("ipc://{}", dir.join("nothing.sock").display());
    let out = labelctl(&["health", "--endpoint", &endpoint]);
    expect_code(&out, 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_silent_peer_times_out_with_3() {
    // Accepts TCP connections (the kernel does) but never speaks ZeroMQ.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("tcp://{}", listener.local_addr().expect("addr"));
    let out = labelctl(&["health", "--endpoint", &endpoint, "--timeout", "0.3"]);
    expect_code(&out, 3);
    drop(listener);
}

#[test]
fn labelctl_bad_input_exits_2_before_any_connection() {
    let dir = temp_dir("input");
    let not_json = write(&dir, "bad.json", "{\"template\": ");
    let not_object = write(&dir, "list.json", "[1, 2]");
    let missing = dir.join("missing.json").display().to_string();
    // An endpoint that would answer 3: input errors must come first.
    let endpoint = format!("tcp://127.0.0.1:{}", closed_port());
    for (args, needle) in [
        (
            vec!["submit", &not_json, "--printer", "p"],
            "not valid JSON",
        ),
        (
            vec!["submit", &not_object, "--printer", "p"],
            "not a JSON object",
        ),
        (vec!["submit", &missing, "--printer", "p"], "missing.json"),
        (vec!["log", "--since", "last tuesday"], "--since"),
        (
            vec!["log", "--since", "2025-03-02", "--until", "2025-03-01"],
            "--until must be after --since",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--endpoint", &endpoint]);
        let out = labelctl(&all);
        expect_code(&out, 2);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // Usage errors (clap) are 2 too.
    for args in [
        vec!["reprint", "job-1"],
        vec!["submit", &not_json, "--printer", "p", "--priority", "10"],
        vec!["submit", &not_json, "--printer", "p", "--wait-timeout", "5"],
    ] {
        expect_code(&labelctl(&args), 2);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_discover_without_usb_is_not_an_error() {
    let out = labelctl(&["printers", "--discover"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("no USB printers found") || text.contains("[[printer]]"),
        "{text}"
    );
    let out = labelctl(&["printers", "--discover", "--json"]);
    expect_code(&out, 0);
    let list: Value = serde_json::from_str(&stdout(&out)).expect("json array");
    for p in list.as_array().expect("array") {
        assert!(p["toml"]
            .as_str()
            .is_some_and(|t| t.starts_with("[[printer]]")));
        // The suggested block is valid configuration, with a name labeld accepts.
        let toml_text = p["toml"].as_str().unwrap_or_default();
        let config =
            labeld::config::Config::parse(&format!("[daemon]\nstate_dir = \"x\"\n{toml_text}"))
                .expect("pasteable config");
        labeld::protocol::check_printer_name(&config.printers[0].name).expect("printer name");
    }
}

#[test]
fn labelctl_mail_dry_run_prints_chunked_requests() {
    let dir = temp_dir("dry-run");
    let list = write(&dir, "list.csv", &mailing_list(25));
    let template = write(&dir, "template.json", TEMPLATE);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "mail",
            &list,
            "--template",
            &template,
            "--printer",
            "zpl-file",
            "--chunk",
            "10",
            "--dry-run",
        ];
        args.extend(extra);
        labelctl(&args)
    };
    let out = run(&[]);
    expect_code(&out, 0);
    let requests: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(requests.len(), 3);
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| r["records"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let base = requests[0]["job_id"]
        .as_str()
        .and_then(|id| id.strip_suffix("-0"))
        .expect("job id BASE-0")
        .to_owned();
    for (n, r) in requests.iter().enumerate() {
        assert_eq!(r["op"], "submit_batch");
        assert_eq!(r["printer"], "zpl-file");
        assert_eq!(r["job_id"], format!("{base}-{n}"));
        assert_eq!(r["template"]["template"], "address");
    }
    assert_eq!(
        requests[2]["records"][4],
        json!({"to": ["RESIDENT 24", "124 MAIN ST", "ANYTOWN ST 98765"],
               "imb": {"mailer_id": "123456", "service_type": "270", "routing": "987651024"}})
    );
    // The same command gives the same ids; --job-id replaces the base.
    assert_eq!(stdout(&run(&[])), stdout(&out));
    let named = run(&["--job-id", "spring-2025"]);
    expect_code(&named, 0);
    assert!(stdout(&named).contains("\"job_id\":\"spring-2025-2\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_mail_checks_every_row_before_sending() {
    let dir = temp_dir("preflight");
    let template = write(&dir, "template.json", TEMPLATE);
    let endpoint = format!("tcp://127.0.0.1:{}", closed_port());
    let mut csv = mailing_list(5);
    csv.push_str("RESIDENT X,1 MAIN ST,ANYTOWN ST,1234\n");
    let list = write(&dir, "bad-zip.csv", &csv);
    // Refused with the CSV line, without contacting the (absent) daemon: exit 2.
    let out = labelctl(&[
        "mail",
        &list,
        "--template",
        &template,
        "--printer",
        "zpl-file",
        "--endpoint",
        &endpoint,
    ]);
    expect_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("line 7") && err.contains("invalid_imb") && err.contains("error 12"),
        "{err}"
    );
    let mut csv = mailing_list(2);
    csv.push_str(&format!("{},1 MAIN ST,ANYTOWN ST,12345\n", "W".repeat(90)));
    let list = write(&dir, "too-wide.csv", &csv);
    let out = labelctl(&[
        "mail",
        &list,
        "--template",
        &template,
        "--printer",
        "p",
        "--dry-run",
    ]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("line 4") && stderr(&out).contains("label_does_not_fit"),
        "{}",
        stderr(&out)
    );
    let list = write(&dir, "extra.csv", "to1,zip,segment\nA,12345,7\n");
    let out = labelctl(&[
        "mail",
        &list,
        "--template",
        &template,
        "--printer",
        "p",
        "--dry-run",
    ]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("\"segment\""), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_preview_renders_a_template_with_serial_zero() {
    let dir = temp_dir("preview");
    let job = write(&dir, "job.json", JOB);
    let png = dir.join("label.png");
    let png_s = png.display().to_string();
    let out = labelctl(&["preview", &job, "-o", &png_s]);
    expect_code(&out, 0);
    assert!(
        stderr(&out).contains("serial zero (00270123456000000000)"),
        "{}",
        stderr(&out)
    );
    let bytes = std::fs::read(&png).expect("png written");
    assert!(bytes.starts_with(b"\x89PNG"));
    // A job with a full tracking code is previewed as it is, without a note.
    let full = write(
        &dir,
        "full.json",
        r#"{"template": "address", "size": "4x6",
            "imb": {"tracking": "00270123456200800001", "routing": "98765"}, "to": ["A"]}"#,
    );
    let out = labelctl(&["preview", &full, "-o", &png_s, "--json"]);
    expect_code(&out, 0);
    assert!(!stderr(&out).contains("serial zero"), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(summary["zero_serials"], json!([]));
    // Printer languages are `render`'s job.
    let zpl = dir.join("label.zpl").display().to_string();
    expect_code(&labelctl(&["preview", &job, "-o", &zpl]), 2);
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------
// Against a running labeld.

/// `labelctl ARGS --endpoint … --events …` against `daemon`.
pub(crate) fn ctl(daemon: &Daemon, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--endpoint",
        &daemon.requests,
        "--events",
        &daemon.events,
        "--timeout",
        "60",
    ]);
    labelctl(&all)
}

/// Files a file printer wrote under `dir`.
fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

#[test]
fn labelctl_e2e_submit_wait_prints_and_reports_serials() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e-submit");
    let job = write(&dir, "job.json", JOB);
    let out = ctl(
        &daemon,
        &[
            "submit",
            &job,
            "--printer",
            "zpl-file",
            "--job-id",
            "order-1",
            "--wait",
        ],
    );
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("accepted job order-1: 1 label"), "{text}");
    assert!(text.contains("serial 1 (mailer 123456)"), "{text}");
    assert!(text.contains("job order-1: 1 printed"), "{text}");
    assert_eq!(files_in(&daemon.dir.join("zpl")), 1);

    // The same id again: the first answer, nothing printed twice.
    let out = ctl(
        &daemon,
        &[
            "submit",
            &job,
            "--printer",
            "zpl-file",
            "--job-id",
            "order-1",
            "--wait",
            "--json",
        ],
    );
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["all_printed"], true);
    assert_eq!(v["accepted"]["replayed"], true);
    assert_eq!(v["accepted"]["serials"][0]["serial"], 1);
    assert_eq!(files_in(&daemon.dir.join("zpl")), 1);

    // From stdin, without an id of ours: the daemon's id, waited on after the reply.
    let mut child = Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args([
            "submit",
            "-",
            "--printer",
            "preview",
            "--wait",
            "--json",
            "--endpoint",
            &daemon.requests,
            "--events",
            &daemon.events,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("labelctl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(JOB.as_bytes())
        .expect("write job");
    let out = child.wait_with_output().expect("labelctl finishes");
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["printed"], 1);
    assert_eq!(files_in(&daemon.dir.join("preview")), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_e2e_refusals_exit_2_with_code_and_field() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e-refused");
    let job = write(&dir, "job.json", JOB);
    let out = ctl(&daemon, &["submit", &job, "--printer", "nowhere"]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("unknown_printer (printer)"),
        "{}",
        stderr(&out)
    );
    let bad_imb = write(
        &dir,
        "bad-imb.json",
        r#"{"template": "address", "size": "4x6",
            "imb": {"tracking": "0027012345620080000", "routing": ""}, "to": ["A"]}"#,
    );
    let out = ctl(
        &daemon,
        &["submit", &bad_imb, "--printer", "zpl-file", "--json"],
    );
    expect_code(&out, 2);
    assert!(stderr(&out).contains("invalid_imb"), "{}", stderr(&out));
    let reply: Value = serde_json::from_str(stdout(&out).trim()).expect("reply on stdout");
    assert_eq!(reply["error"]["code"], "invalid_imb");
    let out = ctl(&daemon, &["status", "no-such-job"]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    // Several ids: each is reported, the worst code wins.
    let ok = ctl(
        &daemon,
        &["submit", &job, "--printer", "zpl-file", "--job-id", "real"],
    );
    expect_code(&ok, 0);
    let out = ctl(&daemon, &["status", "real", "no-such-job"]);
    expect_code(&out, 2);
    assert!(stdout(&out).contains("job real"), "{}", stdout(&out));
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_e2e_mail_is_resumable_and_replays() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e-mail");
    let list = write(&dir, "list.csv", &mailing_list(25));
    let template = write(&dir, "template.json", TEMPLATE);
    let args = [
        "mail",
        &list,
        "--template",
        &template,
        "--printer",
        "zpl-file",
        "--chunk",
        "10",
        "--wait",
    ];
    let out = ctl(&daemon, &args);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("25 label(s) in 3 job(s)") && text.contains(": 25 printed"),
        "{text}"
    );
    assert!(text.contains("serials 1-10 (Mailer ID 123456)"), "{text}");
    assert_eq!(files_in(&daemon.dir.join("zpl")), 25);

    // Again: every chunk is replayed, nothing new printed.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = ctl(&daemon, &json_args);
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json summary");
    assert_eq!(v["labels"], 25);
    assert_eq!(v["printed"], 25);
    let jobs = v["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j["replayed"] == true), "{v}");
    assert_eq!(files_in(&daemon.dir.join("zpl")), 25);

    // An interrupted mailing: the first chunk went in before the "crash"; the rerun
    // replays it and submits the rest.
    let list2 = write(&dir, "list2.csv", &mailing_list(12));
    let dry = labelctl(&[
        "mail",
        &list2,
        "--template",
        &template,
        "--printer",
        "zpl-file",
        "--chunk",
        "5",
        "--dry-run",
    ]);
    expect_code(&dry, 0);
    let first: Value =
        serde_json::from_str(stdout(&dry).lines().next().expect("a request")).expect("json");
    let reply = daemon.request(first);
    assert_eq!(reply["ok"], true, "{reply}");
    let out = ctl(
        &daemon,
        &[
            "mail",
            &list2,
            "--template",
            &template,
            "--printer",
            "zpl-file",
            "--chunk",
            "5",
            "--wait",
        ],
    );
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("1 job(s) were already accepted"),
        "{}",
        stdout(&out)
    );
    assert_eq!(files_in(&daemon.dir.join("zpl")), 37);

    // The print log has every piece, with its list recipient.
    let out = ctl(&daemon, &["log", "--since", "2000-01-01", "--csv"]);
    expect_code(&out, 0);
    let csv_text = stdout(&out);
    let mut lines = csv_text.lines();
    assert_eq!(
        lines.next(),
        Some("printed_at,printed_at_ms,job_id,index,printer,mailer_id,serial,tracking,routing,imb,recipient")
    );
    assert_eq!(lines.clone().count(), 37, "{csv_text}");
    assert!(csv_text.contains("RESIDENT 24 / 124 MAIN ST / ANYTOWN ST 98765"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_e2e_pause_status_cancel_resume_printers_log() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e-ops");
    let job = write(&dir, "job.json", JOB);

    let out = ctl(&daemon, &["health"]);
    expect_code(&out, 0);
    let out = ctl(&daemon, &["printers"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("zpl-file") && stdout(&out).contains("preview"),
        "{}",
        stdout(&out)
    );
    let out = ctl(&daemon, &["printers", "--json"]);
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert!(
        v["printers"].as_array().is_some_and(|p| p.len() == 2),
        "{v}"
    );

    expect_code(&ctl(&daemon, &["pause", "zpl-file"]), 0);
    expect_code(
        &ctl(
            &daemon,
            &["submit", &job, "--printer", "zpl-file", "--job-id", "held"],
        ),
        0,
    );
    // Paused: waiting gives up (exit 3) and the label stays queued.
    let out = ctl(
        &daemon,
        &[
            "submit",
            &job,
            "--printer",
            "zpl-file",
            "--job-id",
            "held",
            "--wait",
            "--wait-timeout",
            "0.5",
        ],
    );
    expect_code(&out, 3);
    assert!(stderr(&out).contains("gave up waiting"), "{}", stderr(&out));
    let out = ctl(&daemon, &["status", "held"]);
    expect_code(&out, 0);
    assert!(stdout(&out).contains("1 queued"), "{}", stdout(&out));
    let out = ctl(&daemon, &["cancel", "held"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("job held: 1 queued label(s) cancelled"),
        "{}",
        stdout(&out)
    );
    let out = ctl(&daemon, &["status", "held", "--json"]);
    expect_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["progress"]["cancelled"], 1, "{v}");
    expect_code(&ctl(&daemon, &["resume", "zpl-file"]), 0);
    assert_eq!(files_in(&daemon.dir.join("zpl")), 0);

    // Reprint of a cancelled job with new serials, waited on: prints.
    let out = ctl(&daemon, &["reprint", "held", "--new", "--wait"]);
    expect_code(&out, 0);
    assert!(stdout(&out).contains("1 printed"), "{}", stdout(&out));
    assert_eq!(files_in(&daemon.dir.join("zpl")), 1);

    // The log, to a file, only that printer.
    let csv_path = dir.join("log.csv");
    let csv_s = csv_path.display().to_string();
    let out = ctl(
        &daemon,
        &["log", "--since", "0", "--printer", "zpl-file", "-o", &csv_s],
    );
    expect_code(&out, 0);
    let text = std::fs::read_to_string(&csv_path).expect("log written");
    assert_eq!(text.lines().count(), 2, "{text}");
    let out = ctl(
        &daemon,
        &[
            "log",
            "--since",
            "2000-01-01T00:00:00Z",
            "--printer",
            "preview",
            "--json",
        ],
    );
    expect_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labelctl_e2e_watch_prints_events() {
    let daemon = Daemon::start("");
    let dir = temp_dir("e2e-watch");
    let job = write(&dir, "job.json", JOB);
    let mut watch = Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args([
            "watch",
            "job.",
            "--json",
            "--count",
            "1",
            "--for",
            "120",
            "--events",
            &daemon.events,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("labelctl watch runs");
    // A subscription takes effect some time after connecting: submit until the
    // watcher has seen an event (bounded: --for 120 ends it anyway).
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut n = 0;
    let status = loop {
        if let Some(status) = watch.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < give_up, "watch saw no event");
        let id = format!("watched-{n}");
        n += 1;
        expect_code(
            &ctl(
                &daemon,
                &["submit", &job, "--printer", "preview", "--job-id", &id],
            ),
            0,
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success());
    let out = watch.wait_with_output().expect("output");
    let line = stdout(&out);
    let event: Value = serde_json::from_str(line.trim()).expect("one json line");
    assert!(
        event["topic"]
            .as_str()
            .is_some_and(|t| t.starts_with("job.watched-")),
        "{event}"
    );
    assert!(event["event"].is_string(), "{event}");
    std::fs::remove_dir_all(&dir).ok();
}
