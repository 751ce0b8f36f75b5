//! A laid-out [`Label`] + a device [`Profile`] (+ the driver's [`Capabilities`]) →
//! a [`Page`]: the 1-bit bitmap at the device's `dpi_x` × `dpi_y`, and the native
//! elements the driver prints itself.
//!
//! # Steps
//!
//! 1. **Turn.** A label marked [`Feed::Landscape`] is printed turned 90° clockwise;
//!    [`RenderOptions::rotation`] overrides (any quarter turn). With no override, a
//!    label whose ink does not fit across the head that way but fits the other way is
//!    turned the other way.
//! 2. **Canvas.** Everything is drawn upright, as the label is read, at the
//!    resolution of the axes it will land on: when turned a quarter, the canvas's
//!    x resolution is the device's `dpi_y` and the other way round. So the IMb's
//!    geometry ([`crate::geometry::imb_geometry`]) is always chosen for the axis its
//!    bars run along, and Code 128 modules likewise.
//! 3. **Calibration.** `profile.offset_x`/`offset_y` (device dots, right/down) are
//!    mapped onto the canvas axes and added to every element's position.
//! 4. **Elements**, in order: text ([`super::text`]; black where a dot is at least
//!    half covered, clipped to its line boxes), Code 128 at a whole number of dots per
//!    module chosen from the element's [`crate::layout::ModuleRule`] (closest to the
//!    target; bars drawn `dot_gain` narrower), lines, boxes, images (nearest
//!    neighbour). IMbs come last: each one's quiet zones (the geometry's, in whole
//!    dots) must be white and inside the printable window, or the label is refused
//!    ([`RenderError::ImbClearance`]); then [`super::imb::draw_imb`] draws it.
//! 5. **Native elements.** When the profile asks for them and the driver can print
//!    them, text becomes [`NativeText`] (any turn), Code 128 [`NativeCode128`] (symbol
//!    values from the start character through the last data value) and the IMb
//!    [`NativeImb`] (both upright labels only; turned ones are drawn). A native element
//!    is not drawn.
//! 6. **Window and turn.** A label wider than the head is allowed only when what
//!    falls off the head is blank (a 2.25 in label on a 2.24 in DYMO head); the canvas
//!    is cropped to the head and turned into the device's frame.
//!
//! [`render_with`] also returns where each IMb landed, so [`verify_imbs`] can crop,
//! turn back and read every one with [`crate::verify::verify_imb`].

use crate::geometry::{imb_geometry, GeometryError, ImbGeometry};
use crate::layout::{Align, Code128Mark, Element, Feed, ImbMark, Label, TextBlock};
use crate::render::imb::draw_imb;
use crate::render::text::{self, DotRect, LineStyle};
use crate::verify::{verify_imb, ImbReport, VerifyError};
use labeld_drivers::{
    Bitmap, Capabilities, NativeCode128, NativeElement, NativeImb, NativeText, Page, Profile,
    Resolution, Rotation,
};

/// Largest canvas rendered, in dots (a 8.5 × 14 in page at 1200 dpi is 171 M).
pub const MAX_DOTS: u64 = 200_000_000;

/// How to render, beyond what the profile says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Turn the label by this much (clockwise) instead of what its feed asks.
    pub rotation: Option<Rotation>,
    /// Dots by which the printer widens each bar (IMb and Code 128 bars are drawn
    /// this much narrower). 0 unless the device is known to spread.
    pub dot_gain: u32,
}

