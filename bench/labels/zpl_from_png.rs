//! The "same bitmap as CUPS" half of `benches/labels.rs` (compiled into that bench
//! binary; `main` there hands its command line here first). Numbers and how they were
//! taken: `BENCHMARKS.md`, section "Labels: bytes on the wire and render time".
//!
//! ```text
//! labels --cups-png OUT.png
//!     Renders examples/jobs/address-4x6.json (every IMb verified) for a ZPL profile at
//!     exactly 203 dpi and 812 dots wide, the page size CUPS uses for a 4x6 in label
//!     (812 x 1218), and writes it as a 1-bit PNG (drivers' preview::write_png).
//!     Exits 1 if the page is not 812 x 1218.
//! labels --zpl-from-png PNG [--labels N] [--encoding auto|hex|run-length|z64|b64]
//!     Reads PNG into a Bitmap once (untimed), then encodes it N times (default 100) with
//!     labeld's ZPL driver (Zpl::write_page on a Page holding that bitmap, nothing
//!     native), writing each label's ZPL to stdout as it is made. Reports on stderr the
//!     bytes per label, the ^GF payload bytes, the encoding chosen, and the CPU time of
//!     the loop (this thread's on-CPU time, /proc/thread-self/schedstat, ns) per label.
//! labels --job-to-zpl [--labels N] [--png PNG]
//!     The same at the job level: examples/jobs/address-4x6.json to ZPL bytes N times
//!     through labeld::output::render_job (layout, text, IMb, verification, encoding)
//!     with the 203 dpi / 812-dot profile, ZPL to stdout. With --png, also checks that
//!     the rendered page equals that PNG dot for dot.
//! ```
//!
//! The ZPL on stdout is what the comparison script (`bench/labels/vs_cups.sh`) decodes
//! back with `bench/labels/check_gf.py`, and what `perf stat` sees for the process-level
//! numbers, measured the same way `bench/cups/run.sh` measures CUPS's `rastertolabel`.

use labeld::output;
use labeld::render::label::RenderOptions;
use labeld_drivers::lang::zpl::{GraphicEncoding, Zpl};
use labeld_drivers::{models, preview, Bitmap, Driver, Page, Profile, Resolution};
use std::io::Write;
use std::time::{Duration, Instant};

/// The issue's example label.
pub const EXAMPLE_JOB: &str = include_str!("../../examples/jobs/address-4x6.json");

/// CUPS's page for a 4x6 in label at 203 dpi (`w288h432` at 203 dpi).
pub const CUPS_SIZE: (u32, u32) = (812, 1218);

/// `zpl-203` with exactly `dpi` dots per inch and `width` dots across: the page CUPS
/// rasterises a 4x6 in label to is 812 x 1218 at 203 dpi, where labeld's generic
/// profile says 203.2 dpi (8 dots/mm) and an 832-dot head (813 x 1219 for a 4x6).
pub fn zpl_profile(dpi: f64, width: u32) -> Profile {
    let mut profile = models::find("zpl-203").expect("zpl-203 model").profile();
    profile.resolution = Resolution::square(dpi);
    profile.width_dots = width;
    profile
}

/// Handles the modes above; `None` when the command line is for divan.
pub fn run(args: &[String]) -> Option<i32> {
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str| flag(name).and_then(|i| args.get(i + 1)).cloned();
    let labels = value("--labels")
        .map(|n| n.parse::<u32>().ok().filter(|&n| n > 0))
        .unwrap_or(Some(100));
    let Some(labels) = labels else {
        eprintln!("--labels takes a positive count");
        return Some(2);
    };
    let result = if let Some(out) = value("--cups-png") {
        cups_png(&out)
    } else if let Some(png) = value("--zpl-from-png") {
        let encoding = match value("--encoding").as_deref().unwrap_or("auto") {
            "auto" => GraphicEncoding::Auto,
            "hex" => GraphicEncoding::Hex,
            "run-length" => GraphicEncoding::RunLength,
            "z64" => GraphicEncoding::Z64,
            "b64" => GraphicEncoding::B64,
            other => {
                eprintln!("unknown --encoding {other}");
                return Some(2);
            }
        };
        zpl_from_png(&png, labels, encoding)
    } else if flag("--job-to-zpl").is_some() {
        job_to_zpl(labels, value("--png").as_deref())
    } else {
        return None;
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    })
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `--cups-png OUT.png`.
fn cups_png(out: &str) -> Result<()> {
    let profile = zpl_profile(203.0, CUPS_SIZE.0);
    let mut driver = Zpl::new(&profile);
    let job = output::render_job(
        EXAMPLE_JOB,
        &profile,
        &mut driver,
        &RenderOptions::default(),
    )?;
    let page = &job.pages[0].page;
    let bitmap = &page.bitmap;
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    preview::write_png(bitmap, page.resolution.x, page.resolution.y, file)?;
    let (w, h) = (bitmap.width(), bitmap.height());
    println!(
        "{out}: {w} x {h} dots at {} dpi, {:.2} % black, {} IMb verified",
        page.resolution.x,
        100.0 * bitmap.count_black() as f64 / (f64::from(w) * f64::from(h)),
        job.imb_reports.len()
    );
    if (w, h) != CUPS_SIZE {
        return Err(format!("page is {w} x {h}, not {} x {}", CUPS_SIZE.0, CUPS_SIZE.1).into());
    }
    Ok(())
}

