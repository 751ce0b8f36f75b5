//! The opt-in endpoint USPS pushes Informed Visibility data feeds to: HTTPS (or plain
//! HTTP behind a TLS reverse proxy), JSON bodies, HTTP Basic auth.
//!
//! USPS's side is set up in the IV-MTR portal: an "address book" server entry with
//! protocol HTTPS JSON, host, port, target path, and the user name and password USPS
//! sends as HTTP Basic; then a data-feed subscription that delivers to it, zipped or
//! not, commonly hourly (facts file `iv-tracking.md` §3). Nothing in a source labeld
//! could read says how USPS retries; one client reports retries on 5xx and none on
//! 401/403, so a wrong password loses data and a storage failure must be a 5xx.
//!
//! # Contract
//!
//! - Only `POST` on [`PushSettings::path`]: any other path is 404, another method on
//!   that path is 405 with `Allow: POST`.
//! - Then HTTP Basic auth, compared in constant time with the configured
//!   [`Credentials`]: missing, malformed or wrong is 401 with
//!   `WWW-Authenticate: Basic realm="labeld"` and a warning (the submitted user name,
//!   never a password). A small unread body is drained first (at most [`DRAIN_LIMIT`])
//!   so the client reads the answer instead of a reset connection.
//! - A `Content-Length` over [`PushSettings::max_body_bytes`] is 413 before any of
//!   the body is read; a body without one is read with a running count and is 413 as
//!   soon as it passes the limit. `Content-Encoding` may be `gzip` (or absent or
//!   `identity`); anything else is 415. The feed parser sniffs gzip and zip itself, so
//!   a compressed body without the header is fine too.
//! - The body goes to [`feed::parse_feed_body`] (all or nothing, decompression
//!   bounded by [`FeedLimits`]) and then to [`TrackingStore::add_feed`], both on a
//!   blocking thread. A feed that cannot be parsed is 400 with
//!   `{"error": "invalid_feed", "detail": "..."}` (413 `body_too_large` when it
//!   decompresses past the limit) and nothing is stored; a store
//!   failure is 500 (so USPS sends it again); success is 200 with
//!   `{"ok": true, "messages": n, "already_received": n, "inserted": n,
//!   "duplicates": n, "unmatched": n, "skipped": n}`. A delivery whose message group
//!   was already received is answered 200 again and stores nothing new. Every piece
//!   whose state changed is published as a `tracking.<serial>` event.
//! - Every answer that is not 200 has a JSON body `{"error": code, "detail": text}`.
//!
//! # Bounds
//!
//! A slow or hostile client cannot hold the receiver: at most [`MAX_CONNECTIONS`]
//! connections are served at once; a TLS handshake has [`TLS_HANDSHAKE_TIMEOUT`]; a
//! request head (also the wait for the next request on a kept-alive connection) has
//! [`HEADER_READ_TIMEOUT`]; a body must keep moving ([`BODY_IDLE_TIMEOUT`]) and end
//! within [`BODY_DEADLINE`]; a connection serves at most
//! [`MAX_REQUESTS_PER_CONNECTION`] requests; at most [`MAX_DELIVERIES`] bodies are
//! read and stored at once, so memory stays near that many times `max_body_bytes`.
//!
//! # Shutdown
//!
//! [`Receiver::serve`] stops accepting when its watch turns `true` (or its sender is
//! dropped), lets every request in progress finish and be answered, closes idle
//! connections, and returns once all connections are gone.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::credentials::Credentials;
use super::feed::{self, FeedError, FeedLimits};
use super::scan::ScanSource;
use super::settings::PushSettings;
use super::stages::StageRule;
use super::store::{FeedReport, StoreError, TrackingStore};
use crate::events::{Event, Events};

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "labeld";
/// Connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 32;
/// Bodies read and stored at once (each may be up to `max_body_bytes` in memory).
pub const MAX_DELIVERIES: usize = 2;
/// Requests one connection may make before it is closed (`Connection: close`).
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 100;
/// Time for a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request head to arrive, and for the next one on an idle
/// kept-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between two pieces of a body.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest time to receive one whole body (128 MiB at about 150 kB/s).
pub const BODY_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long [`Receiver::serve`] waits, once stopped, for deliveries in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// At most this much of a rejected body is read and thrown away, so the client can
/// read the answer; a larger one is not read and the connection is closed.
pub const DRAIN_LIMIT: u64 = 64 * 1024;
/// Time allowed for that drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers), bytes.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// Largest buffer reserved up front from a `Content-Length`; the rest grows as data
/// arrives, so a false length cannot reserve memory.
const PREALLOCATE_MAX: u64 = 8 * 1024 * 1024;
/// First and longest pause after a failed `accept`; the receiver gives up when the
/// pause would pass the longest (about two minutes of failures in a row).
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(64);
/// The two bytes every gzip stream starts with (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where received feeds go.
#[derive(Clone, Debug)]
pub struct FeedSink {
    /// The spool's SQLite file, which holds the tracking store.
    pub spool_path: PathBuf,
    /// What scans mean (`[[tracking.stage]]`).
    pub rules: Vec<StageRule>,
    /// Where `tracking.<serial>` events are published.
    pub events: Events,
    /// Limits on a decoded feed; `max_bytes` is lowered to `max_feed_bytes` (at least
    /// `max_body_bytes`) if above.
    pub limits: FeedLimits,
    /// Where a body refused as an invalid feed is kept (the newest
    /// [`KEEP_REJECTED`]), so its good scans can still be loaded with `labelctl
    /// tracking import --skip-invalid`: USPS is not known to resend a feed it got a
    /// 4xx for. `None`: not kept.
    pub rejected_dir: Option<PathBuf>,
}

