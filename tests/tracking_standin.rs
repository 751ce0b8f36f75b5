//! A local stand-in for USPS IV-MTR, for tests: a hyper 1 server on 127.0.0.1 with its
//! own tokio runtime on a background thread, answering the documented endpoints (facts
//! file `../shared/reference/iv-tracking.md` §2.2–2.5) under configurable path
//! prefixes, so a client knows it only by its base URLs:
//!
//! - `POST {oauth}/authenticate` and `POST {oauth}/token`: real token behaviour (random
//!   tokens, an `expires_in` the test sets, expired or unknown bearers get 401);
//! - `GET {api}/api/mt/get/piece/imb/{imb}` and
//!   `GET {api}/api/mt/get/piece/mid/{mid}/serial/{serial}[/stid/{stid}]`.
//!
//! Tests add users and pieces, script faults (consumed in order before normal
//! answers), and read back every request it received ([`StandIn::requests`]). Scan
//! values are built in the pull API's snake_case shape (§2.4) by [`scan_json`] and the
//! helpers after it. Other test modules use it as `crate::tracking_standin::StandIn`.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use labeld::tracking::credentials::{Credentials, Secret};
use labeld::tracking::settings::{TrackingSettings, IV_CLIENT_ID, IV_SCOPE};
use serde_json::{json, Map, Value};

/// Where the stand-in mounts its two halves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandInOptions {
    /// OAuth prefix (USPS: `/oauth` on services.usps.com).
    pub oauth_prefix: String,
    /// API prefix (USPS: `/ivws_api/informedvisapi` on iv.usps.com).
    pub api_prefix: String,
}

impl Default for StandInOptions {
    fn default() -> Self {
        StandInOptions {
            oauth_prefix: "/oauth".to_owned(),
            api_prefix: "/ivws_api/informedvisapi".to_owned(),
        }
    }
}

/// How a piece IV-MTR knows nothing about is answered (clients have seen both, §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDataStyle {
    /// 200 with `{"message": "Barcode not found"}`.
    Message200,
    /// 404 with `{"message": "Piece not found"}`.
    NotFound404,
}

/// A scripted fault: the next request to the scripted half gets this instead of its
/// normal answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 401 with an OAuth-style error body, whatever the token.
    Unauthorized,
    /// 429 with `Retry-After: {retry_after_secs}`.
    TooManyRequests {
        /// The `Retry-After` value, seconds.
        retry_after_secs: u64,
    },
    /// 503 Service Unavailable.
    Unavailable,
    /// 500 Internal Server Error.
    ServerError,
    /// 200 with an HTML maintenance page.
    MaintenancePage,
    /// 200 with an empty body.
    EmptyBody,
}

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as text.
    pub body: String,
    /// When it arrived (the stand-in's clock).
    pub at: Instant,
}

/// The non-scan facts of a piece (§2.4); `None` fields are left out of the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PieceInfo {
    /// `expected_delivery_date`.
    pub expected_delivery_date: Option<String>,
    /// `mail_class`.
    pub mail_class: Option<String>,
    /// `mail_shape`.
    pub mail_shape: Option<String>,
    /// `start_the_clock_date`.
    pub start_the_clock_date: Option<String>,
}

/// A running stand-in; dropping it stops the server.
pub struct StandIn {
    /// Where it listens.
    addr: SocketAddr,
    /// Its path prefixes.
    options: StandInOptions,
    /// Everything the handlers and the test share.
    state: Arc<Mutex<State>>,
    /// Ends the accept loop.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server thread.
    thread: Option<JoinHandle<()>>,
}

/// A token the stand-in issued.
struct Issued {
    /// Until when it is good.
    expires: Instant,
}

/// A piece the stand-in knows.
struct Piece {
    /// The IMb it answers with (as registered: tracking code, or full IMb).
    imb: String,
    /// Dates, class, shape.
    info: PieceInfo,
    /// Scans visible to lookups.
    scans: Vec<Value>,
    /// Batches revealed one per lookup.
    pending: VecDeque<Vec<Value>>,
}

