//! Statements and macros that several intents run inside their own transactions: the
//! event-log lock, revoking grants (with their feed events and parties), and writing outbox
//! events. Lifecycle changes, session ends and the outbox consumer share them; this module
//! depends on none of them, so they do not depend on each other.
//! The macros expect `db` (from `crate::backend`) in scope at the call site.

use crate::oauth::grant_columns;

/// A `token-revoked` event for every live access token of grant $1 at time $2.
pub(crate) const GRANT_TOKEN_EVENTS: &str = "INSERT INTO security_events (at, kind, subject, session) \
     SELECT $2, 'token-revoked', jti, NULL FROM access_tokens WHERE grant_id = $1 AND expires_at > $2 RETURNING seq";
/// Records that event $1 concerns a grant of client $2 for audience $3 (kept after the grant).
pub(crate) const EVENT_PARTY: &str = "INSERT INTO security_event_parties (seq, client_id, audience) VALUES ($1, $2, $3)";
pub(crate) const DELETE_GRANT_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE grant_id = $1";

/// Stored kinds of [`DomainEvent`].
pub(crate) const SESSION_ENDED: &str = "session-ended";
pub(crate) const ALL_SESSIONS_ENDED: &str = "all-sessions-ended";
pub(crate) const CREDENTIALS_CHANGED: &str = "credentials-changed";
pub(crate) const GRANTS_REVOKED: &str = "grants-revoked";

/// Writes an event: $1 kind, $2 user, $3 session, $4 time; answers its id.
pub(crate) const RECORD_EVENT: &str = "INSERT INTO outbox (kind, user_id, session, written_at) VALUES ($1, $2, $3, $4) RETURNING id";
/// Copies grant $2 into the grants of event $1.
pub(crate) const COPY_GRANT: &str =
    concat!("INSERT INTO outbox_grants (outbox_id, ", grant_columns!(), ") SELECT $1, ", grant_columns!(), " FROM grants WHERE id = $2");

/// Writes an outbox event (`$kind`, user `$user`, session `$session`: `Option<String>`s) at
/// unix time `$t` in `$tx`; evaluates to its id.
macro_rules! record_event {
    ($tx:expr, $kind:expr, $user:expr, $session:expr, $t:expr) => {{
        let id: i64 = sqlx::query_scalar($crate::in_tx::RECORD_EVENT)
            .bind($kind)
            .bind($user)
            .bind($session)
            .bind($t)
            .fetch_one(&mut *$tx)
            .await
            .map_err(db)?;
        tessera_core::ids::OutboxId::new(id)
    }};
}
pub(crate) use record_event;

/// Writes a `grants-revoked` event for the grants `$rows` (`GrantRow`s, still in `grants`)
/// at unix time `$t` in `$tx`; evaluates to its id, or `None` for no grants.
macro_rules! record_revoked {
    ($tx:expr, $rows:expr, $t:expr) => {{
        let rows: &[$crate::oauth::GrantRow] = $rows;
        if rows.is_empty() {
            None
        } else {
            let event = $crate::in_tx::record_event!($tx, $crate::in_tx::GRANTS_REVOKED, None::<String>, None::<String>, $t);
            for r in rows {
                sqlx::query($crate::in_tx::COPY_GRANT).bind(event.get()).bind(&r.id).execute(&mut *$tx).await.map_err(db)?;
            }
            Some(event)
        }
    }};
}
pub(crate) use record_revoked;

/// Takes the event-log lock in `$tx` (PostgreSQL; a no-op on SQLite).
macro_rules! lock_events {
    ($pool:expr, $tx:expr) => {{
        if let Some(lock) = $pool.event_log_lock() {
            sqlx::query(lock).execute(&mut *$tx).await.map_err(db)?;
        }
    }};
}
pub(crate) use lock_events;

/// Revokes the live grants `$sql` selects (`$1` = `$key`, `$2` = now) in `$tx`: each grant's
/// live access tokens get a `token-revoked` event (whose party, the grant's client and
/// audience, is recorded so the feed still finds it if the grant is deleted next) and its
/// refresh tokens are deleted.
macro_rules! revoke_grants {
    ($tx:expr, $sql:expr, $key:expr, $t:expr) => {{
        let rows: Vec<$crate::oauth::GrantRow> = sqlx::query_as($sql).bind($key).bind($t).fetch_all(&mut *$tx).await.map_err(db)?;
        for r in &rows {
            let seqs: Vec<i64> =
                sqlx::query_scalar($crate::in_tx::GRANT_TOKEN_EVENTS).bind(&r.id).bind($t).fetch_all(&mut *$tx).await.map_err(db)?;
            for seq in seqs {
                sqlx::query($crate::in_tx::EVENT_PARTY).bind(seq).bind(&r.client_id).bind(&r.audience).execute(&mut *$tx).await.map_err(db)?;
            }
            sqlx::query($crate::in_tx::DELETE_GRANT_REFRESH_TOKENS).bind(&r.id).execute(&mut *$tx).await.map_err(db)?;
        }
        rows
    }};
}
pub(crate) use revoke_grants;
