//! The layout stage: a label job → [`Label`]s, every element placed in inches.
//!
//! Pure: no I/O, no clock, no resolution. A [`Job`] (parsed from JSON by
//! [`Job::from_json`], shapes in [`job`]) goes through its template's file, which
//! places text blocks (font and size in points), barcodes, lines, boxes and images
//! on a label of a physical size; [`crate::render::label`] then turns a [`Label`]
//! into dots for one device.
//!
//! | File | Template |
//! |---|---|
//! | [`job`] | the JSON shapes of every template |
//! | [`address`] | `address`: address labels (4x6, 4x3, 4x2, 3.5x1.125, 62mm, 2.25x1.25), and the address-block engine the envelope and sheet templates reuse |
//! | [`envelope`] | `envelope`: #10 envelope on a laser |
//! | [`tray_tag`] | `tray`: tray/sack tag with the 24-digit IM tray barcode |
//! | [`placard`] | `placard`: pallet/container placard with the IM container barcode |
//! | [`sheet`] | `sheet`: letter sheets of address labels (Avery 5163, 5160) |
//! | [`custom`] | `custom`: free elements in inches or millimetres |
//! | [`png`] | base64 PNG → 1-bit bitmap for custom images |
//!
//! # Rules every template follows
//!
//! - **Barcodes are never shrunk or clipped.** The layout does not know the printer's
//!   resolution, so it reserves room for the largest symbol any resolution can give:
//!   for the IMb [`IMB_MAX_LENGTH_IN`] of bars and [`IMB_MAX_HEIGHT_IN`] of height,
//!   the longest and tallest symbol [`crate::geometry::imb_geometry`] picks at any
//!   150–1200 dpi (a unit test re-derives both), with [`IMB_CLEAR_H_IN`] /
//!   [`IMB_CLEAR_V_IN`] of clear space around it (USPS: ≥ 0.125 in and ≥ 0.028 in,
//!   plus the geometry's own rounding and one dot of placement rounding). What does not
//!   fit is a [`LayoutError`] that names the element and says by how much.
//! - **USPS IMb placement** (DMM 202.5 via QSG 201, `imb-facts.md` §6.2): on address
//!   labels and envelopes the IMb sits directly above or below the address block
//!   (within 5/8 in of an address line; here about 0.1 in), its clear zone touches no
//!   other element and stays inside the label, so it is also clear of the label edges.
//! - **Text** shrinks in steps of [`FONT_STEP_PT`] from each template's preferred size
//!   down to [`MIN_FONT_PT`] (8 pt, the usual floor for machine-readable addresses) and
//!   no further; placard lines never go below 1/2 in capitals. Text boxes use the
//!   font's full line box (ascender + descender), so ink never leaves them.
//! - Coordinates: origin at the label's top-left corner as it is read, x to the
//!   right, y down, inches. [`Feed`] says which side goes across the print head.

pub mod address;
pub mod custom;
pub mod envelope;
pub mod job;
pub mod placard;
pub mod png;
pub mod sheet;
pub mod tray_tag;

pub use job::{Align, ImbData, ImbPosition, Job, SerialRequest, JOB_VERSION};

use crate::encode::code128::{Code128, Code128Error};
use crate::encode::container::ContainerError;
use crate::encode::imb::{EncodeError, Imb};
use crate::encode::tray::TrayError;
use crate::render::text::{self, Font};
use labeld_drivers::Bitmap;
use std::fmt;

