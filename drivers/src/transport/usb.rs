//! USB printers through libusb (`rusb`, libusb 1.0.27 vendored): `usb://VID:PID?serial=SN`.
//!
//! Sources (facts in `../shared/reference/printer-langs.md` §5.1–5.4, §6.5, §7.8–7.9):
//! USB Printer Class 1.1 (interface class, class requests), Linux
//! `drivers/usb/class/usblp.c` and `drivers/usb/gadget/function/f_printer.c` (what the
//! kernel sends and what the test gadget accepts), the `rusb` 0.9 documentation.
//!
//! - **Device class**: printers are found by interface class 7, subclass 1, protocol 1
//!   (unidirectional), 2 (bidirectional) or 3 (IEEE 1284.4), preferring 2, then 1, then
//!   a vendor-specific interface (class 0xff) with a bulk OUT endpoint on a known label
//!   printer vendor (Zebra, Brother, DYMO, TSC: [`KNOWN_VENDORS`]), then 3 (1284.4
//!   multiplexing is not spoken here; raw data may be refused). Protocol 4 (IPP over USB)
//!   is not a raw printer channel and is never used. Brother QL printers in "Editor Lite"
//!   mode enumerate as mass storage: [`list_printers`] shows them with a hint.
//! - **Addressing**: `vendor:product` plus the serial number string, so the printer is
//!   found again after a replug on a new bus address; the port path (`1-1.4`, the chain
//!   of hub ports) is the fallback for printers without a serial number (and also
//!   matches a printer whose serial cannot be read). Two printers that fit the same
//!   address are refused as ambiguous, never picked at random ([`select_device`]).
//! - **Endpoints**: job bytes go to the interface's bulk OUT endpoint in
//!   [`WRITE_CHUNK`]-byte transfers, each with the time left to the deadline as its
//!   timeout; a transfer cut by the timeout still counts the bytes it moved. Replies
//!   (ZPL `~HS`/`~HQES`, Brother's 32-byte status, DYMO `ESC A`) come back on bulk IN of
//!   bidirectional interfaces; a unidirectional printer reads as silence (`Ok(0)`).
//! - **Class requests**: GET_DEVICE_ID (bmRequestType 0xA1, bRequest 0, wValue =
//!   configuration index, wIndex = interface << 8 | alternate setting), GET_PORT_STATUS
//!   (0xA1, 1, 0, wIndex = interface, 1 byte), SOFT_RESET (bRequest 2): sent first with
//!   bmRequestType **0x21** (recipient interface: what vendor documents and the Linux
//!   printer gadget accept), and again with **0x23** (recipient "other": the Printer
//!   Class 1.1 table and Linux usblp) only if the device stalls the first (§5.1, §7.8).
//! - **Kernel driver**: when `usblp` owns the interface, it is detached on claim
//!   (`set_auto_detach_kernel_driver(true)`) and re-attached on [`Transport::close`] (and
//!   drop), so `/dev/usb/lpN` comes back for other programs. Where libusb cannot
//!   auto-detach, the driver is detached and re-attached by hand.
//! - **Permissions**: libusb opens `/dev/bus/usb/BBB/DDD`, root-only by default. Install
//!   a udev rule per vendor, e.g. `SUBSYSTEM=="usb", ATTRS{idVendor}=="0a5f",
//!   MODE="0660", GROUP="lp"` (or `TAG+="uaccess"`), then `udevadm control --reload` and
//!   `udevadm trigger` (§5.4). Without access the serial number cannot be read either,
//!   so the error is `PermissionDenied` and names the node.
//! - **Disconnect**: transfers fail with `LIBUSB_ERROR_NO_DEVICE` (kind `Disconnected`;
//!   sometimes `LIBUSB_ERROR_IO` first). The handle is dropped; the next
//!   [`Transport::open`] enumerates again and finds the printer by serial number on its
//!   new bus address, or fails with `NotFound` until it is back. The watcher in
//!   `hotplug.rs` tells the caller when that is.
//! - **No USB on the host** (containers, build machines: `libusb_init` fails): every
//!   function here reports "no USB support on this host" (`NotFound`) or an empty list;
//!   nothing panics. This is also why nothing here calls `rusb::has_hotplug()` or the
//!   other global-context helpers: rusb panics when their context cannot start.

use super::TransportErrorKind as Kind;
use super::{DeviceId, DeviceInfo, PortStatus, PrinterUri, Transport, TransportError};
use crate::{Condition, DeviceStatus};
use rusb::{Context, Device, DeviceDescriptor, DeviceHandle, Direction, TransferType, UsbContext};
use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

/// USB interface class "printer".
pub const PRINTER_CLASS: u8 = 7;
/// Printer interface subclass (the only one defined).
pub const PRINTER_SUBCLASS: u8 = 1;
/// Interface class "vendor specific".
const VENDOR_SPECIFIC_CLASS: u8 = 0xff;

/// Label printer vendors (`printer-langs.md` §5.3, Debian `usb.ids` 2025.07.26).
pub const KNOWN_VENDORS: &[(u16, &str)] = &[
    (0x0a5f, "Zebra"),
    (0x04f9, "Brother"),
    (0x0922, "DYMO"),
    (0x1203, "TSC"),
];

/// Printer Class 1.1 class requests (bRequest).
const GET_DEVICE_ID: u8 = 0;
const GET_PORT_STATUS: u8 = 1;
const SOFT_RESET: u8 = 2;
/// bmRequestType: device-to-host, class, recipient interface.
const CLASS_IN_INTERFACE: u8 = 0xa1;
/// bmRequestType: host-to-device, class, recipient interface.
const CLASS_OUT_INTERFACE: u8 = 0x21;
/// bmRequestType: host-to-device, class, recipient "other" (spec table, Linux usblp).
const CLASS_OUT_OTHER: u8 = 0x23;

