//! Brother QL driver output decoded back two ways:
//! (a) a stream decoder written here from `printer-langs.md` §3.1 (invalidate,
//!     `ESC @`, `ESC i a`, `ESC i z`, `ESC i M/A/K/d`, `M`, `g`/`Z` lines, `FF`/`^Z`),
//!     which un-mirrors each line and takes the page out of the printable area;
//! (b) the independent `brother_ql analyze` tool (PyPI brother_ql 0.9.4), whose
//!     PNG shows each 720-dot line with the mirroring undone.
//!
//! (b) skips with a loud message when `brother_ql` is not installed, unless
//! `LABELD_REQUIRE_TOOLS=1`.

use labeld_drivers::compress::unpackbits;
use labeld_drivers::lang::brother_ql::BrotherQl;
use labeld_drivers::models;
use labeld_drivers::{
    encode_job, Bitmap, Condition, Conditions, Driver, DriverError, NativeElement, NativeText,
    Page, Profile, Resolution, Rotation,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tape width (mm) → printable dots, offset from the right edge of the label as
/// printed (`printer-langs.md` §3.1, brother_ql `labels.py`).
const TAPES: [(u8, usize, usize); 6] = [
    (12, 106, 29),
    (29, 306, 6),
    (38, 413, 12),
    (50, 554, 12),
    (62, 696, 12),
    (102, 1164, 12),
];

fn tape(width_mm: u8) -> (usize, usize) {
    let (_, p, r) = TAPES.iter().find(|t| t.0 == width_mm).unwrap();
    (*p, *r)
}

/// What one page of the stream said.
#[derive(Debug)]
struct DecodedPage {
    /// `ESC i z` n1..n10.
    info: [u8; 10],
    various: Option<u8>,
    cut_every: Option<u8>,
    expanded: Option<u8>,
    margin: Option<u16>,
    compression: bool,
    /// Raster lines as sent (mirrored), `line_bytes` each.
    lines: Vec<Vec<u8>>,
    /// How many of them were `Z`.
    blank_commands: usize,
    /// Ended with `^Z` rather than `FF`.
    last: bool,
}

#[derive(Debug)]
struct DecodedJob {
    invalidate: usize,
    raster_mode: bool,
    pages: Vec<DecodedPage>,
}

/// Decodes a whole job; panics on anything out of place.
fn decode(data: &[u8], line_bytes: usize) -> DecodedJob {
    let mut i = data.iter().take_while(|&&b| b == 0).count();
    let invalidate = i;
    assert_eq!(&data[i..i + 2], &[0x1B, 0x40], "ESC @ after the invalidate");
    i += 2;
    let raster_mode = data[i..].starts_with(&[0x1B, 0x69, 0x61, 0x01]);
    if raster_mode {
        i += 4;
    }
    let mut pages = Vec::new();
    let mut compression = false;
    let mut page: Option<DecodedPage> = None;
    let new_page = || DecodedPage {
        info: [0; 10],
        various: None,
        cut_every: None,
        expanded: None,
        margin: None,
        compression: false,
        lines: Vec::new(),
        blank_commands: 0,
        last: false,
    };
    while i < data.len() {
        let rest = &data[i..];
        let current = page.get_or_insert_with(new_page);
        if rest.starts_with(&[0x1B, 0x69, 0x7A]) {
            current.info.copy_from_slice(&rest[3..13]);
            i += 13;
        } else if rest.starts_with(&[0x1B, 0x69, 0x4D]) {
            current.various = Some(rest[3]);
            i += 4;
        } else if rest.starts_with(&[0x1B, 0x69, 0x41]) {
            current.cut_every = Some(rest[3]);
            i += 4;
        } else if rest.starts_with(&[0x1B, 0x69, 0x4B]) {
            current.expanded = Some(rest[3]);
            i += 4;
        } else if rest.starts_with(&[0x1B, 0x69, 0x64]) {
            current.margin = Some(u16::from_le_bytes([rest[3], rest[4]]));
            i += 5;
        } else if rest[0] == 0x4D {
            compression = match rest[1] {
                0x00 => false,
                0x02 => true,
                other => panic!("compression mode {other:#x}"),
            };
            i += 2;
        } else if rest.starts_with(&[0x67, 0x00]) {
            let n = rest[2] as usize;
            let payload = &rest[3..3 + n];
            let line = if compression {
                unpackbits(payload).expect("packbits line")
            } else {
                payload.to_vec()
            };
            assert_eq!(line.len(), line_bytes, "raster line length");
            current.compression = compression;
            current.lines.push(line);
            i += 3 + n;
        } else if rest[0] == 0x5A {
            current.lines.push(vec![0; line_bytes]);
            current.blank_commands += 1;
            i += 1;
        } else if rest[0] == 0x0C || rest[0] == 0x1A {
            let mut done = page.take().unwrap();
            done.last = rest[0] == 0x1A;
            let count = u32::from_le_bytes(done.info[4..8].try_into().unwrap());
            assert_eq!(count as usize, done.lines.len(), "ESC i z line count");
            pages.push(done);
            i += 1;
            if rest[0] == 0x1A {
                assert_eq!(i, data.len(), "bytes after ^Z");
            }
        } else {
            panic!("unexpected byte {:#04x} at {i}", rest[0]);
        }
    }
    assert!(page.is_none(), "page without a print command");
    DecodedJob {
        invalidate,
        raster_mode,
        pages,
    }
}

/// The page as printed: each line un-mirrored, the page taken from the left of
/// the printable area as printed. Panics if anything is black outside the page.
fn reconstruct(page: &DecodedPage, width: u32, tape_mm: u8, line_bytes: usize) -> Bitmap {
    let (printable, offset_r) = tape(tape_mm);
    let line_dots = line_bytes * 8;
    let left = line_dots - printable - offset_r;
    let mut b = Bitmap::new(width, page.lines.len() as u32);
    for (y, line) in page.lines.iter().enumerate() {
        for wire in 0..line_dots {
            if line[wire / 8] & (0x80 >> (wire % 8)) == 0 {
                continue;
            }
            let x = line_dots - 1 - wire; // as printed
            assert!(
                x >= left && x < left + width as usize,
                "black dot outside the page at x={x}, line {y}"
            );
            b.set((x - left) as u32, y as u32, true);
        }
    }
    b
}

fn profile(model: &str) -> Profile {
    models::find(model).unwrap().profile()
}

fn page(bitmap: Bitmap) -> Page {
    Page::raster(bitmap, Resolution::square(300.0))
}

fn encode(profile: &Profile, pages: &[Page]) -> Vec<u8> {
    encode_job(&mut BrotherQl::new(profile), pages).unwrap()
}

/// A label-like page with blank rows at top, middle and bottom, full-black rows
/// and dots on both edges.
fn test_page(width: u32, height: u32) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    b.fill_rect(0, 4, width, 2);
    b.set(0, 8, true);
    b.set(width - 1, 9, true);
    for i in 0..20 {
        b.fill_rect(10 + i * 13, 20 + i % 5, 7, 30);
    }
    b.fill_rect(width / 2, height / 2, width / 3, 6);
    b.fill_rect(3, height - 12, width - 6, 3);
    b
}

