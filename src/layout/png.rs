//! Images for custom labels: base64 → PNG → a 1-bit [`Bitmap`], without I/O.
//!
//! Decoding is the `png` crate's (already a dependency of the drivers crate), with
//! memory limits so a hostile file cannot make it allocate more than
//! [`MAX_DATA`]; base64 is the `base64` crate's standard alphabet. Every colour type
//! and bit depth is read (expanded to 8 bits per channel); a pixel is black when its
//! luminance (ITU-R BT.601 weights) is below half of full scale after compositing on
//! white paper, so a 1-bit or greyscale logo comes out as drawn.

use base64::Engine;
use labeld_drivers::Bitmap;

/// Largest image accepted, in pixels per side.
pub const MAX_SIDE: u32 = 20_000;
/// Largest decoded image data accepted, bytes.
pub const MAX_DATA: usize = 64 << 20;

/// A decoded picture: black = `true`, and the resolution from `pHYs`, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// The pixels.
    pub bitmap: Bitmap,
    /// Pixels per inch (x, y) from the `pHYs` chunk when its unit is the metre.
    pub dpi: Option<(f64, f64)>,
}

/// Decodes base64 text (RFC 4648 standard alphabet, padding optional, ASCII
/// whitespace ignored, an optional `data:…;base64,` prefix skipped).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let text = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or("a data: url must say ;base64,")?,
        None => text,
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(compact.as_bytes())
        .map_err(|e| format!("image is not valid base64: {e}"))
}

/// Decodes a PNG file into a 1-bit picture.
pub fn decode_png(data: &[u8]) -> Result<Picture, String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !data.starts_with(SIGNATURE) {
        return Err("not a PNG file (no PNG signature)".into());
    }
    let mut decoder =
        png::Decoder::new_with_limits(std::io::Cursor::new(data), png::Limits { bytes: MAX_DATA });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("image is not a readable png: {e}"))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "image is {width}x{height} pixels; each side must be 1 to {MAX_SIDE}"
        ));
    }
    let dpi = reader.info().pixel_dims.and_then(|d| match d.unit {
        png::Unit::Meter => Some((f64::from(d.xppu) * 0.0254, f64::from(d.yppu) * 0.0254)),
        png::Unit::Unspecified => None,
    });
    let size = reader
        .output_buffer_size()
        .ok_or("image is too large to decode")?;
    if size > MAX_DATA {
        return Err(format!(
            "image needs {size} bytes decoded; at most {MAX_DATA}"
        ));
    }
    let mut buffer = vec![0; size];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|e| format!("image data is damaged: {e}"))?;
    let channels = frame.color_type.samples();
    let mut bitmap = Bitmap::new(width, height);
    for y in 0..height {
        let row = &buffer[y as usize * frame.line_size..][..width as usize * channels];
        for (x, pixel) in (0..width).zip(row.chunks_exact(channels)) {
            bitmap.set(x, y, is_dark(frame.color_type, pixel));
        }
    }
    Ok(Picture { bitmap, dpi })
}

/// Whether an 8-bit pixel is dark once composited on white.
fn is_dark(colour: png::ColorType, pixel: &[u8]) -> bool {
    let (luma, alpha) = match (colour, pixel) {
        (png::ColorType::Grayscale, [g]) => (f64::from(*g), 255.0),
        (png::ColorType::GrayscaleAlpha, [g, a]) => (f64::from(*g), f64::from(*a)),
        (png::ColorType::Rgb, [r, g, b]) => (luminance(*r, *g, *b), 255.0),
        (png::ColorType::Rgba, [r, g, b, a]) => (luminance(*r, *g, *b), f64::from(*a)),
        _ => return false,
    };
    let on_white = luma * alpha / 255.0 + 255.0 * (1.0 - alpha / 255.0);
    on_white < 127.5
}

