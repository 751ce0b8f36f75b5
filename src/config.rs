//! labeld's configuration: one TOML file, or the embedded default.
//!
//! `config/default.toml` is compiled in ([`DEFAULT_TOML`]) and documents every key;
//! `labeld` with no `--config` runs on it, so a fresh machine prints to a preview
//! printer (PNG files) and a ZPL file printer. [`Config::parse`] reads a file's text
//! and [`Config::resolve`] turns it into what the daemon runs on: absolute paths, a
//! [`Profile`] and a [`PrinterUri`] per printer, every name checked. Both are pure
//! apart from `resolve` reading environment variables through a closure, so tests
//! can drive them.
//!
//! Paths: `state_dir` is taken from `$LABELD_STATE_DIR`, else systemd's
//! `$STATE_DIRECTORY`, else the file (relative to the working directory). `spool`
//! and `file:` printer addresses without `//` are relative to it. ipc sockets live in
//! `runtime_dir`: the file's value, else `$RUNTIME_DIRECTORY`, else
//! `$XDG_RUNTIME_DIR/labeld`, else `<state_dir>/run`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use labeld_drivers::models;
use labeld_drivers::profile::MediaKind;
use labeld_drivers::transport::uri::PrinterUri;
use labeld_drivers::{Profile, Resolution};
use serde::{Deserialize, Serialize};

use crate::protocol::{self, Limits};

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration problem: which key, what is wrong, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type or unknown.
    #[error("config: {0}")]
    Toml(String),
    /// A value that parses but cannot be used.
    #[error("config: {key}: {message}")]
    Invalid {
        /// The key, as a dotted path (`printer[1].model`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The file as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    pub daemon: DaemonConfig,
    /// IMb serial ranges, one per Mailer ID.
    #[serde(default, rename = "serial_range")]
    pub serial_ranges: Vec<SerialRangeConfig>,
    /// The printers.
    #[serde(default, rename = "printer")]
    pub printers: Vec<PrinterConfig>,
    /// Informed Visibility tracking (`[tracking]`); off unless enabled.
    #[serde(default)]
    pub tracking: crate::tracking::settings::TrackingSettings,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Spool, preview output and other state.
    pub state_dir: PathBuf,
    /// The spool file, relative to `state_dir`.
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// Where ipc sockets live (see the module doc for the default).
    #[serde(default)]
    pub runtime_dir: Option<PathBuf>,
    /// Request (ROUTER) endpoints.
    pub requests: Vec<String>,
    /// Event (PUB) endpoints.
    pub events: Vec<String>,
    /// Allow binding addresses other than loopback.
    #[serde(default)]
    pub allow_remote: bool,
    /// Largest request, bytes.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// Largest ZeroMQ frame a peer may announce, bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Most labels in one batch.
    #[serde(default = "default_max_batch")]
    pub max_batch_labels: usize,
    /// How long a reply may wait for its client, ms.
    #[serde(default = "default_reply_timeout")]
    pub reply_timeout_ms: u64,
    /// Requests waiting for the spool before `busy`.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Print log and finished jobs are kept this long.
    #[serde(default = "default_retention")]
    pub log_retention_days: u32,
    /// Warn when less than this percentage of a serial range is left.
    #[serde(default = "default_low_water")]
    pub low_water_percent: u8,
}

fn default_spool() -> PathBuf {
    PathBuf::from("spool.sqlite")
}
fn default_max_request() -> usize {
    Limits::default().max_request_bytes
}
fn default_max_frame() -> usize {
    16 << 20
}
fn default_max_batch() -> usize {
    Limits::default().max_batch_labels
}
fn default_reply_timeout() -> u64 {
    50
}
fn default_max_pending() -> usize {
    1024
}
fn default_retention() -> u32 {
    400
}
fn default_low_water() -> u8 {
    10
}

/// `[[serial_range]]`: the serials this host may use for one Mailer ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialRangeConfig {
    /// 6 digits (first 0–8) or 9 digits (first 9).
    pub mailer_id: String,
    /// First serial.
    pub first: u64,
    /// Last serial, inclusive (at most 999,999,999 for a 6-digit Mailer ID, 999,999
    /// for a 9-digit one).
    pub last: u64,
}

