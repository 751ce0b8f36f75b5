//! USB printers through the Linux kernel's `usblp` driver: `/dev/usb/lpN` (major 180).
//!
//! Sources (facts in `../shared/reference/printer-langs.md` §5.1, §5.2, §5.4, §6.5, §7.8):
//! Linux `drivers/usb/class/usblp.c` (ioctls, write and poll semantics), USB Printer
//! Class 1.1 (GET_DEVICE_ID, GET_PORT_STATUS, SOFT_RESET).
//!
//! - **Device class**: usblp binds USB interfaces of class 7 (printer), subclass 1,
//!   protocol 1 (unidirectional), 2 (bidirectional) or 3 (IEEE 1284.4), preferring 2.
//! - **Endpoints**: writes go to the interface's bulk OUT endpoint through an 8 KiB
//!   kernel buffer; on bidirectional printers `read()` returns what came in on bulk IN
//!   (ZPL `~HS`/`~HQES`, Brother and DYMO status). A unidirectional printer never becomes
//!   readable, so [`Transport::read_reply`] reports silence (`Ok(0)`).
//! - **Ioctls** (`_IOC(dir, 'P', nr, len)`): `IOCNR_GET_DEVICE_ID` (1, the 1284 id with
//!   its length prefix), `IOCNR_GET_VID_PID` (6, two ints), `IOCNR_SOFT_RESET` (7; the
//!   kernel sends the class request with bmRequestType 0x23), and `LPGETSTATUS` (0x060b,
//!   the GET_PORT_STATUS byte, **masked with 0xff**: the kernel sign-extends it, §7.8).
//! - **Blocking**: the node is opened `O_NONBLOCK` and every write and read waits in
//!   `poll()` for at most the time left, so a printer that stops taking data (paper out,
//!   head open) yields a timeout that says how many bytes went out, never a hang. In
//!   nonblocking mode usblp accepts one buffer (≤ 8 KiB) per `write()` and counts it as
//!   written once submitted: "written" means taken by the kernel, and up to one buffer
//!   may still be in flight when the device disappears.
//! - **Permissions**: the node is normally `root:lp 0660`; put the daemon user in group
//!   `lp` (§5.4). Without udev (the QEMU test guest) it is `root 0600`. usblp lets one
//!   process open a node at a time: `EBUSY` means another program (a CUPS `usb`
//!   backend?) has it.
//! - **Disconnect**: after an unplug, writes and ioctls fail with `ENODEV` (kind
//!   `NotFound`) or `EIO` (kind `Disconnected`) and the node disappears. On replug the
//!   kernel gives the printer the lowest free minor, which need not be the old one.
//!   [`UsblpTransport::open`] therefore remembers the identity of the printer it first
//!   found at the configured node (1284 id, serial, USB ids, port path) and, when
//!   reopening, scans `/dev/usb/lp*` for it ([`select_node`]): by serial number first,
//!   then by bus port, then by manufacturer and model. It never prints to a different
//!   printer that took the old node; two identical printers without serial numbers on
//!   unknown ports are reported as ambiguous instead.
//! - **Identity without opening**: sysfs gives each node's 1284 id
//!   (`/sys/class/usbmisc/lpN/device/ieee1284_id`), USB ids, serial and port, so a scan
//!   does not have to open (and so briefly lock) other printers' nodes; the ioctls are the
//!   fallback where sysfs is missing.

use super::{DeviceId, DeviceInfo, PortStatus, Transport, TransportError, TransportErrorKind};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where usblp nodes live.
pub const DEV_DIR: &str = "/dev/usb";
/// Where sysfs lists usblp nodes (class `usbmisc`).
pub const SYSFS_CLASS_DIR: &str = "/sys/class/usbmisc";

/// usblp's write buffer (`USBLP_BUF_SIZE`): one `write()` submits at most this much.
pub const WRITE_CHUNK: usize = 8192;
/// usblp's device id buffer (`USBLP_DEVICE_ID_SIZE`).
pub const DEVICE_ID_LEN: usize = 1024;

