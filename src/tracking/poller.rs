//! The background tracker: asks IV-MTR about printed pieces that have not yet reached
//! "processed for delivery", within a window and a request budget.
//!
//! One thread, one [`IvClient`], one connection to the spool's file. Each round takes
//! the pieces most overdue ([`TrackingStore::due_for_poll`]), looks each up by its IMb,
//! stores new scans, publishes `tracking.<serial>` events for pieces whose state
//! changed, and schedules the piece's next poll by its age
//! ([`crate::tracking::store::next_poll_ms`]). Requests are spaced evenly to stay under
//! `requests_per_hour` (logins count). A refused login stops polling for an hour
//! (retrying a wrong password every few seconds can lock the Business Customer
//! Gateway account); 429 waits for `Retry-After`; outages back off up to an hour.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::credentials::Credentials;
use super::ivmtr::{IvClient, IvError, PieceLookup};
use super::settings::TrackingSettings;
use super::store::{next_poll_ms, PollTarget, StoreError, TrackingStore};
use crate::events::{Event, Events};
use crate::service::now_ms;

/// Pieces taken per round.
const ROUND: usize = 64;
/// Longest wait when nothing is due (shorter when the shortest poll interval is).
const IDLE: Duration = Duration::from_secs(60);
/// Pause after a refused login.
const LOGIN_PAUSE: Duration = Duration::from_secs(3600);
/// How often old tracking rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Longest pause after an outage.
const MAX_OUTAGE_PAUSE: Duration = Duration::from_secs(3600);

/// Why the poller could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollerError {
    /// The tracking store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The IV-MTR client could not be built.
    #[error("IV-MTR client: {0}")]
    Client(#[from] IvError),
    /// The thread could not start.
    #[error("cannot start the tracking thread: {0}")]
    Thread(std::io::Error),
}

/// The running poller; dropping it without [`Poller::stop`] leaves the thread to end
/// with the process.
#[derive(Debug)]
pub struct Poller {
    stop: mpsc::Sender<()>,
    /// Cuts the client's back-off sleeps short on stop.
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Poller {
    /// Starts polling with `credentials`; without them (push feeds only) the thread
    /// only looks for stalled pieces. Either way it prunes, every hour, the tracking
    /// rows of pieces gone from the print log for longer than `retention`.
    ///
    /// # Errors
    ///
    /// The store or client could not be made, or the thread not started.
    pub fn start(
        spool: &Path,
        settings: TrackingSettings,
        credentials: Option<Credentials>,
        events: Events,
        retention: Duration,
    ) -> Result<Poller, PollerError> {
        let store = TrackingStore::open(spool)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let client = credentials
            .map(|c| IvClient::new(&settings, c).map(|c| c.with_stop(Arc::clone(&stopping))))
            .transpose()?;
        let polls = client.is_some();
        let settings_push = settings.push.is_some();
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("labeld-tracking".into())
            .spawn(move || {
                let mut tracker = Tracker {
                    store,
                    client,
                    settings,
                    events,
                    stopped,
                    next_request: Instant::now(),
                    outages: 0,
                    last_stall_check: None,
                    retention,
                    last_prune: None,
                };
                tracker.run();
            })
            .map_err(PollerError::Thread)?;
        if polls {
            tracing::info!("tracking: polling IV-MTR for printed pieces");
        } else if settings_push {
            tracing::info!(
                "tracking: IV-MTR polling off; push feeds on, watching for stalled pieces"
            );
        } else {
            tracing::info!(
                "tracking: IV-MTR polling and push feeds off ([tracking]); track, \
                 tracking_report and tracking_import still answer"
            );
        }
        Ok(Poller {
            stop,
            stopping,
            thread,
        })
    }

    /// Stops after the request in progress and waits for the thread.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("tracking thread panicked");
        }
    }
}

/// The time one request costs out of the hourly budget.
pub fn request_spacing(requests_per_hour: u32) -> Duration {
    Duration::from_secs_f64(3600.0 / f64::from(requests_per_hour.max(1)))
}

/// The pause after `outages` failures in a row: 1, 2, 4 … minutes, at most an hour.
pub fn outage_pause(outages: u32) -> Duration {
    let minutes = 1u64 << outages.saturating_sub(1).min(6);
    Duration::from_secs(minutes * 60).min(MAX_OUTAGE_PAUSE)
}

struct Tracker {
    store: TrackingStore,
    /// `None`: no lookups, only stall checks.
    client: Option<IvClient>,
    settings: TrackingSettings,
    events: Events,
    stopped: mpsc::Receiver<()>,
    /// Not before this instant (the budget).
    next_request: Instant,
    /// Failures in a row (reset by an answer).
    outages: u32,
    last_stall_check: Option<Instant>,
    /// Tracking rows of pieces gone from the print log this long are deleted.
    retention: Duration,
    last_prune: Option<Instant>,
}

