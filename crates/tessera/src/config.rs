//! Configuration: defaults, then an optional TOML file, then `TESSERA_*` environment
//! variables (which win). Any key can be read from a file named by `<NAME>_FILE`. Unknown
//! keys are refused with a message naming them. The raw settings are validated once into a
//! [`Config`] that is passed explicitly; nothing reads the environment after start.

use anyhow::{Context, bail};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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

/// Top-level keys and the environment variables that set them directly.
const TOP_LEVEL: &[&str] = &["listen", "issuer", "data_dir", "database_url", "secret_key"];

/// Environment names (after `TESSERA_`) that end in `_FILE` because the setting is a path.
const LITERAL_FILE_KEYS: &[&str] = &["TLS__CERT_FILE", "TLS__KEY_FILE"];

/// Reads the file (if any) and overlays the environment.
pub fn load_settings(file: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<Settings> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read configuration file {}", path.display()))?;
            toml::from_str::<toml::Table>(&text).with_context(|| format!("configuration file {} is not valid TOML", path.display()))?
        }
        None => toml::Table::new(),
    };
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("TESSERA_") else { continue };
        if rest.starts_with("TEST_") {
            continue; // variables of the test suites, not settings
        }
        // Settings whose own name ends in _FILE (paths) are taken literally.
        let literal = LITERAL_FILE_KEYS.contains(&rest);
        let (key, value) = match rest.strip_suffix("_FILE").filter(|_| !literal) {
            Some(k) => {
                let text = std::fs::read_to_string(raw).with_context(|| format!("{name}: cannot read {raw}"))?;
                (k, text.trim_end_matches(['\n', '\r']).to_owned())
            }
            None => (rest, raw.clone()),
        };
        let value = env_value(&value);
        let lower = key.to_ascii_lowercase();
        match lower.split_once("__") {
            None if TOP_LEVEL.contains(&lower.as_str()) => {
                table.insert(lower, value);
            }
            None => bail!("unknown environment variable {name}: expected TESSERA_LISTEN, TESSERA_ISSUER, TESSERA_DATA_DIR, TESSERA_DATABASE_URL, TESSERA_SECRET_KEY or TESSERA_<SECTION>__<KEY>"),
            Some((section, field)) => {
                let entry = table.entry(section.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(t) = entry.as_table_mut() else { bail!("{name}: [{section}] is not a section") };
                t.insert(field.to_owned(), value);
            }
        }
    }
    toml::Value::Table(table).try_into::<Settings>().map_err(|e| anyhow::anyhow!("configuration error: {}", e.message()))
}

/// An environment value as TOML: booleans, numbers and arrays are typed, anything else is text.
fn env_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    if (trimmed.starts_with('[') || trimmed == "true" || trimmed == "false" || trimmed.parse::<i64>().is_ok())
        && let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
            && let Some(v) = t.get("v") {
                return v.clone();
            }
    toml::Value::String(raw.to_owned())
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The issuer, if configured; otherwise derived from the bound address.
    pub issuer: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// The server's secret key, if configured (otherwise kept in the data directory).
    pub secret_key: Option<[u8; 32]>,
    /// TLS certificate and key, when `serve` terminates TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Trusted reverse proxies.
    pub trusted_proxies: Vec<IpNet>,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Header read timeout.
    pub header_read_timeout: Duration,
    /// Session idle timeout.
    pub idle_timeout: Duration,
    /// Session absolute timeout.
    pub absolute_timeout: Duration,
    /// Re-authentication window for sensitive account actions.
    pub reauth_window: Duration,
    /// Argon2id cost.
    pub argon: tessera_core::password::ArgonCost,
    /// Minimum password length (single factor).
    pub min_password: usize,
    /// Whether sign-up is open.
    pub signup_enabled: bool,
    /// Largest pool.
    pub max_connections: Option<u32>,
    /// How long to wait for a database connection or lock before answering 503.
    pub db_acquire_timeout: Duration,
    /// Log format is JSON.
    pub log_json: bool,
    /// Log filter.
    pub log_level: String,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// ID token lifetime.
    pub id_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// Absolute grant lifetime (default for clients without their own).
    pub grant_max_lifetime: Duration,
    /// Registered API resources.
    pub resources: Vec<String>,
    /// Back-channel logout may reach private, loopback and link-local addresses.
    pub allow_private_backchannel: bool,
    /// Admin API key, if configured.
    pub admin_api_key: Option<String>,
    /// Sign-in throttling, if enabled.
    pub throttle: Option<tessera_core::throttle::ThrottlePolicy>,
}

