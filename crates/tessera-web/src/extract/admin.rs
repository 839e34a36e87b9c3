//! The admin API caller. Today an administrator presents the configured admin API key or an
//! access token minted for the admin API; further kinds of credentials (API keys) are added
//! here, as variants of [`Admin`].

use crate::AppState;
use crate::error::ApiError;
use crate::context::bearer;
use axum::extract::FromRequestParts;
use http::StatusCode;
use http::request::Parts;
use tessera_core::CoreError;
use tessera_core::ids::UserId;
use tessera_core::oauth::admin_access::ADMIN_SCOPE;
use tessera_core::secret::{TokenHash, constant_time_eq};

/// Who is calling the admin API: the admin API key, or an admin API access token of a
/// current administrator whose session lives ([`Provider::verify_admin_token`]). The
/// admin routes run this extractor as a route layer, so it is checked before any handler
/// reads the path, the query or the body.
///
/// [`Provider::verify_admin_token`]: tessera_core::oauth::provider::Provider::verify_admin_token
#[derive(Debug, Clone, Copy)]
pub enum Admin {
    /// The configured admin API key.
    ApiKey,
    /// An access token issued for the admin API to this administrator.
    Administrator(UserId),
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated =
            || ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "present an admin API key or an admin API access token");
        let token = bearer(&parts.headers).ok_or_else(unauthenticated)?;
        if let Some(key_hash) = &state.config().admin_api_key_hash
            && constant_time_eq(TokenHash::of(token.as_bytes()).as_bytes(), key_hash.as_bytes())
        {
            return Ok(Admin::ApiKey);
        }
        match state.provider().verify_admin_token(token).await {
            Ok(user) => Ok(Admin::Administrator(user)),
            Err(CoreError::Unauthenticated) => Err(unauthenticated()),
            Err(CoreError::Forbidden) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the admin API takes only tokens issued for it (scope {ADMIN_SCOPE}) to a current administrator"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
