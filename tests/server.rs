//! The ZeroMQ server over real sockets (loopback and temporary directories only):
//! the frame guard, envelopes, fairness under a flood, typed errors, events, ipc files.
//! Plus property tests of the guard's pure `FrameScanner`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labeld::protocol::{Limits, Op, Reply};
use labeld::server::guard::{FrameScanner, ScanError, GREETING_LEN};
use labeld::server::{Incoming, Server, ServerConfig, ServerError, StatsHandle};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

const MAX_FRAME: usize = 64 * 1024;
const MAX_REQUEST: usize = 16 * 1024;
const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Harness.

/// A private temporary directory (0700), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "labeld-server-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        requests: vec!["tcp://127.0.0.1:0".into()],
        events: vec!["tcp://127.0.0.1:0".into()],
        runtime_dir: dir.join("run"),
        allow_remote: false,
        limits: Limits {
            max_request_bytes: MAX_REQUEST,
            max_batch_labels: 100,
        },
        max_frame_bytes: MAX_FRAME,
        reply_timeout: Duration::from_millis(50),
        max_pending: 64,
    }
}

/// A served server and the handles a test needs.
struct Running {
    requests: Vec<String>,
    events: Vec<String>,
    event_tx: mpsc::Sender<(String, Vec<u8>)>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServerError>>,
    stats: StatsHandle,
    _dir: TempDir,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("serve ends within 5 s of shutdown")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Binds with `adjust`ed config and serves with the echo handler.
async fn start(tag: &str, adjust: impl FnOnce(&mut ServerConfig)) -> Running {
    let (incoming, rx) = mpsc::channel(256);
    spawn_echo(rx);
    start_with(tag, adjust, incoming).await
}

async fn start_with(
    tag: &str,
    adjust: impl FnOnce(&mut ServerConfig),
    incoming: mpsc::Sender<Incoming>,
) -> Running {
    let dir = TempDir::new(tag);
    let mut cfg = config(&dir.0);
    adjust(&mut cfg);
    let server = Server::bind(cfg).await.expect("bind");
    let requests = server.request_endpoints().to_vec();
    let events = server.event_endpoints().to_vec();
    let stats = server.stats();
    let (event_tx, event_rx) = mpsc::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(server.serve(incoming, event_rx, stop_rx));
    Running {
        requests,
        events,
        event_tx,
        stop,
        task,
        stats,
        _dir: dir,
    }
}

/// Answers every request with `{"op": name}`; drops the oneshot of `pause` requests
/// (a handler fault).
fn spawn_echo(mut rx: mpsc::Receiver<Incoming>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = rx.recv().await {
            if matches!(incoming.request.op, Op::Pause(_)) {
                drop(incoming.reply);
                continue;
            }
            let mut data = Map::new();
            data.insert("op".into(), incoming.request.op.name().into());
            let _ = incoming.reply.send(Reply::data(incoming.request.id, data));
        }
    })
}

fn health(id: u64) -> String {
    format!(r#"{{"v":1,"id":{id},"op":"health"}}"#)
}

async fn dealer(endpoint: &str) -> DealerSocket {
    let mut s = DealerSocket::new();
    tokio::time::timeout(WAIT, s.connect(endpoint))
        .await
        .expect("connect in time")
        .expect("connect");
    s
}

fn json_of(frame: &[u8]) -> Value {
    serde_json::from_slice(frame).expect("reply is JSON")
}

async fn recv_json<S: SocketRecv>(s: &mut S) -> Value {
    let m = tokio::time::timeout(WAIT, s.recv())
        .await
        .expect("reply within 5 s")
        .expect("recv");
    let frames = m.into_vec();
    json_of(frames.last().expect("a frame"))
}

async fn round_trip<S: SocketSend + SocketRecv>(s: &mut S, body: String) -> Value {
    s.send(ZmqMessage::from(body)).await.expect("send");
    recv_json(s).await
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "{reply}");
    reply["error"]["code"].as_str().expect("an error code")
}

