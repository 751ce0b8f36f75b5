//! The `[tracking]` section of labeld's configuration: where IV-MTR is, whose
//! credentials, how often to poll, and the opt-in push receiver.
//!
//! Everything USPS has not pinned down in a source labeld could read (token lifetime,
//! rate limits, event-code meanings) is a setting here with a documented default, so
//! it can be corrected without a code change (`docs/tracking.md`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::stages::{default_rules, StageRule};

/// IV-MTR production hosts (five independent clients agree; see the facts file §2.1).
pub const PRODUCTION_OAUTH_URL: &str = "https://services.usps.com/oauth";
/// IV-MTR production API base.
pub const PRODUCTION_API_URL: &str = "https://iv.usps.com/ivws_api/informedvisapi";
/// USPS's customer acceptance test (CAT) hosts.
pub const CAT_OAUTH_URL: &str = "https://cat-services.usps.com/oauth";
/// USPS CAT API base.
pub const CAT_API_URL: &str = "https://qiv.usps.com/ivws_api/informedvisapi";
/// The client id that identifies the IV API (the same for every mailer).
pub const IV_CLIENT_ID: &str = "687b8a36-db61-42f7-83f7-11c79bf7785e";
/// The OAuth scope IV-MTR asks for.
pub const IV_SCOPE: &str = "user.info.ereg,iv1.apis";

/// `[tracking]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSettings {
    /// Poll IV-MTR in the background for printed pieces. Off by default: it needs
    /// Business Customer Gateway credentials with the IV-MTR service.
    pub enabled: bool,
    /// OAuth base URL (`.../authenticate` and `.../token` are appended).
    pub oauth_url: String,
    /// API base URL (`/api/mt/get/piece/...` is appended).
    pub api_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth scope.
    pub scope: String,
    /// A TOML file with `username` and `password`, readable only by labeld's user.
    /// Without it, `LABELD_IV_USERNAME` and `LABELD_IV_PASSWORD` are read.
    pub credentials_file: Option<PathBuf>,
    /// Token lifetime assumed when the token answer has no `expires_in`, seconds.
    pub token_lifetime_secs: u64,
    /// Timeout of one HTTP request, seconds.
    pub request_timeout_secs: u64,
    /// Tries per request on 429, 5xx and maintenance pages (1 = no retry).
    pub tries: u32,
    /// Longest back-off between tries, seconds (a longer `Retry-After` is obeyed up to
    /// this too).
    pub max_backoff_secs: u64,
    /// Pieces printed longer ago than this are no longer polled.
    pub window_days: u32,
    /// A piece not yet processed for delivery with no scan (or print) for this long
    /// is stalled.
    pub stall_days: u32,
    /// At most this many IV-MTR requests an hour, spread evenly.
    pub requests_per_hour: u32,
    /// Poll cadence by age since printing, first match wins.
    pub poll: Vec<PollStep>,
    /// What scans mean (first match wins).
    #[serde(rename = "stage")]
    pub stages: Vec<StageRule>,
    /// The push receiver; `None` = off.
    pub push: Option<PushSettings>,
}

/// Poll pieces younger than `until_hours` (since printing) every `every_minutes`.
/// The last step may leave `until_hours` out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollStep {
    /// Age limit of this step, hours; `None` = any age.
    #[serde(default)]
    pub until_hours: Option<u32>,
    /// Interval between polls of one piece, minutes.
    #[serde(default)]
    pub every_minutes: u32,
    /// Or in seconds (tests, or a short first step); added to `every_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u32>,
}

impl PollStep {
    /// The interval, ms (use this, not the fields).
    pub fn interval_ms(&self) -> i64 {
        i64::from(self.every_minutes) * 60_000 + i64::from(self.every_seconds.unwrap_or(0)) * 1000
    }
}