/// A 62 × 100 mm shipping-label-like page at 300 dpi.
fn sample_label() -> Bitmap {
    let (w, h) = (696, 1181);
    let mut b = Bitmap::new(w, h);
    for line in 0..7 {
        for ch in 0..34 {
            b.fill_rect(30 + ch * 19, 60 + line * 48, 13, 32);
        }
    }
    for bar in 0..90 {
        b.fill_rect(40 + bar * 7, 450, 2 + bar % 3, 200);
    }
    for bar in 0..65 {
        let (top, len) = match bar % 4 {
            0 => (0, 44),
            1 => (0, 29),
            2 => (15, 29),
            _ => (15, 14),
        };
        b.fill_rect(60 + bar * 9, 800 + top, 4, len);
    }
    for line in 0..4 {
        for ch in 0..26 {
            b.fill_rect(120 + ch * 19, 900 + line * 48, 13, 32);
        }
    }
    b
}

fn check_round_trip(model: &str, tape_mm: u8, bitmap: &Bitmap) -> DecodedJob {
    let mut profile = profile(model);
    profile.media_mm = Some((tape_mm, 0));
    let out = encode(&profile, &[page(bitmap.clone())]);
    let job = decode(&out, 90);
    assert_eq!(job.pages.len(), 1);
    let got = reconstruct(&job.pages[0], bitmap.width(), tape_mm, 90);
    assert_eq!(&got, bitmap);
    job
}

