//! The ZMTP front: public listeners that check every frame length before a byte
//! reaches the `zeromq` crate.
//!
//! # Why
//!
//! `zeromq` 0.7 reserves whatever length a frame header announces. A peer that
//! completes the NULL handshake and then announces a 2^40-byte frame makes it ask for
//! a terabyte, and the allocation failure aborts the whole process (reproduced in
//! `../shared/reference/landscape.md` §B.1). The crate has no `MAXMSGSIZE` option.
//!
//! So the crate never listens on a public endpoint. labeld owns the listeners (a
//! tokio `TcpListener` for `tcp://`, a `UnixListener` for `ipc://`); for each accepted
//! connection the front connects to the crate's socket on a private `ipc://` endpoint
//! (a 0700 directory under the runtime directory) and pumps bytes both ways:
//!
//! - client → daemon: every byte first goes through a [`FrameScanner`] (ZMTP 3.x,
//!   RFC 23 and 37): the 64-byte greeting (signature `FF … 7F`, major version 3),
//!   then frames (flags, a 1-byte or 8-byte big-endian length, the body). A frame
//!   that announces more than `max_frame_bytes`, a message whose frames add up to
//!   more, more than [`MAX_FRAMES_PER_MESSAGE`] frames, reserved flag bits or a bad
//!   greeting close the connection (both sides) with a warning naming the peer and
//!   the announced size. Nothing of the offending read reaches the crate.
//! - daemon → client: copied unchanged. On the request front it is scanned too (no
//!   limit, it is our own crate speaking) only to count the replies handed to the
//!   client's kernel buffer.
//!
//! # Bounds
//!
//! - **Window.** On the request front a connection may have at most
//!   [`CONNECTION_WINDOW`] requests forwarded and not yet answered (exactly: the
//!   scanner stops at the message that fills the window and the rest of the read
//!   waits); beyond it the front stops reading that client (TCP back-pressure, as
//!   libzmq's high-water mark would).
//!   Every request gets exactly one reply, so a client that reads its replies never
//!   notices; one that never reads stalls only itself, and the crate's per-peer send
//!   queue (fixed at 100,000 messages, with no option to lower it) holds at most a
//!   window of its replies instead of growing until `send` blocks.
//! - **Slow subscribers.** On the events front, a subscriber that accepts no bytes for
//!   [`SLOW_SUBSCRIBER_TIMEOUT`] is disconnected, so the crate's per-subscriber queue
//!   (100,000 events, fixed) does not fill for a subscriber that has stopped.
//! - **Handshake.** A peer must send its greeting and first command (READY) within
//!   [`HANDSHAKE_TIMEOUT`].
//! - **Connections.** At most [`MAX_CONNECTIONS`] per front (each costs three file
//!   descriptors: the client's, and both ends of the internal connection); more are
//!   accepted and closed at once, with a rate-limited warning.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Length of a ZMTP 3.x greeting.
pub const GREETING_LEN: usize = 64;

/// The most frames one message may have. labeld's requests have one, or two behind a
/// REQ socket's empty delimiter; a few more leave room for proxies. Without a cap, a
/// stream of empty frames would cost the crate far more memory than its bytes.
pub const MAX_FRAMES_PER_MESSAGE: usize = 64;

/// The most requests one connection may have forwarded and not yet answered. Other
/// clients' requests queue behind at most this many of a flooding client's in each
/// stage of the server, so it bounds the delay a flood adds; 32 in flight still lets a
/// pipelining client reach the server's full rate.
pub const CONNECTION_WINDOW: u64 = 32;

/// Time allowed from accept to the end of the peer's first command (READY).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A subscriber whose socket accepts no event bytes for this long is disconnected.
/// It has missed events already (PUB drops for slow subscribers); disconnecting frees
/// the up to 100,000 events the crate would otherwise queue for it. ZeroMQ SUB sockets
/// reconnect by themselves.
pub const SLOW_SUBSCRIBER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most open connections per front (requests or events).
pub const MAX_CONNECTIONS: usize = 256;

