//! HP PCL 5 raster graphics inside a PJL job, for laser printers (US letter sheets
//! of labels, #10 envelopes).
//!
//! Sources: `printer-langs.md` §4.1 (command table, delta-row byte format, all
//! TESTED with GhostPCL `gpcl6` 10.09) and §7.7 (the top-margin and ¼-inch
//! pitfalls), which cite the HP PCL 5 Technical Reference, Haiku's
//! `PCL5_Protocol.txt`, the Lexmark C762 PCL reference and the HP DeskJet PCL
//! guide. PJL status: HP *Printer Job Language Technical Reference Manual*,
//! §7 (INFO STATUS) and Appendix D (status code groups), with the Lexmark PJL
//! tables for individual codes — **not** in `printer-langs.md`, see
//! [`Pcl::parse_status`].
//!
//! # One job
//!
//! ```text
//! ESC%-12345X@PJL CR LF            UEL: universal exit language, enter PJL
//! @PJL JOB NAME="labeld" CR LF     start of a PJL job
//! @PJL ENTER LANGUAGE=PCL CR LF    the last PJL line before PCL data
//! ESC E                            PCL reset (fonts, margins, raster state)
//!   per page:
//!   ESC&l#A     page size (2 = letter, 81 = COM-10 envelope)
//!   ESC&l0O     portrait orientation (landscape pages are rotated here, §4.1)
//!   ESC&l0E     top margin 0 lines: vertical cursor 0 = the paper's top edge
//!   ESC&l#X     copies of this page
//!   ESC&u#D     unit of measure: # PCL units per inch (= the raster dpi)
//!   ESC*t#R     raster resolution, dpi (300 or 600)
//!   ESC*p#x#Y   cursor to the raster's top-left corner (in dots, see below)
//!   ESC*r#S     raster width in dots
//!   ESC*r1A     start raster graphics at the cursor
//!   ESC*b#y#m#W data   per row: skip # blank rows, set compression mode, # data bytes
//!   ESC*rC      end raster graphics (also resets the compression mode)
//!   FF          print and eject the page
//! ESC E                            PCL reset
//! ESC%-12345X@PJL EOJ NAME="labeld" CR LF   end of the PJL job
//! ESC%-12345X                      UEL: leave the printer in PJL, ready
//! ```
//!
//! # Where the bitmap lands on the paper
//!
//! A [`Page`] for this driver is a whole sheet: its physical size (dots ÷ dpi)
//! must be US letter (8.5 × 11 in → `ESC&l2A`) or a #10 envelope (4⅛ × 9½ in →
//! COM-10, `ESC&l81A`), within [`SIZE_TOLERANCE_IN`], either way round. Other
//! sizes are refused: the facts name more size codes (legal, A4, Monarch, DL, C5,
//! B5) but the logical-page offsets were only checked on letter and COM-10, and
//! custom sizes (`101`) need commands the facts do not give.
//!
//! Bitmap column `c`, row `r` is printed at physical dot (`c + offset_x`,
//! `r + offset_y`) from the paper's top-left corner. In portrait, PCL's X = 0 is
//! ¼ in inside the left edge (75 dots at 300 dpi, 150 at 600; §4.1, §7.7), so the
//! driver subtracts that ¼ in: the raster starts at the page's leftmost black
//! column `m` with the cursor at X = `m + offset_x − ¼ in`, and spans to the
//! rightmost black column (white margins are never sent). After `ESC&l0E` the
//! vertical cursor 0 is the top edge (§4.1, TESTED: Y = 600 → pixel 600), so the
//! first black row `t` goes at Y = `t + offset_y` with no correction. PCL cannot
//! address the strip left of X = 0, and the logical page is taken to end ¼ in
//! before the right edge too (symmetric, as HP's letter logical page is 8.0 in
//! wide; the right edge is not in the facts, so this is the conservative reading).
//! A black dot in those strips, or off the paper after the offsets, is refused
//! with [`DriverError::Unsupported`], never silently clipped. The paper's size in
//! dots is rounded down (COM-10 at 300 dpi: 1237 dots; gpcl6 measured 4.123 in).
//!
//! A landscape page (wider than tall: 11 × 8.5 or 9½ × 4⅛ in) is turned 90°
//! counter-clockwise onto the portrait sheet, following §4.1's advice to rotate
//! in the daemon and always print portrait (raster is not rotated by `ESC&l1O`
//! unless `ESC*r0F` is sent). The top of the label then lies along the sheet's left
//! edge, and for an envelope fed short edge first its right end (the stamp corner)
//! leads; whether a given printer's envelope path wants that end first is not in
//! the facts. `offset_x`/`offset_y` still move the label right/down as it reads.
//!
//! # Compression
//!
//! Each row is sent in whichever of these is smallest, counting the bytes of the
//! mode switch (`ESC*b#M`, folded into the row's escape as `#m`) and of the count:
//! mode 0 (unencoded), mode 2 (TIFF PackBits, [`crate::compress::packbits`]) or
//! mode 3 (delta row against the previous row, the *seed row*). Modes 0 and 2
//! send the row without its trailing white bytes (PCL fills a short row with
//! zeros up to the raster width). Runs of blank rows become one `ESC*b#Y` (Y
//! offset), folded into the next row's escape as `#y`; blank rows at the bottom
//! of the page are not sent at all. Mode 3 is never used right after a Y offset,
//! because whether `*b#Y` clears the seed row is not in the facts.
//!
//! Not supported: native text or barcodes (everything is raster), other paper
//! sizes, paper-source selection (`ESC&l#H`: the printer picks by size), duplex,
//! PCL 6/XL, and 7-bit links (the stream is binary).

