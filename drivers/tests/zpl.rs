//! The ZPL driver's output decoded back, two independent ways:
//!
//! 1. the `zpl` crate 0.3.2 (codyps/zpl, OSL-3.0, a dev-dependency only), which renders a
//!    whole label to pixels (`printer-langs.md` §6: it decoded every `^GF` encoding exactly);
//! 2. a `^GF` decoder written here from the ZPL guide's description of `^GF`, the
//!    "Alternative Data Compression Scheme" and the B64/Z64 envelope, not from the driver.
//!
//! Printer settings the `zpl` crate does not model (`~JX`, `~SD`, `^MN`, `^MD`, `^PR`,
//! `^PQ`: it rejects unknown commands) are removed before it renders.

use labeld_drivers::lang::zpl::{GraphicEncoding, Zpl};
use labeld_drivers::{
    models, Bitmap, Condition, Conditions, Driver, DriverError, MediaKind, NativeCode128,
    NativeElement, NativeImb, NativeText, Page, Profile, Rotation, StatusParseError,
};
use proptest::prelude::*;
use std::io::Read as _;

const ENCODINGS: [GraphicEncoding; 5] = [
    GraphicEncoding::Hex,
    GraphicEncoding::RunLength,
    GraphicEncoding::Z64,
    GraphicEncoding::B64,
    GraphicEncoding::Auto,
];

/// The three Zebra resolutions, as (model id, dpi the `zpl` crate takes).
const MODELS: [(&str, u32); 3] = [("zpl-203", 203), ("zpl-300", 300), ("zpl-600", 600)];

fn profile(model: &str) -> Profile {
    models::find(model).expect("model in the table").profile()
}

fn page_for(profile: &Profile, bitmap: Bitmap) -> Page {
    Page::raster(bitmap, profile.resolution)
}

fn write(profile: &Profile, encoding: GraphicEncoding, page: &Page) -> Vec<u8> {
    let mut zpl = Zpl::new(profile).with_encoding(encoding);
    let mut out = Vec::new();
    zpl.write_page(page, &mut out).expect("page accepted");
    out
}

// ---------------------------------------------------------------------------------------
// Test bitmaps
// ---------------------------------------------------------------------------------------

/// xorshift64*: a small deterministic generator for test pictures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn noise(width: u32, height: u32, percent: u64, seed: u64) -> Bitmap {
    let mut rng = Rng(seed | 1);
    let mut b = Bitmap::new(width, height);
    for y in 0..height {
        for x in 0..width {
            b.set(x, y, rng.chance(percent));
        }
    }
    b
}

fn vertical_stripes(width: u32, height: u32) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    for x in (0..width).step_by(3) {
        b.fill_rect(x, 0, 1, height);
    }
    b
}

/// Full black rows, blank rows, repeated rows and single dots in the corners.
fn rows_pattern(width: u32, height: u32) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    for y in 0..height {
        match y % 10 {
            0 | 1 => b.fill_rect(0, y, width, 1),
            2..=4 => {}
            5..=7 => b.fill_rect(width / 3, y, width / 3, 1),
            _ => b.fill_rect(width - 1, y, 1, 1),
        }
    }
    b.set(0, height - 1, true);
    b.set(width - 1, height - 1, true);
    b
}

/// Something like a shipping label: a border, rules, an address block of glyph-like
/// blocks, a Code 128 bar pattern, a 65-bar IMb-like pattern and a filled box, drawn at
/// `dpi` for a `w_in` × `h_in` inch label.
fn label(dpi: f64, w_in: f64, h_in: f64) -> Bitmap {
    let d = |inches: f64| (inches * dpi).round() as u32;
    let (w, h) = (d(w_in), d(h_in));
    let mut b = Bitmap::new(w, h);
    let t = d(0.015).max(1);
    // Border and two rules.
    b.fill_rect(0, 0, w, t);
    b.fill_rect(0, h.saturating_sub(t), w, t);
    b.fill_rect(0, 0, t, h);
    b.fill_rect(w.saturating_sub(t), 0, t, h);
    b.fill_rect(0, d(1.0), w, t);
    b.fill_rect(0, h.saturating_sub(d(1.2)), w, t);
    // Return address (small glyphs) and recipient block (larger glyphs).
    let mut rng = Rng(0x5EED);
    let mut text = |x0: u32, y0: u32, lines: u32, chars: u32, size: f64| {
        let cell = d(size);
        let dot = (cell / 7).max(1);
        for line in 0..lines {
            for c in 0..chars {
                if rng.chance(15) {
                    continue; // a space
                }
                let (cx, cy) = (x0 + c * (cell * 5 / 7 + dot), y0 + line * (cell + cell / 3));
                for gy in 0..7 {
                    for gx in 0..5 {
                        if rng.chance(45) {
                            b.fill_rect(cx + gx * dot, cy + gy * dot, dot, dot);
                        }
                    }
                }
            }
        }
    };
    text(d(0.15), d(0.15), 3, 24, 0.08);
    text(d(0.6), d(1.3), 4, 22, 0.14);
    // Code 128 pattern (the tray barcode's 167 modules) at 3 dots or its dpi equivalent.
    let module = d(0.015).max(1);
    let mut x = d(0.3);
    for m in TRAY_MODULES.bytes() {
        if m == b'1' {
            b.fill_rect(x, h.saturating_sub(d(1.1)), module, d(0.6));
        }
        x += module;
    }
    // IMb-like bars: full, ascender, descender, tracker.
    let (bar, pitch, full) = (d(0.02).max(1), d(1.0 / 22.0), d(0.145));
    let third = full / 3;
    for (i, c) in IMB_PATTERN.bytes().enumerate() {
        let bx = d(0.3) + i as u32 * pitch;
        let top = h.saturating_sub(d(0.45));
        let (y0, y1) = match c {
            b'F' => (0, full),
            b'A' => (0, 2 * third),
            b'D' => (third, full),
            _ => (third, 2 * third),
        };
        b.fill_rect(bx, top + y0, bar, y1 - y0);
    }
    // A filled box ("logo").
    b.fill_rect(w.saturating_sub(d(1.0)), d(0.2), d(0.7), d(0.6));
    b
}

