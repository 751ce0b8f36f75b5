//! From a request to the pieces the spool tracks, and back to what gets printed.
//!
//! A *piece* is one mail piece: one row in the spool's `labels` table, with its own
//! state, IMb serial and print-log entry. A *print unit* is what is rendered and sent
//! in one go: one label on a roll printer, or one sheet of labels on a laser. The
//! mapping is fixed here, in one place:
//!
//! | request | pieces | units |
//! |---|---|---|
//! | `submit` of `address`, `envelope`, `tray`, `placard`, `custom` | 1 | 1 |
//! | `submit` of a `sheet` job with N records | N | one per sheet |
//! | `submit_batch` with N records | N | N |
//!
//! [`plan`] runs when a request is accepted (it says which pieces need a serial from
//! which Mailer ID); [`unit_job`] runs in the printer's worker, turning the stored
//! request and the serials the spool assigned into the [`Job`] to lay out for one
//! unit. Both are pure.

use crate::layout::job::{CustomElement, SheetJob};
use crate::layout::sheet::labels_per_sheet;
use crate::layout::{ImbData, Job, SerialRequest};
use crate::protocol::{ErrorCode, Op, ProtocolError, Request};

/// One piece as planned at acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The serial to allocate, if its IMb asks for one.
    pub allocate: Option<SerialRequest>,
    /// The client's full tracking code, when it chose the serial itself.
    pub tracking: Option<String>,
    /// The routing code (0, 5, 9 or 11 digits).
    pub routing: String,
    /// Who it goes to, for the print log.
    pub recipient: String,
    /// Its print unit.
    pub unit: u32,
}

/// The pieces of a `submit` or `submit_batch` request, in order.
///
/// # Errors
///
/// A `bad_field` [`ProtocolError`] for an IMb that mixes its two forms, or a batch
/// whose template makes more than one label per record (`sheet`).
pub fn plan(request: &Request) -> Result<Vec<Piece>, ProtocolError> {
    match &request.op {
        Op::Submit(s) => job_pieces(&s.job, "job"),
        Op::SubmitBatch(b) => {
            let mut pieces = Vec::with_capacity(b.jobs().len());
            for (i, job) in b.jobs().iter().enumerate() {
                if matches!(job, Job::Sheet(_)) {
                    return Err(ProtocolError::bad_field(
                        "template.template",
                        "submit_batch takes one-label templates; for sheets send one submit \
                         with a sheet job and its records",
                    ));
                }
                let mut one = job_pieces(job, &format!("records[{i}]"))?;
                for p in &mut one {
                    p.unit = i as u32;
                }
                pieces.extend(one);
            }
            Ok(pieces)
        }
        other => Err(ProtocolError::new(
            ErrorCode::Internal,
            None,
            format!("{} has no pieces", other.name()),
        )),
    }
}

fn job_pieces(job: &Job, at: &str) -> Result<Vec<Piece>, ProtocolError> {
    let one = |imb: Option<&ImbData>, recipient: String| -> Result<Vec<Piece>, ProtocolError> {
        Ok(vec![piece(imb, recipient, 0, &format!("{at}.imb"))?])
    };
    match job {
        Job::Address(j) => one(j.imb.as_ref(), recipient(&j.to)),
        Job::Envelope(j) => one(j.imb.as_ref(), recipient(&j.to)),
        Job::Tray(j) => one(None, format!("tray {} to {}", j.barcode, j.destination)),
        Job::Placard(j) => one(
            None,
            format!("container {} to {}", j.barcode, j.destination),
        ),
        Job::Custom(j) => {
            let first = j.elements.iter().find_map(|e| match e {
                CustomElement::Imb(m) => Some(ImbData::new(m.tracking.clone(), m.routing.clone())),
                _ => None,
            });
            one(first.as_ref(), String::new())
        }
        Job::Sheet(j) => {
            let per_sheet = labels_per_sheet(j.layout);
            let skip = j.start_at.saturating_sub(1) as usize;
            j.records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let unit = ((skip + i) / per_sheet) as u32;
                    piece(
                        r.imb.as_ref(),
                        recipient(&r.to),
                        unit,
                        &format!("{at}.records[{i}].imb"),
                    )
                })
                .collect()
        }
    }
}

