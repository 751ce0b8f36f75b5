//! Load: 20 clients submit 1,000 jobs each to the ZPL file printer while one more
//! client floods requests and never reads a reply. Every good client gets every
//! reply and every job is in the spool exactly once.
//!
//! The printer is paused during the run so the test measures the request path and
//! stays quick in a debug build (printing throughput is a benchmark, and printing
//! under crashes is the crash test). No timing is asserted; the test prints what it
//! saw, and the latency numbers are in BENCHMARKS.md.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::Daemon;

const CLIENTS: usize = 20;
const JOBS_PER_CLIENT: usize = 1000;
/// Requests a good client keeps in flight.
const WINDOW: usize = 8;

fn job(client: usize, n: usize) -> Value {
    json!({
        "op": "submit", "printer": "zpl-file", "job_id": format!("c{client}-j{n}"),
        "job": {"template": "address", "size": "4x2",
                "imb": {"mailer_id": "123456", "service_type": "270", "routing": "98765"},
                "to": [format!("CLIENT {client} JOB {n}"), "1 MAIN ST", "ANYTOWN ST 98765"]}
    })
}

#[test]
fn twenty_clients_and_a_flooder_lose_nothing() {
    let d = Daemon::start("");
    let paused = d.request(json!({"op": "pause", "printer": "zpl-file"}));
    assert_eq!(paused["ok"], true, "{paused}");
    let requests = d.requests.clone();

    // The flooder: a raw DEALER that sends and never reads.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        let endpoint = requests.clone();
        std::thread::spawn(move || {
            let mut c = labeld::client::Client::connect(&endpoint, Duration::from_secs(1))
                .expect("flooder");
            let body = json!({"v": 1, "op": "health"}).to_string().into_bytes();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Blocks once labeld stops reading this connection: that is the point.
                if c.send_raw(body.clone()).is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                } else {
                    sent += 1;
                }
            }
            sent
        })
    };

    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let endpoint = requests.clone();
            std::thread::spawn(move || {
                let mut c = labeld::client::Client::connect(&endpoint, Duration::from_secs(60))
                    .expect("client connects");
                let mut replies = Vec::with_capacity(JOBS_PER_CLIENT);
                let mut in_flight = 0;
                let mut next = 0;
                let mut worst = Duration::ZERO;
                let mut sent_at = std::collections::VecDeque::new();
                let mut ids = std::collections::HashMap::new();
                while replies.len() < JOBS_PER_CLIENT {
                    while in_flight < WINDOW && next < JOBS_PER_CLIENT {
                        let Value::Object(map) = job(client, next) else {
                            unreachable!()
                        };
                        let id = c.send(map).expect("send");
                        ids.insert(id.to_string(), next);
                        sent_at.push_back(Instant::now());
                        in_flight += 1;
                        next += 1;
                    }
                    let reply = c.recv().expect("every request gets a reply");

                    if let Some(t) = sent_at.pop_front() {
                        worst = worst.max(t.elapsed());
                    }
                    in_flight -= 1;
                    replies.push(reply);
                }
                let busy: Vec<(usize, usize)> = replies
                    .iter()
                    .filter(|r| r["error"]["code"] == "busy")
                    .filter_map(|r| ids.get(&r["id"].to_string()).map(|&n| (client, n)))
                    .collect();
                (replies, worst, busy)
            })
        })
        .collect();
    let mut accepted = 0usize;
    let mut busy = 0usize;
    let mut worst = Duration::ZERO;
    let mut unexpected = Vec::new();
    let mut busy_jobs = Vec::new();
    for w in workers {
        let (replies, w, busy_here) = w.join().expect("client thread");
        busy_jobs.extend(busy_here);
        worst = worst.max(w);
        for r in replies {
            if r["ok"] == true {
                accepted += 1;
            } else if r["error"]["code"] == "busy" {
                busy += 1;
            } else {
                unexpected.push(r);
            }
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "load: {accepted} accepted, {busy} busy in {elapsed:?} ({:.0} jobs/s); slowest reply {worst:?}",
        accepted as f64 / elapsed.as_secs_f64()
    );
    assert!(
        unexpected.is_empty(),
        "{:?}",
        &unexpected[..unexpected.len().min(5)]
    );

    // Jobs refused as busy are sent again (what a client should do: job ids make it
    // safe); then every job is in the spool exactly once.
    let mut c = d.client();
    for (client, n) in &busy_jobs {
        let r = c.request(job(*client, *n)).expect("resubmit");
        assert_eq!(r["ok"], true, "{r}");
    }
    let h = c.request(json!({"op": "health"})).expect("health");
    assert_eq!(h["open_labels"], (CLIENTS * JOBS_PER_CLIENT) as u64, "{h}");
    for (client, n) in [(0, 0), (CLIENTS - 1, JOBS_PER_CLIENT - 1), (7, 500)] {
        let s = c
            .request(json!({"op": "status", "job_id": format!("c{client}-j{n}")}))
            .expect("status");
        assert_eq!(s["progress"]["queued"], 1, "{s}");
    }
    let _ = flooder.join();
}
