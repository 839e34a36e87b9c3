//! Command-line interface (SPEC §2). Each administrative command prints one JSON object on
//! stdout, or exits non-zero with a message on stderr. Commands use the same configuration
//! as `serve` and work while the server runs (SQLite WAL + busy timeout; PostgreSQL).

use crate::config::Config;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_core::accounts::{Accounts, CreateUser};
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::oauth::upstream_access::UpstreamAllowance;
use tessera_core::clock::{SharedClock, SystemClock};
use tessera_core::secret::Password;
use tessera_core::session::RequestContext;
use tessera_core::store::AuditQuery;
use tessera_core::user::User;
use tessera_web::views::UserView;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Tessera: identity provider and authorization server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// TOML configuration file (environment variables win over it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Run the server with a demo app and a protected API (see README).
    Demo {
        /// Port of the demo app on 127.0.0.1 (0 picks one).
        #[arg(long, default_value_t = 8081)]
        port: u16,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage upstream identity providers ("Continue with …").
    #[command(subcommand)]
    Idp(crate::cli_idp::IdpCommand),
}

/// `tessera client …`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
pub enum ClientCommand {
    /// Register a client; prints its id and (for confidential clients) its secret, once.
    Create(ClientArgs),
    /// List clients.
    List,
    /// Delete a client and every grant it holds.
    Delete {
        /// The client id.
        #[arg(long)]
        client_id: String,
    },
}

/// Arguments of `tessera client create`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Display name (shown on the consent screen).
    #[arg(long)]
    pub name: String,
    /// Redirect URI (repeatable; matched exactly).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE only).
    #[arg(long)]
    pub public: bool,
    /// Grant type (repeatable; default authorization_code and refresh_token).
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Allowed scope (repeatable; default openid profile email offline_access).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// First-party client: no consent screen.
    #[arg(long)]
    pub skip_consent: bool,
    /// Require multi-factor authentication for every sign-in to this client.
    #[arg(long)]
    pub require_mfa: bool,
    /// Let this client introspect every token and follow every revocation-feed event (a
    /// trusted resource server); otherwise it sees only its own tokens and those for its
    /// `--resource`.
    #[arg(long)]
    pub allow_introspection: bool,
    /// The API resource (one of the configured `resources`) this client serves: it may
    /// introspect tokens issued for it and follow their revocation events.
    #[arg(long)]
    pub resource: Option<String>,
    /// Back-channel logout URI.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Token endpoint authentication method.
    #[arg(long)]
    pub token_endpoint_auth_method: Option<String>,
    /// ID token signing algorithm (EdDSA, ES256 or RS256; default EdDSA).
    #[arg(long)]
    pub id_token_signed_response_alg: Option<String>,
    /// Public keys for private_key_jwt, as a JWKS JSON document.
    #[arg(long)]
    pub jwks: Option<String>,
    /// May ask for admin API tokens (scope tessera:admin, audience <issuer>/admin/v1).
    #[arg(long)]
    pub admin_api: bool,
    /// Absolute lifetime of this client's grants, e.g. 30d (default: [oauth] grant_max_lifetime).
    #[arg(long, value_parser = crate::config::parse_duration)]
    pub grant_lifetime: Option<std::time::Duration>,
    /// Let this (confidential) client obtain its users' kept upstream tokens of PROVIDER
    /// through token exchange (RFC 8693), optionally only tokens carrying no scopes beyond
    /// those listed: PROVIDER[:SCOPE,SCOPE]. Repeatable.
    #[arg(long = "token-exchange", value_name = "PROVIDER[:SCOPE,SCOPE]", value_parser = parse_allowance)]
    pub token_exchange: Vec<UpstreamAllowance>,
}

fn parse_allowance(s: &str) -> Result<UpstreamAllowance, String> {
    s.parse().map_err(|e: tessera_core::CoreError| e.to_string())
}

/// `tessera keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate every algorithm: the published next key starts signing, the active key retires.
    Rotate,
    /// List keys and their states.
    List,
}

