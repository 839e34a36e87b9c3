//! The signing key ring: one active key per algorithm (EdDSA, ES256, RS256) plus a `next`
//! key that JWKS publishes before it ever signs, and retired keys kept in JWKS until every
//! token they signed has expired. Parsed keys live in memory; the store holds them sealed.

use crate::CoreError;
use crate::jose::{JwsAlg, KeySealer, SigningKey, VerifyingKey};
use crate::oauth::model::{KeyState, StoredKey};
use crate::oauth::store::OAuthStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// The keys in force at one moment.
#[derive(Debug)]
pub struct KeySet {
    active: HashMap<JwsAlg, Arc<SigningKey>>,
    verifying: Vec<VerifyingKey>,
    jwks: Arc<str>,
    version: i64,
}

impl KeySet {
    /// The signing key for `alg`.
    pub fn signer(&self, alg: JwsAlg) -> Result<&Arc<SigningKey>, CoreError> {
        self.active.get(&alg).ok_or_else(|| CoreError::Internal(format!("no active {} key", alg.as_str())))
    }
    /// Every published public key (next, active, retired).
    pub fn verifying_keys(&self) -> &[VerifyingKey] {
        &self.verifying
    }
    /// The JWKS document, serialised once.
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks.clone()
    }
}

/// The live key ring; reloads from the store when the stored set changes.
pub struct KeyRing {
    store: Arc<dyn OAuthStore>,
    sealer: KeySealer,
    current: RwLock<Arc<KeySet>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing")
    }
}

fn stored(key: &SigningKey, der: &[u8], state: KeyState, sealer: &KeySealer, now: OffsetDateTime) -> Result<StoredKey, CoreError> {
    Ok(StoredKey {
        kid: key.kid().to_owned(),
        alg: key.alg(),
        sealed_private: sealer.seal(key.kid(), der)?,
        state,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
    })
}

impl KeyRing {
    /// Loads the ring, generating an active and a next key per algorithm on first start.
    pub async fn load_or_init(store: Arc<dyn OAuthStore>, sealer: KeySealer, now: OffsetDateTime) -> Result<Self, CoreError> {
        let existing = store.list_keys().await?;
        let missing: Vec<JwsAlg> = JwsAlg::ALL
            .into_iter()
            .filter(|alg| !existing.iter().any(|k| k.alg == *alg && k.state == KeyState::Active))
            .collect();
        if !missing.is_empty() {
            let mut fresh = Vec::new();
            for alg in missing {
                for state in [KeyState::Active, KeyState::Next] {
                    let (key, der) = SigningKey::generate(alg)?;
                    fresh.push(stored(&key, &der, state, &sealer, now)?);
                }
            }
            store.insert_initial_keys(&fresh).await?;
        }
        let set = Self::build(&*store, &sealer).await?;
        Ok(Self { store, sealer, current: RwLock::new(Arc::new(set)) })
    }

    async fn build(store: &dyn OAuthStore, sealer: &KeySealer) -> Result<KeySet, CoreError> {
        let version = store.keys_version().await?;
        let keys = store.list_keys().await?;
        let mut active = HashMap::new();
        let mut verifying = Vec::new();
        let mut published = Vec::new();
        for k in &keys {
            let der = sealer.open(&k.kid, &k.sealed_private)?;
            let parsed = SigningKey::from_pkcs8(k.alg, &der)?;
            verifying.push(parsed.verifying_key()?);
            published.push(parsed.public_jwk().clone());
            if k.state == KeyState::Active {
                active.insert(k.alg, Arc::new(parsed));
            }
        }
        let jwks: Value = json!({"keys": published});
        Ok(KeySet { active, verifying, jwks: Arc::from(jwks.to_string()), version })
    }

    /// The keys in force.
    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads if the stored set changed (another process rotated keys); true if it did.
    pub async fn refresh(&self) -> Result<bool, CoreError> {
        let version = self.store.keys_version().await?;
        if version == self.current().version {
            return Ok(false);
        }
        let set = Arc::new(Self::build(&*self.store, &self.sealer).await?);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(true)
    }

    /// Rotates every algorithm: next becomes active, active retires, a new next is made.
    pub async fn rotate(&self, now: OffsetDateTime) -> Result<(), CoreError> {
        for alg in JwsAlg::ALL {
            let (key, der) = SigningKey::generate(alg)?;
            self.store.rotate_keys(&stored(&key, &der, KeyState::Next, &self.sealer, now)?, now).await?;
        }
        self.refresh().await?;
        Ok(())
    }

    /// Deletes keys retired longer ago than `keep` (the longest token lifetime).
    pub async fn purge_retired(&self, now: OffsetDateTime, keep: time::Duration) -> Result<u64, CoreError> {
        let n = self.store.delete_retired_keys(now - keep).await?;
        if n > 0 {
            self.refresh().await?;
        }
        Ok(n)
    }

    /// The stored keys, for `tessera keys list`.
    pub async fn list(&self) -> Result<Vec<StoredKey>, CoreError> {
        Ok(self.store.list_keys().await?)
    }
}
