//! Mail leaving the server: the SMTP transport (`lettre` on rustls with aws-lc-rs), the
//! development transport that writes each message to `<data_dir>/outbox/` (0600) instead,
//! and the letters' templates (askama, text + HTML, in `templates/mail/`). Core's
//! `MailSender` drives them from the durable mail outbox (see `jobs::spawn_mail`).
//!
//! Templates live here rather than in the web crate: mail is not an HTTP answer, and the
//! binary is where the transport that sends them lives. askama escapes the `.html` ones and
//! leaves the `.txt` ones as they are.

use crate::config::{Config, EmailConfig, SmtpSecurity};
use std::sync::Arc;
use tessera_core::accounts::{Accounts, PasswordRules};
use tessera_core::clock::SharedClock;
use tessera_core::jose::KeySealer;
use tessera_core::mail::MailOutbox;
use tessera_core::mail::flows::{EmailDeps, EmailFlows};
use tessera_core::mail::sender::MailSender;
use tessera_core::outbox::ApplyEvents;
use tessera_store::SqlStore;
use anyhow::Context;
use askama::Template;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_core::CoreError;
use tessera_core::mail::{Letter, MailMessage, MailRenderer, MailTransport, TransportError};
use tessera_core::user::Email;

/// How long one SMTP conversation may take (shorter than the outbox lease).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the transport the configuration names: SMTP, or the outbox directory.
pub fn transport(config: &EmailConfig, data_dir: &Path) -> anyhow::Result<std::sync::Arc<dyn MailTransport>> {
    let from: Mailbox = config.from.parse().map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
    Ok(match &config.smtp {
        Some(url) => {
            let mut builder = match url.security {
                SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.as_str()),
                SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&url.host).context("email.smtp_url: STARTTLS")?,
                SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&url.host).context("email.smtp_url: TLS")?,
            }
            .port(url.port)
            .timeout(Some(SMTP_TIMEOUT));
            if let Some((user, password)) = &url.credentials {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            tracing::debug!(host = %url.host, port = url.port, security = ?url.security, "mail goes out by SMTP");
            std::sync::Arc::new(SmtpMail { from, smtp: builder.build() })
        }
        None => {
            let dir = data_dir.join("outbox");
            tracing::debug!(dir = %dir.display(), "no email.smtp_url: mail is written to the outbox directory");
            std::sync::Arc::new(DirectoryMail { from, dir })
        }
    })
}

/// The MIME message (text and HTML alternatives) for `m`.
fn mime(from: &Mailbox, m: &MailMessage) -> Result<Message, TransportError> {
    let to: Mailbox = m.to.parse().map_err(|e| TransportError(format!("recipient address: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        .map_err(|e| TransportError(format!("message: {e}")))
}

/// Sends by SMTP.
struct SmtpMail {
    from: Mailbox,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
}

#[async_trait]
impl MailTransport for SmtpMail {
    async fn send(&self, m: &MailMessage) -> Result<(), TransportError> {
        let message = mime(&self.from, m)?;
        self.smtp.send(message).await.map_err(|e| TransportError(format!("SMTP: {e}")))?;
        tracing::info!(to = %m.to, subject = %m.subject, "mail sent");
        Ok(())
    }
}

/// Writes each message to its own file (0600) in a directory, for development set-ups
/// without an SMTP server, and logs that it did — recipient and subject only, since the
/// body's link is the secret (read it from the file).
struct DirectoryMail {
    from: Mailbox,
    dir: PathBuf,
}

#[async_trait]
impl MailTransport for DirectoryMail {
    async fn send(&self, m: &MailMessage) -> Result<(), TransportError> {
        let bytes = mime(&self.from, m)?.formatted();
        let name = format!("{}-{}.eml", time::OffsetDateTime::now_utc().unix_timestamp(), uuid::Uuid::now_v7().simple());
        let path = self.dir.join(name);
        let dir = self.dir.clone();
        let written = path.clone();
        tokio::task::spawn_blocking(move || write_private(&dir, &written, &bytes))
            .await
            .map_err(|e| TransportError(format!("outbox directory: {e}")))?
            .map_err(|e| TransportError(format!("outbox directory {}: {e}", path.display())))?;
        tracing::info!(to = %m.to, subject = %m.subject, file = %path.display(), "mail written to the outbox directory (no SMTP server configured)");
        Ok(())
    }
}

fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        builder.mode(0o700);
        options.mode(0o600);
    }
    builder.create(dir)?;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct ResetText<'a> {
    name: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct ResetHtml<'a> {
    name: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyText<'a> {
    name: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyHtml<'a> {
    name: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/sign_in.txt")]
struct SignInText<'a> {
    name: &'a str,
    link: &'a str,
    code: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/sign_in.html")]
struct SignInHtml<'a> {
    name: &'a str,
    link: &'a str,
    code: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/address_changed.txt")]
struct ChangedText<'a> {
    new_address: &'a str,
}

#[derive(Template)]
#[template(path = "mail/address_changed.html")]
struct ChangedHtml<'a> {
    new_address: &'a str,
}

