//! (in progress: being written)

use super::{PrinterUri, Transport, TransportError, TransportErrorKind};
use std::time::{Duration, Instant};

/// (in progress)
pub struct UsbTransport {
    uri: PrinterUri,
}

impl UsbTransport {
    /// (in progress)
    pub fn new(uri: PrinterUri) -> Result<Self, TransportError> {
        Ok(UsbTransport { uri })
    }
}

impl Transport for UsbTransport {
    fn describe(&self) -> String {
        self.uri.to_string()
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