/// A normal client's check that the server still serves.
async fn assert_serves(endpoint: &str) {
    let mut d = dealer(endpoint).await;
    let reply = round_trip(&mut d, health(99)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["id"], 99);
}

// ---------------------------------------------------------------------------
// A raw ZMTP 3.0 peer, written by hand (NULL mechanism).

fn zmtp_greeting() -> Vec<u8> {
    let mut g = vec![0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn frame_header(flags: u8, len: u64) -> Vec<u8> {
    if len > 255 {
        let mut h = vec![flags | 0x02];
        h.extend_from_slice(&len.to_be_bytes());
        h
    } else {
        vec![flags, len as u8]
    }
}

fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = frame_header(flags, body.len() as u64);
    f.extend_from_slice(body);
    f
}

fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    frame(0x04, &body)
}

struct RawPeer(TcpStream);

impl RawPeer {
    async fn connect(endpoint: &str) -> RawPeer {
        let addr = endpoint.strip_prefix("tcp://").expect("a tcp endpoint");
        RawPeer(TcpStream::connect(addr).await.expect("tcp connect"))
    }

    /// Greeting and READY both ways, as a DEALER.
    async fn handshake(endpoint: &str) -> RawPeer {
        let mut p = RawPeer::connect(endpoint).await;
        p.0.write_all(&zmtp_greeting()).await.unwrap();
        p.0.write_all(&ready("DEALER")).await.unwrap();
        let mut greeting = [0u8; GREETING_LEN];
        tokio::time::timeout(WAIT, p.0.read_exact(&mut greeting))
            .await
            .expect("server greeting in time")
            .unwrap();
        assert_eq!((greeting[0], greeting[9], greeting[10]), (0xFF, 0x7F, 3));
        let (flags, _) = p.read_frame().await.expect("server READY");
        assert_eq!(flags & 0x04, 0x04, "the server's first frame is a command");
        p
    }

    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let flags = self.0.read_u8().await.ok()?;
        let len = if flags & 0x02 != 0 {
            self.0.read_u64().await.ok()?
        } else {
            u64::from(self.0.read_u8().await.ok()?)
        };
        let mut body = vec![0u8; usize::try_from(len).ok()?];
        self.0.read_exact(&mut body).await.ok()?;
        Some((flags, body))
    }

    /// The next message's frames (commands skipped).
    async fn recv(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        loop {
            let (flags, body) = tokio::time::timeout(WAIT, self.read_frame())
                .await
                .expect("a frame within 5 s")
                .expect("a frame, not EOF");
            if flags & 0x04 != 0 {
                continue;
            }
            frames.push(body);
            if flags & 0x01 == 0 {
                return frames;
            }
        }
    }

    async fn send(&mut self, frames: &[&[u8]]) {
        let mut bytes = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let more = if i + 1 < frames.len() { 0x01 } else { 0 };
            bytes.extend(frame(more, f));
        }
        self.0.write_all(&bytes).await.unwrap();
    }

    /// True when the server closes the connection within 5 s (EOF or reset).
    async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match tokio::time::timeout(WAIT, self.0.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------
// (a) The 2^40-byte frame that aborts an unguarded `zeromq` process.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_announcing_2_pow_40_bytes_closes_only_that_connection() {
    let s = start("huge", |_| {}).await;
    let mut peer = RawPeer::handshake(&s.requests[0]).await;
    peer.0.write_all(&frame_header(0, 1 << 40)).await.unwrap();
    assert!(peer.closed().await, "the guard closes the connection");
    assert_eq!(s.stats.snapshot().connections_refused, 1);
    assert_serves(&s.requests[0]).await;
    s.stop().await;
}

