//! Printer resolution → integer-dot geometry for the Intelligent Mail barcode.
//!
//! Spec: USPS-B-3200 *Intelligent Mail Barcode 4-State*, Revision H (2015-04-20),
//! §2.3 (bar dimensions and tolerances; §2.3.1 heights, §2.3.2 clear zones), with the
//! 0.028 in top/bottom clearance of DMM 202.5 (Quick Service Guide 201a). Values,
//! their sources and the integer-dot tables this module reproduces:
//! `../shared/reference/imb-facts.md` §6.1 and §6.3.
//!
//! # The model
//!
//! A bar is a rectangle `W` dots wide; bar `i` (0-based) starts at `i·P`, so with an
//! integer pitch `P` the spacing is perfectly even (rounding each bar's position on
//! its own makes it uneven: facts §13 pitfall 16). Heights are symmetric about the
//! tracker's centre line: every bar has the tracker (`T` dots); an ascender adds `E`
//! dots above it, a descender `E` dots below. So
//!
//! ```text
//! full bar F = T + 2E        ascender / descender bar = T + E
//! overall length = 64·P + W  (leading edge of bar 1 → trailing edge of bar 65)
//! ```
//!
//! Widths and pitch use the horizontal resolution `dpi_x` (along the row of bars),
//! heights the vertical `dpi_y`. A dimension of `n` dots is `n / dpi` inches.
//!
//! # Dot gain
//!
//! Thermal and toner printers widen every printed bar by about `dot_gain` dots. The
//! bar is therefore *drawn* `dot_gain` dots narrower than the *printed* width this
//! module chooses, and the printed width (`drawn + dot_gain`) is what must lie inside
//! the tolerance. A drawn width below one dot is an error. The gain may land on
//! either side of a bar, so each horizontal quiet zone reserves the whole of it as
//! well.
//!
//! Quiet zones are the fewest whole dots *strictly* wider than their minimum
//! (0.125 in left/right, 0.028 in top/bottom), for the same reason a bar dimension
//! avoids its limits: 75 dots at 600 dpi is exactly 0.125 in, so 600 dpi gets 76. Heights are not compensated: the height tolerances are ±0.009 in and more,
//! several dots at any supported resolution.
//!
//! # How the dot counts are chosen
//!
//! The search space is tiny (at most a few dozen counts per dimension), so it is
//! searched exhaustively. A count is *legal* when its length in inches lies inside the
//! limits below (inclusive, to within [`EPSILON_IN`]). Among legal counts, the choice
//! minimises, in this order:
//!
//! 1. how many dimensions sit exactly **on** a limit (so a limit value is taken only
//!    when nothing else is legal: dot gain and rounding push real prints past it);
//! 2. the sum of squared **tolerance usage** `u`, where `u = (v − nominal) / (max −
//!    nominal)` above nominal and `(nominal − v) / (nominal − min)` below it: 0 at
//!    nominal, 1 on a limit. Normalising by the tolerance on that side keeps the
//!    dimensions comparable and respects the pitch's lopsided 20–22–24 bars/in;
//! 3. the largest single usage (the smallest margin to the nearest limit);
//! 4. fewer dots (a printer only ever widens marks, never narrows them).
//!
//! Width and pitch are independent (any legal width and pitch leave a gap of at least
//! 1/24 − 0.025 = 0.0167 in) and are chosen one at a time. Tracker and extension are
//! chosen together, scoring the three constrained heights `T`, `T + E` and `T + 2E`.
//! At 203, 300 and 600 dpi this gives exactly the facts' §6.3 recommended sets
//! (pinned by tests).

use serde::Serialize;
use std::fmt;

/// Slack for comparing a length with a limit, in inches: absorbs floating-point
/// noise (15 dots / 600 dpi must equal the 0.025 in maximum), far below a dot
/// (1/1200 in = 0.00083 in).
pub const EPSILON_IN: f64 = 1e-9;

/// Lowest supported resolution in dots per inch (either axis).
pub const DPI_MIN: f64 = 150.0;
/// Highest supported resolution in dots per inch (either axis).
pub const DPI_MAX: f64 = 1200.0;

/// Number of pitches from the first bar's leading edge to the last bar's: 65 bars.
const PITCHES: u32 = 64;

/// An inclusive tolerance band for one dimension, in inches.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Limit {
    /// Smallest allowed value.
    pub min: f64,
    /// The spec's nominal (target) value.
    pub nominal: f64,
    /// Largest allowed value (`f64::INFINITY` when there is no upper limit).
    pub max: f64,
}

impl Limit {
    /// Whether `inches` is inside the band (inclusive, within [`EPSILON_IN`]).
    pub fn contains(&self, inches: f64) -> bool {
        inches >= self.min - EPSILON_IN && inches <= self.max + EPSILON_IN
    }

    /// Whether `inches` sits on the minimum or the maximum (within [`EPSILON_IN`]).
    pub fn on_limit(&self, inches: f64) -> bool {
        (inches - self.min).abs() <= EPSILON_IN || (inches - self.max).abs() <= EPSILON_IN
    }

