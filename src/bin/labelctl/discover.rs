//! `labelctl printers --discover`: the USB printers attached to this machine, with
//! their IEEE 1284 ids and a `[[printer]]` block to paste into labeld's configuration.
//!
//! Local: it asks libusb (through `labeld_drivers`' USB transport), not the daemon.
//! A printer the kernel's `usblp` driver holds is still listed (its 1284 id comes
//! from sysfs). Finding nothing is not an error (exit 0, with a note on stderr).

use std::collections::HashSet;

use labeld_drivers::models;
use labeld_drivers::transport::usb::{self, FoundPrinter};
use labeld_drivers::transport::{usblp, PrinterUri};
use labeld_drivers::Language;
use serde_json::{json, Value};

use crate::Failure;

/// One printer to show.
struct Entry {
    /// What libusb found, if it was asked.
    found: Option<FoundPrinter>,
    /// The suggested configuration.
    name: String,
    /// Model id, and whether it was recognised (else a generic guess).
    model: &'static str,
    /// How the model was chosen.
    model_note: String,
    /// The address to configure.
    uri: String,
}

/// Runs the discovery and prints it.
pub fn run(json_out: bool) -> Result<(), Failure> {
    let (found, usb_problem) = match usb::try_list_printers() {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut names = HashSet::new();
    let mut entries: Vec<Entry> = found.into_iter().map(|f| entry(f, &mut names)).collect();
    // Without libusb, usblp nodes are still worth showing.
    if usb_problem.is_some() {
        for node in usblp::list_nodes() {
            let name = unique(&mut names, "usb-printer");
            entries.push(Entry {
                found: None,
                name,
                model: "zpl-203",
                model_note: "model unknown: pick one from `labelctl models`".into(),
                uri: PrinterUri::Usblp { path: node }.to_string(),
            });
        }
    }
    if json_out {
        let rows: Vec<Value> = entries.iter().map(entry_json).collect();
        println!("{}", Value::Array(rows));
    } else {
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print_entry(e);
        }
    }
    if entries.is_empty() {
        if !json_out {
            println!("no USB printers found");
        }
        let why = usb_problem
            .map(|p| format!("USB devices cannot be listed here: {p}"))
            .unwrap_or_else(|| {
                "none attached, or not visible to this user (check the udev rule in systemd/ and the cable)"
                    .into()
            });
        eprintln!("labelctl: note: {why}");
    } else if let Some(p) = usb_problem {
        eprintln!("labelctl: note: libusb unavailable ({p}); only usblp nodes are listed");
    }
    Ok(())
}

fn entry(found: FoundPrinter, names: &mut HashSet<String>) -> Entry {
    let known = models::find_usb(found.vendor, found.product);
    let (model, model_note) = match known {
        Some(m) => (m.id, format!("recognised by USB id: {}", m.description)),
        None => {
            let hint = found.device_id.as_ref().and_then(|d| d.language_hint());
            match hint.and_then(generic_for) {
                Some(id) => (
                    id,
                    format!(
                        "generic guess from the 1284 command set ({}); check the resolution against `labelctl models`",
                        hint.map_or("?", Language::name)
                    ),
                ),
                None => ("zpl-203", "model unknown: pick one from `labelctl models`".into()),
            }
        }
    };
    let base = match known {
        Some(m) => m.id.to_owned(),
        None => slug(
            found
                .product_name
                .as_deref()
                .or_else(|| found.device_id.as_ref().and_then(|d| d.model()))
                .unwrap_or("usb-printer"),
        ),
    };
    Entry {
        name: unique(names, &base),
        model,
        model_note,
        uri: found.uri.to_string(),
        found: Some(found),
    }
}

/// The generic model for a language.
fn generic_for(language: Language) -> Option<&'static str> {
    Some(match language {
        Language::Zpl => "zpl-203",
        Language::Epl2 => "epl-203",
        Language::BrotherQl => "brother-ql-300",
        Language::Dymo => "dymo-300",
        Language::Pcl => "pcl-300",
        Language::Png | Language::Pdf => return None,
    })
}

/// A printer name labeld accepts: `[a-z0-9._-]`, starting with a letter or digit.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-')
        .chars()
        .take(56)
        .collect();
    if out.is_empty() {
        "usb-printer".into()
    } else {
        out
    }
}

fn unique(names: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn toml_block(e: &Entry) -> String {
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    format!(
        "[[printer]]\nname = {}\nmodel = {}  # {}\nuri = {}\n",
        q(&e.name),
        q(e.model),
        e.model_note,
        q(&e.uri)
    )
}

fn print_entry(e: &Entry) {
    match &e.found {
        Some(f) => {
            let what = [f.manufacturer.as_deref(), f.product_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{} {:04x}:{:04x}{} at bus {} address {}{}",
                if what.is_empty() { "USB device" } else { &what },
                f.vendor,
                f.product,
                f.serial
                    .as_deref()
                    .map(|s| format!(" serial {s}"))
                    .unwrap_or_default(),
                f.bus,
                f.address,
                f.port_path
                    .as_deref()
                    .map(|p| format!(" (port {p})"))
                    .unwrap_or_default()
            );
            match &f.device_id {
                Some(id) => println!("  1284 id: {}", id.raw()),
                None => println!("  1284 id: unknown"),
            }
            if let Some(p) = &f.problem {
                println!("  problem: {p}");
            }
        }
        None => println!("{} (usblp node; identity not read)", e.uri),
    }
    print!("{}", toml_block(e));
}

fn entry_json(e: &Entry) -> Value {
    let f = e.found.as_ref();
    json!({
        "vendor": f.map(|f| format!("{:04x}", f.vendor)),
        "product": f.map(|f| format!("{:04x}", f.product)),
        "serial": f.and_then(|f| f.serial.clone()),
        "manufacturer": f.and_then(|f| f.manufacturer.clone()),
        "product_name": f.and_then(|f| f.product_name.clone()),
        "bus": f.map(|f| f.bus),
        "address": f.map(|f| f.address),
        "port_path": f.and_then(|f| f.port_path.clone()),
        "device_id": f.and_then(|f| f.device_id.as_ref().map(|d| d.raw().to_owned())),
        "problem": f.and_then(|f| f.problem.clone()),
        "name": e.name,
        "model": e.model,
        "model_note": e.model_note,
        "uri": e.uri,
        "toml": toml_block(e),
    })
}
