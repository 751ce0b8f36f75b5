//! Which scans mean which stage of a piece's trip.
//!
//! USPS documents its mail phases (the `mail_phase` text) but not, in any source
//! labeld could read, every operation code (see `../shared/reference/iv-tracking.md`
//! §4). So the meaning is a table of rules in the configuration (`[[tracking.stage]]`),
//! with the defaults in [`default_rules`], and can be corrected without a new build.

use serde::{Deserialize, Serialize};

/// How far a piece has got. Ordered: a later stage is never undone by an earlier scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Printed by labeld; USPS has not scanned it yet.
    Printed,
    /// USPS has it: the first scan (origin processing, acceptance).
    Accepted,
    /// Sorted between origin and destination.
    InTransit,
    /// Sorted in delivery-point sequence for the carrier's route (the last scan most
    /// letters get, e.g. op code 918, phase 3c).
    ProcessedForDelivery,
    /// A delivery event (phase 4c; for letters usually a logical event from the
    /// carrier's route, not a scan of the piece).
    Delivered,
}

impl Stage {
    /// The name stored, shown and published.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Printed => "printed",
            Stage::Accepted => "accepted",
            Stage::InTransit => "in_transit",
            Stage::ProcessedForDelivery => "processed_for_delivery",
            Stage::Delivered => "delivered",
        }
    }
}

/// One rule: a scan whose mail phase starts with `phase` (compared without case and
/// ignoring spaces and punctuation) or whose event code is in `event_codes` is at
/// `stage`. The first rule that matches wins; a scan no rule matches is
/// [`Stage::InTransit`] (USPS has it and it moved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRule {
    /// A mail-phase prefix, e.g. `"Phase 3c"`.
    #[serde(default)]
    pub phase: Option<String>,
    /// Operation codes, e.g. `["918", "919"]`.
    #[serde(default)]
    pub event_codes: Vec<String>,
    /// The stage they mean.
    pub stage: Stage,
}

/// The rules labeld ships with (documented in `docs/tracking.md`).
pub fn default_rules() -> Vec<StageRule> {
    let rule = |phase: &str, stage| StageRule {
        phase: Some(phase.to_owned()),
        event_codes: Vec::new(),
        stage,
    };
    vec![
        StageRule {
            phase: None,
            event_codes: vec!["918".to_owned(), "919".to_owned()],
            stage: Stage::ProcessedForDelivery,
        },
        rule("Phase 4", Stage::Delivered),
        rule("Phase 3c", Stage::ProcessedForDelivery),
        // Box mail: sorted to PO boxes at the destination, the last sort such a piece
        // gets.
        rule("Phase 3b", Stage::ProcessedForDelivery),
        rule("Phase 0", Stage::Accepted),
        rule("Phase 1", Stage::Accepted),
        rule("Phase 2", Stage::InTransit),
        rule("Phase 3", Stage::InTransit),
    ]
}
