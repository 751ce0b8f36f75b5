//! Drawing an Intelligent Mail barcode into a bitmap, dot-exact.
//!
//! Spec: USPS-B-3200 Rev H §2.1.1 (the four bar states) and §2.3 (dimensions), as
//! turned into whole dots by [`crate::geometry`] (see `imb-facts.md` §6.3).
//!
//! With the bar area's top-left corner at (`x`, `y`), bar `i` (0-based) covers the
//! columns `x + i·P … x + i·P + W_drawn − 1`, and rows (heights symmetric about the
//! tracker's centre line, `E` = extension, `T` = tracker):
//!
//! ```text
//! rows y        … y+E−1        ascender extension   (A and F bars)
//! rows y+E      … y+E+T−1      tracker              (every bar)
//! rows y+E+T    … y+2E+T−1     descender extension  (D and F bars)
//! ```
//!
//! So the bar area is `64·P + W_drawn` dots wide and `F = T + 2E` tall. Bars are drawn
//! at the *drawn* width (`W − dot_gain`); the printer's dot gain brings them back to
//! `W`. Every bar starts on the integer pitch grid, so spacing is perfectly even.

use crate::encode::imb::Imb;
use crate::geometry::ImbGeometry;
use labeld_drivers::Bitmap;

/// The symbol alone: a white bitmap of `g.symbol_width` × `g.symbol_height` dots
/// holding the bars, with the quiet zones of `g` on every side.
pub fn imb_bitmap(imb: &Imb, g: &ImbGeometry) -> Bitmap {
    let mut bitmap = Bitmap::new(g.symbol_width, g.symbol_height);
    draw_imb(&mut bitmap, g.quiet_left, g.quiet_top, imb, g);
    bitmap
}

/// Draws the bars of `imb` into `bitmap` with the bar area's top-left corner at
/// (`x`, `y`): `x` is the leading (left) edge of the first bar and `y` the top of the
/// ascenders, **not** the corner of the quiet zone. The caller keeps the quiet zones
/// (`g.quiet_*`) clear around that area. Only black dots are set, and anything past
/// the bitmap's edges is clipped.
pub fn draw_imb(bitmap: &mut Bitmap, x: u32, y: u32, imb: &Imb, g: &ImbGeometry) {
    let tracker_top = y.saturating_add(g.extension);
    let tracker_bottom = tracker_top.saturating_add(g.tracker);
    for (i, bar) in (0u32..).zip(imb.bars().iter()) {
        let left = x.saturating_add(i.saturating_mul(g.pitch));
        let top = if bar.has_ascender() { y } else { tracker_top };
        let bottom = if bar.has_descender() {
            tracker_bottom.saturating_add(g.extension)
        } else {
            tracker_bottom
        };
        bitmap.fill_rect(left, top, g.bar_width_drawn, bottom - top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::imb::{encode_str, Bar};
    use crate::geometry::{imb_geometry, BarDots};

    fn example() -> Imb {
        // B3200 appendix example 4 (facts §2, §5.1 row 4).
        encode_str("01234567094987654321", "01234567891").unwrap()
    }

    /// Expected colour of dot (`px`, `py`) for a symbol drawn at (`x`, `y`).
    fn expected(imb: &Imb, g: &ImbGeometry, x: u32, y: u32, px: u32, py: u32) -> bool {
        if px < x || py < y {
            return false;
        }
        let (dx, dy) = (px - x, py - y);
        let bar = dx / g.pitch;
        if bar >= 65 || dx % g.pitch >= g.bar_width_drawn {
            return false;
        }
        let b: Bar = imb.bars()[bar as usize];
        let asc = dy < g.extension;
        let tracker = dy >= g.extension && dy < g.extension + g.tracker;
        let desc = dy >= g.extension + g.tracker && dy < g.full_bar;
        tracker || (asc && b.has_ascender()) || (desc && b.has_descender())
    }

    #[test]
    fn every_dot_is_where_the_geometry_says() {
        let imb = example();
        for (dpi_x, dpi_y, gain) in [(203.0, 203.0, 0), (300.0, 600.0, 1), (600.0, 300.0, 2)] {
            let g = imb_geometry(dpi_x, dpi_y, gain).unwrap();
            let bitmap = imb_bitmap(&imb, &g);
            assert_eq!(
                (bitmap.width(), bitmap.height()),
                (g.symbol_width, g.symbol_height)
            );
            for py in 0..bitmap.height() {
                for px in 0..bitmap.width() {
                    assert_eq!(
                        bitmap.get(px, py),
                        expected(&imb, &g, g.quiet_left, g.quiet_top, px, py),
                        "({px},{py}) at {dpi_x}x{dpi_y} gain {gain}"
                    );
                }
            }
        }
    }

    #[test]
    fn black_dot_count_matches_the_bar_states() {
        let imb = example();
        let g = imb_geometry(300.0, 300.0, 0).unwrap();
        let heights: u64 = imb
            .bars()
            .iter()
            .map(|b| {
                u64::from(g.tracker)
                    + u64::from(g.extension)
                        * (u64::from(b.has_ascender()) + u64::from(b.has_descender()))
            })
            .sum();
        assert_eq!(
            imb_bitmap(&imb, &g).count_black(),
            heights * u64::from(g.bar_width_drawn)
        );
    }

    #[test]
    fn drawing_at_an_offset_and_past_the_edges_clips() {
        let imb = example();
        let g = imb_geometry(203.0, 203.0, 0).unwrap();
        let mut page = Bitmap::new(800, 200);
        draw_imb(&mut page, 100, 50, &imb, &g);
        for py in 0..200 {
            for px in 0..800 {
                assert_eq!(page.get(px, py), expected(&imb, &g, 100, 50, px, py));
            }
        }
        // Partly and wholly outside: no panic, only the inside is drawn.
        let mut small = Bitmap::new(50, 10);
        draw_imb(&mut small, 30, 5, &imb, &g);
        assert!(small.count_black() > 0);
        draw_imb(&mut small, u32::MAX - 3, u32::MAX, &imb, &g);
        let mut empty = Bitmap::new(0, 0);
        draw_imb(&mut empty, 0, 0, &imb, &g);
        let odd = ImbGeometry::from_dots(
            300.0,
            300.0,
            0,
            BarDots {
                bar_width: u32::MAX,
                pitch: u32::MAX,
                tracker: u32::MAX,
                extension: u32::MAX,
            },
        );
        draw_imb(&mut small, 0, 0, &imb, &odd);
    }
}
