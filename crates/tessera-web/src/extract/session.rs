//! The request's session: the session cookie is read once per request and the session it
//! names is looked up at most once, whichever extractors ask (the result is kept in the
//! request's extensions).

use crate::AppState;
use crate::context::{Client, SESSION_COOKIE, cookie};
use crate::error::PageError;
use crate::url::urlencode;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use std::sync::Arc;
use tessera_core::CoreError;
use tessera_core::accounts::Authenticated;
use tessera_core::secret::SecretToken;
use tessera_core::session::RequestContext;
use tokio::sync::OnceCell;

/// The session cookie of a request and, once looked up, the session it names.
#[derive(Clone)]
pub struct SessionCookie {
    token: Option<SecretToken>,
    lookup: Arc<OnceCell<Option<Authenticated>>>,
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookie").field("present", &self.token.is_some()).finish()
    }
}

impl SessionCookie {
    /// The request's session cookie, read from the headers the first time only.
    pub(crate) fn of(parts: &mut Parts) -> Self {
        if let Some(known) = parts.extensions.get::<SessionCookie>() {
            return known.clone();
        }
        let token = cookie(&parts.headers, SESSION_COOKIE).and_then(SecretToken::from_client);
        let this = SessionCookie { token, lookup: Arc::default() };
        parts.extensions.insert(this.clone());
        this
    }

    /// The session id the browser sent, if any (to end that session).
    pub fn token(&self) -> Option<&SecretToken> {
        self.token.as_ref()
    }

    /// The signed-in user, if the cookie names a live session; looked up once per request.
    pub async fn signed_in(&self, state: &AppState, ctx: &RequestContext) -> Result<Option<Authenticated>, CoreError> {
        let Some(token) = &self.token else { return Ok(None) };
        let found = self
            .lookup
            .get_or_try_init(|| async {
                match state.accounts().authenticate(token, ctx).await {
                    Ok(a) => Ok(Some(a)),
                    Err(CoreError::Unauthenticated) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(found.clone())
    }
}

impl FromRequestParts<AppState> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(SessionCookie::of(parts))
    }
}

/// Looks up the request's session (once per request).
async fn lookup(parts: &mut Parts, state: &AppState) -> Result<Option<Authenticated>, CoreError> {
    let Client(ctx) = Client::from_request_parts(parts, state).await.unwrap_or_else(|e| match e {});
    SessionCookie::of(parts).signed_in(state, &ctx).await
}

/// The session could not be looked up (a storage fault): an error page.
#[derive(Debug)]
pub struct SessionFault(pub CoreError);

impl IntoResponse for SessionFault {
    fn into_response(self) -> Response {
        PageError::from(self.0).into_response()
    }
}

/// The signed-in user, if the request carries a live session.
#[derive(Debug, Clone)]
pub struct MaybeSignedIn(pub Option<Authenticated>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = SessionFault;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        lookup(parts, state).await.map(MaybeSignedIn).map_err(SessionFault)
    }
}

/// The signed-in user; requests without a live session are sent to the login page (back
/// to this page for a GET, to the account page otherwise).
#[derive(Debug, Clone)]
pub struct SignedIn(pub Authenticated);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match lookup(parts, state).await {
            Ok(Some(who)) => Ok(SignedIn(who)),
            Ok(None) => {
                let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/account");
                let target = if parts.method == http::Method::GET { target } else { "/account" };
                Err(Redirect::to(&format!("/login?return_to={}", urlencode(target))).into_response())
            }
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}