    /// The share of the tolerance on that side of nominal that `inches` uses: 0 at
    /// nominal, 1 on a limit, above 1 outside.
    pub fn usage(&self, inches: f64) -> f64 {
        if inches >= self.nominal {
            (inches - self.nominal) / (self.max - self.nominal)
        } else {
            (self.nominal - inches) / (self.nominal - self.min)
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.max.is_finite() {
            write!(f, "{}–{} in", Inches(self.min), Inches(self.max))
        } else {
            write!(f, "at least {} in", Inches(self.min))
        }
    }
}

/// Shows a length in inches with at most four decimals and no trailing zeros
/// (`0.015`, `0.0417`, `0.05`).
#[derive(Clone, Copy, Debug)]
pub struct Inches(pub f64);

impl fmt::Display for Inches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.4}", self.0);
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            &text
        };
        f.write_str(text)
    }
}

/// Bar width: 0.020 ± 0.005 in (B3200 §2.3; facts §6.1).
pub const BAR_WIDTH: Limit = Limit {
    min: 0.020 - 0.005,
    nominal: 0.020,
    max: 0.020 + 0.005,
};

/// Pitch, bar centre to bar centre: 22 ± 2 bars per inch, i.e. 1/24 in (0.0417) to
/// 1/20 in (0.0500), nominal 1/22 in (0.0455) (B3200 §2.3; facts §6.1).
pub const PITCH: Limit = Limit {
    min: 1.0 / (22.0 + 2.0),
    nominal: 1.0 / 22.0,
    max: 1.0 / (22.0 - 2.0),
};

/// Half the tracker, measured from the centre line: 0.0195–0.0285 in (B3200 §2.3.1,
/// as ReportLab's `USPS_4State` states it; facts §6.1).
const TRACKER_HALF_MIN: f64 = 0.0195;
/// See [`TRACKER_HALF_MIN`].
const TRACKER_HALF_MAX: f64 = 0.0285;
/// Ascender top / descender bottom from the centre line: 0.0625–0.0825 in (B3200
/// §2.3.1 via ReportLab; facts §6.1).
const OUTER_FROM_CENTRE_MIN: f64 = 0.0625;
/// See [`OUTER_FROM_CENTRE_MIN`].
const OUTER_FROM_CENTRE_MAX: f64 = 0.0825;

/// Tracker height: 2 × 0.0195 … 2 × 0.0285 = 0.039–0.057 in, nominal 0.048
/// (B3200 §2.3.1; facts §6.1).
pub const TRACKER: Limit = Limit {
    min: 2.0 * TRACKER_HALF_MIN,
    nominal: 0.048,
    max: 2.0 * TRACKER_HALF_MAX,
};

/// Ascender or descender bar height `T + E`, from the far edge of the tracker to the
/// bar's end: 0.0195 + 0.0625 = 0.082 … 0.0285 + 0.0825 = 0.111 in, nominal 0.0965
/// (B3200 §2.3.1; facts §6.1).
pub const ASC_DESC_BAR: Limit = Limit {
    min: TRACKER_HALF_MIN + OUTER_FROM_CENTRE_MIN,
    nominal: 0.0965,
    max: TRACKER_HALF_MAX + OUTER_FROM_CENTRE_MAX,
};

/// Full bar height `T + 2E`: 2 × 0.0625 = 0.125 … 2 × 0.0825 = 0.165 in, nominal
/// 0.145 (B3200 §2.3.1; facts §6.1).
pub const FULL_BAR: Limit = Limit {
    min: 2.0 * OUTER_FROM_CENTRE_MIN,
    nominal: 0.145,
    max: 2.0 * OUTER_FROM_CENTRE_MAX,
};

/// Left and right quiet (clear) zone: at least 1/8 in = 0.125 in (B3200 §2.3.2, DMM
/// 202.5 via QSG 201a; facts §6.1).
pub const QUIET_HORIZONTAL: Limit = Limit {
    min: 1.0 / 8.0,
    nominal: 1.0 / 8.0,
    max: f64::INFINITY,
};

/// Top and bottom quiet zone: at least 0.028 in. DMM 202.5 (QSG 201a) asks 0.028 in;
/// zint uses 0.026 in citing B3200 §2.3.2. 0.028 satisfies both (facts §6.1, §13 #11).
pub const QUIET_VERTICAL: Limit = Limit {
    min: 0.028,
    nominal: 0.028,
    max: f64::INFINITY,
};

/// One measured or chosen IMb dimension, for errors and tolerance reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dimension {
    /// Printed bar width.
    BarWidth,
    /// Bar centre to bar centre.
    Pitch,
    /// Tracker height.
    Tracker,
    /// Ascender bar height `T + E` (far edge of the tracker to the top).
    AscenderBar,
    /// Descender bar height `T + E` (far edge of the tracker to the bottom).
    DescenderBar,
    /// Full bar height `T + 2E`.
    FullBar,
    /// Clear space left of the first bar.
    QuietLeft,
    /// Clear space right of the last bar.
    QuietRight,
    /// Clear space above the symbol.
    QuietTop,
    /// Clear space below the symbol.
    QuietBottom,
}

