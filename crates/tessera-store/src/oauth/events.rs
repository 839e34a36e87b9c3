//! The security event log behind the revocation feed, and the queue of back-channel logout
//! deliveries.

use super::{corrupt, uuid};
use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit};
use crate::rows::ts;
use crate::store::SqlStore;
use sqlx::FromRow;
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::model::{LogoutDelivery, NewSecurityEvent, SecurityEvent, SecurityEventKind};
use tessera_core::store::StoreError;
use time::OffsetDateTime;

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    client_id: String,
    uri: String,
    logout_token: String,
    attempts: i64,
    next_attempt_at: i64,
}

pub(super) async fn enqueue_logout_deliveries(store: &SqlStore, deliveries: &[LogoutDelivery]) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        for d in deliveries {
            sqlx::query(
                "INSERT INTO logout_deliveries (id, client_id, uri, logout_token, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(d.id.to_string())
            .bind(d.client_id.as_str())
            .bind(&d.uri)
            .bind(&d.logout_token)
            .bind(d.attempts)
            .bind(d.next_attempt_at.unix_timestamp())
            .exec(&mut *tx)
            .await?;
        }
        commit(tx).await
    })
}

pub(super) async fn due_logout_deliveries(store: &SqlStore, now: OffsetDateTime, limit: u32) -> Result<Vec<LogoutDelivery>, StoreError> {
    let rows: Vec<DeliveryRow> = on_db!(store, read, |pool| {
        sqlx::query_as(
            "SELECT id, client_id, uri, logout_token, attempts, next_attempt_at FROM logout_deliveries \
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now.unix_timestamp())
        .bind(i64::from(limit))
        .all(pool)
        .await
    })?;
    rows.into_iter()
        .map(|r| {
            Ok(LogoutDelivery {
                id: uuid(&r.id)?,
                client_id: ClientId::new(r.client_id),
                uri: r.uri,
                logout_token: r.logout_token,
                attempts: r.attempts,
                next_attempt_at: ts(r.next_attempt_at)?,
            })
        })
        .collect()
}

pub(super) async fn finish_logout_delivery(store: &SqlStore, id: uuid::Uuid) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        sqlx::query("DELETE FROM logout_deliveries WHERE id = $1").bind(id.to_string()).exec(pool).await
    })?;
    Ok(())
}

pub(super) async fn retry_logout_delivery(store: &SqlStore, id: uuid::Uuid, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        sqlx::query("UPDATE logout_deliveries SET attempts = attempts + 1, next_attempt_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(next_attempt_at.unix_timestamp())
            .exec(pool)
            .await
    })?;
    Ok(())
}

pub(super) async fn append_security_events(store: &SqlStore, events: &[NewSecurityEvent], now: OffsetDateTime) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        if let Some(lock) = pool.event_log_lock() {
            sqlx::query(lock).exec(&mut *tx).await?;
        }
        for e in events {
            sqlx::query("INSERT INTO security_events (at, kind, subject, session) VALUES ($1, $2, $3, $4)")
                .bind(now.unix_timestamp())
                .bind(e.kind.as_str())
                .bind(&e.subject)
                .bind(e.session.as_deref())
                .exec(&mut *tx)
                .await?;
        }
        commit(tx).await
    })
}

pub(super) async fn security_events_after(store: &SqlStore, after: i64, since: OffsetDateTime, limit: u32) -> Result<Vec<SecurityEvent>, StoreError> {
    let rows: Vec<(i64, i64, String, String, Option<String>)> = on_db!(store, read, |pool| {
        sqlx::query_as(
            "SELECT seq, at, kind, subject, session FROM security_events WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(since.unix_timestamp())
        .bind(i64::from(limit))
        .all(pool)
        .await
    })?;
    rows.into_iter()
        .map(|(seq, at, kind, subject, session)| {
            Ok(SecurityEvent {
                seq,
                at: ts(at)?,
                kind: SecurityEventKind::parse(&kind).ok_or_else(|| corrupt("event kind"))?,
                subject,
                session,
            })
        })
        .collect()
}
