//! The scheduler: jobs accepted into a spool printed by per-printer workers to file
//! printers (PNG previews read back, ZPL files), to the TCP ZPL emulator through paper
//! out, dropped connections and an offline printer, and to the pty emulator; priority
//! order, pause/resume across a restart, cancel, crash recovery of labels left `sent`
//! with and without a label counter, reload and shutdown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labeld::config::{Config, PrinterSetup};
use labeld::events::Events;
use labeld::pieces;
use labeld::protocol::{self, Limits};
use labeld::scheduler::{Scheduler, SchedulerError, SchedulerOptions};
use labeld::spool::{NewImb, NewJob, NewLabel, Spool, SpoolError, SpoolOptions};
use serde_json::Value;

use crate::emulator::{Fault, ZplPrinter};

const MID: &str = "123456";
/// Long enough for anything these tests wait for; they finish in well under a second
/// each when things work.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A directory under the system temp dir, removed when dropped (declare it first, so
/// it outlives the scheduler writing into it).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("labeld-sched-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    Scratch(dir)
}

fn open_spool(path: &Path) -> Spool {
    let mut spool = Spool::open(path).expect("spool");
    spool.configure_range(MID, 1, 999_999).expect("range");
    spool
}

fn fast() -> SchedulerOptions {
    SchedulerOptions {
        backoff_first: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        status_poll: Duration::from_millis(20),
        status_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(5),
        file_batch: 8,
        settle: Duration::from_secs(1),
        ..SchedulerOptions::default()
    }
}

/// A printer as the configuration file would give it.
fn printer(name: &str, model: &str, uri: &str, confirm: bool) -> PrinterSetup {
    let text = format!(
        "[daemon]\nstate_dir = \"/\"\nrequests = [\"tcp://127.0.0.1:7310\"]\nevents = []\n\n\
         [[printer]]\nname = \"{name}\"\nmodel = \"{model}\"\nuri = \"{uri}\"\nconfirm = {confirm}\n"
    );
    let resolved = Config::parse(&text)
        .and_then(|c| c.resolve(&|_| None, Path::new("/")))
        .expect("printer config");
    resolved.printers.into_iter().next().expect("one printer")
}

fn dir_uri(dir: &Path) -> String {
    format!("file://{}/", dir.display())
}

/// Accepts a batch of `n` 4x6 address labels (serials allocated) for `printer`, as the
/// service will: plan the pieces, store the request as `Request::to_json`.
fn submit(spool: &mut Spool, printer: &str, id: &str, n: usize, priority: u8) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"to":["{id} RECIPIENT {i}","{i} MAIN ST","ANYTOWN ST 98765"]}}"#))
        .collect();
    let body = format!(
        r#"{{"v":1,"op":"submit_batch","printer":"{printer}","job_id":"{id}","priority":{priority},
            "template":{{"template":"address","size":"4x6",
                         "imb":{{"mailer_id":"{MID}","service_type":"270","routing":"98765"}},
                         "from":["ACME MAILROOM","1 INDUSTRIAL WAY","AUSTIN TX 78701"]}},
            "records":[{}]}}"#,
        records.join(",")
    );
    accept(spool, printer, id, &body, priority)
}

fn accept(spool: &mut Spool, printer: &str, id: &str, body: &str, priority: u8) -> String {
    let request = protocol::parse_request(body.as_bytes(), &Limits::default()).expect("request");
    let labels = pieces::plan(&request)
        .expect("plan")
        .into_iter()
        .map(|p| NewLabel {
            imb: p.allocate.map(|s| NewImb {
                barcode_id: s.barcode_id,
                service_type: s.service_type,
                mailer_id: s.mailer_id,
            }),
            routing: p.routing,
            recipient: p.recipient,
            unit: p.unit,
            tracking: p.tracking,
        })
        .collect();
    let accepted = spool
        .accept_job(
            NewJob {
                id: Some(id.to_owned()),
                printer: printer.to_owned(),
                priority,
                labels,
                request_json: request.to_json(),
            },
            1,
        )
        .expect("accept");
    accepted.job_id
}

