//! [`Vault`], the credential vault's flows: keep a token set (federation calls it through
//! [`TokenKeeper`]), list and drop what is kept, and hand out a live access token —
//! refreshing it through the [`UpstreamRefresher`] when it has expired or is about to.
//!
//! Refreshes are safe on several nodes: a refresh writes only over the version it read (a
//! conditional `UPDATE`); the loser of a race, or a node whose refresh the upstream refused
//! because another node had already rotated the refresh token, reads the set again and hands
//! out the winner's token. On one node, refreshes of the same set are also serialised, so the
//! upstream sees one refresh at a time.

use super::model::{KeptTokenSummary, LiveToken, SealedTokenSet, VaultError, valid_provider_name};
use super::seal::{TokenKind, TokenSealer};
use super::store::VaultStore;
use super::UpstreamTokenSource;
use crate::CoreError;
use crate::accounts::Authenticated;
use crate::audit::AuditKind;
use crate::auditor::Auditor;
use crate::clock::SharedClock;
use crate::ids::UserId;
use crate::session::RequestContext;
use crate::upstream::{TokenKeeper, UpstreamRefresher, UpstreamTokenSet};
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long before its expiry a kept access token is refreshed rather than handed out.
pub const REFRESH_AHEAD: Duration = Duration::minutes(1);

/// Refreshes on this node are serialised per (user, provider) through one of these locks.
const LOCK_STRIPES: usize = 64;

/// The credential vault.
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn VaultStore>,
    sealer: Arc<TokenSealer>,
    refresher: Option<Arc<dyn UpstreamRefresher>>,
    auditor: Option<Auditor>,
    clock: SharedClock,
    reauth_window: Duration,
    refreshing: Arc<[tokio::sync::Mutex<()>]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("refresher", &self.refresher.is_some()).finish_non_exhaustive()
    }
}

/// Whether a token expiring at `expires_at` may still be handed out at `now` (an unknown
/// expiry counts as live: the upstream did not say).
fn is_live(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expires_at.is_none_or(|t| t - REFRESH_AHEAD > now)
}

