//! RS-232 serial printers through the `serialport` crate (default features off, so no
//! libudev): `serial:///dev/ttyUSB0?baud=9600&bits=8&parity=none&stop=1&flow=hardware`.
//!
//! Sources (facts in `../shared/reference/printer-langs.md` §1.5, §5.5, §7): the ZPL guide
//! (`~HS` serial fields, XON/XOFF and "DTR" handshakes), Linux `n_tty.c`, `tty_io.c` and
//! `pty.c` (IXON, hangup, `TIOCOUTQ`), `serialport` 4 (`TTYPort`).
//!
//! - **Device class**: any tty: an on-board UART (`/dev/ttyS*`), a USB-serial adapter
//!   (`/dev/ttyUSB*`: FTDI, PL2303, CH340; `/dev/ttyACM*`: CDC-ACM), or a pseudo-terminal
//!   in tests. Configure the udev name `/dev/serial/by-id/usb-…-if00-port0` for adapters:
//!   `ttyUSBn` numbers go to whichever adapter enumerates first, the by-id link follows the
//!   adapter. The port is opened by `serialport` with the configured baud, data bits,
//!   parity, stop bits and flow control (none, RTS/CTS, XON/XOFF), in raw mode, and
//!   **exclusively** (`TIOCEXCL` plus an exclusive `flock`): a second opener (another
//!   labeld, a getty, ModemManager probing a new `ttyACM`: set `ID_MM_DEVICE_IGNORE=1` in
//!   a udev rule) is refused, and labeld reports "in use" when it is the second one.
//! - **Endpoints**: one duplex byte stream. Replies (`~HS`, `~HQES`) come back on the same
//!   line. With `flow=software` the kernel consumes the printer's DC3 (0x13, stop) and DC1
//!   (0x11, resume) itself (termios `IXON`): they never reach [`Transport::read_reply`], and
//!   while stopped the kernel transmits nothing and its buffer fills.
//! - **7-bit links**: XON/XOFF puts control bytes in the data stream, so binary languages
//!   (Brother QL, DYMO, EPL2 `GW`, PCL) cannot use it and ZPL must be written ASCII-only
//!   (`Profile::ascii_only`): [`check_link`] says so as a `Config` error before a job, and
//!   `write_all` refuses (writing nothing) any buffer holding DC1, DC3 or a byte above 0x7F
//!   on such a link, and any byte above 0x7F with 7 data bits.
//! - **Writes** never block: the descriptor is switched to `O_NONBLOCK` and every chunk
//!   waits in `poll()`. Chunks are about 100 ms of line time ([`chunk_bytes`]: 96 bytes at
//!   9600 8N1, 64–4096), and each waits at most the chunk timeout (30 s unless
//!   [`SerialTransport::with_chunk_timeout`]) and never past the caller's deadline: a printer
//!   that holds labeld off (XOFF, CTS low, buffer full) or a line nobody reads yields a
//!   `Timeout` whose `written` counts exactly the bytes the kernel took. Writes are
//!   **paced** by the kernel's output queue (`TIOCOUTQ`): the next chunk goes only when at
//!   most one chunk is still queued, so of the bytes counted as written at most about two
//!   chunks (≈ 200 ms of line time, plus a USB adapter's own FIFO) can still be on their way
//!   when a fault hits, instead of the whole 4 KiB kernel buffer, and `close` never waits
//!   long for the queue to drain. Pseudo-terminals report an empty queue, so there the
//!   bound is the pty's own buffering (16.7–19 KB measured on Linux 6.18: the tty
//!   buffer plus the master's 4 KiB read buffer).
//! - **Replies**: [`Transport::read_reply`] waits up to its timeout for the first byte and
//!   returns once the line has been quiet for 10 character times (at least 50 ms), the
//!   buffer is full, or the timeout ends; nothing within the timeout is `Ok(0)`, which for
//!   ZPL `~HS` means "possibly in error", never "ready". Bytes nobody asked for (a reply
//!   that came after its `read_reply` gave up) are read and dropped at the start of the
//!   next `write_all`, so a reply always answers the latest query. Input is drained by
//!   reading, never by `tcflush`, which could discard a DC1/DC3 the line discipline has
//!   not processed yet.
//! - **Permissions**: serial nodes are `root:dialout 0660` on Debian and Ubuntu (`uucp` on
//!   Arch): the daemon user needs that group. `EACCES` is `PermissionDenied`.
//! - **Disconnect**: unplugging a USB-serial adapter makes the kernel hang the tty up:
//!   `poll()` reports `POLLHUP`, `read()` returns end of file and `write()` fails with `EIO`,
//!   all reported as `Disconnected` with the bytes taken so far; the node then disappears,
//!   so a reopen fails with `NotFound` until the adapter is back, under the same by-id
//!   link and often the same `ttyUSBn`. After such a fault the descriptor is closed at once
//!   (an open descriptor on a vanished `ttyUSB0` keeps its number busy, and the adapter
//!   would come back as `ttyUSB1`); [`Transport::open`] finds it again by its path. Bytes
//!   queued in the kernel at the hangup are lost with the line. An on-board UART has no
//!   such signal: a pulled cable looks like a printer that stopped reading (`Timeout`
//!   under RTS/CTS once CTS drops; nothing at all with `flow=none`, where bytes go out
//!   into the void). Only a status query that stays silent tells, so query before and
//!   after every job.
//!
//! # What the pseudo-terminal tests prove, and what they cannot
//!
//! `drivers/tests/transport_serial.rs` runs this transport on the slave side of a real pty
//! (the side with a path, like `/dev/ttyUSB0`), with a ZPL printer emulator on the master.
//! The slave's line discipline is the same `n_tty` a UART uses, so the tests prove: the
//! settings reach the kernel, `IXON` stops our output when the emulator writes DC3 and
//! resumes it on DC1 with nothing lost, back-pressure from a reader that stalls leaves
//! every byte in order, deadlines and chunk timeouts fire with exact counts, a hangup of the
//! far side is `Disconnected` and the vanished node `NotFound`, and replies are read back
//! and parsed. A pty ignores the baud rate, forces 8 data bits without parity (Linux
//! `pty_set_termios`), and has no modem lines (`TIOCMGET` fails), so 7-bit framing and
//! parity, RTS/CTS flow control, DTR, line timing, `TIOCOUTQ` pacing, and the FIFO and flow
//! control inside USB-serial chips (FTDI handles XON/XOFF in the chip) are untested here:
//! they need real hardware or a null-modem loop.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serialport::{SerialPort as _, TTYPort};

