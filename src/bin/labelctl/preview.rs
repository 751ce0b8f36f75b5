//! `labelctl preview JOB.json -o OUT.png`: a label job rendered to PNG (or PDF) here,
//! without the daemon, as `labelctl render` does.
//!
//! A job may leave its IMb serials to labeld (`"imb": {"mailer_id": …,
//! "service_type": …}`); the preview fills in a zero serial and says so on stderr, so
//! a template can be looked at before it is submitted. The bars then differ from the
//! printed ones, the layout does not.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use labeld::encode::imb::Tracking;
use labeld::output::{self, OutputError};
use labeld::render::label::RenderOptions;
use labeld_drivers::{lang, models, Language};
use serde_json::{json, Value};

use crate::jobs::read_json_object;
use crate::Failure;

/// Arguments of `labelctl preview`.
#[derive(Args)]
pub struct PreviewArgs {
    /// The job: a JSON file (see docs/labels.md), or `-` for stdin.
    job: PathBuf,
    /// Output file: `.png` or `.pdf`.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// The printer model whose resolution and width the preview uses
    /// (`labelctl models` lists them).
    #[arg(long, default_value = "zpl-203")]
    model: String,
    /// Print a JSON summary instead of a line of text.
    #[arg(long)]
    json: bool,
}

/// Runs `labelctl preview`.
pub fn run(args: PreviewArgs) -> Result<(), Failure> {
    let language = match extension(&args.output).as_deref() {
        Some("png") => Language::Png,
        Some("pdf") => Language::Pdf,
        _ => {
            return Err(Failure::Input(format!(
            "preview: {} must end in .png or .pdf (for printer languages use `labelctl render`)",
            args.output.display()
        )))
        }
    };
    let model = models::find(&args.model).ok_or_else(|| {
        Failure::Input(format!(
            "preview: unknown model {:?} (labelctl models lists them)",
            args.model
        ))
    })?;
    let (_, job) = read_json_object(&args.job, "job")?;
    let mut job = Value::Object(job);
    let mut filled = Vec::new();
    fill_serials(&mut job, "job", &mut filled)?;
    for (at, tracking) in &filled {
        eprintln!(
            "labelctl: note: {at} has no serial; previewed with serial zero ({tracking}). \
             labeld allocates the real one when the job is submitted"
        );
    }
    let mut profile = model.profile();
    profile.language = language;
    let mut driver = lang::driver(&profile);
    let options = RenderOptions {
        rotation: None,
        dot_gain: 0,
    };
    let out =
        output::render_job(&job.to_string(), &profile, driver.as_mut(), &options).map_err(|e| {
            match e {
                OutputError::ImbCheck { .. } => Failure::Other(anyhow::anyhow!("preview: {e}")),
                other => Failure::Input(format!("preview: {other}")),
            }
        })?;
    std::fs::write(&args.output, &out.bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if args.json {
        println!(
            "{}",
            json!({
                "output": args.output.display().to_string(),
                "model": model.id,
                "pages": out.pages.len(),
                "bytes": out.bytes.len(),
                "zero_serials": filled.iter().map(|(at, _)| at.clone()).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "{}: {} page(s) for {} at {} dpi{}",
            args.output.display(),
            out.pages.len(),
            model.id,
            profile.resolution.x,
            if filled.is_empty() {
                String::new()
            } else {
                format!("; {} IMb(s) with serial zero", filled.len())
            }
        );
    }
    Ok(())
}

fn extension(path: &Path) -> Option<String> {
    Some(path.extension()?.to_str()?.to_ascii_lowercase())
}

/// Replaces every `"imb"` that asks for an allocated serial with a full tracking
/// code whose serial is zero; records where it did so.
fn fill_serials(
    value: &mut Value,
    at: &str,
    filled: &mut Vec<(String, String)>,
) -> Result<(), Failure> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let here = format!("{at}.{key}");
                if key == "imb" {
                    if let Some(tracking) = zero_tracking(child, &here)? {
                        filled.push((here.clone(), tracking));
                        continue;
                    }
                }
                fill_serials(child, &here, filled)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                fill_serials(child, &format!("{at}[{i}]"), filled)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// For an IMb without `tracking` but with `mailer_id`/`service_type`: turns it into
/// `{"tracking": <zero serial>, "routing": …}` and returns the tracking code.
fn zero_tracking(imb: &mut Value, at: &str) -> Result<Option<String>, Failure> {
    let Value::Object(map) = imb else {
        return Ok(None);
    };
    let has_tracking = map
        .get("tracking")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let allocating = ["mailer_id", "service_type", "barcode_id"]
        .iter()
        .any(|k| map.contains_key(*k));
    if has_tracking || !allocating {
        return Ok(None);
    }
    let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mailer_id = field("mailer_id");
    let service_type = field("service_type");
    let barcode_id = map
        .get("barcode_id")
        .and_then(Value::as_str)
        .unwrap_or("00")
        .to_owned();
    if mailer_id.is_empty() || service_type.is_empty() {
        return Err(Failure::Input(format!(
            "preview: {at} needs mailer_id and service_type to have a serial allocated (or a full 20-digit tracking)"
        )));
    }
    let width = if mailer_id.starts_with('9') { 6 } else { 9 };
    let tracking =
        Tracking::from_fields(&barcode_id, &service_type, &mailer_id, &"0".repeat(width))
            .map_err(|e| Failure::Input(format!("preview: {at}: {e}")))?;
    let routing = map
        .get("routing")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    *imb = json!({"tracking": tracking.as_str(), "routing": routing});
    Ok(Some(tracking.as_str().to_owned()))
}