/// Why a label cannot be rendered for a device.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// No compliant IMb geometry at this resolution.
    #[error("{label}: {element} cannot be drawn at {dpi_x} x {dpi_y} dpi: {source}")]
    Geometry {
        /// The label.
        label: String,
        /// The element.
        element: String,
        /// Resolution along the bars.
        dpi_x: f64,
        /// Resolution across the bars.
        dpi_y: f64,
        /// Why.
        source: GeometryError,
    },
    /// No whole number of dots gives a legal Code 128 module that fits.
    #[error("{label}: {element}: no whole number of dots at {dpi} dpi gives a module of {min_in:.4}-{max_in:.4} in that fits its {room_in:.2} in (try a printer of another resolution, or a shorter symbol)")]
    ModuleWidth {
        /// The label.
        label: String,
        /// The element.
        element: String,
        /// Resolution along the bars.
        dpi: f64,
        /// Narrowest module allowed, inches.
        min_in: f64,
        /// Widest module allowed, inches.
        max_in: f64,
        /// Room for the symbol and its quiet zones, inches.
        room_in: f64,
    },
    /// Ink beyond the printer's width.
    #[error("{label}: ink reaches {needed_dots} dots across the head; this printer prints {max_dots} (use a narrower label, turn it, or check the offsets)")]
    TooWide {
        /// The label.
        label: String,
        /// Dots across the head the ink needs.
        needed_dots: u64,
        /// Dots the printer prints.
        max_dots: u32,
    },
    /// An IMb's quiet zone is not clear (other ink, the label edge, or an offset
    /// pushing it off the head).
    #[error("{label}: {element} needs {needed_dots} clear dots on its {side} side; it has {found_dots} (keep other ink and the label edge away, or reduce the offsets)")]
    ImbClearance {
        /// The label.
        label: String,
        /// The element.
        element: String,
        /// `left`, `right`, `top` or `bottom`.
        side: &'static str,
        /// Dots needed.
        needed_dots: u32,
        /// Dots found clear.
        found_dots: u32,
    },
    /// A label with no area, or too many dots to render.
    #[error("{label}: {width} x {height} dots cannot be rendered (at most {MAX_DOTS} dots, at least 1 x 1)")]
    Size {
        /// The label.
        label: String,
        /// Width in dots.
        width: u64,
        /// Height in dots.
        height: u64,
    },
}

/// Where an IMb landed on the page.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedImb {
    /// The element's name.
    pub name: String,
    /// The 20-digit tracking code.
    pub tracking: String,
    /// The routing code.
    pub routing: String,
    /// The symbol with its quiet zones, in page dots: left, top, width, height.
    pub region: (u32, u32, u32, u32),
    /// The geometry it was drawn with (dpi_x = along the bars).
    pub geometry: ImbGeometry,
    /// Whether the printer draws it (native): then it is not in the bitmap.
    pub native: bool,
}

/// A rendered page and what is needed to check it.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedLabel {
    /// The page.
    pub page: Page,
    /// How the label was turned onto the page.
    pub rotation: Rotation,
    /// Every IMb on it.
    pub imbs: Vec<PlacedImb>,
}

/// Renders `label` for a device with default options.
///
/// # Errors
///
/// See [`RenderError`].
pub fn render(label: &Label, profile: &Profile, caps: &Capabilities) -> Result<Page, RenderError> {
    render_with(label, profile, caps, &RenderOptions::default()).map(|r| r.page)
}

/// Reads back every drawn IMb of a rendered label: crops its region (and half its
/// height again around it, so nearby ink counts against the quiet zones), turns it upright
/// and runs [`verify_imb`] at the resolutions it was drawn for. Native IMbs are not
/// in the bitmap and are skipped.
pub fn verify_imbs(
    rendered: &RenderedLabel,
    dot_gain: u32,
) -> Vec<(String, Result<ImbReport, VerifyError>)> {
    let bitmap = &rendered.page.bitmap;
    rendered
        .imbs
        .iter()
        .filter(|m| !m.native)
        .map(|m| {
            let (x, y, w, h) = m.region;
            let margin = w.min(h) / 2;
            let x0 = x.saturating_sub(margin);
            let y0 = y.saturating_sub(margin);
            let x1 = x
                .saturating_add(w)
                .saturating_add(margin)
                .min(bitmap.width());
            let y1 = y
                .saturating_add(h)
                .saturating_add(margin)
                .min(bitmap.height());
            let crop = crop(bitmap, x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0));
            let upright = rotate(&crop, inverse(rendered.rotation));
            let report = verify_imb(&upright, m.geometry.dpi_x, m.geometry.dpi_y, dot_gain);
            (m.name.clone(), report)
        })
        .collect()
}

/// Renders `label` for a device.
///
/// # Errors
///
/// See [`RenderError`].
pub fn render_with(
    label: &Label,
    profile: &Profile,
    caps: &Capabilities,
    options: &RenderOptions,
) -> Result<RenderedLabel, RenderError> {
    let dev = profile.resolution;
    let head = if caps.max_width_dots > 0 {
        profile.width_dots.min(caps.max_width_dots)
    } else {
        profile.width_dots
    };
    let across = |r: Rotation| -> i64 {
        if quarter(r) {
            dev.dots_x(label.height)
        } else {
            dev.dots_x(label.width)
        }
    };
    // A label far wider than the head either way round cannot print: say so, rather
    // than which element happens to fall off first. A few dots over is allowed
    // (blank margins of a 2.25 in label on a 2.24 in head): the canvas checks ink.
    let slack = dev.dots_x(LABEL_OVERHANG_IN);
    let narrowest = across(Rotation::None).min(across(Rotation::Cw90));
    if options.rotation.is_none() && narrowest > i64::from(head) + slack {
        return Err(RenderError::TooWide {
            label: label.description.clone(),
            needed_dots: narrowest as u64,
            max_dots: head,
        });
    }
    let rotation = match options.rotation {
        Some(r) => r,
        None => {
            let (preferred, other) = match label.feed {
                Feed::Portrait => (Rotation::None, Rotation::Cw90),
                Feed::Landscape => (Rotation::Cw90, Rotation::None),
            };
            match render_turned(label, profile, caps, options, preferred, head) {
                Err(RenderError::TooWide { .. }) if across(other) <= i64::from(head) => other,
                result => return result,
            }
        }
    };
    render_turned(label, profile, caps, options, rotation, head)
}

