//! `labelctl tray` and `labelctl container`: the Code 128 mail-handling barcodes.
//!
//! Both print the data, the human-readable forms, the Code 128 symbol values and the
//! modules (`1` bar, `0` space), or all of it as JSON with `--json`. Labels with these
//! barcodes come with the layout stage.

use crate::Failure;
use clap::{Args, ValueEnum};
use labeld::encode::code128::Code128;
use labeld::encode::container::{ContainerBarcode, ContainerEncoding, SerialPadding};
use labeld::encode::tray::{TrayBarcode, TrayFields};
use serde_json::json;

/// Arguments of `labelctl tray`.
#[derive(Args)]
pub struct TrayArgs {
    /// The 24 digits (spaces between groups allowed). Omit to build from the fields.
    digits: Option<String>,
    /// Destination ZIP Code (5 digits).
    #[arg(long, conflicts_with = "digits", requires_all = ["cin", "mailer_id", "serial"])]
    zip: Option<String>,
    /// Content identifier number (3 digits).
    #[arg(long)]
    cin: Option<String>,
    /// Processing code (1 digit; meaning per USPS-L-3216).
    #[arg(long = "processing-code", default_value_t = 1)]
    processing_code: u8,
    /// Mailer ID (6 digits, or 9 starting with 9).
    #[arg(long = "mailer-id")]
    mailer_id: Option<String>,
    /// Serial (8 digits with a 6-digit Mailer ID, 5 with a 9-digit one).
    #[arg(long)]
    serial: Option<String>,
    /// Label type (1 digit; meaning per USPS-L-3216).
    #[arg(long = "label-type", default_value_t = 1)]
    label_type: u8,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// How the container serial is padded to its full length.
#[derive(Clone, Copy, ValueEnum)]
enum Padding {
    /// Leading zeros (recommended).
    Zeros,
    /// Leading dashes.
    Dashes,
}

/// Which Code 128 encoding the container symbol uses.
#[derive(Clone, Copy, ValueEnum)]
enum Encoding {
    /// Code set B throughout: the length USPS recommends (6.25-7.25 in).
    SetB,
    /// The fewest modules.
    Shortest,
}

/// Arguments of `labelctl container`.
#[derive(Args)]
pub struct ContainerArgs {
    /// Mailer ID (6 digits 0-8xxxxx, or 9 digits 9xxxxxxxx); or, with --data, omitted.
    #[arg(required_unless_present = "data")]
    mailer_id: Option<String>,
    /// Serial: up to 12 (6-digit Mailer ID) or 9 (9-digit) letters and digits.
    #[arg(required_unless_present = "data")]
    serial: Option<String>,
    /// The whole 21-character data (`99M…`, spaces allowed) instead of the fields.
    #[arg(long, conflicts_with_all = ["mailer_id", "serial"])]
    data: Option<String>,
    /// Padding for a short serial.
    #[arg(long, value_enum, default_value = "zeros")]
    padding: Padding,
    /// Code 128 encoding of the symbol.
    #[arg(long, value_enum, default_value = "set-b")]
    encoding: Encoding,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `labelctl tray`.
pub fn tray(args: TrayArgs) -> Result<(), Failure> {
    let tray = match (&args.digits, &args.zip) {
        (Some(digits), _) => TrayBarcode::parse(digits),
        (None, Some(zip)) => TrayBarcode::from_fields(&TrayFields {
            zip,
            cin: args.cin.as_deref().unwrap_or_default(),
            processing_code: args.processing_code,
            mailer_id: args.mailer_id.as_deref().unwrap_or_default(),
            serial: args.serial.as_deref().unwrap_or_default(),
            label_type: args.label_type,
        }),
        (None, None) => {
            return Err(Failure::Input(
                "tray: give the 24 digits, or --zip, --cin, --mailer-id and --serial".into(),
            ))
        }
    }
    .map_err(|e| Failure::Input(format!("tray: {e}")))?;
    let symbol = tray.symbol();
    if args.json {
        let value = json!({
            "digits": tray.digits(),
            "human_readable": tray.grouped(),
            "fields": {
                "zip": tray.zip(),
                "cin": tray.cin(),
                "processing_code": tray.processing_code(),
                "mailer_id": tray.mailer_id(),
                "serial": tray.serial(),
                "label_type": tray.label_type(),
            },
            "symbol": symbol_json(&symbol),
        });
        println!("{value}");
    } else {
        println!("digits:         {}", tray.digits());
        println!("human-readable: {}", tray.grouped());
        println!("fields:         {}", tray.breakdown());
        print_symbol(&symbol);
    }
    Ok(())
}

/// Runs `labelctl container`.
pub fn container(args: ContainerArgs) -> Result<(), Failure> {
    let padding = match args.padding {
        Padding::Zeros => SerialPadding::Zeros,
        Padding::Dashes => SerialPadding::Dashes,
    };
    let container = match (&args.data, &args.mailer_id, &args.serial) {
        (Some(data), _, _) => ContainerBarcode::parse(data),
        (None, Some(mid), Some(serial)) => ContainerBarcode::with_padding(mid, serial, padding),
        _ => {
            return Err(Failure::Input(
                "container: give MAILER_ID SERIAL, or --data".into(),
            ))
        }
    }
    .map_err(|e| Failure::Input(format!("container: {e}")))?;
    let encoding = match args.encoding {
        Encoding::SetB => ContainerEncoding::SetB,
        Encoding::Shortest => ContainerEncoding::Shortest,
    };
    let symbol = container.symbol(encoding);
    if args.json {
        let value = json!({
            "data": container.data(),
            "human_readable": container.human_readable(),
            "mailer_id": container.mailer_id(),
            "serial": container.serial(),
            "symbol": symbol_json(&symbol),
        });
        println!("{value}");
    } else {
        println!("data:           {}", container.data());
        println!("human-readable: {}", container.human_readable());
        println!("symbology:      GS1-128 (FNC1, AI 99)");
        print_symbol(&symbol);
    }
    Ok(())
}

fn print_symbol(symbol: &Code128) {
    let values: Vec<String> = symbol.values().iter().map(u8::to_string).collect();
    println!("values:         {}", values.join(" "));
    println!(
        "modules ({}):  {}",
        symbol.modules(),
        symbol.module_string()
    );
}

fn symbol_json(symbol: &Code128) -> serde_json::Value {
    json!({
        "values": symbol.values(),
        "check": symbol.check_value(),
        "module_count": symbol.modules(),
        "modules": symbol.module_string(),
        "quiet_zone_modules": labeld::encode::code128::QUIET_ZONE_MODULES,
    })
}
