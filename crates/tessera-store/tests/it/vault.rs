//! `VaultStore` conformance on both backends: sealed tokens round-trip and open only in their
//! own row (a ciphertext moved to another user's row is refused), a kept set is replaced
//! whole, dropped, and deleted with its user, and of two concurrent refreshes over the same
//! version exactly one is written.

use crate::support::{create, now};
use std::sync::Arc;
use tessera_core::clock::ManualClock;
use tessera_core::store::Store;
use tessera_core::upstream::{TokenKeeper, UpstreamSecret, UpstreamTokenSet};
use tessera_core::vault::{TokenKind, TokenSealer, Vault, VaultError, VaultStore};
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    kept_tokens_are_sealed_and_open_in_their_own_row,
    a_ciphertext_moved_to_another_row_does_not_open,
    keeping_again_replaces_the_whole_set,
    dropping_and_deleting_the_user_remove_the_set,
    of_two_refreshes_over_one_version_one_is_written,
);

fn sealer() -> TokenSealer {
    TokenSealer::new(&[5u8; 32]).unwrap()
}

fn vault(db: &TestDb) -> Vault {
    Vault::new(db.store.clone(), sealer(), Arc::new(ManualClock::new(now())), Duration::minutes(10))
}

fn set(access: &str, refresh: Option<&str>) -> UpstreamTokenSet {
    UpstreamTokenSet {
        access_token: UpstreamSecret::new(access),
        refresh_token: refresh.map(UpstreamSecret::new),
        expires_at: Some(now() + Duration::hours(1)),
        scope: Some("repo user:email".into()),
    }
}

async fn kept_tokens_are_sealed_and_open_in_their_own_row(db: TestDb) {
    let u = create(db.store.as_ref(), "alice", None).await;
    let v = vault(&db);
    let t = now();
    v.keep(&u.id, "github", "1001", set("gho_access", Some("ghr_refresh")), t).await.unwrap();

    let stored = db.store.find_upstream_tokens(u.id, "github").await.unwrap().expect("kept");
    assert_eq!(stored.subject, "1001");
    assert_eq!(stored.kept_at, t);
    assert_eq!(stored.version, 1);
    assert!(!String::from_utf8_lossy(&stored.access_token).contains("gho_access"), "sealed at rest");
    let s = sealer();
    assert_eq!(s.open(&u.id, "github", TokenKind::Access, &stored.access_token).unwrap().expose(), "gho_access");
    assert_eq!(s.open(&u.id, "github", TokenKind::Refresh, stored.refresh_token.as_deref().unwrap()).unwrap().expose(), "ghr_refresh");
    assert_eq!(v.access_token(u.id, "github", t).await.unwrap().access_token.expose(), "gho_access");

    let listed = db.store.list_upstream_tokens(u.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].provider, "github");
    assert_eq!(listed[0].scope.as_deref(), Some("repo user:email"));
    assert!(listed[0].refreshable);
    assert_eq!(listed[0].expires_at, Some(t + Duration::hours(1)));
    assert_eq!(listed[0].refreshed_at, None);
    assert!(db.store.find_upstream_tokens(u.id, "gitlab").await.unwrap().is_none());
}

async fn a_ciphertext_moved_to_another_row_does_not_open(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", None).await;
    let mallory = create(db.store.as_ref(), "mallory", None).await;
    let v = vault(&db);
    let t = now();
    v.keep(&alice.id, "github", "1", set("alice-token", None), t).await.unwrap();
    v.keep(&mallory.id, "github", "2", set("mallory-token", None), t).await.unwrap();
    // Someone with write access to the database copies Alice's sealed token into Mallory's row,
    // and into another provider's row of Alice's.
    let alices = db.store.find_upstream_tokens(alice.id, "github").await.unwrap().unwrap();
    let mut swapped = db.store.find_upstream_tokens(mallory.id, "github").await.unwrap().unwrap();
    swapped.access_token = alices.access_token.clone();
    db.store.put_upstream_tokens(&swapped).await.unwrap();
    let err = v.access_token(mallory.id, "github", t).await.unwrap_err();
    assert!(matches!(err, VaultError::Core(_)), "{err:?}");
    let mut moved = alices.clone();
    moved.provider = "gitlab".into();
    db.store.put_upstream_tokens(&moved).await.unwrap();
    assert!(matches!(v.access_token(alice.id, "gitlab", t).await, Err(VaultError::Core(_))));
    // Alice's own row still opens.
    assert_eq!(v.access_token(alice.id, "github", t).await.unwrap().access_token.expose(), "alice-token");
}

