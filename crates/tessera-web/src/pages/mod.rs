//! Page handlers: extract, convert, one core call, render.

pub mod account;
pub mod assets;
pub mod factors;
pub mod health;
pub mod login;
pub mod mfa;
pub mod setup;
pub mod signup;

use crate::error::PageError;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// 404 for every unknown address.
pub async fn not_found() -> PageError {
    PageError::NotFound
}

/// 405 for a known address with the wrong method.
pub async fn method_not_allowed() -> PageError {
    PageError::MethodNotAllowed
}

/// Renders a template with a status, adding cookies.
pub(crate) fn render<T: askama::Template>(status: StatusCode, page: &T, cookies: &[String]) -> Response {
    match page.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            for c in cookies {
                if let Ok(v) = HeaderValue::from_str(c) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(e) => PageError::Internal(format!("template: {e}")).into_response(),
    }
}

/// A 303 See Other to `to`, adding cookies.
pub(crate) fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}