/// Bytes per bulk OUT transfer: small enough that progress is counted often, large
/// enough to keep a full-speed printer busy.
pub const WRITE_CHUNK: usize = 16 * 1024;
/// Buffer for GET_DEVICE_ID (usblp uses the same size).
const DEVICE_ID_LEN: usize = 1024;
/// Time allowed for a class request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);
/// libusb treats a timeout of 0 as "forever": never pass less than this.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Whether `vendor` is a known label printer vendor.
pub fn is_known_vendor(vendor: u16) -> bool {
    KNOWN_VENDORS.iter().any(|(v, _)| *v == vendor)
}

/// One interface alternate setting, as the configuration descriptor gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceSummary {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt_setting: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// The first bulk OUT endpoint's address.
    pub bulk_out: Option<u8>,
    /// The first bulk IN endpoint's address and its max packet size.
    pub bulk_in: Option<(u8, u16)>,
}

/// The interface labeld prints through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrinterInterface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt_setting: u8,
    /// bInterfaceClass (7, or 0xff for a vendor-specific interface).
    pub class: u8,
    /// bInterfaceProtocol (1 uni, 2 bidirectional, 3 IEEE 1284.4).
    pub protocol: u8,
    /// Bulk OUT endpoint address.
    pub bulk_out: u8,
    /// Bulk IN endpoint address and max packet size, on bidirectional interfaces.
    pub bulk_in: Option<(u8, u16)>,
}

impl PrinterInterface {
    /// Whether replies can be read back.
    pub fn is_bidirectional(&self) -> bool {
        self.bulk_in.is_some()
    }
}

/// Picks the printing interface among a configuration's alternate settings: printer
/// class protocol 2, then 1, then vendor-specific (known vendors only), then 1284.4;
/// lowest interface and alternate setting first. A bulk OUT endpoint is required.
pub fn pick_interface(
    interfaces: &[InterfaceSummary],
    known_vendor: bool,
) -> Option<PrinterInterface> {
    let rank = |i: &InterfaceSummary| -> Option<u8> {
        i.bulk_out?;
        match (i.class, i.subclass, i.protocol) {
            (PRINTER_CLASS, PRINTER_SUBCLASS, 2) if i.bulk_in.is_some() => Some(0),
            (PRINTER_CLASS, PRINTER_SUBCLASS, 1 | 2) => Some(1),
            (VENDOR_SPECIFIC_CLASS, _, _) if known_vendor => Some(2),
            (PRINTER_CLASS, PRINTER_SUBCLASS, 3) => Some(3),
            _ => None,
        }
    };
    let best = interfaces
        .iter()
        .filter_map(|i| rank(i).map(|r| (r, i.number, i.alt_setting, i)))
        .min_by_key(|(r, n, a, _)| (*r, *n, *a))?
        .3;
    Some(PrinterInterface {
        number: best.number,
        alt_setting: best.alt_setting,
        class: best.class,
        protocol: best.protocol,
        bulk_out: best.bulk_out?,
        // Protocol 1 is OUT-only by definition; ignore a stray IN endpoint.
        bulk_in: if best.class == PRINTER_CLASS && best.protocol == 1 {
            None
        } else {
            best.bulk_in
        },
    })
}

/// A USB device that may be the wanted printer: what enumeration shows of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsbCandidate {
    /// idVendor.
    pub vendor: u16,
    /// idProduct.
    pub product: u16,
    /// The serial number string; `None` if it has none or it could not be read.
    pub serial: Option<String>,
    /// The port path (`1-1.4`).
    pub port_path: Option<String>,
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus (changes on every replug).
    pub address: u8,
}

/// Whether `candidate` is the printer `uri` names: same ids; then the serial number if
/// the address has one (a device whose serial could not be read may still match by
/// port path); else the port path if given; else any device with those ids.
pub fn uri_matches(uri: &PrinterUri, candidate: &UsbCandidate) -> bool {
    let PrinterUri::Usb {
        vendor,
        product,
        serial,
        port_path,
    } = uri
    else {
        return false;
    };
    if (candidate.vendor, candidate.product) != (*vendor, *product) {
        return false;
    }
    let same_port = || port_path.is_some() && candidate.port_path == *port_path;
    match (serial, &candidate.serial) {
        (Some(want), Some(have)) => want.trim() == have.trim(),
        (Some(_), None) => same_port(),
        (None, _) => port_path.is_none() || same_port(),
    }
}

/// Why no device was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSelectError {
    /// No device fits the address.
    NotFound,
    /// Several fit (give a serial number or port path).
    Ambiguous(Vec<String>),
}

/// Picks the one candidate `uri` names ([`uri_matches`]); several matches are refused
/// unless the port path singles one out.
pub fn select_device(
    uri: &PrinterUri,
    candidates: &[UsbCandidate],
) -> Result<usize, DeviceSelectError> {
    let matches: Vec<usize> = (0..candidates.len())
        .filter(|&i| uri_matches(uri, &candidates[i]))
        .collect();
    match matches.as_slice() {
        [] => Err(DeviceSelectError::NotFound),
        [i] => Ok(*i),
        several => {
            if let PrinterUri::Usb {
                port_path: Some(p), ..
            } = uri
            {
                let on_port: Vec<usize> = several
                    .iter()
                    .copied()
                    .filter(|&i| candidates[i].port_path.as_deref() == Some(p.as_str()))
                    .collect();
                if let [i] = on_port.as_slice() {
                    return Ok(*i);
                }
            }
            Err(DeviceSelectError::Ambiguous(
                several.iter().map(|&i| locate(&candidates[i])).collect(),
            ))
        }
    }
}

