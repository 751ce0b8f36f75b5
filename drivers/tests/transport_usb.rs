//! USB transports without USB: the IEEE 1284 id parser, port status bits, usblp node
//! selection, the usblp write/read path on a FIFO, and what a host without USB reports.
//!
//! The real-device checks (a QEMU guest with the Linux printer gadget,
//! `printer-langs.md` §6.5) are a separate test; nothing here needs USB.

use labeld_drivers::transport::usb::{self, UsbTransport};
use labeld_drivers::transport::usblp::{self, NodeCandidate, NodeIdentity, UsblpTransport};
use labeld_drivers::transport::{
    self, DeviceId, PortStatus, PrinterUri, Transport, TransportErrorKind,
};
use labeld_drivers::{Condition, Language};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// This host's kernel has no USB at all (`printer-langs.md` §6, §7.9).
fn host_has_no_usb() -> bool {
    !Path::new("/sys/bus/usb").exists()
}

#[test]
fn device_id_examples_from_the_facts() {
    // §5.1: Brother's example.
    let brother = DeviceId::parse("MFG:Brother;CMD:PJL,HBP;MDL:HL-2030 series;CLS:PRINTER;");
    assert_eq!(brother.manufacturer(), Some("Brother"));
    assert_eq!(brother.model(), Some("HL-2030 series"));
    assert_eq!(brother.command_set(), ["PJL", "HBP"]);
    assert_eq!(brother.class(), Some("PRINTER"));
    assert_eq!(brother.language_hint(), None);

    // §5.1: HP's command set.
    let hp = DeviceId::parse("MFG:Hewlett-Packard;MDL:HP LaserJet P2015;CMD:MLC,PCL,PML;");
    assert_eq!(hp.command_set(), ["MLC", "PCL", "PML"]);
    assert_eq!(hp.language_hint(), Some(Language::Pcl));

    // A Zebra, as GET_DEVICE_ID returns it: 2-byte big-endian length counting itself.
    let text = "MFG:Zebra Technologies;CMD:ZPL;MDL:ZTC GK420t;CLS:PRINTER;SN:28J123456789;";
    let mut bytes = u16::try_from(text.len() + 2)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.resize(1024, 0); // usblp's buffer, NUL-padded
    let zebra = DeviceId::parse(&bytes);
    assert_eq!(zebra.raw(), text);
    assert_eq!(zebra.serial(), Some("28J123456789"));
    assert_eq!(zebra.language_hint(), Some(Language::Zpl));

    // Truncated: the prefix announces more than arrived; the cut pair is dropped.
    let cut = &bytes[..2 + "MFG:Zebra Technologies;CMD:ZPL;MDL:ZTC GK4".len()];
    let cut = DeviceId::parse(cut);
    assert!(cut.is_truncated());
    assert_eq!(cut.model(), None);
    assert_eq!(cut.language_hint(), Some(Language::Zpl));

    // Garbage.
    assert!(DeviceId::parse([0xff, 0x00, 0x13, 0x37]).is_empty());
}

#[test]
fn port_status_bits() {
    // (byte, paper empty, selected, error): §5.1 and the values tried in §6.5.
    let cases = [
        (0x18, false, true, false),  // normal
        (0x38, true, true, false),   // paper empty
        (0x10, false, true, true),   // error
        (0x08, false, false, false), // not selected
        (0x00, false, false, true),
    ];
    for (byte, paper, selected, error) in cases {
        let s = PortStatus(byte);
        assert_eq!(
            (s.paper_empty(), s.selected(), s.error()),
            (paper, selected, error),
            "{byte:#04x}"
        );
    }
    assert!(usb::device_status_from_port(PortStatus(0x18)).is_ready());
    let out = usb::device_status_from_port(PortStatus(0x38));
    assert!(out.conditions.contains(Condition::MediaOut));
    assert_eq!(out.detail, "paper empty");
    assert_eq!(out.raw, [0x38]);
    let err = usb::device_status_from_port(PortStatus(0x10));
    assert!(err.conditions.contains(Condition::Other));
    assert!(usb::device_status_from_port(PortStatus(0x08))
        .conditions
        .contains(Condition::Paused));
    // usblp's LPGETSTATUS sign-extends (§7.8).
    assert_eq!(usblp::port_status_from_ioctl(-96), PortStatus(0xa0));
}

