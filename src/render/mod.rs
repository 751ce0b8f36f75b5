//! The render stage: symbols and geometry → a 1-bit bitmap at the printer's exact
//! resolution.
//!
//! This stage turns a laid-out [`crate::layout::Label`] (elements in inches) plus a
//! device profile into a [`labeld_drivers::Page`]: a [`labeld_drivers::Bitmap`] at
//! `dpi_x` × `dpi_y`, plus any elements the driver prints natively.
//!
//! - [`imb`]: one Intelligent Mail barcode into a bitmap, dot-exact.
//! - [`text`]: the embedded DejaVu fonts: measuring lines in inches (the layout stage
//!   uses it) and drawing them crisply as 1-bit.
//! - [`label`]: a whole label for a device: turn, calibration offsets, text, Code 128,
//!   lines, boxes, images and IMbs, or native elements where the driver prints them;
//!   and reading every IMb back for verification.
//!
//! Rules every renderer here follows:
//!
//! - Barcodes in whole dots: IMb sizes come from [`crate::geometry`], already rounded
//!   to whole dots inside the USPS tolerances, Code 128 modules are whole dots, and
//!   both are drawn exactly (no anti-aliasing, no per-bar rounding, so an integer
//!   pitch stays perfectly even). Positions given in inches are rounded to a dot once
//!   per element.
//! - Black = `true` in the bitmap; the paper is white.
//! - Pure: no I/O, no clock, no global state, no panic for any position (drawing is
//!   clipped to the bitmap).
//! - Text is black where a dot is at least half covered: no grey, no dithering.
//! - What is drawn can be read back: [`crate::verify`] scans the bitmap, measures it
//!   against the same tolerances and decodes it before anything is printed.

pub mod imb;
pub mod label;
pub mod text;