/// Flags: another frame of this message follows.
const FLAG_MORE: u8 = 0x01;
/// Flags: the length is 8 bytes, not 1.
const FLAG_LONG: u8 = 0x02;
/// Flags: a command frame (READY, SUBSCRIBE, PING, …), not message data.
const FLAG_COMMAND: u8 = 0x04;
/// RFC 23 §"Framing": bits 7–3 are reserved and must be zero.
const FLAGS_RESERVED: u8 = 0xF8;

/// Greeting offsets (RFC 23 §"Version Negotiation"): byte 0 is 0xFF, bytes 1–8 are
/// padding, byte 9 is 0x7F, byte 10 the major version.
const SIGNATURE_FIRST: u8 = 0xFF;
const SIGNATURE_LAST_OFFSET: usize = 9;
const SIGNATURE_LAST: u8 = 0x7F;
const MAJOR_OFFSET: usize = 10;
const MAJOR_VERSION: u8 = 3;

/// Why a stream was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The first bytes are not a ZMTP 3.x greeting signature.
    #[error(
        "greeting byte {offset} is {found:#04x}, expected {expected:#04x} (not a ZeroMQ 3.x peer)"
    )]
    BadSignature {
        /// Offset in the greeting.
        offset: usize,
        /// The byte received.
        found: u8,
        /// The byte a ZMTP greeting has there.
        expected: u8,
    },
    /// A ZMTP major version other than 3.
    #[error("peer speaks ZMTP major version {major}; labeld speaks ZMTP 3.x (upgrade the client's ZeroMQ library)")]
    UnsupportedVersion {
        /// The major version announced.
        major: u8,
    },
    /// Reserved flag bits are set.
    #[error("frame flags {flags:#04x} set reserved bits (a corrupt or non-ZMTP stream)")]
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A command frame with the MORE flag: commands are single frames.
    #[error("command frame with the MORE flag (flags {flags:#04x}); commands are single frames")]
    CommandWithMore {
        /// The flags byte.
        flags: u8,
    },
    /// One frame announces more than the limit.
    #[error("frame announces {announced} bytes; the limit is {max} bytes")]
    FrameTooLarge {
        /// The length in the frame header.
        announced: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The frames of one message add up to more than the limit.
    #[error("message frames add up to {announced} bytes; the limit is {max} bytes")]
    MessageTooLarge {
        /// The message's size so far, this frame's announced length included.
        announced: u64,
        /// The configured maximum.
        max: usize,
    },
    /// More than [`MAX_FRAMES_PER_MESSAGE`] frames in one message.
    #[error("message has more than {max} frames")]
    TooManyFrames {
        /// The limit.
        max: usize,
    },
}

impl ScanError {
    /// The size a frame or message announced, for size errors.
    pub fn announced(&self) -> Option<u64> {
        match self {
            ScanError::FrameTooLarge { announced, .. }
            | ScanError::MessageTooLarge { announced, .. } => Some(*announced),
            _ => None,
        }
    }
}

/// Where the scanner is in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Inside the greeting; `seen` bytes so far.
    Greeting { seen: usize },
    /// Waiting for a frame's flags byte.
    Flags,
    /// Waiting for the 1-byte length.
    ShortLen { flags: u8 },
    /// Reading the 8-byte length; `got` bytes so far, accumulated in `len`.
    LongLen { flags: u8, got: u8, len: u64 },
    /// Skipping a frame body.
    Body { flags: u8, remaining: u64 },
    /// Refused; every later feed repeats the error.
    Failed(ScanError),
}

