//! The account page's linked upstream identities: the rows its partial
//! (`account_identities.html`) shows, and unlinking one (refused when it is the last way to
//! sign in).

use crate::AppState;
use crate::context::Client;
use crate::error::PageError;
use crate::extract::{Csrf, PageForm, SignedIn};
use crate::pages::CsrfOnly;
use crate::pages::account::account_page;
use crate::render::see_other;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use tessera_core::CoreError;
use tessera_core::federation::model::IdentityId;
use tessera_core::ids::UserId;
use time::macros::format_description;

/// One linked identity as the account page shows it.
pub(crate) struct IdentityRow {
    pub id: String,
    pub provider: String,
    pub email: String,
    pub linked: String,
}

/// The user's linked identities (none without federation).
pub(crate) async fn identity_rows(state: &AppState, user: UserId) -> Result<Vec<IdentityRow>, PageError> {
    let Some(fed) = state.federation() else { return Ok(vec![]) };
    let fmt = format_description!("[year]-[month]-[day]");
    Ok(fed
        .identities(user)
        .await?
        .into_iter()
        .map(|i| IdentityRow {
            id: i.id.to_string(),
            provider: i.provider_name,
            email: i.email.unwrap_or_default(),
            linked: i.created_at.format(fmt).unwrap_or_default(),
        })
        .collect())
}

/// `POST /account/identities/{id}/unlink`.
pub async fn unlink(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Path(id): Path<String>,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    let id: IdentityId = id.parse().map_err(|_| PageError::NotFound)?;
    let fed = state.federation().ok_or(PageError::NotFound)?;
    match fed.unlink(who.user.id, id, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=identity_unlinked", &[])),
        Err(CoreError::NotFound) => Ok(see_other("/account", &[])),
        Err(CoreError::Invalid(msg)) => account_page(&state, &who, StatusCode::CONFLICT, None, Some(&msg)).await,
        Err(e) => Err(e.into()),
    }
}
