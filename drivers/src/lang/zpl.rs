//! Zebra ZPL II: one `^XA … ^XZ` format per page, the raster as `^GF` graphic fields,
//! optional native text (`^A0` + `^FB`), Code 128 (`^BC`) and IMb (`^BZ` type 3).
//!
//! Sources (facts with their sources in `../shared/reference/printer-langs.md` §1, §6, §7):
//! - *Zebra Programming Guide* P1012728-011 (2016) and docs.zebra.com: `^XA`/`^XZ`, `^CI`,
//!   `^PW`, `^LL`, `^LH`, `^LT`, `^MN`, `^MD`, `~SD`, `^PR`, `^PQ`, `^PO`, `^PM`, `^LR`,
//!   `^FO`, `^FH`, `^A`, `^FB` ("Comments": `\&`, `\\`), `^BY`, `^BC` (Table "Code 128
//!   Invocation Characters"), `^BZ` (parameter `t`, 3 = USPS Intelligent Mail), `^GF`
//!   (parameters b, c, d: 1–99999), `~JX`, `~HS` ("Host Status Return", three strings),
//!   `~HQ` (`~HQES`, error and warning bit tables).
//! - *ZPL II Programming Guide* 45541L-004 (2006, x.10–x.13 firmware): "Alternative Data
//!   Compression Scheme for ~DG and ~DB" (the `G`–`Y`/`g`–`z` counts, `,`, `!`, `:`) and
//!   the B64/Z64 ("ZB64") encodings, allowed wherever ASCII hex is, `^GF` type A included.
//! - LPrint `lprint-zpl.c` for which `~HQES` bits matter in practice (habits only).
//!
//! Models: the generic `zpl-203`/`zpl-300`/`zpl-600` rows and every Zebra row of
//! [`crate::models`] (GK420d/t, ZD410, ZD421, ZD620, ZT410, ZT411, ZT610), at 8, 12 and
//! 24 dots/mm.
//!
//! # What a page becomes
//!
//! ```text
//! [~SDnn]  ^XA ^CI28 ^PWw ^LLh ^LHx,y ^MNm ^PON^PMN^LRN [^MD0] [^PRs]
//!          ^FOx,y^GFA,n,n,bpr,data^FS …   native fields …   ^PQq,0,1,Y ^XZ
//! ```
//!
//! - **Darkness**: `~SD` (absolute 00–30, the same setting as the front panel), scaled from
//!   the profile's 0–100 % as `round(p × 30 / 100)`, plus `^MD0` so that a relative
//!   darkness left by another program does not add to it. `~SD` is a control command the
//!   printer obeys on arrival, even while earlier formats are still printing; every page
//!   sends the same value, so only a queue of jobs with different darkness would notice.
//! - **Speed**: `^PRs` with the profile's ips rounded and clamped to the ZPL range 1–14
//!   (each model clamps further to what it supports); slew and backfeed keep their defaults.
//! - **Copies**: `^PQq,0,1,Y` (no pause between copies), q clamped to 1–99 999 999.
//! - **Persistent state** that another program may have left behind is reset every page:
//!   `^PON` (not upside down), `^PMN` (not mirrored), `^LRN` (not reversed).
//! - **Calibration offsets**: `^LH` takes the positive parts of `offset_x`/`offset_y`.
//!   Negative parts are applied by the driver itself: the raster loses the columns left of
//!   and the rows above the label edge (dots that could not print anyway), and native
//!   elements move up/left, stopping at the edge (`^FO` takes no negative values). `^LS`
//!   and `^LT` are not used: `^LT` only reaches ±120 rows ("might be smaller depending on
//!   the printer platform"), and both stack on the printer's own stored settings.
//! - **Raster**: only the bounding box of the black dots is sent (whole bytes across,
//!   rows down), at `^FOx,y`; blank margins cost nothing. A box larger than `^GF`'s
//!   99 999-byte limit is split into bands of whole rows, one `^GF` each. Each band is
//!   sent in the smallest of: plain ASCII hex, the run-length scheme, `:Z64:` (zlib, base64
//!   and a CRC) and `:B64:` ([`GraphicEncoding::Auto`]; or one forced encoding). A blank
//!   page sends no `^GF` at all.
//! - **Native elements** follow the raster. [`NativeText`]:
//!   `^FOx,y^A0o,h,h^FBw,n,pitch-h,L,0^FH^FD…^FS`, lines joined by `\&`, in the page's
//!   orientation letter (N, R, I, B). [`NativeCode128`]: `^BYm^BCN,h,f,N,N,N` (mode N) with
//!   invocation codes that reproduce the exact symbol values; the printer adds the check
//!   character and stop. [`NativeImb`]: `^BYm,r^BZN,h,N,N,3`, with h the nominal 0.145 in
//!   full bar height, m the nominal 0.020 in bar width (at most 10 dots) and r the ratio
//!   that makes r × m the nominal 1/22 in pitch on firmware that honours it (the ZD621
//!   uses a fixed 2.5, which at 24 dots/mm gives 24.4 bars/in, just over the 24 maximum).
//!
//! Every byte the driver writes is 7-bit ASCII, except the UTF-8 of non-ASCII characters in
//! native text when the profile allows 8-bit data; with `ascii_only` those go out as `^FH`
//! hex escapes (`_C3_A9` for `é`, decoded under `^CI28`). No `^GFB`/`^GFC` binary graphic
//! is ever produced: it only beats Z64 on incompressible noise and would be unsafe on
//! XON/XOFF serial links.
//!
//! # Firmware quirks
//!
//! - `~HS` gets **no reply** while the printer is in media out, ribbon out, head open,
//!   rewinder full or head over-temperature (docs.zebra.com). [`Zpl::query_status`] therefore
//!   sends `~HQES`, which answers in those states; [`Zpl::host_status_query`] gives `~HS`
//!   for the labels-remaining count. A silent `~HS` is itself a sign of trouble.
//! - `!` in the graphic compression scheme ("fill the row with ones") is read as `F` nibbles
//!   by some renderers and as `1` nibbles by others (`printer-langs.md` §7.1): it is never
//!   emitted. `,` is only emitted at an even nibble (a byte boundary) and never after a
//!   complete row; `:` never starts a graphic (it would read as the `:Z64:` marker).
//! - Z64: the CRC is CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no final xor) over
//!   the **base64 text**, written as exactly 4 uppercase hex digits (a 5-digit CRC made a
//!   ZD230 silently drop the graphic, PDFtoZPL issue #40). The payload is zlib (RFC 1950),
//!   as every tool emits and both test renderers require, not the gzip of the manual's own
//!   `~DT` example. The firmware version that introduced ZB64 was not found: force
//!   [`GraphicEncoding::RunLength`] for very old printers.
//! - The run-length scheme is documented for `~DG`/`~DB`; the `^GF` page itself only names
//!   the comma. Every renderer tried here accepts it in `^GFA` (`printer-langs.md` §1.2,
//!   §6); no printer was tried. [`GraphicEncoding::Hex`] is the fallback that needs nothing.
//! - `^BZ` type 3 (IMb) is absent from the 2006 guide (x.10–x.13: POSTNET only, four
//!   parameters); the firmware that added it is unknown. The IMb is therefore raster by
//!   default and native only when the profile asks (`NativeOptions::imb`).
//! - `^FB` prints a backslash only as `\\`, and the guide says that needs `^CI13` (we use
//!   `^CI28`); the ZD621 accepts it under `^CI28`. Other firmware may print another glyph.
//! - Native text is measured by the printer's font 0, not by labeld's font: a line the
//!   printer finds wider than the block wraps inside `^FB`, and the block's last line then
//!   overprints. The layout must leave room; the bitmap path has no such risk.
//!
//! # Not supported
//!
//! Stored graphics (`~DG`/`^XG`), `^GFB`/`^GFC`, cutter/peel/tear modes (`^MM`), thermal
//! mode (`^MT`), RFID, `^JUS` (nothing is saved to the printer), SGD `! U1` commands,
//! job-level reset: ZPL has no harmless one (`~JA` deletes other programs' queued formats,
//! `~JR` reboots), so `start_job` sends only `~JX`, which cancels a format left half-received
//! by an interrupted job and touches nothing else.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;