/// How many refused feed bodies are kept in [`FeedSink::rejected_dir`].
pub const KEEP_REJECTED: usize = 100;

/// Saves a refused body as `feed-<unix ms>-<n>.body` (mode 0600) in `dir` (made 0700
/// if missing) and deletes the oldest beyond `keep`. Returns the file.
///
/// # Errors
///
/// The directory or file could not be written.
pub fn quarantine_body(dir: &Path, body: &[u8], keep: usize) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let now = crate::service::now_ms();
    let mut n = 0u32;
    let (path, mut file) = loop {
        let path = dir.join(format!("feed-{now:013}-{n:03}.body"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => break (path, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 999 => n += 1,
            Err(e) => return Err(e),
        }
    };
    file.write_all(body)?;
    file.sync_all()?;
    let mut kept: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("feed-") && n.ends_with(".body"))
        })
        .collect();
    kept.sort();
    let excess = kept.len().saturating_sub(keep);
    for old in &kept[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

/// The receiver could not start or keep listening.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// `listen` could not be bound.
    #[error("cannot listen on '{listen}': {source} (check [tracking.push] listen, and that no other program uses the port)")]
    Listen {
        /// The configured address.
        listen: String,
        /// Why.
        source: io::Error,
    },
    /// `path` is not an absolute URL path.
    #[error("[tracking.push] path '{path}' must start with '/' (the target path given to USPS, e.g. \"/iv/feed\")")]
    Path {
        /// The configured path.
        path: String,
    },
    /// Only one of `tls_cert` and `tls_key` is set.
    #[error("[tracking.push] has {given} but not {missing}: set both for HTTPS, or neither for plain HTTP behind a TLS reverse proxy")]
    TlsHalf {
        /// The setting present.
        given: &'static str,
        /// The setting absent.
        missing: &'static str,
    },
    /// A certificate or key file cannot be read or holds nothing usable.
    #[error("TLS {what} file '{}': {reason}", path.display())]
    TlsFile {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why, with a hint.
        reason: String,
    },
    /// rustls refused the certificate and key together.
    #[error("TLS certificate '{}' with key '{}': {source} (check that the key belongs to the first certificate of the chain)", cert.display(), key.display())]
    TlsConfig {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The push credentials have an empty user name or password.
    #[error("push credentials: the {field} is empty (set it in the credentials file or the environment)")]
    EmptyCredentials {
        /// `user name` or `password`.
        field: &'static str,
    },
    /// The tracking store could not be opened.
    #[error("cannot open the tracking store in '{}': {source}", path.display())]
    Store {
        /// The spool file.
        path: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// The thread opening the tracking store failed (a panic, or the runtime stopped).
    #[error("cannot open the tracking store: its thread failed: {reason} (see the log above)")]
    StoreTask {
        /// What tokio said.
        reason: String,
    },
    /// Accepting connections kept failing.
    #[error(
        "accepting connections on {listen} keeps failing: {source} (check the open-file limit)"
    )]
    Accept {
        /// The bound address.
        listen: SocketAddr,
        /// The last failure.
        source: io::Error,
    },
}