#[test]
fn ql700_no_packbits_round_trip() {
    let b = test_page(696, 120);
    let job = check_round_trip("brother-ql-700", 62, &b);
    assert!(job.invalidate >= 200, "{} NULs", job.invalidate);
    let p = &job.pages[0];
    assert!(!p.compression);
    assert!(p.blank_commands > 0, "QL-700 takes Z lines");
    assert_eq!(p.info, [0xCE, 0x0A, 62, 0, 120, 0, 0, 0, 0, 0]);
    assert_eq!(p.various, Some(0x40));
    assert_eq!(p.cut_every, Some(1));
    assert_eq!(p.expanded, Some(0x08));
    assert_eq!(p.margin, Some(35));
    assert!(p.last);
}

#[test]
fn ql820_packbits_round_trip() {
    let b = test_page(696, 120);
    let job = check_round_trip("brother-ql-820nwb", 62, &b);
    assert!(job.raster_mode);
    assert!(job.pages[0].compression);
}

#[test]
fn ql800_gets_full_blank_lines() {
    let b = test_page(696, 60);
    let job = check_round_trip("brother-ql-800", 62, &b);
    assert_eq!(job.pages[0].blank_commands, 0);
}

#[test]
fn every_tape_width_and_narrow_pages() {
    for (mm, printable, _) in TAPES.iter().take(5) {
        let w = *printable as u32;
        check_round_trip("brother-ql-820nwb", *mm, &test_page(w, 70));
        check_round_trip("brother-ql-700", *mm, &test_page(w - 37, 70));
    }
}

#[test]
fn odd_widths_and_all_black() {
    for w in [1, 7, 9, 101, 695] {
        let mut b = Bitmap::new(w, 5);
        b.fill_rect(0, 1, w, 3);
        check_round_trip("brother-ql-820nwb", 62, &b);
        check_round_trip("brother-ql-800", 62, &b);
    }
}

#[test]
fn multi_page_job_and_copies() {
    let pages = [test_page(696, 50), test_page(500, 80), test_page(696, 30)];
    for model in ["brother-ql-700", "brother-ql-820nwb"] {
        let mut profile = profile(model);
        let out = encode(
            &profile,
            &pages.iter().map(|b| page(b.clone())).collect::<Vec<_>>(),
        );
        let job = decode(&out, 90);
        assert_eq!(job.pages.len(), 3);
        for (n, (decoded, bitmap)) in job.pages.iter().zip(&pages).enumerate() {
            assert_eq!(decoded.info[8], u8::from(n > 0), "first-page flag");
            assert_eq!(decoded.last, n == 2, "FF between pages, ^Z after the last");
            assert_eq!(&reconstruct(decoded, bitmap.width(), 62, 90), bitmap);
        }

        profile.copies = 2;
        let out = encode(&profile, &[page(pages[0].clone())]);
        let job = decode(&out, 90);
        assert_eq!(job.pages.len(), 2);
        assert!(!job.pages[0].last && job.pages[1].last);
    }
}

#[test]
fn die_cut_labels() {
    let mut profile = profile("brother-ql-820nwb");
    profile.media_mm = Some((62, 100));
    let b = test_page(696, 1109);
    let job = decode(&encode(&profile, &[page(b.clone())]), 90);
    let p = &job.pages[0];
    assert_eq!(&p.info[..4], &[0xCE, 0x0B, 62, 100]);
    assert_eq!(p.margin, Some(0));
    assert_eq!(reconstruct(p, 696, 62, 90), b);
}

#[test]
fn high_resolution_pages_set_the_flag() {
    let b = test_page(696, 40);
    let mut p = page(b.clone());
    p.resolution = Resolution { x: 300.0, y: 600.0 };
    let job = decode(&encode(&profile("brother-ql-820nwb"), &[p.clone()]), 90);
    assert_eq!(job.pages[0].expanded, Some(0x48));
    p.resolution = Resolution::square(203.2);
    assert!(matches!(
        BrotherQl::new(&profile("brother-ql-820nwb")).write_page(&p, &mut Vec::new()),
        Err(DriverError::Unsupported(_))
    ));
}

#[test]
fn calibration_offsets_move_the_contents() {
    let mut b = Bitmap::new(696, 20);
    b.fill_rect(0, 0, 696, 1);
    b.fill_rect(100, 10, 5, 5);
    let mut profile = profile("brother-ql-820nwb");
    profile.offset_x = -3;
    profile.offset_y = 2;
    let job = decode(&encode(&profile, &[page(b.clone())]), 90);
    let got = reconstruct(&job.pages[0], 696, 62, 90);
    let mut expected = Bitmap::new(696, 20);
    expected.fill_rect(0, 2, 693, 1);
    expected.fill_rect(97, 12, 5, 5);
    assert_eq!(got, expected);
}