impl Dimension {
    /// The dimension's name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::BarWidth => "bar width",
            Dimension::Pitch => "pitch",
            Dimension::Tracker => "tracker height",
            Dimension::AscenderBar => "ascender bar height",
            Dimension::DescenderBar => "descender bar height",
            Dimension::FullBar => "full bar height",
            Dimension::QuietLeft => "left quiet zone",
            Dimension::QuietRight => "right quiet zone",
            Dimension::QuietTop => "top quiet zone",
            Dimension::QuietBottom => "bottom quiet zone",
        }
    }

    /// Its tolerance band.
    pub const fn limit(self) -> Limit {
        match self {
            Dimension::BarWidth => BAR_WIDTH,
            Dimension::Pitch => PITCH,
            Dimension::Tracker => TRACKER,
            Dimension::AscenderBar | Dimension::DescenderBar => ASC_DESC_BAR,
            Dimension::FullBar => FULL_BAR,
            Dimension::QuietLeft | Dimension::QuietRight => QUIET_HORIZONTAL,
            Dimension::QuietTop | Dimension::QuietBottom => QUIET_VERTICAL,
        }
    }

    /// The axis whose resolution measures it.
    pub const fn axis(self) -> Axis {
        match self {
            Dimension::BarWidth
            | Dimension::Pitch
            | Dimension::QuietLeft
            | Dimension::QuietRight => Axis::Horizontal,
            _ => Axis::Vertical,
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A resolution axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Along the row of bars (`dpi_x`): widths, pitch, left/right quiet zones.
    Horizontal,
    /// Across it (`dpi_y`): heights, top/bottom quiet zones.
    Vertical,
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::Horizontal => "horizontal",
            Axis::Vertical => "vertical",
        })
    }
}

/// Why no compliant geometry exists. Every print path refuses these; nothing ever
/// prints an out-of-spec IMb silently.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// A resolution outside 150–1200 dpi, or not a finite number.
    #[error("{axis} resolution {dpi} dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)")]
    Resolution {
        /// Which resolution.
        axis: Axis,
        /// The value given.
        dpi: f64,
    },
    /// No whole number of dots lands inside one dimension's limits.
    #[error("no whole number of dots gives a {dimension} of {} at {dpi} dpi ({lo_dots:.2}–{hi_dots:.2} dots); use another resolution", .dimension.limit())]
    NoDotCount {
        /// The dimension.
        dimension: Dimension,
        /// The resolution on its axis.
        dpi: f64,
        /// The minimum in dots.
        lo_dots: f64,
        /// The maximum in dots.
        hi_dots: f64,
    },
    /// No tracker/extension pair satisfies the three height limits together.
    #[error("no tracker and extension in whole dots fit at {dpi} dpi: tracker {}, ascender/descender bar {} and full bar {} must all hold; use another resolution", TRACKER, ASC_DESC_BAR, FULL_BAR)]
    NoHeights {
        /// The vertical resolution.
        dpi: f64,
    },
    /// The dot gain is at least as wide as every legal bar: nothing would be drawn.
    #[error("dot gain of {gain} dots leaves no bar to draw at {dpi} dpi: the widest legal bar width ({}) is {max_width_dots} dots, so at most {} dots of gain can be compensated (lower the dot gain or the print darkness)", BAR_WIDTH, .max_width_dots.saturating_sub(1))]
    DotGain {
        /// The dot gain asked for.
        gain: u32,
        /// The horizontal resolution.
        dpi: f64,
        /// The widest bar inside the width limits, in dots.
        max_width_dots: u32,
    },
}

/// Checks one resolution: finite and within 150–1200 dpi (inclusive). Returns it.
pub fn check_resolution(axis: Axis, dpi: f64) -> Result<f64, GeometryError> {
    if dpi.is_finite() && (DPI_MIN..=DPI_MAX).contains(&dpi) {
        Ok(dpi)
    } else {
        Err(GeometryError::Resolution { axis, dpi })
    }
}

/// The bar dot counts a geometry is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BarDots {
    /// Printed bar width `W` (drawn width + dot gain).
    pub bar_width: u32,
    /// Pitch `P`, bar start to bar start.
    pub pitch: u32,
    /// Tracker height `T`.
    pub tracker: u32,
    /// Extension `E` above (ascender) and below (descender) the tracker.
    pub extension: u32,
}

