//! Scans and piece states, stored in the spool's SQLite file beside the print log.
//!
//! (Interface fixed by the integrator; bodies are filled in by the store work.)

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::feed::FeedMessage;
use super::scan::Scan;
use super::stages::{Stage, StageRule};

/// An error from the tracking store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("tracking store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Which piece: by 20-digit tracking code, by full IMb digits (20 + routing), or by
/// Mailer ID and serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceKey {
    /// 20 digits.
    Tracking(String),
    /// A Mailer ID and a serial.
    Serial {
        /// 6 or 9 digits.
        mailer_id: String,
        /// The serial.
        serial: u64,
    },
}

/// A piece's derived state: its stage, or stalled (not yet processed for delivery and
/// nothing heard for `stall_days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceState {
    /// See [`Stage`].
    Printed,
    /// See [`Stage`].
    Accepted,
    /// See [`Stage`].
    InTransit,
    /// See [`Stage`].
    ProcessedForDelivery,
    /// See [`Stage`].
    Delivered,
    /// Not processed for delivery, and no scan (or print) for `stall_days`.
    Stalled,
}

impl PieceState {
    /// The name stored, shown and published.
    pub fn as_str(self) -> &'static str {
        match self {
            PieceState::Printed => "printed",
            PieceState::Accepted => "accepted",
            PieceState::InTransit => "in_transit",
            PieceState::ProcessedForDelivery => "processed_for_delivery",
            PieceState::Delivered => "delivered",
            PieceState::Stalled => "stalled",
        }
    }
}

/// A piece whose state changed (for the `tracking.<serial>` event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateChange {
    /// 20 digits.
    pub tracking: String,
    /// Mailer ID.
    pub mailer_id: String,
    /// Serial.
    pub serial: u64,
    /// The job that printed it (the latest print), if it is in the print log.
    pub job_id: Option<String>,
    /// Before.
    pub from: PieceState,
    /// After.
    pub to: PieceState,
}

/// What adding scans did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddReport {
    /// New scans stored.
    pub inserted: u64,
    /// Scans already stored (same piece, time, code, machine, facility).
    pub duplicates: u64,
    /// Scans of pieces labeld did not print (stored, not in the print log).
    pub unmatched: u64,
    /// Pieces whose state changed.
    pub changes: Vec<StateChange>,
}