impl Config {
    /// Validates settings into a configuration.
    pub fn from_settings(s: Settings) -> anyhow::Result<Self> {
        let listen: SocketAddr = s
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .context("listen: expected an address such as 127.0.0.1:8080")?;
        let issuer = match s.issuer {
            Some(i) => Some(validate_issuer(&i)?),
            None => None,
        };
        let data_dir = PathBuf::from(s.data_dir.unwrap_or_else(|| "./tessera-data".into()));
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
        tessera_store::DatabaseKind::parse(&database_url).map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
        let secret_key = match s.secret_key {
            Some(k) => Some(decode_key(&k).context("secret_key: expected base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")?),
            None => None,
        };
        let tls = match (s.tls.cert_file, s.tls.key_file) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (None, None) => None,
            _ => bail!("tls: set both cert_file and key_file, or neither"),
        };
        let trusted_proxies = s
            .server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                    .with_context(|| format!("server.trusted_proxies: {p:?} is not an IP address or CIDR"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let defaults = tessera_core::password::ArgonCost::default();
        let argon = tessera_core::password::ArgonCost {
            memory_kib: s.password.memory_kib.unwrap_or(defaults.memory_kib),
            iterations: s.password.iterations.unwrap_or(defaults.iterations),
            parallelism: s.password.parallelism.unwrap_or(defaults.parallelism),
        };
        let min_password = s.password.min_length.unwrap_or(15);
        if !(8..=64).contains(&min_password) {
            bail!("password.min_length: must be between 8 and 64");
        }
        let log_json = match s.log.format.as_deref() {
            None | Some("json") => true,
            Some("text") => false,
            Some(other) => bail!("log.format: {other:?} is not json or text"),
        };
        let dur = |d: Option<DurationSetting>, default: u64| d.map_or(Duration::from_secs(default), |d| d.0);
        let idle_timeout = dur(s.session.idle_timeout, 8 * 3600);
        let absolute_timeout = dur(s.session.absolute_timeout, 14 * 86_400);
        if idle_timeout.is_zero() || absolute_timeout.is_zero() {
            bail!("session timeouts must be longer than zero");
        }
        if s.database.acquire_timeout.as_ref().is_some_and(|d| d.0.is_zero()) {
            bail!("database.acquire_timeout must be longer than zero");
        }
        Ok(Self {
            listen,
            issuer,
            data_dir,
            database_url,
            secret_key,
            tls,
            trusted_proxies,
            request_timeout: dur(s.server.request_timeout, 30),
            header_read_timeout: dur(s.server.header_read_timeout, 10),
            idle_timeout,
            absolute_timeout,
            reauth_window: dur(s.session.reauth_window, 600),
            argon,
            min_password,
            signup_enabled: s.signup.enabled.unwrap_or(false),
            max_connections: s.database.max_connections,
            db_acquire_timeout: s.database.acquire_timeout.map_or(tessera_store::DEFAULT_ACQUIRE_TIMEOUT, |d| d.0),
            log_json,
            log_level: s.log.level.unwrap_or_else(|| "info".into()),
            access_token_ttl: dur(s.oauth.access_token_ttl, 300),
            id_token_ttl: dur(s.oauth.id_token_ttl, 300),
            refresh_token_ttl: dur(s.oauth.refresh_token_ttl, 30 * 86_400),
            grant_max_lifetime: match dur(s.oauth.grant_max_lifetime, 90 * 86_400) {
                d if d.is_zero() => bail!("oauth.grant_max_lifetime must be longer than zero"),
                d => d,
            },
            resources: s.oauth.resources,
            allow_private_backchannel: s.oauth.allow_private_backchannel.unwrap_or(false),
            throttle: if s.throttle.enabled.unwrap_or(true) {
                let d = tessera_core::throttle::ThrottlePolicy::default();
                let to_time = |x: Option<DurationSetting>, default: time::Duration| {
                    x.and_then(|v| time::Duration::try_from(v.0).ok()).unwrap_or(default)
                };
                let p = tessera_core::throttle::ThrottlePolicy {
                    account_threshold: s.throttle.account_failures.unwrap_or(d.account_threshold),
                    ip_threshold: s.throttle.ip_failures.unwrap_or(d.ip_threshold),
                    window: to_time(s.throttle.window, d.window),
                    max_delay: to_time(s.throttle.max_delay, d.max_delay),
                    pow_bits: s.throttle.pow_bits.unwrap_or(d.pow_bits),
                    pow_ttl: d.pow_ttl,
                };
                if p.account_threshold < 1 || p.ip_threshold < 1 || p.pow_bits > 28 {
                    bail!("throttle: thresholds must be at least 1 and pow_bits at most 28");
                }
                Some(p)
            } else {
                None
            },
            admin_api_key: match s.admin.api_key {
                Some(k) if k.len() < 32 => bail!("admin.api_key: use at least 32 random characters"),
                other => other,
            },
        })
    }

    /// Loads and validates from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")).collect();
        Self::from_settings(load_settings(file, &env)?)
    }

