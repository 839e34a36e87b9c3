//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

use crate::AppState;
use crate::context::{Client, PageForm, SESSION_COOKIE, cookie, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::{PageError, error_page};
use crate::oauth::params::{self, Pairs};
use crate::pages::{render, see_other};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::oauth::provider::EndSession;
use tessera_core::secret::SecretToken;
use tessera_core::session::RequestContext;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    done: bool,
    csrf: &'a str,
    request: &'a str,
}

async fn decide(state: &AppState, p: &Pairs) -> Result<EndSession, Response> {
    let get = |n: &str| params::one(p, n);
    let (hint, client_id, uri, st) = match (get("id_token_hint"), get("client_id"), get("post_logout_redirect_uri"), get("state")) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        _ => return Err(error_page(StatusCode::BAD_REQUEST, "This sign-out request is not valid", "A parameter appears more than once.")),
    };
    state
        .provider()
        .end_session(hint.as_deref(), client_id.as_deref(), uri.as_deref(), st.as_deref())
        .await
        .map_err(|e| error_page(StatusCode::BAD_REQUEST, "This sign-out request is not valid", &e.description()))
}

async fn sign_out(state: &AppState, headers: &HeaderMap, ctx: &RequestContext) -> Result<String, PageError> {
    if let Some(token) = cookie(headers, SESSION_COOKIE).and_then(SecretToken::from_client) {
        state.accounts().logout(&token, ctx).await?;
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

async fn handle(state: &AppState, ctx: &RequestContext, headers: &HeaderMap, p: Pairs) -> Response {
    match decide(state, &p).await {
        Err(r) => r,
        Ok(EndSession::SignOutAndRedirect { uri, state: st }) => match sign_out(state, headers, ctx).await {
            Ok(clear) => redirect_with_state(&uri, st.as_deref(), &[clear]),
            Err(e) => e.into_response(),
        },
        Ok(EndSession::Confirm { .. }) => {
            let csrf = match csrf::anonymous_token(&state.config().csrf_key, headers) {
                Ok(c) => c,
                Err(e) => return PageError::from(e).into_response(),
            };
            let cookies: Vec<String> =
                csrf.new_cookie.iter().map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect();
            let request = params::encode(&p);
            render(StatusCode::OK, &LogoutPage { done: false, csrf: &csrf.token, request: &request }, &cookies)
        }
    }
}

/// `GET /oauth2/logout`.
pub async fn get(State(state): State<AppState>, Client(ctx): Client, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&state, &ctx, &headers, params::pairs(q.unwrap_or_default().as_bytes())).await
}

/// `POST /oauth2/logout`.
pub async fn post(State(state): State<AppState>, Client(ctx): Client, headers: HeaderMap, body: Bytes) -> Response {
    handle(&state, &ctx, &headers, params::pairs(&body)).await
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
pub async fn confirm(State(state): State<AppState>, Client(ctx): Client, headers: HeaderMap, PageForm(form): PageForm<ConfirmForm>) -> Response {
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) || form.decision != "logout" {
        return PageError::Forbidden("This form has expired. Go back to the application and try again.").into_response();
    }
    let p = params::pairs(form.request.as_bytes());
    let redirect = match decide(&state, &p).await {
        Err(r) => return r,
        Ok(EndSession::SignOutAndRedirect { uri, state: st }) => Some((uri, st)),
        Ok(EndSession::Confirm { redirect }) => redirect,
    };
    let clear = match sign_out(&state, &headers, &ctx).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match redirect {
        Some((uri, st)) => redirect_with_state(&uri, st.as_deref(), &[clear]),
        None => render(StatusCode::OK, &LogoutPage { done: true, csrf: "", request: "" }, &[clear]),
    }
}
