//! Golden files: a few labels per printer language, byte for byte, with a PNG of
//! each page beside them so a reviewer can look at what the bytes print.
//!
//! `LABELD_BLESS=1 cargo test --test main golden` rewrites them after a deliberate
//! change; review the PNGs (and `git diff --stat`) before committing.

use labeld::output;
use labeld::render::label::RenderOptions;
use labeld_drivers::{lang, models, preview};
use std::path::PathBuf;

/// (golden name, example job, model, native elements)
const CASES: &[(&str, &str, &str, bool)] = &[
    ("address-4x6.zpl-203.zpl", "address-4x6", "zpl-203", false),
    (
        "address-4x6.zpl-203-native.zpl",
        "address-4x6",
        "zpl-203",
        true,
    ),
    ("address-4x6.epl-203.epl", "address-4x6", "epl-203", false),
    ("tray.zpl-300.zpl", "tray", "zpl-300", false),
    (
        "address-dymo.dymo-lw450.lw",
        "address-dymo",
        "dymo-lw450",
        false,
    ),
    (
        "address-62mm.brother-ql-820nwb.ql",
        "address-62mm",
        "brother-ql-820nwb",
        false,
    ),
    ("envelope.pcl-300.pcl", "envelope", "pcl-300", false),
    ("placard.pdf-300.pdf", "placard", "pdf-300", false),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn golden_files_match() {
    let bless = std::env::var_os("LABELD_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for &(name, job, model, native) in CASES {
        let job_path = root().join("examples/jobs").join(format!("{job}.json"));
        let job_text = std::fs::read_to_string(&job_path).expect("example job");
        let mut profile = models::find(model).expect("model").profile();
        profile.native.text = native;
        profile.native.code128 = native;
        profile.native.imb = native;
        let mut driver = lang::driver(&profile);
        let out = output::render_job(
            &job_text,
            &profile,
            driver.as_mut(),
            &RenderOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));

        let golden = root().join("tests/golden").join(name);
        let mut preview_png = Vec::new();
        let page = &out.pages[0].page;
        preview::write_png(
            &page.bitmap,
            page.resolution.x,
            page.resolution.y,
            &mut preview_png,
        )
        .expect("png");
        let golden_png = golden.with_extension(format!(
            "{}.png",
            golden.extension().and_then(|e| e.to_str()).unwrap_or("out")
        ));
        if bless {
            std::fs::write(&golden, &out.bytes).expect("write golden");
            std::fs::write(&golden_png, &preview_png).expect("write golden png");
            continue;
        }
        match std::fs::read(&golden) {
            Ok(expected) if expected == out.bytes => {}
            Ok(expected) => failures.push(format!(
                "{name}: {} bytes, golden has {} (first difference at byte {})",
                out.bytes.len(),
                expected.len(),
                expected
                    .iter()
                    .zip(&out.bytes)
                    .take_while(|(a, b)| a == b)
                    .count()
            )),
            Err(e) => failures.push(format!("{name}: {e} (run with LABELD_BLESS=1 to create)")),
        }
        match std::fs::read(&golden_png) {
            Ok(expected) if expected == preview_png => {}
            _ => failures.push(format!(
                "{name}: preview png differs from {}",
                golden_png.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ:\n{}",
        failures.join("\n")
    );
}
