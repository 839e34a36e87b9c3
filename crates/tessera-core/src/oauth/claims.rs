//! The claims of the tokens the provider signs, as typed structs: access tokens (RFC 9068),
//! ID tokens (OIDC Core §2), the profile claims shared by ID tokens and userinfo; and the one
//! reading of an `aud` claim (a string or an array of strings).

use crate::oauth::scope::Scopes;
use crate::user::User;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The claims of an access token (`typ: at+jwt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The user, or the client itself for `client_credentials`.
    pub sub: String,
    /// Audiences (one is written as a string).
    #[serde(serialize_with = "one_or_many", deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Token id (revocation is by `jti`).
    pub jti: String,
    /// When the user signed in (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the user signed in (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The SSO session (user tokens from a session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The claims of an ID token (`typ: JWT`).
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// The client (authorized party).
    pub azp: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// When the user signed in.
    pub auth_time: i64,
    /// How the user signed in.
    pub amr: Vec<String>,
    /// Left half of the hash of the access token issued with it.
    pub at_hash: String,
    /// The authorization request's `nonce`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The SSO session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The assurance level reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Profile and e-mail claims for the scopes granted.
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// Profile (`profile` scope) and e-mail (`email` scope) claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileClaims {
    /// The username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the profile last changed (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// The e-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the address was verified (by a mailed link; a changed address is not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl ProfileClaims {
    /// The claims of `user` that `scope` grants.
    pub fn of(user: &User, scope: &Scopes) -> Self {
        let mut out = Self::default();
        if scope.contains("profile") {
            out.preferred_username = Some(user.username.as_str().to_owned());
            out.name = user.display_name.as_ref().map(|n| n.as_str().to_owned());
            out.updated_at = Some(user.updated_at.unix_timestamp());
        }
        if scope.contains("email")
            && let Some(e) = &user.email
        {
            out.email = Some(e.as_str().to_owned());
            out.email_verified = Some(user.email_verified());
        }
        out
    }
}

/// The userinfo response (OIDC Core §5.3).
#[derive(Debug, Clone, Serialize)]
pub struct UserinfoClaims {
    /// The user.
    pub sub: String,
    /// Profile and e-mail claims for the token's scope.
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// The `aud` claim of a JWT as a list: a string is one audience, an array's strings are
/// the audiences, anything else is none.
pub fn audience(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Writes one audience as a string, several (or none) as an array.
fn one_or_many<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

/// Reads an audience written as a string or an array of strings.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(a) => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_audience_is_a_string_several_an_array() {
        let mut at = AccessClaims {
            iss: "https://i".into(),
            sub: "s".into(),
            aud: vec!["https://api".into()],
            client_id: "c".into(),
            scope: "openid".into(),
            iat: 1,
            exp: 2,
            jti: "j".into(),
            auth_time: None,
            amr: None,
            sid: None,
        };
        let v = serde_json::to_value(&at).unwrap();
        assert_eq!(v["aud"], json!("https://api"));
        assert!(v.get("sid").is_none() && v.get("amr").is_none());
        assert_eq!(serde_json::from_value::<AccessClaims>(v).unwrap(), at);
        at.aud.push("https://other".into());
        let v = serde_json::to_value(&at).unwrap();
        assert_eq!(v["aud"], json!(["https://api", "https://other"]));
        assert_eq!(audience(v.as_object().unwrap()), at.aud);
        assert_eq!(serde_json::from_value::<AccessClaims>(v).unwrap(), at);
    }
}
