//! A packed 1-bit raster: the form in which every label reaches a printer language.
//!
//! Rows are packed most-significant bit first, one bit per dot, `1` = black
//! (ink/heat). Each row starts on a byte boundary. This is the layout ZPL `^GF`,
//! EPL2 `GW`, PCL raster, Brother QL and DYMO raster lines all use (some inverted
//! or mirrored by their drivers), so a driver can usually copy rows as they are.

/// A 1-bit image of `width` × `height` dots, black = `true`.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: u32,
    height: u32,
    /// Bytes per row: `ceil(width / 8)`.
    stride: usize,
    /// `stride * height` bytes, row after row, MSB = leftmost dot.
    bits: Vec<u8>,
}

impl Bitmap {
    /// A white bitmap of `width` × `height` dots.
    pub fn new(width: u32, height: u32) -> Bitmap {
        let stride = (width as usize).div_ceil(8);
        Bitmap {
            width,
            height,
            stride,
            bits: vec![0; stride * height as usize],
        }
    }

    /// Width in dots.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in dots (rows).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per packed row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Whether the dot at (`x`, `y`) is black; dots outside the bitmap are white.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let byte = self.bits[y as usize * self.stride + (x / 8) as usize];
        byte & (0x80 >> (x % 8)) != 0
    }

    /// Sets the dot at (`x`, `y`) to black (`true`) or white; outside is ignored.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let byte = &mut self.bits[y as usize * self.stride + (x / 8) as usize];
        let mask = 0x80 >> (x % 8);
        if black {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }

    /// Paints a black rectangle with its top-left dot at (`x`, `y`), clipped to the
    /// bitmap.
    pub fn fill_rect(&mut self, x: u32, y: u32, width: u32, height: u32) {
        let x_end = x.saturating_add(width).min(self.width);
        let y_end = y.saturating_add(height).min(self.height);
        if x >= x_end {
            return;
        }
        for row in y..y_end {
            let line = &mut self.bits[row as usize * self.stride..][..self.stride];
            fill_span(line, x, x_end);
        }
    }

    /// The `width` × `height` part whose top-left dot is (`x0`, `y0`); dots outside
    /// this bitmap are white. Copies whole bytes, shifted, not dot by dot.
    pub fn crop(&self, x0: u32, y0: u32, width: u32, height: u32) -> Bitmap {
        let mut out = Bitmap::new(width, height);
        let (skip, shift) = ((x0 / 8) as usize, x0 % 8);
        let at = |row: &[u8], i: usize| row.get(i).copied().unwrap_or(0);
        for y in 0..height {
            let Some(src_y) = y0.checked_add(y).filter(|&sy| sy < self.height) else {
                break;
            };
            let src = self.row(src_y);
            let start = y as usize * out.stride;
            for (i, byte) in out.bits[start..start + out.stride].iter_mut().enumerate() {
                *byte = if shift == 0 {
                    at(src, skip + i)
                } else {
                    (at(src, skip + i) << shift) | (at(src, skip + i + 1) >> (8 - shift))
                };
            }
            // Bits past the new width stay white.
            let tail = width % 8;
            if tail != 0 {
                out.bits[start + out.stride - 1] &= 0xFFu8 << (8 - tail);
            }
        }
        out
    }

    /// The packed bytes of row `y` (`stride()` bytes; bits past `width` are 0).
    ///
    /// # Panics
    /// If `y >= height()`.
    pub fn row(&self, y: u32) -> &[u8] {
        &self.bits[y as usize * self.stride..][..self.stride]
    }

    /// All rows, packed, top to bottom.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Number of black dots (for tests and statistics).
    pub fn count_black(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

/// Sets bits `start..end` of one packed row.
fn fill_span(line: &mut [u8], start: u32, end: u32) {
    let (start, end) = (start as usize, end as usize);
    let (first, last) = (start / 8, (end - 1) / 8);
    let head = 0xFFu8 >> (start % 8);
    let tail = 0xFFu8 << (7 - (end - 1) % 8);
    if first == last {
        line[first] |= head & tail;
        return;
    }
    line[first] |= head;
    for byte in &mut line[first + 1..last] {
        *byte = 0xFF;
    }
    line[last] |= tail;
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bitmap {{ {}x{}, {} black }}",
            self.width,
            self.height,
            self.count_black()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rect_matches_set_dot_by_dot() {
        for x in 0..20 {
            for w in 0..20 {
                let mut fast = Bitmap::new(23, 3);
                fast.fill_rect(x, 1, w, 1);
                let mut slow = Bitmap::new(23, 3);
                for dx in x..(x + w).min(23) {
                    slow.set(dx, 1, true);
                }
                assert_eq!(fast, slow, "x={x} w={w}");
            }
        }
    }

    #[test]
    fn crop_matches_dot_by_dot() {
        let mut b = Bitmap::new(37, 9);
        let mut x: u32 = 7;
        for yy in 0..9 {
            for xx in 0..37 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b.set(xx, yy, x % 3 == 0);
            }
        }
        for (x0, y0, w, h) in [
            (0, 0, 37, 9),
            (3, 1, 20, 5),
            (9, 0, 30, 12),
            (36, 8, 5, 5),
            (40, 0, 3, 3),
        ] {
            let fast = b.crop(x0, y0, w, h);
            let mut slow = Bitmap::new(w, h);
            for yy in 0..h {
                for xx in 0..w {
                    slow.set(xx, yy, b.get(x0 + xx, y0 + yy));
                }
            }
            assert_eq!(fast, slow, "{x0},{y0} {w}x{h}");
        }
    }

    #[test]
    fn outside_is_white_and_ignored() {
        let mut b = Bitmap::new(9, 2);
        b.set(9, 0, true);
        b.set(0, 2, true);
        b.fill_rect(9, 0, 5, 5);
        assert_eq!(b.count_black(), 0);
        assert!(!b.get(100, 100));
        assert_eq!(b.stride(), 2);
    }
}
