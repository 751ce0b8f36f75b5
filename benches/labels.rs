//! Label benchmarks (divan): job JSON → printer bytes, per label. Numbers and how they
//! were taken: `BENCHMARKS.md`, section "Labels: bytes on the wire and render time".
//!
//! `cargo bench --bench labels` runs:
//! - `job_to_bytes`: [`labeld::output::render_job`] on an example job for a model —
//!   JSON parse and layout, text, IMb and Code 128 drawing, read-back verification of
//!   every drawn IMb, and the driver's encoding (for ZPL: bounding-box crop and the
//!   smallest of run-length / Z64 / B64 / hex, unless a case forces one). One iteration
//!   is one label (every case here is a one-page job), so the time column is per label.
//! - `stage::{layout, render, verify, encode}`: the same pipeline one stage at a time,
//!   on the same inputs, to show where the time goes: `layout_json`; `render_with`
//!   (the 1-bit page, drawn); `verify_imbs` (reading every drawn IMb back); the driver's
//!   `start_job` + `write_page` + `end_job` on the already-rendered page.
//!
//! The cases ([`CASES`]) are `MODEL JOB [VARIANT]`: the 4x6 address label
//! (`examples/jobs/address-4x6.json`) and the tray tag (`tray.json`) on the generic
//! ZPL profiles at 203.2, 304.8 and 609.6 dpi (auto encoding, each forced encoding at
//! 203, and `native` = text, Code 128 and IMb as printer fonts/barcodes), and each other
//! language on a label it can print: EPL2 (4x6 and tray), Brother QL-820NWB (the 62 mm
//! job and the tray tag), DYMO LabelWriter 450 (the 3.5x1.125 job and the tray tag),
//! PCL (the #10 envelope at 300 and 600 dpi), PDF and PNG (the 4x6).
//!
//! `bench/labels/zpl_from_png.rs` adds non-divan modes to this binary (`--cups-png`,
//! `--zpl-from-png`, `--job-to-zpl`) for the comparison with CUPS on the same bitmap;
//! `bench/labels/vs_cups.sh` runs them.
//!
//! No timing assertions anywhere: these only measure.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use labeld::layout::{self, Label};
use labeld::output;
use labeld::render::label::{self, RenderOptions, RenderedLabel};
use labeld_drivers::lang::zpl::{GraphicEncoding, Zpl};
use labeld_drivers::{lang, models, Driver, Language, Profile};

#[path = "../bench/labels/zpl_from_png.rs"]
mod zpl_from_png;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = zpl_from_png::run(&args) {
        std::process::exit(code);
    }
    divan::main();
}

/// One benchmark input: a job, a model and how to drive it.
struct Case {
    name: &'static str,
    model: &'static str,
    job: &'static str,
    /// Text, Code 128 and IMb as printer-native elements (ZPL).
    native: bool,
    /// A forced ZPL graphic encoding (`None` = the driver's default, Auto).
    encoding: Option<GraphicEncoding>,
}

const ADDRESS_4X6: &str = include_str!("../examples/jobs/address-4x6.json");
const TRAY: &str = include_str!("../examples/jobs/tray.json");
const ADDRESS_62MM: &str = include_str!("../examples/jobs/address-62mm.json");
const ADDRESS_DYMO: &str = include_str!("../examples/jobs/address-dymo.json");
const ENVELOPE: &str = include_str!("../examples/jobs/envelope.json");

const fn case(name: &'static str, model: &'static str, job: &'static str) -> Case {
    Case {
        name,
        model,
        job,
        native: false,
        encoding: None,
    }
}

const fn forced(
    name: &'static str,
    model: &'static str,
    job: &'static str,
    e: GraphicEncoding,
) -> Case {
    Case {
        name,
        model,
        job,
        native: false,
        encoding: Some(e),
    }
}

/// Every case, by name.
const CASES: &[Case] = &[
    case("zpl-203 address-4x6", "zpl-203", ADDRESS_4X6),
    case("zpl-300 address-4x6", "zpl-300", ADDRESS_4X6),
    case("zpl-600 address-4x6", "zpl-600", ADDRESS_4X6),
    case("zpl-203 tray", "zpl-203", TRAY),
    case("zpl-300 tray", "zpl-300", TRAY),
    case("zpl-600 tray", "zpl-600", TRAY),
    forced(
        "zpl-203 address-4x6 hex",
        "zpl-203",
        ADDRESS_4X6,
        GraphicEncoding::Hex,
    ),
    forced(
        "zpl-203 address-4x6 run-length",
        "zpl-203",
        ADDRESS_4X6,
        GraphicEncoding::RunLength,
    ),
    forced(
        "zpl-203 address-4x6 z64",
        "zpl-203",
        ADDRESS_4X6,
        GraphicEncoding::Z64,
    ),
    forced(
        "zpl-203 tray run-length",
        "zpl-203",
        TRAY,
        GraphicEncoding::RunLength,
    ),
    forced("zpl-203 tray z64", "zpl-203", TRAY, GraphicEncoding::Z64),
    Case {
        name: "zpl-203 address-4x6 native",
        model: "zpl-203",
        job: ADDRESS_4X6,
        native: true,
        encoding: None,
    },
    Case {
        name: "zpl-203 tray native",
        model: "zpl-203",
        job: TRAY,
        native: true,
        encoding: None,
    },
    case("epl-203 address-4x6", "epl-203", ADDRESS_4X6),
    case("epl-203 tray", "epl-203", TRAY),
    case(
        "brother-ql-820nwb address-62mm",
        "brother-ql-820nwb",
        ADDRESS_62MM,
    ),
    case("brother-ql-820nwb tray", "brother-ql-820nwb", TRAY),
    case("dymo-lw450 address-dymo", "dymo-lw450", ADDRESS_DYMO),
    case("dymo-lw450 tray", "dymo-lw450", TRAY),
    case("pcl-300 envelope", "pcl-300", ENVELOPE),
    case("pcl-600 envelope", "pcl-600", ENVELOPE),
    case("pdf-300 address-4x6", "pdf-300", ADDRESS_4X6),
    case("png-203 address-4x6", "png-203", ADDRESS_4X6),
];