// (b) Frames at and over max_frame_bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_at_the_limit_pass_and_over_it_close() {
    let s = start("limit", |_| {}).await;
    let mut peer = RawPeer::handshake(&s.requests[0]).await;

    // Exactly the limit reaches the server, which answers (it is over max_request_bytes).
    let at_limit = vec![b' '; MAX_FRAME];
    peer.send(&[&at_limit]).await;
    let reply = json_of(&peer.recv().await[0]);
    assert_eq!(error_code(&reply), "request_too_large");
    // One byte under: the same, and the connection is still usable.
    peer.send(&[&at_limit[1..]]).await;
    assert_eq!(
        error_code(&json_of(&peer.recv().await[0])),
        "request_too_large"
    );
    peer.send(&[health(1).as_bytes()]).await;
    assert_eq!(json_of(&peer.recv().await[0])["ok"], true);

    // One byte over: closed at the header, before any body is sent.
    peer.0
        .write_all(&frame_header(0, MAX_FRAME as u64 + 1))
        .await
        .unwrap();
    assert!(peer.closed().await);

    // Two frames of one message that add up to more than the limit: closed too.
    let mut peer = RawPeer::handshake(&s.requests[0]).await;
    let half = vec![b' '; MAX_FRAME / 2 + 1];
    peer.send(&[&half, &half]).await;
    assert!(peer.closed().await);

    assert_eq!(s.stats.snapshot().connections_refused, 2);
    assert_serves(&s.requests[0]).await;
    s.stop().await;
}

// (c) Over the protocol's limit, under the guard's: a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_max_request_bytes_gets_request_too_large() {
    let s = start("too-large", |_| {}).await;
    let mut d = dealer(&s.requests[0]).await;
    let big = format!(
        r#"{{"v":1,"id":"big","op":"health","pad":"{}"}}"#,
        "x".repeat(MAX_REQUEST)
    );
    assert!(big.len() > MAX_REQUEST && big.len() < MAX_FRAME);
    let reply = round_trip(&mut d, big).await;
    assert_eq!(error_code(&reply), "request_too_large");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_REQUEST.to_string()),
        "{reply}"
    );
    // The same connection keeps working.
    assert_eq!(round_trip(&mut d, health(2)).await["ok"], true);
    s.stop().await;
}

// (d) A client that floods and never reads does not hold up another client.
//
// Clients run on their own OS threads and runtimes, as separate processes would (a
// client task sharing the server's two worker threads measures tokio's scheduling of
// the test, not the server).