/// The port path `bus-port.port…` (`1-1.4`), as Linux names it in sysfs.
pub fn format_port_path(bus: u8, ports: &[u8]) -> Option<String> {
    if ports.is_empty() {
        return None;
    }
    let chain: Vec<String> = ports.iter().map(u8::to_string).collect();
    Some(format!("{bus}-{}", chain.join(".")))
}

/// The usbfs node libusb opens for a device (for permission hints).
pub fn usbfs_node(bus: u8, address: u8) -> String {
    format!("/dev/bus/usb/{bus:03}/{address:03}")
}

/// "port 1-1.4 (bus 1 address 5)" for messages.
fn locate(c: &UsbCandidate) -> String {
    match &c.port_path {
        Some(p) => format!("port {p} (bus {} address {})", c.bus, c.address),
        None => format!("bus {} address {}", c.bus, c.address),
    }
}

/// What the port status byte says, in the shared status vocabulary. The byte is all a
/// unidirectional printer tells: bit 5 paper empty, bit 4 selected, bit 3 not-error.
pub fn device_status_from_port(status: PortStatus) -> DeviceStatus {
    let mut conditions = crate::Conditions::NONE;
    let mut words = Vec::new();
    if status.paper_empty() {
        conditions.insert(Condition::MediaOut);
        words.push("paper empty");
    }
    if !status.selected() {
        conditions.insert(Condition::Paused);
        words.push("not selected (offline or paused)");
    }
    if status.error() {
        conditions.insert(Condition::Other);
        words.push("printer reports an error");
    }
    DeviceStatus {
        conditions,
        detail: words.join(", "),
        labels_remaining: None,
        busy: None,
        raw: vec![status.0],
    }
}

/// The one place libusb errors become transport errors, with a next step.
pub fn classify(device: impl Into<String>, action: &str, err: rusb::Error) -> TransportError {
    let (kind, hint) = match err {
        rusb::Error::Access => (
            Kind::PermissionDenied,
            Some("install a udev rule giving the daemon's group access (printer-langs §5.4)"),
        ),
        rusb::Error::NoDevice => (Kind::Disconnected, Some("unplugged or switched off?")),
        rusb::Error::NotFound => (Kind::NotFound, None),
        rusb::Error::Timeout => (Kind::Timeout, None),
        rusb::Error::Busy => (
            Kind::Io,
            Some("another program (a CUPS usb backend?) has claimed the printer"),
        ),
        rusb::Error::Pipe => (Kind::Io, Some("the printer stalled the request")),
        rusb::Error::NotSupported => (Kind::Config, None),
        _ => (Kind::Io, None),
    };
    let mut message = format!("{action}: {err}");
    if let Some(hint) = hint {
        message.push_str(&format!(" ({hint})"));
    }
    TransportError {
        kind,
        device: device.into(),
        message,
        written: 0,
        source: Some(io::Error::other(err)),
    }
}

/// The error for a host where libusb cannot start.
fn no_usb(device: impl Into<String>, err: rusb::Error) -> TransportError {
    TransportError {
        kind: Kind::NotFound,
        device: device.into(),
        message: format!(
            "no USB support on this host (libusb could not start: {err}); \
             is /dev/bus/usb there? In a container, pass the USB devices in"
        ),
        written: 0,
        source: Some(io::Error::other(err)),
    }
}

/// A libusb context, or the "no USB support" error.
fn context(device: &str) -> Result<Context, TransportError> {
    Context::new().map_err(|e| no_usb(device, e))
}

/// The interface summaries of a configuration.
fn summarize(config: &rusb::ConfigDescriptor) -> Vec<InterfaceSummary> {
    let mut out = Vec::new();
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            let mut s = InterfaceSummary {
                number: alt.interface_number(),
                alt_setting: alt.setting_number(),
                class: alt.class_code(),
                subclass: alt.sub_class_code(),
                protocol: alt.protocol_code(),
                bulk_out: None,
                bulk_in: None,
            };
            for ep in alt.endpoint_descriptors() {
                if ep.transfer_type() != TransferType::Bulk {
                    continue;
                }
                match ep.direction() {
                    Direction::Out if s.bulk_out.is_none() => s.bulk_out = Some(ep.address()),
                    Direction::In if s.bulk_in.is_none() => {
                        s.bulk_in = Some((ep.address(), ep.max_packet_size()))
                    }
                    _ => {}
                }
            }
            out.push(s);
        }
    }
    out
}

/// The active configuration (or the first) and its index among the device's.
fn configuration<T: UsbContext>(
    device: &Device<T>,
    desc: &DeviceDescriptor,
) -> rusb::Result<(rusb::ConfigDescriptor, u8)> {
    let config = device
        .active_config_descriptor()
        .or_else(|_| device.config_descriptor(0))?;
    let index = (0..desc.num_configurations())
        .find(|&i| {
            device
                .config_descriptor(i)
                .is_ok_and(|c| c.number() == config.number())
        })
        .unwrap_or(0);
    Ok((config, index))
}

fn port_path_of<T: UsbContext>(device: &Device<T>) -> Option<String> {
    device
        .port_numbers()
        .ok()
        .and_then(|ports| format_port_path(device.bus_number(), &ports))
}

