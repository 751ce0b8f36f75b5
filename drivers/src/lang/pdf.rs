//! PDF documents: each page's bitmap as a 1-bit image mask on a page of the
//! bitmap's physical size, for previews and for printing through another print
//! system (IPP/CUPS, a PDF-capable printer; `printer-langs.md` §4.2).
//!
//! Written by hand against the PDF 1.4 reference (ISO 32000-1 has the same
//! syntax): §3.4 file structure (header, body, cross-reference table, trailer),
//! §3.6.1–3.6.2 catalog and page tree, §4.8.5 stencil masks (`/ImageMask true`),
//! §3.3.3 `/FlateDecode` (zlib, RFC 1950, via `flate2`). Checked by rendering
//! with poppler's `pdftoppm` (§6) in `tests/pdf.rs`.
//!
//! # Document
//!
//! ```text
//! %PDF-1.4                   header, then a comment of four high bytes (binary file)
//! 1 0 obj  /Catalog          → /Pages 2 0 R
//! 2 0 obj  /Pages            /Kids [3 0 R 6 0 R …] /Count n
//! per page i (objects 3i+3, 3i+4, 3i+5):
//!   /Page    /MediaBox [0 0 w h] in points (dots ÷ dpi × 72), /Contents, /XObject /Im1
//!   content  q w 0 0 h 0 0 cm 0 g /Im1 Do Q   (the image fills the page, painted black)
//!   /Image   /ImageMask true /Decode [1 0] /Width /Height /BitsPerComponent 1 /FlateDecode
//! xref                       one 20-byte entry per object, byte offsets from `%PDF`
//! trailer  << /Size /Root 1 0 R >>  startxref <offset of xref>  %%EOF
//! ```
//!
//! Page sides are written a millionth of a point below dots ÷ dpi × 72, so that
//! renderers which take the ceiling of points × dpi ÷ 72 (poppler) land on the
//! bitmap's exact dot count; see `points`.
//!
//! The bitmap's rows go into the image as they are: PDF image rows are byte
//! aligned, most significant bit first, top row first, like [`Bitmap`]. In a
//! stencil mask a sample that decodes to 0 paints; `/Decode [1 0]` inverts the
//! default, so a 1 (black in our bitmap) paints with the fill colour (`0 g`,
//! black) and a 0 leaves the white page alone.
//!
//! # Framing
//!
//! The cross-reference table needs every object's offset, so [`Pdf::write_page`]
//! only checks and compresses the page (errors surface there) and keeps it;
//! [`Pdf::end_job`] writes the whole document. Offsets count from the first byte
//! the driver writes, so the caller's buffer may already hold other bytes.
//! `start_job` writes nothing and clears any pages left from an unfinished job.
//!
//! No status: a file answers nothing.

use crate::{
    Bitmap, Capabilities, DeviceStatus, Driver, DriverError, Language, Page, Profile,
    StatusParseError,
};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

/// Largest page side in points (200 in): PDF 1.4 reference, Appendix C
/// (implementation limits: page size 3–14 400 units).
const MAX_SIDE_PT: f64 = 14_400.0;

/// Decimal places written for page sizes in points: 10⁻⁶ pt is a few millionths
/// of a dot at 600 dpi, so a renderer finds the same whole number of dots.
const PT_DECIMALS: usize = 6;

/// PDF documents of raster pages. See the module docs.
#[derive(Clone, Debug)]
pub struct Pdf {
    /// The link can carry only 7-bit ASCII (PDF here has binary streams).
    ascii_only: bool,
    /// Pages of the current job, waiting for `end_job`.
    pages: Vec<PdfPage>,
    /// Widest page in dots (200 in at the profile's dpi).
    max_width_dots: u32,
}

/// One page, checked and compressed.
#[derive(Clone, Debug)]
struct PdfPage {
    /// Image width, dots.
    width: u32,
    /// Image height, dots.
    height: u32,
    /// Page width in points, formatted.
    width_pt: String,
    /// Page height in points, formatted.
    height_pt: String,
    /// The packed rows, zlib-compressed.
    image: Vec<u8>,
}

impl Pdf {
    /// A PDF writer for `profile` (only its resolution and link type matter).
    pub fn new(profile: &Profile) -> Pdf {
        let dpi = profile.resolution.x.max(0.0);
        Pdf {
            ascii_only: profile.ascii_only,
            pages: Vec::new(),
            max_width_dots: (MAX_SIDE_PT / 72.0 * dpi).floor() as u32,
        }
    }

    fn check_link(&self) -> Result<(), DriverError> {
        Language::Pdf.refuse_ascii_link(self.ascii_only)
    }
}

impl Driver for Pdf {
    fn language(&self) -> Language {
        Language::Pdf
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::raster_only(self.max_width_dots, false)
    }

