//! Brother QL raster (QL-500 … QL-820NWB; 720-dot lines, and 1296-dot QL-10xx).
//!
//! Sources: `printer-langs.md` §3.1 and §7.6, gathered from Brother's QL-600 /
//! QL-720NW / QL-1110NWB Raster Command References, LPrint `devdocs/BROTHER.md`
//! (status model codes) and pklaus/brother_ql `raster.py`, `labels.py` and
//! `reader.py` (label geometry, mirroring). Models: `brother-ql-700`, `-710w`,
//! `-720nw`, `-800`, `-810w`, `-820nwb` and the generic `brother-ql-300`.
//!
//! A job is: invalidate (400 NULs), `ESC @`, `ESC i a 1` (where the model wants
//! it), then per page `ESC i z` (media, width, length, line count, first-page
//! flag), `ESC i M` auto-cut, `ESC i A 1` cut every label, `ESC i K` cut at end,
//! `ESC i d` feed margin (35 dots on continuous tape, 0 on die-cut), `M 02` where
//! PackBits is allowed, one raster line per page row, and a print command. The
//! print command is held back until the driver knows what follows: `FF` (0x0C)
//! when another page comes, `^Z` (0x1A) from [`Driver::end_job`] after the last.
//! `end_job` is therefore required (as [`crate::encode_job`] does). Copies repeat
//! the page as pages of their own (0 is taken as 1).
//!
//! Geometry: each line is 90 bytes (720 dots; 162 bytes = 1296 dots when the
//! profile's `width_dots` is wider than 720). The loaded tape (`Profile::media_mm`)
//! gives the printable width and its offset (`labels.py`; the table below). That
//! offset is brother_ql's `offset_r`: the printable area's distance from the right
//! edge of the label as printed, which is the first byte on the wire because lines
//! are sent mirrored. The page sits at the left of the printable area as printed,
//! so a full-width page lands exactly where brother_ql puts it (x = 12 of 720 on
//! 62 mm tape, `analyze`'s PNG). Die-cut labels use the table row of their width.
//! Calibration offsets move the page's contents inside the page box; dots moved
//! off it are dropped. A page at 600 dpi down the feed sets the high-resolution
//! bit of `ESC i K`. Pages longer than brother_ql's `models.py` maximum (11811
//! lines on 720-dot models, 35433 on QL-10xx) are refused.
//!
//! Quirks: `packbits` (QL-500/550/560/570/700/800 take no compression: they get
//! no `M` at all, as brother_ql does), `blank_line_command` (`Z` for a white line;
//! the QL-800 rejects it, so it gets full lines), `raster_mode_command`.
//!
//! Status: `ESC i S`; the 32-byte reply is parsed by [`Driver::parse_status`]. Do
//! not send it while printing (the printer then reports on its own).
//!
//! Unsupported: two-colour (red/black) printing, PT-series tape (`G` lines),
//! die-cut sizes whose width is not in the table, native elements. 1296-dot lines
//! are encoded by the same rules but unverified: brother_ql adds 44 dots to the
//! right offset on the QL-1050/1060N, which labeld's facts do not cover.

use crate::compress::packbits;
use crate::driver::{Capabilities, Driver, DriverError, Language};
use crate::models::Quirks;
use crate::profile::Profile;
use crate::status::{Condition, Conditions, DeviceStatus, StatusParseError};
use crate::Page;