use crate::driver::{Capabilities, Driver, DriverError, Language};
use crate::page::{NativeCode128, NativeElement, NativeImb, NativeText, Page, Rotation};
use crate::status::{Condition, Conditions, DeviceStatus, StatusParseError};
use crate::{Bitmap, MediaKind, Profile};

/// `~HQES`: host query, errors and warnings (guide, `~HQ`). Answers even in the error
/// states where `~HS` stays silent.
pub const QUERY_ERRORS_WARNINGS: &[u8] = b"~HQES";

/// `~HS`: host status return, three strings (guide, `~HS`).
pub const QUERY_HOST_STATUS: &[u8] = b"~HS";

/// SGD query for the printer's lifetime label count (`! U1 getvar "name"`, printer-langs.md
/// §1.5). The variable `odometer.total_label_count` is Link-OS's: it is not in the
/// verified facts, but public client code agrees on it and on its reply, the count in
/// double quotes. Older firmware answers `"?"` (unknown variable).
pub const QUERY_ODOMETER: &[u8] = b"! U1 getvar \"odometer.total_label_count\"\r\n";

/// `~JX`: cancel the current partially input format (guide, `~JX`); it "does not affect
/// any formats currently being printed, or any subsequent formats".
const CANCEL_PARTIAL_FORMAT: &str = "~JX";

/// The largest dot coordinate and dimension ZPL takes (`^PW`, `^LL` 1–32000, `^FO` 0–32000).
const MAX_DOTS: u32 = 32_000;

/// `^GF` b and c: "1 to 99999"; out-of-range values "are set to the nearest limit", so a
/// larger graphic must be split.
const GF_MAX_BYTES: usize = 99_999;

/// Blank rows that end a `^GF` band (see `Graphic::bands`): a new band costs a
/// `^FO…^GFA,…` header of about 30 bytes, more than a few blank rows in any encoding.
const BAND_GAP_ROWS: usize = 16;

/// `~SD`: absolute darkness 00–30.
const DARKNESS_MAX: u32 = 30;

/// `^PR` print speed range, inches per second.
const SPEED_IPS: (u32, u32) = (1, 14);

/// `^PQ` quantity range.
const COPIES_MAX: u32 = 99_999_999;

/// `^A0` scalable font height range, dots.
const FONT_HEIGHT: (u32, u32) = (10, 32_000);

/// `^FB` b, the most lines in a block, and its data limit ("Maximum data-string length is
/// 3K, including control characters").
const FB_MAX_LINES: usize = 9999;
const FB_MAX_DATA: usize = 3072;

/// `^BY` module width range, dots.
const MODULE_DOTS: (u32, u32) = (1, 10);

/// IMb full bar height: the nominal 0.145 in of USPS-B-3200 §2.3.1 (0.125–0.165 in),
/// `imb-facts.md` §6. `^BZ` h is the full ascender-to-descender height.
const IMB_HEIGHT_IN: f64 = 0.145;

/// IMb nominal bar width (0.015–0.025 in) and pitch (1/22 in, 20–24 bars/in), for `^BY`.
const IMB_BAR_WIDTH_IN: f64 = 0.020;
const IMB_PITCH_IN: f64 = 1.0 / 22.0;

/// `~HQES` error bits, low 32-bit group (guide, `~HQ` "Error Flags"; LPrint `ZPL_ERROR_*`).
const HQES_ERRORS: [(u64, &str, Condition); 18] = [
    (0x1, "media out", Condition::MediaOut),
    (0x2, "ribbon out", Condition::RibbonOut),
    (0x4, "head open", Condition::HeadOpen),
    (0x8, "cutter fault", Condition::Cutter),
    (0x10, "printhead over temperature", Condition::Overheat),
    (0x20, "motor over temperature", Condition::Overheat),
    (0x40, "bad printhead element", Condition::Other),
    (0x80, "printhead detection error", Condition::Other),
    (0x100, "invalid firmware configuration", Condition::Other),
    (0x200, "printhead thermistor open", Condition::Other),
    (0x1000, "paper jam during retract", Condition::Jam),
    (0x2000, "presenter not running", Condition::Other),
    (0x4000, "paper feed error", Condition::Jam),
    (0x8000, "clear paper path failed", Condition::Jam),
    (0x10000, "paused", Condition::Paused),
    (0x20000, "retract function timed out", Condition::Other),
    (0x40000, "black mark calibrate error", Condition::WrongMedia),
    (0x80000, "black mark not found", Condition::WrongMedia),
];

/// `~HQES` warning bits (guide, `~HQ` "Warning Flags"). Warnings do not stop printing by
/// themselves, so they only go to `detail`; 0x10–0x800 are kiosk/presenter items,
/// reported by hex value.
const HQES_WARNINGS: [(u64, &str); 4] = [
    (0x1, "need to calibrate media"),
    (0x2, "clean printhead"),
    (0x4, "replace printhead"),
    (0x8, "paper near end"),
];

/// `~HS` string 1, `<STX>aaa,b,c,dddd,eee,f,g,h,iii,j,k,l<ETX><CR><LF>`: field count and
/// the index of each field used.
const HS1_FIELDS: usize = 12;
const HS1_COMM: usize = 0;
const HS1_PAPER_OUT: usize = 1;
const HS1_PAUSE: usize = 2;
const HS1_LABEL_LENGTH: usize = 3;
const HS1_FORMATS: usize = 4;
const HS1_BUFFER_FULL: usize = 5;
const HS1_DIAGNOSTIC: usize = 6;
const HS1_PARTIAL_FORMAT: usize = 7;
const HS1_CORRUPT_RAM: usize = 9;
const HS1_UNDER_TEMP: usize = 10;
const HS1_OVER_TEMP: usize = 11;

/// `~HS` string 2, `<STX>mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www<ETX><CR><LF>`.
const HS2_FIELDS: usize = 11;
const HS2_HEAD_UP: usize = 2;
const HS2_RIBBON_OUT: usize = 3;
const HS2_THERMAL_TRANSFER: usize = 4;
const HS2_PRINT_MODE: usize = 5;
const HS2_LABEL_WAITING: usize = 7;
const HS2_LABELS_REMAINING: usize = 8;

/// `~HS` string 3, `<STX>xxxx,y<ETX><CR><LF>`: password (never copied into `detail`) and
/// static RAM installed.
const HS3_FIELDS: usize = 2;

/// `~HS` string 1 `aaa` bits a8 a2 a1 a0 → baud (guide, `~HS` note 1).
const HS_BAUD: [u32; 12] = [
    110, 300, 600, 1200, 2400, 4800, 9600, 19200, 28800, 38400, 57600, 14400,
];

/// `~HS` string 2 `r`, print mode (guide, `~HS`; 4 and up need V60.14/V50.14/V53.15 firmware).
const HS_PRINT_MODES: [(u8, &str); 13] = [
    (b'0', "rewind"),
    (b'1', "peel-off"),
    (b'2', "tear-off"),
    (b'3', "cutter"),
    (b'4', "applicator"),
    (b'5', "delayed cut"),
    (b'6', "linerless peel"),
    (b'7', "linerless rewind"),
    (b'8', "partial cutter"),
    (b'9', "rfid"),
    (b'K', "kiosk"),
    (b'S', "kiosk cutstream"),
    (b'A', "kiosk cutstream"),
];

/// The manual's example `~HS` reply: the size of a complete reply, for `Short::expected`.
const HS_EXAMPLE: &[u8] = b"\x02030,0,0,0290,000,0,0,0,000,0,0,0\x03\r\n\
    \x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";

/// A healthy `~HQES` reply in the manual's layout: the size of a complete reply.
const HQES_EXAMPLE: &[u8] = b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   0 00000000 00000000\r\n   \
    WARNINGS: 0 00000000 00000000\r\n\x03";

const STX: u8 = 0x02;
const ETX: u8 = 0x03;

/// How `^GF` graphic data is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GraphicEncoding {
    /// The smallest of the others, chosen per graphic (the default).
    #[default]
    Auto,
    /// Plain ASCII hex, two digits per byte.
    Hex,
    /// ASCII hex with the run-length scheme: `G`–`Y`/`g`–`z` counts, `,` and `:`.
    RunLength,
    /// `:Z64:` zlib + base64 + CRC-16/XMODEM.
    Z64,
    /// `:B64:` base64 + CRC-16/XMODEM (only smaller than Z64 on incompressible data).
    B64,
}

