//! Credentials for IV-MTR (the mailer's Business Customer Gateway user) and for the
//! push receiver (what USPS sends as HTTP Basic), from a private file or the
//! environment. A [`Secret`] never prints itself.
//!
//! The file is TOML with exactly two keys, `username = "…"` and `password = "…"`. It
//! must be a regular file owned by labeld's (effective) user with no group or other
//! permission bits (`chmod 600`), as ssh insists for its keys: a password anyone on
//! the machine can read is refused rather than used. Without a file, two environment
//! variables are read (for IV-MTR [`IV_USERNAME_VAR`] and [`IV_PASSWORD_VAR`]).
//!
//! Errors name the file, the line or the variable, never a value from the file.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The IV-MTR user name's environment variable (used when no file is configured).
pub const IV_USERNAME_VAR: &str = "LABELD_IV_USERNAME";
/// The IV-MTR password's environment variable.
pub const IV_PASSWORD_VAR: &str = "LABELD_IV_PASSWORD";
/// The push receiver's user name's environment variable.
pub const PUSH_USERNAME_VAR: &str = "LABELD_IV_PUSH_USERNAME";
/// The push receiver's password's environment variable.
pub const PUSH_PASSWORD_VAR: &str = "LABELD_IV_PUSH_PASSWORD";

/// A credentials file larger than this is not a credentials file.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A password or token: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User name (not secret).
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Why credentials could not be loaded. No variant carries a value read from the file
/// or the environment, only names, line numbers and modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file cannot be opened or read.
    #[error("credentials file {}: cannot read it ({detail}); check the path and that labeld's user owns the file", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        detail: String,
    },
    /// The path is a directory, a device, a FIFO, …
    #[error("credentials file {} is not a regular file; point the setting at a TOML file with `username` and `password`", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file belongs to another user.
    #[error("credentials file {} belongs to uid {owner}, not to labeld's user (uid {euid}); run `chown {euid} {}` and `chmod 600 {}`", path.display(), path.display(), path.display())]
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// labeld's effective uid.
        euid: u32,
    },
    /// Group or others have some permission on the file.
    #[error("credentials file {} is open to group or others (mode {mode:04o}); run `chmod 600 {}`", path.display(), path.display())]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not TOML (the line is given, not its text, which may hold the password).
    #[error("credentials file {} line {line}: not valid TOML; expected `username = \"…\"` and `password = \"…\"`", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
    },
    /// A key is unknown, missing, empty or not a string.
    #[error("credentials file {}: {detail}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        detail: String,
    },
    /// Neither a file nor the environment variables.
    #[error("no credentials: set {user_var} and {password_var}, or configure a credentials file (TOML, `chmod 600`)")]
    Missing {
        /// The user name's variable.
        user_var: String,
        /// The password's variable.
        password_var: String,
    },
    /// One of the two environment variables is unset or empty.
    #[error("environment variable {var} is {problem}; set it (or configure a credentials file)")]
    EnvIncomplete {
        /// The variable.
        var: String,
        /// `"not set"` or `"empty"`.
        problem: &'static str,
    },
}

impl Credentials {
    /// Loads credentials: from `file` when given (see [`check_file_metadata`] for what
    /// the file must look like), else from the environment variables `user_var` and
    /// `password_var`, read through `env` (pass `&|name| std::env::var(name).ok()`).
    pub fn load(
        file: Option<&Path>,
        user_var: &str,
        password_var: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        match file {
            Some(path) => Credentials::from_file(path),
            None => Credentials::from_env(user_var, password_var, env),
        }
    }

