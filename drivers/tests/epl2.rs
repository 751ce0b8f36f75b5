//! EPL2 driver output decoded back by a small EPL2 interpreter written from
//! `printer-langs.md` §2 and the EPL Programming Guide (N, q, Q, D, S, GW, P;
//! `GW` data is 0 = black, MSB = leftmost dot), never from the encoder.

use labeld_drivers::lang::epl2::Epl2;
use labeld_drivers::models;
use labeld_drivers::{
    encode_job, Bitmap, Driver, DriverError, MediaKind, NativeElement, NativeImb, Page, Profile,
    Resolution,
};
use proptest::prelude::*;

const DPI: f64 = 203.2;

/// One printed label as the interpreter saw it.
#[derive(Debug)]
struct Printed {
    /// `q` value.
    width: u32,
    /// `Q` p1.
    length: u32,
    /// `Q` p2 (and p3) as sent.
    gap: String,
    density: Option<u32>,
    speed: Option<u32>,
    copies: u32,
    /// Rows of dots, `true` = black.
    image: Vec<Vec<bool>>,
    /// Number of `GW` commands in this label.
    graphics: usize,
}

#[derive(Default)]
struct State {
    width: u32,
    length: u32,
    gap: String,
    density: Option<u32>,
    speed: Option<u32>,
    image: Vec<Vec<bool>>,
    graphics: usize,
}

fn numbers(text: &str) -> Vec<u32> {
    text.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad number {n:?}"))
        })
        .collect()
}

/// Interprets an EPL2 byte stream; panics on anything it does not understand.
fn interpret(data: &[u8]) -> Vec<Printed> {
    let mut printed = Vec::new();
    let mut st = State::default();
    let mut i = 0;
    while i < data.len() {
        // One command line, except GW whose binary data follows the 4th comma.
        if data[i..].starts_with(b"GW") {
            let mut commas = 0;
            let mut j = i + 2;
            while commas < 4 {
                assert!(j < data.len(), "GW header runs off the end");
                if data[j] == b',' {
                    commas += 1;
                }
                j += 1;
            }
            let header = std::str::from_utf8(&data[i + 2..j - 1]).unwrap();
            let p = numbers(header);
            let (x, y, bytes, rows) = (p[0], p[1], p[2] as usize, p[3] as usize);
            let raw = &data[j..j + bytes * rows];
            assert!(
                x as usize + bytes * 8 <= (st.width as usize).div_ceil(8) * 8,
                "GW at x={x} with {bytes} bytes passes q{}",
                st.width
            );
            assert!(y as usize + rows <= st.length as usize, "GW passes Q");
            for r in 0..rows {
                for b in 0..bytes {
                    let byte = raw[r * bytes + b];
                    for bit in 0..8 {
                        let xx = x as usize + b * 8 + bit;
                        let black = byte & (0x80 >> bit) == 0;
                        if xx < st.width as usize {
                            st.image[y as usize + r][xx] = black;
                        } else {
                            assert!(!black, "black dot past q at x={xx}");
                        }
                    }
                }
            }
            st.graphics += 1;
            i = j + bytes * rows;
            assert_eq!(data.get(i), Some(&b'\n'), "GW data not followed by LF");
            i += 1;
            continue;
        }
        let end = data[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| i + p);
        let line = std::str::from_utf8(&data[i..end]).expect("command line is text");
        let line = line.trim_end_matches('\r');
        i = end + 1;
        if line.is_empty() {
            continue;
        }
        let (cmd, args) = line.split_at(1);
        match cmd {
            "N" => {
                assert!(args.is_empty());
                st.image = vec![vec![false; st.width as usize]; st.length as usize];
                st.graphics = 0;
            }
            "q" => {
                st.width = args.parse().unwrap();
                st.image = vec![vec![false; st.width as usize]; st.length as usize];
            }
            "Q" => {
                let (len, gap) = args.split_once(',').expect("Q needs p1,p2");
                st.length = len.parse().unwrap();
                st.gap = gap.to_owned();
                st.image = vec![vec![false; st.width as usize]; st.length as usize];
            }
            "D" => {
                let d: u32 = args.parse().unwrap();
                assert!(d <= 15, "D{d}");
                st.density = Some(d);
            }
            "S" => st.speed = Some(args.parse().unwrap()),
            "P" => {
                let copies = numbers(args)[0];
                assert!((1..=65535).contains(&copies));
                printed.push(Printed {
                    width: st.width,
                    length: st.length,
                    gap: st.gap.clone(),
                    density: st.density,
                    speed: st.speed,
                    copies,
                    image: st.image.clone(),
                    graphics: st.graphics,
                });
            }
            other => panic!("unknown EPL2 command {other:?} in {line:?}"),
        }
    }
    printed
}

