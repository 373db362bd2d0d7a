//! Configuration: a TOML file plus `CONCIERGE_*` environment overrides, parsed once into [`Config`].
//!
//! Raw input ([`RawConfig`], every field optional, unknown fields refused) is layered (defaults, then
//! the file, then the environment) and validated into [`Config`], whose fields cannot hold bad values.
//! Nothing else in the program reads the environment or the file.
//!
//! With no file and no environment, the defaults are safe for a laptop: listen on `127.0.0.1:8080`, data
//! in `./data`, intents from `./intents`, no Twilio credentials, no admin token (admin endpoints then
//! refuse every request). Secrets are [`Secret`]s, which print as `[redacted]`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::agenda::Zone;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "concierge.toml";

/// The sled page cache when the configuration names none, in MiB.
pub const DEFAULT_SLED_CACHE_MB: u64 = 256;

/// A secret string. It has no `Display`, and its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (a signature, an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    /// Where Prometheus metrics are served (`GET /metrics`); `None`: not at all.
    pub metrics_bind: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub intents_dir: PathBuf,
    /// Experts, queues and the workflow (see `crate::routing::config`).
    pub routing_file: PathBuf,
    /// The conference zone for imports of files that name none (Sessionize).
    pub time_zone: Option<Zone>,
    /// The URL Twilio is configured to call, used to check webhook signatures.
    pub public_url: Option<Url>,
    pub twilio: Option<TwilioConfig>,
    pub admin_token: Option<Secret>,
    pub sled_cache_bytes: u64,
    /// Connection threads that answer requests (`http::threads`); `None`: one per CPU.
    pub workers: Option<usize>,
    pub sms: SmsConfig,
    pub web: WebConfig,
    /// When reminders before saved sessions are sent.
    pub reminders: crate::notices::reminders::Settings,
    /// Where the values came from, for the start-up log.
    pub origin: Origin,
}

/// How the SMS channel behaves.
#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// Longest reply in segments; longer answers are paged with MORE.
    pub max_segments: usize,
    /// Minutes of silence after which a conversation's context is forgotten.
    pub context_idle_minutes: u32,
    /// Outbound sends per second at most (Twilio long codes take about 1, Messaging Services more).
    pub send_rate_per_second: f64,
    /// Messages one number may send (a minute, at once) before the webhook answers 429.
    pub per_number: crate::limits::Rate,
    /// Development only: accept webhooks without checking `X-Twilio-Signature`. Set by the
    /// `serve --dev-skip-signature` flag alone, never by the file or the environment.
    pub skip_signature: bool,
}

/// Limits of the web chat.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Messages one conversation may send (a minute, at once).
    pub per_conversation: crate::limits::Rate,
    /// Requests one client address may make to the chat (a minute, at once): new conversations,
    /// messages and history.
    pub per_address: crate::limits::Rate,
    /// Reverse proxies whose `X-Forwarded-For` is believed, so the per-address limit counts the
    /// clients behind them (see `http::client_addr`). Empty: the header is ignored.
    pub trusted_proxies: Vec<crate::http::client_addr::IpNet>,
}

#[derive(Clone, Debug)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sender: a phone number (E.164) or a Messaging Service SID (`MG…`).
    pub sender: String,
    /// Where the Messages API is: `https://api.twilio.com` unless testing against a stub.
    pub api_base: String,
    /// How long one send may take before it counts as failed (and is retried).
    pub timeout_secs: u64,
}

/// Where configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: Option<PathBuf>,
    /// Names of the environment variables that were set.
    pub env: Vec<String>,
}

impl Origin {
    /// True when neither a file nor the environment set anything: every value is a default.
    pub fn is_default(&self) -> bool {
        self.file.is_none() && self.env.is_empty()
    }
}

