//! `OAuthStore` conformance on both backends: clients, signing keys, single-use codes with
//! replay revocation, refresh rotation with reuse detection (also under concurrency),
//! revocation of grants and access tokens (by session and user: `outbox.rs`), consent, assertion replay records, back-channel logout
//! deliveries and purging.

use crate::support::{create, now};
use std::sync::Arc;
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::jose::JwsAlg;
use tessera_core::oauth::client::{AuthMethod, Client, ClientId, GrantType};
use tessera_core::oauth::model::{
    AuthorizationCode, CodeConsumption, Grant, GrantId, IssuedAccessToken, KeyState, LogoutDelivery, NewRefreshToken,
    NewSecurityEvent, RefreshRotation, SecurityEventKind, StoredKey,
};
use tessera_core::outbox::{OutboxStore, Revocation};
use tessera_core::secret::{SecretToken, TokenHash};
use tessera_core::store::{OAuthStore, Store, StoreError};
use tessera_store::SqlStore;
use tessera_testkit::{Backend, TestDb};
use time::{Duration, OffsetDateTime};

tessera_testkit::backend_tests!(
    clients_round_trip,
    signing_keys_rotate_and_retire,
    authorization_code_is_single_use_and_replay_revokes,
    expired_code_is_unknown,
    concurrent_code_redemption_has_one_winner,
    refresh_rotation_and_reuse_detection,
    newest_token_of_a_revoked_family_is_invalid,
    reuse_of_a_revoked_family_logs_revocation_once,
    repeated_code_replay_logs_revocation_once,
    refresh_rotation_by_another_client_is_invalid,
    concurrent_refresh_rotation_has_one_winner,
    revoke_grant_and_access_tokens,
    consent_is_saved_and_replaced,
    assertion_jtis_are_single_use,
    logout_deliveries_queue,
    purge_removes_expired_oauth_state,
);

// ------------------------------------------------------------------ fixtures

pub(crate) fn client(name: &str) -> Client {
    Client {
        id: ClientId::generate().unwrap(),
        name: name.to_owned(),
        secret_hash: Some(TokenHash::of(format!("secret of {name}").as_bytes())),
        redirect_uris: vec!["https://rp.example/cb".into(), "https://rp.example/other?x=1".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "profile".into(), "offline_access".into()],
        skip_consent: false,
        require_mfa: false,
        introspection: false,
        resource: None,
        auth_method: AuthMethod::ClientSecretBasic,
        backchannel_logout_uri: None,
        id_token_alg: JwsAlg::EdDSA,
        jwks: None,
        admin_api: false,
        grant_lifetime: None,
        token_exchange: vec![],
        created_at: now(),
    }
}

pub(crate) async fn stored_client(db: &TestDb, name: &str) -> Client {
    let c = client(name);
    db.store.create_client(&c).await.unwrap();
    c
}

pub(crate) fn code(hash: TokenHash, client: &Client, user: UserId, sid: SessionHandle, expires_at: OffsetDateTime) -> AuthorizationCode {
    AuthorizationCode {
        hash,
        client_id: client.id.clone(),
        user_id: user,
        sid,
        redirect_uri: "https://rp.example/cb".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        auth_time: now() - Duration::minutes(3),
        amr: vec!["pwd".into()],
        acr: Some("urn:tessera:acr:pwd".into()),
        audience: vec!["https://issuer.example".into(), "https://api.example".into()],
        expires_at,
    }
}

pub(crate) fn grant(client: &Client, user: UserId, sid: Option<SessionHandle>, scope: &str) -> Grant {
    Grant {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        client_id: client.id.clone(),
        scope: scope.to_owned(),
        sid,
        auth_time: now() - Duration::minutes(3),
        amr: vec!["pwd".into()],
        acr: None,
        audience: vec!["https://issuer.example".into()],
        created_at: now(),
        revoked_at: None,
    }
}

fn refresh_for(grant: GrantId, client: &ClientId, ttl: Duration) -> (TokenHash, NewRefreshToken) {
    let t = SecretToken::generate().unwrap();
    let rec = NewRefreshToken { hash: t.hash(), grant_id: grant, client_id: client.clone(), created_at: now(), expires_at: now() + ttl };
    (t.hash(), rec)
}

fn access_for(grant: GrantId, ttl: Duration) -> IssuedAccessToken {
    IssuedAccessToken { jti: uuid::Uuid::new_v4().simple().to_string(), grant_id: grant, expires_at: now() + ttl }
}

/// A live grant with one refresh token and one recorded access token.
pub(crate) async fn live_grant(db: &TestDb, client: &Client, user: UserId, sid: Option<SessionHandle>, scope: &str) -> (Grant, TokenHash, IssuedAccessToken) {
    let g = grant(client, user, sid, scope);
    let (hash, rt) = refresh_for(g.id, &client.id, Duration::days(30));
    let at = access_for(g.id, Duration::minutes(5));
    assert!(db.store.create_grant(&g, Some(&rt), Some(&at), None).await.unwrap());
    (g, hash, at)
}