/// Invalidate: NULs that flush a half-received job (LPrint sends 400 for QL;
/// extra NULs are skipped).
const INVALIDATE_LEN: usize = 400;
/// `ESC @`: initialize.
const INITIALIZE: &[u8] = &[0x1B, 0x40];
/// `ESC i a 1`: switch to raster mode.
const RASTER_MODE: &[u8] = &[0x1B, 0x69, 0x61, 0x01];
/// `ESC i S`: status information request (32-byte reply).
const STATUS_REQUEST: &[u8] = &[0x1B, 0x69, 0x53];
/// `ESC i z` + 10 bytes: print information.
const PRINT_INFO: &[u8] = &[0x1B, 0x69, 0x7A];
/// `ESC i z` n1 validity flags: media type 0x02, width 0x04, length 0x08,
/// quality priority 0x40, recovery 0x80 (0xCE, as in the TESTED example
/// `1B 69 7A CE 0A 3E 00 C8 00 00 00 00 00`).
const PRINT_INFO_VALID: u8 = 0x02 | 0x04 | 0x08 | 0x40 | 0x80;
/// `ESC i z` n2: continuous tape.
const MEDIA_CONTINUOUS: u8 = 0x0A;
/// `ESC i z` n2: die-cut labels.
const MEDIA_DIE_CUT: u8 = 0x0B;
/// `ESC i M n`: various mode; bit 6 auto-cut.
const VARIOUS_MODE: &[u8] = &[0x1B, 0x69, 0x4D];
const AUTO_CUT: u8 = 0x40;
/// `ESC i A n`: cut every n labels.
const CUT_EVERY: &[u8] = &[0x1B, 0x69, 0x41];
/// `ESC i K n`: expanded mode; bit 3 cut at end, bit 6 high resolution (600 dpi
/// in the feed direction).
const EXPANDED_MODE: &[u8] = &[0x1B, 0x69, 0x4B];
const CUT_AT_END: u8 = 0x08;
const HIGH_RESOLUTION: u8 = 0x40;
/// `ESC i d lo hi`: feed margin in dots.
const MARGIN: &[u8] = &[0x1B, 0x69, 0x64];
/// Margin for continuous tape (0 for die-cut).
const MARGIN_CONTINUOUS: u16 = 35;
/// `M 02`: TIFF PackBits raster lines.
const COMPRESSION_PACKBITS: &[u8] = &[0x4D, 0x02];
/// `g 0x00 n data`: one raster line of n bytes.
const RASTER_LINE: &[u8] = &[0x67, 0x00];
/// `Z`: an all-white raster line.
const BLANK_LINE: u8 = 0x5A;
/// `FF`: print, more pages follow.
const PRINT: u8 = 0x0C;
/// `^Z`: print the last page and feed.
const PRINT_LAST: u8 = 0x1A;
/// Bytes per raster line: QL-5xx/7xx/8xx (720 dots) and QL-10xx/11xx (1296).
const LINE_BYTES_QL: usize = 90;
const LINE_BYTES_WIDE: usize = 162;
/// Longest page in raster lines (brother_ql `models.py` `min_max_length_dots`).
const MAX_LINES_QL: u32 = 11_811;
const MAX_LINES_WIDE: u32 = 35_433;
/// Dots down per inch with the high-resolution bit set, and without.
const DPI_NORMAL: f64 = 300.0;
const DPI_HIGH: f64 = 600.0;

/// Tape width (mm), printable dots, offset from the right edge as printed
/// (brother_ql `labels.py` `offset_r`, via `printer-langs.md` §3.1).
const TAPES: [(u8, u32, u32); 6] = [
    (12, 106, 29),
    (29, 306, 6),
    (38, 413, 12),
    (50, 554, 12),
    (62, 696, 12),
    (102, 1164, 12),
];

/// Status reply length and header (`80 20 42`).
const STATUS_LEN: usize = 32;
const STATUS_HEADER: [u8; 3] = [0x80, 0x20, b'B'];
/// Status reply byte positions.
const ST_MODEL: usize = 4;
const ST_ERROR_1: usize = 8;
const ST_ERROR_2: usize = 9;
const ST_MEDIA_WIDTH: usize = 10;
const ST_MEDIA_TYPE: usize = 11;
const ST_MEDIA_LENGTH: usize = 17;
const ST_STATUS_TYPE: usize = 18;
const ST_PHASE: usize = 19;
const ST_NOTIFICATION: usize = 22;

/// Error information 1 (byte 8), bit by bit.
const ERROR_INFO_1: [(u8, &str, Condition); 8] = [
    (0x01, "no media", Condition::MediaOut),
    (0x02, "end of media", Condition::MediaOut),
    (0x04, "cutter jam", Condition::Cutter),
    (0x08, "low battery", Condition::Other),
    (0x10, "main unit in use", Condition::Other),
    (0x20, "turned off", Condition::Offline),
    (0x40, "high-voltage adapter", Condition::Other),
    (0x80, "fan error", Condition::Other),
];

/// Error information 2 (byte 9), bit by bit.
const ERROR_INFO_2: [(u8, &str, Condition); 8] = [
    (0x01, "wrong media", Condition::WrongMedia),
    (0x02, "expansion buffer full", Condition::Other),
    (0x04, "communication error", Condition::Other),
    (0x08, "communication buffer full", Condition::BufferFull),
    (0x10, "cover open", Condition::HeadOpen),
    (0x20, "cancel key or overheat", Condition::Overheat),
    (0x40, "feed error", Condition::Jam),
    (0x80, "system error", Condition::Other),
];

