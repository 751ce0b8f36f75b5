//! The `placard` template: a pallet or container placard with the Intelligent Mail
//! container barcode.
//!
//! Facts: `imb-facts.md` §8 and `iv-tracking.md` Part 2 items 7–16. The barcode is
//! GS1-128 (FNC1, then `99M…`) from [`crate::encode::container::ContainerBarcode`];
//! module 23–27 mil, 25 preferred, overall length at most 7.25 in, bars 0.75–1.1 in
//! tall, 10 modules of quiet zone left and right and at least 0.125 in above and below
//! (BCOCA, Neodynamic). The human-readable line `99  M  MID  SERIAL` (two blanks
//! between fields, BCOCA) goes under the symbol, a "USPS SCAN REQUIRED" banner and
//! identification bars above and below it (BCOCA; their sizes are unconfirmed: the
//! bars here are 1/16 in thick across the barcode area).
//!
//! Sizes:
//!
//! - `8.5x11` (default): a letter sheet for lasers, portrait (QSG 705: at least
//!   8 × 11 in). Lines 1–3 (destination, contents, origin) in DejaVu Sans Condensed
//!   Bold, 72 pt preferred, never below [`PLACARD_MIN_PT`] so capitals stay at least
//!   1/2 in tall (QSG 705 "required lettering at least 1/2 in high"). Bars 1 in tall.
//!   Default encoding: code set B, 277 modules, 6.4–7.2 in (inside USPS's recommended
//!   6.25–7.25 in; `iv-tracking.md` Part 2 item 11). At 304.8 dpi no whole dot count
//!   gives 23–27 mil within 7.25 in for 277 modules, so that combination is a render
//!   error; 203.2, 300, 600 and 609.6 dpi all work.
//! - `4x6`: a thermal label laid out 6 in wide and printed turned ([`Feed::Landscape`]),
//!   the "optional smaller format" whose dimensions are unconfirmed. A 277-module
//!   symbol cannot fit 6 in, so the default encoding is the shortest (189 modules for an
//!   all-digit serial, about 4.7 in: under the 7.25 in maximum, below the recommended
//!   length); the barcode's room is the whole 6 in. An all-digit serial fits at every
//!   resolution; an alphanumeric one (about 253 modules) fits only at exactly 300 or
//!   600 dpi (203.2 dpi's 5-dot module makes it 6.2 in; 304.8 and 609.6 dpi have no
//!   whole-dot module in 23–27 mil short enough), elsewhere a render error. Lines 28 pt
//!   preferred, 12 pt minimum; bars 0.75 in tall.

use super::job::{PlacardEncoding, PlacardJob, PlacardSize};
use super::tray_tag::shrink_to_min;
use super::{
    check_clear, check_inside, clean_line, Align, Area, BoxMark, Code128Mark, Element, Feed, Label,
    LayoutError, LayoutErrorKind, ModuleRule, TextBlock,
};
use crate::encode::container::{ContainerBarcode, ContainerEncoding};
use crate::render::text::{self, Font, CAP_HEIGHT_EM, POINTS_PER_INCH};

/// Module width rule of the container barcode (BCOCA 23–27 mil, Neodynamic
/// 22.5–27.5 mil: the intersection), inches.
pub const CONTAINER_MODULE: ModuleRule = ModuleRule {
    min: 0.023,
    target: 0.025,
    max: 0.027,
    max_length: Some(7.25),
};
/// Smallest placard line size on the 8.5x11 placard: capitals at least 1/2 in tall.
pub const PLACARD_MIN_PT: f64 = 49.5;
/// Clear space above and below the container barcode, inches.
pub const CONTAINER_QUIET_V_IN: f64 = 0.125;
/// Thickness of the identification bars, inches (unconfirmed).
pub const ID_BAR_IN: f64 = 0.0625;
/// Quiet zone of Code 128, modules.
const QUIET_MODULES: u32 = 10;

/// Per-size numbers.
struct Spec {
    width: f64,
    height: f64,
    feed: Feed,
    margin: f64,
    /// Margin left and right of the barcode area.
    barcode_margin: f64,
    line_pt: f64,
    line_min_pt: f64,
    banner_pt: f64,
    bar_height: f64,
    hr_pt: f64,
    gap: f64,
    encoding: PlacardEncoding,
}

