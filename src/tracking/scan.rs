//! One USPS scan event in labeld's own words.
//!
//! The IV-MTR pull API names fields in snake_case (`scan_date_time`), the data feed in
//! camelCase (`scanDatetime`); [`RawScan`] takes either, and [`Scan::from_raw`] checks
//! it and keys it on the 20-digit tracking code (barcode ID, service type, Mailer ID,
//! serial), because the routing part a scan carries may be 5, 9 or 11 digits and need
//! not be what was printed (`../shared/reference/iv-tracking.md` §2.4, §3).
//!
//! Times: USPS's time-zone form is not confirmed (facts §2.4), so [`ScanTime::parse`]
//! takes the forms clients have seen, keeps the text, and when no offset is given infers
//! one from the facility's state (the zone table below, US daylight-saving rules since
//! 2007), marking it `inferred`. Calendar arithmetic is Howard Hinnant's
//! `days_from_civil` ("chrono-Compatible Low-Level Date Algorithms"), written here.
//!
//! Two scans are the same scan when they are of the same piece at the same local time
//! with the same event code, machine name, facility ZIP and locale key (facts §2.7):
//! [`Scan::dedup_key`]. The same event may arrive from the pull API and from a feed.
//!
//! Not covered: the meaning of event codes (see [`super::stages`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// The longest text field accepted, in characters (USPS's longest known field, a
/// facility name or mail phase, is well under this).
pub const MAX_FIELD_CHARS: usize = 256;

/// The longest operation (event) code accepted.
pub const MAX_EVENT_CODE_CHARS: usize = 8;

/// Which [`RawScan`] field a JSON name fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Imb,
    TrackingCode,
    /// `routingCodeImbMatchingPortion`: preferred over `imbRoutingCode`.
    RoutingMatching,
    /// `imbRoutingCode`: used when the matching portion is absent.
    RoutingCode,
    Datetime,
    EventCode,
    HandlingType,
    HandlingDescription,
    MailPhase,
    MachineName,
    MachineId,
    ScannerType,
    FacilityName,
    FacilityCity,
    FacilityState,
    FacilityZip,
    FacilityLocaleKey,
}

/// Every field name either interface uses (pull snake_case, facts §2.4; feed
/// camelCase, facts §3), and what it fills. A few snake_case names the pull API has
/// not been seen to send (`machine_id`, `handling_event_type_description`) are
/// accepted for symmetry.
const FIELDS: &[(&str, Slot)] = &[
    ("imb", Slot::Imb),
    ("imbTrackingCode", Slot::TrackingCode),
    ("routingCodeImbMatchingPortion", Slot::RoutingMatching),
    ("imbRoutingCode", Slot::RoutingCode),
    ("scanDatetime", Slot::Datetime),
    ("scan_date_time", Slot::Datetime),
    ("scanEventCode", Slot::EventCode),
    ("scan_event_code", Slot::EventCode),
    ("handlingEventType", Slot::HandlingType),
    ("handling_event_type", Slot::HandlingType),
    ("handlingEventTypeDescription", Slot::HandlingDescription),
    ("handling_event_type_description", Slot::HandlingDescription),
    ("mailPhase", Slot::MailPhase),
    ("mail_phase", Slot::MailPhase),
    ("machineName", Slot::MachineName),
    ("machine_name", Slot::MachineName),
    ("machineId", Slot::MachineId),
    ("machine_id", Slot::MachineId),
    ("scannerType", Slot::ScannerType),
    ("scanner_type", Slot::ScannerType),
    ("scanFacilityName", Slot::FacilityName),
    ("scan_facility_name", Slot::FacilityName),
    ("scanFacilityCity", Slot::FacilityCity),
    ("scan_facility_city", Slot::FacilityCity),
    ("scanFacilityState", Slot::FacilityState),
    ("scan_facility_state", Slot::FacilityState),
    ("scanFacilityZip", Slot::FacilityZip),
    ("scan_facility_zip", Slot::FacilityZip),
    ("scanLocaleKey", Slot::FacilityLocaleKey),
    ("scan_facility_locale_key", Slot::FacilityLocaleKey),
];

impl RawScan {
    /// Whether `name` is a field a scan object may carry (either spelling). Feed
    /// readers keep only these, so unknown fields cost nothing.
    pub fn is_field(name: &str) -> bool {
        FIELDS.iter().any(|(n, _)| *n == name)
    }

