//! Sign-in by e-mail (when `[email] magic_link` is on): ask for a code (`/login/email`),
//! type it (`/login/email/code`), or open the mailed link (`/login/email/link`: `GET` shows a
//! button and uses nothing up, `POST` signs in). Everything works only in the browser that
//! asked (its `tessera_mail` binding cookie); asking answers the same page after the same
//! minimum time for known and unknown addresses.

use crate::AppState;
use crate::context::{Client, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::{PageForm, SessionCookie};
use crate::pages::email::{ANSWER_FLOOR, browser, browser_binding, flows};
use crate::pages::login::outcome_response;
use crate::render::render;
use crate::url::{safe_return_to, urlencode};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::accounts::LoginOutcome;
use tessera_core::mail::flows::{LINK_OTHER_BROWSER, LINK_UNUSABLE, LinkState};
use tessera_core::session::RequestContext;

#[derive(Template)]
#[template(path = "email_sign_in.html")]
struct EmailSignInPage<'a> {
    heading: &'a str,
    mode: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    csrf: &'a str,
    return_to: &'a str,
    return_to_query: String,
    token: &'a str,
}

/// What a page shows.
struct View<'a> {
    heading: &'a str,
    mode: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    return_to: &'a str,
    token: &'a str,
}

fn page(state: &AppState, headers: &HeaderMap, status: StatusCode, v: View<'_>, extra: Vec<String>) -> Result<Response, PageError> {
    let t = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let mut cookies: Vec<String> = t.new_cookie.iter().map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect();
    cookies.extend(extra);
    let p = EmailSignInPage {
        heading: v.heading,
        mode: v.mode,
        notice: v.notice,
        error: v.error,
        csrf: &t.token,
        return_to: v.return_to,
        return_to_query: urlencode(v.return_to),
        token: v.token,
    };
    Ok(render(status, &p, &cookies))
}

const CODE_SENT: &str = "If an account with that address exists, we have mailed it a sign-in code. Type it here (this browser only).";

/// Query of `GET /login/email`.
#[derive(Debug, Deserialize)]
pub struct AskQuery {
    return_to: Option<String>,
}

/// `GET /login/email`.
pub async fn ask_show(State(state): State<AppState>, Query(q): Query<AskQuery>, headers: HeaderMap) -> Result<Response, PageError> {
    if !flows(&state)?.sign_in_enabled() {
        return Err(PageError::NotFound);
    }
    let return_to = safe_return_to(q.return_to.as_deref());
    let v = View { heading: "Sign in by e-mail", mode: "ask", notice: None, error: None, return_to: &return_to, token: "" };
    page(&state, &headers, StatusCode::OK, v, Vec::new())
}

/// Form of `POST /login/email`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskForm {
    csrf_token: String,
    return_to: String,
    email: String,
}