/// One column of one row, read with plain SQL (for state the trait does not expose).
async fn scalar(db: &TestDb, sql: &str, bind: &str) -> Option<Option<i64>> {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).bind(bind.to_owned()).fetch_optional(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).bind(bind.to_owned()).fetch_optional(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

pub(crate) async fn grant_revoked_at(db: &TestDb, id: GrantId) -> Option<i64> {
    scalar(db, "SELECT revoked_at FROM grants WHERE id = $1", &id.to_string()).await.expect("grant row exists")
}

fn rotated(r: &RefreshRotation) -> bool {
    matches!(r, RefreshRotation::Rotated(_))
}

// ------------------------------------------------------------------ clients

async fn clients_round_trip(db: TestDb) {
    let mut full = client("Full");
    full.skip_consent = true;
    full.auth_method = AuthMethod::PrivateKeyJwt;
    full.secret_hash = None;
    full.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials, GrantType::TokenExchange];
    full.token_exchange = vec!["github:repo,user:email".parse().unwrap(), "gitlab".parse().unwrap()];
    full.backchannel_logout_uri = Some("https://rp.example/backchannel".into());
    full.id_token_alg = JwsAlg::RS256;
    full.jwks = Some(serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1", "use": "sig"}]}));
    db.store.create_client(&full).await.unwrap();
    let plain = stored_client(&db, "Plain").await;
    let mut public = client("Public");
    public.auth_method = AuthMethod::None;
    public.secret_hash = None;
    public.id_token_alg = JwsAlg::ES256;
    db.store.create_client(&public).await.unwrap();

    let same = |a: &Client, b: &Client| {
        assert_eq!(serde_json::to_value(a).unwrap(), serde_json::to_value(b).unwrap());
        assert_eq!(a.secret_hash, b.secret_hash, "secret hash of {}", a.name);
    };
    for c in [&full, &plain, &public] {
        let found = db.store.find_client(&c.id).await.unwrap().expect("client found");
        same(&found, c);
    }
    let found = db.store.find_client(&full.id).await.unwrap().unwrap();
    assert_eq!(found.id_token_alg, JwsAlg::RS256);
    assert_eq!(found.jwks, full.jwks);
    assert_eq!(found.auth_method, AuthMethod::PrivateKeyJwt);
    assert_eq!(found.backchannel_logout_uri.as_deref(), Some("https://rp.example/backchannel"));
    assert!(found.skip_consent);
    assert_eq!(found.verifying_keys().len(), 1, "the stored JWKS still yields its key");
    assert!(db.store.find_client(&ClientId::new("nobody")).await.unwrap().is_none());

    let mut listed = db.store.list_clients().await.unwrap();
    assert_eq!(listed.len(), 3);
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    same(&listed[0], &full);
    same(&listed[1], &plain);
    same(&listed[2], &public);

    // Deleting a client deletes its grants and their tokens.
    let user = create(db.store.as_ref(), "alice", None).await;
    let (_, refresh, _) = live_grant(&db, &plain, user.id, None, "openid").await;
    assert!(db.store.find_refresh_token(&refresh).await.unwrap().is_some());
    db.store.delete_client(&plain.id).await.unwrap();
    assert!(db.store.find_client(&plain.id).await.unwrap().is_none());
    assert!(db.store.find_refresh_token(&refresh).await.unwrap().is_none());
    assert!(matches!(db.store.delete_client(&plain.id).await, Err(StoreError::NotFound)));
    assert_eq!(db.store.list_clients().await.unwrap().len(), 2);

    // The same id cannot be registered twice.
    assert!(db.store.create_client(&full).await.is_err());
}

// ------------------------------------------------------------------ keys

fn key(alg: JwsAlg, state: KeyState, at: OffsetDateTime) -> StoredKey {
    StoredKey {
        kid: format!("{}-{}", alg.as_str(), uuid::Uuid::new_v4().simple()),
        alg,
        sealed_private: uuid::Uuid::new_v4().as_bytes().to_vec(),
        state,
        created_at: at,
        activated_at: (state == KeyState::Active).then_some(at),
        retired_at: None,
    }
}

async fn signing_keys_rotate_and_retire(db: TestDb) {
    let t0 = now() - Duration::hours(2);
    assert!(db.store.list_keys().await.unwrap().is_empty());
    let v0 = db.store.keys_version().await.unwrap();
    let initial: Vec<StoredKey> =
        JwsAlg::ALL.into_iter().flat_map(|alg| [key(alg, KeyState::Active, t0), key(alg, KeyState::Next, t0)]).collect();
    assert!(db.store.insert_initial_keys(&initial).await.unwrap());
    let v1 = db.store.keys_version().await.unwrap();
    assert_ne!(v1, v0, "inserting keys changes the version");
    let keys = db.store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 6);
    for k in &initial {
        let s = keys.iter().find(|s| s.kid == k.kid).expect("stored");
        assert_eq!((s.alg, s.state, s.created_at, s.activated_at, s.retired_at), (k.alg, k.state, k.created_at, k.activated_at, None));
        assert_eq!(s.sealed_private, k.sealed_private);
    }
    // A second start (another node) adds nothing.
    let again: Vec<StoredKey> =
        JwsAlg::ALL.into_iter().flat_map(|alg| [key(alg, KeyState::Active, t0), key(alg, KeyState::Next, t0)]).collect();
    assert!(!db.store.insert_initial_keys(&again).await.unwrap());
    assert_eq!(db.store.list_keys().await.unwrap().len(), 6);

    // Rotate EdDSA: next → active, active → retired, a new next.
    let old_active = initial.iter().find(|k| k.alg == JwsAlg::EdDSA && k.state == KeyState::Active).unwrap();
    let old_next = initial.iter().find(|k| k.alg == JwsAlg::EdDSA && k.state == KeyState::Next).unwrap();
    let t1 = now();
    let v_before = db.store.keys_version().await.unwrap();
    let new_next = key(JwsAlg::EdDSA, KeyState::Next, t1);
    db.store.rotate_keys(&new_next, t1).await.unwrap();
    let v2 = db.store.keys_version().await.unwrap();
    assert_ne!(v2, v_before, "rotation changes the version");
    let keys = db.store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 7);
    let by_kid = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    let retired = by_kid(&old_active.kid);
    assert_eq!(retired.state, KeyState::Retired);
    assert_eq!(retired.retired_at, Some(t1));
    let active = by_kid(&old_next.kid);
    assert_eq!(active.state, KeyState::Active);
    assert_eq!(active.activated_at, Some(t1));
    let next = by_kid(&new_next.kid);
    assert_eq!(next.state, KeyState::Next);
    assert_eq!(next.sealed_private, new_next.sealed_private);
    let eddsa_states = |state| keys.iter().filter(|k| k.alg == JwsAlg::EdDSA && k.state == state).count();
    assert_eq!((eddsa_states(KeyState::Active), eddsa_states(KeyState::Next), eddsa_states(KeyState::Retired)), (1, 1, 1));
    // Other algorithms are untouched.
    for k in initial.iter().filter(|k| k.alg != JwsAlg::EdDSA) {
        assert_eq!(by_kid(&k.kid).state, k.state);
    }

    // Retired keys go only once retired before the cutoff.
    assert_eq!(db.store.delete_retired_keys(t1).await.unwrap(), 0);
    assert_eq!(db.store.keys_version().await.unwrap(), v2, "nothing deleted, same version");
    assert_eq!(db.store.delete_retired_keys(t1 + Duration::seconds(1)).await.unwrap(), 1);
    assert_ne!(db.store.keys_version().await.unwrap(), v2);
    let keys = db.store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 6);
    assert!(!keys.iter().any(|k| k.kid == old_active.kid));
    assert!(keys.iter().all(|k| k.state != KeyState::Retired));
}

