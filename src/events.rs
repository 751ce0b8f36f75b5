//! What labeld tells the world: one [`Event`] per state change, published on the PUB
//! socket and written as one log line.
//!
//! Every event has a topic, so a subscriber filters by prefix: `job.<id>` for a job
//! and its labels, `printer.<name>` for a printer, `serials.<mailer id>` for serial
//! ranges, `tracking.<serial>` for a printed piece's USPS scans. The payload is a JSON object with `"v"`, `"event"` (the kind) and the
//! event's fields; `docs/protocol.md` lists them. Publishing never blocks the caller:
//! [`Events::publish`] drops the event (and counts it) when the PUB side is behind,
//! the same rule ZeroMQ's PUB applies to a slow subscriber.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::protocol::VERSION;
use crate::tracking::store::{PieceState, StateChange};

/// A printer's condition as events and `printers` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrinterState {
    /// Ready and idle or printing.
    Ready,
    /// Paused by an operator (`pause`); nothing is sent until `resume`.
    Paused,
    /// Out of paper or labels.
    PaperOut,
    /// Head or cover open.
    HeadOpen,
    /// Out of ribbon.
    RibbonOut,
    /// Another fault the printer reported (the detail says which).
    Fault,
    /// Cannot be reached (unplugged, powered off, network down).
    Offline,
    /// Not yet contacted.
    Unknown,
}

impl PrinterState {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PrinterState::Ready => "ready",
            PrinterState::Paused => "paused",
            PrinterState::PaperOut => "paper_out",
            PrinterState::HeadOpen => "head_open",
            PrinterState::RibbonOut => "ribbon_out",
            PrinterState::Fault => "fault",
            PrinterState::Offline => "offline",
            PrinterState::Unknown => "unknown",
        }
    }
}

/// One state change.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A job was committed to the spool.
    Accepted {
        /// Job id.
        job_id: String,
        /// Its printer.
        printer: String,
        /// Number of labels.
        labels: u32,
    },
    /// A print unit of a job is being laid out and rendered.
    Rendering {
        /// Job id.
        job_id: String,
        /// Label indexes in the unit.
        labels: Vec<u32>,
    },
    /// Labels were handed to the printer.
    Sent {
        /// Job id.
        job_id: String,
        /// Label indexes.
        labels: Vec<u32>,
        /// Printer.
        printer: String,
    },
    /// Labels printed. `confirmed` is true when the printer said so (status query);
    /// false when the bytes were delivered to a printer or file that cannot answer.
    Printed {
        /// Job id.
        job_id: String,
        /// Label indexes.
        labels: Vec<u32>,
        /// Printer.
        printer: String,
        /// The printer confirmed it.
        confirmed: bool,
    },
    /// Labels gave up.
    Failed {
        /// Job id.
        job_id: String,
        /// Label indexes.
        labels: Vec<u32>,
        /// Why, for a person.
        reason: String,
    },
    /// A job was cancelled; `labels` were still queued and will not print.
    Cancelled {
        /// Job id.
        job_id: String,
        /// How many labels were dropped.
        labels: u32,
    },
    /// Every label of the job is final.
    Done {
        /// Job id.
        job_id: String,
        /// Labels printed.
        printed: u32,
        /// Labels failed.
        failed: u32,
        /// Labels cancelled.
        cancelled: u32,
    },
    /// After a restart, a label that was being sent when labeld stopped. `reprinted`
    /// says whether it is printed again (the printer could not prove it printed) or
    /// counted as printed (its label counter moved).
    InFlight {
        /// Job id.
        job_id: String,
        /// The label.
        index: u32,
        /// It will be printed again.
        reprinted: bool,
        /// How that was decided.
        reason: String,
    },
    /// Progress of a job with many labels (every 1 % or 100 labels).
    Progress {
        /// Job id.
        job_id: String,
        /// Labels final so far.
        done: u32,
        /// All labels.
        total: u32,
    },
    /// A printer changed condition.
    Printer {
        /// Printer name.
        printer: String,
        /// New condition.
        state: PrinterState,
        /// What the printer or transport said.
        detail: String,
    },
    /// A serial range is running low.
    SerialsLow {
        /// Mailer ID.
        mailer_id: String,
        /// Serials left.
        left: u64,
        /// The warning threshold.
        threshold: u64,
    },
    /// A printed piece's tracking state changed (a USPS scan arrived, or it stalled).
    Tracking {
        /// Its serial (the topic's key).
        serial: u64,
        /// Its Mailer ID.
        mailer_id: String,
        /// Its 20-digit tracking code.
        tracking: String,
        /// The job that printed it, when the print log still has it.
        job_id: Option<String>,
        /// The state before.
        from: PieceState,
        /// The state now.
        to: PieceState,
    },
}

impl From<&StateChange> for Event {
    fn from(change: &StateChange) -> Event {
        Event::Tracking {
            serial: change.serial,
            mailer_id: change.mailer_id.clone(),
            tracking: change.tracking.clone(),
            job_id: change.job_id.clone(),
            from: change.from,
            to: change.to,
        }
    }
}