/// The stand-in's state.
struct State {
    /// Path prefixes.
    options: StandInOptions,
    /// User name → password.
    users: HashMap<String, String>,
    /// Access tokens issued.
    access: HashMap<String, Issued>,
    /// Refresh tokens issued.
    refresh: HashMap<String, Issued>,
    /// `expires_in` given with each token, seconds.
    expires_in: u64,
    /// Whether `expires_in` is in the token answer at all.
    send_expires_in: bool,
    /// Every token starts with this.
    token_prefix: String,
    /// Tokens issued so far (also feeds the token generator).
    issued: Vec<String>,
    /// Pieces by 20-digit tracking code.
    pieces: HashMap<String, Piece>,
    /// How unknown pieces are answered.
    no_data: NoDataStyle,
    /// Faults for the piece endpoints.
    api_faults: VecDeque<Fault>,
    /// Faults for the OAuth endpoints.
    oauth_faults: VecDeque<Fault>,
    /// Every request, in arrival order.
    requests: Vec<Recorded>,
    /// Token randomness.
    random: RandomState,
}

/// An answer before it becomes a hyper response.
struct Answer {
    status: u16,
    content_type: Option<&'static str>,
    retry_after: Option<u64>,
    body: String,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: Some("application/json"),
            retry_after: None,
            body: body.to_string(),
        }
    }

    fn oauth_error(status: u16, error: &str, description: &str) -> Answer {
        Answer::json(
            status,
            json!({"error": error, "error_description": description}),
        )
    }

    fn fault(fault: &Fault) -> Answer {
        match fault {
            Fault::Unauthorized => {
                Answer::oauth_error(401, "invalid_token", "Access token expired")
            }
            Fault::TooManyRequests { retry_after_secs } => Answer {
                retry_after: Some(*retry_after_secs),
                ..Answer::json(429, json!({"message": "Too many requests"}))
            },
            Fault::Unavailable => Answer {
                status: 503,
                content_type: Some("text/plain"),
                retry_after: None,
                body: "Service Unavailable".to_owned(),
            },
            Fault::ServerError => Answer::json(500, json!({"message": "Internal error"})),
            Fault::MaintenancePage => Answer {
                status: 200,
                content_type: Some("text/html; charset=UTF-8"),
                retry_after: None,
                body: "<!DOCTYPE html>\n<html><head><title>USPS Informed Visibility</title></head>\
                       <body><h1>Scheduled maintenance</h1><p>Informed Visibility is \
                       unavailable. Please try again later.</p></body></html>\n"
                    .to_owned(),
            },
            Fault::EmptyBody => Answer {
                status: 200,
                content_type: None,
                retry_after: None,
                body: String::new(),
            },
        }
    }
}

impl State {
    /// A new random token.
    fn new_token(&mut self) -> String {
        let mut hasher = self.random.build_hasher();
        hasher.write_usize(self.issued.len());
        let high = hasher.finish();
        hasher.write_u64(high);
        let token = format!("{}{high:016x}{:016x}", self.token_prefix, hasher.finish());
        self.issued.push(token.clone());
        token
    }