/// How far a label may be wider than the head, either way round, before it is
/// refused outright (its margins may hang off; its ink may not).
const LABEL_OVERHANG_IN: f64 = 0.1;

/// [`render_with`] for one turn.
fn render_turned(
    label: &Label,
    profile: &Profile,
    caps: &Capabilities,
    options: &RenderOptions,
    rotation: Rotation,
    head: u32,
) -> Result<RenderedLabel, RenderError> {
    let dev = profile.resolution;
    let res = if quarter(rotation) {
        Resolution { x: dev.y, y: dev.x }
    } else {
        dev
    };
    let (w, h) = (res.dots_x(label.width), res.dots_y(label.height));
    if w < 1 || h < 1 || (w as u64).saturating_mul(h as u64) > MAX_DOTS {
        return Err(RenderError::Size {
            label: label.description.clone(),
            width: w.max(0) as u64,
            height: h.max(0) as u64,
        });
    }
    let (w, h) = (w as u32, h as u32);
    let window = window(w, h, head, rotation);
    let (ox, oy) = (i64::from(profile.offset_x), i64::from(profile.offset_y));
    let offset = match rotation {
        Rotation::None => (ox, oy),
        Rotation::Cw90 => (oy, -ox),
        Rotation::Cw180 => (-ox, -oy),
        Rotation::Cw270 => (-oy, ox),
    };
    let mut canvas = Canvas {
        label,
        bitmap: Bitmap::new(w, h),
        res,
        offset,
        window,
        rotation,
        gain: options.dot_gain,
        native: Vec::new(),
        imbs: Vec::new(),
    };
    let native_text = profile.native.text && caps.native_text;
    let upright = rotation == Rotation::None;
    let native_code128 = profile.native.code128 && caps.native_code128 && upright;
    let native_imb = profile.native.imb && caps.native_imb && upright;
    for element in &label.elements {
        match element {
            Element::Text(t) if native_text => canvas.native_text(t),
            Element::Text(t) => canvas.text(t),
            Element::Code128(c) => canvas.code128(c, native_code128)?,
            Element::Line(l) => canvas.line(l.x1, l.y1, l.x2, l.y2, l.thickness),
            Element::Box(b) => canvas.rect_mark(b),
            Element::Image(i) => canvas.image(i),
            Element::Imb(_) => {}
        }
    }
    for element in &label.elements {
        if let Element::Imb(m) = element {
            canvas.imb(m, native_imb, options.dot_gain)?;
        }
    }
    canvas.check_window(head)?;
    let cropped = if window
        == (DotRect {
            x0: 0,
            y0: 0,
            x1: i64::from(w),
            y1: i64::from(h),
        }) {
        canvas.bitmap
    } else {
        crop(
            &canvas.bitmap,
            window.x0 as u32,
            window.y0 as u32,
            (window.x1 - window.x0) as u32,
            (window.y1 - window.y0) as u32,
        )
    };
    let bitmap = rotate(&cropped, rotation);
    Ok(RenderedLabel {
        page: Page {
            bitmap,
            resolution: dev,
            native: canvas.native,
        },
        rotation,
        imbs: canvas.imbs,
    })
}

/// Whether `r` is a quarter turn.
fn quarter(r: Rotation) -> bool {
    matches!(r, Rotation::Cw90 | Rotation::Cw270)
}

/// The turn that undoes `r`.
fn inverse(r: Rotation) -> Rotation {
    match r {
        Rotation::None => Rotation::None,
        Rotation::Cw90 => Rotation::Cw270,
        Rotation::Cw180 => Rotation::Cw180,
        Rotation::Cw270 => Rotation::Cw90,
    }
}

