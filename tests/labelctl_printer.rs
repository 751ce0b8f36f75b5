//! `labelctl printer status|send` against a printer emulated on 127.0.0.1: exit
//! codes 0 ready / 3 not ready or silent / 2 unreachable, and bytes that arrive
//! whole.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

fn labelctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labelctl"))
        .args(args)
        .output()
        .expect("labelctl runs")
}

/// A ZPL printer that answers `~HQES` with `reply` (or stays silent when `None`),
/// for one connection; returns what it received.
fn emulator(reply: Option<&'static [u8]>) -> (String, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = format!("tcp://{}", listener.local_addr().expect("address"));
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        serve(&mut stream, reply)
    });
    (address, handle)
}

fn serve(stream: &mut TcpStream, reply: Option<&[u8]>) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return received,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if received.ends_with(b"~HQES") {
                    if let Some(reply) = reply {
                        stream.write_all(reply).expect("reply");
                    }
                }
                if received.ends_with(b"getvar \"odometer.total_label_count\"\r\n") {
                    stream.write_all(b"\"8560\"\r\n").expect("reply");
                }
            }
        }
    }
}

const HEALTHY: &[u8] =
    b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   0 00000000 00000000\r\n   WARNINGS: 0 00000000 00000000\r\n\x03";
const PAPER_OUT: &[u8] =
    b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   1 00000000 00000001\r\n   WARNINGS: 0 00000000 00000000\r\n\x03";

#[test]
fn status_ready_exits_0() {
    let (uri, printer) = emulator(Some(HEALTHY));
    let out = labelctl(&["printer", "status", &uri, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(json["odometer"], 8560);
    assert_eq!(
        printer.join().expect("emulator"),
        b"~HQES! U1 getvar \"odometer.total_label_count\"\r\n"
    );
}

#[test]
fn status_paper_out_exits_3() {
    let (uri, printer) = emulator(Some(PAPER_OUT));
    let out = labelctl(&["printer", "status", &uri, "--model", "zebra-gk420d"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not ready: media_out"), "{text}");
    printer.join().expect("emulator");
}

/// Silence is never "ready" (current Zebra firmware says nothing when the head is
/// open).
#[test]
fn status_silence_exits_3() {
    let (uri, printer) = emulator(None);
    let out = labelctl(&["printer", "status", &uri, "--timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unknown (treated as not ready)"), "{text}");
    printer.join().expect("emulator");
}

#[test]
fn unreachable_exits_2() {
    // A port nobody listens on: bind, learn the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let out = labelctl(&["printer", "status", &format!("tcp://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the printer"));
    let out = labelctl(&["printer", "status", "lpt1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn send_streams_a_file_whole() {
    let dir = std::env::temp_dir().join(format!("labelctl-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("job.zpl");
    let job: Vec<u8> = (0..200_000u32)
        .map(|i| b"^XA^FO10,10^FDHELLO^FS^XZ"[(i % 25) as usize])
        .collect();
    std::fs::write(&file, &job).expect("write job");
    let (uri, printer) = emulator(None);
    let out = labelctl(&["printer", "send", &uri, file.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 200000 bytes"));
    assert_eq!(printer.join().expect("emulator"), job);
    std::fs::remove_dir_all(&dir).ok();
}