/// The IMb in whole dots at one resolution: what the renderer draws and what the
/// verifier expects. All counts are dots; [`ImbGeometry::inches`] converts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ImbGeometry {
    /// Horizontal resolution (along the row of bars), dots per inch.
    pub dpi_x: f64,
    /// Vertical resolution (bar heights), dots per inch.
    pub dpi_y: f64,
    /// Dots by which the printer widens each bar.
    pub dot_gain: u32,
    /// Printed bar width `W` = `bar_width_drawn + dot_gain`.
    pub bar_width: u32,
    /// Bar width as drawn into the bitmap.
    pub bar_width_drawn: u32,
    /// Pitch `P`: bar `i` is drawn from `i·P`.
    pub pitch: u32,
    /// Tracker height `T`.
    pub tracker: u32,
    /// Extension `E` of ascenders above, and descenders below, the tracker.
    pub extension: u32,
    /// Ascender / descender bar height `T + E`.
    pub asc_desc_bar: u32,
    /// Full bar height `F = T + 2E`; the height of the bar area.
    pub full_bar: u32,
    /// Printed overall length `64·P + W`.
    pub length: u32,
    /// Left quiet zone (includes `dot_gain`).
    pub quiet_left: u32,
    /// Right quiet zone (includes `dot_gain`).
    pub quiet_right: u32,
    /// Top quiet zone.
    pub quiet_top: u32,
    /// Bottom quiet zone.
    pub quiet_bottom: u32,
    /// Bitmap width of the symbol with its quiet zones:
    /// `quiet_left + 64·P + bar_width_drawn + quiet_right`.
    pub symbol_width: u32,
    /// Bitmap height of the symbol with its quiet zones: `quiet_top + F + quiet_bottom`.
    pub symbol_height: u32,
}

/// Every dimension of an [`ImbGeometry`] in inches.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ImbInches {
    /// Printed bar width.
    pub bar_width: f64,
    /// Drawn bar width.
    pub bar_width_drawn: f64,
    /// Pitch.
    pub pitch: f64,
    /// Bars per inch (1 / pitch).
    pub bars_per_inch: f64,
    /// Printed gap between bars (`P − W`).
    pub gap: f64,
    /// Tracker height.
    pub tracker: f64,
    /// Extension.
    pub extension: f64,
    /// Ascender / descender bar height.
    pub asc_desc_bar: f64,
    /// Full bar height.
    pub full_bar: f64,
    /// Printed overall length.
    pub length: f64,
    /// Left quiet zone.
    pub quiet_left: f64,
    /// Right quiet zone.
    pub quiet_right: f64,
    /// Top quiet zone.
    pub quiet_top: f64,
    /// Bottom quiet zone.
    pub quiet_bottom: f64,
    /// Symbol width with quiet zones.
    pub symbol_width: f64,
    /// Symbol height with quiet zones.
    pub symbol_height: f64,
}

impl ImbGeometry {
    /// Builds a geometry from dot counts **without checking any tolerance**: for
    /// previews and tests. Everything that prints uses [`imb_geometry`]. Derived counts
    /// saturate instead of overflowing; a dot gain at least as wide as the bar leaves a
    /// drawn width of 0 (nothing drawn).
    pub fn from_dots(dpi_x: f64, dpi_y: f64, dot_gain: u32, dots: BarDots) -> ImbGeometry {
        let BarDots {
            bar_width,
            pitch,
            tracker,
            extension,
        } = dots;
        let drawn = bar_width.saturating_sub(dot_gain);
        let quiet_x = beyond_dots(QUIET_HORIZONTAL.min, dpi_x).saturating_add(dot_gain);
        let quiet_y = beyond_dots(QUIET_VERTICAL.min, dpi_y);
        let full_bar = tracker.saturating_add(extension.saturating_mul(2));
        let bars_drawn = pitch.saturating_mul(PITCHES).saturating_add(drawn);
        ImbGeometry {
            dpi_x,
            dpi_y,
            dot_gain,
            bar_width,
            bar_width_drawn: drawn,
            pitch,
            tracker,
            extension,
            asc_desc_bar: tracker.saturating_add(extension),
            full_bar,
            length: pitch.saturating_mul(PITCHES).saturating_add(bar_width),
            quiet_left: quiet_x,
            quiet_right: quiet_x,
            quiet_top: quiet_y,
            quiet_bottom: quiet_y,
            symbol_width: quiet_x.saturating_mul(2).saturating_add(bars_drawn),
            symbol_height: quiet_y.saturating_mul(2).saturating_add(full_bar),
        }
    }

    /// The dot counts this geometry was built from.
    pub fn dots(&self) -> BarDots {
        BarDots {
            bar_width: self.bar_width,
            pitch: self.pitch,
            tracker: self.tracker,
            extension: self.extension,
        }
    }

    /// Every dimension in inches.
    pub fn inches(&self) -> ImbInches {
        let x = |dots: u32| f64::from(dots) / self.dpi_x;
        let y = |dots: u32| f64::from(dots) / self.dpi_y;
        ImbInches {
            bar_width: x(self.bar_width),
            bar_width_drawn: x(self.bar_width_drawn),
            pitch: x(self.pitch),
            bars_per_inch: self.dpi_x / f64::from(self.pitch),
            gap: x(self.pitch.saturating_sub(self.bar_width)),
            tracker: y(self.tracker),
            extension: y(self.extension),
            asc_desc_bar: y(self.asc_desc_bar),
            full_bar: y(self.full_bar),
            length: x(self.length),
            quiet_left: x(self.quiet_left),
            quiet_right: x(self.quiet_right),
            quiet_top: y(self.quiet_top),
            quiet_bottom: y(self.quiet_bottom),
            symbol_width: x(self.symbol_width),
            symbol_height: y(self.symbol_height),
        }
    }