/// An incremental ZMTP 3.x stream checker. Pure: feed it byte slices as they arrive,
/// split anywhere; it keeps a few bytes of state and never buffers a body.
///
/// ```
/// use labeld::server::guard::{FrameScanner, ScanError};
///
/// let mut greeting = [0u8; 64];
/// greeting[0] = 0xFF;
/// greeting[9] = 0x7F;
/// greeting[10] = 3;
/// let mut scanner = FrameScanner::new(1024);
/// assert_eq!(scanner.feed(&greeting), Ok(0));
/// assert_eq!(scanner.feed(&[0x00, 2, b'h']), Ok(0)); // one frame, body not complete
/// assert_eq!(scanner.feed(&[b'i']), Ok(1)); // the message is complete
/// // A long frame announcing 2^40 bytes is refused at its header.
/// let header = [&[0x02u8][..], &(1u64 << 40).to_be_bytes()].concat();
/// assert!(matches!(scanner.feed(&header), Err(ScanError::FrameTooLarge { .. })));
/// ```
#[derive(Clone, Debug)]
pub struct FrameScanner {
    /// Largest frame, and largest message (its frames together), in bytes.
    max_frame_bytes: usize,
    /// Position in the stream.
    state: State,
    /// Bytes announced by the current message's frames so far.
    message_bytes: u64,
    /// Frames of the current message so far.
    message_frames: usize,
    /// Messages completed since the start.
    messages: u64,
    /// Command frames completed since the start.
    commands: u64,
}