use crate::compress::packbits;
use crate::{
    Bitmap, Capabilities, Condition, Conditions, DeviceStatus, Driver, DriverError, Language, Page,
    Profile, StatusParseError,
};

/// Escape, the first byte of every PCL command.
const ESC: u8 = 0x1b;

/// Universal Exit Language: ends any language and enters PJL (§4.1).
const UEL: &[u8] = b"\x1b%-12345X";

/// Form feed: print and eject the current page.
const FF: u8 = 0x0c;

/// The PJL job name: shows on printer panels and in job logs.
const JOB_NAME: &str = "labeld";

/// `@PJL INFO STATUS` inside a UEL pair (PJL Technical Reference §7): the printer
/// answers `@PJL INFO STATUS`, `CODE=`, `DISPLAY=`, `ONLINE=` lines and a FF.
const STATUS_QUERY: &[u8] = b"\x1b%-12345X@PJL\r\n@PJL INFO STATUS\r\n\x1b%-12345X";

/// How far (in inches) a page's physical size may be from a paper size and still
/// be printed on it: room for the dot rounding of a renderer (COM-10 at 300 dpi is
/// 1237.5 dots), far less than any two supported sizes differ.
pub const SIZE_TOLERANCE_IN: f64 = 0.02;

/// Largest parameter value a PCL command takes (`ESC*b#W` allows 0–32767 bytes,
/// §4.1; the same limit is applied to copies).
const PCL_MAX_PARAM: u32 = 32767;

/// Raster resolutions this driver sends (`ESC*t#R`). §4.1 lists 75–600; only the
/// resolutions of the PCL models (`pcl-300`, `pcl-600`) and of current HP lasers
/// are offered, so that the unit of measure (`ESC&u#D`, set equal to the dpi)
/// is always one printers take.
const RESOLUTIONS: [u32; 2] = [300, 600];

/// A paper size PCL can name with `ESC&l#A`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Paper {
    /// Human name for messages.
    name: &'static str,
    /// The `ESC&l#A` value (§4.1 page-size table).
    code: u16,
    /// Portrait width in inches.
    width_in: f64,
    /// Portrait height in inches.
    height_in: f64,
}

/// The sizes whose PCL logical page was checked with gpcl6 (§6: letter and
/// COM-10 gave the ¼-inch X offset; 81 gave a 4.123 × 9.5 in page).
const PAPERS: [Paper; 2] = [
    Paper {
        name: "US letter",
        code: 2,
        width_in: 8.5,
        height_in: 11.0,
    },
    Paper {
        name: "#10 envelope (COM-10)",
        code: 81,
        width_in: 4.125,
        height_in: 9.5,
    },
];

/// HP PCL 5 raster in a PJL job. See the module docs for the byte stream.
#[derive(Clone, Debug)]
pub struct Pcl {
    /// Calibration shift right, dots (negative: left).
    offset_x: i32,
    /// Calibration shift down, dots (negative: up).
    offset_y: i32,
    /// Copies of each page (`ESC&l#X`; 0 is sent as 1, above 32767 is refused).
    copies: u32,
    /// The link can carry only 7-bit ASCII: PCL raster cannot be sent.
    ascii_only: bool,
    /// Widest page accepted, dots (the long edge of letter at the profile's dpi,
    /// because a landscape page is turned onto a portrait sheet).
    max_width_dots: u32,
}

