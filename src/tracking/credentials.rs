//! Credentials for IV-MTR (the mailer's Business Customer Gateway user) and for the
//! push receiver (what USPS sends as HTTP Basic), from a private file or the
//! environment. A [`Secret`] never prints itself.

use std::fmt;

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
