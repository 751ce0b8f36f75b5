//! Geometry → render → verify, end to end: every supported resolution renders an IMb
//! inside the USPS-B-3200 §2.3 tolerances and reads back to the same data; damaged or
//! out-of-tolerance bitmaps give errors or violations, never a wrong decode.

use labeld::encode::imb::{encode_str, Imb};
use labeld::geometry::{imb_geometry, BarDots, Dimension, ImbGeometry};
use labeld::render::imb::{draw_imb, imb_bitmap};
use labeld::verify::{verify_imb, ImbReport, QuietBound, VerifyError};
use labeld_drivers::Bitmap;

/// Inputs from `imb-facts.md` §5.1 (rows 1, 4, 5, 7, 15, 20): no routing, 11-digit
/// routing, the USPS online encoder's example, zero routing, the largest value, a
/// 5-digit ZIP.
const VECTORS: [(&str, &str); 6] = [
    ("01234567094987654321", ""),
    ("01234567094987654321", "01234567891"),
    ("23270592831482031240", "96713024817"),
    ("00000000000000000000", "00000"),
    ("94999999999999999999", "99999999999"),
    ("00270123456789555555", "90210"),
];

fn imb(i: usize) -> Imb {
    let (tracking, routing) = VECTORS[i % VECTORS.len()];
    encode_str(tracking, routing).expect("facts vectors are valid")
}