/// `labelctl tray 123456781123456123123451`: values 105 12 34 56 78 11 23 45 61 23 12 34
/// 51, check 90, stop 106.
const TRAY_MODULES: &str = "11010011100101100111001000101100011100010110110000101001100010010011101101110101110110001100100001011101101110101100111001000101100011011101000110111101101100011101011";

/// `labelctl container 123456 ABC123 --encoding shortest`: values 104 102 25 25 45 99 12
/// 34 56 0 0 0 100 33 34 35 17 18 19, check 61, stop 106.
const CONTAINER_MODULES: &str = "11010010000111101011101110010110011100101100101110110001011101111010110011100100010110001110001011011011001100110110011001101100110010111101110101000110001000101100010001000110100111001101100111001011001011100110010000101100011101011";

/// USPS-B-3200 example (tracking 00270123456200800001, routing 98765432101), checked with
/// `zint -b 85 --dump` and `labelctl imb encode` here.
const IMB_PATTERN: &str = "TTFAFDADTFFFADTAFAFTTDATDFAAFTDAFDFDFDATFDFTDDDDFADFFDADDTDDTTDAT";

// ---------------------------------------------------------------------------------------
// Decoder written from the ZPL guide (not from the driver)
// ---------------------------------------------------------------------------------------

/// One command of a ZPL stream: prefix (`^` or `~`), two-letter name, the rest.
struct Command<'a> {
    prefix: char,
    name: &'a str,
    args: &'a str,
}

/// Splits ZPL text at every `^` and `~`. Field data never holds them raw: the driver
/// escapes them, and `^GF` data is hex, run-length letters or base64.
fn commands(zpl: &str) -> Vec<Command<'_>> {
    let starts: Vec<usize> = zpl.match_indices(['^', '~']).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let end = starts.get(k + 1).copied().unwrap_or(zpl.len());
            let text = &zpl[i..end];
            Command {
                prefix: text.chars().next().unwrap(),
                name: text.get(1..3).unwrap_or(""),
                args: text.get(3..).unwrap_or(""),
            }
        })
        .collect()
}

/// What the decoder found in one `^GF`.
#[derive(Debug)]
struct GraphicField {
    x: i64,
    y: i64,
    bytes_per_row: usize,
    total: usize,
}

/// A page decoded from one `^XA … ^XZ` format.
struct Decoded {
    bitmap: Bitmap,
    graphics: Vec<GraphicField>,
}

/// CRC-16/XMODEM, table-driven (a different construction from the driver's bit loop).
fn crc_xmodem(data: &[u8]) -> u16 {
    let table: Vec<u16> = (0..256u16)
        .map(|i| {
            let mut c = i << 8;
            for _ in 0..8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x1021
                } else {
                    c << 1
                };
            }
            c
        })
        .collect();
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ table[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// `:B64:`/`:Z64:` envelope: base64 text, then `:` and exactly four hex digits of
/// CRC-16/XMODEM over that text; Z64 content is zlib.
fn decode_envelope(data: &str) -> Result<Vec<u8>, String> {
    let (kind, rest) = data.split_at(5);
    let (text, crc) = rest.rsplit_once(':').ok_or("no CRC field")?;
    if crc.len() != 4 || !crc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("CRC field {crc:?} is not 4 hex digits"));
    }
    let text: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let expected = u16::from_str_radix(crc, 16).map_err(|e| e.to_string())?;
    if crc_xmodem(text.as_bytes()) != expected {
        return Err("CRC mismatch".into());
    }
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())?;
    match kind {
        ":B64:" => Ok(raw),
        ":Z64:" => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib: {e}"))?;
            Ok(out)
        }
        _ => Err(format!("unknown envelope {kind:?}")),
    }
}

/// ASCII hex with the compression scheme, row by row. Stricter than the guide where the
/// driver promises more: no `!`, no run crossing a row end, `,` only at a byte boundary.
fn decode_ascii(data: &str, bytes_per_row: usize) -> Result<Vec<u8>, String> {
    let row_len = 2 * bytes_per_row;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut row: Vec<u8> = Vec::with_capacity(row_len);
    let mut repeat = 0usize;
    for c in data.chars() {
        match c {
            '\r' | '\n' => continue,
            'G'..='Y' => repeat += (c as usize) - ('G' as usize) + 1,
            'g'..='z' => repeat += ((c as usize) - ('g' as usize) + 1) * 20,
            '0'..='9' | 'A'..='F' => {
                let nibble = c.to_digit(16).unwrap() as u8;
                let count = repeat.max(1);
                repeat = 0;
                if row.len() + count > row_len {
                    return Err(format!(
                        "run of {count} crosses the end of row {}",
                        rows.len()
                    ));
                }
                row.extend(std::iter::repeat_n(nibble, count));
            }
            ',' => {
                if repeat != 0 {
                    return Err("count before ','".into());
                }
                if row.len() % 2 != 0 {
                    return Err(format!("',' at an odd nibble in row {}", rows.len()));
                }
                row.resize(row_len, 0);
            }
            ':' => {
                if repeat != 0 || !row.is_empty() {
                    return Err("':' inside a row".into());
                }
                row = rows.last().ok_or("':' before any row")?.clone();
            }
            '!' => return Err("'!' is ambiguous between renderers; never emit it".into()),
            other => return Err(format!("unexpected character {other:?}")),
        }
        if row.len() == row_len {
            rows.push(std::mem::take(&mut row));
        }
    }
    if repeat != 0 || !row.is_empty() {
        return Err("data ends inside a row".into());
    }
    Ok(rows
        .concat()
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect())
}

/// `^GFA,b,c,d,data` → the graphic's bytes.
fn decode_gf(args: &str) -> Result<(usize, usize, Vec<u8>), String> {
    let mut parts = args.splitn(5, ',');
    let kind = parts.next().ok_or("no type")?;
    if kind != "A" {
        return Err(format!(
            "^GF type {kind:?}: the driver must only send A (ASCII)"
        ));
    }
    let mut number = |what: &str| -> Result<usize, String> {
        parts
            .next()
            .ok_or(format!("no {what}"))?
            .parse::<usize>()
            .map_err(|e| format!("{what}: {e}"))
    };
    let (sent, total, bpr) = (number("b")?, number("c")?, number("d")?);
    if sent != total {
        return Err(format!("b {sent} != c {total} for type A"));
    }
    if !(1..=99_999).contains(&total) || bpr == 0 || total % bpr != 0 {
        return Err(format!("bad sizes c={total} d={bpr}"));
    }
    let data = parts.next().ok_or("no data")?;
    let bytes = if data.starts_with(":Z64:") || data.starts_with(":B64:") {
        decode_envelope(data)?
    } else {
        decode_ascii(data, bpr)?
    };
    if bytes.len() != total {
        return Err(format!("{} bytes decoded, c = {total}", bytes.len()));
    }
    Ok((total, bpr, bytes))
}

