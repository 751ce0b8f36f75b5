//! The shared encoder: data → symbol, never pixels.
//!
//! Each symbology is one file and stops at its symbol: bar states for the IMb,
//! symbol values and module widths for Code 128. Only [`crate::geometry`] knows
//! about dots and only [`crate::render`] touches a bitmap.

pub mod code128;
pub mod container;
pub mod imb;
pub mod tray;
