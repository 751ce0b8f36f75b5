//! IV-MTR data feeds: a pushed body or a delivered file → scans.
//!
//! (Interface fixed by the integrator; bodies are filled in by the feed work.)

use super::scan::Scan;

/// One feed message (a delivery may be split into several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedMessage {
    /// `msgGrpId`.
    pub group_id: Option<String>,
    /// `msgSerNbr`.
    pub message_serial: Option<u64>,
    /// `totMsgCnt`.
    pub total_messages: Option<u64>,
    /// The piece scans.
    pub scans: Vec<Scan>,
    /// Events that are not piece scans (trays, containers), counted and skipped.
    pub skipped: u64,
}
