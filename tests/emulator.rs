//! Printer emulators for the daemon's tests: a Zebra-like ZPL printer on raw TCP
//! (127.0.0.1, a free port) and the same printer behind a pseudo-terminal (a "serial"
//! printer).
//!
//! The emulated printer splits what it receives into `^XA … ^XZ` formats (one label
//! each) and records each label's bytes. It answers what labeld sends it:
//!
//! - `~HQES` with the error bits of its current [`Fault`] (it answers in every state,
//!   as a Zebra does);
//! - `~HS` with the three host-status strings, and nothing while out of paper or
//!   ribbon or with the head open (a Zebra is silent then too);
//! - the SGD query `! U1 getvar "odometer.total_label_count"` with its label counter in
//!   double quotes (`"?"` when told to behave like older firmware).
//!
//! `~JX` and `~SD..` are taken and ignored; anything else outside a format is counted
//! as garbage. The counter goes up by one per label printed. While a fault is set,
//! complete labels are kept in the printer's buffer, as a real one keeps them, and
//! printed (counted) when the fault clears. A connection can be dropped now, in the
//! middle of a coming label (that label is lost: the printer never saw its `^XZ`), or
//! right after a coming label (it prints, but the query after it is never answered).
//!
//! Everything runs on one thread per emulator, serving one connection at a time like a
//! printer's port 9100; [`ZplPrinter`] stops it when dropped.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the emulator looks at its controls while waiting for bytes.
const TICK: Duration = Duration::from_millis(10);

/// A condition the emulated printer can be put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Out of labels (`~HQES` error bit 0x1).
    PaperOut,
    /// Out of ribbon (0x2).
    RibbonOut,
    /// Head open (0x4).
    HeadOpen,
    /// Paused from the front panel (0x10000; `~HS` still answers, pause flag set).
    Paused,
}

impl Fault {
    fn error_bits(self) -> u32 {
        match self {
            Fault::PaperOut => 0x1,
            Fault::RibbonOut => 0x2,
            Fault::HeadOpen => 0x4,
            Fault::Paused => 0x1_0000,
        }
    }

    /// `~HS` gets no reply in these states.
    fn silences_hs(self) -> bool {
        !matches!(self, Fault::Paused)
    }
}

/// What the emulated printer has done so far.
#[derive(Debug, Default)]
pub struct Record {
    /// Each printed label's bytes, `^XA` to `^XZ`, in print order.
    pub printed: Vec<Vec<u8>>,
    /// Labels received while faulted, printed when the fault clears.
    pub buffered: Vec<Vec<u8>>,
    /// Connections accepted.
    pub connections: usize,
    /// Queries answered or ignored, in order (`~HQES`, `~HS`, `getvar <name>`).
    pub queries: Vec<String>,
    /// Bytes outside formats that were not a known command.
    pub garbage: usize,
    /// Labels lost because the connection was dropped while they were arriving.
    pub lost: usize,
}

/// The printer's settings and state, behind the emulator's lock.
#[derive(Debug)]
struct State {
    record: Record,
    odometer: u64,
    odometer_supported: bool,
    fault: Option<Fault>,
    /// Refuse service: every connection is closed at once.
    offline: bool,
    /// Drop the current connection at the next look.
    drop_now: bool,
    /// Drop while receiving the label after this many more complete ones.
    drop_mid_label: Option<usize>,
    /// Drop right after this many more complete labels.
    drop_after_labels: Option<usize>,
    /// Delay before every reply.
    reply_delay: Duration,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An emulated ZPL printer (see the module docs).
pub struct ZplPrinter {
    uri: String,
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
    /// The pty's slave side, held open so the tty outlives the transport's opens.
    _slave: Option<OwnedFd>,
}

impl ZplPrinter {
    /// A printer on `tcp://127.0.0.1:<free port>`, counter at 0, ready.
    pub fn tcp() -> ZplPrinter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let uri = format!("tcp://{}", listener.local_addr().expect("local address"));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let inner = new_inner();
        let shared = inner.clone();
        let thread = thread::Builder::new()
            .name("zpl-emulator".into())
            .spawn(move || serve_tcp(listener, &shared))
            .expect("emulator thread");
        ZplPrinter {
            uri,
            inner,
            thread: Some(thread),
            _slave: None,
        }
    }

    /// A printer behind a pseudo-terminal: the URI is `serial:///dev/pts/N?baud=115200`.
    /// A tty has no connection to drop: `drop_*` only make the printer discard what it
    /// has received of the label at hand (it never prints), and `set_offline` does
    /// nothing.
    pub fn serial() -> ZplPrinter {
        let (master, slave, path) = pty_pair().expect("a pseudo-terminal pair");
        let uri = format!("serial://{}?baud=115200", path.display());
        let inner = new_inner();
        let shared = inner.clone();
        let thread = thread::Builder::new()
            .name("zpl-emulator-pty".into())
            .spawn(move || {
                let mut link = PtyLink { fd: master };
                while !shared.stop.load(Ordering::SeqCst) {
                    serve(&mut link, &shared);
                }
            })
            .expect("emulator thread");
        ZplPrinter {
            uri,
            inner,
            thread: Some(thread),
            _slave: Some(slave),
        }
    }

