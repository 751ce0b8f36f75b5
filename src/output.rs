//! A label job all the way to printer bytes, offline: layout → render → verify →
//! driver.
//!
//! This is the print path without a spool or a device: `labelctl render`, the
//! benchmarks and the tests use it, and the daemon's workers will call the same
//! function per job. Every IMb drawn on a page is read back by [`crate::verify`]
//! before any bytes are produced; a page whose barcode does not verify is an error,
//! never output.

use crate::layout::{self, Label, LayoutError};
use crate::render::label::{self, RenderError, RenderOptions, RenderedLabel};
use crate::verify::{ImbReport, VerifyError};
use labeld_drivers::{Driver, DriverError, Profile};

/// Why a job produced no bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The job is invalid or does not fit its label.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The label cannot be drawn for this device.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A drawn IMb did not read back inside the USPS tolerances (a labeld bug, or a
    /// calibration that pushes it into other ink).
    #[error("page {page}: imb at {at} failed verification: {reason}")]
    ImbCheck {
        /// 1-based page number.
        page: usize,
        /// Where on the page (as the renderer names it).
        at: String,
        /// What the verifier found.
        reason: String,
    },
    /// The printer language cannot express the page.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// What a job became.
#[derive(Debug)]
pub struct JobOutput {
    /// The printer-language bytes of the whole job.
    pub bytes: Vec<u8>,
    /// Each page as rendered.
    pub pages: Vec<RenderedLabel>,
    /// The verifier's report for every drawn IMb, page by page.
    pub imb_reports: Vec<ImbReport>,
}

/// Lays out a job given as JSON, renders each label for `profile`, verifies every
/// IMb, and encodes the pages with `driver`.
pub fn render_job(
    job_json: &str,
    profile: &Profile,
    driver: &mut dyn Driver,
    options: &RenderOptions,
) -> Result<JobOutput, OutputError> {
    let labels = layout::layout_json(job_json)?;
    render_labels(&labels, profile, driver, options)
}

/// [`render_job`] for labels already laid out.
pub fn render_labels(
    labels: &[Label],
    profile: &Profile,
    driver: &mut dyn Driver,
    options: &RenderOptions,
) -> Result<JobOutput, OutputError> {
    let caps = driver.capabilities();
    let mut pages = Vec::with_capacity(labels.len());
    let mut imb_reports = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        let rendered = label::render_with(label, profile, &caps, options)?;
        let drawn = rendered.imbs.iter().filter(|m| !m.native);
        for (placed, (at, result)) in drawn.zip(label::verify_imbs(&rendered, options.dot_gain)) {
            let report = result.map_err(|e: VerifyError| OutputError::ImbCheck {
                page: index + 1,
                at: at.clone(),
                reason: e.to_string(),
            })?;
            let decoded = (
                report.decoded.tracking.as_str(),
                report.decoded.routing.as_str(),
            );
            if decoded != (placed.tracking.as_str(), placed.routing.as_str()) {
                return Err(OutputError::ImbCheck {
                    page: index + 1,
                    at,
                    reason: format!(
                        "reads as {}-{}, expected {}-{}",
                        decoded.0, decoded.1, placed.tracking, placed.routing
                    ),
                });
            }
            if !report.is_compliant() {
                let reason = report
                    .violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(OutputError::ImbCheck {
                    page: index + 1,
                    at,
                    reason,
                });
            }
            imb_reports.push(report);
        }
        pages.push(rendered);
    }
    let mut bytes = Vec::new();
    driver.start_job(&mut bytes)?;
    for rendered in &pages {
        driver.write_page(&rendered.page, &mut bytes)?;
    }
    driver.end_job(&mut bytes)?;
    Ok(JobOutput {
        bytes,
        pages,
        imb_reports,
    })
}
