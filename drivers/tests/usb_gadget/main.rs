//! The USB transports against a real USB printer: the Linux printer gadget on dummy_hcd
//! inside a QEMU guest (`run.sh` beside this file; setup as in `printer-langs.md` §6.5).
//!
//! On a normal host this test binary does nothing (the guest sets `LABELD_USB_GADGET`
//! to the gadget's configfs directory). Inside the guest it drives `usblp://` and
//! `usb://` transports against the gadget and checks, from the gadget's side, what
//! arrived: the 1284 id, the port status bits set through the gadget's ioctl, a ZPL job
//! byte-exact, a status reply read back, SOFT_RESET, and an unplug/replug (UDC unbound
//! and bound again) in the middle of a job, detected within 2 s and resumed on the
//! re-enumerated device.

use labeld_drivers::transport::usb::{self, UsbTransport};
use labeld_drivers::transport::usblp::UsblpTransport;
use labeld_drivers::transport::{PortStatus, PrinterUri, Transport, TransportErrorKind};
use labeld_drivers::Language;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `run.sh` writes into the gadget (`pnp_string`, strings/0x409/serialnumber).
const PNP: &str = "MFG:Zebra Technologies;CMD:ZPL;MDL:ZTC GK420t;CLS:PRINTER;SN:LABELD0001;";
const SERIAL: &str = "LABELD0001";
const IDS: (u16, u16) = (0x0a5f, 0x0081);

/// `include/uapi/linux/usb/g_printer.h`: `_IOWR('g', 0x22, unsigned char)`; the value
/// is passed by value, not by pointer (§6.5).
const GADGET_SET_PRINTER_STATUS: u32 = 0xc001_6722;

/// The gadget side: `/dev/g_printer0`, a reader thread collecting what the host sent,
/// and the configfs `UDC` file to unplug and replug.
///
/// The node is closed before every unplug and opened again after the replug: the 6.1
/// gadget deletes and re-creates its character device on unbind/bind, and closing a
/// file opened on the old one oopses the kernel (`list_del corruption` in
/// `cd_forget`).
struct Gadget {
    file: Arc<Mutex<Option<File>>>,
    configfs: PathBuf,
    udc: String,
    received: Arc<Mutex<Vec<u8>>>,
    paused: Arc<AtomicBool>,
}

