//! IMb benchmarks (divan). Numbers and how they were taken: `BENCHMARKS.md`.
//!
//! `cargo bench --bench imb` runs the divan benchmarks. The encode and decode
//! benchmarks work through the same fixed set of [`SET`] inputs per iteration (all
//! routing lengths, both Mailer ID lengths) and count them as items, so divan's
//! `itm/s` is codes per second and the time column divided by [`SET`] is ns per code.
//! `render::bitmap` does the same over the first 64 of them at 203, 300 and 600 dpi;
//! `render::geometry` is one call per iteration.
//!
//! `cargo bench --bench imb -- --throughput N < lines` is the counterpart of
//! `bench/zint_encode --throughput N < lines` (used by `bench/compare.sh`): it reads
//! `TRACKING[,ROUTING]` lines into memory, then times N `encode_str` calls (parse +
//! encode from strings, what zint's `ZBarcode_Encode` also does) cycling through them
//! with a monotonic clock, after an untimed warm-up pass over up to 10,000 of them,
//! and prints codes/second.
//!
//! No timing assertions anywhere: these only measure.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use labeld::encode::imb::{self, Bar, Routing, Tracking, BAR_COUNT};
use std::io::BufRead;
use std::time::Instant;

/// Inputs per benchmark iteration.
const SET: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--throughput") {
        let count = args
            .get(at + 1)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                eprintln!("usage: imb --throughput N < lines");
                std::process::exit(2)
            });
        throughput(count);
        return;
    }
    divan::main();
}

/// A small deterministic generator (xorshift64*), so the inputs are the same on
/// every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// [`SET`] valid `(tracking, routing)` strings: routing lengths 0, 5, 9 and 11 in
/// turn, 6- and 9-digit Mailer IDs, every Barcode ID class.
fn input_strings() -> Vec<(String, String)> {
    let mut rng = Rng(0x1A6E_1D00_2024_0521);
    (0..SET)
        .map(|i| {
            let mut tracking = String::with_capacity(20);
            tracking.push(char::from(b'0' + rng.below(10) as u8));
            tracking.push(char::from(b'0' + rng.below(5) as u8));
            tracking += &rng.digits(3);
            if rng.below(2) == 0 {
                tracking.push('9');
                tracking += &rng.digits(8);
                tracking += &rng.digits(6);
            } else {
                tracking.push(char::from(b'0' + rng.below(9) as u8));
                tracking += &rng.digits(5);
                tracking += &rng.digits(9);
            }
            let routing = rng.digits([0, 5, 9, 11][i % 4]);
            (tracking, routing)
        })
        .collect()
}

fn input_fields() -> Vec<(Tracking, Routing)> {
    input_strings()
        .iter()
        .map(|(t, r)| (Tracking::parse(t).unwrap(), Routing::parse(r).unwrap()))
        .collect()
}

fn encoded() -> Vec<imb::Imb> {
    input_fields()
        .iter()
        .map(|(t, r)| imb::encode(t, r))
        .collect()
}

mod encode {
    use super::*;

    /// Parse both strings (USPS checks) and encode: `encode_str`.
    #[divan::bench]
    fn parse_and_encode(bencher: Bencher) {
        let inputs = input_strings();
        bencher.counter(ItemsCount::new(SET)).bench_local(|| {
            for (tracking, routing) in &inputs {
                black_box(imb::encode_str(black_box(tracking), black_box(routing)).unwrap());
            }
        });
    }

    /// Encode already parsed fields: `encode`.
    #[divan::bench]
    fn from_fields(bencher: Bencher) {
        let inputs = input_fields();
        bencher.counter(ItemsCount::new(SET)).bench_local(|| {
            for (tracking, routing) in &inputs {
                black_box(imb::encode(black_box(tracking), black_box(routing)));
            }
        });
    }

    /// Parse, encode and produce the 65 letters, as `labelctl imb encode -` does per
    /// line (without the I/O).
    #[divan::bench]
    fn parse_encode_letters(bencher: Bencher) {
        let inputs = input_strings();
        bencher.counter(ItemsCount::new(SET)).bench_local(|| {
            for (tracking, routing) in &inputs {
                let symbol = imb::encode_str(black_box(tracking), black_box(routing)).unwrap();
                black_box(symbol.letters());
            }
        });
    }