/// A PNG as a bitmap (luminance < 128 = ink) and its pHYs resolution to 0.1 dpi.
fn read_png(path: &str) -> Result<(Bitmap, Option<f64>)> {
    let data = std::fs::read(path)?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let (width, height) = (reader.info().width, reader.info().height);
    let dpi = reader.info().pixel_dims.and_then(|d| match d.unit {
        png::Unit::Meter => Some((f64::from(d.xppu) * 0.254).round() / 10.0),
        png::Unit::Unspecified => None,
    });
    let mut buffer = vec![0; reader.output_buffer_size().ok_or("png too large")?];
    let frame = reader.next_frame(&mut buffer)?;
    let channels = frame.color_type.samples();
    let mut bitmap = Bitmap::new(width, height);
    for y in 0..height {
        let row = &buffer[y as usize * frame.line_size..][..width as usize * channels];
        for (x, px) in (0..width).zip(row.chunks_exact(channels)) {
            let luma = match channels {
                1 | 2 => u32::from(px[0]),
                _ => {
                    (299 * u32::from(px[0]) + 587 * u32::from(px[1]) + 114 * u32::from(px[2]))
                        / 1000
                }
            };
            bitmap.set(x, y, luma < 128);
        }
    }
    Ok((bitmap, dpi))
}

/// This thread's time on a CPU so far (`/proc/thread-self/schedstat`, first field, ns).
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Per-label wall times → "median (min-max)" in µs.
fn spread(times: &mut [Duration]) -> String {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "{:.1} (min {:.1}, max {:.1})",
        us(times[times.len() / 2]),
        us(times[0]),
        us(times[times.len() - 1])
    )
}

/// Bytes of `^GF` payload (the data after the fourth comma up to `^FS`) in `zpl`.
pub fn graphic_bytes(zpl: &[u8]) -> usize {
    let text = String::from_utf8_lossy(zpl);
    text.split("^GFA,")
        .skip(1)
        .map(|field| {
            let field = field.split("^FS").next().unwrap_or("");
            field.splitn(4, ',').nth(3).map_or(0, str::len)
        })
        .sum()
}

/// The CPU and wall time of `labels` runs of `one` (which writes a label into the
/// buffer), each label written to stdout, reported on stderr.
fn timed_loop(
    what: &str,
    labels: u32,
    mut one: impl FnMut(&mut Vec<u8>) -> Result<()>,
) -> Result<Vec<u8>> {
    let stdout = std::io::stdout();
    let mut sink = stdout.lock();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut walls = Vec::with_capacity(labels as usize);
    let mut first = Vec::new();
    let (mut total_bytes, mut gf_bytes) = (0usize, 0usize);
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    for i in 0..labels {
        buf.clear();
        let t = Instant::now();
        one(&mut buf)?;
        walls.push(t.elapsed());
        sink.write_all(&buf)?;
        total_bytes += buf.len();
        if i == 0 {
            first = buf.clone();
            gf_bytes = graphic_bytes(&buf);
        }
    }
    sink.flush()?;
    let wall = wall0.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(b, a)| b - a);
    let n = f64::from(labels);
    eprintln!(
        "{what}: {labels} labels, {:.0} bytes/label on the wire ({gf_bytes} of ^GF data in label 1)",
        total_bytes as f64 / n
    );
    match cpu {
        Some(cpu) => eprintln!(
            "  CPU (thread schedstat) {:.3} ms total, {:.1} us/label; wall {:.1} us/label; \
             per-label wall us median {}",
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / n,
            wall.as_secs_f64() * 1e6 / n,
            spread(&mut walls)
        ),
        None => eprintln!(
            "  wall {:.1} us/label (no schedstat); per-label wall us median {}",
            wall.as_secs_f64() * 1e6 / n,
            spread(&mut walls)
        ),
    }
    Ok(first)
}

/// `--zpl-from-png PNG`.
fn zpl_from_png(path: &str, labels: u32, encoding: GraphicEncoding) -> Result<()> {
    let (bitmap, dpi) = read_png(path)?;
    let dpi = dpi.unwrap_or(203.0);
    let profile = zpl_profile(dpi, bitmap.width());
    eprintln!(
        "{path}: {} x {} dots, {dpi} dpi, {:.2} % black; raw 1-bit {} bytes",
        bitmap.width(),
        bitmap.height(),
        100.0 * bitmap.count_black() as f64
            / (f64::from(bitmap.width()) * f64::from(bitmap.height())),
        bitmap.as_bytes().len()
    );
    let page = Page::raster(bitmap, profile.resolution);
    let mut driver = Zpl::new(&profile).with_encoding(encoding);
    let mut head = Vec::new();
    driver.start_job(&mut head)?;
    std::io::stdout().write_all(&head)?;
    timed_loop(&format!("zpl {encoding:?} from png"), labels, |buf| {
        driver.write_page(&page, buf)?;
        Ok(())
    })?;
    eprintln!("  ^GF encodings chosen: {:?}", driver.last_encodings());
    Ok(())
}

/// `--job-to-zpl`.
fn job_to_zpl(labels: u32, png: Option<&str>) -> Result<()> {
    let profile = zpl_profile(203.0, CUPS_SIZE.0);
    let mut driver = Zpl::new(&profile);
    let options = RenderOptions::default();
    let mut last = None;
    timed_loop("job json -> zpl (render_job)", labels, |buf| {
        let out = output::render_job(EXAMPLE_JOB, &profile, &mut driver, &options)?;
        buf.extend_from_slice(&out.bytes);
        last = Some(out);
        Ok(())
    })?;
    eprintln!("  ^GF encodings chosen: {:?}", driver.last_encodings());
    if let (Some(path), Some(out)) = (png, last) {
        let (bitmap, _) = read_png(path)?;
        let same = out.pages[0].page.bitmap == bitmap;
        eprintln!("  rendered page == {path}: {same}");
        if !same {
            return Err("the job no longer renders to the PNG's bitmap".into());
        }
    }
    Ok(())
}
