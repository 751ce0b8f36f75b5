//! Watching USB printers come and go: `Arrived(uri)` / `Left(uri)` for the printers
//! labeld is configured with, so queued work waits while a printer is unplugged and
//! continues when it is back, without a restart.
//!
//! - **Events**: libusb hotplug callbacks where libusb supports them (Linux: kernel
//!   netlink uevents in the vendored build), polling every `interval` otherwise. A
//!   callback only marks the device list dirty; the watcher thread then enumerates and
//!   compares, because libusb forbids synchronous requests (reading a serial number)
//!   inside the callback. After an event it keeps re-enumerating for
//!   [`SETTLE`] each `interval`, since udev may fix the node's permissions a moment after
//!   the device appears, and it re-enumerates every [`SAFETY_RESCAN`] anyway in case an
//!   event was lost.
//! - **Identity**: a printer is matched to its address as the transport does
//!   ([`super::usb::uri_matches`]: ids, then serial number, else port path), so the same
//!   serial number on a new bus address is the same printer, back. A replug between two
//!   looks (the old bus address gone, a new one there) is reported as `Left` then
//!   `Arrived`, so the caller reopens its dead handle.
//! - **State logic** is the pure [`diff`]; the thread only feeds it enumerations.
//! - **Start-up**: the first enumeration reports `Arrived` for every watched printer
//!   already attached.
//! - **No USB on the host**: [`Watcher::start`] returns a watcher in mode
//!   [`WatchMode::Unavailable`] that never reports anything. `rusb::has_hotplug()` is not
//!   used: it starts libusb's global context, which panics inside rusb where libusb
//!   cannot start; trying to register the callback answers the same question safely.
//! - `usblp://` addresses are not watched here: their transport finds the node again by
//!   its 1284 id when it reopens (`usblp.rs`).

use super::usb::{uri_matches, UsbCandidate, UsbScanner};
use super::PrinterUri;
use rusb::{Context, Device, Hotplug, HotplugBuilder, UsbContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long after a hotplug event the watcher keeps re-enumerating each interval.
pub const SETTLE: Duration = Duration::from_secs(5);
/// With hotplug events, re-enumerate at least this often anyway.
pub const SAFETY_RESCAN: Duration = Duration::from_secs(30);
/// The polling interval the daemon uses unless configured otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// A watched printer appeared or disappeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HotplugEvent {
    /// The printer with this address is attached (again).
    Arrived(PrinterUri),
    /// The printer with this address is gone.
    Left(PrinterUri),
}

/// How a [`Watcher`] learns about changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    /// libusb hotplug events.
    Hotplug,
    /// Enumerating every interval.
    Polling,
    /// No USB on this host: nothing will ever be reported.
    Unavailable,
}

/// The events that take `watched` printers from the enumeration `before` to `after`.
///
/// A printer is present when some device matches its address. Absent → present is
/// `Arrived`, present → absent is `Left`, and present in both but on none of the same
/// bus addresses (replugged between the two looks) is `Left` then `Arrived`.
pub fn diff(
    watched: &[PrinterUri],
    before: &[UsbCandidate],
    after: &[UsbCandidate],
) -> Vec<HotplugEvent> {
    let places = |list: &[UsbCandidate], uri: &PrinterUri| -> Vec<(u8, u8)> {
        list.iter()
            .filter(|c| uri_matches(uri, c))
            .map(|c| (c.bus, c.address))
            .collect()
    };
    let mut events = Vec::new();
    for uri in watched {
        let was = places(before, uri);
        let is = places(after, uri);
        match (was.is_empty(), is.is_empty()) {
            (true, false) => events.push(HotplugEvent::Arrived(uri.clone())),
            (false, true) => events.push(HotplugEvent::Left(uri.clone())),
            (false, false) if !is.iter().any(|p| was.contains(p)) => {
                events.push(HotplugEvent::Left(uri.clone()));
                events.push(HotplugEvent::Arrived(uri.clone()));
            }
            _ => {}
        }
    }
    events
}

/// Marks the device list dirty from inside libusb's callback.
struct Dirty(Arc<AtomicBool>);

