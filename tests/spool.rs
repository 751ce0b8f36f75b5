//! The spool: durability across reopen, serial allocation (unique, consecutive, never
//! reused, exhaustion, low water), idempotent submit, group commit, the migration from
//! schema version 1, the scheduler's queries (priority, arrival, print units), status,
//! cancel, reprint, pause state, print-log export and retention, concurrent handles and
//! a SIGKILL crash loop.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use labeld::protocol::Serials;
use labeld::spool::{
    write_print_log_csv, Accepted, JobState, LabelState, LowWater, NewImb, NewJob, NewLabel,
    PrintLogEntry, Spool, SpoolError, SpoolOptions, Warning,
};

const MID: &str = "123456";

/// A fresh directory under the system temp dir, named after the test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("labeld-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn label(i: u32, unit: u32) -> NewLabel {
    NewLabel {
        imb: Some(NewImb {
            barcode_id: "00".into(),
            service_type: "270".into(),
            mailer_id: MID.into(),
        }),
        routing: "12345".into(),
        recipient: format!("recipient {i}"),
        unit,
        tracking: None,
    }
}

fn job(id: Option<&str>, n: usize, request: &str) -> NewJob {
    NewJob {
        id: id.map(str::to_owned),
        printer: "dock-1".into(),
        priority: 5,
        labels: (0..n as u32).map(|i| label(i, i)).collect(),
        request_json: request.into(),
    }
}