use super::{
    DeviceInfo, Flow, Parity, PrinterUri, SerialSettings, Transport, TransportError,
    TransportErrorKind,
};
use crate::Driver;

/// DC1, "resume" under XON/XOFF.
pub const XON: u8 = 0x11;
/// DC3, "stop" under XON/XOFF.
pub const XOFF: u8 = 0x13;

/// Line time one write chunk stands for.
const CHUNK_TIME: Duration = Duration::from_millis(100);
/// Fewest bytes per write, however slow the line.
const CHUNK_MIN: usize = 64;
/// Most bytes per write: a UART driver's transmit ring is one page (`UART_XMIT_SIZE`).
const CHUNK_MAX: usize = 4096;
/// How long one chunk may wait to be taken, unless set otherwise: longer than a printer
/// holds the line while it prints a few long labels from a full buffer.
pub const DEFAULT_CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet character times that end a reply.
const REPLY_GAP_CHARS: u32 = 10;
/// The shortest quiet time that ends a reply (a printer may pause between `~HS` strings).
const REPLY_GAP_MIN: Duration = Duration::from_millis(50);
/// Longest single sleep while waiting for the kernel's output queue to drain.
const PACE_SLICE_MAX: Duration = Duration::from_millis(50);
/// Shortest such sleep.
const PACE_SLICE_MIN: Duration = Duration::from_millis(1);
/// Input read (and dropped) at most at the start of a write: a device that streams without
/// end cannot keep `write_all` draining forever.
const DRAIN_MAX: usize = 64 * 1024;

/// A printer on a serial port. Blocking; one thread per port.
pub struct SerialTransport {
    /// The configured node (a `/dev/serial/by-id/…` link survives replugs).
    path: PathBuf,
    /// Line settings applied at every open.
    settings: SerialSettings,
    /// `serial:///dev/…?baud=…`, for messages.
    device: String,
    /// The open port; `None` while closed and after a fault that lost the device.
    port: Option<TTYPort>,
    /// Bytes per `write()`.
    chunk: usize,
    /// The time one character takes on the line.
    char_time: Duration,
    /// Longest wait for one chunk to be taken.
    chunk_timeout: Duration,
}

