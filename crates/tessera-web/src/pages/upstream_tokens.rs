//! The account page's "Kept upstream tokens" section: which upstream providers' tokens the
//! credential vault keeps for the signed-in user (provider, scope, expiry, when kept and
//! refreshed — never a token), and dropping them (POST, CSRF, recent sign-in).

use crate::AppState;
use crate::context::Client;
use crate::error::PageError;
use crate::extract::{Csrf, PageForm, SignedIn};
use crate::pages::CsrfOnly;
use crate::pages::reauth::refused;
use crate::render::see_other;
use axum::extract::{Path, State};
use axum::response::Response;
use tessera_core::CoreError;
use tessera_core::accounts::Authenticated;
use tessera_core::vault::valid_provider_name;
use time::macros::format_description;

/// One kept token set, as the account page shows it.
pub(crate) struct KeptTokenRow {
    pub provider: String,
    pub scope: String,
    pub expires: String,
    pub kept: String,
    pub refreshed: Option<String>,
    pub refreshable: bool,
}

/// The section's rows (none without a vault).
pub(crate) async fn rows(state: &AppState, who: &Authenticated) -> Result<Vec<KeptTokenRow>, PageError> {
    let Some(vault) = state.vault() else { return Ok(Vec::new()) };
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    Ok(vault
        .list(who.user.id)
        .await?
        .into_iter()
        .map(|k| KeptTokenRow {
            provider: k.provider,
            scope: k.scope.unwrap_or_else(|| "not stated".into()),
            expires: k.expires_at.and_then(|t| t.format(fmt).ok()).unwrap_or_else(|| "not stated".into()),
            kept: k.kept_at.format(fmt).unwrap_or_default(),
            refreshed: k.refreshed_at.and_then(|t| t.format(fmt).ok()),
            refreshable: k.refreshable,
        })
        .collect())
}

/// `POST /account/upstream-tokens/{provider}/drop`.
pub async fn drop_tokens(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Path(provider): Path<String>,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    let (Some(vault), true) = (state.vault(), valid_provider_name(&provider)) else {
        return Err(PageError::NotFound);
    };
    match vault.drop_own_tokens(&who, &provider, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=upstream_tokens_dropped", &[])),
        Err(CoreError::NotFound) => Ok(see_other("/account", &[])),
        Err(e) => refused(&who, e),
    }
}
