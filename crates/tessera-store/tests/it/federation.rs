//! `FederationStore` conformance on both backends: providers (sealed secret round trip,
//! unique names, cascade on delete), identities keyed by (issuer, subject), sign-ins in
//! flight taken once and only by their browser, pending links, and the unlink that keeps a
//! way in.

use crate::support::{create, new_user, now};
use tessera_core::federation::model::{
    FederatedIdentity, IdentityId, PendingLink, ProviderId, ProviderKind, ProviderName, ProviderRecord, UpstreamLogin, Url,
};
use tessera_core::federation::store::FederationStore;
use tessera_core::ids::{PasskeyId, UserId};
use tessera_core::mfa::model::PasskeyRecord;
use tessera_core::secret::{SecretToken, TokenHash};
use tessera_core::store::{MfaStore, Store, StoreError};
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    providers_round_trip_and_names_are_unique,
    oauth2_providers_keep_their_endpoints,
    upstream_login_is_single_use_and_bound_to_its_browser,
    upstream_login_lapses,
    identities_are_keyed_by_issuer_and_subject,
    unlink_keeps_a_way_in,
    pending_links_are_taken_once,
    deleting_a_provider_removes_its_identities,
    users_are_found_by_canonical_email,
    purge_removes_lapsed_records,
);

fn hash() -> TokenHash {
    SecretToken::generate().unwrap().hash()
}

fn oidc(name: &str) -> ProviderRecord {
    ProviderRecord {
        id: ProviderId::new(),
        name: ProviderName::parse(name).unwrap(),
        kind: ProviderKind::Oidc { issuer: format!("https://{name}.example.com") },
        client_id: "tessera".into(),
        client_secret_sealed: vec![1, 2, 3, 0, 255],
        scopes: vec!["openid".into(), "email".into()],
        domains: vec!["corp.example".into()],
        jit: true,
        trust_email: false,
        vault_tokens: true,
        enabled: true,
        created_at: now(),
    }
}

fn identity(p: &ProviderRecord, user: UserId, subject: &str) -> FederatedIdentity {
    FederatedIdentity {
        id: IdentityId::new(),
        provider_id: p.id,
        provider_name: p.name.as_str().to_owned(),
        issuer: "https://op.example.com".into(),
        subject: subject.into(),
        user_id: user,
        email: Some("a@corp.example".into()),
        created_at: now(),
        last_used_at: now(),
    }
}

fn login(p: &ProviderRecord, state: &TokenHash, browser: &TokenHash, ttl: Duration) -> UpstreamLogin {
    UpstreamLogin {
        state_hash: *state,
        browser_hash: *browser,
        provider_id: p.id,
        nonce_hash: hash(),
        return_to: "/oauth2/authorize?client_id=x".into(),
        issuer: Some("https://op.example.com".into()),
        expires_at: now() + ttl,
    }
}

async fn providers_round_trip_and_names_are_unique(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let got = s.find_upstream_provider("corp").await.unwrap().unwrap();
    assert_eq!(got.id, p.id);
    assert_eq!(got.kind, p.kind);
    assert_eq!(got.client_secret_sealed, p.client_secret_sealed);
    assert_eq!(got.scopes, p.scopes);
    assert_eq!(got.domains, p.domains);
    assert!(got.jit && !got.trust_email && got.vault_tokens && got.enabled);
    assert_eq!(got.created_at, p.created_at);
    let dup = oidc("corp");
    assert!(matches!(s.create_upstream_provider(&dup).await, Err(StoreError::Conflict(_))));
    s.create_upstream_provider(&oidc("another")).await.unwrap();
    let names: Vec<String> = s.list_upstream_providers().await.unwrap().iter().map(|p| p.name.as_str().to_owned()).collect();
    assert_eq!(names, vec!["another", "corp"]);
    assert!(s.find_upstream_provider("nope").await.unwrap().is_none());
    assert!(s.delete_upstream_provider("corp").await.unwrap());
    assert!(!s.delete_upstream_provider("corp").await.unwrap());
}

async fn oauth2_providers_keep_their_endpoints(db: TestDb) {
    let s = db.store.clone();
    let mut p = oidc("hub");
    p.kind = ProviderKind::OAuth2 {
        authorization_endpoint: Url::parse("https://hub.example/login/oauth/authorize").unwrap(),
        token_endpoint: Url::parse("https://hub.example/login/oauth/access_token").unwrap(),
        userinfo_endpoint: Url::parse("https://api.hub.example/user").unwrap(),
        emails_endpoint: Some(Url::parse("https://api.hub.example/user/emails").unwrap()),
    };
    s.create_upstream_provider(&p).await.unwrap();
    assert_eq!(s.find_upstream_provider("hub").await.unwrap().unwrap().kind, p.kind);
}

async fn upstream_login_is_single_use_and_bound_to_its_browser(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let (state, browser) = (hash(), hash());
    s.create_upstream_login(&login(&p, &state, &browser, Duration::minutes(10))).await.unwrap();
    assert!(s.take_upstream_login(&state, &hash(), now()).await.unwrap().is_none(), "another browser gets nothing");
    let got = s.take_upstream_login(&state, &browser, now()).await.unwrap().expect("its browser takes it");
    assert_eq!(got.provider_id, p.id);
    assert_eq!(got.return_to, "/oauth2/authorize?client_id=x");
    assert_eq!(got.issuer.as_deref(), Some("https://op.example.com"));
    assert!(s.take_upstream_login(&state, &browser, now()).await.unwrap().is_none(), "a replayed state gets nothing");
}

async fn upstream_login_lapses(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let (state, browser) = (hash(), hash());
    s.create_upstream_login(&login(&p, &state, &browser, Duration::minutes(10))).await.unwrap();
    assert!(s.take_upstream_login(&state, &browser, now() + Duration::minutes(11)).await.unwrap().is_none());
}

