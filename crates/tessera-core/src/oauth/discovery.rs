//! The OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414): what this server
//! supports and where its endpoints are.

use crate::mfa::level::ACR_VALUES_SUPPORTED;
use crate::oauth::config::{ProviderConfig, paths};
use crate::oauth::upstream_access::TOKEN_EXCHANGE_GRANT;
use serde_json::{Value, json};

/// The OpenID Provider / RFC 8414 metadata document.
pub(crate) fn document(c: &ProviderConfig) -> Value {
    json!({
        "issuer": c.issuer,
        "authorization_endpoint": c.url(paths::AUTHORIZE),
        "token_endpoint": c.url(paths::TOKEN),
        "userinfo_endpoint": c.url(paths::USERINFO),
        "jwks_uri": c.url(paths::JWKS),
        "introspection_endpoint": c.url(paths::INTROSPECT),
        "revocation_endpoint": c.url(paths::REVOKE),
        "end_session_endpoint": c.url(paths::END_SESSION),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE_GRANT],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256", "RS256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash",
                             "name", "preferred_username", "email", "email_verified", "updated_at"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ACR_VALUES_SUPPORTED,
    })
}
