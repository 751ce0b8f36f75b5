//! Preview output: a [`Bitmap`] as a 1-bit PNG at its true physical size.
//!
//! The PNG is greyscale at bit depth 1 (black bars on white), with a `pHYs` chunk
//! giving the resolution in dots per metre, so image viewers and print dialogs show
//! the label at its real size. PNG stores 0 = black, the inverse of [`Bitmap`].

use crate::Bitmap;
use std::io::Write;

/// Why a preview could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreviewError {
    /// The PNG encoder failed (usually the underlying writer).
    #[error("writing png: {0}")]
    Png(#[from] png::EncodingError),
    /// An empty bitmap cannot be a PNG.
    #[error("cannot write an empty {width}x{height} bitmap as png")]
    Empty {
        /// Width in dots.
        width: u32,
        /// Height in dots.
        height: u32,
    },
}

/// Writes `bitmap` as a 1-bit greyscale PNG whose `pHYs` chunk records `dpi_x` ×
/// `dpi_y`.
pub fn write_png(
    bitmap: &Bitmap,
    dpi_x: f64,
    dpi_y: f64,
    out: impl Write,
) -> Result<(), PreviewError> {
    if bitmap.width() == 0 || bitmap.height() == 0 {
        return Err(PreviewError::Empty {
            width: bitmap.width(),
            height: bitmap.height(),
        });
    }
    let mut encoder = png::Encoder::new(out, bitmap.width(), bitmap.height());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: dots_per_metre(dpi_x),
        yppu: dots_per_metre(dpi_y),
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header()?;
    let inverted: Vec<u8> = bitmap.as_bytes().iter().map(|b| !b).collect();
    writer.write_image_data(&inverted)?;
    writer.finish()?;
    Ok(())
}

/// Dots per inch → dots per metre, rounded (PNG `pHYs` units).
fn dots_per_metre(dpi: f64) -> u32 {
    (dpi / 0.0254).round().clamp(1.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PNG decodes back to the same dots, and records the resolution.
    #[test]
    fn png_round_trips() {
        let mut bitmap = Bitmap::new(13, 5);
        bitmap.fill_rect(2, 1, 3, 3);
        bitmap.set(12, 4, true);
        let mut bytes = Vec::new();
        write_png(&bitmap, 203.2, 300.0, &mut bytes).unwrap();

        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info().clone();
        assert_eq!((info.width, info.height), (13, 5));
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let dims = info.pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.yppu), (8000, 11811));
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        for y in 0..5 {
            for x in 0..13 {
                let byte = buf[y as usize * frame.line_size + (x / 8) as usize];
                let white = byte & (0x80 >> (x % 8)) != 0;
                assert_eq!(!white, bitmap.get(x, y), "({x},{y})");
            }
        }
    }

    #[test]
    fn empty_bitmap_is_an_error() {
        let err = write_png(&Bitmap::new(0, 4), 203.0, 203.0, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "cannot write an empty 0x4 bitmap as png");
    }
}