/// `[[printer]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    /// The name clients use (`[A-Za-z0-9._-]`, up to 64).
    pub name: String,
    /// A model id from `labelctl models`.
    pub model: String,
    /// Where it is: `usb://VID:PID?serial=…`, `usblp:///dev/usb/lp0`,
    /// `serial:///dev/ttyUSB0?baud=9600`, `tcp://host:9100`, `file:///path/`, or
    /// `file:dir/` relative to the state directory.
    pub uri: String,
    /// Resolution override, dots per inch (both axes).
    #[serde(default)]
    pub dpi: Option<f64>,
    /// Calibration: move everything right by this many dots (negative: left).
    #[serde(default)]
    pub offset_x: i32,
    /// Calibration: move everything down by this many dots (negative: up).
    #[serde(default)]
    pub offset_y: i32,
    /// Darkness 0–100 %.
    #[serde(default)]
    pub darkness: Option<u8>,
    /// Speed, inches per second.
    #[serde(default)]
    pub speed: Option<f32>,
    /// `gap`, `black-mark` or `continuous`.
    #[serde(default)]
    pub media: Option<MediaKind>,
    /// Emit 7-bit ASCII only (serial links with XON/XOFF).
    #[serde(default)]
    pub ascii_only: bool,
    /// Elements the printer draws itself where its language can: `text` (resident
    /// font), `code128`, `imb` (the printer's own IMb geometry, not verified by
    /// labeld). Fewer bytes on slow links.
    #[serde(default)]
    pub native: Vec<NativeElementKind>,
    /// Ask the printer after every label whether it printed (ZPL `~HS`, Brother
    /// status). Default: on for printers that answer, off for files.
    #[serde(default)]
    pub confirm: Option<bool>,
}

/// An element kind a printer may draw natively (`native = ["text"]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NativeElementKind {
    /// Text.
    Text,
    /// Code 128 barcodes.
    Code128,
    /// The IMb.
    Imb,
}

impl Config {
    /// The embedded default.
    pub fn default_config() -> Config {
        // The embedded file is checked by a unit test; parse errors cannot happen.
        Config::parse(DEFAULT_TOML).unwrap_or_else(|e| panic!("embedded default config: {e}"))
    }

    /// Parses a configuration file's text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Toml`] naming the line and key.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] or a parse error.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Checks every value and makes paths absolute. `env` looks up environment
    /// variables (`std::env::var` in the daemon); `cwd` is the working directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Resolved, ConfigError> {
        let d = &self.daemon;
        let state_dir = env("LABELD_STATE_DIR")
            .or_else(|| env("STATE_DIRECTORY"))
            .map(PathBuf::from)
            .unwrap_or_else(|| d.state_dir.clone());
        let state_dir = cwd.join(state_dir);
        let runtime_dir = match &d.runtime_dir {
            Some(p) => state_dir.join(p),
            None => env("RUNTIME_DIRECTORY")
                .map(PathBuf::from)
                .or_else(|| env("XDG_RUNTIME_DIR").map(|x| Path::new(&x).join("labeld")))
                .unwrap_or_else(|| state_dir.join("run")),
        };
        if d.requests.is_empty() {
            return Err(invalid(
                "daemon.requests",
                "is empty; give at least one endpoint",
            ));
        }
        for (key, list) in [
            ("daemon.requests", &d.requests),
            ("daemon.events", &d.events),
        ] {
            for (i, e) in list.iter().enumerate() {
                check_endpoint(e, d.allow_remote).map_err(|m| invalid(format!("{key}[{i}]"), m))?;
            }
        }
        if d.max_request_bytes < 1024 || d.max_request_bytes > d.max_frame_bytes {
            return Err(invalid(
                "daemon.max_request_bytes",
                format!(
                    "is {}; expected 1024 up to max_frame_bytes ({})",
                    d.max_request_bytes, d.max_frame_bytes
                ),
            ));
        }
        if d.max_frame_bytes > 1 << 30 {
            return Err(invalid(
                "daemon.max_frame_bytes",
                "is over 1 GiB; a frame that size would be held in memory whole",
            ));
        }
        if d.max_batch_labels == 0 || d.low_water_percent > 100 || d.max_pending == 0 {
            return Err(invalid(
                "daemon",
                "max_batch_labels and max_pending must be at least 1 and low_water_percent at most 100",
            ));
        }