    /// Writes nothing (see "Framing"); forgets pages of an unfinished job.
    fn start_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        self.pages.clear();
        Ok(())
    }

    /// Checks and compresses the page and keeps it for `end_job`; writes nothing.
    fn write_page(&mut self, page: &Page, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        page.refuse_native()?;
        let (width, height) = (page.width(), page.height());
        if width == 0 || height == 0 {
            return Err(DriverError::EmptyPage { width, height });
        }
        let (dpi_x, dpi_y) = (page.resolution.x, page.resolution.y);
        if !(dpi_x.is_finite() && dpi_x > 0.0 && dpi_y.is_finite() && dpi_y > 0.0) {
            return Err(DriverError::Unsupported(format!(
                "pdf: page resolution {dpi_x} x {dpi_y} dpi is not a positive number"
            )));
        }
        let width_pt = f64::from(width) / dpi_x * 72.0;
        let height_pt = f64::from(height) / dpi_y * 72.0;
        if width_pt > MAX_SIDE_PT {
            return Err(DriverError::PageTooWide {
                dots: width,
                max: (MAX_SIDE_PT / 72.0 * dpi_x).floor() as u32,
            });
        }
        if height_pt > MAX_SIDE_PT {
            return Err(DriverError::PageTooLong {
                dots: height,
                max: (MAX_SIDE_PT / 72.0 * dpi_y).floor() as u32,
            });
        }
        self.pages.push(PdfPage {
            width,
            height,
            width_pt: points(width, dpi_x),
            height_pt: points(height, dpi_y),
            image: zlib(&page.bitmap)?,
        });
        Ok(())
    }

    /// Writes the whole document: header, objects, xref table, trailer, `%%EOF`.
    fn end_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        if self.pages.is_empty() {
            return Err(DriverError::Unsupported(
                "pdf: a job with no pages cannot be a pdf document (send at least one page)"
                    .to_owned(),
            ));
        }
        let pages = std::mem::take(&mut self.pages);
        write_document(&pages, out);
        Ok(())
    }

    fn query_status(&self) -> Option<&'static [u8]> {
        None
    }

    fn parse_status(&self, _reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        Err(StatusParseError::Malformed {
            reason: "pdf output has no status replies".to_owned(),
        })
    }
}

/// Object number of page `i`'s page object (its content stream and image follow).
fn page_object(i: usize) -> usize {
    3 + 3 * i
}

/// The whole document into `out`; offsets count from where it starts in `out`.
fn write_document(pages: &[PdfPage], out: &mut Vec<u8>) {
    let base = out.len();
    let object_count = 2 + 3 * pages.len();
    // offsets[n] = byte offset of object n (index 0 is the free-list head).
    let mut offsets = vec![0usize; object_count + 1];

    out.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");

    offsets[1] = out.len() - base;
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");

    offsets[2] = out.len() - base;
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", page_object(i)))
        .collect();
    out.extend_from_slice(
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
            kids.join(" "),
            pages.len()
        )
        .as_bytes(),
    );

    for (i, page) in pages.iter().enumerate() {
        let (page_obj, contents_obj, image_obj) =
            (page_object(i), page_object(i) + 1, page_object(i) + 2);
        let (w, h) = (&page.width_pt, &page.height_pt);

        offsets[page_obj] = out.len() - base;
        out.extend_from_slice(
            format!(
                "{page_obj} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] \
                 /Resources << /XObject << /Im1 {image_obj} 0 R >> >> \
                 /Contents {contents_obj} 0 R >>\nendobj\n"
            )
            .as_bytes(),
        );

        offsets[contents_obj] = out.len() - base;
        let content = format!("q {w} 0 0 {h} 0 0 cm 0 g /Im1 Do Q");
        stream_object(
            out,
            contents_obj,
            &format!("/Length {}", content.len()),
            content.as_bytes(),
        );

        offsets[image_obj] = out.len() - base;
        stream_object(
            out,
            image_obj,
            &format!(
                "/Type /XObject /Subtype /Image /Width {} /Height {} /ImageMask true \
                 /BitsPerComponent 1 /Decode [1 0] /Filter /FlateDecode /Length {}",
                page.width,
                page.height,
                page.image.len()
            ),
            &page.image,
        );
    }

    let xref = out.len() - base;
    out.extend_from_slice(format!("xref\n0 {}\n", object_count + 1).as_bytes());
    // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, type,
    // and a two-byte end of line (space + LF).
    out.extend_from_slice(b"0000000000 65535 f \n");
    for offset in &offsets[1..] {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            object_count + 1
        )
        .as_bytes(),
    );
}

/// `n 0 obj << dict >> stream … endstream endobj`.
fn stream_object(out: &mut Vec<u8>, number: usize, dict: &str, data: &[u8]) {
    out.extend_from_slice(format!("{number} 0 obj\n<< {dict} >>\nstream\n").as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
}

/// The bitmap's packed rows, zlib-compressed (`/FlateDecode`).
fn zlib(bitmap: &Bitmap) -> Result<Vec<u8>, DriverError> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bitmap.as_bytes())
        .and_then(|()| encoder.finish())
        .map_err(|e| DriverError::Unsupported(format!("pdf: compressing the image: {e}")))
}

/// A page side in points, as a PDF real with [`PT_DECIMALS`] places, a hair
/// (0.5–1.5 millionths of a point) *below* the exact value. Renderers size the
/// page in pixels from it: poppler takes the ceiling of `points × dpi / 72`, so
/// the exact value, or one rounded up, can become one pixel too many through
/// floating-point noise (TESTED: 1219 dots at 203.2 dpi gave 1220 rows); a value
/// just below gives exactly the bitmap's dots for a ceiling or a rounding
/// renderer. The shortfall is at most 2·10⁻⁵ dot at 1200 dpi.
fn points(dots: u32, dpi: f64) -> String {
    let exact = f64::from(dots) / dpi * 72.0;
    let scale = 10f64.powi(PT_DECIMALS as i32);
    let millionths = ((exact * scale).round() as u64).saturating_sub(1);
    let unit = scale as u64;
    let (whole, frac) = (millionths / unit, millionths % unit);
    let frac = format!("{frac:0width$}", width = PT_DECIMALS);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_a_hair_below_exact() {
        assert_eq!(points(2550, 300.0), "611.999999");
        assert_eq!(points(832, 203.2), "294.803149");
        assert_eq!(points(1, 72.0), "0.999999");
        assert_eq!(points(637, 300.0), "152.879999");
    }
}
