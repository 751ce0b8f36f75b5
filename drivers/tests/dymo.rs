//! DYMO LabelWriter driver output decoded back by a stream decoder written from
//! `printer-langs.md` §3.2 (ESC resync + `ESC @`, `ESC D`, `ESC L`, density,
//! `ESC h`/`ESC i`, `ESC f 1 n` skips, `SYN` lines with 1 = black, `ESC E`),
//! never from the encoder.

use labeld_drivers::lang::dymo::Dymo;
use labeld_drivers::models;
use labeld_drivers::{
    encode_job, Bitmap, Condition, Conditions, Driver, DriverError, NativeCode128, NativeElement,
    Page, Profile, Resolution, StatusParseError,
};
use proptest::prelude::*;

const ESC: u8 = 0x1B;
const SYN: u8 = 0x16;

/// One label as the decoder saw it.
#[derive(Debug)]
struct Label {
    bytes_per_line: usize,
    length: u32,
    density: Option<u8>,
    mode: Option<u8>,
    /// The image: `bytes_per_line * 8` wide, `length` lines.
    image: Bitmap,
    /// `SYN` lines and `ESC f` commands received.
    syn_lines: usize,
    skips: Vec<u8>,
}

#[derive(Debug)]
struct Decoded {
    resync: usize,
    labels: Vec<Label>,
}

fn decode(data: &[u8]) -> Decoded {
    // Data synchronization: a run of ESC, the last one starting ESC @.
    let mut i = 0;
    while data.get(i + 1) == Some(&ESC) {
        assert_eq!(data[i], ESC);
        i += 1;
    }
    let resync = i;
    assert_eq!(&data[i..i + 2], &[ESC, b'@'], "ESC @ after the resync run");
    i += 2;
    let mut labels = Vec::new();
    let (mut bpl, mut length, mut density, mut mode) = (0usize, 0u32, None, None);
    let mut lines: Vec<Option<Vec<u8>>> = Vec::new();
    let (mut syn_lines, mut skips) = (0, Vec::new());
    while i < data.len() {
        match data[i] {
            SYN => {
                assert!(bpl > 0, "SYN before ESC D");
                lines.push(Some(data[i + 1..i + 1 + bpl].to_vec()));
                syn_lines += 1;
                i += 1 + bpl;
            }
            ESC => {
                let cmd = data[i + 1];
                i += 2;
                match cmd {
                    b'@' => {
                        bpl = 0;
                        length = 0;
                    }
                    b'D' => {
                        bpl = data[i] as usize;
                        i += 1;
                    }
                    b'L' => {
                        length = u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
                        i += 2;
                    }
                    b'c' | b'd' | b'e' | b'g' => density = Some(cmd),
                    b'h' | b'i' => mode = Some(cmd),
                    b'f' => {
                        assert_eq!(data[i], 0x01, "ESC f 1 n");
                        let n = data[i + 1];
                        assert!(n > 0, "zero-line skip");
                        lines.extend(std::iter::repeat_n(None, n as usize));
                        skips.push(n);
                        i += 2;
                    }
                    b'E' => {
                        assert!(lines.len() <= length as usize, "more lines than ESC L");
                        let mut image = Bitmap::new(bpl as u32 * 8, length);
                        for (y, line) in lines.iter().enumerate() {
                            let Some(line) = line else { continue };
                            for x in 0..bpl * 8 {
                                if line[x / 8] & (0x80 >> (x % 8)) != 0 {
                                    image.set(x as u32, y as u32, true);
                                }
                            }
                        }
                        labels.push(Label {
                            bytes_per_line: bpl,
                            length,
                            density,
                            mode,
                            image,
                            syn_lines,
                            skips: std::mem::take(&mut skips),
                        });
                        lines.clear();
                        syn_lines = 0;
                    }
                    other => panic!("unexpected ESC {:?} ({other:#04x})", other as char),
                }
            }
            other => panic!("unexpected byte {other:#04x} at {i}"),
        }
    }
    assert!(lines.is_empty(), "lines after the last ESC E");
    Decoded { resync, labels }
}

fn lw450() -> Profile {
    models::find("dymo-lw450").unwrap().profile()
}

fn page(bitmap: Bitmap) -> Page {
    Page::raster(bitmap, Resolution::square(300.0))
}

fn encode(profile: &Profile, pages: &[Page]) -> Vec<u8> {
    encode_job(&mut Dymo::new(profile), pages).unwrap()
}

/// The decoded label shows exactly the page (and white in the padding bits).
fn assert_same(label: &Label, bitmap: &Bitmap) {
    assert_eq!(label.bytes_per_line, bitmap.stride());
    assert_eq!(label.length, bitmap.height());
    for y in 0..label.length {
        for x in 0..label.image.width() {
            assert_eq!(label.image.get(x, y), bitmap.get(x, y), "dot ({x}, {y})");
        }
    }
}