/// `_IOC` direction bits and shift: asm-generic, except on the architectures whose
/// `ioctl.h` uses 13 size bits and a 3-bit direction (`_IOC_NONE` = 1).
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod ioc {
    pub const NONE: u32 = 1;
    pub const READ: u32 = 2;
    pub const DIR_SHIFT: u32 = 29;
}
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod ioc {
    pub const NONE: u32 = 0;
    pub const READ: u32 = 2;
    pub const DIR_SHIFT: u32 = 30;
}

/// Linux `_IOC(dir, type, nr, size)`.
const fn ioc(dir: u32, ty: u8, nr: u8, size: u32) -> u32 {
    (dir << ioc::DIR_SHIFT) | (size << 16) | ((ty as u32) << 8) | nr as u32
}

/// usblp ioctl numbers (`usblp.c`: `IOCNR_*`, type `'P'`).
const IOCNR_GET_DEVICE_ID: u8 = 1;
const IOCNR_GET_VID_PID: u8 = 6;
const IOCNR_SOFT_RESET: u8 = 7;

/// `LPIOC_GET_DEVICE_ID(len)`.
pub const fn lpioc_get_device_id(len: u32) -> u32 {
    ioc(ioc::READ, b'P', IOCNR_GET_DEVICE_ID, len)
}
/// `LPIOC_GET_VID_PID(len)`: two C ints, vendor then product.
pub const fn lpioc_get_vid_pid(len: u32) -> u32 {
    ioc(ioc::READ, b'P', IOCNR_GET_VID_PID, len)
}
/// `LPIOC_SOFT_RESET`.
pub const LPIOC_SOFT_RESET: u32 = ioc(ioc::NONE, b'P', IOCNR_SOFT_RESET, 0);
/// `LPGETSTATUS` (from `linux/lp.h`): the port status byte, as an int.
pub const LPGETSTATUS: u32 = 0x060b;

/// What identifies a printer across replugs, as far as usblp shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The IEEE 1284 id (manufacturer and model are matched from it).
    pub device_id: Option<DeviceId>,
    /// USB vendor and product id.
    pub usb_ids: Option<(u16, u16)>,
    /// The serial number: the 1284 id's `SN`/`SERN`/`SERIALNUMBER`, else the USB
    /// serial number string.
    pub serial: Option<String>,
    /// The USB port path (`1-1.4`): stable while the printer stays in the same socket.
    pub port_path: Option<String>,
}

impl NodeIdentity {
    /// The serial numbers to match by: the USB one, then the 1284 id's.
    fn serials(&self) -> impl Iterator<Item = &str> {
        self.serial
            .as_deref()
            .into_iter()
            .chain(self.device_id.as_ref().and_then(DeviceId::serial))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// `(manufacturer, model)` from the 1284 id.
    fn make_model(&self) -> Option<(&str, &str)> {
        let id = self.device_id.as_ref()?;
        Some((id.manufacturer()?, id.model()?))
    }

    /// Whether nothing is known (then only the configured node itself can be used).
    pub fn is_unknown(&self) -> bool {
        self.serials().next().is_none() && self.make_model().is_none() && self.port_path.is_none()
    }
}

/// One `/dev/usb/lpN` node found by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCandidate {
    /// The node.
    pub path: PathBuf,
    /// What it says about itself; `None` if it could not be asked (busy, no access).
    pub identity: Option<NodeIdentity>,
}

/// Why no node was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// No node holds the wanted printer.
    NotFound {
        /// Nodes that could not be asked who they are (busy or no access).
        unreadable: Vec<PathBuf>,
    },
    /// Several nodes fit equally well (identical printers without serial numbers).
    Ambiguous(Vec<PathBuf>),
}

