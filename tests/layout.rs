//! Label jobs end to end: JSON → layout → render at real device resolutions → every
//! IMb read back by the verifier; every template renders; what cannot fit is a typed
//! error naming the element; native elements stay out of the bitmap; the examples in
//! `docs/labels.md` parse and follow `docs/label-job.schema.json`.

use labeld::layout::{layout, layout_json, Element, Job, Label, LayoutErrorKind};
use labeld::render::label::{render, render_with, rotate, verify_imbs, RenderError, RenderOptions};
use labeld::verify::verify_imb;
use labeld_drivers::{models, Bitmap, Capabilities, NativeElement, Profile, Resolution, Rotation};
use proptest::prelude::*;

/// The job from issue 3, as written there.
const EXAMPLE: &str = r#"{"template": "address", "size": "4x6",
 "imb": {"tracking": "00270123456200800001", "routing": "987654321"},
 "to": ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"],
 "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"]}"#;

fn profile(model: &str) -> Profile {
    models::find(model)
        .unwrap_or_else(|| panic!("model {model}"))
        .profile()
}

/// A driver that prints only graphics.
fn raster_caps() -> Capabilities {
    Capabilities {
        native_text: false,
        native_code128: false,
        native_imb: false,
        max_width_dots: u32::MAX,
        ascii_capable: true,
        status: false,
    }
}

fn one(job: &str) -> Label {
    let mut labels = layout_json(job).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(labels.len(), 1);
    labels.remove(0)
}

/// Renders `label` for `model` and reads every IMb back: each must decode to its
/// data and meet every B3200 tolerance. Returns how many were checked.
fn render_and_verify(label: &Label, profile: &Profile, options: &RenderOptions) -> usize {
    let rendered = render_with(label, profile, &raster_caps(), options)
        .unwrap_or_else(|e| panic!("{} on {}: {e}", label.description, profile.model));
    let page = &rendered.page;
    assert_eq!(page.resolution, profile.resolution);
    assert!(page.width() <= profile.width_dots, "{}", label.description);
    let reports = verify_imbs(&rendered, options.dot_gain);
    assert_eq!(reports.len(), label.imbs().count());
    for ((name, report), mark) in reports.iter().zip(label.imbs()) {
        let report = report
            .as_ref()
            .unwrap_or_else(|e| panic!("{} {name} on {}: {e}", label.description, profile.model));
        assert!(
            report.is_compliant(),
            "{} {name} on {}: {:?}",
            label.description,
            profile.model,
            report
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        assert_eq!(report.decoded.tracking.as_str(), mark.tracking);
        assert_eq!(report.decoded.routing.as_str(), mark.routing);
    }
    // One IMb: the verifier also finds it in the whole page, turned upright.
    if label.imbs().count() == 1 {
        let upright = rotate(&page.bitmap, undo(rendered.rotation));
        let (ax, ay) = match rendered.rotation {
            Rotation::Cw90 | Rotation::Cw270 => (page.resolution.y, page.resolution.x),
            _ => (page.resolution.x, page.resolution.y),
        };
        let report = verify_imb(&upright, ax, ay, options.dot_gain).unwrap_or_else(|e| {
            panic!("{} whole page on {}: {e}", label.description, profile.model)
        });
        assert!(report.is_compliant(), "{:?}", report.violations);
    }
    reports.len()
}

fn undo(r: Rotation) -> Rotation {
    match r {
        Rotation::Cw90 => Rotation::Cw270,
        Rotation::Cw270 => Rotation::Cw90,
        other => other,
    }
}

#[test]
fn the_example_verifies_at_203_300_and_600_dpi() {
    let label = one(EXAMPLE);
    for model in [
        "zpl-203", "zpl-300", "png-300", "pcl-300", "pcl-600", "zpl-600",
    ] {
        let p = profile(model);
        assert_eq!(
            render_and_verify(&label, &p, &RenderOptions::default()),
            1,
            "{model}"
        );
        let page = render(&label, &p, &raster_caps()).expect("renders");
        // 4 × 6 in at the model's resolution, upright.
        assert_eq!(i64::from(page.width()), p.resolution.dots_x(4.0), "{model}");
        assert_eq!(
            i64::from(page.height()),
            p.resolution.dots_y(6.0),
            "{model}"
        );
    }
}

#[test]
fn turned_labels_still_verify() {
    let label = one(EXAMPLE);
    // A 4x6 job turned onto a laser page, both ways.
    for model in ["pcl-300", "pcl-600", "png-300"] {
        for rotation in [Rotation::Cw90, Rotation::Cw270, Rotation::Cw180] {
            let options = RenderOptions {
                rotation: Some(rotation),
                dot_gain: 0,
            };
            assert_eq!(
                render_and_verify(&label, &profile(model), &options),
                1,
                "{model} {rotation:?}"
            );
        }
    }
    // Landscape labels are turned by default.
    let dymo = one(r#"{"template":"address","size":"3.5x1.125",
        "imb":{"tracking":"00270123456200800001","routing":"987654321"},
        "to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765-4321"]}"#);
    let rendered = render_with(
        &dymo,
        &profile("dymo-lw450"),
        &raster_caps(),
        &RenderOptions::default(),
    )
    .expect("renders");
    assert_eq!(rendered.rotation, Rotation::Cw90);
    assert_eq!(rendered.page.width(), 338); // 1.125 in across a 300 dpi head
    render_and_verify(&dymo, &profile("dymo-lw450"), &RenderOptions::default());
    let tape = one(&EXAMPLE.replace("\"4x6\"", "\"62mm\""));
    render_and_verify(&tape, &profile("brother-ql-800"), &RenderOptions::default());
    let page = render(&tape, &profile("brother-ql-800"), &raster_caps()).expect("renders");
    assert_eq!(page.width(), 696);
}