/// `[tracking.push]`: the HTTP(S) endpoint IV-MTR data feeds are pushed to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// Address to listen on, e.g. `"0.0.0.0:8443"`.
    pub listen: String,
    /// The path USPS posts to (the subscription's target path).
    pub path: String,
    /// PEM certificate chain; with `tls_key`, the receiver speaks HTTPS (rustls).
    /// Without both it speaks plain HTTP, for use behind a TLS reverse proxy only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// A TOML file with `username` and `password` USPS sends (HTTP Basic), readable
    /// only by labeld's user. Without it, `LABELD_IV_PUSH_USERNAME` and
    /// `LABELD_IV_PUSH_PASSWORD` are read.
    pub credentials_file: Option<PathBuf>,
    /// Largest body accepted on the wire, bytes.
    pub max_body_bytes: u64,
    /// Largest feed after decompression (a zipped or gzipped body), bytes; never
    /// less than `max_body_bytes`. A decompressed feed is held in memory while it is
    /// checked.
    pub max_feed_bytes: u64,
    /// Where a body refused as an invalid feed is kept (the newest 100), so its good
    /// scans can be loaded with `labelctl tracking import --skip-invalid`; relative to
    /// the state directory. Leave out to use `tracking-rejected`.
    pub rejected_dir: Option<PathBuf>,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            listen: "127.0.0.1:8443".to_owned(),
            path: "/iv/feed".to_owned(),
            tls_cert: None,
            tls_key: None,
            credentials_file: None,
            max_body_bytes: 128 * 1024 * 1024,
            max_feed_bytes: 1024 * 1024 * 1024,
            rejected_dir: None,
        }
    }
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            enabled: false,
            oauth_url: PRODUCTION_OAUTH_URL.to_owned(),
            api_url: PRODUCTION_API_URL.to_owned(),
            client_id: IV_CLIENT_ID.to_owned(),
            scope: IV_SCOPE.to_owned(),
            credentials_file: None,
            token_lifetime_secs: 900,
            request_timeout_secs: 30,
            tries: 4,
            max_backoff_secs: 300,
            window_days: 30,
            stall_days: 5,
            requests_per_hour: 1200,
            poll: default_poll(),
            stages: default_rules(),
            push: None,
        }
    }
}

/// The default cadence: pieces are rarely scanned in their first hours (they have to
/// reach a post office), so every 2 hours for 2 days, every 6 hours for a week, then
/// twice a day.
pub fn default_poll() -> Vec<PollStep> {
    vec![
        PollStep {
            until_hours: Some(48),
            every_minutes: 120,
            every_seconds: None,
        },
        PollStep {
            until_hours: Some(168),
            every_minutes: 360,
            every_seconds: None,
        },
        PollStep {
            until_hours: None,
            every_minutes: 720,
            every_seconds: None,
        },
    ]
}