/// The ZPL II driver.
#[derive(Clone, Debug)]
pub struct Zpl {
    /// The device settings every page is written for.
    profile: Profile,
    /// The `^GF` encoding to use.
    encoding: GraphicEncoding,
    /// The encoding each `^GF` of the last page used (one per band; empty for a blank page).
    last_encodings: Vec<GraphicEncoding>,
    /// The zlib compressor, kept between graphics: its state is a few hundred KiB,
    /// and allocating it per graphic cost more than compressing a label.
    zlib: Zlib,
}

/// A reusable zlib compressor at [`Z64_LEVEL`]; a clone starts a fresh one.
#[derive(Debug)]
struct Zlib(flate2::Compress);

impl Zlib {
    fn new() -> Zlib {
        Zlib(flate2::Compress::new(
            flate2::Compression::new(Z64_LEVEL),
            true,
        ))
    }
}

impl Clone for Zlib {
    fn clone(&self) -> Zlib {
        Zlib::new()
    }
}

impl Zpl {
    /// A driver for `profile`, choosing the smallest graphic encoding per page.
    pub fn new(profile: &Profile) -> Zpl {
        Zpl {
            profile: profile.clone(),
            encoding: GraphicEncoding::Auto,
            last_encodings: Vec::new(),
            zlib: Zlib::new(),
        }
    }

    /// The same driver with a forced graphic encoding (tests, benchmarks, old firmware).
    pub fn with_encoding(mut self, encoding: GraphicEncoding) -> Zpl {
        self.encoding = encoding;
        self
    }

    /// The graphic encoding setting.
    pub fn encoding(&self) -> GraphicEncoding {
        self.encoding
    }

    /// The encodings the last `write_page` used, one per `^GF` band, top to bottom.
    pub fn last_encodings(&self) -> &[GraphicEncoding] {
        &self.last_encodings
    }

    /// `~HS`, the host status query: gives the labels remaining in the batch, but gets no
    /// reply in media out, ribbon out, head open, rewinder full or head over-temperature.
    /// [`Driver::parse_status`] reads its reply.
    pub const fn host_status_query() -> &'static [u8] {
        QUERY_HOST_STATUS
    }

    /// The SGD query for the lifetime label count; [`parse_odometer`] reads the reply.
    /// Read before and after a job, the difference is what the printer printed.
    pub const fn odometer_query() -> &'static [u8] {
        QUERY_ODOMETER
    }

    /// Widest page: the profile's width, within ZPL's 32 000 dots.
    fn max_width(&self) -> u32 {
        self.profile.width_dots.min(MAX_DOTS)
    }

    /// The `^XA`…settings part of a page, with `~SD` before `^XA`.
    fn page_header(&self, page: &Page, home: (u32, u32), z: &mut String) {
        let darkness = self
            .profile
            .darkness_percent()
            .map(|p| (u32::from(p) * DARKNESS_MAX + 50) / 100);
        if let Some(d) = darkness {
            put(z, format_args!("~SD{d:02}"));
        }
        put(
            z,
            format_args!(
                "^XA^CI28^PW{}^LL{}^LH{},{}^MN{}^PON^PMN^LRN",
                page.width(),
                page.height(),
                home.0,
                home.1,
                match self.profile.media {
                    MediaKind::Gap => 'Y',
                    MediaKind::BlackMark => 'M',
                    MediaKind::Continuous => 'N',
                }
            ),
        );
        if darkness.is_some() {
            z.push_str("^MD0");
        }
        if let Some(ips) = self.profile.speed_ips.filter(|s| s.is_finite()) {
            let ips = (ips.round().max(0.0) as u32).clamp(SPEED_IPS.0, SPEED_IPS.1);
            put(z, format_args!("^PR{ips}"));
        }
    }

    /// Writes the page's raster as `^GF` bands; records the encodings used.
    fn write_graphic(&mut self, bitmap: &Bitmap, z: &mut String) -> Result<(), DriverError> {
        self.last_encodings.clear();
        let dx = self.profile.offset_x.min(0).unsigned_abs();
        let dy = self.profile.offset_y.min(0).unsigned_abs();
        for graphic in Graphic::bands(bitmap, dx, dy) {
            let bpr = graphic.bytes_per_row;
            let rows_per_block = (GF_MAX_BYTES / bpr).max(1);
            for (block, data) in graphic.data.chunks(rows_per_block * bpr).enumerate() {
                let (used, text) = encode_graphic(data, bpr, self.encoding, &mut self.zlib.0)?;
                self.last_encodings.push(used);
                let y = graphic.y as usize + block * rows_per_block;
                put(
                    z,
                    format_args!(
                        "^FO{},{y}^GFA,{n},{n},{bpr},{text}^FS",
                        graphic.x,
                        n = data.len()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Native element position after the negative calibration offsets (positive ones are
    /// in `^LH`), stopping at the label edge.
    fn native_origin(&self, x: u32, y: u32) -> (u32, u32) {
        let shift = |v: u32, offset: i32| v.saturating_sub(offset.min(0).unsigned_abs());
        (
            shift(x, self.profile.offset_x).min(MAX_DOTS),
            shift(y, self.profile.offset_y).min(MAX_DOTS),
        )
    }

    /// `^FO … ^A0 … ^FB … ^FH ^FD … ^FS`.
    fn write_text(&self, text: &NativeText, z: &mut String) -> Result<(), DriverError> {
        if text.lines.is_empty() {
            return Ok(());
        }
        if !(FONT_HEIGHT.0..=FONT_HEIGHT.1).contains(&text.height) {
            return Err(DriverError::Unsupported(format!(
                "native text {} dots high; ZPL font 0 takes {}-{} (render it as graphics)",
                text.height, FONT_HEIGHT.0, FONT_HEIGHT.1
            )));
        }
        let mut data = String::new();
        for (i, line) in text.lines.iter().enumerate() {
            if i > 0 {
                data.push_str("\\&");
            }
            escape_text(line, self.profile.ascii_only, &mut data);
        }
        if text.lines.len() > FB_MAX_LINES || data.len() > FB_MAX_DATA {
            return Err(DriverError::Unsupported(format!(
                "native text block of {} lines, {} bytes; ZPL ^FB takes {FB_MAX_LINES} lines, \
                 {FB_MAX_DATA} bytes (render it as graphics)",
                text.lines.len(),
                data.len()
            )));
        }
        let (x, y) = self.native_origin(text.x, text.y);
        // ^FB c: extra space between lines (-9999 to 9999); line pitch = cell height + c.
        let spacing = (i64::from(text.line_pitch) - i64::from(text.height)).clamp(-9999, 9999);
        put(
            z,
            format_args!(
                "^FO{x},{y}^A0{o},{h},{h}^FB{w},{n},{spacing},L,0^FH^FD{data}^FS",
                o = orientation(text.rotation),
                h = text.height,
                w = text.width.clamp(1, MAX_DOTS),
                n = text.lines.len(),
            ),
        );
        Ok(())
    }

    /// `^FO … ^BY m ^BCN,h,f,N,N,N ^FD <invocation codes> ^FS`.
    fn write_code128(&self, code: &NativeCode128, z: &mut String) -> Result<(), DriverError> {
        check_module(code.module)?;
        check_height("code 128", code.height)?;
        let data = match code128_field_data(&code.values, false)? {
            Some(data) => data,
            None => code128_field_data(&code.values, true)?
                .ok_or_else(|| DriverError::Unsupported("code 128 data escaping".into()))?,
        };
        let (x, y) = self.native_origin(code.x, code.y);
        put(
            z,
            format_args!(
                "^FO{x},{y}^BY{m}^BCN,{h},{f},N,N,N{data}^FS",
                m = code.module,
                h = code.height,
                f = if code.text_below { 'Y' } else { 'N' },
            ),
        );
        Ok(())
    }

    /// `^FO … ^BY m,r ^BZN,h,N,N,3 ^FD tracking routing ^FS`.
    fn write_imb(&self, imb: &NativeImb, page: &Page, z: &mut String) -> Result<(), DriverError> {
        check_imb(imb)?;
        let dots = |inches: f64, dpi: f64| (inches * dpi).round().max(1.0) as u32;
        let height = dots(IMB_HEIGHT_IN, page.resolution.y).min(MAX_DOTS);
        let module = dots(IMB_BAR_WIDTH_IN, page.resolution.x).clamp(MODULE_DOTS.0, MODULE_DOTS.1);
        // ^BZ "supports a print ratio of 2.0:1 to 3.0:1": pitch = ratio × module where the
        // firmware honours it (the ZD621 uses a fixed 2.5).
        let pitch = IMB_PITCH_IN * page.resolution.x;
        let tenths = ((pitch / f64::from(module)) * 10.0)
            .round()
            .clamp(20.0, 30.0) as u32;
        let (x, y) = self.native_origin(imb.x, imb.y);
        put(
            z,
            format_args!(
                "^FO{x},{y}^BY{module},{}.{}^BZN,{height},N,N,3^FD{}{}^FS",
                tenths / 10,
                tenths % 10,
                imb.tracking,
                imb.routing
            ),
        );
        Ok(())
    }
}

impl Driver for Zpl {
    fn language(&self) -> Language {
        Language::Zpl
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_text: true,
            native_code128: true,
            native_imb: true,
            max_width_dots: self.max_width(),
            ascii_capable: true,
            status: true,
        }
    }

    /// `~JX` only: cancels a format an interrupted job left half-received, and nothing else.
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        out.extend_from_slice(CANCEL_PARTIAL_FORMAT.as_bytes());
        Ok(())
    }

    /// One `^XA … ^XZ` format. Nothing is appended to `out` when the page is refused.
    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        let (width, height) = (page.width(), page.height());
        if width == 0 || height == 0 {
            return Err(DriverError::EmptyPage { width, height });
        }
        let max = self.max_width();
        if width > max {
            return Err(DriverError::PageTooWide { dots: width, max });
        }
        if height > MAX_DOTS {
            return Err(DriverError::PageTooLong {
                dots: height,
                max: MAX_DOTS,
            });
        }
        let home = (
            self.profile.offset_x.max(0).unsigned_abs().min(MAX_DOTS),
            self.profile.offset_y.max(0).unsigned_abs().min(MAX_DOTS),
        );
        // Native fields first: they are the part that can be refused.
        let mut fields = String::new();
        for element in &page.native {
            match element {
                NativeElement::Text(text) => self.write_text(text, &mut fields)?,
                NativeElement::Code128(code) => self.write_code128(code, &mut fields)?,
                NativeElement::Imb(imb) => self.write_imb(imb, page, &mut fields)?,
            }
        }
        let mut z = String::new();
        self.page_header(page, home, &mut z);
        self.write_graphic(&page.bitmap, &mut z)?;
        z.push_str(&fields);
        put(
            &mut z,
            format_args!("^PQ{},0,1,Y^XZ\n", self.profile.copies.clamp(1, COPIES_MAX)),
        );
        debug_assert!(!self.profile.ascii_only || z.is_ascii());
        out.extend_from_slice(z.as_bytes());
        Ok(())
    }

    /// Nothing: every page is a complete format.
    fn end_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        Ok(())
    }

    /// `~HQES`, which answers even in the error states where `~HS` is silent.
    fn query_status(&self) -> Option<&'static [u8]> {
        Some(QUERY_ERRORS_WARNINGS)
    }

    /// Reads a `~HQES` reply or a `~HS` reply (three strings).
    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        parse_reply(reply)
    }
}