impl FrameScanner {
    /// A scanner at the start of a stream, refusing frames (and messages) larger than
    /// `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> FrameScanner {
        FrameScanner {
            max_frame_bytes,
            state: State::Greeting { seen: 0 },
            message_bytes: 0,
            message_frames: 0,
            messages: 0,
            commands: 0,
        }
    }

    /// Scans the next bytes of the stream.
    ///
    /// Returns how many messages (not commands) ended in `bytes`.
    ///
    /// # Errors
    ///
    /// The first problem found. It is reported at the byte that shows it: a size
    /// error at the last byte of the frame's length, before any of its body. After an
    /// error the scanner stays failed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<u64, ScanError> {
        self.feed_up_to(bytes, u64::MAX)
            .map(|(_, messages)| messages)
    }

    /// Scans `bytes` but stops right after the `limit`-th message that ends in them.
    /// Returns the bytes consumed and the messages ended; feed the rest later.
    ///
    /// # Errors
    ///
    /// As [`feed`](FrameScanner::feed).
    pub fn feed_up_to(&mut self, bytes: &[u8], limit: u64) -> Result<(usize, u64), ScanError> {
        let before = self.messages;
        let mut pos = 0;
        while pos < bytes.len() && self.messages - before < limit {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Body { flags, remaining } => {
                    // Bodies are skipped in bulk; `take` fits in usize as it is at
                    // most the bytes left.
                    let take = remaining.min((bytes.len() - pos) as u64);
                    pos += take as usize;
                    let remaining = remaining - take;
                    if remaining == 0 {
                        self.end_frame(flags);
                    } else {
                        self.state = State::Body { flags, remaining };
                    }
                }
                _ => {
                    let byte = bytes[pos];
                    pos += 1;
                    if let Err(e) = self.step(byte) {
                        self.state = State::Failed(e.clone());
                        return Err(e);
                    }
                }
            }
        }
        if let State::Failed(ref e) = self.state {
            return Err(e.clone());
        }
        Ok((pos, self.messages - before))
    }

    /// Messages completed since the start of the stream.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Whether the greeting and at least one command (the handshake's READY) are done.
    pub fn handshake_done(&self) -> bool {
        self.commands > 0
    }

    /// Whether the scanner has refused the stream.
    pub fn failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// One byte of greeting or frame header.
    fn step(&mut self, byte: u8) -> Result<(), ScanError> {
        match self.state {
            State::Greeting { seen } => {
                let expected = match seen {
                    0 => Some(SIGNATURE_FIRST),
                    SIGNATURE_LAST_OFFSET => Some(SIGNATURE_LAST),
                    _ => None,
                };
                if let Some(expected) = expected.filter(|&e| e != byte) {
                    return Err(ScanError::BadSignature {
                        offset: seen,
                        found: byte,
                        expected,
                    });
                }
                if seen == MAJOR_OFFSET && byte != MAJOR_VERSION {
                    return Err(ScanError::UnsupportedVersion { major: byte });
                }
                self.state = if seen + 1 == GREETING_LEN {
                    State::Flags
                } else {
                    State::Greeting { seen: seen + 1 }
                };
            }
            State::Flags => {
                if byte & FLAGS_RESERVED != 0 {
                    return Err(ScanError::ReservedFlags { flags: byte });
                }
                if byte & FLAG_COMMAND != 0 && byte & FLAG_MORE != 0 {
                    return Err(ScanError::CommandWithMore { flags: byte });
                }
                self.state = if byte & FLAG_LONG != 0 {
                    State::LongLen {
                        flags: byte,
                        got: 0,
                        len: 0,
                    }
                } else {
                    State::ShortLen { flags: byte }
                };
            }
            State::ShortLen { flags } => self.start_body(flags, u64::from(byte))?,
            State::LongLen { flags, got, len } => {
                let len = (len << 8) | u64::from(byte);
                if got + 1 == 8 {
                    self.start_body(flags, len)?;
                } else {
                    self.state = State::LongLen {
                        flags,
                        got: got + 1,
                        len,
                    };
                }
            }
            // `feed` handles bodies and failures itself.
            State::Body { .. } | State::Failed(_) => {}
        }
        Ok(())
    }

    /// A frame header is complete: check the announced length.
    fn start_body(&mut self, flags: u8, len: u64) -> Result<(), ScanError> {
        let max = self.max_frame_bytes;
        if len > max as u64 {
            return Err(ScanError::FrameTooLarge {
                announced: len,
                max,
            });
        }
        if flags & FLAG_COMMAND == 0 {
            let total = self.message_bytes.saturating_add(len);
            if total > max as u64 {
                return Err(ScanError::MessageTooLarge {
                    announced: total,
                    max,
                });
            }
            if self.message_frames == MAX_FRAMES_PER_MESSAGE {
                return Err(ScanError::TooManyFrames {
                    max: MAX_FRAMES_PER_MESSAGE,
                });
            }
            self.message_bytes = total;
            self.message_frames += 1;
        }
        if len == 0 {
            self.end_frame(flags);
        } else {
            self.state = State::Body {
                flags,
                remaining: len,
            };
        }
        Ok(())
    }

    /// A frame's body is complete.
    fn end_frame(&mut self, flags: u8) {
        self.state = State::Flags;
        if flags & FLAG_COMMAND != 0 {
            self.commands += 1;
        } else if flags & FLAG_MORE == 0 {
            self.messages += 1;
            self.message_bytes = 0;
            self.message_frames = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// The front: listeners, accept loops and pumps.

/// Which socket a front leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrontKind {
    /// The ROUTER: requests up, replies down, counted and windowed.
    Requests,
    /// The PUB: subscriptions up, events down, not counted.
    Events,
}

impl FrontKind {
    fn name(self) -> &'static str {
        match self {
            FrontKind::Requests => "requests",
            FrontKind::Events => "events",
        }
    }
}

/// A bound public listener.
#[derive(Debug)]
pub(crate) enum PublicListener {
    /// `tcp://`.
    Tcp(TcpListener),
    /// `ipc://` and its socket file.
    Ipc(UnixListener, PathBuf),
}

/// Counters shared by a server's fronts and read by the server.
#[derive(Debug, Default)]
pub(crate) struct FrontCounters {
    /// Requests forwarded to the ROUTER and not yet answered back to their client,
    /// over all open request connections.
    pub(crate) unanswered: AtomicI64,
    /// Connections closed by the scanner (size, greeting or flags) or the handshake timeout.
    pub(crate) rejected: AtomicU64,
    /// Connections accepted.
    pub(crate) accepted: AtomicU64,
    /// Connections refused because the front was full.
    pub(crate) over_capacity: AtomicU64,
}

