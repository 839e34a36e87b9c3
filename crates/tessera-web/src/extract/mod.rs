//! Extractors for the cross-cutting parts of a request, so handlers only name what they
//! need: the session ([`MaybeSignedIn`], [`SignedIn`], [`SessionCookie`]; the cookie is
//! read once and the session looked up at most once per request), the admin API caller
//! ([`Admin`]), bodies whose rejections are answered in the endpoint's own error kind
//! ([`PageForm`], [`JsonBody`], [`ApiJson`]), and CSRF-checked bodies ([`Csrf`],
//! [`AnonymousCsrf`]).

mod admin;
mod body;
mod csrf;
mod session;

pub use admin::Admin;
pub use body::{ApiJson, JsonBody, PageForm};
pub use csrf::{AnonymousCsrf, Csrf, CsrfCarrier, CsrfForm};
pub use session::{MaybeSignedIn, SessionCookie, SessionFault, SignedIn};
