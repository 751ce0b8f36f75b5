//! Talking to labeld: the connection options every daemon command shares, one
//! request at a time through [`labeld::client::Client`], and how each outcome
//! becomes an exit code.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | anything else: I/O, a fault inside labeld (`internal`), a reply we cannot read |
//! | 2 | bad input, or labeld refused the request (its `code`, `field` and `message` are printed) |
//! | 3 | labeld unreachable, timed out, busy or shutting down: try again later |
//! | 4 | `--wait`: some labels failed or were cancelled |
//!
//! Also `health`, `pause` and `resume`, which are one request each.

use std::time::{Duration, Instant};

use clap::Args;
use labeld::client::{self, Client, ClientError, Subscriber};
use serde_json::{json, Map, Value};

use crate::Failure;

/// Bad input, or labeld refused the request.
pub const EXIT_REFUSED: u8 = 2;
/// labeld unreachable, timed out, busy or shutting down.
pub const EXIT_UNREACHABLE: u8 = 3;
/// `--wait`: not every label printed.
pub const EXIT_INCOMPLETE: u8 = 4;

/// The environment variable that overrides the default request endpoint.
pub const ENV_ENDPOINT: &str = "LABELD_ENDPOINT";
/// The environment variable that overrides the default event endpoint.
pub const ENV_EVENTS: &str = "LABELD_EVENTS";

/// Options of every command that talks to labeld.
#[derive(Args, Clone, Debug)]
pub struct Conn {
    /// labeld's request endpoint (tcp://HOST:PORT or ipc://PATH) [env: LABELD_ENDPOINT]
    /// [default: tcp://127.0.0.1:7310]
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,
    /// labeld's event endpoint [env: LABELD_EVENTS] [default: tcp://127.0.0.1:7311]
    #[arg(long, value_name = "ENDPOINT")]
    pub events: Option<String>,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Conn {
    /// The request endpoint: `--endpoint`, else `$LABELD_ENDPOINT`, else the default.
    pub fn requests(&self) -> String {
        pick(
            self.endpoint.as_deref(),
            ENV_ENDPOINT,
            client::DEFAULT_REQUESTS,
        )
    }

    /// The event endpoint: `--events`, else `$LABELD_EVENTS`, else the default.
    pub fn events(&self) -> String {
        pick(self.events.as_deref(), ENV_EVENTS, client::DEFAULT_EVENTS)
    }

    /// `--timeout` as a duration.
    ///
    /// # Errors
    ///
    /// [`Failure::Input`] for a negative or non-finite number.
    pub fn timeout(&self) -> Result<Duration, Failure> {
        seconds("--timeout", self.timeout)
    }
}

fn pick(flag: Option<&str>, env: &str, default: &str) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var(env).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_owned())
}

/// `value` seconds as a duration, or an input error naming `flag`.
///
/// # Errors
///
/// [`Failure::Input`].
pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Failure::Input(format!("{flag} {value} is not a number of seconds")))
}

/// A connection to labeld.
pub struct Session {
    client: Client,
    conn: Conn,
    timeout: Duration,
}

impl Session {
    /// Connects to the request endpoint.
    ///
    /// # Errors
    ///
    /// Exit 3 when labeld cannot be reached.
    pub fn open(conn: &Conn) -> Result<Session, Failure> {
        let timeout = conn.timeout()?;
        let endpoint = conn.requests();
        probe(&endpoint, timeout)?;
        let client = Client::connect(&endpoint, timeout).map_err(client_failure)?;
        Ok(Session {
            client,
            conn: conn.clone(),
            timeout,
        })
    }

    /// Sends `request` and returns the fields of a successful reply. A `busy` reply
    /// is retried with a growing pause for up to `--timeout`.
    ///
    /// # Errors
    ///
    /// A refused request (exit 2; with `--json` the reply is printed on stdout), an
    /// unreachable or busy daemon (3), an `internal` error (1).
    pub fn call(&mut self, request: Value) -> Result<Map<String, Value>, Failure> {
        let reply = self.call_reply(request)?;
        match reply_error(&reply) {
            None => Ok(into_map(reply)),
            Some(error) => {
                if self.conn.json {
                    println!("{reply}");
                }
                Err(error)
            }
        }
    }