    /// The issuer for a server bound to `bound`: the configured one, or
    /// `http(s)://localhost:<port>` on loopback (WebAuthn refuses IP addresses as RP ids),
    /// or `http(s)://<address>` otherwise.
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        if let Some(i) = &self.issuer {
            return i.clone();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if bound.ip().is_loopback() {
            format!("{scheme}://localhost:{}", bound.port())
        } else {
            format!("{scheme}://{bound}")
        }
    }
}

fn validate_issuer(i: &str) -> anyhow::Result<String> {
    let i = i.trim_end_matches('/');
    let rest = i
        .strip_prefix("https://")
        .or_else(|| i.strip_prefix("http://"))
        .context("issuer: must start with https:// (or http:// for local use)")?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        bail!("issuer: must be a URL without query or fragment, e.g. https://id.example.com");
    }
    Ok(i.to_owned())
}

fn decode_key(k: &str) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(k.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k.trim()))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("the key is {} bytes, not 32", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_serve_sqlite_on_loopback() {
        let c = Config::from_settings(load_settings(None, &env(&[])).unwrap()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer_for(c.listen), "http://localhost:8080");
        assert!(c.database_url.starts_with("sqlite://"));
        assert_eq!(c.argon.memory_kib, 19_456);
        assert!(!c.signup_enabled);
    }

    #[test]
    fn environment_wins_over_file_and_reaches_sections() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tessera.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[signup]\nenabled = false\n[session]\nidle_timeout = \"1h\"\n").unwrap();
        let s = load_settings(
            Some(&file),
            &env(&[("TESSERA_LISTEN", "127.0.0.1:9100"), ("TESSERA_SIGNUP__ENABLED", "true"), ("TESSERA_SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")]),
        )
        .unwrap();
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert!(c.signup_enabled);
        assert_eq!(c.idle_timeout, Duration::from_secs(3600));
        assert_eq!(c.trusted_proxies.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_come_from_file_variables() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("key");
        std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
        let s = load_settings(None, &env(&[("TESSERA_SECRET_KEY_FILE", key_file.to_str().unwrap())])).unwrap();
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.secret_key.unwrap()[31], 31);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = load_settings(None, &env(&[("TESSERA_SESSION__IDLE", "1h")])).unwrap_err().to_string();
        assert!(e.contains("idle"), "{e}");
        let e = load_settings(None, &env(&[("TESSERA_LISTN", "x")])).unwrap_err().to_string();
        assert!(e.contains("TESSERA_LISTN"), "{e}");
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(&file, "[tls]\ncert = \"x\"\n").unwrap();
        let e = load_settings(Some(&file), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("cert"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |pairs: &[(&str, &str)]| Config::from_settings(load_settings(None, &env(pairs)).unwrap()).is_err();
        assert!(bad(&[("TESSERA_LISTEN", "nowhere")]));
        assert!(bad(&[("TESSERA_ISSUER", "ftp://x")]));
        assert!(bad(&[("TESSERA_DATABASE_URL", "mysql://x")]));
        assert!(bad(&[("TESSERA_TLS__CERT_FILE", "/x")]));
        assert!(bad(&[("TESSERA_SECRET_KEY", "short")]));
    }
}