impl SerialTransport {
    /// A transport for the port at `path` (not yet opened).
    pub fn new(path: PathBuf, settings: SerialSettings) -> Self {
        let device = PrinterUri::Serial {
            path: path.clone(),
            settings,
        }
        .to_string();
        SerialTransport {
            path,
            settings,
            device,
            port: None,
            chunk: chunk_bytes(&settings),
            char_time: char_time(&settings),
            chunk_timeout: DEFAULT_CHUNK_TIMEOUT,
        }
    }

    /// The same transport with another chunk timeout: how long the printer may accept
    /// nothing (held off by flow control, or not reading) before `write_all` gives up with
    /// `Timeout`, even if its deadline is later.
    pub fn with_chunk_timeout(mut self, timeout: Duration) -> Self {
        self.chunk_timeout = timeout;
        self
    }

    /// The configured node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line settings.
    pub fn settings(&self) -> SerialSettings {
        self.settings
    }

    /// The chunk timeout.
    pub fn chunk_timeout(&self) -> Duration {
        self.chunk_timeout
    }

    /// Whether the port is open (it is closed by `close` and by a fault that lost the device).
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// The open port's descriptor, or `Disconnected` when there is none.
    fn fd(&self) -> Result<RawFd, TransportError> {
        self.port.as_ref().map(|p| p.as_raw_fd()).ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Disconnected,
                self.describe(),
                "the port is not open (it is closed after the device goes away; open it again)",
            )
        })
    }

    /// The settings as a `serialport` builder, or a `Config` error naming the bad value.
    fn builder(&self) -> Result<serialport::SerialPortBuilder, TransportError> {
        let s = &self.settings;
        let config = |message: String| {
            TransportError::new(TransportErrorKind::Config, self.describe(), message)
        };
        let path = self.path.to_str().ok_or_else(|| {
            config(format!(
                "serial port path {:?} is not UTF-8 (use a /dev/serial/by-id/… link)",
                self.path
            ))
        })?;
        if s.baud == 0 {
            return Err(config("baud 0: expected a positive rate, e.g. 9600".into()));
        }
        let data_bits = match s.data_bits {
            7 => serialport::DataBits::Seven,
            8 => serialport::DataBits::Eight,
            n => return Err(config(format!("data bits {n}: expected 7 or 8"))),
        };
        let stop_bits = match s.stop_bits {
            1 => serialport::StopBits::One,
            2 => serialport::StopBits::Two,
            n => return Err(config(format!("stop bits {n}: expected 1 or 2"))),
        };
        Ok(serialport::new(path, s.baud)
            .data_bits(data_bits)
            .parity(match s.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(stop_bits)
            .flow_control(match s.flow {
                Flow::None => serialport::FlowControl::None,
                Flow::Hardware => serialport::FlowControl::Hardware,
                Flow::Software => serialport::FlowControl::Software,
            })
            .exclusive(true))
    }

    /// The one place `serialport` open errors become kinds. The crate folds `EBUSY` and a
    /// held lock into `NoDevice` and drops errno for most others, so the node is looked at
    /// again to tell "gone" from "in use".
    fn open_error(&self, err: serialport::Error) -> TransportError {
        let device = self.describe();
        let exists = self.path.exists();
        match err.kind() {
            serialport::ErrorKind::NoDevice if exists => TransportError::new(
                TransportErrorKind::Io,
                device,
                format!(
                    "open: {err}: another program has the port open (labeld opens serial \
                     ports exclusively; see who with `fuser {}`)",
                    self.path.display()
                ),
            ),
            serialport::ErrorKind::InvalidInput => TransportError::new(
                TransportErrorKind::Config,
                device,
                format!("open: the port refused the line settings: {err}"),
            ),
            serialport::ErrorKind::Io(kind) => {
                TransportError::io(device, "open", io::Error::new(kind, err.description))
            }
            serialport::ErrorKind::NoDevice | serialport::ErrorKind::Unknown if !exists => {
                TransportError::new(
                    TransportErrorKind::NotFound,
                    device,
                    format!("open: the device went away ({err}); plug it in or check the path"),
                )
            }
            serialport::ErrorKind::NoDevice | serialport::ErrorKind::Unknown => {
                TransportError::new(TransportErrorKind::Io, device, format!("open: {err}"))
            }
        }
    }

    /// A fault during I/O, classified, with the count; closes the port if the device is gone.
    fn fault(
        &mut self,
        action: &str,
        err: io::Error,
        written: usize,
        total: usize,
    ) -> TransportError {
        let mut e = TransportError::io(self.describe(), action, err).with_written(written);
        let progress = if total > 0 {
            format!(" after {written} of {total} bytes")
        } else {
            String::new()
        };
        e.message = match e.kind {
            TransportErrorKind::Disconnected | TransportErrorKind::NotFound => {
                self.port = None;
                format!(
                    "{}{progress}: the device hung up (unplugged, switched off, or its \
                     USB-serial adapter went away); open it again when it is back",
                    e.message
                )
            }
            _ => format!("{}{progress}", e.message),
        };
        e
    }

    /// `Timeout` for a write that stopped moving.
    fn stalled(&self, written: usize, total: usize, by_deadline: bool) -> TransportError {
        let why = match self.settings.flow {
            Flow::Software => {
                "held off by XOFF: the printer's buffer is full, or it is paused or out of media"
            }
            Flow::Hardware => {
                "held off by CTS: the printer is busy, paused or out of media, or the cable is out"
            }
            Flow::None => "the line stopped draining: check the printer and the cable",
        };
        let message = if by_deadline {
            format!("write deadline passed after {written} of {total} bytes ({why})")
        } else {
            format!(
                "the printer took nothing for {:.1} s after {written} of {total} bytes ({why})",
                self.chunk_timeout.as_secs_f64()
            )
        };
        TransportError::new(TransportErrorKind::Timeout, self.describe(), message)
            .with_written(written)
    }

    /// `Config` (nothing written) if `bytes` cannot go over this link unharmed.
    fn check_bytes(&self, bytes: &[u8]) -> Result<(), TransportError> {
        match seven_bit_violation(&self.settings, bytes) {
            None => Ok(()),
            Some((offset, byte)) => {
                let what = match byte {
                    XON => "would be read as XON (DC1) by the printer".to_owned(),
                    XOFF => "would be read as XOFF (DC3) by the printer".to_owned(),
                    _ => format!("is not 7-bit ASCII ({})", link_name(&self.settings)),
                };
                Err(TransportError::new(
                    TransportErrorKind::Config,
                    self.describe(),
                    format!(
                        "byte 0x{byte:02X} at offset {offset} {what}; nothing was sent (set \
                         ascii_only in the printer profile, or use flow=hardware or none \
                         with bits=8)"
                    ),
                ))
            }
        }
    }

    /// Waits until the kernel holds at most one chunk for the line, or `limit`. `false`
    /// when the limit came first. A port that cannot say (a pty says 0) is not paced.
    fn pace(&self, limit: Instant) -> bool {
        loop {
            let queued = self
                .port
                .as_ref()
                .and_then(|p| p.bytes_to_write().ok())
                .map_or(0, |q| q as usize);
            if queued <= self.chunk {
                return true;
            }
            let now = Instant::now();
            if now >= limit {
                return false;
            }
            let excess = u32::try_from(queued - self.chunk).unwrap_or(u32::MAX);
            let nap = self
                .char_time
                .saturating_mul(excess)
                .clamp(PACE_SLICE_MIN, PACE_SLICE_MAX)
                .min(limit - now);
            std::thread::sleep(nap);
        }
    }

    /// Reads and drops whatever input is waiting (see the module doc: never `tcflush`).
    fn drain_input(&self) {
        let Some(fd) = self.port.as_ref().map(|p| p.as_raw_fd()) else {
            return;
        };
        let mut buf = [0u8; 1024];
        let mut dropped = 0;
        while dropped < DRAIN_MAX {
            match read_fd(fd, &mut buf) {
                Ok(n) if n > 0 => dropped += n,
                // End of file, nothing waiting, or an error: the write that follows reports it.
                _ => return,
            }
        }
    }

    /// How long the line must be quiet to end a reply.
    fn reply_gap(&self) -> Duration {
        self.char_time
            .saturating_mul(REPLY_GAP_CHARS)
            .max(REPLY_GAP_MIN)
    }
}