impl Pcl {
    /// A PCL driver for `profile` (offsets, copies, link type, resolution).
    pub fn new(profile: &Profile) -> Pcl {
        let long_edge = PAPERS.iter().map(|p| p.height_in).fold(0.0_f64, f64::max);
        Pcl {
            offset_x: profile.offset_x,
            offset_y: profile.offset_y,
            copies: profile.copies,
            ascii_only: profile.ascii_only,
            max_width_dots: (long_edge * profile.resolution.x.max(0.0)).round() as u32,
        }
    }

    /// Refuses a 7-bit link: every part of the stream after PJL is binary.
    fn check_link(&self) -> Result<(), DriverError> {
        Language::Pcl.refuse_ascii_link(self.ascii_only)
    }
}

impl Driver for Pcl {
    fn language(&self) -> Language {
        Language::Pcl
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::raster_only(self.max_width_dots, true)
    }

    /// UEL, `@PJL JOB`, `@PJL ENTER LANGUAGE=PCL`, then the PCL reset `ESC E`
    /// (§4.1: reset at the start and the end of the job).
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        out.extend_from_slice(UEL);
        out.extend_from_slice(b"@PJL\r\n");
        out.extend_from_slice(format!("@PJL JOB NAME=\"{JOB_NAME}\"\r\n").as_bytes());
        out.extend_from_slice(b"@PJL ENTER LANGUAGE=PCL\r\n");
        escape(out, b"E");
        Ok(())
    }

    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        page.refuse_native()?;
        if page.width() == 0 || page.height() == 0 {
            return Err(DriverError::EmptyPage {
                width: page.width(),
                height: page.height(),
            });
        }
        let dpi = raster_dpi(page)?;
        let (paper, landscape) = paper_for(page)?;
        if self.copies > PCL_MAX_PARAM {
            return Err(DriverError::Unsupported(format!(
                "pcl: {} copies requested; ESC&l#X takes at most {PCL_MAX_PARAM} (print the job several times)",
                self.copies
            )));
        }
        let copies = self.copies.max(1);

        // Turn a landscape page onto the portrait sheet (90° counter-clockwise):
        // label (x, y) → sheet (y, W−1−x), so a shift right (+x) becomes a shift
        // up on the sheet, and a shift down (+y) a shift right.
        let rotated;
        let (bitmap, ox, oy) = if landscape {
            rotated = rotate_ccw(&page.bitmap);
            (
                &rotated,
                i64::from(self.offset_y),
                -i64::from(self.offset_x),
            )
        } else {
            (
                &page.bitmap,
                i64::from(self.offset_x),
                i64::from(self.offset_y),
            )
        };

        let sheet = Sheet::new(paper, dpi);
        let placement = sheet.place(bitmap, ox, oy).map_err(|e| match e {
            DriverError::Unsupported(m) if landscape => DriverError::Unsupported(format!(
                "{m} (positions are on the portrait sheet: the landscape page is turned so \
                 that its top edge runs down the sheet's left edge)"
            )),
            other => other,
        })?;

        // Page setup. ESC&l#A and ESC&l#O reset the margins, so ESC&l0E follows.
        escape(out, format!("&l{}A", paper.code).as_bytes());
        escape(out, b"&l0O");
        escape(out, b"&l0E");
        escape(out, format!("&l{copies}X").as_bytes());
        escape(out, format!("&u{dpi}D").as_bytes());
        escape(out, format!("*t{dpi}R").as_bytes());
        if let Some(placement) = placement {
            write_raster(bitmap, &placement, out);
        }
        out.push(FF);
        Ok(())
    }

    /// `ESC E`, then the UEL, `@PJL EOJ` and a final UEL (§4.1).
    fn end_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        escape(out, b"E");
        out.extend_from_slice(UEL);
        out.extend_from_slice(format!("@PJL EOJ NAME=\"{JOB_NAME}\"\r\n").as_bytes());
        out.extend_from_slice(UEL);
        Ok(())
    }

    /// `ESC%-12345X@PJL CR LF @PJL INFO STATUS CR LF ESC%-12345X`.
    fn query_status(&self) -> Option<&'static [u8]> {
        Some(STATUS_QUERY)
    }

    /// Parses an `@PJL INFO STATUS` reply (or an unsolicited `@PJL USTATUS
    /// DEVICE`, which has the same lines):
    ///
    /// ```text
    /// @PJL INFO STATUS CR LF
    /// CODE=10001 CR LF
    /// DISPLAY="00 READY" CR LF
    /// ONLINE=TRUE CR LF
    /// FF
    /// ```
    ///
    /// The reply is complete at its FF; without one the result is
    /// [`StatusParseError::Short`]. When several replies are in `reply`, the last
    /// complete one counts. `CODE=` is read, not `DISPLAY=` (localised text, kept
    /// in `detail`).
    ///
    /// What is mapped, by the PJL Technical Reference's code groups (Appendix D)
    /// and the codes its examples and Lexmark's tables name (none of this is in
    /// `printer-langs.md`; checked against no real printer):
    ///
    /// | code | meaning | condition |
    /// |---|---|---|
    /// | 10001 | ready, online | none |
    /// | 10002 | not ready / offline (operator) | `Paused` |
    /// | other 10xxx | informational (warming up, toner low, …) | none |
    /// | 11xyy, 12xyy | a tray is empty or open but another source serves; online | none |
    /// | 35xxx | intervention may be needed, still printing | none |
    /// | 40021 | printer open (door or cover) | `HeadOpen` |
    /// | 40022, 42xyy, 44xyy | paper jam | `Jam` |
    /// | 41xyy | load paper: tray *x* empty, no other source | `MediaOut` |
    /// | 15xxy | output bin full (printer goes offline) | `Other` |
    /// | other 40xxx, 20/25/27/30/32/43/50/55xxx, anything else | | `Other` |
    ///
    /// `ONLINE=FALSE` with no other condition adds `Paused`: the printer
    /// answers, so it is not `Offline` in labeld's sense, but it will not print.
    /// Uncertain: the codes for "printing" and "processing" (10023, 10024 on
    /// some models) are not reported as `busy`, since no source here confirms them.
    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        parse_pjl_status(reply)
    }
}

