//! Eltron/Zebra EPL2 (page mode): labels as direct graphic writes.
//!
//! Sources: Zebra "EPL Programming Guide" 14245L-003 (commands `N` clear image
//! buffer, `q` label width, `Q` form length, `D` density, `S` speed, `GW` direct
//! graphic write, `P` print); Zebra KB "Details related to the GW EPL Command" (a
//! comma or CR LF must separate p4 from the data, which the guide omits);
//! `printer-langs.md` §2 and §7.5 (`GW` is **0 = black**); CUPS `rastertolabel.c`
//! (`ZEBRA_EPL_PAGE`) for the speed-code formula. Models: the Zebra/Eltron LP2844
//! (`zebra-lp2844`) and the generic `epl-203` row.
//!
//! Each page is one self-contained format: `N`, `q`, `Q`, `D`, `S`, one `GW` per
//! run of non-blank rows, and `P`. Blank rows cost nothing (`N` leaves the buffer
//! white), except that a blank gap cheaper than a `GW` header (under 24 bytes of
//! rows) stays inside its run; each `GW` is also trimmed to the byte columns its
//! rows use. `P` repeats the label `copies` times (0 is taken as 1). The page's
//! calibration offsets move its contents inside the label box; dots moved off the
//! label are dropped, since they would fall off the label anyway.
//!
//! Choices the facts leave open:
//! - `q` is the page width rounded up to whole bytes (as CUPS and LPrint send it),
//!   or the exact width where rounding would pass the head.
//! - Gap and black-mark media: labeld's profile has no gap size, so `Q` gets the
//!   3 mm (24 dots at 8 dots/mm) of Zebra's KB example `Q406,24`, inside the
//!   guide's 16–240 (203 dpi) and 18–240 (300 dpi) range. Black mark sends
//!   `Q<len>,B<3 mm>+0` (the guide says p3 is required in black-line mode).
//!   Continuous sends `Q<len>,0`.
//! - `S`: speed codes depend on the model. The formula from CUPS (`2 × ips − 2`
//!   below 3 ips, whole ips from 3 up) gives the LP2844 table (1.5, 2, 2.5, 3.5 ips
//!   → `S1`–`S4`) and the whole-ips codes of later models; the code is clamped to
//!   1–6.
//! - `D` = darkness % × 15 / 100, rounded.
//!
//! Unsupported: native text and barcodes (everything arrives as a bitmap);
//! 7-bit links (`GW` data is binary, so `ascii_only` is refused); status. EPL2
//! has no status reply in labeld's facts (LPrint's EPL2 status callback is a stub
//! too), so [`Driver::query_status`] is `None` and [`Driver::parse_status`]
//! always fails.

use crate::driver::{Capabilities, Driver, DriverError, Language};
use crate::profile::{MediaKind, Profile};
use crate::status::{DeviceStatus, StatusParseError};
use crate::Page;

/// Line terminator for EPL2 commands (the guide accepts LF; CR is ignored).
const EOL: &[u8] = b"\n";
/// `N`: clear the image buffer (starts every label).
const CLEAR: &[u8] = b"N\n";
/// Gap between labels, and black-mark thickness, in millimetres (Zebra KB
/// example `Q406,24` = 24 dots = 3 mm at 8 dots/mm).
const GAP_MM: f64 = 3.0;
/// `Q` p1 and `GW` p2/p4 accept 0–65535 dots (EPL Programming Guide, `Q`).
const MAX_DOTS: u32 = 65_535;
/// `D` accepts 0 (lightest) to 15 (darkest).
const DENSITY_MAX: f64 = 15.0;
/// Speed codes sent, lowest and highest (`S`; model-dependent beyond these).
const SPEED_CODES: (f64, f64) = (1.0, 6.0);
/// `P` accepts 1–65535 label sets.
const MAX_COPIES: u32 = 65_535;
/// A `GW` header costs about this many bytes; two runs closer than this (in
/// bytes of blank rows) are cheaper sent as one.
const GW_HEADER_COST: usize = 24;

