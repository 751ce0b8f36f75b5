//! The `sheet` template: US letter sheets of address labels for lasers, filled with
//! many records, one [`Label`] (page) per sheet.
//!
//! Layouts (Avery's published templates; the arithmetic closes on 8.5 × 11 in):
//!
//! | Layout | Labels | Label (in) | Top margin | Side margin | Column pitch | Row pitch |
//! |---|---|---|---|---|---|---|
//! | `avery-5163` | 2 × 5 = 10 | 4 × 2 | 0.5 | 0.15625 | 4.1875 (gap 0.1875) | 2 |
//! | `avery-5160` | 3 × 10 = 30 | 2.625 × 1 | 0.5 | 0.1875 | 2.75 (gap 0.125) | 1 |
//!
//! 5163: 0.15625 + 4 + 0.1875 + 4 + 0.15625 = 8.5 and 0.5 + 5 × 2 + 0.5 = 11.
//! 5160: 0.1875 + 3 × 2.625 + 2 × 0.125 + 0.1875 = 8.5 and 0.5 + 10 × 1 + 0.5 = 11.
//!
//! Each cell is laid out by the address engine ([`super::address`]) as its own small
//! label (the cell's edges are the label's edges for the IMb clear zones), then moved
//! to its place. Records fill the sheet row by row, left to right, starting at
//! `start_at` on the first sheet. Errors name the record: `record 7 to line 2`.
//! A 5160 cell (2.625 in) is too narrow for an IMb.

use super::address::{label_frame, place, Content, Fields};
use super::job::{SheetJob, SheetLayout};
use super::{Feed, Label, LayoutError, LayoutErrorKind};

/// Most records in one sheet job.
pub const MAX_RECORDS: usize = 10_000;

/// One sheet layout's numbers, inches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SheetSpec {
    /// Columns.
    pub columns: u32,
    /// Rows.
    pub rows: u32,
    /// Label width.
    pub label_width: f64,
    /// Label height.
    pub label_height: f64,
    /// Top edge of the first row.
    pub top: f64,
    /// Left edge of the first column.
    pub left: f64,
    /// Left edge to left edge of neighbouring columns.
    pub column_pitch: f64,
    /// Top edge to top edge of neighbouring rows.
    pub row_pitch: f64,
    /// Margin inside each label.
    pub margin: f64,
    /// Preferred address size, points.
    pub to_pt: f64,
    /// Preferred return address size, points.
    pub from_pt: f64,
}

/// The numbers of `layout`.
pub const fn spec(layout: SheetLayout) -> SheetSpec {
    match layout {
        SheetLayout::Avery5163 => SheetSpec {
            columns: 2,
            rows: 5,
            label_width: 4.0,
            label_height: 2.0,
            top: 0.5,
            left: 0.15625,
            column_pitch: 4.1875,
            row_pitch: 2.0,
            margin: 0.1,
            to_pt: 11.0,
            from_pt: 9.0,
        },
        SheetLayout::Avery5160 => SheetSpec {
            columns: 3,
            rows: 10,
            label_width: 2.625,
            label_height: 1.0,
            top: 0.5,
            left: 0.1875,
            column_pitch: 2.75,
            row_pitch: 1.0,
            margin: 0.06,
            to_pt: 9.0,
            from_pt: 8.0,
        },
    }
}

/// Sheet width, inches.
pub const SHEET_WIDTH_IN: f64 = 8.5;
/// Sheet height, inches.
pub const SHEET_HEIGHT_IN: f64 = 11.0;

/// How many labels one sheet of `layout` holds.
pub fn labels_per_sheet(layout: SheetLayout) -> usize {
    let s = spec(layout);
    (s.columns * s.rows) as usize
}

/// Lays out a `sheet` job: one label per sheet.
pub fn layout(job: &SheetJob) -> Result<Vec<Label>, LayoutError> {
    let template = format!("sheet {}", job.layout.name());
    let s = spec(job.layout);
    let per_sheet = (s.columns * s.rows) as usize;
    if job.records.is_empty() || job.records.len() > MAX_RECORDS {
        return Err(LayoutError::new(
            &template,
            "records",
            LayoutErrorKind::Value {
                found: format!("{} records", job.records.len()),
                expected: format!("1 to {MAX_RECORDS} records"),
            },
        ));
    }
    if job.start_at == 0 || job.start_at as usize > per_sheet {
        return Err(LayoutError::new(
            &template,
            "start_at",
            LayoutErrorKind::Value {
                found: job.start_at.to_string(),
                expected: format!("a label position 1 to {per_sheet}"),
            },
        ));
    }
    let mut sheets: Vec<Label> = Vec::new();
    for (i, record) in job.records.iter().enumerate() {
        let position = i + job.start_at as usize - 1;
        let (sheet, cell) = (position / per_sheet, position % per_sheet);
        let prefix = format!("record {} ", i + 1);
        let content = Content::check(
            &template,
            &prefix,
            &Fields {
                to: &record.to,
                from: record.from.as_deref().unwrap_or(&job.from),
                endorsement: record.endorsement.as_deref().or(job.endorsement.as_deref()),
                imb: record.imb.as_ref(),
                position: job.imb_position,
                uppercase: job.uppercase,
                max_line_chars: job.max_line_chars,
            },
        )?;
        let mut frame = label_frame(
            &template,
            Some(s.label_width),
            s.label_height,
            s.margin,
            s.to_pt,
            s.from_pt,
        );
        frame.prefix = prefix;
        frame.wider_hint = "use the avery-5163 layout (4 in wide labels)".to_owned();
        let (_, elements) = place(&frame, &content)?;
        let column = (cell as u32 % s.columns) as f64;
        let row = (cell as u32 / s.columns) as f64;
        let (dx, dy) = (s.left + column * s.column_pitch, s.top + row * s.row_pitch);
        while sheets.len() <= sheet {
            sheets.push(Label {
                description: format!("{template} page {}", sheets.len() + 1),
                width: SHEET_WIDTH_IN,
                height: SHEET_HEIGHT_IN,
                feed: Feed::Portrait,
                elements: Vec::new(),
            });
        }
        sheets[sheet]
            .elements
            .extend(elements.into_iter().map(|e| e.shifted(dx, dy)));
    }
    Ok(sheets)
}

