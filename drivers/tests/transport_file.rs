//! The file transport: file mode (truncate on the first open, append on a reopen),
//! directory mode (a new numbered file per open, never overwriting), silent replies,
//! classified errors, and `send_labels` writing through it.

use labeld_drivers::transport::file::FileTransport;
use labeld_drivers::transport::send::{send_labels, Job, Outcome, RetryPolicy};
use labeld_drivers::transport::{self, PrinterUri, Transport, TransportErrorKind};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "labeld-transport-file-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn file_mode_truncates_on_open_and_appends_writes() {
    let dir = TempDir::new("file");
    let path = dir.path().join("out.zpl");
    fs::write(&path, b"old contents that must go").unwrap();
    let uri = PrinterUri::parse(&format!("file://{}", path.display())).unwrap();
    let mut t = transport::open(&uri).unwrap();
    assert_eq!(t.describe(), format!("file://{}", path.display()));
    t.open().unwrap();
    t.write_all(b"~JX", later()).unwrap();
    t.write_all(b"^XA^XZ", later()).unwrap();
    assert_eq!(
        t.device_info().unwrap().location,
        Some(path.display().to_string())
    );
    t.close();
    t.close(); // idempotent
    assert_eq!(fs::read(&path).unwrap(), b"~JX^XA^XZ");
}

#[test]
fn a_reopen_appends_so_a_resumed_job_is_whole() {
    let dir = TempDir::new("reopen");
    let path = dir.path().join("out.zpl");
    let mut t = FileTransport::new(path.clone());
    t.open().unwrap();
    t.write_all(b"first", later()).unwrap();
    t.open().unwrap(); // reopen after a fault
    t.write_all(b"second", later()).unwrap();
    t.close();
    assert_eq!(fs::read(&path).unwrap(), b"firstsecond");
    // A new transport for the same address starts the file afresh.
    let mut t = FileTransport::new(path.clone());
    t.open().unwrap();
    t.write_all(b"third", later()).unwrap();
    t.sync().unwrap();
    t.close();
    assert_eq!(fs::read(&path).unwrap(), b"third");
}

#[test]
fn directory_mode_writes_one_new_file_per_open() {
    let dir = TempDir::new("dir");
    let uri = PrinterUri::parse(&format!("file://{}/", dir.path().display())).unwrap();
    let mut t = transport::open(&uri).unwrap();
    for job in ["one", "two", "three"] {
        t.open().unwrap();
        t.write_all(job.as_bytes(), later()).unwrap();
        t.close();
    }
    assert_eq!(
        names(dir.path()),
        ["job-000001.prn", "job-000002.prn", "job-000003.prn"]
    );
    assert_eq!(fs::read(dir.path().join("job-000002.prn")).unwrap(), b"two");
}

#[test]
fn directory_mode_never_overwrites() {
    let dir = TempDir::new("nooverwrite");
    // Files already there: a gap, a higher number, and unrelated names.
    fs::write(dir.path().join("job-000002.prn"), b"keep 2").unwrap();
    fs::write(dir.path().join("job-000041.zpl"), b"keep 41").unwrap();
    fs::write(dir.path().join("notes.txt"), b"keep notes").unwrap();
    let mut t = FileTransport::new(dir.path().to_path_buf()).with_extension("zpl");
    t.open().unwrap();
    t.write_all(b"new", later()).unwrap();
    let made = t.current_path().unwrap().to_path_buf();
    t.close();
    assert_eq!(made, dir.path().join("job-000042.zpl"));
    assert_eq!(fs::read(&made).unwrap(), b"new");
    assert_eq!(
        fs::read(dir.path().join("job-000002.prn")).unwrap(),
        b"keep 2"
    );
    assert_eq!(
        fs::read(dir.path().join("job-000041.zpl")).unwrap(),
        b"keep 41"
    );
    assert_eq!(
        fs::read(dir.path().join("notes.txt")).unwrap(),
        b"keep notes"
    );

    // Two transports on one directory, interleaved: distinct files.
    let mut a = FileTransport::new(dir.path().to_path_buf());
    let mut b = FileTransport::new(dir.path().to_path_buf());
    a.open().unwrap();
    b.open().unwrap();
    a.write_all(b"a", later()).unwrap();
    b.write_all(b"b", later()).unwrap();
    assert_ne!(a.current_path(), b.current_path());
    a.close();
    b.close();
    assert_eq!(fs::read(dir.path().join("job-000043.prn")).unwrap(), b"a");
    assert_eq!(fs::read(dir.path().join("job-000044.prn")).unwrap(), b"b");
}

