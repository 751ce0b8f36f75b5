//! Raw TCP, port 9100 ("AppSocket"/JetDirect): Zebra (ZPL), Brother QL network
//! models, TSC and HP lasers (`printer-langs.md` §5.6). Address: `tcp://HOST[:PORT]`.
//!
//! **Link.** One TCP connection per [`TcpTransport::open`], bidirectional: Zebra
//! answers `~HS`/`~HQES` and HP answers PJL on the same socket, so status queries
//! need no second channel. TCP carries no device id and no port status;
//! [`Transport::device_info`] gives the peer address as the location. Nothing needs
//! permissions beyond an outbound connection; a firewall looks like a connect timeout.
//!
//! **Connecting.** The host is resolved on a helper thread, bounded by
//! [`TcpOptions::resolve_timeout`] (std's `getaddrinfo` has no timeout of its own; the
//! thread is left to finish on its own if it overruns), and every resolved address is
//! tried in turn with [`TcpOptions::connect_timeout`]. Then `TCP_NODELAY` (a small
//! status query must not wait behind Nagle), keepalive, `TCP_USER_TIMEOUT` and a
//! bounded send buffer are set with `setsockopt` (std offers only `TCP_NODELAY`;
//! `libc` is already a dependency, `socket2` is not).
//!
//! **Writing.** [`Transport::write_all`] writes chunks of at most
//! [`TcpOptions::chunk_size`], each under a send timeout (`SO_SNDTIMEO`) equal to the
//! time left before the deadline. A printer that stops reading (paused, out of media,
//! head open) fills its receive window and our send buffer; the write then meets its
//! deadline and fails with [`TransportErrorKind::Timeout`], its `written` counting the
//! bytes the kernel accepted. Accepted is not received: up to the send buffer plus the
//! printer's receive window may still be on their way, which is why
//! [`send`](super::send) can confirm each label with a status query. The send buffer is
//! bounded ([`TcpOptions::send_buffer`], 64 KiB) to keep that window small.
//!
//! **What a disconnect looks like here.**
//! - *The printer closed the connection* (FIN): a read returns 0 bytes, which is
//!   [`TransportErrorKind::Disconnected`], never silence. Before every write a
//!   non-blocking peek looks for that FIN, so a label is not written into a socket the
//!   printer no longer reads (the kernel would accept it and the printer would drop it).
//! - *Reset* (RST: printer reboot, its own abort): `ECONNRESET`/`EPIPE` →
//!   [`TransportErrorKind::Disconnected`]. std sends with `MSG_NOSIGNAL`: no `SIGPIPE`.
//! - *The printer vanished* (power cut, cable pulled: no FIN, no RST; "half-open"):
//!   while idle, keepalive probes find it (`SO_KEEPALIVE`, `TCP_KEEPIDLE` 10 s,
//!   `TCP_KEEPINTVL` 3 s, `TCP_KEEPCNT` 3: about 19 s); while data is unacknowledged,
//!   `TCP_USER_TIMEOUT` (30 s) aborts the connection. Either surfaces as `ETIMEDOUT`,
//!   [`TransportErrorKind::Timeout`] (a write deadline may come first). Some kernels
//!   also apply the user timeout to a zero window that the printer keeps closed for
//!   that long (paused for 30 s mid-job); the connection is then reopened, which the
//!   stalled write would have caused anyway.
//! - *Refused* (nothing listens; a Zebra busy with another host's connection):
//!   [`TransportErrorKind::Refused`], retriable. *Unreachable host or network* and an
//!   *unknown name*: [`TransportErrorKind::NotFound`].
//!
//! **Reopening.** [`Transport::open`] on a connected transport reconnects. A connection
//! that faulted is closed abortively (`SO_LINGER` 0, an RST), so bytes still queued on
//! it can never reach the printer after the new connection's first bytes; a healthy one
//! is closed normally and its queued bytes are delivered.

use super::{DeviceInfo, Transport, TransportError, TransportErrorKind};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The shortest socket timeout set: std refuses a zero timeout.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// TCP keepalive settings (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`,
/// `TCP_KEEPCNT`; the last three on Linux only, whole seconds, at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead.
    pub count: u32,
}

/// How a [`TcpTransport`] connects and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Longest wait for the host name to resolve.
    pub resolve_timeout: Duration,
    /// Longest wait for each resolved address to accept the connection.
    pub connect_timeout: Duration,
    /// Largest single write (each under the time left before the deadline).
    pub chunk_size: usize,
    /// Keepalive probes while idle; `None` leaves the system default (off).
    pub keepalive: Option<Keepalive>,
    /// `TCP_USER_TIMEOUT` (Linux): how long sent data may stay unacknowledged before
    /// the kernel drops the connection; `None` leaves the system default (~15 min).
    pub user_timeout: Option<Duration>,
    /// `SO_SNDBUF` in bytes (the kernel doubles it); `None` leaves autotuning on,
    /// which lets megabytes sit between "written" and "received".
    pub send_buffer: Option<usize>,
}

