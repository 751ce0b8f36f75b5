//! Text: measuring and rasterizing lines in an embedded DejaVu font, crisply as 1-bit.
//!
//! Fonts: DejaVu Sans 2.37 (Book, Bold, Condensed Bold, Sans Mono) from the `dejavu`
//! crate, read with `ab_glyph` (DESIGN.md: a real font shipped by a crate, so labels
//! render the same everywhere). Every family here shares the same vertical metrics
//! (2048 units per em, ascender 1901, descender −483, no line gap, cap height 1493);
//! a unit test pins them, because the layout stage computes line boxes from these
//! constants without opening a font.
//!
//! Rasterization: each glyph outline is scan-converted by `ab_glyph_rasterizer`, which
//! gives the exact area coverage of every dot, and a dot is black when at least half
//! of it is covered ([`COVERAGE_THRESHOLD`]): no grey, no dithering. The baseline and
//! each glyph's origin are snapped to whole dots so every copy of a letter has the same
//! shape and horizontal stems land on whole rows. Horizontal and vertical scales come
//! from `dpi_x` and `dpi_y` separately, so text keeps its physical size on printers
//! whose two resolutions differ.
//!
//! Measuring ([`width_in`]) uses the same advances and kerning (the TrueType `kern`
//! table) as drawing, in inches, independent of any resolution: the layout stage
//! checks that a line fits before any dot exists.

use ab_glyph::{Font as _, FontRef, GlyphId, PxScale};
use labeld_drivers::Bitmap;

/// Font units per em of every embedded face.
pub const UNITS_PER_EM: f64 = 2048.0;
/// Ascender (top of the line box above the baseline), in ems: 1901 / 2048.
pub const ASCENT_EM: f64 = 1901.0 / UNITS_PER_EM;
/// Descender (bottom of the line box below the baseline), in ems: 483 / 2048.
pub const DESCENT_EM: f64 = 483.0 / UNITS_PER_EM;
/// Baseline-to-baseline distance, in ems: ascender + descender (the faces have no
/// line gap). Lines set at this pitch have disjoint line boxes.
pub const LINE_EM: f64 = ASCENT_EM + DESCENT_EM;
/// Height of a capital letter (`H`), in ems: 1493 / 2048.
pub const CAP_HEIGHT_EM: f64 = 1493.0 / UNITS_PER_EM;
/// A dot is black when at least this fraction of it is covered by the glyph.
pub const COVERAGE_THRESHOLD: f32 = 0.5;
/// Points per inch.
pub const POINTS_PER_INCH: f64 = 72.0;

/// An embedded typeface.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Font {
    /// DejaVu Sans Book: address blocks and most text.
    #[default]
    Sans,
    /// DejaVu Sans Bold: tray-tag destination lines, banners.
    SansBold,
    /// DejaVu Sans Condensed Bold: pallet placard lines (large letters, more per line).
    CondensedBold,
    /// DejaVu Sans Mono Book: barcode digits.
    Mono,
}

impl Font {
    /// The font's name in jobs (`sans`, `sans-bold`, `condensed-bold`, `mono`).
    pub const fn name(self) -> &'static str {
        match self {
            Font::Sans => "sans",
            Font::SansBold => "sans-bold",
            Font::CondensedBold => "condensed-bold",
            Font::Mono => "mono",
        }
    }

    /// The TrueType data.
    fn data(self) -> &'static [u8] {
        match self {
            Font::Sans => dejavu::sans::regular(),
            Font::SansBold => dejavu::sans::bold(),
            Font::CondensedBold => dejavu::sans_condensed::bold(),
            Font::Mono => dejavu::sans_mono::regular(),
        }
    }

    /// The parsed face.
    fn face(self) -> FontRef<'static> {
        // Invariant: the data is a TrueType font embedded by the `dejavu` crate;
        // the unit tests parse every face.
        FontRef::try_from_slice(self.data()).expect("embedded DejaVu fonts parse")
    }
}

/// Line pitch (baseline to baseline) for text of `size_pt` points, inches.
pub fn line_pitch_in(size_pt: f64) -> f64 {
    size_pt / POINTS_PER_INCH * LINE_EM
}

/// Height of a block of `lines` lines of `size_pt` points, inches.
pub fn block_height_in(size_pt: f64, lines: usize) -> f64 {
    line_pitch_in(size_pt) * lines as f64
}

/// Height of a capital letter at `size_pt` points, inches.
pub fn cap_height_in(size_pt: f64) -> f64 {
    size_pt / POINTS_PER_INCH * CAP_HEIGHT_EM
}

/// The advance width of `text` set in `font` at `size_pt` points, inches (kerning
/// included).
pub fn width_in(font: Font, size_pt: f64, text: &str) -> f64 {
    let face = font.face();
    width_units(&face, text) / UNITS_PER_EM * size_pt / POINTS_PER_INCH
}

/// The first character of `text` the font cannot draw: a control character, or one
/// with no glyph (it would print as an empty box).
pub fn first_missing(font: Font, text: &str) -> Option<char> {
    let face = font.face();
    text.chars()
        .find(|&c| c.is_control() || (c != ' ' && face.glyph_id(c) == GlyphId(0)))
}