/// A bound receiver, ready to [`serve`](Receiver::serve).
pub struct Receiver {
    /// The listening socket.
    listener: TcpListener,
    /// Its address (with the real port when port 0 was asked for).
    local_addr: SocketAddr,
    /// `Some` for HTTPS.
    tls: Option<TlsAcceptor>,
    /// What every connection shares.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("local_addr", &self.local_addr)
            .field("https", &self.tls.is_some())
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// State shared by all connections and requests.
struct Shared {
    /// The feed path (`settings.path`).
    path: String,
    /// Largest body, compressed or not.
    max_body_bytes: u64,
    /// What USPS must send.
    credentials: Credentials,
    /// What scans mean.
    rules: Vec<StageRule>,
    /// Where changes are published.
    events: Events,
    /// Limits on a decoded feed.
    limits: FeedLimits,
    /// Where refused bodies are kept.
    rejected_dir: Option<PathBuf>,
    /// The store; a std mutex because it is only locked on a blocking thread and never
    /// held across an await.
    store: Mutex<TrackingStore>,
    /// Permits to read and store a body ([`MAX_DELIVERIES`]).
    deliveries: Semaphore,
}

impl Receiver {
    /// Checks the settings, loads the TLS certificate and key when both are set, opens
    /// the tracking store and binds `settings.listen` (port 0 picks a free port).
    /// Without TLS, warns that the receiver must sit behind a TLS reverse proxy.
    pub async fn bind(
        settings: &PushSettings,
        credentials: Credentials,
        sink: FeedSink,
    ) -> Result<Receiver, ReceiverError> {
        if !settings.path.starts_with('/') {
            return Err(ReceiverError::Path {
                path: settings.path.clone(),
            });
        }
        if credentials.username.is_empty() {
            return Err(ReceiverError::EmptyCredentials { field: "user name" });
        }
        if credentials.password.expose().is_empty() {
            return Err(ReceiverError::EmptyCredentials { field: "password" });
        }
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(server_config(cert, key)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ReceiverError::TlsHalf {
                    given: "tls_cert",
                    missing: "tls_key",
                })
            }
            (None, Some(_)) => {
                return Err(ReceiverError::TlsHalf {
                    given: "tls_key",
                    missing: "tls_cert",
                })
            }
        };
        let FeedSink {
            spool_path,
            rules,
            events,
            mut limits,
            rejected_dir,
        } = sink;
        // Pushed feeds are all or nothing, whatever the caller passed.
        limits.skip_invalid_events = false;
        limits.max_bytes = limits
            .max_bytes
            .min(settings.max_feed_bytes.max(settings.max_body_bytes));
        let store = open_store(spool_path).await?;
        let listener = TcpListener::bind(settings.listen.as_str())
            .await
            .map_err(|source| ReceiverError::Listen {
                listen: settings.listen.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ReceiverError::Listen {
                listen: settings.listen.clone(),
                source,
            })?;
        if tls.is_none() {
            tracing::warn!(
                listen = %local_addr,
                "tracking push receiver speaks plain HTTP: it must sit behind a TLS reverse \
                 proxy, because USPS sends the password with every delivery \
                 (set tls_cert and tls_key in [tracking.push] to serve HTTPS itself)"
            );
        }
        Ok(Receiver {
            listener,
            local_addr,
            tls,
            shared: Arc::new(Shared {
                path: settings.path.clone(),
                max_body_bytes: settings.max_body_bytes,
                credentials,
                rules,
                events,
                limits,
                rejected_dir,
                store: Mutex::new(store),
                deliveries: Semaphore::new(MAX_DELIVERIES),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether it speaks HTTPS itself (`false`: plain HTTP behind a proxy).
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `stop` turns `true` (or its sender is dropped); then stops
    /// accepting, lets requests in progress finish and returns when every connection
    /// has closed. Fails only when accepting connections keeps failing.
    pub async fn serve(self, mut stop: watch::Receiver<bool>) -> Result<(), ReceiverError> {
        let Receiver {
            listener,
            local_addr,
            tls,
            shared,
        } = self;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        let mut backoff = ACCEPT_BACKOFF_FIRST;
        let result = loop {
            let permit = tokio::select! {
                biased;
                () = stopped(&mut stop) => break Ok(()),
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // The semaphore is never closed.
                    Err(_) => break Ok(()),
                },
            };
            let accepted = tokio::select! {
                biased;
                () = stopped(&mut stop) => break Ok(()),
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    backoff = ACCEPT_BACKOFF_FIRST;
                    connections.spawn(connection(
                        stream,
                        peer,
                        tls.clone(),
                        Arc::clone(&shared),
                        stop.clone(),
                        permit,
                    ));
                }
                Err(e) if is_transient(&e) => {
                    tracing::debug!(error = %e, "push receiver: connection lost before accept")
                }
                Err(source) => {
                    if backoff > ACCEPT_BACKOFF_MAX {
                        break Err(ReceiverError::Accept {
                            listen: local_addr,
                            source,
                        });
                    }
                    tracing::warn!(error = %source, pause = ?backoff, "push receiver: accept failed");
                    tokio::select! {
                        () = stopped(&mut stop) => break Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff *= 2;
                }
            }
        };
        drop(listener);
        // Deliveries in progress get SHUTDOWN_GRACE to finish; a slow upload after
        // that is cut (nothing of it was stored, and USPS sends it again).
        let drain = async {
            while let Some(joined) = connections.join_next().await {
                if let Err(e) = joined {
                    if e.is_panic() {
                        tracing::error!(error = %e, "push receiver: a connection task panicked");
                    }
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "push receiver: cutting deliveries still uploading at stop"
            );
            connections.abort_all();
        }
        result
    }
}

/// Resolves when `stop` is `true` or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Accept errors that concern one connection only (retry at once).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Opens the tracking store on a blocking thread.
async fn open_store(path: PathBuf) -> Result<TrackingStore, ReceiverError> {
    let opened = tokio::task::spawn_blocking(move || {
        let result = TrackingStore::open(&path);
        (path, result)
    })
    .await;
    match opened {
        Ok((_, Ok(store))) => Ok(store),
        Ok((path, Err(source))) => Err(ReceiverError::Store { path, source }),
        Err(e) => Err(ReceiverError::StoreTask {
            reason: e.to_string(),
        }),
    }
}

/// The rustls server configuration: ring, TLS 1.3 and 1.2, no client certificates,
/// HTTP/1.1 by ALPN.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ReceiverError> {
    let chain = load_chain(cert)?;
    let private_key = load_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |source| ReceiverError::TlsConfig {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads a PEM certificate chain (leaf first).
fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ReceiverError> {
    let file_error = |reason: String| ReceiverError::TlsFile {
        what: "certificate",
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| file_error(format!("{e}")))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(
            "no CERTIFICATE block found (expected a PEM certificate chain, leaf first)".into(),
        ));
    }
    Ok(chain)
}

/// Reads a PEM private key (PKCS#8, RSA or SEC1), and warns when others may read it.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ReceiverError> {
    let file_error = |reason: String| ReceiverError::TlsFile {
        what: "key",
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| file_error(format!("{e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_error(
            "no PRIVATE KEY block found (expected a PKCS#8, RSA or EC private key in PEM)".into(),
        ),
        e => file_error(format!("not valid PEM: {e}")),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    key = %path.display(),
                    "the TLS key file can be read by other users (chmod 600 it)"
                );
            }
        }
    }
    Ok(key)
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until the client leaves,
/// a timeout fires, or the receiver stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return serve_http(stream, peer, shared, stop).await;
    };
    let handshake = tokio::select! {
        () = stopped(&mut stop) => return,
        handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => handshake,
    };
    match handshake {
        Ok(Ok(stream)) => serve_http(stream, peer, shared, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "push receiver: TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "push receiver: TLS handshake timed out"),
    }
}

/// HTTP/1.1 on one connection, with the header timeout and the request limit; on
/// stop, the request in progress is finished and the connection closed.
async fn serve_http<S>(
    io: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicU32::new(0));
    let service = hyper::service::service_fn(move |request| {
        let shared = Arc::clone(&shared);
        let number = served.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        async move {
            let mut response = respond(request, &shared, peer).await;
            if number >= MAX_REQUESTS_PER_CONNECTION {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "push receiver: connection ended with an error");
    }
}

/// The body type of every answer.
type Answer = Response<Full<Bytes>>;

/// Answers one request (see the module's contract).
async fn respond(request: Request<Incoming>, shared: &Arc<Shared>, peer: SocketAddr) -> Answer {
    match route(request.method(), request.uri().path(), &shared.path) {
        Route::Deliver => {}
        Route::NotFound => {
            return error_answer(
                StatusCode::NOT_FOUND,
                "not_found",
                "nothing here: USPS data feeds are posted to the configured path",
            )
        }
        Route::WrongMethod => {
            let mut answer = error_answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "data feeds are delivered with POST",
            );
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return answer;
        }
    }
    let (parts, mut body) = request.into_parts();
    let declared = body.size_hint().exact();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match check_auth(authorization, &shared.credentials) {
        AuthCheck::Granted => {}
        refused => {
            match &refused {
                AuthCheck::Denied { username } => tracing::warn!(
                    %peer, username = %username,
                    "push receiver: wrong user name or password (check the USPS subscription's server entry and [tracking.push] credentials)"
                ),
                _ => tracing::warn!(
                    %peer, reason = refused.reason(),
                    "push receiver: delivery without usable HTTP Basic credentials"
                ),
            }
            let expects_continue = parts.headers.contains_key(header::EXPECT);
            if !expects_continue && declared.is_none_or(|n| n <= DRAIN_LIMIT) {
                drain(&mut body, DRAIN_LIMIT).await;
            }
            let mut answer = error_answer(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "HTTP Basic credentials are missing or wrong",
            );
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"labeld\""),
            );
            return answer;
        }
    }
    if let Length::TooLarge(length) = check_length(declared, shared.max_body_bytes) {
        tracing::warn!(%peer, length, max = shared.max_body_bytes, "push receiver: body too large (Content-Length)");
        return too_large(shared.max_body_bytes);
    }
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::as_bytes);
    let Some(encoding) = content_encoding(encoding) else {
        return error_answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            "Content-Encoding must be gzip or identity (zip bodies are sent without one)",
        );
    };
    // The semaphore is never closed.
    let Ok(_delivery) = shared.deliveries.acquire().await else {
        return error_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the receiver is stopping; send again later",
        );
    };
    let data = match read_body(&mut body, shared.max_body_bytes, declared).await {
        Ok(data) => data,
        Err(BodyError::TooLarge) => {
            tracing::warn!(%peer, max = shared.max_body_bytes, "push receiver: body too large");
            drain(&mut body, DRAIN_LIMIT).await;
            return too_large(shared.max_body_bytes);
        }
        Err(BodyError::Timeout) => {
            tracing::warn!(%peer, "push receiver: body too slow, gave up");
            let mut answer = error_answer(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the body arrived too slowly",
            );
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return answer;
        }
        Err(BodyError::Broken(e)) => {
            tracing::warn!(%peer, error = %e, "push receiver: body cut off");
            return error_answer(
                StatusCode::BAD_REQUEST,
                "broken_body",
                &format!("the body could not be read: {e}"),
            );
        }
    };
    if encoding == Encoding::Gzip && !data.starts_with(&GZIP_MAGIC) {
        return error_answer(
            StatusCode::BAD_REQUEST,
            "invalid_feed",
            "Content-Encoding is gzip but the body is not gzip data",
        );
    }
    let size = data.len();
    match deliver(Arc::clone(shared), data).await {
        Delivery::Stored { report, group } => {
            tracing::info!(
                %peer,
                group = group.as_deref().unwrap_or("-"),
                bytes = size,
                messages = report.messages,
                already_received = report.already_received,
                inserted = report.inserted,
                duplicates = report.duplicates,
                unmatched = report.unmatched,
                skipped = report.skipped,
                changes = report.changes.len(),
                "push receiver: data feed delivered"
            );
            for change in &report.changes {
                shared.events.publish(Event::from(change));
            }
            json_answer(StatusCode::OK, &success_body(&report))
        }
        Delivery::Invalid(e, kept) => {
            match kept {
                Some(path) => tracing::warn!(
                    %peer, bytes = size, error = %e, kept = %path.display(),
                    "push receiver: data feed rejected; its good scans can be loaded with \
                     `labelctl tracking import --skip-invalid FILE`"
                ),
                None => {
                    tracing::warn!(%peer, bytes = size, error = %e, "push receiver: data feed rejected")
                }
            }
            // A body that decompresses past the limit is too large, not malformed.
            let (status, code) = match e {
                FeedError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
                _ => (StatusCode::BAD_REQUEST, "invalid_feed"),
            };
            error_answer(status, code, &e.to_string())
        }
        Delivery::StoreFailed(e) => {
            tracing::error!(%peer, error = %e, "push receiver: could not store a data feed; USPS should send it again");
            error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                "the scans could not be stored; send the feed again later",
            )
        }
        Delivery::Failed(reason) => {
            tracing::error!(%peer, %reason, "push receiver: storing a data feed failed; USPS should send it again");
            error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                "the scans could not be stored; send the feed again later",
            )
        }
    }
}