/// What a front needs to run.
#[derive(Clone, Debug)]
pub(crate) struct FrontConfig {
    /// Requests or events.
    pub(crate) kind: FrontKind,
    /// The crate's socket on the private ipc endpoint.
    pub(crate) internal: PathBuf,
    /// Largest frame or message from a client.
    pub(crate) max_frame_bytes: usize,
}

/// Running accept loops; dropping it stops them and closes every connection.
#[derive(Debug, Default)]
pub(crate) struct Front {
    /// One task per listener; aborting it drops its connections' tasks too.
    tasks: Vec<JoinHandle<()>>,
}

impl Front {
    /// Starts accepting on `listener`.
    pub(crate) fn spawn(
        &mut self,
        listener: PublicListener,
        config: FrontConfig,
        counters: Arc<FrontCounters>,
    ) {
        self.tasks
            .push(tokio::spawn(accept_loop(listener, config, counters)));
    }

    /// Stops accepting and closes every connection, waiting for the tasks to end.
    pub(crate) async fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            // An aborted task reports a cancellation; nothing to do with it.
            let _ = task.await;
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Warnings that could repeat per connection are logged at most once per this period.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections until aborted.
async fn accept_loop(listener: PublicListener, config: FrontConfig, counters: Arc<FrontCounters>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let (client, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(error) => {
                // EMFILE and friends: wait, doubling up to a second (mini-redis).
                tracing::warn!(front = config.kind.name(), %error, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            counters.over_capacity.fetch_add(1, Ordering::Relaxed);
            if last_full_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                last_full_warning = Some(Instant::now());
                tracing::warn!(
                    front = config.kind.name(),
                    %peer,
                    max = MAX_CONNECTIONS,
                    "too many connections; closing new ones until some end"
                );
            }
            drop(client);
            continue;
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let config = config.clone();
        let counters = counters.clone();
        connections.spawn(async move {
            match client {
                Client::Tcp(stream) => {
                    let (r, w) = stream.into_split();
                    pump(r, w, &peer, &config, &counters).await;
                }
                Client::Ipc(stream) => {
                    let (r, w) = stream.into_split();
                    pump(r, w, &peer, &config, &counters).await;
                }
            }
            drop(permit);
        });
    }
}

/// An accepted client stream.
enum Client {
    Tcp(tokio::net::TcpStream),
    Ipc(UnixStream),
}

/// Accepts one connection and names its peer for the logs.
async fn accept(listener: &PublicListener) -> io::Result<(Client, String)> {
    match listener {
        PublicListener::Tcp(l) => {
            let (stream, addr) = l.accept().await?;
            // Replies are small and latency matters more than packet count.
            stream.set_nodelay(true)?;
            Ok((Client::Tcp(stream), format!("tcp {addr}")))
        }
        PublicListener::Ipc(l, path) => {
            let (stream, _) = l.accept().await?;
            let peer = match stream.peer_cred() {
                Ok(cred) => match cred.pid() {
                    Some(pid) => format!("ipc {} uid {} pid {pid}", path.display(), cred.uid()),
                    None => format!("ipc {} uid {}", path.display(), cred.uid()),
                },
                Err(_) => format!("ipc {}", path.display()),
            };
            Ok((Client::Ipc(stream), peer))
        }
    }
}

/// One connection's request/reply balance, shared by its two directions.
#[derive(Debug, Default)]
struct Balance {
    /// Requests forwarded to the crate.
    forwarded: AtomicU64,
    /// Replies written to the client.
    answered: AtomicU64,
    /// Signalled when `answered` grows.
    notify: Notify,
}

impl Balance {
    fn open(&self) -> u64 {
        self.forwarded
            .load(Ordering::Acquire)
            .saturating_sub(self.answered.load(Ordering::Acquire))
    }
}

/// Size of each read.
const PUMP_CHUNK: usize = 16 * 1024;

/// How one connection ended (for the log).
enum End {
    /// The client closed or the daemon side closed: nothing to report.
    Closed,
    /// The scanner refused the client's bytes.
    Refused(ScanError),
    /// No greeting and READY within the handshake timeout.
    HandshakeTimeout,
    /// An events client accepted nothing for [`SLOW_SUBSCRIBER_TIMEOUT`].
    SlowSubscriber,
    /// A read or write failed.
    Io(io::Error),
}

/// Pumps one connection both ways until either side closes or the scanner refuses.
async fn pump<R, W>(
    mut client_read: R,
    mut client_write: W,
    peer: &str,
    config: &FrontConfig,
    counters: &FrontCounters,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let internal = match UnixStream::connect(&config.internal).await {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%peer, %error, internal = %config.internal.display(),
                "cannot reach the internal socket; closing the client");
            return;
        }
    };
    let (mut internal_read, mut internal_write) = internal.into_split();
    let balance = Balance::default();
    let counted = config.kind == FrontKind::Requests;
    // The directions borrow the streams, which close when this function returns: after
    // the counters and the log, so a client that sees the close sees them too.
    let end = tokio::select! {
        end = upstream(&mut client_read, &mut internal_write, config, &balance, counted, counters) => end,
        end = downstream(&mut internal_read, &mut client_write, &balance, counted, counters) => end,
    };
    if counted {
        // This connection's unanswered requests will never be answered now.
        let open = i64::try_from(balance.open()).unwrap_or(i64::MAX);
        counters.unanswered.fetch_sub(open, Ordering::AcqRel);
    }
    match end {
        End::Closed => tracing::debug!(%peer, front = config.kind.name(), "connection closed"),
        End::Refused(error) => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            match error.announced() {
                Some(announced) => tracing::warn!(
                    %peer,
                    front = config.kind.name(),
                    announced,
                    max = config.max_frame_bytes,
                    "closing connection: {error}"
                ),
                None => {
                    tracing::warn!(%peer, front = config.kind.name(), "closing connection: {error}")
                }
            }
        }
        End::HandshakeTimeout => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, front = config.kind.name(),
                "closing connection: no ZMTP greeting and READY within {} s", HANDSHAKE_TIMEOUT.as_secs());
        }
        End::SlowSubscriber => tracing::warn!(
            %peer,
            front = config.kind.name(),
            "closing connection: the subscriber accepted no events for {} s (it reconnects and resumes)",
            SLOW_SUBSCRIBER_TIMEOUT.as_secs()
        ),
        End::Io(error) => {
            tracing::debug!(%peer, front = config.kind.name(), %error, "connection ended")
        }
    }
}

