//! The PDF driver, checked by an independent renderer and by reading the file's
//! structure back.
//!
//! `pdftoppm` (poppler-utils, `printer-langs.md` §6) renders each page at the
//! bitmap's own resolution, `pdftoppm -r <dpi> -mono` (PBM) and `-gray` (PGM);
//! the test parses those files and compares them with the bitmap dot for dot. If
//! `pdftoppm` is missing, the rendering tests print SKIPPED, unless
//! `LABELD_REQUIRE_TOOLS=1` (CI), where they fail.

use labeld_drivers::lang::pdf::Pdf;
use labeld_drivers::{encode_job, models, Bitmap, Driver, DriverError, Page, Resolution};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn driver() -> Pdf {
    let profile = models::find("pdf-300").expect("pdf-300 model").profile();
    Pdf::new(&profile)
}

/// A deterministic test picture: corner dots, one-dot bars and gaps (IMb-like),
/// thin lines, a checkerboard and noise, so an off-by-one anywhere shows.
fn picture(width: u32, height: u32, seed: u32) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    for (x, y) in [
        (0, 0),
        (width - 1, 0),
        (0, height - 1),
        (width - 1, height - 1),
    ] {
        b.set(x, y, true);
    }
    // Bars 1..4 dots wide with equal gaps, like IMb bars at 203-600 dpi.
    let mut x = 3;
    let mut w = 1;
    while x + w < width.saturating_sub(3) {
        b.fill_rect(x, height / 8, w, height / 8);
        x += 2 * w;
        w = w % 4 + 1;
    }
    // One-dot lines across and down.
    b.fill_rect(0, height / 3, width, 1);
    b.fill_rect(width / 3, 0, 1, height);
    // Checkerboard block.
    for y in height / 2..(height / 2 + 40).min(height) {
        for x in 5..(width / 2) {
            b.set(x, y, (x + y) % 2 == 0);
        }
    }
    // Noise block.
    let mut s = seed | 1;
    for y in (height * 2 / 3)..(height * 2 / 3 + 60).min(height) {
        for x in (width / 2)..width {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            b.set(x, y, s & 1 == 1);
        }
    }
    b
}

fn page(bitmap: Bitmap, x: f64, y: f64) -> Page {
    Page::raster(bitmap, Resolution { x, y })
}

// ---------------------------------------------------------------------------
// Structure: the xref table, the streams, the trailer, read back in Rust.
// ---------------------------------------------------------------------------