impl Tracker {
    /// Waits `pause`; false when asked to stop.
    fn wait(&self, pause: Duration) -> bool {
        match self.stopped.recv_timeout(pause) {
            Err(RecvTimeoutError::Timeout) => true,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// How long to wait when nothing is due, which is also how often stalled pieces
    /// are looked for (one indexed query).
    fn idle(&self) -> Duration {
        let shortest = self
            .settings
            .poll
            .iter()
            .map(|step| step.interval_ms())
            .min()
            .unwrap_or(i64::MAX);
        IDLE.min(Duration::from_millis(
            u64::try_from(shortest.max(1000)).unwrap_or(u64::MAX),
        ))
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.settings.window_days) * 86_400_000
    }

    fn run(&mut self) {
        loop {
            if self
                .last_stall_check
                .is_none_or(|t| t.elapsed() >= self.idle())
            {
                self.check_stalled();
                self.last_stall_check = Some(Instant::now());
            }
            if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.prune();
                self.last_prune = Some(Instant::now());
            }
            if self.client.is_none() {
                if !self.wait(self.idle()) {
                    break;
                }
                continue;
            }
            let due = match self.store.due_for_poll(
                now_ms(),
                self.window_ms(),
                &self.settings.poll,
                ROUND,
            ) {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "tracking store");
                    Vec::new()
                }
            };
            if due.is_empty() && !self.wait(self.idle()) {
                break;
            }
            for target in due {
                let until_budget = self.next_request.saturating_duration_since(Instant::now());
                if !self.wait(until_budget) {
                    return;
                }
                if let Some(pause) = self.poll(&target) {
                    tracing::info!(
                        seconds = pause.as_secs(),
                        "tracking: pausing IV-MTR lookups"
                    );
                    if !self.wait(pause) {
                        return;
                    }
                    break;
                }
            }
        }
    }

    /// Looks one piece up; `Some(pause)` stops the round for that long.
    fn poll(&mut self, target: &PollTarget) -> Option<Duration> {
        let client = self.client.as_mut()?;
        let imb = format!("{}{}", target.tracking, target.routing);
        let before = client.requests_made();
        let result = client.piece_by_imb(&imb);
        let used = client.requests_made().saturating_sub(before).max(1);
        let spacing = request_spacing(self.settings.requests_per_hour);
        self.next_request = Instant::now() + spacing * u32::try_from(used).unwrap_or(u32::MAX);
        let now = now_ms();
        let next = next_poll_ms(target.printed_at_ms, now, &self.settings.poll);
        match result {
            Ok(PieceLookup::Found(data)) => {
                self.outages = 0;
                match self
                    .store
                    .add_scans(&data.scans, &self.settings.stages, now)
                {
                    Ok(added) => {
                        for change in &added.changes {
                            self.events.publish(Event::from(change));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "tracking store"),
                }
                let info = super::store::PieceInfo {
                    expected_delivery_date: data.expected_delivery_date.clone(),
                    mail_class: data.mail_class.clone(),
                    mail_shape: data.mail_shape.clone(),
                    start_the_clock_date: data.start_the_clock_date.clone(),
                };
                if let Err(e) = self.store.set_piece_info(&target.tracking, &info) {
                    tracing::error!(error = %e, "tracking store");
                }
                for reason in &data.rejected {
                    tracing::warn!(tracking = %target.tracking, %reason, "IV-MTR scan not used");
                }
                self.record(target, now, next, None);
                None
            }
            Ok(PieceLookup::NoData { .. }) => {
                self.outages = 0;
                self.record(target, now, next, None);
                None
            }
            Err(e) => {
                let detail = e.to_string();
                self.record(target, now, next, Some(&detail));
                match &e {
                    IvError::Credentials { .. } => {
                        tracing::error!(error = %e, "tracking: IV-MTR refused the login; check the credentials");
                        Some(LOGIN_PAUSE)
                    }
                    IvError::Throttled { retry_after } => {
                        tracing::warn!(error = %e, "tracking: IV-MTR asks to slow down");
                        let cap = Duration::from_secs(self.settings.max_backoff_secs.max(1));
                        Some((*retry_after).min(cap))
                    }
                    _ => {
                        self.outages = self.outages.saturating_add(1);
                        tracing::warn!(error = %e, outages = self.outages, "tracking: IV-MTR lookup failed");
                        Some(outage_pause(self.outages))
                    }
                }
            }
        }
    }

    fn record(&mut self, target: &PollTarget, now: i64, next: i64, error: Option<&str>) {
        if let Err(e) = self.store.record_poll(&target.tracking, now, next, error) {
            tracing::error!(error = %e, "tracking store");
        }
    }

    fn prune(&mut self) {
        let retention_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        match self.store.prune(now_ms().saturating_sub(retention_ms)) {
            Ok(report) if report.scans + report.pieces + report.feed_messages > 0 => {
                tracing::info!(
                    scans = report.scans,
                    pieces = report.pieces,
                    feed_messages = report.feed_messages,
                    "tracking: pruned"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "tracking store"),
        }
    }

    /// Stalls are announced only where scans are expected (polling or a push feed):
    /// with neither, every printed piece would stall.
    fn check_stalled(&mut self) {
        if !self.settings.enabled && self.settings.push.is_none() {
            return;
        }
        match self
            .store
            .mark_stalled(now_ms(), self.settings.stall_days, self.window_ms())
        {
            Ok(changes) => {
                for change in &changes {
                    self.events.publish(Event::from(change));
                }
            }
            Err(e) => tracing::error!(error = %e, "tracking store"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_spreads_the_hourly_budget() {
        assert_eq!(request_spacing(3600), Duration::from_secs(1));
        assert_eq!(request_spacing(1200), Duration::from_secs(3));
        // Zero is taken as one an hour, not a division by zero.
        assert_eq!(request_spacing(0), Duration::from_secs(3600));
    }

    #[test]
    fn outages_back_off_to_an_hour() {
        assert_eq!(outage_pause(1), Duration::from_secs(60));
        assert_eq!(outage_pause(2), Duration::from_secs(120));
        assert_eq!(outage_pause(4), Duration::from_secs(480));
        assert_eq!(outage_pause(7), Duration::from_secs(3600));
        assert_eq!(outage_pause(100), Duration::from_secs(3600));
    }
}