impl Default for TcpOptions {
    /// 5 s to resolve, 5 s per address to connect, 16 KiB chunks, keepalive 10 s +
    /// 3 × 3 s, 30 s user timeout, 64 KiB send buffer.
    fn default() -> Self {
        TcpOptions {
            resolve_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            chunk_size: 16 * 1024,
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(10),
                interval: Duration::from_secs(3),
                count: 3,
            }),
            user_timeout: Some(Duration::from_secs(30)),
            send_buffer: Some(64 * 1024),
        }
    }
}

/// A printer on raw TCP (see the module docs).
pub struct TcpTransport {
    /// Host name or address, without brackets.
    host: String,
    /// Port, usually 9100.
    port: u16,
    /// How to connect and write.
    options: TcpOptions,
    /// The connection, while open.
    stream: Option<TcpStream>,
    /// The address actually connected to.
    peer: Option<SocketAddr>,
    /// Whether the connection met an error (then it is closed with an RST).
    faulted: bool,
}

impl TcpTransport {
    /// A transport for `host:port` with the default [`TcpOptions`]; not yet connected.
    pub fn new(host: String, port: u16) -> Self {
        TcpTransport::with_options(host, port, TcpOptions::default())
    }

    /// A transport for `host:port` with the given options; not yet connected.
    pub fn with_options(host: String, port: u16, options: TcpOptions) -> Self {
        TcpTransport {
            host,
            port,
            options,
            stream: None,
            peer: None,
            faulted: false,
        }
    }

    /// The address connected to, while open.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether a connection is open (it may still turn out to be dead on the next write).
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// The host's addresses, resolved within the resolve timeout.
    fn resolve(&self) -> Result<Vec<SocketAddr>, TransportError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let (tx, rx) = mpsc::channel();
        let (host, port) = (self.host.clone(), self.port);
        std::thread::Builder::new()
            .name("labeld-resolve".into())
            .spawn(move || {
                let found = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|addrs| addrs.collect::<Vec<_>>());
                // The receiver may have timed out and gone: nothing to do then.
                let _ = tx.send(found);
            })
            .map_err(|e| TransportError::io(self.describe(), "start the name lookup", e))?;
        let not_found = |message: String, source: Option<io::Error>| TransportError {
            source,
            ..TransportError::new(TransportErrorKind::NotFound, self.describe(), message)
        };
        match rx.recv_timeout(self.options.resolve_timeout) {
            Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
            Ok(Ok(_)) => Err(not_found(
                format!("host '{}' has no addresses (check the name)", self.host),
                None,
            )),
            Ok(Err(e)) => Err(not_found(
                format!(
                    "cannot resolve host '{}': {e} (check the name and DNS, or use the \
                     printer's IP address)",
                    self.host
                ),
                Some(e),
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                self.describe(),
                format!(
                    "resolving host '{}' took longer than {} ms (check DNS, or use the \
                     printer's IP address)",
                    self.host,
                    self.options.resolve_timeout.as_millis()
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(TransportError::new(
                TransportErrorKind::Io,
                self.describe(),
                format!(
                    "the name lookup for '{}' failed without an answer",
                    self.host
                ),
            )),
        }
    }

    /// Connects to the first address that accepts.
    fn connect(&self, addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), TransportError> {
        let timeout = self.options.connect_timeout.max(MIN_TIMEOUT);
        let mut failures = Vec::new();
        let mut last = None;
        for &addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => return Ok((stream, addr)),
                Err(e) => {
                    failures.push(format!("{addr}: {e}"));
                    last = Some(e);
                }
            }
        }
        let Some(e) = last else {
            return Err(TransportError::new(
                TransportErrorKind::NotFound,
                self.describe(),
                "no address to connect to",
            ));
        };
        let mut err = TransportError::io(self.describe(), "connect", e);
        let hint = match err.kind {
            TransportErrorKind::Refused => {
                " (is the printer's raw port enabled, or is another host connected?)"
            }
            TransportErrorKind::Timeout => " (check the address, power and network)",
            TransportErrorKind::NotFound => " (host or network unreachable: check the address)",
            _ => "",
        };
        err.message = format!("connect: {}{hint}", failures.join("; "));
        Err(err)
    }

    /// Socket options for a new connection (see the module docs).
    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        sockopt::apply(stream, &self.options)
    }

    /// The open connection, or a `Disconnected` error.
    fn stream(&mut self) -> Result<&mut TcpStream, TransportError> {
        let device = self.describe();
        self.stream.as_mut().ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Disconnected,
                device,
                "not connected (open the transport first)",
            )
        })
    }

    /// Marks the connection faulted and passes the error on.
    fn fail(&mut self, err: TransportError) -> TransportError {
        self.faulted = true;
        err
    }

    /// Fails with `Disconnected` if the printer has closed or reset the connection
    /// (a non-blocking peek: 0 bytes is its FIN). Reply bytes waiting are left alone.
    fn check_peer(&mut self) -> Result<(), TransportError> {
        let device = self.describe();
        let stream = self.stream()?;
        let mut probe = [0u8; 1];
        let peeked = stream
            .set_nonblocking(true)
            .and_then(|()| stream.peek(&mut probe));
        let restored = stream.set_nonblocking(false);
        let result = match peeked {
            Ok(0) => Err(TransportError::new(
                TransportErrorKind::Disconnected,
                device.clone(),
                "the printer closed the connection (reopen to go on)",
            )),
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(TransportError::io(
                device.clone(),
                "check the connection",
                e,
            )),
        };
        let result = result.and_then(|()| {
            restored.map_err(|e| TransportError::io(device, "check the connection", e))
        });
        result.map_err(|e| self.fail(e))
    }
}

