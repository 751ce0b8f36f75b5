//! labeld's daemon benchmark (issue 5, "Performance"): a real `labeld --config FILE`
//! process (the release binary cargo builds next to this one), on a fresh state
//! directory per run, driven over ipc (or tcp loopback) by labeld's own blocking Rust
//! client, [`labeld::client::Client`]. Numbers and how they were taken: `BENCHMARKS.md`,
//! section "Daemon"; commands: `bench/daemon/README.md`.
//!
//! ```text
//! cargo bench --bench daemon -- SCENARIO [--key value]...
//! ```
//!
//! Scenarios (each run starts its own labeld and stops it with SIGTERM afterwards):
//!
//! - `accept`: durable single-label jobs/s. The `zpl-file` printer is paused, so
//!   nothing prints; `--clients` clients (a list, e.g. `1,8,32`) each keep `--window`
//!   submits in flight until `--jobs` jobs (in total) are answered. A reply `ok` means
//!   the job is committed to the spool (SQLite, WAL, synchronous=FULL).
//! - `print`: labels/s rendered and written to the ZPL file printer (`file:zpl/`, one
//!   file per label, fsynced): one `submit_batch` of `--labels` records, timed from
//!   sending it to `progress.done` in `status` (polled every `--poll-ms`; the `done`
//!   event's arrival is reported too). `--accepting N` adds N clients submitting single
//!   jobs to a second, paused printer during the whole print.
//! - `latency`: reply latency under an open-loop load: `--clients` clients together
//!   send `--rate` submits/s for `--seconds`, each at its own fixed schedule, to the
//!   printer `--to` (`zpl-file`, or `held`, which is paused first), while the file
//!   printer prints a `--background` label backlog. Latency is measured from the
//!   *scheduled* send time to the reply (a late send counts against the daemon).
//!   `--probe 1` runs an fsync probe beside labeld (4 KiB append + `fdatasync` every
//!   20 ms in its state directory) and prints its worst stalls next to the slowest
//!   replies; `TIMELINE=FILE` in the environment writes every submit as CSV.
//! - `rss`: VmRSS of labeld after every `--batch` labels up to `--labels` labels, all
//!   printed to the file printer (files deleted after each batch). `--print 0` keeps
//!   the printer paused (batches only accepted); `--status 0` skips the `status` of
//!   each finished batch.
//! - `first-byte`: time from sending a submit to the first byte at a TCP ZPL printer
//!   emulated in this process, over `--jobs` single-label jobs, one at a time, with the
//!   printer's `confirm` off, on, or `both`.
//! - `fsync`: what one `fsync` costs on the benchmark's directory (files like the file
//!   printer's, one after another and 16 at a time).
//! - `all`: every scenario above with its defaults (`--runs` runs each).
//!
//! Common options: `--runs N` (default 3), `--endpoint ipc|tcp` (accept, latency),
//! `--dir DIR` (where the state directories go; default the system temp directory),
//! `--labeld PATH` (default: the labeld cargo built with this benchmark), `KEEP=1` in
//! the environment keeps the state directories. labeld inherits the environment (so
//! `MALLOC_ARENA_MAX=1` or `LABELD_LOG` reach it). After each run the state directory
//! is removed and `sync(2)` called, so one run's writes are not flushed on the next
//! run's fsyncs. Nothing here asserts: it prints what it saw, one `RESULT` line per run.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use labeld::client::{Client, Subscriber};
use serde_json::{json, Map, Value};

/// How long a reply may take before the run counts it lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long labeld may take to answer `health` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

fn main() {
    // `cargo bench` appends `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Err(e) = run(&args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// `--key value` pairs after the scenario name.
struct Opts {
    values: HashMap<String, String>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let Some(name) = key.strip_prefix("--") else {
                bail!("unexpected argument {key:?} (options are --key value)");
            };
            let value = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
            values.insert(name.to_owned(), value.clone());
        }
        Ok(Opts { values })
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow!("--{name} {v:?} is not a valid value")),
        }
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn list(&self, name: &str, default: &str) -> Result<Vec<usize>> {
        self.text(name, default)
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|_| anyhow!("--{name}: {s:?} is not a number"))
            })
            .collect()
    }
}

/// Where labeld is and where its directories go.
#[derive(Clone)]
struct Env {
    labeld: PathBuf,
    base: PathBuf,
    keep: bool,
    /// `--printer-dir DIR`: the `zpl-file` printer's directory goes under DIR (a
    /// symlink from the state directory), e.g. `/dev/shm` to take its writes and
    /// fsyncs off the spool's disk.
    printer_dir: Option<PathBuf>,
}

fn run(args: &[String]) -> Result<()> {
    let Some((scenario, rest)) = args.split_first() else {
        bail!("usage: daemon accept|print|latency|rss|first-byte|fsync|all [--key value]... (see bench/daemon/README.md)");
    };
    let opts = Opts::parse(rest)?;
    let env = Env {
        labeld: PathBuf::from(opts.text("labeld", env!("CARGO_BIN_EXE_labeld"))),
        base: opts
            .values
            .get("dir")
            .map_or_else(std::env::temp_dir, PathBuf::from),
        keep: std::env::var_os("KEEP").is_some_and(|v| v == "1"),
        printer_dir: opts.values.get("printer-dir").map(PathBuf::from),
    };
    print_machine(&env);
    match scenario.as_str() {
        "accept" => accept(&env, &opts),
        "print" => print(&env, &opts),
        "latency" => latency(&env, &opts),
        "rss" => rss(&env, &opts),
        "first-byte" => first_byte(&env, &opts),
        "fsync" => fsync(&env, &opts),
        "all" => {
            fsync(&env, &opts)?;
            accept(&env, &opts)?;
            print(&env, &opts)?;
            latency(&env, &opts)?;
            first_byte(&env, &opts)?;
            rss(&env, &opts)
        }
        other => bail!("unknown scenario {other:?}"),
    }
}

fn print_machine(env: &Env) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "machine: {cpus} cpus, {model:?}; load {}; labeld {}; state under {}{}",
        load(),
        env.labeld.display(),
        env.base.display(),
        env.printer_dir
            .as_ref()
            .map(|p| format!("; zpl-file printer under {}", p.display()))
            .unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------

/// `/proc/loadavg`'s three averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds the whole machine spent busy so far (`/proc/stat`: every CPU's time
/// but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let line = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4) && *i < 8)
        .map(|(_, v)| v)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    busy as f64 / hz as f64
}

/// What else ran while a measurement did: CPU seconds of everything but labeld and this
/// benchmark process since `from` (a [`machine_busy_seconds`], labeld's and our own CPU
/// seconds then).
struct OtherCpu {
    machine: f64,
    labeld: f64,
    bench: f64,
}

impl OtherCpu {
    fn start(labeld_pid: u32) -> OtherCpu {
        OtherCpu {
            machine: machine_busy_seconds(),
            labeld: cpu_seconds(labeld_pid),
            bench: cpu_seconds(std::process::id()),
        }
    }

