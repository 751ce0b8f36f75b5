//! One printer's link as a worker uses it: a transport kept open between units, the
//! status query of the printer's language, and the ZPL label counter.
//!
//! Three kinds of link:
//!
//! - a **directory** (`file:///dir/`): every unit is its own file, opened, written,
//!   `fsync`ed and closed (the preview printer's one PNG per label). Files are named by
//!   the file transport (`job-NNNNNN.<ext>`), the extension by the language.
//! - a **file** (`file:///path/out.zpl`): one file, opened once (truncated on the
//!   worker's first open, appended to after), `fsync`ed after every batch.
//! - a **device** (TCP, serial, usblp, USB): opened on first use and kept open; every
//!   failed operation aborts the connection (so no stale bytes follow a reconnect) and
//!   the next use reopens it.
//!
//! Every blocking call marks the worker busy until its deadline, so the health check
//! does not mistake a slow printer for a stuck thread.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labeld_drivers::lang::zpl::{self, Zpl};
use labeld_drivers::transport::file::FileTransport;
use labeld_drivers::transport::{self, PrinterUri, Transport, TransportError, TransportErrorKind};
use labeld_drivers::{DeviceStatus, Driver, Language, StatusParseError};

use super::Heart;

/// Threads that `fsync` a directory printer's batch.
const SYNC_THREADS: usize = 16;

/// Directory printers' file names: the file transport's (`job-000001.zpl`, …).
const FILE_PREFIX: &str = "job-";

/// Taken names to skip before giving up on a directory.
const CREATE_ATTEMPTS: u32 = 1000;

/// How the link is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// One file per unit in a directory.
    Directory,
    /// One file, appended to.
    File,
    /// A printer on a bidirectional link.
    Device,
}

/// What a status query brought back.
#[derive(Debug)]
pub(super) enum Reply {
    /// A reply the driver understood.
    Status(DeviceStatus),
    /// Nothing within the timeout.
    Silent,
    /// A reply the driver could not read (the printer said *something*).
    Garbled(String),
    /// The language has no status query, or the link cannot carry a reply.
    NoQuery,
}

/// Whether the printer answers the label-counter query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    /// Not asked on this connection yet.
    Unknown,
    /// It answered.
    Yes,
    /// It did not answer on this connection (asked again after a reconnect).
    No,
    /// It answered that it has none (`"?"`: older firmware); not asked again.
    Never,
}

