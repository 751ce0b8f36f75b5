//! The IV-MTR pull client: log in with the mailer's Business Customer Gateway user,
//! keep the token fresh, and look pieces up by IMb or by Mailer ID + serial.
//!
//! Wire facts are from `../shared/reference/iv-tracking.md` §2 (USPS's *IV-MTR API
//! Developer Toolkit* v2.5 is only readable as a table of contents; the details agree
//! across five independent working clients, and must be re-checked in USPS's CAT
//! environment):
//!
//! - §2.2 login: `POST {oauth_url}/authenticate`, JSON `username`, `password`,
//!   `grant_type` `"authorization"`, `response_type` `"token"`, `scope`, `client_id`;
//!   the answer has `access_token`, `refresh_token`, `token_type`, `expires_in`.
//!   Refresh at half-life with `POST {oauth_url}/token` (`refresh_token`, `grant_type`,
//!   `response_type`, `scope`); if that fails, log in again. OAuth errors are
//!   `{error, error_description}`.
//! - §2.3 `GET {api_url}/api/mt/get/piece/imb/{imb}` and
//!   `GET {api_url}/api/mt/get/piece/mid/{mid}/serial/{serial}[/stid/{stid}]`, with
//!   `Authorization: Bearer …`; a 401 means log in again, once.
//! - §2.4 the answer: `data { imb, expected_delivery_date, mail_class, mail_shape,
//!   start_the_clock_*, scans[] }` in snake_case; a scan has no `imb` of its own.
//! - §2.5 odd answers: 404, a `message` containing "not found", or a 200 with an empty
//!   body mean "no data (yet)"; a 200 with an HTML page is a maintenance page; 429 and
//!   5xx are retried with jittered exponential back-off.
//!
//! The client is blocking (ureq, rustls for https; plain http is allowed so tests can
//! use a local stand-in). It sleeps between tries on the calling thread; give it a stop
//! flag ([`IvClient::with_stop`]) to cut those sleeps short. Token lifetime and rate
//! limits are not documented by USPS, so both are settings. No password or token ever
//! appears in an error, a log line or `Debug` output: they are [`Secret`]s, and every
//! error text built from what the server said is scrubbed of them.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use super::credentials::{Credentials, Secret};
use super::scan::{Facility, RawScan, Scan, ScanSource};
use super::settings::TrackingSettings;

/// The `grant_type` IV-MTR wants on both token endpoints (not an OAuth standard name).
const GRANT_TYPE: &str = "authorization";
/// The `response_type` IV-MTR wants.
const RESPONSE_TYPE: &str = "token";
/// The first back-off step; it doubles per try up to `max_backoff_secs`.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// The largest answer body read (pull answers are a few kB).
const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// A `Retry-After` longer than this is reported as this (a misbehaving server must not
/// park the poller for days).
const MAX_REPORTED_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How often a back-off sleep looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
/// What an error text shows instead of a secret.
const REDACTED: &str = "[redacted]";

/// What went wrong talking to IV-MTR. No variant ever holds a password or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IvError {
    /// USPS refused the login (or a token it had just issued).
    #[error("IV-MTR login refused: {detail}; check the Business Customer Gateway user name and password and that the user has the Informed Visibility (IV-MTR) service")]
    Credentials {
        /// USPS's reason (`error: error_description`) or the HTTP status.
        detail: String,
    },
    /// Too many requests (HTTP 429) on every try.
    #[error("IV-MTR is throttling requests (HTTP 429); wait {} s before asking again, or lower `tracking.requests_per_hour`", retry_after.as_secs())]
    Throttled {
        /// How long USPS asked to wait (`Retry-After`), or labeld's back-off if it did
        /// not say.
        retry_after: Duration,
    },
    /// A 5xx, a maintenance page or a timeout on every try.
    #[error("IV-MTR is unavailable ({}): {detail}; labeld tries again later", status_text(*.status))]
    Unavailable {
        /// The last HTTP status, if there was one.
        status: Option<u16>,
        /// What the last try got.
        detail: String,
    },
    /// An answer labeld does not understand.
    #[error("IV-MTR sent an answer labeld does not understand: {detail}")]
    Protocol {
        /// What was wrong with it (never the body itself).
        detail: String,
    },
    /// The server could not be reached.
    #[error("cannot reach IV-MTR: {detail}; check the network and `tracking.oauth_url` / `tracking.api_url`")]
    Network {
        /// The transport's reason.
        detail: String,
    },
    /// A `[tracking]` setting the client cannot use.
    #[error("tracking setting `{field}`: {detail}")]
    Settings {
        /// The setting.
        field: &'static str,
        /// What is wrong and what is allowed.
        detail: String,
    },
    /// An argument that cannot be a USPS identifier (nothing was sent).
    #[error("{field} `{value}`: {detail}")]
    Input {
        /// `"imb"`, `"mailer_id"`, `"serial"` or `"stid"`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        detail: String,
    },
}

impl IvError {
    /// How long to wait before the next request, when USPS said so (HTTP 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IvError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The same request may succeed later without anyone changing anything
    /// (throttled, unavailable, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IvError::Throttled { .. } | IvError::Unavailable { .. } | IvError::Network { .. }
        )
    }

    /// Replaces every non-empty `secret` in the error's texts with `[redacted]`.
    fn redact(self, secrets: &[&str]) -> IvError {
        let scrub = |text: String| redact_text(text, secrets);
        match self {
            IvError::Credentials { detail } => IvError::Credentials {
                detail: scrub(detail),
            },
            IvError::Unavailable { status, detail } => IvError::Unavailable {
                status,
                detail: scrub(detail),
            },
            IvError::Protocol { detail } => IvError::Protocol {
                detail: scrub(detail),
            },
            IvError::Network { detail } => IvError::Network {
                detail: scrub(detail),
            },
            IvError::Settings { field, detail } => IvError::Settings {
                field,
                detail: scrub(detail),
            },
            IvError::Input {
                field,
                value,
                detail,
            } => IvError::Input {
                field,
                value: scrub(value),
                detail: scrub(detail),
            },
            other @ IvError::Throttled { .. } => other,
        }
    }
}

