//! The signed-in user's account page: profile, sessions (end any), password change.

use crate::AppState;
use crate::context::Client;
use crate::csrf;
use crate::error::PageError;
use crate::extract::{Csrf, CsrfForm, PageForm, SignedIn};
use crate::pages::CsrfOnly;
use crate::pages::reauth::{reauth_link, refused};
use crate::render::{render, see_other};
use crate::url::{safe_return_to, urlencode};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use http::StatusCode;
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::accounts::Authenticated;
use tessera_core::ids::SessionHandle;
use tessera_core::secret::Password;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

struct SessionRow {
    handle: String,
    device: String,
    ip: String,
    last_seen: String,
    last_seen_iso: String,
    current: bool,
    methods: String,
}

/// "password + authenticator app"-style summary of a session's `amr`.
fn describe_methods(amr: &[String]) -> String {
    let names: Vec<&str> = amr
        .iter()
        .filter_map(|m| match m.as_str() {
            "pwd" => Some("password"),
            "otp" => Some("one-time code"),
            "hwk" | "swk" => Some("passkey"),
            "fed" => Some("another provider"),
            _ => None,
        })
        .collect();
    if names.is_empty() { "unknown".into() } else { names.join(" + ") }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    username: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    email_flows: bool,
    display_name: Option<&'a str>,
    sessions: Vec<SessionRow>,
    csrf: String,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    min_password: usize,
    recent: bool,
    reauth_link: String,
    passkeys_enabled: bool,
    passkeys: Vec<PasskeyRow>,
    totp_enabled: bool,
    has_second_factor: bool,
    recovery_left: u32,
    continue_to: Option<String>,
    continue_query: String,
    upstream_tokens: Vec<crate::pages::upstream_tokens::KeptTokenRow>,
    identities: Vec<crate::pages::identities::IdentityRow>,
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: Option<String>,
}

/// `GET /`.
pub async fn root() -> Redirect {
    Redirect::to("/account")
}

/// Query of `GET /account`.
#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
    /// Where to go on once a second factor is set up (an application that requires one).
    #[serde(rename = "continue")]
    continue_to: Option<String>,
}

pub(crate) async fn account_page(
    state: &AppState,
    who: &Authenticated,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    account_page_continuing(state, who, status, notice, error, None).await
}

/// The account page; with `continue_to`, it offers to go back to the application that
/// asked for a second factor once one is set up.
pub(crate) async fn account_page_continuing(
    state: &AppState,
    who: &Authenticated,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    continue_to: Option<String>,
) -> Result<Response, PageError> {
    let sessions = state.accounts().list_sessions(who.user.id).await?;
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let rows = sessions
        .iter()
        .map(|s| SessionRow {
            handle: s.handle.to_string(),
            device: s.device(),
            ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
            last_seen: s.last_seen_at.format(fmt).unwrap_or_default(),
            last_seen_iso: s.last_seen_at.format(&Rfc3339).unwrap_or_default(),
            current: s.handle == who.session.handle,
            methods: describe_methods(&s.amr),
        })
        .collect();
    let factors = state.accounts().factor_summary(who.user.id).await?;
    let passkeys = state
        .accounts()
        .list_passkeys(who.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id.to_string(),
            name: p.name,
            created: p.created_at.format(fmt).unwrap_or_default(),
            last_used: p.last_used_at.and_then(|t| t.format(fmt).ok()),
        })
        .collect();
    let upstream_tokens = crate::pages::upstream_tokens::rows(state, who).await?;
    let page = AccountPage {
        username: who.user.username.as_str(),
        email: who.user.email.as_ref().map(|e| e.as_str()),
        email_verified: who.user.email_verified(),
        email_flows: state.email().is_some(),
        display_name: who.user.display_name.as_ref().map(|n| n.as_str()),
        sessions: rows,
        csrf: csrf::session_token(&state.config().csrf_key, who),
        notice,
        error,
        min_password: state.config().min_password_chars,
        recent: state.accounts().recently_authenticated(who),
        reauth_link: reauth_link(who, "/account"),
        passkeys_enabled: state.accounts().passkeys_enabled(),
        passkeys,
        totp_enabled: factors.totp,
        has_second_factor: factors.has_second_factor(),
        recovery_left: factors.recovery_codes,
        continue_query: continue_to.as_deref().map(|c| format!("&continue={}", urlencode(c))).unwrap_or_default(),
        continue_to,
        upstream_tokens,
        identities: crate::pages::identities::identity_rows(state, who.user.id).await?,
    };
    Ok(render(status, &page, &[]))
}

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Query(q): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let notice = match q.done.as_deref() {
        Some("session_ended") => Some("The session has been ended."),
        Some("password_changed") => Some("Your password has been changed. Your other sessions have been signed out."),
        Some("passkey_added") => Some("Your passkey has been added."),
        Some("passkey_renamed") => Some("The passkey has been renamed."),
        Some("passkey_removed") => Some("The passkey has been removed."),
        Some("totp_enabled") => Some("Two-step verification with an authenticator app is on."),
        Some("totp_removed") => Some("The authenticator app has been turned off."),
        Some("verification_sent") => Some("We have sent a link to your e-mail address. Open it in this browser to confirm the address."),
        Some("verification_not_sent") => Some("No link was sent: the address is confirmed already, or several links were sent recently."),
        Some("upstream_tokens_dropped") => Some("The kept upstream tokens have been dropped."),
        Some("identity_unlinked") => Some("The sign-in has been unlinked."),
        _ => None,
    };
    let continue_to = q.continue_to.as_deref().map(|c| safe_return_to(Some(c)));
    account_page_continuing(&state, &who, StatusCode::OK, notice, None, continue_to).await
}

/// `POST /account/sessions/{handle}/end`.
pub async fn end_session(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Path(handle): Path<String>,
    Csrf(PageForm(_)): Csrf<PageForm<CsrfOnly>>,
) -> Result<Response, PageError> {
    let handle: SessionHandle = handle.parse().map_err(|_| PageError::NotFound)?;
    match state.accounts().end_session(&who, handle, &ctx).await {
        Ok(()) => Ok(see_other("/account?done=session_ended", &[])),
        Err(CoreError::NotFound) => Ok(see_other("/account", &[])),
        Err(e) => refused(&who, e),
    }
}

/// Form of `POST /account/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
}

impl CsrfForm for PasswordForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Client(ctx): Client,
    Csrf(PageForm(form)): Csrf<PageForm<PasswordForm>>,
) -> Result<Response, PageError> {
    let current = Password::new(form.current_password);
    let new = Password::new(form.new_password);
    match state.accounts().change_password(&who, &current, &new, &ctx).await {
        Ok(_) => Ok(see_other("/account?done=password_changed", &[])),
        Err(CoreError::Invalid(msg)) => account_page(&state, &who, StatusCode::BAD_REQUEST, None, Some(&msg)).await,
        Err(e) => refused(&who, e),
    }
}
