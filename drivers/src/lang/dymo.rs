//! DYMO LabelWriter 400/450 raster (the ESC protocol of the 300-dpi LabelWriters).
//!
//! Sources: DYMO "LabelWriter 400 Series Printers Technical Reference Manual" via
//! `printer-langs.md` §3.2 (commands, status bits) and §7.5 (1 = black); LPrint
//! `lprint-dymo.c` and CUPS `rastertolabel.c` (`DYMO_3x0`) for the order of the
//! label setup, the run of ESC before `ESC @`, `ESC L` = page length and the
//! c/d/e/g density ladder. Models: `dymo-lw400`, `dymo-lw450`, `dymo-lw4xl` and
//! the generic `dymo-300`. The LabelWriter 5xx series speaks another protocol and
//! is not covered.
//!
//! A job starts with a run of ESC (at least 100, and more than one raster line of
//! the widest head, so a half-received line is filled up) and `ESC @`. Each label
//! is `ESC D n` (bytes per line = the page's row bytes), `ESC L hi lo` (label
//! length in lines), a density command when the profile sets darkness, `ESC h`
//! (text mode, 300 × 300) or `ESC i` (barcode and graphics mode, 300 × 600) from
//! the page's feed resolution, then `SYN` + n bytes per non-blank line (1 =
//! black), runs of blank lines as `ESC f 1 n` skips (n ≤ 255, repeated), and
//! `ESC E` (form feed to the next label). Blank lines at the bottom are not sent:
//! the form feed passes over them. Copies repeat the label (0 is taken as 1).
//! Calibration offsets move the page's contents inside the page box; dots moved
//! off it are dropped.
//!
//! Darkness maps onto the four densities in quarters: 0–24 % light (`ESC c`),
//! 25–49 % medium (`ESC d`), 50–74 % normal (`ESC e`), 75–100 % dark (`ESC g`).
//! Speed has no command here and is ignored.
//!
//! Status: `ESC A` returns one byte: bit 0 ready (always 1 on the 400), bit 1
//! top of form, bit 5 out of paper, bit 6 paper jam, bit 7 error. The SE450
//! answers `GS S` with bit 0 inverted (1 = not ready); that variant is not
//! supported: on an SE450, a ready printer would read as "not ready".
//!
//! Unsupported: compressed (`ETB`) lines, roll selection on the Twin Turbo,
//! native elements, 7-bit links.

use crate::driver::{Capabilities, Driver, DriverError, Language};
use crate::profile::Profile;
use crate::status::{Condition, Conditions, DeviceStatus, StatusParseError};
use crate::Page;

const ESC: u8 = 0x1B;
/// ESC bytes sent before `ESC @` at least (LPrint sends 100).
const RESYNC_MIN: usize = 100;
/// `ESC @`: reset.
const RESET: [u8; 2] = [ESC, b'@'];
/// `ESC D n`: bytes per line, 1 to the head's width in bytes.
const BYTES_PER_LINE: [u8; 2] = [ESC, b'D'];
/// `ESC L hi lo`: label length in dot lines, MSB first.
const LABEL_LENGTH: [u8; 2] = [ESC, b'L'];
/// `ESC c` / `d` / `e` / `g`: light, medium, normal, dark.
const DENSITY: [u8; 4] = [b'c', b'd', b'e', b'g'];
/// `ESC h`: text mode, 300 × 300 dpi.
const TEXT_MODE: [u8; 2] = [ESC, b'h'];
/// `ESC i`: barcode and graphics mode, 300 × 600 dpi.
const GRAPHICS_MODE: [u8; 2] = [ESC, b'i'];
/// `SYN` + n bytes: one uncompressed line.
const SYN: u8 = 0x16;
/// `ESC f 1 n`: feed n blank lines.
const SKIP: [u8; 3] = [ESC, b'f', 0x01];
/// Most lines one skip command feeds.
const SKIP_MAX: u32 = 255;
/// `ESC E`: form feed to the next top of form.
const FORM_FEED: [u8; 2] = [ESC, b'E'];
/// `ESC A`: status request (one byte back).
const STATUS_REQUEST: &[u8] = &[ESC, b'A'];
/// Head resolution across, and the two feed resolutions.
const DPI_ACROSS: f64 = 300.0;
const DPI_TEXT: f64 = 300.0;
const DPI_GRAPHICS: f64 = 600.0;
/// `ESC L` takes a 16-bit length.
const MAX_LINES: u32 = 65_535;

/// Status byte bits (`ESC A`).
const ST_READY: u8 = 0x01;
const ST_TOP_OF_FORM: u8 = 0x02;
const ST_PAPER_OUT: u8 = 0x20;
const ST_JAM: u8 = 0x40;
const ST_ERROR: u8 = 0x80;
/// Bits the Technical Reference leaves undefined.
const ST_UNDEFINED: u8 = 0x1C;

/// DYMO LabelWriter 400/450 driver.
#[derive(Clone, Debug)]
pub struct Dymo {
    /// Head width in dots (the widest page).
    width_dots: u32,
    /// Calibration shift (x right, y down), dots.
    offset: (i32, i32),
    /// Darkness 0–100 %, if set.
    darkness: Option<u8>,
    /// The link takes only 7-bit ASCII.
    ascii_only: bool,
    /// Copies of each page.
    copies: u32,
}

impl Dymo {
    /// A driver for the device and settings in `profile`.
    pub fn new(profile: &Profile) -> Self {
        Dymo {
            width_dots: profile.width_dots,
            offset: (profile.offset_x, profile.offset_y),
            darkness: profile.darkness_percent(),
            ascii_only: profile.ascii_only,
            copies: profile.copies.max(1),
        }
    }

