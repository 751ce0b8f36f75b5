//! The spool: durability across reopen, serial allocation (unique, consecutive, never
//! reused, exhaustion, low water), idempotent submit, concurrent handles and a
//! SIGKILL crash loop.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use labeld::spool::{
    Accepted, LabelState, LowWater, NewImb, NewJob, NewLabel, Spool, SpoolError, SpoolOptions,
    Warning,
};

const MID: &str = "123456";

/// A fresh directory under the system temp dir, named after the test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("labeld-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn job(id: Option<&str>, n: usize, request: &str) -> NewJob {
    NewJob {
        id: id.map(str::to_owned),
        printer: "dock-1".into(),
        labels: (0..n)
            .map(|i| NewLabel {
                imb: Some(NewImb {
                    barcode_id: "00".into(),
                    service_type: "270".into(),
                    mailer_id: MID.into(),
                }),
                routing: "12345".into(),
                recipient: format!("recipient {i}"),
            })
            .collect(),
        request_json: request.into(),
    }
}

fn serials(a: &Accepted) -> Vec<u64> {
    a.serials.iter().map(|s| s.serial).collect()
}

#[test]
fn state_survives_reopen() {
    let dir = temp_dir("reopen");
    let path = dir.join("spool.db");
    let first = {
        let mut spool = Spool::open(&path).unwrap();
        spool.configure_range(MID, 1000, 9999).unwrap();
        let a = spool.accept_job(job(Some("a"), 3, "{}"), 10).unwrap();
        spool.mark_sent("a", 0, 11).unwrap();
        spool.mark_printed("a", 0, 12).unwrap();
        spool.mark_sent("a", 1, 13).unwrap();
        a
    };
    let spool = Spool::open(&path).unwrap();
    assert_eq!(spool.range(MID).unwrap().unwrap().next, 1003);
    let mut stored = spool.job("a").unwrap().unwrap();
    assert!(stored.replayed);
    stored.replayed = false;
    assert_eq!(stored, first);
    let states: Vec<_> = spool
        .job_labels("a")
        .unwrap()
        .iter()
        .map(|l| l.state)
        .collect();
    assert_eq!(
        states,
        [LabelState::Printed, LabelState::Sent, LabelState::Queued]
    );
    assert_eq!(spool.resume_point("a").unwrap(), Some(1));
    let unfinished = spool.unfinished_jobs().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].resume_at, 1);
    assert_eq!(unfinished[0].in_flight, [1], "label 1 is possibly printed");
    assert_eq!(unfinished[0].queued, 1);
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serials_consecutive_unique_and_never_reused() {
    let dir = temp_dir("serials");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 999_999_999).unwrap();
    let mut all = Vec::new();
    for i in 0..200 {
        let a = spool
            .accept_job(job(None, 1 + i % 4, "{}"), i as i64)
            .unwrap();
        if i % 3 == 0 {
            spool.cancel_job(&a.job_id, i as i64).unwrap();
            assert_eq!(spool.resume_point(&a.job_id).unwrap(), None);
        }
        all.extend(serials(&a));
    }
    let expected: Vec<u64> = (0..all.len() as u64).collect();
    assert_eq!(
        all, expected,
        "consecutive across jobs, cancelled ones included"
    );
    let next = spool.accept_job(job(None, 1, "{}"), 999).unwrap();
    assert_eq!(serials(&next), [all.len() as u64]);
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exhaustion_and_low_water() {
    let dir = temp_dir("exhaust");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 100, 199).unwrap();
    let a = spool.accept_job(job(None, 85, "{}"), 1).unwrap();
    assert!(a.warnings.is_empty());
    let a = spool.accept_job(job(None, 6, "{}"), 2).unwrap();
    assert_eq!(
        a.warnings,
        [Warning::LowWater {
            mailer_id: MID.into(),
            left: 9,
            threshold: 10
        }]
    );
    let err = spool.accept_job(job(Some("big"), 10, "{}"), 3).unwrap_err();
    assert!(matches!(
        err,
        SpoolError::RangeExhausted {
            left: 9,
            wanted: 10,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "serial range for mailer id 123456 is exhausted: 9 left, 10 wanted (extend the range or configure a new one)"
    );
    // Nothing allocated, no job stored.
    assert_eq!(spool.range(MID).unwrap().unwrap().left(), 9);
    assert!(spool.job("big").unwrap().is_none());
    let a = spool.accept_job(job(None, 9, "{}"), 4).unwrap();
    assert_eq!(serials(&a).last(), Some(&199));
    assert!(matches!(
        spool.accept_job(job(None, 1, "{}"), 5),
        Err(SpoolError::RangeExhausted { left: 0, .. })
    ));
    // Extending the range makes room again, after the used serials.
    spool.configure_range(MID, 100, 299).unwrap();
    let a = spool.accept_job(job(None, 1, "{}"), 6).unwrap();
    assert_eq!(serials(&a), [200]);
    drop(spool);

    // A configured count as the threshold.
    let options = SpoolOptions {
        low_water: LowWater::Count(50),
        ..SpoolOptions::default()
    };
    let mut spool = Spool::open_with(dir.join("spool.db"), &options).unwrap();
    let a = spool.accept_job(job(None, 1, "{}"), 7).unwrap();
    assert!(a.warnings.is_empty(), "98 left, threshold 50");
    spool.configure_range(MID, 100, 250).unwrap();
    let a = spool.accept_job(job(None, 1, "{}"), 8).unwrap();
    assert_eq!(
        a.warnings,
        [Warning::LowWater {
            mailer_id: MID.into(),
            left: 48,
            threshold: 50
        }]
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resubmit_is_idempotent_and_conflicts_are_refused() {
    let dir = temp_dir("idempotent");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 1000).unwrap();
    let first = spool
        .accept_job(job(Some("client-1"), 3, r#"{"v":1,"a":[1,2]}"#), 1)
        .unwrap();
    assert!(!first.replayed);
    // Same request, other whitespace and key order: the stored answer, nothing allocated.
    let again = spool
        .accept_job(job(Some("client-1"), 3, r#"{ "a": [1, 2], "v": 1 }"#), 2)
        .unwrap();
    assert!(again.replayed);
    assert_eq!(serials(&again), serials(&first));
    assert_eq!(again.job_id, "client-1");
    assert_eq!(spool.range(MID).unwrap().unwrap().next, 3);
    let err = spool
        .accept_job(job(Some("client-1"), 3, r#"{"v":2}"#), 3)
        .unwrap_err();
    assert!(matches!(err, SpoolError::IdConflict { .. }), "{err}");
    assert_eq!(spool.range(MID).unwrap().unwrap().next, 3);
    assert!(matches!(
        spool.accept_job(job(Some(""), 1, "{}"), 4),
        Err(SpoolError::BadJobId { .. })
    ));
    assert!(matches!(
        spool.accept_job(job(None, 1, "{not json"), 4),
        Err(SpoolError::BadRequestJson(_))
    ));
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_handles_in_two_threads_never_share_a_serial() {
    let dir = temp_dir("threads");
    let path = dir.join("spool.db");
    Spool::open(&path)
        .unwrap()
        .configure_range(MID, 0, 999_999)
        .unwrap();
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut spool = Spool::open(&path).unwrap();
                let mut got = Vec::new();
                for i in 0..150 {
                    let id = format!("t{t}-{i}");
                    let a = spool.accept_job(job(Some(&id), 3, "{}"), i).unwrap();
                    got.extend(serials(&a));
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..900).collect::<Vec<u64>>());
    let _ = std::fs::remove_dir_all(dir);
}

/// Env var that turns [`crash_child`] into the child that gets killed.
const CHILD_ENV: &str = "LABELD_SPOOL_CRASH_CHILD";

/// The child side of [`crash_loop_keeps_invariants`]: accepts jobs forever, appending
/// "id" to the acknowledgement file after each commit. A no-op in normal test runs.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    if spool.range(MID).unwrap().is_none() {
        spool.configure_range(MID, 0, 999_999_999).unwrap();
    }
    let mut acks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acks"))
        .unwrap();
    let pid = std::process::id();
    for i in 0u64.. {
        let id = format!("c{pid}-{i}");
        let a = spool
            .accept_job(job(Some(&id), 1 + (i % 5) as usize, "{}"), i as i64)
            .unwrap();
        // Exercise label updates too, so a kill can land inside one.
        spool.mark_sent(&a.job_id, 0, i as i64).unwrap();
        if i % 2 == 0 {
            spool.mark_printed(&a.job_id, 0, i as i64).unwrap();
        }
        // Unbuffered write: the line exists only after the commit returned.
        acks.write_all(format!("{id}\n").as_bytes()).unwrap();
    }
}

fn check_invariants(path: &Path, acked: &[String]) -> usize {
    let spool = Spool::open(path).unwrap();
    let ids = spool.job_ids().unwrap();
    let known: HashSet<&String> = ids.iter().collect();
    for id in acked {
        assert!(known.contains(id), "acknowledged job {id} lost");
    }
    let mut seen = HashSet::new();
    let mut max = None;
    for id in &ids {
        let answer = spool.job(id).unwrap().unwrap();
        let labels = spool.job_labels(id).unwrap();
        assert_eq!(
            labels.len() as u32,
            answer.label_count,
            "job {id} incomplete"
        );
        for l in &labels {
            let (_, serial) = l.serial.clone().expect("every label has a serial");
            assert!(seen.insert(serial), "serial {serial} used twice");
            max = max.max(Some(serial));
        }
    }
    let next = spool.range(MID).unwrap().unwrap().next;
    if let Some(max) = max {
        assert!(next > max, "next {next} not beyond serial {max}");
    }
    ids.len()
}

#[test]
fn crash_loop_keeps_invariants() {
    let dir = temp_dir("crash");
    let path = dir.join("spool.db");
    Spool::open(&path)
        .unwrap()
        .configure_range(MID, 0, 999_999_999)
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    for round in 0..4 {
        // xorshift: a random kill point without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = 150 + seed % 350;
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "spool::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: child ended on its own");
        let acks = std::fs::read_to_string(dir.join("acks")).unwrap_or_default();
        let acked: Vec<String> = acks.lines().map(str::to_owned).collect();
        let jobs = check_invariants(&path, &acked);
        assert!(jobs >= acked.len());
    }
    let acks = std::fs::read_to_string(dir.join("acks")).unwrap_or_default();
    assert!(acks.lines().count() > 0, "the child never accepted a job");
    let _ = std::fs::remove_dir_all(dir);
}
