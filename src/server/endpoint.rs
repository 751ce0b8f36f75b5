//! Public endpoints: parsing `tcp://host:port` and `ipc://path`, binding them with
//! labeld's rules, and the private directory for the crate's internal sockets.
//!
//! - `tcp://`: a loopback address unless `allow_remote`; with it, a non-loopback
//!   bind logs a warning, because the `zeromq` crate has no CURVE: anyone who can
//!   reach the port can submit jobs and read events. Port 0 picks a free port.
//! - `ipc://`: the socket file gets mode 0660 (owner and group) and its directory
//!   must not be accessible to others (created 0750 when missing), so no one outside
//!   the group can reach the file even in the instant between bind and chmod. A stale
//!   socket file from a previous run (nothing accepts on it) is removed; a live one,
//!   or a file that is not a socket, is an error.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::net::{TcpListener, UnixListener};

use super::guard::PublicListener;
use super::ServerError;

/// Mode of public ipc socket files.
pub const IPC_SOCKET_MODE: u32 = 0o660;

/// Mode of a directory created for public ipc sockets.
pub const IPC_DIR_MODE: u32 = 0o750;

/// Mode of the private directory holding the crate's internal sockets.
pub const INTERNAL_DIR_MODE: u32 = 0o700;

/// Prefix of the private directory's name under the runtime directory (then pid-n).
const INTERNAL_PREFIX: &str = ".zmq-internal-";

/// A parsed public endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `tcp://host:port`.
    Tcp {
        /// Host name or address, brackets of IPv6 removed; `*` is every IPv4 address.
        host: String,
        /// Port; 0 picks one.
        port: u16,
    },
    /// `ipc://path`.
    Ipc(PathBuf),
}

impl Endpoint {
    /// Parses `tcp://host:port` or `ipc://path`.
    pub(crate) fn parse(endpoint: &str) -> Result<Endpoint, ServerError> {
        let bad = |reason: &str| ServerError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = endpoint.strip_prefix("tcp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp://host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err(bad("the host is empty (use 127.0.0.1 for local clients)"));
            }
            Ok(Endpoint::Tcp {
                host: host.to_owned(),
                port,
            })
        } else if let Some(path) = endpoint.strip_prefix("ipc://") {
            if path.is_empty() || path.starts_with('@') || path == "*" {
                return Err(bad(
                    "expected ipc:// followed by a file path (abstract and wildcard sockets are not supported)",
                ));
            }
            Ok(Endpoint::Ipc(PathBuf::from(path)))
        } else {
            Err(bad("expected tcp://host:port or ipc://path"))
        }
    }
}

/// Binds one public endpoint. Returns the listener and the endpoint as a client
/// would write it (actual port, absolute path).
pub(crate) async fn bind_public(
    endpoint: &str,
    allow_remote: bool,
) -> Result<(PublicListener, String), ServerError> {
    match Endpoint::parse(endpoint)? {
        Endpoint::Tcp { host, port } => {
            let addr = resolve(endpoint, &host, port).await?;
            if !addr.ip().is_loopback() {
                if !allow_remote {
                    return Err(ServerError::RemoteNotAllowed {
                        endpoint: endpoint.to_owned(),
                    });
                }
                tracing::warn!(
                    endpoint,
                    "binding a non-loopback address: the ZeroMQ crate has no CURVE, so anyone who can reach it can submit jobs and read events unauthenticated and unencrypted"
                );
            }
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    endpoint: endpoint.to_owned(),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| ServerError::Bind {
                endpoint: endpoint.to_owned(),
                source,
            })?;
            Ok((PublicListener::Tcp(listener), format!("tcp://{local}")))
        }
        Endpoint::Ipc(path) => {
            let path = absolute(&path).map_err(|source| ServerError::Bind {
                endpoint: endpoint.to_owned(),
                source,
            })?;
            let listener = bind_ipc(endpoint, &path)?;
            let resolved = format!("ipc://{}", path.display());
            Ok((PublicListener::Ipc(listener, path), resolved))
        }
    }
}