/// A printer's link (see the module docs).
pub(super) struct Device {
    kind: Kind,
    /// The directory and the file extension, for [`Kind::Directory`] (the directory is
    /// created when missing).
    directory: Option<(PathBuf, &'static str)>,
    transport: Box<dyn Transport>,
    open: bool,
    /// The language's status query.
    status_query: Option<&'static [u8]>,
    /// Whether the label counter can be asked for at all (ZPL on a device link).
    counter_possible: bool,
    counter: Counter,
    /// A query timed out: its reply may still arrive and must be drained first.
    dirty: bool,
    /// When the link was last used.
    last_use: Instant,
    /// The next file number for a directory printer, once the directory was listed.
    next_number: Option<u64>,
    heart: Arc<Heart>,
}

impl Device {
    /// The link for `uri`; nothing is opened yet.
    pub(super) fn new(
        uri: &PrinterUri,
        driver: &dyn Driver,
        heart: Arc<Heart>,
    ) -> Result<Device, TransportError> {
        let language = driver.language();
        type Link = (Kind, Option<(PathBuf, &'static str)>, Box<dyn Transport>);
        let (kind, directory, transport): Link = match uri {
            PrinterUri::File { path } => {
                let names_dir = path.as_os_str().to_string_lossy().ends_with('/');
                if names_dir || path.is_dir() {
                    let ext = extension(language);
                    let t = FileTransport::new(path.clone()).with_extension(ext);
                    (Kind::Directory, Some((path.clone(), ext)), Box::new(t))
                } else {
                    (Kind::File, None, Box::new(FileTransport::new(path.clone())))
                }
            }
            other => (Kind::Device, None, transport::open(other)?),
        };
        let status_query = match kind {
            Kind::Device => driver.query_status(),
            _ => None,
        };
        Ok(Device {
            kind,
            directory,
            transport,
            open: false,
            status_query,
            counter_possible: kind == Kind::Device && language == Language::Zpl,
            counter: Counter::Unknown,
            dirty: false,
            last_use: Instant::now(),
            next_number: None,
            heart,
        })
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the printer answers status queries on this link.
    pub(super) fn has_status(&self) -> bool {
        self.status_query.is_some()
    }

    /// Whether the label counter may be readable (ZPL on a device link, not known to
    /// be missing).
    pub(super) fn may_have_counter(&self) -> bool {
        self.counter_possible && !matches!(self.counter, Counter::No | Counter::Never)
    }

    /// Opens the link if it is not open. A directory is created when missing and
    /// checked; nothing is opened for it until a unit is written.
    pub(super) fn ensure_open(&mut self, timeout: Duration) -> Result<(), TransportError> {
        if self.open {
            return Ok(());
        }
        match self.kind {
            Kind::Directory => {
                let dir = self
                    .directory
                    .as_ref()
                    .map(|(d, _)| d.clone())
                    .unwrap_or_default();
                if !dir.is_dir() {
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        TransportError::io(self.transport.describe(), "create the directory", e)
                    })?;
                }
                self.open = true;
                Ok(())
            }
            Kind::File | Kind::Device => {
                self.heart.busy_for(timeout);
                let result = self.transport.open();
                self.heart.idle();
                result?;
                self.open = true;
                self.forget_counter();
                self.dirty = false;
                self.last_use = Instant::now();
                Ok(())
            }
        }
    }

    /// Writes one unit's bytes before `deadline`. A directory gets a new file, written,
    /// synced and closed.
    pub(super) fn write_unit(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), TransportError> {
        if self.kind == Kind::Directory {
            return match self.write_files(&[bytes], deadline) {
                (_, Some(e)) => Err(e),
                (_, None) => Ok(()),
            };
        }
        self.heart.busy_until(deadline);
        let mut result = Ok(());
        if !self.open {
            result = self.transport.open();
            self.open = result.is_ok();
        }
        let result = result.and_then(|()| self.transport.write_all(bytes, deadline));
        self.heart.idle();
        self.last_use = Instant::now();
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// A directory printer's batch: one new file per unit, created and written in
    /// order (so the files' numbers follow the print order), then all `fsync`ed at once
    /// from a few threads, so the file system commits them together (one `fsync` after
    /// another costs 5 ms or more each on a VM disk; in parallel they share commits),
    /// and the directory `fsync`ed once for the whole batch (its new entries). That is
    /// one `fsync` per file plus one per batch: every other disk flush waits behind
    /// these (the spool's commits share the disk), so none is spent twice.
    /// Returns how many units are written and on disk, and the error that stopped the
    /// rest.
    pub(super) fn write_files(
        &mut self,
        units: &[&[u8]],
        deadline: Instant,
    ) -> (usize, Option<TransportError>) {
        let Some((dir, ext)) = self.directory.clone() else {
            return (0, None);
        };
        let device = format!("file://{}", dir.display());
        self.heart.busy_until(deadline);
        let mut files: Vec<(PathBuf, std::fs::File)> = Vec::with_capacity(units.len());
        let mut trouble = None;
        for bytes in units {
            let (path, mut file) = match self.next_file(&dir, ext) {
                Ok(created) => created,
                Err(e) => {
                    trouble = Some(e);
                    break;
                }
            };
            if let Err(e) = file.write_all(bytes) {
                // A partial file may stay behind, numbered before the retry's.
                trouble = Some(TransportError::io(
                    device.clone(),
                    &format!("write {}", path.display()),
                    e,
                ));
                break;
            }
            files.push((path, file));
        }
        // Sync in parallel; a unit counts as written only if it and every unit before it
        // synced, and the directory after them.
        let threads = files.len().clamp(1, SYNC_THREADS);
        let per = files.len().div_ceil(threads).max(1);
        let results: Vec<Result<(), TransportError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(per)
                .map(|chunk| {
                    let device = &device;
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|(path, file)| {
                                file.sync_all().map_err(|e| {
                                    TransportError::io(
                                        device.clone(),
                                        &format!("sync {} to disk", path.display()),
                                        e,
                                    )
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(TransportError::new(
                            TransportErrorKind::Io,
                            device.clone(),
                            "a sync thread panicked",
                        ))]
                    })
                })
                .collect()
        });
        drop(files);
        let mut done = 0;
        for result in results {
            match result {
                Ok(()) => done += 1,
                Err(e) => {
                    trouble = Some(e);
                    break;
                }
            }
        }
        if done > 0 {
            // The new names are durable only with their directory.
            let synced = std::fs::File::open(&dir).and_then(|d| d.sync_all());
            if let Err(e) = synced {
                done = 0;
                trouble = Some(TransportError::io(device, "sync the directory to disk", e));
            }
        }
        self.heart.idle();
        self.last_use = Instant::now();
        (done, trouble)
    }

    /// `fsync` of the file being written (file kinds only).
    pub(super) fn sync(&mut self) -> Result<(), TransportError> {
        if self.kind != Kind::File || !self.open {
            return Ok(());
        }
        let result = self.sync_file();
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn sync_file(&mut self) -> Result<(), TransportError> {
        // The transport behind a file URI is always a FileTransport; syncing through
        // `close` would hide the error, so sync by path instead.
        let info = self.transport.device_info()?;
        let Some(path) = info.location else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| TransportError::io(self.transport.describe(), "sync to disk", e))
    }

