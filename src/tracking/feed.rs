//! IV-MTR data feeds: a pushed body or a delivered file → scans.
//!
//! A feed body is JSON, gzip-compressed JSON, or a zip of JSON entries (each possibly
//! gzip-compressed again), told apart by their first bytes (gzip `1f 8b`, zip
//! `PK\x03\x04`). The JSON is one message object (`msgGrpId`, `msgSerNbr`,
//! `totMsgCnt`, `recCnt`, `totRecCnt`, `events`) or a list of them
//! (`../shared/reference/iv-tracking.md` §3: the wrapper is confirmed by several
//! clients, the header fields beyond `msgGrpId` by one).
//!
//! Each event is a piece scan (it has `imb` or `imbTrackingCode`), read by
//! [`RawScan::from_json`] and checked by [`Scan::from_raw`]; a tray or container event
//! (`imtb`, `imcb`, no IMb) is counted and skipped. Anything else wrong refuses the whole
//! body, naming the zip entry, message and event: [`parse_feed_body`] returns every
//! message or an error, never part of a body, so a feed is either stored whole or can be
//! sent again whole.
//!
//! Bounds: the decompressed size ([`FeedLimits::max_bytes`], read with a `take` one byte
//! past the limit, so a gzip or zip bomb stops there), the number of events (counted
//! while parsing, before they are kept) and of zip entries. Only the fields a scan uses
//! are kept from each event; unknown fields are skipped without being stored, and
//! serde_json's recursion limit refuses deep nesting.

use std::cell::Cell;
use std::fmt;
use std::io::{Cursor, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::scan::{RawScan, Scan, ScanError, ScanSource};

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
    /// With [`FeedLimits::skip_invalid_events`]: why each bad event was left out
    /// (empty otherwise: a bad event refuses the body).
    pub invalid: Vec<String>,
}

/// How much of a feed body is read before it is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLimits {
    /// Total bytes after decompression (all zip entries together).
    pub max_bytes: u64,
    /// Events in the whole body.
    pub max_events: usize,
    /// Entries in a zip file.
    pub max_zip_entries: usize,
    /// Not a limit but the one leniency: `false` (the default, and always for pushed
    /// feeds) refuses the whole body for one bad event; `true` (`labelctl tracking
    /// import --skip-invalid`, an operator's choice) keeps the good events and lists
    /// the bad ones in [`FeedMessage::invalid`]. A body that is not a feed at all is
    /// refused either way.
    pub skip_invalid_events: bool,
}

impl Default for FeedLimits {
    /// 128 MiB (USPS bodies run to ~100 MB: facts §3), 2,000,000 events, 1,000 zip
    /// entries.
    fn default() -> Self {
        FeedLimits {
            max_bytes: 128 * 1024 * 1024,
            max_events: 2_000_000,
            max_zip_entries: 1_000,
            skip_invalid_events: false,
        }
    }
}

/// Where in a body something is wrong: the zip entry (if any) and the message (if the
/// body holds a list of them), 1-based.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedPlace {
    /// The zip entry's name.
    pub entry: Option<String>,
    /// The message's position in a list of messages, from 1.
    pub message: Option<usize>,
}

impl fmt::Display for FeedPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(entry) = &self.entry {
            write!(f, "zip entry `{entry}`: ")?;
        }
        if let Some(message) = self.message {
            write!(f, "message {message}: ")?;
        }
        Ok(())
    }
}