fn lp2844() -> Profile {
    models::find("zebra-lp2844").unwrap().profile()
}

fn page(bitmap: Bitmap) -> Page {
    Page::raster(bitmap, Resolution::square(DPI))
}

fn encode(profile: &Profile, pages: &[Page]) -> Vec<u8> {
    encode_job(&mut Epl2::new(profile), pages).unwrap()
}

/// The printed label shows exactly the page (and white to the right, up to `q`).
fn assert_same(printed: &Printed, bitmap: &Bitmap) {
    assert_eq!(printed.length, bitmap.height());
    assert!(printed.width >= bitmap.width() && printed.width < bitmap.width() + 8);
    for (y, row) in printed.image.iter().enumerate() {
        for (x, &black) in row.iter().enumerate() {
            assert_eq!(black, bitmap.get(x as u32, y as u32), "dot ({x}, {y})");
        }
    }
}

fn round_trip(bitmap: &Bitmap) -> Printed {
    let out = encode(&lp2844(), &[page(bitmap.clone())]);
    let mut printed = interpret(&out);
    assert_eq!(printed.len(), 1);
    let printed = printed.remove(0);
    assert_same(&printed, bitmap);
    printed
}

/// A 4×6 shipping-label-like page: text blocks, a Code 128-like bar field, an
/// IMb-like bar row.
fn sample_label(width: u32, height: u32) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    let s = |v: f64| (v * width as f64 / 812.0) as u32;
    for line in 0..6 {
        for ch in 0..30 {
            b.fill_rect(
                s(40.0) + ch * s(16.0),
                s(60.0) + line * s(34.0),
                s(11.0),
                s(22.0),
            );
        }
    }
    for bar in 0..90 {
        b.fill_rect(
            s(60.0) + bar * s(7.0),
            s(400.0),
            s((1 + bar % 3) as f64 * 1.5),
            s(160.0),
        );
    }
    for bar in 0..65 {
        let (top, h) = match bar % 4 {
            0 => (0, 30),
            1 => (0, 20),
            2 => (10, 20),
            _ => (10, 10),
        };
        b.fill_rect(
            s(100.0) + bar * s(9.0),
            s(700.0) + s(top as f64),
            s(4.0),
            s(h as f64),
        );
    }
    for line in 0..4 {
        for ch in 0..24 {
            b.fill_rect(
                s(200.0) + ch * s(16.0),
                s(820.0) + line * s(34.0),
                s(11.0),
                s(22.0),
            );
        }
    }
    b.fill_rect(0, height - s(20.0), width, s(6.0));
    b
}

#[test]
fn blank_rows_top_middle_bottom_full_black_and_odd_widths() {
    for width in [1, 7, 8, 9, 100, 813, 832] {
        let mut b = Bitmap::new(width, 40);
        b.fill_rect(0, 5, width, 2); // full-black rows
        b.set(0, 10, true);
        b.set(width - 1, 11, true); // last dot of an odd-width row
        b.fill_rect(width / 3, 20, width / 2 + 1, 3);
        // rows 0-4, 7-9, 12-19, 23-39 blank: top, middle, bottom. A middle gap
        // is skipped unless its bytes cost less than a GW header (24).
        let printed = round_trip(&b);
        let stride = b.stride();
        let runs = 1 + usize::from(3 * stride >= 24) + usize::from(8 * stride >= 24);
        assert_eq!(printed.graphics, runs, "width {width}");
    }
}

