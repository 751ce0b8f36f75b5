//! The job API's sockets: a ZeroMQ ROUTER for requests and a PUB for events, behind
//! a ZMTP frame-length guard, with one reply for every request.
//!
//! # Contract
//!
//! - **Requests** arrive on the ROUTER from DEALER or REQ clients. A REQ client (or a
//!   DEALER imitating one) puts an empty delimiter frame before the body; the reply
//!   goes back with the same envelope shape. The body is one frame of JSON, see
//!   [`crate::protocol`]. For each message: [`protocol::check`] (frames, size,
//!   UTF-8), then [`protocol::parse_request`], then the request goes to the handler as
//!   an [`Incoming`] with a oneshot for its [`Reply`]. **Every request gets exactly one
//!   reply**: a check or parse error is answered at once; a full handler queue or the
//!   cap on requests in progress ([`ServerConfig::max_pending`]) is `busy`; a closed
//!   handler queue or a shutdown is `shutting_down`; a handler that drops the oneshot
//!   is `internal`. Bodies over 64 KiB are parsed on a blocking thread so a large
//!   batch never holds up the receive loop; pipelined requests may therefore reach
//!   the handler out of order (wait for a reply before a request that depends on it).
//! - **Replies** are sent by their own task through [`RouterSocket::split`]'s send
//!   half, each send under [`ServerConfig::reply_timeout`], from a bounded queue. A
//!   peer whose send times out is marked stalled and its replies are dropped (counted,
//!   logged once per episode) for [`STALL_COOL_DOWN`], so a client that never reads
//!   delays the others by at most one timeout per cool-down.
//! - **Events** are published on the PUB socket as two frames, `[topic, json]`; see
//!   [`crate::events`] for topics. PUB drops messages for slow subscribers, and each
//!   send is also under a timeout; publishing never waits on a client.
//! - **Shutdown** (the watch turns `true`, or its sender is dropped): new requests are
//!   answered `shutting_down`; replies to requests already with the handler are
//!   flushed for up to [`FLUSH_TIME`]; then the listeners and sockets close and the
//!   ipc files (public and internal) are removed.
//!
//! # The guard and the endpoints
//!
//! See [`guard`]: clients never talk to the `zeromq` crate directly, because it aborts
//! the process on a frame header announcing 2^40 bytes. The public listeners are
//! labeld's own; the crate binds only a private `ipc://` endpoint in a 0700 directory
//! under the runtime directory. Public ipc socket files are 0660 in a directory
//! others cannot enter; non-loopback tcp needs [`ServerConfig::allow_remote`].
//!
//! # What `zeromq` 0.7 does, read from its source (`router.rs`, `backend.rs`, `pub.rs`)
//!
//! - `RouterSocket::split()` gives a cloneable send half and a receive half that
//!   share the socket; it stays open until both are dropped.
//! - `send` hands the whole message to the peer's queue (a `futures` mpsc channel of
//!   100,000 messages, not configurable); a separate writer task per peer encodes and
//!   writes it. `Ok` means queued, not delivered. It waits only when that queue is
//!   full. **A send future dropped by a timeout never leaves a partial frame on the
//!   wire**: the message is either queued whole (`try_send` or `start_send` succeeded)
//!   or dropped whole with the future; framing happens later, in the writer task, on
//!   whole messages. A send to an identity that is no longer connected fails at once.
//!   While it waits, the send holds the peer's map entry across the await, so the
//!   guard's per-connection window ([`guard::CONNECTION_WINDOW`]) keeps every queue far
//!   below its capacity and this path is never taken in practice; the timeout is the
//!   second line of defence.
//! - `RouterRecvHalf::recv` is a poll of a fair queue over peers: dropping it before it
//!   returns loses no message.
//! - `PubSocket::send` never waits: it pushes onto a 100,000-message fan-out queue (or
//!   drops when full, or when no one subscribes) and each subscriber has its own
//!   100,000-message queue that drops when full.
//! - A peer may choose its routing identity (the READY `Identity` property); two peers
//!   with one identity share replies. labeld's clients do not set one; local access
//!   control (file modes, loopback) is what keeps strangers out.

pub mod guard;