#[test]
fn unequal_resolutions_use_the_axis_the_bars_run_along() {
    let label = one(EXAMPLE);
    let mut p = profile("pcl-600");
    p.resolution = Resolution { x: 300.0, y: 600.0 };
    p.width_dots = 2550;
    for rotation in [Rotation::None, Rotation::Cw90] {
        let options = RenderOptions {
            rotation: Some(rotation),
            dot_gain: 0,
        };
        let rendered = render_with(&label, &p, &raster_caps(), &options).expect("renders");
        let g = &rendered.imbs[0].geometry;
        match rotation {
            Rotation::None => assert_eq!((g.dpi_x, g.dpi_y), (300.0, 600.0)),
            _ => assert_eq!((g.dpi_x, g.dpi_y), (600.0, 300.0)),
        }
        render_and_verify(&label, &p, &options);
    }
}

#[test]
fn dot_gain_is_drawn_narrower_and_verifies_with_the_same_gain() {
    let label = one(EXAMPLE);
    for gain in [1, 2] {
        let options = RenderOptions {
            rotation: None,
            dot_gain: gain,
        };
        render_and_verify(&label, &profile("pcl-600"), &options);
    }
}

#[test]
fn calibration_offsets_move_everything_on_the_device_axes() {
    let label = one(EXAMPLE);
    for rotation in [Rotation::None, Rotation::Cw90, Rotation::Cw270] {
        let options = RenderOptions {
            rotation: Some(rotation),
            dot_gain: 0,
        };
        let base =
            render_with(&label, &profile("pcl-300"), &raster_caps(), &options).expect("base");
        let mut p = profile("pcl-300");
        p.offset_x = 12;
        p.offset_y = -7;
        let moved = render_with(&label, &p, &raster_caps(), &options).expect("moved");
        let (bx, by, _, _) = base.imbs[0].region;
        let (mx, my, _, _) = moved.imbs[0].region;
        assert_eq!(
            (i64::from(mx) - i64::from(bx), i64::from(my) - i64::from(by)),
            (12, -7),
            "{rotation:?}"
        );
        render_and_verify(&label, &p, &options);
    }
    // An offset that pushes the IMb's quiet zone off the label is refused.
    let mut p = profile("zpl-203");
    p.offset_x = -150;
    let e = render(&label, &p, &raster_caps()).expect_err("quiet zone cut");
    assert!(
        matches!(e, RenderError::ImbClearance { side: "left", .. }),
        "{e}"
    );
}

