//! Reading a rendered Intelligent Mail barcode back from a bitmap: find the bars,
//! measure them against the USPS-B-3200 tolerances, classify and decode them.
//!
//! Spec: USPS-B-3200 Rev H §2.1.1 (bar states), §2.2 (decoded by running the encoding
//! steps backwards in [`crate::encode::imb::decode`]) and §2.3 (dimensions, limits in
//! [`crate::geometry`]); facts in `imb-facts.md` §5.2 and §6.
//!
//! # Method, and where it comes from
//!
//! 1. **Blobs.** Black dots are grouped into 4-connected components by run-length
//!    labelling: each row is cut into runs of black dots, a run is joined to every
//!    run it overlaps in the row above, and union–find merges the labels. This is the
//!    classic two-pass connected-component labelling of Rosenfeld and Pfaltz
//!    ("Sequential operations in digital picture processing", J. ACM 13(4), 1966),
//!    done on runs instead of dots, with Tarjan's union–find (J. ACM 22(2), 1975).
//!    Each blob keeps its bounding box and its black-dot count.
//! 2. **Rows of bars.** A blob at most [`MAX_BAR_WIDTH_IN`] wide and at least
//!    [`MIN_BAR_HEIGHT_IN`] tall may be a bar. Each candidate links to the nearest
//!    candidate to its right, within [`MAX_PITCH_IN`], that shares at least one row
//!    with it. From every candidate a chain follows these links while all its members
//!    share a common band of rows (the tracker: every IMb bar covers it) and the
//!    spacing stays within a quarter (at least 2 dots) of the chain's first spacing.
//!    A chain of exactly 65 that no bar-like ink on its band extends to the left is a
//!    symbol; anything else is an error. Ink farther away, off the tracker rows or at
//!    an irregular distance ends a chain, so the symbol is found anywhere in a page
//!    and nearby text shows up as a short quiet zone rather than as extra bars. The
//!    bounds are about twice (half) the legal limits, so an out-of-tolerance symbol
//!    is still found and measured.
//! 3. **Bar states.** Every bar must be a solid rectangle (a blob whose black-dot
//!    count is its box's area). The tracker band is the rows every bar covers. A
//!    bar's extension above (below) the band is an ascender (descender) when it is
//!    more than half the median extension above (below). This reads the same three
//!    zones zint's `--dump` prints as its three rows (ascender, tracker, descender;
//!    facts §5.2).
//! 4. **Measures.** Widths and heights in dots are per bar; pitch is centre to centre
//!    (half-dot exact); printed width = drawn + `dot_gain`, printed horizontal quiet
//!    zone = clear dots − `dot_gain` (as [`crate::geometry`] reserves it). Heights are
//!    measured as §2.3 defines them: tracker, ascender/descender bar from the far
//!    edge of the tracker (`T + E`), full bar (`T + 2E`). Quiet zones are the clear
//!    dots between the symbol's bounding box and the nearest ink or the bitmap's edge,
//!    across the symbol's rows (left/right) or columns (top/bottom).
//! 5. **Decode** with [`crate::encode::imb::decode`]: every character and the frame
//!    check sequence must be right, so a damaged symbol is an error, never another
//!    number.
//!
//! Out-of-tolerance measures are not errors: they are listed as [`Violation`]s in an
//! [`ImbReport`] and the caller decides ([`ImbReport::is_compliant`]).

use crate::encode::imb::{decode, Bar, DecodeError, Decoded, BAR_COUNT};
use crate::geometry::{check_resolution, Axis, Dimension, GeometryError, Inches, Limit};
use labeld_drivers::Bitmap;
use std::fmt;

/// Widest blob taken for a bar, inches: twice the 0.025 in maximum bar width.
pub const MAX_BAR_WIDTH_IN: f64 = 2.0 * 0.025;

/// Shortest blob taken for a bar, inches: half the 0.039 in minimum tracker. Specks,
/// punctuation and halftone dots are never candidates.
pub const MIN_BAR_HEIGHT_IN: f64 = 0.039 / 2.0;

/// Largest centre-to-centre distance between neighbouring bars, inches: twice the
/// 1/20 in maximum pitch.
pub const MAX_PITCH_IN: f64 = 2.0 * 0.05;

