//! The one-time link that creates the first administrator.

use crate::AppState;
use crate::context::{Client, SESSION_COOKIE, set_cookie};
use crate::csrf;
use crate::error::PageError;
use crate::extract::PageForm;
use crate::render::see_other;
use crate::pages::signup::{Typed, form_page};
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::accounts::CreateUser;
use tessera_core::secret::{Password, SecretToken};

/// Query of `GET /setup`.
#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

const LINK_USED: &str = "This setup link has been used or has expired. Restart the server to print a new one if no administrator exists yet.";

/// `GET /setup?token=…`.
pub async fn show(
    State(state): State<AppState>,
    Query(q): Query<SetupQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let token = q.token.as_deref().and_then(SecretToken::from_client).ok_or(PageError::Forbidden(LINK_USED))?;
    if !state.accounts().setup_token_valid(&token).await? {
        return Err(PageError::Forbidden(LINK_USED));
    }
    form_page(&state, &headers, StatusCode::OK, Some(token.expose()), "", Typed::default(), None)
}

/// Form of `POST /setup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupForm {
    csrf_token: String,
    token: String,
    username: String,
    email: String,
    name: String,
    password: String,
}

/// `POST /setup`.
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<SetupForm>,
) -> Result<Response, PageError> {
    let token = SecretToken::from_client(&form.token).ok_or(PageError::Forbidden(LINK_USED))?;
    let typed = Typed { username: &form.username, email: &form.email, name: &form.name };
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let msg = "This form has expired. Please try again.";
        return form_page(&state, &headers, StatusCode::FORBIDDEN, Some(token.expose()), "", typed, Some(msg));
    }
    let input = CreateUser {
        username: form.username.clone(),
        email: Some(form.email.clone()),
        display_name: Some(form.name.clone()),
        password: Some(Password::new(form.password.clone())),
        roles: vec![],
    };
    match state.accounts().complete_setup(&token, input, &ctx).await {
        Ok(started) => {
            let c = set_cookie(SESSION_COOKIE, started.token.expose(), state.config().is_https(), None);
            Ok(see_other("/account", &[c]))
        }
        Err(CoreError::Invalid(msg)) => {
            form_page(&state, &headers, StatusCode::BAD_REQUEST, Some(token.expose()), "", typed, Some(&msg))
        }
        Err(CoreError::Forbidden) => Err(PageError::Forbidden(LINK_USED)),
        Err(e) => Err(e.into()),
    }
}