/// `POST /login/email`: mails a code (if the account exists) and shows the code form.
pub async fn ask_submit(State(state): State<AppState>, Client(ctx): Client, headers: HeaderMap, PageForm(form): PageForm<AskForm>) -> Result<Response, PageError> {
    let floor = tokio::time::Instant::now() + ANSWER_FLOOR;
    let return_to = safe_return_to(Some(&form.return_to));
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let v = View { heading: "Sign in by e-mail", mode: "ask", notice: None, error: Some("This form has expired. Please try again."), return_to: &return_to, token: "" };
        return page(&state, &headers, StatusCode::FORBIDDEN, v, Vec::new());
    }
    let (token, cookie) = browser_binding(&state, &headers)?;
    let outcome = flows(&state)?.request_sign_in(&form.email, &token.hash(), &ctx).await;
    tokio::time::sleep_until(floor).await;
    match outcome {
        Ok(()) => {
            let v = View { heading: "Check your mail", mode: "code", notice: Some(CODE_SENT), error: None, return_to: &return_to, token: "" };
            page(&state, &headers, StatusCode::OK, v, cookie.into_iter().collect())
        }
        Err(CoreError::Throttled(_)) => {
            let msg = "Too many requests from your network. Please wait a while and try again.";
            let v = View { heading: "Sign in by e-mail", mode: "ask", notice: None, error: Some(msg), return_to: &return_to, token: "" };
            page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, v, Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// The answer to a finished e-mail proof: signed in, or on to the second factor.
async fn finish(state: &AppState, ctx: &RequestContext, session: &SessionCookie, headers: &HeaderMap, outcome: LoginOutcome, return_to: &str) -> Result<Response, PageError> {
    Ok(outcome_response(state, ctx, session, headers, outcome, return_to, Vec::new()).await?)
}

/// Form of `POST /login/email/code`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    csrf_token: String,
    return_to: String,
    code: String,
}

/// `POST /login/email/code`.
pub async fn code_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(Some(&form.return_to));
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let v = View { heading: "Check your mail", mode: "code", notice: None, error: Some("This form has expired. Please try again."), return_to: &return_to, token: "" };
        return page(&state, &headers, StatusCode::FORBIDDEN, v, Vec::new());
    }
    let current = session.signed_in(&state, &ctx).await?;
    let code: String = form.code.chars().take(16).collect();
    match flows(&state)?.sign_in_with_code(&code, browser(&headers).as_ref(), &ctx, current.as_ref()).await {
        Ok(outcome) => finish(&state, &ctx, &session, &headers, outcome, &return_to).await,
        Err(CoreError::Invalid(m)) => {
            let v = View { heading: "Check your mail", mode: "code", notice: None, error: Some(&m), return_to: &return_to, token: "" };
            page(&state, &headers, StatusCode::BAD_REQUEST, v, Vec::new())
        }
        Err(CoreError::InvalidCredentials) => Err(PageError::BadRequest("This account cannot sign in.")),
        Err(e) => Err(e.into()),
    }
}

/// Query of `GET /login/email/link`.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// `GET /login/email/link?token=…`: a button (in the browser that asked), or why not.
pub async fn link_show(State(state): State<AppState>, Query(q): Query<LinkQuery>, headers: HeaderMap) -> Result<Response, PageError> {
    let token: String = q.token.unwrap_or_default().chars().take(128).collect();
    let (status, heading, mode, error) = match flows(&state)?.open_sign_in_link(&token, browser(&headers).as_ref()).await? {
        LinkState::Ready => (StatusCode::OK, "Sign in", "link", None),
        LinkState::OtherBrowser => (StatusCode::OK, "Open the link where you asked for it", "message", Some(LINK_OTHER_BROWSER)),
        LinkState::Unusable => (StatusCode::BAD_REQUEST, "This link does not work", "message", Some(LINK_UNUSABLE)),
    };
    let token = if mode == "link" { token.as_str() } else { "" };
    page(&state, &headers, status, View { heading, mode, notice: None, error, return_to: "/account", token }, Vec::new())
}

/// Form of `POST /login/email/link`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkForm {
    csrf_token: String,
    token: String,
}

/// `POST /login/email/link`: signs in, once.
pub async fn link_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    PageForm(form): PageForm<LinkForm>,
) -> Result<Response, PageError> {
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        return Err(PageError::Forbidden("This form has expired. Open the link again."));
    }
    let current = session.signed_in(&state, &ctx).await?;
    let token: String = form.token.chars().take(128).collect();
    match flows(&state)?.sign_in_with_link(&token, browser(&headers).as_ref(), &ctx, current.as_ref()).await {
        Ok(outcome) => finish(&state, &ctx, &session, &headers, outcome, "/account").await,
        Err(CoreError::Invalid(m)) => {
            let v = View { heading: "This link does not work", mode: "message", notice: None, error: Some(&m), return_to: "/account", token: "" };
            page(&state, &headers, StatusCode::BAD_REQUEST, v, Vec::new())
        }
        Err(CoreError::InvalidCredentials) => Err(PageError::BadRequest("This account cannot sign in.")),
        Err(e) => Err(e.into()),
    }
}