    /// Reads a scan object in either spelling. Values may be text or numbers (numbers
    /// become their decimal text); `null`, empty and all-blank values count as absent,
    /// and blanks around a value are dropped. Any other JSON type is
    /// [`ScanError::Invalid`] naming the field. Two spellings of one field must agree.
    /// `routingCodeImbMatchingPortion` wins over `imbRoutingCode` when both are given
    /// (it is the part USPS matched, and the one seen in a real payload: facts §3).
    pub fn from_json(object: &Map<String, Value>) -> Result<RawScan, ScanError> {
        let mut raw = RawScan::default();
        // Which name filled each slot, for the "two spellings disagree" message.
        let mut filled_by: Vec<(Slot, &'static str)> = Vec::new();
        let mut routing_fallback: Option<String> = None;
        for &(name, slot) in FIELDS {
            let Some(value) = object.get(name) else {
                continue;
            };
            let Some(text) = json_text(name, value)? else {
                continue;
            };
            if slot == Slot::RoutingCode {
                routing_fallback = Some(text);
                continue;
            }
            let target = raw.slot_mut(slot);
            match target {
                Some(existing) if *existing != text => {
                    let first = filled_by
                        .iter()
                        .find(|(s, _)| *s == slot)
                        .map_or("another field", |(_, n)| *n);
                    return Err(ScanError::Invalid {
                        field: name,
                        reason: format!(
                            "{} disagrees with `{first}` ({}); send one value",
                            shown(&text),
                            shown(existing)
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    *target = Some(text);
                    filled_by.push((slot, name));
                }
            }
        }
        if raw.routing_code.is_none() {
            raw.routing_code = routing_fallback;
        }
        Ok(raw)
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<String> {
        match slot {
            Slot::Imb => &mut self.imb,
            Slot::TrackingCode => &mut self.tracking_code,
            Slot::RoutingMatching | Slot::RoutingCode => &mut self.routing_code,
            Slot::Datetime => &mut self.scan_datetime,
            Slot::EventCode => &mut self.event_code,
            Slot::HandlingType => &mut self.handling_event_type,
            Slot::HandlingDescription => &mut self.handling_event_description,
            Slot::MailPhase => &mut self.mail_phase,
            Slot::MachineName => &mut self.machine_name,
            Slot::MachineId => &mut self.machine_id,
            Slot::ScannerType => &mut self.scanner_type,
            Slot::FacilityName => &mut self.facility_name,
            Slot::FacilityCity => &mut self.facility_city,
            Slot::FacilityState => &mut self.facility_state,
            Slot::FacilityZip => &mut self.facility_zip,
            Slot::FacilityLocaleKey => &mut self.facility_locale_key,
        }
    }
}

/// A JSON value as scan text: `None` for null/empty/blank.
fn json_text(field: &'static str, value: &Value) -> Result<Option<String>, ScanError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(_) => return Err(wrong_type(field, "true or false")),
        Value::Array(_) => return Err(wrong_type(field, "a list")),
        Value::Object(_) => return Err(wrong_type(field, "an object")),
    };
    Ok(if text.is_empty() { None } else { Some(text) })
}

fn wrong_type(field: &'static str, found: &str) -> ScanError {
    ScanError::Invalid {
        field,
        reason: format!("expected text or a number, found {found}"),
    }
}

/// A value for an error message: quoted, and cut after 40 characters so a huge field
/// does not make a huge message.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}… ({} characters)", text.chars().count())
    }
}

/// A field's text, trimmed, or `None` when absent or blank.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Checks one text field: at most [`MAX_FIELD_CHARS`] characters, no control characters.
fn check_text(field: &'static str, text: &str) -> Result<(), ScanError> {
    let count = text.chars().count();
    if count > MAX_FIELD_CHARS {
        return Err(ScanError::Invalid {
            field,
            reason: format!("has {count} characters; at most {MAX_FIELD_CHARS} are accepted"),
        });
    }
    if let Some((position, c)) = text.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ScanError::Invalid {
            field,
            reason: format!(
                "has control character U+{:04X} at position {}",
                u32::from(c),
                position + 1
            ),
        });
    }
    Ok(())
}

/// An optional text field, checked and owned.
fn optional(field: &'static str, value: &Option<String>) -> Result<Option<String>, ScanError> {
    match present(value) {
        Some(text) => {
            check_text(field, text)?;
            Ok(Some(text.to_owned()))
        }
        None => Ok(None),
    }
}

/// Checks that `text` is only ASCII digits.
fn check_digits(field: &'static str, text: &str) -> Result<(), ScanError> {
    match text.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        Some((position, c)) => Err(ScanError::Invalid {
            field,
            reason: format!(
                "has {c:?} at position {}; expected digits only",
                position + 1
            ),
        }),
        None => Ok(()),
    }
}

/// Checks a 20-digit tracking code: length, digits, second barcode ID digit 0–4
/// (USPS-B-3200 §2.1).
fn check_tracking(field: &'static str, text: &str) -> Result<(), ScanError> {
    check_text(field, text)?;
    check_digits(field, text)?;
    if text.len() != 20 {
        return Err(ScanError::Invalid {
            field,
            reason: format!("has {} digits; expected 20", text.len()),
        });
    }
    if text.as_bytes()[1] > b'4' {
        return Err(ScanError::Invalid {
            field,
            reason: format!(
                "barcode ID {} has a second digit above 4; expected 00-04, 10-14, … 90-94",
                &text[..2]
            ),
        });
    }
    Ok(())
}

/// Checks a routing code: 0, 5, 9 or 11 digits.
fn check_routing(field: &'static str, text: &str) -> Result<(), ScanError> {
    check_text(field, text)?;
    check_digits(field, text)?;
    if ![0, 5, 9, 11].contains(&text.len()) {
        return Err(ScanError::Invalid {
            field,
            reason: format!("has {} digits; expected 0, 5, 9 or 11", text.len()),
        });
    }
    Ok(())
}