    /// Reads and checks a credentials file.
    pub fn from_file(path: &Path) -> Result<Credentials, CredentialsError> {
        let unreadable = |err: std::io::Error| CredentialsError::Unreadable {
            path: path.to_owned(),
            detail: err.to_string(),
        };
        // O_NONBLOCK: opening a FIFO by mistake must not hang; it is refused below.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(unreadable)?;
        // The metadata of the open file, so what is checked is what is read.
        let meta = file.metadata().map_err(unreadable)?;
        check_file_metadata(
            path,
            meta.is_file(),
            meta.mode(),
            meta.uid(),
            effective_uid(),
        )?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(CredentialsError::Invalid {
                path: path.to_owned(),
                detail: format!(
                    "larger than {MAX_FILE_BYTES} bytes; it should hold two short lines"
                ),
            });
        }
        Credentials::from_toml(&text, path)
    }

    /// Parses the file's text: exactly the string keys `username` and `password`,
    /// both non-empty. `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
        let invalid = |detail: String| CredentialsError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let table: toml::Table = toml::from_str(text).map_err(|err| CredentialsError::Syntax {
            path: path.to_owned(),
            line: err
                .span()
                .map(|span| line_of(text, span.start))
                .unwrap_or(1),
        })?;
        if let Some(unknown) = table
            .keys()
            .find(|key| key.as_str() != "username" && key.as_str() != "password")
        {
            return Err(invalid(format!(
                "unknown key `{unknown}`; only `username` and `password` are allowed"
            )));
        }
        let text_value = |key: &str| -> Result<String, CredentialsError> {
            match table.get(key) {
                None => Err(invalid(format!("`{key}` is missing"))),
                Some(toml::Value::String(value)) if value.is_empty() => {
                    Err(invalid(format!("`{key}` is empty")))
                }
                Some(toml::Value::String(value)) => Ok(value.clone()),
                Some(other) => Err(invalid(format!(
                    "`{key}` must be a string (in double quotes), not a {}",
                    other.type_str()
                ))),
            }
        };
        Ok(Credentials {
            username: text_value("username")?,
            password: Secret::new(text_value("password")?),
        })
    }

    /// Reads the two environment variables through `env`.
    pub fn from_env(
        user_var: &str,
        password_var: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        match (env(user_var), env(password_var)) {
            (None, None) => Err(CredentialsError::Missing {
                user_var: user_var.to_owned(),
                password_var: password_var.to_owned(),
            }),
            (user, password) => {
                let present = |var: &str, value: Option<String>| match value {
                    None => Err(CredentialsError::EnvIncomplete {
                        var: var.to_owned(),
                        problem: "not set",
                    }),
                    Some(value) if value.is_empty() => Err(CredentialsError::EnvIncomplete {
                        var: var.to_owned(),
                        problem: "empty",
                    }),
                    Some(value) => Ok(value),
                };
                Ok(Credentials {
                    username: present(user_var, user)?,
                    password: Secret::new(present(password_var, password)?),
                })
            }
        }
    }
}

