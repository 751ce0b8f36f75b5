//! The tracking desk: answers `track`, `tracking_report` and `tracking_import`.
//!
//! A thread of its own with its own connection to the spool's file, so a report over
//! 100,000 pieces or a large import never holds up submits (the office) or status
//! requests (the reader). The daemon's router sends it exactly the ops for which
//! [`serves`] is true.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::ivmtr::{IvClient, PieceLookup};
use super::settings::TrackingSettings;
use super::store::{mailer_serial, PieceInfo, PieceKey, ReportScope, StoreError, TrackingStore};
use crate::events::{Event, Events};
use crate::protocol::{ErrorCode, Op, ProtocolError, Reply, ReportQuery, TrackingImport};
use crate::server::Incoming;
use crate::service::now_ms;

/// The ops the desk answers.
pub fn serves(op: &Op) -> bool {
    matches!(
        op,
        Op::Track(_) | Op::TrackingReport(_) | Op::TrackingImport(_)
    )
}

/// The desk: a tracking store and what it needs to read it.
pub struct Desk {
    store: TrackingStore,
    /// For `track` with `refresh`: `None` when IV-MTR lookups are off.
    client: Option<IvClient>,
    settings: TrackingSettings,
    events: Events,
    /// The Mailer IDs with a serial range here: a bare serial is taken as theirs when
    /// there is exactly one.
    mailer_ids: Vec<String>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("mailer_ids", &self.mailer_ids)
            .finish_non_exhaustive()
    }
}

impl Desk {
    /// Opens the tracking store in the spool's file, and brings stored stages in line
    /// with the configured stage rules.
    ///
    /// # Errors
    ///
    /// The store could not be opened or its tables made.
    pub fn open(
        spool: &Path,
        settings: TrackingSettings,
        events: Events,
        mailer_ids: Vec<String>,
    ) -> Result<Desk, StoreError> {
        let mut store = TrackingStore::open(spool)?;
        let changed = store.apply_rules(&settings.stages)?;
        if changed > 0 {
            tracing::info!(
                pieces = changed,
                "tracking: stage rules changed; stored stages computed again"
            );
        }
        Ok(Desk {
            store,
            client: None,
            settings,
            events,
            mailer_ids,
        })
    }

    /// Lets `track` with `refresh` ask IV-MTR through `client` (its own login, apart
    /// from the poller's).
    pub fn with_client(mut self, client: IvClient) -> Desk {
        self.client = Some(client);
        self
    }