/// Total advance of `text` in font units.
fn width_units(face: &FontRef<'_>, text: &str) -> f64 {
    let mut total = 0.0f64;
    let mut previous: Option<GlyphId> = None;
    for c in text.chars() {
        let id = face.glyph_id(c);
        if let Some(p) = previous {
            total += f64::from(face.kern_unscaled(p, id));
        }
        total += f64::from(face.h_advance_unscaled(id));
        previous = Some(id);
    }
    total
}

/// A rectangle of dots, end-exclusive, in signed coordinates (it may start left of
/// or above the bitmap; drawing clips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotRect {
    /// Left column.
    pub x0: i64,
    /// Top row.
    pub y0: i64,
    /// One past the right column.
    pub x1: i64,
    /// One past the bottom row.
    pub y1: i64,
}

impl DotRect {
    /// Whether (`x`, `y`) lies inside.
    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// Where and how to draw one line of text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineStyle {
    /// Typeface.
    pub font: Font,
    /// Size in points (1/72 in per em).
    pub size_pt: f64,
    /// Horizontal resolution, dots per inch.
    pub dpi_x: f64,
    /// Vertical resolution, dots per inch.
    pub dpi_y: f64,
}

/// Draws `text` with the pen starting at column `x` and the baseline on row
/// `baseline` (both whole dots), black where a dot is at least half covered. Dots
/// outside `clip` or the bitmap are not drawn. Returns the number of dots set.
pub fn draw_line(
    bitmap: &mut Bitmap,
    style: &LineStyle,
    x: i64,
    baseline: i64,
    text: &str,
    clip: DotRect,
) -> u64 {
    let face = style.font.face();
    let height = f64::from(face.height_unscaled());
    let ppem_x = style.size_pt / POINTS_PER_INCH * style.dpi_x;
    let ppem_y = style.size_pt / POINTS_PER_INCH * style.dpi_y;
    let scale = PxScale {
        x: (ppem_x * height / UNITS_PER_EM) as f32,
        y: (ppem_y * height / UNITS_PER_EM) as f32,
    };
    let dots_per_unit = ppem_x / UNITS_PER_EM;
    let clip = DotRect {
        x0: clip.x0.max(0),
        y0: clip.y0.max(0),
        x1: clip.x1.min(i64::from(bitmap.width())),
        y1: clip.y1.min(i64::from(bitmap.height())),
    };
    let mut pen = 0.0f64;
    let mut previous: Option<GlyphId> = None;
    let mut set = 0u64;
    for c in text.chars() {
        let id = face.glyph_id(c);
        if let Some(p) = previous {
            pen += f64::from(face.kern_unscaled(p, id));
        }
        previous = Some(id);
        let origin = x + (pen * dots_per_unit).round() as i64;
        pen += f64::from(face.h_advance_unscaled(id));
        // Glyphs are positioned at whole dots, so a glyph's dots depend only on the
        // face, the glyph and the scale: they are rasterized once per thread.
        let dots = glyph_dots(style.font, &face, id, scale);
        for &(gx, gy) in dots.iter() {
            let px = origin + i64::from(gx);
            let py = baseline + i64::from(gy);
            if clip.contains(px, py) {
                // In range: clip lies inside the bitmap.
                bitmap.set(px as u32, py as u32, true);
                set += 1;
            }
        }
    }
    set
}

/// Cache key: face, glyph, and the scale's bits.
type GlyphKey = (Font, u16, u32, u32);

/// A glyph's black dots, relative to the pen on the baseline.
type GlyphDots = std::rc::Rc<[(i32, i32)]>;

/// Most glyphs kept per thread before the cache starts over (a label uses a few
/// dozen; this bounds memory for any input).
const GLYPH_CACHE_MAX: usize = 4096;