/// Why no IMb could be read. Tolerance problems are never errors; see [`Violation`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A resolution outside 150–1200 dpi.
    #[error("cannot verify: {0}")]
    Resolution(#[from] GeometryError),
    /// No row of exactly 65 bars.
    #[error("no intelligent mail barcode found: the longest row of evenly spaced bars sharing a tracker band has {}, an imb has 65 (check that the symbol is whole, undamaged and clear of other ink)", bar_count_text(*.found))]
    BarCount {
        /// Bars in the longest row found, counted up to 66 (66 means "66 or more";
        /// 0 when there is no bar-like ink).
        found: usize,
    },
    /// A bar is not a solid rectangle.
    #[error("bar {bar} (x {x}, y {y}, {width}×{height} dots) is not a solid rectangle: {black} of {area} dots are black; the symbol is damaged or touches other ink")]
    RaggedBar {
        /// 1-based bar number.
        bar: usize,
        /// Left column of its bounding box.
        x: u32,
        /// Top row of its bounding box.
        y: u32,
        /// Box width in dots.
        width: u32,
        /// Box height in dots.
        height: u32,
        /// Black dots found.
        black: u64,
        /// Dots in the box.
        area: u64,
    },
    /// 65 bars were found but they do not decode.
    #[error("the bars read as {letters} but do not decode: {source}")]
    Decode {
        /// The 65 state letters as read.
        letters: String,
        /// Why decoding failed.
        source: DecodeError,
    },
    /// More than one IMb decodes.
    #[error("{count} intelligent mail barcodes decode in this bitmap; verify one at a time (crop the bitmap to one symbol)")]
    SeveralSymbols {
        /// How many decoded.
        count: usize,
    },
}

/// "12 bars", or "more than 65 bars" for the 66 that stands for any longer row.
fn bar_count_text(found: usize) -> String {
    if found > BAR_COUNT {
        format!("more than {BAR_COUNT} bars")
    } else {
        format!("{found} bars")
    }
}

/// One bar as found in the bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundBar {
    /// Its state, as classified.
    pub bar: Bar,
    /// Left column.
    pub x: u32,
    /// Drawn width in dots (printed width = this + dot gain).
    pub width: u32,
    /// Top row.
    pub top: u32,
    /// One past the bottom row.
    pub bottom: u32,
}

/// The smallest and largest value of one measured dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measure {
    /// Smallest value, dots (printed, for widths).
    pub min_dots: f64,
    /// Largest value, dots.
    pub max_dots: f64,
    /// Smallest value, inches.
    pub min_in: f64,
    /// Largest value, inches.
    pub max_in: f64,
}

impl Measure {
    /// Min and max of `values` (dots) at `dpi`; `None` when there are none.
    fn of(values: &[(usize, f64)], dpi: f64) -> Option<Measure> {
        let min = values.iter().map(|v| v.1).reduce(f64::min)?;
        let max = values.iter().map(|v| v.1).reduce(f64::max)?;
        Some(Measure {
            min_dots: min,
            max_dots: max,
            min_in: min / dpi,
            max_in: max / dpi,
        })
    }
}

/// What ends a quiet zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuietBound {
    /// The bitmap's edge: the paper beyond it may be clear, but the bitmap cannot say.
    Edge,
    /// Other ink in the bitmap.
    Ink,
}

/// One quiet zone as found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quiet {
    /// Clear dots in the bitmap between the symbol and the nearest ink or edge.
    pub dots: u32,
    /// The printed clear space in dots: left/right lose the dot gain.
    pub printed_dots: u32,
    /// The printed clear space in inches (left/right lose the dot gain).
    pub printed_in: f64,
    /// What ends it.
    pub bounded_by: QuietBound,
}

/// The four quiet zones around the symbol's bounding box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuietZones {
    /// Left of the first bar, across the symbol's rows.
    pub left: Quiet,
    /// Right of the last bar, across the symbol's rows.
    pub right: Quiet,
    /// Above the symbol, across its columns.
    pub top: Quiet,
    /// Below the symbol, across its columns.
    pub bottom: Quiet,
}

/// A measured dimension outside its B3200 §2.3 limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Violation {
    /// What was measured.
    pub dimension: Dimension,
    /// The 1-based bar where the extreme value was found (for pitch: the left bar of
    /// the pair), or `None` for the symbol as a whole.
    pub bar: Option<usize>,
    /// The printed value in dots.
    pub measured_dots: f64,
    /// The printed value in inches.
    pub measured_in: f64,
    /// The limit it breaks.
    pub limit: Limit,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in ({} dots",
            self.dimension,
            Inches(self.measured_in),
            self.measured_dots
        )?;
        if let Some(bar) = self.bar {
            write!(f, ", bar {bar}")?;
        }
        if self.measured_in < self.limit.min {
            write!(f, ") is below the {} in minimum", Inches(self.limit.min))
        } else {
            write!(f, ") is above the {} in maximum", Inches(self.limit.max))
        }
    }
}