    /// A new, empty file `job-NNNNNN.<ext>` in `dir`, numbered one above the last: the
    /// file transport's directory naming, created the same way (`O_EXCL`, so nothing
    /// is ever overwritten, not even a file another writer made a moment ago), but with
    /// the directory listed once per worker instead of on every file (listing it per
    /// file costs O(files) each: 10,000 labels took minutes).
    fn next_file(
        &mut self,
        dir: &Path,
        ext: &str,
    ) -> Result<(PathBuf, std::fs::File), TransportError> {
        let device = || format!("file://{}", dir.display());
        let mut number = match self.next_number {
            Some(n) => n,
            None => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| TransportError::io(device(), "list the directory", e))?;
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| sequence_of(&e.file_name().to_string_lossy()))
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1)
            }
        };
        for _ in 0..CREATE_ATTEMPTS {
            let path = dir.join(format!("{FILE_PREFIX}{number:06}.{ext}"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    self.next_number = Some(number.saturating_add(1));
                    return Ok((path, file));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    number = number.saturating_add(1);
                }
                Err(e) => {
                    self.next_number = None;
                    return Err(TransportError::io(
                        device(),
                        &format!("create {}", path.display()),
                        e,
                    ));
                }
            }
        }
        self.next_number = None;
        Err(TransportError::new(
            TransportErrorKind::Io,
            device(),
            format!("no free file name after {CREATE_ATTEMPTS} attempts (is another process writing here?)"),
        ))
    }

    /// Asks the printer for its status and reads the reply.
    pub(super) fn status(
        &mut self,
        driver: &dyn Driver,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let Some(query) = self.status_query else {
            return Ok(Reply::NoQuery);
        };
        let reply = self.query(query, timeout, |r| {
            !matches!(driver.parse_status(r), Err(StatusParseError::Short { .. }))
        })?;
        Ok(match reply {
            None => Reply::Silent,
            Some(bytes) => match driver.parse_status(&bytes) {
                Ok(status) => Reply::Status(status),
                Err(e) => Reply::Garbled(e.to_string()),
            },
        })
    }

    /// ZPL `~HS`: whether the printer is still busy with labels it has received
    /// (formats in its buffer, labels remaining). `None` when it does not say (silent
    /// in an error state, another language, a file).
    pub(super) fn busy(
        &mut self,
        driver: &dyn Driver,
        timeout: Duration,
    ) -> Result<Option<bool>, TransportError> {
        if !self.counter_possible {
            return Ok(None);
        }
        let reply = self.query(Zpl::host_status_query(), timeout, |r| {
            !matches!(driver.parse_status(r), Err(StatusParseError::Short { .. }))
        })?;
        Ok(reply
            .and_then(|bytes| driver.parse_status(&bytes).ok())
            .and_then(|s| s.busy))
    }

    /// The printer's lifetime label counter (ZPL SGD `odometer.total_label_count`), or
    /// `None` when it has none: asked once per connection, then remembered.
    pub(super) fn counter(&mut self, timeout: Duration) -> Result<Option<u64>, TransportError> {
        if !self.may_have_counter() {
            return Ok(None);
        }
        let reply = self.query(Zpl::odometer_query(), timeout, |r| {
            !matches!(zpl::parse_odometer(r), Err(StatusParseError::Short { .. }))
        })?;
        match reply.map(|bytes| zpl::parse_odometer(&bytes)) {
            Some(Ok(count)) => {
                self.counter = Counter::Yes;
                Ok(Some(count))
            }
            Some(Err(e)) => {
                tracing::info!(device = %self.transport.describe(), reason = %e, "no label counter; labels in flight at a fault or crash will be printed again");
                self.counter = Counter::Never;
                Ok(None)
            }
            None => {
                if self.counter == Counter::Unknown {
                    tracing::info!(device = %self.transport.describe(), "no reply to the label counter query; labels in flight at a fault will be printed again");
                }
                self.counter = Counter::No;
                Ok(None)
            }
        }
    }

    /// Sends `query` and reads until `complete` says the reply is whole or `timeout`
    /// passes. `None`: not a byte came back.
    fn query(
        &mut self,
        query: &[u8],
        timeout: Duration,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let deadline = Instant::now() + timeout;
        self.heart.busy_until(deadline + timeout);
        let result = self.query_inner(query, deadline, complete);
        self.heart.idle();
        self.last_use = Instant::now();
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn query_inner(
        &mut self,
        query: &[u8],
        deadline: Instant,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        if !self.open {
            self.transport.open()?;
            self.open = true;
            self.forget_counter();
            self.dirty = false;
        }
        let mut buf = [0u8; 1024];
        if self.dirty {
            // A late reply to an earlier query would be read as this one's.
            while self
                .transport
                .read_reply(&mut buf, Duration::from_millis(20))?
                > 0
            {}
            self.dirty = false;
        }
        self.transport.write_all(query, deadline)?;
        let mut reply = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let n = self.transport.read_reply(&mut buf, left)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n.min(buf.len())]);
            if complete(&reply) || reply.len() > 64 * 1024 {
                return Ok(Some(reply));
            }
        }
        self.dirty = true;
        Ok((!reply.is_empty()).then_some(reply))
    }

    /// A new connection: ask for the counter again, unless the printer said it has none.
    fn forget_counter(&mut self) {
        if self.counter != Counter::Never {
            self.counter = Counter::Unknown;
        }
    }

    /// Closes the link when it has been idle for `after`.
    pub(super) fn close_if_idle(&mut self, after: Duration) {
        if self.open && self.kind != Kind::Directory && self.last_use.elapsed() >= after {
            self.close();
        }
    }

    /// Closes the link (a file is synced by the transport).
    pub(super) fn close(&mut self) {
        if self.open {
            self.transport.close();
            self.open = false;
        }
    }

    /// After an error: drop the connection so the next use reopens it.
    fn fail(&mut self) {
        self.transport.abort();
        self.open = false;
        self.dirty = false;
    }

    /// The address, for messages.
    pub(super) fn describe(&self) -> String {
        self.transport.describe()
    }
}