        let mut mailer_ids = BTreeSet::new();
        for (i, r) in self.serial_ranges.iter().enumerate() {
            let key = format!("serial_range[{i}]");
            let width = match r.mailer_id.len() {
                6 if !r.mailer_id.starts_with('9') => 9,
                9 if r.mailer_id.starts_with('9') => 6,
                _ => {
                    return Err(invalid(
                        format!("{key}.mailer_id"),
                        format!(
                            "{:?} is not a Mailer ID: 6 digits starting 0-8, or 9 digits starting with 9",
                            r.mailer_id
                        ),
                    ))
                }
            };
            if !r.mailer_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!("{key}.mailer_id"), "must be digits only"));
            }
            let max = 10u64.pow(width) - 1;
            if r.first > r.last || r.last > max {
                return Err(invalid(
                    key,
                    format!(
                        "first {} and last {} must satisfy first <= last <= {max} (a {}-digit Mailer ID has {width}-digit serials)",
                        r.first,
                        r.last,
                        r.mailer_id.len()
                    ),
                ));
            }
            if !mailer_ids.insert(&r.mailer_id) {
                return Err(invalid(
                    format!("{key}.mailer_id"),
                    format!("{} has two ranges; give one", r.mailer_id),
                ));
            }
        }

        let mut names = BTreeSet::new();
        let mut printers = Vec::with_capacity(self.printers.len());
        for (i, p) in self.printers.iter().enumerate() {
            let key = format!("printer[{i}]");
            protocol::check_printer_name(&p.name).map_err(|m| invalid(format!("{key}.name"), m))?;
            if !names.insert(p.name.as_str()) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("{:?} is used twice; printer names must be unique", p.name),
                ));
            }
            printers.push(
                p.resolve(&state_dir)
                    .map_err(|(field, m)| invalid(format!("{key}.{field}"), m))?,
            );
        }

        self.tracking
            .check()
            .map_err(|(key, message)| invalid(key, message))?;
        if self.tracking.window_days > d.log_retention_days {
            return Err(invalid(
                "tracking.window_days",
                format!(
                    "{} days is longer than daemon.log_retention_days ({}): pieces would \
                     leave the print log while still tracked; raise log_retention_days",
                    self.tracking.window_days, d.log_retention_days
                ),
            ));
        }
        let mut tracking = self.tracking.clone();
        tracking.resolve_paths(&state_dir);
        Ok(Resolved {
            spool: state_dir.join(&d.spool),
            state_dir,
            runtime_dir,
            requests: d.requests.clone(),
            events: d.events.clone(),
            allow_remote: d.allow_remote,
            limits: Limits {
                max_request_bytes: d.max_request_bytes,
                max_batch_labels: d.max_batch_labels,
            },
            max_frame_bytes: d.max_frame_bytes,
            reply_timeout: Duration::from_millis(d.reply_timeout_ms.max(1)),
            max_pending: d.max_pending,
            log_retention: Duration::from_secs(u64::from(d.log_retention_days) * 86_400),
            low_water_percent: d.low_water_percent,
            serial_ranges: self.serial_ranges.clone(),
            printers,
            tracking,
        })
    }
}

/// Endpoints are `tcp://HOST:PORT` or `ipc://PATH`; a TCP host other than loopback
/// needs `allow_remote`.
fn check_endpoint(endpoint: &str, allow_remote: bool) -> Result<(), String> {
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        if path.is_empty() {
            return Err("ipc:// needs a path".into());
        }
        return Ok(());
    }
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return Err(format!(
            "{endpoint:?}: expected tcp://HOST:PORT or ipc://PATH"
        ));
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!("{endpoint:?}: tcp:// needs HOST:PORT"));
    };
    port.parse::<u16>()
        .map_err(|_| format!("{endpoint:?}: port {port:?} is not a number 0-65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback && !allow_remote {
        return Err(format!(
            "{endpoint:?} is not a loopback address; labeld's ZeroMQ has no encryption or \
             authentication, so set daemon.allow_remote = true only behind a firewall you trust"
        ));
    }
    Ok(())
}