#[test]
fn all_white_and_all_black_pages() {
    let white = Bitmap::new(813, 30);
    let printed = round_trip(&white);
    assert_eq!(printed.graphics, 0);
    let mut black = Bitmap::new(813, 30);
    black.fill_rect(0, 0, 813, 30);
    assert_eq!(round_trip(&black).graphics, 1);
}

#[test]
fn blank_rows_are_not_sent() {
    let mut b = Bitmap::new(832, 1000);
    b.fill_rect(100, 10, 50, 10);
    b.fill_rect(600, 900, 50, 10);
    let out = encode(&lp2844(), &[page(b.clone())]);
    let printed = interpret(&out);
    assert_same(&printed[0], &b);
    assert_eq!(printed[0].graphics, 2);
    // 2 runs of 10 rows, each 7 bytes wide (trimmed), plus headers.
    assert!(out.len() < 300, "{} bytes", out.len());
}

#[test]
fn settings_reach_the_printer() {
    let cases: &[(MediaKind, &str)] = &[
        (MediaKind::Gap, "24"),
        (MediaKind::BlackMark, "B24+0"),
        (MediaKind::Continuous, "0"),
    ];
    for (media, gap) in cases {
        let mut profile = lp2844();
        profile.media = *media;
        profile.copies = 3;
        let out = encode(&profile, &[page(Bitmap::new(16, 16))]);
        let printed = interpret(&out);
        assert_eq!(printed[0].gap, *gap);
        assert_eq!(printed[0].copies, 3);
        assert_eq!(printed[0].density, None);
        assert_eq!(printed[0].speed, None);
    }
    // darkness % -> D0-15
    for (pct, d) in [(0, 0), (50, 8), (100, 15), (255, 15)] {
        let mut profile = lp2844();
        profile.darkness = Some(pct);
        let printed = interpret(&encode(&profile, &[page(Bitmap::new(8, 8))]));
        assert_eq!(printed[0].density, Some(d), "{pct} %");
    }
    // ips -> LP2844 speed codes (1.5/2/2.5/3.5 = S1-S4), clamped to 1-6
    for (ips, s) in [
        (1.0, 1),
        (1.5, 1),
        (2.0, 2),
        (2.5, 3),
        (3.5, 4),
        (6.0, 6),
        (12.0, 6),
    ] {
        let mut profile = lp2844();
        profile.speed_ips = Some(ips);
        let printed = interpret(&encode(&profile, &[page(Bitmap::new(8, 8))]));
        assert_eq!(printed[0].speed, Some(s), "{ips} ips");
    }
    let mut profile = lp2844();
    profile.speed_ips = Some(f32::NAN);
    let err = Epl2::new(&profile)
        .write_page(&page(Bitmap::new(8, 8)), &mut Vec::new())
        .unwrap_err();
    assert!(matches!(err, DriverError::Unsupported(_)), "{err}");
}

#[test]
fn gap_scales_with_resolution() {
    let mut profile = lp2844();
    profile.resolution = Resolution::square(304.8);
    let out = encode(&profile, &[page(Bitmap::new(8, 8))]);
    assert_eq!(interpret(&out)[0].gap, "36"); // 3 mm at 12 dots/mm
}

#[test]
fn multi_page_job_prints_each_page() {
    let a = sample_label(813, 300);
    let mut b = Bitmap::new(400, 200);
    b.fill_rect(3, 3, 390, 190);
    let out = encode(&lp2844(), &[page(a.clone()), page(b.clone())]);
    let printed = interpret(&out);
    assert_eq!(printed.len(), 2);
    assert_same(&printed[0], &a);
    assert_same(&printed[1], &b);
}

