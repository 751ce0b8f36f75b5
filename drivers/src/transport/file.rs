//! (in progress: being written)

use super::{Transport, TransportError, TransportErrorKind};
use std::time::{Duration, Instant};

/// (in progress)
pub struct FileTransport {
    device: String,
}

impl FileTransport {
    /// (in progress)
    pub fn new(path: std::path::PathBuf) -> Self {
        let _ = path;
        FileTransport {
            device: String::new(),
        }
    }
}

impl Transport for FileTransport {
    fn describe(&self) -> String {
        self.device.clone()
    }
    fn open(&mut self) -> Result<(), TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Config,
            self.describe(),
            "not built yet",
        ))
    }
    fn write_all(&mut self, _bytes: &[u8], _deadline: Instant) -> Result<(), TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Config,
            self.describe(),
            "not built yet",
        ))
    }
    fn read_reply(&mut self, _buf: &mut [u8], _timeout: Duration) -> Result<usize, TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Config,
            self.describe(),
            "not built yet",
        ))
    }
    fn close(&mut self) {}
}