/// `"HTTP 503"` or `"no HTTP answer"`.
fn status_text(status: Option<u16>) -> String {
    match status {
        Some(code) => format!("HTTP {code}"),
        None => "no HTTP answer".to_owned(),
    }
}

/// `text` with every non-empty secret replaced.
fn redact_text(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

/// The answer to a piece lookup.
// One value per HTTP lookup, never stored in bulk: boxing `PieceData` would only make
// matching on it clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceLookup {
    /// IV-MTR knows the piece.
    Found(PieceData),
    /// IV-MTR has nothing for it (yet): right after printing a piece is simply not in
    /// IV. `message` is USPS's text, or labeld's description of the answer.
    NoData {
        /// Why there is nothing.
        message: String,
    },
}

/// What IV-MTR knows about one piece (`data` of the pull answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceData {
    /// The IMb as USPS has it (`data.imb`), or as asked.
    pub imb: String,
    /// `expected_delivery_date`, as given.
    pub expected_delivery_date: Option<String>,
    /// `mail_class`, e.g. `"First-Class"`.
    pub mail_class: Option<String>,
    /// `mail_shape`, e.g. `"Letter"`.
    pub mail_shape: Option<String>,
    /// `start_the_clock_date`, as given.
    pub start_the_clock_date: Option<String>,
    /// `start_the_clock_facility_name/_city/_state/_zip`.
    pub start_the_clock_facility: Facility,
    /// A `message` USPS sent beside the data (top level or inside `data`).
    pub message: Option<String>,
    /// The scans that passed `Scan::from_raw`, in the order given.
    pub scans: Vec<Scan>,
    /// One line per scan that did not, e.g. ``"scan 2: scan field `scan_event_code` is missing"``.
    pub rejected: Vec<String>,
}

/// A token answer (§2.2), from either token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAnswer {
    /// `access_token`.
    pub access_token: Secret,
    /// `refresh_token`, if given.
    pub refresh_token: Option<Secret>,
    /// `token_type` (`"Bearer"` when absent).
    pub token_type: String,
    /// `expires_in`, if given and positive.
    pub expires_in: Option<Duration>,
}

/// The token in use.
#[derive(Debug)]
struct Token {
    /// Sent as `Authorization: Bearer …`.
    access: Secret,
    /// For `/token`; `None` = log in again at half-life.
    refresh: Option<Secret>,
    /// From `expires_in`, or `token_lifetime_secs`.
    lifetime: Duration,
    /// When it was obtained; it is refreshed after half its lifetime.
    obtained: Instant,
}

/// One HTTP answer, read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// What to do with a [`Reply`] before reading it as an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An answer for the caller to read (including 4xx).
    Answer,
    /// HTTP 401: the token is not (or no longer) good.
    Unauthorized,
    /// Try again later.
    Retry {
        /// HTTP 429 rather than 5xx or a maintenance page.
        throttled: bool,
        /// The server's `Retry-After`, when it gave one.
        wait: Option<Duration>,
        /// What the reply was, for the error if no try succeeds.
        detail: String,
    },
}

/// Sorts a reply: 429 and 5xx and 2xx HTML pages are retried, 401 re-authenticates,
/// everything else is an answer.
pub fn classify(reply: &Reply) -> Verdict {
    let wait = reply.retry_after.as_deref().and_then(parse_retry_after);
    match reply.status {
        429 => Verdict::Retry {
            throttled: true,
            wait,
            detail: "HTTP 429 Too Many Requests".to_owned(),
        },
        401 => Verdict::Unauthorized,
        500..=599 => Verdict::Retry {
            throttled: false,
            wait,
            detail: format!("HTTP {}", reply.status),
        },
        200..=299 if looks_like_html(reply.content_type.as_deref(), &reply.body) => {
            Verdict::Retry {
                throttled: false,
                wait,
                detail: "an HTML page instead of JSON (USPS maintenance page?)".to_owned(),
            }
        }
        _ => Verdict::Answer,
    }
}

/// An HTML (or XML) page rather than JSON: said by `Content-Type`, or the body starts
/// with `<`.
pub fn looks_like_html(content_type: Option<&str>, body: &str) -> bool {
    let declared = content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.contains("text/html") || ct.contains("xml")
    });
    declared || body.trim_start().starts_with('<')
}

/// `Retry-After` in its delay-seconds form (RFC 9110 §10.2.3). The HTTP-date form is
/// not read (`None`): labeld then backs off on its own schedule.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: a parse failure can only be overflow.
    let secs = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_REPORTED_RETRY_AFTER))
}

/// The wait before try `retry + 1` (`retry` ≥ 1): 1 s doubling per retry, capped at
/// `max`, then scaled by `0.5 + jitter / 2` (`jitter` in 0..=1) so clients that failed
/// together do not retry together.
pub fn backoff_delay(retry: u32, max: Duration, jitter: f64) -> Duration {
    let doubling = retry.saturating_sub(1).min(30);
    let step = BASE_BACKOFF.saturating_mul(1u32 << doubling).min(max);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    step.mul_f64(0.5 + jitter / 2.0)
}

