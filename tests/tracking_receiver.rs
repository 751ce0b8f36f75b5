//! The IV-MTR push receiver over real sockets (127.0.0.1 only): a spool with printed
//! pieces, a receiver on port 0 (HTTPS with a self-signed certificate made here, or
//! plain HTTP), and `ureq` or raw TCP as USPS. Checks the answers, what reached the
//! tracking store, and the `tracking.<serial>` events.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::tracking_standin::{feed_piece_event, feed_tray_event};
use labeld::events::Events;
use labeld::spool::{AssignedSerial, NewImb, NewJob, NewLabel, Spool};
use labeld::tracking::credentials::{Credentials, Secret};
use labeld::tracking::feed::FeedLimits;
use labeld::tracking::receiver::{FeedSink, Receiver, ReceiverError};
use labeld::tracking::settings::PushSettings;
use labeld::tracking::stages::default_rules;
use labeld::tracking::store::{PieceKey, PieceState, PieceView, TrackingStore};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

const MID: &str = "123456";
const USER: &str = "usps-feed";
const PASSWORD: &str = "correct horse battery staple";
const FEED_PATH: &str = "/iv/feed";
/// Guards raw-socket reads so a broken receiver fails the test instead of hanging it.
const READ_GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Harness.

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "labeld-receiver-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A spool with one job of two IMb labels, both sent and printed; returns their
/// serials.
fn printed_spool(path: &Path) -> Vec<AssignedSerial> {
    let mut spool = Spool::open(path).unwrap();
    spool.configure_range(MID, 1000, 9999).unwrap();
    let label = |i: u32| NewLabel {
        imb: Some(NewImb {
            barcode_id: "00".into(),
            service_type: "270".into(),
            mailer_id: MID.into(),
        }),
        routing: "60607".into(),
        recipient: format!("recipient {i}"),
        unit: i,
        tracking: None,
    };
    let accepted = spool
        .accept_job(
            NewJob {
                id: Some("feed-job".into()),
                printer: "dock-1".into(),
                priority: 5,
                labels: vec![label(0), label(1)],
                request_json: "{}".into(),
            },
            1_000,
        )
        .unwrap();
    for index in 0..2 {
        spool.mark_sent("feed-job", index, 2_000).unwrap();
        spool.mark_printed("feed-job", index, 3_000).unwrap();
    }
    assert_eq!(accepted.serials.len(), 2);
    accepted.serials
}

/// A self-signed certificate for 127.0.0.1, written as PEM; returns (cert, key,
/// certificate PEM).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.pem())
}

fn settings(tls: Option<(&Path, &Path)>, max_body_bytes: u64) -> PushSettings {
    PushSettings {
        listen: "127.0.0.1:0".into(),
        path: FEED_PATH.into(),
        tls_cert: tls.map(|(c, _)| c.to_owned()),
        tls_key: tls.map(|(_, k)| k.to_owned()),
        credentials_file: None,
        max_body_bytes,
        max_feed_bytes: max_body_bytes,
        rejected_dir: None,
    }
}

fn credentials() -> Credentials {
    Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    }
}

/// A running receiver with its spool, runtime and event stream.
struct Harness {
    /// Removed when the harness is dropped (refused bodies are kept in `rejected/`).
    dir: TempDir,
    spool: PathBuf,
    serials: Vec<AssignedSerial>,
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    https: bool,
    agent: ureq::Agent,
    events: mpsc::Receiver<(String, Vec<u8>)>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), ReceiverError>>>,
}

