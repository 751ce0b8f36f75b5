//! Files and directories: previews, tests, print-to-file, and the reference transport
//! for everything above the link. Address: `file:///path/out.zpl` or `file:///dir/`.
//!
//! **File mode** (the path is not a directory): the first [`Transport::open`] creates
//! or truncates the file and writes append to it. A *reopen* after a fault appends
//! instead of truncating, so a job resumed by [`send`](super::send) (which writes the
//! preamble again and resends the label in flight) is not cut in two.
//!
//! **Directory mode** (the path is an existing directory; a path ending in `/` that is
//! not one is [`TransportErrorKind::NotFound`]): every `open` creates a new file
//! `job-NNNNNN.prn` (the extension can be changed), numbered one above the highest
//! `job-` number already there. Files are created with `O_EXCL`
//! ([`OpenOptions::create_new`]), so an existing file is never overwritten, not even
//! one a concurrent writer created a moment ago: the next number is tried instead.
//!
//! **Replies.** A file never answers: [`Transport::read_reply`] returns `Ok(0)` at once
//! (a preview must not wait out status timeouts). Callers treat that as they treat a
//! silent printer: status unknown, never "ready".
//!
//! **Durability.** [`Transport::close`] calls `fsync` on the file and on its directory
//! (so a new entry survives a power cut). The trait's `close` cannot report an error;
//! [`FileTransport::sync`] does.
//!
//! **Errors.** Opening a path whose directory is missing is
//! [`TransportErrorKind::NotFound`]; no write access is
//! [`TransportErrorKind::PermissionDenied`]; a full disk (`ENOSPC`) is
//! [`TransportErrorKind::Io`], with the bytes written. Disk writes block in the kernel,
//! so the deadline is checked between chunks of 64 KiB.

use super::{DeviceInfo, Transport, TransportError, TransportErrorKind};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest single write; the deadline is checked between chunks.
const CHUNK: usize = 64 * 1024;

/// Name prefix of the files made in directory mode.
const PREFIX: &str = "job-";

/// How many taken names to skip before giving up on a directory.
const CREATE_ATTEMPTS: u32 = 1000;

/// A file or a directory of job files (see the module docs).
pub struct FileTransport {
    /// The path as addressed.
    path: PathBuf,
    /// Extension of the files made in directory mode, without the dot.
    extension: String,
    /// The file being written, while open.
    file: Option<File>,
    /// The path of the file being (or last) written.
    current: Option<PathBuf>,
    /// Whether file mode has opened (and truncated) the file already.
    truncated: bool,
}

impl FileTransport {
    /// A transport writing to `path` (a file, or an existing directory); not yet open.
    pub fn new(path: PathBuf) -> Self {
        FileTransport {
            path,
            extension: "prn".to_owned(),
            file: None,
            current: None,
            truncated: false,
        }
    }

    /// The extension for files made in directory mode (`zpl`, `bin`, …; no dot).
    pub fn with_extension(mut self, extension: &str) -> Self {
        self.extension = extension.trim_start_matches('.').to_owned();
        self
    }