/// Runs `f` on a new thread with its own single-threaded runtime.
fn on_own_thread<F, T>(f: impl FnOnce() -> F + Send + 'static) -> std::thread::JoinHandle<T>
where
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

/// A raw peer that sends requests as fast as it can and never reads a reply.
/// Returns how many it wrote and whether a write ever blocked for 100 ms (back-pressure).
fn never_reading_flood(endpoint: &str, stop: Arc<AtomicBool>) -> (u64, bool) {
    use std::io::{Read, Write};
    let addr = endpoint.strip_prefix("tcp://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(&zmtp_greeting()).unwrap();
    s.write_all(&ready("DEALER")).unwrap();
    // The handshake is read (64-byte greeting, then the READY command); replies never are.
    let mut greeting = [0u8; GREETING_LEN];
    s.read_exact(&mut greeting).unwrap();
    let mut header = [0u8; 2];
    s.read_exact(&mut header).unwrap();
    let mut ready_body = vec![0u8; usize::from(header[1])];
    s.read_exact(&mut ready_body).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut batch = Vec::new();
    for i in 0..64 {
        batch.extend(frame(0, health(i).as_bytes()));
    }
    let (mut written, mut blocked) = (0u64, false);
    let mut pending: &[u8] = &batch;
    while !stop.load(Ordering::Relaxed) {
        match s.write(pending) {
            Ok(n) => {
                pending = &pending[n..];
                if pending.is_empty() {
                    written += 64;
                    pending = &batch;
                }
            }
            Err(_) => blocked = true,
        }
    }
    (written, blocked)
}

/// `n` lock-step round trips from a fresh DEALER on its own thread: latencies sorted,
/// and how many were answered `busy`.
async fn timed_round_trips(endpoint: &str, n: u64, first_id: u64) -> (Vec<Duration>, u64) {
    let endpoint = endpoint.to_owned();
    let client = on_own_thread(move || async move {
        let mut d = dealer(&endpoint).await;
        let mut latencies = Vec::new();
        let mut busy = 0;
        for id in first_id..first_id + n {
            let t = Instant::now();
            let reply = round_trip(&mut d, health(id)).await;
            latencies.push(t.elapsed());
            assert_eq!(reply["id"], id, "{reply}");
            // Busy is an allowed answer under load; every request gets one reply.
            if reply["ok"] != true {
                assert_eq!(error_code(&reply), "busy", "{reply}");
                busy += 1;
            }
        }
        latencies.sort();
        (latencies, busy)
    });
    tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_that_never_reads_does_not_delay_others() {
    let s = start("flood", |c| c.max_pending = 256).await;
    // The same client's latency with no flood, on this machine, now.
    let (baseline, _) = timed_round_trips(&s.requests[0], 300, 0).await;

    let stop = Arc::new(AtomicBool::new(false));
    // Flood 1: a raw peer that writes requests forever and never reads.
    let (endpoint, flag) = (s.requests[0].clone(), stop.clone());
    let raw = std::thread::spawn(move || never_reading_flood(&endpoint, flag));
    // Flood 2: a ZeroMQ DEALER that queues 20,000 requests and never calls recv.
    let endpoint = s.requests[0].clone();
    let dealer_flood = on_own_thread(move || async move {
        let mut d = dealer(&endpoint).await;
        let mut sent = 0u64;
        while sent < 20_000 {
            match tokio::time::timeout(WAIT, d.send(ZmqMessage::from(health(sent)))).await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
        }
        // Keep the connection open (never reading) until the test ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
        sent
    });
    let t0 = Instant::now();
    while s.stats.snapshot().requests < 2_300 {
        assert!(t0.elapsed() < WAIT, "flood did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The issue's bound: the floods add less than 100 ms (at p99) to this client's
    // unloaded latency, measured on the same, possibly busy, machine. A second
    // measurement (floods still running) is allowed when other tests' load makes the
    // first miss, so the check does not flake on a busy machine; both are printed.
    let bound = Duration::from_millis(100);
    let mut added = Duration::MAX;
    for attempt in 1..=2 {
        let first_id = 1_000_000 * attempt;
        let (latencies, busy) = timed_round_trips(&s.requests[0], 300, first_id).await;
        let stats = s.stats.snapshot();
        println!(
            "fairness (attempt {attempt}): 300 lock-step round trips; unloaded p50 {:?} p99 {:?}; \
             under two floods p50 {:?} p99 {:?} max {:?}, busy {busy}; \
             server received {}, replies sent {}, dropped {}, stalls {}",
            percentile(&baseline, 0.5),
            percentile(&baseline, 0.99),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            stats.requests,
            stats.replies_sent,
            stats.replies_dropped,
            stats.stalls
        );
        added = percentile(&latencies, 0.99).saturating_sub(percentile(&baseline, 0.99));
        if added < bound {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (raw_written, raw_blocked) = tokio::task::spawn_blocking(move || raw.join().unwrap())
        .await
        .unwrap();
    println!("the never-reader wrote {raw_written} requests (back-pressured: {raw_blocked})");
    // The never-reader is held at the guard's window, not served without bound.
    assert!(raw_blocked, "the never-reading peer felt back-pressure");
    assert!(added < bound, "p99 grew by {added:?}");
    drop(dealer_flood);
    s.stop().await;
}

// (e) REQ and DEALER envelopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_and_dealer_envelopes_both_work() {
    let s = start("envelopes", |_| {}).await;
    let mut req = ReqSocket::new();
    req.connect(&s.requests[0]).await.unwrap();
    let reply = round_trip(&mut req, r#"{"v":1,"id":"r-1","op":"health"}"#.into()).await;
    assert_eq!(
        (reply["ok"].clone(), reply["id"].clone()),
        (true.into(), "r-1".into())
    );
    // A second round trip: REQ only works if the reply carried the delimiter.
    let reply = round_trip(&mut req, r#"{"v":1,"id":"r-2","op":"printers"}"#.into()).await;
    assert_eq!(reply["op"], "printers");

    let mut d = dealer(&s.requests[0]).await;
    let m = {
        d.send(ZmqMessage::from(health(5))).await.unwrap();
        tokio::time::timeout(WAIT, d.recv()).await.unwrap().unwrap()
    };
    assert_eq!(m.len(), 1, "a DEALER request gets a one-frame reply");
    assert_eq!(json_of(&m.into_vec()[0])["id"], 5);

    // A raw DEALER imitating REQ gets the delimiter back.
    let mut raw = RawPeer::handshake(&s.requests[0]).await;
    raw.send(&[b"", health(6).as_bytes()]).await;
    let frames = raw.recv().await;
    assert_eq!(frames.len(), 2);
    assert!(frames[0].is_empty());
    assert_eq!(json_of(&frames[1])["id"], 6);
    // Two body frames (no delimiter) is bad_frames, still one reply.
    raw.send(&[b"{}", b"{}"]).await;
    assert_eq!(error_code(&json_of(&raw.recv().await[0])), "bad_frames");
    s.stop().await;
}

// (f) Garbage instead of a greeting closes only that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_greeting_closes_only_that_connection() {
    let s = start("garbage", |_| {}).await;
    let mut keep = dealer(&s.requests[0]).await;
    let mut http = RawPeer::connect(&s.requests[0]).await;
    http.0
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(http.closed().await);
    // A ZMTP 2 peer (major version 1 in the greeting).
    let mut old = RawPeer::connect(&s.requests[0]).await;
    let mut g = zmtp_greeting();
    g[10] = 1;
    old.0.write_all(&g).await.unwrap();
    assert!(old.closed().await);
    // Reserved flag bits after a good handshake.
    let mut flags = RawPeer::handshake(&s.requests[0]).await;
    flags.0.write_all(&[0x80, 0]).await.unwrap();
    assert!(flags.closed().await);
    assert_eq!(s.stats.snapshot().connections_refused, 3);
    // The connection opened before is unaffected.
    assert_eq!(round_trip(&mut keep, health(7)).await["id"], 7);
    s.stop().await;
}

// (g) Events reach a subscriber, filtered by topic prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_subscriber_with_topic_filtering() {
    let s = start("events", |_| {}).await;
    let mut sub = SubSocket::new();
    sub.connect(&s.events[0]).await.unwrap();
    sub.subscribe("job.").await.unwrap();
    // A subscription takes effect asynchronously: publish until something arrives.
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut n = 0u32;
    while received.len() < 3 {
        assert!(Instant::now() < deadline, "no event within 5 s");
        n += 1;
        s.event_tx
            .send(("printer.zebra-1".into(), br#"{"state":"ready"}"#.to_vec()))
            .await
            .unwrap();
        s.event_tx
            .send((format!("job.{n}"), format!(r#"{{"n":{n}}}"#).into_bytes()))
            .await
            .unwrap();
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
            received.push(m.into_vec());
        }
    }
    for frames in &received {
        assert_eq!(frames.len(), 2, "[topic, payload]");
        let topic = std::str::from_utf8(&frames[0]).unwrap();
        assert!(topic.starts_with("job."), "{topic}");
        let n: u32 = topic["job.".len()..].parse().unwrap();
        assert_eq!(json_of(&frames[1])["n"], n);
    }
    assert!(s.stats.snapshot().events_published >= 3);
    s.stop().await;
}

// (h) ipc: file mode, stale file replaced, unsafe cases refused, files removed at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_socket_files_are_0660_and_stale_ones_are_replaced() {
    let dir = TempDir::new("ipc");
    let sockets = dir.0.join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o750)).unwrap();
    let requests = sockets.join("requests.sock");
    let events = sockets.join("events.sock");
    // A stale socket file: bound, then its listener dropped.
    drop(std::os::unix::net::UnixListener::bind(&requests).unwrap());
    assert!(requests.exists());

    let mut cfg = config(&dir.0);
    cfg.requests = vec![format!("ipc://{}", requests.display())];
    cfg.events = vec![format!("ipc://{}", events.display())];
    let server = Server::bind(cfg.clone())
        .await
        .expect("bind over a stale file");
    assert_eq!(
        server.request_endpoints(),
        [format!("ipc://{}", requests.display())]
    );
    for path in [&requests, &events] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "{}", path.display());
    }
    // The internal directory is private.
    let internal: Vec<_> = std::fs::read_dir(dir.0.join("run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(internal.len(), 1, "{internal:?}");
    assert_eq!(
        std::fs::metadata(&internal[0])
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // A second server on the same, live, path is refused.
    match Server::bind(cfg.clone()).await {
        Err(ServerError::InUse { .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }

    let (incoming, rx) = mpsc::channel(16);
    spawn_echo(rx);
    let (_event_tx, event_rx) = mpsc::channel(1);
    let (stop, stop_rx) = watch::channel(false);
    let endpoint = server.request_endpoints()[0].clone();
    let task = tokio::spawn(server.serve(incoming, event_rx, stop_rx));
    assert_serves(&endpoint).await;
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!requests.exists(), "request socket removed at shutdown");
    assert!(!events.exists(), "event socket removed at shutdown");
    assert_eq!(std::fs::read_dir(dir.0.join("run")).unwrap().count(), 0);

    // A regular file at the path is never replaced.
    std::fs::write(&requests, b"keep me").unwrap();
    match Server::bind(cfg.clone()).await {
        Err(ServerError::NotASocket { .. }) => {}
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert_eq!(std::fs::read(&requests).unwrap(), b"keep me");
    std::fs::remove_file(&requests).unwrap();

    // A directory others can enter is refused.
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o755)).unwrap();
    match Server::bind(cfg).await {
        Err(ServerError::DirectoryOpen { mode: 0o755, .. }) => {}
        other => panic!("expected DirectoryOpen, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_tcp_needs_allow_remote() {
    let dir = TempDir::new("remote");
    let mut cfg = config(&dir.0);
    cfg.requests = vec!["tcp://0.0.0.0:0".into()];
    match Server::bind(cfg).await {
        Err(e @ ServerError::RemoteNotAllowed { .. }) => {
            assert!(e.to_string().contains("allow_remote"), "{e}")
        }
        other => panic!("expected RemoteNotAllowed, got {other:?}"),
    }
    let mut cfg = config(&dir.0);
    cfg.events = vec!["tcp://localhost:99999".into()];
    assert!(matches!(
        Server::bind(cfg).await,
        Err(ServerError::BadEndpoint { .. })
    ));
}

// Busy, internal (dropped oneshot) and shutting_down: every request gets one reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_busy_dropped_reply_is_internal_and_shutdown_answers() {
    // A handler queue of one, not read at first.
    let (incoming, mut rx) = mpsc::channel(1);
    let s = start_with("busy", |_| {}, incoming).await;
    let mut a = dealer(&s.requests[0]).await;
    a.send(ZmqMessage::from(health(1))).await.unwrap();
    let t0 = Instant::now();
    while s.stats.snapshot().requests < 1 {
        assert!(t0.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = round_trip(&mut a, health(2)).await;
    assert_eq!(error_code(&reply), "busy");
    assert_eq!(reply["id"], 2, "busy echoes the id");

    // The first request is still answered once the handler reads it.
    let first = rx.recv().await.unwrap();
    first
        .reply
        .send(Reply::data(first.request.id, Map::new()))
        .unwrap();
    assert_eq!(recv_json(&mut a).await["id"], 1);

    // A dropped oneshot is answered internal.
    a.send(ZmqMessage::from(
        r#"{"v":1,"id":3,"op":"pause","printer":"p"}"#,
    ))
    .await
    .unwrap();
    drop(rx.recv().await.unwrap());
    let reply = recv_json(&mut a).await;
    assert_eq!(error_code(&reply), "internal");
    assert_eq!(reply["id"], 3);

    // Hold one request at the handler so the flush lasts, then stop: a new request
    // is answered shutting_down, and so is one after the handler queue closes.
    a.send(ZmqMessage::from(health(4))).await.unwrap();
    let held = rx.recv().await.unwrap();
    s.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = dealer(&s.requests[0]).await;
    let reply = round_trip(&mut b, health(5)).await;
    assert_eq!(error_code(&reply), "shutting_down");
    assert_eq!(reply["id"], 5);
    // The held request's reply is still delivered during the flush.
    held.reply
        .send(Reply::data(held.request.id, Map::new()))
        .unwrap();
    assert_eq!(recv_json(&mut a).await["id"], 4);
    let result = tokio::time::timeout(WAIT, s.task).await.unwrap().unwrap();
    assert!(result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_handler_queue_answers_shutting_down() {
    let (incoming, rx) = mpsc::channel(4);
    drop(rx);
    let s = start_with("closed", |_| {}, incoming).await;
    let mut d = dealer(&s.requests[0]).await;
    let reply = round_trip(&mut d, health(8)).await;
    assert_eq!(error_code(&reply), "shutting_down");
    // Malformed requests are still answered by the server itself.
    assert_eq!(
        error_code(&round_trip(&mut d, "{".into()).await),
        "malformed_json"
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------
// FrameScanner properties.

/// A frame to encode: flags (MORE, COMMAND) and a body length.
#[derive(Clone, Debug)]
struct TestFrame {
    more: bool,
    command: bool,
    len: usize,
}

fn encode(frames: &[TestFrame]) -> (Vec<u8>, u64) {
    let mut bytes = zmtp_greeting();
    let mut messages = 0;
    for f in frames {
        let flags = if f.command {
            0x04
        } else if f.more {
            0x01
        } else {
            messages += 1;
            0
        };
        bytes.extend(frame(flags, &vec![0xAB; f.len]));
    }
    (bytes, messages)
}

fn frames_strategy() -> impl Strategy<Value = Vec<TestFrame>> {
    prop::collection::vec(
        (any::<bool>(), prop::bool::weighted(0.1), 0usize..700).prop_map(|(more, command, len)| {
            TestFrame {
                more: more && !command,
                command,
                len,
            }
        }),
        0..40,
    )
    .prop_map(|mut frames| {
        // End on a complete message so counts are comparable.
        if let Some(last) = frames.last_mut() {
            last.more = false;
        }
        frames
    })
}

/// Splits `bytes` at the sorted, deduplicated cut points.
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[start..c].to_vec());
        start = c;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of a valid stream gives the same message count as the whole, and
    /// the count of frames without MORE.
    #[test]
    fn random_splits_of_a_valid_stream_agree(
        frames in frames_strategy(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        // Messages are at most 64 frames, each under 700 bytes: under 64 KiB.
        let (bytes, expected) = encode(&frames);
        let mut whole = FrameScanner::new(64 * 1024);
        prop_assert_eq!(whole.feed(&bytes), Ok(expected));
        let mut split = FrameScanner::new(64 * 1024);
        let mut total = 0;
        for chunk in chunks(&bytes, &cuts) {
            total += split.feed(&chunk).expect("valid stream");
        }
        prop_assert_eq!(total, expected);
        prop_assert_eq!(split.messages(), expected);
    }

    /// A frame announcing more than the limit is refused at the last byte of its
    /// header, however the stream is split, with no byte of its body sent.
    #[test]
    fn an_oversized_announcement_is_caught_before_its_body(
        frames in frames_strategy(),
        announced in (1_025u64..=u64::MAX),
        command in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let max = 1024;
        let frames: Vec<TestFrame> = frames.into_iter().map(|mut f| { f.len = f.len.min(max / 64); f }).collect();
        let (mut bytes, _) = encode(&frames);
        let flags = if command { 0x04 } else { 0x00 };
        bytes.extend(frame_header(flags, announced));
        let header_end = bytes.len();
        let mut s = FrameScanner::new(max);
        let mut fed = 0;
        let mut error = None;
        for chunk in chunks(&bytes, &cuts) {
            fed += chunk.len();
            match s.feed(&chunk) {
                Ok(_) => prop_assert!(fed < header_end, "passed the header"),
                Err(e) => {
                    prop_assert!(fed >= header_end, "refused early at {}", fed);
                    error = Some(e);
                    break;
                }
            }
        }
        prop_assert_eq!(error, Some(ScanError::FrameTooLarge { announced, max }));
    }
}