/// A printer ready to run: its profile and its address.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterSetup {
    /// The name clients use.
    pub name: String,
    /// The configured entry.
    pub config: PrinterConfig,
    /// The profile the renderer and driver use.
    pub profile: Profile,
    /// Where to send bytes.
    pub uri: PrinterUri,
    /// Ask the printer after each label.
    pub confirm: bool,
}

impl PrinterConfig {
    fn resolve(&self, state_dir: &Path) -> Result<PrinterSetup, (&'static str, String)> {
        let model = models::find(&self.model).ok_or_else(|| {
            (
                "model",
                format!(
                    "{:?} is not a known model (`labelctl models` lists them)",
                    self.model
                ),
            )
        })?;
        let mut profile = model.profile();
        if let Some(dpi) = self.dpi {
            if !(100.0..=1200.0).contains(&dpi) {
                return Err(("dpi", format!("is {dpi}; expected 100 to 1200")));
            }
            let old = profile.resolution.x;
            profile.resolution = Resolution::square(dpi);
            // Keep the head's physical width.
            profile.width_dots = (f64::from(profile.width_dots) * dpi / old).round() as u32;
        }
        profile.offset_x = self.offset_x;
        profile.offset_y = self.offset_y;
        if let Some(d) = self.darkness {
            if d > 100 {
                return Err(("darkness", format!("is {d}; expected 0 to 100 (%)")));
            }
            profile.darkness = Some(d);
        }
        if let Some(s) = self.speed {
            if !(0.5..=20.0).contains(&s) {
                return Err(("speed", format!("is {s}; expected 0.5 to 20 in/s")));
            }
            profile.speed_ips = Some(s);
        }
        if let Some(m) = self.media {
            profile.media = m;
        }
        profile.ascii_only = self.ascii_only;
        profile.native.text = self.native.contains(&NativeElementKind::Text);
        profile.native.code128 = self.native.contains(&NativeElementKind::Code128);
        profile.native.imb = self.native.contains(&NativeElementKind::Imb);
        let text = match self.uri.strip_prefix("file:") {
            Some(rest) if !rest.starts_with("//") => {
                let path = state_dir.join(rest);
                let mut text = format!("file://{}", path.display());
                if rest.ends_with('/') && !text.ends_with('/') {
                    text.push('/');
                }
                text
            }
            _ => self.uri.clone(),
        };
        let uri = PrinterUri::parse(&text).map_err(|e| ("uri", format!("{e}")))?;
        let confirm = self
            .confirm
            .unwrap_or(!matches!(uri, PrinterUri::File { .. }));
        Ok(PrinterSetup {
            name: self.name.clone(),
            config: self.clone(),
            profile,
            uri,
            confirm,
        })
    }
}

/// A checked configuration with absolute paths: what the daemon runs on.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// State directory.
    pub state_dir: PathBuf,
    /// The spool file.
    pub spool: PathBuf,
    /// ipc sockets.
    pub runtime_dir: PathBuf,
    /// Request endpoints as configured (ipc paths relative to `runtime_dir`).
    pub requests: Vec<String>,
    /// Event endpoints as configured.
    pub events: Vec<String>,
    /// Non-loopback binds allowed.
    pub allow_remote: bool,
    /// Request limits.
    pub limits: Limits,
    /// Largest frame.
    pub max_frame_bytes: usize,
    /// Reply send timeout.
    pub reply_timeout: Duration,
    /// Queue bound before `busy`.
    pub max_pending: usize,
    /// Print-log retention.
    pub log_retention: Duration,
    /// Low-water warning threshold, percent.
    pub low_water_percent: u8,
    /// Serial ranges.
    pub serial_ranges: Vec<SerialRangeConfig>,
    /// Printers in file order.
    pub printers: Vec<PrinterSetup>,
    /// `[tracking]`, as written (checked by the tracking module when it starts).
    pub tracking: crate::tracking::settings::TrackingSettings,
}