/// `*` → every IPv4 address; otherwise an address or a name (the first address it
/// resolves to).
async fn resolve(endpoint: &str, host: &str, port: u16) -> Result<SocketAddr, ServerError> {
    let host = if host == "*" { "0.0.0.0" } else { host };
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ServerError::Bind {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    addrs.next().ok_or_else(|| ServerError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: format!("host {host:?} resolves to no address"),
    })
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// Binds an ipc socket file with the rules in the module doc.
fn bind_ipc(endpoint: &str, path: &Path) -> Result<UnixListener, ServerError> {
    let io_err = |source| ServerError::Bind {
        endpoint: endpoint.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    ensure_private_dir(dir, IPC_DIR_MODE)?;
    remove_stale(endpoint, path)?;
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(IPC_SOCKET_MODE))
        .map_err(io_err)?;
    Ok(listener)
}

/// Creates `dir` with `mode` when missing; refuses one that others can access.
fn ensure_private_dir(dir: &Path, mode: u32) -> Result<(), ServerError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(|source| ServerError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
    }
    let meta = std::fs::metadata(dir).map_err(|source| ServerError::Directory {
        dir: dir.to_owned(),
        source,
    })?;
    let found = meta.permissions().mode() & 0o777;
    if found & 0o007 != 0 {
        return Err(ServerError::DirectoryOpen {
            dir: dir.to_owned(),
            mode: found,
        });
    }
    Ok(())
}

/// Removes a socket file that nothing accepts on; refuses a live one or a non-socket.
fn remove_stale(endpoint: &str, path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServerError::Bind {
                endpoint: endpoint.to_owned(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_owned(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServerError::InUse {
            endpoint: endpoint.to_owned(),
        }),
        Err(_) => {
            tracing::info!(path = %path.display(), "removing stale socket file from an earlier run");
            std::fs::remove_file(path).map_err(|source| ServerError::Bind {
                endpoint: endpoint.to_owned(),
                source,
            })
        }
    }
}

/// Names of the private directories this process created (so a leftover of an
/// earlier process that had the same pid is told apart from a live one of ours), and
/// the lock that keeps scanning and creating atomic within the process.
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Numbers this process's private directories.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Creates the private directory for the crate's internal sockets:
/// `<runtime_dir>/.zmq-internal-<pid>-<n>`, mode 0700 (several servers may run in one
/// process, as in tests). Leftovers are removed first: those of processes that no
/// longer run, and those carrying this pid that this process did not create (an
/// earlier process with the same pid, as in a container).
pub(crate) fn internal_dir(runtime_dir: &Path) -> Result<PathBuf, ServerError> {
    if !runtime_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(IPC_DIR_MODE)
            .create(runtime_dir)
            .map_err(|source| ServerError::Directory {
                dir: runtime_dir.to_owned(),
                source,
            })?;
    }
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    remove_leftovers(runtime_dir, &created);
    let name = format!(
        "{INTERNAL_PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = runtime_dir.join(&name);
    std::fs::DirBuilder::new()
        .mode(INTERNAL_DIR_MODE)
        .create(&dir)
        .map_err(|source| ServerError::Directory {
            dir: dir.clone(),
            source,
        })?;
    created.push(name);
    // The umask may have narrowed the mode; it cannot have widened it, but make sure.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(INTERNAL_DIR_MODE)).map_err(
        |source| ServerError::Directory {
            dir: dir.clone(),
            source,
        },
    )?;
    Ok(dir)
}

/// Removes leftover private directories (see [`internal_dir`]). Whether another pid
/// still runs is read from Linux `/proc`; without it only this pid's are removed.
fn remove_leftovers(runtime_dir: &Path, created: &[String]) {
    let Ok(entries) = std::fs::read_dir(runtime_dir) else {
        return;
    };
    let proc = Path::new("/proc/self").exists();
    let ours = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(INTERNAL_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let leftover = if pid == ours {
            !created.iter().any(|c| c == name)
        } else {
            proc && !Path::new("/proc").join(pid.to_string()).exists()
        };
        if leftover {
            // Best effort: a leftover costs a few bytes of tmpfs.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:7310").unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 7310
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:0").unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 0
            }
        );
        assert_eq!(
            Endpoint::parse("ipc:///run/labeld/requests.sock").unwrap(),
            Endpoint::Ipc("/run/labeld/requests.sock".into())
        );
        for bad in [
            "tcp://127.0.0.1",
            "tcp://:80",
            "tcp://h:99999",
            "ipc://",
            "ipc://@abstract",
            "inproc://x",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
