//! Wiring: [`Application::build`] opens the store, migrates, builds the core flows and the
//! router, and binds the listener; [`Application::run_until_stopped`] serves (plain HTTP or
//! TLS) until the shutdown future resolves, then drains in-flight requests.

use crate::config::Config;
use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::accounts::{Accounts, MfaSettings, PasswordRules};
use tessera_core::mfa::passkey::Passkeys;
use tessera_core::jose::KeySealer;
use tessera_core::oauth::keys::KeyRing;
use tessera_core::oauth::provider::{Provider, ProviderConfig};
use tessera_core::outbox::consumer::OutboxConsumer;
use tessera_core::clock::{SharedClock, SystemClock};
use tessera_core::password::PasswordHasher;
use tessera_core::session::SessionPolicy;
use tessera_core::auditor::Auditor;
use tessera_core::vault::{TokenSealer, Vault};
use tessera_store::{ConnectOptions, SqlStore};
use tessera_web::{AppState, WebConfig};

/// Largest request head (request line and headers) a connection may buffer.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Number of cores, bounding concurrent password hashes.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Opens and migrates the database the configuration names.
pub async fn open_store(config: &Config, clock: &SharedClock) -> anyhow::Result<Arc<SqlStore>> {
    crate::files::prepare(config)?;
    let mut opts = ConnectOptions { acquire_timeout: config.db_acquire_timeout, ..ConnectOptions::default() };
    if let Some(n) = config.max_connections {
        opts.max_connections = n;
    }
    let store = SqlStore::connect(&config.database_url, &opts)
        .await
        .with_context(|| "cannot open the database".to_string())?;
    store.migrate(clock.now()).await.context("cannot migrate the database")?;
    Ok(Arc::new(store))
}

/// Everything the server and the CLI run on.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub store: Arc<SqlStore>,
    /// Account flows (their outbox events applied right away by `outbox`).
    pub accounts: Accounts,
    /// The OAuth provider.
    pub provider: Provider,
    /// The outbox consumer (revocations, security events and back-channel logouts that
    /// follow ended sessions and revoked grants).
    pub outbox: OutboxConsumer,
    /// The server's master key.
    pub master_key: [u8; 32],
    /// E-mail: the flows that send mail, and the sender of the mail outbox.
    pub mail: crate::mailer::Mail,
    /// The credential vault (federation keeps upstream tokens through it as its
    /// `TokenKeeper`; token exchange hands them out).
    pub vault: Vault,
    /// Upstream sign-in (its token keeper, the credential vault, is wired by the caller).
    pub federation: tessera_core::federation::Federation,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// Opens the store and builds the account flows and the provider for `issuer`.
pub async fn services(config: &Config, issuer: &str, clock: SharedClock) -> anyhow::Result<Services> {
    let store = open_store(config, &clock).await?;
    let master_key = crate::keys::load_or_create(config.secret_key, &config.data_dir)?;
    let sealer = KeySealer::new(&crate::keys::derive(&master_key, "signing-keys")?)?;
    let keys = Arc::new(KeyRing::load_or_init(store.clone(), sealer, clock.now()).await.context("cannot load the signing keys")?);
    let mut pc = ProviderConfig::new(issuer);
    pc.access_token_ttl = time::Duration::try_from(config.access_token_ttl)?;
    pc.id_token_ttl = time::Duration::try_from(config.id_token_ttl)?;
    pc.refresh_token_ttl = time::Duration::try_from(config.refresh_token_ttl)?;
    pc.resources = config.resources.clone();
    pc.grants.max_lifetime = time::Duration::try_from(config.grant_max_lifetime)?;
    pc.grants.sessions = session_policy(config)?;
    pc.allow_private_backchannel = config.allow_private_backchannel;
    let late_refresher = crate::upstream::LateRefresher::default();
    let vault = vault(config, store.clone(), clock.clone(), &master_key)?.with_refresher(Arc::new(late_refresher.clone()));
    let provider = Provider::new(store.clone(), store.clone(), keys, clock.clone(), pc).with_upstream_tokens(Arc::new(vault.clone()));
    let outbox = OutboxConsumer::new(store.clone(), Arc::new(provider.clone()), clock.clone());
    let clock_for_mail = clock.clone();
    let mut accounts = accounts(config, store.clone(), clock, issuer, &master_key)?.with_events(Arc::new(outbox.clone()));
    if let Some(policy) = config.throttle {
        let key = crate::keys::derive(&master_key, "proof-of-work")?;
        accounts = accounts.with_throttle(tessera_core::throttle::Throttle::new(store.clone(), policy, &key));
    }
    let mail = crate::mailer::Mail::build(config, issuer, store.clone(), &accounts, Arc::new(outbox.clone()), clock_for_mail, &master_key)?;
    let federation = crate::upstream::federation(store.clone(), &accounts, provider.clock().clone(), issuer, &master_key)?
        .with_token_keeper(Arc::new(vault.clone()));
    late_refresher.set(federation.clone());
    Ok(Services { store, accounts, provider, outbox, master_key, mail, vault, federation })
}

/// The credential vault: upstream tokens sealed under the `upstream-tokens` purpose key,
/// audited, dropped from the account page after a recent sign-in. Federation adds its
/// refresher with [`Vault::with_refresher`].
pub fn vault(config: &Config, store: Arc<SqlStore>, clock: SharedClock, master_key: &[u8; 32]) -> anyhow::Result<Vault> {
    let sealer = TokenSealer::new(&crate::keys::derive(master_key, "upstream-tokens")?)?;
    let auditor = Auditor::new(store.clone(), clock.clone());
    Ok(Vault::new(store, sealer, clock, time::Duration::try_from(config.reauth_window)?).with_auditor(auditor))
}

