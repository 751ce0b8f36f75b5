//! The PCL 5 driver, checked by a PCL-raster decoder written here from
//! `printer-langs.md` §4.1/§7.7 (no code shared with the driver): it parses the
//! PJL wrapper and every escape sequence generically (parameterised and combined
//! forms), models the page (paper size, ¼-inch X origin, top-margin Y origin,
//! units, cursor, raster width) and decodes raster rows in modes 0, 2 and 3,
//! Y offsets and form feeds back into one bitmap per physical sheet.

use labeld_drivers::lang::pcl::Pcl;
use labeld_drivers::{
    encode_job, models, Bitmap, Driver, DriverError, NativeElement, NativeText, Page, Resolution,
    Rotation,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The decoder.
// ---------------------------------------------------------------------------

const ESC: u8 = 0x1b;
const FF: u8 = 0x0c;

/// One ejected sheet.
#[derive(Debug)]
struct Sheet {
    /// `ESC&l#A` value in force.
    paper: u32,
    /// Raster resolution in force (dpi).
    dpi: u32,
    /// Copies in force (`ESC&l#X`).
    copies: u32,
    /// The physical sheet, portrait, at `dpi` (white where nothing was drawn).
    bitmap: Bitmap,
}

/// What a stream decoded to.
#[derive(Debug, Default)]
struct Decoded {
    sheets: Vec<Sheet>,
    /// PJL lines, in order (without CR LF).
    pjl: Vec<String>,
    /// Number of UELs seen.
    uels: usize,
    /// Rows transferred per compression mode 0..=3 (`*b#W` commands).
    rows_by_mode: [usize; 4],
    /// Rows skipped with `*b#Y`.
    y_skipped: usize,
    /// Every mode-3 offset decoded (after the 31/255 extension).
    delta_offsets: Vec<usize>,
    /// (row within the page's raster, mode) for every `*b#W`.
    row_modes: Vec<(usize, u32)>,
}

/// Physical paper sizes by `ESC&l#A` code, inches (§4.1 table).
fn paper_inches(code: u32) -> Result<(f64, f64), String> {
    match code {
        2 => Ok((8.5, 11.0)),
        81 => Ok((4.125, 9.5)),
        other => Err(format!("page size {other} not modelled")),
    }
}

/// The decoder's page state.
struct State {
    units_per_inch: u32,
    dpi: u32,
    paper: u32,
    copies: u32,
    /// Top margin in inches (vertical origin), ½ in by default (§4.1).
    top_margin: f64,
    /// Cursor in PCL units from the logical origin.
    cursor: (i64, i64),
    mode: u32,
    raster_width: Option<u32>,
    /// Active raster: physical origin (dots) and rows drawn so far.
    raster: Option<(i64, i64, usize)>,
    seed: Vec<u8>,
    page: Option<Bitmap>,
    page_dpi: u32,
}

impl State {
    fn reset() -> State {
        State {
            units_per_inch: 300,
            dpi: 75,
            paper: 2,
            copies: 1,
            top_margin: 0.5,
            cursor: (0, 0),
            mode: 0,
            raster_width: None,
            raster: None,
            seed: Vec::new(),
            page: None,
            page_dpi: 0,
        }
    }

    fn units_to_dots(&self, units: i64) -> Result<i64, String> {
        let n = units * i64::from(self.dpi);
        if n % i64::from(self.units_per_inch) != 0 {
            return Err(format!(
                "{units} units at {} upi is not a whole dot",
                self.units_per_inch
            ));
        }
        Ok(n / i64::from(self.units_per_inch))
    }

    /// Paper size in dots at the raster resolution (whole dots, rounded down).
    fn paper_dots(&self) -> Result<(i64, i64), String> {
        let (w, h) = paper_inches(self.paper)?;
        let d = f64::from(self.dpi);
        Ok(((w * d).floor() as i64, (h * d).floor() as i64))
    }

    fn eject(&mut self, out: &mut Decoded) -> Result<(), String> {
        let bitmap = match self.page.take() {
            Some(b) => b,
            None => {
                let (w, h) = self.paper_dots()?;
                Bitmap::new(w as u32, h as u32)
            }
        };
        out.sheets.push(Sheet {
            paper: self.paper,
            dpi: if self.page_dpi != 0 {
                self.page_dpi
            } else {
                self.dpi
            },
            copies: self.copies,
            bitmap,
        });
        self.page_dpi = 0;
        Ok(())
    }

    /// Paints one decoded row at the raster's current line.
    fn paint(&mut self, row: &[u8]) -> Result<(), String> {
        let (x0, y0, line) = self.raster.ok_or("row data outside raster graphics")?;
        let (pw, ph) = self.paper_dots()?;
        let quarter = i64::from(self.dpi) / 4;
        if self.page.is_none() {
            self.page = Some(Bitmap::new(pw as u32, ph as u32));
            self.page_dpi = self.dpi;
        }
        if self.page_dpi != self.dpi {
            return Err("resolution changed within a page".into());
        }
        let width = self.raster_width.ok_or("raster width not set")? as usize;
        let page = self.page.as_mut().unwrap();
        for col in 0..width {
            if row[col / 8] & (0x80 >> (col % 8)) == 0 {
                continue;
            }
            let (x, y) = (x0 + col as i64, y0 + line as i64);
            if x < quarter || x >= pw - quarter || y < 0 || y >= ph {
                return Err(format!("black dot at ({x}, {y}) is off the logical page"));
            }
            page.set(x as u32, y as u32, true);
        }
        Ok(())
    }
}

/// A PackBits decoder (TIFF 6.0 §9), written for the test.
fn unpack(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let n = data[i] as i8;
        i += 1;
        if n == -128 {
            continue;
        }
        if n >= 0 {
            let len = n as usize + 1;
            out.extend_from_slice(data.get(i..i + len).ok_or("packbits literal cut")?);
            i += len;
        } else {
            let b = *data.get(i).ok_or("packbits run cut")?;
            out.extend(std::iter::repeat_n(b, (1 - n as i32) as usize));
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes a whole job.
fn decode(stream: &[u8]) -> Result<Decoded, String> {
    let mut out = Decoded::default();
    let mut st = State::reset();
    let mut pos = 0;
    let mut pjl_mode = false;
    if !stream.starts_with(b"\x1b%-12345X") {
        return Err("stream does not start with a UEL".into());
    }
    while pos < stream.len() {
        if pjl_mode {
            // Lines until ENTER LANGUAGE, or a UEL, or the end.
            if stream[pos..].starts_with(b"\x1b%-12345X") {
                out.uels += 1;
                pos += 9;
                continue;
            }
            let end = stream[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("pjl line without LF")?;
            let line = std::str::from_utf8(&stream[pos..pos + end])
                .map_err(|_| "pjl line is not text")?
                .trim_end_matches('\r')
                .to_string();
            pos += end + 1;
            if !line.starts_with("@PJL") {
                return Err(format!("not a pjl line: {line:?}"));
            }
            let enter = line.starts_with("@PJL ENTER LANGUAGE=PCL");
            out.pjl.push(line);
            if enter {
                pjl_mode = false;
            }
            continue;
        }
        match stream[pos] {
            FF => {
                st.eject(&mut out)?;
                pos += 1;
            }
            ESC => {
                pos += 1;
                let b = *stream.get(pos).ok_or("ESC at end")?;
                pos += 1;
                if (0x21..=0x2f).contains(&b) {
                    let group = match stream.get(pos) {
                        Some(&g) if (0x60..=0x7e).contains(&g) => {
                            pos += 1;
                            Some(g)
                        }
                        _ => None,
                    };
                    loop {
                        let start = pos;
                        while pos < stream.len()
                            && (stream[pos].is_ascii_digit()
                                || matches!(stream[pos], b'+' | b'-' | b'.'))
                        {
                            pos += 1;
                        }
                        let text = std::str::from_utf8(&stream[start..pos]).unwrap();
                        let relative = text.starts_with('+') || text.starts_with('-');
                        let value: i64 = if text.is_empty() {
                            0
                        } else {
                            text.parse().map_err(|_| format!("bad value {text:?}"))?
                        };
                        let c = *stream.get(pos).ok_or("escape cut short")?;
                        pos += 1;
                        let last = (0x40..=0x5e).contains(&c);
                        if !last && !(0x60..=0x7e).contains(&c) {
                            return Err(format!("bad escape parameter byte {c:#x}"));
                        }
                        let param = c.to_ascii_uppercase();
                        if (b, group, param) == (b'%', None, b'X') && value == -12345 {
                            out.uels += 1;
                            pjl_mode = true;
                            break;
                        }
                        // Data-bearing: ESC*b#W, then # bytes.
                        let data = if (b, group, param) == (b'*', Some(b'b'), b'W') {
                            let n = value as usize;
                            let d = stream.get(pos..pos + n).ok_or("row data cut short")?;
                            pos += n;
                            Some(d)
                        } else {
                            None
                        };
                        execute(&mut st, &mut out, b, group, param, value, relative, data)?;
                        if last {
                            break;
                        }
                    }
                } else if (0x30..=0x7e).contains(&b) {
                    match b {
                        b'E' => {
                            if st.page.is_some() {
                                st.eject(&mut out)?;
                            }
                            st = State::reset();
                        }
                        other => return Err(format!("two-character escape {other:#x}")),
                    }
                } else {
                    return Err(format!("bad byte after ESC: {b:#x}"));
                }
            }
            other => return Err(format!("stray byte {other:#x} at {pos} (no text expected)")),
        }
    }
    if !pjl_mode {
        return Err("stream does not end in PJL".into());
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn execute(
    st: &mut State,
    out: &mut Decoded,
    family: u8,
    group: Option<u8>,
    param: u8,
    value: i64,
    relative: bool,
    data: Option<&[u8]>,
) -> Result<(), String> {
    let g = group.map(char::from).unwrap_or(' ');
    match (family, g, param) {
        (b'&', 'l', b'A') => {
            if st.page.is_some() {
                st.eject(out)?;
            }
            st.paper = value as u32;
            paper_inches(st.paper)?;
            st.top_margin = 0.5;
            st.cursor = (0, 0);
        }
        (b'&', 'l', b'O') => {
            if value != 0 {
                return Err("only portrait is modelled".into());
            }
            st.top_margin = 0.5;
        }
        // Top margin in lines at the default 6 lines per inch.
        (b'&', 'l', b'E') => st.top_margin = value as f64 / 6.0,
        (b'&', 'l', b'X') => st.copies = value as u32,
        (b'&', 'u', b'D') => st.units_per_inch = value as u32,
        (b'*', 't', b'R') => {
            if ![75, 100, 150, 200, 300, 600].contains(&value) {
                return Err(format!("raster resolution {value}"));
            }
            st.dpi = value as u32;
        }
        (b'*', 'p', b'X') => st.cursor.0 = if relative { st.cursor.0 + value } else { value },
        (b'*', 'p', b'Y') => st.cursor.1 = if relative { st.cursor.1 + value } else { value },
        (b'*', 'r', b'S') => st.raster_width = Some(value as u32),
        (b'*', 'r', b'A') => {
            let quarter = i64::from(st.dpi) / 4;
            let x = if value == 1 {
                st.units_to_dots(st.cursor.0)?
            } else {
                0
            };
            let y = st.units_to_dots(st.cursor.1)? + (st.top_margin * f64::from(st.dpi)) as i64;
            st.raster = Some((quarter + x, y, 0));
            let width = st.raster_width.ok_or("raster started without width")?;
            st.seed = vec![0; (width as usize).div_ceil(8)];
        }
        (b'*', 'r', b'C') => {
            st.raster = None;
            st.mode = 0;
        }
        (b'*', 'b', b'M') => {
            if ![0, 2, 3].contains(&value) {
                return Err(format!("compression mode {value} not modelled"));
            }
            st.mode = value as u32;
        }
        (b'*', 'b', b'Y') => {
            let (x, y, line) = st.raster.ok_or("Y offset outside raster")?;
            st.raster = Some((x, y, line + value as usize));
            st.seed.fill(0);
            out.y_skipped += value as usize;
        }
        (b'*', 'b', b'W') => {
            let data = data.unwrap_or(&[]);
            let n = st.seed.len();
            let row = match st.mode {
                0 | 2 => {
                    let bytes = if st.mode == 0 {
                        data.to_vec()
                    } else {
                        unpack(data)?
                    };
                    if bytes.len() > n && bytes[n..].iter().any(|&b| b != 0) {
                        return Err("row longer than the raster width".into());
                    }
                    let mut row = vec![0; n];
                    let k = bytes.len().min(n);
                    row[..k].copy_from_slice(&bytes[..k]);
                    row
                }
                3 => {
                    let mut row = st.seed.clone();
                    let mut at = 0usize;
                    let mut i = 0;
                    while i < data.len() {
                        let cmd = data[i];
                        i += 1;
                        let count = usize::from(cmd >> 5) + 1;
                        let mut offset = usize::from(cmd & 0x1f);
                        if offset == 31 {
                            loop {
                                let b = *data.get(i).ok_or("delta offset cut short")?;
                                i += 1;
                                offset += usize::from(b);
                                if b != 255 {
                                    break;
                                }
                            }
                        }
                        out.delta_offsets.push(offset);
                        at += offset;
                        let bytes = data.get(i..i + count).ok_or("delta bytes cut short")?;
                        i += count;
                        for &b in bytes {
                            if at >= n {
                                return Err("delta past the raster width".into());
                            }
                            row[at] = b;
                            at += 1;
                        }
                    }
                    row
                }
                m => return Err(format!("mode {m}")),
            };
            let line = st.raster.map(|r| r.2).ok_or("row outside raster")?;
            out.rows_by_mode[st.mode as usize] += 1;
            out.row_modes.push((line, st.mode));
            st.paint(&row)?;
            st.seed = row;
            if let Some(r) = st.raster.as_mut() {
                r.2 += 1;
            }
        }
        (f, g, p) => return Err(format!("unmodelled escape {}{}{}", f as char, g, p as char)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Pages to print.
// ---------------------------------------------------------------------------

fn profile(dpi: u32) -> labeld_drivers::Profile {
    models::find(&format!("pcl-{dpi}")).unwrap().profile()
}

fn encode(pages: &[Page], dpi: u32) -> Vec<u8> {
    encode_job(&mut Pcl::new(&profile(dpi)), pages).unwrap()
}

/// Sheet size in whole dots (rounded down, as the decoder models it).
fn sheet_dots(paper: u32, dpi: u32) -> (u32, u32) {
    let (w, h) = paper_inches(paper).unwrap();
    (
        (w * f64::from(dpi)).floor() as u32,
        (h * f64::from(dpi)).floor() as u32,
    )
}

/// A deterministic xorshift.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// Something like a line of 10-point text: glyph cells of vertical and
/// horizontal strokes (`cell` dots tall), `chars` long, from (x, y).
fn text_line(b: &mut Bitmap, rng: &mut Rng, x: u32, y: u32, chars: u32, cell: u32) {
    let stroke = (cell / 10).max(1);
    let advance = cell * 6 / 10;
    for i in 0..chars {
        let cx = x + i * advance;
        if rng.below(7) == 0 {
            continue; // a space
        }
        let w = advance - stroke - 1;
        for _ in 0..2 + rng.below(2) {
            match rng.below(3) {
                0 => b.fill_rect(cx + rng.below(w), y + cell / 4, stroke, cell * 3 / 4),
                1 => b.fill_rect(cx, y + cell / 4 + rng.below(cell * 3 / 4), w, stroke),
                _ => b.fill_rect(cx + rng.below(w), y, stroke, cell),
            }
        }
    }
}

/// An IMb-like 65-bar code from (x, y): bars 0.02 in wide at about 22 bars per
/// inch, full / ascender / descender / tracker heights (`imb-facts.md` ranges).
fn imb_like(b: &mut Bitmap, rng: &mut Rng, x: u32, y: u32, dpi: u32) {
    let (width, pitch) = (dpi / 50, dpi * 10 / 218);
    let full = dpi * 145 / 1000;
    let tracker = dpi * 50 / 1000;
    let third = (full - tracker) / 2;
    for i in 0..65 {
        let bx = x + i * pitch;
        match rng.below(4) {
            0 => b.fill_rect(bx, y, width, full),
            1 => b.fill_rect(bx, y, width, third + tracker),
            2 => b.fill_rect(bx, y + third, width, third + tracker),
            _ => b.fill_rect(bx, y + third, width, tracker),
        }
    }
}

/// A US letter sheet of ten 4 × 2 in address labels (two columns of five, ½ in
/// top margin, 0.16 in sides, 3/16 in gutter, like Avery 5163): each has a
/// return-address line, a four-line address block and an IMb.
fn ten_label_sheet(dpi: u32, seed: u32) -> Page {
    let (w, h) = sheet_dots(2, dpi);
    let mut b = Bitmap::new(w, h);
    let mut rng = Rng(seed | 1);
    let d = |inches: f64| (inches * f64::from(dpi)).round() as u32;
    for row in 0..5 {
        for col in 0..2 {
            let left = d(0.16 + 4.1875 * f64::from(col)) + d(0.2);
            let top = d(0.5 + 2.0 * f64::from(row)) + d(0.15);
            text_line(&mut b, &mut rng, left, top, 30, d(0.09));
            for line in 0..4 {
                let y = top + d(0.45) + line * d(0.18);
                let chars = 24 + rng.below(10);
                text_line(&mut b, &mut rng, left + d(0.3), y, chars, d(0.14));
            }
            imb_like(&mut b, &mut rng, left + d(0.3), top + d(1.25), dpi);
        }
    }
    Page::raster(b, Resolution::square(f64::from(dpi)))
}

/// A #10 envelope laid out landscape (9.5 × 4.125 in): return address top left,
/// address block with IMb in the middle.
fn envelope_landscape(dpi: u32, seed: u32) -> Page {
    let (short, long) = sheet_dots(81, dpi);
    let mut b = Bitmap::new(long, short);
    let mut rng = Rng(seed | 1);
    let d = |inches: f64| (inches * f64::from(dpi)).round() as u32;
    for line in 0..3 {
        text_line(
            &mut b,
            &mut rng,
            d(0.4),
            d(0.4) + line * d(0.15),
            26,
            d(0.11),
        );
    }
    imb_like(&mut b, &mut rng, d(4.0), d(1.8), dpi);
    for line in 0..4 {
        text_line(
            &mut b,
            &mut rng,
            d(4.0),
            d(2.1) + line * d(0.2),
            28,
            d(0.15),
        );
    }
    Page::raster(b, Resolution::square(f64::from(dpi)))
}

/// The test's own 90° counter-clockwise turn: (x, y) → (y, W − 1 − x).
fn turn_ccw(src: &Bitmap) -> Bitmap {
    let mut out = Bitmap::new(src.height(), src.width());
    for y in 0..src.height() {
        for x in 0..src.width() {
            if src.get(x, y) {
                out.set(y, src.width() - 1 - x, true);
            }
        }
    }
    out
}

/// `got` equals `want` everywhere (outside a bitmap counts as white).
fn assert_same(got: &Bitmap, want: &Bitmap, what: &str) {
    if got == want {
        return;
    }
    let (w, h) = (
        got.width().max(want.width()),
        got.height().max(want.height()),
    );
    let mut wrong = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if got.get(x, y) != want.get(x, y) {
                wrong.push((x, y));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} dots differ, first {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn letter_sheet_of_ten_labels_decodes_exactly_at_300_and_600() {
    for dpi in [300, 600] {
        let page = ten_label_sheet(dpi, 42);
        let bytes = encode(std::slice::from_ref(&page), dpi);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.sheets.len(), 1);
        assert_eq!((d.sheets[0].paper, d.sheets[0].dpi), (2, dpi));
        assert_same(&d.sheets[0].bitmap, &page.bitmap, &format!("letter {dpi}"));
        let raw = page.bitmap.as_bytes().len();
        println!(
            "letter, 10 labels, {dpi} dpi: raw {raw} bytes, sent {} bytes ({:.1}%); rows: \
             mode 0 {}, mode 2 {}, mode 3 {}, Y-skipped {}",
            bytes.len(),
            100.0 * bytes.len() as f64 / raw as f64,
            d.rows_by_mode[0],
            d.rows_by_mode[2],
            d.rows_by_mode[3],
            d.y_skipped
        );
        assert!(bytes.len() < raw / 10, "compresses at least 10x");
        assert!(d.rows_by_mode[3] > 0 && d.rows_by_mode[2] > 0);
    }
}

#[test]
fn pjl_wrapper_and_job_framing() {
    let mut p = profile(300);
    p.copies = 3;
    let pages = [ten_label_sheet(300, 1), ten_label_sheet(300, 2)];
    let bytes = encode_job(&mut Pcl::new(&p), &pages).unwrap();
    assert!(bytes.starts_with(
        b"\x1b%-12345X@PJL\r\n@PJL JOB NAME=\"labeld\"\r\n@PJL ENTER LANGUAGE=PCL\r\n\x1bE"
    ));
    assert!(bytes.ends_with(b"\x0c\x1bE\x1b%-12345X@PJL EOJ NAME=\"labeld\"\r\n\x1b%-12345X"));
    let d = decode(&bytes).unwrap();
    assert_eq!(
        d.pjl,
        [
            "@PJL",
            "@PJL JOB NAME=\"labeld\"",
            "@PJL ENTER LANGUAGE=PCL",
            "@PJL EOJ NAME=\"labeld\""
        ]
    );
    assert_eq!(d.uels, 3);
    assert_eq!(d.sheets.len(), 2);
    for (s, p) in d.sheets.iter().zip(&pages) {
        assert_eq!(s.copies, 3);
        assert_same(&s.bitmap, &p.bitmap, "copies job");
    }
}

#[test]
fn envelopes_portrait_and_landscape_at_300_and_600() {
    for dpi in [300, 600] {
        let landscape = envelope_landscape(dpi, 5);
        let portrait = Page::raster(turn_ccw(&landscape.bitmap), landscape.resolution);
        let d = decode(&encode(&[landscape.clone(), portrait.clone()], dpi)).unwrap();
        assert_eq!(d.sheets.len(), 2);
        for s in &d.sheets {
            assert_eq!((s.paper, s.dpi), (81, dpi));
            assert_same(&s.bitmap, &portrait.bitmap, &format!("com-10 {dpi}"));
        }
    }
}

#[test]
fn offsets_on_a_landscape_page_follow_the_label() {
    // +5 right and +7 down as the label reads, on a 9.5 x 4.125 in envelope.
    let page = envelope_landscape(300, 3);
    let mut p = profile(300);
    p.offset_x = 5;
    p.offset_y = 7;
    let bytes = encode_job(&mut Pcl::new(&p), std::slice::from_ref(&page)).unwrap();
    let mut shifted = Bitmap::new(page.width(), page.height());
    for y in 0..page.height() {
        for x in 0..page.width() {
            if page.bitmap.get(x, y) {
                shifted.set(x + 5, y + 7, true);
            }
        }
    }
    let d = decode(&bytes).unwrap();
    assert_same(
        &d.sheets[0].bitmap,
        &turn_ccw(&shifted),
        "landscape offsets",
    );
}

#[test]
fn envelope_width_rounded_up_is_accepted() {
    // 4.125 in at 300 dpi is 1237.5 dots; a renderer that rounds makes 1238.
    let mut b = Bitmap::new(1238, 2850);
    b.fill_rect(100, 100, 900, 50);
    b.set(1161, 2849, true);
    let page = Page::raster(b, Resolution::square(300.0));
    let d = decode(&encode(std::slice::from_ref(&page), 300)).unwrap();
    assert_eq!(d.sheets[0].paper, 81);
    assert_same(&d.sheets[0].bitmap, &page.bitmap, "1238 wide");
}

#[test]
fn multi_page_mixed_sizes() {
    let pages = [
        ten_label_sheet(600, 7),
        envelope_landscape(600, 8),
        Page::raster(Bitmap::new(5100, 6600), Resolution::square(600.0)), // blank sheet
        ten_label_sheet(600, 9),
    ];
    let d = decode(&encode(&pages, 600)).unwrap();
    assert_eq!(d.sheets.len(), 4);
    let papers: Vec<u32> = d.sheets.iter().map(|s| s.paper).collect();
    assert_eq!(papers, [2, 81, 2, 2]);
    assert_same(&d.sheets[0].bitmap, &pages[0].bitmap, "page 1");
    assert_same(&d.sheets[1].bitmap, &turn_ccw(&pages[1].bitmap), "page 2");
    assert_eq!(d.sheets[2].bitmap.count_black(), 0, "page 3 blank");
    assert_same(&d.sheets[3].bitmap, &pages[3].bitmap, "page 4");
}

#[test]
fn modes_follow_the_rows() {
    // 300 dpi letter. Content from x = 300 (1 in), so sent bytes are aligned.
    let mut b = Bitmap::new(2550, 3300);
    let mut rng = Rng(99);
    let y0 = 600;
    // Row 0: noise, incompressible → mode 0.
    for x in 300..2200 {
        b.set(x, y0, rng.below(2) == 1);
    }
    // Rows 1-3: long runs → mode 2.
    for r in 1..4 {
        b.fill_rect(300, y0 + r, 1500 + 10 * r, 1);
    }
    // Rows 4-20: a vertical-stroke pattern, each row one byte different from the
    // previous → mode 3.
    for r in 4..21 {
        for x in (300..2200).step_by(40) {
            b.fill_rect(x, y0 + r, 6, 1);
        }
        b.fill_rect(300 + 8 * r * 10, y0 + r, 8, 1);
    }
    // Rows 21-30 blank, then an identical pair.
    b.fill_rect(400, y0 + 31, 1000, 1);
    b.fill_rect(400, y0 + 32, 1000, 1);
    let page = Page::raster(b, Resolution::square(300.0));
    let d = decode(&encode(std::slice::from_ref(&page), 300)).unwrap();
    assert_same(&d.sheets[0].bitmap, &page.bitmap, "modes page");
    let mode_of = |line: usize| d.row_modes.iter().find(|(l, _)| *l == line).map(|m| m.1);
    assert_eq!(mode_of(0), Some(0), "noise row unencoded");
    for r in 1..4 {
        assert_eq!(mode_of(r), Some(2), "run row {r} packbits");
    }
    for r in 5..21 {
        assert_eq!(mode_of(r), Some(3), "similar row {r} delta");
    }
    assert_eq!(d.y_skipped, 10, "blank rows 21-30 are one Y offset");
    assert_eq!(mode_of(31), Some(2), "no delta right after a Y offset");
    assert_eq!(mode_of(32), Some(3), "identical row: delta with no data");
}

#[test]
fn delta_row_extended_offsets_round_trip() {
    // 600 dpi: 5100-dot rows. One wide baseline row, then rows changing a single
    // byte at growing offsets: 0, 30, 31, 32, 285, 286, 287, 540, 590.
    let mut b = Bitmap::new(5100, 6600);
    let x0 = 163; // not on a byte boundary of the bitmap: rows are re-aligned
    let y0 = 1000;
    for x in (x0..4900).step_by(3) {
        b.set(x, y0, true);
    }
    let offsets = [0u32, 30, 31, 32, 285, 286, 287, 540, 590];
    for (i, &k) in offsets.iter().enumerate() {
        let y = y0 + 1 + i as u32;
        for x in (x0..4900).step_by(3) {
            b.set(x, y, true);
        }
        // Invert one sent byte: bits 8k..8k+8 from the first sent column.
        for x in x0 + 8 * k..x0 + 8 * k + 8 {
            b.set(x, y, !b.get(x, y));
        }
    }
    let page = Page::raster(b, Resolution::square(600.0));
    let d = decode(&encode(std::slice::from_ref(&page), 600)).unwrap();
    assert_same(&d.sheets[0].bitmap, &page.bitmap, "extended offsets");
    // Each row restores the previous row's byte and changes its own, so the
    // offsets include 31 (31 + an extra 0), 286 (31 + 255 + 0) and 540
    // (31 + 255 + 254).
    for want in [31, 286, 540] {
        assert!(
            d.delta_offsets.contains(&want),
            "offset {want} decoded; got {:?}",
            d.delta_offsets
        );
    }
}

#[test]
fn offsets_move_the_label_and_the_quarter_inch_is_compensated() {
    let mut b = Bitmap::new(2550, 3300);
    b.fill_rect(75, 0, 10, 10); // exactly at PCL's X = 0, top edge
    b.fill_rect(2464, 3290, 10, 10); // last column before the right ¼ in
    b.fill_rect(1000, 1000, 333, 77);
    let page = Page::raster(b.clone(), Resolution::square(300.0));
    let d = decode(&encode(std::slice::from_ref(&page), 300)).unwrap();
    assert_same(&d.sheets[0].bitmap, &b, "edges");

    // offset_x = +9, offset_y = +4 after making room.
    let mut b = Bitmap::new(2550, 3300);
    b.fill_rect(80, 0, 3, 3);
    b.fill_rect(2000, 3000, 100, 5);
    let mut p = profile(300);
    p.offset_x = 9;
    p.offset_y = 4;
    let bytes = encode_job(
        &mut Pcl::new(&p),
        &[Page::raster(b.clone(), Resolution::square(300.0))],
    )
    .unwrap();
    let got = decode(&bytes).unwrap();
    let mut want = Bitmap::new(2550, 3300);
    want.fill_rect(89, 4, 3, 3);
    want.fill_rect(2009, 3004, 100, 5);
    assert_same(&got.sheets[0].bitmap, &want, "shifted");

    // Negative offsets move content left/up.
    let mut p = profile(300);
    p.offset_x = -20;
    p.offset_y = -30;
    let mut b = Bitmap::new(2550, 3300);
    b.fill_rect(100, 40, 50, 5);
    let bytes = encode_job(
        &mut Pcl::new(&p),
        &[Page::raster(b, Resolution::square(300.0))],
    )
    .unwrap();
    let mut want = Bitmap::new(2550, 3300);
    want.fill_rect(80, 10, 50, 5);
    assert_same(&decode(&bytes).unwrap().sheets[0].bitmap, &want, "negative");
}

#[test]
fn ink_pcl_cannot_reach_is_refused() {
    let err = |b: Bitmap, dx: i32, dy: i32| {
        let mut p = profile(300);
        p.offset_x = dx;
        p.offset_y = dy;
        encode_job(
            &mut Pcl::new(&p),
            &[Page::raster(b, Resolution::square(300.0))],
        )
        .unwrap_err()
    };
    let mut left = Bitmap::new(2550, 3300);
    left.set(74, 500, true);
    let e = err(left.clone(), 0, 0);
    assert!(
        matches!(&e, DriverError::Unsupported(m) if m.contains("left of PCL's X = 0")),
        "{e}"
    );
    // One dot further right it prints.
    left.set(74, 500, false);
    left.set(75, 500, true);
    assert!(encode_job(
        &mut Pcl::new(&profile(300)),
        &[Page::raster(left, Resolution::square(300.0))]
    )
    .is_ok());
    let mut right = Bitmap::new(2550, 3300);
    right.set(2475, 500, true);
    assert!(err(right, 0, 0).to_string().contains("right ¼ in"));
    let mut bottom = Bitmap::new(2550, 3300);
    bottom.set(1000, 3299, true);
    assert!(err(bottom.clone(), 0, 1).to_string().contains("below"));
    let mut up = profile(300);
    up.offset_y = -1;
    assert!(encode_job(
        &mut Pcl::new(&up),
        &[Page::raster(bottom, Resolution::square(300.0))]
    )
    .is_ok());
}

#[test]
fn refusals() {
    let ok_bitmap = || Bitmap::new(2550, 3300);
    let mut pcl = Pcl::new(&profile(300));
    let mut out = Vec::new();
    // 4 x 6 in: no PCL paper.
    let e = pcl
        .write_page(
            &Page::raster(Bitmap::new(1200, 1800), Resolution::square(300.0)),
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "pcl: page is 4.000 x 6.000 in; PCL pages here are US letter (8.5 x 11 in) or a #10 \
         envelope (4.125 x 9.5 in), either way round (lay labels out on a whole sheet)"
    );
    // 203.2 dpi.
    let e = pcl
        .write_page(
            &Page::raster(Bitmap::new(1727, 2235), Resolution::square(203.2)),
            &mut out,
        )
        .unwrap_err();
    assert!(e.to_string().contains("300 or 600 dpi"), "{e}");
    // Empty.
    assert_eq!(
        pcl.write_page(
            &Page::raster(Bitmap::new(0, 0), Resolution::square(300.0)),
            &mut out
        ),
        Err(DriverError::EmptyPage {
            width: 0,
            height: 0
        })
    );
    // Native elements.
    let mut page = Page::raster(ok_bitmap(), Resolution::square(300.0));
    page.native.push(NativeElement::Text(NativeText {
        x: 100,
        y: 100,
        width: 500,
        height: 40,
        line_pitch: 45,
        lines: vec!["JOHN DOE".into()],
        rotation: Rotation::None,
    }));
    assert!(matches!(
        pcl.write_page(&page, &mut out),
        Err(DriverError::NativeUnsupported { element: "text" })
    ));
    assert!(out.is_empty(), "refused pages write nothing");
    // 7-bit link.
    let mut p = profile(300);
    p.ascii_only = true;
    assert!(matches!(
        Pcl::new(&p).start_job(&mut out),
        Err(DriverError::BinaryOnAsciiLink { language: "pcl" })
    ));
    assert!(!Pcl::new(&p).capabilities().ascii_capable);
}

#[test]
fn status_query_is_pjl_info_status() {
    let pcl = Pcl::new(&profile(600));
    assert_eq!(
        pcl.query_status(),
        Some(&b"\x1b%-12345X@PJL\r\n@PJL INFO STATUS\r\n\x1b%-12345X"[..])
    );
    let s = pcl
        .parse_status(b"@PJL INFO STATUS\r\nCODE=41302\r\nDISPLAY=\"LOAD TRAY 3 LETTER\"\r\nONLINE=FALSE\r\n\x0c")
        .unwrap();
    assert!(s.conditions.contains(labeld_drivers::Condition::MediaOut));
}

// ---------------------------------------------------------------------------
// Random pages.
// ---------------------------------------------------------------------------

/// How a random row relates to the one above it.
#[derive(Clone, Debug)]
enum RowKind {
    Noise(u32),
    Repeat,
    Mutate(u32, u32),
    Run(u32, u32),
    Blank,
}

fn row_kind() -> impl Strategy<Value = RowKind> {
    prop_oneof![
        any::<u32>().prop_map(RowKind::Noise),
        Just(RowKind::Repeat),
        (any::<u32>(), 1u32..6).prop_map(|(s, n)| RowKind::Mutate(s, n)),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| RowKind::Run(a, b)),
        Just(RowKind::Blank),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_pages_decode_exactly(
        dpi in prop_oneof![Just(300u32), Just(600u32)],
        envelope in any::<bool>(),
        landscape in any::<bool>(),
        fx in 0.0f64..1.0,
        fy in 0.0f64..1.0,
        w in 1u32..400,
        rows in prop::collection::vec(row_kind(), 1..80),
    ) {
        let (pw, ph) = sheet_dots(if envelope { 81 } else { 2 }, dpi);
        let q = dpi / 4;
        // The printable window of the portrait sheet, then the page's own frame.
        let (lw, lh) = if landscape { (ph, pw) } else { (pw, ph) };
        let mut b = Bitmap::new(lw, lh);
        let (win_w, win_h) = if landscape { (lw, lh - 2 * q) } else { (lw - 2 * q, lh) };
        let w = w.min(win_w);
        let h = (rows.len() as u32).min(win_h);
        let x0 = if landscape { 0 } else { q } + ((win_w - w) as f64 * fx) as u32;
        let y0 = if landscape { q } else { 0 } + ((win_h - h) as f64 * fy) as u32;
        let mut prev = vec![false; w as usize];
        for (r, kind) in rows.iter().take(h as usize).enumerate() {
            let mut row = prev.clone();
            match *kind {
                RowKind::Noise(s) => {
                    let mut g = Rng(s | 1);
                    row.iter_mut().for_each(|d| *d = g.below(2) == 1);
                }
                RowKind::Repeat => {}
                RowKind::Mutate(s, n) => {
                    let mut g = Rng(s | 1);
                    for _ in 0..n {
                        let i = g.below(w) as usize;
                        row[i] = !row[i];
                    }
                }
                RowKind::Run(a, c) => {
                    let (s, e) = (a % w, c % w);
                    row.iter_mut().for_each(|d| *d = false);
                    row[s.min(e) as usize..=s.max(e) as usize].iter_mut().for_each(|d| *d = true);
                }
                RowKind::Blank => row.iter_mut().for_each(|d| *d = false),
            }
            for (i, &black) in row.iter().enumerate() {
                b.set(x0 + i as u32, y0 + r as u32, black);
            }
            prev = row;
        }
        let page = Page::raster(b, Resolution::square(f64::from(dpi)));
        let d = decode(&encode(std::slice::from_ref(&page), dpi)).unwrap();
        prop_assert_eq!(d.sheets.len(), 1);
        let want = if landscape { turn_ccw(&page.bitmap) } else { page.bitmap.clone() };
        assert_same(&d.sheets[0].bitmap, &want, "random page");
    }
}
