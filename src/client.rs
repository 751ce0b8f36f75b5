//! A blocking client for labeld's job API: what `labelctl` and the tests use, and a
//! model for clients in other languages (`docs/protocol.md` has the Python one).
//!
//! [`Client`] is a ZeroMQ DEALER: it may have several requests in flight and matches
//! replies to requests by their `"id"`. [`Subscriber`] is a SUB on the event socket.
//! Both run the `zeromq` crate on a private single-threaded tokio runtime, so callers
//! stay synchronous.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

use crate::protocol::VERSION;

/// Where `labelctl` looks for the daemon by default.
pub const DEFAULT_REQUESTS: &str = "tcp://127.0.0.1:7310";
/// Where `labelctl` listens for events by default.
pub const DEFAULT_EVENTS: &str = "tcp://127.0.0.1:7311";

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The runtime could not start.
    #[error("cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
    /// Nothing listens at the endpoint.
    #[error("cannot connect to labeld at {endpoint}: {reason} (is labeld running? start it with `labeld`, or pass --endpoint)")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// What ZeroMQ said.
        reason: String,
    },
    /// No reply in time.
    #[error(
        "labeld at {endpoint} did not answer within {after:?} (is it running and not overloaded?)"
    )]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// How long we waited.
        after: Duration,
    },
    /// The socket failed.
    #[error("zeromq: {0}")]
    Socket(String),
    /// A reply that is not a JSON object.
    #[error("labeld sent a reply that is not a JSON object: {0}")]
    BadReply(String),
}

/// A request socket connected to labeld.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    socket: DealerSocket,
    endpoint: String,
    timeout: Duration,
    next_id: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)
}

impl Client {
    /// Connects to `endpoint` (`tcp://…` or `ipc://…`); `timeout` bounds the connect
    /// and every reply.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] when nothing answers.
    pub fn connect(endpoint: &str, timeout: Duration) -> Result<Client, ClientError> {
        let runtime = runtime()?;
        let mut socket = DealerSocket::new();
        let connected = runtime
            .block_on(async { tokio::time::timeout(timeout, socket.connect(endpoint)).await });
        match connected {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    endpoint: endpoint.to_owned(),
                    reason: format!("no answer within {timeout:?}"),
                })
            }
        }
        Ok(Client {
            runtime,
            socket,
            endpoint: endpoint.to_owned(),
            timeout,
            next_id: 1,
        })
    }

    /// Sends `request` (a JSON object; `"v"` and an `"id"` are added when missing)
    /// and returns its id. Pair with [`Client::recv`] to pipeline.
    ///
    /// # Errors
    ///
    /// [`ClientError::Socket`] when the message cannot be queued.
    pub fn send(&mut self, mut request: Map<String, Value>) -> Result<Value, ClientError> {
        request.entry("v").or_insert(VERSION.into());
        let id = request
            .entry("id")
            .or_insert_with(|| {
                let id = self.next_id;
                self.next_id += 1;
                Value::from(format!("c{id}"))
            })
            .clone();
        let body = Value::Object(request).to_string();
        self.send_raw(body.into_bytes())?;
        Ok(id)
    }

    /// Sends one frame as it is (for tests of malformed requests).
    ///
    /// # Errors
    ///
    /// [`ClientError::Socket`].
    pub fn send_raw(&mut self, body: Vec<u8>) -> Result<(), ClientError> {
        let socket = &mut self.socket;
        let timeout = self.timeout;
        let endpoint = &self.endpoint;
        self.runtime.block_on(async {
            match tokio::time::timeout(timeout, socket.send(ZmqMessage::from(body))).await {
                Ok(r) => r.map_err(|e| ClientError::Socket(e.to_string())),
                Err(_) => Err(ClientError::Timeout {
                    endpoint: endpoint.clone(),
                    after: timeout,
                }),
            }
        })
    }

    /// The next reply, whatever request it answers.
    ///
    /// # Errors
    ///
    /// [`ClientError::Timeout`] or [`ClientError::BadReply`].
    pub fn recv(&mut self) -> Result<Value, ClientError> {
        let deadline = Instant::now() + self.timeout;
        self.recv_until(deadline)
    }

    fn recv_until(&mut self, deadline: Instant) -> Result<Value, ClientError> {
        let socket = &mut self.socket;
        let left = deadline.saturating_duration_since(Instant::now());
        let message = self
            .runtime
            .block_on(async { tokio::time::timeout(left, socket.recv()).await });
        let message = match message {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(ClientError::Socket(e.to_string())),
            Err(_) => {
                return Err(ClientError::Timeout {
                    endpoint: self.endpoint.clone(),
                    after: self.timeout,
                })
            }
        };
        // A DEALER gets [body] (or [empty, body] if the server mimics REQ framing).
        let body = message
            .iter()
            .rev()
            .find(|f| !f.is_empty())
            .cloned()
            .unwrap_or_default();
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(ClientError::BadReply(
                String::from_utf8_lossy(&body).chars().take(200).collect(),
            )),
        }
    }

    /// Sends `request` and waits for its reply (replies to other ids are skipped).
    ///
    /// # Errors
    ///
    /// See [`Client::send`] and [`Client::recv`].
    pub fn request(&mut self, request: Value) -> Result<Value, ClientError> {
        let Value::Object(map) = request else {
            return Err(ClientError::BadReply(
                "request must be a JSON object".into(),
            ));
        };
        let id = self.send(map)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let reply = self.recv_until(deadline)?;
            if reply.get("id") == Some(&id) {
                return Ok(reply);
            }
            // Errors found before the id could be read (`request_too_large`,
            // `malformed_json`, `busy` for a large body) carry no id; with one request
            // in flight, such an error is the answer to it.
            if reply.get("id").is_none() && reply.get("ok") == Some(&Value::Bool(false)) {
                return Ok(reply);
            }
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// An event subscription.
pub struct Subscriber {
    runtime: tokio::runtime::Runtime,
    socket: SubSocket,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

/// One event as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// Its topic (`job.<id>`, `printer.<name>`, …).
    pub topic: String,
    /// The payload.
    pub event: Value,
}

impl Subscriber {
    /// Connects to the event endpoint and subscribes to each topic prefix (`""` for
    /// everything). ZeroMQ drops what was published before the subscription reached
    /// the daemon; ask `status` after subscribing when that matters.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`].
    pub fn connect(
        endpoint: &str,
        topics: &[&str],
        timeout: Duration,
    ) -> Result<Subscriber, ClientError> {
        let runtime = runtime()?;
        let mut socket = SubSocket::new();
        let result = runtime.block_on(async {
            tokio::time::timeout(timeout, socket.connect(endpoint))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
                .map_err(|e| e.to_string())?;
            for t in topics {
                socket.subscribe(t).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
        result.map_err(|reason| ClientError::Connect {
            endpoint: endpoint.to_owned(),
            reason,
        })?;
        Ok(Subscriber { runtime, socket })
    }

    /// The next event, or `None` after `timeout` without one.
    ///
    /// # Errors
    ///
    /// [`ClientError::Socket`] when the socket fails.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        let socket = &mut self.socket;
        let got = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, socket.recv()).await });
        let message = match got {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(ClientError::Socket(e.to_string())),
            Ok(Ok(m)) => m,
        };
        let topic = message
            .get(0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        let event = message
            .get(1)
            .and_then(|f| serde_json::from_slice(f).ok())
            .unwrap_or(Value::Null);
        Ok(Some(Received { topic, event }))
    }
}
