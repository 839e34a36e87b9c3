//! The admin REST API (`/admin/v1/…`): users, sessions, clients, keys and the audit log, as
//! JSON. Callers present `Authorization: Bearer` with either the configured admin API key or
//! an access token minted for the admin API (see `tessera_core::oauth::admin_access`),
//! checked before anything of the request is parsed. The OpenAPI document is served at `/admin/v1/openapi.json`.

use crate::AppState;
use crate::context::Client;
use crate::error::ApiError;
use crate::extract::{Admin, ApiJson};
use crate::views::UserView;
use axum::extract::{Path, Query, State};
use axum::middleware::from_extractor_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::accounts::CreateUser;
use tessera_core::ids::UserId;
use tessera_core::oauth::admin_access::ADMIN_SCOPE;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::secret::Password;
use tessera_core::store::AuditQuery;
use tessera_core::user::{DisplayName, Email, UserUpdate, Username};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The admin API's routes, every one behind the [`Admin`] extractor run as a route layer
/// (so authentication runs before any extractor reads the path, the query or the body),
/// and the public OpenAPI document.
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
        .route("/admin/v1/idps", get(crate::admin_idps::list).post(crate::admin_idps::create))
        .route("/admin/v1/idps/{name}", axum::routing::delete(crate::admin_idps::delete))
        .route_layer(from_extractor_with_state::<Admin, AppState>(state))
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

fn parse_id(id: &str) -> Result<UserId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("no such user"))
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
    Ok(Json(json!({"users": users.iter().map(UserView::from).collect::<Vec<_>>()})))
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
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let input = CreateUser { username: b.username, email: b.email, display_name: b.name, password: b.password.map(Password::new), roles: b.roles };
    let user = match b.password_hash {
        Some(h) if input.password.is_none() => state.accounts().import_user(input, &h, &ctx).await?,
        Some(_) => return Err(ApiError::invalid("give password or password_hash, not both")),
        None => state.accounts().create_user(input, &ctx).await?,
    };
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// `GET /admin/v1/users/{id}`.
pub async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(&state.accounts().find_user(parse_id(&id)?).await?)))
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
) -> Result<Json<UserView>, ApiError> {
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
        let before = accounts.find_user(id).await?;
        let after = accounts.update_user(id, update, &ctx).await?;
        // A new address: a verification link to it, a notice to the old one.
        if let Some(flows) = state.email() {
            flows.address_changed(&before, &after, &ctx).await?;
        }
    }
    if let Some(d) = b.disabled {
        accounts.set_disabled(id, d, &ctx).await?;
    }
    Ok(Json(UserView::from(&accounts.find_user(id).await?)))
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
            let at = |t: OffsetDateTime| t.format(&Rfc3339).ok();
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
    let c = state.provider().find_client(&id).await?.ok_or_else(|| ApiError::not_found("no such client"))?;
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
            .map(|v| OffsetDateTime::parse(v, &Rfc3339).map_err(|_| ApiError::invalid(format!("{v:?} is not an RFC 3339 time"))))
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