/// What became of a body.
enum Delivery {
    /// Parsed and stored.
    Stored {
        /// What the store did.
        report: FeedReport,
        /// The first message's group id, for the log.
        group: Option<String>,
    },
    /// Not a feed labeld can use; nothing stored (the body kept here, if it was).
    Invalid(FeedError, Option<PathBuf>),
    /// The store failed; nothing stored.
    StoreFailed(StoreError),
    /// The blocking thread failed (a panic, or the runtime is stopping).
    Failed(String),
}

/// Parses and stores a body on a blocking thread.
async fn deliver(shared: Arc<Shared>, body: Vec<u8>) -> Delivery {
    let work = tokio::task::spawn_blocking(move || {
        let messages = match feed::parse_feed_body(&body, ScanSource::Push, &shared.limits) {
            Ok(messages) => messages,
            Err(e) => {
                let kept = match (&e, &shared.rejected_dir) {
                    (FeedError::TooLarge { .. }, _) | (_, None) => None,
                    (_, Some(dir)) => match quarantine_body(dir, &body, KEEP_REJECTED) {
                        Ok(path) => Some(path),
                        Err(io) => {
                            tracing::error!(dir = %dir.display(), error = %io, "push receiver: cannot keep a refused feed");
                            None
                        }
                    },
                };
                return Delivery::Invalid(e, kept);
            }
        };
        drop(body);
        let group = messages.iter().find_map(|m| m.group_id.clone());
        // A panic while the lock was held left no partial write behind (the store
        // writes in transactions), so a poisoned lock is still usable.
        let mut store = shared.store.lock().unwrap_or_else(PoisonError::into_inner);
        match store.add_feed(&messages, &shared.rules, crate::service::now_ms()) {
            Ok(report) => Delivery::Stored { report, group },
            Err(e) => Delivery::StoreFailed(e),
        }
    });
    work.await
        .unwrap_or_else(|e| Delivery::Failed(e.to_string()))
}