/// The number in a directory printer's file name (`job-000042.zpl` → 42).
fn sequence_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(FILE_PREFIX)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The file extension for directory printers of `language`.
fn extension(language: Language) -> &'static str {
    match language {
        Language::Zpl => "zpl",
        Language::Epl2 => "epl",
        Language::Pcl => "pcl",
        Language::Png => "png",
        Language::Pdf => "pdf",
        Language::BrotherQl | Language::Dymo => "bin",
    }
}

/// A transport error as printer state: which condition, and whether retrying can help.
pub(super) fn error_state(e: &TransportError) -> (crate::events::PrinterState, String) {
    use crate::events::PrinterState;
    let state = match e.kind {
        TransportErrorKind::PermissionDenied | TransportErrorKind::Config => PrinterState::Fault,
        _ => PrinterState::Offline,
    };
    (state, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_file_numbers() {
        assert_eq!(sequence_of("job-000042.zpl"), Some(42));
        assert_eq!(sequence_of("job-1234567.png"), Some(1_234_567));
        assert_eq!(sequence_of("job-000007"), Some(7));
        assert_eq!(sequence_of("other-000001.zpl"), None);
        assert_eq!(sequence_of("job-.zpl"), None);
    }

    #[test]
    fn a_directory_printer_numbers_its_files_after_the_ones_there() {
        let dir = std::env::temp_dir().join(format!("labeld-device-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("job-000041.zpl"), b"old").expect("old file");
        let profile = labeld_drivers::models::find("zpl-203")
            .expect("model")
            .profile();
        let driver = labeld_drivers::lang::driver(&profile);
        let uri = PrinterUri::File {
            path: PathBuf::from(format!("{}/", dir.display())),
        };
        let mut device =
            Device::new(&uri, driver.as_ref(), Arc::new(Heart::new())).expect("device");
        assert_eq!(device.kind(), Kind::Directory);
        device.ensure_open(Duration::from_secs(1)).expect("open");
        let deadline = Instant::now() + Duration::from_secs(5);
        let (done, error) = device.write_files(&[b"^XA^XZ"], deadline);
        assert_eq!((done, error.map(|e| e.to_string())), (1, None));
        assert_eq!(
            std::fs::read(dir.join("job-000042.zpl")).expect("42"),
            b"^XA^XZ"
        );
        // Someone else takes 43 meanwhile: it is skipped, not overwritten.
        std::fs::write(dir.join("job-000043.zpl"), b"theirs").expect("their file");
        let (done, error) = device.write_files(&[b"^XA^FDa^XZ", b"^XA^FDb^XZ"], deadline);
        assert_eq!((done, error.map(|e| e.to_string())), (2, None));
        assert_eq!(
            std::fs::read(dir.join("job-000043.zpl")).expect("43"),
            b"theirs"
        );
        assert_eq!(
            std::fs::read(dir.join("job-000044.zpl")).expect("44"),
            b"^XA^FDa^XZ"
        );
        assert_eq!(
            std::fs::read(dir.join("job-000045.zpl")).expect("45"),
            b"^XA^FDb^XZ"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
