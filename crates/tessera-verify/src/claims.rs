//! The claims of a verified access token.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The claims of a verified access token (RFC 9068, as Tessera issues them).
///
/// The tower layer puts this into the request extensions; handlers read it with
/// `Extension<Claims>` or the [`VerifiedClaims`](crate::VerifiedClaims) extractor.
///
/// ```
/// # fn show(claims: &tessera_verify::Claims) {
/// if claims.has_scope("orders:write") {
///     println!("{} may write orders (session {:?})", claims.sub, claims.sid);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id, or the client id for client-credentials tokens.
    pub sub: String,
    /// Audiences (a single string `aud` becomes one element).
    pub aud: Vec<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes, space-separated (see [`Claims::scopes`]).
    pub scope: String,
    /// Expiry (seconds since the Unix epoch).
    pub exp: i64,
    /// Issued at (seconds since the Unix epoch).
    pub iat: Option<i64>,
    /// Not before (seconds since the Unix epoch).
    pub nbf: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// The SSO session the token belongs to (user tokens).
    pub sid: Option<String>,
    /// When the user authenticated (user tokens).
    pub auth_time: Option<i64>,
    /// Authentication methods (user tokens).
    pub amr: Vec<String>,
}

impl Claims {
    /// The granted scopes.
    ///
    /// ```
    /// # let claims: tessera_verify::Claims = tessera_verify::Claims::example();
    /// assert_eq!(claims.scopes().collect::<Vec<_>>(), ["openid", "orders:read"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// True if `scope` was granted.
    ///
    /// ```
    /// # let claims = tessera_verify::Claims::example();
    /// assert!(claims.has_scope("orders:read"));
    /// assert!(!claims.has_scope("orders"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// True for a token issued to a client for itself (client credentials: `sub` is the
    /// client id and there is no session).
    pub fn is_client_token(&self) -> bool {
        self.sid.is_none() && self.client_id.as_deref() == Some(self.sub.as_str())
    }

    /// A sample value for documentation examples.
    #[doc(hidden)]
    pub fn example() -> Self {
        Claims {
            iss: "https://id.example.com".into(),
            sub: "user-1".into(),
            aud: vec!["https://api.example.com".into()],
            client_id: Some("app".into()),
            scope: "openid orders:read".into(),
            exp: 2_000_000_000,
            iat: Some(1_999_999_000),
            nbf: None,
            jti: Some("t1".into()),
            sid: Some("s1".into()),
            auth_time: Some(1_999_999_000),
            amr: vec!["pwd".into()],
        }
    }
}

/// The claims as they arrive, before the checks that turn them into [`Claims`].
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "audience")]
    pub aud: Vec<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "present_date")]
    pub exp: Option<NumericDate>,
    #[serde(default, deserialize_with = "present_date")]
    pub iat: Option<NumericDate>,
    #[serde(default, deserialize_with = "present_date")]
    pub nbf: Option<NumericDate>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default, deserialize_with = "present_date")]
    pub auth_time: Option<NumericDate>,
    #[serde(default)]
    pub amr: Option<Vec<String>>,
}

/// A JSON value in a time claim: a number (as seconds, fractions dropped) or anything else,
/// which is remembered so that a string `exp` is refused with a precise reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumericDate {
    Seconds(i64),
    NotANumber,
}

impl NumericDate {
    pub(crate) fn seconds(field: Option<Self>, name: &'static str) -> Result<Option<i64>, crate::VerifyError> {
        match field {
            None => Ok(None),
            Some(NumericDate::Seconds(s)) => Ok(Some(s)),
            Some(NumericDate::NotANumber) => Err(crate::VerifyError::InvalidClaim(name)),
        }
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate::Seconds(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // `as` saturates; JSON has no NaN or infinities.
                Ok(NumericDate::Seconds(v.floor() as i64))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_unit<E: de::Error>(self) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_none<E: de::Error>(self) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumericDate, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NumericDate::NotANumber)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumericDate, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NumericDate::NotANumber)
            }
        }
        d.deserialize_any(V)
    }
}

/// A time claim that is present (even as `null`) is `Some`.
fn present_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NumericDate>, D::Error> {
    NumericDate::deserialize(d).map(Some)
}

/// `aud` as a string or an array of strings.
pub(crate) fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<String>, E> {
            Ok(vec![v])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_accept_numbers_and_flag_everything_else() {
        let c: RawClaims = serde_json::from_str(r#"{"exp":"123","iat":1.9,"nbf":[1],"auth_time":{"a":1}}"#).unwrap();
        assert_eq!(c.exp, Some(NumericDate::NotANumber));
        assert_eq!(c.iat, Some(NumericDate::Seconds(1)));
        assert_eq!(c.nbf, Some(NumericDate::NotANumber));
        assert_eq!(c.auth_time, Some(NumericDate::NotANumber));
        let c: RawClaims = serde_json::from_str(r#"{"exp":null}"#).unwrap();
        assert_eq!(c.exp, Some(NumericDate::NotANumber));
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let c: RawClaims = serde_json::from_str(r#"{"aud":"a"}"#).unwrap();
        assert_eq!(c.aud, ["a"]);
        let c: RawClaims = serde_json::from_str(r#"{"aud":["a","b"]}"#).unwrap();
        assert_eq!(c.aud, ["a", "b"]);
        assert!(serde_json::from_str::<RawClaims>(r#"{"aud":5}"#).is_err());
    }

    #[test]
    fn duplicate_claims_are_refused() {
        assert!(serde_json::from_str::<RawClaims>(r#"{"sub":"a","sub":"b"}"#).is_err());
    }
}