fn open_gadget_node() -> File {
    let mut last = None;
    for _ in 0..100 {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/g_printer0")
        {
            Ok(f) => return f,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("open /dev/g_printer0: {last:?}");
}

impl Gadget {
    fn open(configfs: PathBuf, udc: String) -> Gadget {
        let file = Arc::new(Mutex::new(Some(open_gadget_node())));
        let received = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(AtomicBool::new(false));
        let (f, r, p) = (file.clone(), received.clone(), paused.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16384];
            loop {
                let got = if p.load(Ordering::SeqCst) {
                    None
                } else {
                    match f.lock().unwrap().as_mut().map(|file| file.read(&mut buf)) {
                        Some(Ok(n)) if n > 0 => Some(n),
                        _ => None,
                    }
                };
                match got {
                    Some(n) => r.lock().unwrap().extend_from_slice(&buf[..n]),
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Gadget {
            file,
            configfs,
            udc,
            received,
            paused,
        }
    }

    fn set_status(&self, status: u8) {
        let guard = self.file.lock().unwrap();
        let file = guard.as_ref().expect("gadget node open");
        // SAFETY: GADGET_SET_PRINTER_STATUS takes the status byte by value (§6.5).
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                GADGET_SET_PRINTER_STATUS as _,
                libc::c_ulong::from(status),
            )
        };
        assert!(
            rc >= 0,
            "set printer status: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends a reply to the host (bulk IN).
    fn reply(&self, bytes: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut done = 0;
        while done < bytes.len() {
            let result = self
                .file
                .lock()
                .unwrap()
                .as_mut()
                .expect("gadget node open")
                .write(&bytes[done..]);
            match result {
                Ok(n) => done += n,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("gadget reply: {e}"),
            }
        }
    }

    /// Waits until `n` bytes have arrived (or 10 s), then takes everything received.
    fn take(&self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::mem::take(&mut *self.received.lock().unwrap())
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    fn unplug(&self) {
        drop(self.file.lock().unwrap().take());
        std::fs::write(self.configfs.join("UDC"), "\n").expect("unbind UDC");
    }

    fn plug(&self) {
        std::fs::write(self.configfs.join("UDC"), format!("{}\n", self.udc)).expect("bind UDC");
        *self.file.lock().unwrap() = Some(open_gadget_node());
    }
}

/// A ZPL job of about `size` bytes: one format with an ASCII-hex graphic field.
fn zpl_job(size: usize, seed: u8) -> Vec<u8> {
    let bpr = 100;
    let rows = (size / (2 * bpr)).max(1);
    let total = bpr * rows;
    let mut job = format!("^XA^PW812^LL1218^FO0,0^GFA,{total},{total},{bpr},").into_bytes();
    for i in 0..total {
        job.extend_from_slice(format!("{:02X}", (i as u8).wrapping_mul(31) ^ seed).as_bytes());
    }
    job.extend_from_slice(b"^FS^PQ1,0,1,Y^XZ\n");
    job
}

/// A `~HS` reply's first string (ZPL programming guide, "Host Status Return").
const HS_REPLY: &[u8] = b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n";

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn read_reply(t: &mut dyn Transport, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < deadline {
        let n = t.read_reply(&mut buf, Duration::from_millis(500)).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn check_usblp(g: &Gadget) {
    let node = Path::new("/dev/usb/lp0");
    let mut t = UsblpTransport::new(node.to_path_buf());
    t.open().expect("open usblp");
    let info = t.device_info().expect("usblp device info");
    let id = info.device_id.expect("1284 id over usblp");
    eprintln!("usblp: 1284 id {:?}", id.raw());
    assert_eq!(id.raw(), PNP);
    assert_eq!(id.serial(), Some(SERIAL));
    assert_eq!(id.language_hint(), Some(Language::Zpl));
    assert_eq!(info.usb_ids, Some(IDS));
    assert_eq!(info.port_status, Some(PortStatus(0x18)));
    let identity = t.identity().clone();
    eprintln!("usblp: identity {identity:?}");
    assert_eq!(identity.serial.as_deref(), Some(SERIAL));
    assert!(identity.port_path.is_some());

    for status in [0x38u8, 0x10, 0x08, 0x18] {
        g.set_status(status);
        let got = t.device_info().unwrap().port_status;
        assert_eq!(
            got,
            Some(PortStatus(status)),
            "LPGETSTATUS after {status:#04x}"
        );
    }

    let job = zpl_job(36_000, 1);
    t.write_all(&job, Instant::now() + Duration::from_secs(10))
        .expect("usblp write");
    assert!(g.take(job.len()) == job, "usblp job not byte-exact");

    g.reply(HS_REPLY);
    assert_eq!(read_reply(&mut t, HS_REPLY.len()), HS_REPLY);

    // Unplug in the middle of a job: the gadget stops reading, the host stalls.
    g.pause(true);
    let big = zpl_job(1_000_000, 2);
    let err = t
        .write_all(&big, Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    let sent = err.written;
    eprintln!("usblp: stalled after {sent} bytes");
    assert!(sent > 0, "the job should stall part-way");
    g.unplug();
    let started = Instant::now();
    let err = loop {
        match t.write_all(&big[sent..], Instant::now() + Duration::from_millis(500)) {
            Err(e) if e.kind == TransportErrorKind::Timeout => {}
            Err(e) => break e,
            Ok(()) => panic!("usblp: write succeeded on an unplugged printer"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "unplug not seen"
        );
    };
    eprintln!(
        "usblp: unplug seen after {:?}: {err} ({:?})",
        started.elapsed(),
        err.kind
    );
    assert!(matches!(
        err.kind,
        TransportErrorKind::Disconnected | TransportErrorKind::NotFound
    ));
    let err = t.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::NotFound, "{err}");
    g.received.lock().unwrap().clear();
    g.pause(false);
    g.plug();
    let took = wait_for("usblp reopen after replug", Duration::from_secs(5), || {
        t.open().is_ok()
    });
    eprintln!("usblp: reopened {:?} after replug", took);
    assert_eq!(t.current_node(), Some(node));
    let _ = g.take(0);
    let rest = zpl_job(20_000, 3);
    t.write_all(&rest, Instant::now() + Duration::from_secs(10))
        .expect("usblp write after replug");
    assert!(
        g.take(rest.len()) == rest,
        "usblp job after replug not byte-exact"
    );
    t.close();
}

fn check_libusb(g: &Gadget) {
    let found = usb::try_list_printers().expect("list printers");
    eprintln!("libusb: found {found:#?}");
    let me = found
        .iter()
        .find(|f| (f.vendor, f.product) == IDS)
        .expect("the gadget is listed");
    assert_eq!(me.serial.as_deref(), Some(SERIAL));
    assert_eq!(
        me.device_id.as_ref().map(|d| d.raw().to_owned()).as_deref(),
        Some(PNP)
    );
    assert_eq!(me.interface.map(|i| i.protocol), Some(2));
    let uri = PrinterUri::parse("usb://0a5f:0081?serial=LABELD0001").unwrap();
    assert_eq!(me.uri, uri);

    let mut t = UsbTransport::new(uri).unwrap();
    t.open().expect("open libusb");
    // usblp was detached on claim.
    wait_for("usblp detached", Duration::from_secs(2), || {
        !Path::new("/dev/usb/lp0").exists()
    });
    let info = t.device_info().expect("libusb device info");
    eprintln!("libusb: info {info:?}");
    assert_eq!(info.device_id.as_ref().map(|d| d.raw()), Some(PNP));
    assert_eq!(info.port_status, Some(PortStatus(0x18)));
    g.set_status(0x38);
    assert_eq!(t.device_info().unwrap().port_status, Some(PortStatus(0x38)));
    g.set_status(0x18);

    let job = zpl_job(36_000, 4);
    t.write_all(&job, Instant::now() + Duration::from_secs(10))
        .expect("libusb write");
    assert!(g.take(job.len()) == job, "libusb job not byte-exact");
    g.reply(HS_REPLY);
    assert_eq!(read_reply(&mut t, HS_REPLY.len()), HS_REPLY);

    // Unplug mid-job.
    g.pause(true);
    let big = zpl_job(1_000_000, 5);
    let err = t
        .write_all(&big, Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    let sent = err.written;
    eprintln!("libusb: stalled after {sent} bytes");
    assert!(sent > 0, "the job should stall part-way");
    g.unplug();
    let started = Instant::now();
    let err = loop {
        match t.write_all(&big[sent..], Instant::now() + Duration::from_millis(500)) {
            Err(e) if e.kind == TransportErrorKind::Timeout => {}
            Err(e) => break e,
            Ok(()) => panic!("libusb: write succeeded on an unplugged printer"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "unplug not seen"
        );
    };
    eprintln!(
        "libusb: unplug seen after {:?}: {err} ({:?})",
        started.elapsed(),
        err.kind
    );
    assert_eq!(err.kind, TransportErrorKind::Disconnected);
    g.received.lock().unwrap().clear();
    g.pause(false);
    g.plug();
    let took = wait_for("libusb reopen after replug", Duration::from_secs(5), || {
        t.open().is_ok()
    });
    eprintln!(
        "libusb: reopened {:?} after replug at {:?}",
        took,
        t.device_info().ok().and_then(|i| i.location)
    );
    let _ = g.take(0);
    let rest = zpl_job(20_000, 6);
    t.write_all(&rest, Instant::now() + Duration::from_secs(10))
        .expect("libusb write after replug");
    assert!(
        g.take(rest.len()) == rest,
        "libusb job after replug not byte-exact"
    );

    // SOFT_RESET: 0x21 is what the gadget accepts (f_printer `req_match`).
    t.soft_reset().expect("soft reset");

    // Closing gives the interface back to usblp.
    t.close();
    wait_for("usblp re-attached", Duration::from_secs(3), || {
        Path::new("/dev/usb/lp0").exists()
    });
}

#[test]
fn gadget() {
    let Some(configfs) = std::env::var_os("LABELD_USB_GADGET") else {
        eprintln!("skipped: runs inside the QEMU guest (drivers/tests/usb_gadget/run.sh)");
        return;
    };
    let udc = std::env::var("LABELD_USB_GADGET_UDC").unwrap_or_else(|_| "dummy_udc.0".into());
    let g = Gadget::open(PathBuf::from(configfs), udc);
    check_usblp(&g);
    check_libusb(&g);
    check_hotplug(&g);
}

fn check_hotplug(g: &Gadget) {
    use labeld_drivers::transport::hotplug::{HotplugEvent, WatchMode, Watcher};
    let uri = PrinterUri::parse("usb://0a5f:0081?serial=LABELD0001").unwrap();
    let other = PrinterUri::parse("usb://0a5f:0081?serial=NOTHERE").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let w = Watcher::start(
        vec![uri.clone(), other],
        Duration::from_millis(1000),
        move |e| {
            let _ = tx.send((Instant::now(), e));
        },
    );
    eprintln!("hotplug: mode {:?}", w.mode());
    assert_ne!(w.mode(), WatchMode::Unavailable);
    let (_, first) = rx
        .recv_timeout(Duration::from_secs(3))
        .expect("initial event");
    assert_eq!(first, HotplugEvent::Arrived(uri.clone()));
    for round in 0..2 {
        let t0 = Instant::now();
        g.unplug();
        let (t, e) = rx.recv_timeout(Duration::from_secs(3)).expect("left event");
        eprintln!("hotplug: {e:?} after {:?}", t - t0);
        assert_eq!(e, HotplugEvent::Left(uri.clone()));
        assert!(t - t0 < Duration::from_secs(2));
        let t0 = Instant::now();
        g.plug();
        let (t, e) = rx
            .recv_timeout(Duration::from_secs(3))
            .expect("arrived event");
        eprintln!("hotplug: {e:?} after {:?} (round {round})", t - t0);
        assert_eq!(e, HotplugEvent::Arrived(uri.clone()));
        assert!(t - t0 < Duration::from_secs(2));
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "no spurious events"
    );
    let t0 = Instant::now();
    w.stop();
    eprintln!("hotplug: stopped in {:?}", t0.elapsed());
}