#[test]
fn usblp_follows_the_serial_to_a_new_node() {
    let zebra = |sn: &str| NodeIdentity {
        device_id: Some(DeviceId::parse(format!(
            "MFG:Zebra;CMD:ZPL;MDL:ZD410;SN:{sn};"
        ))),
        usb_ids: Some((0x0a5f, 0x011c)),
        serial: None,
        port_path: None,
    };
    let want = zebra("A1");
    // After a replug another printer took lp0 and ours came back as lp1.
    let nodes = [
        NodeCandidate {
            path: "/dev/usb/lp0".into(),
            identity: Some(zebra("B2")),
        },
        NodeCandidate {
            path: "/dev/usb/lp1".into(),
            identity: Some(zebra("A1")),
        },
    ];
    let (i, by) = usblp::select_node(&want, &nodes, Path::new("/dev/usb/lp0")).unwrap();
    assert_eq!(
        (nodes[i].path.as_path(), by),
        (Path::new("/dev/usb/lp1"), usblp::MatchedBy::Serial)
    );
    // Ours not back yet: never the other printer.
    assert!(usblp::select_node(&want, &nodes[..1], Path::new("/dev/usb/lp0")).is_err());
}

#[test]
fn usb_on_a_host_without_usb() {
    if !host_has_no_usb() {
        eprintln!("skipped: this host has USB");
        return;
    }
    assert!(usb::list_printers().is_empty());
    let err = usb::try_list_printers().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::NotFound);
    assert!(err.message.contains("no USB support on this host"), "{err}");

    let uri = PrinterUri::parse("usb://0a5f:0081?serial=28J123456789").unwrap();
    let mut t = transport::open(&uri).expect("constructing never needs USB");
    let err = t.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::NotFound);
    assert!(err.is_retriable());
    assert_eq!(
        err.to_string(),
        format!("usb://0a5f:0081?serial=28J123456789: {}", err.message)
    );
    assert!(
        err.message.starts_with("no USB support on this host"),
        "{err}"
    );

    // Nothing open: writes say so and count nothing.
    let err = t
        .write_all(b"^XA^XZ", Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(
        (err.kind, err.written),
        (TransportErrorKind::Disconnected, 0)
    );
    assert!(t.device_info().is_err());
    t.close();
    t.close();

    assert!(usb::UsbScanner::new().is_err());
}

#[test]
fn usb_transport_needs_a_usb_address() {
    let err = UsbTransport::new(PrinterUri::parse("tcp://127.0.0.1").unwrap())
        .err()
        .unwrap();
    assert_eq!(err.kind, TransportErrorKind::Config);
}

#[test]
fn usblp_missing_node_is_not_found_with_a_hint() {
    let mut t = UsblpTransport::new("/dev/usb/lp97".into());
    assert_eq!(t.describe(), "usblp:///dev/usb/lp97");
    let err = t.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::NotFound);
    assert!(err.message.contains("plugged in"), "{err}");
}

/// A FIFO stands in for the node: the same open/poll/write/read path, a buffer that
/// fills up like a printer that stops reading, and no usblp ioctls.
fn fifo(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("labeld-usblp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lp0");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    path
}

#[test]
fn usblp_write_stops_at_the_deadline_and_counts_bytes() {
    let path = fifo("deadline");
    let mut t = UsblpTransport::new(path.clone());
    t.open().unwrap();
    assert_eq!(t.current_node(), Some(path.as_path()));
    assert!(t.identity().is_unknown(), "a FIFO has no 1284 id");

    let job: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    let err = t
        .write_all(&job, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind, TransportErrorKind::Timeout);
    assert!(err.written > 0 && err.written < job.len(), "{err:?}");
    assert!(
        err.message.contains(&format!("{} of 400000", err.written)),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // What went in comes back out, in order; then silence is Ok(0), not an error.
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = t.read_reply(&mut buf, Duration::from_millis(50)).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, job[..err.written]);

    // The rest fits once drained.
    t.write_all(b"^XA^XZ", Instant::now() + Duration::from_secs(1))
        .unwrap();
    let n = t.read_reply(&mut buf, Duration::from_millis(50)).unwrap();
    assert_eq!(&buf[..n], b"^XA^XZ");

    // Not a usblp node: device info says so instead of inventing a status.
    let err = t.device_info().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Config);
    assert!(err.message.contains("usblp"), "{err}");

    // Reopen (after a fault) finds the same node again.
    t.open().unwrap();
    t.close();
    let err = t
        .write_all(b"x", Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Disconnected);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn usblp_read_reply_waits_for_the_timeout_when_silent() {
    let path = fifo("silent");
    let mut t = UsblpTransport::new(path.clone());
    t.open().unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(
        t.read_reply(&mut buf, Duration::from_millis(120)).unwrap(),
        0
    );
    assert!(started.elapsed() >= Duration::from_millis(110));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