/// Longest IMb bar area reserved, inches: `geometry::imb_geometry` gives at most
/// 3.1383 in (64 pitches + one bar) at any 150–1200 dpi and dot gain 0–2.
#[allow(clippy::approx_constant)] // a length in inches that happens to look like π
pub const IMB_MAX_LENGTH_IN: f64 = 3.14;
/// Tallest IMb reserved (full bar), inches: at most 0.1521 in from the geometry.
pub const IMB_MAX_HEIGHT_IN: f64 = 0.155;
/// Clear space kept left and right of the IMb bars, inches: USPS 0.125 in; the
/// geometry's strict quiet zone reaches 0.1447 in at some resolutions (dot gain
/// included), and placement rounds by up to a dot (0.1513 in at 152 dpi, gain 2).
pub const IMB_CLEAR_H_IN: f64 = 0.155;
/// Clear space kept above and below the IMb bars, inches: USPS 0.028 in; the
/// geometry's quiet zone reaches 0.0336 in, plus a dot of rounding at 150 dpi.
pub const IMB_CLEAR_V_IN: f64 = 0.042;
/// Width of the area an IMb needs: bars and both clear zones (3.45 in).
pub const IMB_BOX_W_IN: f64 = IMB_MAX_LENGTH_IN + 2.0 * IMB_CLEAR_H_IN;
/// Height of the area an IMb needs: bars and both clear zones (0.239 in).
pub const IMB_BOX_H_IN: f64 = IMB_MAX_HEIGHT_IN + 2.0 * IMB_CLEAR_V_IN;
/// USPS: the IMb is at most 5/8 in from the top or bottom address line.
pub const IMB_MAX_DISTANCE_IN: f64 = 0.625;
/// Smallest font size text shrinks to before a layout error, points.
pub const MIN_FONT_PT: f64 = 8.0;
/// Step by which text shrinks, points.
pub const FONT_STEP_PT: f64 = 0.5;
/// Most lines in an address block.
pub const MAX_ADDRESS_LINES: usize = 6;

/// A laid-out label: its physical size and its elements, in inches.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// What it is, for messages: `address label 4x6`, `sheet avery-5163 page 2`.
    pub description: String,
    /// Width as read, inches.
    pub width: f64,
    /// Height as read, inches.
    pub height: f64,
    /// Which side of the label goes across the print head.
    pub feed: Feed,
    /// The elements, drawn in order.
    pub elements: Vec<Element>,
}

impl Label {
    /// The IMbs on the label.
    pub fn imbs(&self) -> impl Iterator<Item = &ImbMark> {
        self.elements.iter().filter_map(|e| match e {
            Element::Imb(m) => Some(m),
            _ => None,
        })
    }
}

/// How a label travels through the printer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Feed {
    /// The width goes across the head: printed as laid out.
    #[default]
    Portrait,
    /// The height goes across the head: printed turned 90° (DYMO 30252, Brother
    /// 62 mm tape, #10 envelopes fed short edge first, the 4x6 placard).
    Landscape,
}

/// A rectangle in inches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Area {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Area {
    /// Right edge.
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    /// How far the two areas overlap (the smaller of the overlaps in x and y), or
    /// `None` when they do not.
    pub fn overlap(&self, other: &Area) -> Option<f64> {
        let dx = self.right().min(other.right()) - self.x.max(other.x);
        let dy = self.bottom().min(other.bottom()) - self.y.max(other.y);
        (dx > EPS && dy > EPS).then_some(dx.min(dy))
    }

    fn shifted(self, dx: f64, dy: f64) -> Area {
        Area {
            x: self.x + dx,
            y: self.y + dy,
            ..self
        }
    }
}

/// Slack for comparing lengths computed in floating point, inches.
const EPS: f64 = 1e-9;

/// One thing on a label.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// Lines of text.
    Text(TextBlock),
    /// An Intelligent Mail barcode.
    Imb(ImbMark),
    /// A Code 128 symbol.
    Code128(Code128Mark),
    /// A straight line.
    Line(LineMark),
    /// A rectangle, outlined or filled.
    Box(BoxMark),
    /// A 1-bit picture.
    Image(ImageMark),
}

impl Element {
    /// The area the element may ink (for text: the line boxes, widened by
    /// [`TextBlock::SIDE_BEARING_EM`] on each side; for barcodes: the bars and their
    /// reserved clear zones).
    pub fn area(&self) -> Area {
        match self {
            Element::Text(t) => t.ink_area(),
            Element::Imb(m) => m.clear,
            Element::Code128(c) => c.clear,
            Element::Line(l) => {
                let half = l.thickness / 2.0;
                let (x0, x1) = (l.x1.min(l.x2) - half, l.x1.max(l.x2) + half);
                let (y0, y1) = (l.y1.min(l.y2) - half, l.y1.max(l.y2) + half);
                Area {
                    x: x0,
                    y: y0,
                    width: x1 - x0,
                    height: y1 - y0,
                }
            }
            Element::Box(b) => b.area,
            Element::Image(i) => i.area,
        }
    }