impl Resolved {
    /// An endpoint with a relative ipc path made absolute under `runtime_dir`.
    pub fn endpoint(&self, endpoint: &str) -> String {
        match endpoint.strip_prefix("ipc://") {
            Some(path) if !path.starts_with('/') => {
                format!("ipc://{}", self.runtime_dir.join(path).display())
            }
            _ => endpoint.to_owned(),
        }
    }

    /// The printer called `name`.
    pub fn printer(&self, name: &str) -> Option<&PrinterSetup> {
        self.printers.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_embedded_default_resolves() {
        let c = Config::parse(DEFAULT_TOML).expect("default parses");
        let r = c.resolve(&no_env, Path::new("/srv")).expect("resolves");
        assert_eq!(r.state_dir, Path::new("/srv/labeld-data"));
        assert_eq!(r.spool, Path::new("/srv/labeld-data/spool.sqlite"));
        assert_eq!(r.runtime_dir, Path::new("/srv/labeld-data/run"));
        assert_eq!(r.printers.len(), 2);
        assert_eq!(
            r.printers[0].uri,
            PrinterUri::File {
                path: PathBuf::from("/srv/labeld-data/preview/")
            }
        );
        assert!(!r.printers[0].confirm);
        assert_eq!(
            r.endpoint("ipc://requests.sock"),
            "ipc:///srv/labeld-data/run/requests.sock"
        );
    }

    #[test]
    fn systemd_directories_win() {
        let env = |k: &str| match k {
            "STATE_DIRECTORY" => Some("/var/lib/labeld".to_owned()),
            "RUNTIME_DIRECTORY" => Some("/run/labeld".to_owned()),
            _ => None,
        };
        let r = Config::default_config()
            .resolve(&env, Path::new("/"))
            .expect("resolves");
        assert_eq!(r.spool, Path::new("/var/lib/labeld/spool.sqlite"));
        assert_eq!(r.runtime_dir, Path::new("/run/labeld"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("requests = [\"tcp://0.0.0.0:7310\"]", "daemon.requests[0]"),
            ("requests = [\"udp://x\"]", "daemon.requests[0]"),
            ("max_request_bytes = 10", "daemon.max_request_bytes"),
        ];
        for (line, key) in cases {
            let text = if line.starts_with("max_") {
                DEFAULT_TOML.replacen("max_request_bytes = 4194304", line, 1)
            } else {
                DEFAULT_TOML.replacen(
                    "requests = [\"ipc://requests.sock\", \"tcp://127.0.0.1:7310\"]",
                    line,
                    1,
                )
            };
            let err = Config::parse(&text)
                .and_then(|c| c.resolve(&no_env, Path::new("/")))
                .expect_err(line);
            assert!(err.to_string().contains(key), "{line}: {err}");
        }
        let text = format!("{DEFAULT_TOML}\n[[printer]]\nname = \"x\"\nmodel = \"nope\"\nuri = \"tcp://127.0.0.1\"\n");
        let err = Config::parse(&text)
            .and_then(|c| c.resolve(&no_env, Path::new("/")))
            .expect_err("unknown model");
        assert!(err.to_string().contains("printer[2].model"), "{err}");
        let text = format!("{DEFAULT_TOML}\n[[printer]]\nname = \"preview\"\nmodel = \"zpl-203\"\nuri = \"tcp://127.0.0.1\"\n");
        let err = Config::parse(&text)
            .and_then(|c| c.resolve(&no_env, Path::new("/")))
            .expect_err("duplicate");
        assert!(err.to_string().contains("used twice"), "{err}");
        let err =
            Config::parse("[daemon]\nstate_dir = \"x\"\nrequests = []\nevents = []\nbogus = 1\n")
                .expect_err("unknown key");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn remote_binds_need_the_setting() {
        assert!(check_endpoint("tcp://192.168.1.5:7310", false).is_err());
        assert!(check_endpoint("tcp://192.168.1.5:7310", true).is_ok());
        assert!(check_endpoint("tcp://[::1]:7310", false).is_ok());
        assert!(check_endpoint("tcp://localhost:7310", false).is_ok());
    }
}