/// Everything read from one IMb in a bitmap.
#[derive(Clone, Debug, PartialEq)]
pub struct ImbReport {
    /// Horizontal resolution used for inches.
    pub dpi_x: f64,
    /// Vertical resolution used for inches.
    pub dpi_y: f64,
    /// Dot gain added to drawn widths.
    pub dot_gain: u32,
    /// The 65 state letters, left to right.
    pub letters: String,
    /// The tracking and routing codes carried.
    pub decoded: Decoded,
    /// Each bar: state and position.
    pub bars: [FoundBar; BAR_COUNT],
    /// Left column of the first bar.
    pub x: u32,
    /// Top row of the highest bar.
    pub y: u32,
    /// Drawn width of the bar area (first bar's left edge to last bar's right edge).
    pub width: u32,
    /// Height of the bar area.
    pub height: u32,
    /// First row every bar covers.
    pub tracker_top: u32,
    /// One past the last row every bar covers.
    pub tracker_bottom: u32,
    /// Printed bar widths.
    pub bar_width: Measure,
    /// Centre-to-centre distances of neighbouring bars.
    pub pitch: Measure,
    /// Tracker heights (the band, plus any stray rows of bars without an extension
    /// on that side).
    pub tracker: Measure,
    /// Ascender bar heights `T + E` (A and F bars).
    pub ascender_bar: Option<Measure>,
    /// Descender bar heights `T + E` (D and F bars).
    pub descender_bar: Option<Measure>,
    /// Full bar heights `T + 2E` (F bars).
    pub full_bar: Option<Measure>,
    /// Ascender extensions `E` above the tracker band.
    pub ascender_extension: Option<Measure>,
    /// Descender extensions `E` below the tracker band.
    pub descender_extension: Option<Measure>,
    /// Printed overall length (`64·P + W`).
    pub length: Measure,
    /// The clear space around the symbol inside the bitmap.
    pub quiet: QuietZones,
    /// Every dimension outside its limit.
    pub violations: Vec<Violation>,
}