    /// Like [`Session::call`], but a refusal is returned as the reply (`"ok": false`)
    /// for the caller to judge. Transport failures are still errors.
    ///
    /// # Errors
    ///
    /// Exit 3 when labeld cannot be reached or stays busy; 1 for an unreadable reply.
    pub fn call_reply(&mut self, request: Value) -> Result<Value, Failure> {
        let give_up = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let reply = self
                .client
                .request(request.clone())
                .map_err(client_failure)?;
            let busy = error_code(&reply) == Some("busy");
            if !busy || Instant::now() + pause > give_up {
                return Ok(reply);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Subscribes to topic prefixes on the event endpoint.
    ///
    /// # Errors
    ///
    /// The client error (callers decide whether events are essential).
    pub fn subscribe(&self, topics: &[&str]) -> Result<Subscriber, ClientError> {
        let endpoint = self.conn.events();
        if let Err(Failure::Exit(_, reason)) = probe(&endpoint, self.timeout) {
            return Err(ClientError::Connect { endpoint, reason });
        }
        Subscriber::connect(&endpoint, topics, self.timeout)
    }
}

/// Fails at once when nothing listens at `endpoint` (connection refused, no socket
/// file). The `zeromq` crate retries a refused connection until the timeout, which
/// would make "labeld is not running" take `--timeout` seconds to say. Anything else
/// (a slow network, a name that does not resolve yet) is left to the real connect.
///
/// # Errors
///
/// Exit 3 naming the endpoint.
pub fn probe(endpoint: &str, timeout: Duration) -> Result<(), Failure> {
    let down = |why: String| {
        Failure::Exit(
            EXIT_UNREACHABLE,
            format!("cannot connect to labeld at {endpoint}: {why} (is labeld running? start it with `labeld`, or pass --endpoint)"),
        )
    };
    let refused = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        )
    };
    if let Some(address) = endpoint.strip_prefix("tcp://") {
        use std::net::ToSocketAddrs;
        let Ok(addrs) = address.to_socket_addrs() else {
            return Ok(());
        };
        let mut last = None;
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(2))) {
                Ok(_) => return Ok(()),
                Err(e) if refused(&e) => last = Some(e),
                Err(_) => return Ok(()),
            }
        }
        if let Some(e) = last {
            return Err(down(format!("nothing listens there ({e})")));
        }
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {}
            Err(e) if refused(&e) => return Err(down(format!("no socket there ({e})"))),
            Err(_) => {}
        }
    }
    Ok(())
}

/// The exit status for a client error: unreachable (3) or unreadable (1).
pub fn client_failure(err: ClientError) -> Failure {
    match err {
        ClientError::Connect { .. } | ClientError::Timeout { .. } | ClientError::Socket(_) => {
            Failure::Exit(EXIT_UNREACHABLE, err.to_string())
        }
        other => Failure::Other(anyhow::anyhow!(other)),
    }
}

/// The error code of a refused reply.
pub fn error_code(reply: &Value) -> Option<&str> {
    if reply.get("ok") == Some(&Value::Bool(true)) {
        return None;
    }
    reply.pointer("/error/code").and_then(Value::as_str)
}

/// The failure a refused reply means, `None` for a success.
pub fn reply_error(reply: &Value) -> Option<Failure> {
    if reply.get("ok") == Some(&Value::Bool(true)) {
        return None;
    }
    let code = error_code(reply).unwrap_or("unknown");
    let message = reply
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let text = match reply.pointer("/error/field").and_then(Value::as_str) {
        Some(field) => format!("labeld refused the request: {code} ({field}): {message}"),
        None => format!("labeld refused the request: {code}: {message}"),
    };
    Some(Failure::Exit(exit_for_code(code), text))
}

