//! Self-service sign-up (when enabled) and the shared "create an account" form.

use crate::AppState;
use crate::context::{Client, set_cookie};
use crate::csrf::{self, CSRF_COOKIE};
use crate::error::PageError;
use crate::extract::PageForm;
use crate::render::render;
use crate::url::{safe_return_to, urlencode};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::CoreError;
use tessera_core::accounts::CreateUser;
use tessera_core::secret::Password;

#[derive(Template)]
#[template(path = "signup.html")]
pub(crate) struct AccountForm<'a> {
    pub heading: &'a str,
    pub intro: Option<&'a str>,
    pub action: &'a str,
    pub button: &'a str,
    pub csrf: &'a str,
    pub hidden_name: &'a str,
    pub hidden_value: &'a str,
    pub hidden_value_query: String,
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
    pub min_password: usize,
    pub show_login_link: bool,
}

/// Values typed into the form, echoed back when it is shown again.
#[derive(Debug, Default)]
pub(crate) struct Typed<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
}

pub(crate) fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    setup: Option<&str>,
    return_to: &str,
    typed: Typed<'_>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let csrf = csrf::anonymous_token(&state.config().csrf_key, headers)?;
    let cookies: Vec<String> = csrf
        .new_cookie
        .iter()
        .map(|c| set_cookie(CSRF_COOKIE, c.expose(), state.config().is_https(), None))
        .collect();
    let page = match setup {
        Some(token) => AccountForm {
            heading: "Create the first administrator",
            intro: Some("This one-time link sets up the administrator account of this Tessera server."),
            action: "/setup",
            button: "Create administrator",
            csrf: &csrf.token,
            hidden_name: "token",
            hidden_value: token,
            hidden_value_query: String::new(),
            username: typed.username,
            email: typed.email,
            name: typed.name,
            error,
            min_password: state.config().min_password_chars,
            show_login_link: false,
        },
        None => AccountForm {
            heading: "Create an account",
            intro: None,
            action: "/signup",
            button: "Create account",
            csrf: &csrf.token,
            hidden_name: "return_to",
            hidden_value: return_to,
            hidden_value_query: urlencode(return_to),
            username: typed.username,
            email: typed.email,
            name: typed.name,
            error,
            min_password: state.config().min_password_chars,
            show_login_link: true,
        },
    };
    Ok(render(status, &page, &cookies))
}

/// Query of `GET /signup`.
#[derive(Debug, Deserialize)]
pub struct SignupQuery {
    return_to: Option<String>,
}

/// `GET /signup`.
pub async fn show(
    State(state): State<AppState>,
    Query(q): Query<SignupQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if !state.config().signup_enabled {
        return Err(PageError::NotFound);
    }
    let return_to = safe_return_to(q.return_to.as_deref());
    form_page(&state, &headers, StatusCode::OK, None, &return_to, Typed::default(), None)
}

/// Form of `POST /signup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupForm {
    csrf_token: String,
    return_to: String,
    username: String,
    email: String,
    name: String,
    password: String,
}

/// The answer to a sign-up, whether the account was created or its username or e-mail
/// address was taken: the same status, body and (no) cookies, so sign-up cannot enumerate
/// accounts. Nobody is signed in by signing up.
#[derive(Template)]
#[template(path = "signup_done.html")]
struct SignupDone {
    return_to_query: String,
}

/// `POST /signup`.
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<SignupForm>,
) -> Result<Response, PageError> {
    if !state.config().signup_enabled {
        return Err(PageError::NotFound);
    }
    let return_to = safe_return_to(Some(&form.return_to));
    let typed = Typed { username: &form.username, email: &form.email, name: &form.name };
    if !csrf::verify_anonymous(&state.config().csrf_key, &headers, &form.csrf_token) {
        let msg = "This form has expired. Please try again.";
        return form_page(&state, &headers, StatusCode::FORBIDDEN, None, &return_to, typed, Some(msg));
    }
    let input = CreateUser {
        username: form.username.clone(),
        email: Some(form.email.clone()),
        display_name: Some(form.name.clone()),
        password: Some(Password::new(form.password.clone())),
        roles: vec![],
    };
    match state.accounts().sign_up(input, &ctx).await {
        Ok(()) => {
            // A verification link for the address typed (sent only when it is this account's
            // and unverified; the answer is the same either way). Sign-up sets no cookie, so
            // the link is bound to this browser only if it already has a mail cookie; else
            // it works once the new user signs in.
            if let Some(flows) = state.email().filter(|_| !form.email.trim().is_empty()) {
                flows.send_verification_to(&form.email, crate::pages::email::browser(&headers).as_ref(), &ctx).await?;
            }
            Ok(render(StatusCode::OK, &SignupDone { return_to_query: urlencode(&return_to) }, &[]))
        }
        Err(CoreError::Invalid(msg)) => form_page(&state, &headers, StatusCode::BAD_REQUEST, None, &return_to, typed, Some(&msg)),
        Err(e) => Err(e.into()),
    }
}