    /// `encode_str` with one routing length only (0 = none, 5, 9, 11 digits).
    #[divan::bench(args = [0, 5, 9, 11])]
    fn parse_and_encode_by_routing_len(bencher: Bencher, len: usize) {
        let inputs: Vec<(String, String)> = input_strings()
            .into_iter()
            .filter(|(_, r)| r.len() == len)
            .collect();
        bencher
            .counter(ItemsCount::new(inputs.len()))
            .bench_local(|| {
                for (tracking, routing) in &inputs {
                    black_box(imb::encode_str(black_box(tracking), black_box(routing)).unwrap());
                }
            });
    }
}

mod decode {
    use super::*;

    /// Decode from the 65 bar states: `decode`.
    #[divan::bench]
    fn from_bars(bencher: Bencher) {
        let bars: Vec<[Bar; BAR_COUNT]> = encoded().iter().map(|s| s.bars()).collect();
        bencher.counter(ItemsCount::new(SET)).bench_local(|| {
            for bars in &bars {
                black_box(imb::decode(black_box(bars)).unwrap());
            }
        });
    }

    /// Decode from the 65 letters: `decode_letters`.
    #[divan::bench]
    fn from_letters(bencher: Bencher) {
        let letters: Vec<String> = encoded().iter().map(|s| s.letters_string()).collect();
        bencher.counter(ItemsCount::new(SET)).bench_local(|| {
            for letters in &letters {
                black_box(imb::decode_letters(black_box(letters)).unwrap());
            }
        });
    }
}

mod render {
    use super::*;
    use labeld::geometry::imb_geometry;
    use labeld::render::imb::imb_bitmap;

    /// Codes per render iteration (fewer than [`SET`], to keep 600 dpi iterations
    /// short).
    const RENDER_SET: usize = 64;

    /// `imb_bitmap`: the symbol with quiet zones as a fresh 1-bit bitmap; the
    /// geometry is computed once, outside the timed loop.
    #[divan::bench(args = [203.0, 300.0, 600.0])]
    fn bitmap(bencher: Bencher, dpi: f64) {
        let symbols: Vec<imb::Imb> = encoded().into_iter().take(RENDER_SET).collect();
        let geometry = imb_geometry(dpi, dpi, 0).unwrap();
        bencher
            .counter(ItemsCount::new(RENDER_SET))
            .bench_local(|| {
                for symbol in &symbols {
                    black_box(imb_bitmap(black_box(symbol), black_box(&geometry)));
                }
            });
    }

    /// `imb_geometry` alone: dpi → whole-dot bar geometry inside the tolerances.
    #[divan::bench(args = [203.0, 300.0, 600.0])]
    fn geometry(dpi: f64) -> labeld::geometry::ImbGeometry {
        imb_geometry(black_box(dpi), black_box(dpi), 0).unwrap()
    }
}

/// `--throughput N`: N `encode_str` calls over the stdin lines, timed as one block.
fn throughput(count: u64) {
    // Inputs laid out contiguously, one after another, as zint_encode keeps them
    // (one flat array), so neither side pays for scattered allocations.
    let stdin = std::io::stdin().lock();
    let mut text = String::new();
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    for line in stdin.lines() {
        let line = line.expect("reading stdin");
        let line = line.trim_end_matches('\r');
        let (tracking, routing) = line.split_once(',').unwrap_or((line, ""));
        spans.push((text.len(), tracking.len(), routing.len()));
        text.push_str(tracking);
        text.push_str(routing);
    }
    let inputs: Vec<(&str, &str)> = spans
        .iter()
        .map(|&(at, t, r)| (&text[at..at + t], &text[at + t..at + t + r]))
        .collect();
    if inputs.is_empty() {
        eprintln!("--throughput needs input lines on stdin");
        std::process::exit(2);
    }
    let mut failures = 0u64;
    let mut check = 0u64;
    // Untimed warm-up: one pass over up to 10,000 inputs, as zint_encode does.
    for &(tracking, routing) in inputs.iter().take(10_000) {
        if black_box(imb::encode_str(tracking, routing)).is_err() {
            failures += 1;
        }
    }
    let mut k = 0;
    let start = Instant::now();
    for i in 0..count {
        let (tracking, routing) = inputs[k];
        match imb::encode_str(tracking, routing) {
            Ok(symbol) => {
                let symbol = black_box(symbol);
                // Touch the result so nothing can be skipped.
                check = check.wrapping_add(u64::from(symbol.letters()[(i % 65) as usize]));
            }
            Err(_) => failures += 1,
        }
        k += 1;
        if k == inputs.len() {
            k = 0;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "labeld encode_str: {count} codes in {elapsed:.6} s = {:.0} codes/s \
         ({:.1} ns/code; {} distinct inputs; failures {failures}; check {check})",
        count as f64 / elapsed,
        elapsed * 1e9 / count as f64,
        inputs.len(),
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