/// ITU-R BT.601 luma of an 8-bit RGB pixel.
fn luminance(r: u8, g: u8, b: u8) -> f64 {
    0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with the `png` crate (independent of this decoder).
    fn encode(
        width: u32,
        height: u32,
        colour: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
        compression: png::Compression,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(colour);
            enc.set_depth(depth);
            enc.set_compression(compression);
            if colour == png::ColorType::Indexed {
                enc.set_palette(vec![0, 0, 0, 255, 255, 255, 200, 10, 10, 30, 200, 30]);
            }
            enc.set_pixel_dims(Some(png::PixelDimensions {
                xppu: 11811,
                yppu: 7874,
                unit: png::Unit::Meter,
            }));
            let mut w = enc.write_header().expect("header");
            w.write_image_data(data).expect("data");
        }
        out
    }

    /// A tiny xorshift so the test needs no RNG crate.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn one_bit_images_round_trip_through_the_png_crate() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for case in 0..60u32 {
            let width = 1 + (noise(&mut seed) % 97) as u32;
            let height = 1 + (noise(&mut seed) % 41) as u32;
            let mut expected = Bitmap::new(width, height);
            let stride = (width as usize).div_ceil(8);
            let mut data = vec![0u8; stride * height as usize];
            let blobby = case % 2 == 0;
            for y in 0..height {
                for x in 0..width {
                    let black = if blobby {
                        (x / 5 + y / 3) % 3 == 0
                    } else {
                        noise(&mut seed) % 2 == 0
                    };
                    expected.set(x, y, black);
                    if !black {
                        // PNG greyscale: 1 = white.
                        data[y as usize * stride + (x / 8) as usize] |= 0x80 >> (x % 8);
                    }
                }
            }
            let compression = match case % 3 {
                0 => png::Compression::Fast,
                1 => png::Compression::Balanced,
                _ => png::Compression::High,
            };
            let file = encode(
                width,
                height,
                png::ColorType::Grayscale,
                png::BitDepth::One,
                &data,
                compression,
            );
            let picture = decode_png(&file).expect("decodes");
            assert_eq!(picture.bitmap, expected, "case {case}");
            let (dx, dy) = picture.dpi.expect("pHYs");
            assert!((dx - 300.0).abs() < 0.01 && (dy - 200.0).abs() < 0.01);
        }
    }

    #[test]
    fn every_colour_type_thresholds_at_half_luminance() {
        // 3 pixels: black, white, mid-dark red (luma 0.299*200+… < 128 → black).
        let cases: [(png::ColorType, png::BitDepth, Vec<u8>); 5] = [
            (
                png::ColorType::Grayscale,
                png::BitDepth::Eight,
                vec![0, 255, 100],
            ),
            (
                png::ColorType::Rgb,
                png::BitDepth::Eight,
                vec![0, 0, 0, 255, 255, 255, 200, 10, 10],
            ),
            (
                png::ColorType::Rgba,
                png::BitDepth::Eight,
                vec![0, 0, 0, 255, 0, 0, 0, 0, 200, 10, 10, 255],
            ),
            (
                png::ColorType::GrayscaleAlpha,
                png::BitDepth::Eight,
                vec![0, 255, 255, 255, 90, 255],
            ),
            (
                png::ColorType::Indexed,
                png::BitDepth::Two,
                vec![0b0001_1000],
            ),
        ];
        for (colour, depth, data) in cases {
            let file = encode(3, 1, colour, depth, &data, png::Compression::Balanced);
            let p = decode_png(&file).expect("decodes");
            let got: Vec<bool> = (0..3).map(|x| p.bitmap.get(x, 0)).collect();
            // RGBA pixel 2 is transparent black → white paper.
            assert_eq!(got, vec![true, false, true], "{colour:?}");
        }
        // 16-bit grey.
        let file = encode(
            2,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            &[0x10, 0, 0xF0, 0],
            png::Compression::Fast,
        );
        let p = decode_png(&file).expect("decodes");
        assert!(p.bitmap.get(0, 0) && !p.bitmap.get(1, 0));
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let good = encode(
            16,
            16,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[7u8; 256],
            png::Compression::Balanced,
        );
        let whole = decode_png(&good).expect("valid png");
        // A cut file is an error, or (cut after the image data, in the trailer)
        // exactly the same picture; never a different one.
        for cut in 0..good.len() {
            if let Ok(picture) = decode_png(&good[..cut]) {
                assert_eq!(picture, whole, "cut {cut}");
            }
        }
        assert!(decode_png(&good[..good.len() / 2]).is_err());
        let mut seed = 99u64;
        for i in 0..2000 {
            let mut bad = good.clone();
            let at = (noise(&mut seed) as usize) % bad.len();
            bad[at] ^= 1 << (i % 8);
            let _ = decode_png(&bad);
        }
        assert!(decode_png(b"GIF89a").is_err());
    }

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (text, want) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9v\nYmFy", "foobar"),
            ("data:image/png;base64,Zm9vYmFy", "foobar"),
            ("Zm9vYg", "foob"),
        ] {
            assert_eq!(
                base64_decode(text).as_deref(),
                Ok(want.as_bytes()),
                "{text}"
            );
        }
        assert!(base64_decode("Zm9v!").is_err());
        assert!(base64_decode("Zg==Zg").is_err());
        assert!(base64_decode("Z").is_err());
    }
}
