//! Request bodies whose rejections (wrong content type, unknown or missing fields, invalid
//! UTF-8, too large) are answered in the endpoint's own error kind, not as bare rejections.

use crate::error::{ApiError, JsonError, PageError};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use http::StatusCode;
use serde::de::DeserializeOwned;

/// A URL-encoded form whose failures are answered with an error page.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => PageError::TooLarge,
                StatusCode::UNSUPPORTED_MEDIA_TYPE => PageError::UnsupportedMediaType,
                _ => PageError::BadRequest("The form could not be read. Reload the page and try again."),
            }),
        }
    }
}

/// A JSON body of the pages' JSON endpoints, whose rejection is a [`JsonError`].
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = JsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(JsonError { status: r.status(), message: "The request could not be read.".into(), redirect: None }),
        }
    }
}

/// A JSON body of the admin API, whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid", "send application/json"))
            }
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid", "body too large")),
            Err(r) => Err(ApiError::invalid(r.body_text())),
        }
    }
}