    /// The printer's address, as a labeld `uri`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Puts the printer in `fault`, or clears it (`None`: buffered labels print now).
    pub fn set_fault(&self, fault: Option<Fault>) {
        let mut s = self.inner.lock();
        s.fault = fault;
        if fault.is_none() {
            let buffered = std::mem::take(&mut s.record.buffered);
            s.odometer += buffered.len() as u64;
            s.record.printed.extend(buffered);
        }
        drop(s);
        self.inner.changed.notify_all();
    }

    /// Sets the label counter.
    pub fn set_odometer(&self, count: u64) {
        self.inner.lock().odometer = count;
    }

    /// The label counter.
    pub fn odometer(&self) -> u64 {
        self.inner.lock().odometer
    }

    /// Whether the printer knows `odometer.total_label_count` (older firmware answers `"?"`).
    pub fn set_odometer_supported(&self, supported: bool) {
        self.inner.lock().odometer_supported = supported;
    }

    /// Refuses service (every connection closed at once) until set back.
    pub fn set_offline(&self, offline: bool) {
        let mut s = self.inner.lock();
        s.offline = offline;
        if offline {
            s.drop_now = true;
        }
    }

    /// Drops the current connection.
    pub fn drop_connection(&self) {
        self.inner.lock().drop_now = true;
    }

    /// Drops the connection while the label after `complete` more labels arrives: that
    /// label is lost.
    pub fn drop_mid_label(&self, complete: usize) {
        self.inner.lock().drop_mid_label = Some(complete);
    }

    /// Drops the connection right after `labels` more labels (the last one prints; what
    /// follows it on the connection, such as a status query, is never answered).
    pub fn drop_after_labels(&self, labels: usize) {
        self.inner.lock().drop_after_labels = Some(labels.max(1));
    }

    /// Waits this long before every reply.
    pub fn set_reply_delay(&self, delay: Duration) {
        self.inner.lock().reply_delay = delay;
    }

    /// Labels printed so far.
    pub fn printed_count(&self) -> usize {
        self.inner.lock().record.printed.len()
    }

    /// A copy of each printed label's bytes.
    pub fn printed(&self) -> Vec<Vec<u8>> {
        self.inner.lock().record.printed.clone()
    }

    /// Runs `f` on the record.
    pub fn with_record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.inner.lock().record)
    }

    /// Waits until at least `n` labels printed; `false` on timeout.
    pub fn wait_printed(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |r| r.printed.len() >= n)
    }

    /// Waits until `f` holds for the record; `false` on timeout.
    pub fn wait_until(&self, timeout: Duration, mut f: impl FnMut(&Record) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.inner.lock();
        loop {
            if f(&s.record) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .inner
                .changed
                .wait_timeout(s, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ZplPrinter {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn new_inner() -> Arc<Inner> {
    Arc::new(Inner {
        state: Mutex::new(State {
            record: Record::default(),
            odometer: 0,
            odometer_supported: true,
            fault: None,
            offline: false,
            drop_now: false,
            drop_mid_label: None,
            drop_after_labels: None,
            reply_delay: Duration::ZERO,
        }),
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
    })
}

// ---------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------

/// One connection to the printer.
trait Link {
    /// Up to `buf.len()` bytes within `timeout`: `Ok(0)` is silence, an error or end of
    /// file ends the connection.
    fn read_for(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Sends a reply.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Ends the connection, if the link has one.
    fn hang_up(&mut self) {}
}

impl Link for TcpStream {
    fn read_for(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.set_read_timeout(Some(timeout))?;
        match self.read(buf) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn hang_up(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

/// The master side of a pty.
struct PtyLink {
    fd: OwnedFd,
}

impl Link for PtyLink {
    fn read_for(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready <= 0 {
            return Ok(0);
        }
        // SAFETY: `buf` is valid for writes of its length; the fd is open.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                // EIO: no slave open right now (between the transport's opens).
                _ if e.raw_os_error() == Some(libc::EIO) => {
                    thread::sleep(timeout);
                    Ok(0)
                }
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // SAFETY: `bytes` is valid for reads of its length; the fd is open.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                return Err(e);
            }
            bytes = &bytes[n as usize..];
        }
        Ok(())
    }
}

/// A pty pair: the master (non-blocking), the slave held open in raw mode, the slave's path.
fn pty_pair() -> io::Result<(OwnedFd, OwnedFd, PathBuf)> {
    // SAFETY: plain libc calls on descriptors this function owns; every return value is
    // checked, and each descriptor is wrapped in an OwnedFd as soon as it exists.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK);
        if master < 0 {
            return Err(io::Error::last_os_error());
        }
        let master = OwnedFd::from_raw_fd(master);
        if libc::grantpt(master.as_raw_fd()) != 0 || libc::unlockpt(master.as_raw_fd()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let path = std::ffi::CStr::from_ptr(name.as_ptr());
        let slave = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        let slave = OwnedFd::from_raw_fd(slave);
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut tio) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut tio);
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &tio) != 0 {
            return Err(io::Error::last_os_error());
        }
        let path = PathBuf::from(path.to_string_lossy().into_owned());
        Ok((master, slave, path))
    }
}

// ---------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------

fn serve_tcp(listener: TcpListener, inner: &Inner) {
    while !inner.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let offline = {
                    let mut s = inner.lock();
                    s.drop_now = false;
                    s.offline
                };
                if offline {
                    stream.hang_up();
                    continue;
                }
                inner.lock().record.connections += 1;
                serve(&mut stream, inner);
                stream.hang_up();
            }
            Err(_) => thread::sleep(TICK),
        }
    }
}

