//! PNG preview files: each page as a 1-bit greyscale PNG at its true size
//! (`pHYs` = the page's resolution), written by [`crate::preview::write_png`]
//! (PNG specification, W3C 2003, §11.2 IHDR, §11.3.5.3 pHYs).
//!
//! # Framing
//!
//! A PNG file holds one image, and a preview user wants one file per label. The
//! driver still accepts a job of many pages, because a job is what the pipeline
//! hands it: every `write_page` appends one complete PNG (signature through
//! `IEND`), so page *n* is the *n*-th PNG in the output. A one-page job is
//! therefore an ordinary `.png` file; for more pages, [`split_pages`] cuts the
//! output back into one PNG per page (what `labelctl preview` writes as
//! `name-1.png`, `name-2.png`, …). An image viewer shown the concatenated bytes
//! displays only the first page. `start_job` and `end_job` write nothing.
//!
//! No status: a file answers nothing.

use crate::preview::{write_png, PreviewError};
use crate::{
    Capabilities, DeviceStatus, Driver, DriverError, Language, Page, Profile, StatusParseError,
};

/// The eight bytes every PNG starts with (PNG specification §5.2).
pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// PNG caps width and height at 2³¹ − 1 (§11.2.2).
const MAX_SIDE: u32 = (1 << 31) - 1;

/// PNG preview pages. See the module docs.
#[derive(Clone, Debug)]
pub struct Png {
    /// The link can carry only 7-bit ASCII (PNG is binary).
    ascii_only: bool,
}

impl Png {
    /// A PNG writer for `profile` (only its link type matters; the resolution
    /// recorded is each page's own).
    pub fn new(profile: &Profile) -> Png {
        Png {
            ascii_only: profile.ascii_only,
        }
    }

    fn check_link(&self) -> Result<(), DriverError> {
        Language::Png.refuse_ascii_link(self.ascii_only)
    }
}

impl Driver for Png {
    fn language(&self) -> Language {
        Language::Png
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::raster_only(MAX_SIDE, false)
    }

    /// Writes nothing.
    fn start_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()
    }

    /// Appends one complete PNG of the page.
    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()?;
        page.refuse_native()?;
        if page.width() > MAX_SIDE {
            return Err(DriverError::PageTooWide {
                dots: page.width(),
                max: MAX_SIDE,
            });
        }
        if page.height() > MAX_SIDE {
            return Err(DriverError::PageTooLong {
                dots: page.height(),
                max: MAX_SIDE,
            });
        }
        // Encode into a scratch buffer so a failure leaves `out` untouched.
        let mut png = Vec::new();
        write_png(&page.bitmap, page.resolution.x, page.resolution.y, &mut png).map_err(
            |e| match e {
                PreviewError::Empty { width, height } => DriverError::EmptyPage { width, height },
                other => DriverError::Unsupported(format!("png: {other}")),
            },
        )?;
        out.extend_from_slice(&png);
        Ok(())
    }

    /// Writes nothing.
    fn end_job(&mut self, _out: &mut Vec<u8>) -> Result<(), DriverError> {
        self.check_link()
    }

    fn query_status(&self) -> Option<&'static [u8]> {
        None
    }

    fn parse_status(&self, _reply: &[u8]) -> Result<DeviceStatus, StatusParseError> {
        Err(StatusParseError::Malformed {
            reason: "png output has no status replies".to_owned(),
        })
    }
}

/// Why a PNG driver's output could not be split into pages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("png output is not a series of complete png files: {reason} at byte {at}")]
pub struct SplitError {
    /// Offset where the problem starts.
    pub at: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Cuts the output of a PNG job into its pages, one complete PNG each, by
/// walking the chunks (length, type, data, CRC; §5.3) up to each `IEND`. CRCs
/// are not checked here; the PNG decoder does that.
pub fn split_pages(output: &[u8]) -> Result<Vec<&[u8]>, SplitError> {
    let mut pages = Vec::new();
    let mut start = 0;
    while start < output.len() {
        if !output[start..].starts_with(&SIGNATURE) {
            return Err(SplitError {
                at: start,
                reason: "no png signature",
            });
        }
        let mut at = start + SIGNATURE.len();
        loop {
            let header = output.get(at..at + 8).ok_or(SplitError {
                at,
                reason: "truncated chunk header",
            })?;
            let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let end = at
                .checked_add(12)
                .and_then(|n| n.checked_add(length as usize))
                .filter(|&end| end <= output.len())
                .ok_or(SplitError {
                    at,
                    reason: "truncated chunk",
                })?;
            let is_end = &header[4..8] == b"IEND";
            at = end;
            if is_end {
                break;
            }
        }
        pages.push(&output[start..at]);
        start = at;
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_job, Bitmap, Resolution};

    fn profile() -> Profile {
        crate::models::find("png-203").expect("png-203").profile()
    }

    /// A picture with an off-by-one detector in every corner.
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
        let mut s = seed | 1;
        for y in 1..height - 1 {
            for x in 1..width - 1 {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                b.set(x, y, s % 3 == 0);
            }
        }
        b
    }

