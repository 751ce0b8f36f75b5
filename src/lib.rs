//! labeld: a direct-to-printer label daemon for US mail.
//!
//! Data flows one way through stages with plain-data boundaries:
//!
//! - [`encode`]: the barcodes. USPS Intelligent Mail (IMb) encode and decode, Code 128,
//!   the 24-digit IM tray barcode and the IM container barcode. Pure; no dpi, no I/O.
//! - [`geometry`]: a printer resolution → integer dot counts for every IMb dimension,
//!   inside the USPS-B-3200 tolerances or an error that says why.
//! - [`layout`]: a label job (JSON) → [`layout::Label`]s, every element placed in
//!   inches by its template, or an error naming the element that does not fit.
//! - [`render`]: a label + a device profile → a [`labeld_drivers::Page`]: a 1-bit
//!   bitmap at the device's exact resolution, plus elements the printer draws itself.
//! - [`verify`]: a bitmap → bars found, measured against the tolerances, decoded.
//! - then `labeld_drivers::lang`: a page → the bytes of the printer's language.
//! - [`output`]: the whole path above for one job, offline (what `labelctl render`
//!   and the daemon's workers run).
//! - [`spool`]: the durable SQLite store: jobs, label states, IMb serial allocation and
//!   the print log, so a crash loses nothing and no serial is used twice.
//! - [`tracking`]: Informed Visibility: USPS scans of the pieces printed, pulled from
//!   IV-MTR and received from its data feeds, matched to the print log.
//! - [`protocol`]: the job API's wire format: checks, parsing, replies, one map to wire error codes.
//!
//! The daemon's parts: `config`, `spool`, `pieces`, `scheduler`, `server`, `service`
//! (the office), `events`, `client`, and `daemon` which starts them in order.
//! `docs/architecture.md` keeps the map current.
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod daemon;
pub mod encode;
pub mod events;
pub mod geometry;
pub mod layout;
pub mod output;
pub mod pieces;
pub mod protocol;
pub mod render;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod spool;
pub mod tracking;
pub mod verify;