impl ImbReport {
    /// Whether every measured dimension is inside its limit.
    pub fn is_compliant(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Finds the IMb in `bitmap`, measures it at `dpi_x` × `dpi_y` with `dot_gain` dots
/// of bar widening, and decodes it. The symbol may be anywhere in the bitmap, alone or
/// among other ink. Tolerance problems come back inside the report
/// ([`ImbReport::violations`]); an error means no IMb could be read.
pub fn verify_imb(
    bitmap: &Bitmap,
    dpi_x: f64,
    dpi_y: f64,
    dot_gain: u32,
) -> Result<ImbReport, VerifyError> {
    let dpi_x = check_resolution(Axis::Horizontal, dpi_x)?;
    let dpi_y = check_resolution(Axis::Vertical, dpi_y)?;
    let blobs = blobs(bitmap);
    let max_width = (MAX_BAR_WIDTH_IN * dpi_x).ceil() as u32;
    let min_height = (MIN_BAR_HEIGHT_IN * dpi_y).floor() as u32;
    let mut candidates: Vec<Blob> = blobs
        .into_iter()
        .filter(|b| b.width() <= max_width && b.height() >= min_height)
        .collect();
    candidates.sort_by_key(|b| (b.centre2(), b.y0));
    let max_pitch2 = 2 * (MAX_PITCH_IN * dpi_x).ceil() as u64;
    let (symbols, longest) = rows_of_bars(&candidates, max_pitch2);
    if symbols.is_empty() {
        return Err(VerifyError::BarCount { found: longest });
    }
    let ctx = Context {
        bitmap,
        dpi_x,
        dpi_y,
        dot_gain,
    };
    let mut first_error = None;
    let mut reports = Vec::new();
    for chain in symbols {
        let chain: Vec<Blob> = chain.iter().map(|&i| candidates[i]).collect();
        match ctx.read(&chain) {
            Ok(report) => reports.push(report),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match (reports.len(), first_error) {
        (1, _) => Ok(reports.remove(0)),
        (0, Some(err)) => Err(err),
        (0, None) => Err(VerifyError::BarCount { found: longest }),
        (count, _) => Err(VerifyError::SeveralSymbols { count }),
    }
}

/// A 4-connected group of black dots: bounding box (end-exclusive) and dot count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blob {
    x0: u32,
    x1: u32,
    y0: u32,
    y1: u32,
    black: u64,
}

impl Blob {
    fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// Twice the horizontal centre (exact in whole numbers).
    fn centre2(&self) -> u64 {
        u64::from(self.x0) + u64::from(self.x1)
    }

    /// Rows shared with `y0..y1`.
    fn overlap(&self, y0: u32, y1: u32) -> u32 {
        self.y1.min(y1).saturating_sub(self.y0.max(y0))
    }

    fn area(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }
}

/// A run of black dots in one row: columns `x0..x1`.
#[derive(Clone, Copy, Debug)]
struct Run {
    x0: u32,
    x1: u32,
    y: u32,
}

/// Appends the black runs of one packed row (MSB = leftmost dot). White stretches
/// are skipped eight bytes at a time and black ones a byte at a time; inside a mixed
/// byte, `leading_zeros`/`leading_ones` find the edges.
fn row_runs(row: &[u8], width: u32, y: u32, out: &mut Vec<Run>) {
    let bytes = row.len().min(width.div_ceil(8) as usize);
    let mut start: Option<u32> = None;
    let mut i = 0;
    while i < bytes {
        let byte = row[i];
        match start {
            None if byte == 0 => {
                let word = row.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok());
                i += if word == Some([0; 8]) { 8 } else { 1 };
                continue;
            }
            Some(_) if byte == 0xFF => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let base = (i as u32) * 8;
        let mut bit = 0;
        while bit < 8 {
            // Bits already walked are shifted out; the zeros shifted in are capped.
            let rest = byte << bit;
            match start {
                None => {
                    bit += rest.leading_zeros().min(8 - bit);
                    if bit < 8 {
                        start = Some(base + bit);
                    }
                }
                Some(x0) => {
                    bit += rest.leading_ones().min(8 - bit);
                    if bit < 8 {
                        out.push(Run {
                            x0,
                            x1: (base + bit).min(width),
                            y,
                        });
                        start = None;
                    }
                }
            }
        }
        i += 1;
    }
    if let Some(x0) = start {
        out.push(Run {
            x0,
            x1: width.max(x0 + 1),
            y,
        });
    }
}

/// Union–find root with path halving.
fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Labels the 4-connected components of the black dots (method: module doc, step 1).
fn blobs(bitmap: &Bitmap) -> Vec<Blob> {
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut previous = 0..0;
    for y in 0..bitmap.height() {
        let start = runs.len();
        row_runs(bitmap.row(y), bitmap.width(), y, &mut runs);
        let end = runs.len();
        parent.extend(start..end);
        // Both rows' runs are sorted by x: one merge pass finds every overlap.
        let (mut i, mut j) = (previous.start, start);
        while i < previous.end && j < end {
            let (above, here) = (runs[i], runs[j]);
            if above.x0 < here.x1 && here.x0 < above.x1 {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
            if above.x1 <= here.x1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        previous = start..end;
    }
    let mut slot = vec![usize::MAX; runs.len()];
    let mut out: Vec<Blob> = Vec::new();
    for (k, &run) in runs.iter().enumerate() {
        let root = find(&mut parent, k);
        let dots = u64::from(run.x1 - run.x0);
        if slot[root] == usize::MAX {
            slot[root] = out.len();
            out.push(Blob {
                x0: run.x0,
                x1: run.x1,
                y0: run.y,
                y1: run.y + 1,
                black: dots,
            });
        } else {
            let blob = &mut out[slot[root]];
            blob.x0 = blob.x0.min(run.x0);
            blob.x1 = blob.x1.max(run.x1);
            blob.y0 = blob.y0.min(run.y);
            blob.y1 = blob.y1.max(run.y + 1);
            blob.black += dots;
        }
    }
    out
}

/// Whether spacing `d` (half-dots) continues a row whose first spacing was `reference`:
/// within a quarter of it, and at least 2 dots.
fn regular(d: u64, reference: u64) -> bool {
    d.abs_diff(reference) <= (reference / 4).max(4)
}

/// The rows of exactly 65 bars among `candidates` (sorted by centre), as index lists,
/// and the length of the longest row, counted up to 66 (method: module doc, step 2).
fn rows_of_bars(candidates: &[Blob], max_pitch2: u64) -> (Vec<Vec<usize>>, usize) {
    let n = candidates.len();
    // Nearest right neighbour sharing a row, within the pitch bound.
    let next: Vec<Option<usize>> = (0..n)
        .map(|k| {
            let here = candidates[k];
            let mut best: Option<(usize, u32)> = None;
            for (j, there) in candidates.iter().enumerate().skip(k + 1) {
                if there.centre2() > here.centre2() + max_pitch2 {
                    break;
                }
                let shared = there.overlap(here.y0, here.y1);
                if there.x0 < here.x1 || shared == 0 {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((b, b_shared)) => {
                        let b = candidates[b];
                        there.x0 < b.x0 || (there.x0 == b.x0 && shared > b_shared)
                    }
                };
                if better {
                    best = Some((j, shared));
                }
            }
            best.map(|(j, _)| j)
        })
        .collect();
    let spacing = |a: usize, b: usize| candidates[b].centre2() - candidates[a].centre2();
    let mut symbols = Vec::new();
    let mut longest = 0;
    // A walk from every candidate, at most 66 bars long: linear in the candidates.
    for start in 0..n {
        let mut chain = vec![start];
        let (mut top, mut bottom) = (candidates[start].y0, candidates[start].y1);
        let mut reference = None;
        let mut current = start;
        while let Some(j) = next[current] {
            let blob = candidates[j];
            let d = spacing(current, j);
            if chain.len() > BAR_COUNT
                || blob.overlap(top, bottom) == 0
                || reference.is_some_and(|r| !regular(d, r))
            {
                break;
            }
            reference.get_or_insert(d);
            top = top.max(blob.y0);
            bottom = bottom.min(blob.y1);
            chain.push(j);
            current = j;
        }
        let mut length = chain.len();
        if length == BAR_COUNT {
            // Only a whole row counts: ink on the band at a regular spacing before the
            // first bar makes it (at least) 66.
            let extends = (0..n).any(|p| {
                next[p] == Some(start)
                    && candidates[p].overlap(top, bottom) > 0
                    && reference.is_none_or(|r| regular(spacing(p, start), r))
            });
            if extends {
                length += 1;
            } else {
                symbols.push(chain);
            }
        }
        longest = longest.max(length);
    }
    (symbols, longest)
}

/// Per-call settings for reading one symbol.
struct Context<'a> {
    bitmap: &'a Bitmap,
    dpi_x: f64,
    dpi_y: f64,
    dot_gain: u32,
}

/// The median of `values` (upper median for an even count); 0 when empty.
fn median(mut values: Vec<u32>) -> u32 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl Context<'_> {
    /// Classifies, measures and decodes one row of 65 bars (module doc, steps 3–5).
    fn read(&self, chain: &[Blob]) -> Result<ImbReport, VerifyError> {
        let blobs: [Blob; BAR_COUNT] = chain
            .try_into()
            .map_err(|_| VerifyError::BarCount { found: chain.len() })?;
        for (i, b) in blobs.iter().enumerate() {
            if b.black != b.area() {
                return Err(VerifyError::RaggedBar {
                    bar: i + 1,
                    x: b.x0,
                    y: b.y0,
                    width: b.width(),
                    height: b.height(),
                    black: b.black,
                    area: b.area(),
                });
            }
        }
        let band_top = blobs.iter().map(|b| b.y0).max().unwrap_or(0);
        let band_bottom = blobs.iter().map(|b| b.y1).min().unwrap_or(0);
        if band_bottom <= band_top {
            return Err(VerifyError::BarCount { found: 0 });
        }
        let up: [u32; BAR_COUNT] = blobs.map(|b| band_top - b.y0);
        let down: [u32; BAR_COUNT] = blobs.map(|b| b.y1 - band_bottom);
        let up_ref = median(up.iter().copied().filter(|&e| e > 0).collect());
        let down_ref = median(down.iter().copied().filter(|&e| e > 0).collect());
        let mut bars = [Bar::Tracker; BAR_COUNT];
        for i in 0..BAR_COUNT {
            bars[i] = Bar::from_parts(
                2 * u64::from(up[i]) > u64::from(up_ref),
                2 * u64::from(down[i]) > u64::from(down_ref),
            );
        }
        let letters: String = bars.iter().map(|b| char::from(b.letter())).collect();
        let decoded = decode(&bars).map_err(|source| VerifyError::Decode {
            letters: letters.clone(),
            source,
        })?;

        // Per-bar values: (0-based bar, dots).
        let band = f64::from(band_bottom - band_top);
        let gain = f64::from(self.dot_gain);
        let mut widths = Vec::with_capacity(BAR_COUNT);
        let mut pitches = Vec::with_capacity(BAR_COUNT - 1);
        let mut trackers = Vec::with_capacity(BAR_COUNT);
        let (mut asc_bars, mut desc_bars, mut full_bars) = (Vec::new(), Vec::new(), Vec::new());
        let (mut asc_ext, mut desc_ext) = (Vec::new(), Vec::new());
        for (i, (b, bar)) in blobs.iter().zip(bars).enumerate() {
            widths.push((i, f64::from(b.width()) + gain));
            if let Some(next) = blobs.get(i + 1) {
                pitches.push((i, (next.centre2() - b.centre2()) as f64 / 2.0));
            }
            let stray_up = if bar.has_ascender() { 0 } else { up[i] };
            let stray_down = if bar.has_descender() { 0 } else { down[i] };
            trackers.push((i, band + f64::from(stray_up + stray_down)));
            if bar.has_ascender() {
                asc_bars.push((i, f64::from(band_bottom - b.y0)));
                asc_ext.push((i, f64::from(up[i])));
            }
            if bar.has_descender() {
                desc_bars.push((i, f64::from(b.y1 - band_top)));
                desc_ext.push((i, f64::from(down[i])));
            }
            if bar == Bar::Full {
                full_bars.push((i, f64::from(b.height())));
            }
        }
        let first = blobs[0];
        let last = blobs[BAR_COUNT - 1];
        let (x, y) = (first.x0, blobs.iter().map(|b| b.y0).min().unwrap_or(0));
        let bottom = blobs.iter().map(|b| b.y1).max().unwrap_or(0);
        let width = last.x1 - first.x0;
        let length = [(0, f64::from(width) + gain)];
        let quiet = self.quiet_zones(x, y, last.x1, bottom);

        let mut violations = Vec::new();
        let (dx, dy) = (self.dpi_x, self.dpi_y);
        for (dimension, values) in [
            (Dimension::BarWidth, &widths),
            (Dimension::Pitch, &pitches),
            (Dimension::Tracker, &trackers),
            (Dimension::AscenderBar, &asc_bars),
            (Dimension::DescenderBar, &desc_bars),
            (Dimension::FullBar, &full_bars),
        ] {
            let dpi = if dimension.axis() == Axis::Horizontal {
                dx
            } else {
                dy
            };
            check(&mut violations, dimension, values, dpi);
        }
        for (dimension, zone) in [
            (Dimension::QuietLeft, quiet.left),
            (Dimension::QuietRight, quiet.right),
            (Dimension::QuietTop, quiet.top),
            (Dimension::QuietBottom, quiet.bottom),
        ] {
            let limit = dimension.limit();
            if !limit.contains(zone.printed_in) {
                violations.push(Violation {
                    dimension,
                    bar: None,
                    measured_dots: f64::from(zone.printed_dots),
                    measured_in: zone.printed_in,
                    limit,
                });
            }
        }

        let found_bars: [FoundBar; BAR_COUNT] = std::array::from_fn(|i| FoundBar {
            bar: bars[i],
            x: blobs[i].x0,
            width: blobs[i].width(),
            top: blobs[i].y0,
            bottom: blobs[i].y1,
        });
        // Widths and trackers (65), pitches (64) and the length (1) are never empty;
        // `empty` only satisfies the types.
        let empty = Measure {
            min_dots: 0.0,
            max_dots: 0.0,
            min_in: 0.0,
            max_in: 0.0,
        };
        Ok(ImbReport {
            dpi_x: dx,
            dpi_y: dy,
            dot_gain: self.dot_gain,
            letters,
            decoded,
            bars: found_bars,
            x,
            y,
            width,
            height: bottom - y,
            tracker_top: band_top,
            tracker_bottom: band_bottom,
            bar_width: Measure::of(&widths, dx).unwrap_or(empty),
            pitch: Measure::of(&pitches, dx).unwrap_or(empty),
            tracker: Measure::of(&trackers, dy).unwrap_or(empty),
            ascender_bar: Measure::of(&asc_bars, dy),
            descender_bar: Measure::of(&desc_bars, dy),
            full_bar: Measure::of(&full_bars, dy),
            ascender_extension: Measure::of(&asc_ext, dy),
            descender_extension: Measure::of(&desc_ext, dy),
            length: Measure::of(&length, dx).unwrap_or(empty),
            quiet,
            violations,
        })
    }

    /// The four quiet zones around the box `x0..x1` × `y0..y1`.
    fn quiet_zones(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> QuietZones {
        let b = self.bitmap;
        // Left and right: per row of the box, the first black dot outward.
        let sideways = |limit: u32, dot: &dyn Fn(u32, u32) -> bool| {
            let mut clear = (limit, QuietBound::Edge);
            for y in y0..y1 {
                if let Some(d) = (0..clear.0).find(|&d| dot(y, d)) {
                    clear = (d, QuietBound::Ink);
                }
            }
            clear
        };
        let left = sideways(x0, &|y, d| b.get(x0 - 1 - d, y));
        let right = sideways(b.width().saturating_sub(x1), &|y, d| b.get(x1 + d, y));
        // Top and bottom: the first row outward with ink in the box's columns.
        let top = first_ink_row(b, (0..y0).rev(), x0, x1);
        let bottom = first_ink_row(b, y1..b.height(), x0, x1);
        let horizontal = |(dots, bounded_by): (u32, QuietBound)| {
            let printed_dots = dots.saturating_sub(self.dot_gain);
            Quiet {
                dots,
                printed_dots,
                printed_in: f64::from(printed_dots) / self.dpi_x,
                bounded_by,
            }
        };
        let vertical = |(dots, bounded_by): (u32, QuietBound)| Quiet {
            dots,
            printed_dots: dots,
            printed_in: f64::from(dots) / self.dpi_y,
            bounded_by,
        };
        QuietZones {
            left: horizontal(left),
            right: horizontal(right),
            top: vertical(top),
            bottom: vertical(bottom),
        }
    }
}

/// How many of `rows` (walking away from the symbol) are clear in columns `x0..x1`
/// before the first with ink, and whether ink or the edge ends them.
fn first_ink_row(
    bitmap: &Bitmap,
    rows: impl ExactSizeIterator<Item = u32>,
    x0: u32,
    x1: u32,
) -> (u32, QuietBound) {
    let all = rows.len();
    let mut rows = rows;
    match rows.position(|y| ink_in_row(bitmap, y, x0, x1)) {
        Some(d) => (u32::try_from(d).unwrap_or(u32::MAX), QuietBound::Ink),
        None => (u32::try_from(all).unwrap_or(u32::MAX), QuietBound::Edge),
    }
}

/// Whether row `y` has a black dot in columns `x0..x1` (whole bytes at a time).
fn ink_in_row(bitmap: &Bitmap, y: u32, x0: u32, x1: u32) -> bool {
    let x1 = x1.min(bitmap.width());
    if y >= bitmap.height() || x0 >= x1 {
        return false;
    }
    let row = bitmap.row(y);
    let (first, last) = ((x0 / 8) as usize, ((x1 - 1) / 8) as usize);
    (first..=last).any(|i| {
        let mut byte = row.get(i).copied().unwrap_or(0);
        if i == first {
            byte &= 0xFF >> (x0 % 8);
        }
        if i == last {
            byte &= 0xFF << (7 - (x1 - 1) % 8);
        }
        byte != 0
    })
}

/// Adds a violation for the smallest value of `values` if it is below the limit and
/// for the largest if it is above.
fn check(violations: &mut Vec<Violation>, dimension: Dimension, values: &[(usize, f64)], dpi: f64) {
    let limit = dimension.limit();
    let smallest = values
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 { b } else { a });
    let largest = values
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a });
    let below = smallest.filter(|&(_, dots)| dots / dpi < limit.min && !limit.contains(dots / dpi));
    let above = largest.filter(|&(_, dots)| dots / dpi > limit.max && !limit.contains(dots / dpi));
    for (i, dots) in below.into_iter().chain(above) {
        violations.push(Violation {
            dimension,
            bar: Some(i + 1),
            measured_dots: dots,
            measured_in: dots / dpi,
            limit,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::imb::{encode_str, Imb};
    use crate::geometry::{imb_geometry, BarDots, ImbGeometry};
    use crate::render::imb::{draw_imb, imb_bitmap};

    fn example() -> Imb {
        // B3200 appendix example 4 (facts §5.1 row 4).
        encode_str("01234567094987654321", "01234567891").unwrap()
    }

    /// A small deterministic generator (64-bit LCG, Knuth's constants).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    #[test]
    fn row_runs_match_the_dots() {
        let mut rng = Lcg(7);
        for width in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100] {
            for _ in 0..50 {
                let mut b = Bitmap::new(width, 1);
                let density = rng.next() % 4;
                for x in 0..width {
                    if rng.next() % 4 < density {
                        b.set(x, 0, true);
                    }
                }
                let mut runs = Vec::new();
                row_runs(b.row(0), width, 0, &mut runs);
                let mut rebuilt = Bitmap::new(width, 1);
                for r in &runs {
                    assert!(r.x0 < r.x1 && r.x1 <= width);
                    rebuilt.fill_rect(r.x0, 0, r.x1 - r.x0, 1);
                }
                assert_eq!(rebuilt, b);
                // Maximal runs: never two touching.
                assert!(runs.windows(2).all(|w| w[0].x1 < w[1].x0));
            }
        }
    }

    #[test]
    fn blobs_are_4_connected() {
        let mut b = Bitmap::new(20, 10);
        // A U shape is one blob.
        b.fill_rect(1, 1, 1, 5);
        b.fill_rect(5, 1, 1, 5);
        b.fill_rect(1, 6, 5, 1);
        // Two dots touching only at a corner are two.
        b.set(10, 1, true);
        b.set(11, 2, true);
        let mut found = blobs(&b);
        found.sort_by_key(|b| b.x0);
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0],
            Blob {
                x0: 1,
                x1: 6,
                y0: 1,
                y1: 7,
                black: 15
            }
        );
        assert_eq!(found[1].black, 1);
    }

    #[test]
    fn ink_in_row_checks_exactly_the_columns() {
        let mut b = Bitmap::new(30, 1);
        b.set(12, 0, true);
        for x0 in 0..30 {
            for x1 in x0..=31 {
                assert_eq!(ink_in_row(&b, 0, x0, x1), x0 <= 12 && 12 < x1, "{x0}..{x1}");
            }
        }
        assert!(!ink_in_row(&b, 1, 0, 30));
    }

    #[test]
    fn reads_back_what_was_rendered() {
        let imb = example();
        let g = imb_geometry(203.0, 203.0, 0).unwrap();
        let report = verify_imb(&imb_bitmap(&imb, &g), 203.0, 203.0, 0).unwrap();
        assert_eq!(report.letters, imb.letters_string());
        assert_eq!(report.decoded.tracking.as_str(), "01234567094987654321");
        assert_eq!(report.decoded.routing.as_str(), "01234567891");
        assert!(report.is_compliant(), "{:?}", report.violations);
        assert_eq!((report.x, report.y), (g.quiet_left, g.quiet_top));
        assert_eq!(report.bar_width.min_dots, 4.0);
        assert_eq!(report.pitch.max_dots, 9.0);
        assert_eq!(report.tracker_bottom - report.tracker_top, g.tracker);
        assert_eq!(report.full_bar.unwrap().max_dots, 30.0);
        assert_eq!(report.quiet.left.dots, 26);
        assert_eq!(report.quiet.top.bounded_by, QuietBound::Edge);
    }

    #[test]
    fn narrow_bars_are_a_violation_not_an_error() {
        // 3 dots at 203 dpi = 0.0148 in (facts §6.3: too thin).
        let g = ImbGeometry::from_dots(
            203.0,
            203.0,
            0,
            BarDots {
                bar_width: 3,
                pitch: 9,
                tracker: 10,
                extension: 10,
            },
        );
        let report = verify_imb(&imb_bitmap(&example(), &g), 203.0, 203.0, 0).unwrap();
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let v = report.violations[0];
        assert_eq!(
            (v.dimension, v.bar, v.measured_dots),
            (Dimension::BarWidth, Some(1), 3.0)
        );
        assert_eq!(
            v.to_string(),
            "bar width 0.0148 in (3 dots, bar 1) is below the 0.015 in minimum"
        );
        assert!(!report.is_compliant());
    }

    #[test]
    fn no_symbol_is_an_error() {
        for (w, h) in [(0, 0), (1, 0), (0, 1), (100, 100)] {
            assert_eq!(
                verify_imb(&Bitmap::new(w, h), 300.0, 300.0, 0),
                Err(VerifyError::BarCount { found: 0 })
            );
        }
        let err = verify_imb(&Bitmap::new(10, 10), 100.0, 300.0, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot verify: horizontal resolution 100 dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)"
        );
    }