    /// The printed value of each toleranced bar dimension in inches, for checks:
    /// width, pitch, tracker, ascender bar, descender bar, full bar.
    pub fn printed(&self) -> [(Dimension, f64); 6] {
        let inches = self.inches();
        [
            (Dimension::BarWidth, inches.bar_width),
            (Dimension::Pitch, inches.pitch),
            (Dimension::Tracker, inches.tracker),
            (Dimension::AscenderBar, inches.asc_desc_bar),
            (Dimension::DescenderBar, inches.asc_desc_bar),
            (Dimension::FullBar, inches.full_bar),
        ]
    }
}

/// The IMb geometry for a printer: every dimension inside the B3200 §2.3 limits and
/// as close to nominal as whole dots allow (see the module doc for the scoring).
///
/// `dpi_x` is the resolution along the row of bars, `dpi_y` across it, each 150–1200
/// (fractional values such as 203.2 and 304.8 are fine). `dot_gain` is how many dots
/// the printer widens each bar; bars are drawn that much narrower.
pub fn imb_geometry(dpi_x: f64, dpi_y: f64, dot_gain: u32) -> Result<ImbGeometry, GeometryError> {
    let dpi_x = check_resolution(Axis::Horizontal, dpi_x)?;
    let dpi_y = check_resolution(Axis::Vertical, dpi_y)?;
    let bar_width = pick_bar_width(dpi_x, dot_gain)?;
    let pitch = pick_single(Dimension::Pitch, dpi_x, 1)?;
    let (tracker, extension) = pick_heights(dpi_y)?;
    Ok(ImbGeometry::from_dots(
        dpi_x,
        dpi_y,
        dot_gain,
        BarDots {
            bar_width,
            pitch,
            tracker,
            extension,
        },
    ))
}

/// The smallest whole number of dots at least `inches` long (within [`EPSILON_IN`]).
fn ceil_dots(inches: f64, dpi: f64) -> u32 {
    let dots = ((inches - EPSILON_IN) * dpi).ceil();
    if dots.is_finite() && dots > 0.0 {
        // Saturating float → int cast; the value is positive and finite here.
        dots as u32
    } else {
        0
    }
}

/// The fewest whole dots strictly longer than `inches`: a quiet zone exactly on its
/// minimum (75 dots at 600 dpi) would fall below it with any dot gain.
fn beyond_dots(inches: f64, dpi: f64) -> u32 {
    let dots = (inches * dpi + 1e-6).floor() + 1.0;
    if dots.is_finite() && dots > 0.0 {
        // Saturating float → int cast; the value is positive and finite here.
        dots as u32
    } else {
        0
    }
}

/// Largest dot count worth trying for a limit at `dpi` (one past the maximum).
fn search_end(limit: Limit, dpi: f64) -> u32 {
    ceil_dots(limit.max, dpi).saturating_add(1)
}

/// How good a candidate is; smaller is better, compared field by field.
#[derive(Clone, Copy, Debug)]
struct Score {
    /// Dimensions sitting exactly on a limit.
    on_limit: u32,
    /// Sum of squared tolerance usages.
    sum_sq: f64,
    /// Largest single usage (1 − margin to the nearest limit).
    max_usage: f64,
}

/// Usages closer than this count as equal, so floating-point noise cannot break ties.
const SCORE_EPSILON: f64 = 1e-12;

impl Score {
    /// Scores a set of (limit, value in inches) pairs.
    fn of(values: &[(Limit, f64)]) -> Score {
        let mut score = Score {
            on_limit: 0,
            sum_sq: 0.0,
            max_usage: 0.0,
        };
        for &(limit, inches) in values {
            let usage = limit.usage(inches);
            score.on_limit += u32::from(limit.on_limit(inches));
            score.sum_sq += usage * usage;
            score.max_usage = score.max_usage.max(usage);
        }
        score
    }

    /// Whether `self` is strictly better than `other` (ties are not).
    fn beats(&self, other: &Score) -> bool {
        if self.on_limit != other.on_limit {
            return self.on_limit < other.on_limit;
        }
        if (self.sum_sq - other.sum_sq).abs() > SCORE_EPSILON {
            return self.sum_sq < other.sum_sq;
        }
        self.max_usage < other.max_usage - SCORE_EPSILON
    }
}

/// The best legal count of at least `min_dots` for a one-dimensional limit.
/// Candidates go up from few dots, and only a strictly better score replaces the
/// current best, so ties keep the fewer dots.
fn pick_single(dimension: Dimension, dpi: f64, min_dots: u32) -> Result<u32, GeometryError> {
    let limit = dimension.limit();
    let mut best: Option<(u32, Score)> = None;
    for dots in min_dots.max(1)..=search_end(limit, dpi) {
        let inches = f64::from(dots) / dpi;
        if !limit.contains(inches) {
            continue;
        }
        let score = Score::of(&[(limit, inches)]);
        if best.is_none_or(|(_, b)| score.beats(&b)) {
            best = Some((dots, score));
        }
    }
    best.map(|(dots, _)| dots).ok_or(GeometryError::NoDotCount {
        dimension,
        dpi,
        lo_dots: limit.min * dpi,
        hi_dots: limit.max * dpi,
    })
}