#[test]
fn refusals() {
    let profile = profile("brother-ql-820nwb");
    let mut driver = BrotherQl::new(&profile);
    assert_eq!(driver.capabilities().max_width_dots, 696);
    assert_eq!(
        driver.write_page(&page(Bitmap::new(697, 10)), &mut Vec::new()),
        Err(DriverError::PageTooWide {
            dots: 697,
            max: 696
        })
    );
    let mut native = page(Bitmap::new(100, 10));
    native.native.push(NativeElement::Text(NativeText {
        x: 0,
        y: 0,
        width: 10,
        height: 10,
        line_pitch: 10,
        lines: vec!["x".into()],
        rotation: Rotation::None,
    }));
    assert!(matches!(
        driver.write_page(&native, &mut Vec::new()),
        Err(DriverError::NativeUnsupported { .. })
    ));
    assert!(matches!(
        driver.write_page(&page(Bitmap::new(696, 0)), &mut Vec::new()),
        Err(DriverError::EmptyPage { .. })
    ));
    assert!(matches!(
        driver.write_page(&page(Bitmap::new(8, 20_000)), &mut Vec::new()),
        Err(DriverError::PageTooLong { .. })
    ));
    let mut narrow = profile.clone();
    narrow.media_mm = Some((29, 0));
    assert_eq!(
        BrotherQl::new(&narrow).write_page(&page(Bitmap::new(307, 4)), &mut Vec::new()),
        Err(DriverError::PageTooWide {
            dots: 307,
            max: 306
        })
    );
    for media in [Some((40, 0)), Some((102, 0)), None] {
        let mut p = profile.clone();
        p.media_mm = media;
        let mut d = BrotherQl::new(&p);
        assert!(matches!(
            d.start_job(&mut Vec::new()),
            Err(DriverError::Unsupported(_))
        ));
        assert!(matches!(
            d.write_page(&page(Bitmap::new(8, 8)), &mut Vec::new()),
            Err(DriverError::Unsupported(_))
        ));
    }
}

#[test]
fn bytes_for_a_62x100_label() {
    let b = sample_label();
    let raw = 90 * b.height() as usize;
    for model in ["brother-ql-700", "brother-ql-800", "brother-ql-820nwb"] {
        let out = encode(&profile(model), &[page(b.clone())]);
        let job = decode(&out, 90);
        assert_eq!(reconstruct(&job.pages[0], 696, 62, 90), b);
        eprintln!(
            "brother {model} 62x100 mm: raw {raw} B, sent {} B",
            out.len()
        );
    }
}

// --- status -----------------------------------------------------------------

fn reply(e1: u8, e2: u8, status_type: u8, phase: u8, notification: u8) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&[0x80, 0x20, b'B', b'4', b'A', b'0', b'0', 0]);
    r[8] = e1;
    r[9] = e2;
    r[10] = 62;
    r[11] = 0x0A;
    r[18] = status_type;
    r[19] = phase;
    r[22] = notification;
    r
}

fn conditions(list: &[Condition]) -> Conditions {
    list.iter().copied().collect()
}

#[test]
fn status_query_and_ready_reply() {
    let driver = BrotherQl::new(&profile("brother-ql-820nwb"));
    assert_eq!(driver.query_status(), Some(&[0x1B, 0x69, 0x53][..]));
    let status = driver.parse_status(&reply(0, 0, 0, 0, 0)).unwrap();
    assert!(status.is_ready());
    assert_eq!(status.busy, Some(false));
    assert_eq!(
        status.detail,
        "ql-820nwb; 62 mm continuous; reply to status request; receiving"
    );
    assert_eq!(status.raw.len(), 32);
}

