//! `[email]`: how mail leaves the server. `smtp_url` (`TESSERA_EMAIL__SMTP_URL`) names the
//! SMTP server — `smtp://host:port` (plain, for local test servers), `smtp+starttls://host:587`
//! or `smtps://host:465`, with optional `user:password@` (percent-encoded); `from`
//! (`TESSERA_EMAIL__FROM`) is the sender. Without `smtp_url`, messages are written to
//! `<data_dir>/outbox/` and logged (recipient and subject only: the link is the secret).
//! `magic_link = true` (`TESSERA_EMAIL__MAGIC_LINK`) offers sign-in by a mailed one-time code
//! or link on the login page.

use anyhow::{Context, bail};
use serde::Deserialize;

/// `[email]` as written in the settings file or the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// The SMTP server's URL (`TESSERA_EMAIL__SMTP_URL[_FILE]`: it may hold a password).
    pub smtp_url: Option<String>,
    /// The sender, e.g. `Tessera <id@example.com>` (default `Tessera <tessera@localhost>`).
    pub from: Option<String>,
    /// How long a password-reset link works (default 15m, at most 1h).
    pub reset_link_lifetime: Option<super::DurationSetting>,
    /// Offer sign-in by a mailed one-time code or link on the login page
    /// (`TESSERA_EMAIL__MAGIC_LINK`, default false).
    pub magic_link: Option<bool>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS (`smtp://`): only for local test servers.
    Plain,
    /// STARTTLS, required (`smtp+starttls://`, default port 587).
    StartTls,
    /// TLS from the first byte (`smtps://`, default port 465).
    Tls,
}

/// A parsed `smtp_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// Connection security.
    pub security: SmtpSecurity,
    /// Host name (or address).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name and password, if any.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|c| c.0.as_str()))
            .finish_non_exhaustive()
    }
}

impl SmtpUrl {
    /// Parses `smtp://`, `smtp+starttls://` or `smtps://` URLs.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(raw.trim()).context("email.smtp_url: expected smtp://host:port, smtp+starttls://host:587 or smtps://host:465")?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::Plain, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::Tls, 465),
            other => bail!("email.smtp_url: unknown scheme {other:?} (use smtp, smtp+starttls or smtps)"),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).context("email.smtp_url: no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if url.path().trim_matches('/') != "" || url.query().is_some() || url.fragment().is_some() {
            bail!("email.smtp_url: only scheme, credentials, host and port are allowed");
        }
        let decode = |s: &str| -> anyhow::Result<String> {
            let bytes: Vec<u8> = percent_decode(s);
            String::from_utf8(bytes).context("email.smtp_url: credentials are not UTF-8")
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        Ok(Self { security, host, port: url.port().unwrap_or(default_port), credentials })
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b.get(i), b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    out
}

/// The validated `[email]` settings.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// The SMTP server; `None` writes messages to `<data_dir>/outbox/`.
    pub smtp: Option<SmtpUrl>,
    /// The sender mailbox.
    pub from: String,
    /// How long a password-reset link works.
    pub reset_link_lifetime: std::time::Duration,
    /// Whether sign-in by a mailed code or link is offered.
    pub magic_link: bool,
}

impl EmailConfig {
    /// Validates `[email]`.
    pub fn from_settings(s: EmailSettings) -> anyhow::Result<Self> {
        let smtp = s.smtp_url.as_deref().filter(|u| !u.trim().is_empty()).map(SmtpUrl::parse).transpose()?;
        let from = s.from.unwrap_or_else(|| "Tessera <tessera@localhost>".into());
        from.parse::<lettre::message::Mailbox>().map_err(|e| anyhow::anyhow!("email.from: {from:?} is not a mailbox ({e})"))?;
        let reset_link_lifetime = s.reset_link_lifetime.map_or(std::time::Duration::from_secs(900), |d| d.0);
        if reset_link_lifetime.as_secs() < 60 || reset_link_lifetime.as_secs() > 3600 {
            bail!("email.reset_link_lifetime: between 1m and 1h");
        }
        Ok(Self { smtp, from, reset_link_lifetime, magic_link: s.magic_link.unwrap_or(false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_of_each_kind_parse() {
        let plain = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((plain.security, plain.host.as_str(), plain.port, plain.credentials), (SmtpSecurity::Plain, "127.0.0.1", 2525, None));
        let starttls = SmtpUrl::parse("smtp+starttls://mail.example.com").unwrap();
        assert_eq!((starttls.security, starttls.port), (SmtpSecurity::StartTls, 587));
        let tls = SmtpUrl::parse("smtps://bob:p%40ss%3Aword@mail.example.com:465").unwrap();
        assert_eq!((tls.security, tls.port), (SmtpSecurity::Tls, 465));
        assert_eq!(tls.credentials, Some(("bob".into(), "p@ss:word".into())));
        assert!(!format!("{tls:?}").contains("p@ss"), "the password stays out of Debug");
    }

    #[test]
    fn bad_smtp_urls_are_refused() {
        for bad in ["http://mail.example.com", "smtp://", "smtp://host:25/path", "smtp://host?tls=1", "not a url"] {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_must_be_a_mailbox_and_defaults() {
        let c = EmailConfig::from_settings(EmailSettings::default()).unwrap();
        assert_eq!(c.from, "Tessera <tessera@localhost>");
        assert!(c.smtp.is_none());
        let bad = EmailSettings { from: Some("not an address".into()), ..EmailSettings::default() };
        assert!(EmailConfig::from_settings(bad).is_err());
    }
}