/// Position of the last `needle` in `hay` (byte offsets: a PDF is binary, so no
/// lossy text conversion before offsets are taken).
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Position of the first `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The ASCII line starting at `at` (without its LF).
fn line_at(pdf: &[u8], at: usize) -> &str {
    let end = at + find(&pdf[at..], b"\n").expect("line end");
    std::str::from_utf8(&pdf[at..end]).expect("ascii line")
}

/// The object → offset table of a PDF, checked: `startxref` points at `xref`,
/// each entry is 20 bytes, each offset starts `n 0 obj`, the trailer's /Size
/// matches.
fn xref_offsets(pdf: &[u8]) -> Vec<usize> {
    assert!(pdf.starts_with(b"%PDF-1.4\n"), "header");
    assert!(pdf.ends_with(b"%%EOF\n"), "ends with %%EOF");
    let sx = rfind(pdf, b"startxref\n").expect("startxref");
    let xref: usize = line_at(pdf, sx + 10).parse().expect("startxref offset");
    assert_eq!(&pdf[xref..xref + 5], b"xref\n", "startxref points at xref");
    let sub = line_at(pdf, xref + 5);
    let (first, count) = sub.split_once(' ').expect("subsection header");
    assert_eq!(first, "0", "one subsection from object 0");
    let count: usize = count.parse().unwrap();
    let table_start = xref + 5 + sub.len() + 1;
    let mut offsets = Vec::new();
    for n in 0..count {
        let entry = &pdf[table_start + 20 * n..table_start + 20 * (n + 1)];
        let entry = std::str::from_utf8(entry).unwrap();
        assert!(entry.ends_with(" \n"), "entry {n} is 20 bytes with SP LF");
        let offset: usize = entry[0..10].parse().unwrap();
        if n == 0 {
            assert_eq!(entry, "0000000000 65535 f \n");
            continue;
        }
        assert_eq!(&entry[10..18], " 00000 n", "entry {n}");
        let head = format!("{n} 0 obj\n");
        assert_eq!(
            &pdf[offset..offset + head.len()],
            head.as_bytes(),
            "object {n} at {offset}"
        );
        offsets.push(offset);
    }
    let trailer = &pdf[table_start + 20 * count..];
    let want = format!("trailer\n<< /Size {count} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n");
    assert_eq!(trailer, want.as_bytes(), "trailer");
    offsets
}

/// The data of stream object `n`, checking that /Length ends at `endstream`.
fn stream_of(pdf: &[u8], offsets: &[usize], n: usize) -> (String, Vec<u8>) {
    let start = offsets[n - 1];
    let dict_end = start + find(&pdf[start..], b">>\nstream\n").expect("stream dictionary");
    let dict = String::from_utf8(pdf[start..dict_end].to_vec()).unwrap();
    let length: usize = dict
        .split("/Length ")
        .nth(1)
        .expect("/Length")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let data_start = dict_end + ">>\nstream\n".len();
    let data = pdf[data_start..data_start + length].to_vec();
    assert!(
        pdf[data_start + length..].starts_with(b"\nendstream\nendobj\n"),
        "object {n}: /Length {length} ends at endstream"
    );
    (dict, data)
}

#[test]
fn xref_offsets_streams_and_trailer_are_exact() {
    let pages = vec![
        page(picture(832, 1218, 1), 203.2, 203.2),
        page(picture(1200, 600, 2), 300.0, 300.0),
        page(picture(17, 9, 3), 300.0, 600.0),
    ];
    // A buffer that already holds bytes: offsets must count from %PDF.
    let mut out = b"junk before the document".to_vec();
    let mut pdf = driver();
    pdf.start_job(&mut out).unwrap();
    for p in &pages {
        pdf.write_page(p, &mut out).unwrap();
    }
    pdf.end_job(&mut out).unwrap();
    let doc = &out[b"junk before the document".len()..];

    let offsets = xref_offsets(doc);
    assert_eq!(offsets.len(), 2 + 3 * pages.len());
    assert!(String::from_utf8_lossy(doc).contains("/Kids [3 0 R 6 0 R 9 0 R] /Count 3"));
    for (i, p) in pages.iter().enumerate() {
        let page_obj = 3 + 3 * i;
        let text = line_at(
            doc,
            offsets[page_obj - 1] + format!("{page_obj} 0 obj\n").len(),
        );
        let w_pt = f64::from(p.width()) / p.resolution.x * 72.0;
        let h_pt = f64::from(p.height()) / p.resolution.y * 72.0;
        let mb = text.split("/MediaBox [0 0 ").nth(1).unwrap();
        let nums: Vec<f64> = mb
            .split(']')
            .next()
            .unwrap()
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        // A hair below the exact size (see `points` in pdf.rs), never above.
        for (got, exact) in [(nums[0], w_pt), (nums[1], h_pt)] {
            assert!(got < exact && exact - got < 2e-6, "{got} vs {exact}");
        }

        let (_, content) = stream_of(doc, &offsets, page_obj + 1);
        assert!(String::from_utf8_lossy(&content).ends_with("0 g /Im1 Do Q"));

        let (dict, data) = stream_of(doc, &offsets, page_obj + 2);
        assert!(dict.contains(&format!("/Width {} /Height {}", p.width(), p.height())));
        assert!(dict.contains("/ImageMask true") && dict.contains("/Decode [1 0]"));
        let mut rows = Vec::new();
        flate2::read::ZlibDecoder::new(&data[..])
            .read_to_end(&mut rows)
            .unwrap();
        assert_eq!(rows, p.bitmap.as_bytes(), "page {i} image data");
    }
}

#[test]
fn errors_and_reuse() {
    let mut pdf = driver();
    let mut out = Vec::new();
    pdf.start_job(&mut out).unwrap();
    assert_eq!(
        pdf.write_page(&page(Bitmap::new(0, 5), 300.0, 300.0), &mut out),
        Err(DriverError::EmptyPage {
            width: 0,
            height: 5
        })
    );
    // 201 in long at 72 dpi: over the 200 in limit.
    assert!(matches!(
        pdf.write_page(&page(Bitmap::new(8, 72 * 201), 72.0, 72.0), &mut out),
        Err(DriverError::PageTooLong { max: 14400, .. })
    ));
    assert!(matches!(
        pdf.end_job(&mut out),
        Err(DriverError::Unsupported(_))
    ));
    assert!(out.is_empty(), "nothing written for failed pages");

    // The driver is reusable, and a second job holds only its own pages.
    let one = encode_job(&mut pdf, &[page(picture(40, 30, 1), 300.0, 300.0)]).unwrap();
    let two = encode_job(&mut pdf, &[page(picture(40, 30, 1), 300.0, 300.0)]).unwrap();
    assert_eq!(one, two);
    assert!(pdf.query_status().is_none());
    assert!(pdf.parse_status(b"anything").is_err());

    let mut ascii = models::find("pdf-300").unwrap().profile();
    ascii.ascii_only = true;
    assert!(matches!(
        Pdf::new(&ascii).start_job(&mut out),
        Err(DriverError::BinaryOnAsciiLink { .. })
    ));
}

// ---------------------------------------------------------------------------
// Rendering with pdftoppm.
// ---------------------------------------------------------------------------

/// Whether pdftoppm can run; prints SKIPPED or fails under LABELD_REQUIRE_TOOLS=1.
fn have_pdftoppm(test: &str) -> bool {
    let ok = Command::new("pdftoppm")
        .arg("-v")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("LABELD_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{test}: pdftoppm not found and LABELD_REQUIRE_TOOLS=1 (apt-get install poppler-utils)");
        }
        eprintln!("\n*** SKIPPED {test}: pdftoppm not found (apt-get install poppler-utils) ***\n");
    }
    ok
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "labeld-pdf-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rendered page: black = true.
struct Raster {
    width: u32,
    height: u32,
    black: Vec<bool>,
}

/// Runs `pdftoppm <args> -rx <x> -ry <y> doc.pdf out` and parses every page file.
fn render(doc: &[u8], x_dpi: &str, y_dpi: &str, mode: &str) -> Vec<Raster> {
    let dir = Scratch::new(&mode[1..]);
    let input = dir.0.join("doc.pdf");
    std::fs::write(&input, doc).unwrap();
    let status = Command::new("pdftoppm")
        .args([mode, "-rx", x_dpi, "-ry", y_dpi])
        .arg(&input)
        .arg(dir.0.join("out"))
        .status()
        .unwrap();
    assert!(status.success(), "pdftoppm failed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("out-"))
        .collect();
    files.sort();
    files.iter().map(|f| parse_netpbm(f)).collect()
}

/// Parses a binary PBM (P4, 1 = black) or PGM (P5, 0 = black at maxval 255).
fn parse_netpbm(path: &Path) -> Raster {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 0;
    let mut token = || {
        loop {
            while bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes[at] == b'#' {
                while bytes[at] != b'\n' {
                    at += 1;
                }
            } else {
                break;
            }
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        String::from_utf8(bytes[start..at].to_vec()).unwrap()
    };
    let magic = token();
    let width: u32 = token().parse().unwrap();
    let height: u32 = token().parse().unwrap();
    let maxval: Option<u32> = (magic == "P5").then(|| token().parse().unwrap());
    let data = &bytes[at + 1..];
    let mut black = Vec::with_capacity((width * height) as usize);
    match magic.as_str() {
        "P4" => {
            let stride = width.div_ceil(8) as usize;
            assert_eq!(data.len(), stride * height as usize, "P4 size");
            for y in 0..height as usize {
                for x in 0..width as usize {
                    black.push(data[y * stride + x / 8] & (0x80 >> (x % 8)) != 0);
                }
            }
        }
        "P5" => {
            assert_eq!(maxval, Some(255));
            assert_eq!(data.len(), (width * height) as usize, "P5 size");
            for &v in data {
                assert!(
                    v == 0 || v == 255,
                    "grey level {v}: not a clean 1-bit image"
                );
                black.push(v == 0);
            }
        }
        other => panic!("unexpected netpbm type {other}"),
    }
    Raster {
        width,
        height,
        black,
    }
}

/// Asserts the rendering equals the bitmap dot for dot, listing the first
/// differences.
fn assert_same(r: &Raster, b: &Bitmap, what: &str) {
    assert_eq!((r.width, r.height), (b.width(), b.height()), "{what}: size");
    let mut wrong = Vec::new();
    for y in 0..b.height() {
        for x in 0..b.width() {
            if r.black[(y * b.width() + x) as usize] != b.get(x, y) {
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

/// Encodes pages, renders them with pdftoppm at `dpi`, compares each.
fn check_render(test: &str, pages: &[Page], x_dpi: &str, y_dpi: &str) {
    if !have_pdftoppm(test) {
        return;
    }
    let doc = encode_job(&mut driver(), pages).unwrap();
    for mode in ["-mono", "-gray"] {
        let rendered = render(&doc, x_dpi, y_dpi, mode);
        assert_eq!(rendered.len(), pages.len(), "{test} {mode}: page count");
        for (i, (r, p)) in rendered.iter().zip(pages).enumerate() {
            assert_same(r, &p.bitmap, &format!("{test} {mode} page {}", i + 1));
        }
    }
}

#[test]
fn pdftoppm_renders_203_2_dpi_exactly() {
    // A 4 x 6 in label on a 203.2-dpi head (812.8 → 813 dots), and the full
    // 832-dot head width.
    check_render(
        "203.2 dpi",
        &[
            page(picture(813, 1219, 7), 203.2, 203.2),
            page(picture(832, 609, 8), 203.2, 203.2),
        ],
        "203.2",
        "203.2",
    );
}

#[test]
fn pdftoppm_renders_300_dpi_exactly() {
    check_render(
        "300 dpi",
        &[page(picture(1200, 1800, 9), 300.0, 300.0)],
        "300",
        "300",
    );
}

#[test]
fn pdftoppm_renders_600_dpi_and_unequal_resolutions() {
    check_render(
        "600 dpi",
        &[page(picture(1237, 997, 10), 600.0, 600.0)],
        "600",
        "600",
    );
    // 300 across, 600 down (DYMO's graphics mode shape): -rx 300 -ry 600.
    check_render(
        "300x600 dpi",
        &[page(picture(671, 1203, 11), 300.0, 600.0)],
        "300",
        "600",
    );
}

#[test]
fn pdftoppm_renders_every_page_of_a_multi_page_job() {
    let pages: Vec<Page> = (0..4)
        .map(|i| page(picture(600 + 37 * i, 400 + 11 * i, i), 300.0, 300.0))
        .collect();
    check_render("multi-page", &pages, "300", "300");
}
