//! Address verification pages: the mailed link's page (`GET` shows a confirm button and
//! uses nothing up; `POST` confirms, once) and the account page's "send me a link". The link
//! works in the browser that asked for it, or anywhere once the account's owner signs in.

use crate::AppState;
use crate::context::{Client, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::{Csrf, MaybeSignedIn, PageForm, SignedIn};
use crate::pages::CsrfOnly;
use crate::pages::email::{browser, browser_binding, flows};
use crate::render::{render, see_other};
use crate::url::urlencode;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::mail::flows::VerifyState;

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage<'a> {
    heading: &'a str,
    message: Option<&'a str>,
    ready: bool,
    done: bool,
    csrf: &'a str,
    token: &'a str,
    login_link: Option<String>,
}

/// Query of `GET /email/verify`.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    token: Option<String>,
}

fn sign_in_link(token: &str) -> String {
    format!("/login?return_to={}", urlencode(&format!("/email/verify?token={token}")))
}

/// `GET /email/verify?token=…`.
pub async fn show(
    State(state): State<AppState>,
    MaybeSignedIn(who): MaybeSignedIn,
    Query(q): Query<VerifyQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let token: String = q.token.unwrap_or_default().chars().take(128).collect();
    let signed_in = who.as_ref().map(|w| w.user.id);
    let state_of_link = flows(&state)?.open_verification(&token, browser(&headers).as_ref(), signed_in).await?;
    let (status, page) = match state_of_link {
        VerifyState::Ready => {
            // The form posts with the session's token when signed in, else the pre-session one.
            let (csrf, cookies) = match &who {
                Some(w) => (csrf::session_token(&state.config().csrf_key, w), Vec::new()),
                None => {
                    let t = csrf::anonymous_token(&state.config().csrf_key, &headers)?;
                    let c = t.new_cookie.iter().map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None)).collect::<Vec<_>>();
                    (t.token, c)
                }
            };
            let page = VerifyPage { heading: "Confirm your e-mail address", message: None, ready: true, done: false, csrf: &csrf, token: &token, login_link: None };
            return Ok(render(StatusCode::OK, &page, &cookies));
        }
        VerifyState::SignInFirst => (
            StatusCode::OK,
            VerifyPage {
                heading: "Sign in to confirm your address",
                message: Some("This link was asked for in another browser. Sign in to your account here to use it."),
                ready: false,
                done: false,
                csrf: "",
                token: "",
                login_link: Some(sign_in_link(&token)),
            },
        ),
        VerifyState::Unusable => (
            StatusCode::BAD_REQUEST,
            VerifyPage {
                heading: "This link does not work",
                message: Some(tessera_core::mail::flows::VERIFY_UNUSABLE),
                ready: false,
                done: false,
                csrf: "",
                token: "",
                login_link: None,
            },
        ),
    };
    Ok(render(status, &page, &[]))
}

/// Form of `POST /email/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyForm {
    csrf_token: String,
    token: String,
}

/// `POST /email/verify`: confirms the address, once.
pub async fn confirm(
    State(state): State<AppState>,
    MaybeSignedIn(who): MaybeSignedIn,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<VerifyForm>,
) -> Result<Response, PageError> {
    let csrf_ok = match &who {
        Some(w) => csrf::verify_session(&state.config().csrf_key, w, &form.csrf_token),
        None => csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token),
    };
    if !csrf_ok {
        return Err(PageError::Forbidden("This form has expired. Open the link again."));
    }
    let token: String = form.token.chars().take(128).collect();
    let signed_in = who.as_ref().map(|w| w.user.id);
    let flows = flows(&state)?;
    if flows.open_verification(&token, browser(&headers).as_ref(), signed_in).await? == VerifyState::SignInFirst {
        return Ok(see_other(&sign_in_link(&token), &[]));
    }
    let (status, heading, message, done) = match flows.confirm_verification(&token, browser(&headers).as_ref(), signed_in, &ctx).await {
        Ok(()) => (StatusCode::OK, "Address confirmed", "Thank you: your e-mail address is confirmed.", true),
        Err(CoreError::Invalid(_)) => (StatusCode::BAD_REQUEST, "This link does not work", tessera_core::mail::flows::VERIFY_UNUSABLE, false),
        Err(e) => return Err(e.into()),
    };
    let page = VerifyPage { heading, message: Some(message), ready: false, done, csrf: "", token: "", login_link: None };
    Ok(render(status, &page, &[]))
}

/// `POST /account/email/verify`: mails a verification link for the signed-in user's address.
pub async fn send(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    headers: HeaderMap,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    let (token, cookie) = browser_binding(&state, &headers)?;
    let sent = flows(&state)?.send_verification(&who.user, Some(&token.hash()), &ctx).await?;
    let to = if sent { "/account?done=verification_sent" } else { "/account?done=verification_not_sent" };
    Ok(see_other(to, &cookie.into_iter().collect::<Vec<_>>()))
}