impl Transport for TcpTransport {
    fn describe(&self) -> String {
        if self.host.contains(':') {
            format!("tcp://[{}]:{}", self.host, self.port)
        } else {
            format!("tcp://{}:{}", self.host, self.port)
        }
    }

    /// Connects, or reconnects (closing the old connection first, abortively if it
    /// faulted).
    fn open(&mut self) -> Result<(), TransportError> {
        self.close();
        let addrs = self.resolve()?;
        let (stream, peer) = self.connect(&addrs)?;
        if let Err(e) = self.configure(&stream) {
            let _ = sockopt::linger_zero(&stream);
            return Err(TransportError::io(
                self.describe(),
                "set the connection's options",
                e,
            ));
        }
        self.stream = Some(stream);
        self.peer = Some(peer);
        self.faulted = false;
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.check_peer()?;
        let device = self.describe();
        let chunk = self.options.chunk_size.max(1);
        let total = bytes.len();
        let mut written = 0;
        while written < total {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let err = stalled(&device, written, total);
                return Err(self.fail(err));
            }
            let end = total.min(written.saturating_add(chunk));
            let stream = self.stream()?;
            let result = stream
                .set_write_timeout(Some(remaining.max(MIN_TIMEOUT)))
                .and_then(|()| stream.write(&bytes[written..end]));
            let err = match result {
                Ok(0) => TransportError::new(
                    TransportErrorKind::Disconnected,
                    device.clone(),
                    "the connection accepts no more data (reopen to go on)",
                ),
                Ok(n) => {
                    written += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // SO_SNDTIMEO ran out: the printer stopped reading.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stalled(&device, written, total),
                Err(e) => {
                    let mut err = TransportError::io(device.clone(), "write", e);
                    if err.kind == TransportErrorKind::Timeout {
                        err.message.push_str(
                            " (the printer stopped acknowledging data: powered off or unplugged?)",
                        );
                    }
                    err
                }
            };
            return Err(self.fail(err.with_written(written)));
        }
        Ok(())
    }

    /// Waits up to `timeout` for reply bytes and returns what one read gives: `Ok(0)`
    /// is silence. A closed connection is an error, never silence.
    fn read_reply(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let device = self.describe();
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let stream = self.stream()?;
            let result = stream
                .set_read_timeout(Some(remaining.max(MIN_TIMEOUT)))
                .and_then(|()| stream.read(buf));
            let err = match result {
                Ok(0) => TransportError::new(
                    TransportErrorKind::Disconnected,
                    device,
                    "the printer closed the connection (reopen to go on)",
                ),
                Ok(n) => return Ok(n),
                // SO_RCVTIMEO ran out (EAGAIN): the printer said nothing.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if remaining.is_zero() {
                        return Ok(0);
                    }
                    continue;
                }
                // ETIMEDOUT here is keepalive or the user timeout: the peer is gone.
                Err(e) => TransportError::io(device, "read", e),
            };
            return Err(self.fail(err));
        }
    }

    /// The peer address, while connected.
    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        Ok(DeviceInfo {
            location: self.peer.map(|p| p.to_string()),
            ..DeviceInfo::default()
        })
    }

    fn abort(&mut self) {
        self.faulted = true;
        self.close();
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            if self.faulted {
                // Best effort: if it fails the close is an ordinary one.
                let _ = sockopt::linger_zero(&stream);
            }
        }
        self.peer = None;
        self.faulted = false;
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.close();
    }
}

