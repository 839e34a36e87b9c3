//! The admin REST API (`/admin/v1/…`): users, sessions, clients, keys and the audit log, as
//! JSON. Callers present `Authorization: Bearer` with either the configured admin API key or
//! an access token minted for the admin API (see `tessera_core::oauth::admin_access`),
//! checked before anything of the request is parsed. The OpenAPI document is served at `/admin/v1/openapi.json`.

use crate::AppState;
use crate::context::Client;
use crate::oauth::resource::bearer;
use axum::routing::{get, post};
use axum::middleware::Next;
use axum::{Json, Router};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tessera_core::CoreError;
use tessera_core::accounts::CreateUser;
use tessera_core::ids::UserId;
use tessera_core::oauth::admin_access::ADMIN_SCOPE;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::secret::{Password, TokenHash, constant_time_eq};
use tessera_core::store::AuditQuery;
use tessera_core::user::{DisplayName, Email, User, UserUpdate, Username};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An admin API error, answered as `{"error", "message"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0 == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.2, "internal error answering an admin API request");
        }
        let message = if self.0 == StatusCode::INTERNAL_SERVER_ERROR { "internal error".to_owned() } else { self.2 };
        let mut res = (self.0, Json(json!({"error": self.1, "message": message}))).into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.0 == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tessera-admin\", scope=\"tessera:admin\""));
        }
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            return crate::error::retry_later(res);
        }
        res
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, "invalid", m),
            CoreError::Conflict(what) => ApiError(StatusCode::CONFLICT, "conflict", format!("{what} is already taken")),
            CoreError::NotFound => ApiError(StatusCode::NOT_FOUND, "not_found", "no such resource".into()),
            CoreError::Forbidden => ApiError(StatusCode::FORBIDDEN, "forbidden", "not allowed".into()),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "storage unavailable answering an admin API request");
                ApiError(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable; try again shortly".into())
            }
            other if other.is_internal() => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", other.to_string()),
            other => ApiError(StatusCode::BAD_REQUEST, "invalid", other.to_string()),
        }
    }
}

/// JSON body whose rejections are answered as API errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid", "send application/json".into()))
            }
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, "invalid", "body too large".into())),
            Err(r) => Err(ApiError(StatusCode::BAD_REQUEST, "invalid", r.body_text())),
        }
    }
}

/// The admin API's routes, every one behind [`require_admin`] (a route layer, so
/// authentication runs before any extractor reads the path, the query or the body), and
/// the public OpenAPI document.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/v1/users", get(list_users).post(create_user))
        .route("/admin/v1/users/{id}", get(get_user).patch(patch_user).delete(delete_user))
        .route("/admin/v1/users/{id}/sessions", get(list_user_sessions).delete(end_user_sessions))
        .route("/admin/v1/users/{id}/factors", get(user_factors).delete(reset_user_factors))
        .route("/admin/v1/clients", get(list_clients).post(create_client))
        .route("/admin/v1/clients/{id}", get(get_client).delete(delete_client))
        .route("/admin/v1/keys/rotate", post(rotate_keys))
        .route("/admin/v1/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/.well-known/oauth-protected-resource/admin/v1", get(resource_metadata))
}

/// `GET /.well-known/oauth-protected-resource/admin/v1`: the admin API as a protected
/// resource (RFC 9728): its resource identifier (the audience of its tokens) and scope.
pub async fn resource_metadata(State(state): State<AppState>) -> Json<Value> {
    let c = state.provider().config();
    Json(json!({
        "resource": tessera_core::oauth::admin_access::admin_audience(c),
        "authorization_servers": [c.issuer],
        "scopes_supported": [ADMIN_SCOPE],
        "bearer_methods_supported": ["header"],
    }))
}

/// Lets the request through only for the admin API key or an admin API token of a current
/// administrator whose session lives ([`Provider::verify_admin_token`]).
///
/// [`Provider::verify_admin_token`]: tessera_core::oauth::provider::Provider::verify_admin_token
pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_admin(&state, req.headers()).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthenticated = || ApiError(StatusCode::UNAUTHORIZED, "unauthenticated", "present an admin API key or an admin API access token".into());
    let token = bearer(headers).ok_or_else(unauthenticated)?;
    if let Some(key_hash) = &state.config().admin_api_key_hash
        && constant_time_eq(TokenHash::of(token.as_bytes()).as_bytes(), key_hash.as_bytes()) {
            return Ok(());
        }
    match state.provider().verify_admin_token(token).await {
        Ok(_) => Ok(()),
        Err(CoreError::Unauthenticated) => Err(unauthenticated()),
        Err(CoreError::Forbidden) => Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the admin API takes only tokens issued for it (scope {ADMIN_SCOPE}) to a current administrator"),
        )),
        Err(e) => Err(e.into()),
    }
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "name": u.display_name,
        "disabled": u.disabled,
        "roles": u.roles,
        "created_at": u.created_at.format(&Rfc3339).unwrap_or_default(),
        "updated_at": u.updated_at.format(&Rfc3339).unwrap_or_default(),
    })
}

fn parse_id(id: &str) -> Result<UserId, ApiError> {
    id.parse().map_err(|_| ApiError(StatusCode::NOT_FOUND, "not_found", "no such user".into()))
}

/// Query of `GET /admin/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
}

/// `GET /admin/v1/users`.
pub async fn list_users(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let after = q.after.as_deref().map(parse_id).transpose()?;
    let users = state.accounts().list_users(after, q.limit.unwrap_or(100)).await?;
    Ok(Json(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})))
}