/// Reads the serial number string; `Ok(None)` when the device has none.
fn read_serial<T: UsbContext>(
    handle: &DeviceHandle<T>,
    desc: &DeviceDescriptor,
) -> rusb::Result<Option<String>> {
    if desc.serial_number_string_index().is_none() {
        return Ok(None);
    }
    let s = handle.read_serial_number_string_ascii(desc)?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// Enumerates USB devices by id, with their serial numbers, for watching them come
/// and go (`hotplug.rs`) or for finding one again.
///
/// Serial numbers already read are kept by (bus, address, vendor, product): an address
/// is not reused while the device stays plugged in, so a poll need not ask the device
/// again. Failed reads are not kept, so a permission fixed later is noticed.
pub struct UsbScanner {
    /// The libusb context.
    ctx: Context,
    /// Serial numbers read so far, by (bus, address, vendor, product).
    cache: HashMap<(u8, u8, u16, u16), Option<String>>,
}

impl UsbScanner {
    /// A scanner; fails with `NotFound` ("no USB support on this host") where libusb
    /// cannot start.
    pub fn new() -> Result<Self, TransportError> {
        Ok(UsbScanner {
            ctx: context("usb")?,
            cache: HashMap::new(),
        })
    }

    /// The devices attached now whose ids `wanted` accepts.
    pub fn scan(
        &mut self,
        wanted: &dyn Fn(u16, u16) -> bool,
    ) -> Result<Vec<UsbCandidate>, TransportError> {
        let devices = self
            .ctx
            .devices()
            .map_err(|e| classify("usb", "list devices", e))?;
        let mut found = Vec::new();
        let mut seen = Vec::new();
        for device in devices.iter() {
            let Ok(desc) = device.device_descriptor() else {
                continue;
            };
            let (vendor, product) = (desc.vendor_id(), desc.product_id());
            if !wanted(vendor, product) {
                continue;
            }
            let key = (device.bus_number(), device.address(), vendor, product);
            seen.push(key);
            let serial = match self.cache.get(&key) {
                Some(s) => s.clone(),
                None => match device.open().and_then(|h| read_serial(&h, &desc)) {
                    Ok(s) => {
                        self.cache.insert(key, s.clone());
                        s
                    }
                    Err(_) => None,
                },
            };
            found.push(UsbCandidate {
                vendor,
                product,
                serial,
                port_path: port_path_of(&device),
                bus: key.0,
                address: key.1,
            });
        }
        self.cache.retain(|k, _| seen.contains(k));
        Ok(found)
    }
}

/// A USB printer found by [`list_printers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundPrinter {
    /// idVendor.
    pub vendor: u16,
    /// idProduct.
    pub product: u16,
    /// The serial number string, if it has one and it could be read.
    pub serial: Option<String>,
    /// The port path (`1-1.4`).
    pub port_path: Option<String>,
    /// Bus number.
    pub bus: u8,
    /// Device address (changes on every replug).
    pub address: u8,
    /// The manufacturer string descriptor.
    pub manufacturer: Option<String>,
    /// The product string descriptor.
    pub product_name: Option<String>,
    /// The interface labeld would print through, if any.
    pub interface: Option<PrinterInterface>,
    /// The IEEE 1284 id, if it could be read.
    pub device_id: Option<DeviceId>,
    /// The address to configure: by serial number, else by port path.
    pub uri: PrinterUri,
    /// Why something above is missing, with what to do (permissions, busy, mode).
    pub problem: Option<String>,
}

/// The USB printers attached now: printer-class devices, and any device of a known
/// label printer vendor. Empty on a host without USB (see [`try_list_printers`] for the
/// reason).
pub fn list_printers() -> Vec<FoundPrinter> {
    try_list_printers().unwrap_or_default()
}

/// [`list_printers`], saying why nothing could be listed ("no USB support on this
/// host").
pub fn try_list_printers() -> Result<Vec<FoundPrinter>, TransportError> {
    let ctx = context("usb")?;
    let devices = ctx
        .devices()
        .map_err(|e| classify("usb", "list devices", e))?;
    let mut out = Vec::new();
    for device in devices.iter() {
        let Ok(desc) = device.device_descriptor() else {
            continue;
        };
        if let Some(found) = describe_device(&device, &desc) {
            out.push(found);
        }
    }
    out.sort_by(|a, b| (a.bus, &a.port_path, a.address).cmp(&(b.bus, &b.port_path, b.address)));
    Ok(out)
}