/// EPL2 page-mode driver.
#[derive(Clone, Debug)]
pub struct Epl2 {
    /// Head width in dots (the widest page).
    width_dots: u32,
    /// Calibration shift (x right, y down), dots.
    offset: (i32, i32),
    /// Darkness 0–100 %, if set.
    darkness: Option<u8>,
    /// Speed in inches per second, if set.
    speed_ips: Option<f32>,
    /// Gap, black mark or continuous.
    media: MediaKind,
    /// Feed-direction resolution, for the gap size in dots.
    dpi_y: f64,
    /// The link takes only 7-bit ASCII.
    ascii_only: bool,
    /// Copies of each page.
    copies: u32,
}

impl Epl2 {
    /// A driver for the device and settings in `profile`.
    pub fn new(profile: &Profile) -> Self {
        Epl2 {
            width_dots: profile.width_dots,
            offset: (profile.offset_x, profile.offset_y),
            darkness: profile.darkness_percent(),
            speed_ips: profile.speed_ips,
            media: profile.media,
            dpi_y: profile.resolution.y,
            ascii_only: profile.ascii_only,
            copies: profile.copies,
        }
    }

    fn check_link(&self) -> Result<(), DriverError> {
        Language::Epl2.refuse_ascii_link(self.ascii_only)
    }
}

impl Driver for Epl2 {
    fn language(&self) -> Language {
        Language::Epl2
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::raster_only(self.width_dots, false)
    }

    /// A bare line feed: it ends any command line a cancelled job left half sent,
    /// so the next `N` starts clean (CUPS and LPrint do the same).
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        out.extend_from_slice(EOL);
        Ok(())
    }

    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        check_page(page, self.width_dots)?;
        let copies = match self.copies {
            0 => 1,
            n if n > MAX_COPIES => {
                return Err(DriverError::Unsupported(format!(
                    "epl2 prints at most {MAX_COPIES} copies of a label; {n} were asked for"
                )))
            }
            n => n,
        };
        let (width, height) = (page.width(), page.height());
        let stride = page.bitmap.stride();
        let label_width = match u32::try_from(stride * 8) {
            Ok(w) if w <= self.width_dots => w,
            _ => width,
        };

        out.extend_from_slice(CLEAR);
        push_line(out, &format!("q{label_width}"));
        push_line(out, &format!("Q{height},{}", self.form_gap()));
        if let Some(pct) = self.darkness {
            push_line(out, &format!("D{}", density(pct)));
        }
        if let Some(ips) = self.speed_ips {
            push_line(out, &format!("S{}", speed_code(ips)?));
        }
        let rows = placed_rows(page, self.offset);
        write_graphics(&rows, stride, width, out);
        push_line(out, &format!("P{copies}"));
        Ok(())
    }

    fn end_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        Ok(())
    }

    fn query_status(&self) -> Option<&'static [u8]> {
        None
    }

    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        Err(StatusParseError::Malformed {
            reason: format!(
                "epl2 has no status reply labeld understands ({} bytes ignored)",
                reply.len()
            ),
        })
    }
}

impl Epl2 {
    /// `Q` p2 for the profile's media.
    fn form_gap(&self) -> String {
        let dots = (GAP_MM / 25.4 * self.dpi_y).round() as u32;
        match self.media {
            MediaKind::Gap => format!("{dots}"),
            MediaKind::BlackMark => format!("B{dots}+0"),
            MediaKind::Continuous => "0".to_owned(),
        }
    }
}