/// One sheet of paper at the raster resolution, in dots.
#[derive(Clone, Copy, Debug)]
struct Sheet {
    /// The paper, for messages.
    paper: Paper,
    /// Physical width, dots.
    width: i64,
    /// Physical height, dots.
    height: i64,
    /// PCL's portrait X = 0, dots from the left edge (¼ in, §4.1).
    left: i64,
    /// First physical column right of the logical page (¼ in from the right edge,
    /// assumed symmetric; see the module docs).
    right: i64,
}

/// Where a page's raster goes: the part of the bitmap that is sent, and the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    /// Cursor X for `ESC*r1A`, dots from PCL's X = 0.
    cursor_x: u32,
    /// Cursor Y, dots from the paper's top edge (the first row sent).
    cursor_y: u32,
    /// Bitmap columns cut off the left of every row (white on every row).
    skip_cols: u32,
    /// Raster width sent, dots (`ESC*r#S`).
    width: u32,
    /// First bitmap row sent: the first with a black dot.
    first_row: u32,
    /// One past the last non-blank bitmap row.
    end_row: u32,
}

impl Sheet {
    fn new(paper: Paper, dpi: u32) -> Sheet {
        let dpi = f64::from(dpi);
        let width = (paper.width_in * dpi).floor() as i64;
        let left = (0.25 * dpi).round() as i64;
        Sheet {
            paper,
            width,
            height: (paper.height_in * dpi).floor() as i64,
            left,
            right: width - left,
        }
    }

    /// Checks that every black dot of `bitmap`, shifted by (`ox`, `oy`), lands
    /// where PCL can print it, and works out what to send. `None` for a blank page.
    fn place(&self, bitmap: &Bitmap, ox: i64, oy: i64) -> Result<Option<Placement>, DriverError> {
        let mut rows = None::<(u32, u32)>;
        let (mut min_x, mut max_x) = (i64::MAX, i64::MIN);
        for r in 0..bitmap.height() {
            let Some((first, last)) = black_span(bitmap.row(r)) else {
                continue;
            };
            let y = i64::from(r) + oy;
            if y < 0 || y >= self.height {
                return Err(self.outside(format!(
                    "row {r} lands {} the {} (at y = {y} dots of {}); adjust offset_y",
                    if y < 0 { "above" } else { "below" },
                    self.paper.name,
                    self.height
                )));
            }
            rows = Some(match rows {
                None => (r, r),
                Some((top, _)) => (top, r),
            });
            min_x = min_x.min(i64::from(first));
            max_x = max_x.max(i64::from(last));
        }
        let Some((top, bottom)) = rows else {
            return Ok(None);
        };
        let (left_dot, right_dot) = (min_x + ox, max_x + ox);
        if left_dot < self.left {
            return Err(self.outside(format!(
                "a black dot at x = {left_dot} dots from the paper's left edge is left of PCL's \
                 X = 0, which is ¼ in ({} dots) inside the edge; keep the left ¼ in white or \
                 raise offset_x",
                self.left
            )));
        }
        if right_dot >= self.right {
            return Err(self.outside(format!(
                "a black dot at x = {right_dot} dots is inside the right ¼ in of the {} \
                 ({} dots wide), outside PCL's logical page; keep the right ¼ in white or \
                 lower offset_x",
                self.paper.name, self.width
            )));
        }
        // The raster starts at the leftmost black column of the page: bitmap
        // column `min_x` lies at physical `min_x + ox`, i.e. PCL X = that − left
        // (checked ≥ 0 above), and runs to the rightmost black column.
        let cursor_x = left_dot - self.left;
        let skip_cols = min_x;
        let width = max_x - min_x + 1;
        // Blank rows above the first black one are skipped by the cursor, so the
        // raster starts at the physical row of bitmap row `top` (checked ≥ 0).
        Ok(Some(Placement {
            cursor_x: to_u32(cursor_x),
            cursor_y: to_u32(i64::from(top) + oy),
            skip_cols: to_u32(skip_cols),
            width: to_u32(width),
            first_row: top,
            end_row: bottom + 1,
        }))
    }

