//! CSRF-checked bodies: [`Csrf`] checks a token bound to the signed-in session,
//! [`AnonymousCsrf`] one bound to the pre-sign-in cookie (see [`crate::csrf`]). Either
//! reads the body first (so a form that cannot be read is answered as before), then checks
//! the token it carries, and yields the body only if it verifies.

use crate::AppState;
use crate::context::Client;
use crate::csrf;
use crate::error::{JsonError, PageError};
use crate::extract::body::{JsonBody, PageForm};
use crate::extract::session::SessionCookie;
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;
use tessera_core::CoreError;

/// A form or JSON body that carries a CSRF token.
pub trait CsrfForm {
    /// The error page's message when the token does not verify.
    const EXPIRED: &'static str = "This form has expired. Reload the page and try again.";
    /// The error page's message when the form needs a session and there is none.
    const SIGNED_OUT: &'static str = Self::EXPIRED;
    /// The token the page put in the form.
    fn csrf_token(&self) -> &str;
}

/// A body extractor whose payload carries a CSRF token, and its answers to a bad one.
pub trait CsrfCarrier: FromRequest<AppState, Rejection: From<CoreError>> + Send {
    /// The submitted token.
    fn token(&self) -> &str;
    /// The answer when the token does not verify.
    fn expired() -> Self::Rejection;
    /// The answer when a session-bound token comes without a session.
    fn signed_out() -> Self::Rejection;
}

impl<T: CsrfForm + DeserializeOwned + Send> CsrfCarrier for PageForm<T> {
    fn token(&self) -> &str {
        self.0.csrf_token()
    }
    fn expired() -> PageError {
        PageError::Forbidden(T::EXPIRED)
    }
    fn signed_out() -> PageError {
        PageError::Forbidden(T::SIGNED_OUT)
    }
}

impl<T: CsrfForm + DeserializeOwned + Send> CsrfCarrier for JsonBody<T> {
    fn token(&self) -> &str {
        self.0.csrf_token()
    }
    fn expired() -> JsonError {
        JsonError::forbidden()
    }
    fn signed_out() -> JsonError {
        JsonError::forbidden()
    }
}

/// A body whose CSRF token is bound to the signed-in session.
#[derive(Debug)]
pub struct Csrf<E>(pub E);

impl<E: CsrfCarrier> FromRequest<AppState> for Csrf<E> {
    type Rejection = E::Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Client(ctx) = Client::from_request_parts(&mut parts, state).await.unwrap_or_else(|e| match e {});
        let session = SessionCookie::of(&mut parts);
        let inner = E::from_request(Request::from_parts(parts, body), state).await?;
        let Some(who) = session.signed_in(state, &ctx).await? else { return Err(E::signed_out()) };
        if csrf::verify_session(&state.config().csrf_key, &who, inner.token()) { Ok(Csrf(inner)) } else { Err(E::expired()) }
    }
}

/// A body whose CSRF token is bound to the pre-sign-in cookie.
#[derive(Debug)]
pub struct AnonymousCsrf<E>(pub E);

impl<E: CsrfCarrier> FromRequest<AppState> for AnonymousCsrf<E> {
    type Rejection = E::Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let inner = E::from_request(req, state).await?;
        if csrf::verify_anonymous(&state.config().csrf_key, &headers, inner.token()) { Ok(AnonymousCsrf(inner)) } else { Err(E::expired()) }
    }
}