/// Appends formatted text to a `String` (which cannot fail).
fn put(z: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = z.write_fmt(args);
}

/// `^A`/`^BC` orientation letter: N normal, R 90° clockwise, I 180°, B 270°.
fn orientation(rotation: Rotation) -> char {
    match rotation {
        Rotation::None => 'N',
        Rotation::Cw90 => 'R',
        Rotation::Cw180 => 'I',
        Rotation::Cw270 => 'B',
    }
}

/// `^BY` module width within 1–10 dots.
fn check_module(module: u32) -> Result<(), DriverError> {
    if (MODULE_DOTS.0..=MODULE_DOTS.1).contains(&module) {
        Ok(())
    } else {
        Err(DriverError::Unsupported(format!(
            "barcode module {module} dots wide; ZPL ^BY takes {}-{} (render it as graphics)",
            MODULE_DOTS.0, MODULE_DOTS.1
        )))
    }
}

/// A barcode height within 1–32000 dots.
fn check_height(what: &str, height: u32) -> Result<(), DriverError> {
    if (1..=MAX_DOTS).contains(&height) {
        Ok(())
    } else {
        Err(DriverError::Unsupported(format!(
            "{what} bars {height} dots high; ZPL takes 1-{MAX_DOTS}"
        )))
    }
}

/// The IMb data `^BZ` type 3 takes: 20 tracking digits (the second 0–4), then 0, 5, 9 or 11
/// routing digits.
fn check_imb(imb: &NativeImb) -> Result<(), DriverError> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if imb.tracking.len() != 20 || !digits(&imb.tracking) {
        return Err(DriverError::Unsupported(format!(
            "imb tracking code '{}' is not 20 digits",
            imb.tracking
        )));
    }
    if imb.tracking.as_bytes()[1] > b'4' {
        return Err(DriverError::Unsupported(format!(
            "imb tracking code '{}': the second digit must be 0-4",
            imb.tracking
        )));
    }
    if !matches!(imb.routing.len(), 0 | 5 | 9 | 11) || !digits(&imb.routing) {
        return Err(DriverError::Unsupported(format!(
            "imb routing code '{}' has {} characters; expected 0, 5, 9 or 11 digits",
            imb.routing,
            imb.routing.len()
        )));
    }
    Ok(())
}

/// Escapes one line of `^FB` text under `^FH` (indicator `_`): `^`, `~`, `_`, control
/// characters (and, on 7-bit links, every non-ASCII UTF-8 byte) become `_XX`; a backslash
/// becomes `\\`, `^FB`'s own escape.
fn escape_text(line: &str, ascii_only: bool, z: &mut String) {
    for c in line.chars() {
        match c {
            '\\' => z.push_str("\\\\"),
            '^' | '~' | '_' => put(z, format_args!("_{:02X}", c as u32)),
            c if c.is_ascii_control() => put(z, format_args!("_{:02X}", c as u32)),
            c if !c.is_ascii() && ascii_only => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    put(z, format_args!("_{b:02X}"));
                }
            }
            c => z.push(c),
        }
    }
}

/// Code 128 code sets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CodeSet {
    A,
    B,
    C,
}

/// `^FD` data (with a leading `^FH` when `hex` is set) that makes `^BC` mode N encode
/// exactly `values` (start through last data value), using the invocation codes of the
/// guide's "Code 128 Invocation Characters" table:
///
/// | code | value | | code | value |
/// |---|---|---|---|---|
/// | `><` | 62 | | `>4` | 98 shift |
/// | `>0` | 30 (`>`) | | `>5` | 99 code C |
/// | `>=` | 94 (B: `~`) | | `>6` | 100 (A, C: code B; B: FNC4) |
/// | `>1` | 95 | | `>7` | 101 (A: FNC4; B, C: code A) |
/// | `>2` | 96 FNC3 | | `>8` | 102 FNC1 |
/// | `>3` | 97 FNC2 | | `>9` `>:` `>;` | start A, B, C |
///
/// Set A's control characters (values 64–94) have no printable form: they are written as
/// `^FH` escapes, so `Ok(None)` asks for a second call with `hex` set.
fn code128_field_data(values: &[u8], hex: bool) -> Result<Option<String>, DriverError> {
    let bad = |why: String| Err(DriverError::Unsupported(format!("code 128 values: {why}")));
    let mut data = String::from(if hex { "^FH^FD" } else { "^FD" });
    let mut set = match values.first() {
        Some(103) => CodeSet::A,
        Some(104) => CodeSet::B,
        Some(105) => CodeSet::C,
        Some(v) => return bad(format!("starts with {v}; expected a start value 103-105")),
        None => return bad("empty".into()),
    };
    data.push_str(match set {
        CodeSet::A => ">9",
        CodeSet::B => ">:",
        CodeSet::C => ">;",
    });
    let mut shifted = false;
    for (i, &v) in values.iter().enumerate().skip(1) {
        let here = match (set, shifted) {
            (CodeSet::A, true) => CodeSet::B,
            (CodeSet::B, true) => CodeSet::A,
            (s, _) => s,
        };
        if shifted && (98..=101).contains(&v) {
            return bad(format!("value {v} at position {i} follows a shift"));
        }
        shifted = false;
        match (here, v) {
            (_, 103..) => return bad(format!("value {v} at position {i}; expected 0-102")),
            (CodeSet::C, 0..=99) => put(&mut data, format_args!("{v:02}")),
            (CodeSet::C, 100) => {
                data.push_str(">6");
                set = CodeSet::B;
            }
            (CodeSet::C, 101) => {
                data.push_str(">7");
                set = CodeSet::A;
            }
            (_, 102) => data.push_str(">8"),
            (_, 95..=101) => {
                data.push('>');
                data.push(char::from(b'1' + (v - 95)));
                match (here, v) {
                    (_, 98) => shifted = true,
                    (_, 99) => set = CodeSet::C,
                    (CodeSet::A, 100) => set = CodeSet::B,
                    (CodeSet::B, 101) => set = CodeSet::A,
                    _ => {}
                }
            }
            (_, 30) => data.push_str(">0"),
            (_, 62) => data.push_str("><"),
            (CodeSet::B, 94) => data.push_str(">="),
            (_, 0..=94) => {
                // Set A: 0-63 are ASCII 32-95 and 64-94 control characters 0-30; set B:
                // 0-94 are ASCII 32-126.
                let byte = if here == CodeSet::A && v >= 64 {
                    v - 64
                } else {
                    v + 32
                };
                if byte < 0x20 || (hex && byte == b'_') {
                    if !hex {
                        return Ok(None);
                    }
                    put(&mut data, format_args!("_{byte:02X}"));
                } else {
                    data.push(char::from(byte));
                }
            }
        }
    }
    if shifted {
        return bad("ends with a shift".into());
    }
    Ok(Some(data))
}

