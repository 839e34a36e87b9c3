//! The pages of the e-mail flows: "Forgot password?" (ask for a link) and the reset link's
//! page. Asking answers the same page after the same minimum time for known and unknown
//! addresses. The browser that asks gets a binding cookie (`tessera_mail`) whose hash is
//! stored with the link, so the link works only there; opening it (`GET`) shows a form and
//! uses nothing up — only the form's `POST` acts.

use crate::AppState;
use crate::context::{Client, cookie, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::PageForm;
use crate::render::render;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::time::Duration;
use tessera_core::CoreError;
use tessera_core::mail::flows::{EmailFlows, LINK_OTHER_BROWSER, LINK_UNUSABLE, LinkState};
use tessera_core::secret::{Password, SecretToken, TokenHash};

/// The cookie binding mail links and codes to the browser that asked for them.
pub const MAIL_COOKIE: &str = "tessera_mail";
/// Its lifetime: longer than any link's.
const MAIL_COOKIE_MAX_AGE: i64 = 3600;
/// Every "send me a link" answer takes at least this long, so its timing does not tell
/// whether the address is known (a known one costs rendering, sealing and a write).
pub(crate) const ANSWER_FLOOR: Duration = Duration::from_millis(400);

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    sent: bool,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    csrf: &'a str,
    token: &'a str,
    heading: &'a str,
    message: Option<&'a str>,
    error: Option<&'a str>,
    done: bool,
    min_password: usize,
}

pub(crate) fn flows(state: &AppState) -> Result<&EmailFlows, PageError> {
    state.email().ok_or(PageError::NotFound)
}

/// The anonymous CSRF token and the cookies it needs.
fn anonymous_csrf(state: &AppState, headers: &HeaderMap) -> Result<(String, Vec<String>), PageError> {
    let csrf = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let cookies = csrf.new_cookie.iter().map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect();
    Ok((csrf.token, cookies))
}

/// The hash of this browser's binding cookie, if it has one.
pub(crate) fn browser(headers: &HeaderMap) -> Option<TokenHash> {
    cookie(headers, MAIL_COOKIE).and_then(SecretToken::from_client).map(|t| t.hash())
}

/// This browser's binding cookie (one per browser), or a new one with the `Set-Cookie`
/// that gives it to the browser.
pub(crate) fn browser_binding(state: &AppState, headers: &HeaderMap) -> Result<(SecretToken, Option<String>), CoreError> {
    Ok(match cookie(headers, MAIL_COOKIE).and_then(SecretToken::from_client) {
        Some(t) => (t, None),
        None => {
            let t = SecretToken::generate()?;
            let c = set_cookie(MAIL_COOKIE, t.expose(), state.config().is_https(), Some(MAIL_COOKIE_MAX_AGE));
            (t, Some(c))
        }
    })
}

fn forgot_page(state: &AppState, headers: &HeaderMap, status: StatusCode, email: &str, error: Option<&str>, sent: bool, extra: Vec<String>) -> Result<Response, PageError> {
    let minutes = flows(state)?.reset_lifetime().whole_minutes();
    let (csrf, mut cookies) = anonymous_csrf(state, headers)?;
    cookies.extend(extra);
    Ok(render(status, &ForgotPage { csrf: &csrf, email, error, sent, minutes }, &cookies))
}

/// `GET /login/forgot`.
pub async fn forgot_show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    forgot_page(&state, &headers, StatusCode::OK, "", None, false, Vec::new())
}

/// Form of `POST /login/forgot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotForm {
    csrf_token: String,
    email: String,
}

/// `POST /login/forgot`.
pub async fn forgot_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<ForgotForm>,
) -> Result<Response, PageError> {
    let floor = tokio::time::Instant::now() + ANSWER_FLOOR;
    let email: String = form.email.chars().take(320).collect();
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        return forgot_page(&state, &headers, StatusCode::FORBIDDEN, &email, Some("This form has expired. Please try again."), false, Vec::new());
    }
    let (token, new_cookie) = browser_binding(&state, &headers)?;
    let outcome = flows(&state)?.request_password_reset(&email, &token.hash(), &ctx).await;
    tokio::time::sleep_until(floor).await;
    match outcome {
        Ok(()) => forgot_page(&state, &headers, StatusCode::OK, "", None, true, new_cookie.into_iter().collect()),
        Err(CoreError::Throttled(_)) => {
            let msg = "Too many requests from your network. Please wait a while and try again.";
            forgot_page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, &email, Some(msg), false, Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// Query of `GET /login/reset`.
#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

fn reset_page(state: &AppState, headers: &HeaderMap, status: StatusCode, token: &str, error: Option<&str>) -> Result<Response, PageError> {
    let (csrf, cookies) = anonymous_csrf(state, headers)?;
    let page = ResetPage { csrf: &csrf, token, heading: "", message: None, error, done: false, min_password: state.config().min_password_chars };
    Ok(render(status, &page, &cookies))
}

fn reset_message(state: &AppState, status: StatusCode, heading: &str, message: &str, done: bool) -> Response {
    let page = ResetPage { csrf: "", token: "", heading, message: Some(message), error: None, done, min_password: state.config().min_password_chars };
    render(status, &page, &[])
}

/// `GET /login/reset?token=…`: the form (in the browser that asked) or why not; nothing is
/// used up, so a mail scanner's fetch changes nothing.
pub async fn reset_show(State(state): State<AppState>, Query(q): Query<ResetQuery>, headers: HeaderMap) -> Result<Response, PageError> {
    let token: String = q.token.unwrap_or_default().chars().take(128).collect();
    match flows(&state)?.open_password_reset(&token, browser(&headers).as_ref()).await? {
        LinkState::Ready => reset_page(&state, &headers, StatusCode::OK, &token, None),
        LinkState::OtherBrowser => Ok(reset_message(&state, StatusCode::OK, "Open the link where you asked for it", LINK_OTHER_BROWSER, false)),
        LinkState::Unusable => Ok(reset_message(&state, StatusCode::BAD_REQUEST, "This link does not work", LINK_UNUSABLE, false)),
    }
}

/// Form of `POST /login/reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetForm {
    csrf_token: String,
    token: String,
    password: String,
    confirm: String,
}

/// `POST /login/reset`: sets the new password (once), ending every session of the user.
pub async fn reset_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    let token: String = form.token.chars().take(128).collect();
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        return reset_page(&state, &headers, StatusCode::FORBIDDEN, &token, Some("This form has expired. Please try again."));
    }
    if form.password != form.confirm {
        return reset_page(&state, &headers, StatusCode::BAD_REQUEST, &token, Some("The two passwords are not the same."));
    }
    match flows(&state)?.complete_password_reset(&token, browser(&headers).as_ref(), &Password::new(form.password), &ctx).await {
        Ok(()) => Ok(reset_message(&state, StatusCode::OK, "Password changed", "Your password has been changed and you have been signed out everywhere. Sign in with the new password.", true)),
        Err(CoreError::Invalid(m)) if m == LINK_UNUSABLE => Ok(reset_message(&state, StatusCode::BAD_REQUEST, "This link does not work", LINK_UNUSABLE, false)),
        Err(CoreError::Invalid(m)) if m == LINK_OTHER_BROWSER => {
            Ok(reset_message(&state, StatusCode::FORBIDDEN, "Open the link where you asked for it", LINK_OTHER_BROWSER, false))
        }
        Err(CoreError::Invalid(m)) => reset_page(&state, &headers, StatusCode::BAD_REQUEST, &token, Some(&m)),
        Err(e) => Err(e.into()),
    }
}
