//! The `address` template, and the address-block engine the envelope and sheet
//! templates reuse.
//!
//! Sizes ([`AddressSize`]), all laid out with the text reading left to right:
//!
//! | Size | Label (in) | Feed | Margin | Address / return | Notes |
//! |---|---|---|---|---|---|
//! | `4x6` | 4 × 6 | portrait | 0.15 | 14 / 10 pt | |
//! | `4x3` | 4 × 3 | portrait | 0.125 | 12 / 9 pt | |
//! | `4x2` | 4 × 2 | portrait | 0.1 | 11 / 9 pt | |
//! | `3.5x1.125` | 3.5 × 1.125 | landscape | 0.06 | 10 / 8 pt | DYMO 30252 / 99012 |
//! | `62mm` | length × 2.32 | landscape | 0.1 | 12 / 9 pt | Brother 62 mm tape: 696 printable dots at 300 dpi across; length from `length_mm` or the content |
//! | `2.25x1.25` | 2.25 × 1.25 | portrait | 0.08 | 10 / 8 pt | too narrow for an IMb |
//!
//! Arrangement, top to bottom: the return address (`from`) at the top-left margin;
//! the endorsement directly below it (DMM 507.1.5.2's first position; at the top when
//! there is no return address); then the address group, centred in the space left:
//! the delivery address (`to`) with the IMb directly above or below it. The block is
//! centred horizontally; the IMb's first bar lines up with the address text where
//! the label is wide enough.
//!
//! Fitting: the IMb needs [`IMB_BOX_W_IN`] (3.45 in) of width and never shrinks, so
//! a narrower label is an error at once. Then the text sizes step down by
//! [`FONT_STEP_PT`] (a block that is too wide shrinks alone; when the whole is too
//! tall both shrink) until everything fits or the sizes reach [`MIN_FONT_PT`], where
//! the first thing that still does not fit is the error.

use super::job::{AddressJob, AddressSize, ImbData, ImbPosition};
use super::{
    check_clear, check_inside, clean_line, encode_imb, widest, Align, Area, Element, Feed, ImbMark,
    Label, LayoutError, LayoutErrorKind, TextBlock, FONT_STEP_PT, IMB_BOX_H_IN, IMB_BOX_W_IN,
    IMB_CLEAR_H_IN, IMB_CLEAR_V_IN, MAX_ADDRESS_LINES, MIN_FONT_PT,
};
use crate::encode::imb::Imb;
use crate::render::text::{self, Font};

/// Printable width of 62 mm Brother tape: 696 dots at 300 dpi (brother_ql
/// `labels.py`, `printer-langs.md` §3.1), inches.
pub const TAPE_62MM_PRINTABLE_IN: f64 = 696.0 / 300.0;
/// Shortest 62 mm label computed from its content, inches.
pub const TAPE_MIN_LENGTH_IN: f64 = 1.0;
/// Vertical gap between the return block, the endorsement and the address group,
/// inches.
const GAP_IN: f64 = 0.06;

/// Validated content of one address block.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Content {
    /// Delivery address lines.
    pub to: Vec<String>,
    /// Return address lines (may be empty).
    pub from: Vec<String>,
    /// Endorsement line.
    pub endorsement: Option<String>,
    /// The IMb: its data and the encoded symbol.
    pub imb: Option<(ImbData, Imb)>,
    /// Above or below the address.
    pub position: ImbPosition,
}

/// The raw fields of one address block, before checking.
pub(crate) struct Fields<'a> {
    pub to: &'a [String],
    pub from: &'a [String],
    pub endorsement: Option<&'a str>,
    pub imb: Option<&'a ImbData>,
    pub position: ImbPosition,
    pub uppercase: bool,
    pub max_line_chars: Option<u32>,
}