impl Harness {
    /// HTTPS (`tls`) or plain HTTP, with `max_body_bytes`.
    fn start(tag: &str, tls: bool, max_body_bytes: u64) -> Harness {
        let dir = TempDir::new(tag);
        let spool = dir.path().join("spool.db");
        let serials = printed_spool(&spool);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (events, events_rx) = Events::channel(64);
        let sink = FeedSink {
            spool_path: spool.clone(),
            rules: default_rules(),
            events,
            limits: FeedLimits::default(),
            rejected_dir: Some(dir.path().join("rejected")),
        };
        let (config, pem) = if tls {
            let (cert, key, pem) = self_signed(dir.path());
            (settings(Some((&cert, &key)), max_body_bytes), Some(pem))
        } else {
            (settings(None, max_body_bytes), None)
        };
        let receiver = runtime
            .block_on(Receiver::bind(&config, credentials(), sink))
            .unwrap();
        assert_eq!(receiver.is_https(), tls);
        let addr = receiver.local_addr();
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime.spawn(receiver.serve(stop_rx));
        let mut agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(READ_GUARD));
        if let Some(pem) = pem {
            let root = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
            agent_config = agent_config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
                    .build(),
            );
        }
        Harness {
            dir,
            spool,
            serials,
            runtime,
            addr,
            https: tls,
            agent: agent_config.build().into(),
            events: events_rx,
            stop,
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// POSTs `body` to the feed path with `extra` headers; returns status and JSON.
    fn post(
        &self,
        body: &[u8],
        auth: Option<(&str, &str)>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .agent
            .post(&self.url(FEED_PATH))
            .header("Content-Type", "application/json");
        if let Some((user, password)) = auth {
            request = request.header("Authorization", basic(user, password));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send(body).unwrap();
        answer(response)
    }

    fn post_ok(&self, body: &[u8]) -> (u16, Value) {
        self.post(body, Some((USER, PASSWORD)), &[])
    }

    /// Events published so far: (topic, payload).
    fn drain_events(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Ok((topic, payload)) = self.events.try_recv() {
            out.push((topic, serde_json::from_slice(&payload).unwrap()));
        }
        out
    }

    /// Stops the receiver and waits for `serve` to return `Ok` (a receiver that
    /// never returns fails the test at the guard instead of hanging it).
    fn stop(mut self) {
        self.stop.send(true).unwrap();
        let task = self.task.take().unwrap();
        self.runtime
            .block_on(async { tokio::time::timeout(READ_GUARD, task).await })
            .expect("serve did not return after stop")
            .unwrap()
            .unwrap();
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn answer(response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, value)
}

/// Sends raw bytes over plain TCP in one write and reads the answer until the
/// receiver closes; returns the status and the whole answer.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_GUARD)).unwrap();
    stream.write_all(request).unwrap();
    let mut text = Vec::new();
    stream.read_to_end(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// The 20-digit tracking code and full IMb of a serial.
fn tracking(serial: u64) -> String {
    format!("00270{MID}{serial:09}")
}

/// A feed piece event for the piece with `serial`.
fn piece_event(serial: u64, scanned: &str, code: &str, phase: &str) -> Value {
    feed_piece_event(&tracking(serial), "60607123401", scanned, code, phase)
}

/// A handling-unit (tray) event: not a piece scan, so skipped.
fn tray_event() -> Value {
    feed_tray_event()
}

/// The realistic feed: two printed pieces, one piece labeld did not print, one tray.
fn feed_body(group: &str, serials: &[AssignedSerial]) -> Vec<u8> {
    let body = json!({
        "msgGrpId": group,
        "msgSerNbr": 1,
        "totMsgCnt": 1,
        "recCnt": 4,
        "totRecCnt": 4,
        "events": [
            piece_event(serials[0].serial, "2026-11-20T08:15:00", "918",
                        "Phase 3c - Destination Sequenced Carrier Sortation"),
            piece_event(serials[1].serial, "2026-11-19T21:40:00", "891",
                        "Phase 1 - Origin Processing"),
            piece_event(999_999_999, "2026-11-20T08:16:00", "918",
                        "Phase 3c - Destination Sequenced Carrier Sortation"),
            tray_event(),
        ]
    });
    serde_json::to_vec(&body).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// The counts of a 200 answer, in the order of the contract.
fn counts(value: &Value) -> [u64; 6] {
    assert_eq!(value["ok"], true, "{value}");
    [
        "messages",
        "already_received",
        "inserted",
        "duplicates",
        "unmatched",
        "skipped",
    ]
    .map(|k| {
        value[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no count {k} in {value}"))
    })
}

/// What the tracking store knows of `serial` (a fresh handle, as another process
/// would open it).
fn stored_piece(spool: &Path, serial: u64) -> Option<PieceView> {
    let store = TrackingStore::open(spool).unwrap();
    store
        .piece(
            &PieceKey::Tracking(tracking(serial)),
            &default_rules(),
            // The scans are dated 2026; stalling is not what these tests look at.
            100_000,
            labeld::service::now_ms(),
        )
        .unwrap()
}

/// Scans stored for `serial`, as (event code, source) pairs, oldest first.
fn stored_scans(spool: &Path, serial: u64) -> Vec<(String, String)> {
    stored_piece(spool, serial)
        .map(|piece| {
            piece
                .scans
                .iter()
                .map(|s| (s.event_code.clone(), s.source.as_str().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn realistic_feed_over_https_is_stored_and_published() {
    let mut h = Harness::start("https", true, 1 << 20);
    let serials: Vec<u64> = h.serials.iter().map(|s| s.serial).collect();
    let body = feed_body("GRP-HTTPS-1", &h.serials);

    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    // messages, already_received, inserted, duplicates, unmatched, skipped
    assert_eq!(counts(&value), [1, 0, 3, 0, 1, 1], "{value}");
    assert_eq!(
        stored_scans(&h.spool, serials[0]),
        [("918".to_owned(), "push".to_owned())]
    );
    assert_eq!(
        stored_scans(&h.spool, serials[1]),
        [("891".to_owned(), "push".to_owned())]
    );
    assert_eq!(stored_scans(&h.spool, 999_999_999).len(), 1);

    assert_eq!(
        stored_piece(&h.spool, serials[0]).unwrap().state,
        PieceState::ProcessedForDelivery
    );
    assert_eq!(
        stored_piece(&h.spool, serials[1]).unwrap().state,
        PieceState::Accepted
    );

    // One `tracking.<serial>` event per printed piece, naming its job. (The piece
    // labeld did not print may have one too, without a job.)
    let events = h.drain_events();
    let topics: BTreeSet<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    for serial in &serials {
        assert!(
            topics.contains(format!("tracking.{serial}").as_str()),
            "{events:?}"
        );
    }
    assert!(topics.len() <= 3, "{events:?}");
    for (topic, payload) in &events {
        assert_eq!(payload["event"], "tracking", "{topic}: {payload}");
        assert_eq!(payload["from"], "printed", "{topic}: {payload}");
        let printed = serials.iter().any(|s| *topic == format!("tracking.{s}"));
        let job = if printed {
            json!("feed-job")
        } else {
            Value::Null
        };
        assert_eq!(payload["job_id"], job, "{topic}: {payload}");
    }
    let first = events
        .iter()
        .find(|(t, _)| *t == format!("tracking.{}", serials[0]))
        .unwrap();
    assert_eq!(first.1["to"], "processed_for_delivery");
    assert_eq!(first.1["tracking"], tracking(serials[0]));
    let second = events
        .iter()
        .find(|(t, _)| *t == format!("tracking.{}", serials[1]))
        .unwrap();
    assert_eq!(second.1["to"], "accepted");

    // The same delivery again: received already, nothing new.
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    let again = counts(&value);
    assert_eq!(again[1], 1, "already_received: {value}");
    assert_eq!(again[2], 0, "inserted: {value}");
    assert_eq!(stored_scans(&h.spool, serials[0]).len(), 1);
    assert_eq!(stored_scans(&h.spool, serials[1]).len(), 1);
    assert!(h.drain_events().is_empty());
    h.stop();
}

#[test]
fn gzip_bodies_with_and_without_content_encoding() {
    let h = Harness::start("gzip", true, 1 << 20);
    let serial = h.serials[0].serial;

    let labelled = gzip(&feed_body("GRP-GZIP-1", &h.serials));
    let (status, value) = h.post(
        &labelled,
        Some((USER, PASSWORD)),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value), [1, 0, 3, 0, 1, 1], "{value}");

    // Bare gzip magic, no header: the parser sniffs it. A new group, later scans.
    let mut later = serde_json::from_slice::<Value>(&feed_body("GRP-GZIP-2", &h.serials)).unwrap();
    later["recCnt"] = json!(1);
    later["totRecCnt"] = json!(1);
    later["events"] = json!([piece_event(
        serial,
        "2026-11-21T10:00:00",
        "919",
        "Phase 3c - Destination Sequenced Carrier Sortation"
    )]);
    let bare = gzip(&serde_json::to_vec(&later).unwrap());
    let (status, value) = h.post_ok(&bare);
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value), [1, 0, 1, 0, 0, 0], "{value}");
    assert_eq!(stored_scans(&h.spool, serial).len(), 2);

    // Content-Encoding gzip on a body that is not gzip: 400, nothing stored.
    let plain = feed_body("GRP-GZIP-3", &h.serials);
    let (status, value) = h.post(
        &plain,
        Some((USER, PASSWORD)),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 400, "{value}");
    assert_eq!(value["error"], "invalid_feed");

    // An encoding labeld does not take.
    let (status, value) = h.post(
        &plain,
        Some((USER, PASSWORD)),
        &[("Content-Encoding", "br")],
    );
    assert_eq!(status, 415, "{value}");
    assert_eq!(stored_scans(&h.spool, serial).len(), 2);
    h.stop();
}

#[test]
fn wrong_or_missing_credentials_are_refused() {
    let mut h = Harness::start("auth", true, 1 << 20);
    let body = feed_body("GRP-AUTH-1", &h.serials);
    let serial = h.serials[0].serial;

    for (i, auth) in [
        Some((USER, "wrong password")),
        Some(("someone-else", PASSWORD)),
        Some((USER, "")),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let (status, value) = h.post(&body, auth, &[]);
        assert_eq!(status, 401, "case {i}: {value}");
        assert_eq!(value["error"], "unauthorized", "case {i}");
    }
    // A header that is not Basic at all.
    let response = h
        .agent
        .post(&h.url(FEED_PATH))
        .header("Authorization", "Bearer abc")
        .send(&body[..])
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"labeld\""
    );
    assert_eq!(answer(response).0, 401);
    assert!(stored_scans(&h.spool, serial).is_empty());
    assert!(h.drain_events().is_empty());

    // The right credentials still work afterwards, and the group was not marked.
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value)[1], 0, "already_received: {value}");
    h.stop();
}

#[test]
fn oversized_content_length_is_refused_before_the_body() {
    let h = Harness::start("length", false, 4096);
    // Headers only: the body never comes. A receiver that waited for it would not
    // answer (and the read guard would fail the test).
    let request = format!(
        "POST {FEED_PATH} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        h.addr,
        basic(USER, PASSWORD)
    );
    let (status, text) = raw_exchange(h.addr, request.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());
    h.stop();
}

#[test]
fn oversized_chunked_body_is_refused() {
    let h = Harness::start("chunked", false, 4096);
    let body = feed_body("GRP-CHUNKED-1", &h.serials);
    // Pad the feed past the limit (whitespace is valid JSON) and send it chunked.
    let mut padded = body.clone();
    padded.extend(std::iter::repeat_n(b' ', 6000));
    let mut request = format!(
        "POST {FEED_PATH} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        h.addr,
        basic(USER, PASSWORD)
    )
    .into_bytes();
    for chunk in padded.chunks(1000) {
        request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let (status, text) = raw_exchange(h.addr, &request);
    assert_eq!(status, 413, "{text}");
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());

    // The same feed, chunked and under the limit, is taken.
    let mut request = format!(
        "POST {FEED_PATH} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        h.addr,
        basic(USER, PASSWORD)
    )
    .into_bytes();
    for chunk in body.chunks(700) {
        request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let (status, text) = raw_exchange(h.addr, &request);
    assert_eq!(status, 200, "{text}");
    assert_eq!(stored_scans(&h.spool, h.serials[0].serial).len(), 1);
    h.stop();
}

#[test]
fn malformed_json_is_400_and_nothing_is_stored() {
    let mut h = Harness::start("malformed", true, 1 << 20);
    let body = feed_body("GRP-BAD-1", &h.serials);
    // Cut in the middle of the last event.
    let cut = &body[..body.len() - 40];
    let (status, value) = h.post_ok(cut);
    assert_eq!(status, 400, "{value}");
    assert_eq!(value["error"], "invalid_feed", "{value}");
    let detail = value["detail"].as_str().unwrap();
    assert!(!detail.is_empty(), "{value}");
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());
    assert!(h.drain_events().is_empty());

    // Valid JSON, but not a feed.
    let (status, value) = h.post_ok(br#"{"hello": "world"}"#);
    assert_eq!(status, 400, "{value}");
    assert_eq!(value["error"], "invalid_feed", "{value}");

    // Both refused bodies are kept, byte for byte, for `tracking import`.
    let rejected = h.dir.path().join("rejected");
    let mut kept: Vec<_> = std::fs::read_dir(&rejected)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), cut);
    assert_eq!(std::fs::read(&kept[1]).unwrap(), br#"{"hello": "world"}"#);

    // The group was not marked received by the failures.
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value)[..3], [1, 0, 3], "{value}");
    h.stop();
}

#[test]
fn wrong_path_is_404_and_get_is_405() {
    let h = Harness::start("routes", true, 1 << 20);
    let body = feed_body("GRP-ROUTE-1", &h.serials);
    let response = h
        .agent
        .post(&h.url("/somewhere/else"))
        .header("Authorization", basic(USER, PASSWORD))
        .send(&body[..])
        .unwrap();
    let (status, value) = answer(response);
    assert_eq!(status, 404, "{value}");
    assert_eq!(value["error"], "not_found");

    let response = h
        .agent
        .get(&h.url(FEED_PATH))
        .header("Authorization", basic(USER, PASSWORD))
        .call()
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, value) = answer(response);
    assert_eq!(status, 405, "{value}");
    assert_eq!(value["error"], "method_not_allowed");
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());
    h.stop();
}

