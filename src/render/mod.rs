//! The render stage: symbols and geometry → a 1-bit bitmap at the printer's exact
//! resolution.
//!
//! In the full pipeline this stage turns a laid-out `Label` (elements in physical
//! units) plus a device profile into a `Page`: a [`labeld_drivers::Bitmap`] at
//! `dpi_x` × `dpi_y`, plus any elements the driver prints natively. Today it draws
//! symbols; the label layout and text arrive with their own issues.
//!
//! Rules every renderer here follows:
//!
//! - Dots, never inches: the sizes come from [`crate::geometry`], already rounded to
//!   whole dots inside the USPS tolerances, and are drawn exactly (no anti-aliasing,
//!   no per-element rounding, so an integer pitch stays perfectly even).
//! - Black = `true` in the bitmap; the paper is white.
//! - Pure: no I/O, no clock, no allocation beyond the bitmap, no panic for any
//!   position (drawing is clipped to the bitmap).
//! - What is drawn can be read back: [`crate::verify`] scans the bitmap, measures it
//!   against the same tolerances and decodes it before anything is printed.

pub mod imb;