impl TrackingSettings {
    /// Checks values that parse but cannot be used; the error names the key (under
    /// `tracking.`) and says what to write instead.
    ///
    /// # Errors
    ///
    /// `(key, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((format!("tracking.{key}"), message));
        for (key, url) in [("oauth_url", &self.oauth_url), ("api_url", &self.api_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return bad(key, format!("{url:?} is not an http(s) URL"));
            }
            if url.ends_with('/') {
                return bad(key, format!("{url:?}: leave out the trailing '/'"));
            }
            if let Some(rest) = url.strip_prefix("http://") {
                let host = rest.split(['/', '?']).next().unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                    return bad(
                        key,
                        format!(
                            "{url:?}: plain http would send the BCG password in clear; \
                             use https (http is allowed on loopback only, for tests)"
                        ),
                    );
                }
            }
        }
        if self.requests_per_hour == 0 {
            return bad("requests_per_hour", "must be at least 1".into());
        }
        if self.tries == 0 {
            return bad("tries", "must be at least 1 (1 = no retry)".into());
        }
        if self.window_days == 0 || self.stall_days == 0 {
            return bad(
                "window_days",
                "window_days and stall_days must be at least 1".into(),
            );
        }
        if self.poll.is_empty() {
            return bad(
                "poll",
                "give at least one step, e.g. { every_minutes = 360 }".into(),
            );
        }
        let mut last_until = 0;
        for (i, step) in self.poll.iter().enumerate() {
            if step.interval_ms() < 1000 {
                return bad(
                    &format!("poll[{i}].every_minutes"),
                    "give every_minutes (or every_seconds) of at least 1".into(),
                );
            }
            match step.until_hours {
                Some(h) if h <= last_until && i > 0 => {
                    return bad(
                        &format!("poll[{i}].until_hours"),
                        "steps must have growing until_hours".into(),
                    )
                }
                Some(h) => last_until = h,
                None if i + 1 != self.poll.len() => {
                    return bad(
                        &format!("poll[{i}].until_hours"),
                        "only the last step may leave until_hours out".into(),
                    )
                }
                None => {}
            }
        }
        for (i, rule) in self.stages.iter().enumerate() {
            if rule.phase.is_none() && rule.event_codes.is_empty() {
                return bad(
                    &format!("stage[{i}]"),
                    "a rule needs a phase prefix or event_codes".into(),
                );
            }
        }
        if let Some(push) = &self.push {
            if push.listen.parse::<std::net::SocketAddr>().is_err() {
                return bad(
                    "push.listen",
                    format!("{:?} is not an address:port like 0.0.0.0:8443", push.listen),
                );
            }
            if !push.path.starts_with('/') {
                return bad("push.path", "must start with '/'".into());
            }
            if push.tls_cert.is_some() != push.tls_key.is_some() {
                return bad(
                    "push.tls_cert",
                    "give both tls_cert and tls_key (HTTPS), or neither (plain HTTP behind a proxy)"
                        .into(),
                );
            }
            if push.max_body_bytes == 0 {
                return bad("push.max_body_bytes", "must be at least 1".into());
            }
        }
        Ok(())
    }

    /// Relative file paths taken from `base` (the state directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                *path = base.join(&*path);
            }
        };
        fix(&mut self.credentials_file);
        if let Some(push) = &mut self.push {
            fix(&mut push.tls_cert);
            fix(&mut push.tls_key);
            fix(&mut push.credentials_file);
            push.rejected_dir = Some(
                base.join(
                    push.rejected_dir
                        .take()
                        .unwrap_or_else(|| PathBuf::from("tracking-rejected")),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_name_their_key() {
        assert_eq!(TrackingSettings::default().check(), Ok(()));
        let mut s = TrackingSettings {
            api_url: "ftp://x".into(),
            ..TrackingSettings::default()
        };
        assert_eq!(s.check().unwrap_err().0, "tracking.api_url");
        s.api_url = "http://iv.example.com/api".into();
        assert_eq!(s.check().unwrap_err().0, "tracking.api_url");
        s.api_url = "http://127.0.0.1:8080/api".into();
        assert_eq!(s.check(), Ok(()));
        s.api_url = PRODUCTION_API_URL.into();
        s.poll = vec![
            PollStep {
                until_hours: None,
                every_minutes: 60,
                every_seconds: None,
            },
            PollStep {
                until_hours: Some(10),
                every_minutes: 60,
                every_seconds: None,
            },
        ];
        assert_eq!(s.check().unwrap_err().0, "tracking.poll[0].until_hours");
        s.poll = default_poll();
        s.push = Some(PushSettings {
            tls_cert: Some("cert.pem".into()),
            ..PushSettings::default()
        });
        assert_eq!(s.check().unwrap_err().0, "tracking.push.tls_cert");
    }

    #[test]
    fn parses_from_toml_with_defaults() {
        let s: TrackingSettings = toml::from_str(
            "enabled = true\nwindow_days = 10\n[push]\nlisten = \"127.0.0.1:0\"\n[[stage]]\nphase = \"Phase 9\"\nstage = \"delivered\"\n",
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.window_days, 10);
        assert_eq!(s.stages.len(), 1);
        assert_eq!(s.push.unwrap().path, "/iv/feed");
        assert_eq!(s.api_url, PRODUCTION_API_URL);
    }
}