async fn keeping_again_replaces_the_whole_set(db: TestDb) {
    let u = create(db.store.as_ref(), "alice", None).await;
    let v = vault(&db);
    let t = now();
    v.keep(&u.id, "github", "1001", set("first", Some("refresh")), t).await.unwrap();
    let mut second = set("second", None);
    second.scope = None;
    second.expires_at = None;
    v.keep(&u.id, "github", "1001", second, t + Duration::minutes(1)).await.unwrap();
    let stored = db.store.find_upstream_tokens(u.id, "github").await.unwrap().unwrap();
    assert_eq!(stored.version, 2, "the version moves on");
    assert!(stored.refresh_token.is_none() && stored.scope.is_none() && stored.expires_at.is_none(), "nothing of the old set survives");
    assert_eq!(stored.kept_at, t + Duration::minutes(1));
    assert_eq!(v.access_token(u.id, "github", t).await.unwrap().access_token.expose(), "second");
    v.keep(&u.id, "gitlab", "7", set("lab", None), t).await.unwrap();
    let providers: Vec<_> = db.store.list_upstream_tokens(u.id).await.unwrap().into_iter().map(|s| s.provider).collect();
    assert_eq!(providers, vec!["github", "gitlab"]);
}

async fn dropping_and_deleting_the_user_remove_the_set(db: TestDb) {
    let u = create(db.store.as_ref(), "alice", None).await;
    let other = create(db.store.as_ref(), "bob", None).await;
    let v = vault(&db);
    let t = now();
    for (who, p) in [(u.id, "github"), (u.id, "gitlab"), (other.id, "github")] {
        v.keep(&who, p, "s", set("tok", None), t).await.unwrap();
    }
    assert!(db.store.delete_upstream_tokens(u.id, "github").await.unwrap());
    assert!(!db.store.delete_upstream_tokens(u.id, "github").await.unwrap(), "already dropped");
    assert!(db.store.find_upstream_tokens(u.id, "github").await.unwrap().is_none());
    assert!(db.store.find_upstream_tokens(other.id, "github").await.unwrap().is_some(), "another user's set stays");

    db.store.delete_user(u.id).await.unwrap();
    assert!(db.store.list_upstream_tokens(u.id).await.unwrap().is_empty(), "deleted with the user");
    assert_eq!(db.store.list_upstream_tokens(other.id).await.unwrap().len(), 1);
}

async fn of_two_refreshes_over_one_version_one_is_written(db: TestDb) {
    let u = create(db.store.as_ref(), "alice", None).await;
    let v = vault(&db);
    let t = now();
    v.keep(&u.id, "github", "1001", set("old", Some("refresh")), t).await.unwrap();
    let read = db.store.find_upstream_tokens(u.id, "github").await.unwrap().unwrap();
    let s = sealer();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tasks: Vec<_> = ["node-a", "node-b"]
        .into_iter()
        .map(|node| {
            let mut next = read.clone();
            next.access_token = s.seal(&u.id, "github", TokenKind::Access, &UpstreamSecret::new(node)).unwrap();
            next.refreshed_at = Some(t + Duration::seconds(1));
            let store = db.store.clone();
            let barrier = barrier.clone();
            let expected = read.version;
            tokio::spawn(async move {
                barrier.wait().await;
                (node, store.update_refreshed_upstream_tokens(&next, expected).await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (node, won) = task.await.unwrap();
        if won {
            winners.push(node);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh is written");
    let stored = db.store.find_upstream_tokens(u.id, "github").await.unwrap().unwrap();
    assert_eq!(stored.version, read.version + 1);
    assert_eq!(s.open(&u.id, "github", TokenKind::Access, &stored.access_token).unwrap().expose(), winners[0]);
    assert_eq!(stored.refresh_token, read.refresh_token, "the refresh token written is the one given");
    // A write over a stale version is refused.
    assert!(!db.store.update_refreshed_upstream_tokens(&read, read.version).await.unwrap());
}