#[test]
fn every_template_renders() {
    let tray = r#"{"template":"tray","barcode":"123456781123456123123451",
        "destination":"ADC DALLAS TX 752","content":"FCM LTR 5D BC","origin":"AUSTIN TX 78701"}"#;
    for model in ["zpl-203", "zpl-300", "zpl-600", "pcl-300"] {
        let page = render(&one(tray), &profile(model), &raster_caps()).expect(model);
        assert!(page.bitmap.count_black() > 1000);
    }
    let placard = r#"{"template":"placard","barcode":"99M900066875EMA000051",
        "destination":"NDC DALLAS TX 752","content":"STD FLTS","origin":"AUSTIN TX 78701"}"#;
    for model in ["pcl-300", "pcl-600"] {
        let page = render(&one(placard), &profile(model), &raster_caps()).expect(model);
        assert_eq!(
            (page.width(), page.height()),
            (model_dots(model, 8.5), model_dots(model, 11.0))
        );
    }
    // 4x6: a digits-only serial (189 modules) fits at every resolution; an
    // alphanumeric one (253 modules) needs exactly 300 or 600 dpi: 5 dots at 203.2
    // (24.6 mil) is 6.2 in long, and 304.8 / 609.6 dpi have no whole-dot module in
    // 23-27 mil short enough for 6 in.
    let small = placard.replace("\"placard\",", "\"placard\",\"size\":\"4x6\",");
    let digits = small.replace("EMA000051", "000000051");
    for model in ["zpl-203", "zpl-300", "zpl-600", "png-300"] {
        let page = render(&one(&digits), &profile(model), &raster_caps()).expect(model);
        assert!(page.width() <= profile(model).width_dots);
    }
    render(&one(&small), &profile("png-300"), &raster_caps()).expect("300 dpi");
    for model in ["zpl-203", "zpl-300", "zpl-600"] {
        let e = render(&one(&small), &profile(model), &raster_caps()).expect_err(model);
        assert!(matches!(e, RenderError::ModuleWidth { .. }), "{e}");
    }

    let envelope = r#"{"template":"envelope",
        "imb":{"tracking":"00270123456200800001","routing":"987654321"},
        "to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765-4321"],
        "from":["ACME MAILROOM","1 INDUSTRIAL WAY","AUSTIN TX 78701"]}"#;
    for model in ["pcl-300", "pcl-600"] {
        let label = one(envelope);
        render_and_verify(&label, &profile(model), &RenderOptions::default());
        let page = render(&label, &profile(model), &raster_caps()).expect(model);
        // Fed short edge first: 4.125 in across.
        assert_eq!(page.width(), model_dots(model, 4.125));
    }

    let records: Vec<String> = (0..13)
        .map(|i| {
            format!(
                r#"{{"to":["RESIDENT {i}","{i} MAIN ST","ANYTOWN ST 98765"],"imb":{{"tracking":"0027012345620{i:07}","routing":"98765"}}}}"#
            )
        })
        .collect();
    let sheet = format!(
        r#"{{"template":"sheet","from":["ACME","1 WAY","AUSTIN TX 78701"],"records":[{}]}}"#,
        records.join(",")
    );
    let sheets = layout_json(&sheet).expect("sheet");
    assert_eq!(sheets.len(), 2);
    for model in ["pcl-300", "pcl-600"] {
        let n: usize = sheets
            .iter()
            .map(|s| render_and_verify(s, &profile(model), &RenderOptions::default()))
            .sum();
        assert_eq!(n, 13);
    }

    let custom = r#"{"template":"custom","width":4,"height":3,"elements":[
        {"type":"text","x":0.2,"y":0.2,"lines":["CUSTOM"],"size_pt":18,"font":"sans-bold"},
        {"type":"imb","x":0.3,"y":0.9,"tracking":"00270123456200800001","routing":"98765"},
        {"type":"code128","x":0.3,"y":1.4,"height":0.5,"data":"ABC-12345","text":true},
        {"type":"line","x1":0.2,"y1":2.3,"x2":3.8,"y2":2.3},
        {"type":"line","x1":0.2,"y1":2.4,"x2":3.8,"y2":2.9,"thickness":0.02},
        {"type":"box","x":3.0,"y":0.1,"width":0.8,"height":0.5,"fill":true}
    ]}"#;
    for model in ["zpl-203", "zpl-300", "zpl-600"] {
        render_and_verify(&one(custom), &profile(model), &RenderOptions::default());
    }
}