    /// Decodes one PNG with the `png` crate: (bitmap, pHYs dots per metre).
    fn decode(bytes: &[u8]) -> (Bitmap, (u32, u32)) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let info = reader.info().clone();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let dims = info.pixel_dims.expect("pHYs");
        assert_eq!(dims.unit, png::Unit::Meter);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        let mut b = Bitmap::new(info.width, info.height);
        for y in 0..info.height {
            for x in 0..info.width {
                let byte = buf[y as usize * frame.line_size + (x / 8) as usize];
                // PNG grey: 0 = black.
                b.set(x, y, byte & (0x80 >> (x % 8)) == 0);
            }
        }
        (b, (dims.xppu, dims.yppu))
    }

    #[test]
    fn each_page_is_a_complete_png_with_its_resolution() {
        let pages = [
            Page::raster(picture(813, 1219, 1), Resolution::square(203.2)),
            Page::raster(picture(37, 5, 2), Resolution { x: 300.0, y: 600.0 }),
            Page::raster(picture(9, 9, 3), Resolution::square(600.0)),
        ];
        let out = encode_job(&mut Png::new(&profile()), &pages).unwrap();
        let files = split_pages(&out).unwrap();
        assert_eq!(files.len(), 3);
        // dpi / 0.0254, rounded: 203.2 → 8000, 300 → 11811, 600 → 23622.
        let phys = [(8000, 8000), (11811, 23622), (23622, 23622)];
        for ((file, page), want) in files.iter().zip(&pages).zip(phys) {
            let (bitmap, dims) = decode(file);
            assert_eq!(bitmap, page.bitmap);
            assert_eq!(dims, want);
        }
        // A one-page job is exactly one ordinary PNG file.
        let one = encode_job(&mut Png::new(&profile()), &pages[..1]).unwrap();
        assert_eq!(split_pages(&one).unwrap(), [&one[..]]);
        assert_eq!(decode(&one).0, pages[0].bitmap);
    }

    #[test]
    fn refusals_write_nothing() {
        let mut png = Png::new(&profile());
        let mut out = Vec::new();
        let empty = Page::raster(Bitmap::new(4, 0), Resolution::square(300.0));
        assert_eq!(
            png.write_page(&empty, &mut out),
            Err(DriverError::EmptyPage {
                width: 4,
                height: 0
            })
        );
        let mut native = Page::raster(picture(8, 8, 1), Resolution::square(300.0));
        native
            .native
            .push(crate::NativeElement::Imb(crate::NativeImb {
                x: 0,
                y: 0,
                tracking: "01234567094987654321".into(),
                routing: String::new(),
            }));
        assert!(matches!(
            png.write_page(&native, &mut out),
            Err(DriverError::NativeUnsupported { .. })
        ));
        assert!(out.is_empty());
        let mut ascii = profile();
        ascii.ascii_only = true;
        assert!(matches!(
            Png::new(&ascii).start_job(&mut out),
            Err(DriverError::BinaryOnAsciiLink { language: "png" })
        ));
        assert!(png.query_status().is_none());
        assert!(png.parse_status(b"x").is_err());
    }

    #[test]
    fn split_rejects_garbage_and_truncation() {
        assert_eq!(split_pages(b""), Ok(vec![]));
        assert_eq!(
            split_pages(b"hello").unwrap_err().reason,
            "no png signature"
        );
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R', 1, 2]);
        assert_eq!(split_pages(&bytes).unwrap_err().reason, "truncated chunk");
    }
}
