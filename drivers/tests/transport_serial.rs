//! The serial transport on a real pseudo-terminal pair, with a ZPL printer emulator on
//! the far side.
//!
//! Which end is ours: the pty **slave** has a path (`/dev/pts/N`) and the same `n_tty`
//! line discipline as a UART, so the transport opens it exactly as it opens
//! `/dev/ttyUSB0`, with its termios (IXON for `flow=software`). The emulator holds the
//! **master**: what the transport writes comes out there, and what the emulator writes to
//! the master arrives as the slave's input, the way a printer's bytes arrive on the wire.
//! A DC3 written to the master is therefore seen by our line discipline exactly like a
//! printer's XOFF: the kernel stops our output until DC1.
//!
//! The emulator reads the stream, splits it into `^XA … ^XZ` labels (each carrying its
//! sequence number as `^FD#00042^FS`), answers `~HS` and `~HQES` with canned replies in the
//! layout of `printer-langs.md` §1.5, stalls, holds the line with XOFF, and hangs up (closes
//! the master: the kernel hangs the slave up as on a USB-serial unplug, and the node
//! vanishes).
//!
//! What a pty cannot show: baud rate and line timing (ignored), 7 data bits and parity
//! (Linux forces CS8 without parity on ptys), RTS/CTS and DTR (no modem lines:
//! `flow=hardware` is stored in termios but never holds anything), `TIOCOUTQ` pacing (a pty
//! always reports an empty output queue), and the FIFOs and chip-level flow control of real
//! UARTs and USB adapters.

use labeld_drivers::lang::zpl::{GraphicEncoding, Zpl};
use labeld_drivers::transport::serial::{check_link, SerialTransport, XOFF, XON};
use labeld_drivers::transport::{
    Flow, Parity, SerialSettings, Transport, TransportError, TransportErrorKind,
};
use labeld_drivers::{
    models, Bitmap, Condition, Driver, NativeElement, NativeText, Page, Profile, Rotation,
};
use serialport::{SerialPort, TTYPort};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The job: ASCII-only ZPL from the real driver, one sequence number per label
// ---------------------------------------------------------------------------------------

/// A ZPL job as the scheduler sends it: `~JX`, then one write per label.
struct Job {
    prefix: Vec<u8>,
    labels: Vec<Vec<u8>>,
}

impl Job {
    /// `count` labels of about 6 KB each (a noisy 400 × 60 dot graphic as ASCII hex, plus
    /// the sequence number as native text), ASCII-only as on an XON/XOFF link.
    fn new(count: u32) -> Job {
        let profile = zpl_profile();
        let mut zpl = Zpl::new(&profile).with_encoding(GraphicEncoding::Hex);
        let mut prefix = Vec::new();
        zpl.start_job(&mut prefix).expect("start_job");
        let labels = (0..count)
            .map(|seq| {
                let mut out = Vec::new();
                zpl.write_page(&label_page(&profile, seq), &mut out)
                    .expect("write_page");
                out
            })
            .collect();
        Job { prefix, labels }
    }

    /// The whole byte stream.
    fn bytes(&self) -> Vec<u8> {
        let mut all = self.prefix.clone();
        for label in &self.labels {
            all.extend_from_slice(label);
        }
        all
    }

    /// Where each label starts in the stream.
    fn starts(&self) -> Vec<usize> {
        let mut at = self.prefix.len();
        self.labels
            .iter()
            .map(|l| {
                let start = at;
                at += l.len();
                start
            })
            .collect()
    }

    /// The label whose bytes include stream offset `pos` (the one in flight when a write
    /// stopped at `pos`).
    fn label_at(&self, pos: usize) -> Option<usize> {
        let starts = self.starts();
        (0..self.labels.len()).find(|&i| pos >= starts[i] && pos < starts[i] + self.labels[i].len())
    }
}

fn zpl_profile() -> Profile {
    let mut profile = models::find("zpl-203").expect("zpl-203").profile();
    profile.ascii_only = true;
    profile
}

/// A label: pseudo-random dots (so every label differs and nothing compresses away) and
/// the sequence number as native text: `^FD#00042^FS`.
fn label_page(profile: &Profile, seq: u32) -> Page {
    let mut bitmap = Bitmap::new(400, 120);
    let mut x = seq.wrapping_mul(2_654_435_761) | 1;
    for y in 0..60 {
        for dot in 0..400 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bitmap.set(dot, y, x & 3 == 0);
        }
    }
    let mut page = Page::raster(bitmap, profile.resolution);
    page.native.push(NativeElement::Text(NativeText {
        x: 10,
        y: 80,
        width: 380,
        height: 30,
        line_pitch: 30,
        lines: vec![format!("#{seq:05}")],
        rotation: Rotation::None,
    }));
    page
}