/// A feed body that cannot be used. Nothing of it is stored; fix the cause and have
/// it sent again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The JSON does not parse.
    #[error("{place}feed file is not JSON: line {line} column {column}: {reason} (check that the whole file arrived)")]
    NotJson {
        /// Where.
        place: FeedPlace,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        reason: String,
    },
    /// The JSON is not shaped like an IV-MTR feed.
    #[error("{place}feed is not an IV-MTR feed: {reason}")]
    Shape {
        /// Where.
        place: FeedPlace,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// A message header field is wrong.
    #[error("{place}message field `{field}` is invalid: {reason}")]
    Header {
        /// Where.
        place: FeedPlace,
        /// The field, as the feed spells it.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `recCnt` does not match the events the message holds.
    #[error("{place}message says `recCnt` {expected} but holds {found} events (the file is incomplete; ask USPS to resend it)")]
    RecordCount {
        /// Where.
        place: FeedPlace,
        /// `recCnt`.
        expected: u64,
        /// Events found.
        found: u64,
    },
    /// An event is not a usable piece scan.
    #[error("{place}event {index}: {source}")]
    Event {
        /// Where.
        place: FeedPlace,
        /// The event's position in its message, from 1.
        index: usize,
        /// What is wrong with it.
        source: ScanError,
    },
    /// An event is neither a piece scan nor a tray or container event.
    #[error("{place}event {index}: {reason}")]
    EventShape {
        /// Where.
        place: FeedPlace,
        /// The event's position in its message, from 1.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Decompressed, the body is larger than the limit.
    #[error("feed is larger than {limit} bytes after decompression (raise the limit only if USPS really sends such files)")]
    TooLarge {
        /// [`FeedLimits::max_bytes`].
        limit: u64,
    },
    /// More events than the limit.
    #[error("feed has more than {limit} events (split the file, or raise the limit)")]
    TooManyEvents {
        /// [`FeedLimits::max_events`].
        limit: usize,
    },
    /// A zip with more entries than the limit.
    #[error("feed zip has {found} entries; at most {limit} are read")]
    TooManyEntries {
        /// Entries in the zip.
        found: usize,
        /// [`FeedLimits::max_zip_entries`].
        limit: usize,
    },
    /// gzip data that does not decompress.
    #[error("{place}feed is gzip-compressed but does not decompress: {source} (the file may be truncated)")]
    Gzip {
        /// Where.
        place: FeedPlace,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// A zip file that cannot be read.
    #[error("{place}feed is a zip file but cannot be read: {reason} (the file may be truncated)")]
    Zip {
        /// Where (the entry, when one entry is the trouble).
        place: FeedPlace,
        /// The zip reader's error.
        reason: String,
    },
    /// A zip without any file in it.
    #[error("feed zip holds no file")]
    EmptyZip,
}

/// The gzip magic number (RFC 1952 §2.3.1).
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// A zip local file header's signature (PKWARE APPNOTE §4.3.7).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// An empty zip: only the end-of-central-directory record (APPNOTE §4.3.16).
const ZIP_EMPTY_MAGIC: &[u8] = b"PK\x05\x06";

/// Reads a feed body (JSON, gzip or zip, by magic) into its messages, all or nothing.
/// Scans get `source`. See the module doc for the format and the bounds.
pub fn parse_feed_body(
    body: &[u8],
    source: ScanSource,
    limits: &FeedLimits,
) -> Result<Vec<FeedMessage>, FeedError> {
    let mut budget = Budget {
        bytes_left: limits.max_bytes,
        events_left: limits.max_events,
        limits,
    };
    if body.starts_with(ZIP_MAGIC) || body.starts_with(ZIP_EMPTY_MAGIC) {
        return parse_zip(body, source, &mut budget);
    }
    let place = FeedPlace::default();
    let json = inflate_if_gzip(body, &place, &mut budget)?;
    parse_json(&json, source, &place, &mut budget)
}

/// What is left of the limits while a body is read.
struct Budget<'a> {
    /// Decompressed bytes still allowed.
    bytes_left: u64,
    /// Events still allowed.
    events_left: usize,
    /// The limits, for error messages.
    limits: &'a FeedLimits,
}

impl Budget<'_> {
    /// Takes `n` bytes from the budget.
    fn take_bytes(&mut self, n: u64) -> Result<(), FeedError> {
        if n > self.bytes_left {
            return Err(FeedError::TooLarge {
                limit: self.limits.max_bytes,
            });
        }
        self.bytes_left -= n;
        Ok(())
    }

    /// Reads all of `reader`, at most the bytes left (one more is read to tell "just at
    /// the limit" from "over it").
    fn read_bounded(&mut self, reader: impl Read) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        reader
            .take(self.bytes_left.saturating_add(1))
            .read_to_end(&mut out)?;
        Ok(out)
    }
}

/// `data` itself, or its gzip decompression (one or more gzip members), both charged to
/// the byte budget.
fn inflate_if_gzip<'d>(
    data: &'d [u8],
    place: &FeedPlace,
    budget: &mut Budget<'_>,
) -> Result<std::borrow::Cow<'d, [u8]>, FeedError> {
    if !data.starts_with(GZIP_MAGIC) {
        budget.take_bytes(data.len() as u64)?;
        return Ok(std::borrow::Cow::Borrowed(data));
    }
    let out = budget
        .read_bounded(flate2::read::MultiGzDecoder::new(data))
        .map_err(|source| FeedError::Gzip {
            place: place.clone(),
            source,
        })?;
    budget.take_bytes(out.len() as u64)?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Every file entry of a zip, in order; directories, symbolic links and macOS