/// Cases for the stage split: every case except the forced encodings (same layout,
/// render and verify as their auto case; only `encode` differs).
const STAGE_CASES: &[&str] = &[
    "zpl-203 address-4x6",
    "zpl-300 address-4x6",
    "zpl-600 address-4x6",
    "zpl-203 tray",
    "zpl-300 tray",
    "zpl-600 tray",
    "zpl-203 address-4x6 native",
    "zpl-203 tray native",
    "epl-203 address-4x6",
    "epl-203 tray",
    "brother-ql-820nwb address-62mm",
    "brother-ql-820nwb tray",
    "dymo-lw450 address-dymo",
    "dymo-lw450 tray",
    "pcl-300 envelope",
    "pcl-600 envelope",
    "pdf-300 address-4x6",
    "png-203 address-4x6",
];

/// Every case name, for `job_to_bytes` and `stage::encode`.
const ALL_CASES: &[&str] = &[
    "zpl-203 address-4x6",
    "zpl-300 address-4x6",
    "zpl-600 address-4x6",
    "zpl-203 tray",
    "zpl-300 tray",
    "zpl-600 tray",
    "zpl-203 address-4x6 hex",
    "zpl-203 address-4x6 run-length",
    "zpl-203 address-4x6 z64",
    "zpl-203 tray run-length",
    "zpl-203 tray z64",
    "zpl-203 address-4x6 native",
    "zpl-203 tray native",
    "epl-203 address-4x6",
    "epl-203 tray",
    "brother-ql-820nwb address-62mm",
    "brother-ql-820nwb tray",
    "dymo-lw450 address-dymo",
    "dymo-lw450 tray",
    "pcl-300 envelope",
    "pcl-600 envelope",
    "pdf-300 address-4x6",
    "png-203 address-4x6",
];

/// A case set up: profile, driver, and the job laid out and rendered once (checked).
struct Setup {
    job: &'static str,
    profile: Profile,
    driver: Box<dyn Driver>,
    labels: Vec<Label>,
    rendered: Vec<RenderedLabel>,
}

fn setup(name: &str) -> Setup {
    let case = CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name:?}"));
    let mut profile = models::find(case.model)
        .unwrap_or_else(|| panic!("no model {}", case.model))
        .profile();
    if case.native {
        profile.native.text = true;
        profile.native.code128 = true;
        profile.native.imb = true;
    }
    let mut driver: Box<dyn Driver> = match (profile.language, case.encoding) {
        (Language::Zpl, Some(e)) => Box::new(Zpl::new(&profile).with_encoding(e)),
        _ => lang::driver(&profile),
    };
    // The whole pipeline once, so a case that stopped working fails here, not as a
    // suspiciously fast number.
    let out = output::render_job(
        case.job,
        &profile,
        driver.as_mut(),
        &RenderOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.pages.len(), 1, "{name}: one label per job");
    let labels = layout::layout_json(case.job).unwrap();
    Setup {
        job: case.job,
        profile,
        driver,
        labels,
        rendered: out.pages,
    }
}

/// Job JSON → printer bytes: `render_job` (layout, render, verify, encode).
#[divan::bench(args = ALL_CASES)]
fn job_to_bytes(bencher: Bencher, name: &str) {
    let Setup {
        job,
        profile,
        mut driver,
        ..
    } = setup(name);
    let options = RenderOptions::default();
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        output::render_job(black_box(job), &profile, driver.as_mut(), &options).unwrap()
    });
}

mod stage {
    use super::*;

    /// JSON parse + layout (`layout_json`).
    #[divan::bench(args = STAGE_CASES)]
    fn layout(bencher: Bencher, name: &str) {
        let s = setup(name);
        bencher
            .counter(ItemsCount::new(1usize))
            .bench_local(|| layout::layout_json(black_box(s.job)).unwrap());
    }

    /// Label → 1-bit page with native elements (`render_with`).
    #[divan::bench(args = STAGE_CASES)]
    fn render(bencher: Bencher, name: &str) {
        let s = setup(name);
        let caps = s.driver.capabilities();
        let options = RenderOptions::default();
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            label::render_with(black_box(&s.labels[0]), &s.profile, &caps, &options).unwrap()
        });
    }

    /// Reading every drawn IMb back from the page (`verify_imbs`); nothing for labels
    /// without a drawn IMb.
    #[divan::bench(args = STAGE_CASES)]
    fn verify(bencher: Bencher, name: &str) {
        let s = setup(name);
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let reports = label::verify_imbs(black_box(&s.rendered[0]), 0);
            assert!(reports.iter().all(|(_, r)| r.is_ok()));
            reports
        });
    }

    /// Rendered page → printer bytes (`start_job`, `write_page`, `end_job`).
    #[divan::bench(args = ALL_CASES)]
    fn encode(bencher: Bencher, name: &str) {
        let mut s = setup(name);
        let page = &s.rendered[0].page;
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let mut out = Vec::new();
            s.driver.start_job(&mut out).unwrap();
            s.driver.write_page(black_box(page), &mut out).unwrap();
            s.driver.end_job(&mut out).unwrap();
            out
        });
    }
}