impl Event {
    /// The topic: `job.<id>`, `printer.<name>`, `serials.<mailer id>` or
    /// `tracking.<serial>`.
    pub fn topic(&self) -> String {
        match self {
            Event::Accepted { job_id, .. }
            | Event::Rendering { job_id, .. }
            | Event::Sent { job_id, .. }
            | Event::Printed { job_id, .. }
            | Event::Failed { job_id, .. }
            | Event::Cancelled { job_id, .. }
            | Event::Done { job_id, .. }
            | Event::InFlight { job_id, .. }
            | Event::Progress { job_id, .. } => format!("job.{job_id}"),
            Event::Printer { printer, .. } => format!("printer.{printer}"),
            Event::SerialsLow { mailer_id, .. } => format!("serials.{mailer_id}"),
            Event::Tracking { serial, .. } => format!("tracking.{serial}"),
        }
    }

    /// The payload: `{"v":1,"event":"printed",...}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert("v".into(), VERSION.into());
        }
        value.to_string().into_bytes()
    }

    /// Writes the event as one log line (warnings for faults, info otherwise).
    fn log(&self) {
        match self {
            Event::Failed {
                job_id,
                labels,
                reason,
            } => tracing::warn!(job = %job_id, ?labels, %reason, "labels failed"),
            Event::InFlight {
                job_id,
                index,
                reprinted,
                reason,
            } => {
                tracing::warn!(job = %job_id, index, reprinted, %reason, "label was in flight at restart")
            }
            Event::Printer {
                printer,
                state,
                detail,
            } => match state {
                PrinterState::Ready | PrinterState::Paused => {
                    tracing::info!(%printer, state = state.as_str(), %detail, "printer")
                }
                _ => tracing::warn!(%printer, state = state.as_str(), %detail, "printer"),
            },
            Event::SerialsLow {
                mailer_id,
                left,
                threshold,
            } => tracing::warn!(%mailer_id, left, threshold, "serial range running low"),
            Event::Rendering { .. } | Event::Progress { .. } => {
                tracing::debug!(topic = %self.topic(), event = ?self)
            }
            Event::Tracking {
                serial,
                mailer_id,
                to,
                from,
                ..
            } => match to {
                PieceState::Stalled => tracing::warn!(
                    %mailer_id, serial, from = from.as_str(), "piece stalled: no USPS scan"
                ),
                _ => tracing::info!(
                    %mailer_id, serial, from = from.as_str(), to = to.as_str(), "piece tracking"
                ),
            },
            Event::Accepted {
                job_id,
                printer,
                labels,
            } => tracing::info!(job = %job_id, %printer, labels, "accepted"),
            Event::Sent {
                job_id,
                labels,
                printer,
            } => tracing::debug!(job = %job_id, ?labels, %printer, "sent"),
            Event::Printed {
                job_id,
                labels,
                printer,
                confirmed,
            } => tracing::info!(job = %job_id, ?labels, %printer, confirmed, "printed"),
            Event::Cancelled { job_id, labels } => {
                tracing::info!(job = %job_id, labels, "cancelled")
            }
            Event::Done {
                job_id,
                printed,
                failed,
                cancelled,
            } => tracing::info!(job = %job_id, printed, failed, cancelled, "job done"),
        }
    }
}

/// The publishing handle: clone it freely; every clone feeds the same PUB socket.
#[derive(Clone, Debug)]
pub struct Events {
    tx: Option<tokio::sync::mpsc::Sender<(String, Vec<u8>)>>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    /// A handle and the receiver the server publishes from; `capacity` events may
    /// wait before new ones are dropped.
    pub fn channel(capacity: usize) -> (Events, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (
            Events {
                tx: Some(tx),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    /// A handle that only logs (tests, offline tools).
    pub fn log_only() -> Events {
        Events {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Logs the event and queues it for the PUB socket; never blocks.
    pub fn publish(&self, event: Event) {
        event.log();
        if let Some(tx) = &self.tx {
            if tx.try_send((event.topic(), event.to_json())).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events dropped because the PUB side was behind or gone.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_payloads() {
        let e = Event::Printed {
            job_id: "a-1".into(),
            labels: vec![0, 1],
            printer: "zebra".into(),
            confirmed: true,
        };
        assert_eq!(e.topic(), "job.a-1");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(v["event"], "printed");
        assert_eq!(v["v"], 1);
        assert_eq!(v["labels"], serde_json::json!([0, 1]));
        let p = Event::Printer {
            printer: "zebra".into(),
            state: PrinterState::PaperOut,
            detail: "paper out".into(),
        };
        assert_eq!(p.topic(), "printer.zebra");
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).expect("json");
        assert_eq!(v["state"], "paper_out");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (events, mut rx) = Events::channel(1);
        for _ in 0..3 {
            events.publish(Event::Cancelled {
                job_id: "x".into(),
                labels: 1,
            });
        }
        assert_eq!(events.dropped(), 2);
        assert!(rx.try_recv().is_ok());
    }
}
