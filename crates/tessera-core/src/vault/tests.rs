//! The vault's flows over an in-memory store and a fake refresher: handing out, refreshing
//! when expired (or about to be), refresh-token rotation, refusal without a refresh token,
//! and a refresh that loses the race to another node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::CoreError;
use crate::clock::ManualClock;
use crate::error::StoreError;
use crate::upstream::{TokenKeeper, UpstreamRefresher, UpstreamSecret, UpstreamTokenSet};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

#[derive(Default)]
struct MemStore {
    sets: Mutex<HashMap<(UserId, String), SealedTokenSet>>,
    /// Simulates another node: before the next conditional update, bump the stored version
    /// and put this access token in place.
    interloper: Mutex<Option<(UpstreamTokenSet, TokenSealer)>>,
}

#[async_trait::async_trait]
impl VaultStore for MemStore {
    async fn put_upstream_tokens(&self, set: &SealedTokenSet) -> Result<(), StoreError> {
        let mut m = self.sets.lock().unwrap();
        let version = m.get(&(set.user_id, set.provider.clone())).map_or(1, |s| s.version + 1);
        m.insert((set.user_id, set.provider.clone()), SealedTokenSet { version, ..set.clone() });
        Ok(())
    }
    async fn find_upstream_tokens(&self, user: UserId, provider: &str) -> Result<Option<SealedTokenSet>, StoreError> {
        Ok(self.sets.lock().unwrap().get(&(user, provider.to_owned())).cloned())
    }
    async fn list_upstream_tokens(&self, user: UserId) -> Result<Vec<KeptTokenSummary>, StoreError> {
        Ok(self
            .sets
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id == user)
            .map(|s| KeptTokenSummary {
                provider: s.provider.clone(),
                scope: s.scope.clone(),
                expires_at: s.expires_at,
                refreshable: s.refresh_token.is_some(),
                kept_at: s.kept_at,
                refreshed_at: s.refreshed_at,
            })
            .collect())
    }
    async fn update_refreshed_upstream_tokens(&self, set: &SealedTokenSet, expected: i64) -> Result<bool, StoreError> {
        let mut m = self.sets.lock().unwrap();
        let key = (set.user_id, set.provider.clone());
        if let Some((tokens, sealer)) = self.interloper.lock().unwrap().take() {
            let cur = m.get_mut(&key).unwrap();
            cur.access_token = sealer.seal(&set.user_id, &set.provider, TokenKind::Access, &tokens.access_token).unwrap();
            cur.expires_at = tokens.expires_at;
            cur.version += 1;
        }
        match m.get_mut(&key) {
            Some(cur) if cur.version == expected => {
                *cur = SealedTokenSet { version: expected + 1, ..set.clone() };
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete_upstream_tokens(&self, user: UserId, provider: &str) -> Result<bool, StoreError> {
        Ok(self.sets.lock().unwrap().remove(&(user, provider.to_owned())).is_some())
    }
}

/// Answers each refresh with the next access token `at-N`, and a new refresh token only
/// when `rotate` is set; records the refresh tokens it was given.
#[derive(Default)]
struct FakeRefresher {
    calls: AtomicUsize,
    rotate: bool,
    fail: bool,
    seen: Mutex<Vec<String>>,
    now: Mutex<Option<OffsetDateTime>>,
}

#[async_trait::async_trait]
impl UpstreamRefresher for FakeRefresher {
    async fn refresh(&self, provider: &str, refresh_token: &UpstreamSecret) -> Result<UpstreamTokenSet, CoreError> {
        assert_eq!(provider, "github");
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().unwrap().push(refresh_token.expose().to_owned());
        if self.fail {
            return Err(CoreError::Invalid("invalid_grant".into()));
        }
        let now = self.now.lock().unwrap().unwrap();
        Ok(UpstreamTokenSet {
            access_token: UpstreamSecret::new(format!("at-{n}")),
            refresh_token: self.rotate.then(|| UpstreamSecret::new(format!("rt-{n}"))),
            expires_at: Some(now + Duration::hours(1)),
            scope: None,
        })
    }
}

fn tokens(access: &str, refresh: Option<&str>, expires_at: Option<OffsetDateTime>) -> UpstreamTokenSet {
    UpstreamTokenSet {
        access_token: UpstreamSecret::new(access),
        refresh_token: refresh.map(UpstreamSecret::new),
        expires_at,
        scope: Some("repo,user:email".into()),
    }
}

struct Fixture {
    vault: Vault,
    store: Arc<MemStore>,
    refresher: Arc<FakeRefresher>,
    now: OffsetDateTime,
}

fn fixture(refresher: FakeRefresher) -> Fixture {
    let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    *refresher.now.lock().unwrap() = Some(now);
    let store = Arc::new(MemStore::default());
    let refresher = Arc::new(refresher);
    let vault = Vault::new(store.clone(), TokenSealer::new(&[9u8; 32]).unwrap(), Arc::new(ManualClock::new(now)), Duration::minutes(10))
        .with_refresher(refresher.clone());
    Fixture { vault, store, refresher, now }
}

#[tokio::test]
async fn a_live_token_is_handed_out_without_refreshing() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now + Duration::hours(1))), f.now).await.unwrap();
    let live = f.vault.access_token(user, "github", f.now).await.unwrap();
    assert_eq!(live.access_token.expose(), "at-0");
    assert_eq!(live.scope.as_deref(), Some("repo,user:email"));
    assert_eq!(f.refresher.calls.load(Ordering::SeqCst), 0);
    assert!(!format!("{live:?}").contains("at-0"), "Debug is redacted");
    let sealed = f.store.find_upstream_tokens(user, "github").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&sealed.access_token).contains("at-0"), "sealed at rest");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_stored_and_the_old_refresh_token_kept() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now - Duration::seconds(5))), f.now).await.unwrap();
    let live = f.vault.access_token(user, "github", f.now).await.unwrap();
    assert_eq!(live.access_token.expose(), "at-1");
    assert_eq!(live.expires_at, Some(f.now + Duration::hours(1)));
    assert_eq!(live.scope.as_deref(), Some("repo,user:email"), "the scope is kept when the upstream does not repeat it");
    // Stored: the next call hands out the same token without refreshing again.
    assert_eq!(f.vault.access_token(user, "github", f.now).await.unwrap().access_token.expose(), "at-1");
    assert_eq!(f.refresher.calls.load(Ordering::SeqCst), 1);
    let listed = f.vault.list(user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].refreshed_at, Some(f.now));
    assert!(listed[0].refreshable, "the old refresh token is kept when the upstream returns none");
    // It expires again: the kept (old) refresh token is presented once more.
    let later = f.now + Duration::hours(2);
    *f.refresher.now.lock().unwrap() = Some(later);
    assert_eq!(f.vault.access_token(user, "github", later).await.unwrap().access_token.expose(), "at-2");
    assert_eq!(*f.refresher.seen.lock().unwrap(), vec!["rt-0".to_owned(), "rt-0".to_owned()]);
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_old_one() {
    let f = fixture(FakeRefresher { rotate: true, ..FakeRefresher::default() });
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now)), f.now).await.unwrap();
    f.vault.access_token(user, "github", f.now).await.unwrap();
    let later = f.now + Duration::hours(2);
    *f.refresher.now.lock().unwrap() = Some(later);
    f.vault.access_token(user, "github", later).await.unwrap();
    assert_eq!(*f.refresher.seen.lock().unwrap(), vec!["rt-0".to_owned(), "rt-1".to_owned()]);
}