impl Scan {
    /// Checks a raw scan and keys it. The tracking code is `imbTrackingCode` when
    /// given, else the first 20 digits of `imb`; the routing code is
    /// `routingCodeImbMatchingPortion`/`imbRoutingCode` when given, else the rest of
    /// `imb`. Checked: the tracking code (20 digits, barcode ID's second digit 0–4),
    /// `imb` (20, 25, 29 or 31 digits, starting with the tracking code when both are
    /// given), the routing code (0, 5, 9 or 11 digits), the event code (present, at
    /// most 8 letters and digits), every text field (at most [`MAX_FIELD_CHARS`]
    /// characters, no control characters) and the time ([`ScanTime::parse`]). Errors
    /// name the field as the feed spells it.
    pub fn from_raw(raw: RawScan, source: ScanSource) -> Result<Scan, ScanError> {
        let imb = present(&raw.imb);
        if let Some(imb) = imb {
            check_text("imb", imb)?;
            check_digits("imb", imb)?;
            if ![20, 25, 29, 31].contains(&imb.len()) {
                return Err(ScanError::Invalid {
                    field: "imb",
                    reason: format!("has {} digits; expected 20, 25, 29 or 31", imb.len()),
                });
            }
        }
        let tracking = match (present(&raw.tracking_code), imb) {
            (Some(code), imb) => {
                check_tracking("imbTrackingCode", code)?;
                if let Some(imb) = imb.filter(|imb| !imb.starts_with(code)) {
                    return Err(ScanError::Invalid {
                        field: "imb",
                        reason: format!(
                            "{} does not start with `imbTrackingCode` {code}",
                            shown(imb)
                        ),
                    });
                }
                code.to_owned()
            }
            (None, Some(imb)) => {
                let code = &imb[..20];
                check_tracking("imb", code)?;
                code.to_owned()
            }
            (None, None) => return Err(ScanError::Missing { field: "imb" }),
        };
        let routing = match (present(&raw.routing_code), imb) {
            (Some(routing), _) => {
                check_routing("routingCodeImbMatchingPortion", routing)?;
                routing.to_owned()
            }
            // `imb` is all digits and 20–31 long, checked above.
            (None, Some(imb)) => imb[20..].to_owned(),
            (None, None) => String::new(),
        };
        let event_code = present(&raw.event_code).ok_or(ScanError::Missing {
            field: "scanEventCode",
        })?;
        check_text("scanEventCode", event_code)?;
        let code_chars = event_code.chars().count();
        if code_chars > MAX_EVENT_CODE_CHARS {
            return Err(ScanError::Invalid {
                field: "scanEventCode",
                reason: format!(
                    "has {code_chars} characters; at most {MAX_EVENT_CODE_CHARS} are accepted"
                ),
            });
        }
        if let Some(c) = event_code.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(ScanError::Invalid {
                field: "scanEventCode",
                reason: format!("has {c:?}; expected letters and digits only"),
            });
        }
        let facility = Facility {
            name: optional("scanFacilityName", &raw.facility_name)?,
            city: optional("scanFacilityCity", &raw.facility_city)?,
            state: optional("scanFacilityState", &raw.facility_state)?,
            zip: optional("scanFacilityZip", &raw.facility_zip)?,
            locale_key: optional("scanLocaleKey", &raw.facility_locale_key)?,
        };
        let machine = Machine {
            name: optional("machineName", &raw.machine_name)?,
            id: optional("machineId", &raw.machine_id)?,
            scanner_type: optional("scannerType", &raw.scanner_type)?,
        };
        let handling_event_type = optional("handlingEventType", &raw.handling_event_type)?;
        let handling_event_description = optional(
            "handlingEventTypeDescription",
            &raw.handling_event_description,
        )?;
        let mail_phase = optional("mailPhase", &raw.mail_phase)?;
        let time_text = present(&raw.scan_datetime).ok_or(ScanError::Missing {
            field: "scanDatetime",
        })?;
        check_text("scanDatetime", time_text)?;
        let scanned_at = ScanTime::parse(time_text, facility.state.as_deref())?;
        Ok(Scan {
            tracking,
            routing,
            event_code: event_code.to_owned(),
            handling_event_type,
            handling_event_description,
            mail_phase,
            scanned_at,
            facility,
            machine,
            source,
        })
    }

    /// The key two copies of one scan share, whatever interface they came from: the
    /// piece, the local time, the event code, the machine name, the facility ZIP and
    /// locale key (facts §2.7). Text is compared without case and surrounding blanks;
    /// the ZIP by its first five digits (a ZIP sent as a number loses its leading
    /// zeros, so it is padded back to five). The time is the facility's local wall
    /// clock without fractions, so `2026-11-20 08:15:00` and
    /// `2026-11-20T08:15:00.000-06:00` are one scan.
    pub fn dedup_key(&self) -> String {
        let text = |value: &Option<String>| -> String {
            value
                .as_deref()
                .map(|v| {
                    v.split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_ascii_uppercase()
                })
                .unwrap_or_default()
        };
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.tracking,
            self.scanned_at.local,
            self.event_code.trim().to_ascii_uppercase(),
            text(&self.machine.name).replace('|', "/"),
            zip5(self.facility.zip.as_deref()),
            text(&self.facility.locale_key).replace('|', "/"),
        )
    }
}