/// How a node was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    /// The serial number matched.
    Serial,
    /// Manufacturer and model matched, and the printer is on the same USB port.
    PortPath,
    /// Manufacturer and model matched, and only one node has them.
    Model,
    /// Manufacturer and model matched on several nodes; the configured node is one.
    ModelAtConfiguredNode,
    /// Nothing is known about the printer: the configured node itself.
    ConfiguredNode,
}

/// Picks the node that holds `want` among `nodes` (the selection after a replug).
///
/// Rules, in order: USB ids must not contradict; a wanted serial must match (1284 or
/// USB serial); without a serial, manufacturer and model must match, and ties are broken
/// by the USB port, then by the configured node. A node that could not be asked is never
/// chosen by identity. With no identity at all, only `configured` qualifies.
pub fn select_node(
    want: &NodeIdentity,
    nodes: &[NodeCandidate],
    configured: &Path,
) -> Result<(usize, MatchedBy), SelectError> {
    let unreadable: Vec<PathBuf> = nodes
        .iter()
        .filter(|n| n.identity.is_none())
        .map(|n| n.path.clone())
        .collect();
    let not_found = || SelectError::NotFound {
        unreadable: unreadable.clone(),
    };
    if want.is_unknown() {
        return nodes
            .iter()
            .position(|n| n.path == configured)
            .map(|i| (i, MatchedBy::ConfiguredNode))
            .ok_or_else(not_found);
    }
    let ids_agree = |have: &NodeIdentity| match (want.usb_ids, have.usb_ids) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let known: Vec<(usize, &NodeIdentity)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.identity.as_ref().map(|id| (i, id)))
        .filter(|(_, id)| ids_agree(id))
        .collect();

    let wanted_serials: Vec<&str> = want.serials().collect();
    let (matches, by): (Vec<(usize, &NodeIdentity)>, MatchedBy) = if !wanted_serials.is_empty() {
        let m = known
            .iter()
            .filter(|(_, id)| id.serials().any(|s| wanted_serials.contains(&s)))
            .copied()
            .collect();
        (m, MatchedBy::Serial)
    } else if let Some(make_model) = want.make_model() {
        let m = known
            .iter()
            .filter(|(_, id)| id.make_model() == Some(make_model))
            .copied()
            .collect();
        (m, MatchedBy::Model)
    } else {
        // Only a port path is known.
        let m = known
            .iter()
            .filter(|(_, id)| id.port_path.is_some() && id.port_path == want.port_path)
            .copied()
            .collect();
        (m, MatchedBy::PortPath)
    };

    match matches.as_slice() {
        [] => Err(not_found()),
        [(i, _)] => Ok((*i, by)),
        several => {
            let same_port: Vec<usize> = several
                .iter()
                .filter(|(_, id)| want.port_path.is_some() && id.port_path == want.port_path)
                .map(|(i, _)| *i)
                .collect();
            if let [i] = same_port.as_slice() {
                return Ok((*i, MatchedBy::PortPath));
            }
            if by == MatchedBy::Model {
                if let Some((i, _)) = several.iter().find(|(i, _)| nodes[*i].path == configured) {
                    return Ok((*i, MatchedBy::ModelAtConfiguredNode));
                }
            }
            Err(SelectError::Ambiguous(
                several
                    .iter()
                    .map(|(i, _)| nodes[*i].path.clone())
                    .collect(),
            ))
        }
    }
}

/// The USB port path (`1-1.4`) from the target of a usblp node's sysfs `device` link,
/// which ends in the interface's name (`…/1-1/1-1.4/1-1.4:1.0`).
pub fn port_path_from_sysfs(device_link: &Path) -> Option<String> {
    let name = device_link.file_name()?.to_str()?;
    let (port, _config_iface) = name.split_once(':')?;
    let (bus, ports) = port.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(bus) && ports.split('.').all(digits)).then(|| port.to_owned())
}

