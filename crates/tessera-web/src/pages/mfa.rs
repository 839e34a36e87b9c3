//! The second-factor page (after a password, or a step-up of a signed-in session) and the
//! passkey sign-in endpoints (passwordless from the login page, or as the second factor).
//! The passkey endpoints speak JSON to `static/webauthn.js` and need a CSRF token (the
//! pages' cross-site guard, `csrf::same_origin_only`, has already checked their origin).

use crate::AppState;
use crate::context::{Client, cookie, set_cookie};
use crate::csrf;
use crate::error::{JsonError, PageError};
use crate::extract::{AnonymousCsrf, CsrfForm, JsonBody, PageForm, SessionCookie};
use crate::pages::login::{LoginView, MFA_COOKIE, MFA_COOKIE_MAX_AGE, THROTTLED, login_page, signed_in};
use crate::render::{render, see_other, with_cookies};
use crate::security::FormTargets;
use crate::url::{safe_return_to, urlencode};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::CoreError;
use tessera_core::accounts::{PendingView, SecondFactorAnswer, StartedSession};
use tessera_core::mfa::level::AuthLevel;
use tessera_core::secret::SecretToken;
use tessera_core::session::RequestContext;

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    return_to_query: String,
    username: &'a str,
    error: Option<&'a str>,
    totp: bool,
    passkey: bool,
    recovery: bool,
    passkey_only: bool,
    has_factor: bool,
}

fn pending_token(headers: &HeaderMap) -> Option<SecretToken> {
    cookie(headers, MFA_COOKIE).and_then(SecretToken::from_client)
}

fn mfa_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    view: &PendingView,
    return_to: &str,
    error: Option<&str>,
    extra_cookies: Vec<String>,
) -> Result<Response, PageError> {
    let anon = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let mut cookies = extra_cookies;
    if let Some(c) = &anon.new_cookie {
        cookies.push(set_cookie(csrf::CSRF_COOKIE, c.expose(), state.config().is_https(), None));
    }
    let page = MfaPage {
        csrf: &anon.token,
        return_to,
        return_to_query: urlencode(return_to),
        username: view.user.username.as_str(),
        error,
        totp: view.factors.totp,
        passkey: view.factors.passkeys > 0 && state.accounts().passkeys_enabled(),
        recovery: view.factors.recovery_codes > 0,
        passkey_only: view.passkey_only(),
        has_factor: if view.passkey_only() { view.factors.passkeys > 0 } else { view.factors.has_second_factor() },
    };
    Ok(FormTargets::Continuing(return_to.to_owned()).attach(render(status, &page, &cookies)))
}

/// Query of `GET /login/mfa`.
#[derive(Debug, Deserialize)]
pub struct MfaQuery {
    return_to: Option<String>,
    /// Set by the authorization endpoint: the level a signed-in session must step up to.
    level: Option<String>,
}

fn to_login(return_to: &str, expired: bool) -> Response {
    let mut to = format!("/login?return_to={}", urlencode(return_to));
    if expired {
        to.push_str("&expired=1");
    }
    see_other(&to, &[])
}

/// `GET /login/mfa`: the pending sign-in's second-factor page; with `level` and a session
/// that does not reach it, starts a step-up that asks only for what is missing.
pub async fn show(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    Query(q): Query<MfaQuery>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(q.return_to.as_deref());
    let accounts = state.accounts();
    if let Some(level) = q.level.as_deref().and_then(AuthLevel::parse)
        && let Some(who) = session.signed_in(&state, &ctx).await?
    {
        if AuthLevel::of(&who.session.amr) >= level {
            return Ok(see_other(&return_to, &[]));
        }
        let needed = accounts.begin_step_up(&who, level, &ctx).await?;
        let view = accounts.pending_sign_in(&needed.token).await?;
        let c = set_cookie(MFA_COOKIE, needed.token.expose(), state.config().is_https(), Some(MFA_COOKIE_MAX_AGE));
        return mfa_page(&state, &headers, StatusCode::OK, &view, &return_to, None, vec![c]);
    }
    let Some(token) = pending_token(&headers) else { return Ok(to_login(&return_to, false)) };
    match accounts.pending_sign_in(&token).await {
        Ok(view) => mfa_page(&state, &headers, StatusCode::OK, &view, &return_to, None, vec![]),
        Err(CoreError::Unauthenticated) => Ok(to_login(&return_to, true)),
        Err(e) => Err(e.into()),
    }
}

/// Form of `POST /login/mfa`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaForm {
    csrf_token: String,
    return_to: String,
    method: String,
    code: String,
}