/// A ZIP Code's first five digits, left-padded with zeros when shorter (a number lost
/// them); empty when there are no digits.
fn zip5(zip: Option<&str>) -> String {
    let digits: String = zip
        .unwrap_or("")
        .chars()
        .take_while(|c| *c != '-')
        .filter(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        String::new()
    } else if digits.len() < 5 {
        format!("{digits:0>5}")
    } else {
        digits[..5].to_owned()
    }
}

// ---------------------------------------------------------------------------
// Time.

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The largest UTC offset accepted, minutes (UTC+14:00 is the furthest zone in use).
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// A wall-clock time read from text, before any zone is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

impl Civil {
    /// This wall-clock time as if it were UTC, Unix ms.
    fn as_utc_ms(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY_MS
            + (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
                * 1000
            + i64::from(self.millis)
    }

    /// `YYYY-MM-DDTHH:MM:SS`.
    fn local_text(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl ScanTime {
    /// Reads a scan time in any form clients have seen: `YYYY-MM-DD HH:MM:SS` or with
    /// a `T`, `MM/DD/YYYY HH:MM:SS` (month and day may have one digit), seconds
    /// optional, an optional fraction (milliseconds kept), an optional `AM`/`PM` (then
    /// the hour is 1–12), and an optional `Z` or `±HH:MM`/`±HHMM`/`±HH` offset. Without
    /// an offset, the facility's `state` gives one ([`state_zone`], `inferred = true`);
    /// an unknown or absent state leaves the offset `None` and takes the local time as
    /// UTC. Errors name `scanDatetime`.
    pub fn parse(text: &str, facility_state: Option<&str>) -> Result<ScanTime, ScanError> {
        let (civil, given) = parse_civil(text.trim()).map_err(|reason| ScanError::Invalid {
            field: "scanDatetime",
            reason: format!("{} {reason}", shown(text.trim())),
        })?;
        let (offset, inferred) = match given {
            Some(offset) => (Some(offset), false),
            None => match facility_state.and_then(state_zone) {
                Some(zone) => (Some(zone.offset_at(&civil)), true),
                None => (None, false),
            },
        };
        let unix_ms = civil.as_utc_ms() - i64::from(offset.unwrap_or(0)) * 60_000;
        Ok(ScanTime {
            text: text.to_owned(),
            local: civil.local_text(),
            utc_offset_minutes: offset,
            inferred,
            unix_ms,
        })
    }

    /// The time as RFC 3339 text with the local wall clock and the offset
    /// (`2026-11-20T08:15:00-06:00`, milliseconds only when not zero); without a known
    /// offset, the local time alone. [`ScanTime::parse`] reads it back to the same
    /// local time, offset and instant.
    pub fn to_rfc3339(&self) -> String {
        let millis = self.unix_ms.rem_euclid(1000);
        let fraction = if millis == 0 {
            String::new()
        } else {
            format!(".{millis:03}")
        };
        match self.utc_offset_minutes {
            Some(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                let abs = offset.unsigned_abs();
                format!(
                    "{}{fraction}{sign}{:02}:{:02}",
                    self.local,
                    abs / 60,
                    abs % 60
                )
            }
            None => format!("{}{fraction}", self.local),
        }
    }
}

/// A little cursor over ASCII text.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// Between `min` and `max` digits as a number.
    fn digits(&mut self, min: usize, max: usize, what: &str) -> Result<(u32, usize), String> {
        let start = self.at;
        let mut value: u32 = 0;
        while self.at - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(b - b'0');
                    self.at += 1;
                }
                _ => break,
            }
        }
        let n = self.at - start;
        if n < min {
            return Err(format!("has no {what} at position {}", start + 1));
        }
        Ok((value, n))
    }

    fn require(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!(
                "has no {what} at position {}; expected a date and time such as \
                 2026-11-20 08:15:00 or 11/20/2026 08:15:00",
                self.at + 1
            ))
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at.min(self.bytes.len())..]
    }
}

