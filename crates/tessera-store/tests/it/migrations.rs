//! Migrations are applied once; running them again (same or another connection) does nothing.

use crate::support::{create, now};
use tessera_store::{ConnectOptions, SqlStore};
use tessera_testkit::TestDb;

tessera_testkit::backend_tests!(migrations_are_idempotent);

async fn migrations_are_idempotent(db: TestDb) {
    // TestDb::new already migrated.
    let again = db.store.migrate(now()).await.unwrap();
    assert!(again.is_empty(), "nothing applied the second time: {again:?}");
    create(db.store.as_ref(), "alice", None).await;

    // Another connection (e.g. a second node or the CLI) finds nothing to do either,
    // and the data is untouched.
    let second = SqlStore::connect(&db.url, &ConnectOptions::default()).await.unwrap();
    assert!(second.migrate(now()).await.unwrap().is_empty());
    use tessera_core::store::Store;
    assert!(second.find_user_credentials_by_login("alice").await.unwrap().is_some());
    second.close().await;

    // A brand-new database gets every migration exactly once.
    let (url, _guard) = TestDb::fresh_url(db.backend).await.unwrap();
    let fresh = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
    let applied = fresh.migrate(now()).await.unwrap();
    assert!(!applied.is_empty());
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "applied in order: {applied:?}");
    assert!(fresh.migrate(now()).await.unwrap().is_empty());
    fresh.close().await;

    // Two nodes migrating a new database at the same time apply each migration once between them.
    let (url, _guard2) = TestDb::fresh_url(db.backend).await.unwrap();
    let a = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
    let b = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(now()), b.migrate(now()));
    let mut both = ra.unwrap();
    both.extend(rb.unwrap());
    both.sort_unstable();
    assert_eq!(both, applied, "each migration applied exactly once across both nodes");
    a.close().await;
    b.close().await;
}
