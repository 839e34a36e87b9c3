//! The transactional outbox against the real binary: a server killed after a session ended
//! but before the grants that end with it were revoked. The fault is injected in the
//! database (a trigger refuses every claim of an outbox event, as if each consumer died just
//! before it), the server is killed with SIGKILL, and a restarted server applies what was
//! left: the ended session's refresh token is refused, and the security event and the
//! back-channel logout happen once.

use crate::durability::{Scratch, Server, free_port, sign_in, tessera};
use crate::helpers::{PASSWORD, bare_client};
use crate::oauth::{REDIRECT_URI, Rp, authorize, redeem, refresh, tokens};
use axum::Router;
use axum::routing::post;
use reqwest::StatusCode;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tessera_testkit::{Backend, TestDb, execute_sql, query_i64, scratch_dir};

on_both_backends!(a_kill_between_session_end_and_grant_revocation_loses_no_revocation);

const ADMIN_KEY: &str = "outbox-admin-key-0123456789-abcdefghijklmnop";

/// Refuses every claim of an outbox event (claims are `UPDATE`s of `outbox`).
fn fault(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CREATE TRIGGER outbox_fault BEFORE UPDATE ON outbox BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
        Backend::Postgres => {
            "CREATE FUNCTION outbox_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
             CREATE TRIGGER outbox_fault BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_fault();"
        }
    }
}

fn repair(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER outbox_fault;",
        Backend::Postgres => "DROP TRIGGER outbox_fault ON outbox; DROP FUNCTION outbox_fault();",
    }
}

/// Counts the back-channel logout tokens a relying party receives.
async fn logout_receiver() -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    let app = Router::new().route(
        "/bcl",
        post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/bcl", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

async fn count(url: &str, sql: &str) -> i64 {
    query_i64(url, sql).await.unwrap()
}

async fn a_kill_between_session_end_and_grant_revocation_loses_no_revocation(backend: Backend) {
    let (url, _db) = TestDb::fresh_url(backend).await.unwrap();
    let dir = Scratch(scratch_dir("outbox").unwrap());
    let data_dir = dir.0.as_path();
    let listen = format!("127.0.0.1:{}", free_port());
    let issuer = format!("http://localhost:{}", listen.rsplit(':').next().unwrap());
    let env = [
        ("TESSERA_LISTEN", listen.as_str()),
        ("TESSERA_ADMIN__API_KEY", ADMIN_KEY),
        ("TESSERA_OAUTH__ALLOW_PRIVATE_BACKCHANNEL", "true"),
    ];
    let (logout_uri, logouts) = logout_receiver().await;

    let first = Server::start_with_env(data_dir, &url, "serve-1.log", &env);
    let cli = |args: &[&str], stdin: &str| {
        let mut child = tessera(data_dir, &url).envs(env).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "tessera {args:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let user = cli(&["user", "create", "--username", "carol", "--password-stdin"], &format!("{PASSWORD}\n"));
    let user_id = user["id"].as_str().unwrap().to_owned();
    let rp = cli(
        &["client", "create", "--name", "app", "--redirect-uri", REDIRECT_URI, "--skip-consent", "--backchannel-logout-uri", &logout_uri],
        "",
    );
    let rp = Rp { id: rp["client_id"].as_str().unwrap().to_owned(), secret: rp["client_secret"].as_str().unwrap().to_owned() };

    // An offline grant: it outlives a sign-out, but not an administrator ending every session.
    let session = sign_in(&first.base, "carol").await;
    let code = authorize(&first.base, &issuer, &rp, &session, "openid offline_access").await;
    let (status, body) = redeem(&first.base, &rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh_token = tokens(&body).1.expect("a refresh token");

    execute_sql(&url, fault(backend)).await.unwrap();
    let ended = bare_client()
        .delete(format!("{}/admin/v1/users/{user_id}/sessions", first.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK, "the sessions ended (what follows is the outbox's)");

    // Session deleted, grants not yet revoked: the event waits in the outbox.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM sessions").await, 0, "the session is gone");
    assert_eq!(count(&url, "SELECT COUNT(*) FROM outbox WHERE kind = 'all-sessions-ended'").await, 1, "the event was written with it");
    let live_refresh = "SELECT COUNT(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE g.revoked_at IS NULL AND r.used_at IS NULL";
    assert_eq!(count(&url, live_refresh).await, 1, "the refresh token is still live in the database");
    assert_eq!(count(&url, "SELECT COUNT(*) FROM security_events WHERE kind = 'session-revoked'").await, 0);

    first.kill_9();
    execute_sql(&url, repair(backend)).await.unwrap();

    // The restarted server applies what was left before it serves.
    let second = Server::start_with_env(data_dir, &url, "serve-2.log", &env);
    let (status, body) = refresh(&second.base, &rp, &refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "the ended session's refresh token is refused: {body}");
    assert_eq!(count(&url, "SELECT COUNT(*) FROM outbox").await, 0, "nothing left in the outbox");
    assert_eq!(count(&url, live_refresh).await, 0);
    let published = format!("SELECT COUNT(*) FROM security_events WHERE kind = 'session-revoked' AND subject = '{user_id}'");
    assert_eq!(count(&url, &published).await, 1, "published once");
    for _ in 0..200 {
        if logouts.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for the outbox job (every second) and the delivery job to repeat anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(logouts.load(Ordering::SeqCst), 1, "one back-channel logout");
    assert_eq!(count(&url, &published).await, 1, "still published once");
    second.kill_9();
}