    fn check_link(&self) -> Result<(), DriverError> {
        Language::Dymo.refuse_ascii_link(self.ascii_only)
    }
}

impl Driver for Dymo {
    fn language(&self) -> Language {
        Language::Dymo
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::raster_only(self.width_dots, true)
    }

    /// The data-synchronization preamble: a run of ESC, then `ESC @`.
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        let line_bytes = self.width_dots.div_ceil(8) as usize;
        out.resize(out.len() + RESYNC_MIN.max(line_bytes + 1), ESC);
        out.extend_from_slice(&RESET);
        Ok(())
    }

    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        page.refuse_native()?;
        let (width, height) = (page.width(), page.height());
        if width == 0 || height == 0 {
            return Err(DriverError::EmptyPage { width, height });
        }
        if width > self.width_dots {
            return Err(DriverError::PageTooWide {
                dots: width,
                max: self.width_dots,
            });
        }
        if height > MAX_LINES {
            return Err(DriverError::PageTooLong {
                dots: height,
                max: MAX_LINES,
            });
        }
        let stride = page.bitmap.stride();
        let line_bytes = u8::try_from(stride).map_err(|_| DriverError::PageTooWide {
            dots: width,
            max: u32::from(u8::MAX) * 8,
        })?;
        let mode = print_mode(page)?;

        let mut label = Vec::new();
        label.extend_from_slice(&BYTES_PER_LINE);
        label.push(line_bytes);
        label.extend_from_slice(&LABEL_LENGTH);
        label.extend_from_slice(&(height as u16).to_be_bytes());
        if let Some(pct) = self.darkness {
            label.extend_from_slice(&[ESC, DENSITY[usize::from(pct.min(100) / 25).min(3)]]);
        }
        label.extend_from_slice(&mode);
        write_lines(page, self.offset, &mut label);
        label.extend_from_slice(&FORM_FEED);
        for _ in 0..self.copies {
            out.extend_from_slice(&label);
        }
        Ok(())
    }

    fn end_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        Ok(())
    }

    fn query_status(&self) -> Option<&'static [u8]> {
        Some(STATUS_REQUEST)
    }

    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        parse_reply(reply)
    }
}

/// `ESC h` for 300 dpi down the feed, `ESC i` for 600; the head is 300 dpi.
fn print_mode(page: &Page) -> Result<[u8; 2], DriverError> {
    let near = |a: f64, b: f64| (a - b).abs() < 0.5;
    let res = page.resolution;
    match (
        near(res.x, DPI_ACROSS),
        near(res.y, DPI_TEXT),
        near(res.y, DPI_GRAPHICS),
    ) {
        (true, true, _) => Ok(TEXT_MODE),
        (true, _, true) => Ok(GRAPHICS_MODE),
        _ => Err(DriverError::Unsupported(format!(
            "dymo labelwriters print 300 x 300 or 300 x 600 dpi; the page is {} x {} dpi",
            res.x, res.y
        ))),
    }
}

/// `SYN` lines for the non-blank rows, `ESC f 1 n` for blank runs before them;
/// blank rows at the bottom are left to the form feed.
fn write_lines(page: &Page, offset: (i32, i32), out: &mut Vec<u8>) {
    let mut row = vec![0u8; page.bitmap.stride()];
    let mut blank_run: u32 = 0;
    for y in 0..page.height() {
        page.placed_row(y, offset, &mut row);
        if row.iter().all(|&b| b == 0) {
            blank_run += 1;
            continue;
        }
        while blank_run > 0 {
            let n = blank_run.min(SKIP_MAX);
            out.extend_from_slice(&SKIP);
            out.push(n as u8);
            blank_run -= n;
        }
        out.push(SYN);
        out.extend_from_slice(&row);
    }
}

/// Parses the one-byte `ESC A` reply.
fn parse_reply(reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    let byte = match reply {
        [] => {
            return Err(StatusParseError::Short {
                found: 0,
                expected: 1,
            })
        }
        [byte] => *byte,
        _ => {
            return Err(StatusParseError::Malformed {
                reason: format!(
                    "{} bytes where a dymo status reply is exactly 1 (read one byte per ESC A)",
                    reply.len()
                ),
            })
        }
    };
    let mut conditions = Conditions::NONE;
    let mut detail = Vec::new();
    if byte & ST_READY == 0 {
        conditions.insert(Condition::Other);
        detail.push("not ready".to_owned());
    }
    if byte & ST_PAPER_OUT != 0 {
        conditions.insert(Condition::MediaOut);
        detail.push("out of paper".to_owned());
    }
    if byte & ST_JAM != 0 {
        conditions.insert(Condition::Jam);
        detail.push("paper jam".to_owned());
    }
    if byte & ST_ERROR != 0 {
        conditions.insert(Condition::Other);
        detail.push("error".to_owned());
    }
    if byte & ST_TOP_OF_FORM != 0 {
        detail.push("at top of form".to_owned());
    }
    if byte & ST_UNDEFINED != 0 {
        detail.push(format!("undefined bits {:#04x}", byte & ST_UNDEFINED));
    }
    if conditions.is_empty() {
        detail.insert(0, "ready".to_owned());
    }
    Ok(DeviceStatus {
        conditions,
        detail: detail.join("; "),
        labels_remaining: None,
        busy: None,
        raw: reply.to_vec(),
    })
}