#[test]
fn status_error_bits() {
    use Condition::*;
    let driver = BrotherQl::new(&profile("brother-ql-820nwb"));
    let cases: &[(u8, u8, Condition, &str)] = &[
        // error information 1
        (0x01, 0, MediaOut, "no media"),
        (0x02, 0, MediaOut, "end of media"),
        (0x04, 0, Cutter, "cutter jam"),
        (0x08, 0, Other, "low battery"),
        (0x10, 0, Other, "main unit in use"),
        (0x20, 0, Offline, "turned off"),
        (0x40, 0, Other, "high-voltage adapter"),
        (0x80, 0, Other, "fan error"),
        // error information 2
        (0, 0x01, WrongMedia, "wrong media"),
        (0, 0x02, Other, "expansion buffer full"),
        (0, 0x04, Other, "communication error"),
        (0, 0x08, BufferFull, "communication buffer full"),
        (0, 0x10, HeadOpen, "cover open"),
        (0, 0x20, Overheat, "cancel key or overheat"),
        (0, 0x40, Jam, "feed error"),
        (0, 0x80, Other, "system error"),
    ];
    for &(e1, e2, condition, name) in cases {
        let status = driver.parse_status(&reply(e1, e2, 0x02, 0, 0)).unwrap();
        assert_eq!(status.conditions, conditions(&[condition]), "{name}");
        assert!(
            status
                .detail
                .ends_with(&format!("error occurred; receiving; errors: {name}")),
            "{}",
            status.detail
        );
    }
    let status = driver.parse_status(&reply(0x03, 0x50, 0x02, 1, 0)).unwrap();
    assert_eq!(status.conditions, conditions(&[MediaOut, HeadOpen, Jam]));
    assert_eq!(status.busy, Some(true));
    assert!(status
        .detail
        .ends_with("errors: no media, end of media, cover open, feed error"));
}

#[test]
fn status_types_notifications_media_and_models() {
    use Condition::*;
    let driver = BrotherQl::new(&profile("brother-ql-700"));
    let off = driver.parse_status(&reply(0, 0, 0x04, 0, 0)).unwrap();
    assert_eq!(off.conditions, conditions(&[Offline]));
    let cover = driver.parse_status(&reply(0, 0, 0x05, 0, 1)).unwrap();
    assert_eq!(cover.conditions, conditions(&[HeadOpen]));
    assert!(cover.detail.contains("notification: cover open"));
    let closed = driver.parse_status(&reply(0, 0, 0x05, 0, 2)).unwrap();
    assert!(closed.is_ready());
    let cooling = driver.parse_status(&reply(0, 0, 0x05, 1, 3)).unwrap();
    assert_eq!(cooling.conditions, conditions(&[Overheat]));
    assert_eq!(cooling.busy, Some(true));
    let done = driver.parse_status(&reply(0, 0, 0x01, 0, 0)).unwrap();
    assert!(done.detail.contains("printing completed"));

    let mut r = reply(0, 0, 0, 0, 0);
    r[4..6].copy_from_slice(b"45");
    r[11] = 0x0B;
    r[10] = 62;
    r[17] = 29;
    let status = driver.parse_status(&r).unwrap();
    assert!(
        status.detail.starts_with("ql-700; 62x29 mm die-cut"),
        "{}",
        status.detail
    );
    r[11] = 0xFF;
    assert_eq!(
        driver.parse_status(&r).unwrap().conditions,
        conditions(&[WrongMedia])
    );
    r[4..6].copy_from_slice(b"ZZ");
    assert!(driver
        .parse_status(&r)
        .unwrap()
        .detail
        .starts_with("unknown model code 5a 5a"));
}

#[test]
fn status_garbage_is_an_error() {
    use labeld_drivers::StatusParseError;
    let driver = BrotherQl::new(&profile("brother-ql-820nwb"));
    let good = reply(0, 0, 0, 0, 0);
    assert_eq!(
        driver.parse_status(&good[..31]),
        Err(StatusParseError::Short {
            found: 31,
            expected: 32
        })
    );
    assert_eq!(
        driver.parse_status(&[]),
        Err(StatusParseError::Short {
            found: 0,
            expected: 32
        })
    );
    let mut long = good.to_vec();
    long.extend_from_slice(&good);
    assert!(matches!(
        driver.parse_status(&long),
        Err(StatusParseError::Malformed { .. })
    ));
    let mut bad = good;
    bad[2] = b'C';
    assert!(matches!(
        driver.parse_status(&bad),
        Err(StatusParseError::Malformed { .. })
    ));
    assert!(driver
        .parse_status(b"hello, this is not a status reply")
        .is_err());
}

// --- brother_ql analyze -----------------------------------------------------

