//! Fuzz target `request`: arbitrary bytes through the server's request path,
//! [`check`] then [`parse_request`], with [`Limits::default`].
//!
//! Properties (any failure is a crash that libFuzzer saves):
//!
//! - Nothing panics, whatever the bytes.
//! - A refused request yields an error reply that is one JSON object with
//!   `"ok": false` and the error's code, and whose `message` and `field` stay
//!   short: the protocol quotes at most 64 characters of client text (256 of a
//!   serde message), so a 10 MB string is never echoed back.
//! - A parsed request round-trips: `parse_request(req.to_json())` gives the
//!   same [`Request`], except that a floating-point number may move by a few
//!   ULPs (see [`round_trips`]); everything else must be equal.
//! - A smaller `max_batch_labels` only adds `batch_too_large` refusals: a request
//!   accepted under it is accepted, unchanged, under the default limits.

#![no_main]

use labeld::protocol::{
    check, parse_request, ErrorCode, Limits, Op, ProtocolError, Reply, Request, OPS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Longest error message in bytes: a fixed text around at most 256 clipped
/// characters (4 bytes each in UTF-8, more when quoted with escapes).
const MAX_MESSAGE_BYTES: usize = 2048;

/// Longest error field path in bytes: a prefix like `records[9999].imb` and at
/// most 64 clipped characters of a client's key.
const MAX_FIELD_BYTES: usize = 512;

/// How far (in units in the last place) a float may move in one round trip.
/// labeld enables serde_json's `float_roundtrip` feature, so the round trip is
/// exact (without it, some 17-digit decimals parse one ULP off).
const FLOAT_DRIFT_ULPS: u64 = 0;

/// The batch limit of the second, tighter parse: small enough that short
/// inputs reach the `batch_too_large` paths of batches and sheet jobs.
const TIGHT_BATCH_LABELS: usize = 2;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Err(err) = check(&[data], &limits) {
        error_reply_is_sound(&err);
        return;
    }
    let parsed = parse_request(data, &limits);
    match &parsed {
        Ok(request) => {
            request_is_sound(request, &limits);
            round_trips(request, &limits);
        }
        Err(err) => error_reply_is_sound(err),
    }

    let tight = Limits {
        max_batch_labels: TIGHT_BATCH_LABELS,
        ..limits
    };
    match (parse_request(data, &tight), &parsed) {
        (Ok(request), Ok(loose)) => assert_eq!(
            &request, loose,
            "a tighter batch limit changed the parsed request"
        ),
        (Ok(request), Err(err)) => panic!(
            "accepted under max_batch_labels {TIGHT_BATCH_LABELS} but refused under the default: \
             {err}\naccepted as: {request:?}"
        ),
        (Err(err), Ok(_)) => {
            error_reply_is_sound(&err);
            assert_eq!(
                err.code,
                ErrorCode::BatchTooLarge,
                "only the batch limit differs, yet the tight parse refused with {err}"
            );
        }
        (Err(err), Err(_)) => error_reply_is_sound(&err),
    }
});

/// The error reply the server would send for `err` is well-formed and short.
fn error_reply_is_sound(err: &ProtocolError) {
    assert!(
        err.message.len() <= MAX_MESSAGE_BYTES,
        "{} message is {} bytes (client text not clipped?): {:.200}...",
        err.code,
        err.message.len(),
        err.message
    );
    let field_len = err.field.as_ref().map_or(0, String::len);
    assert!(
        field_len <= MAX_FIELD_BYTES,
        "{} field is {field_len} bytes: {:.200?}...",
        err.code,
        err.field
    );
    let bytes = Reply::error(err).to_bytes();
    let reply: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("error reply is not JSON ({e}): {bytes:?}"),
    };
    assert_eq!(reply["v"], Value::from(1), "reply: {reply}");
    assert_eq!(reply["ok"], Value::Bool(false), "reply: {reply}");
    assert_eq!(
        reply["error"]["code"],
        Value::from(err.code.as_str()),
        "reply: {reply}"
    );
}

/// Shape rules `parse_request` promises for what it accepts.
fn request_is_sound(request: &Request, limits: &Limits) {
    assert!(OPS.contains(&request.op.name()));
    if let Op::SubmitBatch(batch) = &request.op {
        assert_eq!(batch.jobs().len(), batch.records.len());
        assert!(!batch.records.is_empty());
        assert!(batch.records.len() <= limits.max_batch_labels);
    }
}

/// `to_json` then `parse_request` gives the same request back, up to
/// [`FLOAT_DRIFT_ULPS`] in its floats.
fn round_trips(request: &Request, limits: &Limits) {
    let json = request.to_json();
    let again = match parse_request(json.as_bytes(), limits) {
        Ok(again) => again,
        Err(err) => panic!("to_json of a parsed request does not parse: {err}\njson: {json}"),
    };
    if &again == request {
        return;
    }
    let again_json = again.to_json();
    let same = match (
        serde_json::from_str::<Value>(&json),
        serde_json::from_str::<Value>(&again_json),
    ) {
        (Ok(a), Ok(b)) => same_up_to_float_drift(&a, &b),
        _ => false,
    };
    assert!(
        same,
        "round trip changed the request (beyond {FLOAT_DRIFT_ULPS} ULPs of float drift)\n\
         first:  {json}\nsecond: {again_json}\nfirst:  {request:?}\nsecond: {again:?}"
    );
}

/// Equal JSON, except that numbers where either side is a float may differ by
/// [`FLOAT_DRIFT_ULPS`].
fn same_up_to_float_drift(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => ulps_apart(x, y) <= FLOAT_DRIFT_ULPS,
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_up_to_float_drift(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| same_up_to_float_drift(xv, yv)))
        }
        _ => a == b,
    }
}

/// The number of representable doubles between `x` and `y` (finite values).
fn ulps_apart(x: f64, y: f64) -> u64 {
    // Map the bit patterns onto one ordered integer line (negatives mirrored).
    fn ordered(v: f64) -> i128 {
        let bits = i128::from(v.to_bits());
        if v.is_sign_negative() {
            -(bits & 0x7fff_ffff_ffff_ffff)
        } else {
            bits
        }
    }
    u64::try_from((ordered(x) - ordered(y)).unsigned_abs()).unwrap_or(u64::MAX)
}