/// Reads a token answer. The error never contains the body (it holds tokens).
pub fn parse_token_answer(body: &str) -> Result<TokenAnswer, IvError> {
    let protocol = |detail: &str| IvError::Protocol {
        detail: format!("token answer: {detail}"),
    };
    let value: Value = serde_json::from_str(body.trim()).map_err(|_| protocol("not JSON"))?;
    let Value::Object(fields) = value else {
        return Err(protocol("not a JSON object"));
    };
    let access_token = match fields.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => Secret::new(token.as_str()),
        Some(_) => return Err(protocol("`access_token` is not a non-empty string")),
        None => return Err(protocol("`access_token` is missing")),
    };
    let refresh_token = match fields.get("refresh_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(Secret::new(token.as_str())),
        _ => None,
    };
    let token_type = match fields.get("token_type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => "Bearer".to_owned(),
    };
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(protocol(&format!(
            "`token_type` is {token_type:?}; labeld only knows Bearer tokens"
        )));
    }
    let expires_in = fields
        .get("expires_in")
        .and_then(|value| match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|secs| secs.is_finite() && *secs >= 1.0)
                    .map(|secs| secs.min(u32::MAX as f64) as u64)
            }),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        })
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs);
    Ok(TokenAnswer {
        access_token,
        refresh_token,
        token_type,
        expires_in,
    })
}

/// An OAuth error body `{error, error_description}` as `"error: description"`, or
/// `None` when the body is not one.
pub fn parse_oauth_error(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body.trim()).ok()?;
    let error = text_field(value.get("error")?)?;
    Some(match value.get("error_description").and_then(text_field) {
        Some(description) => format!("{error}: {description}"),
        None => error,
    })
}

/// Reads a piece answer (§2.4, §2.5) for `asked_imb`. Each scan gets the piece's IMb
/// when it has none and goes through `RawScan::from_json` and `Scan::from_raw`; a scan
/// that fails is listed in `rejected`, not fatal.
pub fn parse_piece_answer(
    status: u16,
    body: &str,
    asked_imb: &str,
) -> Result<PieceLookup, IvError> {
    let body = body.trim();
    if !(200..300).contains(&status) {
        let message = body_message(body);
        if status == 404 || message.as_deref().is_some_and(says_not_found) {
            return Ok(PieceLookup::NoData {
                message: message.unwrap_or_else(|| format!("HTTP {status}: piece not found")),
            });
        }
        return Err(IvError::Protocol {
            detail: match message {
                Some(message) => format!("piece lookup: HTTP {status}: {message}"),
                None => format!("piece lookup: HTTP {status}"),
            },
        });
    }
    if body.is_empty() {
        return Ok(PieceLookup::NoData {
            message: "empty answer (no tracking data yet)".to_owned(),
        });
    }
    let value: Value = serde_json::from_str(body).map_err(|err| IvError::Protocol {
        detail: format!("piece answer is not JSON ({err})"),
    })?;
    let Value::Object(top) = value else {
        return Err(IvError::Protocol {
            detail: "piece answer is not a JSON object".to_owned(),
        });
    };
    let top_message = top.get("message").and_then(text_field);
    let data = match top.get("data") {
        None | Some(Value::Null) => {
            return Ok(PieceLookup::NoData {
                message: top_message.unwrap_or_else(|| "answer has no `data`".to_owned()),
            })
        }
        Some(Value::Object(data)) => data,
        Some(_) => {
            return Err(IvError::Protocol {
                detail: "piece answer: `data` is not an object".to_owned(),
            })
        }
    };
    let message = data.get("message").and_then(text_field).or(top_message);
    let raw_scans = match data.get("scans") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(scans)) => scans.as_slice(),
        Some(_) => {
            return Err(IvError::Protocol {
                detail: "piece answer: `data.scans` is not a list".to_owned(),
            })
        }
    };
    let data_imb = data.get("imb").and_then(text_field);
    if raw_scans.is_empty()
        && (message.as_deref().is_some_and(says_not_found)
            || (data_imb.is_none() && data.get("scans").is_none()))
    {
        return Ok(PieceLookup::NoData {
            message: message.unwrap_or_else(|| "answer has an empty `data`".to_owned()),
        });
    }
    let imb = data_imb.unwrap_or_else(|| asked_imb.to_owned());
    let asked_tracking = asked_imb.get(..20).unwrap_or(asked_imb);
    let mut scans = Vec::with_capacity(raw_scans.len());
    let mut rejected = Vec::new();
    for (index, raw) in raw_scans.iter().enumerate() {
        let number = index + 1;
        match pull_scan(raw, &imb) {
            Ok(scan) if scan.tracking != asked_tracking => rejected.push(format!(
                "scan {number}: tracking code {} is not the piece asked for ({asked_tracking})",
                scan.tracking
            )),
            Ok(scan) => scans.push(scan),
            Err(reason) => rejected.push(format!("scan {number}: {reason}")),
        }
    }
    let field = |name: &str| data.get(name).and_then(text_field);
    Ok(PieceLookup::Found(PieceData {
        imb,
        expected_delivery_date: field("expected_delivery_date"),
        mail_class: field("mail_class"),
        mail_shape: field("mail_shape"),
        start_the_clock_date: field("start_the_clock_date"),
        start_the_clock_facility: Facility {
            name: field("start_the_clock_facility_name"),
            city: field("start_the_clock_facility_city"),
            state: field("start_the_clock_facility_state"),
            zip: field("start_the_clock_facility_zip"),
            locale_key: None,
        },
        message,
        scans,
        rejected,
    }))
}

