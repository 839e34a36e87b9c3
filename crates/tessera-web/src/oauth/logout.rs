//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The provider decides; a
//! request that does not prove it comes from the signed-in user's application (a fresh
//! `id_token_hint` about that user) gets a confirmation page whose form carries a CSRF
//! token bound to the session, and only that form's POST ends the session.

use crate::AppState;
use crate::context::{Client, SESSION_COOKIE, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::{MaybeSignedIn, PageForm, SessionCookie};
use crate::params::{self, Pairs};
use crate::render::{render, see_other};
use crate::security::FormTargets;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::accounts::Authenticated;
use tessera_core::oauth::provider::EndSession;
use tessera_core::session::RequestContext;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    done: bool,
    csrf: &'a str,
    request: &'a str,
}

const INVALID: &str = "This sign-out request is not valid";

async fn decide(state: &AppState, p: &Pairs, signed_in: Option<&Authenticated>) -> Result<EndSession, PageError> {
    let get = |n: &str| params::one(p, n);
    let (hint, client_id, uri, st) = match (get("id_token_hint"), get("client_id"), get("post_logout_redirect_uri"), get("state")) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        _ => return Err(PageError::Refused { title: INVALID, message: "A parameter appears more than once.".into() }),
    };
    state
        .provider()
        .end_session(hint.as_deref(), client_id.as_deref(), uri.as_deref(), st.as_deref(), signed_in.map(|w| w.user.id))
        .await
        .map_err(|e| PageError::Refused { title: INVALID, message: e.description().into_owned() })
}

async fn sign_out(state: &AppState, session: &SessionCookie, ctx: &RequestContext) -> Result<String, PageError> {
    if let Some(token) = session.token() {
        state.accounts().logout(token, ctx).await?;
    }
    Ok(set_cookie(SESSION_COOKIE, "", state.config().is_https(), Some(0)))
}

fn redirect_with_state(uri: &str, st: Option<&str>, cookies: &[String]) -> Response {
    match st {
        Some(s) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            see_other(&format!("{uri}{sep}{}", params::encode(&[("state".into(), s.to_owned())])), cookies)
        }
        None => see_other(uri, cookies),
    }
}

/// The confirmation form's token: bound to the session when someone is signed in, else to
/// the pre-sign-in cookie (then there is nothing to end, only a redirect to follow).
fn confirm_token(state: &AppState, headers: &HeaderMap, signed_in: Option<&Authenticated>) -> Result<(String, Vec<String>), PageError> {
    if let Some(who) = signed_in {
        return Ok((csrf::session_token(&state.config().csrf_key, who), Vec::new()));
    }
    let anon = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let cookies = anon.new_cookie.iter().map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect();
    Ok((anon.token, cookies))
}

/// Who asks to end the session: the request's context, session cookie and signed-in user.
struct Caller<'a> {
    ctx: &'a RequestContext,
    session: &'a SessionCookie,
    signed_in: Option<&'a Authenticated>,
    headers: &'a HeaderMap,
}

async fn handle(state: &AppState, caller: Caller<'_>, p: Pairs) -> Result<Response, PageError> {
    let Caller { ctx, session, signed_in, headers } = caller;
    match decide(state, &p, signed_in).await? {
        EndSession::SignOutAndRedirect { uri, state: st } => {
            let clear = sign_out(state, session, ctx).await?;
            Ok(redirect_with_state(&uri, st.as_deref(), &[clear]))
        }
        EndSession::Confirm { redirect } => {
            let (token, cookies) = confirm_token(state, headers, signed_in)?;
            let request = params::encode(&p);
            let page = render(StatusCode::OK, &LogoutPage { done: false, csrf: &token, request: &request }, &cookies);
            Ok(match redirect {
                Some((uri, _)) => FormTargets::Client { uri, issuer: true }.attach(page),
                None => page,
            })
        }
    }
}

/// `GET /oauth2/logout`.
pub async fn get(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    MaybeSignedIn(who): MaybeSignedIn,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let caller = Caller { ctx: &ctx, session: &session, signed_in: who.as_ref(), headers: &headers };
    handle(&state, caller, params::pairs(q.unwrap_or_default().as_bytes())).await
}

/// `POST /oauth2/logout`.
pub async fn post(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    MaybeSignedIn(who): MaybeSignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let caller = Caller { ctx: &ctx, session: &session, signed_in: who.as_ref(), headers: &headers };
    handle(&state, caller, params::pairs(&body)).await
}

/// Form of `POST /oauth2/logout/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmForm {
    csrf_token: String,
    request: String,
    decision: String,
}

/// `POST /oauth2/logout/confirm`: the user confirmed signing out.
pub async fn confirm(
    State(state): State<AppState>,
    Client(ctx): Client,
    session: SessionCookie,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let key = &state.config().csrf_key;
    let token_ok = match &signed_in {
        Some(who) => csrf::verify_session(key, who, &form.csrf_token),
        None => csrf::verify_anonymous(key, &headers, &form.csrf_token),
    };
    if !token_ok || form.decision != "logout" {
        return Err(PageError::Forbidden("This form has expired. Go back to the application and try again."));
    }
    let p = params::pairs(form.request.as_bytes());
    let redirect = match decide(&state, &p, signed_in.as_ref()).await? {
        EndSession::SignOutAndRedirect { uri, state: st } => Some((uri, st)),
        EndSession::Confirm { redirect } => redirect,
    };
    let clear = sign_out(&state, &session, &ctx).await?;
    Ok(match redirect {
        Some((uri, st)) => redirect_with_state(&uri, st.as_deref(), &[clear]),
        None => render(StatusCode::OK, &LogoutPage { done: true, csrf: "", request: "" }, &[clear]),
    })
}
