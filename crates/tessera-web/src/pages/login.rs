//! The hosted login page and sign-out.

use crate::AppState;
use crate::context::{Client, SESSION_COOKIE, cookie, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::{Csrf, PageForm, SessionCookie, SignedIn};
use crate::pages::CsrfOnly;
use crate::render::{render, see_other};
use crate::security::FormTargets;
use crate::url::{safe_return_to, urlencode};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::accounts::{LoginOutcome, StartedSession};
use tessera_core::secret::Password;
use tessera_core::session::RequestContext;
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
    solved_after: i64,
    reauth: bool,
    passkeys: bool,
    forgot_enabled: bool,
    email_sign_in: bool,
    upstreams: Vec<String>,
}

#[derive(Template)]
#[template(path = "upstream_continue.html")]
struct HomeRealmPage<'a> {
    to: &'a str,
    provider: &'a str,
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    signed_out: Option<String>,
    login_hint: Option<String>,
    reauth: Option<String>,
    expired: Option<String>,
}

/// The message for every failed sign-in, whatever the reason.
pub const LOGIN_FAILED: &str = "Incorrect username or password.";

/// What the login page shows besides the form.
#[derive(Debug, Default)]
pub(crate) struct LoginView<'a> {
    pub return_to: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub throttled: Option<&'a Throttled>,
    /// Signing in again to confirm it is the user (before a sensitive action).
    pub reauth: bool,
}

pub(crate) async fn login_page(state: &AppState, headers: &HeaderMap, status: StatusCode, view: LoginView<'_>) -> Result<Response, PageError> {
    let LoginView { return_to, username, error, notice, throttled, reauth } = view;
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
        solved_after: match throttled {
            Some(Throttled::ChallengeRequired { solved_after, .. }) => *solved_after,
            _ => 0,
        },
        reauth,
        passkeys: state.accounts().passkeys_enabled(),
        forgot_enabled: state.email().is_some(),
        email_sign_in: state.email().is_some_and(|e| e.sign_in_enabled()),
        upstreams: match state.federation() {
            Some(f) => f.enabled_provider_names().await?,
            None => vec![],
        },
    };
    let mut res = FormTargets::Continuing(return_to.to_owned()).attach(render(status, &page, &cookies));
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
    let notice = match (&q.signed_out, &q.expired) {
        (Some(_), _) => Some("You have signed out."),
        (None, Some(_)) => Some("The sign-in took too long or had too many wrong codes. Please sign in again."),
        (None, None) => None,
    };
    let hint: String = q.login_hint.unwrap_or_default().chars().take(320).collect();
    login_page(&state, &headers, StatusCode::OK, LoginView { return_to: &return_to, username: &hint, notice, reauth: q.reauth.is_some(), ..LoginView::default() }).await
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
    session: SessionCookie,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(Some(&form.return_to));
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let msg = "This form has expired. Please try again.";
        let view = LoginView { return_to: &return_to, username: &form.username, error: Some(msg), ..LoginView::default() };
        return login_page(&state, &headers, StatusCode::FORBIDDEN, view).await;
    }
    let username: String = form.username.chars().take(320).collect();
    // Home-realm discovery: an address in a domain a provider claims goes to that provider.
    if let Some(fed) = state.federation()
        && let Some(name) = fed.provider_for_login(&username).await?
    {
        // A page that moves on by itself, not a redirect: the form's CSP `form-action` would
        // refuse a redirect chain that ends at the provider.
        let to = format!("/login/upstream/{name}?return_to={}", urlencode(&return_to));
        return Ok(render(StatusCode::OK, &HomeRealmPage { to: &to, provider: &name }, &[]));
    }
    let pow = match (form.pow_challenge, form.pow_nonce) {
        (Some(challenge), Some(nonce)) if !challenge.is_empty() && !nonce.is_empty() => Some(PowAnswer { challenge, nonce }),
        _ => None,
    };
    let current = session.signed_in(&state, &ctx).await?;
    let outcome = state
        .accounts()
        .sign_in_with_password(&username, &Password::new(form.password), pow.as_ref(), &ctx, current.as_ref())
        .await;
    match outcome {
        Ok(outcome) => Ok(outcome_response(&state, &ctx, &session, &headers, outcome, &return_to, Vec::new()).await?),
        Err(CoreError::InvalidCredentials) => {
            let view = LoginView { return_to: &return_to, username: &username, error: Some(LOGIN_FAILED), ..LoginView::default() };
            login_page(&state, &headers, StatusCode::UNAUTHORIZED, view).await
        }
        Err(CoreError::Throttled(t)) => {
            let view = LoginView { return_to: &return_to, username: &username, error: Some(THROTTLED), throttled: Some(&t), ..LoginView::default() };
            login_page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, view).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Name of the cookie that carries a pending sign-in (waiting for its second factor).
pub const MFA_COOKIE: &str = "tessera_mfa";
/// Lifetime of that cookie, matching the pending sign-in's.
pub const MFA_COOKIE_MAX_AGE: i64 = 300;

/// Completes a sign-in in the browser: the previous session (if any, and not the one just
/// upgraded in place, whose old id no longer names anything) ends, the new id goes into the
/// session cookie and the pending-sign-in cookie is cleared. Returns the cookies to set.
pub(crate) async fn signed_in(
    state: &AppState,
    ctx: &RequestContext,
    session: &SessionCookie,
    headers: &HeaderMap,
    started: &StartedSession,
) -> Result<Vec<String>, CoreError> {
    if let Some(old) = session.token() {
        state.accounts().logout(old, ctx).await?;
    }
    let secure = state.config().is_https();
    let mut cookies = vec![set_cookie(SESSION_COOKIE, started.token.expose(), secure, None)];
    if cookie(headers, MFA_COOKIE).is_some() {
        cookies.push(set_cookie(MFA_COOKIE, "", secure, Some(0)));
    }
    Ok(cookies)
}

/// The answer to a first factor that succeeded (password, upstream sign-in, mailed code or
/// link): a session and a redirect to `return_to`, or the pending-sign-in cookie and the
/// second-factor page. `extra` cookies (e.g. clearing a flow's own) are set either way.
pub(crate) async fn outcome_response(
    state: &AppState,
    ctx: &RequestContext,
    session: &SessionCookie,
    headers: &HeaderMap,
    outcome: LoginOutcome,
    return_to: &str,
    mut extra: Vec<String>,
) -> Result<Response, CoreError> {
    match outcome {
        LoginOutcome::SignedIn(started) => {
            let mut cookies = signed_in(state, ctx, session, headers, &started).await?;
            cookies.append(&mut extra);
            Ok(see_other(return_to, &cookies))
        }
        LoginOutcome::SecondFactor(needed) => {
            extra.insert(0, set_cookie(MFA_COOKIE, needed.token.expose(), state.config().is_https(), Some(MFA_COOKIE_MAX_AGE)));
            Ok(see_other(&format!("/login/mfa?return_to={}", urlencode(return_to)), &extra))
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SignedIn(_): SignedIn,
    Client(ctx): Client,
    session: SessionCookie,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    if let Some(token) = session.token() {
        state.accounts().logout(token, &ctx).await?;
    }
    let clear = set_cookie(SESSION_COOKIE, "", state.config().is_https(), Some(0));
    Ok(see_other("/login?signed_out=1", &[clear]))
}