impl Transport for SerialTransport {
    fn describe(&self) -> String {
        self.device.clone()
    }

    /// Opens the node with the line settings, exclusively, and switches it to nonblocking
    /// I/O. Reopening closes the old descriptor first: after an unplug this finds the
    /// adapter again by its path, or says `NotFound` while it is away.
    fn open(&mut self) -> Result<(), TransportError> {
        self.close();
        let builder = self.builder()?;
        let meta =
            fs::metadata(&self.path).map_err(|e| TransportError::io(self.describe(), "open", e))?;
        if !meta.file_type().is_char_device() {
            return Err(TransportError::new(
                TransportErrorKind::Config,
                self.describe(),
                format!(
                    "{} is not a serial device (expected a tty such as /dev/ttyUSB0 or a \
                     /dev/serial/by-id/… link)",
                    self.path.display()
                ),
            ));
        }
        let port = builder.open_native().map_err(|e| self.open_error(e))?;
        set_nonblocking(port.as_raw_fd())
            .map_err(|e| TransportError::io(self.describe(), "open: set nonblocking", e))?;
        self.port = Some(port);
        // Characters that arrived before the settings took effect may be garbled.
        self.drain_input();
        Ok(())
    }

    /// Writes `bytes` in chunks of about 100 ms of line time, each waiting at most the chunk
    /// timeout and never past `deadline`; refuses bytes the link cannot carry.
    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        self.check_bytes(bytes)?;
        let fd = self.fd()?;
        self.drain_input();
        let total = bytes.len();
        let mut written = 0;
        let mut progress = Instant::now();
        while written < total {
            let (limit, by_deadline) = match progress.checked_add(self.chunk_timeout) {
                Some(stall) if stall < deadline => (stall, false),
                _ => (deadline, true),
            };
            if !self.pace(limit) {
                return Err(self.stalled(written, total, by_deadline));
            }
            let ready = match wait(fd, libc::POLLOUT, limit) {
                Ok(ready) => ready,
                Err(e) => return Err(self.fault("write: poll", e, written, total)),
            };
            if ready == Polled::Timeout {
                return Err(self.stalled(written, total, by_deadline));
            }
            let end = total.min(written + self.chunk);
            match write_fd(fd, &bytes[written..end]) {
                Ok(n) => {
                    if n > 0 {
                        written += n;
                        progress = Instant::now();
                    }
                }
                Err(e) if is_retry(&e) && ready != Polled::HungUp => {}
                Err(e) => {
                    let e = if is_retry(&e) { hung_up() } else { e };
                    return Err(self.fault("write", e, written, total));
                }
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for the first byte, then reads until the line is quiet for
    /// 10 character times (at least 50 ms), `buf` is full, or `timeout` ends.
    fn read_reply(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let fd = self.fd()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let start = Instant::now();
        // A timeout too far to represent: a year is forever here.
        let end = start
            .checked_add(timeout)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        let gap = self.reply_gap();
        let mut n = 0;
        let mut last = start;
        loop {
            let until = if n == 0 { end } else { end.min(last + gap) };
            let ready = match wait(fd, libc::POLLIN, until) {
                Ok(ready) => ready,
                Err(e) => return Err(self.fault("read: poll", e, 0, 0)),
            };
            if ready == Polled::Timeout {
                return Ok(n);
            }
            match read_fd(fd, &mut buf[n..]) {
                // End of file on a tty in raw mode (VMIN 1) is a hangup. Keep what came first.
                Ok(0) if n > 0 => return Ok(n),
                Ok(0) => return Err(self.fault("read", hung_up(), 0, 0)),
                Ok(k) => {
                    n += k;
                    last = Instant::now();
                    if n == buf.len() {
                        return Ok(n);
                    }
                }
                Err(e) if is_retry(&e) && ready != Polled::HungUp => {}
                Err(e) => {
                    if n > 0 {
                        return Ok(n);
                    }
                    let e = if is_retry(&e) { hung_up() } else { e };
                    return Err(self.fault("read", e, 0, 0));
                }
            }
        }
    }

    /// Where the node leads now (a by-id link resolved) and, for a USB-serial adapter, its
    /// USB ids from sysfs. `NotFound` while the device is away.
    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        let node = fs::canonicalize(&self.path)
            .map_err(|e| TransportError::io(self.describe(), "resolve the device path", e))?;
        let usb_ids = node
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(usb_ids_of_tty);
        Ok(DeviceInfo {
            usb_ids,
            location: Some(node.display().to_string()),
            ..DeviceInfo::default()
        })
    }

    /// Closes the port. The kernel first sends what it still holds (pacing keeps that to
    /// about two chunks); if the printer holds the line off meanwhile, the close waits up to
    /// the port's `closing_wait` (30 s by default) before the kernel drops the rest.
    fn close(&mut self) {
        self.port = None;
    }
}

/// Refuses a language or setting that cannot go over this serial link, as a `Config`
/// error: binary languages on XON/XOFF (where DC1/DC3 in the data would start and stop the
/// line) or on 7 data bits (which drop the 8th bit), and a 7-bit-capable language (ZPL)
/// whose profile does not ask for ASCII-only output there. Other links take anything.
///
/// The error's `device` names the link (`serial link (9600 8N1, XON/XOFF)`); set it to
/// [`Transport::describe`] when a transport is at hand.
pub fn check_link(
    settings: &SerialSettings,
    driver: &dyn Driver,
    ascii_only: bool,
) -> Result<(), TransportError> {
    let (link, fix) = if settings.flow == Flow::Software {
        ("an XON/XOFF serial link", "use flow=hardware or none")
    } else if settings.data_bits == 7 {
        ("a 7-data-bit serial link", "use bits=8")
    } else {
        return Ok(());
    };
    let language = driver.language().name();
    let message = if !driver.capabilities().ascii_capable {
        format!("{language} output is binary and cannot go over {link}; {fix}")
    } else if !ascii_only {
        format!(
            "{language} output must be 7-bit ASCII on {link}; set ascii_only in the printer \
             profile, or {fix}"
        )
    } else {
        return Ok(());
    };
    Err(TransportError::new(
        TransportErrorKind::Config,
        format!("serial link ({})", link_name(settings)),
        message,
    ))
}

/// Bytes per write for these settings: about 100 ms of line time, 64 to 4096 bytes.
pub fn chunk_bytes(settings: &SerialSettings) -> usize {
    let per_second = u64::from(settings.baud) / u64::from(bits_per_char(settings));
    let per_chunk = per_second * CHUNK_TIME.as_millis() as u64 / 1000;
    usize::try_from(per_chunk)
        .unwrap_or(CHUNK_MAX)
        .clamp(CHUNK_MIN, CHUNK_MAX)
}

/// Start bit, data bits, parity bit, stop bits.
fn bits_per_char(s: &SerialSettings) -> u32 {
    1 + u32::from(s.data_bits.clamp(5, 8))
        + u32::from(s.parity != Parity::None)
        + u32::from(s.stop_bits.clamp(1, 2))
}

/// The time one character takes on the line.
fn char_time(s: &SerialSettings) -> Duration {
    Duration::from_secs_f64(f64::from(bits_per_char(s)) / f64::from(s.baud.max(1)))
}

/// `9600 8N1, XON/XOFF`.
fn link_name(s: &SerialSettings) -> String {
    let parity = match s.parity {
        Parity::None => 'N',
        Parity::Odd => 'O',
        Parity::Even => 'E',
    };
    let flow = match s.flow {
        Flow::None => "no flow control",
        Flow::Hardware => "RTS/CTS",
        Flow::Software => "XON/XOFF",
    };
    format!("{} {}{parity}{}, {flow}", s.baud, s.data_bits, s.stop_bits)
}

/// The first byte (offset, value) a 7-bit link cannot carry: DC1, DC3 or above 0x7F under
/// XON/XOFF; above 0x7F with 7 data bits.
fn seven_bit_violation(s: &SerialSettings, bytes: &[u8]) -> Option<(usize, u8)> {
    let xonxoff = s.flow == Flow::Software;
    if !xonxoff && s.data_bits != 7 {
        return None;
    }
    bytes
        .iter()
        .position(|&b| b > 0x7f || (xonxoff && (b == XON || b == XOFF)))
        .map(|i| (i, bytes[i]))
}

/// A USB-serial adapter's vendor and product id: the first ancestor of the tty's sysfs
/// device that has `idVendor` and `idProduct` (the interface's parent for ttyACM and
/// ttyUSB). `None` for on-board UARTs and ptys.
fn usb_ids_of_tty(name: &str) -> Option<(u16, u16)> {
    let device = fs::canonicalize(Path::new("/sys/class/tty").join(name).join("device")).ok()?;
    let hex = |dir: &Path, file: &str| {
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|s| u16::from_str_radix(s.trim(), 16).ok())
    };
    device
        .ancestors()
        .take(6)
        .find_map(|dir| Some((hex(dir, "idVendor")?, hex(dir, "idProduct")?)))
}

