//! labeld's device layer: everything that depends on a particular printer.
//!
//! This crate is a leaf. It knows nothing of jobs, templates, ZeroMQ or the spool;
//! it owns the plain-data boundary between rendering and devices. Today that is the
//! 1-bit [`Bitmap`] every label is rasterized into, and its PNG preview; the printer languages
//! (`lang/`), transports (`transport/`) and the model table arrive with their own
//! issues and build on it.
//!
//! Drivers will turn pages into bytes rather than write to devices themselves, so
//! that every language can be tested by decoding its output back, with no device.
#![deny(missing_docs)]

pub mod bitmap;
pub mod preview;

pub use bitmap::Bitmap;