/// Client → daemon: scan, then forward. On the request front, bytes after the message
/// that fills the window wait in the buffer until a reply reopens it.
async fn upstream<R, W>(
    mut from: R,
    mut to: W,
    config: &FrontConfig,
    balance: &Balance,
    counted: bool,
    counters: &FrontCounters,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scanner = FrameScanner::new(config.max_frame_bytes);
    let mut buf = vec![0u8; PUMP_CHUNK];
    // Bytes read and not yet forwarded: buf[start..end].
    let (mut start, mut end) = (0, 0);
    let handshake_deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        if start == end {
            let read = if scanner.handshake_done() {
                from.read(&mut buf).await
            } else {
                match tokio::time::timeout_at(handshake_deadline, from.read(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => return End::HandshakeTimeout,
                }
            };
            match read {
                Ok(0) => return End::Closed,
                Ok(n) => (start, end) = (0, n),
                Err(e) => return End::Io(e),
            }
        }
        let room = if counted {
            // Wait while the window is full; replies reopen it.
            loop {
                let notified = balance.notify.notified();
                let open = balance.open();
                if open < CONNECTION_WINDOW {
                    break CONNECTION_WINDOW - open;
                }
                notified.await;
            }
        } else {
            u64::MAX
        };
        let (used, done) = match scanner.feed_up_to(&buf[start..end], room) {
            Ok(progress) => progress,
            Err(e) => return End::Refused(e),
        };
        if counted && done > 0 {
            // Counted before the write, so a fast reply never finds the balance short.
            balance.forwarded.fetch_add(done, Ordering::AcqRel);
            counters
                .unanswered
                .fetch_add(i64::try_from(done).unwrap_or(i64::MAX), Ordering::AcqRel);
        }
        if let Err(e) = to.write_all(&buf[start..start + used]).await {
            return End::Io(e);
        }
        start += used;
    }
}