    fn outside(&self, what: String) -> DriverError {
        DriverError::Unsupported(format!("pcl: {what}"))
    }
}

/// Converts a value the caller proved is in 0..=u32::MAX (dot positions inside a
/// sheet or a bitmap).
fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// A row's compression, as `ESC*b#M` numbers it (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Mode 0: the bytes as they are.
    Unencoded = 0,
    /// Mode 2: TIFF PackBits.
    PackBits = 2,
    /// Mode 3: delta row against the seed row.
    DeltaRow = 3,
}

/// Writes the raster of one page: cursor, raster width, start, rows, end.
fn write_raster(bitmap: &Bitmap, placement: &Placement, out: &mut Vec<u8>) {
    escape(
        out,
        format!("*p{}x{}Y", placement.cursor_x, placement.cursor_y).as_bytes(),
    );
    escape(out, format!("*r{}S", placement.width).as_bytes());
    escape(out, b"*r1A");

    let row_bytes = (placement.width as usize).div_ceil(8);
    let mut seed = vec![0u8; row_bytes];
    let mut row = vec![0u8; row_bytes];
    // No mode is assumed at raster start: the first row always names its mode.
    let mut mode: Option<Mode> = None;
    let mut blank_rows: u32 = 0;
    let (mut plain, mut packed, mut delta) = (Vec::new(), Vec::new(), Vec::new());
    for r in placement.first_row..placement.end_row {
        extract_bits(
            bitmap.row(r),
            placement.skip_cols,
            placement.width,
            &mut row,
        );
        if row.iter().all(|&b| b == 0) {
            blank_rows += 1;
            continue;
        }
        let after_skip = blank_rows > 0;

        let used = trim_trailing_zeros(&row);
        plain.clear();
        plain.extend_from_slice(used);
        packed.clear();
        packbits(used, &mut packed);
        delta.clear();
        delta_row(&seed, &row, &mut delta);

        let mut candidates = vec![(Mode::Unencoded, &plain), (Mode::PackBits, &packed)];
        if !after_skip {
            candidates.push((Mode::DeltaRow, &delta));
        }
        let cost = |(m, data): &(Mode, &Vec<u8>)| {
            let switch = if mode == Some(*m) { 0 } else { 2 };
            data.len() + decimal_len(data.len()) + switch
        };
        let (chosen, data) = candidates
            .iter()
            .min_by_key(|c| cost(c))
            .map(|(m, d)| (*m, d.as_slice()))
            .unwrap_or((Mode::Unencoded, plain.as_slice()));

        // One escape: ESC*b [#y] [#m] #W data.
        out.push(ESC);
        out.extend_from_slice(b"*b");
        if blank_rows > 0 {
            out.extend_from_slice(format!("{blank_rows}y").as_bytes());
            blank_rows = 0;
        }
        if mode != Some(chosen) {
            out.extend_from_slice(format!("{}m", chosen as u8).as_bytes());
            mode = Some(chosen);
        }
        out.extend_from_slice(format!("{}W", data.len()).as_bytes());
        out.extend_from_slice(data);
        seed.copy_from_slice(&row);
    }
    escape(out, b"*rC");
}