/// The configuration as written: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub bind: Option<String>,
    pub metrics_bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub intents_dir: Option<PathBuf>,
    pub routing_file: Option<PathBuf>,
    pub time_zone: Option<String>,
    pub public_url: Option<String>,
    pub admin_token: Option<String>,
    pub sled_cache_mb: Option<u64>,
    pub workers: Option<usize>,
    pub twilio: Option<RawTwilio>,
    pub sms: Option<RawSms>,
    pub web: Option<RawWeb>,
    pub reminders: Option<RawReminders>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReminders {
    pub minutes_before: Option<u32>,
    pub quiet_hours: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub messages_per_minute: Option<u32>,
    pub messages_burst: Option<u32>,
    pub address_requests_per_minute: Option<u32>,
    pub address_requests_burst: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSms {
    pub max_segments: Option<usize>,
    pub context_idle_minutes: Option<u32>,
    pub send_rate_per_second: Option<f64>,
    pub messages_per_minute: Option<u32>,
    pub messages_burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub sender: Option<String>,
    pub api_base: Option<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or `None` when the bad value came from the environment.
    pub source: Option<PathBuf>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(path) => write!(f, "{}: {}", path.display(), self.message),
            None => write!(f, "configuration: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The environment variables read, with the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("CONCIERGE_BIND", "bind"),
    ("CONCIERGE_METRICS_BIND", "metrics_bind"),
    ("CONCIERGE_DATA_DIR", "data_dir"),
    ("CONCIERGE_INTENTS_DIR", "intents_dir"),
    ("CONCIERGE_ROUTING_FILE", "routing_file"),
    ("CONCIERGE_TIME_ZONE", "time_zone"),
    ("CONCIERGE_PUBLIC_URL", "public_url"),
    ("CONCIERGE_ADMIN_TOKEN", "admin_token"),
    ("CONCIERGE_SLED_CACHE_MB", "sled_cache_mb"),
    ("CONCIERGE_WORKERS", "workers"),
    ("CONCIERGE_TWILIO_ACCOUNT_SID", "twilio.account_sid"),
    ("CONCIERGE_TWILIO_AUTH_TOKEN", "twilio.auth_token"),
    ("CONCIERGE_TWILIO_SENDER", "twilio.sender"),
];

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else [`DEFAULT_FILE`] if present;
    /// then the environment, read through `env` so tests can supply their own.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let path = match file {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
        };
        let mut raw = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
                    source: Some(path.clone()),
                    message: format!("cannot read the file: {err}"),
                })?;
                toml::from_str::<RawConfig>(&text).map_err(|err| ConfigError {
                    source: Some(path.clone()),
                    message: err.to_string().trim_end().to_string(),
                })?
            }
            None => RawConfig::default(),
        };
        let mut set = Vec::new();
        for (var, _) in ENV_VARS {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                set.push(var.to_string());
                raw.apply_env(var, value).map_err(|message| ConfigError {
                    source: None,
                    message,
                })?;
            }
        }
        raw.validate(Origin {
            file: path,
            env: set,
        })
    }

    /// A description for the start-up log. It never contains a secret.
    pub fn describe(&self) -> String {
        format!(
            "bind={} data_dir={} intents_dir={} time_zone={} public_url={} twilio={} admin_token={} sled_cache_mb={}",
            self.bind,
            self.data_dir.display(),
            self.intents_dir.display(),
            self.time_zone
                .as_ref()
                .map_or("(from the agenda)", |z| z.name()),
            self.public_url.as_ref().map_or("(none)", |u| u.as_str()),
            if self.twilio.is_some() {
                "configured"
            } else {
                "(none)"
            },
            if self.admin_token.is_some() {
                "set"
            } else {
                "(none: admin endpoints refuse all requests)"
            },
            self.sled_cache_bytes / (1024 * 1024),
        )
    }
}