    /// The element's name in messages.
    pub fn name(&self) -> &str {
        match self {
            Element::Text(t) => &t.name,
            Element::Imb(m) => &m.name,
            Element::Code128(c) => &c.name,
            Element::Line(_) => "line",
            Element::Box(_) => "box",
            Element::Image(_) => "image",
        }
    }

    /// The element moved by (`dx`, `dy`) inches.
    pub fn shifted(mut self, dx: f64, dy: f64) -> Element {
        match &mut self {
            Element::Text(t) => {
                t.x += dx;
                t.y += dy;
            }
            Element::Imb(m) => {
                m.x += dx;
                m.y += dy;
                m.clear = m.clear.shifted(dx, dy);
            }
            Element::Code128(c) => {
                c.x += dx;
                c.y += dy;
                c.clear = c.clear.shifted(dx, dy);
            }
            Element::Line(l) => {
                l.x1 += dx;
                l.x2 += dx;
                l.y1 += dy;
                l.y2 += dy;
            }
            Element::Box(b) => b.area = b.area.shifted(dx, dy),
            Element::Image(i) => i.area = i.area.shifted(dx, dy),
        }
        self
    }
}

/// A block of text lines.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBlock {
    /// Name in messages (`to`, `from`, `destination`, …).
    pub name: String,
    /// Left edge of the box (the pen starts here for left-aligned lines).
    pub x: f64,
    /// Top of the first line box.
    pub y: f64,
    /// Box width: lines are aligned in it; every line fits.
    pub width: f64,
    /// The lines, top to bottom.
    pub lines: Vec<String>,
    /// Typeface.
    pub font: Font,
    /// Size in points.
    pub size_pt: f64,
    /// Alignment in the box.
    pub align: Align,
}

impl TextBlock {
    /// Glyph ink may overhang the advance width by this much on either side, ems
    /// (DejaVu's largest side bearing overhang among Latin letters is under 0.1 em).
    pub const SIDE_BEARING_EM: f64 = 0.1;

    /// Baseline-to-baseline distance, inches.
    pub fn line_pitch(&self) -> f64 {
        text::line_pitch_in(self.size_pt)
    }

    /// Height of the block, inches.
    pub fn height(&self) -> f64 {
        text::block_height_in(self.size_pt, self.lines.len())
    }

    /// The area the text may ink.
    pub fn ink_area(&self) -> Area {
        let pad = Self::SIDE_BEARING_EM * self.size_pt / text::POINTS_PER_INCH;
        Area {
            x: self.x - pad,
            y: self.y,
            width: self.width + 2.0 * pad,
            height: self.height(),
        }
    }

    /// Left edge of line `i`'s pen, inches.
    pub fn line_x(&self, i: usize) -> f64 {
        let Some(line) = self.lines.get(i) else {
            return self.x;
        };
        let w = text::width_in(self.font, self.size_pt, line);
        match self.align {
            Align::Left => self.x,
            Align::Center => self.x + (self.width - w) / 2.0,
            Align::Right => self.x + self.width - w,
        }
    }
}

/// An Intelligent Mail barcode.
#[derive(Clone, Debug, PartialEq)]
pub struct ImbMark {
    /// Name in messages.
    pub name: String,
    /// Leading edge of the first bar, inches.
    pub x: f64,
    /// Top of the ascenders, inches.
    pub y: f64,
    /// The area kept clear for it: bars of up to [`IMB_MAX_LENGTH_IN`] ×
    /// [`IMB_MAX_HEIGHT_IN`] from (`x`, `y`) and the clear zones around them.
    pub clear: Area,
    /// The 20-digit tracking code (for native printing).
    pub tracking: String,
    /// The routing code (for native printing).
    pub routing: String,
    /// The encoded symbol.
    pub imb: Imb,
}

/// Module width rule for a Code 128 symbol: the renderer picks the whole number of
/// dots closest to `target` within `min`–`max` (inches), keeping the symbol no
/// longer than `max_length` and inside its area.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModuleRule {
    /// Narrowest module allowed.
    pub min: f64,
    /// Preferred module.
    pub target: f64,
    /// Widest module allowed.
    pub max: f64,
    /// Longest symbol allowed (quiet zones excluded), if the spec limits it.
    pub max_length: Option<f64>,
}