/// The part of a `w` × `h` canvas that lands on a head `head` dots wide after the
/// turn `r` (device x = 0 is the head's first dot).
fn window(w: u32, h: u32, head: u32, r: Rotation) -> DotRect {
    let (w, h, head) = (i64::from(w), i64::from(h), i64::from(head));
    let mut rect = DotRect {
        x0: 0,
        y0: 0,
        x1: w,
        y1: h,
    };
    match r {
        Rotation::None => rect.x1 = w.min(head),
        Rotation::Cw90 => rect.y0 = (h - head).max(0),
        Rotation::Cw180 => rect.x0 = (w - head).max(0),
        Rotation::Cw270 => rect.y1 = h.min(head),
    }
    rect
}

/// A copy of the `w` × `h` dots of `b` from (`x0`, `y0`).
pub fn crop(b: &Bitmap, x0: u32, y0: u32, w: u32, h: u32) -> Bitmap {
    b.crop(x0, y0, w, h)
}

/// `b` turned clockwise by `r`.
pub fn rotate(b: &Bitmap, r: Rotation) -> Bitmap {
    let (w, h) = (b.width(), b.height());
    match r {
        Rotation::None => b.clone(),
        Rotation::Cw90 => {
            let mut out = Bitmap::new(h, w);
            for y in 0..h {
                for x in 0..w {
                    if b.get(x, y) {
                        out.set(h - 1 - y, x, true);
                    }
                }
            }
            out
        }
        Rotation::Cw180 => {
            let mut out = Bitmap::new(w, h);
            for y in 0..h {
                for x in 0..w {
                    if b.get(x, y) {
                        out.set(w - 1 - x, h - 1 - y, true);
                    }
                }
            }
            out
        }
        Rotation::Cw270 => {
            let mut out = Bitmap::new(h, w);
            for y in 0..h {
                for x in 0..w {
                    if b.get(x, y) {
                        out.set(y, w - 1 - x, true);
                    }
                }
            }
            out
        }
    }
}

/// The upright drawing surface.
struct Canvas<'a> {
    label: &'a Label,
    bitmap: Bitmap,
    /// Canvas resolution (x = across the label as read).
    res: Resolution,
    /// Calibration in canvas dots.
    offset: (i64, i64),
    /// The part that lands on the head.
    window: DotRect,
    rotation: Rotation,
    gain: u32,
    native: Vec<NativeElement>,
    imbs: Vec<PlacedImb>,
}