/// Reads the bars of every Code 128 on an upright page back as module widths (the
/// narrowest run is one module) and compares them with the symbol's.
fn assert_code128_reads_back(label: &Label, model: &str) {
    let p = profile(model);
    let page = render(label, &p, &raster_caps()).expect(model);
    for element in &label.elements {
        let Element::Code128(c) = element else {
            continue;
        };
        let y = p.resolution.dots_y(c.y + c.height / 2.0) as u32;
        let row: Vec<bool> = (0..page.width()).map(|x| page.bitmap.get(x, y)).collect();
        let first = row.iter().position(|&b| b).expect("bars");
        let last = row.iter().rposition(|&b| b).expect("bars");
        let mut runs = Vec::new();
        let mut x = first;
        while x <= last {
            let colour = row[x];
            let start = x;
            while x <= last && row[x] == colour {
                x += 1;
            }
            runs.push(x - start);
        }
        let module = *runs.iter().min().expect("runs");
        let widths: Vec<u8> = runs.iter().map(|&r| (r / module) as u8).collect();
        assert!(runs.iter().all(|&r| r % module == 0), "{model}: {runs:?}");
        assert_eq!(widths, c.symbol.widths(), "{} {model}", label.description);
        let inches = module as f64 / p.resolution.x;
        assert!(
            (c.module.min - 1e-9..=c.module.max + 1e-9).contains(&inches),
            "{model}: module {inches}"
        );
    }
}

#[test]
fn code128_bars_read_back_at_a_whole_module() {
    let tray = one(r#"{"template":"tray","barcode":"123456781123456123123451",
        "destination":"ADC DALLAS TX 752","content":"FCM LTR 5D BC","origin":"AUSTIN TX 78701"}"#);
    for model in ["zpl-203", "zpl-300", "png-300", "zpl-600", "pcl-600"] {
        assert_code128_reads_back(&tray, model);
    }
    let placard = one(r#"{"template":"placard","barcode":"99M900066875EMA000051",
        "destination":"NDC DALLAS TX 752","content":"STD FLTS","origin":"AUSTIN TX 78701"}"#);
    for model in ["pcl-300", "pcl-600"] {
        assert_code128_reads_back(&placard, model);
    }
    // 150 dpi has no whole-dot module in 14-17 mil.
    let mut p = profile("zpl-203");
    p.resolution = Resolution::square(150.0);
    let e = render(&tray, &p, &raster_caps()).expect_err("150 dpi");
    assert!(matches!(e, RenderError::ModuleWidth { .. }), "{e}");
}

fn model_dots(model: &str, inches: f64) -> u32 {
    profile(model).resolution.dots_x(inches) as u32
}

#[test]
fn a_label_wider_than_the_head_prints_when_the_overhang_is_blank() {
    let small = one(
        r#"{"template":"address","size":"2.25x1.25","to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765"]}"#,
    );
    let page = render(&small, &profile("dymo-300"), &raster_caps()).expect("fits");
    assert_eq!(page.width(), 672); // 675 dots of label, the last 3 blank
    let wide = one(
        r#"{"template":"custom","width":2.25,"height":1,"elements":[{"type":"box","x":0,"y":0,"width":2.25,"height":1}]}"#,
    );
    let upright = RenderOptions {
        rotation: Some(Rotation::None),
        dot_gain: 0,
    };
    let e = render_with(&wide, &profile("dymo-300"), &raster_caps(), &upright)
        .expect_err("ink off the head");
    assert!(
        matches!(
            e,
            RenderError::TooWide {
                needed_dots: 675,
                max_dots: 672,
                ..
            }
        ),
        "{e}"
    );
    // With no turn asked for, the box is turned to fit (1 in across).
    let page = render(&wide, &profile("dymo-300"), &raster_caps()).expect("turned");
    assert_eq!(page.width(), 300);
}

#[test]
fn content_that_cannot_fit_is_a_typed_error() {
    let e = layout_json(&EXAMPLE.replace("\"4x6\"", "\"2.25x1.25\"")).expect_err("narrow");
    assert_eq!(
        e.to_string(),
        "address label 2.25x1.25: imb needs 3.45 in of width, the label has 2.25 in (use a 4 in wide label)"
    );
    assert!(matches!(e.kind, LayoutErrorKind::BarcodeTooWide { .. }));
    let line = "1234 EXTRAORDINARILY LONG BOULEVARD NAME NORTHWEST APT 1234";
    let e = layout_json(&EXAMPLE.replace("123 MAIN ST", line)).expect_err("overflow");
    assert_eq!(e.element, "to line 2");
    let LayoutErrorKind::LineTooWide {
        width_in,
        available_in,
        size_pt,
        ..
    } = e.kind
    else {
        panic!("{e}")
    };
    assert_eq!(size_pt, 8.0);
    assert!(width_in > available_in);
    assert!(e.to_string().contains(&format!("{line:?}")), "{e}");
    assert!(
        e.to_string().contains("more than the 3.7 in available"),
        "{e}"
    );
}