#[test]
fn calibration_offsets_move_the_contents() {
    let mut b = Bitmap::new(64, 32);
    b.fill_rect(0, 0, 64, 1);
    b.fill_rect(10, 10, 5, 5);
    b.set(63, 31, true);
    for (dx, dy) in [(3, 2), (-4, -1), (9, 0)] {
        let mut profile = lp2844();
        profile.offset_x = dx;
        profile.offset_y = dy;
        let printed = interpret(&encode(&profile, &[page(b.clone())]));
        let mut expected = Bitmap::new(64, 32);
        for y in 0..32 {
            for x in 0..64 {
                if b.get(x, y) {
                    let (tx, ty) = (x as i32 + dx, y as i32 + dy);
                    if (0..64).contains(&tx) && (0..32).contains(&ty) {
                        expected.set(tx as u32, ty as u32, true);
                    }
                }
            }
        }
        assert_same(&printed[0], &expected);
    }
}

#[test]
fn refusals() {
    let profile = lp2844();
    let mut driver = Epl2::new(&profile);
    let wide = page(Bitmap::new(833, 10));
    assert_eq!(
        driver.write_page(&wide, &mut Vec::new()),
        Err(DriverError::PageTooWide {
            dots: 833,
            max: 832
        })
    );
    let mut native = page(Bitmap::new(100, 10));
    native.native.push(NativeElement::Imb(NativeImb {
        x: 0,
        y: 0,
        tracking: "01234567094987654321".into(),
        routing: "".into(),
    }));
    assert!(matches!(
        driver.write_page(&native, &mut Vec::new()),
        Err(DriverError::NativeUnsupported { .. })
    ));
    assert_eq!(
        driver.write_page(&page(Bitmap::new(0, 10)), &mut Vec::new()),
        Err(DriverError::EmptyPage {
            width: 0,
            height: 10
        })
    );
    assert!(matches!(
        driver.write_page(&page(Bitmap::new(8, 70_000)), &mut Vec::new()),
        Err(DriverError::PageTooLong {
            dots: 70_000,
            max: 65_535
        })
    ));

    let mut ascii = lp2844();
    ascii.ascii_only = true;
    let mut driver = Epl2::new(&ascii);
    assert!(!driver.capabilities().ascii_capable);
    let expected = Err(DriverError::BinaryOnAsciiLink { language: "epl2" });
    assert_eq!(driver.start_job(&mut Vec::new()), expected);
    assert_eq!(
        driver.write_page(&page(Bitmap::new(8, 8)), &mut Vec::new()),
        expected
    );
}

#[test]
fn no_status() {
    let driver = Epl2::new(&lp2844());
    assert_eq!(driver.query_status(), None);
    assert!(!driver.capabilities().status);
    assert!(driver.parse_status(b"").is_err());
    assert!(driver.parse_status(b"00,0,0\r\n").is_err());
}

#[test]
fn bytes_for_a_4x6_label() {
    let b = sample_label(812, 1218);
    let out = encode(&lp2844(), &[page(b.clone())]);
    let printed = interpret(&out);
    assert_same(&printed[0], &b);
    let raw = b.stride() * b.height() as usize;
    eprintln!(
        "epl2 4x6 @ 203.2 dpi: raw {raw} B, sent {} B in {} GW",
        out.len(),
        printed[0].graphics
    );
    assert!(out.len() < raw);
}

fn bitmap_strategy() -> impl Strategy<Value = Bitmap> {
    (1u32..120, 1u32..40, 0u8..4).prop_flat_map(|(w, h, density)| {
        let dots = (w * h) as usize;
        (
            Just((w, h)),
            proptest::collection::vec(0u8..4, dots),
            proptest::collection::vec(any::<bool>(), h as usize),
            Just(density),
        )
            .prop_map(|((w, h), dots, blank_rows, density)| {
                let mut b = Bitmap::new(w, h);
                for y in 0..h {
                    if blank_rows[y as usize] {
                        continue;
                    }
                    for x in 0..w {
                        if dots[(y * w + x) as usize] < density {
                            b.set(x, y, true);
                        }
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
        round_trip(&bitmap);
    }
}