impl Content {
    /// Checks the fields; errors are named `{prefix}to line 2`, `{prefix}imb`, ….
    pub(crate) fn check(
        template: &str,
        prefix: &str,
        f: &Fields<'_>,
    ) -> Result<Content, LayoutError> {
        let lines = |name: &str, lines: &[String], min: usize| {
            if lines.len() < min || lines.len() > MAX_ADDRESS_LINES {
                return Err(LayoutError::new(
                    template,
                    format!("{prefix}{name}"),
                    LayoutErrorKind::LineCount {
                        found: lines.len(),
                        min,
                        max: MAX_ADDRESS_LINES,
                    },
                ));
            }
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    clean_line(l, Font::Sans, f.uppercase, f.max_line_chars).map_err(|kind| {
                        LayoutError::new(template, format!("{prefix}{name} line {}", i + 1), kind)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let to = lines("to", f.to, 1)?;
        let from = lines("from", f.from, 0)?;
        let endorsement = f
            .endorsement
            .map(|e| {
                clean_line(e, Font::SansBold, f.uppercase, None).map_err(|kind| {
                    LayoutError::new(template, format!("{prefix}endorsement"), kind)
                })
            })
            .transpose()?;
        let imb = f
            .imb
            .map(|d| {
                encode_imb(d)
                    .map(|imb| (d.clone(), imb))
                    .map_err(|kind| LayoutError::new(template, format!("{prefix}imb"), kind))
            })
            .transpose()?;
        Ok(Content {
            to,
            from,
            endorsement,
            imb,
            position: f.position,
        })
    }
}

/// Where an address block may go, and its preferred text sizes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    /// The label, for messages.
    pub template: String,
    /// Prefix of element names (`record 3 ` on sheets).
    pub prefix: String,
    /// Label width; `None` computes it from the content (62 mm tape).
    pub width: Option<f64>,
    /// Shortest computed width.
    pub min_width: f64,
    /// Label height.
    pub height: f64,
    /// Margin around the return address and, by default, the address group.
    pub margin: f64,
    /// Widest the return address and endorsement may be (default: the label less
    /// both margins).
    pub from_max_width: Option<f64>,
    /// Left limit of the address text.
    pub group_left: f64,
    /// Distance of the address text's right limit from the right edge.
    pub group_right: f64,
    /// Highest top of the address group (it also stays below the return block).
    pub group_top: f64,
    /// Lowest bottom of the address group.
    pub group_bottom: f64,
    /// Preferred left edge of the address text; `None` centres it.
    pub to_x: Option<f64>,
    /// Preferred size of the address, points.
    pub to_pt: f64,
    /// Preferred size of the return address and endorsement, points.
    pub from_pt: f64,
    /// What to suggest when something is too wide.
    pub wider_hint: String,
}

/// Label geometry of each size: (width, height, feed, margin, to pt, from pt).
fn size_table(size: AddressSize) -> (f64, f64, Feed, f64, f64, f64) {
    match size {
        AddressSize::In4x6 => (4.0, 6.0, Feed::Portrait, 0.15, 14.0, 10.0),
        AddressSize::In4x3 => (4.0, 3.0, Feed::Portrait, 0.125, 12.0, 9.0),
        AddressSize::In4x2 => (4.0, 2.0, Feed::Portrait, 0.1, 11.0, 9.0),
        AddressSize::In3_5x1_125 => (3.5, 1.125, Feed::Landscape, 0.06, 10.0, 8.0),
        AddressSize::Mm62 => (0.0, TAPE_62MM_PRINTABLE_IN, Feed::Landscape, 0.1, 12.0, 9.0),
        AddressSize::In2_25x1_25 => (2.25, 1.25, Feed::Portrait, 0.08, 10.0, 8.0),
    }
}

/// The frame of a plain address label `width` × `height` with margin `margin`.
pub(crate) fn label_frame(
    template: &str,
    width: Option<f64>,
    height: f64,
    margin: f64,
    to_pt: f64,
    from_pt: f64,
) -> Frame {
    Frame {
        template: template.to_owned(),
        prefix: String::new(),
        width,
        min_width: TAPE_MIN_LENGTH_IN,
        height,
        margin,
        from_max_width: None,
        group_left: margin,
        group_right: margin,
        group_top: margin,
        group_bottom: height - margin,
        to_x: None,
        to_pt,
        from_pt,
        wider_hint: "use a 4 in wide label".to_owned(),
    }
}

/// Lays out an `address` job.
pub fn layout(job: &AddressJob) -> Result<Label, LayoutError> {
    let template = format!("address label {}", job.size.name());
    let (w, h, feed, margin, to_pt, from_pt) = size_table(job.size);
    let width = match (job.size, job.length_mm) {
        (AddressSize::Mm62, Some(mm)) => Some(
            super::check_range(mm, 25.4, 1000.0, "mm")
                .map_err(|k| LayoutError::new(&template, "length_mm", k))?
                / 25.4,
        ),
        (AddressSize::Mm62, None) => None,
        (_, Some(mm)) => {
            return Err(LayoutError::new(
                &template,
                "length_mm",
                LayoutErrorKind::Value {
                    found: format!("{mm}"),
                    expected: "no length: only the 62mm size takes one".to_owned(),
                },
            ))
        }
        (_, None) => Some(w),
    };
    let content = Content::check(
        &template,
        "",
        &Fields {
            to: &job.to,
            from: &job.from,
            endorsement: job.endorsement.as_deref(),
            imb: job.imb.as_ref(),
            position: job.imb_position,
            uppercase: job.uppercase,
            max_line_chars: job.max_line_chars,
        },
    )?;
    let frame = label_frame(&template, width, h, margin, to_pt, from_pt);
    let (width, elements) = place(&frame, &content)?;
    Ok(Label {
        description: template,
        width,
        height: h,
        feed,
        elements,
    })
}

/// Sizes chosen by [`fit`].
struct Fit {
    width: f64,
    to_pt: f64,
    from_pt: f64,
    group_top_min: f64,
    group_h: f64,
}

/// Places one address block in `frame`: returns the label width (computed when the
/// frame has none) and the elements.
pub(crate) fn place(frame: &Frame, c: &Content) -> Result<(f64, Vec<Element>), LayoutError> {
    let fit = fit(frame, c)?;
    let m = frame.margin;
    let width = fit.width;
    let mut elements = Vec::new();
    let from_h = text::block_height_in(fit.from_pt, c.from.len());
    if !c.from.is_empty() {
        elements.push(Element::Text(TextBlock {
            name: format!("{}from", frame.prefix),
            x: m,
            y: m,
            width: widest(Font::Sans, fit.from_pt, &c.from).1,
            lines: c.from.clone(),
            font: Font::Sans,
            size_pt: fit.from_pt,
            align: Align::Left,
        }));
    }
    if let Some(e) = &c.endorsement {
        let y = if c.from.is_empty() {
            m
        } else {
            m + from_h + GAP_IN
        };
        elements.push(Element::Text(TextBlock {
            name: format!("{}endorsement", frame.prefix),
            x: m,
            y,
            width: text::width_in(Font::SansBold, fit.from_pt, e),
            lines: vec![e.clone()],
            font: Font::SansBold,
            size_pt: fit.from_pt,
            align: Align::Left,
        }));
    }
    // The address group, centred in the room left.
    let room = frame.group_bottom - fit.group_top_min - fit.group_h;
    let group_top = fit.group_top_min + room.max(0.0) / 2.0;
    let to_w = widest(Font::Sans, fit.to_pt, &c.to).1;
    let right = width - frame.group_right;
    let to_x = match frame.to_x {
        Some(x) => x.min(right - to_w),
        None => frame.group_left + (right - frame.group_left - to_w) / 2.0,
    }
    .max(frame.group_left);
    let to_h = text::block_height_in(fit.to_pt, c.to.len());
    let imb_above = c.position == ImbPosition::Above;
    let to_y = if c.imb.is_some() && imb_above {
        group_top + IMB_BOX_H_IN
    } else {
        group_top
    };
    if let Some((data, imb)) = &c.imb {
        let box_x = (to_x - IMB_CLEAR_H_IN).clamp(0.0, (width - IMB_BOX_W_IN).max(0.0));
        let box_y = if imb_above { group_top } else { to_y + to_h };
        elements.push(Element::Imb(ImbMark {
            name: format!("{}imb", frame.prefix),
            x: box_x + IMB_CLEAR_H_IN,
            y: box_y + IMB_CLEAR_V_IN,
            clear: Area {
                x: box_x,
                y: box_y,
                width: IMB_BOX_W_IN,
                height: IMB_BOX_H_IN,
            },
            tracking: data.tracking.trim().to_owned(),
            routing: data.routing.trim().to_owned(),
            imb: *imb,
        }));
    }
    elements.push(Element::Text(TextBlock {
        name: format!("{}to", frame.prefix),
        x: to_x,
        y: to_y,
        width: to_w,
        lines: c.to.clone(),
        font: Font::Sans,
        size_pt: fit.to_pt,
        align: Align::Left,
    }));
    check_inside(&frame.template, width, frame.height, &elements)?;
    check_clear(&frame.template, &elements)?;
    Ok((width, elements))
}

/// Chooses the text sizes (and the width, when computed).
fn fit(frame: &Frame, c: &Content) -> Result<Fit, LayoutError> {
    let err = |element: String, kind| LayoutError::new(&frame.template, element, kind);
    let m = frame.margin;
    if let (Some(width), Some(_)) = (frame.width, &c.imb) {
        if IMB_BOX_W_IN > width + 1e-9 {
            return Err(err(
                format!("{}imb", frame.prefix),
                LayoutErrorKind::BarcodeTooWide {
                    needed_in: IMB_BOX_W_IN,
                    available_in: width,
                    hint: frame.wider_hint.clone(),
                },
            ));
        }
    }
    let (mut to_pt, mut from_pt) = (frame.to_pt, frame.from_pt);
    let endorsement: Vec<String> = c.endorsement.iter().cloned().collect();
    loop {
        let (ti, tw) = widest(Font::Sans, to_pt, &c.to);
        let (fi, fw) = widest(Font::Sans, from_pt, &c.from);
        let ew = widest(Font::SansBold, from_pt, &endorsement).1;
        let width = frame.width.unwrap_or_else(|| {
            let imb = if c.imb.is_some() { IMB_BOX_W_IN } else { 0.0 };
            (frame.group_left + tw + frame.group_right)
                .max(2.0 * m + fw.max(ew))
                .max(imb)
                .max(frame.min_width)
        });
        let to_room = width - frame.group_left - frame.group_right;
        let from_room = frame.from_max_width.unwrap_or(width - 2.0 * m);
        let from_h = text::block_height_in(from_pt, c.from.len());
        let endorsement_h = text::block_height_in(from_pt, endorsement.len());
        let gaps = if c.from.is_empty() || endorsement.is_empty() {
            0.0
        } else {
            GAP_IN
        };
        let stack = from_h + gaps + endorsement_h;
        let group_top_min = if stack > 0.0 {
            frame.group_top.max(m + stack + GAP_IN)
        } else {
            frame.group_top
        };
        let imb_h = if c.imb.is_some() { IMB_BOX_H_IN } else { 0.0 };
        let group_h = text::block_height_in(to_pt, c.to.len()) + imb_h;
        let to_wide = tw > to_room + 1e-9;
        let from_wide = fw.max(ew) > from_room + 1e-9;
        let tall = group_top_min + group_h > frame.group_bottom + 1e-9;
        if !to_wide && !from_wide && !tall {
            return Ok(Fit {
                width,
                to_pt,
                from_pt,
                group_top_min,
                group_h,
            });
        }
        let can_to = to_pt > MIN_FONT_PT;
        let can_from = from_pt > MIN_FONT_PT && !(c.from.is_empty() && endorsement.is_empty());
        let shrink_to = (to_wide || tall) && can_to;
        let shrink_from = (from_wide || tall) && can_from;
        if !shrink_to && !shrink_from {
            let shorten = "shorten the line or use a wider label";
            return Err(if to_wide {
                err(
                    format!("{}to line {}", frame.prefix, ti + 1),
                    LayoutErrorKind::LineTooWide {
                        text: c.to[ti].clone(),
                        width_in: tw,
                        available_in: to_room,
                        size_pt: to_pt,
                        hint: shorten.to_owned(),
                    },
                )
            } else if from_wide && fw >= ew {
                err(
                    format!("{}from line {}", frame.prefix, fi + 1),
                    LayoutErrorKind::LineTooWide {
                        text: c.from[fi].clone(),
                        width_in: fw,
                        available_in: from_room,
                        size_pt: from_pt,
                        hint: shorten.to_owned(),
                    },
                )
            } else if from_wide {
                err(
                    format!("{}endorsement", frame.prefix),
                    LayoutErrorKind::LineTooWide {
                        text: endorsement.concat(),
                        width_in: ew,
                        available_in: from_room,
                        size_pt: from_pt,
                        hint: shorten.to_owned(),
                    },
                )
            } else {
                let below = frame.height - frame.group_bottom;
                err(
                    format!("{}address block", frame.prefix),
                    LayoutErrorKind::TooTall {
                        needed_in: group_top_min + group_h + below,
                        available_in: frame.height,
                        size_pt: to_pt,
                        hint: "use fewer lines, drop the return address or use a taller label"
                            .to_owned(),
                    },
                )
            });
        }
        if shrink_to {
            to_pt = (to_pt - FONT_STEP_PT).max(MIN_FONT_PT);
        }
        if shrink_from {
            from_pt = (from_pt - FONT_STEP_PT).max(MIN_FONT_PT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{layout_json, IMB_MAX_DISTANCE_IN, IMB_MAX_HEIGHT_IN};
    use super::*;

    const EXAMPLE: &str = r#"{"template": "address", "size": "4x6",
        "imb": {"tracking": "00270123456200800001", "routing": "987654321"},
        "to": ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"],
        "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"]}"#;

    fn with_size(size: &str) -> String {
        EXAMPLE.replace("\"4x6\"", &format!("\"{size}\""))
    }

    /// Bars-to-address-line distance and clear-zone checks for one label.
    fn assert_usps_placement(label: &Label) {
        let imb = label.imbs().next().expect("an imb");
        let to = label
            .elements
            .iter()
            .find_map(|e| match e {
                Element::Text(t) if t.name.ends_with("to") => Some(t),
                _ => None,
            })
            .expect("a to block");
        let bars_bottom = imb.y + IMB_MAX_HEIGHT_IN;
        let distance = if imb.y < to.y {
            to.y - bars_bottom
        } else {
            imb.y - to.y - to.height()
        };
        assert!(
            (IMB_CLEAR_V_IN - 1e-9..=IMB_MAX_DISTANCE_IN).contains(&distance),
            "{distance}"
        );
        assert!(imb.clear.x >= 0.0 && imb.clear.right() <= label.width + 1e-9);
        assert!(imb.clear.y >= 0.0 && imb.clear.bottom() <= label.height + 1e-9);
        for e in &label.elements {
            if !matches!(e, Element::Imb(_)) {
                assert_eq!(imb.clear.overlap(&e.area()), None, "{}", e.name());
            }
        }
    }

    #[test]
    fn the_example_lays_out_on_every_size_wide_enough_for_an_imb() {
        for size in ["4x6", "4x3", "4x2", "62mm"] {
            let labels = layout_json(&with_size(size)).expect(size);
            assert_eq!(labels.len(), 1);
            let label = &labels[0];
            assert_usps_placement(label);
            assert_eq!(label.imbs().count(), 1);
        }
        let l = &layout_json(&with_size("4x6")).expect("4x6")[0];
        assert_eq!((l.width, l.height, l.feed), (4.0, 6.0, Feed::Portrait));
        let tape = &layout_json(&with_size("62mm")).expect("62mm")[0];
        assert_eq!(tape.feed, Feed::Landscape);
        assert!(tape.width >= IMB_BOX_W_IN && tape.height == TAPE_62MM_PRINTABLE_IN);
    }

    #[test]
    fn too_narrow_for_the_imb_is_the_exact_error() {
        let e = layout_json(&with_size("2.25x1.25")).expect_err("too narrow");
        assert_eq!(
            e.to_string(),
            "address label 2.25x1.25: imb needs 3.45 in of width, the label has 2.25 in (use a 4 in wide label)"
        );
        assert_eq!(
            (e.template.as_str(), e.element.as_str()),
            ("address label 2.25x1.25", "imb")
        );
    }

    #[test]
    fn dymo_fits_without_a_return_address_and_says_why_with_one() {
        let no_from = r#"{"template":"address","size":"3.5x1.125",
            "imb":{"tracking":"00270123456200800001","routing":"987654321"},
            "to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765-4321"]}"#;
        let label = &layout_json(no_from).expect("fits")[0];
        assert_usps_placement(label);
        let e = layout_json(&with_size("3.5x1.125")).expect_err("too tall");
        assert_eq!(e.element, "address block");
        assert_eq!(e.code(), "content_too_tall");
        assert!(e.to_string().starts_with(
            "address label 3.5x1.125: address block needs 1.20 in of height at 8 pt, 0.07 in more than the 1.125 in available"
        ), "{e}");
    }

    #[test]
    fn a_long_line_shrinks_then_errors_naming_the_line_and_the_overflow() {
        let long = "X".repeat(30);
        let job = EXAMPLE.replace("123 MAIN ST", &long);
        let label = &layout_json(&job).expect("shrinks to fit")[0];
        let to = label
            .elements
            .iter()
            .find_map(|e| match e {
                Element::Text(t) if t.name == "to" => Some(t),
                _ => None,
            })
            .expect("to");
        assert!(to.size_pt < 14.0 && to.size_pt >= MIN_FONT_PT);
        let longer = "W".repeat(60);
        let e = layout_json(&EXAMPLE.replace("123 MAIN ST", &longer)).expect_err("too wide");
        assert_eq!(e.element, "to line 2");
        let w = text::width_in(Font::Sans, 8.0, &longer);
        assert_eq!(
            e.to_string(),
            format!(
                "address label 4x6: to line 2 \"{longer}\" is {} in wide at 8 pt, {} in more than the 3.7 in available (shorten the line or use a wider label)",
                super::super::In(w),
                super::super::In(w - 3.7)
            )
        );
    }

    #[test]
    fn options_apply() {
        let job = r#"{"template":"address","size":"4x3","uppercase":true,"imb_position":"below",
            "endorsement":"electronic service requested",
            "imb":{"tracking":"00270123456200800001"},
            "to":["john q public","123 main st","anytown st 98765"]}"#;
        let label = &layout_json(job).expect("fits")[0];
        assert_usps_placement(label);
        let texts: Vec<&TextBlock> = label
            .elements
            .iter()
            .filter_map(|e| match e {
                Element::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(texts[0].lines, vec!["ELECTRONIC SERVICE REQUESTED"]);
        assert_eq!(texts[1].lines[0], "JOHN Q PUBLIC");
        let imb = label.imbs().next().expect("imb");
        assert!(imb.y > texts[1].y + texts[1].height());
        let e = layout_json(&job.replace("\"uppercase\":true", "\"max_line_chars\":10"))
            .expect_err("too long");
        assert_eq!(
            e.to_string(),
            "address label 4x3: to line 1 has 13 characters; max_line_chars is 10"
        );
        let e = layout_json(&job.replace("\"4x3\"", "\"4x3\",\"length_mm\":90"))
            .expect_err("no length");
        assert_eq!(e.element, "length_mm");
        let e = layout_json(&job.replace("00270123456200800001", "0027012345620080000"))
            .expect_err("imb");
        assert_eq!(e.element, "imb");
        assert!(e.to_string().contains("error 09"), "{e}");
        let e = layout_json(&job.replace("\"to\":[", "\"to\":[\"1\",\"2\",\"3\",\"4\","))
            .expect_err("7 lines");
        assert_eq!(
            e.to_string(),
            "address label 4x3: to has 7 lines; give 1 to 6"
        );
    }

    #[test]
    fn tape_length_is_given_or_computed() {
        let given = EXAMPLE.replace("\"4x6\"", "\"62mm\", \"length_mm\": 100");
        let l = &layout_json(&given).expect("fits")[0];
        assert!((l.width - 100.0 / 25.4).abs() < 1e-9);
        let short = EXAMPLE.replace("\"4x6\"", "\"62mm\", \"length_mm\": 50");
        let e = layout_json(&short).expect_err("imb does not fit 50 mm");
        assert_eq!(e.element, "imb");
    }
}
