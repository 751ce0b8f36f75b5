//! The `custom` template: a label of any size with elements placed by the job, in
//! inches or millimetres (`"unit"` for the job, overridable per element; font sizes
//! are always points).
//!
//! Elements ([`CustomElement`]):
//!
//! - `text`: lines at (`x`, `y`) = left edge, top of the first line box; `size_pt`
//!   (default 10, 4–400), `font` (`sans`, `sans-bold`, `condensed-bold`, `mono`),
//!   optional box `width` with `align` (`left`, `center`, `right`). Text is never
//!   shrunk here: a line wider than its `width` is an error.
//! - `imb`: (`x`, `y`) = leading edge of the first bar, top of the ascenders. The
//!   layout reserves [`super::IMB_MAX_LENGTH_IN`] × [`super::IMB_MAX_HEIGHT_IN`] of bars and the
//!   clear zones around them ([`IMB_CLEAR_H_IN`], [`IMB_CLEAR_V_IN`]); that area must
//!   lie inside the label and touch no other element.
//! - `code128`: (`x`, `y`) = leading edge of the first bar, top of the bars; `height`;
//!   `data` (ASCII), `gs1` (FNC1 first), `module` (target narrow bar, default
//!   0.015 in; the renderer picks whole dots within ±15 %), `text` (the data under the
//!   bars, 8 pt mono). Its quiet zones (10 modules) must lie inside the label and
//!   touch no other element.
//! - `line`: from (`x1`, `y1`) to (`x2`, `y2`), `thickness` (default 1 pt).
//! - `box`: `x`, `y`, `width`, `height`, `thickness` (default 1 pt, drawn inside),
//!   `fill`.
//! - `image`: a PNG, base64 in `png` (paths are not accepted: layout reads no files),
//!   at (`x`, `y`), scaled to `width` × `height`; give one of them to keep the aspect
//!   ratio, or neither to use the PNG's own `pHYs` resolution. Any PNG is thresholded
//!   to black and white at half luminance ([`super::png`]).
//!
//! No USPS placement rules apply beyond the IMb's clear zones: a custom layout has no
//! notion of an address block.

use super::job::{CustomElement, CustomJob, FeedJob, Unit};
use super::png::{base64_decode, decode_png};
use super::{
    check_clear, check_inside, check_range, clean_line, widest, Align, Area, BoxMark, Code128Mark,
    Element, Feed, ImageMark, ImbMark, Label, LayoutError, LayoutErrorKind, LineMark, ModuleRule,
    TextBlock, IMB_BOX_H_IN, IMB_BOX_W_IN, IMB_CLEAR_H_IN, IMB_CLEAR_V_IN,
};
use crate::encode::code128::{self, Code128Char, CodeSetMode};
use crate::render::text::{self, Font};

/// Most elements in one custom label.
pub const MAX_ELEMENTS: usize = 500;
/// Most lines in one text element.
pub const MAX_TEXT_LINES: usize = 100;
/// Default line and outline thickness: 1 pt, inches.
pub const DEFAULT_THICKNESS_IN: f64 = 1.0 / 72.0;
/// Default Code 128 module, inches.
pub const DEFAULT_MODULE_IN: f64 = 0.015;
/// Largest label side, inches.
pub const MAX_SIDE_IN: f64 = 100.0;

/// Lays out a `custom` job.
pub fn layout(job: &CustomJob) -> Result<Vec<Label>, LayoutError> {
    let template = "custom label".to_owned();
    let u = job.unit.inches();
    let unit_name = match job.unit {
        Unit::In => "in",
        Unit::Mm => "mm",
    };
    let side = |v: f64, name: &str| {
        check_range(v * u, 0.1, MAX_SIDE_IN, "in")
            .map_err(|k| LayoutError::new(&template, format!("{name} ({v} {unit_name})"), k))
    };
    let width = side(job.width, "width")?;
    let height = side(job.height, "height")?;
    if job.elements.len() > MAX_ELEMENTS {
        return Err(LayoutError::new(
            &template,
            "elements",
            LayoutErrorKind::Value {
                found: job.elements.len().to_string(),
                expected: format!("at most {MAX_ELEMENTS} elements"),
            },
        ));
    }
    let mut elements = Vec::new();
    for (i, element) in job.elements.iter().enumerate() {
        convert(&template, i + 1, element, job.unit, &mut elements)?;
    }
    check_inside(&template, width, height, &elements)?;
    check_clear(&template, &elements)?;
    Ok(vec![Label {
        description: template,
        width,
        height,
        feed: match job.feed {
            FeedJob::Portrait => Feed::Portrait,
            FeedJob::Landscape => Feed::Landscape,
        },
        elements,
    }])
}