// ------------------------------------------------------------------ codes

async fn authorization_code_is_single_use_and_replay_revokes(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let sid = SessionHandle::new();
    let secret = SecretToken::generate().unwrap();
    let issued = code(secret.hash(), &c, user.id, sid, now() + Duration::seconds(60));
    db.store.create_authorization_code(&issued, now()).await.unwrap();

    let got = match db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap() {
        CodeConsumption::Consumed(r) => r,
        other => panic!("first use: {other:?}"),
    };
    assert_eq!(got.hash, issued.hash);
    assert_eq!(got.client_id, c.id);
    assert_eq!(got.user_id, user.id);
    assert_eq!(got.sid, sid);
    assert_eq!(got.redirect_uri, issued.redirect_uri);
    assert_eq!(got.scope, issued.scope);
    assert_eq!(got.nonce, issued.nonce);
    assert_eq!(got.code_challenge, issued.code_challenge);
    assert_eq!(got.auth_time, issued.auth_time);
    assert_eq!(got.amr, issued.amr);
    assert_eq!(got.acr, issued.acr);
    assert_eq!(got.audience, issued.audience);
    assert_eq!(got.expires_at, issued.expires_at);

    // The grant issued from it.
    let g = grant(&c, user.id, Some(sid), "openid profile");
    let (refresh, rt) = refresh_for(g.id, &c.id, Duration::days(30));
    let at = access_for(g.id, Duration::minutes(5));
    assert!(db.store.create_grant(&g, Some(&rt), Some(&at), Some(&secret.hash())).await.unwrap());
    let info = db.store.find_refresh_token(&refresh).await.unwrap().expect("refresh token stored");
    assert_eq!(info.grant.id, g.id);
    assert!(info.grant.revoked_at.is_none());
    assert!(!info.used);
    assert!(!db.store.access_token_revoked(&at.jti).await.unwrap());
    assert_eq!(grant_revoked_at(&db, g.id).await, None);

    // A replay: refused, and the grant from the code is revoked.
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Replayed));
    assert!(grant_revoked_at(&db, g.id).await.is_some(), "the grant issued from a replayed code is revoked");
    assert!(db.store.find_refresh_token(&refresh).await.unwrap().is_none(), "its refresh token is gone");
    assert!(db.store.access_token_revoked(&at.jti).await.unwrap(), "its access token is revoked");
    let (_, rt2) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(
        matches!(db.store.rotate_refresh_token(&refresh, &c.id, &rt2, None, now()).await.unwrap(), RefreshRotation::Invalid),
        "the revoked family cannot be refreshed"
    );
    // Already revoked: revoking the user's grants finds nothing left to revoke.
    let (_, event) = db.store.delete_user_sessions(user.id, now()).await.unwrap();
    let published = NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.id.to_string(), session: None };
    assert_eq!(db.store.apply_revocation(event, &Revocation::EveryGrantOf(user.id), &published, now()).await.unwrap(), None);
    // Still a replay the third time.
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Replayed));

    // A code replayed before its grant was stored: the grant is stored revoked.
    let secret2 = SecretToken::generate().unwrap();
    db.store.create_authorization_code(&code(secret2.hash(), &c, user.id, sid, now() + Duration::seconds(60)), now()).await.unwrap();
    assert!(matches!(db.store.consume_authorization_code(&secret2.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Consumed(_)));
    assert!(matches!(db.store.consume_authorization_code(&secret2.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Replayed));
    let late = grant(&c, user.id, Some(sid), "openid");
    let (late_refresh, late_rt) = refresh_for(late.id, &c.id, Duration::days(30));
    let late_at = access_for(late.id, Duration::minutes(5));
    assert!(!db.store.create_grant(&late, Some(&late_rt), Some(&late_at), Some(&secret2.hash())).await.unwrap());
    let info = db.store.find_refresh_token(&late_refresh).await.unwrap().expect("recorded, so it is seen as revoked");
    assert!(info.grant.revoked_at.is_some(), "the refresh token from a replayed code belongs to a revoked grant");
    assert!(db.store.access_token_revoked(&late_at.jti).await.unwrap(), "its access token is revoked");
    assert!(grant_revoked_at(&db, late.id).await.is_some(), "the late grant is stored revoked");
    let (_, rt3) = refresh_for(late.id, &c.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&late_refresh, &c.id, &rt3, None, now()).await.unwrap(), RefreshRotation::Invalid));

    // Unknown codes are unknown.
    let never = SecretToken::generate().unwrap();
    assert!(matches!(db.store.consume_authorization_code(&never.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Unknown));
}

