//! One USPS scan event in labeld's own words.
//!
//! The IV-MTR pull API names fields in snake_case (`scan_date_time`), the data feed in
//! camelCase (`scanDatetime`); [`RawScan`] takes either, and [`Scan::from_raw`] checks
//! it and keys it on the 20-digit tracking code (barcode ID, service type, Mailer ID,
//! serial), because the routing part a scan carries may be 5, 9 or 11 digits and need
//! not be what was printed.

use serde::{Deserialize, Serialize};

/// Where a scan came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanSource {
    /// The IV-MTR piece API (the poller).
    Pull,
    /// A data feed pushed to the receiver.
    Push,
    /// A feed file given to `labelctl tracking import`.
    Import,
}

impl ScanSource {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanSource::Pull => "pull",
            ScanSource::Push => "push",
            ScanSource::Import => "import",
        }
    }
}

/// A scan's time as USPS gave it, and as labeld compares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTime {
    /// The text exactly as received.
    pub text: String,
    /// Local wall-clock time at the facility, `YYYY-MM-DDTHH:MM:SS`.
    pub local: String,
    /// Offset from UTC in minutes: given in the text, or inferred from the facility's
    /// state (see `inferred`), or `None` when neither is known.
    pub utc_offset_minutes: Option<i32>,
    /// The offset was inferred from the facility's state, not given by USPS.
    pub inferred: bool,
    /// The instant, Unix ms (local time taken as UTC when no offset is known).
    pub unix_ms: i64,
}

/// Where a scan happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facility {
    /// Facility name, e.g. `"CHICAGO IL P&DC"`.
    pub name: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Two-letter state.
    pub state: Option<String>,
    /// ZIP Code.
    pub zip: Option<String>,
    /// USPS locale key.
    pub locale_key: Option<String>,
}

/// The machine that scanned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Machine name, e.g. `"DBCS-042"`.
    pub name: Option<String>,
    /// Machine id.
    pub id: Option<String>,
    /// Scanner type.
    pub scanner_type: Option<String>,
}

/// One scan, checked and keyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The 20-digit tracking code: barcode ID, service type, Mailer ID, serial.
    pub tracking: String,
    /// The routing code the scan carried (0, 5, 9 or 11 digits).
    pub routing: String,
    /// USPS operation (scan event) code, e.g. `"918"`.
    pub event_code: String,
    /// Handling event type code, carried through as given.
    pub handling_event_type: Option<String>,
    /// Its description, as given.
    pub handling_event_description: Option<String>,
    /// Mail phase, e.g. `"Phase 3c - Destination Sequenced Carrier Sortation"`.
    pub mail_phase: Option<String>,
    /// When.
    pub scanned_at: ScanTime,
    /// Where.
    pub facility: Facility,
    /// By what.
    pub machine: Machine,
    /// How labeld got it.
    pub source: ScanSource,
}

/// A scan as either USPS interface spells it: every field optional, every value text
/// (numbers are accepted and turned into text). Unknown fields are ignored: a
/// subscription chooses its own field set. Built by `RawScan::from_json` (a JSON
/// object may carry both spellings of a field, or two routing fields at once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawScan {
    /// Full IMb digits (tracking code + routing), `imb`.
    pub imb: Option<String>,
    /// `imbTrackingCode` (feed only).
    pub tracking_code: Option<String>,
    /// `routingCodeImbMatchingPortion` or `imbRoutingCode` (feed only).
    pub routing_code: Option<String>,
    /// `scanDatetime` / `scan_date_time`.
    pub scan_datetime: Option<String>,
    /// `scanEventCode` / `scan_event_code`.
    pub event_code: Option<String>,
    /// `handlingEventType` / `handling_event_type`.
    pub handling_event_type: Option<String>,
    /// `handlingEventTypeDescription`.
    pub handling_event_description: Option<String>,
    /// `mailPhase` / `mail_phase`.
    pub mail_phase: Option<String>,
    /// `machineName` / `machine_name`.
    pub machine_name: Option<String>,
    /// `machineId`.
    pub machine_id: Option<String>,
    /// `scannerType` / `scanner_type`.
    pub scanner_type: Option<String>,
    /// `scanFacilityName` / `scan_facility_name`.
    pub facility_name: Option<String>,
    /// `scanFacilityCity` / `scan_facility_city`.
    pub facility_city: Option<String>,
    /// `scanFacilityState` / `scan_facility_state`.
    pub facility_state: Option<String>,
    /// `scanFacilityZip` / `scan_facility_zip`.
    pub facility_zip: Option<String>,
    /// `scanLocaleKey` / `scan_facility_locale_key`.
    pub facility_locale_key: Option<String>,
}

/// A scan that cannot be used, naming the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A field USPS always sends is missing.
    #[error("scan field `{field}` is missing")]
    Missing {
        /// The field, as the feed spells it.
        field: &'static str,
    },
    /// A field's value is not what USPS sends.
    #[error("scan field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field, as the feed spells it.
        field: &'static str,
        /// Why, for a person.
        reason: String,
    },
}
