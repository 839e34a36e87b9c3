//! Configuration: defaults, then an optional TOML file, then `TESSERA_*` environment
//! variables (which win). Any key can be read from a file named by `<NAME>_FILE`. Unknown
//! keys are refused with a message naming them. The raw settings are validated once into a
//! [`Config`] that is passed explicitly; nothing reads the environment after start.

use anyhow::{Context, bail};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod email;
mod settings;
pub use email::{EmailConfig, EmailSettings, SmtpSecurity, SmtpUrl};
pub use settings::*;

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
    /// `[email]`: SMTP or the outbox directory.
    pub email: EmailConfig,
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
        let email = EmailConfig::from_settings(s.email)?;
        Ok(Self {
            email,
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
mod tests;