/// The black part of a page for `^GF`: `data` holds rows of `bytes_per_row` bytes, the
/// first at (`x`, `y`) in label-home coordinates.
struct Graphic {
    x: u32,
    y: u32,
    bytes_per_row: usize,
    data: Vec<u8>,
}

impl Graphic {
    /// Drops `dx` columns on the left and `dy` rows on the top (negative calibration
    /// offsets), then cuts the black part into bands at every run of at least
    /// [`BAND_GAP_ROWS`] blank rows, each cropped to its own black dots (whole bytes
    /// across). A label's blocks (return address, address and IMb, tray lines and bars)
    /// then cost nothing for the white between them, in bytes or in compression time.
    /// Empty when nothing black is left.
    fn bands(bitmap: &Bitmap, dx: u32, dy: u32) -> Vec<Graphic> {
        let Some(whole) = Graphic::crop(bitmap, dx, dy) else {
            return Vec::new();
        };
        let bpr = whole.bytes_per_row;
        let extent = |row: &[u8]| -> Option<(usize, usize)> {
            Some((
                row.iter().position(|&b| b != 0)?,
                row.iter().rposition(|&b| b != 0)?,
            ))
        };
        let rows: Vec<Option<(usize, usize)>> = whole.data.chunks_exact(bpr).map(extent).collect();
        let mut bands = Vec::new();
        let mut y = 0;
        while y < rows.len() {
            let Some(first) = rows[y] else {
                y += 1;
                continue;
            };
            let (start, mut end, mut left, mut right) = (y, y, first.0, first.1);
            let mut blank = 0;
            y += 1;
            while y < rows.len() && blank < BAND_GAP_ROWS {
                match rows[y] {
                    Some((l, r)) => {
                        (end, left, right, blank) = (y, left.min(l), right.max(r), 0);
                    }
                    None => blank += 1,
                }
                y += 1;
            }
            let width = right - left + 1;
            let mut data = Vec::with_capacity(width * (end - start + 1));
            for row in whole.data.chunks_exact(bpr).take(end + 1).skip(start) {
                data.extend_from_slice(&row[left..=right]);
            }
            bands.push(Graphic {
                x: whole.x + (left * 8) as u32,
                y: whole.y + start as u32,
                bytes_per_row: width,
                data,
            });
        }
        bands
    }

    /// Drops `dx` columns on the left and `dy` rows on the top (negative calibration
    /// offsets), then crops to the bounding box of black dots: whole bytes across, rows
    /// down. `None` when nothing black is left.
    fn crop(bitmap: &Bitmap, dx: u32, dy: u32) -> Option<Graphic> {
        let width = bitmap.width().checked_sub(dx).filter(|w| *w > 0)?;
        let height = bitmap.height().checked_sub(dy).filter(|h| *h > 0)?;
        let stride = (width as usize).div_ceil(8);
        let row = |y: u32| -> Cow<'_, [u8]> {
            let src = bitmap.row(y + dy);
            if dx == 0 {
                Cow::Borrowed(src)
            } else {
                Cow::Owned(shift_left(src, dx as usize, stride))
            }
        };
        let mut bounds: Option<(u32, u32, usize, usize)> = None;
        let mut rows = Vec::with_capacity(height as usize);
        for y in 0..height {
            let r = row(y);
            if is_blank(&r) {
                rows.push(r);
                continue;
            }
            if let (Some(first), Some(last)) = (
                r.iter().position(|&b| b != 0),
                r.iter().rposition(|&b| b != 0),
            ) {
                bounds = Some(match bounds {
                    None => (y, y, first, last),
                    Some((y0, _, l, rr)) => (y0, y, l.min(first), rr.max(last)),
                });
            }
            rows.push(r);
        }
        let (y0, y1, left, right) = bounds?;
        let bytes_per_row = right - left + 1;
        let mut data = Vec::with_capacity(bytes_per_row * (y1 - y0 + 1) as usize);
        for r in &rows[y0 as usize..=y1 as usize] {
            data.extend_from_slice(&r[left..=right]);
        }
        Some(Graphic {
            x: (left * 8) as u32,
            y: y0,
            bytes_per_row,
            data,
        })
    }
}

/// Whether a packed row has no black dot, eight bytes at a time.
fn is_blank(row: &[u8]) -> bool {
    let mut words = row.chunks_exact(8);
    let words_blank = words
        .by_ref()
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0);
    words_blank && words.remainder().iter().all(|&b| b == 0)
}

/// `row` shifted `bits` dots to the left, `stride` bytes long (bits shifted in are 0).
fn shift_left(row: &[u8], bits: usize, stride: usize) -> Vec<u8> {
    let (skip, r) = (bits / 8, bits % 8);
    let at = |i: usize| row.get(i).copied().unwrap_or(0);
    (0..stride)
        .map(|i| {
            if r == 0 {
                at(i + skip)
            } else {
                (at(i + skip) << r) | (at(i + skip + 1) >> (8 - r))
            }
        })
        .collect()
}

