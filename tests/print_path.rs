//! The whole print path, decoded back by independent tools: every example job is
//! rendered for a printer, encoded in its language, then read back by something
//! that is not labeld (the `zpl` crate for ZPL, the `png` crate for PNG, poppler's
//! `pdftoppm` for PDF). The decoded picture must equal the rendered page dot for dot,
//! and every IMb in it must pass the verifier at the printer's resolution.
//!
//! EPL2, DYMO, Brother QL and PCL are decoded dot for dot in the drivers crate's
//! tests (`drivers/tests/`), by decoders written from their references and, for
//! Brother QL, by `brother_ql analyze`.

use labeld::output;
use labeld::render::label::RenderOptions;
use labeld::verify;
use labeld_drivers::{lang, models, Bitmap, Language, Profile};
use std::path::PathBuf;
use std::process::Command;

const JOBS: &[&str] = &[
    "address-4x6",
    "address-dymo",
    "address-62mm",
    "envelope",
    "tray",
    "placard-4x6",
    "custom",
];

fn job(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/jobs/{name}.json"));
    std::fs::read_to_string(path).expect("example job")
}

/// Renders `job` for `profile` and returns (bytes, the page bitmaps).
fn print(job_name: &str, profile: &Profile) -> Option<(Vec<u8>, Vec<Bitmap>)> {
    let mut driver = lang::driver(profile);
    match output::render_job(
        &job(job_name),
        profile,
        driver.as_mut(),
        &RenderOptions::default(),
    ) {
        Ok(out) => Some((
            out.bytes,
            out.pages.into_iter().map(|p| p.page.bitmap).collect(),
        )),
        // A label this printer cannot take (too wide): the error is tested elsewhere.
        Err(output::OutputError::Render(_)) => None,
        Err(e) => panic!("{job_name} on {}: {e}", profile.model),
    }
}

/// The IMb in `bitmap` verifies (the verifier finds the symbol anywhere), whichever
/// way the label was turned onto the page.
fn assert_imb_verifies(bitmap: &Bitmap, profile: &Profile, what: &str) {
    use labeld_drivers::Rotation;
    let (x, y) = (profile.resolution.x, profile.resolution.y);
    let mut errors = Vec::new();
    for turn in [
        Rotation::None,
        Rotation::Cw90,
        Rotation::Cw270,
        Rotation::Cw180,
    ] {
        let turned = labeld::render::label::rotate(bitmap, turn);
        let (dx, dy) = match turn {
            Rotation::Cw90 | Rotation::Cw270 => (y, x),
            _ => (x, y),
        };
        match verify::verify_imb(&turned, dx, dy, 0) {
            Ok(report) => {
                assert!(report.is_compliant(), "{what}: {:?}", report.violations);
                return;
            }
            Err(e) => errors.push(format!("{turn:?}: {e}")),
        }
    }
    panic!("{what}: no imb read back: {}", errors.join("; "));
}

/// ZPL through the `zpl` crate (a ZD621 profile at the printer's whole dpi).
#[test]
fn zpl_decodes_back_through_the_zpl_crate() {
    for model in ["zpl-203", "zpl-300", "zpl-600"] {
        let profile = models::find(model).expect("model").profile();
        for &name in JOBS {
            let Some((bytes, pages)) = print(name, &profile) else {
                continue;
            };
            let decoded = zpl_crate(
                &bytes,
                profile.resolution.x.round() as u32,
                pages[0].width(),
                pages[0].height(),
            );
            let what = format!("{name} on {model}");
            assert_eq!(first_difference(&decoded, &pages[0]), None, "{what}");
            if name != "tray" && name != "placard-4x6" {
                assert_imb_verifies(&decoded, &profile, &what);
            }
        }
    }
}

/// PNG through the `png` crate.
#[test]
fn png_decodes_back() {
    let mut profile = models::find("zpl-300").expect("model").profile();
    profile.language = Language::Png;
    for &name in JOBS {
        let Some((bytes, pages)) = print(name, &profile) else {
            continue;
        };
        let decoded = read_png(&bytes);
        assert_eq!(first_difference(&decoded, &pages[0]), None, "{name}");
    }
}