mod endpoint;
mod stall;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use zeromq::{PubSocket, RouterSendHalf, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use crate::protocol::{self, ClientId, ErrorCode, Limits, ProtocolError, Reply, Request};

pub use endpoint::{INTERNAL_DIR_MODE, IPC_DIR_MODE, IPC_SOCKET_MODE};

use guard::{Cleanup, Front, FrontConfig, FrontCounters, FrontKind, PublicListener};
use stall::{Check, StallTracker};

/// Default [`ServerConfig::reply_timeout`]: half the 100 ms a slow client may cost others.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_millis(50);

/// Default [`ServerConfig::max_pending`].
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How long a peer whose reply send timed out has its replies dropped.
pub const STALL_COOL_DOWN: Duration = Duration::from_secs(5);

/// How long shutdown waits for replies to requests already accepted.
pub const FLUSH_TIME: Duration = Duration::from_secs(1);

/// Each event send waits at most this long (PUB sends do not wait in `zeromq` 0.7;
/// this bounds a future version that might).
pub const EVENT_SEND_TIMEOUT: Duration = Duration::from_millis(50);

/// Bodies up to this size are parsed on the receive loop; larger ones on a blocking thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The default guard limit for `limits`: the largest request plus 64 KiB, so a
/// request over [`Limits::max_request_bytes`] but under this gets a typed
/// `request_too_large` reply, and only larger frames close the connection.
pub fn default_max_frame_bytes(limits: &Limits) -> usize {
    limits.max_request_bytes.saturating_add(64 * 1024)
}

/// Where and how the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Request endpoints (`tcp://host:port`, `ipc://path`); at least one.
    pub requests: Vec<String>,
    /// Event endpoints; may be empty (events are then discarded).
    pub events: Vec<String>,
    /// The runtime directory: holds the private directory for internal sockets
    /// (created 0750 when missing).
    pub runtime_dir: PathBuf,
    /// Allow binding non-loopback tcp addresses (logs a warning: no CURVE).
    pub allow_remote: bool,
    /// Request limits passed to [`protocol::check`] and [`protocol::parse_request`].
    pub limits: Limits,
    /// The guard's limit on one frame, and on one message's frames together, from a
    /// client. Larger closes the connection; keep it above `limits.max_request_bytes`
    /// (see [`default_max_frame_bytes`]) so oversized requests get a typed error first.
    pub max_frame_bytes: usize,
    /// Longest wait for one reply send before the peer is marked stalled.
    pub reply_timeout: Duration,
    /// Most requests parsed or with the handler at once; beyond it, `busy`.
    pub max_pending: usize,
}

