//! `labelctl models`: the devices and generic profiles labeld knows.

use crate::Failure;
use clap::Args;
use labeld_drivers::models::MODELS;
use serde_json::json;

/// Arguments of `labelctl models`.
#[derive(Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `labelctl models`.
pub fn run(args: ModelsArgs) -> Result<(), Failure> {
    if args.json {
        let rows: Vec<_> = MODELS
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "description": m.description,
                    "language": m.language.name(),
                    "dpi": [m.dpi.0, m.dpi.1],
                    "width_dots": m.width_dots,
                    "width_in": f64::from(m.width_dots) / m.dpi.0,
                    "usb": m.usb.map(|(v, p)| format!("{v:04x}:{p:04x}")),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:>7} {:>6} {:>7} {:<10} description",
        "id", "language", "dpi", "dots", "inches", "usb"
    );
    for m in MODELS {
        println!(
            "{:<20} {:<10} {:>7} {:>6} {:>7.2} {:<10} {}",
            m.id,
            m.language.name(),
            m.dpi.0,
            m.width_dots,
            f64::from(m.width_dots) / m.dpi.0,
            m.usb
                .map(|(v, p)| format!("{v:04x}:{p:04x}"))
                .unwrap_or_else(|| "-".into()),
            m.description
        );
    }
    Ok(())
}