/// The usblp nodes present now (`/dev/usb/lp*`), sorted.
pub fn list_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir(DEV_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("lp"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    nodes.sort();
    nodes
}

/// Reads a node's identity from sysfs without opening it; `None` without sysfs.
fn identity_from_sysfs(node: &Path) -> Option<NodeIdentity> {
    let name = node.file_name()?;
    let iface_dir = Path::new(SYSFS_CLASS_DIR).join(name).join("device");
    let iface = std::fs::canonicalize(&iface_dir).ok()?;
    let device_id = std::fs::read(iface.join("ieee1284_id"))
        .ok()
        .map(DeviceId::parse)
        .filter(|id| !id.is_empty());
    let usb_dir = iface.parent()?;
    let read = |attr: &str| {
        std::fs::read_to_string(usb_dir.join(attr))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let hex = |attr: &str| read(attr).and_then(|s| u16::from_str_radix(&s, 16).ok());
    let usb_ids = hex("idVendor").zip(hex("idProduct"));
    Some(NodeIdentity {
        serial: read("serial"),
        port_path: port_path_from_sysfs(&iface),
        device_id,
        usb_ids,
    })
}

/// Asks an open node who it is (1284 id and USB ids through ioctls).
fn identity_from_ioctls(file: &File) -> NodeIdentity {
    NodeIdentity {
        device_id: get_device_id(file).ok().filter(|id| !id.is_empty()),
        usb_ids: get_vid_pid(file).ok(),
        serial: None,
        port_path: None,
    }
}

/// Identity of a node: sysfs first, else open it briefly and ask; `None` if neither
/// works (busy, no access).
fn identify(node: &Path) -> Option<NodeIdentity> {
    if let Some(id) = identity_from_sysfs(node) {
        if id.device_id.is_some() {
            return Some(id);
        }
    }
    let file = open_node(node).ok()?;
    let mut id = identity_from_ioctls(&file);
    if let Some(sys) = identity_from_sysfs(node) {
        id.serial = sys.serial;
        id.port_path = sys.port_path;
        id.usb_ids = id.usb_ids.or(sys.usb_ids);
    }
    Some(id)
}

fn open_node(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Runs `LPIOC_GET_DEVICE_ID` and parses the id.
fn get_device_id(file: &File) -> io::Result<DeviceId> {
    let mut buf = [0u8; DEVICE_ID_LEN];
    // SAFETY: the request's size field is `buf.len()`, so usblp writes at most that many
    // bytes into `buf`, which lives for the whole call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            lpioc_get_device_id(DEVICE_ID_LEN as u32) as _,
            buf.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(DeviceId::parse(&buf[..]))
}

/// Runs `LPIOC_GET_VID_PID`.
fn get_vid_pid(file: &File) -> io::Result<(u16, u16)> {
    let mut ids = [0 as libc::c_int; 2];
    let size = std::mem::size_of_val(&ids) as u32;
    // SAFETY: the size field is the size of `ids` (two C ints, what usblp copies out at
    // most), and `ids` outlives the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            lpioc_get_vid_pid(size) as _,
            ids.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let id = |v: libc::c_int| u16::try_from(v & 0xffff).unwrap_or_default();
    Ok((id(ids[0]), id(ids[1])))
}

/// Runs `LPGETSTATUS` and masks the sign-extended byte (§7.8).
fn get_port_status(file: &File) -> io::Result<PortStatus> {
    let mut status: libc::c_int = 0;
    // SAFETY: LPGETSTATUS copies one C int to the pointer, which points at `status`.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            LPGETSTATUS as _,
            &mut status as *mut libc::c_int,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(port_status_from_ioctl(status))
}

/// The port status byte from `LPGETSTATUS`'s int, which usblp sign-extends (a byte with
/// bit 7 set came back as 0xffffffa0).
pub fn port_status_from_ioctl(value: libc::c_int) -> PortStatus {
    PortStatus((value & 0xff) as u8)
}

/// Waits up to `timeout` for `events` on `file`; `Ok(false)` on timeout.
fn wait_for(file: &File, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up so a sub-millisecond remainder still waits rather than spins.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
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
        if rc > 0 {
            // Readable/writable, or POLLERR/POLLHUP/POLLNVAL: the next read or write
            // reports which.
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// An open node and the identity found there.
struct Open {
    file: File,
    path: PathBuf,
}

/// A printer on a usblp node, found again by identity after a replug.
pub struct UsblpTransport {
    /// The node from the address (`usblp:///dev/usb/lp0`).
    configured: PathBuf,
    /// The printer found at the first successful open; what a reopen looks for.
    identity: NodeIdentity,
    /// The open node, if any (may differ from `configured` after a replug).
    open: Option<Open>,
}

impl UsblpTransport {
    /// A transport for the printer at `path` (not opened yet).
    pub fn new(path: PathBuf) -> Self {
        UsblpTransport {
            configured: path,
            identity: NodeIdentity::default(),
            open: None,
        }
    }

    /// The identity remembered from the first open (empty before it).
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The node in use now, if open.
    pub fn current_node(&self) -> Option<&Path> {
        self.open.as_ref().map(|o| o.path.as_path())
    }

    /// Asks the printer to reset (`LPIOC_SOFT_RESET`: usblp sends SOFT_RESET with
    /// bmRequestType 0x23). Flushes its buffers; a job in progress is lost.
    pub fn soft_reset(&mut self) -> Result<(), TransportError> {
        let device = self.describe();
        let file = &self.open_ref()?.file;
        // SAFETY: LPIOC_SOFT_RESET takes no argument (direction NONE, size 0).
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), LPIOC_SOFT_RESET as _, 0) };
        if rc < 0 {
            return Err(self.fault(device, "soft reset", io::Error::last_os_error()));
        }
        Ok(())
    }

    fn open_ref(&self) -> Result<&Open, TransportError> {
        self.open.as_ref().ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Disconnected,
                self.describe(),
                "not open (open it first, or reopen after the fault)",
            )
        })
    }

    /// Turns an OS error into a transport error, dropping the node when the device is
    /// gone so that the next `open` scans for it.
    fn fault(&mut self, device: String, action: &str, err: io::Error) -> TransportError {
        let e = classify(device, action, err);
        if matches!(
            e.kind,
            TransportErrorKind::NotFound | TransportErrorKind::Disconnected
        ) {
            self.open = None;
        }
        e
    }

    /// Finds the node holding the remembered printer.
    fn locate(&self) -> Result<PathBuf, TransportError> {
        if self.identity.is_unknown() {
            return Ok(self.configured.clone());
        }
        let mut nodes = list_nodes();
        if !nodes.contains(&self.configured) && self.configured.exists() {
            // A node outside /dev/usb (a symlink from a udev rule, say).
            nodes.insert(0, self.configured.clone());
        }
        let candidates: Vec<NodeCandidate> = nodes
            .into_iter()
            .map(|path| NodeCandidate {
                identity: identify(&path),
                path,
            })
            .collect();
        match select_node(&self.identity, &candidates, &self.configured) {
            Ok((i, _)) => Ok(candidates[i].path.clone()),
            Err(SelectError::NotFound { unreadable }) => {
                let mut msg = format!(
                    "printer {} is not on any usblp node (unplugged or switched off?)",
                    describe_identity(&self.identity)
                );
                if !unreadable.is_empty() {
                    msg.push_str(&format!(
                        "; could not ask {} (busy or no access)",
                        join_paths(&unreadable)
                    ));
                }
                Err(TransportError::new(
                    TransportErrorKind::NotFound,
                    self.describe(),
                    msg,
                ))
            }
            Err(SelectError::Ambiguous(paths)) => Err(TransportError::new(
                TransportErrorKind::Config,
                self.describe(),
                format!(
                    "printer {} could be any of {}: identical printers without serial \
                     numbers; address them by usb://VID:PID?path=PORT instead",
                    describe_identity(&self.identity),
                    join_paths(&paths)
                ),
            )),
        }
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "Zebra ZD410 serial 123" for messages.
fn describe_identity(id: &NodeIdentity) -> String {
    let mut parts = Vec::new();
    if let Some((make, model)) = id.make_model() {
        parts.push(format!("{make} {model}"));
    }
    if let Some(sn) = id.serials().next() {
        parts.push(format!("serial {sn}"));
    }
    if let Some(port) = &id.port_path {
        parts.push(format!("on port {port}"));
    }
    if parts.is_empty() {
        "(unknown)".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The one place OS errors on a usblp node become transport errors, with hints.
fn classify(device: String, action: &str, err: io::Error) -> TransportError {
    let hint = match (err.kind(), err.raw_os_error()) {
        (io::ErrorKind::PermissionDenied, _) => {
            Some("add the daemon user to group lp, or install the udev rule (printer-langs §5.4)")
        }
        (io::ErrorKind::NotFound, _) => Some("is the printer plugged in and usblp loaded?"),
        (_, Some(libc::EBUSY)) => Some("another program (a CUPS usb backend?) has the node open"),
        (_, Some(libc::ENOTTY)) | (_, Some(libc::EINVAL)) => {
            Some("is this a usblp printer node (/dev/usb/lpN)?")
        }
        _ => None,
    };
    let mut e = TransportError::io(device, action, err);
    if let Some(hint) = hint {
        e.message = format!("{} ({hint})", e.message);
    }
    e
}

impl Transport for UsblpTransport {
    fn describe(&self) -> String {
        format!("usblp://{}", self.configured.display())
    }

    fn open(&mut self) -> Result<(), TransportError> {
        self.close();
        let path = self.locate()?;
        let file = open_node(&path).map_err(|e| classify(self.describe(), "open", e))?;
        if self.identity.is_unknown() {
            // First open: remember who is here. A node without the usblp ioctls (a
            // parallel port, a FIFO in tests) keeps an empty identity: no following
            // after a replug, but writes work.
            let mut found = identity_from_sysfs(&path).unwrap_or_default();
            let asked = identity_from_ioctls(&file);
            found.device_id = found.device_id.or(asked.device_id);
            found.usb_ids = found.usb_ids.or(asked.usb_ids);
            self.identity = found;
        }
        self.open = Some(Open { file, path });
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        let device = self.describe();
        let mut written = 0;
        while written < bytes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = {
                let open = self.open_ref().map_err(|e| e.with_written(written))?;
                wait_for(&open.file, libc::POLLOUT, left)
            };
            match ready {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        device,
                        format!(
                            "printer stopped taking data: {written} of {} bytes written by \
                             the deadline (paper out, head open or paused?)",
                            bytes.len()
                        ),
                    )
                    .with_written(written))
                }
                Err(e) => return Err(self.fault(device, "poll", e).with_written(written)),
            }
            let end = bytes.len().min(written + WRITE_CHUNK);
            let result = match self.open.as_mut() {
                Some(open) => open.file.write(&bytes[written..end]),
                None => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            match result {
                Ok(0) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Disconnected,
                        device,
                        "write accepted nothing",
                    )
                    .with_written(written))
                }
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fault(device, "write", e).with_written(written)),
            }
        }
        Ok(())
    }

    fn read_reply(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let device = self.describe();
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = wait_for(&self.open_ref()?.file, libc::POLLIN, left);
            match ready {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(self.fault(device, "poll", e)),
            }
            let result = match self.open.as_mut() {
                Some(open) => open.file.read(buf),
                None => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            match result {
                Ok(n) => return Ok(n),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted =>
                {
                    if Instant::now() >= deadline {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(self.fault(device, "read", e)),
            }
        }
    }

    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        let device = self.describe();
        let open = self.open_ref()?;
        let port_status = get_port_status(&open.file);
        let device_id = get_device_id(&open.file);
        let usb_ids = get_vid_pid(&open.file).ok();
        let location = open.path.display().to_string();
        let gone = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EIO));
        match (&port_status, &device_id) {
            (Err(e), _) | (_, Err(e)) if gone(e) => {
                let e = io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO));
                return Err(self.fault(device, "read device status", e));
            }
            (Err(_), Err(_)) => {
                return Err(TransportError::new(
                    TransportErrorKind::Config,
                    device,
                    format!(
                        "{} answers neither LPGETSTATUS nor the 1284 id ioctl (is it a \
                         usblp printer node, /dev/usb/lpN?)",
                        location
                    ),
                ))
            }
            _ => {}
        }
        Ok(DeviceInfo {
            device_id: device_id.ok().filter(|id| !id.is_empty()),
            port_status: port_status.ok(),
            usb_ids: usb_ids.or(self.identity.usb_ids),
            location: Some(location),
        })
    }

    fn close(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Option<DeviceId> {
        Some(DeviceId::parse(text))
    }

    fn node(path: &str, identity: Option<NodeIdentity>) -> NodeCandidate {
        NodeCandidate {
            path: path.into(),
            identity,
        }
    }

    fn zebra(serial: &str, port: Option<&str>) -> NodeIdentity {
        NodeIdentity {
            device_id: id(&format!("MFG:Zebra;CMD:ZPL;MDL:ZD410;SN:{serial};")),
            usb_ids: Some((0x0a5f, 0x011c)),
            serial: None,
            port_path: port.map(str::to_owned),
        }
    }

    fn serial_less(model: &str, port: Option<&str>) -> NodeIdentity {
        NodeIdentity {
            device_id: id(&format!("MFG:Brother;CMD:PT-CBP;MDL:{model};")),
            usb_ids: Some((0x04f9, 0x2042)),
            serial: None,
            port_path: port.map(str::to_owned),
        }
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // x86-64 values, as `_IOC(_IOC_READ, 'P', nr, len)` gives them.
        if ioc::DIR_SHIFT == 30 {
            assert_eq!(lpioc_get_device_id(1024), 0x8400_5001);
            assert_eq!(lpioc_get_vid_pid(8), 0x8008_5006);
            assert_eq!(LPIOC_SOFT_RESET, 0x0000_5007);
        }
        assert_eq!(LPGETSTATUS, 0x060b);
    }

    #[test]
    fn lpgetstatus_is_masked() {
        // §7.8: 0xa0 came back sign-extended.
        assert_eq!(
            port_status_from_ioctl(0xffff_ffa0_u32 as i32),
            PortStatus(0xa0)
        );
        assert_eq!(port_status_from_ioctl(0x18), PortStatus(0x18));
    }

    #[test]
    fn same_serial_on_another_node_after_replug() {
        let want = zebra("A1", Some("1-1"));
        let nodes = [
            node("/dev/usb/lp0", Some(zebra("B2", Some("1-2")))),
            node("/dev/usb/lp1", Some(zebra("A1", Some("1-3")))),
        ];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Ok((1, MatchedBy::Serial))
        );
    }

    #[test]
    fn usb_serial_string_matches_too() {
        let mut want = serial_less("QL-700", None);
        want.serial = Some("000F1Z401370".into());
        let mut have = serial_less("QL-700", None);
        have.serial = Some("000F1Z401370".into());
        let nodes = [
            node("/dev/usb/lp0", Some(serial_less("QL-700", None))),
            node("/dev/usb/lp1", Some(have)),
        ];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Ok((1, MatchedBy::Serial))
        );
    }

    #[test]
    fn another_printer_on_the_old_node_is_never_chosen() {
        let want = zebra("A1", None);
        let nodes = [node("/dev/usb/lp0", Some(zebra("B2", None)))];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Err(SelectError::NotFound { unreadable: vec![] })
        );
    }

    #[test]
    fn unreadable_nodes_are_reported_not_chosen() {
        let want = zebra("A1", None);
        let nodes = [node("/dev/usb/lp0", None)];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Err(SelectError::NotFound {
                unreadable: vec!["/dev/usb/lp0".into()]
            })
        );
    }

    #[test]
    fn usb_ids_must_not_contradict() {
        let want = zebra("A1", None);
        let mut other = zebra("A1", None);
        other.usb_ids = Some((0x0a5f, 0x0141));
        let nodes = [node("/dev/usb/lp0", Some(other))];
        assert!(select_node(&want, &nodes, Path::new("/dev/usb/lp0")).is_err());
    }

    #[test]
    fn serial_less_model_unique() {
        let want = serial_less("QL-700", Some("1-1"));
        let nodes = [
            node("/dev/usb/lp0", Some(zebra("B2", None))),
            node("/dev/usb/lp1", Some(serial_less("QL-700", Some("1-4")))),
        ];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Ok((1, MatchedBy::Model))
        );
    }

    #[test]
    fn serial_less_twins_by_port_then_configured_node_else_ambiguous() {
        let want = serial_less("QL-700", Some("1-2"));
        let twins = [
            node("/dev/usb/lp0", Some(serial_less("QL-700", Some("1-1")))),
            node("/dev/usb/lp1", Some(serial_less("QL-700", Some("1-2")))),
        ];
        assert_eq!(
            select_node(&want, &twins, Path::new("/dev/usb/lp0")),
            Ok((1, MatchedBy::PortPath))
        );
        // No port known anywhere: the configured node wins a tie.
        let want = serial_less("QL-700", None);
        let twins = [
            node("/dev/usb/lp0", Some(serial_less("QL-700", None))),
            node("/dev/usb/lp1", Some(serial_less("QL-700", None))),
        ];
        assert_eq!(
            select_node(&want, &twins, Path::new("/dev/usb/lp1")),
            Ok((1, MatchedBy::ModelAtConfiguredNode))
        );
        // Neither: refuse to guess.
        assert_eq!(
            select_node(&want, &twins, Path::new("/dev/usb/lp7")),
            Err(SelectError::Ambiguous(vec![
                "/dev/usb/lp0".into(),
                "/dev/usb/lp1".into()
            ]))
        );
    }

    #[test]
    fn nothing_known_means_the_configured_node() {
        let want = NodeIdentity::default();
        let nodes = [
            node("/dev/usb/lp0", None),
            node("/dev/usb/lp1", Some(zebra("A1", None))),
        ];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp1")),
            Ok((1, MatchedBy::ConfiguredNode))
        );
        assert!(select_node(&want, &nodes, Path::new("/dev/usb/lp3")).is_err());
    }

    #[test]
    fn port_only_identity() {
        let want = NodeIdentity {
            port_path: Some("2-1.3".into()),
            ..NodeIdentity::default()
        };
        let at_port = want.clone();
        let nodes = [
            node("/dev/usb/lp0", Some(NodeIdentity::default())),
            node("/dev/usb/lp1", Some(at_port)),
        ];
        assert_eq!(
            select_node(&want, &nodes, Path::new("/dev/usb/lp0")),
            Ok((1, MatchedBy::PortPath))
        );
    }

    #[test]
    fn port_path_from_sysfs_links() {
        let cases = [
            (
                "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.0",
                Some("1-1.4"),
            ),
            (
                "/sys/devices/platform/dummy_hcd.0/usb1/1-1/1-1:1.0",
                Some("1-1"),
            ),
            ("/sys/devices/pci0000:00/0000:00:14.0/usb1", None),
            ("x-1:1.0", None),
            ("", None),
        ];
        for (link, want) in cases {
            assert_eq!(
                port_path_from_sysfs(Path::new(link)).as_deref(),
                want,
                "{link}"
            );
        }
    }
}