    /// Issues an access + refresh token pair.
    fn issue(&mut self) -> Answer {
        let now = Instant::now();
        let access = self.new_token();
        let refresh = self.new_token();
        let lifetime = Duration::from_secs(self.expires_in);
        self.access.insert(
            access.clone(),
            Issued {
                expires: now + lifetime,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            Issued {
                expires: now + (lifetime * 8).max(Duration::from_secs(60)),
            },
        );
        let mut body = json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
        });
        if self.send_expires_in {
            body["expires_in"] = json!(self.expires_in);
        }
        Answer::json(200, body)
    }

    /// Routes one request.
    fn answer(
        &mut self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> Answer {
        if let Some(rest) = path.strip_prefix(self.options.oauth_prefix.as_str()) {
            let rest = rest.to_owned();
            if method != "POST" {
                return Answer::json(405, json!({"message": "method not allowed"}));
            }
            if let Some(fault) = self.oauth_faults.pop_front() {
                return Answer::fault(&fault);
            }
            return match rest.as_str() {
                "/authenticate" => self.authenticate(body),
                "/token" => self.refresh_token(body),
                _ => Answer::json(404, json!({"message": "no such endpoint"})),
            };
        }
        let Some(rest) = path.strip_prefix(self.options.api_prefix.as_str()) else {
            return Answer::json(404, json!({"message": "no such endpoint"}));
        };
        let Some(rest) = rest.strip_prefix("/api/mt/get/piece/") else {
            return Answer::json(404, json!({"message": "no such endpoint"}));
        };
        let segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
        if method != "GET" {
            return Answer::json(405, json!({"message": "method not allowed"}));
        }
        if let Some(fault) = self.api_faults.pop_front() {
            return Answer::fault(&fault);
        }
        if let Some(refused) = self.check_bearer(authorization) {
            return refused;
        }
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            ["imb", imb] => self.piece(imb),
            ["mid", mid, "serial", serial] => self.barcodes(mid, serial, None),
            ["mid", mid, "serial", serial, "stid", stid] => self.barcodes(mid, serial, Some(stid)),
            _ => Answer::json(404, json!({"message": "no such endpoint"})),
        }
    }

    /// `POST /authenticate`.
    fn authenticate(&mut self, body: &str) -> Answer {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
            return Answer::oauth_error(400, "invalid_request", "body is not a JSON object");
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or("");
        for (key, expected) in [
            ("grant_type", "authorization"),
            ("response_type", "token"),
            ("scope", IV_SCOPE),
            ("client_id", IV_CLIENT_ID),
        ] {
            if text(key) != expected {
                return Answer::oauth_error(400, "invalid_request", &format!("bad {key}"));
            }
        }
        match self.users.get(text("username")) {
            Some(password) if password == text("password") => self.issue(),
            _ => Answer::oauth_error(401, "invalid_grant", "Bad credentials"),
        }
    }

    /// `POST /token`: a valid refresh token is exchanged for a new pair.
    fn refresh_token(&mut self, body: &str) -> Answer {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
            return Answer::oauth_error(400, "invalid_request", "body is not a JSON object");
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or("");
        for (key, expected) in [
            ("grant_type", "authorization"),
            ("response_type", "token"),
            ("scope", IV_SCOPE),
        ] {
            if text(key) != expected {
                return Answer::oauth_error(400, "invalid_request", &format!("bad {key}"));
            }
        }
        if fields.contains_key("password") || fields.contains_key("client_id") {
            return Answer::oauth_error(400, "invalid_request", "unexpected field");
        }
        let token = text("refresh_token").to_owned();
        match self.refresh.remove(&token) {
            Some(issued) if issued.expires > Instant::now() => self.issue(),
            _ => Answer::oauth_error(400, "invalid_grant", "Invalid refresh token"),
        }
    }

    /// `None` when the bearer token is good, else the 401.
    fn check_bearer(&self, authorization: Option<&str>) -> Option<Answer> {
        let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
        match token.and_then(|token| self.access.get(token)) {
            Some(issued) if issued.expires > Instant::now() => None,
            Some(_) => Some(Answer::oauth_error(
                401,
                "invalid_token",
                "Access token expired",
            )),
            None => Some(Answer::oauth_error(
                401,
                "invalid_token",
                "Invalid access token",
            )),
        }
    }

    /// The answer for an unknown piece.
    fn no_data(&self) -> Answer {
        match self.no_data {
            NoDataStyle::Message200 => Answer::json(200, json!({"message": "Barcode not found"})),
            NoDataStyle::NotFound404 => Answer::json(404, json!({"message": "Piece not found"})),
        }
    }

    /// `GET …/piece/imb/{imb}`.
    fn piece(&mut self, imb: &str) -> Answer {
        let Some(piece) = self.pieces.get_mut(tracking_of(imb)) else {
            return self.no_data();
        };
        if let Some(batch) = piece.pending.pop_front() {
            piece.scans.extend(batch);
        }
        let mut data = Map::new();
        data.insert("imb".to_owned(), json!(piece.imb));
        for (key, value) in [
            ("expected_delivery_date", &piece.info.expected_delivery_date),
            ("mail_class", &piece.info.mail_class),
            ("mail_shape", &piece.info.mail_shape),
            ("start_the_clock_date", &piece.info.start_the_clock_date),
        ] {
            if let Some(value) = value {
                data.insert(key.to_owned(), json!(value));
            }
        }
        data.insert("scans".to_owned(), Value::Array(piece.scans.clone()));
        Answer::json(200, json!({ "data": data }))
    }

    /// `GET …/piece/mid/{mid}/serial/{serial}[/stid/{stid}]`.
    fn barcodes(&self, mid: &str, serial: &str, stid: Option<&str>) -> Answer {
        if !matches!(mid.len(), 6 | 9) || mid.len() + serial.len() != 15 {
            return Answer::json(400, json!({"message": "Invalid MID or serial number"}));
        }
        let mut barcodes: Vec<&str> = self
            .pieces
            .iter()
            .filter(|(tracking, _)| {
                tracking.len() == 20
                    && tracking[5..5 + mid.len()] == *mid
                    && tracking[5 + mid.len()..] == *serial
                    && stid.is_none_or(|stid| tracking[2..5] == *stid)
            })
            .map(|(_, piece)| piece.imb.as_str())
            .collect();
        if barcodes.is_empty() {
            return self.no_data();
        }
        barcodes.sort_unstable();
        Answer::json(200, json!({"data": {"barcodes": barcodes}}))
    }

    /// The piece for `imb_or_tracking`, created if new; a longer IMb replaces a bare
    /// tracking code as the IMb answered with.
    fn piece_mut(&mut self, imb_or_tracking: &str) -> &mut Piece {
        let piece = self
            .pieces
            .entry(tracking_of(imb_or_tracking).to_owned())
            .or_insert_with(|| Piece {
                imb: imb_or_tracking.to_owned(),
                info: PieceInfo::default(),
                scans: Vec::new(),
                pending: VecDeque::new(),
            });
        if imb_or_tracking.len() > piece.imb.len() {
            piece.imb = imb_or_tracking.to_owned();
        }
        piece
    }
}