/// Appends the PCL delta-row (mode 3) encoding of `row` against `seed` (§4.1):
/// for each run of changed bytes, a command byte with (count − 1) in the top 3
/// bits (1–8 bytes) and the offset from the byte after the previous run in the
/// low 5 bits (0–30; 31 = more offset bytes follow, each added, until one is not
/// 255), then the replacement bytes. Identical rows encode to nothing.
fn delta_row(seed: &[u8], row: &[u8], out: &mut Vec<u8>) {
    let n = row.len().min(seed.len());
    let mut pos = 0;
    let mut i = 0;
    while i < n {
        if row[i] == seed[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < n && end - start < 8 && row[end] != seed[end] {
            end += 1;
        }
        let count = end - start;
        let offset = start - pos;
        let low = offset.min(31) as u8;
        out.push((((count - 1) as u8) << 5) | low);
        if offset >= 31 {
            let mut rest = offset - 31;
            while rest >= 255 {
                out.push(255);
                rest -= 255;
            }
            out.push(rest as u8);
        }
        out.extend_from_slice(&row[start..end]);
        pos = end;
        i = end;
    }
}

/// Copies bits `skip .. skip + width` of a packed row into `out` (MSB first,
/// `ceil(width / 8)` bytes, padding bits zero). Bits past the source are white.
fn extract_bits(src: &[u8], skip: u32, width: u32, out: &mut [u8]) {
    let skip = skip as usize;
    let byte_shift = skip / 8;
    let bit_shift = (skip % 8) as u32;
    let at = |i: usize| src.get(i).copied().unwrap_or(0);
    for (k, byte) in out.iter_mut().enumerate() {
        let hi = at(byte_shift + k);
        *byte = if bit_shift == 0 {
            hi
        } else {
            (hi << bit_shift) | (at(byte_shift + k + 1) >> (8 - bit_shift))
        };
    }
    let tail = width % 8;
    if tail != 0 {
        if let Some(last) = out.last_mut() {
            *last &= 0xFFu8 << (8 - tail);
        }
    }
}

/// The first and last black columns of a packed row, if any.
fn black_span(row: &[u8]) -> Option<(u32, u32)> {
    let first_byte = row.iter().position(|&b| b != 0)?;
    let last_byte = row.iter().rposition(|&b| b != 0)?;
    let first = first_byte as u32 * 8 + row[first_byte].leading_zeros();
    let last = last_byte as u32 * 8 + 7 - row[last_byte].trailing_zeros();
    Some((first, last))
}

/// The row without its trailing zero bytes.
fn trim_trailing_zeros(row: &[u8]) -> &[u8] {
    let end = row.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &row[..end]
}

/// Number of decimal digits of `n`.
fn decimal_len(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends `ESC` and `body`.
fn escape(out: &mut Vec<u8>, body: &[u8]) {
    out.push(ESC);
    out.extend_from_slice(body);
}

/// The raster resolution of a page: square, 300 or 600 dpi.
fn raster_dpi(page: &Page) -> Result<u32, DriverError> {
    let (x, y) = (page.resolution.x, page.resolution.y);
    RESOLUTIONS
        .iter()
        .copied()
        .find(|&d| f64::from(d) == x && f64::from(d) == y)
        .ok_or_else(|| {
            DriverError::Unsupported(format!(
                "pcl: page resolution is {x} x {y} dpi; PCL raster here is 300 or 600 dpi, \
                 the same both ways (use a pcl-300 or pcl-600 profile)"
            ))
        })
}

/// The paper for a page's physical size, and whether the page is landscape.
fn paper_for(page: &Page) -> Result<(Paper, bool), DriverError> {
    let w = f64::from(page.width()) / page.resolution.x;
    let h = f64::from(page.height()) / page.resolution.y;
    let near = |a: f64, b: f64| (a - b).abs() <= SIZE_TOLERANCE_IN;
    for paper in PAPERS {
        if near(w, paper.width_in) && near(h, paper.height_in) {
            return Ok((paper, false));
        }
        if near(w, paper.height_in) && near(h, paper.width_in) {
            return Ok((paper, true));
        }
    }
    Err(DriverError::Unsupported(format!(
        "pcl: page is {w:.3} x {h:.3} in; PCL pages here are US letter (8.5 x 11 in) or a #10 \
         envelope (4.125 x 9.5 in), either way round (lay labels out on a whole sheet)"
    )))
}

/// The bitmap turned 90° counter-clockwise: (x, y) → (y, width − 1 − x).
fn rotate_ccw(src: &Bitmap) -> Bitmap {
    let mut dst = Bitmap::new(src.height(), src.width());
    let w = src.width();
    for y in 0..src.height() {
        for (i, &byte) in src.row(y).iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8u32 {
                if byte & (0x80 >> bit) != 0 {
                    let x = i as u32 * 8 + bit;
                    if x < w {
                        dst.set(y, w - 1 - x, true);
                    }
                }
            }
        }
    }
    dst
}

/// The `@PJL INFO STATUS` / `USTATUS DEVICE` parser behind [`Pcl::parse_status`].
fn parse_pjl_status(reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    // Complete replies end with FF; the part after the last FF is incomplete.
    let mut blocks: Vec<&[u8]> = reply.split(|&b| b == FF).collect();
    let incomplete = blocks.pop().unwrap_or(&[]);
    let Some(block) = blocks.iter().rev().find(|b| find(b, b"CODE=").is_some()) else {
        if blocks.is_empty() || find(incomplete, b"CODE=").is_some() {
            return Err(StatusParseError::Short {
                found: reply.len(),
                expected: reply.len() + 1,
            });
        }
        return Err(StatusParseError::Malformed {
            reason: "no CODE= line in the pjl reply (expected @PJL INFO STATUS, CODE=, \
                     DISPLAY=, ONLINE=)"
                .to_owned(),
        });
    };

    let text = String::from_utf8_lossy(block);
    let (mut code, mut display, mut online) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_uppercase().as_str() {
            "CODE" => {
                code = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| StatusParseError::Malformed {
                            reason: format!("pjl CODE={value} is not a number"),
                        })?,
                )
            }
            "DISPLAY" => display = Some(value.trim_matches('"').to_owned()),
            "ONLINE" => online = Some(value.eq_ignore_ascii_case("TRUE")),
            _ => {}
        }
    }
    let code = code.ok_or_else(|| StatusParseError::Malformed {
        reason: "pjl CODE= line has no value".to_owned(),
    })?;

    let (condition, meaning) = classify(code);
    let mut conditions = Conditions::NONE;
    if let Some(c) = condition {
        conditions.insert(c);
    }
    if online == Some(false) && conditions.is_empty() {
        conditions.insert(Condition::Paused);
    }
    let mut detail = format!("pjl {code}: {meaning}");
    if let Some(display) = display.filter(|d| !d.is_empty()) {
        detail.push_str(&format!(" (panel: \"{}\")", display.to_lowercase()));
    }
    if online == Some(false) {
        detail.push_str(", offline");
    }
    Ok(DeviceStatus {
        conditions,
        detail,
        labels_remaining: None,
        busy: None,
        raw: reply.to_vec(),
    })
}