/// What to do after taking in some bytes.
enum After {
    Continue,
    HangUp,
}

/// Serves one connection until it ends, the emulator stops, or a drop is due.
fn serve(link: &mut dyn Link, inner: &Inner) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut s = inner.lock();
            if std::mem::take(&mut s.drop_now) {
                drop(s);
                link.hang_up();
                return;
            }
        }
        let n = match link.read_for(&mut buf, TICK) {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let (replies, after) = take_input(&mut pending, inner);
        let delay = inner.lock().reply_delay;
        for reply in replies {
            if !delay.is_zero() {
                thread::sleep(delay);
            }
            if link.send(&reply).is_err() {
                return;
            }
        }
        inner.changed.notify_all();
        if let After::HangUp = after {
            link.hang_up();
            return;
        }
    }
}

/// Consumes every complete command and format in `pending`; returns the replies.
fn take_input(pending: &mut Vec<u8>, inner: &Inner) -> (Vec<Vec<u8>>, After) {
    let mut replies = Vec::new();
    let mut at = 0;
    let mut after = After::Continue;
    let mut s = inner.lock();
    while at < pending.len() {
        let rest = &pending[at..];
        if rest.starts_with(b"^XA") {
            if let Some(0) = s.drop_mid_label {
                // The connection breaks while this label arrives: it never prints.
                s.drop_mid_label = None;
                s.record.lost += 1;
                at = pending.len();
                after = After::HangUp;
                break;
            }
            let Some(end) = find(rest, b"^XZ") else {
                break;
            };
            let label = rest[..end + 3].to_vec();
            at += end + 3;
            if let Some(n) = s.drop_mid_label.as_mut() {
                *n -= 1;
            }
            if s.fault.is_some() {
                s.record.buffered.push(label);
            } else {
                s.record.printed.push(label);
                s.odometer += 1;
            }
            if let Some(n) = s.drop_after_labels.as_mut() {
                *n -= 1;
                if *n == 0 {
                    s.drop_after_labels = None;
                    at = pending.len();
                    after = After::HangUp;
                    break;
                }
            }
        } else if rest.starts_with(b"~HQES") {
            at += 5;
            s.record.queries.push("~HQES".into());
            replies.push(hqes(s.fault));
        } else if rest.starts_with(b"~HS") {
            at += 3;
            s.record.queries.push("~HS".into());
            if !s.fault.is_some_and(Fault::silences_hs) {
                replies.push(hs(s.fault == Some(Fault::Paused)));
            }
        } else if rest.starts_with(b"~JX") {
            at += 3;
        } else if rest.starts_with(b"~SD") {
            if rest.len() < 5 {
                break;
            }
            at += 5;
        } else if rest.starts_with(b"! U1 ") {
            let Some(end) = find(rest, b"\r\n") else {
                break;
            };
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            at += end + 2;
            let name = line.split('"').nth(1).unwrap_or_default().to_owned();
            s.record.queries.push(format!("getvar {name}"));
            if line.contains("getvar") {
                let value = if name == "odometer.total_label_count" && s.odometer_supported {
                    s.odometer.to_string()
                } else {
                    "?".to_owned()
                };
                replies.push(format!("\"{value}\"\r\n").into_bytes());
            }
        } else if matches!(rest[0], b'\r' | b'\n' | b' ') {
            at += 1;
        } else if [&b"^XA"[..], b"~HQES", b"~HS", b"~JX", b"~SD", b"! U1 "]
            .iter()
            .any(|c| c.len() > rest.len() && c.starts_with(rest))
        {
            break; // the start of a command: wait for the rest
        } else {
            s.record.garbage += 1;
            at += 1;
        }
    }
    pending.drain(..at);
    (replies, after)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A `~HQES` reply for `fault`.
pub fn hqes(fault: Option<Fault>) -> Vec<u8> {
    let bits = fault.map_or(0, Fault::error_bits);
    let flag = u8::from(bits != 0);
    format!(
        "\x02\r\nPRINTER STATUS\r\n   ERRORS:   {flag} 00000000 {bits:08X}\r\n   \
         WARNINGS: 0 00000000 00000000\r\n\x03"
    )
    .into_bytes()
}

/// A `~HS` reply: nothing in the buffer, nothing waiting.
pub fn hs(paused: bool) -> Vec<u8> {
    format!(
        "\x02030,0,{},0290,000,0,0,0,000,0,0,0\x03\r\n\
         \x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n",
        u8::from(paused)
    )
    .into_bytes()
}
