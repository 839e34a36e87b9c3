//! The authorization endpoint (GET and POST) and the consent screen.

use crate::AppState;
use crate::context::Client;
use crate::csrf;
use crate::error::PageError;
use crate::extract::{Csrf, CsrfForm, MaybeSignedIn, PageForm, SessionCookie};
use crate::params::{self, Pairs};
use crate::render::{render, see_other};
use crate::security::FormTargets;
use crate::url::urlencode;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::oauth::consent::ConsentOutcome;
use tessera_core::oauth::provider::{AuthorizationRequest, AuthorizationResponse, AuthorizeError, Interaction, ResponseMode, paths};
use tessera_core::session::RequestContext;

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    params: &'a [(String, String)],
}

/// Delivers an authorization response to the client: a 303 with query parameters, or an
/// auto-submitting form.
pub(crate) fn deliver(resp: &AuthorizationResponse) -> Response {
    match resp.mode {
        ResponseMode::Query => {
            let sep = if resp.redirect_uri.contains('?') { '&' } else { '?' };
            see_other(&format!("{}{}{}", resp.redirect_uri, sep, params::encode(&resp.params)), &[])
        }
        ResponseMode::FormPost => FormTargets::Client { uri: resp.redirect_uri.clone(), issuer: false }
            .attach(render(StatusCode::OK, &FormPost { action: &resp.redirect_uri, params: &resp.params }, &[])),
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    username: &'a str,
    scopes: Vec<String>,
    csrf: String,
    consent: &'a str,
    redirect_host: String,
}

fn describe_scope(s: &str) -> String {
    match s {
        "openid" => "Know who you are (your account id)".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your e-mail address".into(),
        "offline_access" => "Stay signed in when you are away (refresh tokens)".into(),
        other => format!("Use {other}"),
    }
}

/// `GET /oauth2/authorize`.
pub async fn get(State(state): State<AppState>, Client(ctx): Client, session: SessionCookie, RawQuery(q): RawQuery) -> Response {
    let pairs = params::pairs(q.unwrap_or_default().as_bytes());
    handle(&state, &ctx, &session, pairs).await
}

/// `POST /oauth2/authorize` (form-encoded parameters).
pub async fn post(State(state): State<AppState>, Client(ctx): Client, session: SessionCookie, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return PageError::UnsupportedMediaType.into_response();
    }
    handle(&state, &ctx, &session, params::pairs(&body)).await
}

const CANNOT_COMPLETE: &str = "This sign-in request cannot be completed";

/// Parses and validates an authorization request; failures are already the response (an
/// error page when the client or redirect URI cannot be trusted, else a redirect).
async fn validated(state: &AppState, pairs: &Pairs) -> Result<AuthorizationRequest, Response> {
    let raw = params::authorize(pairs)
        .map_err(|e| PageError::Refused { title: "This sign-in request is not valid", message: e.description().into_owned() }.into_response())?;
    state.provider().validate_authorization(&raw).await.map_err(|e| match e {
        AuthorizeError::Untrusted(msg) => PageError::Refused { title: CANNOT_COMPLETE, message: msg }.into_response(),
        AuthorizeError::Redirect(resp) => deliver(&resp),
        AuthorizeError::Unavailable => PageError::Unavailable("client lookup".into()).into_response(),
    })
}

/// Validates the request, then (only then) looks up the session and lets the provider decide.
async fn handle(state: &AppState, ctx: &RequestContext, session: &SessionCookie, pairs: Pairs) -> Response {
    let provider = state.provider();
    let req = match validated(state, &pairs).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let who = match session.signed_in(state, ctx).await {
        Ok(w) => w,
        Err(e) => return PageError::from(e).into_response(),
    };
    match provider.decide(&req, who.as_ref()).await {
        Err(e) => deliver(&provider.error_response(&req, &e)),
        Ok(Interaction::Respond(resp)) => deliver(&resp),
        Ok(Interaction::Login) => {
            // Back to this request after sign-in, without prompt=login and max_age (which
            // the sign-in satisfies; keeping max_age=0 would send the user round again).
            let again: Pairs = pairs
                .iter()
                .filter_map(|(k, v)| {
                    if k == "max_age" {
                        return None;
                    }
                    if k == "prompt" {
                        let rest: Vec<&str> = v.split(' ').filter(|p| *p != "login" && *p != "select_account" && !p.is_empty()).collect();
                        return (!rest.is_empty()).then(|| (k.clone(), rest.join(" ")));
                    }
                    Some((k.clone(), v.clone()))
                })
                .collect();
            let return_to = format!("{}?{}", paths::AUTHORIZE, params::encode(&again));
            let mut to = format!("/login?return_to={}", urlencode(&return_to));
            if let Some(h) = &req.login_hint {
                to.push_str(&format!("&login_hint={}", urlencode(h)));
            }
            see_other(&to, &[])
        }
        Ok(Interaction::StepUp(level)) => {
            let return_to = format!("{}?{}", paths::AUTHORIZE, params::encode(&pairs));
            see_other(&format!("/login/mfa?level={}&return_to={}", level.as_str(), urlencode(&return_to)), &[])
        }
        Ok(Interaction::Consent(ticket)) => {
            let Some(who) = who else { return PageError::Internal("consent without a session".into()).into_response() };
            let page = ConsentPage {
                client_name: &req.client.name,
                username: who.user.username.as_str(),
                scopes: req.scope.iter().map(describe_scope).collect(),
                csrf: csrf::session_token(&state.config().csrf_key, &who),
                consent: ticket.handle(),
                redirect_host: host_of(&req.redirect_uri),
            };
            FormTargets::Client { uri: req.redirect_uri.clone(), issuer: true }.attach(render(StatusCode::OK, &page, &[]))
        }
    }
}

fn host_of(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

/// Form of `POST /oauth2/consent`: the answer and the handle of the consent screen (the
/// request itself stays on the server).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentForm {
    csrf_token: String,
    consent: String,
    decision: String,
}

impl CsrfForm for ConsentForm {
    const EXPIRED: &'static str = "This form has expired. Go back to the application and try again.";
    const SIGNED_OUT: &'static str = "You are no longer signed in. Go back to the application and try again.";
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /oauth2/consent`: [`Csrf`] has refused a form without a session or with a token
/// not bound to it.
pub async fn consent(
    State(state): State<AppState>,
    MaybeSignedIn(who): MaybeSignedIn,
    Csrf(PageForm(form)): Csrf<PageForm<ConsentForm>>,
) -> Result<Response, PageError> {
    let who = who.ok_or(PageError::Forbidden(ConsentForm::SIGNED_OUT))?;
    let approved = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return Err(PageError::BadRequest("Choose Allow or Deny.")),
    };
    match state.provider().give_consent(&form.consent, &who, approved).await {
        Ok(ConsentOutcome::Respond(resp)) => Ok(deliver(&resp)),
        Ok(ConsentOutcome::Reauthorize(pairs)) => Ok(see_other(&format!("{}?{}", paths::AUTHORIZE, params::encode(&pairs)), &[])),
        Ok(ConsentOutcome::Refused(msg)) => Err(PageError::Refused { title: CANNOT_COMPLETE, message: msg }),
        Err(e) => Err(PageError::Internal(e.to_string())),
    }
}