/// resource forks (`__MACOSX/`) are skipped.
fn parse_zip(
    body: &[u8],
    source: ScanSource,
    budget: &mut Budget<'_>,
) -> Result<Vec<FeedMessage>, FeedError> {
    let zip_err = |place: FeedPlace| {
        move |e: zip::result::ZipError| FeedError::Zip {
            place,
            reason: e.to_string(),
        }
    };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(body)).map_err(zip_err(FeedPlace::default()))?;
    if archive.len() > budget.limits.max_zip_entries {
        return Err(FeedError::TooManyEntries {
            found: archive.len(),
            limit: budget.limits.max_zip_entries,
        });
    }
    let mut messages = Vec::new();
    let mut files = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err(FeedPlace::default()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if !entry.is_file() || name.starts_with("__MACOSX/") {
            continue;
        }
        files += 1;
        let place = FeedPlace {
            entry: Some(name),
            message: None,
        };
        let data = budget
            .read_bounded(&mut entry)
            .map_err(|e| FeedError::Zip {
                place: place.clone(),
                reason: e.to_string(),
            })?;
        drop(entry);
        if data.len() as u64 > budget.bytes_left {
            return Err(FeedError::TooLarge {
                limit: budget.limits.max_bytes,
            });
        }
        let json = if data.starts_with(GZIP_MAGIC) {
            // Not charged twice: only the inflated text counts.
            let mut inner = Budget {
                bytes_left: budget.bytes_left,
                events_left: budget.events_left,
                limits: budget.limits,
            };
            let json = inflate_if_gzip(&data, &place, &mut inner)?.into_owned();
            budget.bytes_left = inner.bytes_left;
            json
        } else {
            budget.take_bytes(data.len() as u64)?;
            data
        };
        messages.extend(parse_json(&json, source, &place, budget)?);
    }
    if files == 0 {
        return Err(FeedError::EmptyZip);
    }
    Ok(messages)
}

/// A message as read from JSON, before its events are checked.
struct MessageJson {
    group_id: Option<Value>,
    message_serial: Option<Value>,
    total_messages: Option<Value>,
    record_count: Option<Value>,
    events: Option<Vec<EventJson>>,
}

/// An event as read from JSON: only the fields a scan uses, plus whether it is a tray
/// or container event; `None` when the event is not an object.
struct EventJson {
    fields: Option<Map<String, Value>>,
    /// `imtb` or `imcb` was present.
    handling_unit: bool,
}

/// Reads one body of JSON: a message or a list of messages.
fn parse_json(
    json: &[u8],
    source: ScanSource,
    place: &FeedPlace,
    budget: &mut Budget<'_>,
) -> Result<Vec<FeedMessage>, FeedError> {
    // A UTF-8 byte-order mark is allowed before the JSON.
    let json = json.strip_prefix(b"\xef\xbb\xbf").unwrap_or(json);
    let events_left = Cell::new(budget.events_left);
    let too_many = Cell::new(false);
    let shape_error: Cell<Option<String>> = Cell::new(None);
    let ctx = Ctx {
        events_left: &events_left,
        too_many: &too_many,
        shape_error: &shape_error,
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = TopSeed(ctx)
        .deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top));
    let top = match parsed {
        Ok(top) => top,
        Err(_) if too_many.get() => {
            return Err(FeedError::TooManyEvents {
                limit: budget.limits.max_events,
            })
        }
        Err(_) if shape_error.take().is_some() => {
            let reason = shape_error_text(json);
            return Err(FeedError::Shape {
                place: place.clone(),
                reason,
            });
        }
        Err(e) => return Err(not_json(place, &e)),
    };
    budget.events_left = events_left.get();
    let (list, raw_messages) = match top {
        Top::One(message) => (false, vec![message]),
        Top::Many(messages) => (true, messages),
    };
    let mut out = Vec::with_capacity(raw_messages.len());
    for (i, message) in raw_messages.into_iter().enumerate() {
        let place = FeedPlace {
            entry: place.entry.clone(),
            message: list.then_some(i + 1),
        };
        out.push(check_message(
            message,
            source,
            &place,
            budget.limits.skip_invalid_events,
        )?);
    }
    Ok(out)
}

/// Re-reads the body as a plain value to say why it is not shaped like a feed (only
/// reached for a wrong shape, which is rare; the body already parsed once).
fn shape_error_text(json: &[u8]) -> String {
    match serde_json::from_slice::<IgnoredShape>(json) {
        Ok(IgnoredShape(reason)) => reason,
        Err(_) => "expected an object with an `events` list, or a list of such objects".into(),
    }
}

/// The shape of a top level that is not a feed, described.
struct IgnoredShape(String);