/// The printed bar width: the best legal width that leaves at least one drawn dot
/// after `gain`.
fn pick_bar_width(dpi: f64, gain: u32) -> Result<u32, GeometryError> {
    // First: is there any legal width at all? (Reports the dimension, not the gain.)
    pick_single(Dimension::BarWidth, dpi, 1)?;
    pick_single(Dimension::BarWidth, dpi, gain.saturating_add(1)).map_err(|_| {
        let max_width_dots = (1..=search_end(BAR_WIDTH, dpi))
            .filter(|&dots| BAR_WIDTH.contains(f64::from(dots) / dpi))
            .max()
            .unwrap_or(0);
        GeometryError::DotGain {
            gain,
            dpi,
            max_width_dots,
        }
    })
}

/// Tracker `T` and extension `E` together: `T`, `T + E` and `T + 2E` all legal,
/// best combined score.
fn pick_heights(dpi: f64) -> Result<(u32, u32), GeometryError> {
    let mut best: Option<((u32, u32), Score)> = None;
    for tracker in 1..=search_end(TRACKER, dpi) {
        let t = f64::from(tracker) / dpi;
        if !TRACKER.contains(t) {
            continue;
        }
        for extension in 1..=search_end(ASC_DESC_BAR, dpi) {
            let a = f64::from(tracker + extension) / dpi;
            let f = f64::from(tracker + 2 * extension) / dpi;
            if !ASC_DESC_BAR.contains(a) || !FULL_BAR.contains(f) {
                continue;
            }
            let score = Score::of(&[(TRACKER, t), (ASC_DESC_BAR, a), (FULL_BAR, f)]);
            if best.is_none_or(|(_, b)| score.beats(&b)) {
                best = Some(((tracker, extension), score));
            }
        }
    }
    best.map(|(pair, _)| pair)
        .ok_or(GeometryError::NoHeights { dpi })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts every toleranced dimension of `g` is inside its limits, the drawn
    /// width is at least one dot and the quiet zones are wide enough.
    fn assert_compliant(g: &ImbGeometry) {
        for (dimension, inches) in g.printed() {
            assert!(
                dimension.limit().contains(inches),
                "{dimension} {inches} in at {}x{} dpi",
                g.dpi_x,
                g.dpi_y
            );
        }
        assert!(g.bar_width_drawn >= 1);
        assert_eq!(g.bar_width_drawn + g.dot_gain, g.bar_width);
        assert_eq!(g.full_bar, g.tracker + 2 * g.extension);
        assert_eq!(g.asc_desc_bar, g.tracker + g.extension);
        assert_eq!(g.length, 64 * g.pitch + g.bar_width);
        let i = g.inches();
        // The printed quiet zone loses at most the dot gain.
        let printed_quiet = f64::from(g.quiet_left - g.dot_gain) / g.dpi_x;
        assert!(QUIET_HORIZONTAL.contains(printed_quiet));
        assert!(QUIET_VERTICAL.contains(i.quiet_top));
        assert!(QUIET_VERTICAL.contains(i.quiet_bottom));
        assert!(!QUIET_HORIZONTAL.on_limit(printed_quiet));
        assert!(!QUIET_VERTICAL.on_limit(i.quiet_top));
        // Smallest such quiet zones: one dot less would be on or below the minimum.
        let less = f64::from(g.quiet_left - g.dot_gain - 1) / g.dpi_x;
        assert!(!QUIET_HORIZONTAL.contains(less) || QUIET_HORIZONTAL.on_limit(less));
        let less = f64::from(g.quiet_top - 1) / g.dpi_y;
        assert!(!QUIET_VERTICAL.contains(less) || QUIET_VERTICAL.on_limit(less));
        assert_eq!(
            g.symbol_width,
            g.quiet_left + 64 * g.pitch + g.bar_width_drawn + g.quiet_right
        );
        assert_eq!(g.symbol_height, g.quiet_top + g.full_bar + g.quiet_bottom);
    }

    #[test]
    fn limits_show_their_arithmetic() {
        assert!((TRACKER.min - 0.039).abs() < 1e-12);
        assert!((TRACKER.max - 0.057).abs() < 1e-12);
        assert!((ASC_DESC_BAR.min - 0.082).abs() < 1e-12);
        assert!((ASC_DESC_BAR.max - 0.111).abs() < 1e-12);
        assert!((FULL_BAR.min - 0.125).abs() < 1e-12);
        assert!((FULL_BAR.max - 0.165).abs() < 1e-12);
        assert!((BAR_WIDTH.min - 0.015).abs() < 1e-12);
        assert!((PITCH.min - 0.041_666_666).abs() < 1e-8);
        // Nominals sit mid-band everywhere except the pitch (22 bars/in of 20–24).
        for limit in [BAR_WIDTH, TRACKER, ASC_DESC_BAR, FULL_BAR] {
            assert!((limit.usage(limit.min) - 1.0).abs() < 1e-9);
            assert!((limit.usage(limit.max) - 1.0).abs() < 1e-9);
            assert!(((limit.min + limit.max) / 2.0 - limit.nominal).abs() < 1e-12);
        }
        assert_eq!(BAR_WIDTH.to_string(), "0.015–0.025 in");
        assert_eq!(PITCH.to_string(), "0.0417–0.05 in");
        assert_eq!(QUIET_VERTICAL.to_string(), "at least 0.028 in");
    }

    /// Facts §6.3 "Recommended set" rows, with quiet zones and overall length. The
    /// facts give "≥ 75 dots" for 600 dpi; 75 is exactly 0.125 in, so 76 (module doc).
    #[test]
    fn pins_the_facts_table_at_203_300_600() {
        // dpi, W, P, T, E, F, length, quiet x, quiet y
        let cases = [
            (203.0, 4, 9, 10, 10, 30, 580, 26, 6),
            (300.0, 6, 14, 14, 15, 44, 902, 38, 9),
            (600.0, 12, 27, 29, 29, 87, 1740, 76, 17),
        ];
        for (dpi, w, p, t, e, f, len, qx, qy) in cases {
            let g = imb_geometry(dpi, dpi, 0).unwrap();
            assert_eq!(
                (g.bar_width, g.pitch, g.tracker, g.extension, g.full_bar),
                (w, p, t, e, f),
                "{dpi} dpi"
            );
            assert_eq!(
                (g.length, g.quiet_left, g.quiet_top),
                (len, qx, qy),
                "{dpi}"
            );
            assert_compliant(&g);
        }
    }

    #[test]
    fn print_head_resolutions_in_dots_per_mm() {
        // 8 and 12 dots/mm: same counts as 203 and 300 dpi.
        let g = imb_geometry(203.2, 203.2, 0).unwrap();
        assert_eq!(g.dots(), imb_geometry(203.0, 203.0, 0).unwrap().dots());
        assert_compliant(&g);
        let g = imb_geometry(304.8, 304.8, 0).unwrap();
        assert_eq!(
            g.dots(),
            BarDots {
                bar_width: 6,
                pitch: 14,
                tracker: 15,
                extension: 15
            }
        );
        assert_compliant(&g);
    }

    #[test]
    fn every_integer_dpi_is_compliant_and_off_the_limits() {
        for dpi in 150..=1200 {
            let dpi = f64::from(dpi);
            let g = imb_geometry(dpi, dpi, 0).unwrap();
            assert_compliant(&g);
            for (dimension, inches) in g.printed() {
                assert!(!dimension.limit().on_limit(inches), "{dimension} at {dpi}");
            }
        }
    }

    #[test]
    fn mixed_resolutions_use_the_right_axis() {
        for (x, y) in [
            (203.0, 406.0),
            (300.0, 600.0),
            (600.0, 300.0),
            (150.0, 1200.0),
        ] {
            let g = imb_geometry(x, y, 0).unwrap();
            assert_compliant(&g);
            let along = imb_geometry(x, x, 0).unwrap();
            let across = imb_geometry(y, y, 0).unwrap();
            assert_eq!((g.bar_width, g.pitch), (along.bar_width, along.pitch));
            assert_eq!((g.tracker, g.extension), (across.tracker, across.extension));
        }
        // A sample of odd pairs.
        for x in (150..=1200).step_by(37) {
            for y in (150..=1200).step_by(53) {
                assert_compliant(&imb_geometry(f64::from(x), f64::from(y), 0).unwrap());
            }
        }
    }

    #[test]
    fn dot_gain_narrows_the_drawn_bar_only() {
        for dpi in [203.0, 203.2, 300.0, 304.8, 600.0] {
            let base = imb_geometry(dpi, dpi, 0).unwrap();
            for gain in 0..=2 {
                let g = imb_geometry(dpi, dpi, gain).unwrap();
                assert_compliant(&g);
                assert_eq!(g.dots(), base.dots(), "{dpi} gain {gain}");
                assert_eq!(g.bar_width_drawn, base.bar_width - gain);
                assert_eq!(g.quiet_left, base.quiet_left + gain);
            }
        }
    }

    #[test]
    fn dot_gain_that_needs_a_wider_bar_takes_one() {
        // 203 dpi: W 4 with 4 dots of gain would draw nothing; W 5 draws 1.
        let g = imb_geometry(203.0, 203.0, 4).unwrap();
        assert_eq!((g.bar_width, g.bar_width_drawn), (5, 1));
        assert_compliant(&g);
    }

    #[test]
    fn errors_name_the_dimension_the_resolution_and_the_limits() {
        // Table: input → exact message.
        let cases: [(f64, f64, u32, &str); 6] = [
            // 0
            (149.9, 300.0, 0, "horizontal resolution 149.9 dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)"),
            // 1
            (300.0, 1200.5, 0, "vertical resolution 1200.5 dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)"),
            // 2
            (f64::NAN, 300.0, 0, "horizontal resolution NaN dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)"),
            // 3
            (300.0, f64::INFINITY, 0, "vertical resolution inf dpi is outside 150–1200 dpi (give the printer's true dots per inch, e.g. 203.2 for 8 dots/mm)"),
            // 4: 203 dpi, widest legal bar 5 dots
            (203.0, 203.0, 5, "dot gain of 5 dots leaves no bar to draw at 203 dpi: the widest legal bar width (0.015–0.025 in) is 5 dots, so at most 4 dots of gain can be compensated (lower the dot gain or the print darkness)"),
            // 5
            (600.0, 600.0, 15, "dot gain of 15 dots leaves no bar to draw at 600 dpi: the widest legal bar width (0.015–0.025 in) is 15 dots, so at most 14 dots of gain can be compensated (lower the dot gain or the print darkness)"),
        ];
        for (i, (x, y, gain, message)) in cases.into_iter().enumerate() {
            let err = imb_geometry(x, y, gain).unwrap_err();
            assert_eq!(err.to_string(), message, "case {i}");
        }
        assert!(imb_geometry(150.0, 1200.0, 0).is_ok());
        assert!(imb_geometry(-300.0, 300.0, 0).is_err());
        assert!(imb_geometry(0.0, 300.0, 0).is_err());
    }

    #[test]
    fn impossible_dimensions_are_errors_not_guesses() {
        // Below the supported range a dimension can have no whole dot count at all;
        // the search reports it rather than rounding.
        let err = pick_single(Dimension::BarWidth, 30.0, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no whole number of dots gives a bar width of 0.015–0.025 in at 30 dpi (0.45–0.75 dots); use another resolution"
        );
        // 10 dpi: 1 dot = 0.1 in; no bar width at all.
        assert!(matches!(
            pick_bar_width(10.0, 0),
            Err(GeometryError::NoDotCount { .. })
        ));
        assert_eq!(
            pick_heights(52.0).unwrap_err().to_string(),
            "no tracker and extension in whole dots fit at 52 dpi: tracker 0.039–0.057 in, ascender/descender bar 0.082–0.111 in and full bar 0.125–0.165 in must all hold; use another resolution"
        );
    }

    /// The choice never sits on a limit when a legal choice off the limits exists,
    /// and it is the best legal choice under the documented scoring (brute force).
    #[test]
    fn choice_is_the_brute_force_optimum() {
        for dpi in (150..=1200)
            .step_by(7)
            .map(f64::from)
            .chain([203.2, 304.8, 609.6])
        {
            let g = imb_geometry(dpi, dpi, 0).unwrap();
            let chosen = Score::of(&[
                (TRACKER, f64::from(g.tracker) / dpi),
                (ASC_DESC_BAR, f64::from(g.asc_desc_bar) / dpi),
                (FULL_BAR, f64::from(g.full_bar) / dpi),
            ]);
            for t in 1..200u32 {
                for e in 1..200u32 {
                    let (ti, ai, fi) = (
                        f64::from(t) / dpi,
                        f64::from(t + e) / dpi,
                        f64::from(t + 2 * e) / dpi,
                    );
                    if TRACKER.contains(ti) && ASC_DESC_BAR.contains(ai) && FULL_BAR.contains(fi) {
                        let s = Score::of(&[(TRACKER, ti), (ASC_DESC_BAR, ai), (FULL_BAR, fi)]);
                        assert!(!s.beats(&chosen), "{dpi}: T{t} E{e} beats {:?}", g.dots());
                    }
                }
            }
        }
    }

    #[test]
    fn inches_and_serialization() {
        let g = imb_geometry(300.0, 300.0, 1).unwrap();
        let i = g.inches();
        assert!((i.bar_width - 0.02).abs() < 1e-12);
        assert!((i.bar_width_drawn - 5.0 / 300.0).abs() < 1e-12);
        assert!((i.full_bar - 44.0 / 300.0).abs() < 1e-12);
        assert!((i.bars_per_inch - 300.0 / 14.0).abs() < 1e-12);
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains("\"bar_width\":6"), "{json}");
        assert!(json.contains("\"bar_width_drawn\":5"), "{json}");
        assert!(serde_json::to_string(&i).is_ok());
    }

    #[test]
    fn from_dots_never_overflows() {
        let huge = BarDots {
            bar_width: u32::MAX,
            pitch: u32::MAX,
            tracker: u32::MAX,
            extension: u32::MAX,
        };
        let g = ImbGeometry::from_dots(300.0, 300.0, u32::MAX, huge);
        assert_eq!(g.symbol_width, u32::MAX);
        assert_eq!(g.bar_width_drawn, 0);
        let g = ImbGeometry::from_dots(f64::NAN, f64::INFINITY, 0, huge);
        assert_eq!(g.quiet_top, 0);
    }
}