/// A PJL status code's condition and a short meaning (see [`Pcl::parse_status`]).
fn classify(code: u32) -> (Option<Condition>, &'static str) {
    match code {
        10001 => (None, "ready"),
        10002 => (Some(Condition::Paused), "not ready (offline)"),
        10000..=10999 => (None, "informational"),
        11000..=11999 => (None, "a paper tray is empty; another source is in use"),
        12000..=12999 => (None, "paper tray status"),
        15000..=15999 => (Some(Condition::Other), "output bin full or needs attention"),
        20000..=27999 => (Some(Condition::Other), "pjl command error"),
        30000..=30999 => (Some(Condition::Other), "auto-continuable condition"),
        32000..=32999 => (Some(Condition::Other), "pjl file system error"),
        35000..=35999 => (None, "operator intervention may be needed"),
        40021 => (Some(Condition::HeadOpen), "printer open"),
        40022 => (Some(Condition::Jam), "paper jam"),
        40000..=40999 => (Some(Condition::Other), "operator intervention required"),
        41000..=41999 => (Some(Condition::MediaOut), "load paper"),
        42000..=42999 | 44000..=44999 => (Some(Condition::Jam), "paper jam"),
        43000..=43999 => (Some(Condition::Other), "paper handling device error"),
        50000..=50999 => (Some(Condition::Other), "hardware error"),
        55000..=55999 => (Some(Condition::Other), "personality error"),
        _ => (Some(Condition::Other), "unknown status code"),
    }
}