/// A [`FoundPrinter`] for a printer (or known vendor's device); `None` for others.
fn describe_device(device: &Device<Context>, desc: &DeviceDescriptor) -> Option<FoundPrinter> {
    let (vendor, product) = (desc.vendor_id(), desc.product_id());
    let known = is_known_vendor(vendor);
    let config = configuration(device, desc).ok();
    let interface = config
        .as_ref()
        .and_then(|(c, _)| pick_interface(&summarize(c), known));
    if interface.is_none() && !known {
        return None;
    }
    let bus = device.bus_number();
    let address = device.address();
    let port_path = port_path_of(device);
    let mut found = FoundPrinter {
        vendor,
        product,
        serial: None,
        port_path: port_path.clone(),
        bus,
        address,
        manufacturer: None,
        product_name: None,
        interface,
        device_id: None,
        uri: PrinterUri::Usb {
            vendor,
            product,
            serial: None,
            port_path: None,
        },
        problem: None,
    };
    if interface.is_none() {
        found.problem = Some(
            "no printer interface (a Brother QL in Editor Lite mode enumerates as mass \
             storage: switch Editor Lite off)"
                .into(),
        );
    }
    match device.open() {
        Ok(handle) => {
            found.serial = read_serial(&handle, desc).ok().flatten();
            found.manufacturer = handle.read_manufacturer_string_ascii(desc).ok();
            found.product_name = handle.read_product_string_ascii(desc).ok();
            if let (Some(iface), Some((_, index))) = (interface, &config) {
                found.device_id = read_id_unclaimed(&handle, iface, *index, port_path.as_deref());
            }
        }
        Err(e) => {
            found.problem = Some(format!(
                "cannot open {}: {e} (serial number and 1284 id unknown; {})",
                usbfs_node(bus, address),
                if e == rusb::Error::Access {
                    "install the udev rule, printer-langs §5.4"
                } else {
                    "unplugged?"
                }
            ));
        }
    }
    found.uri = PrinterUri::Usb {
        vendor,
        product,
        serial: found.serial.clone(),
        port_path: if found.serial.is_none() {
            port_path
        } else {
            None
        },
    };
    Some(found)
}

/// The 1284 id of an interface this process has not claimed: from usblp's sysfs file
/// while the kernel driver owns it (claiming would take the printer from its user),
/// else by claiming it briefly.
fn read_id_unclaimed(
    handle: &DeviceHandle<Context>,
    iface: PrinterInterface,
    config_index: u8,
    port_path: Option<&str>,
) -> Option<DeviceId> {
    if handle.kernel_driver_active(iface.number).unwrap_or(false) {
        let port = port_path?;
        let config = handle.active_configuration().ok()?;
        let file = format!(
            "/sys/bus/usb/devices/{port}:{config}.{}/ieee1284_id",
            iface.number
        );
        return std::fs::read(file)
            .ok()
            .map(DeviceId::parse)
            .filter(|id| !id.is_empty());
    }
    handle.claim_interface(iface.number).ok()?;
    let id = get_device_id(handle, iface, config_index).ok();
    let _ = handle.release_interface(iface.number);
    id.filter(|id| !id.is_empty())
}

/// GET_DEVICE_ID on a claimed interface.
fn get_device_id<T: UsbContext>(
    handle: &DeviceHandle<T>,
    iface: PrinterInterface,
    config_index: u8,
) -> rusb::Result<DeviceId> {
    let mut buf = [0u8; DEVICE_ID_LEN];
    let n = handle.read_control(
        CLASS_IN_INTERFACE,
        GET_DEVICE_ID,
        u16::from(config_index),
        u16::from(iface.number) << 8 | u16::from(iface.alt_setting),
        &mut buf,
        CONTROL_TIMEOUT,
    )?;
    Ok(DeviceId::parse(buf.get(..n).unwrap_or_default()))
}

/// GET_PORT_STATUS on a claimed interface (exactly one byte: the Linux gadget checks).
fn get_port_status<T: UsbContext>(
    handle: &DeviceHandle<T>,
    iface: PrinterInterface,
) -> rusb::Result<PortStatus> {
    let mut byte = [0u8; 1];
    let n = handle.read_control(
        CLASS_IN_INTERFACE,
        GET_PORT_STATUS,
        0,
        u16::from(iface.number),
        &mut byte,
        CONTROL_TIMEOUT,
    )?;
    if n == 1 {
        Ok(PortStatus(byte[0]))
    } else {
        Err(rusb::Error::Io)
    }
}

/// An open, claimed printer interface.
struct Link {
    handle: DeviceHandle<Context>,
    iface: PrinterInterface,
    /// Index of the active configuration (GET_DEVICE_ID's wValue).
    config_index: u8,
    /// Whether the kernel driver was detached by hand (re-attach on close).
    detached_by_hand: bool,
    /// Where the printer is now, for [`DeviceInfo::location`].
    location: String,
    /// Bulk IN bytes read beyond what the caller's buffer took.
    pending: Vec<u8>,
}

/// A USB printer through libusb, found again by serial number after a replug.
pub struct UsbTransport {
    /// The address (always [`PrinterUri::Usb`]).
    uri: PrinterUri,
    /// The libusb context, created on first open (none on a host without USB).
    context: Option<Context>,
    /// The open printer, if any.
    link: Option<Link>,
}

impl UsbTransport {
    /// A transport for a `usb://` address (not opened yet: a host without USB fails at
    /// [`Transport::open`], not here).
    pub fn new(uri: PrinterUri) -> Result<Self, TransportError> {
        match uri {
            PrinterUri::Usb { .. } => Ok(UsbTransport {
                uri,
                context: None,
                link: None,
            }),
            other => Err(TransportError::new(
                Kind::Config,
                other.to_string(),
                "not a usb:// address (expected usb://VID:PID[?serial=SN])",
            )),
        }
    }

    /// The interface in use, if open.
    pub fn interface(&self) -> Option<PrinterInterface> {
        self.link.as_ref().map(|l| l.iface)
    }

    /// Sends SOFT_RESET: bmRequestType 0x21 (recipient interface), then 0x23
    /// (recipient other, as in the class spec table and Linux usblp) if the printer
    /// stalls the first. The printer drops what it has buffered.
    pub fn soft_reset(&mut self) -> Result<(), TransportError> {
        let device = self.describe();
        let link = self.link_ref()?;
        let index = u16::from(link.iface.number);
        let first = link.handle.write_control(
            CLASS_OUT_INTERFACE,
            SOFT_RESET,
            0,
            index,
            &[],
            CONTROL_TIMEOUT,
        );
        let result = match first {
            Err(rusb::Error::Pipe) => link.handle.write_control(
                CLASS_OUT_OTHER,
                SOFT_RESET,
                0,
                index,
                &[],
                CONTROL_TIMEOUT,
            ),
            other => other,
        };
        result
            .map(drop)
            .map_err(|e| self.fault(device, "soft reset", e))
    }