/// What a writer saw: bytes the transport took in total, the error that stopped it, and
/// (time, bytes taken so far) after every write.
struct Sent {
    taken: usize,
    error: Option<TransportError>,
    progress: Vec<(Instant, usize)>,
}

/// Writes the job label by label, each under its own deadline, stopping at the first error.
fn send(t: &mut SerialTransport, job: &Job, first: usize, per_write: Duration) -> Sent {
    let mut sent = Sent {
        taken: 0,
        error: None,
        progress: Vec::new(),
    };
    let writes = std::iter::once(&job.prefix).chain(&job.labels[first..]);
    for bytes in writes {
        match t.write_all(bytes, Instant::now() + per_write) {
            Ok(()) => sent.taken += bytes.len(),
            Err(e) => {
                sent.taken += e.written;
                sent.error = Some(e);
                break;
            }
        }
        sent.progress.push((Instant::now(), sent.taken));
    }
    sent
}

// ---------------------------------------------------------------------------------------
// The pty and the printer emulator
// ---------------------------------------------------------------------------------------

struct Pty {
    /// The far end, for the emulator.
    master: TTYPort,
    /// The slave as the pair opened it: keeps the tty alive between our opens, and reads
    /// back the termios our transport set (termios belongs to the tty, not the descriptor).
    slave: TTYPort,
    /// The slave's path: "the serial port".
    path: PathBuf,
}

fn pty() -> Pty {
    let (master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
    let path = PathBuf::from(slave.name().expect("the slave has a path"));
    Pty {
        master,
        slave,
        path,
    }
}

fn settings(flow: Flow) -> SerialSettings {
    SerialSettings {
        flow,
        ..SerialSettings::default()
    }
}

fn open(path: &Path, flow: Flow) -> SerialTransport {
    let mut t = SerialTransport::new(path.to_owned(), settings(flow));
    t.open().expect("open the pty slave");
    t
}

/// How long the emulator holds the line with XOFF.
#[derive(Clone, Copy, Debug)]
enum Hold {
    For(Duration),
    UntilReleased,
}

/// What the emulated printer does.
#[derive(Clone, Default)]
struct Script {
    /// Stop reading for `.1` after every `.0` labels, while more are expected.
    stall_every: Option<(usize, Duration)>,
    /// Labels in the job (no stall after the last one).
    expected_labels: usize,
    /// After `.0` labels: send XOFF, take what was already on its way, hold, send XON.
    hold: Option<(usize, Hold)>,
    /// After this many labels: hang up (close the master).
    hang_up_after: Option<usize>,
    /// Before hanging up, send XOFF and take everything already sent, so that "received"
    /// is exactly what the transport counted as written.
    quiesce: bool,
    /// After this many labels: stop reading until released, then read on.
    freeze_after: Option<usize>,
    /// Reply to `~HS` (`None`: silent, as a Zebra with its head open).
    hs: Option<Vec<u8>>,
    /// Reply to `~HQES`.
    hqes: Option<Vec<u8>>,
    /// Wait before replying.
    reply_delay: Duration,
    /// Send each reply in this many pieces, 5 ms apart.
    reply_pieces: usize,
}

/// A complete `^XA … ^XZ` label as received.
#[derive(Debug)]
struct Label {
    seq: u32,
    start: usize,
    end: usize,
}

/// Everything the emulator received and did.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    labels: Vec<Label>,
    queries: Vec<String>,
    /// Bytes that were not labels, known commands or line ends.
    garbage: Vec<String>,
    /// Each stall: (start, end, bytes received when it started).
    stalls: Vec<(Instant, Instant, usize)>,
    /// Bytes that came in while the line was held with XOFF (after what was already on
    /// its way).
    during_hold: Option<usize>,
    /// How long the hold lasted.
    held_for: Option<Duration>,
    hung_up_at: Option<Instant>,
}

struct Emulator {
    handle: JoinHandle<Received>,
    stop: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Emulator {
    fn start(master: TTYPort, script: Script) -> Emulator {
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (stop.clone(), release.clone());
        let handle = thread::spawn(move || emulate(master, script, s, r));
        Emulator {
            handle,
            stop,
            release,
        }
    }

    fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }

