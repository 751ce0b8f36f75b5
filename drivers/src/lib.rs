//! labeld's device layer: everything that depends on a particular printer.
//!
//! This crate is a leaf. It knows nothing of jobs, templates, ZeroMQ or the spool:
//! it owns the plain-data boundary between rendering and devices ([`Page`], a 1-bit
//! [`Bitmap`] plus native elements), the [`Driver`] interface every printer family
//! implements (`lang/`, one file each), device [`Profile`]s and the model table
//! ([`models`]), and the shared status vocabulary ([`DeviceStatus`]). Transports
//! arrive with their own issue.
//!
//! Drivers turn pages into bytes instead of writing to devices themselves, so that
//! every language is tested by decoding its output back, with no device, and so that
//! a transport can retry or resume a job from bytes it already has.
#![deny(missing_docs)]

pub mod bitmap;
pub mod compress;
pub mod driver;
pub mod lang;
pub mod models;
pub mod page;
pub mod preview;
pub mod profile;
pub mod status;
pub mod transport;

pub use bitmap::Bitmap;
pub use driver::{encode_job, Capabilities, Driver, DriverError, Language};
pub use page::{NativeCode128, NativeElement, NativeImb, NativeText, Page, Resolution, Rotation};
pub use profile::{MediaKind, NativeOptions, Profile};
pub use status::{Condition, Conditions, DeviceStatus, StatusParseError};
