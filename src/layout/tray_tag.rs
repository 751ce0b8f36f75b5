//! The `tray` template: a tray or sack tag with the 24-digit Intelligent Mail tray
//! barcode.
//!
//! Facts: `imb-facts.md` §7 and `iv-tracking.md` Part 2 items 1–6. The barcode is
//! Code 128 in code set C, 167 modules ([`crate::encode::tray::TrayBarcode::symbol`]).
//!
//! Layout, top to bottom, on a 3.25 × 2 in tag (or 4 × 2 in):
//!
//! 1. **Destination line**, bold, its line box starting 1/8 in below the top edge
//!    (M031: the first line must show in the label holder); 14 pt, down to 8 pt.
//! 2. **Content line**, 11 pt, down to 8 pt.
//! 3. **Origin line**, 9 pt, down to 8 pt.
//! 4. The **barcode**, 0.72 in tall (IDAutomation's reading of USPS-L-3216), centred;
//!    module 14–17 mil, 15 mil preferred (IDAutomation: 15 mil; a secondary source:
//!    "preferred 15–17 mil"), 10 modules of quiet zone each side. The renderer picks
//!    whole dots: 3 at 203 dpi (14.8 mil), 5 at 300/304.8 dpi, 9 at 600/609.6 dpi;
//!    150 dpi has no legal width (2 dots = 13.3 mil) and is a render error.
//! 5. The **24 digits**, grouped by field (`12345 678 1 123456 12312345 1`), 8 pt mono,
//!    centred under the bars.
//!
//! **Unconfirmed** (USPS-L-3216's text was not read): the module width and bar height
//! limits, the tag size and the digits' human-readable format. The numbers above are
//! the secondary sources' and are kept in constants here.

use super::job::TrayJob;
use super::{
    check_clear, check_inside, clean_line, Align, Area, Code128Mark, Element, Feed, Label,
    LayoutError, LayoutErrorKind, ModuleRule, TextBlock, FONT_STEP_PT, MIN_FONT_PT,
};
use crate::encode::tray::TrayBarcode;
use crate::render::text::{self, Font};

/// Module width rule of the tray barcode, inches.
pub const TRAY_MODULE: ModuleRule = ModuleRule {
    min: 0.014,
    target: 0.015,
    max: 0.017,
    max_length: None,
};
/// Bar height, inches.
pub const TRAY_BAR_HEIGHT_IN: f64 = 0.72;
/// Top of the destination line below the top edge, inches (M031: at least 1/8 in).
pub const TOP_IN: f64 = 0.125;
/// Left and right margin of the text, inches.
const SIDE_IN: f64 = 0.125;
/// Bottom margin, inches.
const BOTTOM_IN: f64 = 0.0625;
/// Gap between the lines and the bars, and the bars and the digits, inches.
const GAP_IN: f64 = 0.05;
/// Quiet zone of Code 128, modules (ISO/IEC 15417 §4.4.2).
const QUIET_MODULES: u32 = 10;