/// Strong-authentication settings: TOTP secrets sealed with a key derived from the master
/// key, and passkeys for `issuer` when it can be a WebAuthn relying party.
pub fn mfa_settings(config: &Config, issuer: &str, master_key: &[u8; 32]) -> anyhow::Result<MfaSettings> {
    let sealer = KeySealer::new(&crate::keys::derive(master_key, "totp-secrets")?)?;
    let passkeys = match Passkeys::for_issuer(issuer, "Tessera") {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(issuer, "{e}; set TESSERA_ISSUER to a URL with a domain name to enable them");
            None
        }
    };
    Ok(MfaSettings {
        sealer: Arc::new(sealer),
        passkeys,
        reauth_window: time::Duration::try_from(config.reauth_window)?,
        totp_issuer: "Tessera".into(),
    })
}

/// The session timeouts from the configuration.
pub fn session_policy(config: &Config) -> anyhow::Result<SessionPolicy> {
    Ok(SessionPolicy {
        idle_timeout: time::Duration::try_from(config.idle_timeout)?,
        absolute_timeout: time::Duration::try_from(config.absolute_timeout)?,
        ..SessionPolicy::default()
    })
}

/// Builds the account flows from the configuration.
pub fn accounts(config: &Config, store: Arc<SqlStore>, clock: SharedClock, issuer: &str, master_key: &[u8; 32]) -> anyhow::Result<Accounts> {
    let hasher = PasswordHasher::new(config.argon, cores())?;
    let policy = session_policy(config)?;
    let rules = PasswordRules { min_chars_single_factor: config.min_password, ..PasswordRules::default() };
    // Load the blocklist now rather than on the first sign-up.
    drop(tokio::task::spawn_blocking(|| {
        let started = std::time::Instant::now();
        let entries = tessera_core::password::blocklist().len();
        tracing::debug!(entries, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "password blocklist loaded");
    }));
    Ok(Accounts::new(store, hasher, clock, policy, rules, mfa_settings(config, issuer, master_key)?))
}

/// A built, bound, not yet serving application.
pub struct Application {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    issuer: String,
    state: AppState,
    store: Arc<SqlStore>,
    outbox: OutboxConsumer,
    mail: crate::mailer::Mail,
    clock: SharedClock,
    tls: Option<RustlsConfig>,
    header_read_timeout: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("addr", &self.addr).field("issuer", &self.issuer).finish()
    }
}

impl Application {
    /// Opens the store, builds everything and binds the listen address (port 0 picks one).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`], with every "now" read from `clock` (tests move time).
    pub async fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let issuer = config.issuer_for(addr);
        let Services { store, accounts, provider, outbox, master_key: master, mail, vault, federation } = services(&config, &issuer, clock.clone()).await?;

        let tls = match &config.tls {
            Some((cert, key)) => Some(
                RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| format!("cannot load TLS certificate {} and key {}", cert.display(), key.display()))?,
            ),
            None => None,
        };
        let web = WebConfig {
            issuer: issuer.clone(),
            signup_enabled: config.signup_enabled,
            trusted_proxies: config.trusted_proxies.clone(),
            csrf_key: crate::keys::derive(&master, "csrf")?,
            min_password_chars: config.min_password,
            request_timeout: config.request_timeout,
            admin_api_key_hash: config.admin_api_key.as_deref().map(|k| tessera_core::secret::TokenHash::of(k.as_bytes())),
        };
        let state = AppState::new(accounts, provider, web).with_email(mail.flows.clone()).with_vault(vault).with_federation(federation);
        Ok(Self { listener, addr, issuer, state, store, outbox, mail, clock, tls, header_read_timeout: config.header_read_timeout })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The account flows (for printing the setup link).
    pub fn accounts(&self) -> &Accounts {
        self.state.accounts()
    }

    /// The OAuth provider.
    pub fn provider(&self) -> &Provider {
        self.state.provider()
    }

    /// The credential vault.
    pub fn vault(&self) -> Option<&Vault> {
        self.state.vault()
    }

    /// Applies the outbox events a stopped server (this one before a crash, or another node)
    /// left behind, then serves until `shutdown` resolves, then stops accepting and drains
    /// for up to 10 s.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        crate::jobs::apply_outbox(&self.outbox, time::Duration::ZERO).await;
        let app = tessera_web::router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let handle: Handle<SocketAddr> = Handle::new();
        let on_signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            on_signal.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let purge = tokio::spawn(purge_sessions(self.state.accounts().clone(), self.state.federation().cloned()));
        let jobs = crate::jobs::spawn(self.state.provider().clone(), self.outbox.clone());
        let mail_jobs = crate::jobs::spawn_mail(self.mail.clone(), self.clock.clone());
        let result = match self.tls {
            Some(tls) => {
                let mut server = axum_server::from_tcp_rustls(self.listener, tls)?.handle(handle);
                server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(self.header_read_timeout).max_buf_size(MAX_HEADER_BYTES);
                server.serve(app).await
            }
            None => {
                let mut server = axum_server::from_tcp(self.listener)?.handle(handle);
                server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(self.header_read_timeout).max_buf_size(MAX_HEADER_BYTES);
                server.serve(app).await
            }
        };
        purge.abort();
        jobs.abort();
        mail_jobs.abort();
        self.store.close().await;
        result.context("server failed")
    }
}

/// Deletes timed-out sessions (and lapsed upstream sign-ins and links) every ten minutes.
async fn purge_sessions(accounts: Accounts, federation: Option<tessera_core::federation::Federation>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Some(f) = &federation
            && let Err(e) = f.purge_expired().await
        {
            tracing::warn!(error = %e, "lapsed upstream sign-ins could not be deleted");
        }
        match accounts.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "expired sessions could not be deleted"),
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