impl<'de> serde::Deserialize<'de> for IgnoredShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let what = |v: &Value| match v {
            Value::Null => "null",
            Value::Bool(_) => "true or false",
            Value::Number(_) => "a number",
            Value::String(_) => "text",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        };
        let reason = match &value {
            Value::Object(o) => match o.get("events") {
                None => "the top-level object has no `events` list".to_owned(),
                Some(e) => format!("`events` is {}; expected a list of events", what(e)),
            },
            Value::Array(items) => match items.iter().position(|m| !m.is_object()) {
                Some(i) => format!(
                    "item {} of the top-level list is {}; expected message objects",
                    i + 1,
                    what(&items[i])
                ),
                None => "a message in the top-level list has no `events` list".to_owned(),
            },
            other => format!(
                "the top level is {}; expected an object with an `events` list",
                what(other)
            ),
        };
        Ok(IgnoredShape(reason))
    }
}

/// serde_json's error as [`FeedError::NotJson`], without its own "at line …" suffix.
fn not_json(place: &FeedPlace, e: &serde_json::Error) -> FeedError {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let reason = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    FeedError::NotJson {
        place: place.clone(),
        line: e.line(),
        column: e.column(),
        reason,
    }
}

/// Checks a message's header and turns its events into scans.
fn check_message(
    message: MessageJson,
    source: ScanSource,
    place: &FeedPlace,
    lenient: bool,
) -> Result<FeedMessage, FeedError> {
    let group_id = match message.group_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(FeedError::Header {
                place: place.clone(),
                field: "msgGrpId",
                reason: "expected text or a number".into(),
            })
        }
    };
    if let Some(id) = &group_id {
        if id.chars().count() > 256 || id.chars().any(char::is_control) {
            return Err(FeedError::Header {
                place: place.clone(),
                field: "msgGrpId",
                reason: "expected at most 256 characters without control characters".into(),
            });
        }
    }
    let count = |field: &'static str, value: Option<Value>| -> Result<Option<u64>, FeedError> {
        whole_number(value).map_err(|reason| FeedError::Header {
            place: place.clone(),
            field,
            reason,
        })
    };
    let message_serial = count("msgSerNbr", message.message_serial)?;
    let total_messages = count("totMsgCnt", message.total_messages)?;
    let record_count = count("recCnt", message.record_count)?;
    let Some(events) = message.events else {
        return Err(FeedError::Shape {
            place: place.clone(),
            reason: "a message has no `events` list".into(),
        });
    };
    if let Some(expected) = record_count {
        let found = events.len() as u64;
        if expected != found {
            return Err(FeedError::RecordCount {
                place: place.clone(),
                expected,
                found,
            });
        }
    }
    let mut scans = Vec::with_capacity(events.len());
    let mut skipped = 0u64;
    let mut invalid = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let index = i + 1;
        let checked = match event.fields {
            None => Err(FeedError::EventShape {
                place: place.clone(),
                index,
                reason: "is not an object".into(),
            }),
            Some(fields) => {
                let is_piece = ["imb", "imbTrackingCode"]
                    .iter()
                    .any(|k| fields.get(*k).is_some_and(|v| !v.is_null()));
                if !is_piece && event.handling_unit {
                    skipped += 1;
                    continue;
                }
                if is_piece {
                    RawScan::from_json(&fields)
                        .and_then(|raw| Scan::from_raw(raw, source))
                        .map_err(|source| FeedError::Event {
                            place: place.clone(),
                            index,
                            source,
                        })
                } else {
                    Err(FeedError::EventShape {
                        place: place.clone(),
                        index,
                        reason: "has no `imb`, `imbTrackingCode`, `imtb` or `imcb`; expected \
                                 a piece, tray or container event"
                            .into(),
                    })
                }
            }
        };
        match checked {
            Ok(scan) => scans.push(scan),
            Err(e) if lenient => invalid.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok(FeedMessage {
        group_id,
        message_serial,
        total_messages,
        scans,
        skipped,
        invalid,
    })
}

/// A count field: a non-negative whole number, or its digits as text.
fn whole_number(value: Option<Value>) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a whole number of 0 or more")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{:?} is not a whole number of 0 or more", shown(&s))),
        Some(_) => Err("expected a whole number".into()),
    }
}

/// At most 40 characters of `text`, for a message.
fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

// ---------------------------------------------------------------------------
// Streaming JSON: the message and event shapes, read with seeds so the event limit
// applies while parsing and unknown fields are skipped without being kept.