async fn expired_code_is_unknown(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let secret = SecretToken::generate().unwrap();
    let issued_at = now() - Duration::seconds(120);
    db.store
        .create_authorization_code(&code(secret.hash(), &c, user.id, SessionHandle::new(), issued_at + Duration::seconds(60)), issued_at)
        .await
        .unwrap();
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Unknown));
    // At exactly its expiry it is no longer valid either.
    let s2 = SecretToken::generate().unwrap();
    let exp = now() + Duration::seconds(60);
    db.store.create_authorization_code(&code(s2.hash(), &c, user.id, SessionHandle::new(), exp), now()).await.unwrap();
    assert!(matches!(db.store.consume_authorization_code(&s2.hash(), &c.id, exp).await.unwrap(), CodeConsumption::Unknown));
    assert!(matches!(db.store.consume_authorization_code(&s2.hash(), &c.id, exp - Duration::seconds(1)).await.unwrap(), CodeConsumption::Consumed(_)));
}

async fn concurrent_code_redemption_has_one_winner(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    for round in 0..3 {
        let secret = SecretToken::generate().unwrap();
        db.store.create_authorization_code(&code(secret.hash(), &c, user.id, SessionHandle::new(), now() + Duration::seconds(60)), now()).await.unwrap();
        let store: Arc<SqlStore> = db.store.clone();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                let hash = secret.hash();
                let barrier = barrier.clone();
                let cid = c.id.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.consume_authorization_code(&hash, &cid, now()).await
                })
            })
            .collect();
        let (mut consumed, mut replayed, mut other) = (0, 0, Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                Ok(CodeConsumption::Consumed(r)) => {
                    assert_eq!(r.user_id, user.id);
                    consumed += 1;
                }
                Ok(CodeConsumption::Replayed) => replayed += 1,
                x => other.push(format!("{x:?}")),
            }
        }
        assert_eq!(consumed, 1, "round {round}: exactly one redemption wins; others: {other:?}");
        assert_eq!(replayed, 19, "round {round}: every other one is a replay; others: {other:?}");
    }
}

