//! `tessera idp create|list|delete`: upstream providers (SPEC §2 "Upstream providers").
//! The client secret is read from stdin and sealed before it is stored.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tessera_core::federation::model::ProviderSource;
use tessera_core::federation::{Federation, NewProvider, ProviderKind, ProviderName};
use tessera_core::session::RequestContext;
use tessera_core::upstream::UpstreamSecret;

/// `tessera idp …` (parsed once per run, so variant sizes do not matter).
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum IdpCommand {
    /// Add an upstream provider; prints `{"id", "name", "callback_url"}`.
    Create(IdpCreateArgs),
    /// List upstream providers.
    List,
    /// Delete an upstream provider (its linked identities go with it).
    Delete {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

/// Arguments of `tessera idp create`.
#[derive(Debug, Args)]
pub struct IdpCreateArgs {
    /// Name ([a-z0-9-]); the callback URL is `<issuer>/login/upstream/<name>/callback`.
    #[arg(long)]
    name: String,
    /// OpenID Connect issuer (discovery).
    #[arg(long, conflicts_with_all = ["preset", "authorization_endpoint"])]
    issuer: Option<String>,
    /// github, google, microsoft, gitlab or facebook.
    #[arg(long, conflicts_with = "authorization_endpoint")]
    preset: Option<String>,
    /// Plain OAuth 2.0: authorization endpoint.
    #[arg(long, requires_all = ["token_endpoint", "userinfo_endpoint"])]
    authorization_endpoint: Option<String>,
    /// Plain OAuth 2.0: token endpoint.
    #[arg(long)]
    token_endpoint: Option<String>,
    /// Plain OAuth 2.0: userinfo endpoint (`id` is the subject).
    #[arg(long)]
    userinfo_endpoint: Option<String>,
    /// Plain OAuth 2.0: GitHub-style e-mail list (the primary, verified address is used).
    #[arg(long)]
    emails_endpoint: Option<String>,
    /// Our client id at the provider.
    #[arg(long)]
    client_id: String,
    /// Read the client secret from stdin.
    #[arg(long)]
    client_secret_stdin: bool,
    /// Scopes (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Claimed e-mail domains (repeatable).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Create local users just in time.
    #[arg(long)]
    jit: bool,
    /// Link to a local account by an address the provider verified.
    #[arg(long)]
    trust_email: bool,
    /// Keep upstream tokens in the credential vault.
    #[arg(long)]
    vault_tokens: bool,
}

fn kind_of(a: &IdpCreateArgs) -> anyhow::Result<(ProviderKind, Vec<String>)> {
    let source = ProviderSource {
        issuer: a.issuer.clone(),
        preset: a.preset.clone(),
        authorization_endpoint: a.authorization_endpoint.clone(),
        token_endpoint: a.token_endpoint.clone(),
        userinfo_endpoint: a.userinfo_endpoint.clone(),
        emails_endpoint: a.emails_endpoint.clone(),
    };
    Ok(source.resolve()?)
}

/// Runs an `idp` command.
pub async fn run(federation: &Federation, command: IdpCommand, ctx: &RequestContext) -> anyhow::Result<Value> {
    Ok(match command {
        IdpCommand::Create(a) => {
            if !a.client_secret_stdin {
                bail!("--client-secret-stdin is required (secrets are not taken from the command line)");
            }
            let secret = crate::cli::read_stdin_line().context("cannot read the client secret")?;
            let (kind, preset_scopes) = kind_of(&a)?;
            let new = NewProvider {
                name: ProviderName::parse(&a.name)?,
                kind,
                client_id: a.client_id,
                client_secret: UpstreamSecret::new(secret),
                scopes: if a.scopes.is_empty() { preset_scopes } else { a.scopes },
                domains: a.domains,
                jit: a.jit,
                trust_email: a.trust_email,
                vault_tokens: a.vault_tokens,
            };
            let v = federation.create_provider(new, ctx).await?;
            json!({"id": v.id, "name": v.name, "callback_url": v.callback_url})
        }
        IdpCommand::List => json!({"providers": federation.list_providers().await?}),
        IdpCommand::Delete { name } => {
            federation.delete_provider(&name, ctx).await?;
            json!({"deleted": name})
        }
    })
}