/// Refuses what EPL2 cannot print: native elements, empty, too wide or too long
/// pages.
fn check_page(page: &Page, max_width: u32) -> Result<(), DriverError> {
    page.refuse_native()?;
    let (width, height) = (page.width(), page.height());
    if width == 0 || height == 0 {
        return Err(DriverError::EmptyPage { width, height });
    }
    if width > max_width {
        return Err(DriverError::PageTooWide {
            dots: width,
            max: max_width,
        });
    }
    if height > MAX_DOTS {
        return Err(DriverError::PageTooLong {
            dots: height,
            max: MAX_DOTS,
        });
    }
    Ok(())
}

fn push_line(out: &mut Vec<u8>, command: &str) {
    out.extend_from_slice(command.as_bytes());
    out.extend_from_slice(EOL);
}

/// `D` value for a darkness percentage (0–100).
fn density(percent: u8) -> u32 {
    (f64::from(percent.min(100)) * DENSITY_MAX / 100.0).round() as u32
}

/// `S` value for a speed in inches per second (CUPS `rastertolabel.c` formula).
fn speed_code(ips: f32) -> Result<u32, DriverError> {
    let ips = f64::from(ips);
    if !ips.is_finite() || ips <= 0.0 {
        return Err(DriverError::Unsupported(format!(
            "print speed must be a positive number of inches per second; got {ips}"
        )));
    }
    let code = if ips >= 3.0 { ips } else { 2.0 * ips - 2.0 };
    Ok(code.round().clamp(SPEED_CODES.0, SPEED_CODES.1) as u32)
}

/// The page's rows as printed (see [`Page::placed_row`]).
fn placed_rows(page: &Page, offset: (i32, i32)) -> Vec<u8> {
    let stride = page.bitmap.stride();
    let mut rows = vec![0u8; stride * page.height() as usize];
    for (y, out) in (0u32..).zip(rows.chunks_exact_mut(stride.max(1))) {
        page.placed_row(y, offset, out);
    }
    rows
}

/// Bits of a row's last byte that lie inside `width`.
fn tail_mask(width: u32) -> u8 {
    match width % 8 {
        0 => 0xFF,
        used => 0xFFu8 << (8 - used),
    }
}

/// One `GW` per run of non-blank rows (runs closer than a header's cost merged),
/// each trimmed to the byte columns its rows use, data inverted (0 = black).
fn write_graphics(rows: &[u8], stride: usize, width: u32, out: &mut Vec<u8>) {
    if stride == 0 {
        return;
    }
    let blank = |y: usize| rows[y * stride..][..stride].iter().all(|&b| b == 0);
    let height = rows.len() / stride;
    let mut y = 0;
    while y < height {
        if blank(y) {
            y += 1;
            continue;
        }
        let start = y;
        let mut end = y + 1; // one past the run's last non-blank row
        let mut probe = end;
        while probe < height {
            if !blank(probe) {
                end = probe + 1;
                probe += 1;
            } else if (probe - end + 1) * stride < GW_HEADER_COST {
                probe += 1;
            } else {
                break;
            }
        }
        write_run(rows, stride, width, start, end, out);
        y = end;
    }
}

/// `GWx,y,bytes,rows,<data>` for rows `start..end`, trimmed to the used bytes.
fn write_run(rows: &[u8], stride: usize, width: u32, start: usize, end: usize, out: &mut Vec<u8>) {
    let run = &rows[start * stride..end * stride];
    let used = |i: usize| run.chunks_exact(stride).any(|row| row[i] != 0);
    let first = (0..stride).find(|&i| used(i)).unwrap_or(0);
    let last = (first..stride).rev().find(|&i| used(i)).unwrap_or(first);
    let bytes = last - first + 1;
    out.extend_from_slice(format!("GW{},{start},{bytes},{},", first * 8, end - start).as_bytes());
    let pad = !tail_mask(width);
    for row in run.chunks_exact(stride) {
        for (i, &byte) in row[first..=last].iter().enumerate() {
            let mut inverted = !byte;
            if first + i == stride - 1 {
                inverted |= pad;
            }
            out.push(inverted);
        }
    }
    out.extend_from_slice(EOL);
}