fn round_trip(profile: &Profile, bitmap: &Bitmap) -> Decoded {
    let decoded = decode(&encode(profile, &[page(bitmap.clone())]));
    assert_eq!(decoded.labels.len(), 1);
    assert_same(&decoded.labels[0], bitmap);
    decoded
}

fn non_blank(bitmap: &Bitmap) -> usize {
    (0..bitmap.height())
        .filter(|&y| bitmap.row(y).iter().any(|&b| b != 0))
        .count()
}

#[test]
fn pages_round_trip_with_blank_runs() {
    for width in [1, 7, 9, 300, 671, 672] {
        let mut b = Bitmap::new(width, 700);
        b.fill_rect(0, 3, width, 2); // full black
        b.set(width - 1, 10, true);
        b.fill_rect(width / 4, 20, width / 2 + 1, 30);
        b.set(0, 640, true); // after a 590-line gap: 255 + 255 + 80
                             // rows 641-699 blank: left to the form feed
        let decoded = round_trip(&lw450(), &b);
        let label = &decoded.labels[0];
        assert!(decoded.resync >= 100, "{} ESC", decoded.resync);
        assert_eq!(label.syn_lines, non_blank(&b));
        assert_eq!(label.skips, vec![3, 5, 9, 255, 255, 80], "width {width}");
        assert_eq!(label.mode, Some(b'h'));
        assert_eq!(label.density, None);
    }
}

#[test]
fn skipping_saves_bytes() {
    let mut b = Bitmap::new(672, 1200);
    b.fill_rect(50, 100, 400, 40);
    b.fill_rect(50, 900, 400, 40);
    let out = encode(&lw450(), &[page(b.clone())]);
    let raw = 84 * 1200;
    assert!(out.len() < raw / 10, "{} bytes vs raw {raw}", out.len());
    assert_same(&decode(&out).labels[0], &b);
}

#[test]
fn density_mode_and_copies() {
    for (pct, code) in [
        (0, b'c'),
        (24, b'c'),
        (25, b'd'),
        (50, b'e'),
        (74, b'e'),
        (75, b'g'),
        (100, b'g'),
    ] {
        let mut profile = lw450();
        profile.darkness = Some(pct);
        let decoded = round_trip(&profile, &Bitmap::new(16, 4));
        assert_eq!(decoded.labels[0].density, Some(code), "{pct} %");
    }
    let mut hi = page(Bitmap::new(16, 4));
    hi.resolution = Resolution { x: 300.0, y: 600.0 };
    let decoded = decode(&encode(&lw450(), &[hi.clone()]));
    assert_eq!(decoded.labels[0].mode, Some(b'i'));
    hi.resolution = Resolution::square(203.2);
    assert!(matches!(
        Dymo::new(&lw450()).write_page(&hi, &mut Vec::new()),
        Err(DriverError::Unsupported(_))
    ));

    let mut profile = lw450();
    profile.copies = 3;
    let mut b = Bitmap::new(40, 10);
    b.fill_rect(1, 1, 30, 3);
    let decoded = decode(&encode(&profile, &[page(b.clone())]));
    assert_eq!(decoded.labels.len(), 3);
    for label in &decoded.labels {
        assert_same(label, &b);
    }
}

#[test]
fn multi_page_job() {
    let mut a = Bitmap::new(672, 300);
    a.fill_rect(10, 10, 600, 50);
    let mut b = Bitmap::new(200, 100);
    b.fill_rect(0, 99, 200, 1);
    let decoded = decode(&encode(&lw450(), &[page(a.clone()), page(b.clone())]));
    assert_eq!(decoded.labels.len(), 2);
    assert_same(&decoded.labels[0], &a);
    assert_same(&decoded.labels[1], &b);
}

#[test]
fn calibration_offsets_move_the_contents() {
    let mut b = Bitmap::new(64, 20);
    b.fill_rect(0, 0, 64, 1);
    b.fill_rect(10, 10, 5, 5);
    let mut profile = lw450();
    profile.offset_x = 4;
    profile.offset_y = -2;
    let decoded = decode(&encode(&profile, &[page(b)]));
    let mut expected = Bitmap::new(64, 20);
    expected.fill_rect(14, 8, 5, 5);
    assert_same(&decoded.labels[0], &expected);
}