/// One band's `^GF` data in `encoding` (or the smallest, for `Auto`), with the encoding used.
fn encode_graphic(
    data: &[u8],
    bytes_per_row: usize,
    encoding: GraphicEncoding,
    zlib: &mut flate2::Compress,
) -> Result<(GraphicEncoding, String), DriverError> {
    let mut z64 = |data: &[u8]| {
        z64(data, zlib)
            .map_err(|e| DriverError::Unsupported(format!("zlib compression of ^GF failed: {e}")))
    };
    Ok(match encoding {
        GraphicEncoding::Hex => (encoding, hex(data)),
        GraphicEncoding::RunLength => (
            encoding,
            zpl_rle(data, bytes_per_row, usize::MAX).unwrap_or_default(),
        ),
        GraphicEncoding::Z64 => (encoding, z64(data)?),
        GraphicEncoding::B64 => (encoding, b64(data)),
        GraphicEncoding::Auto => {
            // Candidates in order of preference on equal length. Hex and B64 lengths are
            // known without encoding: 2n, and ":B64:" + 4⌈n/3⌉ + ":CRC".
            // Z64 first: the run-length form is abandoned as soon as it is longer.
            let zipped = z64(data)?;
            let rle = zpl_rle(data, bytes_per_row, zipped.len()).unwrap_or_default();
            let rle_len = if rle.is_empty() {
                usize::MAX
            } else {
                rle.len()
            };
            let b64_len = 5 + 4 * data.len().div_ceil(3) + 5;
            let best = [
                (GraphicEncoding::RunLength, rle_len),
                (GraphicEncoding::Z64, zipped.len()),
                (GraphicEncoding::B64, b64_len),
                (GraphicEncoding::Hex, 2 * data.len()),
            ]
            .into_iter()
            .min_by_key(|&(_, len)| len)
            .map_or(GraphicEncoding::RunLength, |(e, _)| e);
            match best {
                GraphicEncoding::Z64 => (best, zipped),
                GraphicEncoding::B64 => (best, b64(data)),
                GraphicEncoding::Hex => (best, hex(data)),
                _ => (GraphicEncoding::RunLength, rle),
            }
        }
    })
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Plain ASCII hex, two uppercase digits per byte.
fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(2 * data.len());
    for &b in data {
        s.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        s.push(char::from(HEX_DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The run-length scheme ("Alternative Data Compression Scheme"), row by row: `:` for a
/// row equal to the one before (never for the first), `,` for a row's trailing zeros
/// (from an even nibble; an odd count first gets one explicit `0`), and every other run of
/// equal nibbles as its count (`z` = 400 repeated, then `g`–`y` = 20–380, `G`–`Y` = 1–19)
/// followed by the digit. Runs never cross rows; `!` is never used.
///
/// Gives up (`None`) once the text would be longer than `limit` characters.
fn zpl_rle(data: &[u8], bytes_per_row: usize, limit: usize) -> Option<String> {
    let mut s = String::new();
    let nibbles = 2 * bytes_per_row;
    let mut previous: Option<&[u8]> = None;
    let mut row_nibbles = Vec::with_capacity(nibbles);
    for row in data.chunks_exact(bytes_per_row) {
        if s.len() > limit {
            return None;
        }
        if previous == Some(row) {
            s.push(':');
            continue;
        }
        previous = Some(row);
        row_nibbles.clear();
        row_nibbles.extend(row.iter().flat_map(|&b| [b >> 4, b & 15]));
        let end = row_nibbles
            .iter()
            .rposition(|&n| n != 0)
            .map_or(0, |i| i + 1);
        let mut i = 0;
        while i < end {
            let n = row_nibbles[i];
            let run = row_nibbles[i..end].iter().take_while(|&&m| m == n).count();
            push_run(&mut s, run, n);
            i += run;
        }
        match nibbles - end {
            0 => {}
            1 => s.push('0'),
            zeros => {
                if end % 2 == 1 {
                    s.push('0');
                }
                debug_assert!(zeros >= 2);
                s.push(',');
            }
        }
    }
    (s.len() <= limit).then_some(s)
}

/// `run` copies of nibble `n`: the digit alone for runs of 1–2, else count letters + digit.
fn push_run(s: &mut String, run: usize, n: u8) {
    let digit = char::from(HEX_DIGITS[usize::from(n)]);
    if run <= 2 {
        s.extend(std::iter::repeat_n(digit, run));
        return;
    }
    s.extend(std::iter::repeat_n('z', run / 400));
    let (twenties, ones) = ((run % 400) / 20, run % 20);
    if twenties > 0 {
        s.push(char::from(b'g' + twenties as u8 - 1));
    }
    if ones > 0 {
        s.push(char::from(b'G' + ones as u8 - 1));
    }
    s.push(digit);
}

/// Parses the reply to [`QUERY_ODOMETER`]: a count in double quotes (`"8560"`),
/// whitespace around it allowed. `Short` until the closing quote has arrived;
/// `Malformed` for `"?"` (firmware without the variable) or anything else.
pub fn parse_odometer(reply: &[u8]) -> Result<u64, StatusParseError> {
    let text = std::str::from_utf8(reply)
        .map_err(|_| malformed("odometer reply is not text".into()))?
        .trim();
    let Some(inner) = text.strip_prefix('"') else {
        return if text.is_empty() {
            Err(StatusParseError::Short {
                found: 0,
                expected: 3,
            })
        } else {
            Err(malformed(
                "odometer reply does not start with a quote".into(),
            ))
        };
    };
    let Some(value) = inner.strip_suffix('"') else {
        return Err(StatusParseError::Short {
            found: reply.len(),
            expected: reply.len() + 1,
        });
    };
    if value == "?" {
        return Err(malformed(
            "printer does not know odometer.total_label_count (older firmware)".into(),
        ));
    }
    value
        .parse()
        .map_err(|_| malformed(format!("odometer value {value:?} is not a count")))
}

/// zlib level for Z64. Level 9 saves under 2 % over level 3 on label graphics and
/// costs 2–3 times the CPU (BENCHMARKS.md, labels): the bytes are still a third of
/// what CUPS sends for the same bitmap.
const Z64_LEVEL: u32 = 2;

/// `:Z64:` + base64(zlib(data)) + `:` + CRC.
fn z64(data: &[u8], zlib: &mut flate2::Compress) -> Result<String, flate2::CompressError> {
    zlib.reset();
    // zlib's worst case is a few bytes per 16 KiB block over the input.
    let mut packed = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
    loop {
        let consumed = zlib.total_in() as usize;
        let status = zlib.compress_vec(
            &data[consumed.min(data.len())..],
            &mut packed,
            flate2::FlushCompress::Finish,
        )?;
        match status {
            flate2::Status::StreamEnd => break,
            _ => packed.reserve(packed.capacity().max(64)),
        }
    }
    Ok(envelope("Z64", &packed))
}

/// `:B64:` + base64(data) + `:` + CRC.
fn b64(data: &[u8]) -> String {
    envelope("B64", data)
}

/// `:{kind}:{base64}:{CRC-16/XMODEM of the base64 text, 4 uppercase hex digits}`.
fn envelope(kind: &str, payload: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(payload);
    format!(":{kind}:{text}:{:04X}", crc16_xmodem(text.as_bytes()))
}

/// CRC-16/XMODEM: polynomial 0x1021, initial value 0, MSB first, no final xor.
fn crc16_xmodem(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (0..8).fold(crc ^ (u16::from(b) << 8), |c, _| {
            if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            }
        })
    })
}

/// A status reply split into STX…ETX frames.
struct Frames<'a> {
    /// The contents of every complete frame.
    done: Vec<&'a [u8]>,
    /// The contents so far of an unfinished last frame.
    partial: Option<&'a [u8]>,
}

/// Splits a reply into STX…ETX frames (CR, LF and spaces between frames are skipped).
fn frames(reply: &[u8]) -> Result<Frames<'_>, StatusParseError> {
    let mut done = Vec::new();
    let mut rest = reply;
    loop {
        let skip = rest
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n' | b' '))
            .count();
        rest = &rest[skip..];
        match rest.split_first() {
            None => {
                return Ok(Frames {
                    done,
                    partial: None,
                })
            }
            Some((&STX, body)) => match body.iter().position(|&b| b == ETX) {
                Some(end) => {
                    done.push(&body[..end]);
                    rest = &body[end + 1..];
                }
                None => {
                    return Ok(Frames {
                        done,
                        partial: Some(body),
                    })
                }
            },
            Some((&b, _)) => {
                return Err(malformed(format!(
                    "byte 0x{b:02x} at offset {} is outside an STX/ETX frame",
                    reply.len() - rest.len()
                )))
            }
        }
    }
}

fn malformed(reason: String) -> StatusParseError {
    StatusParseError::Malformed { reason }
}

/// Whether `text` could begin an `~HQES` frame (CR LF, then `PRINTER STATUS`).
fn looks_like_hqes(text: &[u8]) -> bool {
    let body = text.trim_ascii_start();
    let header = b"PRINTER STATUS";
    let n = body.len().min(header.len());
    (n > 0 || text.first().is_some_and(|b| matches!(b, b'\r' | b'\n'))) && body[..n] == header[..n]
}