/// Checks what a credentials file must be: a regular file, owned by `euid`, with no
/// group or other permission bits (`mode` as `st_mode`).
pub fn check_file_metadata(
    path: &Path,
    is_file: bool,
    mode: u32,
    owner: u32,
    euid: u32,
) -> Result<(), CredentialsError> {
    if !is_file {
        return Err(CredentialsError::NotAFile {
            path: path.to_owned(),
        });
    }
    if owner != euid {
        return Err(CredentialsError::WrongOwner {
            path: path.to_owned(),
            owner,
            euid,
        });
    }
    if mode & 0o077 != 0 {
        return Err(CredentialsError::TooOpen {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// labeld's effective uid.
fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};

    const PASSWORD: &str = "Pa55-zebra-Quokka";

    /// A fresh private directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "labeld-credentials-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn good_text() -> String {
        format!("username = \"mailer1\"\npassword = \"{PASSWORD}\"\n")
    }

    #[test]
    fn file_with_mode_0600_is_accepted() {
        let dir = TempDir::new();
        let path = dir.file("iv.toml", &good_text(), 0o600);
        let creds =
            Credentials::load(Some(&path), IV_USERNAME_VAR, IV_PASSWORD_VAR, &no_env).unwrap();
        assert_eq!(creds.username, "mailer1");
        assert_eq!(creds.password.expose(), PASSWORD);
    }

    #[test]
    fn file_with_mode_0644_is_refused_with_chmod_hint() {
        let dir = TempDir::new();
        let path = dir.file("iv.toml", &good_text(), 0o644);
        let err =
            Credentials::load(Some(&path), IV_USERNAME_VAR, IV_PASSWORD_VAR, &no_env).unwrap_err();
        assert!(
            matches!(err, CredentialsError::TooOpen { mode: 0o644, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
        assert!(!text.contains(PASSWORD));
    }

    #[test]
    fn group_readable_file_is_refused() {
        let dir = TempDir::new();
        let path = dir.file("iv.toml", &good_text(), 0o640);
        let err = Credentials::from_file(&path).unwrap_err();
        assert!(matches!(err, CredentialsError::TooOpen { .. }), "{err:?}");
    }

    #[test]
    fn directory_is_refused() {
        let dir = TempDir::new();
        let err = Credentials::from_file(&dir.0).unwrap_err();
        assert!(matches!(err, CredentialsError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let dir = TempDir::new();
        let path = dir.0.join("absent.toml");
        let err = Credentials::from_file(&path).unwrap_err();
        assert!(
            matches!(err, CredentialsError::Unreadable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("absent.toml"), "{err}");
    }

    #[test]
    fn another_owner_is_refused() {
        let err =
            check_file_metadata(Path::new("/etc/iv.toml"), true, 0o100600, 0, 1000).unwrap_err();
        assert_eq!(
            err,
            CredentialsError::WrongOwner {
                path: PathBuf::from("/etc/iv.toml"),
                owner: 0,
                euid: 1000
            }
        );
        assert!(err.to_string().contains("chmod 600 /etc/iv.toml"), "{err}");
        assert!(check_file_metadata(Path::new("x"), true, 0o100600, 7, 7).is_ok());
        assert!(check_file_metadata(Path::new("x"), true, 0o100400, 7, 7).is_ok());
        assert!(check_file_metadata(Path::new("x"), true, 0o100601, 7, 7).is_err());
        assert!(check_file_metadata(Path::new("x"), false, 0o040700, 7, 7).is_err());
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let text = format!("{}realm = \"x\"\n", good_text());
        let err = Credentials::from_toml(&text, Path::new("iv.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown key `realm`"), "{err}");
    }

    #[test]
    fn wrong_type_and_missing_and_empty_keys_are_named_without_values() {
        let err =
            Credentials::from_toml("username = \"u\"\npassword = 918273645\n", Path::new("f"))
                .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`password` must be a string"), "{text}");
        assert!(!text.contains("918273645"), "{text}");

        let err = Credentials::from_toml("username = \"u\"\n", Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("`password` is missing"), "{err}");

        let err = Credentials::from_toml("username = \"\"\npassword = \"p\"\n", Path::new("f"))
            .unwrap_err();
        assert!(err.to_string().contains("`username` is empty"), "{err}");
    }

    #[test]
    fn syntax_error_gives_the_line_not_the_text() {
        let text = format!("username = \"u\"\npassword = \"{PASSWORD}\n");
        let err = Credentials::from_toml(&text, Path::new("iv.toml")).unwrap_err();
        assert!(
            matches!(err, CredentialsError::Syntax { line: 2, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains(PASSWORD));
        assert!(!format!("{err:?}").contains(PASSWORD));
    }

    #[test]
    fn environment_is_used_without_a_file() {
        let vars: HashMap<&str, &str> =
            HashMap::from([(IV_USERNAME_VAR, "envuser"), (IV_PASSWORD_VAR, PASSWORD)]);
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        let creds = Credentials::load(None, IV_USERNAME_VAR, IV_PASSWORD_VAR, &env).unwrap();
        assert_eq!(creds.username, "envuser");
        assert_eq!(creds.password.expose(), PASSWORD);
    }

    #[test]
    fn neither_file_nor_environment_names_both_variables() {
        let err = Credentials::load(None, IV_USERNAME_VAR, IV_PASSWORD_VAR, &no_env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(IV_USERNAME_VAR) && text.contains(IV_PASSWORD_VAR),
            "{text}"
        );
    }

    #[test]
    fn half_set_environment_names_the_missing_variable() {
        let env = |name: &str| (name == IV_USERNAME_VAR).then(|| "u".to_owned());
        let err = Credentials::load(None, IV_USERNAME_VAR, IV_PASSWORD_VAR, &env).unwrap_err();
        assert_eq!(
            err,
            CredentialsError::EnvIncomplete {
                var: IV_PASSWORD_VAR.to_owned(),
                problem: "not set"
            }
        );
        let env = |name: &str| {
            Some(
                if name == IV_USERNAME_VAR {
                    ""
                } else {
                    PASSWORD
                }
                .to_owned(),
            )
        };
        let err = Credentials::load(None, IV_USERNAME_VAR, IV_PASSWORD_VAR, &env).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{IV_USERNAME_VAR} is empty")),
            "{err}"
        );
    }

    #[test]
    fn debug_of_credentials_hides_the_password() {
        let creds = Credentials {
            username: "mailer1".to_owned(),
            password: Secret::new(PASSWORD),
        };
        let debug = format!("{creds:?} {creds:#?}");
        assert!(debug.contains("mailer1"));
        assert!(!debug.contains(PASSWORD), "{debug}");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