// ------------------------------------------------------------------ refresh tokens

async fn refresh_rotation_and_reuse_detection(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let (g, first, first_at) = live_grant(&db, &c, user.id, Some(SessionHandle::new()), "openid offline_access").await;

    let (second, rt2) = refresh_for(g.id, &c.id, Duration::days(30));
    let at2 = access_for(g.id, Duration::minutes(5));
    match db.store.rotate_refresh_token(&first, &c.id, &rt2, Some(&at2), now()).await.unwrap() {
        RefreshRotation::Rotated(got) => {
            assert_eq!(got.id, g.id);
            assert_eq!(got.user_id, user.id);
            assert_eq!(got.client_id, c.id);
            assert_eq!(got.scope, g.scope);
            assert_eq!(got.sid, g.sid);
            assert_eq!(got.auth_time, g.auth_time);
            assert_eq!(got.amr, g.amr);
            assert_eq!(got.audience, g.audience);
            assert!(got.revoked_at.is_none());
        }
        other => panic!("first rotation: {other:?}"),
    }
    let old = db.store.find_refresh_token(&first).await.unwrap().unwrap();
    assert!(old.used);
    let new = db.store.find_refresh_token(&second).await.unwrap().unwrap();
    assert!(!new.used);
    assert_eq!(new.grant.id, g.id);
    assert_eq!(new.client_id, c.id);

    // The new one rotates too (a chain).
    let (third, rt3) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(rotated(&db.store.rotate_refresh_token(&second, &c.id, &rt3, None, now()).await.unwrap()));

    // Reusing an old token: the whole family is revoked.
    let (fourth, rt4) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&first, &c.id, &rt4, None, now()).await.unwrap(), RefreshRotation::Reused));
    assert!(db.store.find_refresh_token(&fourth).await.unwrap().is_none(), "nothing was issued on reuse");
    assert!(grant_revoked_at(&db, g.id).await.is_some(), "the family is revoked");
    assert!(db.store.access_token_revoked(&first_at.jti).await.unwrap());
    assert!(db.store.access_token_revoked(&at2.jti).await.unwrap());
    if let Some(info) = db.store.find_refresh_token(&third).await.unwrap() {
        assert!(info.grant.revoked_at.is_some(), "the newest token's grant is revoked");
    }
    // The newest token, never used, is dead with its family (see
    // `newest_token_of_a_revoked_family_is_invalid` for which outcome it reports).
    let (fifth, rt5) = refresh_for(g.id, &c.id, Duration::days(30));
    let after = db.store.rotate_refresh_token(&third, &c.id, &rt5, None, now()).await.unwrap();
    assert!(!rotated(&after), "the newest token of a revoked family does not rotate: {after:?}");
    assert!(db.store.find_refresh_token(&fifth).await.unwrap().is_none());
}

/// After reuse revoked a family, its newest (never used) token is `Invalid` ("unknown,
/// expired, revoked, or another client's"), not `Reused`: it was never rotated.
async fn newest_token_of_a_revoked_family_is_invalid(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let (g, first, _) = live_grant(&db, &c, user.id, None, "openid offline_access").await;
    let (second, rt2) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(rotated(&db.store.rotate_refresh_token(&first, &c.id, &rt2, None, now()).await.unwrap()));
    let (_, rt3) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&first, &c.id, &rt3, None, now()).await.unwrap(), RefreshRotation::Reused));
    let (_, rt4) = refresh_for(g.id, &c.id, Duration::days(30));
    let after = db.store.rotate_refresh_token(&second, &c.id, &rt4, None, now()).await.unwrap();
    assert!(matches!(after, RefreshRotation::Invalid), "the newest token of a revoked family is Invalid, got {after:?}");
}

/// Presenting a spent token of an already revoked family again changes nothing: in
/// particular the family's access tokens are reported revoked (security events) once.
async fn reuse_of_a_revoked_family_logs_revocation_once(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let (g, first, at) = live_grant(&db, &c, user.id, None, "openid offline_access").await;
    let (_, rt2) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(rotated(&db.store.rotate_refresh_token(&first, &c.id, &rt2, None, now()).await.unwrap()));
    for _ in 0..3 {
        let (_, rt) = refresh_for(g.id, &c.id, Duration::days(30));
        let r = db.store.rotate_refresh_token(&first, &c.id, &rt, None, now()).await.unwrap();
        assert!(!rotated(&r));
    }
    let events = scalar(&db, "SELECT COUNT(*) FROM security_events WHERE subject = $1", &at.jti).await.flatten();
    assert_eq!(events, Some(1), "one token-revoked event for the family's access token");
}

