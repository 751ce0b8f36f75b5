//! Printer addresses: `usb://VID:PID[?serial=SN]`, `usblp:///dev/usb/lp0`,
//! `serial:///dev/ttyUSB0?baud=9600&flow=hardware`, `tcp://HOST[:PORT]`,
//! `file:///path`.

use std::fmt;
use std::path::PathBuf;

/// Serial flow control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    /// None.
    #[default]
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF (DC1/DC3 in the data stream: 7-bit output only).
    Software,
}

/// Serial parity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Serial line settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerialSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits: 7 or 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits: 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow: Flow,
}

impl Default for SerialSettings {
    /// 9600 8N1, no flow control: what label printers ship with
    /// (printer-langs.md §5.5).
    fn default() -> Self {
        SerialSettings {
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow: Flow::None,
        }
    }
}

/// Where a printer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrinterUri {
    /// A USB printer found through libusb by vendor/product id, and by serial number
    /// (so it is found again after a replug on a new bus address) or bus path.
    Usb {
        /// Vendor id.
        vendor: u16,
        /// Product id.
        product: u16,
        /// The device's serial number string, if given.
        serial: Option<String>,
        /// The port path (`1-1.4`), the fallback when there is no serial number.
        port_path: Option<String>,
    },
    /// A usblp device node.
    Usblp {
        /// The node, e.g. `/dev/usb/lp0`.
        path: PathBuf,
    },
    /// A serial port.
    Serial {
        /// The device, e.g. `/dev/ttyUSB0`.
        path: PathBuf,
        /// Line settings.
        settings: SerialSettings,
    },
    /// Raw TCP (AppSocket/JetDirect).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port, 9100 unless given.
        port: u16,
    },
    /// A file (written whole) or a directory (one file per job).
    File {
        /// The path.
        path: PathBuf,
    },
}

