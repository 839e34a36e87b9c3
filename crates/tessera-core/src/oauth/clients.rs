//! The client registry: registration (with its back-channel and resource checks), look-up
//! through the cache, listing, and deletion together with the client's grants.

use crate::CoreError;
use crate::oauth::client::{Client, ClientId, ClientRegistration};
use crate::oauth::context::OAuthContext;
use crate::error::StoreError;

/// Registers a client; returns it and its secret (shown once).
pub(crate) async fn register(ctx: &OAuthContext, reg: ClientRegistration) -> Result<(Client, Option<String>), CoreError> {
    if let Some(uri) = &reg.backchannel_logout_uri {
        super::target::check_backchannel_uri(uri, ctx.config.allow_private_backchannel)?;
    }
    let new = reg.validate(ctx.now())?;
    if let Some(r) = new.client.resource.as_ref().filter(|r| !ctx.config.resources.contains(r)) {
        return Err(CoreError::Invalid(format!("resource {r:?} is not one of the configured resources")));
    }
    ctx.store.create_client(&new.client).await?;
    ctx.clients.forget(new.client.id.as_str());
    Ok((new.client, new.secret))
}

/// Deletes a client, revoking its grants; forgets it in the cache before and after.
pub(crate) async fn delete(ctx: &OAuthContext, id: &str) -> Result<(), CoreError> {
    ctx.clients.forget(id);
    let deleted = ctx.users.delete_client_revoking_grants(&ClientId::new(id), ctx.now()).await.map(drop).map_err(|e| match e {
        StoreError::NotFound => CoreError::NotFound,
        other => other.into(),
    });
    ctx.clients.forget(id);
    deleted
}