/// A Code 128 symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct Code128Mark {
    /// Name in messages.
    pub name: String,
    /// Where the symbol is anchored, by `align`: the first bar's leading edge
    /// (`left`), the symbol's centre (`center`) or the last bar's trailing edge
    /// (`right`), inches.
    pub x: f64,
    /// Top of the bars, inches.
    pub y: f64,
    /// Bar height, inches.
    pub height: f64,
    /// How `x` anchors the symbol.
    pub align: Align,
    /// The room kept for the symbol and its quiet zones: the renderer's module
    /// choice keeps both inside it horizontally; vertically it is the bars.
    pub clear: Area,
    /// The symbol.
    pub symbol: Code128,
    /// Module width rule.
    pub module: ModuleRule,
    /// Quiet zone each side, in modules (10 by ISO/IEC 15417).
    pub quiet_modules: u32,
}

impl Code128Mark {
    /// A centred symbol whose room is `clear` (the bars are `clear.height` tall).
    pub fn centred(
        name: &str,
        clear: Area,
        symbol: Code128,
        module: ModuleRule,
        quiet_modules: u32,
    ) -> Code128Mark {
        Code128Mark {
            name: name.to_owned(),
            x: clear.x + clear.width / 2.0,
            y: clear.y,
            height: clear.height,
            align: Align::Center,
            clear,
            symbol,
            module,
            quiet_modules,
        }
    }
}

/// A straight line of some thickness.
#[derive(Clone, Debug, PartialEq)]
pub struct LineMark {
    /// Start x.
    pub x1: f64,
    /// Start y.
    pub y1: f64,
    /// End x.
    pub x2: f64,
    /// End y.
    pub y2: f64,
    /// Thickness, inches.
    pub thickness: f64,
}

/// A rectangle.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxMark {
    /// The rectangle.
    pub area: Area,
    /// Outline thickness, inside the rectangle (ignored when filled).
    pub thickness: f64,
    /// Filled black.
    pub fill: bool,
}

/// A 1-bit picture scaled to an area.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageMark {
    /// Where it goes.
    pub area: Area,
    /// The pixels (black = `true`), scaled to `area` by nearest neighbour.
    pub pixels: Bitmap,
}

/// Why a job cannot be laid out: which label, which element, what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutError {
    /// The label: `address label 2.25x1.25`, `sheet avery-5163`, `label job`.
    pub template: String,
    /// The element: `imb`, `to line 2`, `record 7 to line 1`, `version`; empty when the
    /// message is about the whole job.
    pub element: String,
    /// What is wrong.
    pub kind: LayoutErrorKind,
}

impl LayoutError {
    /// A new error.
    pub fn new(
        template: impl Into<String>,
        element: impl Into<String>,
        kind: LayoutErrorKind,
    ) -> LayoutError {
        LayoutError {
            template: template.into(),
            element: element.into(),
            kind,
        }
    }

    /// A stable snake_case code for the wire (`imb_too_wide`, `line_too_wide`, …).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.element.is_empty() {
            write!(f, "{}: {}", self.template, self.kind)
        } else {
            write!(f, "{}: {} {}", self.template, self.element, self.kind)
        }
    }
}

impl std::error::Error for LayoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LayoutErrorKind::Imb(e) => Some(e),
            LayoutErrorKind::Tray(e) => Some(e),
            LayoutErrorKind::Container(e) => Some(e),
            LayoutErrorKind::Code128(e) => Some(e),
            _ => None,
        }
    }
}

/// A length in inches as messages show it: exactly when it has at most three
/// decimals (`2.25`, `1.125`, `4`), else to two decimals (`3.70`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct In(pub f64);

impl fmt::Display for In {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let milli = (self.0 * 1000.0).round();
        if (self.0 * 1000.0 - milli).abs() < 1e-6 {
            let text = format!("{:.3}", milli / 1000.0);
            let text = text.trim_end_matches('0').trim_end_matches('.');
            f.write_str(if text == "-0" { "0" } else { text })
        } else {
            write!(f, "{:.2}", self.0)
        }
    }
}

