//! Device profiles: how many dots, where, how dark, on what media, in what
//! language. A profile starts from a [`crate::models::Model`] and carries the
//! user's settings on top.

use crate::{Language, Resolution};

/// How the printer finds the start of each label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    /// Die-cut labels with gaps between them (web sensing).
    #[default]
    Gap,
    /// Labels marked by a black mark on the back.
    BlackMark,
    /// Continuous stock; the label length is whatever the page is.
    Continuous,
}

/// Which elements to hand to the printer's own fonts and barcodes instead of
/// drawing them (fewer bytes on slow serial links; the geometry is then the
/// printer's, so the IMb in particular is opt-in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NativeOptions {
    /// Text in the printer's resident scalable font.
    #[serde(default)]
    pub text: bool,
    /// Code 128 (tray and container barcodes).
    #[serde(default)]
    pub code128: bool,
    /// The IMb (ZPL `^BZ`): the printer's own geometry, not checked by labeld.
    #[serde(default)]
    pub imb: bool,
}

/// Everything a driver needs to know about the device and its settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// Model id from the model table (`zpl-203`, `zebra-zd421-203`, …).
    pub model: String,
    /// The printer's language.
    pub language: Language,
    /// Print resolution.
    pub resolution: Resolution,
    /// Printable width in dots (the head width, or the media's printable width).
    pub width_dots: u32,
    /// Calibration: shift everything right by this many dots (negative: left).
    #[serde(default)]
    pub offset_x: i32,
    /// Calibration: shift everything down by this many dots (negative: up).
    #[serde(default)]
    pub offset_y: i32,
    /// Darkness 0–100 (%), scaled by each driver to its own range; `None` leaves
    /// the printer's setting alone.
    #[serde(default)]
    pub darkness: Option<u8>,
    /// Print speed in inches per second; `None` leaves the printer's setting.
    #[serde(default)]
    pub speed_ips: Option<f32>,
    /// Gap, black mark or continuous.
    #[serde(default)]
    pub media: MediaKind,
    /// Produce only 7-bit ASCII (serial links with XON/XOFF).
    #[serde(default)]
    pub ascii_only: bool,
    /// Elements to print natively where the language can.
    #[serde(default)]
    pub native: NativeOptions,
    /// Copies of each page.
    #[serde(default = "one")]
    pub copies: u32,
    /// Brother QL: the loaded tape or label, in mm (width, and length for die-cut;
    /// 0 = continuous).
    #[serde(default)]
    pub media_mm: Option<(u8, u8)>,
    /// Model-specific behaviour.
    #[serde(default)]
    pub quirks: crate::models::Quirks,
}

fn one() -> u32 {
    1
}

impl Profile {
    /// The profile with the darkness clamped to 0–100.
    pub fn darkness_percent(&self) -> Option<u8> {
        self.darkness.map(|d| d.min(100))
    }
}
