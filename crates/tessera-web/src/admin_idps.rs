//! The admin API's upstream providers: `GET/POST /admin/v1/idps`,
//! `DELETE /admin/v1/idps/{name}` (behind the same `Admin` route layer as the rest).

use crate::AppState;
use crate::context::Client;
use crate::error::ApiError;
use crate::extract::ApiJson;
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::federation::model::ProviderSource;
use tessera_core::federation::{Federation, NewProvider, ProviderName};
use tessera_core::upstream::UpstreamSecret;

/// Body of `POST /admin/v1/idps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpBody {
    name: String,
    issuer: Option<String>,
    preset: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    emails_endpoint: Option<String>,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    jit: bool,
    #[serde(default)]
    trust_email: bool,
    #[serde(default)]
    vault_tokens: bool,
}

fn federation(state: &AppState) -> Result<&Federation, ApiError> {
    state.federation().ok_or_else(|| ApiError::not_found("upstream sign-in is not available"))
}

/// `GET /admin/v1/idps`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"providers": federation(&state)?.list_providers().await?})))
}

/// `POST /admin/v1/idps`: `{"id", "name", "callback_url"}`.
pub async fn create(State(state): State<AppState>, Client(ctx): Client, ApiJson(b): ApiJson<IdpBody>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let source = ProviderSource {
        issuer: b.issuer,
        preset: b.preset,
        authorization_endpoint: b.authorization_endpoint,
        token_endpoint: b.token_endpoint,
        userinfo_endpoint: b.userinfo_endpoint,
        emails_endpoint: b.emails_endpoint,
    };
    let (kind, preset_scopes) = source.resolve()?;
    let new = NewProvider {
        name: ProviderName::parse(&b.name)?,
        kind,
        client_id: b.client_id,
        client_secret: UpstreamSecret::new(b.client_secret),
        scopes: if b.scopes.is_empty() { preset_scopes } else { b.scopes },
        domains: b.domains,
        jit: b.jit,
        trust_email: b.trust_email,
        vault_tokens: b.vault_tokens,
    };
    let v = federation(&state)?.create_provider(new, &ctx).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": v.id, "name": v.name, "callback_url": v.callback_url}))))
}

/// `DELETE /admin/v1/idps/{name}`.
pub async fn delete(State(state): State<AppState>, Client(ctx): Client, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    federation(&state)?.delete_provider(&name, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
