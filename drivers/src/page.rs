//! A rendered page: what every printer language turns into bytes.
//!
//! A [`Page`] is a 1-bit [`Bitmap`] at the device's exact resolution, plus the
//! elements the driver was asked to print with the printer's own fonts and
//! barcodes ([`NativeElement`]). Whatever is native is *not* in the bitmap: the
//! renderer draws each element exactly once, either as dots or as a native element,
//! according to the driver's [`crate::Capabilities`] and the profile's
//! [`crate::NativeOptions`].

use crate::Bitmap;

/// Dots per inch across (x, along a print-head line) and down (y, feed direction).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resolution {
    /// Dots per inch across the print head.
    pub x: f64,
    /// Dots per inch in the feed direction.
    pub y: f64,
}

impl Resolution {
    /// The same resolution both ways.
    pub const fn square(dpi: f64) -> Resolution {
        Resolution { x: dpi, y: dpi }
    }

    /// Inches → whole dots across, rounded to the nearest dot.
    pub fn dots_x(&self, inches: f64) -> i64 {
        (inches * self.x).round() as i64
    }

    /// Inches → whole dots down, rounded to the nearest dot.
    pub fn dots_y(&self, inches: f64) -> i64 {
        (inches * self.y).round() as i64
    }
}

/// One label (or one sheet, for lasers) ready for a driver.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The raster: width = the printable width in dots, height = the label length.
    pub bitmap: Bitmap,
    /// The bitmap's resolution.
    pub resolution: Resolution,
    /// Elements the driver prints natively, on top of the bitmap. Empty unless the
    /// driver supports them and the profile asked for them.
    pub native: Vec<NativeElement>,
}

impl Page {
    /// A page holding only a bitmap.
    pub fn raster(bitmap: Bitmap, resolution: Resolution) -> Page {
        Page {
            bitmap,
            resolution,
            native: Vec::new(),
        }
    }

    /// Width in dots.
    pub fn width(&self) -> u32 {
        self.bitmap.width()
    }

    /// Length in dots (feed direction).
    pub fn height(&self) -> u32 {
        self.bitmap.height()
    }

    /// For drivers that print only raster: an error naming the first native element,
    /// if the page has any.
    pub fn refuse_native(&self) -> Result<(), crate::DriverError> {
        match self.native.first() {
            Some(element) => Err(crate::DriverError::NativeUnsupported {
                element: element.name(),
            }),
            None => Ok(()),
        }
    }

    /// Row `y` as printed into `out` (`stride` bytes): the page's contents moved by
    /// the calibration offset `(dx, dy)` (right and down), dots moved off the page
    /// dropped, padding bits past the width clear. Raster drivers that cannot shift
    /// the printer's origin apply calibration this way.
    pub fn placed_row(&self, y: u32, (dx, dy): (i32, i32), out: &mut [u8]) {
        let bitmap = &self.bitmap;
        let width = bitmap.width();
        out.fill(0);
        let src_y = i64::from(y) - i64::from(dy);
        if src_y < 0 || src_y >= i64::from(bitmap.height()) {
            return;
        }
        let src = bitmap.row(src_y as u32);
        if dx == 0 {
            let n = out.len().min(src.len());
            out[..n].copy_from_slice(&src[..n]);
        } else {
            for (i, &byte) in src.iter().enumerate().filter(|(_, b)| **b != 0) {
                for bit in 0..8 {
                    if byte & (0x80 >> bit) == 0 {
                        continue;
                    }
                    let x = (i * 8 + bit) as i64 + i64::from(dx);
                    if (0..i64::from(width)).contains(&x) {
                        out[x as usize / 8] |= 0x80 >> (x % 8);
                    }
                }
            }
        }
        if let (Some(last), used @ 1..) = (out.last_mut(), width % 8) {
            *last &= 0xFFu8 << (8 - used);
        }
    }
}

/// Which way a native element reads, clockwise from normal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rotation {
    /// Normal reading direction.
    #[default]
    None,
    /// Rotated 90° clockwise (reads top to bottom).
    Cw90,
    /// Upside down.
    Cw180,
    /// Rotated 270° clockwise (reads bottom to top).
    Cw270,
}

/// An element printed with the printer's own resources. Positions are the
/// top-left corner of the element's box on the page, in dots.
#[derive(Clone, Debug, PartialEq)]
pub enum NativeElement {
    /// Lines of text in the printer's scalable resident font.
    Text(NativeText),
    /// A Code 128 symbol given as exact symbol values.
    Code128(NativeCode128),
    /// An Intelligent Mail barcode drawn by the printer (ZPL `^BZ` type 3).
    Imb(NativeImb),
}

impl NativeElement {
    /// What the element is, for messages.
    pub const fn name(&self) -> &'static str {
        match self {
            NativeElement::Text(_) => "text",
            NativeElement::Code128(_) => "code 128",
            NativeElement::Imb(_) => "the intelligent mail barcode",
        }
    }
}

/// Native text: a block of lines, left-aligned.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeText {
    /// Left edge, dots.
    pub x: u32,
    /// Top edge, dots.
    pub y: u32,
    /// Block width in dots (lines are not wrapped; the layout checked they fit).
    pub width: u32,
    /// Character cell height in dots.
    pub height: u32,
    /// Distance between successive baselines, dots.
    pub line_pitch: u32,
    /// The lines, top to bottom (UTF-8).
    pub lines: Vec<String>,
    /// Reading direction.
    pub rotation: Rotation,
}

/// A native Code 128 symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeCode128 {
    /// Left edge of the first bar, dots.
    pub x: u32,
    /// Top of the bars, dots.
    pub y: u32,
    /// Narrow module width, dots.
    pub module: u32,
    /// Bar height, dots.
    pub height: u32,
    /// The symbol values from the start character through the last data value,
    /// without check character and stop (the printer adds those): 103/104/105 start
    /// A/B/C, 99/100/101 code C/B/A, 98 shift, 102 FNC1.
    pub values: Vec<u8>,
    /// Human-readable text printed under the bars by the printer, if any.
    pub text_below: bool,
}

/// A native Intelligent Mail barcode.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeImb {
    /// Left edge of the first bar, dots.
    pub x: u32,
    /// Top of the tallest bar, dots.
    pub y: u32,
    /// The 20-digit tracking code.
    pub tracking: String,
    /// The routing code (0, 5, 9 or 11 digits).
    pub routing: String,
}
