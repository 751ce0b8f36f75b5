//! The model table: known devices and generic profiles, as data.
//!
//! A row says what labeld needs to drive a device: language, resolution, printable
//! width, USB ids (Debian `usb.ids` 2025.07.26 via `printer-langs.md` §5.3; `None`
//! where that list has no entry, rather than a guessed id), and named quirks.
//! Adding a model is one row. The generic rows (`zpl-203`, …) are for devices not
//! listed: pick the language and resolution.

use crate::profile::{MediaKind, NativeOptions, Profile};
use crate::{Language, Resolution};

/// Model-specific behaviour, as named flags (LPrint's `is_ql_800` habit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quirks {
    /// Brother QL: accepts PackBits raster lines (`M 02`). QL-500/550/560/570/700/800
    /// do not (`printer-langs.md` §3.1, §7.6).
    #[serde(default)]
    pub packbits: bool,
    /// Brother QL: accepts the `Z` blank-line command (the QL-800 does not).
    #[serde(default)]
    pub blank_line_command: bool,
    /// Brother QL: needs `ESC i a 1` to enter raster mode (old models reject it).
    #[serde(default)]
    pub raster_mode_command: bool,
}

/// One known device or generic profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Stable id used in configuration and on the command line.
    pub id: &'static str,
    /// What it is, for people.
    pub description: &'static str,
    /// Its language.
    pub language: Language,
    /// Dots per inch (x, y).
    pub dpi: (f64, f64),
    /// Printable width in dots.
    pub width_dots: u32,
    /// USB vendor and product ids it enumerates with as a printer.
    pub usb: Option<(u16, u16)>,
    /// Named quirks.
    pub quirks: Quirks,
}

const fn model(
    id: &'static str,
    description: &'static str,
    language: Language,
    dpi: f64,
    width_dots: u32,
    usb: Option<(u16, u16)>,
) -> Model {
    Model {
        id,
        description,
        language,
        dpi: (dpi, dpi),
        width_dots,
        usb,
        quirks: Quirks {
            packbits: false,
            blank_line_command: false,
            raster_mode_command: false,
        },
    }
}

const fn brother(
    id: &'static str,
    description: &'static str,
    product: u16,
    packbits: bool,
    blank_line_command: bool,
) -> Model {
    let mut m = model(
        id,
        description,
        Language::BrotherQl,
        300.0,
        720,
        Some((0x04f9, product)),
    );
    m.quirks = Quirks {
        packbits,
        blank_line_command,
        // The QL-500/550/560/570/700 reject `ESC i a 1` (printer-langs.md §3.1); the
        // models that take PackBits are the newer ones that want it.
        raster_mode_command: packbits || product == 0x209b,
    };
    m
}

/// Zebra heads are 8, 12 and 24 dots/mm: 203.2, 304.8 and 609.6 dpi.
const ZEBRA_203: f64 = 203.2;
const ZEBRA_300: f64 = 304.8;
const ZEBRA_600: f64 = 609.6;