/// The shared state of one parse.
#[derive(Clone, Copy)]
struct Ctx<'c> {
    /// Events still allowed; the parse stops when it would go below zero.
    events_left: &'c Cell<usize>,
    /// Set when the parse stopped on the event limit.
    too_many: &'c Cell<bool>,
    /// Set when the parse stopped on a wrong shape (the text is filled in later).
    shape_error: &'c Cell<Option<String>>,
}

impl Ctx<'_> {
    fn shape<E: serde::de::Error>(&self, what: &str) -> E {
        self.shape_error.set(Some(what.to_owned()));
        E::custom(what)
    }
}

/// The top level: one message or a list.
enum Top {
    One(MessageJson),
    Many(Vec<MessageJson>),
}

struct TopSeed<'c>(Ctx<'c>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with an `events` list, or a list of such objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
        MessageSeed(self.0).visit_map(map).map(Top::One)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        let mut messages = Vec::new();
        while let Some(message) = seq.next_element_seed(MessageSeed(self.0))? {
            messages.push(message);
        }
        Ok(Top::Many(messages))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Top, E> {
        Err(self.0.shape("top level"))
    }
}

struct MessageSeed<'c>(Ctx<'c>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = MessageJson;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MessageJson, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = MessageJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MessageJson, A::Error> {
        let mut message = MessageJson {
            group_id: None,
            message_serial: None,
            total_messages: None,
            record_count: None,
            events: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "events" => message.events = Some(map.next_value_seed(EventsSeed(self.0))?),
                "msgGrpId" => message.group_id = Some(map.next_value::<Value>()?),
                "msgSerNbr" => message.message_serial = Some(map.next_value::<Value>()?),
                "totMsgCnt" => message.total_messages = Some(map.next_value::<Value>()?),
                "recCnt" => message.record_count = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(message)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<MessageJson, A::Error> {
        Err(self.0.shape("message"))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<MessageJson, E> {
        Err(self.0.shape("message"))
    }
}

struct EventsSeed<'c>(Ctx<'c>);

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = Vec<EventJson>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<EventJson>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = Vec<EventJson>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<EventJson>, A::Error> {
        let mut events = Vec::new();
        loop {
            let left = self.0.events_left.get();
            if left == 0 {
                // One more element would be over the limit: stop only if there is one.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.0.too_many.set(true);
                    return Err(serde::de::Error::custom("too many events"));
                }
                return Ok(events);
            }
            match seq.next_element_seed(EventSeed)? {
                Some(event) => {
                    self.0.events_left.set(left - 1);
                    events.push(event);
                }
                None => return Ok(events),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<EventJson>, A::Error> {
        Err(self.0.shape("events"))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<EventJson>, E> {
        Err(self.0.shape("events"))
    }
}

struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = EventJson;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventJson, D::Error> {
        d.deserialize_any(self)
    }
}

/// An event that is not an object is kept as "not an object" and refused later with
/// its index.
impl<'de> Visitor<'de> for EventSeed {
    type Value = EventJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventJson, A::Error> {
        let mut fields = Map::new();
        let mut handling_unit = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if RawScan::is_field(&key) {
                let value = map.next_value::<Value>()?;
                fields.insert(key.into_owned(), value);
            } else {
                map.next_value::<IgnoredAny>()?;
                if key == "imtb" || key == "imcb" {
                    handling_unit = true;
                }
            }
        }
        Ok(EventJson {
            fields: Some(fields),
            handling_unit,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventJson, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<EventJson, E> {
        Ok(not_an_object())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<EventJson, E> {
        Ok(not_an_object())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<EventJson, E> {
        Ok(not_an_object())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<EventJson, E> {
        Ok(not_an_object())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<EventJson, E> {
        Ok(not_an_object())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<EventJson, E> {
        Ok(not_an_object())
    }
}

fn not_an_object() -> EventJson {
    EventJson {
        fields: None,
        handling_unit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers() {
        assert_eq!(whole_number(Some(Value::from(3))), Ok(Some(3)));
        assert_eq!(whole_number(Some(Value::from(" 7 "))), Ok(Some(7)));
        assert_eq!(whole_number(Some(Value::Null)), Ok(None));
        assert!(whole_number(Some(Value::from(-1))).is_err());
        assert!(whole_number(Some(Value::from(1.5))).is_err());
        assert!(whole_number(Some(Value::from("x"))).is_err());
    }

    #[test]
    fn place_reads_well() {
        let place = FeedPlace {
            entry: Some("feed.json".into()),
            message: Some(2),
        };
        assert_eq!(place.to_string(), "zip entry `feed.json`: message 2: ");
        assert_eq!(FeedPlace::default().to_string(), "");
    }
}