/// `tessera user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create(CreateArgs),
    /// Create users from JSON lines on stdin: {"username", "email"?, "name"?, "password_hash"}
    /// with Argon2 PHC, bcrypt or PBKDF2-SHA256 hashes (upgraded to Argon2id at next sign-in).
    Import,
    /// Show a user.
    Show(Which),
    /// List users.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Disable a user and end their sessions.
    Disable(Which),
    /// Enable a disabled user.
    Enable(Which),
    /// Delete a user.
    Delete(Which),
    /// Set a user's password from stdin; ends their sessions.
    SetPassword(Which),
    /// End every session of a user.
    EndSessions(Which),
    /// Remove every second factor of a user (authenticator app, passkeys, recovery codes).
    ResetMfa(Which),
}

/// Arguments of `tessera user create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Username.
    #[arg(long)]
    pub username: String,
    /// E-mail address.
    #[arg(long)]
    pub email: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Grant a role (repeatable), e.g. `admin`.
    #[arg(long = "role")]
    pub roles: Vec<String>,
}

/// Names a user by username/e-mail or id.
#[derive(Debug, Args)]
pub struct Which {
    /// Username or e-mail.
    #[arg(long, conflicts_with = "id", required_unless_present = "id")]
    pub username: Option<String>,
    /// User id.
    #[arg(long)]
    pub id: Option<String>,
}

/// `tessera audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only events about this user (username or e-mail).
        #[arg(long)]
        user: Option<String>,
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

async fn keys_json(provider: &tessera_core::oauth::provider::Provider) -> anyhow::Result<Value> {
    let keys = provider.keys().list().await?;
    let fmt = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
    Ok(json!({"keys": keys.iter().map(|k| json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": k.state.as_str(),
        "created_at": fmt(Some(k.created_at)),
        "activated_at": fmt(k.activated_at),
        "retired_at": fmt(k.retired_at),
    })).collect::<Vec<_>>()}))
}

pub(crate) fn read_stdin_line() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("cannot read stdin")?;
    let line = s.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on stdin");
    }
    Ok(line)
}

async fn find(accounts: &Accounts, which: &Which) -> anyhow::Result<User> {
    let found = match (&which.id, &which.username) {
        (Some(id), _) => accounts.find_user(id.parse().context("--id is not a user id")?).await,
        (None, Some(name)) => accounts.find_user_by_login(name).await,
        (None, None) => bail!("name a user with --username or --id"),
    };
    found.map_err(|e| match e {
        tessera_core::CoreError::NotFound => anyhow::anyhow!("no such user"),
        other => other.into(),
    })
}

fn parse_time(s: &Option<String>, what: &str) -> anyhow::Result<Option<OffsetDateTime>> {
    s.as_deref()
        .map(|t| OffsetDateTime::parse(t, &Rfc3339).with_context(|| format!("--{what}: expected an RFC 3339 time")))
        .transpose()
}

