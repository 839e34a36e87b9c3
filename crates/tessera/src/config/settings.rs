//! The settings file's shape (every field has a default) and the deserializers its values
//! use.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The settings file's shape. Every field has a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on (`TESSERA_LISTEN`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub listen: Option<String>,
    /// Public base URL (`TESSERA_ISSUER`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub issuer: Option<String>,
    /// Data directory (`TESSERA_DATA_DIR`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub data_dir: Option<String>,
    /// Database URL (`TESSERA_DATABASE_URL`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub database_url: Option<String>,
    /// Base64 of 32 random bytes protecting CSRF tokens and keys at rest (`TESSERA_SECRET_KEY`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub secret_key: Option<String>,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[tls]`.
    pub tls: TlsSettings,
    /// `[session]`.
    pub session: SessionSettings,
    /// `[password]`.
    pub password: PasswordSettings,
    /// `[signup]`.
    pub signup: SignupSettings,
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[oauth]`.
    pub oauth: OAuthSettings,
    /// `[admin]`.
    pub admin: AdminSettings,
    /// `[throttle]`.
    pub throttle: ThrottleSettings,
    /// `[email]`.
    pub email: super::email::EmailSettings,
}

/// `[throttle]`: brute-force defences on sign-in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Turn throttling off (default on).
    pub enabled: Option<bool>,
    /// Failures for one account before a proof of work is required (default 10).
    pub account_failures: Option<i64>,
    /// Failures from one IP before it is delayed (default 30).
    pub ip_failures: Option<i64>,
    /// Counting window (default 1h).
    pub window: Option<DurationSetting>,
    /// Longest delay (default 15m).
    pub max_delay: Option<DurationSetting>,
    /// Proof-of-work difficulty in bits (default 18, about a second in a browser).
    pub pow_bits: Option<u8>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// A bearer key for the admin API (`TESSERA_ADMIN__API_KEY[_FILE]`); at least 32 characters.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub api_key: Option<String>,
}

/// `[oauth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSettings {
    /// Access token lifetime (default 5m).
    pub access_token_ttl: Option<DurationSetting>,
    /// ID token lifetime (default 5m).
    pub id_token_ttl: Option<DurationSetting>,
    /// Refresh token lifetime (default 30d).
    pub refresh_token_ttl: Option<DurationSetting>,
    /// Absolute lifetime of a grant, however often it is refreshed (default 90d; a client
    /// may set its own).
    pub grant_max_lifetime: Option<DurationSetting>,
    /// API resource identifiers tokens may be issued for (RFC 8707 `resource`).
    #[serde(deserialize_with = "string_list")]
    pub resources: Vec<String>,
    /// Let back-channel logout URIs reach private, loopback and link-local addresses
    /// (default false; for development and tests).
    pub allow_private_backchannel: Option<bool>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// Longest time a request may take (e.g. `30s`).
    pub request_timeout: Option<DurationSetting>,
    /// Longest time a client may take to send its request headers.
    pub header_read_timeout: Option<DurationSetting>,
}

/// `[tls]`: when both are set, `serve` terminates TLS itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub cert_file: Option<String>,
    /// PEM private key.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub key_file: Option<String>,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session unused for this long ends (default 8h).
    pub idle_timeout: Option<DurationSetting>,
    /// A session ends this long after sign-in (default 14d).
    pub absolute_timeout: Option<DurationSetting>,
    /// Sensitive account actions need a sign-in at most this old (default 10m).
    pub reauth_window: Option<DurationSetting>,
}

/// `[password]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Argon2id memory in KiB (default 19456).
    pub memory_kib: Option<u32>,
    /// Argon2id passes (default 2).
    pub iterations: Option<u32>,
    /// Argon2id lanes (default 1).
    pub parallelism: Option<u32>,
    /// Minimum length when the password is the only factor (default 15).
    pub min_length: Option<usize>,
}

/// `[signup]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupSettings {
    /// Whether people may create their own accounts (default false).
    pub enabled: Option<bool>,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Largest connection pool.
    pub max_connections: Option<u32>,
    /// How long a request waits for a connection or a lock before it is answered 503.
    pub acquire_timeout: Option<DurationSetting>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `json` (default) or `text`.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub format: Option<String>,
    /// A `tracing` filter such as `info` or `tessera=debug` (default `info`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub level: Option<String>,
}

/// A duration written as `90`, `"90s"`, `"15m"`, `"8h"` or `"14d"`.
#[derive(Debug, Clone, Copy)]
pub struct DurationSetting(pub Duration);

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Self).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `90`, `"90s"`, `"15m"`, `"8h"` or `"14d"`.
pub fn parse_duration(t: &str) -> Result<Duration, String> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {t:?}: use e.g. 30s, 15m, 8h or 14d"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("invalid duration {t:?}: use e.g. 30s, 15m, 8h or 14d")),
    };
    Ok(Duration::from_secs(secs))
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|r| match r {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::B(b) => b.to_string(),
    }))
}

fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect(),
        Raw::Many(v) => v,
    })
}