/// PDF through poppler's `pdftoppm`.
#[test]
fn pdf_decodes_back_through_pdftoppm() {
    if Command::new("pdftoppm").arg("-v").output().is_err() {
        if std::env::var_os("LABELD_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
            panic!("pdftoppm not found (apt-get install poppler-utils)");
        }
        eprintln!("\n*** SKIPPED: pdftoppm not found (apt-get install poppler-utils) ***\n");
        return;
    }
    let profile = models::find("pdf-300").expect("model").profile();
    let dir = std::env::temp_dir().join(format!("labeld-pdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for &name in JOBS {
        let Some((bytes, pages)) = print(name, &profile) else {
            continue;
        };
        let pdf = dir.join(format!("{name}.pdf"));
        std::fs::write(&pdf, &bytes).expect("write pdf");
        let stem = dir.join(name);
        let status = Command::new("pdftoppm")
            .args(["-mono", "-r", "300", "-singlefile"])
            .arg(&pdf)
            .arg(&stem)
            .status()
            .expect("pdftoppm runs");
        assert!(status.success(), "{name}: pdftoppm failed");
        let pbm = std::fs::read(stem.with_extension("pbm")).expect("pbm written");
        let decoded = read_pbm(&pbm);
        assert_eq!(first_difference(&decoded, &pages[0]), None, "{name}");
        assert_imb_or_none(&decoded, &profile, name);
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn assert_imb_or_none(bitmap: &Bitmap, profile: &Profile, name: &str) {
    if !matches!(name, "tray" | "placard-4x6") {
        assert_imb_verifies(bitmap, profile, name);
    }
}

/// Renders the first label of `zpl` with the `zpl` crate, cropped to `width` ×
/// `height` (the crate's canvas is the printer's full width).
fn zpl_crate(zpl: &[u8], dpi: u32, width: u32, height: u32) -> Bitmap {
    let options = zpl::Options {
        dpi,
        ..zpl::render::profiles::ZD621_203_DPI
    };
    let document =
        zpl::render::render_with_limits(&printable(zpl), options, zpl::render::Limits::unlimited())
            .expect("zpl crate renders our zpl");
    let scene = document.labels.first().expect("one label");
    let raster =
        zpl::output::raster::rasterize_with_limits(scene, zpl::output::Limits::unlimited())
            .expect("rasterizes");
    let mut bitmap = Bitmap::new(width, height);
    for y in 0..height.min(raster.height) {
        for x in 0..width.min(raster.width) {
            if raster.pixels[(y * raster.width + x) as usize] < 128 {
                bitmap.set(x, y, true);
            }
        }
    }
    bitmap
}

/// Our ZPL without the device-setting commands the `zpl` crate does not model
/// (`~JX`, `~SD`, `^MN`, `^MD`, `^PR`, `^PQ`): they change nothing on the label.
fn printable(zpl: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(zpl).expect("zpl is ascii/utf-8");
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(['^', '~']) {
        out.push_str(&rest[..start]);
        let command = &rest[start..];
        let end = command[1..]
            .find(['^', '~'])
            .map_or(command.len(), |i| i + 1);
        let name = command.get(1..3).unwrap_or("");
        let device_only = matches!(
            (command.as_bytes()[0], name),
            (b'~', "JX") | (b'~', "SD") | (b'^', "MN") | (b'^', "MD") | (b'^', "PR") | (b'^', "PQ")
        );
        if !device_only {
            out.push_str(&command[..end]);
        }
        rest = &command[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

fn read_png(bytes: &[u8]) -> Bitmap {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("png");
    let info = reader.info().clone();
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("frame");
    let mut bitmap = Bitmap::new(info.width, info.height);
    for y in 0..info.height {
        for x in 0..info.width {
            let byte = buf[y as usize * frame.line_size + (x / 8) as usize];
            bitmap.set(x, y, byte & (0x80 >> (x % 8)) == 0);
        }
    }
    bitmap
}

/// A binary PBM (`P4`): 1 = black, rows padded to whole bytes.
fn read_pbm(bytes: &[u8]) -> Bitmap {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 3 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if bytes[at] == b'#' {
            while bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(
            std::str::from_utf8(&bytes[start..at])
                .expect("header")
                .to_owned(),
        );
    }
    assert_eq!(fields[0], "P4");
    let (w, h): (u32, u32) = (fields[1].parse().expect("w"), fields[2].parse().expect("h"));
    let data = &bytes[at + 1..];
    let stride = w.div_ceil(8) as usize;
    let mut bitmap = Bitmap::new(w, h);
    for y in 0..h {
        for x in 0..w {
            if data[y as usize * stride + (x / 8) as usize] & (0x80 >> (x % 8)) != 0 {
                bitmap.set(x, y, true);
            }
        }
    }
    bitmap
}

fn first_difference(a: &Bitmap, b: &Bitmap) -> Option<String> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Some(format!(
            "size {}x{} vs {}x{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        ));
    }
    for y in 0..a.height() {
        if a.row(y) != b.row(y) {
            let x = (0..a.width())
                .find(|&x| a.get(x, y) != b.get(x, y))
                .unwrap_or(0);
            return Some(format!("first difference at ({x}, {y})"));
        }
    }
    None
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Random address content: either a typed error, or ZPL that the `zpl` crate
    /// decodes to exactly the rendered page, with the IMb verifying.
    #[test]
    fn random_addresses_give_zpl_the_decoder_accepts(
        lines in proptest::collection::vec("[A-Z0-9 #.,-]{1,40}", 1..6),
        serial in 0u32..1_000_000_000,
    ) {
        let job = serde_json::json!({
            "template": "address", "size": "4x6",
            "imb": {"tracking": format!("00270123456{serial:09}"), "routing": "987654321"},
            "to": lines,
        });
        let profile = models::find("zpl-203").expect("model").profile();
        let mut driver = lang::driver(&profile);
        match output::render_job(&job.to_string(), &profile, driver.as_mut(), &RenderOptions::default()) {
            Ok(out) => {
                let page = &out.pages[0].page.bitmap;
                let decoded = zpl_crate(&out.bytes, 203, page.width(), page.height());
                proptest::prop_assert_eq!(first_difference(&decoded, page), None);
                assert_imb_verifies(&decoded, &profile, "random address");
            }
            Err(output::OutputError::Layout(_)) => {}
            Err(e) => proptest::prop_assert!(false, "unexpected error: {}", e),
        }
    }
}