/// Runs an administrative command and returns the JSON object to print.
pub async fn run_admin(config: &Config, command: Command) -> anyhow::Result<Value> {
    let clock: SharedClock = Arc::new(SystemClock);
    let services = crate::app::services(config, &config.issuer_for(config.listen), clock.clone()).await?;
    let store = services.store.clone();
    let accounts = services.accounts.clone();
    let provider = services.provider.clone();
    let ctx = RequestContext::new(None, Some("tessera-cli"));
    let out = match command {
        Command::Serve | Command::Demo { .. } => bail!("serve and demo are not administrative commands"),
        Command::User(UserCommand::Create(a)) => {
            let password = if a.password_stdin { Some(Password::new(read_stdin_line()?)) } else { None };
            let u = accounts
                .create_user(CreateUser { username: a.username, email: a.email, display_name: a.name, password, roles: a.roles }, &ctx)
                .await?;
            json!({"id": u.id, "username": u.username})
        }
        Command::User(UserCommand::Import) => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).context("cannot read stdin")?;
            let mut created = Vec::new();
            for (n, line) in input.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Line {
                    username: String,
                    email: Option<String>,
                    name: Option<String>,
                    password_hash: String,
                }
                let l: Line = serde_json::from_str(line).with_context(|| format!("line {}: not a user object", n + 1))?;
                let u = accounts
                    .import_user(
                        CreateUser { username: l.username, email: l.email, display_name: l.name, password: None, roles: vec![] },
                        &l.password_hash,
                        &ctx,
                    )
                    .await
                    .with_context(|| format!("line {}", n + 1))?;
                created.push(json!({"id": u.id, "username": u.username}));
            }
            json!({"imported": created.len(), "users": created})
        }
        Command::User(UserCommand::Show(w)) => json!(UserView::from(&find(&accounts, &w).await?)),
        Command::User(UserCommand::List { limit }) => {
            let users = accounts.list_users(None, limit).await?;
            json!({"users": users.iter().map(UserView::from).collect::<Vec<_>>()})
        }
        Command::User(UserCommand::Disable(w)) => {
            let u = find(&accounts, &w).await?;
            accounts.set_disabled(u.id, true, &ctx).await?;
            json!({"id": u.id, "username": u.username, "disabled": true})
        }
        Command::User(UserCommand::Enable(w)) => {
            let u = find(&accounts, &w).await?;
            accounts.set_disabled(u.id, false, &ctx).await?;
            json!({"id": u.id, "username": u.username, "disabled": false})
        }
        Command::User(UserCommand::Delete(w)) => {
            let u = find(&accounts, &w).await?;
            accounts.delete_user(u.id, &ctx).await?;
            json!({"id": u.id, "username": u.username, "deleted": true})
        }
        Command::User(UserCommand::SetPassword(w)) => {
            let u = find(&accounts, &w).await?;
            accounts.set_password(u.id, &Password::new(read_stdin_line()?), &ctx).await?;
            json!({"id": u.id, "username": u.username, "password_changed": true})
        }
        Command::User(UserCommand::EndSessions(w)) => {
            let u = find(&accounts, &w).await?;
            let n = accounts.end_all_sessions(u.id, &ctx).await?;
            json!({"id": u.id, "username": u.username, "sessions_ended": n})
        }
        Command::User(UserCommand::ResetMfa(w)) => {
            let u = find(&accounts, &w).await?;
            let n = accounts.reset_second_factors(u.id, &ctx).await?;
            json!({"id": u.id, "username": u.username, "factors_removed": n})
        }
        Command::Audit(AuditCommand::List { user, since, until, limit }) => {
            let user_id = match user {
                Some(u) => Some(find(&accounts, &Which { username: Some(u), id: None }).await?.id),
                None => None,
            };
            let q = AuditQuery { user_id, since: parse_time(&since, "since")?, until: parse_time(&until, "until")?, limit };
            let events = accounts.audit_events(&q).await?;
            json!({"events": events})
        }
        Command::Client(ClientCommand::Create(a)) => {
            let jwks = match a.jwks.as_deref() {
                Some(j) => Some(serde_json::from_str::<Value>(j).context("--jwks is not JSON")?),
                None => None,
            };
            let reg = ClientRegistration {
                name: a.name,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                public: a.public,
                grant_types: a.grant_types,
                scopes: a.scopes,
                skip_consent: a.skip_consent,
                require_mfa: a.require_mfa,
                introspection: a.allow_introspection,
                resource: a.resource,
                backchannel_logout_uri: a.backchannel_logout_uri,
                token_endpoint_auth_method: a.token_endpoint_auth_method,
                id_token_signed_response_alg: a.id_token_signed_response_alg,
                jwks,
                admin_api: a.admin_api,
                grant_lifetime: a.grant_lifetime.map(|d| d.as_secs()),
                token_exchange: a.token_exchange,
            };
            let (client, secret) = provider.register_client(reg).await?;
            match secret {
                Some(s) => json!({"client_id": client.id, "client_secret": s}),
                None => json!({"client_id": client.id}),
            }
        }
        Command::Client(ClientCommand::List) => json!({"clients": provider.list_clients().await?}),
        Command::Client(ClientCommand::Delete { client_id }) => {
            provider.delete_client(&client_id).await?;
            json!({"client_id": client_id, "deleted": true})
        }
        Command::Keys(KeysCommand::Rotate) => {
            provider.rotate_keys().await?;
            keys_json(&provider).await?
        }
        Command::Keys(KeysCommand::List) => keys_json(&provider).await?,
        Command::Idp(c) => crate::cli_idp::run(&services.federation, c, &ctx).await?,
    };
    store.close().await;
    Ok(out)
}