    /// "others' CPU N % of one core" over `elapsed`.
    fn report(&self, labeld_pid: u32, elapsed: Duration) -> String {
        let others = (machine_busy_seconds() - self.machine)
            - (cpu_seconds(labeld_pid) - self.labeld)
            - (cpu_seconds(std::process::id()) - self.bench);
        format!(
            "others' CPU {:.0} % of one core",
            100.0 * others.max(0.0) / elapsed.as_secs_f64().max(1e-9)
        )
    }
}

/// `SMAPS=1` (rss): labeld's resident memory by mapping, largest first (`[heap]`, the
/// unnamed mappings that hold glibc's thread arenas and big allocations, the binary,
/// …), to see what the RSS is made of.
fn resident_by_mapping(pid: u32) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut by_name: std::collections::BTreeMap<String, (u64, usize)> = Default::default();
    let mut name = String::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            name = fields.nth(4).unwrap_or("[anon]").to_owned();
        } else if first == "Rss:" {
            let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let entry = by_name.entry(name.clone()).or_default();
            entry.0 += kb;
            entry.1 += 1;
        }
    }
    let mut list: Vec<(String, (u64, usize))> = by_name.into_iter().collect();
    list.sort_by_key(|b| std::cmp::Reverse(b.1 .0));
    list.iter()
        .take(6)
        .map(|(n, (kb, count))| format!("{n} {kb} kB ({count} mappings)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), or `Threads`.
fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (`/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

// ---------------------------------------------------------------------------------------
// A labeld process
// ---------------------------------------------------------------------------------------

/// A running labeld on its own state directory.
struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
    /// Request endpoints.
    ipc: String,
    tcp: String,
    /// Event endpoint (ipc).
    events: String,
    keep: bool,
    /// The printer's directory when it is elsewhere (`--printer-dir`).
    printer_dir: Option<PathBuf>,
}

/// A free loopback port (bound, read, released).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

const PRINTERS: &str = r#"
# The printer the benchmark prints to: one .zpl file per label, fsynced.
[[printer]]
name = "zpl-file"
model = "zpl-203"
uri = "file:zpl/"

# A second printer, paused by the runs that want jobs accepted but not printed.
[[printer]]
name = "held"
model = "zpl-203"
uri = "file:held/"
"#;

impl Daemon {
    /// Starts labeld with the benchmark printers plus `extra` config text.
    fn start(env: &Env, extra: &str) -> Result<Daemon> {
        let dir = env.base.join(format!(
            "labeld-bench-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).ok();
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let printer_dir = match &env.printer_dir {
            Some(base) => {
                let target = base.join(dir.file_name().unwrap_or_default()).join("zpl");
                std::fs::create_dir_all(&target)
                    .with_context(|| format!("create {}", target.display()))?;
                std::os::unix::fs::symlink(&target, dir.join("zpl"))
                    .with_context(|| format!("link {}", target.display()))?;
                target.parent().map(Path::to_path_buf)
            }
            None => None,
        };
        let port = free_port()?;
        // The daemon's defaults (reply_timeout_ms, max_pending, max_batch_labels, …)
        // except the endpoints and where things go.
        let config = format!(
            r#"[daemon]
state_dir = "{dir}"
runtime_dir = "run"
requests = ["ipc://requests.sock", "tcp://127.0.0.1:{port}"]
events = ["ipc://events.sock"]

[[serial_range]]
mailer_id = "123456"
first = 1
last = 999999999
{PRINTERS}
{extra}
"#,
            dir = dir.display()
        );
        let config_path = dir.join("labeld.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.join("labeld.log"))?;
        let child = Command::new(&env.labeld)
            .arg("--config")
            .arg(&config_path)
            .env_remove("LABELD_STATE_DIR")
            .env_remove("STATE_DIRECTORY")
            .env_remove("RUNTIME_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", env.labeld.display()))?;
        let run = dir.join("run");
        let mut d = Daemon {
            ipc: format!("ipc://{}", run.join("requests.sock").display()),
            tcp: format!("tcp://127.0.0.1:{port}"),
            events: format!("ipc://{}", run.join("events.sock").display()),
            dir,
            child: Some(child),
            keep: env.keep,
            printer_dir,
        };
        d.wait_ready()?;
        Ok(d)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("labeld exited during start ({status}):\n{}", self.log());
                }
            }
            if let Ok(mut c) = Client::connect(&self.ipc, Duration::from_millis(500)) {
                if let Ok(reply) = c.request(json!({"op": "health"})) {
                    if reply["ok"] == true {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("labeld did not answer health in time:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("labeld.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn endpoint(&self, kind: &str) -> &str {
        if kind == "tcp" {
            &self.tcp
        } else {
            &self.ipc
        }
    }

    fn client(&self, kind: &str) -> Result<Client> {
        Client::connect(self.endpoint(kind), REPLY_TIMEOUT)
            .with_context(|| format!("connect to {}", self.endpoint(kind)))
    }

    /// One request on a new ipc client; an error reply is an error.
    fn request(&self, request: Value) -> Result<Value> {
        let reply = self.client("ipc")?.request(request)?;
        if reply["ok"] != true {
            bail!("labeld refused: {reply}");
        }
        Ok(reply)
    }

    fn pause(&self, printer: &str) -> Result<()> {
        self.request(json!({"op": "pause", "printer": printer}))
            .map(|_| ())
    }

    fn rss_kb(&self) -> u64 {
        status_field(self.pid(), "VmRSS")
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// SIGTERM, wait for the exit, remove the directory.
    fn stop(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on a child we own.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        println!("  note: labeld exited with {status}");
                    }
                    break;
                }
                if Instant::now() > deadline {
                    println!("  note: labeld did not stop within 60 s of SIGTERM; killed");
                    child.kill().ok();
                    child.wait().ok();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let warnings: Vec<String> = self
            .log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
            .map(str::to_owned)
            .collect();
        for w in warnings {
            println!("  labeld log: {w}");
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if self.keep {
            println!("  kept {}", self.dir.display());
        } else {
            std::fs::remove_dir_all(&self.dir).ok();
            if let Some(p) = &self.printer_dir {
                std::fs::remove_dir_all(p).ok();
            }
        }
        // Let the disk settle: this run's writes and deletions are not flushed on the
        // next run's fsyncs.
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
        thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------

const FROM: [&str; 3] = ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"];

/// A 9-digit ZIP+4 routing code, different per label.
fn routing(n: usize) -> String {
    format!("98765{:04}", n % 10_000)
}

fn to_lines(n: usize) -> Value {
    json!([
        format!("RESIDENT {n}"),
        format!("{} MAIN ST", 100 + n % 9_000),
        "ANYTOWN ST 98765-4321"
    ])
}

/// The issue's 4x6 address label with a serial labeld allocates.
fn address_job(n: usize) -> Value {
    json!({"template": "address", "size": "4x6",
           "imb": {"mailer_id": "123456", "service_type": "270", "routing": routing(n)},
           "to": to_lines(n), "from": FROM})
}

fn submit(printer: &str, job_id: &str, n: usize) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "op": "submit", "printer": printer, "job_id": job_id, "job": address_job(n)
    }) else {
        unreachable!("a literal object")
    };
    map
}

fn batch(printer: &str, job_id: &str, first: usize, labels: usize) -> Value {
    let records: Vec<Value> = (first..first + labels)
        .map(|n| {
            json!({"to": to_lines(n),
                   "imb": {"mailer_id": "123456", "service_type": "270", "routing": routing(n)}})
        })
        .collect();
    json!({"op": "submit_batch", "printer": printer, "job_id": job_id,
           "template": {"template": "address", "size": "4x6", "from": FROM,
                        "imb": {"mailer_id": "123456", "service_type": "270"}},
           "records": records})
}

// ---------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// "median (min–max)" of per-run values.
fn spread(values: &[f64], digits: usize) -> String {
    let s = sorted(values.to_vec());
    if s.is_empty() {
        return "-".into();
    }
    format!(
        "median {:.*} (min {:.*}, max {:.*}, {} runs)",
        digits,
        pct(&s, 50.0),
        digits,
        s[0],
        digits,
        s[s.len() - 1],
        s.len()
    )
}

// ---------------------------------------------------------------------------------------
// 1. Durable jobs/s accepted
// ---------------------------------------------------------------------------------------

/// What one pipelining client saw.
#[derive(Default)]
struct ClientTally {
    ok: usize,
    busy: usize,
    other: Vec<String>,
    latencies_ms: Vec<f64>,
}

/// Submits `jobs` single-label jobs to `printer`, `window` in flight.
fn pipeline(
    client: &mut Client,
    printer: &str,
    tag: &str,
    jobs: usize,
    window: usize,
) -> Result<ClientTally> {
    let mut tally = ClientTally {
        latencies_ms: Vec::with_capacity(jobs),
        ..ClientTally::default()
    };
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(window * 2);
    let mut next = 0;
    let mut answered = 0;
    while answered < jobs {
        while sent_at.len() < window && next < jobs {
            let id = client.send(submit(printer, &format!("{tag}-{next}"), next))?;
            sent_at.insert(id.to_string(), Instant::now());
            next += 1;
        }
        let reply = client.recv()?;
        let now = Instant::now();
        if let Some(t) = sent_at.remove(&reply["id"].to_string()) {
            tally.latencies_ms.push(ms(now - t));
        } else {
            tally.other.push(format!("reply to an unknown id: {reply}"));
            continue;
        }
        answered += 1;
        if reply["ok"] == true {
            tally.ok += 1;
        } else if reply["error"]["code"] == "busy" {
            tally.busy += 1;
        } else if tally.other.len() < 3 {
            tally.other.push(reply.to_string());
        }
    }
    Ok(tally)
}

struct AcceptRun {
    jobs_per_s: f64,
    p50: f64,
    p99: f64,
}

fn accept_once(
    env: &Env,
    kind: &str,
    clients: usize,
    window: usize,
    jobs: usize,
    run: usize,
) -> Result<AcceptRun> {
    let d = Daemon::start(env, "")?;
    d.pause("zpl-file")?;
    // Warm-up, untimed: caches, the spool's first pages, the office's first rounds.
    let warmup = 500;
    pipeline(&mut d.client(kind)?, "zpl-file", "warm", warmup, window)?;

    let per_client = jobs.div_ceil(clients);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let barrier = Arc::clone(&barrier);
            let mut client = d.client(kind)?;
            Ok(thread::spawn(move || {
                barrier.wait();
                pipeline(
                    &mut client,
                    "zpl-file",
                    &format!("c{c}"),
                    per_client,
                    window,
                )
            }))
        })
        .collect::<Result<_>>()?;
    let load_before = load();
    let cpu0 = d.cpu();
    barrier.wait();
    let t0 = Instant::now();
    let mut all = ClientTally::default();
    for w in workers {
        let t = w.join().map_err(|_| anyhow!("client thread panicked"))??;
        all.ok += t.ok;
        all.busy += t.busy;
        all.other.extend(t.other);
        all.latencies_ms.extend(t.latencies_ms);
    }
    let elapsed = t0.elapsed();
    let cpu = d.cpu() - cpu0;
    let health = d.request(json!({"op": "health"}))?;
    let open = health["open_labels"].as_u64().unwrap_or(0);
    let lat = sorted(std::mem::take(&mut all.latencies_ms));
    let r = AcceptRun {
        jobs_per_s: all.ok as f64 / elapsed.as_secs_f64(),
        p50: pct(&lat, 50.0),
        p99: pct(&lat, 99.0),
    };
    let spool_kb = dir_kb(&d.dir, "spool.sqlite");
    println!(
        "RESULT accept endpoint={kind} clients={clients} window={window} run={run}: {} accepted, {} busy, {} other in {:.2} s = {:.0} jobs/s; reply (closed loop) p50 {:.2} ms p99 {:.2} ms max {:.2} ms; labeld CPU {:.2} s ({:.0} % of one core); RSS {} kB; spool {} kB; open_labels {} (expected {}); load before {}",
        all.ok,
        all.busy,
        all.other.len(),
        elapsed.as_secs_f64(),
        r.jobs_per_s,
        r.p50,
        r.p99,
        lat.last().copied().unwrap_or(f64::NAN),
        cpu,
        100.0 * cpu / elapsed.as_secs_f64(),
        d.rss_kb(),
        spool_kb,
        open,
        all.ok + warmup,
        load_before,
    );
    for o in all.other.iter().take(3) {
        println!("  unexpected reply: {o}");
    }
    d.stop()?;
    Ok(r)
}

/// Size of the spool file and its WAL, kB.
fn dir_kb(dir: &Path, spool: &str) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(dir.join(format!("{spool}{s}"))).ok())
        .map(|m| m.len() / 1024)
        .sum()
}

fn accept(env: &Env, opts: &Opts) -> Result<()> {
    let runs = opts.get("runs", 3)?;
    let window = opts.get("window", 32)?;
    let jobs = opts.get("jobs", 20_000)?;
    let kinds = opts.text("endpoint", "ipc");
    println!("\n== accept: durable single-label jobs/s, printer paused, window {window}, {jobs} jobs per run");
    for kind in kinds.split(',') {
        for clients in opts.list("clients", "1,8,32")? {
            let mut rates = Vec::new();
            let mut p99s = Vec::new();
            for run in 1..=runs {
                let r = accept_once(env, kind, clients, window, jobs, run)?;
                rates.push(r.jobs_per_s);
                p99s.push(r.p99);
            }
            println!(
                "SUMMARY accept endpoint={kind} clients={clients} window={window}: jobs/s {}; closed-loop p99 ms {}",
                spread(&rates, 0),
                spread(&p99s, 2)
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Labels/s printed to the file printer
// ---------------------------------------------------------------------------------------

/// Waits on the event socket for `done` of `job_id`; returns when it arrived.
fn done_watcher(
    events: String,
    job_id: String,
    stop: Arc<AtomicBool>,
) -> Result<(
    thread::JoinHandle<Option<Instant>>,
    std::sync::mpsc::Receiver<()>,
)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = thread::spawn(move || {
        let topic = format!("job.{job_id}");
        let Ok(mut sub) = Subscriber::connect(&events, &[&topic], Duration::from_secs(10)) else {
            return None;
        };
        ready_tx.send(()).ok();
        while !stop.load(Ordering::Relaxed) {
            match sub.next(Duration::from_millis(200)) {
                Ok(Some(r)) if r.topic == topic && r.event["event"] == "done" => {
                    return Some(Instant::now());
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    });
    Ok((handle, ready_rx))
}

/// Polls `status` of `job_id` until `progress.done`; the final status.
fn poll_done(
    client: &mut Client,
    job_id: &str,
    every: Duration,
    limit: Duration,
) -> Result<(Instant, Value, Vec<f64>)> {
    let deadline = Instant::now() + limit;
    let mut poll_ms = Vec::new();
    loop {
        thread::sleep(every);
        let t = Instant::now();
        let status = client.request(json!({"op": "status", "job_id": job_id}))?;
        let now = Instant::now();
        poll_ms.push(ms(now - t));
        if status["progress"]["done"] == true {
            return Ok((now, status, poll_ms));
        }
        if now > deadline {
            bail!("{job_id} not done within {limit:?}: {}", status["progress"]);
        }
    }
}

/// Files in `dir` and their total size; removes them when `remove`.
fn count_files(dir: &Path, remove: bool) -> (usize, u64, bool) {
    let mut n = 0;
    let mut bytes = 0;
    let mut zpl_ok = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            n += 1;
            let path = e.path();
            bytes += e.metadata().map_or(0, |m| m.len());
            if n % 1000 == 1 {
                let head = std::fs::read(&path).unwrap_or_default();
                zpl_ok &= head.starts_with(b"^XA") || head.windows(3).any(|w| w == b"^XA");
            }
            if remove {
                std::fs::remove_file(&path).ok();
            }
        }
    }
    (n, bytes, zpl_ok)
}

/// Clients submitting single jobs to the paused `held` printer until told to stop.
fn accepting_clients(
    d: &Daemon,
    clients: usize,
    window: usize,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<thread::JoinHandle<Result<ClientTally>>>> {
    (0..clients)
        .map(|c| {
            let mut client = d.client("ipc")?;
            let stop = Arc::clone(stop);
            Ok(thread::spawn(move || {
                let mut all = ClientTally::default();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Rounds of 200 jobs, so the stop flag is seen often.
                    let t = pipeline(&mut client, "held", &format!("a{c}-{round}"), 200, window)?;
                    all.ok += t.ok;
                    all.busy += t.busy;
                    all.other.extend(t.other);
                    all.latencies_ms.extend(t.latencies_ms);
                    round += 1;
                }
                Ok(all)
            }))
        })
        .collect()
}

fn print_once(
    env: &Env,
    labels: usize,
    accepting: usize,
    poll: Duration,
    run: usize,
) -> Result<f64> {
    let d = Daemon::start(env, "")?;
    if accepting > 0 {
        d.pause("held")?;
    }
    let job_id = format!("batch-{run}");
    let stop = Arc::new(AtomicBool::new(false));
    let (watcher, ready) = done_watcher(d.events.clone(), job_id.clone(), Arc::clone(&stop))?;
    ready
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| anyhow!("no event subscription"))?;
    thread::sleep(Duration::from_millis(300)); // the subscription reaches labeld
    let request = batch("zpl-file", &job_id, 0, labels);
    let request_bytes = request.to_string().len();
    let mut client = d.client("ipc")?;

    let acc_stop = Arc::new(AtomicBool::new(false));
    let acc = accepting_clients(&d, accepting, 32, &acc_stop)?;
    let load_before = load();
    let cpu0 = d.cpu();
    let others = OtherCpu::start(d.pid());
    let t0 = Instant::now();
    let reply = client.request(request)?;
    let t_accepted = Instant::now();
    if reply["ok"] != true {
        bail!("batch refused: {reply}");
    }
    let (t_done, status, polls) = poll_done(&mut client, &job_id, poll, Duration::from_secs(3600))?;
    acc_stop.store(true, Ordering::Relaxed);
    let acc_end = Instant::now();
    let cpu = d.cpu() - cpu0;
    let others = others.report(d.pid(), acc_end - t0);
    let mut acc_all = ClientTally::default();
    for h in acc {
        let t = h.join().map_err(|_| anyhow!("client thread panicked"))??;
        acc_all.ok += t.ok;
        acc_all.busy += t.busy;
        acc_all.other.extend(t.other);
        acc_all.latencies_ms.extend(t.latencies_ms);
    }
    let acc_elapsed = acc_end - t0;
    let event_done = {
        // The done event was published before the status poll saw it; give it a moment.
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        watcher.join().ok().flatten()
    };
    let printed = status["progress"]["printed"].as_u64().unwrap_or(0);
    let status_kb = status.to_string().len() / 1024;
    let (files, bytes, zpl_ok) = count_files(&d.dir.join("zpl"), false);
    let total = t_done - t0;
    let rate = printed as f64 / total.as_secs_f64();
    let polls = sorted(polls);
    println!(
        "RESULT print labels={labels} accepting={accepting} run={run}: batch request {} kB accepted in {:.0} ms; {printed} printed, {files} files ({} kB, {:.0} B/label, ZPL {}), submit→done (status poll every {} ms) {:.2} s = {:.0} labels/s; accepted→done {:.2} s = {:.0} labels/s; done event at {}; status request {:.1}–{:.1} ms ({status_kb} kB reply when done); labeld CPU {:.2} s ({:.0} % of one core); {others}; RSS {} kB; load before {}",
        request_bytes / 1024,
        ms(t_accepted - t0),
        bytes / 1024,
        bytes as f64 / files.max(1) as f64,
        if zpl_ok { "ok" } else { "NOT ZPL" },
        poll.as_millis(),
        total.as_secs_f64(),
        rate,
        (t_done - t_accepted).as_secs_f64(),
        printed as f64 / (t_done - t_accepted).as_secs_f64(),
        event_done.map_or("-".into(), |t| format!("{:.2} s", (t - t0).as_secs_f64())),
        polls.first().copied().unwrap_or(f64::NAN),
        polls.last().copied().unwrap_or(f64::NAN),
        cpu,
        100.0 * cpu / total.as_secs_f64(),
        d.rss_kb(),
        load_before,
    );
    if accepting > 0 {
        let lat = sorted(std::mem::take(&mut acc_all.latencies_ms));
        println!(
            "RESULT print-accepting labels={labels} accepting={accepting} run={run}: meanwhile {} jobs accepted, {} busy, {} other in {:.2} s = {:.0} jobs/s; reply (closed loop, window 32) p50 {:.2} ms p99 {:.2} ms",
            acc_all.ok,
            acc_all.busy,
            acc_all.other.len(),
            acc_elapsed.as_secs_f64(),
            acc_all.ok as f64 / acc_elapsed.as_secs_f64(),
            pct(&lat, 50.0),
            pct(&lat, 99.0),
        );
    }
    d.stop()?;
    Ok(rate)
}

fn print(env: &Env, opts: &Opts) -> Result<()> {
    let runs = opts.get("runs", 3)?;
    let labels = opts.get("labels", 10_000)?;
    let poll = Duration::from_millis(opts.get("poll-ms", 250)?);
    println!("\n== print: one {labels}-record submit_batch to the ZPL file printer");
    for accepting in opts.list("accepting", "0,4")? {
        let mut rates = Vec::new();
        for run in 1..=runs {
            rates.push(print_once(env, labels, accepting, poll, run)?);
        }
        println!(
            "SUMMARY print labels={labels} accepting={accepting}: labels/s (submit→done) {}",
            spread(&rates, 0)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Reply latency under an open-loop load
// ---------------------------------------------------------------------------------------

struct Paced {
    /// Scheduled send → reply.
    from_schedule_ms: Vec<f64>,
    /// Actual send → reply.
    from_send_ms: Vec<f64>,
    /// Sends more than 1 ms behind schedule.
    late: usize,
    /// Per submit: (client, index, due, sent, replied), ms from the start.
    timeline: Vec<(usize, usize, f64, f64, f64)>,
    ok: usize,
    other: Vec<String>,
}

/// One open-loop latency run's settings.
struct LatencyPlan<'a> {
    kind: &'a str,
    rate: f64,
    clients: usize,
    seconds: f64,
    background: usize,
    /// The printer the paced submits go to (`held` is paused first).
    to: &'a str,
    /// Run an fsync probe beside labeld (see [`FsyncProbe`]).
    probe: bool,
}

/// A thread that appends 4 KiB to a file in labeld's state directory and
/// `fdatasync`s it every 20 ms, to see what the disk does while labeld runs.
struct FsyncProbe {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(f64, f64)>>,
}

impl FsyncProbe {
    fn start(dir: &Path, start: Instant) -> Result<FsyncProbe> {
        let mut file = std::fs::File::create(dir.join("fsync-probe"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let body = vec![b'p'; 4096];
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if file.write_all(&body).is_err() {
                    break;
                }
                let t = Instant::now();
                if file.sync_data().is_err() {
                    break;
                }
                seen.push((ms(t.saturating_duration_since(start)), ms(t.elapsed())));
                thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        Ok(FsyncProbe { stop, handle })
    }

    /// (when, how long) of every probe fsync, ms.
    fn finish(self) -> Vec<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn latency_once(env: &Env, plan: &LatencyPlan<'_>, run: usize) -> Result<(f64, f64)> {
    let LatencyPlan {
        kind,
        rate,
        clients,
        seconds,
        background,
        to,
        probe,
    } = *plan;
    let d = Daemon::start(env, "")?;
    if to == "held" {
        d.pause("held")?;
    }
    // Keep the file printer printing during the whole window.
    let mut bg_ids = Vec::new();
    let mut left = background;
    let mut first = 0;
    while left > 0 {
        let n = left.min(10_000);
        let id = format!("bg-{first}");
        let reply = d.client("ipc")?.request(batch("zpl-file", &id, first, n))?;
        if reply["ok"] != true {
            bail!("background batch refused: {reply}");
        }
        bg_ids.push(id);
        first += n;
        left -= n;
    }
    let printed_now = |d: &Daemon| -> Result<u64> {
        let mut c = d.client("ipc")?;
        let mut sum = 0;
        for id in &bg_ids {
            let s = c.request(json!({"op": "status", "job_id": id}))?;
            sum += s["progress"]["printed"].as_u64().unwrap_or(0);
        }
        Ok(sum)
    };
    // Let the printer get going.
    thread::sleep(Duration::from_millis(500));
    let printed_before = printed_now(&d)?;

    let interval = Duration::from_secs_f64(clients as f64 / rate);
    let per_client = (seconds * rate / clients as f64).round() as usize;
    let start = Instant::now() + Duration::from_millis(300);
    let probe = if probe {
        Some(FsyncProbe::start(&d.dir, start)?)
    } else {
        None
    };
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let mut client = d.client(kind)?;
            let to = to.to_owned();
            Ok(thread::spawn(move || -> Result<Paced> {
                let offset = interval.mul_f64(c as f64 / clients as f64);
                let mut p = Paced {
                    from_schedule_ms: Vec::with_capacity(per_client),
                    from_send_ms: Vec::with_capacity(per_client),
                    late: 0,
                    ok: 0,
                    other: Vec::new(),
                    timeline: Vec::with_capacity(per_client),
                };
                for i in 0..per_client {
                    let due = start + offset + interval.mul_f64(i as f64);
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    let sent = Instant::now();
                    if sent - due > Duration::from_millis(1) {
                        p.late += 1;
                    }
                    let reply = client.request(Value::Object(submit(
                        &to,
                        &format!("p{c}-{i}"),
                        i * clients + c,
                    )))?;
                    let got = Instant::now();
                    p.from_schedule_ms.push(ms(got - due));
                    p.from_send_ms.push(ms(got - sent));
                    p.timeline
                        .push((c, i, ms(due - start), ms(sent - start), ms(got - start)));
                    if reply["ok"] == true {
                        p.ok += 1;
                    } else if p.other.len() < 3 {
                        p.other.push(reply.to_string());
                    }
                }
                Ok(p)
            }))
        })
        .collect::<Result<_>>()?;
    let load_before = load();
    let cpu0 = d.cpu();
    let others = OtherCpu::start(d.pid());
    let mut sched = Vec::new();
    let mut send = Vec::new();
    let mut late = 0;
    let mut ok = 0;
    let mut other = Vec::new();
    let mut timeline = Vec::new();
    for w in workers {
        let mut p = w.join().map_err(|_| anyhow!("client thread panicked"))??;
        timeline.append(&mut p.timeline);
        sched.extend(p.from_schedule_ms);
        send.extend(p.from_send_ms);
        late += p.late;
        ok += p.ok;
        other.extend(p.other);
    }
    let elapsed = start.elapsed();
    let cpu = d.cpu() - cpu0;
    let others = others.report(d.pid(), elapsed);
    if let Some(probe) = probe {
        let seen = probe.finish();
        let durations = sorted(seen.iter().map(|s| s.1).collect());
        let mut worst = seen.clone();
        worst.sort_by(|a, b| b.1.total_cmp(&a.1));
        let worst: Vec<String> = worst
            .iter()
            .take(5)
            .map(|(at, took)| format!("{took:.0} ms at {:.2} s", at / 1e3))
            .collect();
        println!(
            "  fsync probe (4 KiB append + fdatasync every 20 ms beside labeld): {} fsyncs, p50 {:.2} p99 {:.2} max {:.2} ms, {} over 10 ms; worst: {}",
            durations.len(),
            pct(&durations, 50.0),
            pct(&durations, 99.0),
            durations.last().copied().unwrap_or(f64::NAN),
            durations.iter().filter(|&&v| v > 10.0).count(),
            worst.join(", ")
        );
    }
    let printed_after = printed_now(&d)?;
    let sched = sorted(sched);
    let send = sorted(send);
    let mut slowest: Vec<(f64, f64)> = timeline
        .iter()
        .map(|&(_, _, _, sent, got)| (sent, got - sent))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let slowest: Vec<String> = slowest
        .iter()
        .take(5)
        .map(|(at, took)| format!("{took:.0} ms at {:.2} s", at / 1e3))
        .collect();
    println!("  slowest replies (from send): {}", slowest.join(", "));
    if let Some(path) = std::env::var_os("TIMELINE") {
        // TIMELINE=FILE: every submit as CSV, for looking at stalls.
        let mut csv = String::from("client,index,due_ms,sent_ms,reply_ms\n");
        for (c, i, due, sent, got) in &timeline {
            csv.push_str(&format!("{c},{i},{due:.3},{sent:.3},{got:.3}\n"));
        }
        let path = PathBuf::from(path).with_extension(format!("run{run}.csv"));
        std::fs::write(&path, csv)?;
        println!("  timeline: {}", path.display());
    }
    let n = sched.len();
    let over_10 = sched.iter().filter(|&&v| v > 10.0).count();
    let health = d.request(json!({"op": "health"}))?;
    println!(
        "RESULT latency endpoint={kind} rate={rate} clients={clients} to={to} background={background} run={run}: {n} submits ({ok} ok, {} other, {late} sent >1 ms late) in {:.2} s = {:.0}/s; reply from schedule p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms, {over_10} over 10 ms; from actual send p50 {:.2} p99 {:.2} max {:.2} ms; background printing {} labels in the window = {:.0} labels/s; open_labels at the end {}; labeld CPU {:.0} % of one core; {}; load before {}",
        other.len(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(&sched, 50.0),
        pct(&sched, 90.0),
        pct(&sched, 99.0),
        pct(&sched, 99.9),
        sched.last().copied().unwrap_or(f64::NAN),
        pct(&send, 50.0),
        pct(&send, 99.0),
        send.last().copied().unwrap_or(f64::NAN),
        printed_after - printed_before,
        (printed_after - printed_before) as f64 / elapsed.as_secs_f64(),
        health["open_labels"],
        100.0 * cpu / elapsed.as_secs_f64(),
        others,
        load_before,
    );
    for o in other.iter().take(3) {
        println!("  unexpected reply: {o}");
    }
    d.stop()?;
    Ok((pct(&sched, 50.0), pct(&sched, 99.0)))
}

fn latency(env: &Env, opts: &Opts) -> Result<()> {
    let runs = opts.get("runs", 3)?;
    let rate: f64 = opts.get("rate", 500.0)?;
    let clients = opts.get("clients", 10)?;
    let seconds: f64 = opts.get("seconds", 20.0)?;
    let background = opts.get("background", 30_000)?;
    let kinds = opts.text("endpoint", "ipc");
    let to = opts.text("to", "zpl-file");
    println!("\n== latency: {rate} submits/s open loop from {clients} clients for {seconds} s to {to}, file printer printing a {background}-label backlog");
    for kind in kinds.split(',') {
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=runs {
            let plan = LatencyPlan {
                kind,
                rate,
                clients,
                seconds,
                background,
                to: &to,
                probe: opts.get("probe", 0)? == 1,
            };
            let (p50, p99) = latency_once(env, &plan, run)?;
            p50s.push(p50);
            p99s.push(p99);
        }
        println!(
            "SUMMARY latency endpoint={kind} rate={rate} to={to} background={background}: p50 ms {}; p99 ms {}",
            spread(&p50s, 2),
            spread(&p99s, 2)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. RSS after 100,000 labels
// ---------------------------------------------------------------------------------------

fn rss(env: &Env, opts: &Opts) -> Result<()> {
    let total = opts.get("labels", 100_000)?;
    let per = opts.get("batch", 10_000)?;
    // `--print 0`: the printer stays paused, batches are only accepted (to tell what
    // accepting costs from what printing costs).
    let printing = opts.get("print", 1)? == 1;
    // `--status 0`: no `status` of the finished batch (its reply lists every label).
    let with_status = opts.get("status", 1)? == 1;
    println!(
        "\n== rss: {total} labels {} in batches of {per}",
        if printing {
            "printed to the file printer"
        } else {
            "accepted (printer paused)"
        }
    );
    let d = Daemon::start(env, "")?;
    if !printing {
        d.pause("zpl-file")?;
    }
    let pid = d.pid();
    println!(
        "RESULT rss labels=0: VmRSS {} kB, VmHWM {} kB, threads {}",
        status_field(pid, "VmRSS"),
        status_field(pid, "VmHWM"),
        status_field(pid, "Threads")
    );
    let mut client = d.client("ipc")?;
    let t0 = Instant::now();
    let mut done = 0;
    let mut rss_values = Vec::new();
    let mut k = 0;
    while done < total {
        let n = per.min(total - done);
        let job_id = format!("rss-{k}");
        let tb = Instant::now();
        if !printing {
            let reply = client.request(batch("zpl-file", &job_id, done, n))?;
            if reply["ok"] != true {
                bail!("batch refused: {reply}");
            }
            done += n;
            k += 1;
            let rss = status_field(pid, "VmRSS");
            rss_values.push(rss as f64);
            println!(
                "RESULT rss accepted={done}: VmRSS {rss} kB, VmHWM {} kB, threads {}; batch accepted in {:.2} s; spool {} kB",
                status_field(pid, "VmHWM"),
                status_field(pid, "Threads"),
                tb.elapsed().as_secs_f64(),
                dir_kb(&d.dir, "spool.sqlite"),
            );
            continue;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (watcher, ready) = done_watcher(d.events.clone(), job_id.clone(), Arc::clone(&stop))?;
        ready
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("no event subscription"))?;
        thread::sleep(Duration::from_millis(200));
        let tb = Instant::now();
        let reply = client.request(batch("zpl-file", &job_id, done, n))?;
        if reply["ok"] != true {
            bail!("batch refused: {reply}");
        }
        // Wait for the done event (a cheap wait); status once at the end to check.
        let got = watcher.join().ok().flatten();
        if got.is_none() {
            bail!("no done event for {job_id}");
        }
        stop.store(true, Ordering::Relaxed);
        let rss_before_status = status_field(pid, "VmRSS");
        let printed = if with_status {
            let status = client.request(json!({"op": "status", "job_id": job_id}))?;
            status["progress"]["printed"].as_u64().unwrap_or(0)
        } else {
            let h = client.request(json!({"op": "health"}))?;
            if h["open_labels"] == 0 {
                n as u64
            } else {
                0
            }
        };
        let (files, bytes, zpl_ok) = count_files(&d.dir.join("zpl"), true);
        done += n;
        k += 1;
        let rss = status_field(pid, "VmRSS");
        rss_values.push(rss as f64);
        println!(
            "RESULT rss labels={done}: VmRSS {rss} kB ({rss_before_status} kB before the status request), VmHWM {} kB, threads {}; batch printed {printed}, {files} files ({} kB, ZPL {}) removed, {:.2} s = {:.0} labels/s; spool {} kB; total {:.0} s",
            status_field(pid, "VmHWM"),
            status_field(pid, "Threads"),
            bytes / 1024,
            if zpl_ok { "ok" } else { "NOT ZPL" },
            tb.elapsed().as_secs_f64(),
            n as f64 / tb.elapsed().as_secs_f64(),
            dir_kb(&d.dir, "spool.sqlite"),
            t0.elapsed().as_secs_f64(),
        );
        if std::env::var_os("SMAPS").is_some_and(|v| v == "1") {
            println!("  resident by mapping: {}", resident_by_mapping(pid));
        }
    }
    let list: Vec<String> = rss_values.iter().map(|v| format!("{v:.0}")).collect();
    println!(
        "SUMMARY rss: VmRSS after each batch (kB): {}; max {:.0} kB; last − first {:+.0} kB; load {}",
        list.join(", "),
        rss_values.iter().copied().fold(0.0, f64::max),
        rss_values.last().copied().unwrap_or(0.0) - rss_values.first().copied().unwrap_or(0.0),
        load()
    );
    d.stop()
}

// ---------------------------------------------------------------------------------------
// 5. Submit → first byte at a TCP ZPL printer
// ---------------------------------------------------------------------------------------

/// What the emulated printer saw, with arrival times.
#[derive(Default)]
struct Seen {
    /// Every read from labeld, with its size.
    reads: Vec<(Instant, usize)>,
    /// When each label's `^XA` arrived.
    label_starts: Vec<Instant>,
    /// When each label's `^XZ` arrived.
    label_ends: Vec<Instant>,
    /// Queries answered.
    queries: HashMap<&'static str, usize>,
    garbage: usize,
}

/// A tiny Zebra on 127.0.0.1: takes `^XA…^XZ` labels, answers `~HQES`, `~HS` and the
/// odometer SGD query (formats as in `tests/emulator.rs`).
struct Emulator {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Emulator {
    fn start() -> Result<Emulator> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        // Detached: it lives as long as the benchmark process.
        thread::spawn(move || {
            let odometer = Arc::new(AtomicU64::new(1000));
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                let odometer = Arc::clone(&odometer);
                thread::spawn(move || serve_printer(stream, &shared, &odometer));
            }
        });
        Ok(Emulator { port, seen })
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

fn serve_printer(mut stream: TcpStream, seen: &Mutex<Seen>, odometer: &AtomicU64) {
    stream.set_nodelay(true).ok();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut in_label = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        let mut replies: Vec<Vec<u8>> = Vec::new();
        {
            let mut s = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.reads.push((now, n));
            let mut at = 0;
            while at < pending.len() {
                let rest = &pending[at..];
                if in_label {
                    match find(rest, b"^XZ") {
                        Some(end) => {
                            at += end + 3;
                            in_label = false;
                            s.label_ends.push(now);
                            odometer.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            // Keep the last two bytes: `^XZ` may straddle reads.
                            at = pending.len().saturating_sub(2).max(at);
                            break;
                        }
                    }
                } else if rest.starts_with(b"^XA") {
                    s.label_starts.push(now);
                    in_label = true;
                    at += 3;
                } else if rest.starts_with(b"~HQES") {
                    at += 5;
                    *s.queries.entry("~HQES").or_default() += 1;
                    replies.push(
                        b"\x02\r\nPRINTER STATUS\r\n   ERRORS:   0 00000000 00000000\r\n   WARNINGS: 0 00000000 00000000\r\n\x03".to_vec(),
                    );
                } else if rest.starts_with(b"~HS") {
                    at += 3;
                    *s.queries.entry("~HS").or_default() += 1;
                    replies.push(
                        b"\x02030,0,0,0290,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n".to_vec(),
                    );
                } else if rest.starts_with(b"~JX") {
                    at += 3; // cancel-all before each label: nothing to cancel here
                } else if rest.starts_with(b"! U1 ") {
                    let Some(end) = find(rest, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
                    at += end + 2;
                    *s.queries.entry("getvar").or_default() += 1;
                    if line.contains("odometer.total_label_count") {
                        replies.push(
                            format!("\"{}\"\r\n", odometer.load(Ordering::Relaxed)).into_bytes(),
                        );
                    } else {
                        replies.push(b"\"?\"\r\n".to_vec());
                    }
                } else if [&b"^XA"[..], b"~HQES", b"~HS", b"~JX", b"! U1 "]
                    .iter()
                    .any(|c| c.len() > rest.len() && c.starts_with(rest))
                {
                    break; // a command's start: wait for the rest
                } else {
                    if !matches!(rest[0], b'\r' | b'\n' | b' ') {
                        s.garbage += 1;
                    }
                    at += 1;
                }
            }
            pending.drain(..at);
        }
        for r in replies {
            if stream.write_all(&r).is_err() {
                return;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn first_byte_once(env: &Env, jobs: usize, confirm: bool, run: usize) -> Result<(f64, f64)> {
    let emu = Emulator::start()?;
    let extra = format!(
        "[[printer]]\nname = \"emu\"\nmodel = \"zpl-203\"\nuri = \"tcp://127.0.0.1:{}\"\nconfirm = {confirm}\n",
        emu.port
    );
    let d = Daemon::start(env, &extra)?;
    let mut sub = Subscriber::connect(&d.events, &["job.fb-"], Duration::from_secs(10))?;
    thread::sleep(Duration::from_millis(300));
    let mut client = d.client("ipc")?;
    let warmup = 5;
    let mut first_byte = Vec::new();
    let mut label_start = Vec::new();
    let mut label_end = Vec::new();
    let mut to_done = Vec::new();
    let mut reply_ms = Vec::new();
    let load_before = load();
    for i in 0..warmup + jobs {
        let job_id = format!("fb-{i}");
        let labels_before = emu.seen(|s| s.label_ends.len());
        // A varying gap, so the submits do not fall in step with any timer in labeld.
        thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 23));
        let t0 = Instant::now();
        let reply = client.request(Value::Object(submit("emu", &job_id, i)))?;
        let t_reply = Instant::now();
        if reply["ok"] != true {
            bail!("submit refused: {reply}");
        }
        // Wait for this job's done event.
        let deadline = Instant::now() + Duration::from_secs(30);
        let t_done = loop {
            if Instant::now() > deadline {
                bail!("{job_id}: no done event within 30 s:\n{}", d.log());
            }
            if let Some(r) = sub.next(Duration::from_millis(500))? {
                if r.topic == format!("job.{job_id}") && r.event["event"] == "done" {
                    break Instant::now();
                }
            }
        };
        let (fb, start, end) = emu.seen(|s| {
            (
                s.reads.iter().map(|r| r.0).find(|&t| t >= t0),
                s.label_starts.get(labels_before).copied(),
                s.label_ends.get(labels_before).copied(),
            )
        });
        if i < warmup {
            continue;
        }
        let (Some(fb), Some(start), Some(end)) = (fb, start, end) else {
            bail!("{job_id}: the printer did not see the label");
        };
        first_byte.push(ms(fb - t0));
        label_start.push(ms(start - t0));
        label_end.push(ms(end - t0));
        to_done.push(ms(t_done - t0));
        reply_ms.push(ms(t_reply - t0));
    }
    let (fb, st, en, dn, rp) = (
        sorted(first_byte),
        sorted(label_start),
        sorted(label_end),
        sorted(to_done),
        sorted(reply_ms),
    );
    let (labels, queries, garbage) = emu.seen(|s| {
        let mut q: Vec<_> = s.queries.iter().map(|(k, v)| format!("{k} {v}")).collect();
        q.sort();
        (s.label_ends.len(), q.join(", "), s.garbage)
    });
    println!(
        "RESULT first-byte confirm={confirm} run={run}: {jobs} jobs (after {warmup} warm-up), one at a time; submit→reply p50 {:.2} p99 {:.2} ms; submit→first byte p50 {:.2} p99 {:.2} max {:.2} ms; submit→^XA p50 {:.2} p99 {:.2} ms; submit→^XZ p50 {:.2} p99 {:.2} ms; submit→done event p50 {:.2} p99 {:.2} ms; printer saw {labels} labels, queries: {queries}, {garbage} stray bytes; load before {load_before}",
        pct(&rp, 50.0),
        pct(&rp, 99.0),
        pct(&fb, 50.0),
        pct(&fb, 99.0),
        fb.last().copied().unwrap_or(f64::NAN),
        pct(&st, 50.0),
        pct(&st, 99.0),
        pct(&en, 50.0),
        pct(&en, 99.0),
        pct(&dn, 50.0),
        pct(&dn, 99.0),
    );
    d.stop()?;
    Ok((pct(&fb, 50.0), pct(&fb, 99.0)))
}

fn first_byte(env: &Env, opts: &Opts) -> Result<()> {
    let runs = opts.get("runs", 3)?;
    let jobs = opts.get("jobs", 200)?;
    let confirms = match opts.text("confirm", "both").as_str() {
        "off" => vec![false],
        "on" => vec![true],
        _ => vec![false, true],
    };
    println!("\n== first-byte: submit → first byte at an emulated TCP ZPL printer, {jobs} single-label jobs one at a time");
    for confirm in confirms {
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=runs {
            let (p50, p99) = first_byte_once(env, jobs, confirm, run)?;
            p50s.push(p50);
            p99s.push(p99);
        }
        println!(
            "SUMMARY first-byte confirm={confirm}: p50 ms {}; p99 ms {}",
            spread(&p50s, 2),
            spread(&p99s, 2)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// fsync cost
// ---------------------------------------------------------------------------------------

fn fsync(env: &Env, opts: &Opts) -> Result<()> {
    let count = opts.get("count", 200)?;
    let dir = env
        .base
        .join(format!("labeld-bench-fsync-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let body = vec![b'Z'; 4096];
    let dir_handle = std::fs::File::open(&dir)?;
    // One after another: create, write 4 KiB, fsync the file, fsync the directory.
    let mut file_ms = Vec::new();
    let mut dir_ms = Vec::new();
    let t0 = Instant::now();
    for i in 0..count {
        let mut f = std::fs::File::create(dir.join(format!("seq-{i}")))?;
        f.write_all(&body)?;
        let t = Instant::now();
        f.sync_all()?;
        file_ms.push(ms(t.elapsed()));
        let t = Instant::now();
        dir_handle.sync_all()?;
        dir_ms.push(ms(t.elapsed()));
    }
    let seq_total = t0.elapsed();
    // 64 files written, then fsynced from 16 threads at once (the file printer's way).
    let batches = (count / 64).max(1);
    let mut batch_ms = Vec::new();
    for b in 0..batches {
        let files: Vec<std::fs::File> = (0..64)
            .map(|i| {
                let mut f = std::fs::File::create(dir.join(format!("par-{b}-{i}")))?;
                f.write_all(&body)?;
                Ok(f)
            })
            .collect::<Result<_>>()?;
        let t = Instant::now();
        thread::scope(|s| {
            for chunk in files.chunks(4) {
                s.spawn(move || {
                    for f in chunk {
                        f.sync_all().ok();
                    }
                });
            }
        });
        dir_handle.sync_all()?;
        batch_ms.push(ms(t.elapsed()));
    }
    // Append 4 KiB + fdatasync to one file (a WAL commit's shape).
    let mut wal = std::fs::File::create(dir.join("wal"))?;
    let mut wal_ms = Vec::new();
    for _ in 0..count {
        wal.write_all(&body)?;
        let t = Instant::now();
        wal.sync_data()?;
        wal_ms.push(ms(t.elapsed()));
    }
    std::fs::remove_dir_all(&dir).ok();
    let (f, dd, b, w) = (
        sorted(file_ms),
        sorted(dir_ms),
        sorted(batch_ms),
        sorted(wal_ms),
    );
    println!(
        "\nRESULT fsync dir={}: new 4 KiB file fsync p50 {:.2} p99 {:.2} ms, then directory fsync p50 {:.2} p99 {:.2} ms ({count} files one after another: {:.0} files/s); 64 files fsynced by 16 threads at once + directory: p50 {:.1} p99 {:.1} ms per 64 ({:.0} files/s); append 4 KiB + fdatasync p50 {:.2} p99 {:.2} ms; load {}",
        env.base.display(),
        pct(&f, 50.0),
        pct(&f, 99.0),
        pct(&dd, 50.0),
        pct(&dd, 99.0),
        count as f64 / seq_total.as_secs_f64(),
        pct(&b, 50.0),
        pct(&b, 99.0),
        64.0 * 1e3 / pct(&b, 50.0),
        pct(&w, 50.0),
        pct(&w, 99.0),
        load()
    );
    Ok(())
}