/// One `data.scans[]` element → a pull [`Scan`], with the piece's IMb filled in.
fn pull_scan(raw: &Value, imb: &str) -> Result<Scan, String> {
    let Value::Object(fields) = raw else {
        return Err("not a JSON object".to_owned());
    };
    let mut fields: Map<String, Value> = fields.clone();
    if fields.get("imb").and_then(text_field).is_none() {
        fields.insert("imb".to_owned(), Value::String(imb.to_owned()));
    }
    let raw = RawScan::from_json(&fields).map_err(|err| err.to_string())?;
    Scan::from_raw(raw, ScanSource::Pull).map_err(|err| err.to_string())
}

/// Reads a by-serial answer: `data.barcodes`, or nothing when IV-MTR has no data.
pub fn parse_barcodes_answer(status: u16, body: &str) -> Result<Vec<String>, IvError> {
    match parse_data_answer(status, body, "serial lookup")? {
        None => Ok(Vec::new()),
        Some(data) => match data.get("barcodes") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(barcodes)) => barcodes
                .iter()
                .enumerate()
                .map(|(index, barcode)| {
                    text_field(barcode)
                        .filter(|text| is_imb_digits(text))
                        .ok_or_else(|| IvError::Protocol {
                            detail: format!(
                                "serial lookup: barcode {} is not 20, 25, 29 or 31 digits",
                                index + 1
                            ),
                        })
                })
                .collect(),
            Some(_) => Err(IvError::Protocol {
                detail: "serial lookup: `data.barcodes` is not a list".to_owned(),
            }),
        },
    }
}

/// `data` of an answer, or `None` for every "no data" form (404, "not found", empty
/// body, no `data`).
fn parse_data_answer(
    status: u16,
    body: &str,
    what: &str,
) -> Result<Option<Map<String, Value>>, IvError> {
    let body = body.trim();
    if !(200..300).contains(&status) {
        let message = body_message(body);
        if status == 404 || message.as_deref().is_some_and(says_not_found) {
            return Ok(None);
        }
        return Err(IvError::Protocol {
            detail: match message {
                Some(message) => format!("{what}: HTTP {status}: {message}"),
                None => format!("{what}: HTTP {status}"),
            },
        });
    }
    if body.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(body).map_err(|err| IvError::Protocol {
        detail: format!("{what}: answer is not JSON ({err})"),
    })?;
    match value.get("data") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(data)) => Ok(Some(data.clone())),
        Some(_) => Err(IvError::Protocol {
            detail: format!("{what}: `data` is not an object"),
        }),
    }
}

/// The `message` (top level, or inside `data`) of a JSON body, if any.
fn body_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    value
        .get("message")
        .and_then(text_field)
        .or_else(|| value.get("data")?.get("message").and_then(text_field))
        .or_else(|| parse_oauth_error(body))
}

/// USPS's wording for an unknown piece ("Barcode not found", "piece not found").
fn says_not_found(message: &str) -> bool {
    message.to_ascii_lowercase().contains("not found")
}

/// A JSON string or number as trimmed text; `None` for empty, null and the rest.
fn text_field(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// 20, 25, 29 or 31 ASCII digits (tracking code + routing 0/5/9/11).
fn is_imb_digits(text: &str) -> bool {
    matches!(text.len(), 20 | 25 | 29 | 31) && text.bytes().all(|b| b.is_ascii_digit())
}

/// Checks an argument that becomes a URL path segment.
fn check_digits(
    field: &'static str,
    value: &str,
    ok_len: &[usize],
    allowed: &str,
) -> Result<(), IvError> {
    if ok_len.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(IvError::Input {
            field,
            value: value.chars().take(40).collect(),
            detail: format!("expected {allowed}"),
        })
    }
}

/// A small xorshift generator for back-off jitter (not for anything secret).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Jitter(hasher.finish() | 1)
    }

    /// The next value in 0..1.
    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The IV-MTR pull client. One per poller; not shared between threads.
pub struct IvClient {
    /// The HTTP agent (connection pool, timeouts, rustls).
    agent: ureq::Agent,
    /// `{oauth_url}/authenticate`.
    authenticate_url: String,
    /// `{oauth_url}/token`.
    token_url: String,
    /// `api_url` without a trailing `/`.
    api_url: String,
    /// OAuth `client_id`.
    client_id: String,
    /// OAuth `scope`.
    scope: String,
    /// Token lifetime when the answer has no `expires_in`.
    default_lifetime: Duration,
    /// Tries per request on 429, 5xx, maintenance pages and network errors.
    tries: u32,
    /// Longest sleep between tries.
    max_backoff: Duration,
    /// Whose login.
    credentials: Credentials,
    /// The token in use, if logged in.
    token: Option<Token>,
    /// HTTP requests sent, logins included.
    requests: u64,
    /// Back-off jitter.
    jitter: Jitter,
    /// When set, back-off sleeps end early and the last error is returned.
    stop: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for IvClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IvClient")
            .field("authenticate_url", &self.authenticate_url)
            .field("api_url", &self.api_url)
            .field("username", &self.credentials.username)
            .field("logged_in", &self.token.is_some())
            .field("tries", &self.tries)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl IvClient {
    /// A client for the IV-MTR at `settings.oauth_url` / `settings.api_url`. Nothing is
    /// sent until the first lookup.
    pub fn new(settings: &TrackingSettings, credentials: Credentials) -> Result<IvClient, IvError> {
        let oauth_url = base_url("oauth_url", &settings.oauth_url)?;
        let api_url = base_url("api_url", &settings.api_url)?;
        if settings.client_id.trim().is_empty() {
            return Err(IvError::Settings {
                field: "client_id",
                detail: "is empty; the IV-MTR client id is 687b8a36-db61-42f7-83f7-11c79bf7785e"
                    .to_owned(),
            });
        }
        if settings.scope.trim().is_empty() {
            return Err(IvError::Settings {
                field: "scope",
                detail: "is empty; IV-MTR's scope is \"user.info.ereg,iv1.apis\"".to_owned(),
            });
        }
        if settings.tries == 0 {
            return Err(IvError::Settings {
                field: "tries",
                detail: "must be at least 1 (1 = no retry)".to_owned(),
            });
        }
        if settings.request_timeout_secs == 0 {
            return Err(IvError::Settings {
                field: "request_timeout_secs",
                detail: "must be at least 1".to_owned(),
            });
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(settings.request_timeout_secs)))
            .user_agent(concat!("labeld/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(IvClient {
            agent: ureq::Agent::new_with_config(config),
            authenticate_url: format!("{oauth_url}/authenticate"),
            token_url: format!("{oauth_url}/token"),
            api_url,
            client_id: settings.client_id.trim().to_owned(),
            scope: settings.scope.trim().to_owned(),
            default_lifetime: Duration::from_secs(settings.token_lifetime_secs.max(1)),
            tries: settings.tries,
            max_backoff: Duration::from_secs(settings.max_backoff_secs),
            credentials,
            token: None,
            requests: 0,
            jitter: Jitter::new(),
            stop: None,
        })
    }

