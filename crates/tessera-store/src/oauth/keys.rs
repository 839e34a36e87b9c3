//! Signing keys (next, active, retired) and the key-set version nodes poll to reload them.

use super::corrupt;
use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit};
use crate::rows::ts;
use crate::store::SqlStore;
use sqlx::FromRow;
use tessera_core::jose::JwsAlg;
use tessera_core::oauth::model::{KeyState, StoredKey};
use tessera_core::store::StoreError;
use time::OffsetDateTime;

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private: Vec<u8>,
    state: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            kid: self.kid,
            alg: JwsAlg::parse(&self.alg).ok_or_else(|| corrupt("alg"))?,
            sealed_private: self.sealed_private,
            state: KeyState::parse(&self.state).ok_or_else(|| corrupt("key state"))?,
            created_at: ts(self.created_at)?,
            activated_at: self.activated_at.map(ts).transpose()?,
            retired_at: self.retired_at.map(ts).transpose()?,
        })
    }
}

pub(super) async fn list_keys(store: &SqlStore) -> Result<Vec<StoredKey>, StoreError> {
    let rows: Vec<KeyRow> = on_db!(store, read, |pool| {
        sqlx::query_as("SELECT kid, alg, sealed_private, state, created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, kid")
            .all(pool)
            .await
    })?;
    rows.into_iter().map(KeyRow::into_key).collect()
}

pub(super) async fn insert_initial_keys(store: &SqlStore, keys: &[StoredKey]) -> Result<bool, StoreError> {
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let mut inserted = false;
        for k in keys {
            let exists: Option<String> = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE alg = $1 AND state = $2")
                .bind(k.alg.as_str())
                .bind(k.state.as_str())
                .optional(&mut *tx)
                .await?;
            if exists.is_some() {
                continue;
            }
            // Create-or-read: a node starting at the same moment may have inserted this
            // (alg, state) since the check; its key wins (one_*_key_per_alg indexes).
            let n = sqlx::query(
                "INSERT INTO signing_keys (kid, alg, sealed_private, state, created_at, activated_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING",
            )
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.sealed_private)
            .bind(k.state.as_str())
            .bind(k.created_at.unix_timestamp())
            .bind(k.activated_at.map(|t| t.unix_timestamp()))
            .exec(&mut *tx)
            .await?;
            inserted |= n == 1;
        }
        sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").exec(&mut *tx).await?;
        commit(tx).await?;
        Ok(inserted)
    })
}

pub(super) async fn rotate_keys(store: &SqlStore, new_next: &StoredKey, now: OffsetDateTime) -> Result<(), StoreError> {
    let alg = new_next.alg.as_str();
    let t = now.unix_timestamp();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE alg = $1 AND state = 'active'")
            .bind(alg)
            .bind(t)
            .exec(&mut *tx)
            .await?;
        sqlx::query("UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE alg = $1 AND state = 'next'")
            .bind(alg)
            .bind(t)
            .exec(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_private, state, created_at, activated_at, retired_at) \
             VALUES ($1, $2, $3, 'next', $4, NULL, NULL)",
        )
        .bind(&new_next.kid)
        .bind(alg)
        .bind(&new_next.sealed_private)
        .bind(t)
        .exec(&mut *tx)
        .await?;
        sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").exec(&mut *tx).await?;
        commit(tx).await
    })
}

pub(super) async fn delete_retired_keys(store: &SqlStore, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let n = sqlx::query("DELETE FROM signing_keys WHERE state = 'retired' AND retired_at < $1")
            .bind(cutoff.unix_timestamp())
            .exec(&mut *tx)
            .await?;
        if n > 0 {
            sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").exec(&mut *tx).await?;
        }
        commit(tx).await?;
        Ok(n)
    })
}

pub(super) async fn keys_version(store: &SqlStore) -> Result<i64, StoreError> {
    on_db!(store, read, |pool| {
        sqlx::query_scalar("SELECT version FROM key_set_version WHERE id = 1").one(pool).await
    })
}
