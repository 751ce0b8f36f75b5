//! Transports: moving a job's bytes to a device and its replies back.
//!
//! Every transport is a blocking [`Transport`]: `open` (and reopen after a fault),
//! `write_all` in bounded chunks under a deadline, `read_reply` with a timeout
//! (0 bytes means the printer stayed silent: data, not an error), and what it knows
//! of the device ([`DeviceInfo`]: the IEEE 1284 id and the USB port status where the
//! link carries them). A failed write says how many bytes went out, so the caller
//! knows which label was in flight ([`send::send_labels`]).
//!
//! | file | link | address |
//! |---|---|---|
//! | `file.rs` | a file or directory (previews, tests, print-to-file) | `file:///path` |
//! | `tcp.rs` | raw TCP, port 9100 | `tcp://host:9100` |
//! | `serial.rs` | RS-232 via `serialport` | `serial:///dev/ttyUSB0?baud=9600&flow=hardware` |
//! | `usblp.rs` | the kernel's usblp driver | `usblp:///dev/usb/lp0` |
//! | `usb.rs` | libusb via `rusb` | `usb://VID:PID?serial=SN` |
//!
//! [`open`] maps a [`PrinterUri`] to its transport.

pub mod device_id;
pub mod file;
pub mod hotplug;
pub mod send;
pub mod serial;
pub mod tcp;
pub mod uri;
pub mod usb;
pub mod usblp;

pub use device_id::DeviceId;
pub use uri::{Flow, Parity, PrinterUri, SerialSettings, UriError};

use std::time::{Duration, Instant};

/// What kind of fault a transport met; decides whether to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The device is not there (unplugged, wrong address, host unreachable).
    NotFound,
    /// The OS refused access (permissions, udev rules, group membership).
    PermissionDenied,
    /// The connection dropped or the device went away during the operation.
    Disconnected,
    /// The device stopped accepting data (or did not answer) before the deadline.
    Timeout,
    /// The peer refused the connection.
    Refused,
    /// The configuration cannot work (e.g. binary data on an XON/XOFF link).
    Config,
    /// Anything else the OS reported.
    Io,
}

impl TransportErrorKind {
    /// Whether trying again later may succeed.
    pub const fn is_retriable(self) -> bool {
        matches!(
            self,
            TransportErrorKind::NotFound
                | TransportErrorKind::Disconnected
                | TransportErrorKind::Timeout
                | TransportErrorKind::Refused
                | TransportErrorKind::Io
        )
    }
}

/// A transport fault: what happened, on which device, and how many bytes of the
/// failed write reached the link.
#[derive(Debug, thiserror::Error)]
#[error("{device}: {message}")]
pub struct TransportError {
    /// The kind of fault.
    pub kind: TransportErrorKind,
    /// The device, as [`Transport::describe`] names it.
    pub device: String,
    /// What happened, with a hint where there is one.
    pub message: String,
    /// Bytes of the failed `write_all` that were accepted before the fault.
    pub written: usize,
    /// The underlying error, if any.
    #[source]
    pub source: Option<std::io::Error>,
}

impl TransportError {
    /// A new error with nothing written.
    pub fn new(
        kind: TransportErrorKind,
        device: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        TransportError {
            kind,
            device: device.into(),
            message: message.into(),
            written: 0,
            source: None,
        }
    }

    /// Classifies an I/O error (the one place OS errors become kinds).
    pub fn io(device: impl Into<String>, action: &str, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => TransportErrorKind::NotFound,
            K::PermissionDenied => TransportErrorKind::PermissionDenied,
            K::ConnectionRefused => TransportErrorKind::Refused,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected => TransportErrorKind::Disconnected,
            K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
            _ => match err.raw_os_error() {
                // ENODEV / ENXIO / EHOSTUNREACH / ENETUNREACH: the device or host is gone.
                Some(19) | Some(6) | Some(113) | Some(101) => TransportErrorKind::NotFound,
                Some(5) => TransportErrorKind::Disconnected, // EIO: usblp after unplug
                _ => TransportErrorKind::Io,
            },
        };
        let message = format!("{action}: {err}");
        TransportError {
            kind,
            device: device.into(),
            message,
            written: 0,
            source: Some(err),
        }
    }

    /// The same error, recording how many bytes went out.
    pub fn with_written(mut self, written: usize) -> Self {
        self.written = written;
        self
    }

    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        self.kind.is_retriable()
    }
}

/// The USB printer-class port status byte (GET_PORT_STATUS / usblp `LPGETSTATUS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus(pub u8);

impl PortStatus {
    /// Bit 5: paper empty.
    pub fn paper_empty(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// Bit 4: selected (online).
    pub fn selected(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Bit 3 is "not error": an error when it is clear.
    pub fn error(self) -> bool {
        self.0 & 0x08 == 0
    }
}

/// What a transport knows about the device at the other end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The IEEE 1284 device id, where the link carries one (USB).
    pub device_id: Option<DeviceId>,
    /// The port status byte, where the link carries one (USB).
    pub port_status: Option<PortStatus>,
    /// USB vendor and product id, where known.
    pub usb_ids: Option<(u16, u16)>,
    /// Where the device is attached now (bus path, node, peer address).
    pub location: Option<String>,
}

/// A link to one printer. Blocking; one thread per device.
pub trait Transport: Send {
    /// The device's address, for messages (`tcp://10.0.0.5:9100`).
    fn describe(&self) -> String;

    /// Opens the link, or reopens it after a fault (finding the device again by its
    /// stable address, e.g. a USB serial number after a replug).
    fn open(&mut self) -> Result<(), TransportError>;

    /// Writes all of `bytes` in bounded chunks; fails at `deadline` if the device
    /// stops accepting data. The error's `written` says how much went out.
    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError>;

    /// Reads whatever reply arrives within `timeout` into `buf`: `Ok(0)` means the
    /// device said nothing.
    fn read_reply(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError>;

    /// What the link knows about the device.
    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        Ok(DeviceInfo::default())
    }

    /// Closes the link (idempotent).
    fn close(&mut self);

    /// Closes the link after a fault, discarding anything still queued for the
    /// device where the link allows it (a TCP reset), so stale bytes cannot reach the
    /// printer after a new connection starts. By default the same as `close`.
    fn abort(&mut self) {
        self.close();
    }
}

/// The transport for an address (not yet opened).
pub fn open(uri: &PrinterUri) -> Result<Box<dyn Transport>, TransportError> {
    Ok(match uri {
        PrinterUri::File { path } => Box::new(file::FileTransport::new(path.clone())),
        PrinterUri::Tcp { host, port } => Box::new(tcp::TcpTransport::new(host.clone(), *port)),
        PrinterUri::Serial { path, settings } => {
            Box::new(serial::SerialTransport::new(path.clone(), *settings))
        }
        PrinterUri::Usblp { path } => Box::new(usblp::UsblpTransport::new(path.clone())),
        PrinterUri::Usb { .. } => Box::new(usb::UsbTransport::new(uri.clone())?),
    })
}