/// Daemon → client: copy, counting replies on the request front.
async fn downstream<R, W>(
    mut from: R,
    mut to: W,
    balance: &Balance,
    counted: bool,
    counters: &FrontCounters,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Our own crate's stream: no size limit, only message counting.
    let mut scanner = FrameScanner::new(usize::MAX);
    let mut buf = vec![0u8; PUMP_CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => return End::Closed,
            Ok(n) => n,
            Err(e) => return End::Io(e),
        };
        // The crate always speaks ZMTP 3; should it not, counting stops (the window
        // then never reopens, which stalls only this connection).
        let done = if counted {
            scanner.feed(&buf[..n]).unwrap_or(0)
        } else {
            0
        };
        // Replies wait for their client (the window bounds them); events do not.
        let written = if counted {
            to.write_all(&buf[..n]).await
        } else {
            match tokio::time::timeout(SLOW_SUBSCRIBER_TIMEOUT, to.write_all(&buf[..n])).await {
                Ok(written) => written,
                Err(_) => return End::SlowSubscriber,
            }
        };
        if let Err(e) = written {
            return End::Io(e);
        }
        if done > 0 {
            balance.answered.fetch_add(done, Ordering::AcqRel);
            counters
                .unanswered
                .fetch_sub(i64::try_from(done).unwrap_or(i64::MAX), Ordering::AcqRel);
            balance.notify.notify_one();
        }
    }
}

/// Removes the files a server created when dropped (socket files, the private directory).
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    /// Socket files to remove.
    files: Mutex<Vec<PathBuf>>,
    /// Directories to remove with their contents.
    dirs: Mutex<Vec<PathBuf>>,
}

impl Cleanup {
    /// Remembers a socket file.
    pub(crate) fn file(&self, path: &Path) {
        if let Ok(mut files) = self.files.lock() {
            files.push(path.to_owned());
        }
    }