/// The exit code for a daemon error code.
pub fn exit_for_code(code: &str) -> u8 {
    match code {
        "busy" | "shutting_down" => EXIT_UNREACHABLE,
        "internal" => 1,
        _ => EXIT_REFUSED,
    }
}

/// A reply's fields without the envelope (`v`, `id`, `ok`).
pub fn into_map(reply: Value) -> Map<String, Value> {
    let Value::Object(mut map) = reply else {
        return Map::new();
    };
    for key in ["v", "id", "ok"] {
        map.remove(key);
    }
    map
}

/// A scalar as text (strings without quotes, `-` for null); anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints `key: value` lines for every field.
pub fn print_fields(fields: &Map<String, Value>) {
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{key:<width$}  {}", text(value));
    }
}

/// Prints rows as an aligned table: `first` columns in that order, then, with
/// `others`, the other scalar fields in order of appearance.
pub fn print_table(rows: &[Map<String, Value>], first: &[&str], others: bool) {
    let mut columns: Vec<String> = first
        .iter()
        .filter(|c| rows.iter().any(|r| r.contains_key(**c)))
        .map(|c| (*c).to_owned())
        .collect();
    for row in rows.iter().filter(|_| others) {
        for (key, value) in row {
            if !columns.contains(key) && !value.is_object() && !value.is_array() {
                columns.push(key.clone());
            }
        }
    }
    print!("{}", table(rows, &columns));
}

/// An aligned table as text: a header line, then one line per row; absent, null and
/// empty values show as `-`.
pub fn table<S: AsRef<str>>(rows: &[Map<String, Value>], columns: &[S]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match r.get(c.as_ref()) {
                    None | Some(Value::Null) => "-".to_owned(),
                    Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
                    Some(v) => text(v),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.as_ref().chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Each value but the last is padded to its column's width plus two spaces.
    let line = |values: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        let mut pad = 0;
        for (i, v) in values.enumerate() {
            out.push_str(&" ".repeat(pad));
            out.push_str(v);
            pad = widths[i].saturating_sub(v.chars().count()) + 2;
        }
        out.push('\n');
        out
    };
    let mut text = line(&mut columns.iter().map(AsRef::as_ref));
    for row in &cells {
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    text
}

/// Arguments of `labelctl health`.
#[derive(Args)]
pub struct HealthArgs {
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl health`: exit 0 when labeld answers and says `ok`, 1 when it
/// answers `degraded`.
pub fn health(args: HealthArgs) -> Result<(), Failure> {
    let mut session = Session::open(&args.conn)?;
    let fields = session.call(json!({"op": "health"}))?;
    let status = fields.get("status").and_then(Value::as_str).unwrap_or("ok");
    if args.conn.json {
        println!("{}", Value::Object(fields.clone()));
    } else {
        println!("labeld at {}:", args.conn.requests());
        print_fields(&fields);
    }
    if status == "ok" {
        Ok(())
    } else {
        Err(Failure::Exit(1, format!("labeld reports {status}")))
    }
}

/// Arguments of `labelctl pause` and `labelctl resume`.
#[derive(Args)]
pub struct PrinterArgs {
    /// The printer's configured name (`labelctl printers` lists them).
    printer: String,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl pause` (`pause == true`) or `labelctl resume`.
pub fn pause_resume(args: PrinterArgs, pause: bool) -> Result<(), Failure> {
    let mut session = Session::open(&args.conn)?;
    let op = if pause { "pause" } else { "resume" };
    let fields = session.call(json!({"op": op, "printer": args.printer}))?;
    if args.conn.json {
        println!("{}", Value::Object(fields));
    } else if pause {
        println!(
            "printer {} paused (the label in flight finishes; the rest waits for `labelctl resume {}`)",
            args.printer, args.printer
        );
    } else {
        println!("printer {} resumed", args.printer);
    }
    Ok(())
}
