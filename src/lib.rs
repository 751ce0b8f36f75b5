//! labeld: a direct-to-printer label daemon for US mail.
//!
//! Data flows one way through stages with plain-data boundaries:
//!
//! - [`encode`]: the barcodes. USPS Intelligent Mail (IMb) encode and decode, Code 128,
//!   the 24-digit IM tray barcode and the IM container barcode. Pure; no dpi, no I/O.
//! - [`geometry`]: a printer resolution → integer dot counts for every IMb dimension,
//!   inside the USPS-B-3200 tolerances or an error that says why.
//! - [`render`]: symbols + geometry → a 1-bit [`labeld_drivers::Bitmap`].
//! - [`verify`]: a bitmap → bars found, measured against the tolerances, decoded.
//!
//! Still to come, each with its own issue: layout templates, printer languages and
//! transports (in the `labeld-drivers` crate), the spool, the scheduler and the
//! ZeroMQ server. `docs/architecture.md` keeps the map current.
#![deny(missing_docs)]

pub mod encode;
pub mod geometry;
pub mod render;
pub mod verify;
