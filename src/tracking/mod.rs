//! Informed Visibility tracking: follow every piece labeld printed through USPS's
//! scans, without anyone clicking.
//!
//! ```text
//! print log (spool) ─► poller ─► ivmtr (IV-MTR pull API) ─┐
//!                                                         ├─► store (scans + piece state)
//! USPS data feed ─► receiver (HTTPS push) ─► feed ────────┤        │
//! feed files ─► labelctl tracking import ─► desk ─────────┘        ├─► events `tracking.<serial>`
//!                                                                  └─► desk: track, report
//! ```
//!
//! - [`scan`]: one USPS scan event in labeld's own words, from either the pull API's
//!   snake_case or the feed's camelCase fields; the 20-digit tracking code it is keyed on.
//! - [`stages`]: which scans mean "accepted", "in transit", "processed for delivery",
//!   "delivered": a table in the configuration, because USPS's event-code meanings are
//!   not all documented (see `docs/tracking.md`).
//! - [`store`]: the scans table and the per-piece state, in the spool's SQLite file,
//!   joined to the print log on the tracking code.
//! - [`feed`]: IV-MTR data-feed files and push bodies (JSON, gzip or zip) → scans,
//!   checked whole before anything is stored.
//! - [`feed_event`]: a scan back into the feed's camelCase event object (how
//!   `labelctl tracking import` sends a checked file to labeld).
//! - [`credentials`]: Business Customer Gateway credentials from a private file or the
//!   environment, never printed.
//! - [`ivmtr`]: the IV-MTR pull client: login, refresh, one retry after a 401, back-off
//!   on 429/5xx and maintenance pages, piece lookup by IMb and by Mailer ID + serial.
//! - [`poller`]: the daemon's background thread that polls printed pieces within a
//!   window and a request budget.
//! - [`receiver`]: the opt-in HTTP(S) endpoint USPS pushes data feeds to.
//! - [`desk`]: answers the `track`, `tracking_report` and `tracking_import` requests.
//! - [`settings`]: the `[tracking]` section of the configuration.

pub mod credentials;
pub mod desk;
pub mod feed;
pub mod feed_event;
pub mod ivmtr;
pub mod poller;
pub mod receiver;
pub mod scan;
pub mod settings;
pub mod stages;
pub mod store;