#[tokio::test]
async fn a_token_within_a_minute_of_expiry_is_refreshed() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now + Duration::seconds(59))), f.now).await.unwrap();
    assert_eq!(f.vault.access_token(user, "github", f.now).await.unwrap().access_token.expose(), "at-1");
    let user2 = UserId::new();
    f.vault.keep(&user2, "github", "43", tokens("b-0", Some("rt-0"), Some(f.now + Duration::seconds(61))), f.now).await.unwrap();
    assert_eq!(f.vault.access_token(user2, "github", f.now).await.unwrap().access_token.expose(), "b-0");
}

#[tokio::test]
async fn an_expired_token_without_a_refresh_token_is_an_error() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", None, Some(f.now - Duration::hours(1))), f.now).await.unwrap();
    assert!(matches!(f.vault.access_token(user, "github", f.now).await, Err(VaultError::Expired)));
    assert_eq!(f.refresher.calls.load(Ordering::SeqCst), 0);
    // Without a refresher at all, the same.
    let bare = Vault::new(f.store.clone(), TokenSealer::new(&[9u8; 32]).unwrap(), Arc::new(ManualClock::new(f.now)), Duration::minutes(10));
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now - Duration::hours(1))), f.now).await.unwrap();
    assert!(matches!(bare.access_token(user, "github", f.now).await, Err(VaultError::Expired)));
}