/// Body of `POST /admin/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    email: Option<String>,
    name: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /admin/v1/users`.
pub async fn create_user(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(b): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input = CreateUser { username: b.username, email: b.email, display_name: b.name, password: b.password.map(Password::new), roles: b.roles };
    let user = match b.password_hash {
        Some(h) if input.password.is_none() => state.accounts().import_user(input, &h, &ctx).await?,
        Some(_) => return Err(ApiError(StatusCode::BAD_REQUEST, "invalid", "give password or password_hash, not both".into())),
        None => state.accounts().create_user(input, &ctx).await?,
    };
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// `GET /admin/v1/users/{id}`.
pub async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(&state.accounts().find_user(parse_id(&id)?).await?)))
}

/// Body of `PATCH /admin/v1/users/{id}`: absent fields stay; `null` removes e-mail or name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUserBody {
    username: Option<String>,
    #[serde(default, with = "double_option")]
    email: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    name: Option<Option<String>>,
    disabled: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

/// `PATCH /admin/v1/users/{id}`.
pub async fn patch_user(
    State(state): State<AppState>,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PatchUserBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let update = UserUpdate {
        username: b.username.as_deref().map(Username::parse).transpose()?,
        email: match b.email {
            Some(Some(e)) if !e.trim().is_empty() => Some(Some(Email::parse(&e)?)),
            Some(_) => Some(None),
            None => None,
        },
        display_name: match b.name {
            Some(Some(n)) => Some(DisplayName::parse(&n)?),
            Some(None) => Some(None),
            None => None,
        },
    };
    let accounts = state.accounts();
    if update.username.is_some() || update.email.is_some() || update.display_name.is_some() {
        accounts.update_user(id, update, &ctx).await?;
    }
    if let Some(d) = b.disabled {
        accounts.set_disabled(id, d, &ctx).await?;
    }
    Ok(Json(user_json(&accounts.find_user(id).await?)))
}

/// `DELETE /admin/v1/users/{id}`.
pub async fn delete_user(State(state): State<AppState>, Client(ctx): Client, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.accounts().delete_user(parse_id(&id)?, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /admin/v1/users/{id}/sessions`: ends every session of the user.
pub async fn end_user_sessions(State(state): State<AppState>, Client(ctx): Client, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    state.accounts().find_user(id).await?;
    let n = state.accounts().end_all_sessions(id, &ctx).await?;
    Ok(Json(json!({"sessions_ended": n})))
}

/// `DELETE /admin/v1/users/{id}/factors`: removes every second factor of the user.
pub async fn reset_user_factors(State(state): State<AppState>, Client(ctx): Client, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    state.accounts().find_user(id).await?;
    let n = state.accounts().reset_second_factors(id, &ctx).await?;
    Ok(Json(json!({"factors_removed": n})))
}

/// `GET /admin/v1/users/{id}/factors`: which second factors the user has.
pub async fn user_factors(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    state.accounts().find_user(id).await?;
    let f = state.accounts().factor_summary(id).await?;
    let passkeys: Vec<Value> = state
        .accounts()
        .list_passkeys(id)
        .await?
        .into_iter()
        .map(|p| {
            let at = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
            json!({"id": p.id, "name": p.name, "created_at": at(p.created_at), "last_used_at": p.last_used_at.and_then(at)})
        })
        .collect();
    Ok(Json(json!({"totp": f.totp, "passkeys": passkeys, "recovery_codes_left": f.recovery_codes})))
}

/// `GET /admin/v1/users/{id}/sessions`.
pub async fn list_user_sessions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let sessions = state.accounts().list_sessions(parse_id(&id)?).await?;
    Ok(Json(json!({"sessions": sessions})))
}

/// `GET /admin/v1/clients`.
pub async fn list_clients(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"clients": state.provider().list_clients().await?})))
}

/// `POST /admin/v1/clients`: body as [`ClientRegistration`].
pub async fn create_client(State(state): State<AppState>, ApiJson(reg): ApiJson<ClientRegistration>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (client, secret) = state.provider().register_client(reg).await?;
    let mut body = json!({"client_id": client.id, "client": client});
    if let (Some(s), Value::Object(m)) = (secret, &mut body) {
        m.insert("client_secret".into(), Value::String(s));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /admin/v1/clients/{id}`.
pub async fn get_client(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let c = state.provider().find_client(&id).await?.ok_or(ApiError(StatusCode::NOT_FOUND, "not_found", "no such client".into()))?;
    Ok(Json(json!(c)))
}

/// `DELETE /admin/v1/clients/{id}`.
pub async fn delete_client(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.provider().delete_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/v1/keys/rotate`.
pub async fn rotate_keys(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.provider().rotate_keys().await?;
    let keys = state.provider().keys().list().await?;
    Ok(Json(json!({"keys": keys.iter().map(|k| json!({"kid": k.kid, "alg": k.alg.as_str(), "state": k.state.as_str()})).collect::<Vec<_>>()})))
}

/// Query of `GET /admin/v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    user_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

/// `GET /admin/v1/audit`.
pub async fn audit(State(state): State<AppState>, Query(q): Query<AuditParams>) -> Result<Json<Value>, ApiError> {
    let t = |s: &Option<String>| {
        s.as_deref()
            .map(|v| OffsetDateTime::parse(v, &Rfc3339).map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid", format!("{v:?} is not an RFC 3339 time"))))
            .transpose()
    };
    let query = AuditQuery { user_id: q.user_id.as_deref().map(parse_id).transpose()?, since: t(&q.since)?, until: t(&q.until)?, limit: q.limit.unwrap_or(100) };
    Ok(Json(json!({"events": state.accounts().audit_events(&query).await?})))
}

const OPENAPI: &str = include_str!("../static/openapi.json");

/// `GET /admin/v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
