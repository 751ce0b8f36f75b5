//! A real `labeld` process for end-to-end tests: its own state directory, ipc
//! sockets in it, the embedded default printers plus whatever a test adds, and
//! helpers to talk to it, kill it and start it again on the same spool.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use labeld::client::Client;
use serde_json::Value;

/// How long a test waits for labeld to answer `health` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A labeld process and its directory.
pub struct Daemon {
    /// State directory (spool, printers' output, log file, config).
    pub dir: PathBuf,
    /// Request endpoint (ipc).
    pub requests: String,
    /// Event endpoint (ipc).
    pub events: String,
    config: PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// The configuration a test daemon runs on; `extra` is appended (more printers,
/// ranges).
pub fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        r#"[daemon]
state_dir = "{dir}"
runtime_dir = "run"
requests = ["ipc://requests.sock"]
events = ["ipc://events.sock"]
reply_timeout_ms = 50

[[serial_range]]
mailer_id = "123456"
first = 1
last = 999999999

[[printer]]
name = "preview"
model = "png-203"
uri = "file:preview/"

[[printer]]
name = "zpl-file"
model = "zpl-203"
uri = "file:zpl/"
{extra}
"#,
        dir = dir.display()
    )
}

impl Daemon {
    /// Starts labeld on a fresh directory with [`config_text`].
    pub fn start(extra: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!(
            "labeld-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("test dir");
        let text = config_text(&dir, extra);
        Daemon::start_with(dir, &text)
    }

    /// Starts labeld in `dir` on a configuration text of the test's own.
    pub fn start_with(dir: PathBuf, config: &str) -> Daemon {
        let config_path = dir.join("labeld.toml");
        std::fs::write(&config_path, config).expect("write config");
        let run = dir.join("run");
        let mut d = Daemon {
            requests: format!("ipc://{}", run.join("requests.sock").display()),
            events: format!("ipc://{}", run.join("events.sock").display()),
            dir,
            config: config_path,
            child: None,
            starts: 0,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_labeld"))
            .arg("--config")
            .arg(&self.config)
            .env("LABELD_LOG", "info")
            .env_remove("LABELD_STATE_DIR")
            .env_remove("STATE_DIRECTORY")
            .env_remove("RUNTIME_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("labeld starts");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("labeld exited during start ({status}):\n{}", self.log());
                }
            }
            if let Ok(mut c) = Client::connect(&self.requests, Duration::from_millis(500)) {
                if let Ok(reply) = c.request(serde_json::json!({"op": "health"})) {
                    if reply["ok"] == true {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "labeld did not answer health within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("labeld.log")
    }

    /// A new client on the request endpoint.
    pub fn client(&self) -> Client {
        Client::connect(&self.requests, Duration::from_secs(30)).expect("connect to labeld")
    }

    /// One request, one reply.
    pub fn request(&self, request: Value) -> Value {
        self.client().request(request).expect("reply")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, as a crash or power cut would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                child.kill().ok();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (SIGHUP to reload).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: as in `stop`.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Starts labeld again on the same directory and spool.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Replaces the configuration file (for reload tests).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Waits until `status` of `job_id` says every label is final; returns it.
    pub fn wait_done(&self, job_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut client = self.client();
        loop {
            let status = client
                .request(serde_json::json!({"op": "status", "job_id": job_id}))
                .expect("status reply");
            // `progress.done`: every label final (a cancelled job may still have a
            // label in flight).
            if status["progress"]["done"] == true {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} not done within {timeout:?}: {status}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            std::fs::remove_dir_all(&self.dir).ok();
        } else {
            eprintln!("labeld test directory kept: {}", self.dir.display());
        }
    }
}