    /// Answers requests until `incoming` closes. Blocking: run it on its own thread.
    pub fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) {
        while let Some(request) = incoming.blocking_recv() {
            let id = request.request.id.clone();
            let reply = match catch_unwind(AssertUnwindSafe(|| self.answer(&request.request.op))) {
                Ok(Ok(data)) => Reply::data(id, data),
                Ok(Err(e)) => Reply::error(&e.with_id(id)),
                Err(_) => {
                    tracing::error!(op = request.request.op.name(), "tracking desk panicked");
                    Reply::error(
                        &ProtocolError::new(ErrorCode::Internal, None, "tracking desk failed")
                            .with_id(id),
                    )
                }
            };
            // A client that went away is not an error.
            let _ = request.reply.send(reply);
        }
        tracing::debug!("tracking desk stopped");
    }

    /// One request.
    ///
    /// # Errors
    ///
    /// The typed error the client gets.
    pub fn answer(&mut self, op: &Op) -> Result<Map<String, Value>, ProtocolError> {
        match op {
            Op::Track(q) => self.track(&q.piece, q.refresh),
            Op::TrackingReport(q) => self.report(q),
            Op::TrackingImport(import) => self.import(import),
            other => Err(ProtocolError::new(
                ErrorCode::Internal,
                None,
                format!("op {} reached the tracking desk", other.name()),
            )),
        }
    }

    fn track(&mut self, piece: &str, refresh: bool) -> Result<Map<String, Value>, ProtocolError> {
        let key = self.piece_key(piece)?;
        let refresh_error = if refresh {
            self.refresh(&key).err()
        } else {
            None
        };
        let view = self
            .store
            .piece(
                &key,
                &self.settings.stages,
                self.settings.stall_days,
                now_ms(),
            )
            .map_err(|e| store_error(&e))?
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::NotFound,
                    Some("piece"),
                    format!(
                        "no piece {piece} in the print log or among received scans \
                         (printed pieces are kept for log_retention_days)"
                    ),
                )
            })?;
        let mut reply = as_map(json!({ "piece": view }));
        if let Some(error) = refresh_error {
            reply.insert("refresh_error".into(), error.into());
        }
        Ok(reply)
    }

    /// Looks the piece up in IV-MTR now and stores what comes back: by the IMb as
    /// printed when the print log has it, else by Mailer ID and serial (IV-MTR then
    /// says which IMbs it saw).
    fn refresh(&mut self, key: &PieceKey) -> Result<(), String> {
        let Some(client) = self.client.as_mut() else {
            return Err("IV-MTR lookups are off here ([tracking] enabled = false)".into());
        };
        let known = self
            .store
            .piece(
                key,
                &self.settings.stages,
                self.settings.stall_days,
                now_ms(),
            )
            .map_err(|e| e.to_string())?;
        let (mailer_id, serial) = match (&known, key) {
            (Some(view), _) => (view.mailer_id.clone(), view.serial),
            (None, PieceKey::Serial { mailer_id, serial }) => (mailer_id.clone(), *serial),
            (None, PieceKey::Tracking(tracking)) => mailer_serial(tracking)
                .ok_or_else(|| format!("{tracking} is not a tracking code"))?,
        };
        let imbs = match known.as_ref().and_then(|v| v.prints.last().map(|p| (v, p))) {
            Some((view, print)) => vec![format!("{}{}", view.tracking, print.routing)],
            None => {
                let width = 15usize.saturating_sub(mailer_id.len());
                client
                    .barcodes_by_serial(&mailer_id, &format!("{serial:0width$}"), None)
                    .map_err(|e| e.to_string())?
            }
        };
        for imb in imbs {
            match client.piece_by_imb(&imb).map_err(|e| e.to_string())? {
                PieceLookup::Found(data) => {
                    let now = now_ms();
                    let added = self
                        .store
                        .add_scans(&data.scans, &self.settings.stages, now)
                        .map_err(|e| e.to_string())?;
                    for change in &added.changes {
                        self.events.publish(Event::from(change));
                    }
                    let info = PieceInfo {
                        expected_delivery_date: data.expected_delivery_date.clone(),
                        mail_class: data.mail_class.clone(),
                        mail_shape: data.mail_shape.clone(),
                        start_the_clock_date: data.start_the_clock_date.clone(),
                    };
                    if let Some(tracking) = imb.get(..20) {
                        self.store
                            .set_piece_info(tracking, &info)
                            .map_err(|e| e.to_string())?;
                    }
                }
                PieceLookup::NoData { .. } => {}
            }
        }
        Ok(())
    }

    /// A bare serial needs the Mailer ID: taken from the serial ranges when there is
    /// exactly one.
    fn piece_key(&self, piece: &str) -> Result<PieceKey, ProtocolError> {
        let bare_serial =
            !piece.is_empty() && piece.len() <= 9 && piece.bytes().all(|b| b.is_ascii_digit());
        if bare_serial {
            let serial: u64 = piece.parse().map_err(|_| bad_piece(piece))?;
            return match self.mailer_ids.as_slice() {
                [mailer_id] => Ok(PieceKey::Serial {
                    mailer_id: mailer_id.clone(),
                    serial,
                }),
                _ => Err(ProtocolError::bad_field(
                    "piece",
                    format!(
                        "{piece} is a bare serial but this labeld has {} Mailer IDs; \
                         write MID-SERIAL",
                        self.mailer_ids.len()
                    ),
                )),
            };
        }
        PieceKey::parse(piece).map_err(|e| ProtocolError::bad_field("piece", e.to_string()))
    }

    fn report(&mut self, q: &ReportQuery) -> Result<Map<String, Value>, ProtocolError> {
        let scope = match (&q.job_id, q.since_ms) {
            (Some(job_id), _) => ReportScope::Job(job_id.clone()),
            (None, Some(since_ms)) => ReportScope::Since(since_ms),
            (None, None) => {
                return Err(ProtocolError::bad_field(
                    "job_id",
                    "give exactly one of job_id and since_ms",
                ))
            }
        };
        let mut report = self
            .store
            .report(&scope, self.settings.stall_days, now_ms())
            .map_err(|e| store_error(&e))?;
        if !q.pieces {
            report.rows.clear();
        }
        Ok(as_map(json!({ "report": report })))
    }

    fn import(&mut self, import: &TrackingImport) -> Result<Map<String, Value>, ProtocolError> {
        let added = self
            .store
            .add_scans(&import.scans, &self.settings.stages, now_ms())
            .map_err(|e| store_error(&e))?;
        for change in &added.changes {
            self.events.publish(Event::from(change));
        }
        tracing::info!(
            source = import.source.as_deref().unwrap_or("-"),
            inserted = added.inserted,
            duplicates = added.duplicates,
            unmatched = added.unmatched,
            "tracking import"
        );
        Ok(as_map(json!({
            "inserted": added.inserted,
            "duplicates": added.duplicates,
            "unmatched": added.unmatched,
            "changed": added.changes.len(),
        })))
    }
}

fn bad_piece(piece: &str) -> ProtocolError {
    // Only a bare serial that does not parse (it cannot: it is all digits) gets here.
    ProtocolError::bad_field(
        "piece",
        format!(
            "{piece:?} is not a piece: give a 20-digit tracking code, the IMb's 20 to 31 \
             digits, MID-SERIAL, or a bare serial"
        ),
    )
}

fn store_error(e: &StoreError) -> ProtocolError {
    tracing::error!(error = %e, "tracking store");
    ProtocolError::new(ErrorCode::Internal, None, e.to_string())
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