#[test]
fn widths_per_model_and_refusals() {
    let mut driver = Dymo::new(&lw450());
    assert_eq!(driver.capabilities().max_width_dots, 672);
    assert_eq!(
        driver.write_page(&page(Bitmap::new(673, 10)), &mut Vec::new()),
        Err(DriverError::PageTooWide {
            dots: 673,
            max: 672
        })
    );
    let xl = models::find("dymo-lw4xl").unwrap().profile();
    let mut b = Bitmap::new(1248, 20);
    b.fill_rect(0, 5, 1248, 3);
    round_trip(&xl, &b);
    assert_eq!(
        Dymo::new(&xl).write_page(&page(Bitmap::new(1249, 10)), &mut Vec::new()),
        Err(DriverError::PageTooWide {
            dots: 1249,
            max: 1248
        })
    );

    let mut native = page(Bitmap::new(100, 10));
    native.native.push(NativeElement::Code128(NativeCode128 {
        x: 0,
        y: 0,
        module: 2,
        height: 10,
        values: vec![104, 33],
        text_below: false,
    }));
    assert!(matches!(
        driver.write_page(&native, &mut Vec::new()),
        Err(DriverError::NativeUnsupported { .. })
    ));
    assert!(matches!(
        driver.write_page(&page(Bitmap::new(10, 0)), &mut Vec::new()),
        Err(DriverError::EmptyPage { .. })
    ));
    assert!(matches!(
        driver.write_page(&page(Bitmap::new(8, 70_000)), &mut Vec::new()),
        Err(DriverError::PageTooLong {
            dots: 70_000,
            max: 65_535
        })
    ));

    let mut ascii = lw450();
    ascii.ascii_only = true;
    let mut driver = Dymo::new(&ascii);
    let expected = Err(DriverError::BinaryOnAsciiLink { language: "dymo" });
    assert_eq!(driver.start_job(&mut Vec::new()), expected);
    assert_eq!(
        driver.write_page(&page(Bitmap::new(8, 8)), &mut Vec::new()),
        expected
    );
}

#[test]
fn bytes_for_a_4x6_label_on_the_4xl() {
    let (w, h) = (1200, 1800);
    let mut b = Bitmap::new(w, h);
    for line in 0..7 {
        for ch in 0..45 {
            b.fill_rect(60 + ch * 24, 90 + line * 50, 16, 34);
        }
    }
    for bar in 0..120 {
        b.fill_rect(90 + bar * 8, 600, 2 + bar % 3, 240);
    }
    for bar in 0..65 {
        b.fill_rect(
            150 + bar * 13,
            1000 + (bar % 2) * 15,
            6,
            44 - (bar % 2) * 15,
        );
    }
    for line in 0..4 {
        for ch in 0..30 {
            b.fill_rect(300 + ch * 24, 1200 + line * 50, 16, 34);
        }
    }
    let xl = models::find("dymo-lw4xl").unwrap().profile();
    let out = encode(&xl, &[page(b.clone())]);
    assert_same(&decode(&out).labels[0], &b);
    let raw = b.stride() * h as usize;
    eprintln!("dymo 4XL 4x6 @ 300 dpi: raw {raw} B, sent {} B", out.len());
    assert!(out.len() < raw);
}

// --- status -----------------------------------------------------------------

#[test]
fn status_bits() {
    use Condition::*;
    let driver = Dymo::new(&lw450());
    assert_eq!(driver.query_status(), Some(&[ESC, b'A'][..]));
    let cases: &[(u8, &[Condition], &str)] = &[
        (0x01, &[], "ready"),
        (0x03, &[], "ready; at top of form"),
        (0x21, &[MediaOut], "out of paper"),
        (0x41, &[Jam], "paper jam"),
        (0x81, &[Other], "error"),
        (0x00, &[Other], "not ready"),
        (
            0xE1,
            &[MediaOut, Jam, Other],
            "out of paper; paper jam; error",
        ),
        (0x05, &[], "ready; undefined bits 0x04"),
    ];
    for &(byte, conditions, detail) in cases {
        let status = driver.parse_status(&[byte]).unwrap();
        let expected: Conditions = conditions.iter().copied().collect();
        assert_eq!(status.conditions, expected, "{byte:#04x}");
        assert_eq!(status.detail, detail, "{byte:#04x}");
        assert_eq!(status.raw, vec![byte]);
        assert_eq!(status.busy, None);
    }
    assert_eq!(
        driver.parse_status(&[]),
        Err(StatusParseError::Short {
            found: 0,
            expected: 1
        })
    );
    assert!(matches!(
        driver.parse_status(&[0x01, 0x01]),
        Err(StatusParseError::Malformed { .. })
    ));
}

fn bitmap_strategy() -> impl Strategy<Value = Bitmap> {
    (1u32..200, 1u32..60, 0u8..4).prop_flat_map(|(w, h, density)| {
        (
            Just((w, h)),
            proptest::collection::vec(0u8..4, (w * h) as usize),
            proptest::collection::vec(any::<bool>(), h as usize),
            Just(density),
        )
            .prop_map(|((w, h), dots, blank_rows, density)| {
                let mut b = Bitmap::new(w, h);
                for y in (0..h).filter(|&y| !blank_rows[y as usize]) {
                    for x in (0..w).filter(|&x| dots[(y * w + x) as usize] < density) {
                        b.set(x, y, true);
                    }
                }
                b
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bitmaps_round_trip(bitmap in bitmap_strategy()) {
        round_trip(&lw450(), &bitmap);
    }
}