    /// The file being written, or the last one written.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_deref()
    }

    /// Flushes the open file to disk (`fsync`), reporting any error.
    pub fn sync(&mut self) -> Result<(), TransportError> {
        let device = self.describe();
        match &self.file {
            Some(file) => file
                .sync_all()
                .map_err(|e| TransportError::io(device, "sync to disk", e)),
            None => Ok(()),
        }
    }

    /// Whether the address ends in a slash (it then must be a directory).
    fn names_directory(&self) -> bool {
        self.path.as_os_str().to_string_lossy().ends_with('/')
    }

    /// File mode: truncate on the first open, append on a reopen.
    fn open_file(&mut self) -> Result<(File, PathBuf), TransportError> {
        let mut options = OpenOptions::new();
        options.create(true);
        if self.truncated {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options
            .open(&self.path)
            .map_err(|e| TransportError::io(self.describe(), "open", e))?;
        self.truncated = true;
        Ok((file, self.path.clone()))
    }

    /// Directory mode: a new file, numbered above every existing one.
    fn create_in_directory(&self) -> Result<(File, PathBuf), TransportError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| TransportError::io(self.describe(), "list the directory", e))?;
        let highest = entries
            .filter_map(Result::ok)
            .filter_map(|entry| sequence_of(&entry.file_name().to_string_lossy()))
            .max()
            .unwrap_or(0);
        let mut number = highest.saturating_add(1);
        for _ in 0..CREATE_ATTEMPTS {
            let name = if self.extension.is_empty() {
                format!("{PREFIX}{number:06}")
            } else {
                format!("{PREFIX}{number:06}.{}", self.extension)
            };
            let path = self.path.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((file, path)),
                // Someone else took this number a moment ago: try the next one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    number = number.saturating_add(1);
                }
                Err(e) => {
                    return Err(TransportError::io(
                        self.describe(),
                        &format!("create {}", path.display()),
                        e,
                    ))
                }
            }
        }
        Err(TransportError::new(
            TransportErrorKind::Io,
            self.describe(),
            format!(
                "no free job file name after {CREATE_ATTEMPTS} attempts (is another process \
                 writing here?)"
            ),
        ))
    }

    /// The open file, or a `Disconnected` error.
    fn file(&mut self) -> Result<&mut File, TransportError> {
        let device = self.describe();
        self.file.as_mut().ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Disconnected,
                device,
                "not open (open the transport first)",
            )
        })
    }
}

impl Transport for FileTransport {
    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// File mode: creates or truncates the file (appends on a reopen). Directory mode:
    /// creates the next numbered file.
    fn open(&mut self) -> Result<(), TransportError> {
        self.close();
        let is_dir = std::fs::metadata(&self.path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        let (file, path) = if is_dir {
            self.create_in_directory()?
        } else if self.names_directory() {
            return Err(TransportError::new(
                TransportErrorKind::NotFound,
                self.describe(),
                "no such directory (create it first, or drop the trailing '/' to write one file)",
            ));
        } else {
            self.open_file()?
        };
        self.file = Some(file);
        self.current = Some(path);
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        let device = self.describe();
        let file = self.file()?;
        let mut written = 0;
        while written < bytes.len() {
            if Instant::now() >= deadline {
                return Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    device,
                    format!(
                        "{written} of {} bytes written before the deadline (slow disk?)",
                        bytes.len()
                    ),
                )
                .with_written(written));
            }
            let end = bytes.len().min(written.saturating_add(CHUNK));
            match file.write(&bytes[written..end]) {
                Ok(0) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Io,
                        device,
                        "the file accepts no more data",
                    )
                    .with_written(written))
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let full = e.raw_os_error() == Some(libc::ENOSPC);
                    let mut err = TransportError::io(device, "write", e).with_written(written);
                    if full {
                        err.message.push_str(" (the disk is full)");
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// A file never answers: `Ok(0)` at once while open.
    fn read_reply(&mut self, _buf: &mut [u8], _timeout: Duration) -> Result<usize, TransportError> {
        self.file().map(|_| 0)
    }

    /// The file being written (or last written).
    fn device_info(&mut self) -> Result<DeviceInfo, TransportError> {
        Ok(DeviceInfo {
            location: self.current.as_ref().map(|p| p.display().to_string()),
            ..DeviceInfo::default()
        })
    }

    /// `fsync`s the file and its directory, then closes it.
    fn close(&mut self) {
        if let Some(file) = self.file.take() {
            // Errors cannot be returned from here; `sync` reports them.
            let _ = file.sync_all();
            let dir = self
                .current
                .as_deref()
                .and_then(Path::parent)
                .filter(|p| !p.as_os_str().is_empty());
            if let Some(dir) = dir {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
    }
}

impl Drop for FileTransport {
    fn drop(&mut self) {
        self.close();
    }
}

/// The number in a directory-mode file name (`job-000042.prn` → 42).
fn sequence_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers() {
        // (name, number)
        let cases = [
            ("job-000001.prn", Some(1)),
            ("job-42.zpl", Some(42)),
            ("job-1234567", Some(1_234_567)),
            ("job-.prn", None),
            ("job-x1.prn", None),
            ("other-000003.prn", None),
            ("job-99999999999999999999999.prn", None),
        ];
        for (i, (name, number)) in cases.into_iter().enumerate() {
            assert_eq!(sequence_of(name), number, "case {i}: {name}");
        }
    }
}