thread_local! {
    /// Black dots of each glyph drawn so far, relative to the pen on the baseline.
    /// A memo only: what is drawn never depends on it.
    static GLYPH_DOTS: std::cell::RefCell<std::collections::HashMap<GlyphKey, GlyphDots>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The black dots of glyph `id` at `scale`, black where a dot is at least half
/// covered, relative to the pen position on the baseline.
fn glyph_dots(
    font: Font,
    face: &FontRef<'_>,
    id: GlyphId,
    scale: PxScale,
) -> std::rc::Rc<[(i32, i32)]> {
    let key = (font, id.0, scale.x.to_bits(), scale.y.to_bits());
    if let Some(dots) = GLYPH_DOTS.with(|cache| cache.borrow().get(&key).cloned()) {
        return dots;
    }
    let glyph = id.with_scale_and_position(scale, ab_glyph::point(0.0, 0.0));
    let mut dots = Vec::new();
    if let Some(outlined) = face.outline_glyph(glyph) {
        let bounds = outlined.px_bounds();
        let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
        outlined.draw(|gx, gy, coverage| {
            if coverage >= COVERAGE_THRESHOLD {
                dots.push((bx + gx as i32, by + gy as i32));
            }
        });
    }
    let dots: GlyphDots = dots.into();
    GLYPH_DOTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= GLYPH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, dots.clone());
    });
    dots
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Font; 4] = [Font::Sans, Font::SansBold, Font::CondensedBold, Font::Mono];

    #[test]
    fn every_face_has_the_pinned_metrics() {
        for font in ALL {
            let face = font.face();
            assert_eq!(face.units_per_em(), Some(2048.0), "{font:?}");
            assert_eq!(face.ascent_unscaled(), 1901.0, "{font:?}");
            assert_eq!(face.descent_unscaled(), -483.0, "{font:?}");
            assert_eq!(face.line_gap_unscaled(), 0.0, "{font:?}");
            let h = face.outline(face.glyph_id('H')).expect("H has an outline");
            assert_eq!(h.bounds.max.y.max(h.bounds.min.y), 1493.0, "{font:?}");
        }
    }

    #[test]
    fn widths_add_up_and_scale_with_size() {
        let one = width_in(Font::Sans, 12.0, "ANYTOWN");
        let two = width_in(Font::Sans, 24.0, "ANYTOWN");
        assert!((two - 2.0 * one).abs() < 1e-9);
        assert!(width_in(Font::Mono, 10.0, "0000") > 0.0);
        // Mono: every digit has the same advance (1233 units).
        let w = width_in(Font::Mono, 72.0, "0123456789");
        assert!((w - 10.0 * 1233.0 / 2048.0).abs() < 1e-9, "{w}");
        assert_eq!(width_in(Font::Sans, 12.0, ""), 0.0);
    }

    #[test]
    fn missing_glyphs_and_control_characters_are_found() {
        assert_eq!(first_missing(Font::Sans, "123 MAIN ST"), None);
        assert_eq!(first_missing(Font::Sans, "ÅNGSTRÖM Straße"), None);
        assert_eq!(first_missing(Font::Sans, "A\tB"), Some('\t'));
        assert_eq!(first_missing(Font::Sans, "A\u{E000}"), Some('\u{E000}'));
        assert_eq!(first_missing(Font::Mono, "漢"), Some('漢'));
    }

    #[test]
    fn text_is_drawn_inside_its_line_box_and_clip() {
        let style = LineStyle {
            font: Font::Sans,
            size_pt: 12.0,
            dpi_x: 203.2,
            dpi_y: 203.2,
        };
        let mut b = Bitmap::new(400, 60);
        let all = DotRect {
            x0: 0,
            y0: 0,
            x1: 400,
            y1: 60,
        };
        let baseline = 40;
        let set = draw_line(&mut b, &style, 10, baseline, "ÅÉQgjy|", all);
        assert_eq!(set, b.count_black());
        assert!(set > 100);
        let ascent = (ASCENT_EM * 12.0 / 72.0 * 203.2).ceil() as u32;
        let descent = (DESCENT_EM * 12.0 / 72.0 * 203.2).ceil() as u32;
        for y in 0..60 {
            for x in 0..400 {
                if b.get(x, y) {
                    assert!(y + ascent >= 40 && y < 40 + descent, "({x},{y})");
                }
            }
        }
        // Clipping: nothing outside the clip, and no panic far outside the bitmap.
        let mut c = Bitmap::new(400, 60);
        let clip = DotRect {
            x0: 20,
            y0: 30,
            x1: 50,
            y1: 38,
        };
        draw_line(&mut c, &style, 10, 40, "WWWW", clip);
        for y in 0..60 {
            for x in 0..400 {
                if c.get(x, y) {
                    assert!(clip.contains(i64::from(x), i64::from(y)));
                }
            }
        }
        draw_line(&mut c, &style, -10_000, -5, "WWWW", all);
        draw_line(&mut c, &style, i64::MAX / 4, i64::MAX / 4, "W", all);
    }

    #[test]
    fn drawn_width_matches_the_measured_width() {
        let style = LineStyle {
            font: Font::Sans,
            size_pt: 20.0,
            dpi_x: 300.0,
            dpi_y: 600.0,
        };
        let mut b = Bitmap::new(2000, 200);
        let all = DotRect {
            x0: 0,
            y0: 0,
            x1: 2000,
            y1: 200,
        };
        draw_line(&mut b, &style, 0, 150, "HELLO WORLD", all);
        let right = (0..2000)
            .rev()
            .find(|&x| (0..200).any(|y| b.get(x, y)))
            .expect("ink");
        let measured = width_in(Font::Sans, 20.0, "HELLO WORLD") * 300.0;
        // The last glyph's ink ends within its advance (D has a right side bearing).
        assert!(f64::from(right) < measured && f64::from(right) > measured - 30.0);
        // Cap height at 600 dpi vertical, on H alone (O overshoots it).
        let mut h = Bitmap::new(200, 200);
        draw_line(&mut h, &style, 0, 150, "H", all);
        let top = (0..200)
            .find(|&y| (0..200).any(|x| h.get(x, y)))
            .expect("ink");
        let cap = f64::from(150 - top);
        assert!((cap - cap_height_in(20.0) * 600.0).abs() <= 1.0, "{cap}");
    }
}