/// What is wrong with an element. Messages read after the element's name.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutErrorKind {
    /// The text is not a label job.
    #[error("is not a valid label job: {message}")]
    Json {
        /// serde's message (names the field, and the line and column when known).
        message: String,
    },
    /// A `"version"` this build does not know.
    #[error("is {found}; this labeld understands job version {JOB_VERSION}")]
    Version {
        /// The version given.
        found: u32,
    },
    /// A barcode (with its clear zones) wider than the room on the label.
    #[error("needs {} in of width, the label has {} in ({hint})", In(*.needed_in), In(*.available_in))]
    BarcodeTooWide {
        /// Width needed, inches.
        needed_in: f64,
        /// Width available, inches.
        available_in: f64,
        /// What to do.
        hint: String,
    },
    /// A line of text wider than its room at the smallest allowed size.
    #[error("{text:?} is {} in wide at {size_pt} pt, {} in more than the {} in available ({hint})", In(*.width_in), In(.width_in - .available_in), In(*.available_in))]
    LineTooWide {
        /// The line.
        text: String,
        /// Its width at `size_pt`, inches.
        width_in: f64,
        /// The room, inches.
        available_in: f64,
        /// The size it was measured at (the smallest allowed).
        size_pt: f64,
        /// What to do.
        hint: String,
    },
    /// Content taller than the label at the smallest allowed size.
    #[error("needs {} in of height at {size_pt} pt, {} in more than the {} in available ({hint})", In(*.needed_in), In(.needed_in - .available_in), In(*.available_in))]
    TooTall {
        /// Height needed, inches.
        needed_in: f64,
        /// Height available, inches.
        available_in: f64,
        /// The text size it was measured at.
        size_pt: f64,
        /// What to do.
        hint: String,
    },
    /// Too few or too many lines.
    #[error("has {found} lines; give {min} to {max}")]
    LineCount {
        /// Lines given.
        found: usize,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
    /// A line that is empty or only blanks.
    #[error("is empty; remove it or give its text")]
    EmptyLine,
    /// A character the font cannot print.
    #[error("has {found:?} (U+{:04X}) at character {position}, which the label font cannot print", u32::from(*.found))]
    UnsupportedChar {
        /// 1-based position in the line.
        position: usize,
        /// The character.
        found: char,
    },
    /// A line longer than `max_line_chars`.
    #[error("has {found} characters; max_line_chars is {max}")]
    LineTooLong {
        /// Characters in the line.
        found: usize,
        /// The limit.
        max: u32,
    },
    /// Invalid IMb data.
    #[error("is invalid: {0}")]
    Imb(#[source] EncodeError),
    /// Invalid tray barcode data.
    #[error("is invalid: {0}")]
    Tray(#[source] TrayError),
    /// Invalid container barcode data.
    #[error("is invalid: {0}")]
    Container(#[source] ContainerError),
    /// Data Code 128 cannot encode.
    #[error("is invalid: {0}")]
    Code128(#[source] Code128Error),
    /// An element reaching past the label's edge.
    #[error("extends {} in past the label's {edge} edge", In(*.by_in))]
    OutsideLabel {
        /// `left`, `top`, `right` or `bottom`.
        edge: &'static str,
        /// How far, inches.
        by_in: f64,
    },
    /// A barcode's clear zone overlapping another element.
    #[error("clear zone overlaps {other} by {} in; move one of them", In(*.by_in))]
    Overlap {
        /// The other element's name.
        other: String,
        /// Overlap, inches.
        by_in: f64,
    },
    /// A number outside its range.
    #[error("is {found}; expected {expected}")]
    Value {
        /// The value given.
        found: String,
        /// What is allowed.
        expected: String,
    },
    /// An image that cannot be read.
    #[error("cannot be read: {reason}")]
    Image {
        /// Why.
        reason: String,
    },
}

impl LayoutErrorKind {
    /// A stable snake_case code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            LayoutErrorKind::Json { .. } => "invalid_job",
            LayoutErrorKind::Version { .. } => "unsupported_version",
            LayoutErrorKind::BarcodeTooWide { .. } => "barcode_too_wide",
            LayoutErrorKind::LineTooWide { .. } => "line_too_wide",
            LayoutErrorKind::TooTall { .. } => "content_too_tall",
            LayoutErrorKind::LineCount { .. } => "line_count",
            LayoutErrorKind::EmptyLine => "empty_line",
            LayoutErrorKind::UnsupportedChar { .. } => "unsupported_character",
            LayoutErrorKind::LineTooLong { .. } => "line_too_long",
            LayoutErrorKind::Imb(_) => "invalid_imb",
            LayoutErrorKind::Tray(_) => "invalid_tray_barcode",
            LayoutErrorKind::Container(_) => "invalid_container_barcode",
            LayoutErrorKind::Code128(_) => "invalid_code128",
            LayoutErrorKind::OutsideLabel { .. } => "outside_label",
            LayoutErrorKind::Overlap { .. } => "overlap",
            LayoutErrorKind::Value { .. } => "invalid_value",
            LayoutErrorKind::Image { .. } => "invalid_image",
        }
    }
}

/// Lays a job out: one label, or one per sheet for the `sheet` template.
///
/// # Errors
///
/// A [`LayoutError`] naming the label, the element and what does not fit or is
/// invalid. Nothing is ever clipped, shrunk below its minimum or dropped.
pub fn layout(job: &Job) -> Result<Vec<Label>, LayoutError> {
    match job {
        Job::Address(j) => address::layout(j).map(|l| vec![l]),
        Job::Envelope(j) => envelope::layout(j).map(|l| vec![l]),
        Job::Tray(j) => tray_tag::layout(j).map(|l| vec![l]),
        Job::Placard(j) => placard::layout(j).map(|l| vec![l]),
        Job::Sheet(j) => sheet::layout(j),
        Job::Custom(j) => custom::layout(j),
    }
}

/// Parses a JSON job and lays it out.
///
/// # Errors
///
/// As [`Job::from_json`] and [`layout`].
pub fn layout_json(text: &str) -> Result<Vec<Label>, LayoutError> {
    layout(&Job::from_json(text)?)
}

/// Checks and normalises one text line: blanks trimmed at both ends, optionally
/// upper-cased, non-empty, printable in `font`, at most `max_chars` characters.
pub(crate) fn clean_line(
    line: &str,
    font: Font,
    uppercase: bool,
    max_chars: Option<u32>,
) -> Result<String, LayoutErrorKind> {
    let trimmed = line.trim_matches(' ');
    let line = if uppercase {
        trimmed.to_uppercase()
    } else {
        trimmed.to_owned()
    };
    if line.is_empty() {
        return Err(LayoutErrorKind::EmptyLine);
    }
    if let Some((position, found)) = text::first_missing(font, &line)
        .and_then(|c| line.chars().position(|x| x == c).map(|p| (p + 1, c)))
    {
        return Err(LayoutErrorKind::UnsupportedChar { position, found });
    }
    let count = line.chars().count();
    if let Some(max) = max_chars.filter(|&m| count > m as usize) {
        return Err(LayoutErrorKind::LineTooLong { found: count, max });
    }
    Ok(line)
}

/// The widest of `lines` at `size_pt`: (index, width in inches).
pub(crate) fn widest(font: Font, size_pt: f64, lines: &[String]) -> (usize, f64) {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, text::width_in(font, size_pt, l)))
        .fold(
            (0, 0.0),
            |best, cur| if cur.1 > best.1 { cur } else { best },
        )
}