/// Whether `brother_ql` runs here; panics instead of skipping when
/// `LABELD_REQUIRE_TOOLS=1`.
fn brother_ql_available(test: &str) -> bool {
    let ok = Command::new("brother_ql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("LABELD_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{test}: brother_ql is required (pip install brother_ql) but does not run");
        }
        eprintln!(
            "\n*** SKIPPED {test}: `brother_ql` not installed (pip install brother_ql); \
             set LABELD_REQUIRE_TOOLS=1 to make this a failure ***\n"
        );
    }
    ok
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("labeld-bql-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `brother_ql analyze` on `data`; returns the PNGs it wrote, in order, as
/// rows of black/white.
fn analyze(data: &[u8], dir: &Path) -> Vec<Vec<Vec<bool>>> {
    let bin = dir.join("job.bin");
    std::fs::write(&bin, data).unwrap();
    let format = dir.join("OUT{counter:04d}.png");
    let output = Command::new("brother_ql")
        .arg("analyze")
        .arg(&bin)
        .arg("-f")
        .arg(&format)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "brother_ql analyze failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut images = Vec::new();
    for n in 1.. {
        let path = dir.join(format!("OUT{n:04}.png"));
        if !path.exists() {
            break;
        }
        images.push(read_png(&path));
    }
    images
}

fn read_png(path: &Path) -> Vec<Vec<bool>> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let samples = frame.color_type.samples();
    (0..frame.height as usize)
        .map(|y| {
            let row = &buf[y * frame.line_size..];
            (0..frame.width as usize)
                .map(|x| row[x * samples] < 128)
                .collect()
        })
        .collect()
}

/// Our page's rows at brother_ql's place in the 720-dot line as printed.
fn expected_rows(bitmap: &Bitmap, tape_mm: u8, rows: impl Iterator<Item = u32>) -> Vec<Vec<bool>> {
    let (printable, offset_r) = tape(tape_mm);
    let left = 720 - printable - offset_r;
    rows.map(|y| {
        (0..720)
            .map(|x| x >= left && bitmap.get((x - left) as u32, y))
            .collect()
    })
    .collect()
}

fn non_blank_rows(bitmap: &Bitmap) -> Vec<u32> {
    (0..bitmap.height())
        .filter(|&y| bitmap.row(y).iter().any(|&b| b != 0))
        .collect()
}

#[test]
fn brother_ql_analyze_agrees() {
    if !brother_ql_available("brother_ql_analyze_agrees") {
        return;
    }
    let dir = temp_dir("agree");
    for model in ["brother-ql-700", "brother-ql-820nwb"] {
        for (tape_mm, bitmap) in [(62, sample_label()), (29, test_page(306, 200))] {
            let mut profile = profile(model);
            profile.media_mm = Some((tape_mm, 0));
            // Full lines only: brother_ql 0.9.4's reader has no `Z` opcode.
            profile.quirks.blank_line_command = false;
            let out = encode(&profile, &[page(bitmap.clone())]);
            let images = analyze(&out, &dir);
            assert_eq!(images.len(), 1, "{model} {tape_mm} mm");
            let expected = expected_rows(&bitmap, tape_mm, 0..bitmap.height());
            assert_eq!(images[0].len(), expected.len(), "{model} {tape_mm} mm rows");
            assert!(
                images[0] == expected,
                "{model} {tape_mm} mm: analyze differs"
            );

            // With the model's own quirks (Z lines), analyze skips the Z bytes as
            // unknown opcodes: its PNG holds exactly our non-blank rows.
            let out = encode(&self::profile_for(model, tape_mm), &[page(bitmap.clone())]);
            let images = analyze(&out, &dir);
            let rows = non_blank_rows(&bitmap);
            assert!(rows.len() < bitmap.height() as usize);
            assert!(
                images[0] == expected_rows(&bitmap, tape_mm, rows.into_iter()),
                "{model} {tape_mm} mm with Z lines"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn profile_for(model: &str, tape_mm: u8) -> Profile {
    let mut p = profile(model);
    p.media_mm = Some((tape_mm, 0));
    p
}

#[test]
fn brother_ql_analyze_multi_page() {
    if !brother_ql_available("brother_ql_analyze_multi_page") {
        return;
    }
    let dir = temp_dir("multi");
    let a = test_page(696, 40);
    let mut b = Bitmap::new(696, 30);
    b.fill_rect(200, 0, 100, 30);
    let mut profile = profile("brother-ql-820nwb");
    profile.quirks.blank_line_command = false;
    let out = encode(&profile, &[page(a.clone()), page(b.clone())]);
    let images = analyze(&out, &dir);
    assert_eq!(images.len(), 2, "one PNG per FF / ^Z");
    // brother_ql's reader clears its rows only at ESC @, so its second image
    // holds both pages, one after the other.
    let mut both = expected_rows(&a, 62, 0..a.height());
    both.extend(expected_rows(&b, 62, 0..b.height()));
    assert!(images[0] == both[..40]);
    assert!(images[1] == both);
    let _ = std::fs::remove_dir_all(&dir);
}