    fn link_ref(&self) -> Result<&Link, TransportError> {
        self.link.as_ref().ok_or_else(|| not_open(self.describe()))
    }

    /// A libusb error as a transport error; forgets the link when the device is gone.
    fn fault(&mut self, device: String, action: &str, err: rusb::Error) -> TransportError {
        if err == rusb::Error::NoDevice {
            // The handle is dead; nothing to release or re-attach.
            self.link = None;
        }
        classify(device, action, err)
    }

    fn ids(&self) -> (u16, u16) {
        match &self.uri {
            PrinterUri::Usb {
                vendor, product, ..
            } => (*vendor, *product),
            _ => (0, 0),
        }
    }

    /// Finds, opens and claims the printer.
    fn connect(&mut self, ctx: &Context) -> Result<Link, TransportError> {
        let device = self.describe();
        let (vendor, product) = self.ids();
        let list = ctx
            .devices()
            .map_err(|e| classify(device.as_str(), "list devices", e))?;
        let mut probed = Vec::new();
        let mut denied = Vec::new();
        for dev in list.iter() {
            let Ok(desc) = dev.device_descriptor() else {
                continue;
            };
            if (desc.vendor_id(), desc.product_id()) != (vendor, product) {
                continue;
            }
            let mut candidate = UsbCandidate {
                vendor,
                product,
                serial: None,
                port_path: port_path_of(&dev),
                bus: dev.bus_number(),
                address: dev.address(),
            };
            let handle = match dev.open() {
                Ok(h) => {
                    candidate.serial = read_serial(&h, &desc).ok().flatten();
                    Some(h)
                }
                Err(e) => {
                    if e == rusb::Error::Access {
                        denied.push(usbfs_node(candidate.bus, candidate.address));
                    }
                    None
                }
            };
            probed.push((dev, desc, handle, candidate));
        }
        let candidates: Vec<UsbCandidate> = probed.iter().map(|p| p.3.clone()).collect();
        let index = match select_device(&self.uri, &candidates) {
            Ok(i) => i,
            Err(DeviceSelectError::NotFound) if !denied.is_empty() => {
                return Err(TransportError::new(
                    Kind::PermissionDenied,
                    device,
                    format!(
                        "no access to {} (vendor:product matches; the serial number cannot \
                         be read): install a udev rule giving the daemon's group access \
                         (printer-langs §5.4)",
                        denied.join(", ")
                    ),
                ))
            }
            Err(DeviceSelectError::NotFound) => {
                let others = candidates
                    .iter()
                    .map(|c| match &c.serial {
                        Some(s) => format!("serial {s} at {}", locate(c)),
                        None => format!("no serial at {}", locate(c)),
                    })
                    .collect::<Vec<_>>();
                let mut msg = String::from("printer not found (unplugged or switched off?)");
                if !others.is_empty() {
                    msg.push_str(&format!(
                        "; other {vendor:04x}:{product:04x} devices: {}",
                        others.join("; ")
                    ));
                }
                return Err(TransportError::new(Kind::NotFound, device, msg));
            }
            Err(DeviceSelectError::Ambiguous(places)) => {
                return Err(TransportError::new(
                    Kind::Config,
                    device,
                    format!(
                        "several printers fit this address ({}): add ?serial=… or ?path=… \
                         (`labelctl printer list` shows them)",
                        places.join("; ")
                    ),
                ))
            }
        };
        let (dev, desc, handle, candidate) = probed.swap_remove(index);
        let node = usbfs_node(candidate.bus, candidate.address);
        let handle = match handle {
            Some(h) => h,
            None => dev.open().map_err(|e| {
                let mut err = classify(device.as_str(), &format!("open {node}"), e);
                if e == rusb::Error::NoDevice {
                    err.kind = Kind::NotFound;
                }
                err
            })?,
        };
        let (config, config_index) = configuration(&dev, &desc)
            .map_err(|e| classify(device.as_str(), "read configuration", e))?;
        let iface =
            pick_interface(&summarize(&config), is_known_vendor(vendor)).ok_or_else(|| {
                TransportError::new(
                    Kind::Config,
                    device.as_str(),
                    format!(
                        "{vendor:04x}:{product:04x} at {} has no printer interface (class 7) \
                     with a bulk OUT endpoint (a Brother QL in Editor Lite mode is mass \
                     storage: switch Editor Lite off)",
                        locate(&candidate)
                    ),
                )
            })?;
        let auto_detach = handle.set_auto_detach_kernel_driver(true).is_ok();
        let mut detached_by_hand = false;
        if !auto_detach && handle.kernel_driver_active(iface.number).unwrap_or(false) {
            handle
                .detach_kernel_driver(iface.number)
                .map_err(|e| classify(device.as_str(), "detach the kernel usblp driver", e))?;
            detached_by_hand = true;
        }
        let claimed = handle.claim_interface(iface.number).and_then(|()| {
            if iface.alt_setting != 0 {
                handle.set_alternate_setting(iface.number, iface.alt_setting)
            } else {
                Ok(())
            }
        });
        if let Err(e) = claimed {
            let _ = handle.release_interface(iface.number);
            if detached_by_hand {
                let _ = handle.attach_kernel_driver(iface.number);
            }
            return Err(classify(
                device.as_str(),
                &format!("claim interface {} on {node}", iface.number),
                e,
            ));
        }
        Ok(Link {
            handle,
            iface,
            config_index,
            detached_by_hand,
            location: format!("{} ({node})", locate(&candidate)),
            pending: Vec::new(),
        })
    }
}

