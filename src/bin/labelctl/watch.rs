//! `labelctl watch [TOPIC...]`: labeld's events as they happen, one line each.
//!
//! Topics are prefixes: `job.order-4711`, `job.` (every job), `printer.zebra-1`,
//! `serials.`; none means everything. Runs until Ctrl-C, `--count N` events or
//! `--for SECS`. ZeroMQ never replays: what happened before the subscription is not
//! shown (`labelctl status` has it).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use labeld::client::{Received, Subscriber};
use serde_json::Value;

use crate::daemon::{self, client_failure, Conn};
use crate::Failure;

/// Arguments of `labelctl watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// Topic prefixes: job.<id>, printer.<name>, serials.<mailer id>; none for all.
    topics: Vec<String>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECS")]
    duration: Option<f64>,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl watch`.
pub fn run(args: WatchArgs) -> Result<(), Failure> {
    let stop_at = args
        .duration
        .map(|s| daemon::seconds("--for", s).map(|d| Instant::now() + d))
        .transpose()?;
    let topics: Vec<&str> = if args.topics.is_empty() {
        vec![""]
    } else {
        args.topics.iter().map(String::as_str).collect()
    };
    let endpoint = args.conn.events();
    let timeout = args.conn.timeout()?;
    daemon::probe(&endpoint, timeout)?;
    let mut subscriber =
        Subscriber::connect(&endpoint, &topics, timeout).map_err(client_failure)?;
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    while args.count.is_none_or(|n| seen < n) {
        let wait = match stop_at {
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                left
            }
            None => Duration::from_secs(3600),
        };
        let Some(received) = subscriber.next(wait).map_err(client_failure)? else {
            continue;
        };
        seen += 1;
        let line = if args.conn.json {
            json_line(&received)
        } else {
            human_line(&received, now_ms())
        };
        writeln!(out, "{line}").context("writing events")?;
        out.flush().context("writing events")?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The payload with its topic: `{"topic":"job.a","event":"printed",...}`.
fn json_line(received: &Received) -> String {
    let mut event = match &received.event {
        Value::Object(map) => map.clone(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("payload".into(), other.clone());
            m
        }
    };
    event.insert("topic".into(), received.topic.clone().into());
    Value::Object(event).to_string()
}

/// `2025-03-01T14:30:00.250Z job.a printed labels=[0] printer=zebra confirmed=true`.
fn human_line(received: &Received, at_ms: i64) -> String {
    let mut line = format!(
        "{} {}",
        labeld::spool::format_rfc3339_ms(at_ms),
        received.topic
    );
    match &received.event {
        Value::Object(map) => {
            if let Some(kind) = map.get("event").and_then(Value::as_str) {
                line.push(' ');
                line.push_str(kind);
            }
            for (key, value) in map {
                if matches!(key.as_str(), "v" | "event" | "job_id") {
                    continue;
                }
                let value = match value {
                    Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => {
                        value.to_string()
                    }
                    other => daemon::text(other),
                };
                line.push_str(&format!(" {key}={value}"));
            }
        }
        other => line.push_str(&format!(" {other}")),
    }
    line
}