/// Model codes (bytes 4–5) from `printer-langs.md` §3.1 and LPrint
/// `devdocs/BROTHER.md`.
const MODEL_CODES: [(&[u8; 2], &str); 16] = [
    (b"0O", "ql-500/550"),
    (b"0Q", "ql-650td"),
    (b"0P", "ql-1050"),
    (b"41", "ql-560"),
    (b"42", "ql-570"),
    (b"43", "ql-580n"),
    (b"44", "ql-1060n"),
    (b"45", "ql-700"),
    (b"60", "ql-710w"),
    (b"70", "ql-720nw"),
    (b"80", "ql-800"),
    (b"90", "ql-810w"),
    (b"A0", "ql-820nwb"),
    (b"C0", "ql-1100"),
    (b"D0", "ql-1110nwb"),
    (b"E0", "ql-1115nwb"),
];

/// Where pages go on the loaded tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tape {
    /// Tape width, mm.
    width_mm: u8,
    /// Label length, mm (0 = continuous).
    length_mm: u8,
    /// Printable dots across.
    printable: u32,
    /// Printable area's distance from the right edge as printed (= from the first
    /// wire bit), dots.
    offset_r: u32,
}

/// Brother QL raster driver.
#[derive(Clone, Debug)]
pub struct BrotherQl {
    /// The loaded tape, or why it cannot be used.
    tape: Result<Tape, DriverError>,
    /// Bytes per raster line.
    line_bytes: usize,
    /// Model quirks.
    quirks: Quirks,
    /// Calibration shift (x right, y down), dots.
    offset: (i32, i32),
    /// Copies of each page.
    copies: u32,
    /// The link is 7-bit only: refused, raster lines are binary.
    ascii_only: bool,
    /// Pages written in this job (for the `ESC i z` first-page flag).
    pages: u32,
    /// A page's lines are out but its print command is not (it depends on what
    /// comes next).
    print_pending: bool,
}

impl BrotherQl {
    /// A driver for the device and tape in `profile`.
    pub fn new(profile: &Profile) -> Self {
        let line_bytes = if profile.width_dots > 720 {
            LINE_BYTES_WIDE
        } else {
            LINE_BYTES_QL
        };
        BrotherQl {
            tape: tape_for(profile.media_mm, line_bytes),
            line_bytes,
            quirks: profile.quirks,
            offset: (profile.offset_x, profile.offset_y),
            copies: profile.copies.max(1),
            ascii_only: profile.ascii_only,
            pages: 0,
            print_pending: false,
        }
    }
}

impl Driver for BrotherQl {
    fn language(&self) -> Language {
        Language::BrotherQl
    }

    fn capabilities(&self) -> Capabilities {
        let max_width = match &self.tape {
            Ok(tape) => tape.printable,
            Err(_) => 0,
        };
        Capabilities::raster_only(max_width, true)
    }

    /// Invalidate, initialize and (where the model needs it) raster mode.
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        Language::BrotherQl.refuse_ascii_link(self.ascii_only)?;
        self.tape.clone()?;
        self.pages = 0;
        self.print_pending = false;
        out.resize(out.len() + INVALIDATE_LEN, 0x00);
        out.extend_from_slice(INITIALIZE);
        if self.quirks.raster_mode_command {
            out.extend_from_slice(RASTER_MODE);
        }
        Ok(())
    }

    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        Language::BrotherQl.refuse_ascii_link(self.ascii_only)?;
        let tape = self.tape.clone()?;
        page.refuse_native()?;
        let (width, height) = (page.width(), page.height());
        if width == 0 || height == 0 {
            return Err(DriverError::EmptyPage { width, height });
        }
        if width > tape.printable {
            return Err(DriverError::PageTooWide {
                dots: width,
                max: tape.printable,
            });
        }
        let max_lines = if self.line_bytes == LINE_BYTES_WIDE {
            MAX_LINES_WIDE
        } else {
            MAX_LINES_QL
        };
        if height > max_lines {
            return Err(DriverError::PageTooLong {
                dots: height,
                max: max_lines,
            });
        }
        let expanded = CUT_AT_END | high_resolution_flag(page)?;
        let lines = self.raster_lines(page, &tape);
        for _ in 0..self.copies {
            if self.print_pending {
                out.push(PRINT);
            }
            self.page_header(&tape, height, expanded, out);
            out.extend_from_slice(&lines);
            self.pages = self.pages.saturating_add(1);
            self.print_pending = true;
        }
        Ok(())
    }

    /// `^Z` after the last page.
    fn end_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        if self.print_pending {
            out.push(PRINT_LAST);
            self.print_pending = false;
        }
        Ok(())
    }

    fn query_status(&self) -> Option<&'static [u8]> {
        Some(STATUS_REQUEST)
    }

    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        parse_reply(reply)
    }
}

