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

use crate::{Driver, Language, Profile};

/// The driver for a profile's language, set up from the profile.
pub fn driver(profile: &Profile) -> Box<dyn Driver> {
    match profile.language {
        Language::Zpl => Box::new(zpl::Zpl::new(profile)),
        Language::Epl2 => Box::new(epl2::Epl2::new(profile)),
        Language::BrotherQl => Box::new(brother_ql::BrotherQl::new(profile)),
        Language::Dymo => Box::new(dymo::Dymo::new(profile)),
        Language::Pcl => Box::new(pcl::Pcl::new(profile)),
        Language::Png => Box::new(png::Png::new(profile)),
        Language::Pdf => Box::new(pdf::Pdf::new(profile)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model gets a driver of its own language.
    #[test]
    fn every_model_has_its_driver() {
        for model in crate::models::MODELS {
            let profile = model.profile();
            assert_eq!(driver(&profile).language(), model.language, "{}", model.id);
        }
    }
}