    #[test]
    fn a_ragged_bar_is_an_error() {
        let g = imb_geometry(300.0, 300.0, 0).unwrap();
        let mut b = imb_bitmap(&example(), &g);
        // Notch the 10th bar's bottom-right dot.
        let x = g.quiet_left + 9 * g.pitch + g.bar_width_drawn - 1;
        let bottom = (g.quiet_top..g.quiet_top + g.full_bar)
            .rev()
            .find(|&y| b.get(x, y))
            .unwrap();
        b.set(x, bottom, false);
        let err = verify_imb(&b, 300.0, 300.0, 0).unwrap_err();
        assert!(
            matches!(err, VerifyError::RaggedBar { bar: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn ink_at_the_pitch_off_the_tracker_rows_does_not_hide_the_symbol() {
        // Example 4 starts with two ascenders: a bar-like mark one pitch before bar 1,
        // in the ascender rows only, chains with bars 1–2 but not with the tracker.
        let imb = example();
        assert_eq!(&imb.letters_string()[..3], "AAD");
        let g = imb_geometry(300.0, 300.0, 0).unwrap();
        let mut b = imb_bitmap(&imb, &g);
        b.fill_rect(
            g.quiet_left - g.pitch,
            g.quiet_top,
            g.bar_width_drawn,
            g.extension,
        );
        let report = verify_imb(&b, 300.0, 300.0, 0).unwrap();
        assert_eq!(report.letters, imb.letters_string());
        assert_eq!(report.quiet.left.bounded_by, QuietBound::Ink);
        assert_eq!(report.violations[0].dimension, Dimension::QuietLeft);
    }

    #[test]
    fn a_66th_bar_on_the_tracker_rows_is_an_error() {
        let g = imb_geometry(300.0, 300.0, 0).unwrap();
        let mut b = imb_bitmap(&example(), &g);
        b.fill_rect(
            g.quiet_left - g.pitch,
            g.quiet_top + g.extension,
            g.bar_width_drawn,
            g.tracker,
        );
        let err = verify_imb(&b, 300.0, 300.0, 0).unwrap_err();
        assert_eq!(err, VerifyError::BarCount { found: 66 });
        assert_eq!(
            err.to_string(),
            "no intelligent mail barcode found: the longest row of evenly spaced bars sharing a tracker band has more than 65 bars, an imb has 65 (check that the symbol is whole, undamaged and clear of other ink)"
        );
    }

    #[test]
    fn random_bitmaps_never_panic() {
        let mut rng = Lcg(42);
        let imb = example();
        let g = imb_geometry(150.0, 150.0, 0).unwrap();
        for round in 0..200 {
            let (w, h) = (rng.next() % 700, rng.next() % 60);
            let mut b = Bitmap::new(w, h);
            if round % 2 == 0 {
                draw_imb(&mut b, rng.next() % 40, rng.next() % 20, &imb, &g);
            }
            let density = rng.next() % 8;
            for _ in 0..(w * h * density / 64) {
                b.set(
                    rng.next() % w.max(1),
                    rng.next() % h.max(1),
                    rng.next() % 2 == 0,
                );
            }
            if let Ok(report) = verify_imb(&b, 150.0, 150.0, rng.next() % 3) {
                assert_eq!(report.letters, imb.letters_string());
            }
        }
    }
}