impl BrotherQl {
    /// `ESC i z`, `ESC i M`, `ESC i A`, `ESC i K`, `ESC i d` and `M` for one page.
    fn page_header(&self, tape: &Tape, lines: u32, expanded: u8, out: &mut Vec<u8>) {
        let (kind, margin) = if tape.length_mm == 0 {
            (MEDIA_CONTINUOUS, MARGIN_CONTINUOUS)
        } else {
            (MEDIA_DIE_CUT, 0)
        };
        out.extend_from_slice(PRINT_INFO);
        out.extend_from_slice(&[PRINT_INFO_VALID, kind, tape.width_mm, tape.length_mm]);
        out.extend_from_slice(&lines.to_le_bytes());
        out.extend_from_slice(&[u8::from(self.pages > 0), 0x00]);
        out.extend_from_slice(VARIOUS_MODE);
        out.push(AUTO_CUT);
        out.extend_from_slice(CUT_EVERY);
        out.push(1);
        out.extend_from_slice(EXPANDED_MODE);
        out.push(expanded);
        out.extend_from_slice(MARGIN);
        out.extend_from_slice(&margin.to_le_bytes());
        if self.quirks.packbits {
            out.extend_from_slice(COMPRESSION_PACKBITS);
        }
    }

    /// Every row of the page as a `g` (or `Z`) command: placed on the tape,
    /// mirrored, PackBits-encoded where allowed.
    fn raster_lines(&self, page: &Page, tape: &Tape) -> Vec<u8> {
        let bitmap = &page.bitmap;
        let mut out = Vec::with_capacity(bitmap.height() as usize * (self.line_bytes + 3));
        let mut row = vec![0u8; bitmap.stride()];
        let mut line = vec![0u8; self.line_bytes];
        let mut packed = Vec::with_capacity(self.line_bytes + self.line_bytes / 128 + 1);
        // Wire bit of page dot x: the page's left edge as printed is the far end
        // of the printable area from the line's first bit.
        let right = tape.offset_r + tape.printable - 1;
        for y in 0..bitmap.height() {
            page.placed_row(y, self.offset, &mut row);
            if row.iter().all(|&b| b == 0) && self.quirks.blank_line_command {
                out.push(BLANK_LINE);
                continue;
            }
            line.fill(0);
            for (i, &byte) in row.iter().enumerate().filter(|(_, b)| **b != 0) {
                for bit in 0..8u32 {
                    if byte & (0x80 >> bit) != 0 {
                        let wire = (right - (i as u32 * 8 + bit)) as usize;
                        line[wire / 8] |= 0x80 >> (wire % 8);
                    }
                }
            }
            let data = if self.quirks.packbits {
                packed.clear();
                packbits(&line, &mut packed);
                &packed[..]
            } else {
                &line[..]
            };
            out.extend_from_slice(RASTER_LINE);
            // At most 162 + 2 bytes, so the count fits a byte.
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        out
    }
}

/// The tape for `media_mm`, if labeld knows its geometry and it fits the line.
fn tape_for(media_mm: Option<(u8, u8)>, line_bytes: usize) -> Result<Tape, DriverError> {
    let (width_mm, length_mm) = media_mm.ok_or_else(|| {
        DriverError::Unsupported(
            "brother ql needs the loaded tape in the profile (media_mm, e.g. 62 mm continuous)"
                .to_owned(),
        )
    })?;
    let (_, printable, offset_r) = TAPES
        .iter()
        .copied()
        .find(|(w, _, _)| *w == width_mm)
        .ok_or_else(|| {
            DriverError::Unsupported(format!(
                "brother ql tape {width_mm} mm wide is not known; known widths are 12, 29, 38, \
                 50, 62 and 102 mm"
            ))
        })?;
    let line_dots = line_bytes as u32 * 8;
    if printable + offset_r > line_dots {
        return Err(DriverError::Unsupported(format!(
            "brother ql tape {width_mm} mm needs a {} dot head; this printer's line is \
             {line_dots} dots (102 mm tape is for the QL-10xx/11xx)",
            printable + offset_r
        )));
    }
    Ok(Tape {
        width_mm,
        length_mm,
        printable,
        offset_r,
    })
}

/// `ESC i K` bit for the page's feed resolution (300 dpi, or 600 = high
/// resolution); the head is 300 dpi across.
fn high_resolution_flag(page: &Page) -> Result<u8, DriverError> {
    let near = |a: f64, b: f64| (a - b).abs() < 0.5;
    let res = page.resolution;
    match (
        near(res.x, DPI_NORMAL),
        near(res.y, DPI_NORMAL),
        near(res.y, DPI_HIGH),
    ) {
        (true, true, _) => Ok(0),
        (true, _, true) => Ok(HIGH_RESOLUTION),
        _ => Err(DriverError::Unsupported(format!(
            "brother ql prints 300 x 300 or 300 x 600 dpi; the page is {} x {} dpi",
            res.x, res.y
        ))),
    }
}

/// Parses the 32-byte `ESC i S` reply (`printer-langs.md` §3.1 table).
fn parse_reply(reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    if reply.len() < STATUS_LEN {
        return Err(StatusParseError::Short {
            found: reply.len(),
            expected: STATUS_LEN,
        });
    }
    if reply.len() > STATUS_LEN {
        return Err(StatusParseError::Malformed {
            reason: format!(
                "{} bytes where a brother ql reply has exactly {STATUS_LEN} (several replies \
                 at once? read them one by one)",
                reply.len()
            ),
        });
    }
    if reply[..3] != STATUS_HEADER {
        return Err(StatusParseError::Malformed {
            reason: format!(
                "header is {:02x} {:02x} {:02x}; a brother ql reply starts 80 20 42",
                reply[0], reply[1], reply[2]
            ),
        });
    }

    let mut conditions = Conditions::NONE;
    let mut errors = Vec::new();
    for (byte, table) in [
        (reply[ST_ERROR_1], &ERROR_INFO_1),
        (reply[ST_ERROR_2], &ERROR_INFO_2),
    ] {
        for &(mask, name, condition) in table {
            if byte & mask != 0 {
                conditions.insert(condition);
                errors.push(name);
            }
        }
    }

    let mut detail = vec![model_name(&reply[ST_MODEL..ST_MODEL + 2])];
    let (width, length) = (reply[ST_MEDIA_WIDTH], reply[ST_MEDIA_LENGTH]);
    detail.push(match reply[ST_MEDIA_TYPE] {
        0x0A | 0x4A => format!("{width} mm continuous"),
        0x0B | 0x4B => format!("{width}x{length} mm die-cut"),
        0x00 => "no media".to_owned(),
        0xFF => {
            conditions.insert(Condition::WrongMedia);
            "incompatible media".to_owned()
        }
        other => format!("media type {other:#04x}, {width} mm"),
    });
    let status_type = reply[ST_STATUS_TYPE];
    detail.push(
        match status_type {
            0x00 => "reply to status request",
            0x01 => "printing completed",
            0x02 => "error occurred",
            0x04 => "turned off",
            0x05 => "notification",
            0x06 => "phase change",
            _ => "unknown status type",
        }
        .to_owned(),
    );
    if status_type == 0x04 {
        conditions.insert(Condition::Offline);
    }
    let busy = match reply[ST_PHASE] {
        0x00 => Some(false),
        0x01 => Some(true),
        _ => None,
    };
    detail.push(
        match busy {
            Some(false) => "receiving",
            Some(true) => "printing",
            None => "unknown phase",
        }
        .to_owned(),
    );
    match reply[ST_NOTIFICATION] {
        0x00 => {}
        0x01 => {
            conditions.insert(Condition::HeadOpen);
            detail.push("notification: cover open".to_owned());
        }
        0x02 => detail.push("notification: cover closed".to_owned()),
        0x03 => {
            conditions.insert(Condition::Overheat);
            detail.push("notification: cooling started".to_owned());
        }
        0x04 => detail.push("notification: cooling finished".to_owned()),
        other => detail.push(format!("notification {other:#04x}")),
    }
    if !errors.is_empty() {
        detail.push(format!("errors: {}", errors.join(", ")));
    }

    Ok(DeviceStatus {
        conditions,
        detail: detail.join("; "),
        labels_remaining: None,
        busy,
        raw: reply.to_vec(),
    })
}

/// The model for a status reply's model code (bytes 4–5).
fn model_name(code: &[u8]) -> String {
    match MODEL_CODES.iter().find(|(c, _)| c[..] == *code) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("unknown model code {:02x} {:02x}", code[0], code[1]),
    }
}