impl ServerConfig {
    /// The local defaults: `ipc://<runtime_dir>/requests.sock` and
    /// `tcp://127.0.0.1:7310` for requests, `ipc://<runtime_dir>/events.sock` and
    /// `tcp://127.0.0.1:7311` for events; default limits and timeouts.
    pub fn local(runtime_dir: PathBuf) -> ServerConfig {
        let limits = Limits::default();
        ServerConfig {
            requests: vec![
                format!("ipc://{}", runtime_dir.join("requests.sock").display()),
                "tcp://127.0.0.1:7310".to_owned(),
            ],
            events: vec![
                format!("ipc://{}", runtime_dir.join("events.sock").display()),
                "tcp://127.0.0.1:7311".to_owned(),
            ],
            runtime_dir,
            allow_remote: false,
            max_frame_bytes: default_max_frame_bytes(&limits),
            limits,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// A request for the handler, with the way to answer it.
#[derive(Debug)]
pub struct Incoming {
    /// The parsed request.
    pub request: Request,
    /// Send exactly one reply here. Dropping it answers the client `internal`.
    pub reply: oneshot::Sender<Reply>,
}

/// The server could not start or lost its sockets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is out of range.
    #[error("server config: {message}")]
    Config {
        /// What is wrong and what is allowed.
        message: String,
    },
    /// An endpoint string that cannot be used.
    #[error("endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A non-loopback tcp address without `allow_remote`.
    #[error("endpoint {endpoint:?} is not a loopback address; labeld's ZeroMQ has no CURVE, so remote binds need allow_remote = true (read the README's security section first)")]
    RemoteNotAllowed {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// Binding failed.
    #[error("endpoint {endpoint:?}: cannot bind: {source}")]
    Bind {
        /// The endpoint as configured.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A process already accepts on this ipc socket.
    #[error("endpoint {endpoint:?} is in use by a running process (another labeld?)")]
    InUse {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// The ipc path exists and is not a socket.
    #[error("{path}: exists and is not a socket; labeld will not replace it (remove it or choose another path)")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A directory could not be created or read.
    #[error("directory {dir}: {source}")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A directory for ipc sockets that others can access.
    #[error("directory {dir} has mode {mode:03o}; ipc sockets need a directory others cannot access (chmod o-rwx)")]
    DirectoryOpen {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The `zeromq` crate failed.
    #[error("zeromq: cannot {what}: {source}")]
    Zmq {
        /// What was being done.
        what: &'static str,
        /// The crate's error.
        source: zeromq::ZmqError,
    },
}

/// Counters, readable while the server runs (for `health` and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Messages received on the ROUTER.
    pub requests: u64,
    /// Replies handed to the ROUTER.
    pub replies_sent: u64,
    /// Replies dropped: peer stalled or gone.
    pub replies_dropped: u64,
    /// Requests answered `busy`.
    pub busy: u64,
    /// Times a peer was marked stalled.
    pub stalls: u64,
    /// Events handed to the PUB socket.
    pub events_published: u64,
    /// Events whose send timed out.
    pub events_dropped: u64,
    /// Connections accepted by the fronts.
    pub connections: u64,
    /// Connections closed by the guard (frame size, greeting, flags, handshake timeout).
    pub connections_refused: u64,
    /// Connections closed at once because a front was full.
    pub connections_over_capacity: u64,
}

/// The server's own counters.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    replies_sent: AtomicU64,
    replies_dropped: AtomicU64,
    busy: AtomicU64,
    stalls: AtomicU64,
    events_published: AtomicU64,
    events_dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A cheap handle for reading a server's counters.
#[derive(Clone, Debug)]
pub struct StatsHandle {
    counters: Arc<Counters>,
    front: Arc<FrontCounters>,
}

impl StatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> ServerStats {
        let c = &self.counters;
        let f = &self.front;
        ServerStats {
            requests: c.requests.load(Ordering::Relaxed),
            replies_sent: c.replies_sent.load(Ordering::Relaxed),
            replies_dropped: c.replies_dropped.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
            stalls: c.stalls.load(Ordering::Relaxed),
            events_published: c.events_published.load(Ordering::Relaxed),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
            connections: f.accepted.load(Ordering::Relaxed),
            connections_refused: f.rejected.load(Ordering::Relaxed),
            connections_over_capacity: f.over_capacity.load(Ordering::Relaxed),
        }
    }
}

/// A bound server, ready to [`serve`](Server::serve).
///
/// Dropping it without serving closes everything and removes its files.
pub struct Server {
    /// The configuration it was bound with.
    config: ServerConfig,
    /// The crate's ROUTER, on the private endpoint.
    router: RouterSocket,
    /// The crate's PUB, when events are configured.
    publisher: Option<PubSocket>,
    /// The public listeners' accept loops (already accepting).
    front: Front,
    /// Request endpoints as bound.
    request_endpoints: Vec<String>,
    /// Event endpoints as bound.
    event_endpoints: Vec<String>,
    /// The server's counters.
    counters: Arc<Counters>,
    /// The fronts' counters.
    front_counters: Arc<FrontCounters>,
    /// Files to remove at the end; declared last so it runs after the sockets close.
    cleanup: Cleanup,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("request_endpoints", &self.request_endpoints)
            .field("event_endpoints", &self.event_endpoints)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds every endpoint and starts accepting connections (requests wait in the
    /// sockets until [`serve`](Server::serve) runs).
    ///
    /// # Errors
    ///
    /// A bad setting or endpoint, a refused remote bind, an unsafe ipc directory, an
    /// ipc path in use or not a socket, or an OS error; nothing stays bound then.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        validate(&config)?;
        let cleanup = Cleanup::default();
        let internal = endpoint::internal_dir(&config.runtime_dir)?;
        cleanup.dir(&internal);

        let router_path = internal.join("requests.sock");
        let mut router = RouterSocket::new();
        router
            .bind_listener(bind_internal(&router_path)?)
            .await
            .map_err(|source| ServerError::Zmq {
                what: "bind the internal ROUTER socket",
                source,
            })?;
        let events_path = internal.join("events.sock");
        let publisher = if config.events.is_empty() {
            None
        } else {
            let mut publisher = PubSocket::new();
            publisher
                .bind_listener(bind_internal(&events_path)?)
                .await
                .map_err(|source| ServerError::Zmq {
                    what: "bind the internal PUB socket",
                    source,
                })?;
            Some(publisher)
        };

        let front_counters = Arc::new(FrontCounters::default());
        let mut front = Front::default();
        let mut request_endpoints = Vec::new();
        let mut event_endpoints = Vec::new();
        let fronts = [
            (
                &config.requests,
                FrontKind::Requests,
                &router_path,
                &mut request_endpoints,
            ),
            (
                &config.events,
                FrontKind::Events,
                &events_path,
                &mut event_endpoints,
            ),
        ];
        for (endpoints, kind, internal, bound) in fronts {
            for configured in endpoints {
                let (listener, resolved) =
                    endpoint::bind_public(configured, config.allow_remote).await?;
                if let PublicListener::Ipc(_, path) = &listener {
                    cleanup.file(path);
                }
                tracing::info!(endpoint = %resolved, front = ?kind, "listening");
                front.spawn(
                    listener,
                    FrontConfig {
                        kind,
                        internal: internal.clone(),
                        max_frame_bytes: config.max_frame_bytes,
                    },
                    front_counters.clone(),
                );
                bound.push(resolved);
            }
        }
        Ok(Server {
            config,
            router,
            publisher,
            front,
            request_endpoints,
            event_endpoints,
            counters: Arc::default(),
            front_counters,
            cleanup,
        })
    }

    /// The request endpoints as a client would connect to them
    /// (`tcp://127.0.0.1:40123`, `ipc:///run/labeld/requests.sock`), in configured order.
    pub fn request_endpoints(&self) -> &[String] {
        &self.request_endpoints
    }

    /// The event endpoints, as [`request_endpoints`](Server::request_endpoints).
    pub fn event_endpoints(&self) -> &[String] {
        &self.event_endpoints
    }

    /// A handle on the counters, valid during and after [`serve`](Server::serve).
    pub fn stats(&self) -> StatsHandle {
        StatsHandle {
            counters: self.counters.clone(),
            front: self.front_counters.clone(),
        }
    }

    /// Serves until `shutdown` becomes `true` (or its sender is dropped), then flushes
    /// replies for up to [`FLUSH_TIME`], closes everything and removes the ipc files.
    ///
    /// Requests go to `incoming` with `try_send` (full: `busy`; closed: `shutting_down`).
    /// `events` supplies `(topic, json)` pairs for the PUB socket.
    ///
    /// # Errors
    ///
    /// Only if the ROUTER socket stops delivering messages, which `zeromq` 0.7 does
    /// not do while the socket is open.
    pub async fn serve(
        self,
        incoming: mpsc::Sender<Incoming>,
        events: mpsc::Receiver<(String, Vec<u8>)>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ServerError> {
        let Server {
            config,
            router,
            publisher,
            mut front,
            counters,
            front_counters,
            cleanup,
            ..
        } = self;
        let (send_half, mut recv_half) = router.split();
        let (queue, queue_rx) = mpsc::channel(config.max_pending.saturating_add(16));
        let sender = tokio::spawn(send_replies(
            send_half,
            queue_rx,
            config.reply_timeout,
            counters.clone(),
        ));
        let publisher_task = tokio::spawn(publish_events(publisher, events, counters.clone()));
        let shared = Arc::new(Shared {
            limits: config.limits,
            incoming,
            queue,
            pending: Arc::new(Semaphore::new(config.max_pending)),
            pending_kib: Arc::new(Semaphore::new(pending_budget_kib(&config.limits))),
            stopping: AtomicBool::new(false),
            counters: counters.clone(),
        });

        let mut result = Ok(());
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                biased;
                () = wait_for_shutdown(&mut shutdown), if deadline.is_none() => {
                    shared.stopping.store(true, Ordering::Release);
                    deadline = Some(tokio::time::Instant::now() + FLUSH_TIME);
                    tracing::info!("stopping: new requests are answered shutting_down; flushing replies");
                }
                () = sleep_until_some(deadline) => {
                    let open = front_counters.unanswered.load(Ordering::Acquire);
                    tracing::warn!(unanswered = open, "closing with requests still unanswered after {} ms", FLUSH_TIME.as_millis());
                    break;
                }
                _ = tick.tick(), if deadline.is_some() => {
                    if front_counters.unanswered.load(Ordering::Acquire) <= 0
                        && shared.pending.available_permits() == config.max_pending
                    {
                        break;
                    }
                }
                message = recv_half.recv() => match message {
                    Ok(message) => {
                        handle(&shared, message).await;
                        // The crate's channels do not count toward tokio's cooperative
                        // budget; without this a flood could keep this task on its
                        // worker thread indefinitely.
                        tokio::task::consume_budget().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "the ROUTER socket stopped delivering requests");
                        result = Err(ServerError::Zmq { what: "receive requests", source: error });
                        break;
                    }
                }
            }
        }

        front.stop().await;
        sender.abort();
        publisher_task.abort();
        // Aborted tasks report cancellation; their sockets drop with them.
        let _ = sender.await;
        let _ = publisher_task.await;
        drop(recv_half);
        drop(shared);
        cleanup.run();
        let stats = StatsHandle {
            counters,
            front: front_counters,
        }
        .snapshot();
        tracing::info!(
            requests = stats.requests,
            replies_sent = stats.replies_sent,
            replies_dropped = stats.replies_dropped,
            busy = stats.busy,
            "server stopped"
        );
        result
    }
}

fn validate(config: &ServerConfig) -> Result<(), ServerError> {
    let bad = |message: &str| {
        Err(ServerError::Config {
            message: message.to_owned(),
        })
    };
    if config.requests.is_empty() {
        return bad("no request endpoint (give at least one, e.g. tcp://127.0.0.1:7310)");
    }
    if config.max_pending == 0 {
        return bad("max_pending is 0; it must be at least 1");
    }
    if config.reply_timeout.is_zero() {
        return bad("reply_timeout is 0; it must be positive (default 50 ms)");
    }
    // A READY command with a long identity must fit.
    if config.max_frame_bytes < 1024 {
        return bad("max_frame_bytes is below 1024 bytes; a ZeroMQ handshake would not fit");
    }
    if config.max_frame_bytes <= config.limits.max_request_bytes {
        tracing::warn!(
            max_frame_bytes = config.max_frame_bytes,
            max_request_bytes = config.limits.max_request_bytes,
            "max_frame_bytes is not above max_request_bytes: oversized requests close the connection instead of getting request_too_large"
        );
    }
    Ok(())
}

/// Binds an internal socket file (the directory is private and fresh).
fn bind_internal(path: &std::path::Path) -> Result<std::os::unix::net::UnixListener, ServerError> {
    std::os::unix::net::UnixListener::bind(path).map_err(|source| ServerError::Bind {
        endpoint: format!("ipc://{}", path.display()),
        source,
    })
}

async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender can never say "stop" again: treat it as stop.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------
// Requests.

/// Where a reply goes.
#[derive(Clone, Debug)]
struct Route {
    /// The ROUTER's routing identity of the peer.
    identity: Bytes,
    /// The request came with an empty delimiter frame (REQ): the reply gets one too.
    delimiter: bool,
}

/// A reply ready to send.
#[derive(Debug)]
struct Outgoing {
    route: Route,
    body: Vec<u8>,
}

impl Outgoing {
    fn into_message(self) -> ZmqMessage {
        let mut message = ZmqMessage::from(Bytes::from(self.body));
        if self.route.delimiter {
            message.push_front(Bytes::new());
        }
        message.push_front(self.route.identity);
        message
    }
}

/// What the receive loop and its tasks share.
#[derive(Debug)]
struct Shared {
    limits: Limits,
    incoming: mpsc::Sender<Incoming>,
    queue: mpsc::Sender<Outgoing>,
    /// One permit per request being parsed or with the handler.
    pending: Arc<Semaphore>,
    /// One permit per KiB of request bodies being parsed or with the handler: the
    /// request count alone does not bound memory (a parsed batch takes several times
    /// its JSON), so bodies together stay under [`pending_budget_kib`].
    pending_kib: Arc<Semaphore>,
    /// Shutdown has begun.
    stopping: AtomicBool,
    counters: Arc<Counters>,
}

/// What a request holds while it is parsed or with the handler.
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// The request-body budget in KiB: 16 MiB, or two of the largest requests allowed.
fn pending_budget_kib(limits: &Limits) -> usize {
    (16 << 10).max(limits.max_request_bytes.div_ceil(1024).saturating_mul(2))
}

/// Queues one reply; waits while the queue is full (it drains at least one reply per
/// reply timeout). After the sender task is gone the reply is dropped.
async fn queue_reply(queue: &mpsc::Sender<Outgoing>, route: Route, reply: &Reply) {
    let body = reply.to_bytes();
    let _ = queue.send(Outgoing { route, body }).await;
}

/// One message from the ROUTER: check, then parse inline or on a blocking thread.
async fn handle(shared: &Arc<Shared>, message: ZmqMessage) {
    bump(&shared.counters.requests);
    let mut frames = message.into_vecdeque();
    // The ROUTER always puts the identity first.
    let Some(identity) = frames.pop_front() else {
        return;
    };
    let delimiter = frames.len() >= 2 && frames.front().is_some_and(|f| f.is_empty());
    if delimiter {
        frames.pop_front();
    }
    let route = Route {
        identity,
        delimiter,
    };
    let checked = {
        let parts: Vec<&[u8]> = frames.iter().map(|f| f.as_ref()).collect();
        protocol::check(&parts, &shared.limits)
    };
    if let Err(e) = checked {
        queue_reply(&shared.queue, route, &Reply::error(&e)).await;
        return;
    }
    // `check` passed: exactly one frame.
    let Some(body) = frames.pop_front() else {
        return;
    };
    let kib = u32::try_from(body.len().div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let permits = shared
        .pending
        .clone()
        .try_acquire_owned()
        .ok()
        .zip(shared.pending_kib.clone().try_acquire_many_owned(kib).ok());
    let Some(permit) = permits else {
        bump(&shared.counters.busy);
        let e = ProtocolError::busy().with_id(peek_id(&body));
        queue_reply(&shared.queue, route, &Reply::error(&e)).await;
        return;
    };
    if body.len() <= INLINE_PARSE_BYTES {
        let parsed = protocol::parse_request(&body, &shared.limits);
        dispatch(shared, route, parsed, permit).await;
    } else {
        let shared = shared.clone();
        tokio::spawn(async move {
            let limits = shared.limits;
            let parsed =
                match tokio::task::spawn_blocking(move || protocol::parse_request(&body, &limits))
                    .await
                {
                    Ok(parsed) => parsed,
                    Err(error) => {
                        tracing::error!(%error, "request parser failed");
                        Err(internal_error())
                    }
                };
            dispatch(&shared, route, parsed, permit).await;
        });
    }
}

/// A parsed (or refused) request: answer it, or hand it to the handler.
async fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    parsed: Result<Request, ProtocolError>,
    permit: Permits,
) {
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            queue_reply(&shared.queue, route, &Reply::error(&e)).await;
            return;
        }
    };
    let id = request.id.clone();
    if shared.stopping.load(Ordering::Acquire) {
        let e = ProtocolError::shutting_down().with_id(id);
        queue_reply(&shared.queue, route, &Reply::error(&e)).await;
        return;
    }
    let (reply, answer) = oneshot::channel();
    match shared.incoming.try_send(Incoming { request, reply }) {
        Ok(()) => {
            let queue = shared.queue.clone();
            tokio::spawn(async move {
                let reply = match answer.await {
                    Ok(reply) => reply,
                    Err(_) => {
                        tracing::error!(
                            "the handler dropped a request without replying; answering internal"
                        );
                        Reply::error(&internal_error().with_id(id))
                    }
                };
                queue_reply(&queue, route, &reply).await;
                drop(permit);
            });
        }
        Err(TrySendError::Full(_)) => {
            bump(&shared.counters.busy);
            let e = ProtocolError::busy().with_id(id);
            queue_reply(&shared.queue, route, &Reply::error(&e)).await;
        }
        Err(TrySendError::Closed(_)) => {
            let e = ProtocolError::shutting_down().with_id(id);
            queue_reply(&shared.queue, route, &Reply::error(&e)).await;
        }
    }
}

