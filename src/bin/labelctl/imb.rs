//! `labelctl imb …`: the Intelligent Mail barcode from the command line.

use crate::Failure;
use anyhow::Context;
use clap::{Args, Subcommand};
use labeld::encode::imb::{self, Routing, Tracking};
use labeld::{geometry, render, verify};
use labeld_drivers::preview;
use std::io::{BufRead, Write};

/// `labelctl imb` subcommands.
#[derive(Subcommand)]
pub enum ImbCommand {
    /// Print the 65 bar letters (A, D, F, T) for a tracking code and optional routing
    /// code. With TRACKING `-`, read `TRACKING` or `TRACKING,ROUTING` lines from stdin
    /// and write one line per input line: the letters or `error NN: message`.
    Encode {
        /// 20-digit tracking code (Barcode ID, STID, Mailer ID, serial), or `-`.
        tracking: String,
        /// Routing code: 5, 9 or 11 digits (ZIP, ZIP+4, delivery point).
        routing: Option<String>,
    },
    /// Decode 65 bar letters back to `TRACKING,ROUTING`.
    Decode {
        /// The 65 letters A, D, F, T.
        letters: String,
    },
    /// Write a 1-bit PNG of the barcode with its quiet zones, at the printer's
    /// exact dot geometry.
    Render(RenderArgs),
}

/// Arguments of `labelctl imb render`.
#[derive(Args)]
pub struct RenderArgs {
    /// 20-digit tracking code.
    tracking: String,
    /// Routing code: 5, 9 or 11 digits.
    routing: Option<String>,
    /// Printer resolution along the row of bars (dots per inch, 150-1200).
    #[arg(long)]
    dpi: f64,
    /// Resolution along the bars' height, when it differs from --dpi.
    #[arg(long = "dpi-y")]
    dpi_y: Option<f64>,
    /// Dots by which the printer widens each bar (thermal heads, toner); bars are
    /// drawn that much narrower.
    #[arg(long = "dot-gain", default_value_t = 0)]
    dot_gain: u32,
    /// Output PNG file.
    #[arg(short = 'o', long = "output")]
    output: std::path::PathBuf,
    /// Also print the geometry (dots and inches) as JSON on stdout.
    #[arg(long)]
    geometry: bool,
}

/// Runs one `labelctl imb` subcommand.
pub fn run(cmd: ImbCommand) -> Result<(), Failure> {
    match cmd {
        ImbCommand::Encode { tracking, routing } if tracking == "-" => {
            if routing.is_some() {
                return Err(Failure::Input(
                    "with `-` the routing code comes from each input line (TRACKING,ROUTING)"
                        .into(),
                ));
            }
            let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
            encode_stream(stdin, std::io::stdout().lock()).context("streaming encode")?;
            Ok(())
        }
        ImbCommand::Encode { tracking, routing } => {
            let symbol = parse(&tracking, routing.as_deref())?;
            let mut out = std::io::stdout().lock();
            out.write_all(&symbol.letters())?;
            out.write_all(b"\n")?;
            Ok(())
        }
        ImbCommand::Decode { letters } => {
            let decoded = imb::decode_letters(&letters)
                .map_err(|e| Failure::Input(format!("cannot decode: {e}")))?;
            println!("{},{}", decoded.tracking, decoded.routing);
            Ok(())
        }
        ImbCommand::Render(args) => render(args),
    }
}

fn parse(tracking: &str, routing: Option<&str>) -> Result<imb::Imb, Failure> {
    imb::encode_str(tracking, routing.unwrap_or("")).map_err(|e| Failure::Input(e.to_string()))
}

/// Longest input line the stream encoder holds in memory. Longer lines are
/// answered with a length error without being stored, so memory stays constant
/// whatever the input.
const MAX_LINE: usize = 4096;

/// Encodes `TRACKING[,ROUTING]` lines from `input` to `output`, one line out per
/// line in, in order, in constant memory. Invalid lines produce `error NN: message`.
///
/// Lines are encoded where they lie in the reader's buffer; only a line that
/// straddles two reads is copied (into `partial`, at most [`MAX_LINE`] bytes).
pub fn encode_stream(mut input: impl BufRead, output: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, output);
    let mut partial = PartialLine::default();
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let mut rest = buffer;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if partial.is_empty() {
                encode_line(&rest[..end], &mut out)?;
            } else {
                partial.push(&rest[..end]);
                partial.finish(&mut out)?;
            }
            rest = &rest[end + 1..];
        }
        partial.push(rest);
        let read = buffer.len();
        input.consume(read);
    }
    if !partial.is_empty() {
        partial.finish(&mut out)?;
    }
    out.flush()
}

/// The beginning of a line that continues in the next read.
#[derive(Default)]
struct PartialLine {
    /// The bytes kept so far (at most [`MAX_LINE`]).
    bytes: Vec<u8>,
    /// The line's full length, including bytes not kept.
    len: usize,
}

impl PartialLine {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, more: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&more[..more.len().min(room)]);
        self.len += more.len();
    }

    fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.len > MAX_LINE {
            writeln!(
                out,
                "error 09: line has {} bytes; a tracking code is 20 digits (lines over {MAX_LINE} bytes are not read)",
                self.len
            )?;
        } else {
            encode_line(&self.bytes, out)?;
        }
        self.bytes.clear();
        self.len = 0;
        Ok(())
    }
}

/// Answers one input line (without its `\n`): the letters or the error.
fn encode_line(line: &[u8], out: &mut impl Write) -> std::io::Result<()> {
    if line.len() > MAX_LINE {
        let mut partial = PartialLine::default();
        partial.push(line);
        return partial.finish(out);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = match std::str::from_utf8(line) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    };
    let (tracking, routing) = text.split_once(',').unwrap_or((&text, ""));
    match Tracking::parse(tracking).and_then(|t| Ok((t, Routing::parse(routing)?))) {
        Ok((t, r)) => out.write_all(&imb::encode(&t, &r).letters())?,
        Err(err) => write!(out, "{err}")?,
    }
    out.write_all(b"\n")
}

fn render(args: RenderArgs) -> Result<(), Failure> {
    let symbol = parse(&args.tracking, args.routing.as_deref())?;
    let dpi_y = args.dpi_y.unwrap_or(args.dpi);
    let geometry = geometry::imb_geometry(args.dpi, dpi_y, args.dot_gain)
        .map_err(|e| Failure::Input(format!("imb render: {e}")))?;
    let bitmap = render::imb::imb_bitmap(&symbol, &geometry);
    // The picture we write must be one the verifier accepts: if this ever fails,
    // the renderer is wrong, and no file is better than a bad barcode.
    let report = verify::verify_imb(&bitmap, args.dpi, dpi_y, args.dot_gain)
        .context("rendered barcode failed verification (a labeld bug; please report it)")?;
    if !report.is_compliant() || report.letters != symbol.letters_string() {
        return Err(Failure::Other(anyhow::anyhow!(
            "rendered barcode failed verification (a labeld bug; please report it): {}",
            report
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut png = Vec::new();
    preview::write_png(&bitmap, args.dpi, dpi_y, &mut png).context("encoding png")?;
    std::fs::write(&args.output, png)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if args.geometry {
        let json = serde_json::json!({
            "dots": geometry,
            "inches": geometry.inches(),
            "bitmap": { "width": bitmap.width(), "height": bitmap.height() },
        });
        println!("{json:#}");
    }
    Ok(())
}