fn spec(size: PlacardSize) -> Spec {
    match size {
        PlacardSize::Letter => Spec {
            width: 8.5,
            height: 11.0,
            feed: Feed::Portrait,
            margin: 0.5,
            barcode_margin: 0.25,
            line_pt: 72.0,
            line_min_pt: PLACARD_MIN_PT,
            banner_pt: 28.0,
            bar_height: 1.0,
            hr_pt: 24.0,
            gap: 0.25,
            encoding: PlacardEncoding::SetB,
        },
        PlacardSize::In4x6 => Spec {
            width: 6.0,
            height: 4.0,
            feed: Feed::Landscape,
            margin: 0.15,
            barcode_margin: 0.0,
            line_pt: 28.0,
            line_min_pt: 12.0,
            banner_pt: 12.0,
            bar_height: 0.75,
            hr_pt: 12.0,
            gap: 0.05,
            encoding: PlacardEncoding::Shortest,
        },
    }
}

/// Lays out a `placard` job.
pub fn layout(job: &PlacardJob) -> Result<Label, LayoutError> {
    let template = format!("placard {}", job.size.name());
    let s = spec(job.size);
    let barcode = ContainerBarcode::parse(&job.barcode)
        .map_err(|e| LayoutError::new(&template, "barcode", LayoutErrorKind::Container(e)))?;
    let encoding = job.encoding.unwrap_or(s.encoding);
    let symbol = barcode.symbol(match encoding {
        PlacardEncoding::SetB => ContainerEncoding::SetB,
        PlacardEncoding::Shortest => ContainerEncoding::Shortest,
    });
    let modules = symbol.modules() as f64;
    let total = modules + 2.0 * f64::from(QUIET_MODULES);
    let room = s.width - 2.0 * s.barcode_margin;
    let needed_min = total * CONTAINER_MODULE.min;
    if needed_min > room + 1e-9 {
        let hint = match job.size {
            PlacardSize::In4x6 => "use the 8.5x11 placard or \"encoding\": \"shortest\"",
            PlacardSize::Letter => "use \"encoding\": \"shortest\"",
        };
        return Err(LayoutError::new(
            &template,
            "barcode",
            LayoutErrorKind::BarcodeTooWide {
                needed_in: needed_min,
                available_in: room,
                hint: hint.to_owned(),
            },
        ));
    }
    let max_module = CONTAINER_MODULE.max.min(
        CONTAINER_MODULE
            .max_length
            .map_or(f64::MAX, |l| l / modules),
    );
    let area_w = (total * max_module).min(room);

    let text_room = s.width - 2.0 * s.margin;
    let mut elements = Vec::new();
    let mut y = s.margin;
    for (name, line) in [
        ("destination", &job.destination),
        ("content", &job.content),
        ("origin", &job.origin),
    ] {
        let line = clean_line(line, Font::CondensedBold, false, None)
            .map_err(|k| LayoutError::new(&template, name, k))?;
        let size = shrink_to_min(
            &template,
            name,
            Font::CondensedBold,
            s.line_pt,
            s.line_min_pt,
            &line,
            text_room,
        )?;
        elements.push(Element::Text(TextBlock {
            name: name.to_owned(),
            x: s.margin,
            y,
            width: text::width_in(Font::CondensedBold, size, &line),
            lines: vec![line],
            font: Font::CondensedBold,
            size_pt: size,
            align: Align::Left,
        }));
        y += text::line_pitch_in(size);
    }
    let area_x = (s.width - area_w) / 2.0;
    let centred = |name: &str, font: Font, size: f64, line: String, y: f64| {
        let w = text::width_in(font, size, &line);
        Element::Text(TextBlock {
            name: name.to_owned(),
            x: (s.width - w) / 2.0,
            y,
            width: w,
            lines: vec![line],
            font,
            size_pt: size,
            align: Align::Left,
        })
    };
    y += s.gap;
    if let Some(banner) = &job.banner {
        let banner = clean_line(banner, Font::SansBold, false, None)
            .map_err(|k| LayoutError::new(&template, "banner", k))?;
        shrink_to_min(
            &template,
            "banner",
            Font::SansBold,
            s.banner_pt,
            s.banner_pt,
            &banner,
            text_room,
        )?;
        elements.push(centred("banner", Font::SansBold, s.banner_pt, banner, y));
        y += text::line_pitch_in(s.banner_pt) + s.gap;
    }
    let id_bar = |y: f64| {
        Element::Box(BoxMark {
            area: Area {
                x: area_x,
                y,
                width: area_w,
                height: ID_BAR_IN,
            },
            thickness: ID_BAR_IN,
            fill: true,
        })
    };
    if job.bars {
        elements.push(id_bar(y));
        y += ID_BAR_IN;
    }
    y += CONTAINER_QUIET_V_IN;
    elements.push(Element::Code128(Code128Mark::centred(
        "barcode",
        Area {
            x: area_x,
            y,
            width: area_w,
            height: s.bar_height,
        },
        symbol,
        CONTAINER_MODULE,
        QUIET_MODULES,
    )));
    y += s.bar_height + CONTAINER_QUIET_V_IN;
    if job.bars {
        elements.push(id_bar(y));
        y += ID_BAR_IN + s.gap;
    }
    elements.push(centred(
        "human-readable line",
        Font::Mono,
        s.hr_pt,
        barcode.human_readable(),
        y,
    ));
    y += text::line_pitch_in(s.hr_pt);
    if y + s.margin > s.height + 1e-9 {
        return Err(LayoutError::new(
            &template,
            "",
            LayoutErrorKind::TooTall {
                needed_in: y + s.margin,
                available_in: s.height,
                size_pt: s.line_pt,
                hint: "shorten the lines".to_owned(),
            },
        ));
    }
    check_inside(&template, s.width, s.height, &elements)?;
    check_clear(&template, &elements)?;
    Ok(Label {
        description: template,
        width: s.width,
        height: s.height,
        feed: s.feed,
        elements,
    })
}