/// Every model labeld knows, generic profiles first.
pub const MODELS: &[Model] = &[
    model(
        "zpl-203",
        "generic ZPL II printer, 8 dots/mm, 4.09 in head",
        Language::Zpl,
        ZEBRA_203,
        832,
        None,
    ),
    model(
        "zpl-300",
        "generic ZPL II printer, 12 dots/mm, 4.09 in head",
        Language::Zpl,
        ZEBRA_300,
        1248,
        None,
    ),
    model(
        "zpl-600",
        "generic ZPL II printer, 24 dots/mm, 4.09 in head",
        Language::Zpl,
        ZEBRA_600,
        2496,
        None,
    ),
    model(
        "epl-203",
        "generic EPL2 printer, 8 dots/mm, 4.09 in head",
        Language::Epl2,
        ZEBRA_203,
        832,
        None,
    ),
    brother(
        "brother-ql-300",
        "generic Brother QL, 300 dpi, 720-dot line, no compression",
        0,
        false,
        false,
    ),
    model(
        "dymo-300",
        "generic DYMO LabelWriter 400-series, 300 dpi, 672 dots",
        Language::Dymo,
        300.0,
        672,
        None,
    ),
    model(
        "pcl-300",
        "generic PCL 5 laser, 300 dpi, US letter",
        Language::Pcl,
        300.0,
        2550,
        None,
    ),
    model(
        "pcl-600",
        "generic PCL 5 laser, 600 dpi, US letter",
        Language::Pcl,
        600.0,
        5100,
        None,
    ),
    model(
        "png-203",
        "PNG preview files at 203.2 dpi",
        Language::Png,
        ZEBRA_203,
        832,
        None,
    ),
    model(
        "png-300",
        "PNG preview files at 300 dpi",
        Language::Png,
        300.0,
        2550,
        None,
    ),
    model(
        "pdf-300",
        "PDF documents at 300 dpi",
        Language::Pdf,
        300.0,
        2550,
        None,
    ),
    model(
        "zebra-gk420d",
        "Zebra GK420d, direct thermal, 203 dpi",
        Language::Zpl,
        ZEBRA_203,
        832,
        Some((0x0a5f, 0x0080)),
    ),
    model(
        "zebra-gk420t",
        "Zebra GK420t, thermal transfer, 203 dpi",
        Language::Zpl,
        ZEBRA_203,
        832,
        Some((0x0a5f, 0x0081)),
    ),
    model(
        "zebra-zd421-203",
        "Zebra ZD421, 203 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_203,
        832,
        None,
    ),
    model(
        "zebra-zd421-300",
        "Zebra ZD421, 300 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_300,
        1248,
        None,
    ),
    model(
        "zebra-zd410",
        "Zebra ZD410, 203 dpi, 2 in head",
        Language::Zpl,
        ZEBRA_203,
        448,
        Some((0x0a5f, 0x011c)),
    ),
    model(
        "zebra-zd620-203",
        "Zebra ZD620, 203 dpi",
        Language::Zpl,
        ZEBRA_203,
        832,
        Some((0x0a5f, 0x0141)),
    ),
    model(
        "zebra-zt410-203",
        "Zebra ZT410, 203 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_203,
        832,
        None,
    ),
    model(
        "zebra-zt410-300",
        "Zebra ZT410, 300 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_300,
        1248,
        None,
    ),
    model(
        "zebra-zt410-600",
        "Zebra ZT410, 600 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_600,
        2496,
        None,
    ),
    model(
        "zebra-zt411-203",
        "Zebra ZT411, 203 dpi",
        Language::Zpl,
        ZEBRA_203,
        832,
        Some((0x0a5f, 0x0172)),
    ),
    model(
        "zebra-zt610-203",
        "Zebra ZT610, 203 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_203,
        832,
        None,
    ),
    model(
        "zebra-zt610-300",
        "Zebra ZT610, 300 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_300,
        1248,
        None,
    ),
    model(
        "zebra-zt610-600",
        "Zebra ZT610, 600 dpi (USB id not in usb.ids)",
        Language::Zpl,
        ZEBRA_600,
        2496,
        None,
    ),
    model(
        "zebra-lp2844",
        "Zebra/Eltron LP2844, EPL2, 203 dpi",
        Language::Epl2,
        ZEBRA_203,
        832,
        Some((0x0a5f, 0x0009)),
    ),
    brother(
        "brother-ql-700",
        "Brother QL-700 (no compression)",
        0x2042,
        false,
        true,
    ),
    brother("brother-ql-710w", "Brother QL-710W", 0x2043, true, true),
    brother("brother-ql-720nw", "Brother QL-720NW", 0x2044, true, true),
    brother(
        "brother-ql-800",
        "Brother QL-800 (no compression, no blank-line command)",
        0x209b,
        false,
        false,
    ),
    brother("brother-ql-810w", "Brother QL-810W", 0x209c, true, true),
    brother("brother-ql-820nwb", "Brother QL-820NWB", 0x209d, true, true),
    model(
        "dymo-lw450",
        "DYMO LabelWriter 450",
        Language::Dymo,
        300.0,
        672,
        Some((0x0922, 0x0020)),
    ),
    model(
        "dymo-lw400",
        "DYMO LabelWriter 400",
        Language::Dymo,
        300.0,
        672,
        Some((0x0922, 0x0019)),
    ),
    model(
        "dymo-lw4xl",
        "DYMO LabelWriter 4XL, 4.16 in head (USB id not in usb.ids)",
        Language::Dymo,
        300.0,
        1248,
        None,
    ),
    model(
        "hp-laserjet-600",
        "generic HP LaserJet, PCL 5, 600 dpi",
        Language::Pcl,
        600.0,
        5100,
        None,
    ),
];

/// Looks a model up by id (case-insensitive).
pub fn find(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id.eq_ignore_ascii_case(id))
}

/// Looks a model up by its USB ids.
pub fn find_usb(vendor: u16, product: u16) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.usb == Some((vendor, product)))
}

impl Model {
    /// The model's resolution.
    pub fn resolution(&self) -> Resolution {
        Resolution {
            x: self.dpi.0,
            y: self.dpi.1,
        }
    }

    /// A profile with this model's defaults: gap media (continuous for Brother QL
    /// and PCL sheets do not care), printer darkness and speed left alone, no
    /// native elements, one copy.
    pub fn profile(&self) -> Profile {
        Profile {
            model: self.id.to_owned(),
            language: self.language,
            resolution: self.resolution(),
            width_dots: self.width_dots,
            offset_x: 0,
            offset_y: 0,
            darkness: None,
            speed_ips: None,
            media: match self.language {
                Language::BrotherQl => MediaKind::Continuous,
                _ => MediaKind::Gap,
            },
            ascii_only: false,
            native: NativeOptions::default(),
            copies: 1,
            media_mm: match self.language {
                Language::BrotherQl => Some((62, 0)),
                _ => None,
            },
            quirks: self.quirks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// printer-langs.md §3.1 and §7.6: which Brother models take PackBits, the
    /// blank-line command and `ESC i a`.
    #[test]
    fn brother_quirks_follow_the_facts() {
        let q = |id| find(id).map(|m| m.quirks).unwrap();
        assert!(!q("brother-ql-700").packbits && !q("brother-ql-700").raster_mode_command);
        assert!(!q("brother-ql-800").packbits && !q("brother-ql-800").blank_line_command);
        assert!(q("brother-ql-820nwb").packbits && q("brother-ql-820nwb").raster_mode_command);
    }

    #[test]
    fn ids_are_unique_and_found() {
        for (i, m) in MODELS.iter().enumerate() {
            assert!(MODELS[..i].iter().all(|o| o.id != m.id), "{} twice", m.id);
            assert_eq!(find(&m.id.to_uppercase()), Some(m));
            if let Some((v, p)) = m.usb {
                assert_eq!(find_usb(v, p).map(|f| f.id), Some(m.id));
            }
        }
        for generic in [
            "zpl-203",
            "zpl-300",
            "zpl-600",
            "epl-203",
            "brother-ql-300",
            "dymo-300",
            "pcl-300",
            "pcl-600",
        ] {
            assert!(find(generic).is_some(), "{generic}");
        }
    }
}