fn internal_error() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Internal,
        None,
        "internal error: the request was not answered (the daemon log has the details; retry, and a submit with the same job_id is not printed twice)",
    )
}

/// The request's `"id"`, read cheaply for a `busy` reply (only from small bodies, and
/// only ids the protocol would echo).
fn peek_id(body: &[u8]) -> Option<ClientId> {
    #[derive(Deserialize)]
    struct Peek {
        id: Option<ClientId>,
    }
    if body.len() > INLINE_PARSE_BYTES {
        return None;
    }
    match serde_json::from_slice::<Peek>(body).ok()?.id? {
        ClientId::Str(s)
            if (1..=protocol::MAX_ID_LEN).contains(&s.len())
                && !s.chars().any(char::is_control) =>
        {
            Some(ClientId::Str(s))
        }
        ClientId::Str(_) => None,
        id @ ClientId::Int(_) => Some(id),
    }
}

/// Short hex of a routing identity, for logs.
fn peer_name(identity: &[u8]) -> String {
    identity
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The reply task: sends each queued reply under the timeout; stalled peers' replies
/// are dropped during their cool-down.
async fn send_replies(
    mut send: RouterSendHalf,
    mut queue: mpsc::Receiver<Outgoing>,
    reply_timeout: Duration,
    counters: Arc<Counters>,
) {
    let mut stalls = StallTracker::new(STALL_COOL_DOWN);
    while let Some(out) = queue.recv().await {
        // As in the receive loop: the crate's send does not yield on its own.
        tokio::task::consume_budget().await;
        let now = Instant::now();
        match stalls.check(&out.route.identity, now) {
            Check::Clear => {}
            Check::Stalled => {
                bump(&counters.replies_dropped);
                continue;
            }
            Check::Resumed { dropped } => tracing::info!(
                peer = %peer_name(&out.route.identity),
                dropped,
                "cool-down over; sending this client's replies again"
            ),
        }
        let identity = out.route.identity.clone();
        match tokio::time::timeout(reply_timeout, send.send(out.into_message())).await {
            Ok(Ok(())) => bump(&counters.replies_sent),
            Ok(Err(error)) => {
                bump(&counters.replies_dropped);
                tracing::debug!(peer = %peer_name(&identity), %error, "reply dropped: the client is gone");
            }
            Err(_) => {
                bump(&counters.replies_dropped);
                bump(&counters.stalls);
                if stalls.mark(identity.clone(), now) {
                    tracing::warn!(
                        peer = %peer_name(&identity),
                        timeout_ms = reply_timeout.as_millis() as u64,
                        cool_down_s = STALL_COOL_DOWN.as_secs(),
                        "client is not reading its replies; dropping them for the cool-down"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Events.

/// The event task: `(topic, json)` → PUB, never waiting on subscribers.
async fn publish_events(
    publisher: Option<PubSocket>,
    mut events: mpsc::Receiver<(String, Vec<u8>)>,
    counters: Arc<Counters>,
) {
    let Some(mut publisher) = publisher else {
        // No event endpoint: keep the channel drained so the producer never fills up.
        while events.recv().await.is_some() {}
        return;
    };
    while let Some((topic, payload)) = events.recv().await {
        tokio::task::consume_budget().await;
        let mut message = ZmqMessage::from(Bytes::from(topic));
        message.push_back(Bytes::from(payload));
        match tokio::time::timeout(EVENT_SEND_TIMEOUT, publisher.send(message)).await {
            Ok(Ok(())) => bump(&counters.events_published),
            Ok(Err(error)) => {
                bump(&counters.events_dropped);
                tracing::debug!(%error, "event dropped");
            }
            Err(_) => bump(&counters.events_dropped),
        }
    }
    // The producer is gone; keep subscribers connected until the server closes.
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_id_echoes_only_valid_ids() {
        assert_eq!(
            peek_id(br#"{"v":1,"id":"c-1","op":"health"}"#),
            Some(ClientId::Str("c-1".into()))
        );
        assert_eq!(peek_id(br#"{"id":7}"#), Some(ClientId::Int(7)));
        assert_eq!(peek_id(br#"{"id":""}"#), None);
        assert_eq!(peek_id(br#"{"id":"a\u0001"}"#), None);
        assert_eq!(peek_id(br#"{"id":1.5}"#), None);
        assert_eq!(peek_id(b"not json"), None);
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(protocol::MAX_ID_LEN + 1));
        assert_eq!(peek_id(long.as_bytes()), None);
    }

    #[test]
    fn envelopes_round_trip() {
        let out = Outgoing {
            route: Route {
                identity: Bytes::from_static(b"peer"),
                delimiter: true,
            },
            body: b"{}".to_vec(),
        };
        let frames = out.into_message().into_vec();
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"peer"),
                Bytes::new(),
                Bytes::from_static(b"{}")
            ]
        );
    }

    #[test]
    fn local_defaults_are_loopback_and_valid() {
        let c = ServerConfig::local(PathBuf::from("/run/labeld"));
        assert!(validate(&c).is_ok());
        assert_eq!(c.requests[0], "ipc:///run/labeld/requests.sock");
        assert_eq!(c.requests[1], "tcp://127.0.0.1:7310");
        assert_eq!(c.events[1], "tcp://127.0.0.1:7311");
        assert!(c.max_frame_bytes > c.limits.max_request_bytes);
    }
}
