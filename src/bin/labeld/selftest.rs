//! `labeld --self-test`: the print path without the daemon, on the preview printer.
//!
//! It encodes a sample IMb, chooses the dot geometry, renders it, verifies the
//! bitmap, writes the preview PNG, and prints the example 4x6 address label through
//! the whole print path (layout, text, IMb, verification, the PNG driver). Useful on
//! a new machine before anything is configured.

use anyhow::{bail, Context};
use labeld::encode::imb::{self, Routing, Tracking};
use labeld::{geometry, render, verify};
use labeld_drivers::preview;
use std::path::PathBuf;

/// The embedded default printer: a preview printer, as every fresh install has.
struct PreviewPrinter {
    name: &'static str,
    dpi: f64,
    directory: PathBuf,
}

/// The sample piece (the labels issue's example job).
const SAMPLE_TRACKING: &str = "00270123456200800001";
const SAMPLE_ROUTING: &str = "987654321";

/// Runs the self-test, writing into `directory`.
pub fn run(directory: PathBuf) -> anyhow::Result<()> {
    let printer = PreviewPrinter {
        name: "preview",
        dpi: 203.0,
        directory,
    };
    println!(
        "labeld {} self-test: the print path on a preview printer",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "  default printer '{}': preview (file) printer, {} dpi, into {}",
        printer.name,
        printer.dpi,
        printer.directory.display()
    );
    check_barcode_path(&printer)?;
    print_sample_label(&printer)
}

/// The example label, through the whole print path (layout, text, IMb,
/// verification, the PNG driver), to the preview printer.
fn print_sample_label(printer: &PreviewPrinter) -> anyhow::Result<()> {
    let model = labeld_drivers::models::find("png-203").context("the png-203 model")?;
    let profile = model.profile();
    let mut driver = labeld_drivers::lang::driver(&profile);
    let out = labeld::output::render_job(
        SAMPLE_JOB,
        &profile,
        driver.as_mut(),
        &labeld::render::label::RenderOptions::default(),
    )?;
    let path = printer.directory.join("sample-label.png");
    std::fs::write(&path, &out.bytes).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "  printed a 4x6 address label to '{}': {} ({} imb verified)",
        printer.name,
        path.display(),
        out.imb_reports.len()
    );
    Ok(())
}

/// The example job of the labels issue (also `examples/jobs/address-4x6.json`).
const SAMPLE_JOB: &str = include_str!("../../../examples/jobs/address-4x6.json");

/// Encode → geometry → render → verify → preview file, reporting each step.
fn check_barcode_path(printer: &PreviewPrinter) -> anyhow::Result<()> {
    let tracking = Tracking::parse(SAMPLE_TRACKING)?;
    let routing = Routing::parse(SAMPLE_ROUTING)?;
    let symbol = imb::encode(&tracking, &routing);
    println!(
        "  imb {tracking}-{routing} (mailer id {}, serial {}): {}",
        tracking.mailer_id(),
        tracking.serial(),
        symbol.letters_string()
    );

    let g = geometry::imb_geometry(printer.dpi, printer.dpi, 0)?;
    let inches = g.inches();
    println!(
        "  geometry: bar {} dots ({:.4} in), pitch {} dots ({:.1} bars/in), tracker {} ({:.4} in), full bar {} ({:.4} in), length {:.3} in",
        g.bar_width, inches.bar_width, g.pitch, inches.bars_per_inch, g.tracker, inches.tracker,
        g.full_bar, inches.full_bar, inches.length
    );

    let bitmap = render::imb::imb_bitmap(&symbol, &g);
    let report = verify::verify_imb(&bitmap, printer.dpi, printer.dpi, 0)
        .context("the rendered barcode did not verify")?;
    if !report.is_compliant() || report.letters != symbol.letters_string() {
        bail!(
            "the rendered barcode is out of tolerance: {:?}",
            report.violations
        );
    }
    println!(
        "  verified: 65 bars measured inside USPS-B-3200 tolerances, decodes to {}-{}",
        report.decoded.tracking, report.decoded.routing
    );

    std::fs::create_dir_all(&printer.directory)
        .with_context(|| format!("creating {}", printer.directory.display()))?;
    let path = printer.directory.join("sample-imb.png");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    preview::write_png(
        &bitmap,
        printer.dpi,
        printer.dpi,
        std::io::BufWriter::new(file),
    )?;
    println!(
        "  printed to '{}': {} ({}x{} dots)",
        printer.name,
        path.display(),
        bitmap.width(),
        bitmap.height()
    );
    Ok(())
}
