//! The `envelope` template: a #10 business envelope (9.5 × 4.125 in) on a laser.
//!
//! The envelope is laid out landscape, as it is read, and marked
//! [`Feed::Landscape`]: lasers feed envelopes short edge first, so the renderer turns
//! it to a 4.125 in wide page.
//!
//! Placement (DMM 202 via QSG 201, `imb-facts.md` §6.2, and the OCR read area):
//!
//! - return address at the top left, 0.375 in from the edges, at most 4 in wide so
//!   it stays clear of the postage area; 10 pt, shrinking to 8 pt;
//! - the endorsement directly below the return address;
//! - the delivery address group (address block and IMb directly above or below it)
//!   inside the OCR read area: at least 1 in from the left and right edges, its top no
//!   more than 2.75 in above the bottom edge (so at least 1.375 in below the top) and
//!   its bottom at least 5/8 in above the bottom edge, which keeps the lower-right
//!   barcode clear zone (the bottom 5/8 in) empty. The address starts 3.75 in from the
//!   left edge ("centred-ish") and moves left, down to 1 in, for long lines; 12 pt,
//!   shrinking to 8 pt.

use super::address::{place, Content, Fields, Frame};
use super::job::EnvelopeJob;
use super::{Feed, Label, LayoutError};

/// Envelope width as read, inches.
pub const WIDTH_IN: f64 = 9.5;
/// Envelope height as read, inches.
pub const HEIGHT_IN: f64 = 4.125;
/// Left and right limit of the OCR read area, inches from each edge.
pub const READ_AREA_SIDE_IN: f64 = 1.0;
/// Top of the OCR read area, inches above the bottom edge.
pub const READ_AREA_TOP_IN: f64 = 2.75;
/// Height of the bottom barcode clear zone, inches.
pub const BARCODE_CLEAR_ZONE_IN: f64 = 0.625;

/// Lays out an `envelope` job.
pub fn layout(job: &EnvelopeJob) -> Result<Label, LayoutError> {
    let template = "envelope #10".to_owned();
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
    let frame = Frame {
        template: template.clone(),
        prefix: String::new(),
        width: Some(WIDTH_IN),
        min_width: WIDTH_IN,
        height: HEIGHT_IN,
        margin: 0.375,
        from_max_width: Some(4.0),
        group_left: READ_AREA_SIDE_IN,
        group_right: READ_AREA_SIDE_IN,
        group_top: HEIGHT_IN - READ_AREA_TOP_IN,
        group_bottom: HEIGHT_IN - BARCODE_CLEAR_ZONE_IN,
        to_x: Some(3.75),
        to_pt: 12.0,
        from_pt: 10.0,
        wider_hint: "the envelope is 9.5 in wide".to_owned(),
    };
    let (width, elements) = place(&frame, &content)?;
    Ok(Label {
        description: template,
        width,
        height: HEIGHT_IN,
        feed: Feed::Landscape,
        elements,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{layout_json, Element};
    use super::*;

    #[test]
    fn address_group_sits_in_the_read_area_and_the_clear_zone_is_empty() {
        let job = r#"{"template":"envelope",
            "imb":{"tracking":"00270123456200800001","routing":"987654321"},
            "endorsement":"ELECTRONIC SERVICE REQUESTED",
            "to":["JOHN Q PUBLIC","123 MAIN ST","ANYTOWN ST 98765-4321"],
            "from":["ACME MAILROOM","1 INDUSTRIAL WAY","AUSTIN TX 78701"]}"#;
        let label = &layout_json(job).expect("fits")[0];
        assert_eq!(
            (label.width, label.height, label.feed),
            (9.5, 4.125, Feed::Landscape)
        );
        for e in &label.elements {
            let a = e.area();
            assert!(
                a.bottom() <= HEIGHT_IN - BARCODE_CLEAR_ZONE_IN + 1e-9,
                "{}",
                e.name()
            );
            if matches!(e, Element::Imb(_)) || e.name() == "to" {
                assert!(a.y >= HEIGHT_IN - READ_AREA_TOP_IN - 1e-9, "{}", e.name());
            }
        }
        let to = label
            .elements
            .iter()
            .find(|e| e.name() == "to")
            .expect("to block");
        assert!((to.area().x - (3.75 - 0.1 * 12.0 / 72.0)).abs() < 1e-9);
    }
}