impl Transport for UsbTransport {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn open(&mut self) -> Result<(), TransportError> {
        self.close();
        let ctx = match &self.context {
            Some(c) => c.clone(),
            None => {
                let c = context(&self.describe())?;
                self.context = Some(c.clone());
                c
            }
        };
        let link = self.connect(&ctx)?;
        self.link = Some(link);
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        let device = self.describe();
        let mut written = 0;
        while written < bytes.len() {
            let link = self.link_ref().map_err(|e| e.with_written(written))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout(device, written, bytes.len()));
            }
            let end = bytes.len().min(written + WRITE_CHUNK);
            match link.handle.write_bulk(
                link.iface.bulk_out,
                &bytes[written..end],
                left.max(MIN_TIMEOUT),
            ) {
                // A transfer cut short by the timeout still reports what it moved.
                Ok(n) => written += n,
                Err(rusb::Error::Timeout) => return Err(timeout(device, written, bytes.len())),
                Err(rusb::Error::Interrupted) => {}
                Err(rusb::Error::Pipe) => {
                    let _ = link.handle.clear_halt(link.iface.bulk_out);
                    return Err(self
                        .fault(device, "write", rusb::Error::Pipe)
                        .with_written(written));
                }
                Err(e) => return Err(self.fault(device, "write", e).with_written(written)),
            }
        }
        Ok(())
    }

    fn read_reply(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let device = self.describe();
        let Some(link) = self.link.as_mut() else {
            return Err(not_open(device));
        };
        if buf.is_empty() {
            return Ok(0);
        }
        if !link.pending.is_empty() {
            let n = buf.len().min(link.pending.len());
            buf[..n].copy_from_slice(&link.pending[..n]);
            link.pending.drain(..n);
            return Ok(n);
        }
        let Some((endpoint, packet)) = link.iface.bulk_in else {
            // Unidirectional: the printer cannot answer.
            return Ok(0);
        };
        // Read whole packets so a long reply is not an overflow error; keep the excess.
        let packet = usize::from(packet.max(8));
        let mut tmp = vec![0u8; buf.len().div_ceil(packet) * packet];
        match link
            .handle
            .read_bulk(endpoint, &mut tmp, timeout.max(MIN_TIMEOUT))
        {
            Ok(n) => {
                let take = n.min(buf.len());
                buf[..take].copy_from_slice(&tmp[..take]);
                link.pending.extend_from_slice(&tmp[take..n]);
                Ok(take)
            }
            Err(rusb::Error::Timeout | rusb::Error::Interrupted) => Ok(0),
            Err(rusb::Error::Pipe) => {
                let _ = link.handle.clear_halt(endpoint);
                Err(self.fault(device, "read reply", rusb::Error::Pipe))
            }
            Err(e) => Err(self.fault(device, "read reply", e)),
        }
    }

    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        let device = self.describe();
        let link = self.link_ref()?;
        let id = get_device_id(&link.handle, link.iface, link.config_index);
        let status = get_port_status(&link.handle, link.iface);
        let location = Some(link.location.clone());
        if let Err(e @ (rusb::Error::NoDevice | rusb::Error::Io)) = status {
            return Err(self.fault(device, "read port status", e));
        }
        Ok(DeviceInfo {
            device_id: id.ok().filter(|id| !id.is_empty()),
            port_status: status.ok(),
            usb_ids: Some(self.ids()),
            location,
        })
    }

    fn close(&mut self) {
        if let Some(link) = self.link.take() {
            // Releasing re-attaches usblp when libusb detached it (auto-detach).
            let _ = link.handle.release_interface(link.iface.number);
            if link.detached_by_hand {
                let _ = link.handle.attach_kernel_driver(link.iface.number);
            }
        }
    }
}

impl Drop for UsbTransport {
    /// Gives the printer back to the kernel driver.
    fn drop(&mut self) {
        self.close();
    }
}

fn timeout(device: String, written: usize, total: usize) -> TransportError {
    TransportError::new(
        Kind::Timeout,
        device,
        format!(
            "printer stopped taking data: {written} of {total} bytes written by the deadline \
             (paper out, head open or paused?)"
        ),
    )
    .with_written(written)
}