/// `POST /login/mfa`: a TOTP or recovery code.
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    PageForm(form): PageForm<MfaForm>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(Some(&form.return_to));
    let Some(token) = pending_token(&headers) else { return Ok(to_login(&return_to, true)) };
    let accounts = state.accounts();
    let view = match accounts.pending_sign_in(&token).await {
        Ok(v) => v,
        Err(CoreError::Unauthenticated) => return Ok(to_login(&return_to, true)),
        Err(e) => return Err(e.into()),
    };
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let msg = "This form has expired. Please try again.";
        return mfa_page(&state, &headers, StatusCode::FORBIDDEN, &view, &return_to, Some(msg), vec![]);
    }
    let code: String = form.code.chars().take(64).collect();
    let answer = match form.method.as_str() {
        "totp" => SecondFactorAnswer::Totp(code),
        "recovery" => SecondFactorAnswer::RecoveryCode(code),
        _ => return Err(PageError::BadRequest("Choose a way to verify.")),
    };
    match accounts.verify_second_factor(&token, answer, &ctx).await {
        Ok(started) => {
            let cookies = signed_in(&state, &ctx, &session, &headers, &started).await?;
            Ok(see_other(&return_to, &cookies))
        }
        Err(CoreError::SecondFactorRejected { attempts_left: 0 }) => {
            let clear = set_cookie(MFA_COOKIE, "", state.config().is_https(), Some(0));
            let page = LoginView {
                return_to: &return_to,
                username: view.user.username.as_str(),
                error: Some("Too many wrong codes. Sign in again."),
                ..LoginView::default()
            };
            Ok(with_cookies(login_page(&state, &headers, StatusCode::UNAUTHORIZED, page).await?, &[clear]))
        }
        Err(CoreError::SecondFactorRejected { .. }) => {
            let msg = "That code is not right, or it was already used. Enter the current code.";
            mfa_page(&state, &headers, StatusCode::UNAUTHORIZED, &view, &return_to, Some(msg), vec![])
        }
        Err(CoreError::Throttled(_)) => mfa_page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, &view, &return_to, Some(THROTTLED), vec![]),
        Err(CoreError::Invalid(msg)) => mfa_page(&state, &headers, StatusCode::BAD_REQUEST, &view, &return_to, Some(&msg), vec![]),
        Err(CoreError::Unauthenticated) => Ok(to_login(&return_to, true)),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------- passkey JSON

/// Body of the `…/options` endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    csrf_token: String,
}

/// Body of the ceremony-finishing endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    csrf_token: String,
    ceremony: String,
    credential: Value,
    #[serde(default)]
    return_to: String,
    #[serde(default)]
    name: Option<String>,
}

impl FinishBody {
    pub(crate) fn parts(&self) -> Result<(SecretToken, &Value), JsonError> {
        let handle = SecretToken::from_client(&self.ceremony).ok_or_else(|| JsonError::bad("The passkey request has expired. Please try again."))?;
        Ok((handle, &self.credential))
    }
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

impl CsrfForm for FinishBody {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl CsrfForm for OptionsBody {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// A started ceremony as `static/webauthn.js` expects it.
pub(crate) fn ceremony_json(start: &tessera_core::accounts::CeremonyStart) -> Response {
    axum::Json(json!({"options": start.options, "ceremony": start.handle.expose()})).into_response()
}

/// `POST /login/passkey/options`: options for a passwordless sign-in.
pub async fn passwordless_options(
    State(state): State<AppState>,
    AnonymousCsrf(JsonBody(_)): AnonymousCsrf<JsonBody<OptionsBody>>,
) -> Result<Response, JsonError> {
    Ok(ceremony_json(&state.accounts().start_passkey_sign_in(None).await?))
}

/// `POST /login/passkey`: completes a passwordless sign-in.
pub async fn passwordless_finish(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    AnonymousCsrf(JsonBody(body)): AnonymousCsrf<JsonBody<FinishBody>>,
) -> Result<Response, JsonError> {
    let (handle, credential) = body.parts()?;
    let current = session.signed_in(&state, &ctx).await?;
    let started = state.accounts().finish_passkey_sign_in(&handle, credential, None, current.as_ref(), &ctx).await?;
    finished(&state, &ctx, &session, &headers, &started, &body.return_to).await
}

async fn finished(
    state: &AppState,
    ctx: &RequestContext,
    session: &SessionCookie,
    headers: &HeaderMap,
    started: &StartedSession,
    return_to: &str,
) -> Result<Response, JsonError> {
    let cookies = signed_in(state, ctx, session, headers, started).await?;
    Ok(with_cookies(axum::Json(json!({"redirect": safe_return_to(Some(return_to))})).into_response(), &cookies))
}

fn pending_or_expired(headers: &HeaderMap) -> Result<SecretToken, JsonError> {
    pending_token(headers).ok_or_else(|| JsonError::redirect("Please sign in again.", "/login?expired=1".into()))
}

/// `POST /login/mfa/passkey/options`: options for a passkey as the pending sign-in's
/// second factor (only the user's passkeys are allowed).
pub async fn second_factor_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    AnonymousCsrf(JsonBody(_)): AnonymousCsrf<JsonBody<OptionsBody>>,
) -> Result<Response, JsonError> {
    let token = pending_or_expired(&headers)?;
    Ok(ceremony_json(&state.accounts().start_passkey_sign_in(Some(&token)).await?))
}

/// `POST /login/mfa/passkey`: completes the pending sign-in with a passkey.
pub async fn second_factor_finish(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    AnonymousCsrf(JsonBody(body)): AnonymousCsrf<JsonBody<FinishBody>>,
) -> Result<Response, JsonError> {
    let token = pending_or_expired(&headers)?;
    let (handle, credential) = body.parts()?;
    let started = state.accounts().finish_passkey_sign_in(&handle, credential, Some(&token), None, &ctx).await?;
    finished(&state, &ctx, &session, &headers, &started, &body.return_to).await
}
