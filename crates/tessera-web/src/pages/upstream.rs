//! Upstream sign-in pages: `GET /login/upstream/{name}` starts (a browser-binding cookie,
//! then the provider), `GET /login/upstream/{name}/callback` completes (any failure is an
//! error page and no session), and `/login/link` asks for the local account's password
//! before an upstream identity is linked to it.

use crate::AppState;
use crate::context::{Client, cookie, set_cookie};
use crate::csrf;
use crate::error::PageError;
use crate::extract::{PageForm, SessionCookie};
use crate::pages::login::outcome_response;
use crate::render::{render, see_other};
use crate::url::safe_return_to;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::federation::{CallbackParams, Completed};
use tessera_core::secret::{Password, SecretToken};
use tessera_core::session::RequestContext;

/// The cookie binding an upstream sign-in to the browser that started it.
pub const UPSTREAM_COOKIE: &str = "tessera_upstream";
/// The cookie naming a link waiting for the local account's password.
pub const LINK_COOKIE: &str = "tessera_link";
const COOKIE_MAX_AGE: i64 = 600;

fn failed(message: String) -> PageError {
    PageError::Refused { title: "Sign-in failed", message }
}

fn core_failure(e: CoreError) -> PageError {
    match e {
        CoreError::Invalid(msg) => failed(msg),
        CoreError::NotFound => PageError::NotFound,
        CoreError::InvalidCredentials => failed("This account cannot sign in.".into()),
        other => other.into(),
    }
}

fn federation(state: &AppState) -> Result<&tessera_core::federation::Federation, PageError> {
    state.federation().ok_or(PageError::NotFound)
}

/// Query of `GET /login/upstream/{name}`.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

/// `GET /login/upstream/{name}`.
pub async fn start(State(state): State<AppState>, Path(name): Path<String>, Query(q): Query<StartQuery>) -> Result<Response, PageError> {
    let return_to = safe_return_to(q.return_to.as_deref());
    let begun = federation(&state)?.begin(&name, &return_to).await.map_err(core_failure)?;
    let c = set_cookie(UPSTREAM_COOKIE, begun.browser.expose(), state.config().is_https(), Some(COOKIE_MAX_AGE));
    Ok(see_other(begun.redirect.as_str(), &[c]))
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Turns a completed upstream sign-in into cookies and a redirect.
async fn finish(state: &AppState, ctx: &RequestContext, session: &SessionCookie, headers: &HeaderMap, done: Completed) -> Result<Response, PageError> {
    let secure = state.config().is_https();
    let clear = |name: &str| set_cookie(name, "", secure, Some(0));
    match done {
        Completed::SignedIn { outcome, return_to } => {
            let extra = vec![clear(UPSTREAM_COOKIE), clear(LINK_COOKIE)];
            Ok(outcome_response(state, ctx, session, headers, outcome, &return_to, extra).await?)
        }
        Completed::LinkRequired { token, .. } => {
            let c = set_cookie(LINK_COOKIE, token.expose(), secure, Some(COOKIE_MAX_AGE));
            Ok(see_other("/login/link", &[c, clear(UPSTREAM_COOKIE)]))
        }
    }
}

/// `GET /login/upstream/{name}/callback`.
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<CallbackQuery>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let browser = cookie(&headers, UPSTREAM_COOKIE).and_then(SecretToken::from_client);
    let current = session.signed_in(&state, &ctx).await?;
    let params = CallbackParams { code: q.code, state: q.state, iss: q.iss, error: q.error };
    let done = federation(&state)?.complete(&name, params, browser.as_ref(), current.as_ref(), &ctx).await.map_err(core_failure)?;
    finish(&state, &ctx, &session, &headers, done).await
}

#[derive(Template)]
#[template(path = "upstream_link.html")]
struct LinkPage<'a> {
    csrf: &'a str,
    provider: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

fn link_page(state: &AppState, headers: &HeaderMap, status: StatusCode, provider: &str, username: &str, error: Option<&str>) -> Result<Response, PageError> {
    let csrf = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let cookies: Vec<String> =
        csrf.new_cookie.iter().map(|c| set_cookie(csrf::CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect();
    Ok(render(status, &LinkPage { csrf: &csrf.token, provider, username, error }, &cookies))
}

fn link_token(headers: &HeaderMap) -> Result<SecretToken, PageError> {
    cookie(headers, LINK_COOKIE)
        .and_then(SecretToken::from_client)
        .ok_or_else(|| failed("There is no sign-in waiting to be linked in this browser. Please start again.".into()))
}

/// `GET /login/link`.
pub async fn link_show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let token = link_token(&headers)?;
    let view = federation(&state)?.pending_link(&token).await.map_err(|_| failed("This link request has expired. Please start again.".into()))?;
    link_page(&state, &headers, StatusCode::OK, &view.provider, &view.username, None)
}

/// Form of `POST /login/link`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkForm {
    csrf_token: String,
    password: String,
}

/// `POST /login/link`.
pub async fn link_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    headers: HeaderMap,
    PageForm(form): PageForm<LinkForm>,
) -> Result<Response, PageError> {
    let token = link_token(&headers)?;
    let fed = federation(&state)?;
    let view = fed.pending_link(&token).await.map_err(|_| failed("This link request has expired. Please start again.".into()))?;
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        return link_page(&state, &headers, StatusCode::FORBIDDEN, &view.provider, &view.username, Some("This form has expired. Please try again."));
    }
    let current = session.signed_in(&state, &ctx).await?;
    match fed.confirm_link(&token, &Password::new(form.password), current.as_ref(), &ctx).await {
        Ok(done) => finish(&state, &ctx, &session, &headers, done).await,
        Err(CoreError::InvalidCredentials) => {
            link_page(&state, &headers, StatusCode::UNAUTHORIZED, &view.provider, &view.username, Some("Incorrect password."))
        }
        Err(CoreError::Throttled(_)) => link_page(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &view.provider,
            &view.username,
            Some(crate::pages::login::THROTTLED),
        ),
        Err(e) => Err(core_failure(e)),
    }
}