// ---------------------------------------------------------------------------------------
// The descriptor, nonblocking: `serialport`'s own `write` waits for "some room" and then
// does a blocking write of the whole buffer, which can block without bound when the line
// stops mid-buffer, and its errors drop errno (EIO, ENXIO), which decides the error kind.
// ---------------------------------------------------------------------------------------

/// What `poll()` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Polled {
    /// The asked-for event.
    Ready,
    /// Hangup or error: the next read or write says which.
    HungUp,
    /// Nothing before the limit.
    Timeout,
}

/// Polls `fd` for `events` until `until`.
fn wait(fd: RawFd, events: libc::c_short, until: Instant) -> io::Result<Polled> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        // Round up, so the limit is never cut short; cap at what poll() takes.
        let ms =
            libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack, count 1, for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if rc == 0 {
            return Ok(Polled::Timeout);
        }
        if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return Ok(Polled::HungUp);
        }
        if pfd.revents & events != 0 {
            return Ok(Polled::Ready);
        }
    }
}

/// `write()` once.
fn write_fd(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live slice for the duration of the call.
    let rc = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// `read()` once.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, writable slice for the call.
    let rc = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Sets `O_NONBLOCK`.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL takes an int of flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Nothing to do yet (`EAGAIN`) or interrupted: try again.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The error for a line that hung up without an errno (end of file, `POLLHUP`).
fn hung_up() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the line hung up")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lang, models};

    fn settings(flow: Flow, data_bits: u8) -> SerialSettings {
        SerialSettings {
            flow,
            data_bits,
            ..SerialSettings::default()
        }
    }

    fn check(model: &str, flow: Flow, data_bits: u8, ascii_only: bool) -> Result<(), String> {
        let mut profile = models::find(model).expect("model in the table").profile();
        profile.ascii_only = ascii_only;
        // Binary drivers refuse to write at all under ascii_only; the check must not care.
        let driver = lang::driver(&profile);
        check_link(&settings(flow, data_bits), driver.as_ref(), ascii_only).map_err(|e| {
            assert_eq!(e.kind, TransportErrorKind::Config, "{e}");
            assert_eq!(e.written, 0);
            e.to_string()
        })
    }

    #[test]
    fn check_link_refuses_binary_languages_on_xon_xoff() {
        let xoff = "output is binary and cannot go over an XON/XOFF serial link; use \
                    flow=hardware or none";
        // (model, language name)
        let cases = [
            // 0: Brother QL raster.
            ("brother-ql-800", "brother-ql"),
            // 1: DYMO raster.
            ("dymo-lw450", "dymo"),
            // 2: EPL2 (GW is binary).
            ("epl-203", "epl2"),
            // 3: PCL raster.
            ("pcl-300", "pcl"),
            // 4, 5: preview formats are binary too.
            ("png-203", "png"),
            ("pdf-300", "pdf"),
        ];
        for (i, (model, language)) in cases.into_iter().enumerate() {
            for ascii_only in [false, true] {
                let err = check(model, Flow::Software, 8, ascii_only).unwrap_err();
                assert_eq!(
                    err,
                    format!("serial link (9600 8N1, XON/XOFF): {language} {xoff}"),
                    "case {i}"
                );
            }
            // 7 data bits strip the 8th bit whatever the flow control.
            let err = check(model, Flow::Hardware, 7, false).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "serial link (9600 7N1, RTS/CTS): {language} output is binary and cannot go \
                     over a 7-data-bit serial link; use bits=8"
                ),
                "case {i}"
            );
            // 8 bits without XON/XOFF carry anything.
            for flow in [Flow::None, Flow::Hardware] {
                assert_eq!(check(model, flow, 8, false), Ok(()), "case {i} {flow:?}");
            }
        }
    }

    #[test]
    fn check_link_wants_ascii_zpl_on_xon_xoff() {
        assert_eq!(check("zebra-zd421-203", Flow::Software, 8, true), Ok(()));
        assert_eq!(check("zpl-203", Flow::Software, 7, true), Ok(()));
        assert_eq!(check("zpl-203", Flow::None, 7, true), Ok(()));
        assert_eq!(
            check("zpl-203", Flow::Software, 8, false).unwrap_err(),
            "serial link (9600 8N1, XON/XOFF): zpl output must be 7-bit ASCII on an XON/XOFF \
             serial link; set ascii_only in the printer profile, or use flow=hardware or none"
        );
        assert_eq!(
            check("zpl-203", Flow::None, 7, false).unwrap_err(),
            "serial link (9600 7N1, no flow control): zpl output must be 7-bit ASCII on a \
             7-data-bit serial link; set ascii_only in the printer profile, or use bits=8"
        );
        for flow in [Flow::None, Flow::Hardware] {
            assert_eq!(check("zpl-203", flow, 8, false), Ok(()), "{flow:?}");
        }
    }

    #[test]
    fn seven_bit_links_refuse_control_and_high_bytes() {
        let xonxoff = settings(Flow::Software, 8);
        let seven = settings(Flow::None, 7);
        let plain = settings(Flow::Hardware, 8);
        // (bytes, on XON/XOFF, on 7 bits)
        type Violation = Option<(usize, u8)>;
        let cases: [(&[u8], Violation, Violation); 6] = [
            // 0: ASCII ZPL with STX/ETX and CR/LF is fine everywhere.
            (b"^XA^FDok^FS^XZ\r\n\x02\x03", None, None),
            // 1: DC3 in the data: the printer would take it for XOFF.
            (b"^XA\x13", Some((3, XOFF)), None),
            // 2: DC1.
            (b"\x11^XA", Some((0, XON)), None),
            // 3: UTF-8 text.
            ("^FDé".as_bytes(), Some((3, 0xc3)), Some((3, 0xc3))),
            // 4: binary raster.
            (b"\x1bia\x01\xff", Some((4, 0xff)), Some((4, 0xff))),
            // 5: empty.
            (b"", None, None),
        ];
        for (i, (bytes, on_xonxoff, on_seven)) in cases.into_iter().enumerate() {
            assert_eq!(seven_bit_violation(&xonxoff, bytes), on_xonxoff, "case {i}");
            assert_eq!(seven_bit_violation(&seven, bytes), on_seven, "case {i}");
            assert_eq!(seven_bit_violation(&plain, bytes), None, "case {i}");
        }
    }

    #[test]
    fn chunks_are_about_100_ms_of_line_time() {
        let at = |baud: u32, data_bits: u8, parity: Parity, stop_bits: u8| {
            chunk_bytes(&SerialSettings {
                baud,
                data_bits,
                parity,
                stop_bits,
                flow: Flow::None,
            })
        };
        // 9600 8N1: 10 bits a character, 960 characters a second.
        assert_eq!(at(9600, 8, Parity::None, 1), 96);
        // 9600 7E2: 11 bits.
        assert_eq!(at(9600, 7, Parity::Even, 2), 87);
        assert_eq!(at(115_200, 8, Parity::None, 1), 1152);
        // Clamped: 1200 baud would be 12 bytes; 4 Mbaud would be 40 000.
        assert_eq!(at(1200, 8, Parity::None, 1), CHUNK_MIN);
        assert_eq!(at(4_000_000, 8, Parity::None, 1), CHUNK_MAX);
        assert_eq!(at(0, 8, Parity::None, 1), CHUNK_MIN);
    }

    #[test]
    fn replies_end_after_ten_quiet_characters_or_50_ms() {
        let transport = |baud| {
            SerialTransport::new(
                "/dev/null".into(),
                SerialSettings {
                    baud,
                    ..SerialSettings::default()
                },
            )
        };
        assert_eq!(transport(9600).reply_gap(), REPLY_GAP_MIN);
        // 300 baud: 10 characters of 10 bits.
        let slow = transport(300).reply_gap();
        assert!((slow.as_secs_f64() - 1.0 / 3.0).abs() < 1e-6, "{slow:?}");
    }

    #[test]
    fn describes_itself_by_uri() {
        let t = SerialTransport::new(
            "/dev/serial/by-id/usb-FTDI-if00-port0".into(),
            SerialSettings {
                flow: Flow::Software,
                ..SerialSettings::default()
            },
        );
        assert_eq!(
            t.describe(),
            "serial:///dev/serial/by-id/usb-FTDI-if00-port0?baud=9600&bits=8&parity=none&stop=1&flow=software"
        );
        assert!(!t.is_open());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        // (data bits, stop bits, baud, message)
        let cases = [
            (6, 1, 9600, "data bits 6: expected 7 or 8"),
            (8, 3, 9600, "stop bits 3: expected 1 or 2"),
            (8, 1, 0, "baud 0: expected a positive rate, e.g. 9600"),
        ];
        for (i, (data_bits, stop_bits, baud, message)) in cases.into_iter().enumerate() {
            let mut t = SerialTransport::new(
                "/dev/ttyS0".into(),
                SerialSettings {
                    baud,
                    data_bits,
                    stop_bits,
                    ..SerialSettings::default()
                },
            );
            let err = t.open().unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Config, "case {i}");
            assert_eq!(err.message, message, "case {i}");
        }
    }
}