/// A job for `printer` at `priority` whose labels have the print units `units`.
fn job_on(id: &str, printer: &str, priority: u8, units: &[u32]) -> NewJob {
    NewJob {
        id: Some(id.into()),
        printer: printer.into(),
        priority,
        labels: (0u32..).zip(units).map(|(i, &u)| label(i, u)).collect(),
        request_json: format!(r#"{{"job":"{id}"}}"#),
    }
}

fn serials(a: &Accepted) -> Vec<u64> {
    a.serials.iter().map(|s| s.serial).collect()
}

fn indices(labels: &[labeld::spool::QueuedLabel]) -> Vec<u32> {
    labels.iter().map(|l| l.index).collect()
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

/// The jobs of [`group_commit_answers_like_one_at_a_time`]: good ones, repeats,
/// conflicts, a range running out mid-batch, invalid input.
fn mixed_batch() -> Vec<NewJob> {
    let mut bad_routing = job(Some("bad-routing"), 2, "{}");
    bad_routing.labels[1].routing = "1234".into();
    let mut bad_priority = job(Some("bad-priority"), 1, "{}");
    bad_priority.priority = 12;
    vec![
        job(Some("a"), 6, r#"{"n":"a"}"#),
        job(Some("a"), 6, r#"{ "n": "a" }"#), // the same again: replayed
        job(Some("a"), 6, r#"{"n":"other"}"#), // conflict
        job(None, 2, "{}"),
        job(Some("too-big"), 9, "{}"), // 8 left: exhausted, only this one refused
        bad_routing,
        job(Some(""), 1, "{}"),
        bad_priority,
        job(Some("b"), 3, r#"{"n":"b"}"#),
        job(Some("b"), 3, r#"{"n":"b"}"#),
        job(Some("c"), 5, r#"{"n":"c"}"#), // the last serials
        job(Some("d"), 1, r#"{"n":"d"}"#), // none left
    ]
}

/// What a result is, comparably across two spools.
fn outcome(result: &Result<Accepted, SpoolError>) -> String {
    match result {
        Ok(a) => format!("{a:?}"),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn group_commit_answers_like_one_at_a_time() {
    let dir = temp_dir("group");
    let mut batch = Spool::open(dir.join("batch.db")).unwrap();
    let mut single = Spool::open(dir.join("single.db")).unwrap();
    for spool in [&mut batch, &mut single] {
        spool.configure_range(MID, 0, 15).unwrap();
    }
    let together = batch.accept_jobs(mixed_batch(), 7);
    let one_by_one: Vec<_> = mixed_batch()
        .into_iter()
        .map(|j| single.accept_job(j, 7))
        .collect();
    let together_text: Vec<String> = together.iter().map(outcome).collect();
    let single_text: Vec<String> = one_by_one.iter().map(outcome).collect();
    assert_eq!(together_text, single_text);

    let kinds: Vec<&str> = together
        .iter()
        .map(|r| match r {
            Ok(a) if a.replayed => "replayed",
            Ok(_) => "accepted",
            Err(SpoolError::IdConflict { .. }) => "conflict",
            Err(SpoolError::RangeExhausted { .. }) => "exhausted",
            Err(SpoolError::Imb { index: 1, .. }) => "imb",
            Err(SpoolError::BadJobId { .. }) => "bad id",
            Err(SpoolError::BadPriority { .. }) => "bad priority",
            Err(e) => panic!("unexpected {e}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "accepted",
            "replayed",
            "conflict",
            "accepted",
            "exhausted",
            "imb",
            "bad id",
            "bad priority",
            "accepted",
            "replayed",
            "accepted",
            "exhausted"
        ]
    );
    // Serials of the accepted jobs are consecutive: refused jobs took none.
    let mut got = Vec::new();
    for r in together.iter().flatten().filter(|a| !a.replayed) {
        got.extend(serials(r));
    }
    assert_eq!(got, (0..16).collect::<Vec<u64>>());
    assert_eq!(batch.range(MID).unwrap().unwrap().left(), 0);
    assert_eq!(batch.job_ids().unwrap().len(), 4);
    assert!(batch.job("too-big").unwrap().is_none());
    // Committed: a new handle sees it all.
    drop(batch);
    let batch = Spool::open(dir.join("batch.db")).unwrap();
    assert_eq!(batch.job_ids().unwrap().len(), 4);
    assert_eq!(batch.job_progress("b").unwrap().queued, 3);
    // An empty batch is fine.
    drop(batch);
    let mut batch = Spool::open(dir.join("batch.db")).unwrap();
    assert!(batch.accept_jobs(Vec::new(), 8).is_empty());
    drop((batch, single));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn next_labels_by_priority_arrival_and_unit() {
    let dir = temp_dir("next");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 999_999).unwrap();
    spool.accept_job(job_on("low", "p", 1, &[0, 1]), 1).unwrap();
    spool
        .accept_job(job_on("high-1", "p", 9, &[0, 0, 0, 1, 1, 2]), 2)
        .unwrap();
    spool
        .accept_job(job_on("high-2", "p", 9, &[0, 1, 2]), 3)
        .unwrap();
    spool.accept_job(job_on("other", "q", 0, &[0]), 4).unwrap();
    assert!(spool.next_labels("nobody", 10).unwrap().is_empty());
    assert_eq!(
        spool.queue_depth().unwrap(),
        BTreeMap::from([("p".to_string(), 11), ("q".to_string(), 1)])
    );

    // The first high-priority job only, even with room for more.
    let next = spool.next_labels("p", 100).unwrap();
    assert!(next.iter().all(|l| l.job_id == "high-1" && l.priority == 9));
    assert_eq!(indices(&next), [0, 1, 2, 3, 4, 5]);
    // Units are never split: max 2 gives the whole of unit 0, max 4 units 0 and 1.
    assert_eq!(indices(&spool.next_labels("p", 2).unwrap()), [0, 1, 2]);
    assert_eq!(
        indices(&spool.next_labels("p", 4).unwrap()),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(indices(&spool.next_labels("p", 0).unwrap()), [0, 1, 2]);

    // Sent but unconfirmed labels come back, with the odometer reading.
    spool
        .mark_sent_many("high-1", &[0, 1, 2], Some(77), 5)
        .unwrap();
    let next = spool.next_labels("p", 1).unwrap();
    assert_eq!(indices(&next), [0, 1, 2]);
    assert!(next
        .iter()
        .all(|l| l.state == LabelState::Sent && l.odometer == Some(77) && l.attempts == 1));
    assert_eq!(next[0].serial, Some((MID.to_string(), 2)));
    assert_eq!(next[0].tracking.as_deref(), Some("00270123456000000002"));
    assert_eq!(next[0].routing, "12345");
    assert_eq!(next[0].recipient, "recipient 0");
    let progress = spool
        .mark_printed_many("high-1", &[0, 1, 2], "p", 6)
        .unwrap();
    assert_eq!(
        (
            progress.printed,
            progress.queued,
            progress.total,
            progress.done
        ),
        (3, 3, 6, false)
    );
    assert_eq!(indices(&spool.next_labels("p", 1).unwrap()), [3, 4]);
    spool.mark_sent_many("high-1", &[3, 4, 5], None, 7).unwrap();
    spool.mark_failed_many("high-1", &[5], "jam", 8).unwrap();
    let progress = spool.mark_printed_many("high-1", &[3, 4], "p", 9).unwrap();
    assert_eq!(
        (progress.printed, progress.failed, progress.done),
        (5, 1, true)
    );
    assert_eq!(
        spool.job_status("high-1").unwrap().unwrap().state,
        JobState::Done
    );

    // Then the next job of the same priority, then the lower one.
    let next = spool.next_labels("p", 100).unwrap();
    assert!(next.iter().all(|l| l.job_id == "high-2"));
    spool.cancel_job("high-2", 10).unwrap();
    let next = spool.next_labels("p", 100).unwrap();
    assert!(next.iter().all(|l| l.job_id == "low" && l.priority == 1));
    assert_eq!(indices(&next), [0, 1]);
    // A retry of a failed label reopens its job, which comes first again.
    spool.mark_sent("high-1", 5, 11).unwrap();
    assert_eq!(
        spool.job_status("high-1").unwrap().unwrap().state,
        JobState::Active
    );
    assert_eq!(spool.next_labels("p", 100).unwrap()[0].job_id, "high-1");
    assert_eq!(indices(&spool.next_labels("q", 100).unwrap()), [0]);
    assert_eq!(
        spool.queue_depth().unwrap(),
        BTreeMap::from([("p".to_string(), 3), ("q".to_string(), 1)])
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn next_labels_after_reads_ahead_without_changing_anything() {
    let dir = temp_dir("next-after");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 999_999).unwrap();
    spool
        .accept_job(job_on("first", "p", 5, &[0, 1, 1, 2, 3]), 1)
        .unwrap();
    spool
        .accept_job(job_on("second", "p", 5, &[0, 1]), 2)
        .unwrap();
    spool
        .accept_job(job_on("elsewhere", "q", 9, &[0]), 3)
        .unwrap();

    // What follows labels 0–2 of "first": its units 2 and 3, whole.
    let ahead = spool.next_labels_after("p", 1, "first", 3).unwrap();
    assert!(ahead.iter().all(|l| l.job_id == "first"));
    assert_eq!(indices(&ahead), [3]);
    assert_eq!(
        indices(&spool.next_labels_after("p", 10, "first", 3).unwrap()),
        [3, 4]
    );
    // Starting inside unit 1 keeps the rest of that unit together.
    assert_eq!(
        indices(&spool.next_labels_after("p", 1, "first", 2).unwrap()),
        [2]
    );
    // Nothing left of "first" after index 4: the next job in line.
    let ahead = spool.next_labels_after("p", 10, "first", 5).unwrap();
    assert!(ahead.iter().all(|l| l.job_id == "second"));
    assert_eq!(indices(&ahead), [0, 1]);
    // Another job named: no effect on the first job's labels.
    assert_eq!(
        indices(&spool.next_labels_after("p", 10, "second", 1).unwrap()),
        [0, 1, 2, 3, 4]
    );
    // Reading ahead changed nothing: next_labels still starts at the beginning.
    assert_eq!(indices(&spool.next_labels("p", 1).unwrap()), [0]);
    assert_eq!(
        spool.queue_depth().unwrap(),
        BTreeMap::from([("p".to_string(), 7), ("q".to_string(), 1)])
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn checkpoints_can_be_left_to_another_handle() {
    let dir = temp_dir("checkpoint");
    let path = dir.join("spool.db");
    let mut office = Spool::open(&path).unwrap();
    office.configure_range(MID, 0, 999_999).unwrap();
    office.set_auto_checkpoint(false).unwrap();
    let checkpointer = Spool::open(&path).unwrap();
    // The first checkpoint copies everything written so far; the log then stays
    // copied until more commits come.
    let (log, copied) = checkpointer.checkpoint().unwrap();
    assert_eq!(copied, log);
    for i in 0..20 {
        office
            .accept_job(job(Some(&format!("job-{i}")), 3, "{}"), i)
            .unwrap();
    }
    let (log_after, copied_after) = checkpointer.checkpoint().unwrap();
    assert!(log_after > 0, "the commits are in the log");
    assert_eq!(copied_after, log_after, "no reader holds the log back");
    office
        .accept_job(job(Some("one-more"), 1, "{}"), 21)
        .unwrap();
    let (log_whole, copied_whole) = checkpointer.checkpoint_whole().unwrap();
    assert!(log_whole > 0);
    assert_eq!(copied_whole, log_whole);
    // Everything is still there for a new handle.
    drop(office);
    drop(checkpointer);
    let reopened = Spool::open(&path).unwrap();
    assert_eq!(reopened.job_ids().unwrap().len(), 21);
    office = reopened;
    office.set_auto_checkpoint(true).unwrap();
    drop(office);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn job_status_and_request() {
    let dir = temp_dir("status");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 40, 999).unwrap();
    let mut j = job_on("s", "dock-2", 7, &[0, 0, 1]);
    j.labels[2].imb = None;
    j.request_json = r#"{ "v": 1, "b": [true] }"#.into();
    spool.accept_job(j, 1_000).unwrap();
    spool.mark_sent_many("s", &[0, 1], Some(5), 1_001).unwrap();
    spool.mark_printed_many("s", &[0], "dock-2", 1_002).unwrap();

    let status = spool.job_status("s").unwrap().unwrap();
    assert_eq!(status.state, JobState::Active);
    assert_eq!((status.priority, status.created_at), (7, 1_000));
    assert_eq!(status.printer, "dock-2");
    assert_eq!(
        (
            status.progress.total,
            status.progress.printed,
            status.progress.sent,
            status.progress.queued
        ),
        (3, 1, 1, 1)
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["state"], "active");
    assert_eq!(json["progress"]["done"], false);
    assert_eq!(
        json["labels"][0]["serial"],
        serde_json::json!({"mailer_id": MID, "serial": 40})
    );
    assert_eq!(json["labels"][0]["state"], "printed");
    assert_eq!(json["labels"][1]["unit"], 0);
    assert_eq!(json["labels"][1]["odometer"], 5);
    assert_eq!(json["labels"][2]["serial"], serde_json::Value::Null);
    assert_eq!(json["labels"][2]["unit"], 1);
    // And back.
    let back: labeld::spool::JobStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);

    let stored = spool.job_request("s").unwrap().unwrap();
    assert_eq!(stored.request_json, r#"{"b":[true],"v":1}"#);
    assert_eq!((stored.priority, stored.created_at), (7, 1_000));
    assert_eq!(
        (stored.printer.as_str(), stored.state),
        ("dock-2", JobState::Active)
    );
    assert_eq!(stored.reprint_of, None);
    assert!(spool.job_status("nope").unwrap().is_none());
    assert!(spool.job_request("nope").unwrap().is_none());
    assert!(matches!(
        spool.job_progress("nope"),
        Err(SpoolError::UnknownJob { .. })
    ));
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cancel_leaves_sent_labels_to_be_confirmed() {
    let dir = temp_dir("cancel");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 999).unwrap();
    spool.accept_job(job(Some("c"), 5, "{}"), 1).unwrap();
    spool.mark_sent_many("c", &[0, 1], None, 2).unwrap();
    spool.mark_printed("c", 0, 3).unwrap();
    let report = spool.cancel_job("c", 4).unwrap();
    assert_eq!((report.cancelled, report.in_flight), (3, 1));
    assert_eq!(report.state, JobState::Cancelled);
    assert_eq!(
        (
            report.progress.printed,
            report.progress.sent,
            report.progress.cancelled,
            report.progress.done
        ),
        (1, 1, 3, false)
    );
    assert!(spool.next_labels("dock-1", 10).unwrap().is_empty());
    assert!(spool.queue_depth().unwrap().is_empty());
    let unfinished = spool.unfinished_jobs().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].in_flight, [1]);
    assert_eq!(spool.resume_point("c").unwrap(), Some(1));
    // The label in flight printed after all.
    let progress = spool.mark_printed_many("c", &[1], "dock-1", 5).unwrap();
    assert!(progress.done);
    assert_eq!(spool.print_log(0, None, 10).unwrap().len(), 2);
    let status = spool.job_status("c").unwrap().unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    let report = spool.cancel_job("c", 6).unwrap();
    assert_eq!((report.cancelled, report.in_flight), (0, 0));

    // A finished job stays done.
    spool.accept_job(job(Some("d"), 1, "{}"), 7).unwrap();
    spool.mark_sent("d", 0, 8).unwrap();
    spool.mark_printed("d", 0, 9).unwrap();
    let report = spool.cancel_job("d", 10).unwrap();
    assert_eq!((report.cancelled, report.state), (0, JobState::Done));
    assert!(matches!(
        spool.cancel_job("nope", 11),
        Err(SpoolError::UnknownJob { .. })
    ));
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn reprint_with_same_or_new_serials() {
    let dir = temp_dir("reprint");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 9).unwrap();
    let mut original = job_on("orig", "dock-3", 8, &[0, 0, 1]);
    original.labels[1].imb = None;
    let first = spool.accept_job(original, 1).unwrap();
    spool.mark_sent_many("orig", &[0, 1, 2], None, 2).unwrap();
    spool
        .mark_printed_many("orig", &[0, 1, 2], "dock-3", 3)
        .unwrap();

    // The same pieces again: same serials and tracking codes, everything queued.
    let same = spool.reprint("orig", Serials::Same, None, 4).unwrap();
    assert_eq!(same.job_id, "orig.r1");
    assert!(!same.replayed);
    assert_eq!(same.serials, first.serials);
    assert_eq!(same.label_count, 3);
    let status = spool.job_status("orig.r1").unwrap().unwrap();
    assert_eq!((status.printer.as_str(), status.priority), ("dock-3", 8));
    let old = spool.job_labels("orig").unwrap();
    for (new, old) in status.labels.iter().zip(&old) {
        assert_eq!(new.state, LabelState::Queued);
        assert_eq!(
            (&new.serial, &new.tracking, new.unit, &new.recipient),
            (&old.serial, &old.tracking, old.unit, &old.recipient)
        );
    }
    let stored = spool.job_request("orig.r1").unwrap().unwrap();
    assert_eq!(stored.reprint_of.as_deref(), Some("orig"));
    assert_eq!(
        stored.request_json,
        spool.job_request("orig").unwrap().unwrap().request_json
    );
    assert_eq!(
        spool.range(MID).unwrap().unwrap().next,
        2,
        "nothing allocated"
    );
    // A reprint of the reprint keeps the same serials too.
    let again = spool.reprint("orig.r1", Serials::Same, None, 5).unwrap();
    assert_eq!(again.job_id, "orig.r1.r1");
    assert_eq!(again.serials, first.serials);

    // New pieces: fresh serials, after every serial used so far.
    let new = spool.reprint("orig", Serials::New, None, 6).unwrap();
    assert_eq!(new.job_id, "orig.r2");
    assert_eq!(serials(&new), [2, 3]);
    assert_eq!(new.serials[1].index, 2);
    assert_eq!(new.serials[0].tracking, "00270123456000000002");
    assert_eq!(spool.range(MID).unwrap().unwrap().next, 4);

    // A client-chosen id makes a reprint idempotent.
    let mine = spool
        .reprint("orig", Serials::New, Some("mine".into()), 7)
        .unwrap();
    let replay = spool
        .reprint("orig", Serials::New, Some("mine".into()), 8)
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(serials(&replay), serials(&mine));
    assert_eq!(spool.range(MID).unwrap().unwrap().next, 6);
    for (of, mode, id) in [
        ("orig", Serials::Same, "mine"),
        ("orig.r1", Serials::New, "mine"),
        ("orig", Serials::Same, "orig"),
    ] {
        assert!(
            matches!(
                spool.reprint(of, mode, Some(id.into()), 9),
                Err(SpoolError::IdConflict { .. })
            ),
            "{of} {mode:?} {id}"
        );
    }
    assert!(matches!(
        spool.reprint("nope", Serials::Same, None, 9),
        Err(SpoolError::UnknownJob { .. })
    ));
    // New serials run out like any job's; nothing is created.
    spool.accept_job(job(None, 3, "{}"), 10).unwrap();
    assert_eq!(spool.range(MID).unwrap().unwrap().left(), 1);
    let jobs_before = spool.job_ids().unwrap().len();
    assert!(matches!(
        spool.reprint("orig", Serials::New, None, 11),
        Err(SpoolError::RangeExhausted {
            left: 1,
            wanted: 2,
            ..
        })
    ));
    assert_eq!(spool.job_ids().unwrap().len(), jobs_before);
    // Same-serial reprints still work with the range empty, and print like any job.
    let copy = spool.reprint("orig", Serials::Same, None, 12).unwrap();
    assert_eq!(copy.job_id, "orig.r3");
    let next = spool.next_labels("dock-3", 10).unwrap();
    assert_eq!(
        next[0].job_id, "orig.r1",
        "arrival order among equal priorities"
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pause_state_survives_reopen() {
    let dir = temp_dir("pause");
    let path = dir.join("spool.db");
    {
        let mut spool = Spool::open(&path).unwrap();
        assert!(spool.paused_printers().unwrap().is_empty());
        spool
            .set_paused("dock-1", true, Some("paper out"), 1)
            .unwrap();
        spool.set_paused("dock-2", true, None, 2).unwrap();
        spool.set_paused("dock-3", true, None, 3).unwrap();
        spool.set_paused("dock-3", false, None, 4).unwrap();
    }
    let mut spool = Spool::open(&path).unwrap();
    assert_eq!(
        spool.paused_printers().unwrap(),
        BTreeMap::from([
            ("dock-1".to_string(), Some("paper out".to_string())),
            ("dock-2".to_string(), None)
        ])
    );
    spool.set_paused("dock-1", false, None, 5).unwrap();
    assert_eq!(spool.paused_printers().unwrap().len(), 1);
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn print_log_export_as_csv() {
    let dir = temp_dir("printlog");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 7, 999).unwrap();
    spool.configure_range("912345678", 42, 999).unwrap();
    let mut j = job_on("log", "dock-1", 5, &[0, 1, 2]);
    j.labels[1].imb.as_mut().unwrap().mailer_id = "912345678".into();
    j.labels[1].routing = "123456789".into();
    j.labels[2].imb = None;
    j.labels[2].recipient = "Smith, \"Bob\"".into();
    spool.accept_job(j, 1).unwrap();
    spool.mark_sent_many("log", &[0, 1, 2], None, 2).unwrap();
    spool
        .mark_printed_many("log", &[2], "dock-1", 1_700_000_000_123)
        .unwrap();
    spool
        .mark_printed_many("log", &[0, 1], "dock-9", 1_700_000_001_000)
        .unwrap();

    let all = spool.print_log(0, None, 100).unwrap();
    let order: Vec<u32> = all.iter().map(|e| e.index).collect();
    assert_eq!(order, [2, 0, 1], "by time, then as written");
    assert_eq!(all[1].printer, "dock-9");
    assert_eq!(all[1].routing, "12345");
    assert_eq!(
        spool.print_log(1_700_000_000_124, None, 100).unwrap().len(),
        2
    );
    assert_eq!(
        spool
            .print_log(0, Some(1_700_000_001_000), 100)
            .unwrap()
            .len(),
        1,
        "until is exclusive"
    );
    assert_eq!(spool.print_log(0, None, 2).unwrap().len(), 2);

    let mut out = Vec::new();
    write_print_log_csv(&all, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "printed_at,printed_at_ms,job_id,index,printer,mailer_id,serial,tracking,routing,imb,recipient\n\
         2023-11-14T22:13:20.123Z,1700000000123,log,2,dock-1,,,,12345,,\"Smith, \"\"Bob\"\"\"\n\
         2023-11-14T22:13:21.000Z,1700000001000,log,0,dock-9,123456,000000007,00270123456000000007,12345,0027012345600000000712345,recipient 0\n\
         2023-11-14T22:13:21.000Z,1700000001000,log,1,dock-9,912345678,000042,00270912345678000042,123456789,00270912345678000042123456789,recipient 1\n"
    );
    let mut out = Vec::new();
    write_print_log_csv(&[] as &[PrintLogEntry], &mut out).unwrap();
    assert_eq!(
        out.iter().filter(|&&b| b == b'\n').count(),
        1,
        "header only"
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prune_deletes_finished_jobs_and_never_reuses_serials() {
    let dir = temp_dir("prune");
    let mut spool = Spool::open(dir.join("spool.db")).unwrap();
    spool.configure_range(MID, 0, 999_999).unwrap();
    // Done at 100, with many labels so pages are freed.
    let big = spool
        .accept_job(job(Some("done-old"), 2_000, "{}"), 10)
        .unwrap();
    let all: Vec<u32> = (0..2_000).collect();
    spool.mark_sent_many("done-old", &all, None, 50).unwrap();
    spool
        .mark_printed_many("done-old", &all, "dock-1", 100)
        .unwrap();
    // Cancelled at 150.
    spool
        .accept_job(job(Some("cancelled-old"), 2, "{}"), 20)
        .unwrap();
    spool.cancel_job("cancelled-old", 150).unwrap();
    // Cancelled with a label still in flight: kept until it is confirmed.
    spool
        .accept_job(job(Some("in-flight"), 2, "{}"), 30)
        .unwrap();
    spool.mark_sent("in-flight", 0, 40).unwrap();
    spool.cancel_job("in-flight", 160).unwrap();
    // Still active: never pruned, however old.
    spool.accept_job(job(Some("active"), 1, "{}"), 5).unwrap();
    // Done after the cutoff.
    spool
        .accept_job(job(Some("done-new"), 1, "{}"), 300)
        .unwrap();
    spool.mark_sent("done-new", 0, 400).unwrap();
    spool.mark_printed("done-new", 0, 500).unwrap();
    let max_before = spool.range(MID).unwrap().unwrap().next - 1;

    let report = spool.prune(200).unwrap();
    assert_eq!(
        (report.jobs, report.labels, report.print_log),
        (2, 2_002, 2_000)
    );
    assert!(report.pages_freed > 0, "{report:?}");
    let mut left = spool.job_ids().unwrap();
    left.sort();
    assert_eq!(left, ["active", "done-new", "in-flight"]);
    assert!(spool.job("done-old").unwrap().is_none());
    assert!(matches!(
        spool.reprint("done-old", Serials::Same, None, 600),
        Err(SpoolError::UnknownJob { .. })
    ));
    assert_eq!(spool.print_log(0, None, 10_000).unwrap().len(), 1);

    // The in-flight label resolves; the next prune takes that job.
    spool.mark_failed("in-flight", 0, "offline", 700).unwrap();
    assert_eq!(
        spool.prune(200).unwrap().jobs,
        0,
        "finished after the cutoff"
    );
    assert_eq!(spool.prune(800).unwrap().jobs, 2);

    // Serials never move back: a pruned job's serials are not handed out again, even
    // when the same client id is used again.
    let again = spool
        .accept_job(job(Some("done-old"), 1, "{}"), 900)
        .unwrap();
    assert!(!again.replayed);
    assert!(serials(&again)[0] > max_before);
    assert!(serials(&again)[0] > serials(&big).into_iter().max().unwrap());
    drop(spool);
    // Reopened, the range is where it was.
    let spool = Spool::open(dir.join("spool.db")).unwrap();
    assert_eq!(spool.range(MID).unwrap().unwrap().next, max_before + 2);
    drop(spool);
    let _ = std::fs::remove_dir_all(dir);
}

/// Schema version 1, exactly as labeld created it before version 2 (commit f855ba1).
const SCHEMA_V1: &str = "
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    printer    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'done', 'cancelled')),
    request    TEXT NOT NULL,
    reply      TEXT NOT NULL
) STRICT;
CREATE TABLE labels (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    state      TEXT NOT NULL
               CHECK (state IN ('queued', 'sent', 'printed', 'failed', 'cancelled')),
    mailer_id  TEXT,
    serial     INTEGER,
    tracking   TEXT,
    routing    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    reason     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
) STRICT;
CREATE UNIQUE INDEX labels_serial ON labels (mailer_id, serial) WHERE serial IS NOT NULL;
CREATE INDEX labels_open ON labels (state) WHERE state IN ('queued', 'sent');
CREATE TABLE serial_ranges (
    mailer_id TEXT PRIMARY KEY,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    next      INTEGER NOT NULL,
    CHECK (first <= last AND first <= next AND next <= last + 1)
) STRICT;
CREATE TABLE print_log (
    printed_at INTEGER NOT NULL,
    job_id     TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    printer    TEXT NOT NULL,
    mailer_id  TEXT,
    serial     INTEGER,
    tracking   TEXT,
    recipient  TEXT NOT NULL
) STRICT;
CREATE INDEX print_log_time ON print_log (printed_at);
CREATE INDEX print_log_serial ON print_log (mailer_id, serial);
";

/// A label of a version-1 job: state, serial, last change (and print time).
type V1Label = (&'static str, u64, i64);

/// A version-1 job: id, printer, created, state, labels.
type V1Job = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static [V1Label],
);

/// Writes a version-1 spool the way version-1 labeld left it: WAL, `user_version = 1`,
/// three jobs (active with a label printed and one in flight, done, cancelled).
fn write_v1_spool(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute("INSERT INTO serial_ranges VALUES (?1, 0, 999, 6)", [MID])
        .unwrap();
    let jobs: [V1Job; 3] = [
        (
            "old-a",
            "dock-1",
            100,
            "active",
            &[("printed", 0, 110), ("sent", 1, 120), ("queued", 2, 100)],
        ),
        (
            "old-b",
            "dock-1",
            200,
            "done",
            &[("printed", 3, 210), ("printed", 4, 220)],
        ),
        (
            "old-c",
            "dock-2",
            300,
            "cancelled",
            &[("cancelled", 5, 310)],
        ),
    ];
    for (id, printer, created, state, labels) in jobs {
        let reply = Accepted {
            job_id: id.into(),
            label_count: labels.len() as u32,
            serials: (0u32..)
                .zip(labels)
                .map(|(index, (_, serial, _))| labeld::spool::AssignedSerial {
                    index,
                    mailer_id: MID.into(),
                    serial: *serial,
                    tracking: format!("00270{MID}{serial:09}"),
                })
                .collect(),
            warnings: Vec::new(),
            replayed: false,
        };
        conn.execute(
            "INSERT INTO jobs VALUES (?1, ?2, ?3, ?4, '{\"v\":1}', ?5)",
            rusqlite::params![
                id,
                printer,
                created,
                state,
                serde_json::to_string(&reply).unwrap()
            ],
        )
        .unwrap();
        for (index, (label_state, serial, updated)) in (0i64..).zip(labels) {
            let tracking = format!("00270{MID}{serial:09}");
            conn.execute(
                "INSERT INTO labels (job_id, idx, state, mailer_id, serial, tracking, routing,
                                     recipient, attempts, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '12345', ?7, ?8, ?9)",
                rusqlite::params![
                    id,
                    index,
                    label_state,
                    MID,
                    *serial as i64,
                    tracking,
                    format!("{id} {index}"),
                    i64::from(*label_state == "printed" || *label_state == "sent"),
                    updated
                ],
            )
            .unwrap();
            if *label_state == "printed" {
                conn.execute(
                    "INSERT INTO print_log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![
                        updated,
                        id,
                        index,
                        printer,
                        MID,
                        *serial as i64,
                        tracking,
                        format!("{id} {index}")
                    ],
                )
                .unwrap();
            }
        }
    }
}

fn schema_of(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn version_1_spool_is_migrated_in_place() {
    let dir = temp_dir("migrate");
    let path = dir.join("v1.db");
    write_v1_spool(&path);
    assert_eq!(user_version(&path), 1);

    let mut spool = Spool::open(&path).unwrap();
    assert_eq!(user_version(&path), 2);
    // What version 1 stored reads back unchanged.
    assert_eq!(spool.job_ids().unwrap(), ["old-a", "old-b", "old-c"]);
    let a = spool.job("old-a").unwrap().unwrap();
    assert_eq!(serials(&a), [0, 1, 2]);
    assert_eq!(spool.resume_point("old-a").unwrap(), Some(1));
    let unfinished = spool.unfinished_jobs().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(
        (unfinished[0].in_flight.as_slice(), unfinished[0].queued),
        (&[1][..], 1)
    );
    // Back-filled: units are indices, default priority, counts, print-log routing.
    let status = spool.job_status("old-a").unwrap().unwrap();
    assert_eq!(status.priority, 5);
    let units: Vec<u32> = status.labels.iter().map(|l| l.unit).collect();
    assert_eq!(units, [0, 1, 2]);
    assert_eq!(
        (
            status.progress.printed,
            status.progress.sent,
            status.progress.queued,
            status.progress.total
        ),
        (1, 1, 1, 3)
    );
    let b = spool.job_status("old-b").unwrap().unwrap();
    assert_eq!(
        (b.state, b.progress.printed, b.progress.done),
        (JobState::Done, 2, true)
    );
    let c = spool.job_progress("old-c").unwrap();
    assert_eq!((c.cancelled, c.done), (1, true));
    let log = spool.print_log(0, None, 100).unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.routing == "12345"));
    // The scheduler's view works on old jobs.
    let next = spool.next_labels("dock-1", 10).unwrap();
    assert_eq!(indices(&next), [1, 2]);
    assert_eq!(next[0].state, LabelState::Sent);
    assert_eq!(
        spool.queue_depth().unwrap(),
        BTreeMap::from([("dock-1".to_string(), 2)])
    );
    // Allocation continues where version 1 stopped.
    let new = spool.accept_job(job(None, 1, "{}"), 400).unwrap();
    assert_eq!(serials(&new), [6]);
    // Finishing an old job works, and old finished jobs can be pruned.
    spool
        .mark_printed_many("old-a", &[1], "dock-1", 410)
        .unwrap();
    spool.mark_sent_many("old-a", &[2], None, 420).unwrap();
    assert!(
        spool
            .mark_printed_many("old-a", &[2], "dock-1", 430)
            .unwrap()
            .done
    );
    let report = spool.prune(350).unwrap();
    assert_eq!((report.jobs, report.labels, report.print_log), (2, 3, 3));
    assert_eq!(
        report.pages_freed, 0,
        "a version-1 file has no incremental vacuum"
    );
    drop(spool);

    // Reopening does not migrate twice, and the schema is the one a new file gets.
    let spool = Spool::open(&path).unwrap();
    assert_eq!(spool.job_ids().unwrap().len(), 2);
    drop(spool);
    drop(Spool::open(dir.join("fresh.db")).unwrap());
    assert_eq!(schema_of(&path), schema_of(&dir.join("fresh.db")));

    // A file from a newer labeld is refused, untouched.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 3).unwrap();
    drop(conn);
    assert!(matches!(
        Spool::open(&path),
        Err(SpoolError::SchemaTooNew {
            found: 3,
            supported: 2
        })
    ));
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
                    // Half single jobs, half batches of two.
                    if i % 2 == 0 {
                        let a = spool.accept_job(job(Some(&id), 3, "{}"), i).unwrap();
                        got.extend(serials(&a));
                    } else {
                        let batch = vec![
                            job(Some(&id), 1, "{}"),
                            job(Some(&format!("{id}b")), 2, "{}"),
                        ];
                        for a in spool.accept_jobs(batch, i) {
                            got.extend(serials(&a.unwrap()));
                        }
                    }
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

/// The child side of [`crash_loop_keeps_invariants`]: accepts jobs forever, singly and
/// in batches, marks labels in batches, reprints with new serials, and appends each
/// job id to the acknowledgement file after its commit returned. A no-op in normal
/// test runs.
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
        let batch: Vec<NewJob> = (0..1 + i % 6)
            .map(|k| {
                job(
                    Some(&format!("c{pid}-{i}-{k}")),
                    1 + ((i + k) % 5) as usize,
                    "{}",
                )
            })
            .collect();
        let accepted: Vec<Accepted> = if i % 2 == 0 {
            spool
                .accept_jobs(batch, i as i64)
                .into_iter()
                .map(Result::unwrap)
                .collect()
        } else {
            batch
                .into_iter()
                .map(|j| spool.accept_job(j, i as i64).unwrap())
                .collect()
        };
        let mut ids: Vec<String> = accepted.iter().map(|a| a.job_id.clone()).collect();
        // Exercise label updates too, so a kill can land inside one.
        let first = &accepted[0];
        let all: Vec<u32> = (0..first.label_count).collect();
        spool
            .mark_sent_many(&first.job_id, &all, Some(i), i as i64)
            .unwrap();
        if i % 2 == 0 {
            spool
                .mark_printed_many(&first.job_id, &all, "dock-1", i as i64)
                .unwrap();
        }
        if i % 7 == 0 {
            let copy = spool
                .reprint(&first.job_id, Serials::New, None, i as i64)
                .unwrap();
            ids.push(copy.job_id);
        }
        // Unbuffered write: the lines exist only after the commits returned.
        let lines: String = ids.iter().map(|id| format!("{id}\n")).collect();
        acks.write_all(lines.as_bytes()).unwrap();
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
        let status = spool.job_status(id).unwrap().unwrap();
        let labels = &status.labels;
        assert_eq!(
            labels.len() as u32,
            answer.label_count,
            "job {id} incomplete"
        );
        // The counts kept by triggers match the labels.
        let count = |s: LabelState| labels.iter().filter(|l| l.state == s).count() as u32;
        let p = &status.progress;
        assert_eq!(
            (p.queued, p.sent, p.printed, p.failed, p.cancelled, p.total),
            (
                count(LabelState::Queued),
                count(LabelState::Sent),
                count(LabelState::Printed),
                count(LabelState::Failed),
                count(LabelState::Cancelled),
                answer.label_count
            ),
            "job {id} counts"
        );
        // Active exactly while labels are open (cancelled jobs aside: their sent
        // labels stay open).
        if status.state != JobState::Cancelled {
            assert_eq!(
                status.state == JobState::Active,
                !p.done,
                "job {id} state {:?} with {p:?}",
                status.state
            );
        }
        for l in labels {
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

#[test]
fn a_client_tracking_code_inside_our_range_is_refused_and_outside_is_printed_as_given() {
    let dir = temp_dir("client-serial");
    let mut spool = Spool::open(dir.join("spool.sqlite")).expect("open");
    spool.configure_range(MID, 1000, 1999).expect("range");
    let job = |code: &str| NewJob {
        id: None,
        printer: "p".into(),
        priority: labeld::spool::DEFAULT_PRIORITY,
        labels: vec![NewLabel {
            imb: None,
            routing: String::new(),
            recipient: "r".into(),
            unit: 0,
            tracking: Some(code.into()),
        }],
        request_json: format!("{{\"code\":\"{code}\"}}"),
    };
    let inside = format!("00270{MID}000001500");
    let err = spool
        .accept_job(job(&inside), 1)
        .expect_err("inside the range");
    assert!(
        matches!(err, SpoolError::ClientSerialInRange { serial: 1500, .. }),
        "{err}"
    );
    let outside = format!("00270{MID}000005000");
    let ok = spool
        .accept_job(job(&outside), 2)
        .expect("outside the range");
    assert!(ok.serials.is_empty(), "nothing allocated");
    let labels = spool.job_labels(&ok.job_id).expect("labels");
    assert_eq!(labels[0].tracking.as_deref(), Some(outside.as_str()));
    assert_eq!(labels[0].serial, None);
}