#[test]
fn a_file_is_silent() {
    let dir = TempDir::new("silent");
    let mut t = FileTransport::new(dir.path().join("out.zpl"));
    let mut buf = [0u8; 64];
    // Not open: an error, like any closed link.
    let e = t.read_reply(&mut buf, Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::Disconnected);
    t.open().unwrap();
    t.write_all(b"~HQES", later()).unwrap();
    // Open: silence at once, not after the timeout.
    let started = Instant::now();
    assert_eq!(t.read_reply(&mut buf, Duration::from_secs(5)).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn errors_are_classified() {
    let dir = TempDir::new("errors");
    // 0: the parent directory is missing.
    let mut t = FileTransport::new(dir.path().join("missing/out.zpl"));
    let e = t.open().unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NotFound, "{e}");
    // 1: a trailing slash names a directory that is not there.
    let mut t = FileTransport::new(PathBuf::from(format!("{}/spool/", dir.path().display())));
    let e = t.open().unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NotFound, "{e}");
    assert!(e.message.contains("no such directory"), "{e}");
    // 2: writing before opening.
    let mut t = FileTransport::new(dir.path().join("out.zpl"));
    let e = t.write_all(b"x", later()).unwrap_err();
    assert_eq!((e.kind, e.written), (TransportErrorKind::Disconnected, 0));
    // 3: a deadline already past.
    t.open().unwrap();
    let e = t.write_all(b"x", Instant::now()).unwrap_err();
    assert_eq!((e.kind, e.written), (TransportErrorKind::Timeout, 0));
    // 4: a full device (Linux: /dev/full fails every write with ENOSPC).
    if Path::new("/dev/full").exists() {
        let mut t = FileTransport::new(PathBuf::from("/dev/full"));
        t.open().unwrap();
        let e = t.write_all(&[0; 100], later()).unwrap_err();
        assert_eq!((e.kind, e.written), (TransportErrorKind::Io, 0), "{e}");
        assert!(e.message.ends_with("(the disk is full)"), "{e}");
    }
}

#[test]
fn no_write_permission_is_permission_denied() {
    let dir = TempDir::new("perm");
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    let mut t = FileTransport::new(locked.clone());
    let result = t.open();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
    let result = match result {
        // Root ignores directory permissions, but sysfs refuses even root a write open
        // of a read-only attribute.
        Ok(()) if Path::new("/sys/kernel/notes").exists() => {
            FileTransport::new(PathBuf::from("/sys/kernel/notes")).open()
        }
        err => err,
    };
    match result {
        Ok(()) => eprintln!("no file refuses this user: permission check skipped"),
        Err(e) => {
            assert_eq!(e.kind, TransportErrorKind::PermissionDenied, "{e}");
            assert!(!e.is_retriable());
        }
    }
}

#[test]
fn send_labels_through_a_file_gives_the_job_bytes() {
    let dir = TempDir::new("send");
    let path = dir.path().join("job.zpl");
    let labels: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("^XA^FD#{i:05}^FS^XZ\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
    let job = Job {
        preamble: b"~JX",
        labels: &refs,
        trailer: b"",
    };
    let mut t = FileTransport::new(path.clone());
    t.open().unwrap();
    let report = send_labels(&mut t, &job, 0, &RetryPolicy::default());
    t.close();
    assert_eq!((report.outcome, report.next), (Outcome::Complete, 20));
    assert!(report.faults.is_empty());
    let mut expected = b"~JX".to_vec();
    labels.iter().for_each(|l| expected.extend_from_slice(l));
    assert_eq!(fs::read(&path).unwrap(), expected);
}