/// Replaying a code again and again revokes its grant once: one security event per access token.
async fn repeated_code_replay_logs_revocation_once(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let secret = SecretToken::generate().unwrap();
    let sid = SessionHandle::new();
    db.store.create_authorization_code(&code(secret.hash(), &c, user.id, sid, now() + Duration::seconds(60)), now()).await.unwrap();
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Consumed(_)));
    let g = grant(&c, user.id, Some(sid), "openid");
    let (_, rt) = refresh_for(g.id, &c.id, Duration::days(30));
    let at = access_for(g.id, Duration::minutes(5));
    assert!(db.store.create_grant(&g, Some(&rt), Some(&at), Some(&secret.hash())).await.unwrap());
    for _ in 0..3 {
        assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Replayed));
    }
    let events = scalar(&db, "SELECT COUNT(*) FROM security_events WHERE subject = $1", &at.jti).await.flatten();
    assert_eq!(events, Some(1), "one token-revoked event for the access token of the replayed code");
}

async fn refresh_rotation_by_another_client_is_invalid(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let thief = stored_client(&db, "Thief").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let (g, token, at) = live_grant(&db, &c, user.id, None, "openid").await;

    let (stolen, rt) = refresh_for(g.id, &thief.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&token, &thief.id, &rt, None, now()).await.unwrap(), RefreshRotation::Invalid));
    assert!(db.store.find_refresh_token(&stolen).await.unwrap().is_none());
    assert_eq!(grant_revoked_at(&db, g.id).await, None, "another client's attempt does not revoke the grant");
    assert!(!db.store.find_refresh_token(&token).await.unwrap().unwrap().used);
    assert!(!db.store.access_token_revoked(&at.jti).await.unwrap());

    // Once used by its owner, another client presenting it is still just Invalid (no revocation).
    let (next, rt2) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(rotated(&db.store.rotate_refresh_token(&token, &c.id, &rt2, None, now()).await.unwrap()));
    let (_, rt3) = refresh_for(g.id, &thief.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&token, &thief.id, &rt3, None, now()).await.unwrap(), RefreshRotation::Invalid));
    assert_eq!(grant_revoked_at(&db, g.id).await, None);
    let (_, rt4) = refresh_for(g.id, &c.id, Duration::days(30));
    assert!(rotated(&db.store.rotate_refresh_token(&next, &c.id, &rt4, None, now()).await.unwrap()), "the owner's chain still works");

    // Expired and unknown tokens are Invalid.
    let (expired_g, _, _) = live_grant(&db, &c, user.id, None, "openid").await;
    let t = SecretToken::generate().unwrap();
    let rec = NewRefreshToken {
        hash: t.hash(),
        grant_id: expired_g.id,
        client_id: c.id.clone(),
        created_at: now() - Duration::days(31),
        expires_at: now() - Duration::days(1),
    };
    let g2 = grant(&c, user.id, None, "openid");
    let rec2 = NewRefreshToken { grant_id: g2.id, ..rec };
    assert!(db.store.create_grant(&g2, Some(&rec2), None, None).await.unwrap());
    let (_, rt5) = refresh_for(g2.id, &c.id, Duration::days(30));
    assert!(matches!(db.store.rotate_refresh_token(&t.hash(), &c.id, &rt5, None, now()).await.unwrap(), RefreshRotation::Invalid));
    let (_, rt6) = refresh_for(g2.id, &c.id, Duration::days(30));
    let unknown = SecretToken::generate().unwrap();
    assert!(matches!(db.store.rotate_refresh_token(&unknown.hash(), &c.id, &rt6, None, now()).await.unwrap(), RefreshRotation::Invalid));
}