/// The 200 body.
fn success_body(report: &FeedReport) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "messages": report.messages,
        "already_received": report.already_received,
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "unmatched": report.unmatched,
        "skipped": report.skipped,
    })
}

/// 413, closing the connection (the rest of the body is not read).
fn too_large(max: u64) -> Answer {
    let mut answer = error_answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        &format!("the body is larger than {max} bytes ([tracking.push] max_body_bytes)"),
    );
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

/// `{"error": code, "detail": detail}` with `status`.
fn error_answer(status: StatusCode, code: &str, detail: &str) -> Answer {
    json_answer(
        status,
        &serde_json::json!({ "error": code, "detail": detail }),
    )
}

/// A JSON answer.
fn json_answer(status: StatusCode, value: &serde_json::Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(value.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

/// Why a body could not be read whole.
enum BodyError {
    /// It passed the limit.
    TooLarge,
    /// It stopped moving, or took too long.
    Timeout,
    /// The connection failed or the framing was bad.
    Broken(hyper::Error),
}

/// Reads a body up to `limit` bytes, each piece within [`BODY_IDLE_TIMEOUT`] and the
/// whole within [`BODY_DEADLINE`].
async fn read_body(
    body: &mut Incoming,
    limit: u64,
    declared: Option<u64>,
) -> Result<Vec<u8>, BodyError> {
    let deadline = Instant::now() + BODY_DEADLINE;
    let reserve = declared.unwrap_or(0).min(limit).min(PREALLOCATE_MAX);
    let mut data = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    loop {
        let wait_until = deadline.min(Instant::now() + BODY_IDLE_TIMEOUT);
        let frame = match tokio::time::timeout_at(wait_until, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => return Ok(data),
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Some(chunk) = frame.data_ref() {
            if !fits(data.len(), chunk.len(), limit) {
                return Err(BodyError::TooLarge);
            }
            data.extend_from_slice(chunk);
        }
    }
}

/// Reads and discards up to `budget` bytes of a body within [`DRAIN_TIMEOUT`];
/// `true` when the body ended.
async fn drain(body: &mut Incoming, budget: u64) -> bool {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut left = budget;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    match left.checked_sub(n) {
                        Some(rest) => left = rest,
                        None => return false,
                    }
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// Whether `more` bytes fit after `have` under `limit`.
fn fits(have: usize, more: usize, limit: u64) -> bool {
    let total = u64::try_from(have)
        .unwrap_or(u64::MAX)
        .saturating_add(u64::try_from(more).unwrap_or(u64::MAX));
    total <= limit
}

/// What to do with a request, from its method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `POST` on the feed path.
    Deliver,
    /// Another method on the feed path (405).
    WrongMethod,
    /// Any other path (404).
    NotFound,
}

/// Routes on the exact path (the query string is not part of `path`).
fn route(method: &Method, path: &str, feed_path: &str) -> Route {
    if path != feed_path {
        Route::NotFound
    } else if method == Method::POST {
        Route::Deliver
    } else {
        Route::WrongMethod
    }
}

/// The outcome of checking `Authorization`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AuthCheck {
    /// The configured user name and password.
    Granted,
    /// No `Authorization` header.
    Missing,
    /// Not `Basic` with base64 of `user:password`.
    Malformed,
    /// Well formed but wrong; the user name as sent (at most 64 characters, for the
    /// log), never the password.
    Denied {
        /// The submitted user name.
        username: String,
    },
}

impl AuthCheck {
    /// Why it was refused, for the log.
    fn reason(&self) -> &'static str {
        match self {
            AuthCheck::Granted => "granted",
            AuthCheck::Missing => "no Authorization header",
            AuthCheck::Malformed => "Authorization is not HTTP Basic",
            AuthCheck::Denied { .. } => "wrong user name or password",
        }
    }
}

/// Checks an `Authorization` header value against the credentials; the user name and
/// the password are both compared, each in constant time.
fn check_auth(header: Option<&[u8]>, expected: &Credentials) -> AuthCheck {
    let Some(header) = header else {
        return AuthCheck::Missing;
    };
    let Some((username, password)) = parse_basic(header) else {
        return AuthCheck::Malformed;
    };
    let user_ok = constant_time_eq(&username, expected.username.as_bytes());
    let password_ok = constant_time_eq(&password, expected.password.expose().as_bytes());
    if user_ok & password_ok {
        AuthCheck::Granted
    } else {
        AuthCheck::Denied {
            username: String::from_utf8_lossy(&username)
                .chars()
                .take(64)
                .collect(),
        }
    }
}

/// `Basic <base64(user:password)>` (RFC 7617) → the user name and password bytes.
/// The scheme is case-insensitive; base64 padding may be left out.
fn parse_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let header = header.trim_ascii();
    let space = header.iter().position(|&b| b == b' ')?;
    let (scheme, token) = header.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = BASE64.decode(token.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Compares two byte strings in time that depends only on their lengths, not on
/// where they differ.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u64::from(given.len() != expected.len());
    for i in 0..given.len().max(expected.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0);
        diff |= u64::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

/// A `Content-Length` against the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    /// No length given (chunked): count while reading.
    Unknown,
    /// Given, and within the limit.
    Within(u64),
    /// Given, and over the limit.
    TooLarge(u64),
}

/// Checks a declared body length against `max`.
fn check_length(declared: Option<u64>, max: u64) -> Length {
    match declared {
        None => Length::Unknown,
        Some(n) if n > max => Length::TooLarge(n),
        Some(n) => Length::Within(n),
    }
}

/// A body's `Content-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// None, or `identity`.
    Identity,
    /// `gzip` or `x-gzip` (the parser decompresses it, bounded).
    Gzip,
}