    /// Reads until the line has been quiet for a while, then returns what came.
    fn finish(self) -> Received {
        self.stop.store(true, Ordering::SeqCst);
        self.release.store(true, Ordering::SeqCst);
        self.handle.join().expect("emulator thread")
    }
}

const TICK: Duration = Duration::from_millis(20);
const QUIET: Duration = Duration::from_millis(250);
const COMMANDS: [&[u8]; 3] = [b"~HQES", b"~HS", b"~JX"];

fn emulate(
    mut master: TTYPort,
    script: Script,
    stop: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
) -> Received {
    master.set_timeout(TICK).expect("master timeout");
    let mut rx = Received::default();
    let mut cursor = 0;
    let mut stalled = 0;
    let mut held = false;
    let mut frozen = false;
    let mut last_data = Instant::now();
    loop {
        if read_some(&mut master, &mut rx) {
            last_data = Instant::now();
        } else if stop.load(Ordering::SeqCst) && last_data.elapsed() >= QUIET {
            parse(&mut rx, &mut cursor);
            return rx;
        }
        for query in parse(&mut rx, &mut cursor) {
            let reply = match query.as_str() {
                "~HS" => script.hs.clone(),
                _ => script.hqes.clone(),
            };
            if let Some(reply) = reply {
                thread::sleep(script.reply_delay);
                let pieces = script.reply_pieces.max(1);
                for piece in reply.chunks(reply.len().div_ceil(pieces).max(1)) {
                    master.write_all(piece).expect("reply");
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let labels = rx.labels.len();
        if script.hang_up_after.is_some_and(|k| labels >= k) {
            if script.quiesce {
                master.write_all(&[XOFF]).expect("XOFF");
                drain_quiet(&mut master, &mut rx);
                parse(&mut rx, &mut cursor);
            }
            rx.hung_up_at = Some(Instant::now());
            drop(master);
            return rx;
        }
        if let Some((k, hold)) = script.hold {
            if !held && labels >= k {
                held = true;
                master.write_all(&[XOFF]).expect("XOFF");
                drain_quiet(&mut master, &mut rx);
                let (before, start) = (rx.bytes.len(), Instant::now());
                loop {
                    read_some(&mut master, &mut rx);
                    let over = match hold {
                        Hold::For(d) => start.elapsed() >= d,
                        Hold::UntilReleased => release.load(Ordering::SeqCst),
                    };
                    if over {
                        break;
                    }
                }
                rx.during_hold = Some(rx.bytes.len() - before);
                rx.held_for = Some(start.elapsed());
                master.write_all(&[XON]).expect("XON");
            }
        }
        if !frozen && script.freeze_after.is_some_and(|k| labels >= k) {
            frozen = true;
            while !release.load(Ordering::SeqCst) {
                thread::sleep(TICK);
            }
        }
        if let Some((every, pause)) = script.stall_every {
            while labels >= stalled + every && stalled + every < script.expected_labels {
                stalled += every;
                let start = Instant::now();
                thread::sleep(pause);
                rx.stalls.push((start, Instant::now(), rx.bytes.len()));
            }
        }
    }
}

/// One read; `true` if bytes came.
fn read_some(master: &mut TTYPort, rx: &mut Received) -> bool {
    let mut buf = [0u8; 4096];
    match master.read(&mut buf) {
        Ok(n) if n > 0 => {
            rx.bytes.extend_from_slice(&buf[..n]);
            true
        }
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::TimedOut => false,
        Err(e) => panic!("emulator read: {e}"),
    }
}

/// Reads until nothing has come for `QUIET`.
fn drain_quiet(master: &mut TTYPort, rx: &mut Received) {
    let mut last = Instant::now();
    while last.elapsed() < QUIET {
        if read_some(master, rx) {
            last = Instant::now();
        }
    }
}

/// Splits what came into labels and commands; returns the status queries found.
fn parse(rx: &mut Received, cursor: &mut usize) -> Vec<String> {
    let mut queries = Vec::new();
    loop {
        let rest = &rx.bytes[*cursor..];
        if rest.is_empty() {
            break;
        }
        if rest.starts_with(b"^XA") {
            let Some(end) = find(rest, b"^XZ") else {
                break;
            };
            let label = &rest[..end + 3];
            let seq = field(label).unwrap_or_else(|| panic!("label without ^FD#: {label:?}"));
            rx.labels.push(Label {
                seq,
                start: *cursor,
                end: *cursor + label.len(),
            });
            *cursor += label.len();
        } else if let Some(command) = COMMANDS.iter().find(|c| rest.starts_with(c)) {
            if command.starts_with(b"~H") {
                queries.push(String::from_utf8_lossy(command).into_owned());
            }
            *cursor += command.len();
        } else if rest[0] == b'\n' || rest[0] == b'\r' {
            *cursor += 1;
        } else if COMMANDS
            .iter()
            .chain([&&b"^XA"[..]])
            .any(|c| c.len() > rest.len() && c.starts_with(rest))
        {
            break; // the start of a command: wait for the rest
        } else {
            rx.garbage.push(format!("{:?}", rest[0] as char));
            *cursor += 1;
        }
    }
    rx.queries.extend(queries.iter().cloned());
    queries
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number in `^FD#nnnnn^FS`.
fn field(label: &[u8]) -> Option<u32> {
    let start = find(label, b"^FD#")? + 4;
    let len = find(&label[start..], b"^FS")?;
    std::str::from_utf8(&label[start..start + len])
        .ok()?
        .parse()
        .ok()
}

/// Canned `~HQES` reply (`printer-langs.md` §1.5).
fn hqes(errors: &str, warnings: &str) -> Vec<u8> {
    format!("\x02\r\nPRINTER STATUS\r\n   ERRORS:   {errors}\r\n   WARNINGS: {warnings}\r\n\x03")
        .into_bytes()
}

/// Canned `~HS` reply: three strings.
fn hs(s1: &str, s2: &str, s3: &str) -> Vec<u8> {
    format!("\x02{s1}\x03\r\n\x02{s2}\x03\r\n\x02{s3}\x03\r\n").into_bytes()
}

fn head_open() -> Vec<u8> {
    hqes("1 00000000 00000004", "0 00000000 00000000")
}

fn seventeen_remaining() -> Vec<u8> {
    hs(
        "030,0,0,1218,001,0,0,0,000,0,0,0",
        "001,0,0,0,0,2,6,0,00000017,1,000",
        "1234,0",
    )
}

/// Asks for status and reads the reply back as a caller does: until it parses.
fn query(t: &mut SerialTransport, request: &[u8], timeout: Duration) -> Vec<u8> {
    t.write_all(request, Instant::now() + Duration::from_secs(2))
        .expect("send the query");
    let zpl = Zpl::new(&zpl_profile());
    let mut reply = Vec::new();
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let mut buf = [0u8; 512];
        let n = t
            .read_reply(&mut buf, end.saturating_duration_since(Instant::now()))
            .expect("read the reply");
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || zpl.parse_status(&reply).is_ok() {
            break;
        }
    }
    reply
}

// ---------------------------------------------------------------------------------------
// Acceptance: 200 labels, the reader stalls 2 s every 50
// ---------------------------------------------------------------------------------------

#[test]
fn two_hundred_labels_through_stalls_arrive_complete_in_order_byte_exact() {
    const LABELS: u32 = 200;
    const STALL: Duration = Duration::from_secs(2);
    let job = Job::new(LABELS);
    let pty = pty();
    let mut t = open(&pty.path, Flow::None);
    let emulator = Emulator::start(
        pty.master,
        Script {
            stall_every: Some((50, STALL)),
            expected_labels: LABELS as usize,
            ..Script::default()
        },
    );
    let start = Instant::now();
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let elapsed = start.elapsed();
    if let Some(e) = &sent.error {
        panic!("the job failed: {e}");
    }
    let rx = emulator.finish();

    let all = job.bytes();
    assert_eq!(sent.taken, all.len());
    assert!(rx.garbage.is_empty(), "garbage: {:?}", rx.garbage);
    assert_eq!(rx.bytes.len(), all.len(), "bytes received");
    assert!(rx.bytes == all, "the stream differs from the job");
    let seqs: Vec<u32> = rx.labels.iter().map(|l| l.seq).collect();
    assert_eq!(
        seqs,
        (0..LABELS).collect::<Vec<_>>(),
        "labels in order, once"
    );
    for (label, expected) in rx.labels.iter().zip(&job.labels) {
        assert!(
            rx.bytes[label.start..label.end] == expected.trim_ascii_end()[..],
            "label {} differs",
            label.seq
        );
    }

    // Three stalls, each really holding the writer back: while the reader slept, the
    // transport got at most the pty's buffer ahead and then waited.
    assert_eq!(rx.stalls.len(), 3, "stalls after labels 50, 100 and 150");
    let mut ahead_max = 0;
    for &(from, to, received) in &rx.stalls {
        let taken = sent
            .progress
            .iter()
            .filter(|(at, _)| *at < to)
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0);
        let ahead = taken.saturating_sub(received);
        ahead_max = ahead_max.max(ahead);
        assert!(
            ahead <= 64 * 1024,
            "writer ran {ahead} bytes ahead of a stalled reader"
        );
        assert!(taken < all.len(), "the writer finished during a stall");
        assert!(to - from >= STALL);
    }
    let slowest = sent
        .progress
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    assert!(
        slowest >= Duration::from_millis(1500),
        "no write waited out a stall"
    );
    assert!(elapsed >= STALL * 3, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    eprintln!(
        "serial acceptance: {LABELS} labels, {} bytes ({} per label), 3 stalls of {STALL:?}: \
         {elapsed:.2?} in all; slowest label write {slowest:.2?}; the writer ran at most \
         {ahead_max} bytes ahead of the stalled reader; chunk {} bytes",
        all.len(),
        job.labels[0].len(),
        labeld_drivers::transport::serial::chunk_bytes(&t.settings()),
    );
}

// ---------------------------------------------------------------------------------------
// XON/XOFF
// ---------------------------------------------------------------------------------------

#[test]
fn xoff_stops_the_writer_and_xon_resumes_it_with_nothing_lost() {
    let job = Job::new(40);
    let profile = zpl_profile();
    check_link(
        &settings(Flow::Software),
        &Zpl::new(&profile),
        profile.ascii_only,
    )
    .expect("ascii ZPL may go over XON/XOFF");
    let pty = pty();
    let mut t = open(&pty.path, Flow::Software);
    let hold = Duration::from_millis(1000);
    let emulator = Emulator::start(
        pty.master,
        Script {
            hold: Some((10, Hold::For(hold))),
            ..Script::default()
        },
    );
    let start = Instant::now();
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let elapsed = start.elapsed();
    assert!(sent.error.is_none(), "{:?}", sent.error);
    let rx = emulator.finish();
    assert_eq!(
        rx.during_hold,
        Some(0),
        "bytes arrived while held off by XOFF"
    );
    assert!(rx.held_for.expect("held") >= hold);
    assert!(
        elapsed >= hold,
        "the writer did not wait for XON: {elapsed:?}"
    );
    assert!(rx.bytes == job.bytes(), "the stream differs from the job");
    assert_eq!(rx.labels.len(), 40);
    assert!(rx.garbage.is_empty(), "{:?}", rx.garbage);
}

#[test]
fn xoff_longer_than_the_chunk_timeout_is_a_timeout_with_an_exact_count() {
    let job = Job::new(30);
    let pty = pty();
    let mut t = SerialTransport::new(pty.path.clone(), settings(Flow::Software))
        .with_chunk_timeout(Duration::from_millis(300));
    t.open().expect("open");
    let emulator = Emulator::start(
        pty.master,
        Script {
            hold: Some((5, Hold::UntilReleased)),
            ..Script::default()
        },
    );
    let start = Instant::now();
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let elapsed = start.elapsed();
    let err = sent.error.expect("a timeout");
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    assert!(
        err.message
            .contains("the printer took nothing for 0.3 s after")
            && err.message.contains("held off by XOFF"),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(t.is_open(), "a timeout keeps the port");
    emulator.release();
    let rx = emulator.finish();
    assert_eq!(
        rx.bytes.len(),
        sent.taken,
        "written counts exactly what left"
    );
    assert!(rx.bytes[..] == job.bytes()[..sent.taken]);
}

#[test]
fn dc1_and_dc3_are_flow_control_only_with_flow_software() {
    for (flow, expected) in [
        (Flow::Software, &b"hi"[..]),
        (Flow::None, &b"\x13\x11hi"[..]),
    ] {
        let mut pty = pty();
        let mut t = open(&pty.path, flow);
        pty.master
            .write_all(&[XOFF, XON, b'h', b'i'])
            .expect("send");
        let mut buf = [0u8; 16];
        let n = t
            .read_reply(&mut buf, Duration::from_secs(1))
            .expect("read");
        assert_eq!(&buf[..n], expected, "{flow:?}");
    }
}

#[test]
fn binary_bytes_are_refused_on_an_xon_xoff_link() {
    let mut pty = pty();
    let mut t = open(&pty.path, Flow::Software);
    let err = t
        .write_all(
            b"^XA^GFB,2,2,1,\x13\xff^XZ",
            Instant::now() + Duration::from_secs(1),
        )
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Config);
    assert_eq!(err.written, 0);
    assert!(
        err.message
            .starts_with("byte 0x13 at offset 14 would be read as XOFF (DC3) by the printer"),
        "{err}"
    );
    pty.master.set_timeout(Duration::from_millis(200)).unwrap();
    let mut buf = [0u8; 64];
    let got = pty.master.read(&mut buf);
    assert!(
        matches!(&got, Err(e) if e.kind() == ErrorKind::TimedOut),
        "something was sent: {got:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Back-pressure, deadlines
// ---------------------------------------------------------------------------------------

#[test]
fn a_reader_that_stops_hits_the_deadline_with_an_exact_count() {
    let job = Job::new(30);
    let all = job.bytes();
    let pty = pty();
    let mut t = open(&pty.path, Flow::None);
    let emulator = Emulator::start(
        pty.master,
        Script {
            freeze_after: Some(3),
            ..Script::default()
        },
    );
    let start = Instant::now();
    let err = t
        .write_all(&all, Instant::now() + Duration::from_millis(400))
        .unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    assert!(
        err.message.starts_with(&format!(
            "write deadline passed after {} of {} bytes",
            err.written,
            all.len()
        )),
        "{err}"
    );
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(err.written > 0 && err.written < all.len());
    emulator.release();
    let rx = emulator.finish();
    assert_eq!(
        rx.bytes.len(),
        err.written,
        "written counts exactly what left"
    );
    assert!(rx.bytes[..] == all[..err.written]);
}

// ---------------------------------------------------------------------------------------
// Hang-ups and reopening
// ---------------------------------------------------------------------------------------

#[test]
fn hang_up_mid_job_is_disconnected_with_the_exact_count() {
    let job = Job::new(100);
    let pty = pty();
    let mut t = open(&pty.path, Flow::Software);
    // XOFF first, then the cable goes: nothing is in flight, so the counts must agree.
    let emulator = Emulator::start(
        pty.master,
        Script {
            hang_up_after: Some(20),
            quiesce: true,
            ..Script::default()
        },
    );
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let err = sent.error.expect("the hang-up is an error");
    let rx = emulator.finish();
    let hung_up_at = rx.hung_up_at.expect("hung up");
    assert_eq!(err.kind, TransportErrorKind::Disconnected, "{err}");
    assert!(err.message.contains("the device hung up"), "{err}");
    assert_eq!(sent.taken, rx.bytes.len(), "written = received");
    assert!(rx.bytes[..] == job.bytes()[..sent.taken]);
    // The label in flight is the one the printer got only part of.
    let in_flight = job.label_at(sent.taken).expect("stopped inside a label");
    assert_eq!(
        rx.labels.len(),
        in_flight,
        "complete labels before the one in flight"
    );
    assert!(rx
        .labels
        .iter()
        .enumerate()
        .all(|(i, l)| l.seq as usize == i));
    assert!(hung_up_at.elapsed() < Duration::from_secs(5));
    // The fault closed the port; the node went with the master, as an unplugged adapter's.
    assert!(!t.is_open());
    let again = t.write_all(b"~HS", Instant::now() + Duration::from_secs(1));
    assert_eq!(again.unwrap_err().kind, TransportErrorKind::Disconnected);
    let reopen = t.open().unwrap_err();
    assert_eq!(reopen.kind, TransportErrorKind::NotFound, "{reopen}");
    drop(pty.slave);
}

#[test]
fn hang_up_without_flow_control_loses_at_most_the_kernel_buffer() {
    let job = Job::new(100);
    let pty = pty();
    let mut t = open(&pty.path, Flow::None);
    let emulator = Emulator::start(
        pty.master,
        Script {
            hang_up_after: Some(20),
            ..Script::default()
        },
    );
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let err = sent.error.expect("the hang-up is an error");
    let rx = emulator.finish();
    assert_eq!(err.kind, TransportErrorKind::Disconnected, "{err}");
    // What the printer got is a prefix of the job; what the kernel had taken beyond it
    // was lost with the line, and that is bounded by the pty's buffer.
    assert!(rx.bytes[..] == job.bytes()[..rx.bytes.len()]);
    assert!(sent.taken >= rx.bytes.len());
    let lost = sent.taken - rx.bytes.len();
    assert!(lost <= 64 * 1024, "{lost} bytes taken but never delivered");
    eprintln!(
        "serial hang-up without flow control: {} bytes written, {} received, {lost} in the \
         pty's buffer at the hang-up",
        sent.taken,
        rx.bytes.len()
    );
}

#[test]
fn a_replugged_adapter_is_found_again_by_its_link_and_the_job_resumes() {
    // /dev/serial/by-id/… is a symlink that udev points at the adapter's current node.
    let dir = std::env::temp_dir().join(format!("labeld-serial-by-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let link = dir.join("usb-Zebra_ZD421-if00-port0");
    let _ = std::fs::remove_file(&link);

    let job = Job::new(30);
    let first = pty();
    std::os::unix::fs::symlink(&first.path, &link).expect("symlink");
    let mut t = open(&link, Flow::Software);
    assert_eq!(
        t.device_info().expect("info").location.as_deref(),
        first.path.to_str()
    );
    let emulator = Emulator::start(
        first.master,
        Script {
            hang_up_after: Some(10),
            quiesce: true,
            ..Script::default()
        },
    );
    let sent = send(&mut t, &job, 0, Duration::from_secs(10));
    let err = sent.error.expect("unplugged");
    assert_eq!(err.kind, TransportErrorKind::Disconnected, "{err}");
    let before = emulator.finish();
    assert_eq!(before.bytes.len(), sent.taken);
    let in_flight = job.label_at(sent.taken).expect("inside a label");

    // While the adapter is away the link dangles.
    let away = t.open().unwrap_err();
    assert_eq!(away.kind, TransportErrorKind::NotFound, "{away}");
    assert_eq!(
        t.device_info().unwrap_err().kind,
        TransportErrorKind::NotFound
    );

    // It comes back on another node; udev moves the link.
    let second = pty();
    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink(&second.path, &link).expect("symlink");
    t.open().expect("reopen through the link");
    assert_eq!(
        t.device_info().expect("info").location.as_deref(),
        second.path.to_str()
    );
    let emulator = Emulator::start(second.master, Script::default());
    // `~JX` drops the partial label on the printer; resend from the one in flight.
    let rest = send(&mut t, &job, in_flight, Duration::from_secs(10));
    assert!(rest.error.is_none(), "{:?}", rest.error);
    let after = emulator.finish();

    let mut seqs: Vec<u32> = before.labels.iter().map(|l| l.seq).collect();
    seqs.extend(after.labels.iter().map(|l| l.seq));
    assert_eq!(
        seqs,
        (0..30).collect::<Vec<_>>(),
        "every label exactly once"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop((first.slave, second.slave));
}

// ---------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------

#[test]
fn status_replies_are_read_back_and_parsed() {
    let pty = pty();
    let mut t = open(&pty.path, Flow::Software);
    let emulator = Emulator::start(
        pty.master,
        Script {
            hqes: Some(head_open()),
            hs: Some(seventeen_remaining()),
            reply_pieces: 3,
            ..Script::default()
        },
    );
    let zpl = Zpl::new(&zpl_profile());

    let reply = query(
        &mut t,
        zpl.query_status().expect("~HQES"),
        Duration::from_secs(2),
    );
    assert_eq!(reply, head_open());
    let status = zpl.parse_status(&reply).expect("parse ~HQES");
    assert_eq!(
        status.conditions.iter().collect::<Vec<_>>(),
        [Condition::HeadOpen]
    );
    assert_eq!(status.detail, "errors: head open");

    let reply = query(&mut t, Zpl::host_status_query(), Duration::from_secs(2));
    let status = zpl.parse_status(&reply).expect("parse ~HS");
    assert!(status.conditions.is_empty(), "{:?}", status.conditions);
    assert_eq!(status.labels_remaining, Some(17));
    assert_eq!(status.busy, Some(true));

    let rx = emulator.finish();
    assert_eq!(rx.queries, ["~HQES", "~HS"]);
}

#[test]
fn a_silent_printer_reads_as_ok_0() {
    let pty = pty();
    let mut t = open(&pty.path, Flow::None);
    // A Zebra with its head open does not answer ~HS.
    let emulator = Emulator::start(pty.master, Script::default());
    t.write_all(
        Zpl::host_status_query(),
        Instant::now() + Duration::from_secs(1),
    )
    .expect("send ~HS");
    let mut buf = [0u8; 256];
    let start = Instant::now();
    let n = t
        .read_reply(&mut buf, Duration::from_millis(300))
        .expect("silence is not an error");
    assert_eq!(n, 0);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(emulator.finish().queries, ["~HS"]);
}

#[test]
fn a_late_reply_is_dropped_before_the_next_query() {
    let pty = pty();
    let mut t = open(&pty.path, Flow::None);
    let emulator = Emulator::start(
        pty.master,
        Script {
            hqes: Some(head_open()),
            hs: Some(seventeen_remaining()),
            reply_delay: Duration::from_millis(300),
            ..Script::default()
        },
    );
    t.write_all(b"~HS", Instant::now() + Duration::from_secs(1))
        .expect("send ~HS");
    let mut buf = [0u8; 512];
    assert_eq!(
        t.read_reply(&mut buf, Duration::from_millis(50))
            .expect("read"),
        0
    );
    thread::sleep(Duration::from_millis(600)); // the ~HS reply arrives, unasked for
    let reply = query(&mut t, b"~HQES", Duration::from_secs(3));
    assert_eq!(reply, head_open(), "the reply answers the latest query");
    emulator.finish();
}

// ---------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------

#[test]
fn settings_reach_the_kernel() {
    // (settings, stop bits and flow control as the tty holds them)
    let cases = [
        // 0: 19200 7E2, XON/XOFF (IXON | IXOFF).
        (
            SerialSettings {
                baud: 19_200,
                data_bits: 7,
                parity: Parity::Even,
                stop_bits: 2,
                flow: Flow::Software,
            },
            serialport::StopBits::Two,
            serialport::FlowControl::Software,
        ),
        // 1: 9600 8O1, RTS/CTS (CRTSCTS is stored, though a pty never acts on it).
        (
            SerialSettings {
                baud: 9600,
                data_bits: 8,
                parity: Parity::Odd,
                stop_bits: 1,
                flow: Flow::Hardware,
            },
            serialport::StopBits::One,
            serialport::FlowControl::Hardware,
        ),
        // 2: the default 9600 8N1, no flow control.
        (
            SerialSettings::default(),
            serialport::StopBits::One,
            serialport::FlowControl::None,
        ),
    ];
    for (i, (s, stop, flow)) in cases.into_iter().enumerate() {
        let pty = pty();
        let mut t = SerialTransport::new(pty.path.clone(), s);
        t.open().unwrap_or_else(|e| panic!("case {i}: {e}"));
        // termios belongs to the tty: the pair's own slave descriptor sees our settings.
        assert_eq!(pty.slave.stop_bits().unwrap(), stop, "case {i}");
        assert_eq!(pty.slave.flow_control().unwrap(), flow, "case {i}");
        assert_eq!(pty.slave.baud_rate().unwrap(), s.baud, "case {i}");
        // Linux `pty_set_termios` forces CS8 and clears PARENB on every pty: 7 data bits
        // and parity cannot be checked here.
        assert_eq!(
            pty.slave.data_bits().unwrap(),
            serialport::DataBits::Eight,
            "case {i}"
        );
        assert_eq!(
            pty.slave.parity().unwrap(),
            serialport::Parity::None,
            "case {i}"
        );
    }
}

#[test]
fn open_errors_say_what_is_wrong() {
    // A node that is not there.
    let mut t = SerialTransport::new("/dev/ttyUSB-labeld-none".into(), settings(Flow::None));
    let err = t.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::NotFound, "{err}");

    // A file that is not a tty.
    let file = std::env::temp_dir().join(format!("labeld-serial-file-{}", std::process::id()));
    std::fs::write(&file, b"").expect("temp file");
    let mut t = SerialTransport::new(file.clone(), settings(Flow::None));
    let err = t.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Config, "{err}");
    assert!(err.message.ends_with("is not a serial device (expected a tty such as /dev/ttyUSB0 or a /dev/serial/by-id/… link)"), "{err}");
    let _ = std::fs::remove_file(&file);

    // Exclusive: a second opener is told the port is in use.
    let pty = pty();
    let _first = open(&pty.path, Flow::None);
    let mut second = SerialTransport::new(pty.path.clone(), settings(Flow::None));
    let err = second.open().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
    assert!(
        err.message.contains("another program has the port open"),
        "{err}"
    );

    // Not open yet.
    let mut t = SerialTransport::new(pty.path.clone(), settings(Flow::None));
    let err = t
        .write_all(b"~HS", Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Disconnected, "{err}");
    assert_eq!(
        t.read_reply(&mut [0u8; 8], Duration::ZERO)
            .unwrap_err()
            .kind,
        TransportErrorKind::Disconnected
    );
}