/// A length in inches: finite and within ±[`MAX_SIDE_IN`].
fn length(template: &str, name: &str, v: f64, u: f64) -> Result<f64, LayoutError> {
    check_range(v * u, -MAX_SIDE_IN, MAX_SIDE_IN, "in")
        .map_err(|k| LayoutError::new(template, name, k))
}

/// A positive length in inches.
fn positive(template: &str, name: &str, v: f64, u: f64) -> Result<f64, LayoutError> {
    check_range(v * u, 1e-4, MAX_SIDE_IN, "in").map_err(|k| LayoutError::new(template, name, k))
}

fn convert(
    template: &str,
    n: usize,
    element: &CustomElement,
    job_unit: Unit,
    out: &mut Vec<Element>,
) -> Result<(), LayoutError> {
    let err = |what: &str, kind| LayoutError::new(template, format!("element {n} ({what})"), kind);
    match element {
        CustomElement::Text(t) => {
            let name = format!("element {n} (text)");
            let u = t.unit.unwrap_or(job_unit).inches();
            let size_pt =
                check_range(t.size_pt, 4.0, 400.0, "pt").map_err(|k| err("text size_pt", k))?;
            if t.lines.is_empty() || t.lines.len() > MAX_TEXT_LINES {
                return Err(err(
                    "text",
                    LayoutErrorKind::LineCount {
                        found: t.lines.len(),
                        min: 1,
                        max: MAX_TEXT_LINES,
                    },
                ));
            }
            let lines = t
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    clean_line(l, t.font, false, None).map_err(|k| {
                        LayoutError::new(template, format!("element {n} (text) line {}", i + 1), k)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (wi, ww) = widest(t.font, size_pt, &lines);
            let box_w = match t.width {
                Some(w) => positive(template, &name, w, u)?,
                None => ww,
            };
            if ww > box_w + 1e-9 {
                return Err(LayoutError::new(
                    template,
                    format!("element {n} (text) line {}", wi + 1),
                    LayoutErrorKind::LineTooWide {
                        text: lines[wi].clone(),
                        width_in: ww,
                        available_in: box_w,
                        size_pt,
                        hint: "shorten it, widen the box or use a smaller size".to_owned(),
                    },
                ));
            }
            out.push(Element::Text(TextBlock {
                name,
                x: length(template, "text x", t.x, u)?,
                y: length(template, "text y", t.y, u)?,
                width: box_w,
                lines,
                font: t.font,
                size_pt,
                align: t.align,
            }));
        }
        CustomElement::Imb(m) => {
            let u = m.unit.unwrap_or(job_unit).inches();
            let (x, y) = (
                length(template, "imb x", m.x, u)?,
                length(template, "imb y", m.y, u)?,
            );
            let data = super::ImbData::new(m.tracking.clone(), m.routing.clone());
            let imb = super::encode_imb(&data).map_err(|k| err("imb", k))?;
            out.push(Element::Imb(ImbMark {
                name: format!("element {n} (imb)"),
                x,
                y,
                clear: Area {
                    x: x - IMB_CLEAR_H_IN,
                    y: y - IMB_CLEAR_V_IN,
                    width: IMB_BOX_W_IN,
                    height: IMB_BOX_H_IN,
                },
                tracking: m.tracking.trim().to_owned(),
                routing: m.routing.trim().to_owned(),
                imb,
            }));
        }
        CustomElement::Code128(c) => {
            let name = format!("element {n} (code128)");
            let u = c.unit.unwrap_or(job_unit).inches();
            let (x, y) = (
                length(template, "code128 x", c.x, u)?,
                length(template, "code128 y", c.y, u)?,
            );
            let height = positive(template, "code128 height", c.height, u)?;
            let target = match c.module {
                Some(m) => positive(template, "code128 module", m, u)?,
                None => DEFAULT_MODULE_IN,
            };
            let mut chars = Code128Char::from_ascii_str(&c.data)
                .map_err(|e| err("code128", LayoutErrorKind::Code128(e)))?;
            if c.gs1 {
                chars.insert(0, Code128Char::Fnc1);
            }
            let symbol = code128::encode_with(&chars, CodeSetMode::Shortest)
                .map_err(|e| err("code128", LayoutErrorKind::Code128(e)))?;
            let rule = ModuleRule {
                min: target * 0.85,
                target,
                max: target * 1.15,
                max_length: None,
            };
            let quiet = 10u32;
            let modules = symbol.modules() as f64;
            let clear = Area {
                x: x - f64::from(quiet) * rule.max,
                y,
                width: (modules + 2.0 * f64::from(quiet)) * rule.max,
                height,
            };
            let text_line = c.text.then(|| c.data.clone());
            out.push(Element::Code128(Code128Mark {
                name: name.clone(),
                x,
                y,
                height,
                align: Align::Left,
                clear,
                symbol,
                module: rule,
                quiet_modules: quiet,
            }));
            if let Some(line) = text_line {
                let line = clean_line(&line, Font::Mono, false, None)
                    .map_err(|k| err("code128 text", k))?;
                let size = 8.0;
                let w = text::width_in(Font::Mono, size, &line);
                out.push(Element::Text(TextBlock {
                    name: format!("element {n} (code128 text)"),
                    x: x + modules * target / 2.0 - w / 2.0,
                    y: y + height + 0.03,
                    width: w,
                    lines: vec![line],
                    font: Font::Mono,
                    size_pt: size,
                    align: Align::Left,
                }));
            }
        }
        CustomElement::Line(l) => {
            let u = l.unit.unwrap_or(job_unit).inches();
            out.push(Element::Line(LineMark {
                x1: length(template, "line x1", l.x1, u)?,
                y1: length(template, "line y1", l.y1, u)?,
                x2: length(template, "line x2", l.x2, u)?,
                y2: length(template, "line y2", l.y2, u)?,
                thickness: match l.thickness {
                    Some(t) => positive(template, "line thickness", t, u)?,
                    None => DEFAULT_THICKNESS_IN,
                },
            }));
        }
        CustomElement::Box(b) => {
            let u = b.unit.unwrap_or(job_unit).inches();
            out.push(Element::Box(BoxMark {
                area: Area {
                    x: length(template, "box x", b.x, u)?,
                    y: length(template, "box y", b.y, u)?,
                    width: positive(template, "box width", b.width, u)?,
                    height: positive(template, "box height", b.height, u)?,
                },
                thickness: match b.thickness {
                    Some(t) => positive(template, "box thickness", t, u)?,
                    None => DEFAULT_THICKNESS_IN,
                },
                fill: b.fill,
            }));
        }
        CustomElement::Image(i) => {
            let u = i.unit.unwrap_or(job_unit).inches();
            let bytes = base64_decode(&i.png)
                .map_err(|reason| err("image", LayoutErrorKind::Image { reason }))?;
            let picture = decode_png(&bytes)
                .map_err(|reason| err("image", LayoutErrorKind::Image { reason }))?;
            let (pw, ph) = (
                f64::from(picture.bitmap.width()),
                f64::from(picture.bitmap.height()),
            );
            let w = i
                .width
                .map(|w| positive(template, "image width", w, u))
                .transpose()?;
            let h = i
                .height
                .map(|h| positive(template, "image height", h, u))
                .transpose()?;
            let (width, height) = match (w, h, picture.dpi) {
                (Some(w), Some(h), _) => (w, h),
                (Some(w), None, _) => (w, w * ph / pw),
                (None, Some(h), _) => (h * pw / ph, h),
                (None, None, Some((dx, dy))) => (pw / dx, ph / dy),
                (None, None, None) => {
                    return Err(err(
                        "image",
                        LayoutErrorKind::Image {
                            reason: "give a width or height: the PNG has no pHYs resolution"
                                .to_owned(),
                        },
                    ))
                }
            };
            out.push(Element::Image(ImageMark {
                area: Area {
                    x: length(template, "image x", i.x, u)?,
                    y: length(template, "image y", i.y, u)?,
                    width,
                    height,
                },
                pixels: picture.bitmap,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::layout_json;
    use super::*;

    #[test]
    fn every_element_kind_lays_out_in_millimetres() {
        let job = r#"{"template":"custom","unit":"mm","width":101.6,"height":152.4,"elements":[
            {"type":"text","x":5,"y":5,"lines":["HELLO","WORLD"],"size_pt":12,"font":"sans-bold"},
            {"type":"imb","x":10,"y":40,"tracking":"00270123456200800001","routing":"987654321"},
            {"type":"code128","x":10,"y":70,"height":15,"data":"ABC-123","text":true},
            {"type":"line","x1":5,"y1":100,"x2":95,"y2":100,"thickness":0.5},
            {"type":"box","x":5,"y":110,"width":90,"height":30,"unit":"mm"},
            {"type":"text","unit":"in","x":0.5,"y":5.0,"width":3,"align":"center","lines":["CENTRED"]}
        ]}"#;
        let labels = layout_json(job).expect("fits");
        let l = &labels[0];
        assert!((l.width - 4.0).abs() < 1e-9 && (l.height - 6.0).abs() < 1e-9);
        assert_eq!(l.elements.len(), 7); // the code128 text is its own block
        let Element::Imb(m) = &l.elements[1] else {
            panic!("imb")
        };
        assert!((m.x - 10.0 / 25.4).abs() < 1e-12);
    }

    #[test]
    fn imb_clear_zone_must_be_clear_and_inside() {
        let base = r#"{"template":"custom","width":4,"height":2,"elements":[
            {"type":"imb","x":0.3,"y":0.5,"tracking":"00270123456200800001"}XX]}"#;
        assert!(layout_json(&base.replace("XX", "")).is_ok());
        let e = layout_json(&base.replace(
            "XX",
            r#",{"type":"box","x":1,"y":0.62,"width":1,"height":0.5}"#,
        ))
        .expect_err("overlap");
        assert_eq!(e.element, "element 1 (imb)");
        assert_eq!(e.code(), "overlap");
        let e = layout_json(&base.replace("\"x\":0.3", "\"x\":0.1").replace("XX", ""))
            .expect_err("edge");
        assert_eq!(
            e.to_string(),
            "custom label: element 1 (imb) extends 0.055 in past the label's left edge"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = layout_json(r#"{"template":"custom","width":0,"height":2,"elements":[]}"#)
            .expect_err("zero width");
        assert_eq!(
            e.to_string(),
            "custom label: width (0 in) is 0; expected 0.1 to 100 in"
        );
        let e = layout_json(
            r#"{"template":"custom","width":2,"height":2,"elements":[{"type":"text","x":0,"y":0,"width":0.5,"lines":["MUCH TOO WIDE"]}]}"#,
        )
        .expect_err("wide");
        assert_eq!(e.element, "element 1 (text) line 1");
        let e = layout_json(
            r#"{"template":"custom","width":2,"height":2,"elements":[{"type":"image","x":0,"y":0,"png":"bm90IGEgcG5n"}]}"#,
        )
        .expect_err("not a png");
        assert_eq!(
            e.to_string(),
            "custom label: element 1 (image) cannot be read: not a PNG file (no PNG signature)"
        );
    }
}