/// Parses a `~HQES` or `~HS` reply.
fn parse_reply(reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    let Frames { done, partial } = frames(reply)?;
    let first = done.first().copied().or(partial);
    let Some(first) = first else {
        return Err(StatusParseError::Short {
            found: reply.len(),
            expected: HQES_EXAMPLE.len(),
        });
    };
    if let Some(bad) = partial.and_then(|p| p.iter().find(|&&b| !is_reply_char(b))) {
        return Err(malformed(format!(
            "unexpected byte 0x{bad:02x} in an unfinished reply"
        )));
    }
    let short = |expected: usize| StatusParseError::Short {
        found: reply.len(),
        expected: expected.max(reply.len() + 1),
    };
    if looks_like_hqes(first) || (first.is_empty() && done.is_empty()) {
        return match (done.as_slice(), partial) {
            ([], _) => Err(short(HQES_EXAMPLE.len())),
            ([text], None) => parse_hqes(text, reply),
            _ => Err(malformed(
                "more than one frame in a ~HQES reply (was another query answered too?)".into(),
            )),
        };
    }
    if !first.first().is_some_and(u8::is_ascii_digit) {
        return Err(malformed(format!(
            "reply starts with {:?}; expected a ~HQES or ~HS reply",
            String::from_utf8_lossy(&first[..first.len().min(20)])
        )));
    }
    // ~HS: check every complete string, then wait for the rest.
    let mut strings = Vec::with_capacity(3);
    for (i, frame) in done.iter().enumerate() {
        let (min, name) = match i {
            0 => (HS1_FIELDS, "string 1"),
            1 => (HS2_FIELDS, "string 2"),
            2 => (HS3_FIELDS, "string 3"),
            _ => return Err(malformed("more than three strings in a ~HS reply".into())),
        };
        strings.push(hs_fields(frame, min, name)?);
    }
    if strings.len() < 3 || partial.is_some() {
        return Err(short(HS_EXAMPLE.len()));
    }
    parse_hs(&strings, reply)
}

/// Bytes a status reply is made of (printable ASCII, CR, LF).
fn is_reply_char(b: u8) -> bool {
    b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n')
}

/// The comma-separated fields of one `~HS` string; at least `min` (later firmware may add
/// more, which are ignored), each non-empty ASCII alphanumerics.
fn hs_fields<'a>(
    frame: &'a [u8],
    min: usize,
    name: &str,
) -> Result<Vec<&'a str>, StatusParseError> {
    let text =
        std::str::from_utf8(frame).map_err(|_| malformed(format!("~HS {name} is not ASCII")))?;
    let fields: Vec<&str> = text.trim_end_matches(['\r', '\n']).split(',').collect();
    if fields.len() < min {
        return Err(malformed(format!(
            "~HS {name} has {} fields; expected {min}",
            fields.len()
        )));
    }
    if let Some((i, f)) = fields
        .iter()
        .enumerate()
        .find(|(_, f)| f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(malformed(format!("~HS {name} field {} is {f:?}", i + 1)));
    }
    Ok(fields)
}

/// A `~HS` flag field: `0` or `1`.
fn hs_flag(fields: &[&str], i: usize, name: &str) -> Result<bool, StatusParseError> {
    match fields[i] {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(malformed(format!(
            "~HS {name} flag is {other:?}; expected 0 or 1"
        ))),
    }
}

/// A `~HS` decimal field.
fn hs_number(fields: &[&str], i: usize, name: &str) -> Result<u32, StatusParseError> {
    let f = fields[i];
    if !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("~HS {name} is {f:?}; expected digits")));
    }
    f.parse()
        .map_err(|_| malformed(format!("~HS {name} {f:?} is out of range")))
}

/// `aaa` → "serial 9600 8n1 xon/xoff" (guide, `~HS` note 1).
fn hs_serial(aaa: u32) -> String {
    let bit = |n: u32| (aaa >> n) & 1 == 1;
    let code = ((((aaa >> 8) & 1) << 3) | (aaa & 7)) as usize;
    let baud = HS_BAUD
        .get(code)
        .map_or_else(|| format!("baud code {code}"), |b| b.to_string());
    let parity = match (bit(5), bit(6)) {
        (false, _) => 'n',
        (true, false) => 'o',
        (true, true) => 'e',
    };
    format!(
        "serial {baud} {}{parity}{} {}",
        if bit(3) { 8 } else { 7 },
        if bit(4) { 1 } else { 2 },
        if bit(7) { "dtr" } else { "xon/xoff" }
    )
}

/// Maps the three `~HS` strings onto a [`DeviceStatus`].
fn parse_hs(strings: &[Vec<&str>], raw: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    let (s1, s2) = (strings[0].as_slice(), strings[1].as_slice());
    let mut conditions = Conditions::NONE;
    let mut faults = Vec::new();
    let flags: [(&[&str], usize, &str, Condition); 8] = [
        (s1, HS1_PAPER_OUT, "paper out", Condition::MediaOut),
        (s1, HS1_PAUSE, "pause active", Condition::Paused),
        (
            s1,
            HS1_BUFFER_FULL,
            "receive buffer full",
            Condition::BufferFull,
        ),
        (
            s1,
            HS1_DIAGNOSTIC,
            "communications diagnostic mode",
            Condition::Other,
        ),
        (
            s1,
            HS1_CORRUPT_RAM,
            "corrupt ram (configuration lost)",
            Condition::Other,
        ),
        (
            s1,
            HS1_UNDER_TEMP,
            "head under temperature",
            Condition::Other,
        ),
        (
            s1,
            HS1_OVER_TEMP,
            "head over temperature",
            Condition::Overheat,
        ),
        (s2, HS2_HEAD_UP, "head up", Condition::HeadOpen),
    ];
    for (fields, i, name, condition) in flags {
        if hs_flag(fields, i, name)? {
            conditions.insert(condition);
            faults.push(name.to_owned());
        }
    }
    if hs_flag(s2, HS2_RIBBON_OUT, "ribbon out")? {
        conditions.insert(Condition::RibbonOut);
        faults.push("ribbon out".into());
    }
    let serial = hs_serial(hs_number(s1, HS1_COMM, "communication settings")?);
    let length = hs_number(s1, HS1_LABEL_LENGTH, "label length")?;
    let formats = hs_number(s1, HS1_FORMATS, "formats in buffer")?;
    let partial = hs_flag(s1, HS1_PARTIAL_FORMAT, "partial format")?;
    let transfer = hs_flag(s2, HS2_THERMAL_TRANSFER, "thermal transfer")?;
    let waiting = hs_flag(s2, HS2_LABEL_WAITING, "label waiting")?;
    let remaining = hs_number(s2, HS2_LABELS_REMAINING, "labels remaining")?;
    let mode = s2[HS2_PRINT_MODE];
    let mode = HS_PRINT_MODES
        .iter()
        .find(|(c, _)| mode.as_bytes() == [*c])
        .map_or_else(|| format!("print mode {mode}"), |(_, m)| (*m).to_owned());
    let mut detail = faults;
    if waiting {
        detail.push("label waiting to be taken".into());
    }
    detail.push(format!(
        "{} formats in buffer, {remaining} labels remaining",
        formats
    ));
    detail.push(format!("label length {length} dots"));
    detail.push(format!(
        "{mode}, {}",
        if transfer {
            "thermal transfer"
        } else {
            "direct thermal"
        }
    ));
    detail.push(serial);
    Ok(DeviceStatus {
        conditions,
        detail: detail.join("; "),
        labels_remaining: Some(remaining),
        busy: Some(formats > 0 || remaining > 0 || partial),
        raw: raw.to_vec(),
    })
}

/// `a bbbbbbbb cccccccc` after `ERRORS:` or `WARNINGS:`: the flag and the 64-bit mask
/// (b = nibbles 16–9, c = nibbles 8–1).
fn hqes_group(line: &str, name: &str) -> Result<(bool, u64), StatusParseError> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let [flag, high, low] = tokens.as_slice() else {
        return Err(malformed(format!(
            "~HQES {name} line {line:?}; expected a flag and two 8-digit hex groups"
        )));
    };
    let flag = match *flag {
        "0" => false,
        "1" => true,
        other => return Err(malformed(format!("~HQES {name} flag is {other:?}"))),
    };
    let group = |g: &str| {
        (g.len() == 8 && g.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(g, 16).ok())
            .flatten()
            .ok_or_else(|| malformed(format!("~HQES {name} group {g:?} is not 8 hex digits")))
    };
    Ok((flag, (group(high)? << 32) | group(low)?))
}