/// Encodes IMb data, or the error for element `name`.
pub(crate) fn encode_imb(data: &ImbData) -> Result<Imb, LayoutErrorKind> {
    if data.tracking.is_empty() {
        return Err(LayoutErrorKind::Value {
            found: "an imb without its serial".into(),
            expected:
                "a 20-digit tracking code (the daemon fills it in when it allocates a serial)"
                    .into(),
        });
    }
    crate::encode::imb::encode_str(&data.tracking, &data.routing).map_err(LayoutErrorKind::Imb)
}

/// A finite number in `min..=max`, or a [`LayoutErrorKind::Value`].
pub(crate) fn check_range(
    value: f64,
    min: f64,
    max: f64,
    unit: &str,
) -> Result<f64, LayoutErrorKind> {
    if value.is_finite() && value >= min && value <= max {
        Ok(value)
    } else {
        Err(LayoutErrorKind::Value {
            found: format!("{value}"),
            expected: format!("{min} to {max} {unit}"),
        })
    }
}

/// Checks that every element lies inside a `width` × `height` label.
pub(crate) fn check_inside(
    template: &str,
    width: f64,
    height: f64,
    elements: &[Element],
) -> Result<(), LayoutError> {
    for e in elements {
        let a = e.area();
        let past = [
            ("left", -a.x),
            ("top", -a.y),
            ("right", a.right() - width),
            ("bottom", a.bottom() - height),
        ];
        if let Some(&(edge, by_in)) = past.iter().find(|(_, by)| *by > 1e-6) {
            return Err(LayoutError::new(
                template,
                e.name(),
                LayoutErrorKind::OutsideLabel { edge, by_in },
            ));
        }
    }
    Ok(())
}