/// Reads `Content-Encoding`; `None` for an encoding labeld does not take.
fn content_encoding(value: Option<&[u8]>) -> Option<Encoding> {
    let Some(value) = value else {
        return Some(Encoding::Identity);
    };
    let value = value.trim_ascii();
    if value.is_empty() || value.eq_ignore_ascii_case(b"identity") {
        Some(Encoding::Identity)
    } else if value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip") {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::credentials::Secret;
    use proptest::prelude::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            username: user.to_owned(),
            password: Secret::new(password),
        }
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}").into_bytes()
    }

    #[test]
    fn basic_header_parses() {
        // 0: RFC 7617 §2 example.
        assert_eq!(
            parse_basic(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Some((b"Aladdin".to_vec(), b"open sesame".to_vec()))
        );
        // 1: scheme in any case, extra spaces, no padding.
        assert_eq!(
            parse_basic(b"  bAsIc   QWxhZGRpbjpvcGVuIHNlc2FtZQ  "),
            Some((b"Aladdin".to_vec(), b"open sesame".to_vec()))
        );
        // 2: the password may contain colons; the user name ends at the first.
        assert_eq!(
            parse_basic(&basic("usps", "a:b:c")),
            Some((b"usps".to_vec(), b"a:b:c".to_vec()))
        );
        // 3: empty password.
        assert_eq!(
            parse_basic(&basic("usps", "")),
            Some((b"usps".to_vec(), Vec::new()))
        );
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        for (i, header) in [
            &b"Bearer abc"[..],
            b"Basic",
            b"Basic !!!!",
            b"Basic dXNwcw==", // "usps": no colon
            b"BasicdXNwczpw",
            b"",
            b"Digest username=\"usps\"",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(parse_basic(header), None, "case {i}");
        }
    }

    #[test]
    fn auth_outcomes() {
        let expected = creds("usps", "s3cret");
        assert_eq!(check_auth(None, &expected), AuthCheck::Missing);
        assert_eq!(
            check_auth(Some(b"Bearer x"), &expected),
            AuthCheck::Malformed
        );
        assert_eq!(
            check_auth(Some(&basic("usps", "s3cret")), &expected),
            AuthCheck::Granted
        );
        assert_eq!(
            check_auth(Some(&basic("usps", "s3cre")), &expected),
            AuthCheck::Denied {
                username: "usps".into()
            }
        );
        assert_eq!(
            check_auth(Some(&basic("usps", "s3cret!")), &expected),
            AuthCheck::Denied {
                username: "usps".into()
            }
        );
        assert_eq!(
            check_auth(Some(&basic("other", "s3cret")), &expected),
            AuthCheck::Denied {
                username: "other".into()
            }
        );
        let long = "u".repeat(500);
        match check_auth(Some(&basic(&long, "x")), &expected) {
            AuthCheck::Denied { username } => assert_eq!(username.len(), 64),
            other => panic!("expected Denied, got {other:?}"),
        }
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        // A shorter input padded with zero bytes must not match.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
        assert!(!constant_time_eq(b"", b"\0"));
    }

    #[test]
    fn routing() {
        let p = "/iv/feed";
        assert_eq!(route(&Method::POST, "/iv/feed", p), Route::Deliver);
        assert_eq!(route(&Method::GET, "/iv/feed", p), Route::WrongMethod);
        assert_eq!(route(&Method::PUT, "/iv/feed", p), Route::WrongMethod);
        assert_eq!(route(&Method::HEAD, "/iv/feed", p), Route::WrongMethod);
        assert_eq!(route(&Method::POST, "/iv/feed/", p), Route::NotFound);
        assert_eq!(route(&Method::POST, "/", p), Route::NotFound);
        assert_eq!(route(&Method::GET, "/IV/FEED", p), Route::NotFound);
    }

    #[test]
    fn length_checks() {
        assert_eq!(check_length(None, 10), Length::Unknown);
        assert_eq!(check_length(Some(0), 10), Length::Within(0));
        assert_eq!(check_length(Some(10), 10), Length::Within(10));
        assert_eq!(check_length(Some(11), 10), Length::TooLarge(11));
        assert_eq!(check_length(Some(u64::MAX), 10), Length::TooLarge(u64::MAX));
        assert!(fits(0, 10, 10));
        assert!(!fits(1, 10, 10));
        assert!(!fits(usize::MAX, usize::MAX, u64::MAX - 1));
    }

    #[test]
    fn encodings() {
        assert_eq!(content_encoding(None), Some(Encoding::Identity));
        assert_eq!(
            content_encoding(Some(b"identity")),
            Some(Encoding::Identity)
        );
        assert_eq!(content_encoding(Some(b"")), Some(Encoding::Identity));
        assert_eq!(content_encoding(Some(b"gzip")), Some(Encoding::Gzip));
        assert_eq!(content_encoding(Some(b" GZIP ")), Some(Encoding::Gzip));
        assert_eq!(content_encoding(Some(b"x-gzip")), Some(Encoding::Gzip));
        assert_eq!(content_encoding(Some(b"br")), None);
        assert_eq!(content_encoding(Some(b"deflate")), None);
        assert_eq!(content_encoding(Some(b"gzip, br")), None);
    }

    proptest! {
        #[test]
        fn basic_round_trips(user in "[^:]{0,40}", password in ".{0,80}") {
            let header = basic(&user, &password);
            prop_assert_eq!(
                parse_basic(&header),
                Some((user.clone().into_bytes(), password.clone().into_bytes()))
            );
            prop_assert_eq!(check_auth(Some(&header), &creds(&user, &password)), AuthCheck::Granted);
        }

        #[test]
        fn constant_time_eq_is_equality(a in proptest::collection::vec(any::<u8>(), 0..40),
                                        b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a));
        }

        #[test]
        fn parse_basic_never_panics(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_basic(&header);
        }

        #[test]
        fn length_check_agrees_with_limit(n in any::<u64>(), max in any::<u64>()) {
            match check_length(Some(n), max) {
                Length::Within(m) => prop_assert!(m == n && n <= max),
                Length::TooLarge(m) => prop_assert!(m == n && n > max),
                Length::Unknown => prop_assert!(false),
            }
        }
    }
}