    /// Remembers a private directory.
    pub(crate) fn dir(&self, path: &Path) {
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.push(path.to_owned());
        }
    }

    /// Removes everything remembered (idempotent).
    pub(crate) fn run(&self) {
        if let Ok(mut files) = self.files.lock() {
            for path in files.drain(..) {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove socket file");
                    }
                }
            }
        }
        if let Ok(mut dirs) = self.dirs.lock() {
            for path in dirs.drain(..) {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove directory");
                    }
                }
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting() -> Vec<u8> {
        let mut g = vec![0u8; GREETING_LEN];
        g[0] = 0xFF;
        g[9] = 0x7F;
        g[10] = 3;
        g[11] = 1;
        g[12..16].copy_from_slice(b"NULL");
        g
    }

    fn long_header(flags: u8, len: u64) -> Vec<u8> {
        let mut h = vec![flags | FLAG_LONG];
        h.extend_from_slice(&len.to_be_bytes());
        h
    }

    #[test]
    fn greeting_then_frames_count_messages() {
        let mut s = FrameScanner::new(100);
        assert_eq!(s.feed(&greeting()), Ok(0));
        assert!(!s.handshake_done());
        // READY-like command, then a two-frame message, then an empty message.
        assert_eq!(s.feed(&[FLAG_COMMAND, 3, b'a', b'b', b'c']), Ok(0));
        assert!(s.handshake_done());
        assert_eq!(s.feed(&[FLAG_MORE, 0, 0x00, 2, b'h', b'i', 0, 0]), Ok(2));
        assert_eq!(s.messages(), 2);
    }

    #[test]
    fn bad_greetings() {
        let mut g = greeting();
        g[0] = b'G';
        assert_eq!(
            FrameScanner::new(10).feed(&g),
            Err(ScanError::BadSignature {
                offset: 0,
                found: b'G',
                expected: 0xFF
            })
        );
        let mut g = greeting();
        g[9] = 0;
        assert!(matches!(
            FrameScanner::new(10).feed(&g),
            Err(ScanError::BadSignature { offset: 9, .. })
        ));
        let mut g = greeting();
        g[10] = 2;
        assert_eq!(
            FrameScanner::new(10).feed(&g),
            Err(ScanError::UnsupportedVersion { major: 2 })
        );
    }

    #[test]
    fn flags_are_checked() {
        let mut s = FrameScanner::new(10);
        s.feed(&greeting()).unwrap();
        assert_eq!(
            s.feed(&[0x08]),
            Err(ScanError::ReservedFlags { flags: 0x08 })
        );
        // Stays failed.
        assert!(s.failed());
        assert!(s.feed(&[0]).is_err());
        let mut s = FrameScanner::new(10);
        s.feed(&greeting()).unwrap();
        assert_eq!(
            s.feed(&[FLAG_COMMAND | FLAG_MORE]),
            Err(ScanError::CommandWithMore { flags: 0x05 })
        );
    }

    #[test]
    fn sizes_are_caught_at_the_header() {
        let mut s = FrameScanner::new(300);
        s.feed(&greeting()).unwrap();
        let h = long_header(0, 1 << 40);
        // Every byte but the last passes.
        assert_eq!(s.feed(&h[..8]), Ok(0));
        assert_eq!(
            s.feed(&h[8..]),
            Err(ScanError::FrameTooLarge {
                announced: 1 << 40,
                max: 300
            })
        );
        // Exactly the limit passes; a message over the limit across frames fails.
        let mut s = FrameScanner::new(300);
        s.feed(&greeting()).unwrap();
        let mut body = long_header(0, 300);
        body.extend(std::iter::repeat_n(0u8, 300));
        assert_eq!(s.feed(&body), Ok(1));
        let mut two = long_header(FLAG_MORE, 200);
        two.extend(std::iter::repeat_n(0u8, 200));
        two.extend(long_header(0, 101));
        assert_eq!(
            s.feed(&two),
            Err(ScanError::MessageTooLarge {
                announced: 301,
                max: 300
            })
        );
        // A short length over a tiny limit.
        let mut s = FrameScanner::new(4);
        s.feed(&greeting()).unwrap();
        assert_eq!(
            s.feed(&[0, 5]),
            Err(ScanError::FrameTooLarge {
                announced: 5,
                max: 4
            })
        );
    }

    #[test]
    fn feed_up_to_stops_after_the_limit() {
        let mut s = FrameScanner::new(100);
        s.feed(&greeting()).unwrap();
        let three = [0u8, 1, b'a', 0, 0, 0, 1, b'c'];
        assert_eq!(s.feed_up_to(&three, 0), Ok((0, 0)));
        assert_eq!(s.feed_up_to(&three, 2), Ok((5, 2)));
        assert_eq!(s.feed_up_to(&three[5..], 2), Ok((3, 1)));
        // A partial message is consumed whole without counting.
        assert_eq!(s.feed_up_to(&[1, 5, b'x'], 1), Ok((3, 0)));
    }

    #[test]
    fn too_many_frames() {
        let mut s = FrameScanner::new(1000);
        s.feed(&greeting()).unwrap();
        let frames: Vec<u8> = std::iter::repeat_n([FLAG_MORE, 0], MAX_FRAMES_PER_MESSAGE)
            .flatten()
            .collect();
        assert_eq!(s.feed(&frames), Ok(0));
        assert_eq!(
            s.feed(&[0, 0]),
            Err(ScanError::TooManyFrames {
                max: MAX_FRAMES_PER_MESSAGE
            })
        );
    }
}