/// Every event published, as `(topic, payload)`.
#[derive(Clone)]
struct EventLog(Arc<Mutex<Vec<(String, Value)>>>);

impl EventLog {
    fn new() -> (Events, EventLog) {
        let (events, mut rx) = Events::channel(100_000);
        let log = EventLog(Arc::new(Mutex::new(Vec::new())));
        let sink = log.0.clone();
        std::thread::spawn(move || {
            while let Some((topic, payload)) = rx.blocking_recv() {
                let value: Value = serde_json::from_slice(&payload).expect("event json");
                sink.lock().expect("log").push((topic, value));
            }
        });
        (events, log)
    }

    fn all(&self) -> Vec<(String, Value)> {
        self.0.lock().expect("log").clone()
    }

    /// Events of kind `event`.
    fn of(&self, event: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(_, v)| v["event"] == event)
            .map(|(_, v)| v)
            .collect()
    }

    /// Waits until an event matches `f`; `false` on timeout.
    fn wait(&self, mut f: impl FnMut(&Value) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.all().iter().any(|(_, v)| f(v)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn wait_done(&self, job: &str) -> Value {
        assert!(
            self.wait(|v| v["event"] == "done" && v["job_id"] == job),
            "no done event for {job}: {:#?}",
            self.all()
        );
        self.of("done")
            .into_iter()
            .find(|v| v["job_id"] == job)
            .expect("done")
    }

    fn wait_printer(&self, printer: &str, state: &str) {
        assert!(
            self.wait(|v| v["event"] == "printer"
                && v["printer"] == printer
                && v["state"] == state),
            "printer {printer} never {state}: {:#?}",
            self.all()
        );
    }

    /// The printer states published for `printer`, in order.
    fn states(&self, printer: &str) -> Vec<String> {
        self.of("printer")
            .into_iter()
            .filter(|v| v["printer"] == printer)
            .map(|v| v["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn start(
    printers: Vec<PrinterSetup>,
    spool: &Path,
    events: Events,
    options: SchedulerOptions,
) -> Scheduler {
    Scheduler::start(printers, spool, SpoolOptions::default(), events, options).expect("start")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// Waits until `f` holds; `false` on timeout.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn assert_distinct(labels: &[Vec<u8>]) {
    let set: BTreeSet<&Vec<u8>> = labels.iter().collect();
    assert_eq!(set.len(), labels.len(), "a label printed twice");
}

// ---------------------------------------------------------------------------------------
// File printers
// ---------------------------------------------------------------------------------------

/// The service shares one scheduler between threads.
#[test]
fn a_scheduler_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Scheduler>();
}

#[test]
fn preview_printer_writes_one_png_per_label_and_logs_them() {
    let dir = temp_dir("preview");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "preview", "pv-1", 3, 5);
    let out = dir.join("preview");
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("preview", "png-203", &dir_uri(&out), false)],
        &spool_path,
        events,
        fast(),
    );
    let done = log.wait_done(&job);
    assert_eq!(
        (done["printed"].as_u64(), done["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let pngs = files(&out, "png");
    assert_eq!(pngs.len(), 3, "{pngs:?}");
    for path in &pngs {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("png"),
        ));
        let reader = decoder.read_info().expect("a png");
        let info = reader.info();
        // 4 x 6 in at 203 dpi (812 x 1218 dots, give or take the rounding), either way
        // round.
        let (short, long) = (info.width.min(info.height), info.width.max(info.height));
        assert!(
            short.abs_diff(812) <= 2 && long.abs_diff(1218) <= 2,
            "{}: {short} x {long}",
            path.display()
        );
    }
    let log_rows = spool.print_log(0, None, 100).expect("print log");
    assert_eq!(log_rows.len(), 3);
    assert!(log_rows
        .iter()
        .all(|r| r.printer == "preview" && r.serial.is_some()));
    for kind in ["rendering", "sent", "printed", "progress"] {
        assert!(!log.of(kind).is_empty(), "no {kind} event");
    }
    assert!(log.of("printed").iter().all(|v| v["confirmed"] == false));
    assert_eq!(log.states("preview"), ["ready"]);
    let snapshot = &scheduler.printers()[0];
    assert_eq!(
        (
            snapshot.printed,
            snapshot.queued,
            snapshot.language.as_str()
        ),
        (3, 0, "png")
    );
    assert!(scheduler.healthy());
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn zpl_file_printer_takes_batches_and_respects_priority() {
    let dir = temp_dir("priority");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    // Queued before any worker runs: low first, then high, then middle.
    let low = submit(&mut spool, "zpl", "low", 20, 1);
    let high = submit(&mut spool, "zpl", "high", 3, 9);
    let middle = submit(&mut spool, "zpl", "middle", 2, 5);
    let out = dir.join("zpl");
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zpl", "zpl-203", &dir_uri(&out), false)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&low);
    let order: Vec<String> = log
        .of("printed")
        .iter()
        .map(|v| v["job_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut jobs = order.clone();
    jobs.dedup();
    assert_eq!(jobs, [high.clone(), middle, low], "{order:?}");
    // 25 labels, one file each; the 20-label job went in batches of at most 8.
    let zpl = files(&out, "zpl");
    assert_eq!(zpl.len(), 25);
    for path in &zpl {
        let text = std::fs::read_to_string(path).expect("zpl");
        assert_eq!(text.matches("^XA").count(), 1, "{}", path.display());
    }
    let low_batches: Vec<usize> = log
        .of("printed")
        .iter()
        .filter(|v| v["job_id"] == "low")
        .map(|v| v["labels"].as_array().map_or(0, Vec::len))
        .collect();
    assert!(
        low_batches.iter().all(|&n| (1..=8).contains(&n)),
        "{low_batches:?}"
    );
    assert_eq!(low_batches.iter().sum::<usize>(), 20);
    let progress: Vec<u64> = log
        .of("progress")
        .iter()
        .filter(|v| v["job_id"] == "low")
        .filter_map(|v| v["done"].as_u64())
        .collect();
    assert_eq!(progress.last(), Some(&20), "{progress:?}");
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_label_that_cannot_render_fails_with_the_reason() {
    let dir = temp_dir("renderfail");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "narrow", "wide-label", 1, 5);
    let out = dir.join("out");
    let mut narrow = printer("narrow", "zpl-203", &dir_uri(&out), false);
    // A 2-inch head cannot take a 4-inch label.
    narrow.profile.width_dots = 406;
    let (events, log) = EventLog::new();
    let scheduler = start(vec![narrow], &spool_path, events, fast());
    let done = log.wait_done(&job);
    assert_eq!(done["failed"], 1);
    let failed = log.of("failed");
    assert!(
        failed[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{failed:?}"
    );
    let labels = spool.job_labels(&job).expect("labels");
    assert!(labels[0].reason.is_some());
    assert!(files(&out, "zpl").is_empty());
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn pause_persists_across_a_restart_and_resume_prints() {
    let dir = temp_dir("pause");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let out = dir.join("zpl");
    let setup = printer("zpl", "zpl-203", &dir_uri(&out), false);
    let (events, log) = EventLog::new();
    let scheduler = start(vec![setup.clone()], &spool_path, events.clone(), fast());
    assert!(matches!(
        scheduler.pause("nope"),
        Err(SchedulerError::UnknownPrinter(_))
    ));
    scheduler.pause("zpl").expect("pause");
    log.wait_printer("zpl", "paused");
    let job = submit(&mut spool, "zpl", "paused-job", 2, 5);
    scheduler.wake("zpl");
    std::thread::sleep(Duration::from_millis(300));
    assert!(log.of("sent").is_empty(), "a paused printer sent labels");
    assert!(scheduler.shutdown(Duration::from_secs(5)));

    // A new scheduler on the same spool: still paused.
    let scheduler = start(vec![setup], &spool_path, events, fast());
    assert!(eventually(|| scheduler.printers()[0].paused));
    let snapshot = &scheduler.printers()[0];
    assert_eq!(snapshot.queued, 2);
    std::thread::sleep(Duration::from_millis(300));
    assert!(log.of("sent").is_empty(), "still paused after the restart");
    scheduler.resume("zpl").expect("resume");
    log.wait_done(&job);
    assert_eq!(files(&out, "zpl").len(), 2);
    assert!(!scheduler.printers()[0].paused);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn recovery_on_a_file_printer_prints_sent_labels_again() {
    let dir = temp_dir("filerecover");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "zpl", "crashed", 3, 5);
    // A labeld that died while label 0 was being written.
    spool.mark_sent_many(&job, &[0], None, 2).expect("sent");
    let out = dir.join("zpl");
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zpl", "zpl-203", &dir_uri(&out), false)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&job);
    let in_flight = log.of("in_flight");
    assert_eq!(in_flight.len(), 1, "{in_flight:?}");
    assert_eq!(
        (in_flight[0]["index"].as_u64(), &in_flight[0]["reprinted"]),
        (Some(0), &Value::Bool(true))
    );
    assert!(in_flight[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("no label counter")));
    assert_eq!(files(&out, "zpl").len(), 3);
    assert_eq!(spool.job_labels(&job).expect("labels")[0].attempts, 2);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_cancelled_jobs_label_left_in_flight_is_not_printed_again() {
    let dir = temp_dir("cancelrecover");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "zpl", "gone", 3, 5);
    spool.mark_sent_many(&job, &[0], None, 2).expect("sent");
    spool.cancel_job(&job, 3).expect("cancel");
    let out = dir.join("zpl");
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zpl", "zpl-203", &dir_uri(&out), false)],
        &spool_path,
        events,
        fast(),
    );
    let done = log.wait_done(&job);
    assert_eq!(
        (&done["printed"], &done["failed"], &done["cancelled"]),
        (&Value::from(0), &Value::from(1), &Value::from(2))
    );
    let in_flight = log.of("in_flight");
    assert_eq!(in_flight[0]["reprinted"], false, "{in_flight:?}");
    assert!(files(&out, "zpl").is_empty());
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_single_file_printer_appends_every_label() {
    let dir = temp_dir("onefile");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "file", "appended", 5, 5);
    let path = dir.join("labels.zpl");
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer(
            "file",
            "zpl-203",
            &format!("file://{}", path.display()),
            false,
        )],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&job);
    let text = std::fs::read_to_string(&path).expect("the file");
    assert_eq!(text.matches("^XA").count(), 5);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn reload_starts_replaces_and_stops_workers_keeping_queued_jobs() {
    let dir = temp_dir("reload");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let (a_dir, b_dir, a2_dir) = (dir.join("a"), dir.join("b"), dir.join("a2"));
    let a = printer("a", "zpl-203", &dir_uri(&a_dir), false);
    let b = printer("b", "zpl-203", &dir_uri(&b_dir), false);
    let (events, log) = EventLog::new();
    let scheduler = start(vec![a.clone()], &spool_path, events, fast());
    // A job for a printer not configured yet waits in the spool.
    let for_b = submit(&mut spool, "b", "for-b", 2, 5);
    scheduler.wake("b");
    assert!(!scheduler.has_printer("b"));

    let report = scheduler
        .reload(vec![a.clone(), b.clone()])
        .expect("reload");
    assert_eq!(
        (report.kept.as_slice(), report.started.as_slice()),
        (&["a".to_owned()][..], &["b".to_owned()][..])
    );
    log.wait_done(&for_b);
    assert_eq!(files(&b_dir, "zpl").len(), 2);

    // Remove a; its next job stays queued.
    let report = scheduler.reload(vec![b.clone()]).expect("reload");
    assert_eq!(report.stopped, ["a"]);
    let for_a = submit(&mut spool, "a", "for-a", 2, 5);
    scheduler.wake("a");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(spool.queue_depth().expect("depth").get("a"), Some(&2));

    // Back, at a new address: printed there.
    let a2 = printer("a", "zpl-203", &dir_uri(&a2_dir), false);
    let report = scheduler.reload(vec![a2, b.clone()]).expect("reload");
    assert_eq!(report.started, ["a"]);
    log.wait_done(&for_a);
    assert_eq!(files(&a2_dir, "zpl").len(), 2);

    // Changed settings replace the worker.
    let mut b2 = b;
    b2.confirm = true;
    let report = scheduler
        .reload(vec![scheduler_printer_a(&a2_dir), b2])
        .expect("reload");
    assert_eq!(report.replaced, ["b"]);
    assert!(eventually(|| scheduler.healthy()));
    assert!(scheduler.shutdown(Duration::from_secs(5)));
    assert!(matches!(
        scheduler.reload(vec![scheduler_printer_a(&a2_dir)]),
        Err(SchedulerError::ShutDown)
    ));
}

fn scheduler_printer_a(dir: &Path) -> PrinterSetup {
    printer("a", "zpl-203", &dir_uri(dir), false)
}

// ---------------------------------------------------------------------------------------
// The TCP emulator
// ---------------------------------------------------------------------------------------

fn paper_out_holds_the_queue_then_resumes(counter: bool) {
    let dir = temp_dir(if counter { "paper-c" } else { "paper-n" });
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_odometer_supported(counter);
    zebra.set_odometer(500);
    let job = submit(&mut spool, "zebra", "paper", 5, 5);
    zebra.set_fault(Some(Fault::PaperOut));
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_printer("zebra", "paper_out");
    // Held: nothing printed, nothing more sent while the paper is out.
    std::thread::sleep(Duration::from_millis(200));
    let (printed, buffered) = zebra.with_record(|r| (r.printed.len(), r.buffered.len()));
    assert_eq!(printed, 0);
    assert!(
        buffered <= 1,
        "the queue did not hold: {buffered} labels sent"
    );
    assert!(log.of("printed").is_empty());
    let snapshot = &scheduler.printers()[0];
    assert_eq!(snapshot.state, labeld::events::PrinterState::PaperOut);
    assert!(snapshot.last_error.is_some());

    zebra.set_fault(None);
    let done = log.wait_done(&job);
    assert_eq!(done["printed"], 5);
    let labels = zebra.printed();
    assert_eq!(labels.len(), 5, "exactly once");
    assert_distinct(&labels);
    assert_eq!(zebra.odometer(), 505);
    let states = log.states("zebra");
    assert_eq!(states, ["paper_out", "ready"], "{states:?}");
    assert_eq!(spool.print_log(0, None, 100).expect("log").len(), 5);
    assert!(log
        .of("printed")
        .iter()
        .all(|v| v["confirmed"] == true || !counter));
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn paper_out_holds_the_queue_then_resumes_with_a_counter() {
    paper_out_holds_the_queue_then_resumes(true);
}

#[test]
fn paper_out_holds_the_queue_then_resumes_without_a_counter() {
    paper_out_holds_the_queue_then_resumes(false);
}

#[test]
fn a_label_lost_with_the_connection_is_sent_again() {
    let dir = temp_dir("droplost");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_odometer_supported(false);
    // The third label never arrives whole.
    zebra.drop_mid_label(2);
    let job = submit(&mut spool, "zebra", "lost", 5, 5);
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&job);
    let labels = zebra.printed();
    assert_eq!(zebra.with_record(|r| r.lost), 1);
    assert_eq!(labels.len(), 5);
    assert_distinct(&labels);
    assert!(log.states("zebra").contains(&"offline".to_owned()));
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

/// The printer takes a label and the connection drops before its confirmation: with
/// the label counter labeld sees it printed; without, it prints it again (at least once).
#[test]
fn an_unconfirmed_label_is_settled_by_the_counter() {
    for counter in [true, false] {
        let dir = temp_dir(if counter { "unconf-c" } else { "unconf-n" });
        let spool_path = dir.join("spool.db");
        let mut spool = open_spool(&spool_path);
        let zebra = ZplPrinter::tcp();
        zebra.set_odometer_supported(counter);
        zebra.drop_after_labels(2);
        let job = submit(&mut spool, "zebra", "unconfirmed", 4, 5);
        let (events, log) = EventLog::new();
        let scheduler = start(
            vec![printer("zebra", "zpl-203", zebra.uri(), true)],
            &spool_path,
            events,
            fast(),
        );
        log.wait_done(&job);
        let labels = zebra.printed();
        if counter {
            assert_eq!(labels.len(), 4, "exactly once with a counter");
            assert_distinct(&labels);
        } else {
            assert_eq!(labels.len(), 5, "the unconfirmed label again");
            assert_eq!(labels[1], labels[2], "the duplicate is the label in flight");
        }
        let attempts: Vec<u32> = spool
            .job_labels(&job)
            .expect("labels")
            .iter()
            .map(|l| l.attempts)
            .collect();
        assert_eq!(attempts, [1, if counter { 1 } else { 2 }, 1, 1]);
        assert!(scheduler.shutdown(Duration::from_secs(5)));
    }
}

#[test]
fn an_offline_printer_is_waited_for_not_failed() {
    let dir = temp_dir("offline");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_offline(true);
    let job = submit(&mut spool, "zebra", "waits", 2, 5);
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_printer("zebra", "offline");
    std::thread::sleep(Duration::from_millis(300));
    assert!(log.of("failed").is_empty());
    assert!(scheduler.healthy());
    zebra.set_offline(false);
    log.wait_done(&job);
    assert_eq!(zebra.printed_count(), 2);
    assert_eq!(log.states("zebra"), ["offline", "ready"]);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn cancel_mid_job_stops_after_the_label_in_flight() {
    let dir = temp_dir("cancel");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_reply_delay(Duration::from_millis(10));
    let job = submit(&mut spool, "zebra", "cancelled", 40, 5);
    let (events, _log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    assert!(zebra.wait_printed(3, PATIENCE));
    // The worker writes to the spool all the while; SQLite's busy handler is not fair,
    // so on a loaded machine a writer can wait out its busy timeout: try again then.
    let mut attempts = 0;
    let report = loop {
        match spool.cancel_job(&job, 3) {
            Ok(report) => break report,
            Err(SpoolError::Sqlite(e)) if attempts < 5 => {
                eprintln!("cancel: {e}; again");
                attempts += 1;
            }
            Err(e) => panic!("cancel: {e}"),
        }
    };
    scheduler.cancel(&job);
    assert!(report.cancelled > 0);
    assert!(eventually(|| {
        let p = spool.job_progress(&job).expect("progress");
        p.sent == 0 && p.queued == 0
    }));
    let p = spool.job_progress(&job).expect("progress");
    assert_eq!(p.printed + p.cancelled, 40);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(zebra.printed_count(), p.printed as usize);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn shutdown_finishes_the_label_being_sent_and_leaves_the_rest_queued() {
    let dir = temp_dir("shutdown");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_reply_delay(Duration::from_millis(10));
    let job = submit(&mut spool, "zebra", "rest", 40, 5);
    let (events, _log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    assert!(zebra.wait_printed(3, PATIENCE));
    assert!(scheduler.shutdown(Duration::from_secs(5)));
    let p = spool.job_progress(&job).expect("progress");
    assert_eq!(p.sent, 0, "the unit being sent was finished");
    assert!(p.queued > 0, "the rest stays queued");
    assert_eq!(p.printed as usize, zebra.printed_count());
}

fn recovery_of_a_sent_label(printed_before_crash: bool, counter: bool) {
    let name = format!("recover-{printed_before_crash}-{counter}");
    let dir = temp_dir(&name);
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::tcp();
    zebra.set_odometer_supported(counter);
    let job = submit(&mut spool, "zebra", "crash", 3, 5);
    // labeld read the counter (100), marked label 0 sent, then died...
    spool
        .mark_sent_many(&job, &[0], Some(100), 2)
        .expect("sent");
    // ...after the printer printed it, or before.
    zebra.set_odometer(if printed_before_crash { 101 } else { 100 });
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("zebra", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&job);
    let in_flight = log.of("in_flight");
    assert_eq!(in_flight.len(), 1, "{in_flight:?}");
    let reprinted = !(printed_before_crash && counter);
    assert_eq!(in_flight[0]["index"], 0);
    assert_eq!(in_flight[0]["reprinted"], reprinted, "{in_flight:?}");
    let reason = in_flight[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(if counter {
            "counter is"
        } else {
            "no label counter"
        }),
        "{reason}"
    );
    assert_eq!(zebra.printed_count(), if reprinted { 3 } else { 2 });
    assert_eq!(spool.print_log(0, None, 10).expect("log").len(), 3);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

#[test]
fn recovery_counts_a_sent_label_the_counter_proves_printed() {
    recovery_of_a_sent_label(true, true);
}

#[test]
fn recovery_reprints_a_sent_label_the_counter_did_not_count() {
    recovery_of_a_sent_label(false, true);
}

#[test]
fn recovery_reprints_a_sent_label_without_a_counter() {
    recovery_of_a_sent_label(true, false);
}

#[test]
fn a_serial_printer_on_a_pty_prints_and_confirms() {
    let dir = temp_dir("pty");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let zebra = ZplPrinter::serial();
    let job = submit(&mut spool, "serial", "pty", 3, 5);
    let (events, log) = EventLog::new();
    let scheduler = start(
        vec![printer("serial", "zpl-203", zebra.uri(), true)],
        &spool_path,
        events,
        fast(),
    );
    log.wait_done(&job);
    let labels = zebra.printed();
    assert_eq!(labels.len(), 3);
    assert_distinct(&labels);
    assert!(log.of("printed").iter().all(|v| v["confirmed"] == true));
    assert_eq!(zebra.with_record(|r| r.garbage), 0);
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}

/// A throwaway measurement, not a check: `cargo test --release --test main
/// scheduler::file_printer_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run by hand"]
fn file_printer_throughput() {
    let n: usize = std::env::var("LABELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = temp_dir("throughput");
    let spool_path = dir.join("spool.db");
    let mut spool = open_spool(&spool_path);
    let job = submit(&mut spool, "zpl", "bulk", n, 5);
    let out = dir.join("zpl");
    std::fs::create_dir_all(&out).expect("dir");
    // ONE_FILE=1: every label appended to one file (the render-bound ceiling).
    let one_file = std::env::var_os("ONE_FILE").is_some();
    let uri = if one_file {
        format!("file://{}/all.zpl", out.display())
    } else {
        dir_uri(&out)
    };
    // Events are serialized as for the PUB socket, then dropped.
    let (events, mut rx) = Events::channel(100_000);
    std::thread::spawn(move || while rx.blocking_recv().is_some() {});
    let options = SchedulerOptions {
        file_batch: std::env::var("BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        ..fast()
    };
    let started = Instant::now();
    let scheduler = start(
        vec![printer("zpl", "zpl-203", &uri, false)],
        &spool_path,
        events,
        options,
    );
    assert!(eventually(|| spool
        .job_progress(&job)
        .is_ok_and(|p| p.done)));
    let elapsed = started.elapsed();
    println!(
        "{n} labels to a ZPL {} printer in {:.3} s: {:.0} labels/s",
        if one_file { "single-file" } else { "directory" },
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    if !one_file {
        assert_eq!(files(&out, "zpl").len(), n);
    }
    assert!(scheduler.shutdown(Duration::from_secs(5)));
}