#[cfg(test)]
mod tests {
    use super::super::{layout_json, Element};
    use super::*;

    #[test]
    fn layouts_close_on_letter_paper() {
        for layout in [SheetLayout::Avery5163, SheetLayout::Avery5160] {
            let s = spec(layout);
            let right = s.left + f64::from(s.columns - 1) * s.column_pitch + s.label_width;
            let bottom = s.top + f64::from(s.rows - 1) * s.row_pitch + s.label_height;
            assert!(
                (right + s.left - SHEET_WIDTH_IN).abs() < 1e-12,
                "{layout:?}"
            );
            assert!(
                (bottom + s.top - SHEET_HEIGHT_IN).abs() < 1e-12,
                "{layout:?}"
            );
        }
    }

    fn records(n: usize, imb: bool) -> String {
        let r: Vec<String> = (0..n)
            .map(|i| {
                let imb = if imb {
                    format!(r#","imb":{{"tracking":"0027012345620{i:07}","routing":"98765"}}"#)
                } else {
                    String::new()
                };
                format!(r#"{{"to":["RESIDENT {i}","{i} MAIN ST","ANYTOWN ST 98765"]{imb}}}"#)
            })
            .collect();
        r.join(",")
    }

    #[test]
    fn records_fill_sheets_row_by_row() {
        let job = format!(
            r#"{{"template":"sheet","from":["ACME","1 WAY","AUSTIN TX 78701"],"start_at":3,"records":[{}]}}"#,
            records(12, true)
        );
        let sheets = layout_json(&job).expect("fits");
        assert_eq!(sheets.len(), 2);
        assert_eq!(sheets[0].imbs().count(), 8);
        assert_eq!(sheets[1].imbs().count(), 4);
        assert_eq!(sheets[1].description, "sheet avery-5163 page 2");
        // Record 1 sits in position 3: the first column of the second row.
        let first = sheets[0].imbs().next().expect("imb");
        assert!(first.clear.x >= 0.15625 && first.clear.right() <= 4.15625 + 1e-9);
        assert!(first.clear.y >= 2.5 && first.clear.bottom() <= 4.5 + 1e-9);
        // No element crosses its cell.
        for sheet in &sheets {
            for e in &sheet.elements {
                let a = e.area();
                let col = ((a.x - 0.15625) / 4.1875).floor();
                let row = ((a.y - 0.5) / 2.0).floor();
                let (cx, cy) = (0.15625 + col * 4.1875, 0.5 + row * 2.0);
                assert!(
                    a.x >= cx - 1e-9 && a.right() <= cx + 4.0 + 1e-9,
                    "{}",
                    e.name()
                );
                assert!(
                    a.y >= cy - 1e-9 && a.bottom() <= cy + 2.0 + 1e-9,
                    "{}",
                    e.name()
                );
                if let Element::Text(t) = e {
                    assert!(!t.lines.is_empty());
                }
            }
        }
    }

    #[test]
    fn errors_name_the_record() {
        let job = format!(
            r#"{{"template":"sheet","layout":"avery-5160","records":[{}]}}"#,
            records(2, true)
        );
        let e = layout_json(&job).expect_err("5160 is too narrow for an imb");
        assert_eq!(
            e.to_string(),
            "sheet avery-5160: record 1 imb needs 3.45 in of width, the label has 2.625 in (use the avery-5163 layout (4 in wide labels))"
        );
        let ok = format!(
            r#"{{"template":"sheet","layout":"avery-5160","records":[{}]}}"#,
            records(31, false)
        );
        assert_eq!(layout_json(&ok).expect("fits").len(), 2);
        let e = layout_json(r#"{"template":"sheet","records":[]}"#).expect_err("empty");
        assert_eq!(e.element, "records");
        let e = layout_json(r#"{"template":"sheet","start_at":11,"records":[{"to":["A"]}]}"#)
            .expect_err("start_at");
        assert_eq!(
            e.to_string(),
            "sheet avery-5163: start_at is 11; expected a label position 1 to 10"
        );
    }
}