/// Decodes one format: `^PW` × `^LL` canvas, `^LH` + `^FO` origins, every `^GF` drawn
/// (OR-ed, clipped to the canvas). Other commands are ignored.
fn decode_page(zpl: &[u8]) -> Result<Decoded, String> {
    let text = std::str::from_utf8(zpl).map_err(|e| e.to_string())?;
    let (mut width, mut height) = (0u32, 0u32);
    let (mut home, mut origin) = ((0i64, 0i64), (0i64, 0i64));
    let mut draws = Vec::new();
    let mut graphics = Vec::new();
    let pair = |args: &str| -> Result<(i64, i64), String> {
        let (a, b) = args.split_once(',').ok_or(format!("bad pair {args:?}"))?;
        Ok((
            a.parse().map_err(|_| format!("bad {a:?}"))?,
            b.parse().map_err(|_| format!("bad {b:?}"))?,
        ))
    };
    for c in commands(text) {
        match (c.prefix, c.name) {
            ('^', "PW") => width = c.args.parse().map_err(|_| "bad ^PW")?,
            ('^', "LL") => height = c.args.parse().map_err(|_| "bad ^LL")?,
            ('^', "LH") => home = pair(c.args)?,
            ('^', "FO") => origin = pair(c.args)?,
            ('^', "GF") => {
                let (total, bpr, bytes) = decode_gf(c.args)?;
                let (x, y) = (home.0 + origin.0, home.1 + origin.1);
                graphics.push(GraphicField {
                    x,
                    y,
                    bytes_per_row: bpr,
                    total,
                });
                draws.push((x, y, bpr, bytes));
            }
            _ => {}
        }
    }
    let mut bitmap = Bitmap::new(width, height);
    for (x0, y0, bpr, bytes) in draws {
        for (row, line) in bytes.chunks(bpr).enumerate() {
            for col in 0..bpr * 8 {
                if line[col / 8] & (0x80 >> (col % 8)) != 0 {
                    let (x, y) = (x0 + col as i64, y0 + row as i64);
                    if x >= 0 && y >= 0 {
                        bitmap.set(x as u32, y as u32, true);
                    }
                }
            }
        }
    }
    Ok(Decoded { bitmap, graphics })
}

// ---------------------------------------------------------------------------------------
// The zpl crate
// ---------------------------------------------------------------------------------------

/// The stream without the printer settings the `zpl` crate does not render.
fn renderable(zpl: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(zpl).expect("ascii");
    let mut out = String::new();
    if let Some(first) = text.find(['^', '~']) {
        out.push_str(&text[..first]);
    }
    for c in commands(text) {
        let skip = matches!(
            (c.prefix, c.name),
            ('~', "JX") | ('~', "SD") | ('^', "MN") | ('^', "MD") | ('^', "PR") | ('^', "PQ")
        );
        if !skip {
            out.push(c.prefix);
            out.push_str(c.name);
            out.push_str(c.args);
        }
    }
    out.into_bytes()
}

/// Renders the first label with the `zpl` crate (ZD621 profile at `dpi`) into a bitmap.
fn zpl_crate(zpl: &[u8], dpi: u32) -> Result<Bitmap, String> {
    let options = zpl::Options {
        dpi,
        ..zpl::render::profiles::ZD621_203_DPI
    };
    let document = zpl::render::render_with_limits(
        &renderable(zpl),
        options,
        zpl::render::Limits::unlimited(),
    )
    .map_err(|e| e.to_string())?;
    let scene = document.labels.first().ok_or("no label")?;
    let raster =
        zpl::output::raster::rasterize_with_limits(scene, zpl::output::Limits::unlimited())
            .map_err(|e| e.to_string())?;
    let mut b = Bitmap::new(raster.width, raster.height);
    for y in 0..raster.height {
        for x in 0..raster.width {
            if raster.pixels[(y * raster.width + x) as usize] < 128 {
                b.set(x, y, true);
            }
        }
    }
    Ok(b)
}

/// Where two bitmaps first differ, for messages.
fn first_difference(a: &Bitmap, b: &Bitmap) -> Option<(u32, u32)> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Some((u32::MAX, u32::MAX));
    }
    (0..a.height())
        .flat_map(|y| (0..a.width()).map(move |x| (x, y)))
        .find(|&(x, y)| a.get(x, y) != b.get(x, y))
}