/// Parses the date, time and optional offset (minutes) of a scan time.
fn parse_civil(text: &str) -> Result<(Civil, Option<i32>), String> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let (first, first_len) = c
        .digits(1, 4, "date")
        .map_err(|_| "does not start with a date such as 2026-11-20 or 11/20/2026".to_owned())?;
    let (year, month, day) = if first_len == 4 {
        c.require(b'-', "'-' after the year")?;
        let (month, _) = c.digits(2, 2, "two-digit month")?;
        c.require(b'-', "'-' after the month")?;
        let (day, _) = c.digits(2, 2, "two-digit day")?;
        (first, month, day)
    } else if first_len <= 2 {
        c.require(b'/', "'/' after the month")?;
        let (day, _) = c.digits(1, 2, "day")?;
        c.require(b'/', "'/' after the day")?;
        let (year, _) = c.digits(4, 4, "four-digit year")?;
        (year, first, day)
    } else {
        return Err("does not start with a date such as 2026-11-20 or 11/20/2026".into());
    };
    if !(1..=12).contains(&month) {
        return Err(format!("has month {month}; expected 1-12"));
    }
    let year = i64::from(year);
    if year < 1 {
        return Err("has year 0000; expected 0001-9999".into());
    }
    let last = days_in_month(year, month);
    if day < 1 || day > last {
        return Err(format!(
            "has day {day}; {year:04}-{month:02} has {last} days"
        ));
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(format!(
            "has no time after the date at position {}; expected 'T' or a space, then HH:MM:SS",
            c.at + 1
        ));
    }
    c.skip_blanks();
    let (mut hour, _) = c.digits(1, 2, "hour")?;
    c.require(b':', "':' after the hour")?;
    let (minute, _) = c.digits(2, 2, "two-digit minute")?;
    let second = if c.eat(b':') {
        c.digits(2, 2, "two-digit second")?.0
    } else {
        0
    };
    let mut millis = 0;
    if c.eat(b'.') || c.eat(b',') {
        let start = c.at;
        let (_, n) = c.digits(1, 9, "fraction of a second")?;
        let frac = &c.bytes[start..start + n];
        for (i, &b) in frac.iter().take(3).enumerate() {
            millis += u32::from(b - b'0') * [100, 10, 1][i];
        }
    }
    c.skip_blanks();
    let rest = c.rest();
    if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"AM")
        || rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"PM")
    {
        let pm = rest[0].eq_ignore_ascii_case(&b'P');
        c.at += 2;
        if !(1..=12).contains(&hour) {
            return Err(format!("has hour {hour} with AM/PM; expected 1-12"));
        }
        hour = match (pm, hour) {
            (false, 12) => 0,
            (false, h) => h,
            (true, 12) => 12,
            (true, h) => h + 12,
        };
        c.skip_blanks();
    }
    if hour > 23 {
        return Err(format!("has hour {hour}; expected 0-23"));
    }
    if minute > 59 {
        return Err(format!("has minute {minute}; expected 0-59"));
    }
    if second > 59 {
        return Err(format!("has second {second}; expected 0-59"));
    }
    let offset = match c.peek() {
        None => None,
        Some(b'Z' | b'z') => {
            c.at += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let (hours, _) = c.digits(2, 2, "two-digit offset hours")?;
            c.eat(b':');
            let minutes = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.digits(2, 2, "two-digit offset minutes")?.0
            } else {
                0
            };
            if minutes > 59 {
                return Err(format!("has offset minutes {minutes}; expected 00-59"));
            }
            // Bounded by the digit counts: at most 99 * 60 + 59.
            let total = (hours * 60 + minutes) as i32;
            if total > MAX_OFFSET_MINUTES {
                return Err(format!(
                    "has offset {hours:02}:{minutes:02}; expected at most 14:00"
                ));
            }
            Some(if sign == b'-' { -total } else { total })
        }
        Some(_) => None,
    };
    if c.at != c.bytes.len() {
        return Err(format!(
            "has unexpected text at position {}; expected nothing, 'Z' or an offset such as -06:00",
            c.at + 1
        ));
    }
    Ok((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millis,
        },
        offset,
    ))
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `year-month-day` (negative
/// before 1970). Howard Hinnant's `days_from_civil`: the year is counted from March,
/// so the leap day is the last day of a year, and in eras of 400 years (146,097 days).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // 0..=399
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468 // 719,468 days from 0000-03-01 to 1970-01-01
}

/// Day of the week of a day count from [`days_from_civil`]: 0 = Sunday … 6 = Saturday
/// (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> u32 {
    // In 0..7 by rem_euclid.
    (days + 4).rem_euclid(7) as u32
}

/// The day of the month of the `n`-th (1-based) Sunday of `month` in `year`.
fn nth_sunday(year: i64, month: u32, n: u32) -> u32 {
    let first = weekday(days_from_civil(year, month, 1));
    1 + (7 - first) % 7 + 7 * (n - 1)
}

/// A facility's time zone: standard offset and whether US daylight saving applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    /// Standard time's offset from UTC, minutes (e.g. -360 for Central).
    pub standard_offset_minutes: i32,
    /// Daylight saving time applies (one hour ahead from the second Sunday of March,
    /// 2:00, to the first Sunday of November, 2:00, local; the rule since 2007).
    pub daylight_saving: bool,
}

impl Zone {
    /// The offset in effect at a local wall-clock time. The hour skipped in March
    /// (2:00–2:59) is read as daylight time; the hour repeated in November (1:00–1:59)
    /// as daylight time too (its first occurrence), since the text cannot tell.
    fn offset_at(&self, local: &Civil) -> i32 {
        if !self.daylight_saving {
            return self.standard_offset_minutes;
        }
        let year = local.year;
        let at = local.as_utc_ms();
        let start = days_from_civil(year, 3, nth_sunday(year, 3, 2)) * DAY_MS + 2 * 3_600_000;
        let end = days_from_civil(year, 11, nth_sunday(year, 11, 1)) * DAY_MS + 2 * 3_600_000;
        if (start..end).contains(&at) {
            self.standard_offset_minutes + 60
        } else {
            self.standard_offset_minutes
        }
    }

    /// The offset in effect at a local wall-clock time given as
    /// `(year, month, day, hour, minute)`.
    pub fn offset_at_local(&self, year: i64, month: u32, day: u32, hour: u32, minute: u32) -> i32 {
        self.offset_at(&Civil {
            year,
            month,
            day,
            hour,
            minute,
            second: 0,
            millis: 0,
        })
    }
}