/// Asserts the report carries `imb`'s data and no violations, and that the measures
/// are exactly the geometry's.
fn assert_clean(report: &ImbReport, imb: &Imb, g: &ImbGeometry) {
    let context = format!("{}x{} dpi, gain {}", g.dpi_x, g.dpi_y, g.dot_gain);
    assert_eq!(report.letters, imb.letters_string(), "{context}");
    let expected = labeld::encode::imb::decode(&imb.bars()).expect("encoded symbols decode");
    assert_eq!(report.decoded, expected, "{context}");
    assert!(
        report.is_compliant(),
        "{context}: {:?}",
        report
            .violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let w = f64::from(g.bar_width);
    assert_eq!(
        (report.bar_width.min_dots, report.bar_width.max_dots),
        (w, w),
        "{context}"
    );
    let p = f64::from(g.pitch);
    assert_eq!(
        (report.pitch.min_dots, report.pitch.max_dots),
        (p, p),
        "{context}"
    );
    assert_eq!(
        report.tracker_bottom - report.tracker_top,
        g.tracker,
        "{context}"
    );
    assert_eq!(report.tracker.max_dots, f64::from(g.tracker), "{context}");
    for m in [report.ascender_bar, report.descender_bar]
        .into_iter()
        .flatten()
    {
        assert_eq!(m.min_dots, f64::from(g.asc_desc_bar), "{context}");
        assert_eq!(m.max_dots, f64::from(g.asc_desc_bar), "{context}");
    }
    if let Some(full) = report.full_bar {
        assert_eq!(full.max_dots, f64::from(g.full_bar), "{context}");
    }
    assert_eq!(report.length.max_dots, f64::from(g.length), "{context}");
}

#[test]
fn round_trip_at_printer_resolutions() {
    let resolutions = [
        (203.0, 203.0),
        (300.0, 300.0),
        (600.0, 600.0),
        (203.2, 203.2),
        (304.8, 304.8),
        (609.6, 609.6),
        (300.0, 600.0),
        (600.0, 300.0),
        (203.0, 406.0),
    ];
    for (n, (dpi_x, dpi_y)) in resolutions.into_iter().enumerate() {
        for gain in 0..=2 {
            let g = imb_geometry(dpi_x, dpi_y, gain).unwrap();
            for v in 0..VECTORS.len() {
                let imb = imb(v + n);
                let report = verify_imb(&imb_bitmap(&imb, &g), dpi_x, dpi_y, gain).unwrap();
                assert_clean(&report, &imb, &g);
                // Given just the symbol, the quiet zones run to the bitmap's edges.
                assert_eq!(report.quiet.left.dots, g.quiet_left);
                assert_eq!(report.quiet.bottom.dots, g.quiet_bottom);
                assert_eq!(report.quiet.right.bounded_by, QuietBound::Edge);
            }
        }
    }
}

#[test]
fn every_integer_dpi_renders_and_verifies_clean() {
    for dpi in 150u32..=1200 {
        let gain = dpi % 3;
        let g = imb_geometry(f64::from(dpi), f64::from(dpi), gain).unwrap();
        let imb = imb(dpi as usize);
        let report = verify_imb(&imb_bitmap(&imb, &g), f64::from(dpi), f64::from(dpi), gain)
            .unwrap_or_else(|e| panic!("{dpi} dpi: {e}"));
        assert_clean(&report, &imb, &g);
    }
}

#[test]
fn mixed_resolutions_render_and_verify_clean() {
    for dpi_x in (150u32..=1200).step_by(97) {
        for dpi_y in (150u32..=1200).step_by(131) {
            let (x, y) = (f64::from(dpi_x), f64::from(dpi_y));
            let g = imb_geometry(x, y, 1).unwrap();
            let imb = imb((dpi_x + dpi_y) as usize);
            let report = verify_imb(&imb_bitmap(&imb, &g), x, y, 1).unwrap();
            assert_clean(&report, &imb, &g);
        }
    }
}

/// A geometry with chosen dots at 203 dpi, no tolerance check.
fn at_203(bar_width: u32, pitch: u32, tracker: u32, extension: u32) -> ImbGeometry {
    ImbGeometry::from_dots(
        203.0,
        203.0,
        0,
        BarDots {
            bar_width,
            pitch,
            tracker,
            extension,
        },
    )
}

#[test]
fn out_of_tolerance_symbols_list_the_right_violations() {
    let imb = imb(1);
    // Table: geometry → (dimension, measured dots) of every violation, in order.
    let cases: [(ImbGeometry, &[(Dimension, f64)]); 5] = [
        // 0: bars 3 dots = 0.0148 in (facts §6.3: too thin).
        (at_203(3, 9, 10, 10), &[(Dimension::BarWidth, 3.0)]),
        // 1: 6 dots = 0.0296 in, too wide.
        (at_203(6, 9, 10, 10), &[(Dimension::BarWidth, 6.0)]),
        // 2: pitch 11 dots = 0.0542 in = 18.5 bars/in.
        (at_203(4, 11, 10, 10), &[(Dimension::Pitch, 11.0)]),
        // 3: tracker 6 dots = 0.0296 in; asc/desc bar 16 = 0.0788 in is short too;
        //    full bar 26 = 0.128 in is fine.
        (
            at_203(4, 9, 6, 10),
            &[
                (Dimension::Tracker, 6.0),
                (Dimension::AscenderBar, 16.0),
                (Dimension::DescenderBar, 16.0),
            ],
        ),
        // 4: extension 13: asc/desc bar 23 = 0.1133 in, full 36 = 0.1773 in.
        (
            at_203(4, 9, 10, 13),
            &[
                (Dimension::AscenderBar, 23.0),
                (Dimension::DescenderBar, 23.0),
                (Dimension::FullBar, 36.0),
            ],
        ),
    ];
    for (i, (g, expected)) in cases.iter().enumerate() {
        let report = verify_imb(&imb_bitmap(&imb, g), 203.0, 203.0, 0).unwrap();
        assert_eq!(report.letters, imb.letters_string(), "case {i}");
        let got: Vec<(Dimension, f64)> = report
            .violations
            .iter()
            .map(|v| (v.dimension, v.measured_dots))
            .collect();
        assert_eq!(got, *expected, "case {i}");
        assert!(!report.is_compliant());
    }
}

#[test]
fn uncompensated_dot_gain_shows_as_a_violation() {
    // Rendered for 1 dot of gain at 203 dpi (drawn 3 dots), verified as if the printer
    // had none: 3 dots = 0.0148 in.
    let g = imb_geometry(203.0, 203.0, 1).unwrap();
    let imb = imb(2);
    let bitmap = imb_bitmap(&imb, &g);
    assert!(verify_imb(&bitmap, 203.0, 203.0, 1).unwrap().is_compliant());
    let report = verify_imb(&bitmap, 203.0, 203.0, 0).unwrap();
    let dims: Vec<Dimension> = report.violations.iter().map(|v| v.dimension).collect();
    assert_eq!(dims, [Dimension::BarWidth]);
    assert_eq!(
        report.violations[0].to_string(),
        "bar width 0.0148 in (3 dots, bar 1) is below the 0.015 in minimum"
    );
}

/// Checks a damaged bitmap: an error, or a report with the original data.
fn never_wrong(bitmap: &Bitmap, imb: &Imb, dpi: f64, what: &str) -> Result<ImbReport, VerifyError> {
    let result = verify_imb(bitmap, dpi, dpi, 0);
    if let Ok(report) = &result {
        assert_eq!(report.letters, imb.letters_string(), "{what}: wrong decode");
    }
    result
}

#[test]
fn damaged_symbols_are_errors_never_wrong_decodes() {
    for dpi in [203.0, 300.0, 600.0] {
        let g = imb_geometry(dpi, dpi, 0).unwrap();
        let imb = imb(dpi as usize);
        let clean = imb_bitmap(&imb, &g);
        let (x0, y0) = (g.quiet_left, g.quiet_top);
        for (i, bar) in imb.bars().iter().enumerate() {
            let left = x0 + i as u32 * g.pitch;
            let (tracker_top, tracker_bottom) = (y0 + g.extension, y0 + g.extension + g.tracker);

            // A bar erased: 64 bars in a row cannot be an IMb.
            let mut b = clean.clone();
            for y in y0..y0 + g.full_bar {
                for x in left..left + g.bar_width_drawn {
                    b.set(x, y, false);
                }
            }
            let what = format!("{dpi} dpi, bar {} erased", i + 1);
            let err = never_wrong(&b, &imb, dpi, &what).unwrap_err();
            assert!(matches!(err, VerifyError::BarCount { .. }), "{what}: {err}");

            // A missing ascender or descender grown, or a present one cut off: the
            // state changes, so the symbol no longer decodes (every single-bar change
            // leaves a character outside the tables).
            let mut b = clean.clone();
            if bar.has_ascender() {
                for y in y0..tracker_top {
                    for x in left..left + g.bar_width_drawn {
                        b.set(x, y, false);
                    }
                }
            } else {
                b.fill_rect(left, y0, g.bar_width_drawn, g.extension);
            }
            let what = format!("{dpi} dpi, bar {} ascender flipped", i + 1);
            let err = never_wrong(&b, &imb, dpi, &what).unwrap_err();
            assert!(matches!(err, VerifyError::Decode { .. }), "{what}: {err}");

            let mut b = clean.clone();
            if !bar.has_descender() {
                b.fill_rect(left, tracker_bottom, g.bar_width_drawn, g.extension);
                let what = format!("{dpi} dpi, bar {} descender added", i + 1);
                let err = never_wrong(&b, &imb, dpi, &what).unwrap_err();
                assert!(matches!(err, VerifyError::Decode { .. }), "{what}: {err}");
            }

            // An extension drawn too long (3 extra dots past the others): same state,
            // so the data is right and the height is a violation if out of limits.
            if bar.has_ascender() && y0 >= 3 {
                let mut b = clean.clone();
                b.fill_rect(left, y0 - 3, g.bar_width_drawn, 3);
                let what = format!("{dpi} dpi, bar {} ascender extended", i + 1);
                let report = never_wrong(&b, &imb, dpi, &what).unwrap();
                assert_eq!(
                    report.ascender_bar.unwrap().max_dots,
                    f64::from(g.asc_desc_bar + 3),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn random_scratches_never_decode_wrongly() {
    // Deterministic LCG (Knuth's MMIX constants).
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let g = imb_geometry(300.0, 300.0, 0).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for round in 0..300 {
        let imb = imb(round);
        let mut b = imb_bitmap(&imb, &g);
        // Erase or paint 1–3 small rectangles inside the bar area.
        for _ in 0..=next() % 3 {
            let x = g.quiet_left + next() % (64 * g.pitch);
            let y = g.quiet_top + next() % g.full_bar;
            let (w, h) = (1 + next() % 6, 1 + next() % 12);
            if next() % 2 == 0 {
                b.fill_rect(x, y, w, h);
            } else {
                for yy in y..y + h {
                    for xx in x..x + w {
                        b.set(xx, yy, false);
                    }
                }
            }
        }
        match never_wrong(&b, &imb, 300.0, &format!("round {round}")) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    // Both outcomes occur (scratches in gaps or quiet zones can be harmless).
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
}

/// Paints "text": glyph-like strokes in a `w` × `h` box at (`x`, `y`).
fn text_block(b: &mut Bitmap, x: u32, y: u32, w: u32, h: u32) {
    let mut cx = x;
    let mut n = 0;
    while cx + 6 <= x + w {
        // A letter: a stem, sometimes a bowl or a bar.
        b.fill_rect(cx, y, 2, h);
        match n % 3 {
            0 => b.fill_rect(cx, y, 6, 2),
            1 => {
                b.fill_rect(cx, y + h / 2, 6, 2);
                b.fill_rect(cx + 4, y + h / 2, 2, h / 2);
            }
            _ => {}
        }
        cx += 9;
        n += 1;
    }
    // The last letter is an `l` ending exactly at the box's right edge.
    b.fill_rect((x + w).saturating_sub(2), y, 2, h);
}

#[test]
fn embedded_in_a_page_with_text_far_away() {
    for (dpi_x, dpi_y) in [
        (203.0, 203.0),
        (300.0, 300.0),
        (600.0, 600.0),
        (300.0, 600.0),
    ] {
        let g = imb_geometry(dpi_x, dpi_y, 0).unwrap();
        let imb = imb(3);
        // A 4 × 3 in page; the symbol's bar area at (0.7 in, 1.5 in).
        let (width, height) = ((4.0 * dpi_x) as u32, (3.0 * dpi_y) as u32);
        let mut page = Bitmap::new(width, height);
        let (x, y) = ((0.7 * dpi_x) as u32, (1.5 * dpi_y) as u32);
        draw_imb(&mut page, x, y, &imb, &g);
        // Address lines above (0.2 in clear), a line left (0.3 in clear) on the bar
        // rows, a line below (0.1 in clear).
        let line = (0.1 * dpi_y) as u32;
        let above = y - (0.2 * dpi_y) as u32 - line;
        text_block(&mut page, x, above, (2.5 * dpi_x) as u32, line);
        text_block(&mut page, 10, y, x - (0.3 * dpi_x) as u32 - 10, line);
        let below = y + g.full_bar + (0.1 * dpi_y) as u32;
        text_block(&mut page, x - 20, below, (3.0 * dpi_x) as u32, line);

        let report = verify_imb(&page, dpi_x, dpi_y, 0).unwrap();
        assert_clean(&report, &imb, &g);
        assert_eq!((report.x, report.y), (x, y));
        assert_eq!(report.quiet.top.bounded_by, QuietBound::Ink);
        assert_eq!(report.quiet.top.dots, (0.2 * dpi_y) as u32);
        assert_eq!(report.quiet.bottom.dots, (0.1 * dpi_y) as u32);
        assert_eq!(report.quiet.left.bounded_by, QuietBound::Ink);
        assert_eq!(report.quiet.left.dots, (0.3 * dpi_x) as u32);
        assert_eq!(report.quiet.right.bounded_by, QuietBound::Edge);
    }
}

#[test]
fn ink_in_the_quiet_zones_is_a_violation() {
    let g = imb_geometry(300.0, 300.0, 0).unwrap();
    let imb = imb(4);
    let mut page = Bitmap::new(1400, 300);
    let (x, y) = (200, 100);
    draw_imb(&mut page, x, y, &imb, &g);
    // A glyph 0.06 in left of the first bar on the bar rows: closer than the
    // 0.125 in quiet zone but not at the bar pitch, so it is not taken for a bar.
    page.fill_rect(x - 18 - 6, y, 6, 30);
    // A speck 5 dots (0.0167 in) above the symbol.
    page.fill_rect(x + 100, y - 5 - 2, 3, 2);
    let report = verify_imb(&page, 300.0, 300.0, 0).unwrap();
    assert_eq!(report.letters, imb.letters_string());
    let got: Vec<(Dimension, f64)> = report
        .violations
        .iter()
        .map(|v| (v.dimension, v.measured_dots))
        .collect();
    assert_eq!(
        got,
        [(Dimension::QuietLeft, 18.0), (Dimension::QuietTop, 5.0)]
    );
    assert_eq!(
        report.violations[0].to_string(),
        "left quiet zone 0.06 in (18 dots) is below the 0.125 in minimum"
    );
}

#[test]
fn just_the_bars_decode_with_quiet_zone_violations() {
    let g = imb_geometry(203.0, 203.0, 0).unwrap();
    let imb = imb(5);
    let mut b = Bitmap::new(64 * g.pitch + g.bar_width_drawn, g.full_bar);
    draw_imb(&mut b, 0, 0, &imb, &g);
    let report = verify_imb(&b, 203.0, 203.0, 0).unwrap();
    assert_eq!(report.letters, imb.letters_string());
    let dims: Vec<Dimension> = report.violations.iter().map(|v| v.dimension).collect();
    assert_eq!(
        dims,
        [
            Dimension::QuietLeft,
            Dimension::QuietRight,
            Dimension::QuietTop,
            Dimension::QuietBottom
        ]
    );
    assert_eq!(report.quiet.left.bounded_by, QuietBound::Edge);
}

#[test]
fn two_symbols_are_ambiguous() {
    let g = imb_geometry(203.0, 203.0, 0).unwrap();
    let mut page = Bitmap::new(2 * g.symbol_width, g.symbol_height);
    draw_imb(&mut page, g.quiet_left, g.quiet_top, &imb(0), &g);
    draw_imb(
        &mut page,
        g.symbol_width + g.quiet_left,
        g.quiet_top,
        &imb(1),
        &g,
    );
    let err = verify_imb(&page, 203.0, 203.0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 intelligent mail barcodes decode in this bitmap; verify one at a time (crop the bitmap to one symbol)"
    );
}

#[test]
fn upside_down_is_an_error() {
    // Rotating 180° reverses the bars and swaps ascenders with descenders.
    let g = imb_geometry(300.0, 300.0, 0).unwrap();
    let imb = imb(1);
    let b = imb_bitmap(&imb, &g);
    let (w, h) = (b.width(), b.height());
    let mut rotated = Bitmap::new(w, h);
    for y in 0..h {
        for x in 0..w {
            if b.get(x, y) {
                rotated.set(w - 1 - x, h - 1 - y, true);
            }
        }
    }
    let err = verify_imb(&rotated, 300.0, 300.0, 0).unwrap_err();
    assert!(matches!(err, VerifyError::Decode { .. }), "{err}");
}

#[test]
fn a_full_label_page_full_of_text() {
    // 4 × 6 in at 600 dpi: 2400 × 3600 dots, 40 lines of "text" and one IMb.
    let dpi = 600.0;
    let g = imb_geometry(dpi, dpi, 1).unwrap();
    let imb = imb(2);
    let mut page = Bitmap::new(2400, 3600);
    for line in 0..40 {
        text_block(&mut page, 60, 60 + line * 80, 2280, 50);
    }
    let (x, y) = (300, 3400);
    draw_imb(&mut page, x, y, &imb, &g);
    // About 20 ms in release, 0.2 s in debug (measured, not asserted).
    let report = verify_imb(&page, dpi, dpi, 1).unwrap();
    assert_clean(&report, &imb, &g);
    assert_eq!(report.quiet.top.bounded_by, QuietBound::Ink);
}
