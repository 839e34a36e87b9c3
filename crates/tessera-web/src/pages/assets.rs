//! Static assets, embedded in the binary.

use axum::response::IntoResponse;
use http::header;

const STYLESHEET: &str = include_str!("../../static/tessera.css");

/// The stylesheet.
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}

const FORM_POST_SCRIPT: &str = include_str!("../../static/form_post.js");

/// The script that submits form_post responses.
pub async fn form_post_script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], FORM_POST_SCRIPT)
}

const POW_SCRIPT: &str = include_str!("../../static/pow.js");

/// The proof-of-work script of the login page.
pub async fn pow_script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], POW_SCRIPT)
}

const STRENGTH_SCRIPT: &str = include_str!("../../static/strength.js");

/// The password-strength feedback script.
pub async fn strength_script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STRENGTH_SCRIPT)
}

const WEBAUTHN_SCRIPT: &str = include_str!("../../static/webauthn.js");

/// The passkey script (sign-in, second factor, registration).
pub async fn webauthn_script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], WEBAUTHN_SCRIPT)
}

/// Form of `POST /password/strength`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrengthForm {
    password: String,
}

/// `POST /password/strength`: the estimator's score and hints for a candidate password
/// (nothing is stored or logged).
pub async fn strength(crate::extract::PageForm(form): crate::extract::PageForm<StrengthForm>) -> impl IntoResponse {
    axum::Json(tessera_core::password::strength(&form.password))
}