impl Vault {
    /// A vault over `store`, sealing with `sealer`; dropping kept tokens from the account
    /// page needs a sign-in within `reauth_window`.
    pub fn new(store: Arc<dyn VaultStore>, sealer: TokenSealer, clock: SharedClock, reauth_window: Duration) -> Self {
        let refreshing = (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Self { store, sealer: Arc::new(sealer), refresher: None, auditor: None, clock, reauth_window, refreshing }
    }

    /// The same vault, refreshing expired tokens through `refresher` (federation's).
    pub fn with_refresher(mut self, refresher: Arc<dyn UpstreamRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    /// The same vault, recording what it does in the audit log.
    pub fn with_auditor(mut self, auditor: Auditor) -> Self {
        self.auditor = Some(auditor);
        self
    }

    async fn audit(&self, kind: AuditKind, user: UserId, ctx: &RequestContext, detail: serde_json::Value) {
        if let Some(a) = &self.auditor {
            a.record(kind, Some(user), ctx, detail).await;
        }
    }

    fn seal_set(&self, user: UserId, provider: &str, subject: &str, tokens: &UpstreamTokenSet, keep_refresh: Option<Vec<u8>>) -> Result<SealedTokenSet, CoreError> {
        let s = &self.sealer;
        let refresh_token = match &tokens.refresh_token {
            Some(r) => Some(s.seal(&user, provider, TokenKind::Refresh, r)?),
            None => keep_refresh,
        };
        Ok(SealedTokenSet {
            user_id: user,
            provider: provider.to_owned(),
            subject: subject.to_owned(),
            access_token: s.seal(&user, provider, TokenKind::Access, &tokens.access_token)?,
            refresh_token,
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
            kept_at: OffsetDateTime::UNIX_EPOCH,
            refreshed_at: None,
            version: 0,
        })
    }

    fn live(&self, set: &SealedTokenSet) -> Result<LiveToken, CoreError> {
        let access_token = self.sealer.open(&set.user_id, &set.provider, TokenKind::Access, &set.access_token)?;
        Ok(LiveToken { access_token, expires_at: set.expires_at, scope: set.scope.clone() })
    }

    /// What is kept for `user` (the account page's list; never a token).
    pub async fn list(&self, user: UserId) -> Result<Vec<KeptTokenSummary>, CoreError> {
        Ok(self.store.list_upstream_tokens(user).await?)
    }

    /// Drops `user`'s tokens of `provider` (an administrator's or the system's decision);
    /// whether there were any.
    pub async fn drop_tokens(&self, user: UserId, provider: &str, ctx: &RequestContext) -> Result<bool, CoreError> {
        let dropped = self.store.delete_upstream_tokens(user, provider).await?;
        if dropped {
            self.audit(AuditKind::UpstreamTokensDropped, user, ctx, json!({"provider": provider})).await;
        }
        Ok(dropped)
    }

    /// The signed-in user drops their own tokens of `provider` (the account page): like
    /// every credential change there, it needs a recent sign-in. `NotFound` if none are kept.
    pub async fn drop_own_tokens(&self, who: &Authenticated, provider: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        if self.clock.now() - who.session.auth_time > self.reauth_window {
            return Err(CoreError::ReauthenticationRequired);
        }
        if self.drop_tokens(who.user.id, provider, ctx).await? { Ok(()) } else { Err(CoreError::NotFound) }
    }

    /// A live access token of `user` at `provider`: the kept one while it lives for more
    /// than [`REFRESH_AHEAD`], else a refreshed one (stored before it is returned; the old
    /// refresh token is kept when the upstream issues no new one).
    pub async fn access_token(&self, user: UserId, provider: &str, now: OffsetDateTime) -> Result<LiveToken, VaultError> {
        let set = self.store.find_upstream_tokens(user, provider).await?.ok_or(VaultError::NothingKept)?;
        if is_live(set.expires_at, now) {
            return Ok(self.live(&set)?);
        }
        let (Some(_), Some(refresher)) = (&set.refresh_token, &self.refresher) else {
            return Err(VaultError::Expired);
        };
        let _one_at_a_time = self.lock_for(user, provider).await;
        // Another task may have refreshed while this one waited.
        let set = self.store.find_upstream_tokens(user, provider).await?.ok_or(VaultError::NothingKept)?;
        if is_live(set.expires_at, now) {
            return Ok(self.live(&set)?);
        }
        let Some(sealed_refresh) = &set.refresh_token else {
            return Err(VaultError::Expired);
        };
        let refresh_token = self.sealer.open(&user, provider, TokenKind::Refresh, sealed_refresh)?;
        let fresh = match refresher.refresh(provider, &refresh_token).await {
            Ok(t) => t,
            Err(e) => {
                // Another node may have refreshed first (and the upstream rotated the refresh
                // token this one presented): its token serves as well.
                return match self.store.find_upstream_tokens(user, provider).await? {
                    Some(now_kept) if now_kept.version != set.version && is_live(now_kept.expires_at, now) => Ok(self.live(&now_kept)?),
                    _ => Err(VaultError::RefreshFailed(e.to_string())),
                };
            }
        };
        let mut next = self.seal_set(user, provider, &set.subject, &fresh, set.refresh_token.clone())?;
        next.scope = fresh.scope.clone().or(set.scope.clone());
        next.kept_at = set.kept_at;
        next.refreshed_at = Some(now);
        if self.store.update_refreshed_upstream_tokens(&next, set.version).await? {
            self.audit(AuditKind::UpstreamTokensRefreshed, user, &RequestContext::default(), json!({"provider": provider})).await;
            return Ok(LiveToken { access_token: fresh.access_token, expires_at: fresh.expires_at, scope: next.scope });
        }
        // Lost the race to another node's refresh (or to a sign-in keeping a new set).
        match self.store.find_upstream_tokens(user, provider).await? {
            Some(winner) if is_live(winner.expires_at, now) => Ok(self.live(&winner)?),
            Some(_) => Err(VaultError::Expired),
            None => Err(VaultError::NothingKept),
        }
    }

    async fn lock_for(&self, user: UserId, provider: &str) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (user, provider).hash(&mut h);
        let n = self.refreshing.len();
        if n == 0 {
            return None;
        }
        let i = usize::try_from(h.finish() % n as u64).unwrap_or(0);
        match self.refreshing.get(i) {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }
}

#[async_trait]
impl TokenKeeper for Vault {
    async fn keep(&self, user: &UserId, provider: &str, subject: &str, tokens: UpstreamTokenSet, now: OffsetDateTime) -> Result<(), CoreError> {
        if !valid_provider_name(provider) {
            return Err(CoreError::Invalid(format!("{provider:?} is not a provider name")));
        }
        if tokens.access_token.expose().is_empty() {
            return Err(CoreError::Invalid("the upstream returned an empty access token".into()));
        }
        let mut set = self.seal_set(*user, provider, subject, &tokens, None)?;
        set.kept_at = now;
        self.store.put_upstream_tokens(&set).await?;
        let detail = json!({"provider": provider, "scope": tokens.scope, "refreshable": tokens.refresh_token.is_some()});
        self.audit(AuditKind::UpstreamTokensKept, *user, &RequestContext::default(), detail).await;
        Ok(())
    }
}

#[async_trait]
impl UpstreamTokenSource for Vault {
    async fn live_access_token(&self, user: UserId, provider: &str, now: OffsetDateTime) -> Result<LiveToken, VaultError> {
        self.access_token(user, provider, now).await
    }

    async fn record_exchange(&self, user: UserId, provider: &str, client_id: &str, scope: Option<&str>) {
        let detail = json!({"provider": provider, "client_id": client_id, "scope": scope});
        self.audit(AuditKind::UpstreamTokenExchanged, user, &RequestContext::default(), detail).await;
    }
}