async fn concurrent_refresh_rotation_has_one_winner(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    for round in 0..3 {
        let (g, old, _) = live_grant(&db, &c, user.id, None, "openid offline_access").await;
        let store: Arc<SqlStore> = db.store.clone();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                let old = old.clone();
                let client_id = c.id.clone();
                let barrier = barrier.clone();
                let (new_hash, new) = refresh_for(g.id, &c.id, Duration::days(30));
                let at = access_for(g.id, Duration::minutes(5));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let r = store.rotate_refresh_token(&old, &client_id, &new, Some(&at), now()).await;
                    (new_hash, r)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let (mut reused, mut other) = (0, Vec::new());
        for t in tasks {
            let (hash, r) = t.await.unwrap();
            match r {
                Ok(RefreshRotation::Rotated(_)) => winners.push(hash),
                Ok(RefreshRotation::Reused) => reused += 1,
                x => other.push(format!("{x:?}")),
            }
        }
        assert!(winners.len() <= 1, "round {round}: at most one rotation wins, got {}", winners.len());
        assert_eq!(winners.len(), 1, "round {round}: a valid token rotates once; others: {other:?}");
        // The first reuse revokes the family; later presentations find it revoked (invalid).
        assert!(reused >= 1, "round {round}: the first loser is a reuse; others: {other:?}");
        assert_eq!(reused + other.len(), 19, "round {round}: everyone else loses");
        assert!(other.iter().all(|o| o.contains("Invalid")), "round {round}: {other:?}");
        // The reuse revoked the family, including the winner's new token.
        assert!(grant_revoked_at(&db, g.id).await.is_some(), "round {round}: family revoked");
        let (_, again) = refresh_for(g.id, &c.id, Duration::days(30));
        let r = db.store.rotate_refresh_token(&winners[0], &c.id, &again, None, now()).await.unwrap();
        assert!(!rotated(&r), "round {round}: the winner's token is dead: {r:?}");
    }
}

// ------------------------------------------------------------------ revocation

async fn revoke_grant_and_access_tokens(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let bob = create(db.store.as_ref(), "bob", None).await;
    let (bob_g, bob_rt, bob_at) = live_grant(&db, &c, bob.id, None, "openid").await;

    // revoke_grant: one family.
    db.store.revoke_grant(bob_g.id, now()).await.unwrap();
    assert!(db.store.find_refresh_token(&bob_rt).await.unwrap().is_none());
    assert!(db.store.access_token_revoked(&bob_at.jti).await.unwrap());
    db.store.revoke_grant(bob_g.id, now()).await.unwrap();

    // A single access token revoked by jti.
    let lone = "lone-jti";
    assert!(!db.store.access_token_revoked(lone).await.unwrap());
    db.store.revoke_access_token(lone, now() + Duration::minutes(5), now()).await.unwrap();
    db.store.revoke_access_token(lone, now() + Duration::minutes(5), now()).await.unwrap();
    assert!(db.store.access_token_revoked(lone).await.unwrap());
}

// ------------------------------------------------------------------ consent, replay, logout, purge

async fn consent_is_saved_and_replaced(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let other = stored_client(&db, "Other").await;
    let alice = create(db.store.as_ref(), "alice", None).await;
    let bob = create(db.store.as_ref(), "bob", None).await;
    assert_eq!(db.store.find_consent(alice.id, &c.id).await.unwrap(), None);
    db.store.save_consent(alice.id, &c.id, "openid profile", now()).await.unwrap();
    assert_eq!(db.store.find_consent(alice.id, &c.id).await.unwrap().as_deref(), Some("openid profile"));
    db.store.save_consent(alice.id, &c.id, "openid email", now()).await.unwrap();
    assert_eq!(db.store.find_consent(alice.id, &c.id).await.unwrap().as_deref(), Some("openid email"));
    assert_eq!(db.store.find_consent(alice.id, &other.id).await.unwrap(), None);
    assert_eq!(db.store.find_consent(bob.id, &c.id).await.unwrap(), None);
    db.store.save_consent(bob.id, &c.id, "openid", now()).await.unwrap();
    assert_eq!(db.store.find_consent(alice.id, &c.id).await.unwrap().as_deref(), Some("openid email"));
    assert_eq!(db.store.find_consent(bob.id, &c.id).await.unwrap().as_deref(), Some("openid"));
}

async fn assertion_jtis_are_single_use(db: TestDb) {
    let exp = now() + Duration::minutes(2);
    assert!(db.store.record_assertion_jti("client-a\u{1f}jti-1", exp).await.unwrap());
    assert!(!db.store.record_assertion_jti("client-a\u{1f}jti-1", exp).await.unwrap());
    assert!(db.store.record_assertion_jti("client-b\u{1f}jti-1", exp).await.unwrap());

    // Concurrent presentations of one jti: exactly one is accepted.
    let store: Arc<SqlStore> = db.store.clone();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_assertion_jti("client-a\u{1f}jti-race", exp).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
}