impl RawConfig {
    fn apply_env(&mut self, var: &str, value: String) -> Result<(), String> {
        let twilio = || RawTwilio::default();
        match var {
            "CONCIERGE_BIND" => self.bind = Some(value),
            "CONCIERGE_METRICS_BIND" => self.metrics_bind = Some(value),
            "CONCIERGE_DATA_DIR" => self.data_dir = Some(value.into()),
            "CONCIERGE_INTENTS_DIR" => self.intents_dir = Some(value.into()),
            "CONCIERGE_ROUTING_FILE" => self.routing_file = Some(value.into()),
            "CONCIERGE_TIME_ZONE" => self.time_zone = Some(value),
            "CONCIERGE_PUBLIC_URL" => self.public_url = Some(value),
            "CONCIERGE_ADMIN_TOKEN" => self.admin_token = Some(value),
            "CONCIERGE_SLED_CACHE_MB" => {
                self.sled_cache_mb = Some(value.trim().parse().map_err(|_| {
                    format!("CONCIERGE_SLED_CACHE_MB={value:?} is not a whole number of megabytes")
                })?)
            }
            "CONCIERGE_WORKERS" => {
                self.workers = Some(value.trim().parse().map_err(|_| {
                    format!("CONCIERGE_WORKERS={value:?} is not a whole number of threads")
                })?)
            }
            "CONCIERGE_TWILIO_ACCOUNT_SID" => {
                self.twilio.get_or_insert_with(twilio).account_sid = Some(value)
            }
            "CONCIERGE_TWILIO_AUTH_TOKEN" => {
                self.twilio.get_or_insert_with(twilio).auth_token = Some(value)
            }
            "CONCIERGE_TWILIO_SENDER" => {
                self.twilio.get_or_insert_with(twilio).sender = Some(value)
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks every value and fills in defaults.
    pub fn validate(self, origin: Origin) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            source: origin.file.clone(),
            message,
        };
        let bind = self.bind.as_deref().unwrap_or("127.0.0.1:8080");
        let bind: SocketAddr = bind.parse().map_err(|_| {
            err(format!(
                "bind = {bind:?} is not an address and port such as \"127.0.0.1:8080\" or \"[::]:8080\""
            ))
        })?;
        let metrics_bind = match self.metrics_bind.as_deref().map(str::trim) {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            Some("off" | "") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                err(format!(
                    "metrics_bind = {addr:?} is not an address and port such as \"127.0.0.1:9464\" (or \"off\")"
                ))
            })?),
        };
        let time_zone = self
            .time_zone
            .as_deref()
            .map(Zone::parse)
            .transpose()
            .map_err(|msg| err(format!("time_zone: {msg}")))?;
        let public_url = self
            .public_url
            .as_deref()
            .map(|raw| {
                let url = Url::parse(raw)
                    .map_err(|e| err(format!("public_url = {raw:?} is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(err(format!(
                        "public_url = {raw:?} must be an http or https URL"
                    )));
                }
                Ok(url)
            })
            .transpose()?;
        let admin_token = match self.admin_token {
            Some(token) if token.trim().len() < 16 => {
                return Err(err(
                    "admin_token must be at least 16 characters long (use a random string)".into(),
                ));
            }
            Some(token) => Some(Secret(token.trim().to_string())),
            None => None,
        };
        // 256 MiB: under `concierge load` a 64 MiB cache made sled read ~10 pages a request back
        // from the file (1.47 M pread64 in 8 s); 256 MiB cut that fivefold and the service's CPU
        // per request by ~6 µs, for ~200 MB more resident memory (see BENCHMARKS.md).
        let cache_mb = self.sled_cache_mb.unwrap_or(DEFAULT_SLED_CACHE_MB);
        if !(1..=65_536).contains(&cache_mb) {
            return Err(err(format!(
                "sled_cache_mb = {cache_mb} is out of range (1 to 65536)"
            )));
        }
        if let Some(workers) = self.workers
            && !(1..=1024).contains(&workers)
        {
            return Err(err(format!(
                "workers = {workers} is out of range (1 to 1024)"
            )));
        }
        let twilio = match self.twilio {
            None => None,
            Some(t) => Some(validate_twilio(t).map_err(err)?),
        };
        let raw_sms = self.sms.unwrap_or_default();
        let max_segments = raw_sms.max_segments.unwrap_or(2);
        if !(1..=10).contains(&max_segments) {
            return Err(err(format!(
                "sms.max_segments = {max_segments} must be from 1 to 10"
            )));
        }
        let send_rate_per_second = raw_sms.send_rate_per_second.unwrap_or(1.0);
        if !(0.01..=1000.0).contains(&send_rate_per_second) {
            return Err(err(format!(
                "sms.send_rate_per_second = {send_rate_per_second} must be from 0.01 to 1000"
            )));
        }
        let context_idle_minutes = raw_sms.context_idle_minutes.unwrap_or(30);
        if !(1..=24 * 60).contains(&context_idle_minutes) {
            return Err(err(format!(
                "sms.context_idle_minutes = {context_idle_minutes} must be from 1 to 1440"
            )));
        }
        let per_number = crate::limits::Rate {
            per_minute: raw_sms.messages_per_minute.unwrap_or(30),
            burst: raw_sms.messages_burst.unwrap_or(10),
        };
        if !(1..=100_000).contains(&per_number.per_minute)
            || !(1..=100_000).contains(&per_number.burst)
        {
            return Err(err(
                "sms.messages_per_minute and sms.messages_burst must be from 1 to 100000".into(),
            ));
        }
        let raw_web = self.web.unwrap_or_default();
        let limit = |name: &str, value: Option<u32>, default: u32| {
            let v = value.unwrap_or(default);
            if (1..=100_000).contains(&v) {
                Ok(v)
            } else {
                Err(err(format!("web.{name} = {v} must be from 1 to 100000")))
            }
        };
        let web = WebConfig {
            per_conversation: crate::limits::Rate {
                per_minute: limit("messages_per_minute", raw_web.messages_per_minute, 20)?,
                burst: limit("messages_burst", raw_web.messages_burst, 8)?,
            },
            per_address: crate::limits::Rate {
                per_minute: limit(
                    "address_requests_per_minute",
                    raw_web.address_requests_per_minute,
                    300,
                )?,
                burst: limit("address_requests_burst", raw_web.address_requests_burst, 60)?,
            },
            trusted_proxies: raw_web
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|net| {
                    net.parse()
                        .map_err(|e: String| err(format!("web.trusted_proxies: {e}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let raw_reminders = self.reminders.unwrap_or_default();
        let minutes_before = raw_reminders.minutes_before.unwrap_or(10);
        if !(1..=24 * 60).contains(&minutes_before) {
            return Err(err(format!(
                "reminders.minutes_before = {minutes_before} must be from 1 to 1440"
            )));
        }
        let quiet = match raw_reminders.quiet_hours.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(q) => Some(
                crate::notices::reminders::QuietHours::parse(q)
                    .map_err(|e| err(format!("reminders.quiet_hours: {e}")))?,
            ),
        };
        let reminders = crate::notices::reminders::Settings {
            lead: jiff::SignedDuration::from_mins(i64::from(minutes_before)),
            quiet,
        };
        Ok(Config {
            bind,
            metrics_bind,
            data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            intents_dir: self.intents_dir.unwrap_or_else(|| PathBuf::from("intents")),
            routing_file: self
                .routing_file
                .unwrap_or_else(|| PathBuf::from("fixtures/routing.toml")),
            time_zone,
            public_url,
            twilio,
            admin_token,
            sled_cache_bytes: cache_mb * 1024 * 1024,
            workers: self.workers,
            sms: SmsConfig {
                max_segments,
                context_idle_minutes,
                send_rate_per_second,
                per_number,
                skip_signature: false,
            },
            web,
            reminders,
            origin,
        })
    }
}

fn validate_twilio(raw: RawTwilio) -> Result<TwilioConfig, String> {
    let account_sid = raw
        .account_sid
        .ok_or("twilio.account_sid is missing (the AC… string from the Twilio console)")?;
    if !(account_sid.starts_with("AC") && account_sid.len() == 34) {
        return Err("twilio.account_sid must be the 34-character SID starting with AC".into());
    }
    let auth_token = raw.auth_token.ok_or("twilio.auth_token is missing")?;
    if auth_token.trim().is_empty() {
        return Err("twilio.auth_token is empty".into());
    }
    let sender = raw.sender.ok_or(
        "twilio.sender is missing (a number such as +15551234567, or a Messaging Service SID MG…)",
    )?;
    let is_e164 = sender.starts_with('+')
        && (8..=16).contains(&sender.len())
        && sender[1..].bytes().all(|b| b.is_ascii_digit());
    let is_service = sender.starts_with("MG") && sender.len() == 34;
    if !is_e164 && !is_service {
        return Err(format!(
            "twilio.sender = {sender:?} must be an E.164 number (+15551234567) or a Messaging Service SID (MG…)"
        ));
    }
    let api_base = raw
        .api_base
        .unwrap_or_else(|| "https://api.twilio.com".into());
    if Url::parse(&api_base).is_err() {
        return Err(format!("twilio.api_base = {api_base:?} is not a URL"));
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(10);
    if !(1..=120).contains(&timeout_secs) {
        return Err(format!(
            "twilio.timeout_secs = {timeout_secs} must be from 1 to 120"
        ));
    }
    Ok(TwilioConfig {
        account_sid,
        auth_token: Secret(auth_token),
        sender,
        api_base,
        timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml_text: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        if let Some(text) = toml_text {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(toml_text.map(|_| path.as_path()), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_local_and_safe() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert!(config.admin_token.is_none());
        assert!(config.twilio.is_none());
        assert!(config.origin.is_default() || config.origin.file.is_some());
    }

    #[test]
    fn file_then_env_override() {
        let config = load(
            Some("bind = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n[twilio]\naccount_sid = \"AC00000000000000000000000000000000\"\nauth_token = \"secret-token-value\"\nsender = \"+15550001111\"\n"),
            &[("CONCIERGE_BIND", "0.0.0.0:7000"), ("CONCIERGE_TIME_ZONE", "Europe/Berlin")],
        )
        .unwrap();
        assert_eq!(config.bind, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.time_zone.unwrap().name(), "Europe/Berlin");
        assert_eq!(
            config.origin.env,
            vec!["CONCIERGE_BIND", "CONCIERGE_TIME_ZONE"]
        );
        let twilio = config.twilio.unwrap();
        assert_eq!(twilio.auth_token.expose(), "secret-token-value");
        assert!(!format!("{twilio:?}").contains("secret-token-value"));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        // (file, environment, what the error says)
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (Some("bnid = \"x\""), &[], "unknown field `bnid`"),
            (Some("bind = 8080"), &[], "invalid type"),
            (Some("bind = \"localhost\""), &[], "is not an address"),
            (
                Some("time_zone = \"Mars/Base\""),
                &[],
                "not a known time zone",
            ),
            (Some("public_url = \"ftp://x\""), &[], "http or https"),
            (Some("admin_token = \"short\""), &[], "at least 16"),
            (Some("sled_cache_mb = 0"), &[], "out of range"),
            (Some("workers = 0"), &[], "out of range"),
            (
                None,
                &[("CONCIERGE_WORKERS", "two")],
                "whole number of threads",
            ),
            (
                Some("[web]\ntrusted_proxies = [\"10.0.0.0/40\"]"),
                &[],
                "web.trusted_proxies: \"10.0.0.0/40\": the prefix length must be from 0 to 32",
            ),
            (
                Some("[twilio]\naccount_sid = \"nope\""),
                &[],
                "34-character",
            ),
            (None, &[("CONCIERGE_SLED_CACHE_MB", "lots")], "whole number"),
            (
                None,
                &[
                    (
                        "CONCIERGE_TWILIO_ACCOUNT_SID",
                        "AC00000000000000000000000000000000",
                    ),
                    ("CONCIERGE_TWILIO_AUTH_TOKEN", "t"),
                    ("CONCIERGE_TWILIO_SENDER", "555"),
                ],
                "E.164",
            ),
        ];
        for (file, env, expected) in cases {
            let err = load(*file, env).unwrap_err().to_string();
            assert!(err.contains(expected), "{file:?} {env:?}: {err}");
        }
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("concierge.example.toml");
        let config = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.sled_cache_bytes, DEFAULT_SLED_CACHE_MB * 1024 * 1024);
    }

    #[test]
    fn describe_never_shows_secrets() {
        let config = load(
            Some("admin_token = \"0123456789abcdef-admin\"\n[twilio]\naccount_sid = \"AC00000000000000000000000000000000\"\nauth_token = \"tw-secret-xyz\"\nsender = \"+15550001111\"\n"),
            &[],
        )
        .unwrap();
        let text = format!("{} {:?}", config.describe(), config);
        assert!(!text.contains("0123456789abcdef-admin"), "{text}");
        assert!(!text.contains("tw-secret-xyz"), "{text}");
    }
}