#[test]
fn plain_http_mode_takes_feeds() {
    let mut h = Harness::start("plain", false, 1 << 20);
    let body = feed_body("GRP-PLAIN-1", &h.serials);
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value), [1, 0, 3, 0, 1, 1], "{value}");
    assert_eq!(stored_scans(&h.spool, h.serials[1].serial).len(), 1);
    let topics: Vec<String> = h.drain_events().into_iter().map(|(t, _)| t).collect();
    assert!(
        topics.contains(&format!("tracking.{}", h.serials[1].serial)),
        "{topics:?}"
    );
    // A TLS client gets no answer from a plain-HTTP receiver.
    let tls_url = format!("https://{}{FEED_PATH}", h.addr);
    assert!(h.agent.post(&tls_url).send(&body[..]).is_err());
    h.stop();
}

#[test]
fn bad_tls_files_fail_at_bind_naming_the_file() {
    let dir = TempDir::new("badtls");
    let spool = dir.path().join("spool.db");
    printed_spool(&spool);
    let (cert, key, _) = self_signed(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = || FeedSink {
        spool_path: spool.clone(),
        rules: default_rules(),
        events: Events::log_only(),
        limits: FeedLimits::default(),
        rejected_dir: None,
    };
    let bind = |config: PushSettings| {
        runtime
            .block_on(Receiver::bind(&config, credentials(), sink()))
            .map(|r| r.local_addr())
    };

    // 0: the certificate file does not exist.
    let missing = dir.path().join("no-such-cert.pem");
    let err = bind(settings(Some((&missing, &key)), 1024)).unwrap_err();
    assert!(matches!(err, ReceiverError::TlsFile { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-cert.pem"), "{err}");

    // 1: the key file holds no key (the certificate instead).
    let err = bind(settings(Some((&cert, &cert)), 1024)).unwrap_err();
    assert!(err.to_string().contains("cert.pem"), "{err}");
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");

    // 2: the certificate file is not PEM.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let err = bind(settings(Some((&garbage, &key)), 1024)).unwrap_err();
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    // 3: only one of the two.
    let mut half = settings(Some((&cert, &key)), 1024);
    half.tls_key = None;
    let err = bind(half).unwrap_err();
    assert!(
        matches!(
            err,
            ReceiverError::TlsHalf {
                given: "tls_cert",
                missing: "tls_key"
            }
        ),
        "{err:?}"
    );

    // 4: the key of another certificate.
    let other = TempDir::new("badtls-other");
    let (_, other_key, _) = self_signed(other.path());
    let err = bind(settings(Some((&cert, &other_key)), 1024)).unwrap_err();
    assert!(matches!(err, ReceiverError::TlsConfig { .. }), "{err:?}");

    // 5: and the good pair binds.
    assert!(bind(settings(Some((&cert, &key)), 1024)).is_ok());
}

#[test]
fn stop_closes_idle_connections_and_serve_returns() {
    let h = Harness::start("stop", true, 1 << 20);
    // The agent keeps this connection alive in its pool; it must not hold the
    // receiver open.
    let (status, _) = h.post(b"{}", Some((USER, PASSWORD)), &[]);
    assert_eq!(status, 400);
    // So does a raw connection that never sends a request.
    let _idle = TcpStream::connect(h.addr).unwrap();
    h.stop();
}

#[test]
fn body_that_inflates_past_the_limit_is_413() {
    let h = Harness::start("inflate", false, 4096);
    // Small on the wire, far over 4096 bytes once decompressed.
    let mut big = feed_body("GRP-INFLATE-1", &h.serials);
    big.extend(std::iter::repeat_n(b' ', 100_000));
    let compressed = gzip(&big);
    assert!(compressed.len() < 4096, "{}", compressed.len());
    let (status, value) = h.post(
        &compressed,
        Some((USER, PASSWORD)),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 413, "{value}");
    assert_eq!(value["error"], "body_too_large", "{value}");
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());
    h.stop();
}

#[test]
fn a_connection_is_closed_after_its_request_limit() {
    let h = Harness::start("limit", false, 4096);
    let n = labeld::tracking::receiver::MAX_REQUESTS_PER_CONNECTION as usize;
    let one = format!("GET /elsewhere HTTP/1.1\r\nHost: {}\r\n\r\n", h.addr);
    // Exactly the limit, pipelined: every one is answered, the last with
    // `Connection: close`, and then the receiver closes (read_to_end returns).
    let (status, text) = raw_exchange(h.addr, one.repeat(n).as_bytes());
    assert_eq!(status, 404, "{text}");
    assert_eq!(text.matches("HTTP/1.1 404").count(), n);
    assert_eq!(
        text.to_ascii_lowercase()
            .matches("connection: close")
            .count(),
        1
    );
    h.stop();
}

#[test]
fn a_store_failure_is_500_and_the_feed_can_be_sent_again() {
    let h = Harness::start("busy", false, 1 << 20);
    let body = feed_body("GRP-BUSY-1", &h.serials);
    // Another writer holds the spool file past the store's busy timeout.
    let blocker = rusqlite::Connection::open(&h.spool).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 500, "{value}");
    assert_eq!(value["error"], "store_failed", "{value}");
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    assert!(stored_scans(&h.spool, h.serials[0].serial).is_empty());

    // USPS sends it again: stored, not "already received".
    let (status, value) = h.post_ok(&body);
    assert_eq!(status, 200, "{value}");
    assert_eq!(counts(&value)[..3], [1, 0, 3], "{value}");
    h.stop();
}