/// A printer address that cannot be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("printer address {uri:?}: {reason}")]
pub struct UriError {
    /// The address as given.
    pub uri: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

impl PrinterUri {
    /// Parses an address.
    pub fn parse(text: &str) -> Result<PrinterUri, UriError> {
        let fail = |reason: String| UriError {
            uri: text.to_owned(),
            reason,
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| fail("expected scheme://… (usb, usblp, serial, tcp or file)".into()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params = parse_query(query).map_err(fail)?;
        let allow = |known: &[&str]| -> Result<(), UriError> {
            match params.iter().find(|(k, _)| !known.contains(&k.as_str())) {
                Some((k, _)) => Err(fail(format!(
                    "unknown parameter {k:?} (allowed: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))),
                None => Ok(()),
            }
        };
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match scheme {
            "usb" => {
                allow(&["serial", "path"])?;
                let (v, p) = location.split_once(':').ok_or_else(|| {
                    fail("expected usb://VID:PID in hex, e.g. usb://0a5f:0080".into())
                })?;
                let hex = |s: &str, what: &str| {
                    u16::from_str_radix(s.trim_start_matches("0x"), 16)
                        .map_err(|_| fail(format!("{what} {s:?} is not a 4-digit hex number")))
                };
                Ok(PrinterUri::Usb {
                    vendor: hex(v, "vendor id")?,
                    product: hex(p, "product id")?,
                    serial: param("serial").map(str::to_owned),
                    port_path: param("path").map(str::to_owned),
                })
            }
            "usblp" => {
                allow(&[])?;
                path_of(location)
                    .map(|path| PrinterUri::Usblp { path })
                    .map_err(fail)
            }
            "file" => {
                allow(&[])?;
                path_of(location)
                    .map(|path| PrinterUri::File { path })
                    .map_err(fail)
            }
            "serial" => {
                allow(&["baud", "bits", "parity", "stop", "flow"])?;
                let path = path_of(location).map_err(fail)?;
                let mut s = SerialSettings::default();
                if let Some(b) = param("baud") {
                    s.baud = b
                        .parse()
                        .ok()
                        .filter(|&b| b > 0)
                        .ok_or_else(|| fail(format!("baud {b:?} is not a positive number")))?;
                }
                if let Some(b) = param("bits") {
                    s.data_bits = match b {
                        "7" => 7,
                        "8" => 8,
                        _ => return Err(fail(format!("bits {b:?}: expected 7 or 8"))),
                    };
                }
                if let Some(p) = param("parity") {
                    s.parity = match p {
                        "none" | "n" => Parity::None,
                        "odd" | "o" => Parity::Odd,
                        "even" | "e" => Parity::Even,
                        _ => return Err(fail(format!("parity {p:?}: expected none, odd or even"))),
                    };
                }
                if let Some(b) = param("stop") {
                    s.stop_bits = match b {
                        "1" => 1,
                        "2" => 2,
                        _ => return Err(fail(format!("stop {b:?}: expected 1 or 2"))),
                    };
                }
                if let Some(f) = param("flow") {
                    s.flow = match f {
                        "none" => Flow::None,
                        "hardware" | "rtscts" => Flow::Hardware,
                        "software" | "xonxoff" => Flow::Software,
                        _ => {
                            return Err(fail(format!(
                                "flow {f:?}: expected none, hardware or software"
                            )))
                        }
                    };
                }
                Ok(PrinterUri::Serial { path, settings: s })
            }
            "tcp" => {
                allow(&[])?;
                let location = location.trim_end_matches('/');
                let (host, port) = match location.rsplit_once(':') {
                    Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                        h,
                        p.parse::<u16>()
                            .ok()
                            .filter(|&p| p > 0)
                            .ok_or_else(|| fail(format!("port {p:?} is not 1-65535")))?,
                    ),
                    _ => (location, 9100),
                };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(fail("expected tcp://HOST[:PORT]".into()));
                }
                Ok(PrinterUri::Tcp {
                    host: host.to_owned(),
                    port,
                })
            }
            other => Err(fail(format!(
                "unknown scheme {other:?} (expected usb, usblp, serial, tcp or file)"
            ))),
        }
    }
}

fn path_of(location: &str) -> Result<PathBuf, String> {
    if location.starts_with('/') {
        Ok(PathBuf::from(location))
    } else {
        Err("expected an absolute path (three slashes: file:///path)".into())
    }
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .ok_or_else(|| format!("parameter {pair:?} has no value (key=value)"))
        })
        .collect()
}

impl fmt::Display for PrinterUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrinterUri::Usb {
                vendor,
                product,
                serial,
                port_path,
            } => {
                write!(f, "usb://{vendor:04x}:{product:04x}")?;
                match (serial, port_path) {
                    (Some(s), _) => write!(f, "?serial={s}"),
                    (None, Some(p)) => write!(f, "?path={p}"),
                    (None, None) => Ok(()),
                }
            }
            PrinterUri::Usblp { path } => write!(f, "usblp://{}", path.display()),
            PrinterUri::Serial { path, settings: s } => write!(
                f,
                "serial://{}?baud={}&bits={}&parity={}&stop={}&flow={}",
                path.display(),
                s.baud,
                s.data_bits,
                match s.parity {
                    Parity::None => "none",
                    Parity::Odd => "odd",
                    Parity::Even => "even",
                },
                s.stop_bits,
                match s.flow {
                    Flow::None => "none",
                    Flow::Hardware => "hardware",
                    Flow::Software => "software",
                }
            ),
            PrinterUri::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            PrinterUri::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            PrinterUri::File { path } => write!(f, "file://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            PrinterUri::parse("usb://0a5f:0080?serial=XXQLJ123").unwrap(),
            PrinterUri::Usb {
                vendor: 0x0a5f,
                product: 0x0080,
                serial: Some("XXQLJ123".into()),
                port_path: None
            }
        );
        assert_eq!(
            PrinterUri::parse("usblp:///dev/usb/lp0").unwrap(),
            PrinterUri::Usblp {
                path: "/dev/usb/lp0".into()
            }
        );
        let serial =
            PrinterUri::parse("serial:///dev/ttyUSB0?baud=19200&flow=software&bits=7&parity=even")
                .unwrap();
        assert_eq!(
            serial,
            PrinterUri::Serial {
                path: "/dev/ttyUSB0".into(),
                settings: SerialSettings {
                    baud: 19200,
                    data_bits: 7,
                    parity: Parity::Even,
                    stop_bits: 1,
                    flow: Flow::Software
                }
            }
        );
        assert_eq!(
            PrinterUri::parse("tcp://printer.local").unwrap(),
            PrinterUri::Tcp {
                host: "printer.local".into(),
                port: 9100
            }
        );
        assert_eq!(
            PrinterUri::parse("tcp://127.0.0.1:6101").unwrap(),
            PrinterUri::Tcp {
                host: "127.0.0.1".into(),
                port: 6101
            }
        );
        assert_eq!(
            PrinterUri::parse("tcp://[::1]:9100").unwrap(),
            PrinterUri::Tcp {
                host: "::1".into(),
                port: 9100
            }
        );
        assert_eq!(
            PrinterUri::parse("file:///tmp/out.zpl").unwrap(),
            PrinterUri::File {
                path: "/tmp/out.zpl".into()
            }
        );
        for uri in [
            "usb://0a5f:0080?serial=A1",
            "tcp://[::1]:9100",
            "file:///tmp/x",
            "usblp:///dev/usb/lp0",
        ] {
            assert_eq!(PrinterUri::parse(uri).unwrap().to_string(), uri);
        }
    }

    #[test]
    fn errors_say_what_is_expected() {
        let cases = [
            ("lpt1", "expected scheme://"),
            ("usb://zebra", "expected usb://VID:PID"),
            ("usb://0a5f:xyz", "product id \"xyz\""),
            ("serial:///dev/ttyS0?baud=fast", "baud \"fast\""),
            (
                "serial:///dev/ttyS0?flow=dtr",
                "expected none, hardware or software",
            ),
            ("tcp://host:0", "port \"0\""),
            ("file://relative/path", "absolute path"),
            ("tcp://host?timeout=5", "unknown parameter \"timeout\""),
            ("ipp://host", "unknown scheme"),
        ];
        for (uri, expected) in cases {
            let err = PrinterUri::parse(uri).unwrap_err().to_string();
            assert!(err.contains(expected), "{uri}: {err}");
        }
    }
}