/// The zone of a USPS state or territory abbreviation (case ignored). States split
/// between zones take the zone where most of their people live: Florida, Indiana,
/// Kentucky and Michigan Eastern; Tennessee, Kansas, Nebraska, North Dakota, South
/// Dakota and Texas Central; Idaho Mountain; Oregon and Nevada Pacific; Alaska Alaska
/// time (the western Aleutians are an hour behind). Arizona observes no daylight
/// saving (the Navajo Nation does; it is the smaller part). The Federated States of
/// Micronesia are taken as UTC+10 (Chuuk and Yap; Pohnpei and Kosrae are UTC+11).
/// Military "states" AA, AE and AP have no zone: `None`, as for anything unknown.
pub fn state_zone(state: &str) -> Option<Zone> {
    const EASTERN: (i32, bool) = (-300, true);
    const CENTRAL: (i32, bool) = (-360, true);
    const MOUNTAIN: (i32, bool) = (-420, true);
    const PACIFIC: (i32, bool) = (-480, true);
    let state = state.trim().to_ascii_uppercase();
    let (standard_offset_minutes, daylight_saving) = match state.as_str() {
        "CT" | "DC" | "DE" | "FL" | "GA" | "IN" | "KY" | "MA" | "MD" | "ME" | "MI" | "NC"
        | "NH" | "NJ" | "NY" | "OH" | "PA" | "RI" | "SC" | "VA" | "VT" | "WV" => EASTERN,
        "AL" | "AR" | "IA" | "IL" | "KS" | "LA" | "MN" | "MO" | "MS" | "ND" | "NE" | "OK"
        | "SD" | "TN" | "TX" | "WI" => CENTRAL,
        "CO" | "ID" | "MT" | "NM" | "UT" | "WY" => MOUNTAIN,
        "AZ" => (-420, false),
        "CA" | "NV" | "OR" | "WA" => PACIFIC,
        "AK" => (-540, true),
        "HI" => (-600, false),
        "PR" | "VI" => (-240, false),
        "GU" | "MP" => (600, false),
        "AS" => (-660, false),
        "FM" => (600, false),
        "MH" => (720, false),
        "PW" => (540, false),
        _ => return None,
    };
    Some(Zone {
        standard_offset_minutes,
        daylight_saving,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn object(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn feed_event() -> Map<String, Value> {
        object(
            r#"{"imb": "0027012345612345678960601123456",
                "imbTrackingCode": "00270123456123456789",
                "routingCodeImbMatchingPortion": "60601123456",
                "scanDatetime": "2026-11-20 08:15:00",
                "scanEventCode": 918,
                "handlingEventType": "L",
                "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
                "machineName": "DBCS-042",
                "scanFacilityName": "CHICAGO IL P&DC",
                "scanFacilityState": "IL",
                "scanFacilityZip": 60607,
                "scanLocaleKey": "1234567",
                "somethingNew": {"nested": true}}"#,
        )
    }

    #[test]
    fn feed_event_reads_and_checks() {
        let raw = RawScan::from_json(&feed_event()).unwrap();
        assert_eq!(raw.event_code.as_deref(), Some("918"));
        assert_eq!(raw.facility_zip.as_deref(), Some("60607"));
        let scan = Scan::from_raw(raw, ScanSource::Push).unwrap();
        assert_eq!(scan.tracking, "00270123456123456789");
        assert_eq!(scan.routing, "60601123456");
        assert_eq!(scan.scanned_at.local, "2026-11-20T08:15:00");
        // November 20 is after the first Sunday of November: Central standard time.
        assert_eq!(scan.scanned_at.utc_offset_minutes, Some(-360));
        assert!(scan.scanned_at.inferred);
        assert_eq!(
            scan.scanned_at.unix_ms,
            (days_from_civil(2026, 11, 20) * 86_400 + 14 * 3600 + 15 * 60) * 1000
        );
    }

    #[test]
    fn pull_spelling_reads_the_same() {
        let pull = object(
            r#"{"scan_date_time": "2026-11-20T08:15:00", "scan_event_code": "918",
                "machine_name": "DBCS-042", "scan_facility_zip": "60607",
                "scan_facility_locale_key": "1234567", "scan_facility_state": "IL",
                "mail_phase": "Phase 3c - Destination Sequenced Carrier Sortation",
                "imb": "0027012345612345678960601"}"#,
        );
        let pull = Scan::from_raw(RawScan::from_json(&pull).unwrap(), ScanSource::Pull).unwrap();
        let push =
            Scan::from_raw(RawScan::from_json(&feed_event()).unwrap(), ScanSource::Push).unwrap();
        assert_eq!(pull.routing, "60601");
        assert_eq!(pull.dedup_key(), push.dedup_key());
    }

    #[test]
    fn two_spellings_must_agree() {
        let mut o = feed_event();
        o.insert("scan_event_code".into(), Value::from("918"));
        assert!(RawScan::from_json(&o).is_ok());
        o.insert("scan_event_code".into(), Value::from("919"));
        let err = RawScan::from_json(&o).unwrap_err();
        assert_eq!(
            err.to_string(),
            "scan field `scan_event_code` is invalid: \"919\" disagrees with `scanEventCode` \
             (\"918\"); send one value"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut o = feed_event();
        o.insert("machineName".into(), Value::Array(vec![]));
        assert_eq!(
            RawScan::from_json(&o).unwrap_err(),
            ScanError::Invalid {
                field: "machineName",
                reason: "expected text or a number, found a list".into()
            }
        );
    }

    #[test]
    fn checks_name_the_field_and_rule() {
        let cases: &[(&str, Value, &str)] = &[
            // 0: short tracking code
            (
                "imbTrackingCode",
                Value::from("0027012345612345678"),
                "scan field `imbTrackingCode` is invalid: has 19 digits; expected 20",
            ),
            // 1: barcode ID 05
            (
                "imbTrackingCode",
                Value::from("05270123456123456789"),
                "scan field `imbTrackingCode` is invalid: barcode ID 05 has a second digit \
                 above 4; expected 00-04, 10-14, … 90-94",
            ),
            // 2: routing of 7 digits
            (
                "routingCodeImbMatchingPortion",
                Value::from("1234567"),
                "scan field `routingCodeImbMatchingPortion` is invalid: has 7 digits; \
                 expected 0, 5, 9 or 11",
            ),
            // 3: event code with punctuation
            (
                "scanEventCode",
                Value::from("91-8"),
                "scan field `scanEventCode` is invalid: has '-'; expected letters and digits only",
            ),
            // 4: control character
            (
                "machineName",
                Value::from("DBCS\u{7}042"),
                "scan field `machineName` is invalid: has control character U+0007 at position 5",
            ),
            // 5: bad month
            (
                "scanDatetime",
                Value::from("2026-13-20 08:15:00"),
                "scan field `scanDatetime` is invalid: \"2026-13-20 08:15:00\" has month 13; \
                 expected 1-12",
            ),
        ];
        for (i, (field, value, message)) in cases.iter().enumerate() {
            let mut o = feed_event();
            o.insert((*field).into(), value.clone());
            let err =
                Scan::from_raw(RawScan::from_json(&o).unwrap(), ScanSource::Push).unwrap_err();
            assert_eq!(err.to_string(), *message, "case {i}");
        }
        let mut o = feed_event();
        o.remove("imb");
        o.remove("imbTrackingCode");
        let err = Scan::from_raw(RawScan::from_json(&o).unwrap(), ScanSource::Push).unwrap_err();
        assert_eq!(err, ScanError::Missing { field: "imb" });
        let mut o = feed_event();
        o.insert("scanFacilityName".into(), Value::from("x".repeat(257)));
        let err = Scan::from_raw(RawScan::from_json(&o).unwrap(), ScanSource::Push).unwrap_err();
        assert!(err.to_string().contains("has 257 characters; at most 256"));
    }

    #[test]
    fn time_forms() {
        /// Text, facility state, local time, offset, inferred.
        type Case<'a> = (&'a str, Option<&'a str>, &'a str, Option<i32>, bool);
        let cases: &[Case] = &[
            (
                "2026-11-20 08:15:00",
                None,
                "2026-11-20T08:15:00",
                None,
                false,
            ),
            (
                "2026-11-20T08:15:00Z",
                Some("IL"),
                "2026-11-20T08:15:00",
                Some(0),
                false,
            ),
            (
                "2026-07-04T08:15:00.250-05:00",
                None,
                "2026-07-04T08:15:00",
                Some(-300),
                false,
            ),
            (
                "2026-07-04 08:15:00-0500",
                None,
                "2026-07-04T08:15:00",
                Some(-300),
                false,
            ),
            (
                "07/04/2026 08:15:00",
                Some("ny"),
                "2026-07-04T08:15:00",
                Some(-240),
                true,
            ),
            (
                "7/4/2026 8:15:00 PM",
                Some("AZ"),
                "2026-07-04T20:15:00",
                Some(-420),
                true,
            ),
            (
                "01/05/2026 12:05:09 AM",
                Some("HI"),
                "2026-01-05T00:05:09",
                Some(-600),
                true,
            ),
            (
                "01/05/2026 12:05 PM",
                Some("XX"),
                "2026-01-05T12:05:00",
                None,
                false,
            ),
        ];
        for (i, (text, state, local, offset, inferred)) in cases.iter().enumerate() {
            let t = ScanTime::parse(text, *state).unwrap();
            assert_eq!(t.local, *local, "case {i}");
            assert_eq!(t.utc_offset_minutes, *offset, "case {i}");
            assert_eq!(t.inferred, *inferred, "case {i}");
            assert_eq!(t.text, *text);
        }
        let t = ScanTime::parse("2026-07-04T08:15:00.250-05:00", None).unwrap();
        assert_eq!(
            t.unix_ms,
            (days_from_civil(2026, 7, 4) * 86_400 + 13 * 3600 + 15 * 60) * 1000 + 250
        );
        for bad in [
            "",
            "2026-02-29 00:00:00",
            "2026-11-20",
            "2026-11-20 24:00:00",
            "2026-11-20 08:15:00 +15:00",
            "2026-11-20 08:15:00 CST",
            "13/01/2026 08:00:00",
            "1/1/2026 13:00 PM",
        ] {
            assert!(ScanTime::parse(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn daylight_saving_edges() {
        let eastern = state_zone("NY").unwrap();
        // 2026: DST from Sunday March 8 to Sunday November 1.
        assert_eq!(eastern.offset_at_local(2026, 3, 8, 1, 59), -300);
        assert_eq!(eastern.offset_at_local(2026, 3, 8, 2, 0), -240);
        assert_eq!(eastern.offset_at_local(2026, 11, 1, 1, 59), -240);
        assert_eq!(eastern.offset_at_local(2026, 11, 1, 2, 0), -300);
        // 2007, the first year of the rule: March 11 to November 4.
        assert_eq!(eastern.offset_at_local(2007, 3, 11, 3, 0), -240);
        assert_eq!(eastern.offset_at_local(2007, 3, 10, 12, 0), -300);
        assert_eq!(eastern.offset_at_local(2007, 11, 4, 0, 30), -240);
        assert_eq!(eastern.offset_at_local(2007, 11, 4, 2, 30), -300);
        assert_eq!(state_zone("AA"), None);
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(days_from_civil(1970, 1, 1)), 4);
        assert_eq!(weekday(days_from_civil(2026, 11, 26)), 4); // a Thursday
        assert_eq!(weekday(days_from_civil(2000, 2, 29)), 2); // a Tuesday
    }

    /// Counts days the slow way: whole years, then whole months, then days.
    fn brute_force_days(year: i64, month: u32, day: u32) -> i64 {
        let mut days = 0i64;
        if year >= 1970 {
            for y in 1970..year {
                days += if is_leap_year(y) { 366 } else { 365 };
            }
        } else {
            for y in year..1970 {
                days -= if is_leap_year(y) { 366 } else { 365 };
            }
        }
        for m in 1..month {
            days += i64::from(days_in_month(year, m));
        }
        days + i64::from(day) - 1
    }

    fn civil_strategy() -> impl Strategy<Value = (i64, u32, u32, u32, u32, u32, u32)> {
        (
            1i64..=9999,
            1u32..=12,
            1u32..=31,
            0u32..24,
            0u32..60,
            0u32..60,
            0u32..1000,
        )
            .prop_map(|(y, m, d, h, mi, s, ms)| (y, m, d.min(days_in_month(y, m)), h, mi, s, ms))
    }

    proptest! {
        #[test]
        fn days_from_civil_counts_like_brute_force(
            year in 1i64..=9999, month in 1u32..=12, day in 1u32..=31
        ) {
            let day = day.min(days_in_month(year, month));
            prop_assert_eq!(days_from_civil(year, month, day), brute_force_days(year, month, day));
        }

        #[test]
        fn parse_then_format_round_trips(
            (y, m, d, h, mi, s, ms) in civil_strategy(),
            offset in -(14 * 60)..=(14 * 60i32),
            state in prop::sample::select(vec!["IL", "AZ", "ny", "GU", "ZZ", ""]),
            form in 0u8..4,
        ) {
            let sign = if offset < 0 { '-' } else { '+' };
            let abs = offset.unsigned_abs();
            let text = match form {
                0 => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{sign}{:02}:{:02}",
                             abs / 60, abs % 60),
                1 => format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}"),
                2 => format!("{m}/{d}/{y:04} {}:{mi:02}:{s:02}.{ms:03} {}",
                             if h % 12 == 0 { 12 } else { h % 12 }, if h < 12 { "AM" } else { "PM" }),
                _ => format!("{m:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02}.{ms:03}{sign}{:02}{:02}",
                             abs / 60, abs % 60),
            };
            let state = Some(state).filter(|s| !s.is_empty());
            let t = ScanTime::parse(&text, state).unwrap();
            prop_assert_eq!(&t.local, &format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}"));
            let local_ms = ((days_from_civil(y, m, d) * 24 + i64::from(h)) * 60 + i64::from(mi))
                * 60_000 + i64::from(s) * 1000 + i64::from(ms);
            prop_assert_eq!(t.unix_ms, local_ms - i64::from(t.utc_offset_minutes.unwrap_or(0)) * 60_000);
            if form == 0 || form == 3 {
                prop_assert_eq!(t.utc_offset_minutes, Some(offset));
                prop_assert!(!t.inferred);
            }
            let again = ScanTime::parse(&t.to_rfc3339(), None).unwrap();
            prop_assert_eq!(&again.local, &t.local);
            prop_assert_eq!(again.utc_offset_minutes, t.utc_offset_minutes);
            prop_assert_eq!(again.unix_ms, t.unix_ms);
            prop_assert!(!again.inferred);
        }

        #[test]
        fn from_json_never_panics(
            fields in prop::collection::btree_map(
                prop::sample::select(FIELDS.iter().map(|(n, _)| *n).chain(["other"]).collect::<Vec<_>>()),
                prop_oneof![
                    any::<String>().prop_map(Value::from),
                    "[0-9]{0,32}".prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    any::<f64>().prop_map(Value::from),
                ],
                0..20,
            )
        ) {
            let object: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Ok(raw) = RawScan::from_json(&object) {
                let _ = Scan::from_raw(raw, ScanSource::Push);
            }
        }

        #[test]
        fn time_parse_never_panics(text in "\\PC{0,40}", state in "[A-Za-z]{0,3}") {
            let _ = ScanTime::parse(&text, Some(&state));
        }
    }
}
