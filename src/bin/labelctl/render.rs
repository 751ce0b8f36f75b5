//! `labelctl render JOB.json --model MODEL -o FILE`: a label job rendered offline
//! into the model's printer language, or into PNG / PDF by the file's extension.
//!
//! Every IMb on every page is read back and checked before the file is written.

use crate::Failure;
use anyhow::Context;
use clap::{Args, ValueEnum};
use labeld::output::{self, OutputError};
use labeld::render::label::RenderOptions;
use labeld_drivers::lang::zpl::{GraphicEncoding, Zpl};
use labeld_drivers::{lang, models, Driver, Language, MediaKind, Profile};
use std::path::{Path, PathBuf};

/// Arguments of `labelctl render`.
#[derive(Args)]
pub struct RenderArgs {
    /// The job: a JSON file (see docs/labels.md), or `-` for stdin.
    job: PathBuf,
    /// The printer model or generic profile (`labelctl models` lists them).
    #[arg(long, default_value = "zpl-203")]
    model: String,
    /// Output file. `.png` and `.pdf` render previews at the model's resolution;
    /// anything else gets the model's printer language.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Print these elements with the printer's own fonts and barcodes where the
    /// language can (comma-separated: text, code128, imb).
    #[arg(long, value_delimiter = ',')]
    native: Vec<NativeKind>,
    /// Produce 7-bit ASCII only (serial links with XON/XOFF).
    #[arg(long)]
    ascii: bool,
    /// ZPL graphic encoding (default: the smallest per graphic).
    #[arg(long, value_enum, default_value = "auto")]
    zpl_graphics: ZplGraphics,
    /// Calibration: shift right by this many dots (negative: left).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    offset_x: i32,
    /// Calibration: shift down by this many dots (negative: up).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    offset_y: i32,
    /// Darkness 0-100 %.
    #[arg(long)]
    darkness: Option<u8>,
    /// Print speed, inches per second.
    #[arg(long)]
    speed: Option<f32>,
    /// Copies of each label.
    #[arg(long, default_value_t = 1)]
    copies: u32,
    /// Media: gap, black-mark or continuous (default: the model's).
    #[arg(long, value_enum)]
    media: Option<Media>,
    /// Dots by which the printer widens bars; barcodes are drawn that much narrower.
    #[arg(long, default_value_t = 0)]
    dot_gain: u32,
    /// Print a JSON summary instead of a line of text.
    #[arg(long)]
    json: bool,
}

/// An element kind that can be printed natively.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NativeKind {
    /// Text in the printer's resident font.
    Text,
    /// Code 128.
    Code128,
    /// Intelligent Mail barcode (the printer's geometry, not checked by labeld).
    Imb,
}

/// ZPL `^GF` encodings.
#[derive(Clone, Copy, ValueEnum)]
enum ZplGraphics {
    /// The smallest per graphic.
    Auto,
    /// Plain hex.
    Hex,
    /// Hex with ZPL run-length compression.
    RunLength,
    /// zlib + base64 + CRC.
    Z64,
}

/// Media kinds.
#[derive(Clone, Copy, ValueEnum)]
enum Media {
    /// Die-cut labels with gaps.
    Gap,
    /// Black mark on the back.
    BlackMark,
    /// Continuous stock.
    Continuous,
}

/// Runs `labelctl render`.
pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let model = models::find(&args.model).ok_or_else(|| {
        Failure::Input(format!(
            "render: unknown model {:?} (labelctl models lists them)",
            args.model
        ))
    })?;
    let mut profile = model.profile();
    if let Some(language) = language_for(&args.output) {
        profile.language = language;
    }
    apply_settings(&mut profile, &args);
    let job = read_job(&args.job)?;
    let mut driver = driver_for(&profile, args.zpl_graphics);
    let options = RenderOptions {
        rotation: None,
        dot_gain: args.dot_gain,
    };
    let out =
        output::render_job(&job, &profile, driver.as_mut(), &options).map_err(|e| match e {
            OutputError::ImbCheck { .. } => Failure::Other(anyhow::anyhow!("render: {e}")),
            other => Failure::Input(format!("render: {other}")),
        })?;
    std::fs::write(&args.output, &out.bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let summary = serde_json::json!({
        "output": args.output.display().to_string(),
        "model": model.id,
        "language": profile.language.name(),
        "dpi": [profile.resolution.x, profile.resolution.y],
        "pages": out.pages.len(),
        "bytes": out.bytes.len(),
        "imbs_verified": out.imb_reports.len(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "{}: {} page(s), {} bytes of {} for {} at {} dpi; {} imb(s) verified",
            args.output.display(),
            out.pages.len(),
            out.bytes.len(),
            profile.language.name(),
            model.id,
            profile.resolution.x,
            out.imb_reports.len()
        );
    }
    Ok(())
}

/// `.png` and `.pdf` outputs are previews; anything else keeps the model's language.
fn language_for(path: &Path) -> Option<Language> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some(Language::Png),
        "pdf" => Some(Language::Pdf),
        _ => None,
    }
}

fn apply_settings(profile: &mut Profile, args: &RenderArgs) {
    profile.native.text = args.native.contains(&NativeKind::Text);
    profile.native.code128 = args.native.contains(&NativeKind::Code128);
    profile.native.imb = args.native.contains(&NativeKind::Imb);
    profile.ascii_only = args.ascii;
    profile.offset_x = args.offset_x;
    profile.offset_y = args.offset_y;
    profile.darkness = args.darkness;
    profile.speed_ips = args.speed;
    profile.copies = args.copies;
    if let Some(media) = args.media {
        profile.media = match media {
            Media::Gap => MediaKind::Gap,
            Media::BlackMark => MediaKind::BlackMark,
            Media::Continuous => MediaKind::Continuous,
        };
    }
}

fn driver_for(profile: &Profile, graphics: ZplGraphics) -> Box<dyn Driver> {
    let encoding = match graphics {
        ZplGraphics::Auto => return lang::driver(profile),
        ZplGraphics::Hex => GraphicEncoding::Hex,
        ZplGraphics::RunLength => GraphicEncoding::RunLength,
        ZplGraphics::Z64 => GraphicEncoding::Z64,
    };
    match profile.language {
        Language::Zpl => Box::new(Zpl::new(profile).with_encoding(encoding)),
        _ => lang::driver(profile),
    }
}

fn read_job(path: &Path) -> Result<String, Failure> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the job from stdin")?;
        return Ok(text);
    }
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
}
