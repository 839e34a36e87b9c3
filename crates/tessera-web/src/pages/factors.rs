//! The account page's second factors: TOTP enrolment and removal, recovery codes, and
//! passkeys (registration through `static/webauthn.js`, rename, removal). Changing any of
//! them needs a recent sign-in; without one the user is sent to confirm it is them.

use crate::AppState;
use crate::context::Client;
use crate::csrf;
use crate::error::{JsonError, PageError};
use crate::extract::{Csrf, CsrfForm, JsonBody, PageForm, SignedIn};
use crate::pages::CsrfOnly;
use crate::pages::account::account_page;
use crate::pages::mfa::{FinishBody, OptionsBody, ceremony_json};
use crate::pages::reauth::{refused, refused_json};
use crate::render::{render, see_other};
use crate::url::safe_return_to;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_core::CoreError;
use tessera_core::accounts::Authenticated;
use tessera_core::ids::PasskeyId;
use tessera_core::mfa::recovery::RecoveryCode;
use tessera_core::mfa::totp::TotpSetup;

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpPage<'a> {
    csrf: String,
    username: &'a str,
    qr_base64: String,
    manual_key: &'a str,
    error: Option<&'a str>,
    continue_to: Option<String>,
}

fn totp_page(state: &AppState, who: &Authenticated, setup: &TotpSetup, status: StatusCode, error: Option<&str>, continue_to: Option<String>) -> Response {
    let page = TotpPage {
        continue_to,
        csrf: csrf::session_token(&state.config().csrf_key, who),
        username: who.user.username.as_str(),
        qr_base64: STANDARD.encode(setup.qr_svg.as_bytes()),
        manual_key: &setup.manual_key,
        error,
    };
    render(status, &page, &[])
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage<'a> {
    codes: Vec<String>,
    notice: Option<&'a str>,
    replaced: bool,
    continue_to: Option<String>,
}

fn codes_page(codes: &[RecoveryCode], notice: Option<&str>, replaced: bool, continue_to: Option<String>) -> Response {
    let page = CodesPage { codes: codes.iter().map(RecoveryCode::expose).collect(), notice, replaced, continue_to };
    let mut res = render(StatusCode::OK, &page, &[]);
    res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    res
}

/// Form of `POST /account/totp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartForm {
    csrf_token: String,
    /// Where to go on afterwards (an application that asked for a second factor).
    #[serde(rename = "continue")]
    continue_to: Option<String>,
}

impl CsrfForm for StartForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

fn continuing(raw: Option<&str>) -> Option<String> {
    raw.filter(|c| !c.is_empty()).map(|c| safe_return_to(Some(c)))
}

/// `POST /account/totp`: starts enrolment and shows the QR code.
pub async fn totp_start(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Csrf(PageForm(form)): Csrf<PageForm<StartForm>>,
) -> Result<Response, PageError> {
    let continue_to = continuing(form.continue_to.as_deref());
    match state.accounts().begin_totp_enrolment(&who).await {
        Ok(setup) => Ok(totp_page(&state, &who, &setup, StatusCode::OK, None, continue_to)),
        Err(CoreError::Conflict(_)) => {
            account_page(&state, &who, StatusCode::CONFLICT, None, Some("An authenticator app is already set up. Turn it off first to replace it.")).await
        }
        Err(e) => refused(&who, e),
    }
}

/// Form of `POST /account/totp/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmForm {
    csrf_token: String,
    code: String,
    #[serde(rename = "continue")]
    continue_to: Option<String>,
}

impl CsrfForm for ConfirmForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /account/totp/confirm`: the first code turns the authenticator on (and, the first
/// time, shows new recovery codes).
pub async fn totp_confirm(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Csrf(PageForm(form)): Csrf<PageForm<ConfirmForm>>,
) -> Result<Response, PageError> {
    let code: String = form.code.chars().take(64).collect();
    let continue_to = continuing(form.continue_to.as_deref());
    match state.accounts().confirm_totp_enrolment(&who, &code, &ctx).await {
        Ok(Some(codes)) => Ok(codes_page(&codes, Some("Two-step verification with an authenticator app is on."), false, continue_to)),
        Ok(None) => Ok(see_other(&continue_to.unwrap_or_else(|| "/account?done=totp_enabled".into()), &[])),
        Err(CoreError::Invalid(msg)) => match state.accounts().totp_enrolment(&who).await? {
            Some(setup) => Ok(totp_page(&state, &who, &setup, StatusCode::BAD_REQUEST, Some(&msg), continue_to)),
            None => account_page(&state, &who, StatusCode::BAD_REQUEST, None, Some(&msg)).await,
        },
        Err(e) => refused(&who, e),
    }
}

/// `POST /account/totp/delete`.
pub async fn totp_delete(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    match state.accounts().remove_totp(&who, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=totp_removed", &[])),
        Err(CoreError::NotFound) => Ok(see_other("/account", &[])),
        Err(e) => refused(&who, e),
    }
}

/// `POST /account/recovery-codes`: ten new codes, shown once; the old ones stop working.
pub async fn recovery_regenerate(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    match state.accounts().regenerate_recovery_codes(&who, &ctx).await {
        Ok(codes) => Ok(codes_page(&codes, None, true, None)),
        Err(CoreError::Invalid(msg)) => account_page(&state, &who, StatusCode::BAD_REQUEST, None, Some(&msg)).await,
        Err(e) => refused(&who, e),
    }
}

/// `POST /account/passkeys/options`: options for registering a passkey.
pub async fn passkey_options(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Csrf(JsonBody(_)): Csrf<JsonBody<OptionsBody>>,
) -> Result<Response, JsonError> {
    let start = state.accounts().start_passkey_registration(&who).await.map_err(|e| refused_json(&who, e))?;
    Ok(ceremony_json(&start))
}

/// `POST /account/passkeys`: registers the passkey the browser created.
pub async fn passkey_register(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Csrf(JsonBody(body)): Csrf<JsonBody<FinishBody>>,
) -> Result<Response, JsonError> {
    let (handle, credential) = body.parts()?;
    let p = state
        .accounts()
        .finish_passkey_registration(&who, &handle, credential, body.name(), &ctx)
        .await
        .map_err(|e| refused_json(&who, e))?;
    Ok(axum::Json(json!({"redirect": "/account?done=passkey_added", "id": p.id, "name": p.name})).into_response())
}

/// Form of `POST /account/passkeys/{id}/rename`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameForm {
    csrf_token: String,
    name: String,
}

impl CsrfForm for RenameForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn passkey_rename(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Path(id): Path<String>,
    Csrf(PageForm(form)): Csrf<PageForm<RenameForm>>,
) -> Result<Response, PageError> {
    let id: PasskeyId = id.parse().map_err(|_| PageError::NotFound)?;
    match state.accounts().rename_passkey(&who, id, &form.name, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=passkey_renamed", &[])),
        Err(CoreError::Invalid(msg)) => account_page(&state, &who, StatusCode::BAD_REQUEST, None, Some(&msg)).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/passkeys/{id}/delete`.
pub async fn passkey_delete(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Path(id): Path<String>,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    let id: PasskeyId = id.parse().map_err(|_| PageError::NotFound)?;
    match state.accounts().delete_passkey(&who, id, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=passkey_removed", &[])),
        Err(e) => refused(&who, e),
    }
}