fn piece(
    imb: Option<&ImbData>,
    recipient: String,
    unit: u32,
    at: &str,
) -> Result<Piece, ProtocolError> {
    let Some(imb) = imb else {
        return Ok(Piece {
            allocate: None,
            tracking: None,
            routing: String::new(),
            recipient,
            unit,
        });
    };
    let allocate = imb
        .serial_request()
        .map_err(|(field, m)| ProtocolError::bad_field(&format!("{at}.{field}"), m))?;
    Ok(Piece {
        tracking: allocate.is_none().then(|| imb.tracking.trim().to_owned()),
        allocate,
        routing: imb.routing.trim().to_owned(),
        recipient,
        unit,
    })
}

/// The address lines as one print-log field.
fn recipient(lines: &[String]) -> String {
    lines.join(" / ")
}

/// The tracking codes of a unit's pieces, by piece index, as the spool assigned them
/// (`None` for pieces without an allocated serial).
pub type Assigned<'a> = &'a [(u32, Option<&'a str>)];

/// The job to lay out for print unit `unit` of a stored request, with the spool's
/// tracking codes filled in. `pieces` lists the unit's piece indexes and their
/// tracking codes.
///
/// # Errors
///
/// `internal` when the request is not a submit or the unit does not exist (the
/// stored request and the spool disagree: a bug or a hand-edited spool).
pub fn unit_job(request: &Request, unit: u32, pieces: Assigned<'_>) -> Result<Job, ProtocolError> {
    let mismatch = |what: &str| {
        ProtocolError::new(
            ErrorCode::Internal,
            None,
            format!("stored job does not match its labels: {what}"),
        )
    };
    let tracking_of = |index: u32| {
        pieces
            .iter()
            .find(|(i, _)| *i == index)
            .and_then(|(_, t)| *t)
    };
    match &request.op {
        Op::Submit(s) => match &s.job {
            Job::Sheet(sheet) => sheet_unit(sheet, unit, pieces).ok_or_else(|| mismatch("sheet")),
            job if unit == 0 => Ok(fill(job, tracking_of(0))),
            _ => Err(mismatch("unit")),
        },
        Op::SubmitBatch(b) => b
            .jobs()
            .get(unit as usize)
            .map(|job| fill(job, tracking_of(unit)))
            .ok_or_else(|| mismatch("batch record")),
        other => Err(mismatch(other.name())),
    }
}

/// A one-label job with its allocated tracking code in place.
fn fill(job: &Job, tracking: Option<&str>) -> Job {
    let mut job = job.clone();
    if let Some(t) = tracking {
        let slot = match &mut job {
            Job::Address(j) => j.imb.as_mut(),
            Job::Envelope(j) => j.imb.as_mut(),
            _ => None,
        };
        if let Some(imb) = slot {
            if imb.tracking.is_empty() {
                *imb = imb.with_tracking(t);
            }
        }
    }
    job
}

/// One sheet of a sheet job: its records, with their tracking codes.
fn sheet_unit(job: &SheetJob, unit: u32, pieces: Assigned<'_>) -> Option<Job> {
    let per_sheet = labels_per_sheet(job.layout);
    let skip = job.start_at.saturating_sub(1) as usize;
    let sheet = unit as usize;
    // Records on this sheet: positions [sheet*per_sheet, (sheet+1)*per_sheet) shifted
    // by the cells skipped on the first sheet.
    let first = (sheet * per_sheet).saturating_sub(skip);
    let last = ((sheet + 1) * per_sheet)
        .saturating_sub(skip)
        .min(job.records.len());
    if first >= last {
        return None;
    }
    let mut one = job.clone();
    one.records = job.records[first..last]
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let index = (first + k) as u32;
            let mut r = r.clone();
            let tracking = pieces
                .iter()
                .find(|(i, _)| *i == index)
                .and_then(|(_, t)| *t);
            if let (Some(imb), Some(t)) = (r.imb.as_mut(), tracking) {
                if imb.tracking.is_empty() {
                    *imb = imb.with_tracking(t);
                }
            }
            r
        })
        .collect();
    one.start_at = if sheet == 0 { job.start_at } else { 1 };
    Some(Job::Sheet(one))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse_request, Limits};

    fn request(json: &str) -> Request {
        parse_request(json.as_bytes(), &Limits::default()).expect("valid request")
    }

    #[test]
    fn an_address_job_is_one_piece_and_gets_its_serial() {
        let r = request(
            r#"{"v":1,"op":"submit","printer":"p","job":{"template":"address","size":"4x6",
                "imb":{"mailer_id":"123456","service_type":"270","routing":"98765"},
                "to":["JANE ROE","1 MAIN ST","ANYTOWN ST 98765"]}}"#,
        );
        let pieces = plan(&r).expect("plan");
        assert_eq!(pieces.len(), 1);
        let want = SerialRequest {
            barcode_id: "00".into(),
            service_type: "270".into(),
            mailer_id: "123456".into(),
        };
        assert_eq!(pieces[0].allocate.as_ref(), Some(&want));
        assert_eq!(
            pieces[0].recipient,
            "JANE ROE / 1 MAIN ST / ANYTOWN ST 98765"
        );
        let job = unit_job(&r, 0, &[(0, Some("00270123456000000042"))]).expect("unit");
        // Before the serial is filled in the job cannot be laid out; after, it can.
        let Op::Submit(s) = &r.op else {
            panic!("submit expected")
        };
        assert!(crate::layout::layout(&s.job).is_err());
        assert!(crate::layout::layout(&job).is_ok());
        let Job::Address(a) = job else {
            panic!("address expected")
        };
        assert_eq!(
            a.imb.expect("imb").tracking,
            "00270123456000000042".to_owned()
        );
    }

    #[test]
    fn a_client_serial_is_kept() {
        let r = request(
            r#"{"v":1,"op":"submit","printer":"p","job":{"template":"address","size":"4x6",
                "imb":{"tracking":"00270123456200800001","routing":"98765"},"to":["A","B"]}}"#,
        );
        let pieces = plan(&r).expect("plan");
        assert_eq!(pieces[0].allocate, None);
        assert_eq!(pieces[0].tracking.as_deref(), Some("00270123456200800001"));
    }

    #[test]
    fn mixed_imb_forms_are_refused_with_the_field() {
        let body = r#"{"v":1,"op":"submit","printer":"p","job":{"template":"address","size":"4x6",
                "imb":{"tracking":"00270123456200800001","mailer_id":"123456","routing":""},"to":["A"]}}"#;
        let err = parse_request(body.as_bytes(), &Limits::default()).expect_err("mixed");
        assert_eq!(err.field.as_deref(), Some("job.imb.tracking"));
    }

    #[test]
    fn sheets_split_into_units_per_sheet() {
        let records: Vec<String> = (0..20)
            .map(|i| {
                format!(
                    r#"{{"to":["R{i}","1 MAIN ST"],"imb":{{"mailer_id":"123456","service_type":"270","routing":""}}}}"#
                )
            })
            .collect();
        let r = request(&format!(
            r#"{{"v":1,"op":"submit","printer":"p","job":{{"template":"sheet","layout":"avery-5163","start_at":9,"from":[],"records":[{}]}}}}"#,
            records.join(",")
        ));
        let pieces = plan(&r).expect("plan");
        let per = labels_per_sheet(crate::layout::job::SheetLayout::Avery5163);
        assert_eq!(per, 10);
        // Cells 9 and 10 of sheet 0, then 10 per sheet.
        let units: Vec<u32> = pieces.iter().map(|p| p.unit).collect();
        assert_eq!(&units[..3], &[0, 0, 1]);
        assert_eq!(units[12], 2);
        let assigned: Vec<(u32, Option<&str>)> =
            (2..12).map(|i| (i, Some("00270123456000000001"))).collect();
        let Job::Sheet(s) = unit_job(&r, 1, &assigned).expect("sheet 1") else {
            panic!("sheet expected")
        };
        assert_eq!(s.records.len(), 10);
        assert_eq!(s.records[0].to[0], "R2");
        assert_eq!(s.start_at, 1);
        assert!(unit_job(&r, 9, &[]).is_err());
    }

    #[test]
    fn batches_are_one_unit_per_record() {
        let r = request(
            r#"{"v":1,"op":"submit_batch","printer":"p","template":{"template":"address","size":"4x6"},
               "records":[{"to":["A"]},{"to":["B"],"imb":{"mailer_id":"123456","service_type":"270"}}]}"#,
        );
        let pieces = plan(&r).expect("plan");
        assert_eq!(
            pieces.iter().map(|p| p.unit).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(pieces[1].allocate.is_some());
        let Job::Address(a) = unit_job(&r, 1, &[(1, Some("00270123456000000009"))]).expect("unit")
        else {
            panic!("address expected")
        };
        assert_eq!(a.to, vec!["B".to_owned()]);
    }
}