async fn logout_deliveries_queue(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let t = now();
    let delivery = |uri: &str, at: OffsetDateTime| LogoutDelivery {
        id: uuid::Uuid::now_v7(),
        client_id: c.id.clone(),
        uri: uri.to_owned(),
        logout_token: format!("eyJ.{uri}.sig"),
        attempts: 0,
        next_attempt_at: at,
    };
    let a = delivery("https://rp.example/bc-a", t - Duration::seconds(10));
    let b = delivery("https://rp.example/bc-b", t);
    let later = delivery("https://rp.example/bc-later", t + Duration::minutes(5));
    db.store.enqueue_logout_deliveries(&[a.clone(), b.clone(), later.clone()]).await.unwrap();
    db.store.enqueue_logout_deliveries(&[]).await.unwrap();

    let due = db.store.due_logout_deliveries(t, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a.id, b.id], "due ones, oldest first");
    let first = &due[0];
    assert_eq!((first.client_id.clone(), first.uri.as_str(), first.logout_token.as_str(), first.attempts, first.next_attempt_at),
               (c.id.clone(), a.uri.as_str(), a.logout_token.as_str(), 0, a.next_attempt_at));
    assert_eq!(db.store.due_logout_deliveries(t, 1).await.unwrap().len(), 1, "limit applies");

    // A failed attempt is retried later, with the attempt counted.
    db.store.retry_logout_delivery(a.id, t + Duration::minutes(1)).await.unwrap();
    let due = db.store.due_logout_deliveries(t, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![b.id]);
    let due = db.store.due_logout_deliveries(t + Duration::minutes(1), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![b.id, a.id]);
    assert_eq!(due[1].attempts, 1);
    assert_eq!(due[1].next_attempt_at, t + Duration::minutes(1));

    // Finished deliveries are gone.
    db.store.finish_logout_delivery(b.id).await.unwrap();
    db.store.finish_logout_delivery(b.id).await.unwrap();
    let due = db.store.due_logout_deliveries(t + Duration::hours(1), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a.id, later.id]);
}

async fn purge_removes_expired_oauth_state(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let t = now();

    // Codes: long expired (gone), recently expired and used (kept, so a replay is still recognised).
    let old_code = SecretToken::generate().unwrap();
    let old_at = t - Duration::hours(1);
    db.store.create_authorization_code(&code(old_code.hash(), &c, user.id, SessionHandle::new(), old_at + Duration::seconds(60)), old_at).await.unwrap();
    let recent = SecretToken::generate().unwrap();
    db.store.create_authorization_code(&code(recent.hash(), &c, user.id, SessionHandle::new(), t + Duration::seconds(60)), t).await.unwrap();
    assert!(matches!(db.store.consume_authorization_code(&recent.hash(), &c.id, t).await.unwrap(), CodeConsumption::Consumed(_)));

    // Refresh and access tokens: one expired, one live.
    let g = grant(&c, user.id, None, "openid");
    let expired_rt = SecretToken::generate().unwrap();
    let rec = NewRefreshToken { hash: expired_rt.hash(), grant_id: g.id, client_id: c.id.clone(), created_at: t - Duration::days(31), expires_at: t - Duration::days(1) };
    let expired_at = IssuedAccessToken { jti: "expired-at".into(), grant_id: g.id, expires_at: t - Duration::minutes(1) };
    assert!(db.store.create_grant(&g, Some(&rec), Some(&expired_at), None).await.unwrap());
    let (live_g, live_rt, live_at) = live_grant(&db, &c, user.id, None, "openid").await;

    db.store.revoke_access_token("revoked-expired", t - Duration::minutes(1), t).await.unwrap();
    db.store.revoke_access_token("revoked-live", t + Duration::minutes(5), t).await.unwrap();
    assert!(db.store.record_assertion_jti("jti-expired", t - Duration::minutes(1)).await.unwrap());
    assert!(db.store.record_assertion_jti("jti-live", t + Duration::minutes(5)).await.unwrap());

    let purged = db.store.purge_expired_oauth(t).await.unwrap();
    // old code, expired refresh token, expired access token record, expired revocation, expired jti
    assert_eq!(purged, 5);

    assert!(matches!(db.store.consume_authorization_code(&old_code.hash(), &c.id, t).await.unwrap(), CodeConsumption::Unknown));
    assert!(matches!(db.store.consume_authorization_code(&recent.hash(), &c.id, t).await.unwrap(), CodeConsumption::Replayed));
    assert!(db.store.find_refresh_token(&expired_rt.hash()).await.unwrap().is_none());
    assert!(db.store.find_refresh_token(&live_rt).await.unwrap().is_some());
    assert_eq!(scalar(&db, "SELECT CAST(1 AS BIGINT) FROM access_tokens WHERE jti = $1", "expired-at").await, None);
    assert!(scalar(&db, "SELECT CAST(1 AS BIGINT) FROM access_tokens WHERE jti = $1", &live_at.jti).await.is_some());
    assert!(!db.store.access_token_revoked("revoked-expired").await.unwrap());
    assert!(db.store.access_token_revoked("revoked-live").await.unwrap());
    assert!(db.store.record_assertion_jti("jti-expired", t + Duration::minutes(1)).await.unwrap(), "a purged jti record is gone");
    assert!(!db.store.record_assertion_jti("jti-live", t + Duration::minutes(5)).await.unwrap());
    assert_eq!(grant_revoked_at(&db, live_g.id).await, None);

    assert_eq!(db.store.purge_expired_oauth(t).await.unwrap(), 0, "nothing left to purge");
}