#[tokio::test]
async fn a_refused_refresh_and_nothing_kept_are_errors() {
    let f = fixture(FakeRefresher { fail: true, ..FakeRefresher::default() });
    let user = UserId::new();
    assert!(matches!(f.vault.access_token(user, "github", f.now).await, Err(VaultError::NothingKept)));
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now - Duration::hours(1))), f.now).await.unwrap();
    assert!(matches!(f.vault.access_token(user, "github", f.now).await, Err(VaultError::RefreshFailed(_))));
    assert!(matches!(f.vault.access_token(user, "gitlab", f.now).await, Err(VaultError::NothingKept)));
}

#[tokio::test]
async fn keep_replaces_the_earlier_set_and_drop_removes_it() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), None), f.now).await.unwrap();
    f.vault.keep(&user, "github", "42", tokens("at-new", None, None), f.now).await.unwrap();
    let live = f.vault.access_token(user, "github", f.now).await.unwrap();
    assert_eq!(live.access_token.expose(), "at-new");
    assert!(!f.vault.list(user).await.unwrap()[0].refreshable, "the whole set is replaced");
    assert!(f.vault.keep(&user, "git hub", "42", tokens("x", None, None), f.now).await.is_err(), "not a provider name");
    assert!(f.vault.keep(&user, "github", "42", tokens("", None, None), f.now).await.is_err(), "empty token");
    let ctx = crate::session::RequestContext::default();
    assert!(f.vault.drop_tokens(user, "github", &ctx).await.unwrap());
    assert!(!f.vault.drop_tokens(user, "github", &ctx).await.unwrap());
    assert!(matches!(f.vault.access_token(user, "github", f.now).await, Err(VaultError::NothingKept)));
}

#[tokio::test]
async fn a_refresh_that_loses_the_race_hands_out_the_winners_token() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now - Duration::seconds(1))), f.now).await.unwrap();
    *f.store.interloper.lock().unwrap() = Some((tokens("other-node", None, Some(f.now + Duration::hours(1))), TokenSealer::new(&[9u8; 32]).unwrap()));
    let live = f.vault.access_token(user, "github", f.now).await.unwrap();
    assert_eq!(live.access_token.expose(), "other-node", "the conditional update refused to overwrite the other node's set");
}

#[tokio::test]
async fn concurrent_refreshes_on_one_node_refresh_once() {
    let f = fixture(FakeRefresher::default());
    let user = UserId::new();
    f.vault.keep(&user, "github", "42", tokens("at-0", Some("rt-0"), Some(f.now - Duration::seconds(1))), f.now).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let v = f.vault.clone();
            let now = f.now;
            tokio::spawn(async move { v.access_token(user, "github", now).await.unwrap().access_token.expose().to_owned() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "at-1");
    }
    assert_eq!(f.refresher.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn provider_names_and_scope_lists() {
    for ok in ["github", "my-idp", "corp.example", "A_1"] {
        assert!(valid_provider_name(ok), "{ok}");
    }
    for bad in ["", "git hub", "a\nb", "a/b", "a:b", &"x".repeat(65)] {
        assert!(!valid_provider_name(bad), "{bad:?}");
    }
    assert_eq!(scope_list("repo,user:email read:org  repo"), vec!["read:org", "repo", "user:email"]);
}