fn not_open(device: String) -> TransportError {
    TransportError::new(
        Kind::Disconnected,
        device,
        "not open (open it first, or reopen after the fault)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer_iface(number: u8, alt: u8, protocol: u8, bidir: bool) -> InterfaceSummary {
        InterfaceSummary {
            number,
            alt_setting: alt,
            class: PRINTER_CLASS,
            subclass: PRINTER_SUBCLASS,
            protocol,
            bulk_out: Some(0x02),
            bulk_in: bidir.then_some((0x81, 64)),
        }
    }

    #[test]
    fn picks_bidirectional_over_unidirectional_and_1284_4() {
        // An HP-style interface with three alternate settings (1, 2, 3).
        let alts = [
            printer_iface(0, 0, 1, false),
            printer_iface(0, 1, 2, true),
            printer_iface(0, 2, 3, true),
        ];
        let got = pick_interface(&alts, false).unwrap();
        assert_eq!((got.alt_setting, got.protocol), (1, 2));
        assert!(got.is_bidirectional());
        // §5.1 TESTED: the gadget's class=07 sub=01 proto=02, ep_02 OUT, ep_81 IN.
        assert_eq!(got.bulk_out, 0x02);
        assert_eq!(got.bulk_in, Some((0x81, 64)));
    }

    #[test]
    fn protocol_1_ignores_a_stray_in_endpoint() {
        let got = pick_interface(&[printer_iface(0, 0, 1, true)], false).unwrap();
        assert!(!got.is_bidirectional());
    }

    #[test]
    fn ipp_usb_and_storage_are_not_printers() {
        let ipp = InterfaceSummary {
            protocol: 4,
            ..printer_iface(0, 0, 4, true)
        };
        let storage = InterfaceSummary {
            class: 8,
            subclass: 6,
            protocol: 0x50,
            ..printer_iface(1, 0, 0, true)
        };
        assert_eq!(pick_interface(&[ipp.clone(), storage.clone()], true), None);
        let no_out = InterfaceSummary {
            bulk_out: None,
            ..printer_iface(0, 0, 2, true)
        };
        assert_eq!(pick_interface(&[no_out], true), None);
    }

    #[test]
    fn vendor_specific_only_for_known_vendors_and_after_printer_class() {
        let vendor = InterfaceSummary {
            class: 0xff,
            subclass: 0,
            protocol: 0,
            ..printer_iface(0, 0, 0, true)
        };
        assert_eq!(pick_interface(std::slice::from_ref(&vendor), false), None);
        assert_eq!(
            pick_interface(std::slice::from_ref(&vendor), true)
                .unwrap()
                .class,
            0xff
        );
        let both = [vendor, printer_iface(1, 0, 1, false)];
        assert_eq!(pick_interface(&both, true).unwrap().number, 1);
    }

    fn cand(serial: Option<&str>, port: &str, address: u8) -> UsbCandidate {
        UsbCandidate {
            vendor: 0x0a5f,
            product: 0x0081,
            serial: serial.map(str::to_owned),
            port_path: Some(port.to_owned()),
            bus: 1,
            address,
        }
    }

    fn uri(text: &str) -> PrinterUri {
        PrinterUri::parse(text).unwrap()
    }

    #[test]
    fn selects_by_serial_wherever_it_is() {
        let list = [
            cand(Some("B2"), "1-1", 4),
            cand(Some("A1"), "1-2", 9),
            UsbCandidate {
                product: 0x0080,
                ..cand(Some("A1"), "1-3", 3)
            },
        ];
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?serial=A1"), &list),
            Ok(1)
        );
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?serial=C3"), &list),
            Err(DeviceSelectError::NotFound)
        );
    }

    #[test]
    fn port_path_fallback_and_unreadable_serials() {
        let list = [cand(None, "1-1", 4), cand(None, "1-2", 5)];
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?path=1-2"), &list),
            Ok(1)
        );
        // Serial wanted but unreadable (no access): the port path may still match.
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?serial=A1&path=1-1"), &list),
            Ok(0)
        );
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?serial=A1"), &list),
            Err(DeviceSelectError::NotFound)
        );
    }

    #[test]
    fn bare_ids_are_fine_alone_and_ambiguous_in_pairs() {
        let one = [cand(Some("A1"), "1-1", 4)];
        assert_eq!(select_device(&uri("usb://0a5f:0081"), &one), Ok(0));
        let two = [cand(Some("A1"), "1-1", 4), cand(Some("B2"), "1-2", 5)];
        assert_eq!(
            select_device(&uri("usb://0a5f:0081"), &two),
            Err(DeviceSelectError::Ambiguous(vec![
                "port 1-1 (bus 1 address 4)".into(),
                "port 1-2 (bus 1 address 5)".into()
            ]))
        );
        // Two devices sharing a serial (cheap firmware): the port path decides.
        let clones = [cand(Some("X"), "1-1", 4), cand(Some("X"), "1-2", 5)];
        assert_eq!(
            select_device(&uri("usb://0a5f:0081?serial=X&path=1-2"), &clones),
            Ok(1)
        );
    }

    #[test]
    fn serial_whitespace_is_ignored() {
        assert!(uri_matches(
            &uri("usb://0a5f:0081?serial=A1"),
            &cand(Some("A1  "), "1-1", 4)
        ));
        assert!(!uri_matches(
            &PrinterUri::Usblp {
                path: "/dev/usb/lp0".into()
            },
            &cand(Some("A1"), "1-1", 4)
        ));
    }

    #[test]
    fn port_paths() {
        assert_eq!(format_port_path(1, &[1, 4]).as_deref(), Some("1-1.4"));
        assert_eq!(format_port_path(3, &[2]).as_deref(), Some("3-2"));
        assert_eq!(format_port_path(1, &[]), None);
        assert_eq!(usbfs_node(1, 2), "/dev/bus/usb/001/002");
    }

    #[test]
    fn libusb_errors_are_classified_with_hints() {
        let e = classify("usb://0a5f:0081", "open", rusb::Error::Access);
        assert_eq!(e.kind, Kind::PermissionDenied);
        assert!(e.message.contains("udev"), "{}", e.message);
        assert_eq!(
            classify("d", "write", rusb::Error::NoDevice).kind,
            Kind::Disconnected
        );
        assert_eq!(
            classify("d", "write", rusb::Error::Timeout).kind,
            Kind::Timeout
        );
        let busy = classify("d", "claim", rusb::Error::Busy);
        assert!(busy.message.contains("another program"), "{}", busy.message);
        assert!(busy.is_retriable());
    }
}