/// Lays out a `tray` job.
pub fn layout(job: &TrayJob) -> Result<Label, LayoutError> {
    let template = format!("tray tag {}", job.size.name());
    let (width, height) = match job.size {
        super::job::TraySize::In3_25x2 => (3.25, 2.0),
        super::job::TraySize::In4x2 => (4.0, 2.0),
    };
    let barcode = TrayBarcode::parse(&job.barcode)
        .map_err(|e| LayoutError::new(&template, "barcode", LayoutErrorKind::Tray(e)))?;
    let symbol = barcode.symbol();
    let modules = symbol.modules() as f64 + 2.0 * f64::from(QUIET_MODULES);
    let needed_min = modules * TRAY_MODULE.min;
    if needed_min > width + 1e-9 {
        return Err(LayoutError::new(
            &template,
            "barcode",
            LayoutErrorKind::BarcodeTooWide {
                needed_in: needed_min,
                available_in: width,
                hint: "use a wider tag".to_owned(),
            },
        ));
    }
    let area_w = (modules * TRAY_MODULE.max).min(width);
    let lines = [
        ("destination", &job.destination, Font::SansBold, 14.0),
        ("content", &job.content, Font::Sans, 11.0),
        ("origin", &job.origin, Font::Sans, 9.0),
    ];
    let room = width - 2.0 * SIDE_IN;
    let mut sizes = [0.0f64; 3];
    let mut cleaned: Vec<String> = Vec::new();
    for (i, (name, line, font, preferred)) in lines.iter().enumerate() {
        let line = clean_line(line, *font, false, None)
            .map_err(|k| LayoutError::new(&template, *name, k))?;
        sizes[i] = shrink_to_fit(&template, name, *font, *preferred, &line, room)?;
        cleaned.push(line);
    }
    let digits = barcode.grouped();
    let digits_pt = 8.0;
    let lines_h: f64 = sizes.iter().map(|&s| text::line_pitch_in(s)).sum();
    let needed = TOP_IN
        + lines_h
        + GAP_IN
        + TRAY_BAR_HEIGHT_IN
        + GAP_IN
        + text::line_pitch_in(digits_pt)
        + BOTTOM_IN;
    if needed > height + 1e-9 {
        return Err(LayoutError::new(
            &template,
            "lines",
            LayoutErrorKind::TooTall {
                needed_in: needed,
                available_in: height,
                size_pt: sizes[0],
                hint: "shorten the lines".to_owned(),
            },
        ));
    }
    let mut elements = Vec::new();
    let mut y = TOP_IN;
    for (i, (name, _, font, _)) in lines.iter().enumerate() {
        elements.push(Element::Text(TextBlock {
            name: (*name).to_owned(),
            x: SIDE_IN,
            y,
            width: text::width_in(*font, sizes[i], &cleaned[i]),
            lines: vec![cleaned[i].clone()],
            font: *font,
            size_pt: sizes[i],
            align: Align::Left,
        }));
        y += text::line_pitch_in(sizes[i]);
    }
    y += GAP_IN;
    elements.push(Element::Code128(Code128Mark::centred(
        "barcode",
        Area {
            x: (width - area_w) / 2.0,
            y,
            width: area_w,
            height: TRAY_BAR_HEIGHT_IN,
        },
        symbol,
        TRAY_MODULE,
        QUIET_MODULES,
    )));
    y += TRAY_BAR_HEIGHT_IN + GAP_IN;
    let digits_w = text::width_in(Font::Mono, digits_pt, &digits);
    elements.push(Element::Text(TextBlock {
        name: "digits".to_owned(),
        x: (width - digits_w) / 2.0,
        y,
        width: digits_w,
        lines: vec![digits],
        font: Font::Mono,
        size_pt: digits_pt,
        align: Align::Left,
    }));
    check_inside(&template, width, height, &elements)?;
    check_clear(&template, &elements)?;
    Ok(Label {
        description: template,
        width,
        height,
        feed: Feed::Portrait,
        elements,
    })
}

/// The largest size from `preferred` down to [`MIN_FONT_PT`] at which `line` fits
/// `room`, or the error naming the element.
pub(crate) fn shrink_to_fit(
    template: &str,
    name: &str,
    font: Font,
    preferred: f64,
    line: &str,
    room: f64,
) -> Result<f64, LayoutError> {
    shrink_to_min(template, name, font, preferred, MIN_FONT_PT, line, room)
}

/// As [`shrink_to_fit`] with an explicit minimum size.
pub(crate) fn shrink_to_min(
    template: &str,
    name: &str,
    font: Font,
    preferred: f64,
    min: f64,
    line: &str,
    room: f64,
) -> Result<f64, LayoutError> {
    let mut size = preferred;
    loop {
        let w = text::width_in(font, size, line);
        if w <= room + 1e-9 {
            return Ok(size);
        }
        if size <= min {
            return Err(LayoutError::new(
                template,
                name,
                LayoutErrorKind::LineTooWide {
                    text: line.to_owned(),
                    width_in: w,
                    available_in: room,
                    size_pt: size,
                    hint: "shorten the line".to_owned(),
                },
            ));
        }
        size = (size - FONT_STEP_PT).max(min);
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout_json;
    use super::*;

    const JOB: &str = r#"{"template":"tray","barcode":"123456781123456123123451",
        "destination":"ADC DALLAS TX 752","content":"FCM LTR 5D BC","origin":"AUSTIN TX 78701"}"#;

    #[test]
    fn tag_has_three_lines_the_barcode_and_the_digits() {
        let label = &layout_json(JOB).expect("fits")[0];
        assert_eq!((label.width, label.height), (3.25, 2.0));
        let names: Vec<&str> = label.elements.iter().map(Element::name).collect();
        assert_eq!(
            names,
            ["destination", "content", "origin", "barcode", "digits"]
        );
        let Element::Text(first) = &label.elements[0] else {
            panic!("text first")
        };
        assert!(first.y >= TOP_IN);
        let Element::Code128(c) = &label.elements[3] else {
            panic!("barcode")
        };
        assert_eq!(c.symbol.modules(), 167);
        assert!(c.clear.width <= 3.25);
        let Element::Text(d) = &label.elements[4] else {
            panic!("digits")
        };
        assert_eq!(d.lines, vec!["12345 678 1 123456 12312345 1"]);
    }

    #[test]
    fn bad_digits_and_long_lines_are_named() {
        let e = layout_json(&JOB.replace("123456781123456123123451", "12345678112345612312345"))
            .expect_err("23 digits");
        assert_eq!(
            e.to_string(),
            "tray tag 3.25x2: barcode is invalid: tray barcode has 23 digits; expected 24"
        );
        let e = layout_json(&JOB.replace("ADC DALLAS TX 752", &"W".repeat(40))).expect_err("wide");
        assert_eq!(e.element, "destination");
        assert_eq!(e.code(), "line_too_wide");
    }
}
