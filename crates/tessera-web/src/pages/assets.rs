//! Static assets, embedded in the binary.

use axum::response::IntoResponse;
use http::header;

const STYLESHEET: &str = include_str!("../../static/tessera.css");

/// The stylesheet.
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}