/// Cap height of placard lines at `size_pt`, inches.
pub fn cap_height(size_pt: f64) -> f64 {
    size_pt / POINTS_PER_INCH * CAP_HEIGHT_EM
}

#[cfg(test)]
mod tests {
    use super::super::layout_json;
    use super::*;

    const JOB: &str = r#"{"template":"placard","barcode":"99M900066875EMA000051",
        "destination":"NDC DALLAS TX 752","content":"STD FLTS","origin":"AUSTIN TX 78701"}"#;

    #[test]
    fn letter_placard_has_half_inch_lines_and_a_set_b_symbol() {
        assert!(cap_height(PLACARD_MIN_PT) >= 0.5);
        assert!(cap_height(PLACARD_MIN_PT - 0.5) < 0.5);
        let label = &layout_json(JOB).expect("fits")[0];
        assert_eq!(
            (label.width, label.height, label.feed),
            (8.5, 11.0, Feed::Portrait)
        );
        for e in &label.elements[..3] {
            let Element::Text(t) = e else {
                panic!("lines first")
            };
            assert!(cap_height(t.size_pt) >= 0.5, "{}: {}", t.name, t.size_pt);
        }
        let c = label
            .elements
            .iter()
            .find_map(|e| match e {
                Element::Code128(c) => Some(c),
                _ => None,
            })
            .expect("barcode");
        assert_eq!(c.symbol.modules(), 277);
        let hr = label
            .elements
            .iter()
            .find(|e| e.name() == "human-readable line");
        let Some(Element::Text(hr)) = hr else {
            panic!("hr")
        };
        assert_eq!(hr.lines, vec!["99  M  900066875  EMA000051"]);
    }

    #[test]
    fn four_by_six_uses_the_short_symbol_and_refuses_set_b() {
        let job = JOB.replace("\"placard\",", "\"placard\",\"size\":\"4x6\",");
        let label = &layout_json(&job).expect("fits")[0];
        assert_eq!(
            (label.width, label.height, label.feed),
            (6.0, 4.0, Feed::Landscape)
        );
        let e = layout_json(&job.replace("\"4x6\",", "\"4x6\",\"encoding\":\"set-b\","))
            .expect_err("too wide");
        assert_eq!(
            e.to_string(),
            "placard 4x6: barcode needs 6.831 in of width, the label has 6 in (use the 8.5x11 placard or \"encoding\": \"shortest\")"
        );
    }

    #[test]
    fn a_line_too_long_for_half_inch_letters_is_named() {
        let job = JOB.replace("STD FLTS", "STANDARD MAIL FLATS MIXED ADC");
        let e = layout_json(&job).expect_err("too wide");
        assert_eq!(e.element, "content");
        assert!(e.to_string().contains("at 49.5 pt"), "{e}");
    }
}
