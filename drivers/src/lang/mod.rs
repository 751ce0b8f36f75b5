//! Printer languages: one file per family, each implementing [`crate::Driver`].
//!
//! | file | language |
//! |---|---|
//! | `zpl.rs` | Zebra ZPL II |
//! | `epl2.rs` | Eltron/Zebra EPL2 |
//! | `brother_ql.rs` | Brother QL raster |
//! | `dymo.rs` | DYMO LabelWriter 400/450 raster |
//! | `pcl.rs` | HP PCL 5 raster in a PJL wrapper |
//! | `png.rs`, `pdf.rs` | preview files |

pub mod brother_ql;
pub mod dymo;
pub mod epl2;
pub mod pcl;
pub mod pdf;
pub mod png;
pub mod zpl;
