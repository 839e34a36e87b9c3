//! Passwords: the signed-in user's change (the current password is checked like a sign-in)
//! and the administrator's reset; both end sessions through the store.

use super::{Accounts, Authenticated, conflict};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::password::Verification;
use crate::secret::Password;
use crate::session::RequestContext;
use serde_json::json;

impl Accounts {
    /// Changes the signed-in user's password after checking the current one; ends every
    /// other session of the user.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: &Password,
        new: &Password,
        ctx: &RequestContext,
    ) -> Result<u64, CoreError> {
        self.require_recent(who)?;
        let stored = self.store.find_password_hash(who.user.id).await?;
        if stored.is_some() {
            // A password check like sign-in's: reserved first, so a session holder cannot
            // guess the current password faster than the sign-in form allows.
            let reservation = self.reserve_attempt(&who.user.username.canonical(), None, ctx, json!({"step": "password_change"}), Some(who.user.id)).await?;
            if let Verification::Mismatch = self.hasher.verify(current, stored.as_deref()).await? {
                return Err(CoreError::Invalid("The current password is not right.".into()));
            }
            self.attempt_succeeded(reservation).await?;
        }
        let email = who.user.email.as_ref().map_or("", |e| e.as_str());
        self.rules.check(new.expose(), false, &[who.user.username.as_str(), email])?;
        let hash = self.hasher.hash(new).await?;
        let (ended, event) = self.store.change_password(who.user.id, &hash, Some(&who.id_hash), self.clock.now()).await?;
        self.audit
            .record(AuditKind::PasswordChanged, Some(who.user.id), ctx, json!({"other_sessions_ended": ended}))
            .await;
        self.apply_events(&[event]).await;
        Ok(ended)
    }

    /// Sets a user's password (administrator or CLI); ends all of the user's sessions.
    pub async fn set_password(&self, user_id: UserId, new: &Password, ctx: &RequestContext) -> Result<(), CoreError> {
        let user = self.find_user(user_id).await?;
        let email = user.email.as_ref().map_or("", |e| e.as_str());
        self.rules.check(new.expose(), false, &[user.username.as_str(), email])?;
        let hash = self.hasher.hash(new).await?;
        let (_, event) = self.store.change_password(user_id, &hash, None, self.clock.now()).await.map_err(conflict)?;
        self.audit.record(AuditKind::PasswordChanged, Some(user_id), ctx, json!({"by": "admin"})).await;
        self.apply_events(&[event]).await;
        Ok(())
    }
}
