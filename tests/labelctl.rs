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

/// Reads a 1-bit PNG back into a Bitmap (black = 0 in PNG greyscale).
fn read_png(path: &std::path::Path) -> (labeld_drivers::Bitmap, png::PixelDimensions) {
    let file = std::fs::File::open(path).expect("png written");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("valid png");
    let info = reader.info().clone();
    assert_eq!(info.bit_depth, png::BitDepth::One);
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let dims = info.pixel_dims.expect("pHYs chunk");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("frame");
    let mut bitmap = labeld_drivers::Bitmap::new(info.width, info.height);
    for y in 0..info.height {
        for x in 0..info.width {
            let byte = buf[y as usize * frame.line_size + (x / 8) as usize];
            bitmap.set(x, y, byte & (0x80 >> (x % 8)) == 0);
        }
    }
    (bitmap, dims)
}

/// The PNG is the print path's exact geometry: read back, it verifies and decodes,
/// and its size in dots is the one `--geometry` reports.
#[test]
fn imb_render_writes_a_verifiable_png() {
    let dir = std::env::temp_dir().join(format!("labelctl-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (dpi, dpi_y, gain) in [
        ("203", "203", "0"),
        ("300", "600", "1"),
        ("304.8", "304.8", "0"),
    ] {
        let path = dir.join(format!("imb-{dpi}-{dpi_y}.png"));
        let out = labelctl(&[
            "imb",
            "render",
            "00270123456200800001",
            "987654321",
            "--dpi",
            dpi,
            "--dpi-y",
            dpi_y,
            "--dot-gain",
            gain,
            "-o",
            path.to_str().expect("utf-8 path"),
            "--geometry",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let geometry: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let (bitmap, dims) = read_png(&path);
        assert_eq!(
            u64::from(bitmap.width()),
            geometry["bitmap"]["width"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(bitmap.height()),
            geometry["dots"]["symbol_height"].as_u64().unwrap()
        );
        let (dpi, dpi_y): (f64, f64) = (dpi.parse().unwrap(), dpi_y.parse().unwrap());
        assert_eq!(f64::from(dims.xppu), (dpi / 0.0254).round());
        let report = labeld::verify::verify_imb(&bitmap, dpi, dpi_y, gain.parse().unwrap())
            .expect("rendered png verifies");
        assert!(report.is_compliant(), "{:?}", report.violations);
        assert_eq!(report.decoded.tracking.as_str(), "00270123456200800001");
        assert_eq!(report.decoded.routing.as_str(), "987654321");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn imb_render_refuses_impossible_geometry() {
    let out = labelctl(&[
        "imb",
        "render",
        "00270123456200800001",
        "--dpi",
        "203",
        "--dot-gain",
        "5",
        "-o",
        "/nonexistent/x.png",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("dot gain"), "{}", stderr(&out));
}

/// Many lines (so they straddle the reader's 64 KiB buffer at every offset), an
/// over-long line in the middle, and a last line with no newline: every line gets
/// its own answer, in order, equal to the library's.
#[test]
fn imb_encode_stream_handles_buffer_edges_and_huge_lines() {
    let mut input = Vec::new();
    let mut expected = Vec::new();
    let mut seed: u64 = 7;
    for i in 0..60_000u64 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let tracking = format!(
            "{}{}{:018}",
            seed % 10,
            (seed >> 8) % 5,
            (seed >> 11) % 1_000_000_000_000_000_000
        );
        let routing = ["", "12345", "123456789", "12345678901"][(i % 4) as usize];
        let line = if routing.is_empty() {
            tracking.clone()
        } else {
            format!("{tracking},{routing}")
        };
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        let symbol = labeld::encode::imb::encode_str(&tracking, routing).expect("valid line");
        expected.push(String::from_utf8(symbol.letters().to_vec()).expect("ascii"));
        if i == 30_000 {
            input.extend(std::iter::repeat_n(b'7', 200_000));
            input.push(b'\n');
            expected.push("error 09: line has 200000 bytes; a tracking code is 20 digits (lines over 4096 bytes are not read)".into());
        }
    }
    input.extend_from_slice(b"01234567094987654321,01234567891");
    expected.push(APPENDIX_4.into());

    let out = labelctl_stdin(&["imb", "encode", "-"], &input);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = stdout(&out).lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (i, (got, want)) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "line {}", i + 1);
    }
}