/// Position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_row_offsets_use_the_31_and_255_rule() {
        let seed = vec![0u8; 700];
        // (changed byte, expected command + offset bytes)
        let cases: [(usize, &[u8]); 6] = [
            (0, &[0x00]),
            (30, &[30]),
            (31, &[31, 0]),
            (285, &[31, 254]),
            (286, &[31, 255, 0]),
            (600, &[31, 255, 255, 59]),
        ];
        for (at, head) in cases {
            let mut row = seed.clone();
            row[at] = 0xA5;
            let mut out = Vec::new();
            delta_row(&seed, &row, &mut out);
            assert_eq!(&out[..head.len()], head, "change at {at}");
            assert_eq!(out[head.len()..], [0xA5], "change at {at}");
        }
    }

    #[test]
    fn delta_row_splits_runs_of_more_than_eight() {
        let seed = [0u8; 12];
        let row = [1u8; 12];
        let mut out = Vec::new();
        delta_row(&seed, &row, &mut out);
        let mut want = vec![7 << 5];
        want.extend([1; 8]);
        want.push(3 << 5);
        want.extend([1; 4]);
        assert_eq!(out, want);
    }

    #[test]
    fn extract_bits_shifts_and_masks() {
        let src = [0b1010_1100, 0b1111_0000, 0xFF];
        let mut out = [0u8; 2];
        extract_bits(&src, 3, 10, &mut out);
        assert_eq!(out, [0b0110_0111, 0b1000_0000]);
        extract_bits(&src, 8, 16, &mut out);
        assert_eq!(out, [0b1111_0000, 0xFF]);
    }

    #[test]
    fn black_span_finds_the_ends() {
        assert_eq!(
            black_span(&[0, 0b0010_0000, 0, 0b0000_0100]),
            Some((10, 29))
        );
        assert_eq!(black_span(&[0, 0]), None);
    }

    #[test]
    fn rotation_is_counter_clockwise() {
        let mut b = Bitmap::new(5, 3);
        b.set(4, 0, true); // top-right
        let r = rotate_ccw(&b);
        assert_eq!((r.width(), r.height()), (3, 5));
        assert!(r.get(0, 0), "top-right goes to the top-left");
        assert_eq!(r.count_black(), 1);
    }

    #[test]
    fn status_replies_map_to_conditions() {
        let ready =
            b"@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY=\"00 READY\"\r\nONLINE=TRUE\r\n\x0c";
        let s = parse_pjl_status(ready).unwrap();
        assert!(s.is_ready());
        assert_eq!(s.detail, "pjl 10001: ready (panel: \"00 ready\")");

        let open = b"@PJL USTATUS DEVICE\r\nCODE=40021\r\nDISPLAY=\"12 PRINTER OPEN\"\r\nONLINE=FALSE\r\n\x0c";
        let s = parse_pjl_status(open).unwrap();
        assert_eq!(s.conditions, Conditions::NONE.with(Condition::HeadOpen));

        let cases = [
            (10002, Conditions::NONE.with(Condition::Paused)),
            (10006, Conditions::NONE),
            (40022, Conditions::NONE.with(Condition::Jam)),
            (41302, Conditions::NONE.with(Condition::MediaOut)),
            (42102, Conditions::NONE.with(Condition::Jam)),
            (50000, Conditions::NONE.with(Condition::Other)),
            (99999, Conditions::NONE.with(Condition::Other)),
        ];
        for (code, want) in cases {
            let reply = format!("@PJL INFO STATUS\r\nCODE={code}\r\nONLINE=TRUE\r\n\x0c");
            assert_eq!(
                parse_pjl_status(reply.as_bytes()).unwrap().conditions,
                want,
                "{code}"
            );
        }
    }

    #[test]
    fn offline_without_a_code_condition_is_paused() {
        let r = b"@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY=\"PAUSED\"\r\nONLINE=FALSE\r\n\x0c";
        let s = parse_pjl_status(r).unwrap();
        assert_eq!(s.conditions, Conditions::NONE.with(Condition::Paused));
    }

    #[test]
    fn echo_then_status_takes_the_status_block() {
        // The PJL reference's INFO STATUS example, with the ECHO reply first.
        let r = b"@PJL ECHO 17:45:22.5 05-17-92\r\n\x0c@PJL INFO STATUS\r\nCODE=40022\r\nDISPLAY=\"13 PAPER JAM\"\r\nONLINE=FALSE\r\n\x0c";
        let s = parse_pjl_status(r).unwrap();
        assert_eq!(s.conditions, Conditions::NONE.with(Condition::Jam));
    }

    #[test]
    fn incomplete_and_malformed_replies() {
        let partial = b"@PJL INFO STATUS\r\nCODE=10001\r\n";
        assert!(matches!(
            parse_pjl_status(partial),
            Err(StatusParseError::Short { .. })
        ));
        assert!(matches!(
            parse_pjl_status(b""),
            Err(StatusParseError::Short { .. })
        ));
        assert!(matches!(
            parse_pjl_status(b"@PJL ECHO x\r\n\x0c"),
            Err(StatusParseError::Malformed { .. })
        ));
        assert!(matches!(
            parse_pjl_status(b"@PJL INFO STATUS\r\nCODE=ready\r\n\x0c"),
            Err(StatusParseError::Malformed { .. })
        ));
    }
}
