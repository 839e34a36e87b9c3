//! Parsing OAuth parameters from queries and form bodies. Parameters may not repeat
//! (RFC 6749 §3.1), except `resource` (RFC 8707); unknown parameters are ignored.

use tessera_core::oauth::OAuthError;
use tessera_core::oauth::provider::{AuthorizeParams, TokenParams};

/// Raw name/value pairs in order.
pub type Pairs = Vec<(String, String)>;

/// Decodes `application/x-www-form-urlencoded` (invalid UTF-8 is replaced, never fatal).
pub fn pairs(raw: &[u8]) -> Pairs {
    form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Encodes pairs.
pub fn encode(p: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in p {
        s.append_pair(k, v);
    }
    s.finish()
}

fn single(p: &Pairs, name: &str) -> Result<Option<String>, OAuthError> {
    let mut it = p.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.clone());
    if it.next().is_some() {
        return Err(OAuthError::InvalidRequest(format!("parameter {name} appears more than once")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

fn many(p: &Pairs, name: &str) -> Vec<String> {
    p.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone()).collect()
}

/// Authorization request parameters.
pub fn authorize(p: &Pairs) -> Result<AuthorizeParams, OAuthError> {
    Ok(AuthorizeParams {
        response_type: single(p, "response_type")?,
        client_id: single(p, "client_id")?,
        redirect_uri: single(p, "redirect_uri")?,
        scope: single(p, "scope")?,
        state: single(p, "state")?,
        nonce: single(p, "nonce")?,
        code_challenge: single(p, "code_challenge")?,
        code_challenge_method: single(p, "code_challenge_method")?,
        prompt: single(p, "prompt")?,
        max_age: single(p, "max_age")?,
        id_token_hint: single(p, "id_token_hint")?,
        login_hint: single(p, "login_hint")?,
        response_mode: single(p, "response_mode")?,
        resource: many(p, "resource"),
        acr_values: single(p, "acr_values")?,
        ui_locales: single(p, "ui_locales")?,
        display: single(p, "display")?,
        request: single(p, "request")?,
        request_uri: single(p, "request_uri")?,
        claims: single(p, "claims")?,
    })
}

/// Token endpoint parameters.
pub fn token(p: &Pairs) -> Result<TokenParams, OAuthError> {
    Ok(TokenParams {
        grant_type: single(p, "grant_type")?,
        code: single(p, "code")?,
        redirect_uri: single(p, "redirect_uri")?,
        code_verifier: single(p, "code_verifier")?,
        refresh_token: single(p, "refresh_token")?,
        scope: single(p, "scope")?,
        resource: many(p, "resource"),
        client_id: single(p, "client_id")?,
        client_secret: single(p, "client_secret")?,
        client_assertion_type: single(p, "client_assertion_type")?,
        client_assertion: single(p, "client_assertion")?,
        subject_token: single(p, "subject_token")?,
        subject_token_type: single(p, "subject_token_type")?,
        requested_token_type: single(p, "requested_token_type")?,
        actor_token: single(p, "actor_token")?,
        actor_token_type: single(p, "actor_token_type")?,
        audience: many(p, "audience"),
    })
}

/// One named parameter (must not repeat).
pub fn one(p: &Pairs, name: &str) -> Result<Option<String>, OAuthError> {
    single(p, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_except_resource() {
        let p = pairs(b"client_id=a&client_id=b");
        assert!(authorize(&p).is_err());
        let p = pairs(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&client_id=x");
        assert_eq!(authorize(&p).unwrap().resource.len(), 2);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let p = pairs(b"state=%ff%fe&client_id=x");
        assert!(authorize(&p).unwrap().state.unwrap().contains('\u{fffd}'));
    }
}