/// A write that met its deadline.
fn stalled(device: &str, written: usize, total: usize) -> TransportError {
    TransportError::new(
        TransportErrorKind::Timeout,
        device,
        format!(
            "the printer stopped reading: {written} of {total} bytes written before the \
             deadline (paused, out of media or head open? query its status)"
        ),
    )
    .with_written(written)
}

/// `setsockopt` for what std does not offer.
#[cfg(unix)]
mod sockopt {
    use super::TcpOptions;
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    /// Sets an option whose value is a C struct or integer.
    fn set<T>(
        stream: &TcpStream,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> io::Result<()> {
        let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the descriptor belongs to `stream`, which is borrowed (so open) for
        // the whole call; `value` points to a live `T` of exactly `len` bytes, which
        // the kernel only reads.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (value as *const T).cast::<libc::c_void>(),
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whole seconds as a C int, at least 1.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn secs(d: std::time::Duration) -> libc::c_int {
        libc::c_int::try_from(d.as_secs().max(1)).unwrap_or(libc::c_int::MAX)
    }

    /// Keepalive, user timeout and send buffer, as `options` asks.
    pub(super) fn apply(stream: &TcpStream, options: &TcpOptions) -> io::Result<()> {
        if let Some(k) = options.keepalive {
            set(
                stream,
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                &(1 as libc::c_int),
            )?;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                set(stream, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, &secs(k.idle))?;
                set(
                    stream,
                    libc::IPPROTO_TCP,
                    libc::TCP_KEEPINTVL,
                    &secs(k.interval),
                )?;
                let count = libc::c_int::try_from(k.count.max(1)).unwrap_or(libc::c_int::MAX);
                set(stream, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &count)?;
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = k;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(t) = options.user_timeout {
            let ms = libc::c_uint::try_from(t.as_millis()).unwrap_or(libc::c_uint::MAX);
            set(stream, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, &ms)?;
        }
        if let Some(bytes) = options.send_buffer {
            let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            set(stream, libc::SOL_SOCKET, libc::SO_SNDBUF, &bytes)?;
        }
        Ok(())
    }

    /// `SO_LINGER` on with 0 s: closing sends an RST and drops unsent data.
    pub(super) fn linger_zero(stream: &TcpStream) -> io::Result<()> {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        set(stream, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
    }
}

/// Elsewhere only `TCP_NODELAY` is set, and a faulted connection closes normally.
#[cfg(not(unix))]
mod sockopt {
    use super::TcpOptions;
    use std::io;
    use std::net::TcpStream;

    pub(super) fn apply(_stream: &TcpStream, _options: &TcpOptions) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn linger_zero(_stream: &TcpStream) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    fn get(stream: &TcpStream, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live socket, and a c_int-sized out buffer whose size is passed.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn describe_brackets_ipv6() {
        assert_eq!(
            TcpTransport::new("10.0.0.5".into(), 9100).describe(),
            "tcp://10.0.0.5:9100"
        );
        assert_eq!(
            TcpTransport::new("::1".into(), 6101).describe(),
            "tcp://[::1]:6101"
        );
    }

    #[test]
    fn options_reach_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut t = TcpTransport::new("127.0.0.1".into(), port);
        t.open().unwrap();
        let s = t.stream.as_ref().unwrap();
        assert!(s.nodelay().unwrap());
        assert_eq!(get(s, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(s, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 10);
        assert_eq!(get(s, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 3);
        assert_eq!(get(s, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        assert_eq!(get(s, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 30_000);
        // Linux doubles SO_SNDBUF for its bookkeeping.
        assert_eq!(get(s, libc::SOL_SOCKET, libc::SO_SNDBUF), 128 * 1024);
        assert_eq!(
            t.device_info().unwrap().location.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str())
        );
        t.close();
        assert!(!t.is_open());
        assert_eq!(t.device_info().unwrap().location, None);
    }

    #[test]
    fn no_options_leaves_defaults() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = TcpOptions {
            keepalive: None,
            user_timeout: None,
            send_buffer: None,
            ..TcpOptions::default()
        };
        let mut t = TcpTransport::with_options("127.0.0.1".into(), port, options);
        t.open().unwrap();
        let s = t.stream.as_ref().unwrap();
        assert_eq!(get(s, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        assert_eq!(get(s, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 0);
    }

    #[test]
    fn not_open_is_disconnected() {
        let mut t = TcpTransport::new("127.0.0.1".into(), 9);
        let e = t
            .write_all(b"x", Instant::now() + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Disconnected);
        let e = t
            .read_reply(&mut [0; 4], Duration::from_millis(1))
            .unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Disconnected);
        assert_eq!(
            e.to_string(),
            "tcp://127.0.0.1:9: not connected (open the transport first)"
        );
    }
}
