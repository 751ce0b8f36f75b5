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

    /// Every language that is not 7-bit safe refuses a 7-bit link when asked for a
    /// page; ZPL produces one (printer-langs.md §5.5).
    #[test]
    fn binary_languages_refuse_ascii_links() {
        for model in crate::models::MODELS {
            let mut profile = model.profile();
            profile.ascii_only = true;
            let mut d = driver(&profile);
            let page = crate::Page::raster(crate::Bitmap::new(8, 8), profile.resolution);
            let mut out = Vec::new();
            let result = d
                .start_job(&mut out)
                .and_then(|()| d.write_page(&page, &mut out));
            if d.capabilities().ascii_capable {
                assert!(result.is_ok(), "{}: {result:?}", model.id);
                assert!(out.iter().all(u8::is_ascii), "{}", model.id);
            } else {
                assert!(
                    matches!(result, Err(crate::DriverError::BinaryOnAsciiLink { .. })),
                    "{}: {result:?}",
                    model.id
                );
            }
        }
    }

    /// Every model gets a driver of its own language.
    #[test]
    fn every_model_has_its_driver() {
        for model in crate::models::MODELS {
            let profile = model.profile();
            assert_eq!(driver(&profile).language(), model.language, "{}", model.id);
        }
    }
}
