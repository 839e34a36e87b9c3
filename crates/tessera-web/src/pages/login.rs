//! The hosted login page and sign-out.

use crate::AppState;
use crate::context::{Client, PageForm, SESSION_COOKIE, SignedIn, cookie, safe_return_to, set_cookie, urlencode};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::pages::{render, see_other};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::secret::{Password, SecretToken};
use tessera_core::throttle::{Challenge, PowAnswer, Throttled};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    return_to_query: String,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    signup_enabled: bool,
    challenge: Option<&'a Challenge>,
    retry_after: i64,
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    signed_out: Option<String>,
    login_hint: Option<String>,
}

/// The message for every failed sign-in, whatever the reason.
pub const LOGIN_FAILED: &str = "Incorrect username or password.";

#[allow(clippy::too_many_arguments)]
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: &str,
    username: &str,
    error: Option<&str>,
    notice: Option<&str>,
    throttled: Option<&Throttled>,
) -> Result<Response, PageError> {
    let csrf = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let cookies: Vec<String> = csrf
        .new_cookie
        .iter()
        .map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None))
        .collect();
    let page = LoginPage {
        csrf: &csrf.token,
        return_to,
        return_to_query: urlencode(return_to),
        username,
        error,
        notice,
        signup_enabled: state.config().signup_enabled,
        challenge: match throttled {
            Some(Throttled::ChallengeRequired { challenge, .. }) => Some(challenge),
            _ => None,
        },
        retry_after: match throttled {
            Some(Throttled::ChallengeRequired { retry_after, .. } | Throttled::Delayed { retry_after }) => *retry_after,
            None => 0,
        },
    };
    let mut res = render(status, &page, &cookies);
    if let Some(Throttled::ChallengeRequired { retry_after, .. } | Throttled::Delayed { retry_after }) = throttled {
        if let Ok(v) = http::HeaderValue::from_str(&retry_after.to_string()) {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    Ok(res)
}

/// `GET /login`.
pub async fn show(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(q.return_to.as_deref());
    let notice = q.signed_out.as_ref().map(|_| "You have signed out.");
    let hint: String = q.login_hint.unwrap_or_default().chars().take(320).collect();
    login_page(&state, &headers, StatusCode::OK, &return_to, &hint, None, notice, None)
}

/// Form of `POST /login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    csrf_token: String,
    return_to: String,
    username: String,
    password: String,
    pow_challenge: Option<String>,
    pow_nonce: Option<String>,
}

/// The message when sign-in is throttled.
pub const THROTTLED: &str = "Too many failed sign-in attempts. Please wait a moment and try again.";

/// `POST /login`.
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(Some(&form.return_to));
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let msg = "This form has expired. Please try again.";
        return login_page(&state, &headers, StatusCode::FORBIDDEN, &return_to, &form.username, Some(msg), None, None);
    }
    let username: String = form.username.chars().take(320).collect();
    let pow = match (form.pow_challenge, form.pow_nonce) {
        (Some(challenge), Some(nonce)) if !challenge.is_empty() && !nonce.is_empty() => Some(PowAnswer { challenge, nonce }),
        _ => None,
    };
    match state.accounts().login(&username, &Password::new(form.password), pow.as_ref(), &ctx).await {
        Ok(started) => {
            // A fresh session id at every sign-in; the previous session (if any) ends.
            if let Some(old) = cookie(&headers, SESSION_COOKIE).and_then(SecretToken::from_client) {
                state.accounts().logout(&old, &ctx).await?;
            }
            let c = set_cookie(SESSION_COOKIE, started.token.expose(), state.config().is_https(), None);
            Ok(see_other(&return_to, &[c]))
        }
        Err(CoreError::InvalidCredentials) => {
            login_page(&state, &headers, StatusCode::UNAUTHORIZED, &return_to, &username, Some(LOGIN_FAILED), None, None)
        }
        Err(CoreError::Throttled(t)) => {
            login_page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, &return_to, &username, Some(THROTTLED), None, Some(&t))
        }
        Err(e) => Err(e.into()),
    }
}

/// Form of `POST /logout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfOnly {
    pub(crate) csrf_token: String,
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    if !csrf::verify_session(&state.config().csrf_key, &who, &form.csrf_token) {
        return Err(PageError::Forbidden("This form has expired. Reload the page and try again."));
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE).and_then(SecretToken::from_client) {
        state.accounts().logout(&token, &ctx).await?;
    }
    let clear = set_cookie(SESSION_COOKIE, "", state.config().is_https(), Some(0));
    Ok(see_other("/login?signed_out=1", &[clear]))
}