impl Hotplug<Context> for Dirty {
    fn device_arrived(&mut self, _device: Device<Context>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn device_left(&mut self, _device: Device<Context>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A background thread reporting [`HotplugEvent`]s for a set of `usb://` printers.
/// Stops when dropped.
pub struct Watcher {
    /// How changes are detected.
    mode: WatchMode,
    /// Set to stop the thread.
    stop: Arc<AtomicBool>,
    /// The context hotplug events arrive on (to interrupt its wait on stop).
    events: Option<Context>,
    /// The watcher thread.
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching the `usb://` addresses among `watched` (others are ignored),
    /// calling `on_event` from the watcher thread. `interval` is the polling period
    /// without hotplug support, and the re-check period while things settle.
    ///
    /// To receive events on a channel, pass `move |e| { let _ = tx.send(e); }`.
    pub fn start<F>(watched: Vec<PrinterUri>, interval: Duration, on_event: F) -> Watcher
    where
        F: FnMut(HotplugEvent) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let watched: Vec<PrinterUri> = watched
            .into_iter()
            .filter(|u| matches!(u, PrinterUri::Usb { .. }))
            .collect();
        let Ok(scanner) = UsbScanner::new() else {
            return Watcher {
                mode: WatchMode::Unavailable,
                stop,
                events: None,
                thread: None,
            };
        };
        let dirty = Arc::new(AtomicBool::new(true));
        let registration = Context::new().ok().and_then(|ctx| {
            HotplugBuilder::new()
                .enumerate(false)
                .register(&ctx, Box::new(Dirty(dirty.clone())))
                .ok()
                .map(|reg| (ctx, reg))
        });
        let mode = if registration.is_some() {
            WatchMode::Hotplug
        } else {
            WatchMode::Polling
        };
        let events = registration.as_ref().map(|(ctx, _)| ctx.clone());
        let run = Run {
            watched,
            interval: interval.max(Duration::from_millis(10)),
            stop: stop.clone(),
            dirty,
            scanner,
            registration,
            on_event,
        };
        let thread = std::thread::Builder::new()
            .name("usb-hotplug".into())
            .spawn(move || run.run())
            .ok();
        Watcher {
            mode: if thread.is_some() {
                mode
            } else {
                WatchMode::Unavailable
            },
            stop,
            events,
            thread,
        }
    }

    /// How changes are detected.
    pub fn mode(&self) -> WatchMode {
        self.mode
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(ctx) = &self.events {
            ctx.interrupt_handle_events();
        }
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The watcher thread's state.
struct Run<F> {
    /// The `usb://` printers to report on.
    watched: Vec<PrinterUri>,
    /// Polling period, and re-check period while settling.
    interval: Duration,
    /// Set by [`Watcher::stop`].
    stop: Arc<AtomicBool>,
    /// Set by the hotplug callback; starts set so the first pass enumerates.
    dirty: Arc<AtomicBool>,
    /// Enumerates the watched ids.
    scanner: UsbScanner,
    /// The hotplug context and registration (kept alive), if hotplug works.
    registration: Option<(Context, rusb::Registration<Context>)>,
    /// Where events go.
    on_event: F,
}

impl<F: FnMut(HotplugEvent)> Run<F> {
    fn run(mut self) {
        let ids: Vec<(u16, u16)> = self
            .watched
            .iter()
            .filter_map(|u| match u {
                PrinterUri::Usb {
                    vendor, product, ..
                } => Some((*vendor, *product)),
                _ => None,
            })
            .collect();
        let wanted = move |v: u16, p: u16| ids.contains(&(v, p));
        let mut present: Vec<UsbCandidate> = Vec::new();
        let mut last_scan: Option<Instant> = None;
        let mut settle_until: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let since = last_scan.map(|t| now.duration_since(t));
            let event = self.dirty.swap(false, Ordering::SeqCst);
            if event {
                settle_until = Some(now + SETTLE);
            }
            let due = match (&self.registration, since) {
                (_, None) => true,
                (None, Some(s)) => s >= self.interval,
                (Some(_), Some(s)) => {
                    event
                        || s >= SAFETY_RESCAN
                        || (settle_until.is_some_and(|t| now < t) && s >= self.interval)
                }
            };
            if due {
                if let Ok(after) = self.scanner.scan(&wanted) {
                    for e in diff(&self.watched, &present, &after) {
                        (self.on_event)(e);
                    }
                    present = after;
                }
                last_scan = Some(Instant::now());
            }
            match &self.registration {
                Some((ctx, _)) => {
                    // Returns early on a hotplug event or an interrupt from stop().
                    if ctx.handle_events(Some(self.interval)).is_err() {
                        std::thread::park_timeout(self.interval);
                    }
                }
                None => std::thread::park_timeout(self.interval),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zebra(serial: Option<&str>, port: &str, address: u8) -> UsbCandidate {
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
    fn first_look_reports_what_is_attached() {
        let watched = [
            uri("usb://0a5f:0081?serial=A1"),
            uri("usb://0a5f:0081?serial=B2"),
        ];
        let now = [zebra(Some("A1"), "1-1", 5)];
        assert_eq!(
            diff(&watched, &[], &now),
            vec![HotplugEvent::Arrived(watched[0].clone())]
        );
    }

    #[test]
    fn same_serial_new_bus_address_is_the_same_printer_back() {
        let a1 = uri("usb://0a5f:0081?serial=A1");
        let watched = [a1.clone()];
        let plugged = [zebra(Some("A1"), "1-1", 5)];
        // Unplugged: gone.
        assert_eq!(
            diff(&watched, &plugged, &[]),
            vec![HotplugEvent::Left(a1.clone())]
        );
        // Back on another port and address: the same printer, back.
        let back = [zebra(Some("A1"), "1-3", 9)];
        assert_eq!(
            diff(&watched, &[], &back),
            vec![HotplugEvent::Arrived(a1.clone())]
        );
        // Nothing changed: nothing to say.
        assert_eq!(diff(&watched, &back, &back), vec![]);
    }

    #[test]
    fn replug_between_two_looks_is_left_then_arrived() {
        let a1 = uri("usb://0a5f:0081?serial=A1");
        let before = [zebra(Some("A1"), "1-1", 5)];
        let after = [zebra(Some("A1"), "1-1", 6)];
        assert_eq!(
            diff(std::slice::from_ref(&a1), &before, &after),
            vec![HotplugEvent::Left(a1.clone()), HotplugEvent::Arrived(a1)]
        );
    }

    #[test]
    fn another_printer_of_the_same_model_is_not_ours() {
        let a1 = uri("usb://0a5f:0081?serial=A1");
        let before = [zebra(Some("A1"), "1-1", 5)];
        let after = [zebra(Some("B2"), "1-1", 7)];
        assert_eq!(
            diff(std::slice::from_ref(&a1), &before, &after),
            vec![HotplugEvent::Left(a1)]
        );
    }

    #[test]
    fn port_path_addresses_follow_the_socket() {
        let by_port = uri("usb://0a5f:0081?path=1-2");
        let watched = [by_port.clone()];
        // A serial-less printer moved from 1-2 to 1-4: ours left; the one now at 1-4
        // is not ours.
        let before = [zebra(None, "1-2", 5)];
        let after = [zebra(None, "1-4", 8)];
        assert_eq!(
            diff(&watched, &before, &after),
            vec![HotplugEvent::Left(by_port.clone())]
        );
        // Back in its socket.
        let back = [zebra(None, "1-2", 11)];
        assert_eq!(
            diff(&watched, &after, &back),
            vec![HotplugEvent::Arrived(by_port)]
        );
    }

    #[test]
    fn a_second_identical_printer_arriving_does_not_disturb_the_first() {
        let bare = uri("usb://0a5f:0081");
        let before = [zebra(Some("A1"), "1-1", 5)];
        let after = [zebra(Some("A1"), "1-1", 5), zebra(Some("B2"), "1-2", 6)];
        assert_eq!(diff(std::slice::from_ref(&bare), &before, &after), vec![]);
    }

    #[test]
    fn non_usb_addresses_never_match() {
        let watched = [uri("usblp:///dev/usb/lp0"), uri("tcp://10.0.0.5")];
        assert_eq!(diff(&watched, &[], &[zebra(Some("A1"), "1-1", 5)]), vec![]);
    }

    #[test]
    fn watcher_on_a_host_without_usb_reports_nothing_and_stops() {
        let (tx, rx) = std::sync::mpsc::channel();
        let w = Watcher::start(
            vec![uri("usb://0a5f:0081?serial=A1")],
            Duration::from_millis(20),
            move |e| {
                let _ = tx.send(e);
            },
        );
        if rusb::Context::new().is_err() {
            assert_eq!(w.mode(), WatchMode::Unavailable);
        }
        let started = Instant::now();
        w.stop();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(rx.try_recv().is_err());
    }
}