/// Checks that no barcode's clear area overlaps another element.
pub(crate) fn check_clear(template: &str, elements: &[Element]) -> Result<(), LayoutError> {
    for (i, e) in elements.iter().enumerate() {
        if !matches!(e, Element::Imb(_) | Element::Code128(_)) {
            continue;
        }
        let clear = e.area();
        for (j, other) in elements.iter().enumerate() {
            if i == j {
                continue;
            }
            if let Some(by_in) = clear.overlap(&other.area()) {
                return Err(LayoutError::new(
                    template,
                    e.name(),
                    LayoutErrorKind::Overlap {
                        other: other.name().to_owned(),
                        by_in,
                    },
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::imb_geometry;

    /// The reservation constants cover every geometry the renderer can pick.
    #[test]
    fn imb_reservation_covers_every_resolution() {
        let mut dpi = 150.0;
        while dpi <= 1200.0 {
            for gain in 0..3 {
                let Ok(g) = imb_geometry(dpi, dpi, gain) else {
                    continue;
                };
                let length = f64::from(g.length) / dpi;
                assert!(length <= IMB_MAX_LENGTH_IN, "{dpi} {gain}: {length}");
                let full = f64::from(g.full_bar) / dpi;
                assert!(full <= IMB_MAX_HEIGHT_IN, "{dpi}: {full}");
                // Clear zones with one dot of placement rounding.
                let qh = f64::from(g.quiet_left.max(g.quiet_right) + 1) / dpi;
                assert!(qh <= IMB_CLEAR_H_IN + 1e-9, "{dpi} {gain}: {qh}");
                let qv = f64::from(g.quiet_top.max(g.quiet_bottom) + 1) / dpi;
                assert!(qv <= IMB_CLEAR_V_IN + 1e-9, "{dpi}: {qv}");
            }
            dpi += 0.1;
        }
    }

    #[test]
    fn error_messages_name_the_label_the_element_and_the_amount() {
        let e = LayoutError::new(
            "address label 2.25x1.25",
            "imb",
            LayoutErrorKind::BarcodeTooWide {
                needed_in: IMB_BOX_W_IN,
                available_in: 2.25,
                hint: "use a 4 in wide label".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "address label 2.25x1.25: imb needs 3.45 in of width, the label has 2.25 in (use a 4 in wide label)"
        );
        assert_eq!(e.code(), "barcode_too_wide");
    }

    #[test]
    fn inches_print_exactly_or_to_two_decimals() {
        for (v, text) in [
            (2.25, "2.25"),
            (1.125, "1.125"),
            (4.0, "4"),
            (3.7, "3.7"),
            (3.45, "3.45"),
            (0.055, "0.055"),
            (1.0 / 3.0, "0.33"),
            (2.56789, "2.57"),
            (0.0, "0"),
        ] {
            assert_eq!(In(v).to_string(), text, "{v}");
        }
    }

    #[test]
    fn lines_are_cleaned_or_refused() {
        assert_eq!(
            clean_line("  main st ", Font::Sans, true, None),
            Ok("MAIN ST".into())
        );
        assert_eq!(
            clean_line("   ", Font::Sans, false, None),
            Err(LayoutErrorKind::EmptyLine)
        );
        assert_eq!(
            clean_line("A\u{7}B", Font::Sans, false, None),
            Err(LayoutErrorKind::UnsupportedChar {
                position: 2,
                found: '\u{7}'
            })
        );
        assert_eq!(
            clean_line("ABCDE", Font::Sans, false, Some(4)),
            Err(LayoutErrorKind::LineTooLong { found: 5, max: 4 })
        );
    }
}