/// Renders letters with the templates in `templates/mail/`.
#[derive(Debug, Default)]
pub struct Templates;

impl MailRenderer for Templates {
    fn render(&self, to: &Email, letter: &Letter) -> Result<MailMessage, CoreError> {
        let fail = |e: askama::Error| CoreError::Internal(format!("mail template: {e}"));
        let name = to.as_str();
        let (subject, text, html) = match letter {
            Letter::PasswordReset { link, minutes } => (
                "Reset your password",
                ResetText { name, link, minutes: *minutes }.render().map_err(fail)?,
                ResetHtml { name, link, minutes: *minutes }.render().map_err(fail)?,
            ),
            Letter::VerifyEmail { link, minutes } => (
                "Confirm your e-mail address",
                VerifyText { name, link, minutes: *minutes }.render().map_err(fail)?,
                VerifyHtml { name, link, minutes: *minutes }.render().map_err(fail)?,
            ),
            Letter::SignIn { link, code, minutes } => (
                "Your sign-in code",
                SignInText { name, link, code, minutes: *minutes }.render().map_err(fail)?,
                SignInHtml { name, link, code, minutes: *minutes }.render().map_err(fail)?,
            ),
            Letter::AddressChanged { new_address } => (
                "Your e-mail address was changed",
                ChangedText { new_address }.render().map_err(fail)?,
                ChangedHtml { new_address }.render().map_err(fail)?,
            ),
        };
        Ok(MailMessage { to: to.as_str().to_owned(), subject: subject.to_owned(), text, html })
    }
}

/// The e-mail side of a running server: the flows that queue mail, the sender that empties
/// the mail outbox, and the outbox itself (for purging).
#[derive(Clone)]
pub struct Mail {
    /// Password reset (and the other flows that send mail).
    pub flows: EmailFlows,
    /// Sends what the mail outbox holds.
    pub sender: MailSender,
    /// The mail outbox.
    pub outbox: Arc<dyn MailOutbox>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("flows", &self.flows).finish_non_exhaustive()
    }
}

impl Mail {
    /// Builds the flows for `issuer` (links point there), the transport the configuration
    /// names and the sender; queued messages are sealed with a key derived from the master key.
    pub fn build(
        config: &Config,
        issuer: &str,
        store: Arc<SqlStore>,
        accounts: &Accounts,
        events: Arc<dyn ApplyEvents>,
        clock: SharedClock,
        master_key: &[u8; 32],
    ) -> anyhow::Result<Self> {
        let sealer = Arc::new(KeySealer::new(&crate::keys::derive(master_key, "mail-outbox")?)?);
        let deps = EmailDeps {
            store: store.clone(),
            challenges: store.clone(),
            outbox: store.clone(),
            renderer: Arc::new(Templates),
            sealer: sealer.clone(),
            hasher: accounts.password_hasher().clone(),
            rules: PasswordRules { min_chars_single_factor: config.min_password, ..PasswordRules::default() },
            clock: clock.clone(),
            events: Some(events),
            accounts: accounts.clone(),
        };
        let flows = EmailFlows::new(deps, issuer).with_reset_lifetime(time::Duration::try_from(config.email.reset_link_lifetime)?)
            .with_sign_in(config.email.magic_link);
        let sender = MailSender::new(store.clone(), transport(&config.email, &config.data_dir)?, sealer, clock);
        Ok(Self { flows, sender, outbox: store })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_letter_carries_the_link_in_both_bodies_and_escapes_html() {
        let to = Email::parse("a<b>@example.com").unwrap();
        let link = "https://id.example.com/login/reset?token=abc&x=1".to_owned();
        let m = Templates.render(&to, &Letter::PasswordReset { link: link.clone(), minutes: 15 }).unwrap();
        assert_eq!((m.to.as_str(), m.subject.as_str()), ("a<b>@example.com", "Reset your password"));
        assert!(m.text.contains(&link) && m.text.contains("15 minutes"));
        assert!(m.html.contains("token=abc&#38;x=1") || m.html.contains("token=abc&amp;x=1"), "{}", m.html);
        assert!(m.html.contains("a&#60;b&#62;") || m.html.contains("a&lt;b&gt;"), "escaped: {}", m.html);
    }

    #[tokio::test]
    async fn without_smtp_each_message_is_a_private_file() {
        let dir = std::env::temp_dir().join(format!("tessera-mail-{}", uuid::Uuid::new_v4()));
        let config = EmailConfig::from_settings(crate::config::EmailSettings::default()).unwrap();
        let t = transport(&config, &dir).unwrap();
        let m = MailMessage { to: "alice@example.com".into(), subject: "Hi".into(), text: "secret-link".into(), html: "<p>secret-link</p>".into() };
        t.send(&m).await.unwrap();
        t.send(&m).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 2, "one file per message");
        let body = std::fs::read_to_string(&files[0]).unwrap();
        assert!(body.contains("To: alice@example.com") && body.contains("secret-link"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