async fn identities_are_keyed_by_issuer_and_subject(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let (a, b) = (create(s.as_ref(), "alice", None).await, create(s.as_ref(), "bob", None).await);
    let i = identity(&p, a.id, "sub-1");
    s.create_federated_identity(&i).await.unwrap();
    assert!(matches!(s.create_federated_identity(&identity(&p, b.id, "sub-1")).await, Err(StoreError::Conflict(_))));
    s.create_federated_identity(&identity(&p, b.id, "sub-2")).await.unwrap();
    let found = s.find_federated_identity("https://op.example.com", "sub-1").await.unwrap().unwrap();
    assert_eq!((found.id, found.user_id, found.provider_name.as_str()), (i.id, a.id, "corp"));
    assert!(s.find_federated_identity("https://other.example.com", "sub-1").await.unwrap().is_none());
    s.touch_federated_identity(i.id, Some("new@corp.example"), now() + Duration::hours(1)).await.unwrap();
    let listed = s.list_user_identities(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].email.as_deref(), Some("new@corp.example"));
    assert_eq!(listed[0].last_used_at, now() + Duration::hours(1));
}

async fn unlink_keeps_a_way_in(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let mut nu = new_user("carol", None);
    nu.password_hash = None;
    let u = Store::create_user(s.as_ref(), &nu, now()).await.unwrap();
    let (first, second) = (identity(&p, u.id, "s1"), identity(&p, u.id, "s2"));
    s.create_federated_identity(&first).await.unwrap();
    s.create_federated_identity(&second).await.unwrap();
    let m = s.find_sign_in_methods(u.id).await.unwrap();
    assert_eq!((m.password, m.passkeys, m.identities), (false, 0, 2));
    assert!(s.delete_user_identity_keeping_a_way_in(u.id, first.id).await.unwrap(), "another identity remains");
    assert!(!s.delete_user_identity_keeping_a_way_in(u.id, second.id).await.unwrap(), "the last way in stays");
    let other = create(s.as_ref(), "dave", None).await;
    assert!(!s.delete_user_identity_keeping_a_way_in(other.id, second.id).await.unwrap(), "not theirs");
    s.create_passkey(&PasskeyRecord {
        id: PasskeyId::new(),
        user_id: u.id,
        credential_id: vec![9, 9, 9],
        name: "key".into(),
        data: "{}".into(),
        created_at: now(),
        last_used_at: None,
    })
    .await
    .unwrap();
    assert!(s.delete_user_identity_keeping_a_way_in(u.id, second.id).await.unwrap(), "a passkey is a way in");
    assert!(s.list_user_identities(u.id).await.unwrap().is_empty());
    // A user with a password may unlink every identity.
    let e = create(s.as_ref(), "erin", None).await;
    let only = identity(&p, e.id, "s3");
    s.create_federated_identity(&only).await.unwrap();
    assert!(s.delete_user_identity_keeping_a_way_in(e.id, only.id).await.unwrap());
}

async fn pending_links_are_taken_once(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let u = create(s.as_ref(), "frank", Some("frank@corp.example")).await;
    let h = hash();
    let link = PendingLink {
        hash: h,
        provider_id: p.id,
        issuer: "https://op.example.com".into(),
        subject: "s".into(),
        user_id: u.id,
        email: Some("frank@corp.example".into()),
        amr: vec!["fed".into()],
        return_to: "/account".into(),
        expires_at: now() + Duration::minutes(10),
    };
    s.create_pending_link(&link).await.unwrap();
    assert!(s.find_pending_link(&h, now()).await.unwrap().is_some());
    assert!(s.find_pending_link(&h, now() + Duration::minutes(11)).await.unwrap().is_none());
    let got = s.take_pending_link(&h, now()).await.unwrap().unwrap();
    assert_eq!((got.user_id, got.amr.clone(), got.subject.as_str()), (u.id, vec!["fed".to_owned()], "s"));
    assert!(s.take_pending_link(&h, now()).await.unwrap().is_none());
}

async fn deleting_a_provider_removes_its_identities(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let u = create(s.as_ref(), "gina", None).await;
    s.create_federated_identity(&identity(&p, u.id, "s")).await.unwrap();
    s.create_upstream_login(&login(&p, &hash(), &hash(), Duration::minutes(5))).await.unwrap();
    assert!(s.delete_upstream_provider("corp").await.unwrap());
    assert!(s.list_user_identities(u.id).await.unwrap().is_empty());
    assert!(s.find_federated_identity("https://op.example.com", "s").await.unwrap().is_none());
}

async fn users_are_found_by_canonical_email(db: TestDb) {
    let s = db.store.clone();
    let u = create(s.as_ref(), "hank", Some("Hank@Corp.Example")).await;
    let found = s.find_user_by_email("hank@corp.example").await.unwrap().unwrap();
    assert_eq!(found.id, u.id);
    assert!(s.find_user_by_email("nobody@corp.example").await.unwrap().is_none());
}

async fn purge_removes_lapsed_records(db: TestDb) {
    let s = db.store.clone();
    let p = oidc("corp");
    s.create_upstream_provider(&p).await.unwrap();
    let (state, browser) = (hash(), hash());
    s.create_upstream_login(&login(&p, &state, &browser, Duration::minutes(1))).await.unwrap();
    s.create_upstream_login(&login(&p, &hash(), &hash(), Duration::minutes(30))).await.unwrap();
    assert_eq!(s.purge_expired_upstream(now() + Duration::minutes(2)).await.unwrap(), 1);
    assert!(s.take_upstream_login(&state, &browser, now()).await.unwrap().is_none());
}