#[test]
fn native_elements_leave_the_bitmap() {
    let all = Capabilities {
        native_text: true,
        native_code128: true,
        native_imb: true,
        max_width_dots: u32::MAX,
        ascii_capable: true,
        status: true,
    };
    let mut p = profile("zpl-203");
    p.native.text = true;
    p.native.imb = true;
    p.native.code128 = true;
    let page = render(&one(EXAMPLE), &p, &all).expect("renders");
    assert_eq!(page.bitmap.count_black(), 0);
    let texts: Vec<_> = page
        .native
        .iter()
        .filter_map(|n| match n {
            NativeElement::Text(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), 2);
    assert_eq!(
        texts[1].lines,
        ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"]
    );
    let imb = page
        .native
        .iter()
        .find_map(|n| match n {
            NativeElement::Imb(m) => Some(m),
            _ => None,
        })
        .expect("native imb");
    assert_eq!(
        (imb.tracking.as_str(), imb.routing.as_str()),
        ("00270123456200800001", "987654321")
    );

    let tray = one(r#"{"template":"tray","barcode":"123456781123456123123451",
        "destination":"ADC DALLAS TX 752","content":"FCM LTR 5D BC","origin":"AUSTIN TX 78701"}"#);
    let page = render(&tray, &p, &all).expect("renders");
    assert_eq!(page.bitmap.count_black(), 0);
    let code = page
        .native
        .iter()
        .find_map(|n| match n {
            NativeElement::Code128(c) => Some(c),
            _ => None,
        })
        .expect("native code 128");
    assert_eq!(
        code.values,
        [105, 12, 34, 56, 78, 11, 23, 45, 61, 23, 12, 34, 51]
    );
    assert_eq!(code.module, 3);

    // Only what the driver can do is native; the IMb is drawn and still verifies.
    let some = Capabilities {
        native_imb: false,
        ..all
    };
    let rendered =
        render_with(&one(EXAMPLE), &p, &some, &RenderOptions::default()).expect("renders");
    assert!(rendered
        .page
        .native
        .iter()
        .all(|n| matches!(n, NativeElement::Text(_))));
    let report = verify_imb(&rendered.page.bitmap, 203.2, 203.2, 0).expect("drawn imb");
    assert!(report.is_compliant());
    // Turned labels keep barcodes in the bitmap; text turns with them.
    let options = RenderOptions {
        rotation: Some(Rotation::Cw90),
        dot_gain: 0,
    };
    let mut wide = p.clone();
    wide.width_dots = 1300;
    let turned = render_with(&one(EXAMPLE), &wide, &all, &options).expect("renders");
    assert!(turned.page.native.iter().all(|n| match n {
        NativeElement::Text(t) => t.rotation == Rotation::Cw90,
        _ => false,
    }));
    assert!(turned.page.bitmap.count_black() > 0);
}

#[test]
fn text_is_crisp_with_no_isolated_dots() {
    for model in ["zpl-203", "zpl-300", "pcl-600"] {
        let job = r#"{"template":"address","size":"4x2","to":["Jöhn Q. Públic, Ésq.","123 Main St #4","Anytown, ST 98765-4321"],"from":["acme mailroom","1 industrial way","austin tx 78701"]}"#;
        let page = render(&one(job), &profile(model), &raster_caps()).expect(model);
        let b = &page.bitmap;
        let isolated = count_isolated(b);
        assert!(b.count_black() > 2000, "{model}");
        assert_eq!(isolated, 0, "{model}: {isolated} isolated dots");
    }
}

/// Black dots with no black among their 8 neighbours.
fn count_isolated(b: &Bitmap) -> usize {
    let mut n = 0;
    for y in 0..b.height() {
        for x in 0..b.width() {
            if !b.get(x, y) {
                continue;
            }
            let alone = (-1i64..=1).all(|dy| {
                (-1i64..=1).all(|dx| {
                    (dx == 0 && dy == 0) || {
                        let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
                        nx < 0 || ny < 0 || !b.get(nx as u32, ny as u32)
                    }
                })
            });
            n += usize::from(alone);
        }
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random address content either renders with a verifying IMb or is a typed
    /// layout error; nothing panics.
    #[test]
    fn random_addresses_render_or_fail_cleanly(
        lines in proptest::collection::vec("[ -~]{0,60}", 1..=6),
        from in proptest::collection::vec("[ -~\u{a0}-\u{17f}]{1,40}", 0..=4),
        size in prop_oneof![Just("4x6"), Just("4x3"), Just("4x2"), Just("3.5x1.125"), Just("62mm"), Just("2.25x1.25")],
        above in any::<bool>(),
    ) {
        let job = Job::Address(labeld::layout::job::AddressJob {
            version: None,
            size: serde_json::from_value(serde_json::Value::String(size.to_string())).expect("size"),
            to: lines,
            from,
            imb: Some(labeld::layout::ImbData::new("00270123456200800001", "987654321")),
            imb_position: if above { labeld::layout::ImbPosition::Above } else { labeld::layout::ImbPosition::Below },
            endorsement: None,
            uppercase: false,
            max_line_chars: None,
            length_mm: None,
        });
        match layout(&job) {
            Ok(labels) => {
                let model = match size {
                    "3.5x1.125" => "dymo-300",
                    "62mm" => "brother-ql-300",
                    _ => "zpl-203",
                };
                for label in &labels {
                    render_and_verify(label, &profile(model), &RenderOptions::default());
                }
            }
            Err(e) => {
                // Typed, and the message names the label.
                prop_assert!(e.to_string().starts_with("address label "));
                prop_assert!(!e.code().is_empty());
            }
        }
    }
}

/// The ```json blocks of `docs/labels.md`.
fn doc_examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/labels.md"))
        .expect("docs/labels.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```json") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn the_documented_examples_parse_lay_out_and_follow_the_schema() {
    let examples = doc_examples();
    assert!(examples.len() >= 6, "{} examples", examples.len());
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/label-job.schema.json"
        ))
        .expect("schema file"),
    )
    .expect("schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let mut templates = std::collections::BTreeSet::new();
    for example in &examples {
        let job = Job::from_json(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        layout(&job).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let value: serde_json::Value = serde_json::from_str(example).expect("json");
        let template = value["template"].as_str().expect("template");
        templates.insert(template.to_owned());
        // Every key the example uses is a property of its template in the schema.
        let branch = &schema["$defs"][template];
        assert!(branch.is_object(), "schema has no $defs/{template}");
        for key in value.as_object().expect("object").keys() {
            assert!(
                branch["properties"].get(key).is_some(),
                "schema {template} lacks {key}"
            );
        }
    }
    assert_eq!(
        templates.into_iter().collect::<Vec<_>>(),
        ["address", "custom", "envelope", "placard", "sheet", "tray"]
    );
    // The example from issue 3 is the first block, as written.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&examples[0]).expect("json"),
        serde_json::from_str::<serde_json::Value>(EXAMPLE).expect("json")
    );
}

#[test]
fn unknown_fields_and_versions_are_refused() {
    let e = Job::from_json(&EXAMPLE.replace("\"to\"", "\"To\"")).expect_err("unknown field");
    assert_eq!(e.code(), "invalid_job");
    assert!(e.to_string().contains("unknown field `To`"), "{e}");
    let e = Job::from_json(&EXAMPLE.replace("{\"template\"", "{\"version\": 2, \"template\""))
        .expect_err("v2");
    assert_eq!(
        e.to_string(),
        "address job: version is 2; this labeld understands job version 1"
    );
    Job::from_json(&EXAMPLE.replace("{\"template\"", "{\"version\": 1, \"template\"")).expect("v1");
    let e = Job::from_json(r#"{"template":"postcard"}"#).expect_err("template");
    assert!(e.to_string().contains("unknown variant `postcard`"), "{e}");
    // Elements of every kind are found in a laid-out label.
    let label = one(EXAMPLE);
    assert!(label.elements.iter().any(|e| matches!(e, Element::Imb(_))));
}