/// The first 20 characters (the tracking code) of an IMb.
fn tracking_of(imb: &str) -> &str {
    imb.get(..20).unwrap_or(imb)
}

/// One request, through the shared state.
async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let answer = {
        let mut state = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            authorization: authorization.clone(),
            body: body.clone(),
            at,
        });
        state.answer(&method, &path, authorization.as_deref(), &body)
    };
    let mut response = Response::builder().status(answer.status);
    if let Some(content_type) = answer.content_type {
        response = response.header(hyper::header::CONTENT_TYPE, content_type);
    }
    if let Some(secs) = answer.retry_after {
        response = response.header(hyper::header::RETRY_AFTER, secs.to_string());
    }
    Ok(response
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

impl StandIn {
    /// Starts a stand-in with USPS's path prefixes.
    pub fn start() -> StandIn {
        StandIn::start_with(StandInOptions::default())
    }

    /// Starts a stand-in with the given path prefixes.
    pub fn start_with(options: StandInOptions) -> StandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            options: options.clone(),
            users: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            expires_in: 900,
            send_expires_in: true,
            token_prefix: String::new(),
            issued: Vec::new(),
            pieces: HashMap::new(),
            no_data: NoDataStyle::Message200,
            api_faults: VecDeque::new(),
            oauth_faults: VecDeque::new(),
            requests: Vec::new(),
            random: RandomState::new(),
        }));
        let (shutdown, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("iv-standin".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("stand-in runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let state = Arc::clone(&shared);
                                tokio::spawn(async move {
                                    let service = hyper::service::service_fn(move |request| {
                                        handle(Arc::clone(&state), request)
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })
            .expect("stand-in thread");
        StandIn {
            addr,
            options,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth base URL (what `tracking.oauth_url` would be).
    pub fn oauth_url(&self) -> String {
        format!("{}{}", self.base_url(), self.options.oauth_prefix)
    }

    /// The API base URL (what `tracking.api_url` would be).
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url(), self.options.api_prefix)
    }

    /// `[tracking]` settings pointing at the stand-in: enabled, 3 tries, back-off at
    /// most 1 s, 10 s request timeout.
    pub fn settings(&self) -> TrackingSettings {
        TrackingSettings {
            enabled: true,
            oauth_url: self.oauth_url(),
            api_url: self.api_url(),
            request_timeout_secs: 10,
            tries: 3,
            max_backoff_secs: 1,
            ..TrackingSettings::default()
        }
    }

    /// Adds a Business Customer Gateway user.
    pub fn add_user(&self, name: &str, password: &str) {
        self.state()
            .users
            .insert(name.to_owned(), password.to_owned());
    }

    /// `expires_in` of tokens issued from now on, seconds (default 900).
    pub fn set_expires_in(&self, secs: u64) {
        self.state().expires_in = secs;
    }

    /// Whether token answers carry `expires_in` (default yes); tokens still expire.
    pub fn set_send_expires_in(&self, send: bool) {
        self.state().send_expires_in = send;
    }

    /// Every token issued from now on starts with `prefix` (to look for it in logs).
    pub fn set_token_prefix(&self, prefix: &str) {
        self.state().token_prefix = prefix.to_owned();
    }

    /// Expires every access and refresh token issued so far.
    pub fn expire_all_tokens(&self) {
        let now = Instant::now();
        let mut state = self.state();
        for issued in state.access.values_mut() {
            issued.expires = now;
        }
        for issued in state.refresh.values_mut() {
            issued.expires = now;
        }
    }

    /// Every token (access and refresh) issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().issued.clone()
    }

    /// How unknown pieces are answered.
    pub fn set_no_data_style(&self, style: NoDataStyle) {
        self.state().no_data = style;
    }

    /// Makes a piece known (a lookup finds it, maybe with no scans yet).
    pub fn add_piece(&self, imb_or_tracking: &str) {
        self.state().piece_mut(imb_or_tracking);
    }

    /// Adds scans (pull-API snake_case objects, no `imb`) to a piece; the next lookup
    /// sees them.
    pub fn add_scans(&self, imb_or_tracking: &str, scans: Vec<Value>) {
        self.state().piece_mut(imb_or_tracking).scans.extend(scans);
    }

    /// Queues batches of scans: each lookup of the piece reveals the next batch.
    pub fn queue_scans(&self, imb_or_tracking: &str, batches: Vec<Vec<Value>>) {
        self.state()
            .piece_mut(imb_or_tracking)
            .pending
            .extend(batches);
    }

    /// Sets a piece's expected delivery date, class, shape, start-the-clock date.
    pub fn set_piece_info(&self, imb_or_tracking: &str, info: PieceInfo) {
        self.state().piece_mut(imb_or_tracking).info = info;
    }

    /// The next piece-endpoint request gets `fault` (faults are used in order).
    pub fn push_fault(&self, fault: Fault) {
        self.state().api_faults.push_back(fault);
    }

    /// The next OAuth-endpoint request gets `fault`.
    pub fn push_oauth_fault(&self, fault: Fault) {
        self.state().oauth_faults.push_back(fault);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// How many requests of `method` had a path ending in `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Credentials for a stand-in user.
pub fn credentials(username: &str, password: &str) -> Credentials {
    Credentials {
        username: username.to_owned(),
        password: Secret::new(password),
    }
}

/// Where a scan happened, as the helpers fill it.
#[derive(Clone, Copy, Debug)]
pub struct FacilitySpec<'a> {
    /// `scan_facility_name`.
    pub name: &'a str,
    /// `scan_facility_city`.
    pub city: &'a str,
    /// `scan_facility_state`.
    pub state: &'a str,
    /// `scan_facility_zip`.
    pub zip: &'a str,
    /// `scan_facility_locale_key`.
    pub locale_key: &'a str,
}

/// A Chicago processing plant.
pub const CHICAGO_PDC: FacilitySpec<'static> = FacilitySpec {
    name: "CHICAGO IL P&DC",
    city: "CHICAGO",
    state: "IL",
    zip: "60607",
    locale_key: "L0001234",
};

/// A Denver processing plant.
pub const DENVER_PDC: FacilitySpec<'static> = FacilitySpec {
    name: "DENVER CO P&DC",
    city: "DENVER",
    state: "CO",
    zip: "80266",
    locale_key: "L0005678",
};

/// One scan in the pull API's shape (§2.4): `scan_date_time`, `scan_event_code`,
/// `handling_event_type` (`L`), `mail_phase`, `machine_name`, `scanner_type`, and
/// the facility's name, locale key, city, state and ZIP.
pub fn scan_json(
    date_time: &str,
    event_code: &str,
    mail_phase: &str,
    machine_name: &str,
    facility: FacilitySpec<'_>,
) -> Value {
    json!({
        "scan_date_time": date_time,
        "scan_event_code": event_code,
        "handling_event_type": "L",
        "mail_phase": mail_phase,
        "machine_name": machine_name,
        "scanner_type": machine_name.split('-').next().unwrap_or(machine_name),
        "scan_facility_name": facility.name,
        "scan_facility_locale_key": facility.locale_key,
        "scan_facility_city": facility.city,
        "scan_facility_state": facility.state,
        "scan_facility_zip": facility.zip,
    })
}

/// An origin scan in phase 1 (the operation code is a test value, not USPS's list).
pub fn origin_scan(date_time: &str) -> Value {
    scan_json(
        date_time,
        "271",
        "Phase 1 - Origin Processing",
        "AFCS-011",
        CHICAGO_PDC,
    )
}

/// A destination scan in phase 2b (the operation code is a test value).
pub fn destination_scan(date_time: &str) -> Value {
    scan_json(
        date_time,
        "895",
        "Phase 2b - Destination SCF",
        "DBCS-007",
        DENVER_PDC,
    )
}

/// A DBCS delivery-point-sequence first pass, operation 918, phase 3c (§4).
pub fn dbcs_918_scan(date_time: &str) -> Value {
    scan_json(
        date_time,
        "918",
        "Phase 3c - Destination Sequenced Carrier Sortation",
        "DBCS-042",
        DENVER_PDC,
    )
}

/// A delivery event in phase 4c (the operation code is a test value).
pub fn delivery_scan(date_time: &str) -> Value {
    scan_json(date_time, "01", "Phase 4c - Delivery", "MDD-1", DENVER_PDC)
}

// ---------------------------------------------------------------------------
// The push feed's shapes (facts §3), shared by the feed, receiver, import and
// end-to-end tests.

/// A piece event as an IV-MTR data feed spells it (camelCase), with every field the
/// facts file lists for a subscription that chose most of them; the facility is the
/// Chicago P&DC, the machine a DBCS.
pub fn feed_piece_event(
    tracking: &str,
    routing: &str,
    scanned: &str,
    event_code: &str,
    mail_phase: &str,
) -> Value {
    json!({
        "imb": format!("{tracking}{routing}"),
        "imbTrackingCode": tracking,
        "routingCodeImbMatchingPortion": routing,
        "imbRoutingCode": routing,
        "imbMid": &tracking[5..11],
        "imbStid": &tracking[2..5],
        "imbSerialNumber": &tracking[11..],
        "scanDatetime": scanned,
        "scanEventCode": event_code,
        "handlingEventType": "L",
        "handlingEventTypeDescription": "Letter",
        "mailPhase": mail_phase,
        "machineName": "DBCS-042",
        "machineId": "042",
        "scannerType": "DBCS",
        "scanFacilityName": "CHICAGO IL P&DC",
        "scanFacilityCity": "CHICAGO",
        "scanFacilityState": "IL",
        "scanFacilityZip": "60607",
        "scanLocaleKey": "1234567",
        "startTheClockDate": "2026-11-02",
        "predictedDeliveryDate": "2026-11-05",
        "mailClassDescription": "First-Class Mail",
        "mailShapeDescription": "Letter",
        "idTag": "abc",
        "edocJobId": "J1",
        "edocMailingGroupId": "7",
        "edocSubmitterCrid": "1234567",
        "parentTrayEdocContainerId": "11",
        "parentContainerEdocContainerId": "12",
        "ldeDeliveryMode": null,
        "ldeInventoryMethod": null,
        "ldeTriggerMethod": null
    })
}

/// A handling-unit (tray) event of the same feed: not a piece scan, so counted and
/// skipped.
pub fn feed_tray_event() -> Value {
    json!({
        "imtb": "606071231123456000000421",
        "imtbDestinationZip": "60607",
        "imtbCin": "123",
        "imtbProcessingCode": "1",
        "imtbMid": "123456",
        "imtbSerialNumber": "00000042",
        "pieceCount": 150,
        "scanDatetime": "2026-11-03 06:00:00",
        "scanEventCode": "500",
        "mailPhase": "Phase 1 - Origin Processing",
        "scanFacilityZip": "60607"
    })
}
