//! Rendering helpers of pages and OAuth front-channel answers: a template with a status,
//! a 303 See Other, and the cookies they set.

use crate::error::PageError;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Renders a template with a status, adding cookies.
pub(crate) fn render<T: askama::Template>(status: StatusCode, page: &T, cookies: &[String]) -> Response {
    match page.render() {
        Ok(html) => with_cookies((status, Html(html)).into_response(), cookies),
        Err(e) => PageError::Internal(format!("template: {e}")).into_response(),
    }
}

/// A 303 See Other to `to`, adding cookies.
pub(crate) fn see_other(to: &str, cookies: &[String]) -> Response {
    with_cookies((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response(), cookies)
}

/// Appends `Set-Cookie` headers (values from `context::set_cookie`) to a response.
pub(crate) fn with_cookies(mut res: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}