    /// Ends back-off sleeps early once `stop` is set (the request in flight still
    /// finishes or times out); the call then returns the error of its last try.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> IvClient {
        self.stop = Some(stop);
        self
    }

    /// HTTP requests sent so far, logins, refreshes and retries included.
    pub fn requests_made(&self) -> u64 {
        self.requests
    }

    /// Looks one piece up by its full IMb digits (tracking code + routing as printed).
    pub fn piece_by_imb(&mut self, imb: &str) -> Result<PieceLookup, IvError> {
        check_digits("imb", imb, &[20, 25, 29, 31], "20, 25, 29 or 31 digits")?;
        debug!(imb, "IV-MTR piece lookup");
        let result = self
            .api_get(&format!("/api/mt/get/piece/imb/{imb}"))
            .and_then(|reply| parse_piece_answer(reply.status, &reply.body, imb));
        result.map_err(|err| self.redact(err))
    }

    /// The IMbs USPS saw for a Mailer ID + serial (and service type), so the routing
    /// part need not be guessed. Empty when IV-MTR has none.
    pub fn barcodes_by_serial(
        &mut self,
        mailer_id: &str,
        serial: &str,
        stid: Option<&str>,
    ) -> Result<Vec<String>, IvError> {
        check_digits("mailer_id", mailer_id, &[6, 9], "6 or 9 digits")?;
        let serial_len = 15 - mailer_id.len();
        check_digits(
            "serial",
            serial,
            &[serial_len],
            &format!(
                "{serial_len} digits with a {}-digit Mailer ID",
                mailer_id.len()
            ),
        )?;
        let mut path = format!("/api/mt/get/piece/mid/{mailer_id}/serial/{serial}");
        if let Some(stid) = stid {
            check_digits("stid", stid, &[3], "3 digits")?;
            path.push_str("/stid/");
            path.push_str(stid);
        }
        debug!(mailer_id, serial, stid, "IV-MTR serial lookup");
        let result = self
            .api_get(&path)
            .and_then(|reply| parse_barcodes_answer(reply.status, &reply.body));
        result.map_err(|err| self.redact(err))
    }

    /// The error with the password and tokens scrubbed from its texts.
    fn redact(&self, err: IvError) -> IvError {
        let mut secrets = vec![self.credentials.password.expose()];
        if let Some(token) = &self.token {
            secrets.push(token.access.expose());
            if let Some(refresh) = &token.refresh {
                secrets.push(refresh.expose());
            }
        }
        err.redact(&secrets)
    }

    /// `GET {api_url}{path}` with the bearer token; one new login after a 401.
    fn api_get(&mut self, path: &str) -> Result<Reply, IvError> {
        let url = format!("{}{path}", self.api_url);
        self.ensure_token()?;
        let mut logged_in_again = false;
        loop {
            let bearer = match &self.token {
                Some(token) => Secret::new(format!("Bearer {}", token.access.expose())),
                None => {
                    return Err(IvError::Protocol {
                        detail: "no token after logging in".to_owned(),
                    })
                }
            };
            let reply = self.exchange("piece lookup", |agent| {
                agent
                    .get(&url)
                    .header("Accept", "application/json")
                    .header("Authorization", bearer.expose())
                    .call()
            })?;
            if reply.status != 401 {
                return Ok(reply);
            }
            self.token = None;
            if logged_in_again {
                return Err(IvError::Credentials {
                    detail: "a token it had just issued was refused (HTTP 401)".to_owned(),
                });
            }
            info!("IV-MTR refused the token (HTTP 401); logging in again");
            self.login()?;
            logged_in_again = true;
        }
    }

    /// Logs in, or refreshes a token past half its lifetime (logging in again if the
    /// refresh fails).
    fn ensure_token(&mut self) -> Result<(), IvError> {
        let Some(token) = &self.token else {
            return self.login();
        };
        if token.obtained.elapsed() < token.lifetime / 2 {
            return Ok(());
        }
        if token.refresh.is_some() {
            match self.refresh() {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let err = self.redact(err);
                    info!(error = %err, "IV-MTR token refresh failed; logging in again");
                }
            }
        }
        self.token = None;
        self.login()
    }

    /// `POST {oauth_url}/authenticate` with the BCG user.
    fn login(&mut self) -> Result<(), IvError> {
        debug!(username = %self.credentials.username, "IV-MTR login");
        let body = Secret::new(
            serde_json::json!({
                "username": self.credentials.username,
                "password": self.credentials.password.expose(),
                "grant_type": GRANT_TYPE,
                "response_type": RESPONSE_TYPE,
                "scope": self.scope,
                "client_id": self.client_id,
            })
            .to_string(),
        );
        let url = self.authenticate_url.clone();
        let reply = self.exchange("login", |agent| {
            agent
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .send(body.expose())
        });
        let token = reply.and_then(|reply| self.token_from(reply, None, "login"));
        match token {
            Ok(token) => {
                self.token = Some(token);
                info!(username = %self.credentials.username, "logged in to IV-MTR");
                Ok(())
            }
            Err(err) => Err(self.redact(err)),
        }
    }

    /// `POST {oauth_url}/token` with the refresh token.
    fn refresh(&mut self) -> Result<(), IvError> {
        let Some(refresh) = self.token.as_ref().and_then(|t| t.refresh.clone()) else {
            return Err(IvError::Protocol {
                detail: "no refresh token".to_owned(),
            });
        };
        let body = Secret::new(
            serde_json::json!({
                "refresh_token": refresh.expose(),
                "grant_type": GRANT_TYPE,
                "response_type": RESPONSE_TYPE,
                "scope": self.scope,
            })
            .to_string(),
        );
        let url = self.token_url.clone();
        let reply = self.exchange("token refresh", |agent| {
            agent
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .send(body.expose())
        })?;
        let token = self.token_from(reply, Some(refresh), "token refresh")?;
        self.token = Some(token);
        debug!("IV-MTR token refreshed");
        Ok(())
    }

    /// A token from a token endpoint's reply; `old_refresh` is kept when the answer
    /// brings no new refresh token.
    fn token_from(
        &self,
        reply: Reply,
        old_refresh: Option<Secret>,
        what: &str,
    ) -> Result<Token, IvError> {
        if (200..300).contains(&reply.status) {
            let answer = parse_token_answer(&reply.body)?;
            return Ok(Token {
                access: answer.access_token,
                refresh: answer.refresh_token.or(old_refresh),
                lifetime: answer.expires_in.unwrap_or(self.default_lifetime),
                obtained: Instant::now(),
            });
        }
        let reason = parse_oauth_error(&reply.body);
        match reply.status {
            400 | 401 | 403 => Err(IvError::Credentials {
                detail: match reason {
                    Some(reason) => format!("{what}: HTTP {}: {reason}", reply.status),
                    None => format!("{what}: HTTP {}", reply.status),
                },
            }),
            status => Err(IvError::Protocol {
                detail: match reason {
                    Some(reason) => format!("{what}: HTTP {status}: {reason}"),
                    None => format!("{what}: unexpected HTTP {status}"),
                },
            }),
        }
    }

    /// Sends one request up to `tries` times: 429, 5xx, maintenance pages and network
    /// errors are retried after a back-off; anything else (401 too) is returned.
    fn exchange(
        &mut self,
        what: &'static str,
        send: impl Fn(&ureq::Agent) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, IvError> {
        let mut attempt = 1;
        loop {
            self.requests += 1;
            let (err, server_wait) = match send(&self.agent).and_then(read_reply) {
                Err(err) => (
                    IvError::Network {
                        detail: format!("{what}: {err}"),
                    },
                    None,
                ),
                Ok(reply) => match classify(&reply) {
                    Verdict::Answer | Verdict::Unauthorized => return Ok(reply),
                    Verdict::Retry {
                        throttled,
                        wait,
                        detail,
                    } => {
                        let err = if throttled {
                            IvError::Throttled {
                                retry_after: wait.unwrap_or_else(|| {
                                    backoff_delay(attempt, self.max_backoff, 1.0)
                                }),
                            }
                        } else {
                            IvError::Unavailable {
                                status: Some(reply.status),
                                detail: format!("{what}: {detail}"),
                            }
                        };
                        (err, wait)
                    }
                },
            };
            if attempt >= self.tries {
                warn!(what, tries = attempt, error = %err, "IV-MTR request failed on every try");
                return Err(err);
            }
            let wait = match server_wait {
                Some(wait) => wait.min(self.max_backoff),
                None => backoff_delay(attempt, self.max_backoff, self.jitter.next()),
            };
            warn!(
                what,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err,
                "IV-MTR request failed; trying again"
            );
            if !self.pause(wait) {
                return Err(err);
            }
            attempt += 1;
        }
    }

    /// Sleeps `wait`, or less when the stop flag is set; `false` = stopped.
    fn pause(&self, wait: Duration) -> bool {
        let Some(stop) = &self.stop else {
            std::thread::sleep(wait);
            return true;
        };
        let until = Instant::now() + wait;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(STOP_POLL));
        }
    }
}