/// Maps a `~HQES` frame onto a [`DeviceStatus`]; unknown error bits become
/// [`Condition::Other`] with their hex value in `detail`.
fn parse_hqes(frame: &[u8], raw: &[u8]) -> Result<DeviceStatus, StatusParseError> {
    let text =
        std::str::from_utf8(frame).map_err(|_| malformed("~HQES reply is not ASCII".into()))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("PRINTER STATUS") {
        return Err(malformed(
            "~HQES reply lacks its PRINTER STATUS line".into(),
        ));
    }
    let (mut errors, mut warnings) = (None, None);
    for line in lines {
        if let Some(rest) = line.strip_prefix("ERRORS:") {
            errors = Some(hqes_group(rest, "errors")?);
        } else if let Some(rest) = line.strip_prefix("WARNINGS:") {
            warnings = Some(hqes_group(rest, "warnings")?);
        } else {
            return Err(malformed(format!("unexpected ~HQES line {line:?}")));
        }
    }
    let (Some((error_flag, mut error_bits)), Some((_, mut warning_bits))) = (errors, warnings)
    else {
        return Err(malformed(
            "~HQES reply lacks its ERRORS or WARNINGS line".into(),
        ));
    };
    let mut conditions = Conditions::NONE;
    let mut found = Vec::new();
    for (mask, name, condition) in HQES_ERRORS {
        if error_bits & mask != 0 {
            conditions.insert(condition);
            found.push(name.to_owned());
            error_bits &= !mask;
        }
    }
    if error_bits != 0 {
        conditions.insert(Condition::Other);
        found.push(format!("unknown error bits 0x{error_bits:x}"));
    }
    if error_flag && conditions.is_empty() {
        conditions.insert(Condition::Other);
        found.push("error flag set without error bits".into());
    }
    let mut warned = Vec::new();
    for (mask, name) in HQES_WARNINGS {
        if warning_bits & mask != 0 {
            warned.push(name.to_owned());
            warning_bits &= !mask;
        }
    }
    if warning_bits != 0 {
        warned.push(format!("warning bits 0x{warning_bits:x}"));
    }
    let mut detail = Vec::new();
    if !found.is_empty() {
        detail.push(format!("errors: {}", found.join(", ")));
    }
    if !warned.is_empty() {
        detail.push(format!("warnings: {}", warned.join(", ")));
    }
    Ok(DeviceStatus {
        conditions,
        detail: detail.join("; "),
        labels_remaining: None,
        busy: None,
        raw: raw.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_xmodem_check_value() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn run_counts_follow_the_letter_table() {
        // (run, expected): G=1 … Y=19, g=20 … y=380, z=400, counts add up.
        let cases: [(usize, &str); 9] = [
            (1, "F"),
            (2, "FF"),
            (3, "IF"),
            (19, "YF"),
            (20, "gF"),
            (21, "gGF"),
            (327, "vMF"),
            (400, "zF"),
            (841, "zzhGF"),
        ];
        for (run, expected) in cases {
            let mut s = String::new();
            push_run(&mut s, run, 15);
            assert_eq!(s, expected, "run {run}");
        }
    }

    #[test]
    fn rle_rows() {
        // (rows, bytes per row, expected)
        let cases: [(&[u8], usize, &str); 7] = [
            // 0: a blank row is one comma; a repeated row is a colon.
            (&[0, 0, 0, 0, 0, 0], 3, ",:"),
            // 1: trailing zeros from a byte boundary: comma.
            (&[0xFF, 0, 0], 3, "FF,"),
            // 2: an odd count of trailing zeros gets one explicit 0 first.
            (&[0xF0, 0, 0], 3, "F0,"),
            // 3: a single trailing zero nibble is written, never a comma.
            (&[0x00, 0x0F, 0xF0], 3, "I0FF0"),
            // 4: full row, no comma.
            (&[0xFF, 0xFF, 0xFF], 3, "LF"),
            // 5: the first row is never a colon, even when blank.
            (&[0, 0], 1, ",:"),
            // 6: leading zeros are counted, not dropped.
            (&[0x00, 0x00, 0x01], 3, "K01"),
        ];
        for (i, (data, bpr, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                zpl_rle(data, bpr, usize::MAX).as_deref(),
                Some(expected),
                "case {i}"
            );
        }
        // Abandoned once longer than the limit.
        assert_eq!(zpl_rle(&[0x12, 0x34, 0x56, 0x78], 4, 3), None);
    }

    #[test]
    fn odometer_replies() {
        assert_eq!(parse_odometer(b"\"8560\"\r\n"), Ok(8560));
        assert_eq!(parse_odometer(b" \"0\""), Ok(0));
        assert!(matches!(
            parse_odometer(b"\"85"),
            Err(StatusParseError::Short { .. })
        ));
        assert!(matches!(
            parse_odometer(b""),
            Err(StatusParseError::Short { .. })
        ));
        for bad in [&b"\"?\""[..], b"8560", b"\"12a\"", b"\xff\xfe"] {
            assert!(
                matches!(parse_odometer(bad), Err(StatusParseError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            Zpl::odometer_query(),
            b"! U1 getvar \"odometer.total_label_count\"\r\n"
        );
    }

    #[test]
    fn shift_left_drops_columns() {
        assert_eq!(
            shift_left(&[0b1000_0001, 0b1100_0000], 1, 2),
            [0b0000_0011, 0b1000_0000]
        );
        assert_eq!(shift_left(&[0xAB, 0xCD], 8, 1), [0xCD]);
        assert_eq!(shift_left(&[0x0F, 0xF0], 4, 2), [0xFF, 0x00]);
    }

    #[test]
    fn code128_invocation_codes() {
        // (values, expected ^FD data)
        let cases: [(&[u8], &str); 6] = [
            // 0: USPS tray label, set C throughout.
            (
                &[105, 12, 34, 56, 78, 11, 23, 45, 61, 23, 12, 34, 51],
                "^FD>;123456781123456123123451",
            ),
            // 1: GS1 container: B, FNC1, switch to C, switch to B.
            (
                &[
                    104, 102, 25, 25, 45, 99, 12, 34, 56, 0, 0, 0, 100, 33, 34, 35, 17, 18, 19,
                ],
                "^FD>:>899M>5123456000000>6ABC123",
            ),
            // 2: ZPL-special characters in set B: > ^ ~ and DEL.
            (&[104, 30, 62, 94, 95], "^FD>:>0><>=>1"),
            // 3: set C FNC1 and switch to A.
            (&[105, 102, 1, 101, 33], "^FD>;>801>7A"),
            // 4: shift from B to A for one control character (needs ^FH).
            (&[104, 33, 98, 64, 33], "^FH^FD>:A>4_00A"),
            // 5: underscore under ^FH (set A, with a control character).
            (&[103, 63, 93], "^FH^FD>9_5F_1D"),
        ];
        for (i, (values, expected)) in cases.into_iter().enumerate() {
            let got = code128_field_data(values, false)
                .unwrap()
                .or_else(|| code128_field_data(values, true).unwrap());
            assert_eq!(got.as_deref(), Some(expected), "case {i}");
        }
        for bad in [&[][..], &[10, 1], &[104, 103], &[104, 98], &[104, 98, 99]] {
            assert!(code128_field_data(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_escapes() {
        let mut s = String::new();
        escape_text("a^b~c_d\\e&é", false, &mut s);
        assert_eq!(s, "a_5Eb_7Ec_5Fd\\\\e&é");
        s.clear();
        escape_text("é", true, &mut s);
        assert_eq!(s, "_C3_A9");
    }

    #[test]
    fn hs_serial_settings() {
        // The manual's example 030 = 0b0_0001_1110: 9600 baud, 8 data bits, 1 stop bit,
        // no parity, Xon/Xoff.
        assert_eq!(hs_serial(30), "serial 9600 8n1 xon/xoff");
        assert_eq!(hs_serial(0b1_1111_1001), "serial 38400 8e1 dtr");
    }

    #[test]
    fn partial_replies_are_short() {
        for n in 0..HQES_EXAMPLE.len() {
            assert!(
                matches!(
                    parse_reply(&HQES_EXAMPLE[..n]),
                    Err(StatusParseError::Short { .. })
                ),
                "hqes prefix {n}"
            );
        }
        for n in 0..HS_EXAMPLE.len() - 2 {
            assert!(
                matches!(
                    parse_reply(&HS_EXAMPLE[..n]),
                    Err(StatusParseError::Short { .. })
                ),
                "hs prefix {n}: {:?}",
                parse_reply(&HS_EXAMPLE[..n])
            );
        }
        assert!(parse_reply(HQES_EXAMPLE).unwrap().is_ready());
        assert_eq!(parse_reply(HS_EXAMPLE).unwrap().labels_remaining, Some(0));
    }
}
