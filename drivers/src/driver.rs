//! The one small interface every printer family implements.
//!
//! A driver turns pages into the bytes of its language and understands its status
//! replies. It never touches a device, sleeps or logs above debug: it writes into
//! the caller's buffer, so every language can be tested by decoding its output back.
//! Adding a family is one file in `lang/` and one arm in [`crate::lang::driver`].

use crate::{DeviceStatus, Page, StatusParseError};

/// A printer language labeld can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Language {
    /// Zebra ZPL II.
    Zpl,
    /// Eltron/Zebra EPL2.
    Epl2,
    /// Brother QL raster.
    BrotherQl,
    /// DYMO LabelWriter 400/450 raster.
    Dymo,
    /// HP PCL 5 raster (lasers), wrapped in PJL.
    Pcl,
    /// PNG image files (previews).
    Png,
    /// PDF documents (previews, or printing through another print system).
    Pdf,
}

impl Language {
    /// The language's short name (`zpl`, `epl2`, `brother-ql`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Language::Zpl => "zpl",
            Language::Epl2 => "epl2",
            Language::BrotherQl => "brother-ql",
            Language::Dymo => "dymo",
            Language::Pcl => "pcl",
            Language::Png => "png",
            Language::Pdf => "pdf",
        }
    }
}

impl Language {
    /// Refuses a 7-bit (XON/XOFF) link for a language whose output is binary.
    pub fn refuse_ascii_link(self, ascii_only: bool) -> Result<(), DriverError> {
        if ascii_only {
            return Err(DriverError::BinaryOnAsciiLink {
                language: self.name(),
            });
        }
        Ok(())
    }
}

/// What a driver can do; the renderer and the transports consult it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Native resident-font text.
    pub native_text: bool,
    /// Native Code 128.
    pub native_code128: bool,
    /// Native Intelligent Mail barcode.
    pub native_imb: bool,
    /// Widest page in dots the language or device accepts.
    pub max_width_dots: u32,
    /// Whether the output can be limited to 7-bit ASCII (needed on serial links
    /// with XON/XOFF flow control).
    pub ascii_capable: bool,
    /// Whether the printer answers status queries.
    pub status: bool,
}

impl Capabilities {
    /// A binary raster-only language: no native elements, not 7-bit safe.
    pub const fn raster_only(max_width_dots: u32, status: bool) -> Capabilities {
        Capabilities {
            native_text: false,
            native_code128: false,
            native_imb: false,
            max_width_dots,
            ascii_capable: false,
            status,
        }
    }
}

/// Why a driver could not produce bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The page is wider than the device prints.
    #[error(
        "page is {dots} dots wide; this printer prints at most {max} (use a narrower label size)"
    )]
    PageTooWide {
        /// Page width in dots.
        dots: u32,
        /// The limit.
        max: u32,
    },
    /// The page is longer than the language can describe.
    #[error("page is {dots} dots long; this printer takes at most {max}")]
    PageTooLong {
        /// Page length in dots.
        dots: u32,
        /// The limit.
        max: u32,
    },
    /// An empty page.
    #[error("page is empty ({width}x{height} dots)")]
    EmptyPage {
        /// Width in dots.
        width: u32,
        /// Height in dots.
        height: u32,
    },
    /// A native element this driver cannot print.
    #[error("this printer language cannot print {element} natively; render it as graphics")]
    NativeUnsupported {
        /// What was asked for.
        element: &'static str,
    },
    /// 7-bit output was required but the language is binary.
    #[error("{language} output is binary and cannot go over a 7-bit (XON/XOFF) link; use hardware flow control")]
    BinaryOnAsciiLink {
        /// The language.
        language: &'static str,
    },
    /// Anything else the language cannot express, with the reason.
    #[error("{0}")]
    Unsupported(String),
}

/// A printer family's encoder: pages in, its language's bytes out.
pub trait Driver {
    /// The language this driver writes.
    fn language(&self) -> Language;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Bytes that open a job: the family's reset preamble and media setup.
    fn start_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError>;

    /// Bytes for one page (one label, or one sheet on a laser).
    fn write_page(&mut self, page: &Page, out: &mut Vec<u8>) -> Result<(), DriverError>;

    /// Bytes that close the job.
    fn end_job(&mut self, out: &mut Vec<u8>) -> Result<(), DriverError>;

    /// The bytes that ask the printer for its status, if it has a status query.
    fn query_status(&self) -> Option<&'static [u8]>;

    /// Parses a status reply (the bytes read after sending [`Driver::query_status`]).
    fn parse_status(&self, reply: &[u8]) -> Result<DeviceStatus, StatusParseError>;
}

/// A whole job: `start_job`, every page, `end_job`, into one buffer.
pub fn encode_job(driver: &mut dyn Driver, pages: &[Page]) -> Result<Vec<u8>, DriverError> {
    let mut out = Vec::new();
    driver.start_job(&mut out)?;
    for page in pages {
        driver.write_page(page, &mut out)?;
    }
    driver.end_job(&mut out)?;
    Ok(out)
}