fn assert_same(expected: &Bitmap, got: &Bitmap, what: &str) {
    if let Some(at) = first_difference(expected, got) {
        panic!(
            "{what}: decoded {:?} ({}x{}) differs from the page {:?} ({}x{}) first at {at:?}",
            got,
            got.width(),
            got.height(),
            expected,
            expected.width(),
            expected.height()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Graphics
// ---------------------------------------------------------------------------------------

fn bitmaps(dpi: f64) -> Vec<(&'static str, Bitmap)> {
    vec![
        ("noise 50%", noise(301, 97, 50, 7)),
        ("sparse noise", noise(200, 150, 3, 11)),
        ("stripes", vertical_stripes(250, 80)),
        ("rows", rows_pattern(333, 120)),
        ("one dot", {
            let mut b = Bitmap::new(9, 5);
            b.set(8, 4, true);
            b
        }),
        ("label 4x2", label(dpi, 4.0, 2.0)),
    ]
}

#[test]
fn every_encoding_decodes_exactly_at_every_resolution() {
    for (model, dpi) in MODELS {
        let profile = profile(model);
        for (name, bitmap) in bitmaps(profile.resolution.x) {
            let page = page_for(&profile, bitmap.clone());
            for encoding in ENCODINGS {
                let what = format!("{model} {name} {encoding:?}");
                let out = write(&profile, encoding, &page);
                let ours = decode_page(&out).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_same(&bitmap, &ours.bitmap, &format!("{what}, our decoder"));
                let theirs = zpl_crate(&out, dpi).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_same(&bitmap, &theirs, &format!("{what}, zpl crate"));
            }
        }
    }
}

#[test]
fn auto_picks_the_smallest() {
    let profile = profile("zpl-203");
    for (name, bitmap) in bitmaps(profile.resolution.x) {
        let page = page_for(&profile, bitmap);
        let auto = write(&profile, GraphicEncoding::Auto, &page).len();
        for encoding in ENCODINGS {
            let forced = write(&profile, encoding, &page).len();
            assert!(
                auto <= forced,
                "{name}: auto {auto} > {encoding:?} {forced}"
            );
        }
    }
}

/// Sizes of a realistic 4×6 in label at 203 dpi (run with `--nocapture` to see them).
#[test]
fn realistic_4x6_label_sizes() {
    let profile = profile("zpl-203");
    let bitmap = label(profile.resolution.x, 4.0, 6.0);
    assert_eq!((bitmap.width(), bitmap.height()), (813, 1219));
    let page = page_for(&profile, bitmap.clone());
    let raw = bitmap.as_bytes().len();
    let mut sizes = Vec::new();
    for encoding in ENCODINGS {
        let mut zpl = Zpl::new(&profile).with_encoding(encoding);
        let mut out = Vec::new();
        zpl.write_page(&page, &mut out).unwrap();
        let decoded = decode_page(&out).unwrap();
        assert_same(&bitmap, &decoded.bitmap, &format!("{encoding:?}"));
        assert_same(
            &bitmap,
            &zpl_crate(&out, 203).unwrap(),
            &format!("{encoding:?}"),
        );
        eprintln!(
            "4x6 @ 203 dpi ({raw} bytes raw, {} ^GF): {encoding:?} = {} bytes total, chose {:?}",
            decoded.graphics.len(),
            out.len(),
            zpl.last_encodings()
        );
        sizes.push(out.len());
    }
    let auto = sizes[4];
    assert!(sizes.iter().all(|&s| auto <= s));
    // The design's budget: a 4x6 label well under the ~11 KB run-length figure with Z64.
    assert!(auto < 11_000, "auto {auto}");
}

#[test]
fn blank_page_sends_no_graphic() {
    let profile = profile("zpl-203");
    let page = page_for(&profile, Bitmap::new(812, 1218));
    for encoding in ENCODINGS {
        let out = write(&profile, encoding, &page);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("^GF"), "{text}");
        assert_eq!(
            text,
            "^XA^CI28^PW812^LL1218^LH0,0^MNY^PON^PMN^LRN^PQ1,0,1,Y^XZ\n"
        );
    }
}

#[test]
fn only_the_bounding_box_is_sent() {
    let profile = profile("zpl-203");
    let mut bitmap = Bitmap::new(400, 300);
    bitmap.fill_rect(100, 50, 30, 20);
    let out = write(
        &profile,
        GraphicEncoding::Hex,
        &page_for(&profile, bitmap.clone()),
    );
    let decoded = decode_page(&out).unwrap();
    assert_same(&bitmap, &decoded.bitmap, "cropped");
    let g = &decoded.graphics[..];
    assert_eq!(g.len(), 1);
    // Bytes 12..=16 across (dots 96..136), rows 50..70.
    assert_eq!(
        (g[0].x, g[0].y, g[0].bytes_per_row, g[0].total),
        (96, 50, 5, 100)
    );
}

#[test]
fn big_graphics_are_split_into_bands_under_the_gf_limit() {
    // 1248 dots = 156 bytes a row; 1800 black rows = 280 800 bytes > 99 999.
    let profile = profile("zpl-300");
    let mut bitmap = noise(1248, 1800, 50, 3);
    bitmap.fill_rect(0, 0, 1248, 10);
    for encoding in ENCODINGS {
        let out = write(&profile, encoding, &page_for(&profile, bitmap.clone()));
        let decoded = decode_page(&out).unwrap();
        assert_eq!(decoded.graphics.len(), 3, "{encoding:?}");
        assert!(decoded.graphics.iter().all(|g| g.total <= 99_999));
        assert_same(&bitmap, &decoded.bitmap, &format!("{encoding:?}"));
        assert_same(
            &bitmap,
            &zpl_crate(&out, 300).unwrap(),
            &format!("{encoding:?}"),
        );
    }
}

#[test]
fn calibration_offsets_move_everything() {
    let base = profile("zpl-203");
    let bitmap = label(base.resolution.x, 2.0, 1.5);
    for (ox, oy) in [(0, 0), (13, 7), (-5, -3), (-13, 9), (21, -40), (-3000, 0)] {
        let mut profile = base.clone();
        profile.offset_x = ox;
        profile.offset_y = oy;
        let page = page_for(&profile, bitmap.clone());
        // The page as the printer should print it: moved, clipped to the page.
        let mut expected = Bitmap::new(bitmap.width(), bitmap.height());
        for y in 0..bitmap.height() {
            for x in 0..bitmap.width() {
                let (sx, sy) = (x as i64 - ox as i64, y as i64 - oy as i64);
                if sx >= 0 && sy >= 0 && bitmap.get(sx as u32, sy as u32) {
                    expected.set(x, y, true);
                }
            }
        }
        for encoding in [GraphicEncoding::RunLength, GraphicEncoding::Z64] {
            let out = write(&profile, encoding, &page);
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(
                text.contains(&format!("^LH{},{}", ox.max(0), oy.max(0))),
                "{text:.80}"
            );
            let what = format!("offset ({ox}, {oy}) {encoding:?}");
            assert_same(&expected, &decode_page(&out).unwrap().bitmap, &what);
            assert_same(&expected, &zpl_crate(&out, 203).unwrap(), &what);
        }
    }
}

#[test]
fn corrupted_z64_crc_is_rejected_by_both_decoders() {
    let profile = profile("zpl-203");
    let page = page_for(&profile, label(profile.resolution.x, 2.0, 1.0));
    for encoding in [GraphicEncoding::Z64, GraphicEncoding::B64] {
        let out = String::from_utf8(write(&profile, encoding, &page)).unwrap();
        assert!(decode_page(out.as_bytes()).is_ok());
        // The CRC is the 4 hex digits before ^FS.
        let at = out.find("^FS").unwrap() - 4;
        let crc = u16::from_str_radix(&out[at..at + 4], 16).unwrap();
        let bad = format!("{}{:04X}{}", &out[..at], crc ^ 0x0100, &out[at + 4..]);
        let ours = decode_page(bad.as_bytes()).err().unwrap_or_default();
        assert!(ours.contains("CRC mismatch"), "{encoding:?}: {ours}");
        let theirs = zpl_crate(bad.as_bytes(), 203).err().unwrap_or_default();
        assert!(theirs.contains("CRC mismatch"), "{encoding:?}: {theirs}");
    }
}

#[test]
fn crc16_xmodem_check_value() {
    // The catalogue check value of CRC-16/XMODEM.
    assert_eq!(crc_xmodem(b"123456789"), 0x31C3);
}

#[test]
fn ascii_only_output_is_seven_bit() {
    let mut profile = profile("zpl-203");
    profile.ascii_only = true;
    profile.darkness = Some(70);
    let mut page = page_for(&profile, noise(300, 200, 30, 5));
    page.native.push(NativeElement::Text(NativeText {
        x: 10,
        y: 10,
        width: 300,
        height: 30,
        line_pitch: 36,
        lines: vec!["Société Générale ^~_\\".into(), "Zürich ✓".into()],
        rotation: Rotation::None,
    }));
    for encoding in ENCODINGS {
        let out = write(&profile, encoding, &page);
        assert!(out.iter().all(|&b| b < 0x80), "{encoding:?}");
    }
    let text = String::from_utf8(write(&profile, GraphicEncoding::Auto, &page)).unwrap();
    assert!(
        text.contains("Soci_C3_A9t_C3_A9 G_C3_A9n_C3_A9rale _5E_7E_5F\\\\\\&Z_C3_BCrich _E2_9C_93")
    );
    // The escaped text renders like the raw UTF-8 (the zpl crate's font 0 has no 'ü' or
    // '✓', so only the first line).
    if let Some(NativeElement::Text(t)) = page.native.first_mut() {
        t.lines.truncate(1);
    }
    let escaped = write(&profile, GraphicEncoding::Auto, &page);
    profile.ascii_only = false;
    let raw = write(&profile, GraphicEncoding::Auto, &page);
    assert!(
        raw.iter().any(|&b| b >= 0x80),
        "utf-8 goes out raw on 8-bit links"
    );
    assert_eq!(
        zpl_crate(&escaped, 203).unwrap(),
        zpl_crate(&raw, 203).unwrap()
    );
}

#[test]
fn page_setup_commands() {
    let mut profile = profile("zpl-203");
    profile.darkness = Some(50);
    profile.speed_ips = Some(4.4);
    profile.copies = 3;
    let page = page_for(&profile, Bitmap::new(100, 50));
    for (media, letter) in [
        (MediaKind::Gap, 'Y'),
        (MediaKind::BlackMark, 'M'),
        (MediaKind::Continuous, 'N'),
    ] {
        profile.media = media;
        let text = String::from_utf8(write(&profile, GraphicEncoding::Auto, &page)).unwrap();
        assert_eq!(
            text,
            format!("~SD15^XA^CI28^PW100^LL50^LH0,0^MN{letter}^PON^PMN^LRN^MD0^PR4^PQ3,0,1,Y^XZ\n")
        );
    }
    // Darkness 0-100 % → ~SD 00-30; speed clamped to 1-14 ips; copies at least 1.
    for (darkness, sd) in [(0, "~SD00"), (100, "~SD30"), (255, "~SD30"), (33, "~SD10")] {
        profile.darkness = Some(darkness);
        let text = String::from_utf8(write(&profile, GraphicEncoding::Auto, &page)).unwrap();
        assert!(text.starts_with(sd), "{darkness}: {text}");
    }
    profile.speed_ips = Some(40.0);
    profile.copies = 0;
    let text = String::from_utf8(write(&profile, GraphicEncoding::Auto, &page)).unwrap();
    assert!(text.contains("^PR14") && text.contains("^PQ1,"), "{text}");
    let mut zpl = Zpl::new(&profile);
    let mut out = Vec::new();
    zpl.start_job(&mut out).unwrap();
    assert_eq!(out, b"~JX");
    zpl.end_job(&mut out).unwrap();
    assert_eq!(out, b"~JX");
}

#[test]
fn pages_wider_than_the_profile_are_refused() {
    let profile = profile("zpl-203");
    let mut zpl = Zpl::new(&profile);
    assert_eq!(zpl.capabilities().max_width_dots, 832);
    let mut out = b"kept".to_vec();
    let wide = page_for(&profile, noise(833, 10, 50, 1));
    assert_eq!(
        zpl.write_page(&wide, &mut out),
        Err(DriverError::PageTooWide {
            dots: 833,
            max: 832
        })
    );
    let long = page_for(&profile, Bitmap::new(100, 32_001));
    assert_eq!(
        zpl.write_page(&long, &mut out),
        Err(DriverError::PageTooLong {
            dots: 32_001,
            max: 32_000
        })
    );
    let empty = page_for(&profile, Bitmap::new(0, 10));
    assert!(matches!(
        zpl.write_page(&empty, &mut out),
        Err(DriverError::EmptyPage { .. })
    ));
    assert_eq!(out, b"kept");
    let caps = zpl.capabilities();
    assert!(caps.native_text && caps.native_code128 && caps.native_imb);
    assert!(caps.ascii_capable && caps.status);
}

// ---------------------------------------------------------------------------------------
// Native elements
// ---------------------------------------------------------------------------------------

/// Module widths read across row `y` from `x`, as a 0/1 string of `count` modules of
/// `module` dots (each module sampled at its centre).
fn read_modules(b: &Bitmap, x: u32, y: u32, module: u32, count: usize) -> String {
    (0..count as u32)
        .map(|i| {
            if b.get(x + i * module + module / 2, y) {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

fn code128_page(profile: &Profile, values: &[u8], module: u32) -> Page {
    let mut page = page_for(profile, Bitmap::new(800, 200));
    page.native.push(NativeElement::Code128(NativeCode128 {
        x: 20,
        y: 30,
        module,
        height: 80,
        values: values.to_vec(),
        text_below: false,
    }));
    page
}

#[test]
fn code128_tray_barcode_renders_the_exact_modules() {
    let profile = profile("zpl-203");
    let values = [105, 12, 34, 56, 78, 11, 23, 45, 61, 23, 12, 34, 51];
    for module in [1, 2, 3, 4] {
        let out = write(
            &profile,
            GraphicEncoding::Auto,
            &code128_page(&profile, &values, module),
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains(&format!(
                "^FO20,30^BY{module}^BCN,80,N,N,N,N^FD>;123456781123456123123451^FS"
            )),
            "{text}"
        );
        let b = zpl_crate(&out, 203).unwrap();
        assert_eq!(
            read_modules(&b, 20, 70, module, 167),
            TRAY_MODULES,
            "module {module}"
        );
        // Nothing left of the first bar, above or below the bars, or after the stop.
        let ink =
            |x0: u32, x1: u32, y0: u32, y1: u32| (y0..y1).any(|y| (x0..x1).any(|x| b.get(x, y)));
        assert!(!ink(0, 20, 0, 200) && !ink(0, 800, 0, 30) && !ink(0, 800, 110, 200));
        assert!(!ink(20 + 167 * module, 800, 0, 200));
    }
}

#[test]
fn code128_gs1_container_switches_sets() {
    let profile = profile("zpl-203");
    let values = [
        104, 102, 25, 25, 45, 99, 12, 34, 56, 0, 0, 0, 100, 33, 34, 35, 17, 18, 19,
    ];
    let out = write(
        &profile,
        GraphicEncoding::Auto,
        &code128_page(&profile, &values, 3),
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains("^FD>:>899M>5123456000000>6ABC123^FS"),
        "{text}"
    );
    let b = zpl_crate(&out, 203).unwrap();
    assert_eq!(read_modules(&b, 20, 70, 3, 233), CONTAINER_MODULES);
}

#[test]
fn code128_refuses_what_zpl_cannot_express() {
    let profile = profile("zpl-203");
    let mut zpl = Zpl::new(&profile);
    let mut out = Vec::new();
    for (values, module) in [(&[104u8, 33][..], 0), (&[104, 33], 11), (&[33, 34], 2)] {
        let page = code128_page(&profile, values, module);
        assert!(
            matches!(
                zpl.write_page(&page, &mut out),
                Err(DriverError::Unsupported(_))
            ),
            "{values:?} module {module}"
        );
    }
    assert!(out.is_empty());
}

#[test]
fn imb_renders_the_bar_pattern() {
    for (model, dpi, height) in [
        ("zpl-203", 203, 29),
        ("zpl-300", 300, 44),
        ("zpl-600", 600, 88),
    ] {
        let profile = profile(model);
        let mut page = page_for(&profile, Bitmap::new(profile.width_dots, 300));
        page.native.push(NativeElement::Imb(NativeImb {
            x: 40,
            y: 50,
            tracking: "00270123456200800001".into(),
            routing: "98765432101".into(),
        }));
        let out = write(&profile, GraphicEncoding::Auto, &page);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains(&format!(
                "^BZN,{height},N,N,3^FD0027012345620080000198765432101^FS"
            )),
            "{text}"
        );
        let b = zpl_crate(&out, dpi).unwrap();
        // Bars: runs of inked columns; each classified by its top and bottom.
        let column = |x: u32| {
            (50..50 + height)
                .filter(|&y| b.get(x, y))
                .collect::<Vec<_>>()
        };
        let mut bars = String::new();
        let mut x = 0;
        while x < b.width() {
            let c = column(x);
            if c.is_empty() {
                x += 1;
                continue;
            }
            let (top, bottom) = (c[0], *c.last().unwrap());
            bars.push(
                match (top < 50 + height / 6, bottom > 50 + height * 5 / 6) {
                    (true, true) => 'F',
                    (true, false) => 'A',
                    (false, true) => 'D',
                    (false, false) => 'T',
                },
            );
            while x < b.width() && !column(x).is_empty() {
                x += 1;
            }
        }
        assert_eq!(bars, IMB_PATTERN, "{model}");
        // No ink outside the bars' rows.
        assert!((0..b.width()).all(|x| !b.get(x, 49) && !b.get(x, 50 + height)));
    }
}

#[test]
fn imb_data_is_checked() {
    let profile = profile("zpl-203");
    let mut zpl = Zpl::new(&profile);
    for (tracking, routing) in [
        ("0027012345620080000", "98765432101"),
        ("07270123456200800001", ""),
        ("00270123456200800001", "1234"),
        ("0027012345620080000x", ""),
    ] {
        let mut page = page_for(&profile, Bitmap::new(400, 100));
        page.native.push(NativeElement::Imb(NativeImb {
            x: 0,
            y: 0,
            tracking: tracking.into(),
            routing: routing.into(),
        }));
        let mut out = Vec::new();
        assert!(
            zpl.write_page(&page, &mut out).is_err(),
            "{tracking} {routing}"
        );
    }
}

#[test]
fn native_text_block() {
    let profile = profile("zpl-203");
    let mut page = page_for(&profile, Bitmap::new(812, 400));
    page.native.push(NativeElement::Text(NativeText {
        x: 50,
        y: 60,
        width: 500,
        height: 30,
        line_pitch: 40,
        lines: vec![
            "JOHN DOE".into(),
            "1600 A^B AVE".into(),
            "BACK\\SLASH".into(),
        ],
        rotation: Rotation::None,
    }));
    let out = write(&profile, GraphicEncoding::Auto, &page);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains(
            "^FO50,60^A0N,30,30^FB500,3,10,L,0^FH^FDJOHN DOE\\&1600 A_5EB AVE\\&BACK\\\\SLASH^FS"
        ),
        "{text}"
    );
    let b = zpl_crate(&out, 203).unwrap();
    let ink = |x0: u32, x1: u32, y0: u32, y1: u32| (y0..y1).any(|y| (x0..x1).any(|x| b.get(x, y)));
    // Ink on each of the three lines (pitch 40 from y = 60), none outside the block.
    for line in 0..3 {
        let top = 60 + line * 40;
        assert!(ink(50, 550, top, top + 30), "line {line}");
    }
    // The ZD621 font puts cap tops one dot above the field origin (ink from y = 59).
    assert!(!ink(0, 812, 0, 58) && !ink(0, 50, 0, 400) && !ink(0, 812, 180, 400));
}

#[test]
fn native_text_rotations() {
    let profile = profile("zpl-203");
    for (rotation, letter) in [
        (Rotation::None, 'N'),
        (Rotation::Cw90, 'R'),
        (Rotation::Cw180, 'I'),
        (Rotation::Cw270, 'B'),
    ] {
        let mut page = page_for(&profile, Bitmap::new(600, 600));
        page.native.push(NativeElement::Text(NativeText {
            x: 200,
            y: 200,
            width: 300,
            height: 40,
            line_pitch: 40,
            lines: vec!["TRAY".into()],
            rotation,
        }));
        let out = write(&profile, GraphicEncoding::Auto, &page);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains(&format!("^A0{letter},40,40^FB300,1,0,L,0")),
            "{text}"
        );
        let b = zpl_crate(&out, 203).unwrap();
        assert!(b.count_black() > 100, "{rotation:?}");
    }
}

#[test]
fn text_too_small_for_font_zero_is_refused() {
    let profile = profile("zpl-203");
    let mut page = page_for(&profile, Bitmap::new(100, 100));
    page.native.push(NativeElement::Text(NativeText {
        x: 0,
        y: 0,
        width: 100,
        height: 9,
        line_pitch: 10,
        lines: vec!["x".into()],
        rotation: Rotation::None,
    }));
    let mut out = Vec::new();
    assert!(Zpl::new(&profile).write_page(&page, &mut out).is_err());
    // ^FB takes at most 3K of data.
    if let Some(NativeElement::Text(t)) = page.native.first_mut() {
        t.height = 20;
        t.lines = vec!["x".repeat(1000); 4];
    }
    let err = Zpl::new(&profile).write_page(&page, &mut out).unwrap_err();
    assert!(err.to_string().contains("4 lines, 4006 bytes"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn native_elements_follow_negative_offsets_to_the_edge() {
    let mut profile = profile("zpl-203");
    profile.offset_x = -30;
    profile.offset_y = -10;
    let mut page = code128_page(&profile, &[105, 12, 34], 2);
    page.native.push(NativeElement::Text(NativeText {
        x: 100,
        y: 5,
        width: 200,
        height: 20,
        line_pitch: 20,
        lines: vec!["A".into()],
        rotation: Rotation::None,
    }));
    let text = String::from_utf8(write(&profile, GraphicEncoding::Auto, &page)).unwrap();
    assert!(text.contains("^LH0,0"), "{text}");
    assert!(text.contains("^FO0,20^BY2"), "{text}");
    assert!(text.contains("^FO70,0^A0N"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------

fn hqes(errors: &str, warnings: &str) -> Vec<u8> {
    format!("\x02\r\nPRINTER STATUS\r\n   ERRORS:   {errors}\r\n   WARNINGS: {warnings}\r\n\x03")
        .into_bytes()
}

fn hs(s1: &str, s2: &str, s3: &str) -> Vec<u8> {
    format!("\x02{s1}\x03\r\n\x02{s2}\x03\r\n\x02{s3}\x03\r\n").into_bytes()
}

const HS1_OK: &str = "030,0,0,1218,000,0,0,0,000,0,0,0";
const HS2_OK: &str = "001,0,0,0,0,2,6,0,00000000,1,000";
const HS3: &str = "1234,0";

fn set(conditions: &[Condition]) -> Conditions {
    conditions.iter().copied().collect()
}

#[test]
fn status_queries() {
    let zpl = Zpl::new(&profile("zpl-203"));
    assert_eq!(zpl.query_status(), Some(&b"~HQES"[..]));
    assert_eq!(Zpl::host_status_query(), b"~HS");
}

#[test]
fn hqes_replies() {
    use Condition::*;
    let zpl = Zpl::new(&profile("zpl-203"));
    // (errors, warnings, conditions, detail)
    let cases: [(&str, &str, &[Condition], &str); 9] = [
        // 0: healthy.
        ("0 00000000 00000000", "0 00000000 00000000", &[], ""),
        // 1: paper out.
        (
            "1 00000000 00000001",
            "0 00000000 00000000",
            &[MediaOut],
            "errors: media out",
        ),
        // 2: ribbon out.
        (
            "1 00000000 00000002",
            "0 00000000 00000000",
            &[RibbonOut],
            "errors: ribbon out",
        ),
        // 3: head open.
        (
            "1 00000000 00000004",
            "0 00000000 00000000",
            &[HeadOpen],
            "errors: head open",
        ),
        // 4: the manual's "00000005": media out and head open.
        (
            "1 00000000 00000005",
            "0 00000000 00000000",
            &[MediaOut, HeadOpen],
            "errors: media out, head open",
        ),
        // 5: paused, with a warning (warnings never become conditions).
        (
            "1 00000000 00010000",
            "1 00000000 00000002",
            &[Paused],
            "errors: paused; warnings: clean printhead",
        ),
        // 6: cutter, over temperature, jam.
        (
            "1 00000000 00004018",
            "0 00000000 00000000",
            &[Cutter, Overheat, Jam],
            "errors: cutter fault, printhead over temperature, paper feed error",
        ),
        // 7: unknown bits, low and high group.
        (
            "1 00000002 00100000",
            "1 00000000 00000808",
            &[Other],
            "errors: unknown error bits 0x200100000; warnings: paper near end, warning bits 0x800",
        ),
        // 8: the flag without bits is not "ready".
        (
            "1 00000000 00000000",
            "0 00000000 00000000",
            &[Other],
            "errors: error flag set without error bits",
        ),
    ];
    for (i, (errors, warnings, conditions, detail)) in cases.into_iter().enumerate() {
        let reply = hqes(errors, warnings);
        let status = zpl
            .parse_status(&reply)
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(status.conditions, set(conditions), "case {i}");
        assert_eq!(status.detail, detail, "case {i}");
        assert_eq!(status.raw, reply, "case {i}");
        assert_eq!(
            (status.labels_remaining, status.busy),
            (None, None),
            "case {i}"
        );
    }
}

#[test]
fn hs_replies() {
    use Condition::*;
    let zpl = Zpl::new(&profile("zpl-203"));
    // (string 1, string 2, conditions, labels remaining, busy)
    let cases: [(&str, &str, &[Condition], u32, bool); 7] = [
        // 0: healthy, idle.
        (HS1_OK, HS2_OK, &[], 0, false),
        // 1: paper out.
        (
            "030,1,0,1218,000,0,0,0,000,0,0,0",
            HS2_OK,
            &[MediaOut],
            0,
            false,
        ),
        // 2: paused.
        (
            "030,0,1,1218,000,0,0,0,000,0,0,0",
            HS2_OK,
            &[Paused],
            0,
            false,
        ),
        // 3: head open (head up).
        (
            HS1_OK,
            "001,0,1,0,0,2,6,0,00000000,1,000",
            &[HeadOpen],
            0,
            false,
        ),
        // 4: ribbon out.
        (
            HS1_OK,
            "001,0,0,1,1,2,6,0,00000000,1,000",
            &[RibbonOut],
            0,
            false,
        ),
        // 5: 17 labels remaining, one format in the buffer.
        (
            "030,0,0,1218,001,0,0,0,000,0,0,0",
            "001,0,0,0,0,2,6,0,00000017,1,000",
            &[],
            17,
            true,
        ),
        // 6: buffer full, over temperature, corrupt ram.
        (
            "030,0,0,1218,003,1,0,0,000,1,0,1",
            HS2_OK,
            &[BufferFull, Overheat, Other],
            0,
            true,
        ),
    ];
    for (i, (s1, s2, conditions, remaining, busy)) in cases.into_iter().enumerate() {
        let status = zpl
            .parse_status(&hs(s1, s2, HS3))
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(status.conditions, set(conditions), "case {i}");
        assert_eq!(status.labels_remaining, Some(remaining), "case {i}");
        assert_eq!(status.busy, Some(busy), "case {i}");
        assert!(
            !status.detail.contains("1234"),
            "password leaked: {}",
            status.detail
        );
    }
    let healthy = zpl.parse_status(&hs(HS1_OK, HS2_OK, HS3)).unwrap();
    assert_eq!(
        healthy.detail,
        "0 formats in buffer, 0 labels remaining; label length 1218 dots; tear-off, direct \
         thermal; serial 9600 8n1 xon/xoff"
    );
}

#[test]
fn incomplete_replies_are_short() {
    let zpl = Zpl::new(&profile("zpl-203"));
    let full_hqes = hqes("1 00000000 00000001", "0 00000000 00000000");
    let full_hs = hs(HS1_OK, "001,0,0,0,0,2,6,0,00000017,1,000", HS3);
    let cases: [&[u8]; 7] = [
        b"",
        b"\x02",
        &full_hqes[..full_hqes.len() - 1],
        &full_hqes[..20],
        &full_hs[..10],
        &full_hs[..40],
        &full_hs[..full_hs.len() - 3],
    ];
    for (i, reply) in cases.into_iter().enumerate() {
        match zpl.parse_status(reply) {
            Err(StatusParseError::Short { found, expected }) => {
                assert_eq!(found, reply.len(), "case {i}");
                assert!(expected > found, "case {i}");
            }
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[test]
fn garbage_is_malformed_never_ready() {
    let zpl = Zpl::new(&profile("zpl-203"));
    let cases: [Vec<u8>; 10] = [
        b"hello".to_vec(),
        b"\x00\x01\x02".to_vec(),
        b"\x02garbage\x03".to_vec(),
        b"\x02\xff\xfe".to_vec(),
        hqes("1 0000000G 00000001", "0 00000000 00000000"),
        hqes("2 00000000 00000001", "0 00000000 00000000"),
        hqes("1 00000001", "0 00000000 00000000"),
        b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   0 00000000 00000000\r\n\x03".to_vec(),
        hs("030,0,0,1218,000,0,0,0,000,0,0", HS2_OK, HS3),
        hs(HS1_OK, "001,0,2,0,0,2,6,0,00000000,1,000", HS3),
    ];
    for (i, reply) in cases.iter().enumerate() {
        assert!(
            matches!(
                zpl.parse_status(reply),
                Err(StatusParseError::Malformed { .. })
            ),
            "case {i}: {:?}",
            zpl.parse_status(reply)
        );
    }
    // A reply with more after it is not taken as a clean status.
    let mut two = hqes("0 00000000 00000000", "0 00000000 00000000");
    two.extend(hs(HS1_OK, HS2_OK, HS3));
    assert!(zpl.parse_status(&two).is_err());
    let mut four = hs(HS1_OK, HS2_OK, HS3);
    four.extend(b"\x021234,0\x03\r\n");
    assert!(zpl.parse_status(&four).is_err());
}

// ---------------------------------------------------------------------------------------
// Property test
// ---------------------------------------------------------------------------------------

/// A random bitmap with structure: noise of some density, plus copies of earlier rows and
/// blank or black rows, so every run-length symbol gets exercised.
fn random_bitmap(width: u32, height: u32, seed: u64, density: u64) -> Bitmap {
    let mut rng = Rng(seed | 1);
    let mut b = Bitmap::new(width, height);
    for y in 0..height {
        match rng.next() % 6 {
            0 if y > 0 => {
                for x in 0..width {
                    b.set(x, y, b.get(x, y - 1));
                }
            }
            1 => {}
            2 => b.fill_rect(
                rng.next() as u32 % width,
                y,
                rng.next() as u32 % width + 1,
                1,
            ),
            _ => {
                for x in 0..width {
                    b.set(x, y, rng.chance(density));
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_bitmaps_round_trip(
        width in 1u32..300,
        height in 1u32..200,
        seed in any::<u64>(),
        density in 0u64..=100,
    ) {
        let profile = profile("zpl-203");
        let bitmap = random_bitmap(width, height, seed, density);
        let page = page_for(&profile, bitmap.clone());
        for encoding in ENCODINGS {
            let out = write(&profile, encoding, &page);
            let decoded = decode_page(&out).map_err(|e| TestCaseError::fail(format!("{encoding:?}: {e}")))?;
            prop_assert!(
                first_difference(&bitmap, &decoded.bitmap).is_none(),
                "{:?} differs", encoding
            );
        }
    }
}