/// Reads a response whole.
fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let retry_after = header("retry-after");
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .lossy_utf8(true)
        .read_to_string()?;
    Ok(Reply {
        status,
        content_type,
        retry_after,
        body,
    })
}

/// A base URL from the settings, without a trailing `/`.
fn base_url(field: &'static str, url: &str) -> Result<String, IvError> {
    let url = url.trim().trim_end_matches('/');
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(url.to_owned()),
        _ => Err(IvError::Settings {
            field,
            detail: format!("{url:?} is not an http:// or https:// URL"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply(status: u16, content_type: Option<&str>, body: &str) -> Reply {
        Reply {
            status,
            content_type: content_type.map(str::to_owned),
            retry_after: None,
            body: body.to_owned(),
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(MAX_REPORTED_RETRY_AFTER)
        );
    }

    #[test]
    fn classify_sorts_replies() {
        let mut throttled = reply(429, None, "");
        throttled.retry_after = Some("7".to_owned());
        assert_eq!(
            classify(&throttled),
            Verdict::Retry {
                throttled: true,
                wait: Some(Duration::from_secs(7)),
                detail: "HTTP 429 Too Many Requests".to_owned()
            }
        );
        assert!(matches!(
            classify(&reply(503, None, "")),
            Verdict::Retry {
                throttled: false,
                wait: None,
                ..
            }
        ));
        assert!(matches!(
            classify(&reply(200, Some("text/html; charset=utf-8"), "maintenance")),
            Verdict::Retry {
                throttled: false,
                ..
            }
        ));
        assert!(matches!(
            classify(&reply(
                200,
                Some("application/json"),
                "  <!DOCTYPE html><html>"
            )),
            Verdict::Retry {
                throttled: false,
                ..
            }
        ));
        assert_eq!(classify(&reply(401, None, "")), Verdict::Unauthorized);
        assert_eq!(
            classify(&reply(200, Some("application/json"), "{}")),
            Verdict::Answer
        );
        assert_eq!(classify(&reply(200, None, "")), Verdict::Answer);
        assert_eq!(
            classify(&reply(404, Some("text/html"), "<html>")),
            Verdict::Answer
        );
    }

    #[test]
    fn token_answer_is_read_with_fallbacks() {
        let answer = parse_token_answer(
            r#"{"access_token":"AT-1","refresh_token":"RT-1","token_type":"Bearer","expires_in":900}"#,
        )
        .unwrap();
        assert_eq!(answer.access_token.expose(), "AT-1");
        assert_eq!(
            answer.refresh_token.as_ref().map(Secret::expose),
            Some("RT-1")
        );
        assert_eq!(answer.expires_in, Some(Duration::from_secs(900)));

        let answer = parse_token_answer(r#"{"access_token":"AT-2","expires_in":"60"}"#).unwrap();
        assert_eq!(answer.token_type, "Bearer");
        assert_eq!(answer.refresh_token, None);
        assert_eq!(answer.expires_in, Some(Duration::from_secs(60)));

        let answer = parse_token_answer(r#"{"access_token":"AT-3","expires_in":0}"#).unwrap();
        assert_eq!(answer.expires_in, None);
    }

    #[test]
    fn token_answer_errors_never_show_the_body() {
        for body in [
            r#"{"refresh_token":"RT-SECRET-9"}"#,
            r#"{"access_token":12,"refresh_token":"RT-SECRET-9"}"#,
            r#"{"access_token":"RT-SECRET-9","token_type":"MAC"}"#,
            r#"RT-SECRET-9"#,
            "[]",
        ] {
            let err = parse_token_answer(body).unwrap_err();
            assert!(matches!(err, IvError::Protocol { .. }), "{err:?}");
            assert!(!err.to_string().contains("RT-SECRET-9"), "{err}");
        }
    }

    #[test]
    fn oauth_error_is_read() {
        assert_eq!(
            parse_oauth_error(r#"{"error":"invalid_grant","error_description":"Bad credentials"}"#),
            Some("invalid_grant: Bad credentials".to_owned())
        );
        assert_eq!(
            parse_oauth_error(r#"{"error":"invalid_request"}"#),
            Some("invalid_request".to_owned())
        );
        assert_eq!(parse_oauth_error("<html>"), None);
        assert_eq!(parse_oauth_error(r#"{"message":"x"}"#), None);
    }

    #[test]
    fn no_data_forms_of_a_piece_answer() {
        let imb = "00040123456200000001";
        let cases: [(u16, &str, &str); 7] = [
            // 0: empty 200
            (200, "", "empty answer (no tracking data yet)"),
            // 1: top-level message, no data
            (
                200,
                r#"{"message":"Barcode not found"}"#,
                "Barcode not found",
            ),
            // 2: 404 without body
            (404, "", "HTTP 404: piece not found"),
            // 3: 404 with a message
            (404, r#"{"message":"No record"}"#, "No record"),
            // 4: 400 whose message says not found
            (
                400,
                r#"{"message":"Piece not found for IMb"}"#,
                "Piece not found for IMb",
            ),
            // 5: data holding only a message
            (
                200,
                r#"{"data":{"message":"barcode not found"}}"#,
                "barcode not found",
            ),
            // 6: data null
            (200, r#"{"data":null}"#, "answer has no `data`"),
        ];
        for (index, (status, body, message)) in cases.into_iter().enumerate() {
            assert_eq!(
                parse_piece_answer(status, body, imb).unwrap(),
                PieceLookup::NoData {
                    message: message.to_owned()
                },
                "case {index}"
            );
        }
    }

    #[test]
    fn unexpected_piece_answers_are_protocol_errors() {
        let imb = "00040123456200000001";
        for (status, body) in [
            (200, "not json"),
            (200, "[1,2]"),
            (200, r#"{"data":[1]}"#),
            (200, r#"{"data":{"imb":"1","scans":{}}}"#),
            (400, r#"{"message":"bad request"}"#),
            (418, ""),
        ] {
            let err = parse_piece_answer(status, body, imb).unwrap_err();
            assert!(
                matches!(err, IvError::Protocol { .. }),
                "{status} {body}: {err:?}"
            );
        }
    }

    #[test]
    fn piece_without_scans_is_found_with_its_dates() {
        let imb = "0004012345620000000112345";
        let body = r#"{"data":{"imb":"0004012345620000000112345","expected_delivery_date":"2026-11-24",
            "mail_class":"First-Class","mail_shape":"Letter","start_the_clock_date":"2026-11-20",
            "start_the_clock_facility_city":"CHICAGO","start_the_clock_facility_zip":60607,"scans":[]}}"#;
        let PieceLookup::Found(data) = parse_piece_answer(200, body, imb).unwrap() else {
            panic!("expected Found");
        };
        assert_eq!(data.imb, imb);
        assert_eq!(data.expected_delivery_date.as_deref(), Some("2026-11-24"));
        assert_eq!(data.mail_class.as_deref(), Some("First-Class"));
        assert_eq!(data.mail_shape.as_deref(), Some("Letter"));
        assert_eq!(data.start_the_clock_date.as_deref(), Some("2026-11-20"));
        assert_eq!(
            data.start_the_clock_facility.city.as_deref(),
            Some("CHICAGO")
        );
        assert_eq!(data.start_the_clock_facility.zip.as_deref(), Some("60607"));
        assert!(data.scans.is_empty() && data.rejected.is_empty());
    }

    #[test]
    fn scans_that_are_not_objects_are_rejected_not_fatal() {
        let imb = "00040123456200000001";
        let body = r#"{"data":{"imb":"00040123456200000001","scans":[42, "x"]}}"#;
        let PieceLookup::Found(data) = parse_piece_answer(200, body, imb).unwrap() else {
            panic!("expected Found");
        };
        assert!(data.scans.is_empty());
        assert_eq!(
            data.rejected,
            vec![
                "scan 1: not a JSON object".to_owned(),
                "scan 2: not a JSON object".to_owned()
            ]
        );
    }

    #[test]
    fn barcodes_answer_is_read() {
        let body = r#"{"data":{"barcodes":["0004012345620000000112345","00040123456200000001"]}}"#;
        assert_eq!(
            parse_barcodes_answer(200, body).unwrap(),
            vec!["0004012345620000000112345", "00040123456200000001"]
        );
        assert!(parse_barcodes_answer(404, "").unwrap().is_empty());
        assert!(parse_barcodes_answer(200, "").unwrap().is_empty());
        assert!(parse_barcodes_answer(200, r#"{"message":"not found"}"#)
            .unwrap()
            .is_empty());
        assert!(parse_barcodes_answer(200, r#"{"data":{"barcodes":["12ab"]}}"#).is_err());
        assert!(parse_barcodes_answer(500, "").is_err());
    }

    #[test]
    fn redaction_scrubs_every_text() {
        let err = IvError::Credentials {
            detail: "login: HTTP 401: user u with password hunter2-x refused".to_owned(),
        }
        .redact(&["hunter2-x", ""]);
        assert_eq!(
            err,
            IvError::Credentials {
                detail: "login: HTTP 401: user u with password [redacted] refused".to_owned()
            }
        );
    }

    #[test]
    fn settings_are_checked() {
        let creds = Credentials {
            username: "u".to_owned(),
            password: Secret::new("p"),
        };
        let mut settings = TrackingSettings {
            oauth_url: "ftp://x".to_owned(),
            ..TrackingSettings::default()
        };
        let err = IvClient::new(&settings, creds.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                IvError::Settings {
                    field: "oauth_url",
                    ..
                }
            ),
            "{err:?}"
        );
        settings.oauth_url = "http://127.0.0.1:9/oauth/".to_owned();
        settings.tries = 0;
        let err = IvClient::new(&settings, creds.clone()).unwrap_err();
        assert!(
            matches!(err, IvError::Settings { field: "tries", .. }),
            "{err:?}"
        );
        settings.tries = 2;
        let client = IvClient::new(&settings, creds).unwrap();
        assert_eq!(
            client.authenticate_url,
            "http://127.0.0.1:9/oauth/authenticate"
        );
        assert_eq!(client.requests_made(), 0);
    }

    #[test]
    fn bad_identifiers_send_nothing() {
        let creds = Credentials {
            username: "u".to_owned(),
            password: Secret::new("p"),
        };
        let settings = TrackingSettings {
            oauth_url: "http://127.0.0.1:9/oauth".to_owned(),
            api_url: "http://127.0.0.1:9/api".to_owned(),
            ..TrackingSettings::default()
        };
        let mut client = IvClient::new(&settings, creds).unwrap();
        for imb in [
            "",
            "0004012345620000000",
            "0004012345620000000a",
            "00040123456200000001/../x",
        ] {
            let err = client.piece_by_imb(imb).unwrap_err();
            assert!(
                matches!(err, IvError::Input { field: "imb", .. }),
                "{err:?}"
            );
        }
        assert!(matches!(
            client.barcodes_by_serial("123456", "12345678", None),
            Err(IvError::Input {
                field: "serial",
                ..
            })
        ));
        assert!(matches!(
            client.barcodes_by_serial("912345678", "000001", Some("40")),
            Err(IvError::Input { field: "stid", .. })
        ));
        assert_eq!(client.requests_made(), 0);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_half_and_whole_of_the_capped_step(
            retry in 1u32..200,
            max_secs in 0u64..100_000,
            jitter in 0.0f64..=1.0,
        ) {
            let max = Duration::from_secs(max_secs);
            let delay = backoff_delay(retry, max, jitter);
            let step = BASE_BACKOFF.saturating_mul(1u32 << (retry - 1).min(30)).min(max);
            prop_assert!(delay <= step);
            prop_assert!(delay >= step / 2);
        }

        #[test]
        fn retry_after_of_any_number_is_that_many_seconds(secs in 0u64..=86_400) {
            prop_assert_eq!(parse_retry_after(&secs.to_string()), Some(Duration::from_secs(secs)));
        }

        #[test]
        fn piece_answer_never_panics(status in 100u16..600, body in ".{0,200}") {
            let _ = parse_piece_answer(status, &body, "00040123456200000001");
        }
    }
}
