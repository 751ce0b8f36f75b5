//! Compression shared by several languages, each with its decoder for tests.
//!
//! PackBits (Apple Technical Note TN1023; TIFF 6.0 §9) is used by Brother QL raster
//! lines (`M 02`) and PCL raster compression mode 2.

/// PackBits-encodes `data`, appending to `out`. Runs of three or more equal bytes
/// become a repeat record (`1 - n` as a signed count, then the byte); everything
/// else goes in literal records of up to 128 bytes (`n - 1`, then the bytes).
pub fn packbits(data: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut literal_start = 0;
    while i < data.len() {
        let run = run_length(&data[i..], 128);
        if run >= 3 {
            flush_literals(&data[literal_start..i], out);
            out.push((1i16 - run as i16) as u8);
            out.push(data[i]);
            i += run;
            literal_start = i;
        } else {
            i += 1;
            if i - literal_start == 128 {
                flush_literals(&data[literal_start..i], out);
                literal_start = i;
            }
        }
    }
    flush_literals(&data[literal_start..], out);
}

/// How many times `data[0]` repeats at the start of `data`, at most `max`.
fn run_length(data: &[u8], max: usize) -> usize {
    let first = data[0];
    data.iter().take(max).take_while(|&&b| b == first).count()
}

fn flush_literals(literals: &[u8], out: &mut Vec<u8>) {
    for chunk in literals.chunks(128) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// Why PackBits data could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("packbits data ends inside a record at byte {at}")]
pub struct PackBitsError {
    /// Offset of the truncated record's header.
    pub at: usize,
}

/// Decodes PackBits `data` (for tests and decoders). The no-op header 0x80 (-128)
/// is skipped, as TN1023 says.
pub fn unpackbits(data: &[u8]) -> Result<Vec<u8>, PackBitsError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let header = data[i] as i8;
        let at = i;
        i += 1;
        match header {
            -128 => {}
            0..=127 => {
                let n = header as usize + 1;
                let literal = data.get(i..i + n).ok_or(PackBitsError { at })?;
                out.extend_from_slice(literal);
                i += n;
            }
            _ => {
                let n = 1 - header as isize;
                let byte = *data.get(i).ok_or(PackBitsError { at })?;
                out.extend(std::iter::repeat_n(byte, n as usize));
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apple TN1023's example: the unpacked bytes and their packed form.
    #[test]
    fn tn1023_example_decodes() {
        let packed = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let unpacked = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        assert_eq!(unpackbits(&packed).unwrap(), unpacked);
    }

    /// Random data of every shape round-trips (LPrint's testpackbits habit).
    #[test]
    fn round_trips_random_rows() {
        let mut x: u32 = 12345;
        for len in 0..600 {
            let mut row = Vec::with_capacity(len);
            while row.len() < len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let byte = [0x00, 0xFF, 0x0F, (x >> 8) as u8][(x % 4) as usize];
                let run = 1 + (x >> 20) as usize % 200;
                row.extend(std::iter::repeat_n(byte, run.min(len - row.len())));
            }
            let mut packed = Vec::new();
            packbits(&row, &mut packed);
            assert_eq!(unpackbits(&packed).unwrap(), row, "len {len}");
            assert!(packed.len() <= row.len() + row.len().div_ceil(128) + 1);
        }
    }

    #[test]
    fn truncated_record_is_an_error() {
        assert_eq!(unpackbits(&[0x05, 1, 2]), Err(PackBitsError { at: 0 }));
        assert_eq!(unpackbits(&[0xFE]), Err(PackBitsError { at: 0 }));
    }
}