impl Canvas<'_> {
    fn px(&self, inches: f64) -> i64 {
        self.res.dots_x(inches) + self.offset.0
    }

    fn py(&self, inches: f64) -> i64 {
        self.res.dots_y(inches) + self.offset.1
    }

    /// Fills canvas dots [x0, x1) × [y0, y1), clipped.
    fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64) {
        let (bw, bh) = (
            i64::from(self.bitmap.width()),
            i64::from(self.bitmap.height()),
        );
        let (x0, y0) = (x0.clamp(0, bw), y0.clamp(0, bh));
        let (x1, y1) = (x1.clamp(0, bw), y1.clamp(0, bh));
        if x1 > x0 && y1 > y0 {
            self.bitmap
                .fill_rect(x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
        }
    }

    /// A canvas rectangle → the page rectangle (x, y, w, h) after the window crop and
    /// the turn; negative starts are clamped to 0.
    fn to_page(&self, x0: i64, y0: i64, x1: i64, y1: i64) -> (u32, u32, u32, u32) {
        let (x0, x1) = (x0 - self.window.x0, x1 - self.window.x0);
        let (y0, y1) = (y0 - self.window.y0, y1 - self.window.y0);
        let w = self.window.x1 - self.window.x0;
        let h = self.window.y1 - self.window.y0;
        let (px, py, pw, ph) = match self.rotation {
            Rotation::None => (x0, y0, x1 - x0, y1 - y0),
            Rotation::Cw90 => (h - y1, x0, y1 - y0, x1 - x0),
            Rotation::Cw180 => (w - x1, h - y1, x1 - x0, y1 - y0),
            Rotation::Cw270 => (y0, w - x1, y1 - y0, x1 - x0),
        };
        let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        (clamp(px), clamp(py), clamp(pw), clamp(ph))
    }

    fn text(&mut self, t: &TextBlock) {
        let ink = t.ink_area();
        let clip = DotRect {
            x0: self.px(ink.x),
            y0: self.py(ink.y),
            x1: self.px(ink.right()),
            y1: self.py(ink.bottom()),
        };
        let style = LineStyle {
            font: t.font,
            size_pt: t.size_pt,
            dpi_x: self.res.x,
            dpi_y: self.res.y,
        };
        let ascent = text::ASCENT_EM * t.size_pt / text::POINTS_PER_INCH;
        for (i, line) in t.lines.iter().enumerate() {
            let baseline = self.py(t.y + ascent + t.line_pitch() * i as f64);
            let x = self.px(t.line_x(i));
            text::draw_line(&mut self.bitmap, &style, x, baseline, line, clip);
        }
    }

    fn native_text(&mut self, t: &TextBlock) {
        // Character height and pitch along the page's own axes.
        let along_y = if quarter(self.rotation) {
            self.res.x
        } else {
            self.res.y
        };
        let em = (t.size_pt / text::POINTS_PER_INCH * along_y).round() as u32;
        let pitch = (t.line_pitch() * along_y).round() as u32;
        let rotation = self.rotation;
        let push = |canvas: &Self, x: f64, y: f64, width: f64, lines: Vec<String>| {
            let n = lines.len() as f64;
            let (x0, y0) = (canvas.px(x), canvas.py(y));
            let (x1, y1) = (canvas.px(x + width), canvas.py(y + n * t.line_pitch()));
            let (px, py, pw, ph) = canvas.to_page(x0, y0, x1, y1);
            let width = if quarter(rotation) { ph } else { pw };
            NativeElement::Text(NativeText {
                x: px,
                y: py,
                width,
                height: em,
                line_pitch: pitch,
                lines,
                rotation,
            })
        };
        if t.align == Align::Left {
            let e = push(self, t.x, t.y, t.width, t.lines.clone());
            self.native.push(e);
        } else {
            for (i, line) in t.lines.iter().enumerate() {
                let w = text::width_in(t.font, t.size_pt, line);
                let y = t.y + t.line_pitch() * i as f64;
                let e = push(self, t.line_x(i), y, w, vec![line.clone()]);
                self.native.push(e);
            }
        }
    }

    fn code128(&mut self, c: &Code128Mark, native: bool) -> Result<(), RenderError> {
        let dpi = self.res.x;
        let modules = c.symbol.modules() as f64;
        let q = f64::from(c.quiet_modules);
        let rule = c.module;
        let fits = |m: u32| {
            let mi = f64::from(m) / dpi;
            let len = modules * mi;
            let (left, right) = match c.align {
                Align::Left => (c.x - q * mi, c.x + len + q * mi),
                Align::Center => (c.x - len / 2.0 - q * mi, c.x + len / 2.0 + q * mi),
                Align::Right => (c.x - len - q * mi, c.x + q * mi),
            };
            mi >= rule.min - 1e-9
                && mi <= rule.max + 1e-9
                && rule.max_length.is_none_or(|l| len <= l + 1e-9)
                && left >= c.clear.x - 1e-9
                && right <= c.clear.right() + 1e-9
        };
        let best = (1..=(rule.max * dpi).ceil().max(1.0) as u32 + 1)
            .filter(|&m| fits(m))
            .min_by(|&a, &b| {
                let da = (f64::from(a) / dpi - rule.target).abs();
                let db = (f64::from(b) / dpi - rule.target).abs();
                da.total_cmp(&db).then(a.cmp(&b))
            });
        let Some(m) = best else {
            return Err(RenderError::ModuleWidth {
                label: self.label.description.clone(),
                element: c.name.clone(),
                dpi,
                min_in: rule.min,
                max_in: rule.max,
                room_in: c.clear.width,
            });
        };
        let symbol_dots = c.symbol.modules() as i64 * i64::from(m);
        let x0 = match c.align {
            Align::Left => self.px(c.x),
            Align::Center => (c.x * dpi - symbol_dots as f64 / 2.0).round() as i64 + self.offset.0,
            Align::Right => self.px(c.x) - symbol_dots,
        };
        let (y0, y1) = (self.py(c.y), self.py(c.y + c.height));
        if native {
            let (px, py, _, _) = self.to_page(x0, y0, x0 + symbol_dots, y1);
            let mut values = vec![c.symbol.start_value()];
            values.extend_from_slice(c.symbol.data_values());
            self.native.push(NativeElement::Code128(NativeCode128 {
                x: px,
                y: py,
                module: m,
                height: (y1 - y0).max(1) as u32,
                values,
                text_below: false,
            }));
            return Ok(());
        }
        for (start, width) in c.symbol.bars() {
            let left = x0 + start as i64 * i64::from(m);
            let dots = width as i64 * i64::from(m);
            let drawn = (dots - i64::from(self.gain)).max(1);
            self.fill(left, y0, left + drawn, y1);
        }
        Ok(())
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, thickness: f64) {
        let (ax, ay, bx, by) = (
            x1 * self.res.x,
            y1 * self.res.y,
            x2 * self.res.x,
            y2 * self.res.y,
        );
        let (ox, oy) = self.offset;
        if (y1 - y2).abs() < 1e-12 || (x1 - x2).abs() < 1e-12 {
            // Axis-aligned: an exact rectangle.
            let tx = (thickness * self.res.x).round().max(1.0) as i64;
            let ty = (thickness * self.res.y).round().max(1.0) as i64;
            if (y1 - y2).abs() < 1e-12 {
                let top = (ay - ty as f64 / 2.0).round() as i64 + oy;
                let (l, r) = (ax.min(bx).round() as i64, ax.max(bx).round() as i64);
                self.fill(l + ox, top, r.max(l + 1) + ox, top + ty);
            } else {
                let left = (ax - tx as f64 / 2.0).round() as i64 + ox;
                let (t, b) = (ay.min(by).round() as i64, ay.max(by).round() as i64);
                self.fill(left, t + oy, left + tx, b.max(t + 1) + oy);
            }
            return;
        }
        // Any other angle: dots whose centre lies within half the thickness of the
        // segment, measured in inches.
        let half = thickness / 2.0;
        let (x0i, x1i) = (x1.min(x2) - half, x1.max(x2) + half);
        let (y0i, y1i) = (y1.min(y2) - half, y1.max(y2) + half);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        let (bw, bh) = (
            i64::from(self.bitmap.width()),
            i64::from(self.bitmap.height()),
        );
        let cx0 = ((x0i * self.res.x).floor() as i64 + ox).clamp(0, bw);
        let cx1 = ((x1i * self.res.x).ceil() as i64 + ox).clamp(0, bw);
        let cy0 = ((y0i * self.res.y).floor() as i64 + oy).clamp(0, bh);
        let cy1 = ((y1i * self.res.y).ceil() as i64 + oy).clamp(0, bh);
        for py in cy0..cy1 {
            for px in cx0..cx1 {
                let x = ((px - ox) as f64 + 0.5) / self.res.x;
                let y = ((py - oy) as f64 + 0.5) / self.res.y;
                let t = (((x - x1) * dx + (y - y1) * dy) / len2).clamp(0.0, 1.0);
                let (ex, ey) = (x - (x1 + t * dx), y - (y1 + t * dy));
                if ex * ex + ey * ey <= half * half {
                    self.bitmap.set(px as u32, py as u32, true);
                }
            }
        }
    }

    fn rect_mark(&mut self, b: &crate::layout::BoxMark) {
        let a = b.area;
        let (x0, y0, x1, y1) = (
            self.px(a.x),
            self.py(a.y),
            self.px(a.right()),
            self.py(a.bottom()),
        );
        if b.fill {
            self.fill(x0, y0, x1, y1);
            return;
        }
        let tx = ((b.thickness * self.res.x).round() as i64).max(1);
        let ty = ((b.thickness * self.res.y).round() as i64).max(1);
        self.fill(x0, y0, x1, y0 + ty);
        self.fill(x0, y1 - ty, x1, y1);
        self.fill(x0, y0, x0 + tx, y1);
        self.fill(x1 - tx, y0, x1, y1);
    }

    fn image(&mut self, i: &crate::layout::ImageMark) {
        let a = i.area;
        let (x0, y0, x1, y1) = (
            self.px(a.x),
            self.py(a.y),
            self.px(a.right()),
            self.py(a.bottom()),
        );
        let (dw, dh) = (x1 - x0, y1 - y0);
        let (sw, sh) = (i64::from(i.pixels.width()), i64::from(i.pixels.height()));
        if dw <= 0 || dh <= 0 || sw == 0 || sh == 0 {
            return;
        }
        let (bw, bh) = (
            i64::from(self.bitmap.width()),
            i64::from(self.bitmap.height()),
        );
        for dy in (0 - y0).max(0)..dh.min(bh - y0) {
            let sy = ((2 * dy + 1) * sh / (2 * dh)) as u32;
            for dx in (0 - x0).max(0)..dw.min(bw - x0) {
                let sx = ((2 * dx + 1) * sw / (2 * dw)) as u32;
                if i.pixels.get(sx, sy) {
                    self.bitmap.set((x0 + dx) as u32, (y0 + dy) as u32, true);
                }
            }
        }
    }

    fn imb(&mut self, m: &ImbMark, native: bool, gain: u32) -> Result<(), RenderError> {
        let g =
            imb_geometry(self.res.x, self.res.y, gain).map_err(|source| RenderError::Geometry {
                label: self.label.description.clone(),
                element: m.name.clone(),
                dpi_x: self.res.x,
                dpi_y: self.res.y,
                source,
            })?;
        let (bx, by) = (self.px(m.x), self.py(m.y));
        let length = i64::from(64 * g.pitch + g.bar_width_drawn);
        let full = i64::from(g.full_bar);
        let zone = DotRect {
            x0: bx - i64::from(g.quiet_left),
            y0: by - i64::from(g.quiet_top),
            x1: bx + length + i64::from(g.quiet_right),
            y1: by + full + i64::from(g.quiet_bottom),
        };
        if !native {
            self.check_clear(m, &g, bx, by, length, full)?;
            // In range: check_clear proved the zone lies inside the canvas.
            draw_imb(&mut self.bitmap, bx as u32, by as u32, &m.imb, &g);
        } else {
            let (px, py, _, _) = self.to_page(bx, by, bx + length, by + full);
            self.native.push(NativeElement::Imb(NativeImb {
                x: px,
                y: py,
                tracking: m.tracking.clone(),
                routing: m.routing.clone(),
            }));
        }
        self.imbs.push(PlacedImb {
            name: m.name.clone(),
            tracking: m.tracking.clone(),
            routing: m.routing.clone(),
            region: self.to_page(zone.x0, zone.y0, zone.x1, zone.y1),
            geometry: g,
            native,
        });
        Ok(())
    }

    /// The IMb's quiet zones lie inside the window and hold no ink.
    fn check_clear(
        &self,
        m: &ImbMark,
        g: &ImbGeometry,
        bx: i64,
        by: i64,
        length: i64,
        full: i64,
    ) -> Result<(), RenderError> {
        let w = self.window;
        let err = |side: &'static str, needed: u32, found: i64| RenderError::ImbClearance {
            label: self.label.description.clone(),
            element: m.name.clone(),
            side,
            needed_dots: needed,
            found_dots: found.clamp(0, i64::from(u32::MAX)) as u32,
        };
        // Distance to the window's edges.
        let sides = [
            ("left", g.quiet_left, bx - w.x0),
            ("right", g.quiet_right, w.x1 - (bx + length)),
            ("top", g.quiet_top, by - w.y0),
            ("bottom", g.quiet_bottom, w.y1 - (by + full)),
        ];
        for (side, needed, found) in sides {
            if found < i64::from(needed) {
                return Err(err(side, needed, found));
            }
        }
        // Ink in the zone (the window check proved it lies inside the canvas): the
        // nearest dot on each side says how much clear space there is.
        let (x0, x1) = (bx, bx + length);
        let (y0, y1) = (by, by + full);
        let mut worst: Option<(&'static str, u32, i64)> = None;
        for y in y0 - i64::from(g.quiet_top)..y1 + i64::from(g.quiet_bottom) {
            for x in x0 - i64::from(g.quiet_left)..x1 + i64::from(g.quiet_right) {
                if !self.bitmap.get(x as u32, y as u32) {
                    continue;
                }
                let hit = if x < x0 {
                    ("left", g.quiet_left, x0 - x - 1)
                } else if x >= x1 {
                    ("right", g.quiet_right, x - x1)
                } else if y < y0 {
                    ("top", g.quiet_top, y0 - y - 1)
                } else if y >= y1 {
                    ("bottom", g.quiet_bottom, y - y1)
                } else {
                    ("bar area", 0, 0)
                };
                if worst.is_none_or(|w| hit.2 < w.2) {
                    worst = Some(hit);
                }
            }
        }
        match worst {
            Some((side, needed, found)) => Err(err(side, needed, found)),
            None => Ok(()),
        }
    }

    /// Ink outside the window (beyond the head) is an error.
    fn check_window(&self, head: u32) -> Result<(), RenderError> {
        let w = self.window;
        let (bw, bh) = (
            i64::from(self.bitmap.width()),
            i64::from(self.bitmap.height()),
        );
        if w.x0 == 0 && w.y0 == 0 && w.x1 == bw && w.y1 == bh {
            return Ok(());
        }
        let mut far = 0i64;
        for y in 0..bh {
            for x in 0..bw {
                if !w.contains(x, y) && self.bitmap.get(x as u32, y as u32) {
                    let across = match self.rotation {
                        Rotation::None => x + 1,
                        Rotation::Cw90 => bh - y,
                        Rotation::Cw180 => bw - x,
                        Rotation::Cw270 => y + 1,
                    };
                    far = far.max(across);
                }
            }
        }
        if far > 0 {
            return Err(RenderError::TooWide {
                label: self.label.description.clone(),
                needed_dots: far as u64,
                max_dots: head,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::layout_json;
    use labeld_drivers::models;

    const ROTATIONS: [Rotation; 4] = [
        Rotation::None,
        Rotation::Cw90,
        Rotation::Cw180,
        Rotation::Cw270,
    ];

    fn caps() -> Capabilities {
        Capabilities {
            native_text: false,
            native_code128: false,
            native_imb: false,
            max_width_dots: u32::MAX,
            ascii_capable: true,
            status: false,
        }
    }

    /// Bounding box (x, y, w, h) of the black dots.
    fn ink_box(b: &Bitmap) -> (u32, u32, u32, u32) {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..b.height() {
            for x in 0..b.width() {
                if b.get(x, y) {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        (x0, y0, x1 - x0, y1 - y0)
    }

    #[test]
    fn turns_compose_and_undo() {
        let mut b = Bitmap::new(7, 3);
        b.set(0, 0, true);
        b.set(6, 1, true);
        b.set(2, 2, true);
        for r in ROTATIONS {
            assert_eq!(rotate(&rotate(&b, r), inverse(r)), b, "{r:?}");
        }
        let cw = rotate(&b, Rotation::Cw90);
        assert_eq!((cw.width(), cw.height()), (3, 7));
        assert!(cw.get(2, 0)); // top-left goes to top-right
        assert_eq!(rotate(&cw, Rotation::Cw90), rotate(&b, Rotation::Cw180));
        assert_eq!(crop(&b, 5, 1, 2, 2).count_black(), 1);
    }

    #[test]
    fn page_rectangles_follow_the_bitmap_through_every_turn_and_window() {
        let label = &layout_json(r#"{"template":"custom","width":2,"height":1,"elements":[]}"#)
            .expect("label")[0];
        for r in ROTATIONS {
            for head in [1000, 150, 90] {
                let res = Resolution::square(100.0);
                let (w, h) = (200, 100);
                let window = window(w, h, head, r);
                let mut canvas = Canvas {
                    label,
                    bitmap: Bitmap::new(w, h),
                    res,
                    offset: (0, 0),
                    window,
                    rotation: r,
                    gain: 0,
                    native: Vec::new(),
                    imbs: Vec::new(),
                };
                canvas.fill(60, 40, 95, 70);
                let expected = canvas.to_page(60, 40, 95, 70);
                let cropped = crop(
                    &canvas.bitmap,
                    window.x0 as u32,
                    window.y0 as u32,
                    (window.x1 - window.x0) as u32,
                    (window.y1 - window.y0) as u32,
                );
                let page = rotate(&cropped, r);
                assert!(page.width() <= head, "{r:?} {head}");
                if page.count_black() == 35 * 30 {
                    assert_eq!(ink_box(&page), expected, "{r:?} {head}");
                }
            }
        }
    }

    #[test]
    fn code128_module_is_the_whole_dot_count_nearest_the_target() {
        let job = r#"{"template":"tray","barcode":"123456781123456123123451",
            "destination":"A","content":"B","origin":"C"}"#;
        let label = &layout_json(job).expect("tray")[0];
        for (dpi, module) in [(203.2, 3), (300.0, 5), (304.8, 5), (600.0, 9), (609.6, 9)] {
            let mut p = models::find("zpl-203").expect("model").profile();
            p.resolution = Resolution::square(dpi);
            p.width_dots = 10_000;
            p.native.code128 = true;
            let all = Capabilities {
                native_code128: true,
                ..caps()
            };
            let page = render(label, &p, &all).expect("renders");
            let code = page
                .native
                .iter()
                .find_map(|n| match n {
                    NativeElement::Code128(c) => Some(c),
                    _ => None,
                })
                .expect("native");
            assert_eq!(code.module, module, "{dpi}");
        }
    }

    #[test]
    fn ink_in_an_imb_quiet_zone_is_refused() {
        let job = r#"{"template":"custom","width":4,"height":2,"elements":[
            {"type":"imb","x":0.4,"y":0.5,"tracking":"00270123456200800001"}]}"#;
        let label = &mut layout_json(job).expect("label")[0];
        let p = models::find("zpl-203").expect("model").profile();
        render(label, &p, &caps()).expect("clear");
        // Slip a line into the quiet zone behind the layout's back.
        label.elements.push(Element::Line(crate::layout::LineMark {
            x1: 0.3,
            y1: 0.4,
            x2: 0.3,
            y2: 0.7,
            thickness: 0.01,
        }));
        let e = render(label, &p, &caps()).expect_err("ink");
        assert!(
            matches!(e, RenderError::ImbClearance { side: "left", .. }),
            "{e}"
        );
    }
}
