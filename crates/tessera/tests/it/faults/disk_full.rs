//! SQLite on a full disk: the data directory is a 16 MiB tmpfs, filled with `dd` during
//! refresh traffic and freed again. While writes fail, refresh, revocation and disabling a
//! user answer 503 with `Retry-After` (never 500) and `/readyz` is not ready; once space
//! returns, the same server (no restart) refreshes, revokes and disables again within a
//! second or so, no acknowledged refresh is lost, and no token revoked before or during the
//! fault is accepted afterwards.

use super::{Answer, Tmpfs, assert_ok_or_unavailable, beside, poll_until, readyz, refresh, refused, require_root, revoke, set_disabled};
use crate::durability::{Server, cli, sign_in};
use crate::helpers::PASSWORD;
use crate::oauth::{Rp, authorize, redeem, tokens};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "disk-full-admin-key-0123456789abcdef0123456789";
const SCOPE: &str = "openid offline_access";

/// Signs `session` through a code flow; returns the refresh token.
async fn grant(server: &Server, issuer: &str, rp: &Rp, session: &str) -> String {
    let code = authorize(&server.base, issuer, rp, session, SCOPE).await;
    let (status, body) = redeem(&server.base, rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokens(&body).1.expect("a refresh token with offline_access")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_with_503_and_the_server_recovers_by_itself() {
    require_root!("a_full_disk_fails_writes_with_503_and_the_server_recovers_by_itself");
    let disk = Tmpfs::mount("16m");
    let dir = disk.dir.as_path();
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    let log = beside(dir, "serve.log");
    let server = Server::start_logged(dir, &url, &log, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]);
    let base = server.base.clone();
    let issuer = base.replace("127.0.0.1", "localhost");

    cli(dir, &url, &["user", "create", "--username", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
    let bob = cli(dir, &url, &["user", "create", "--username", "bob", "--password-stdin"], &format!("{PASSWORD}\n"));
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let app = cli(dir, &url, &["client", "create", "--name", "app", "--redirect-uri", crate::oauth::REDIRECT_URI, "--skip-consent"], "");
    let rp = Rp { id: app["client_id"].as_str().unwrap().to_owned(), secret: app["client_secret"].as_str().unwrap().to_owned() };
    let alice_session = sign_in(&base, "alice").await;
    let bob_session = sign_in(&base, "bob").await;

    let mut chains = Vec::new();
    for _ in 0..3 {
        chains.push(grant(&server, &issuer, &rp, &alice_session).await);
    }
    let revoked_before = grant(&server, &issuer, &rp, &alice_session).await;
    let revoked_during = grant(&server, &issuer, &rp, &alice_session).await;
    let bobs = grant(&server, &issuer, &rp, &bob_session).await;
    assert_eq!(revoke(&base, &rp, &revoked_before).await.status, StatusCode::OK);

    let filler = disk.fill();

    // Refresh traffic until writes fail steadily (the WAL may still have room at first).
    let started = Instant::now();
    let (mut ok, mut unavailable, mut in_a_row) = (0u32, 0u32, 0u32);
    let mut i = 0usize;
    while in_a_row < 5 {
        assert!(started.elapsed() < Duration::from_secs(30), "writes never failed on the full disk ({ok} refreshes succeeded)");
        let slot = i % chains.len();
        let a = refresh(&base, &rp, &chains[slot]).await;
        assert_ok_or_unavailable("refresh", &a);
        if a.status == StatusCode::OK {
            // Acknowledged: from now on only the new token may work.
            chains[slot] = a.body["refresh_token"].as_str().unwrap().to_owned();
            ok += 1;
            in_a_row = 0;
        } else {
            unavailable += 1;
            in_a_row += 1;
        }
        i += 1;
    }
    eprintln!("full disk: {ok} refreshes succeeded, then {unavailable} answered 503");

    // While writes fail: not ready, and the other writes answer 503 too (or succeed).
    let mut seen_not_ready = false;
    for _ in 0..10 {
        if readyz(&base).await == StatusCode::SERVICE_UNAVAILABLE {
            seen_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_not_ready, "/readyz stayed ready while writes failed");
    let revoke_during = revoke(&base, &rp, &revoked_during).await;
    assert_ok_or_unavailable("revoke", &revoke_during);
    let disable_during = set_disabled(&base, ADMIN_KEY, &bob_id, true).await;
    assert_ok_or_unavailable("disable user", &disable_during);

    // Space returns; the same process recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let (token, took) = poll_until("refresh after the disk was freed", Duration::from_secs(5), || {
        let (base, rp, token) = (base.clone(), rp.clone(), chains[0].clone());
        async move {
            let a = refresh(&base, &rp, &token).await;
            assert_ok_or_unavailable("refresh while recovering", &a);
            (a.status == StatusCode::OK).then(|| a.body["refresh_token"].as_str().unwrap().to_owned())
        }
    })
    .await;
    chains[0] = token;
    let ok_after = |what: &'static str, a: Answer| {
        assert!(a.status.is_success(), "{what} after recovery: {} {}", a.status, a.body);
    };
    ok_after("revoke", revoke(&base, &rp, &revoked_during).await);
    ok_after("disable user", set_disabled(&base, ADMIN_KEY, &bob_id, true).await);
    let (_, ready_took) = poll_until("/readyz after the disk was freed", Duration::from_secs(5), || {
        let base = base.clone();
        async move { (readyz(&base).await == StatusCode::OK).then_some(()) }
    })
    .await;
    eprintln!(
        "full disk: refresh recovered {} ms, revoke and disable done {} ms, ready {} ms after space returned",
        took.as_millis(),
        freed.elapsed().as_millis(),
        ready_took.as_millis()
    );

    // No revocation lost: before, during (answered 503 or 200) and by disabling the user.
    assert!(refused(&base, &rp, &revoked_before).await, "a token revoked before the fault works again");
    assert!(refused(&base, &rp, &revoked_during).await, "a token revoked during the fault works");
    assert!(refused(&base, &rp, &bobs).await, "a disabled user's refresh token works");
    // No acknowledged refresh lost: each chain's latest token still rotates.
    for (n, token) in chains.iter().enumerate() {
        let a = refresh(&base, &rp, token).await;
        assert_eq!(a.status, StatusCode::OK, "chain {n}: the last acknowledged refresh token was lost: {}", a.body);
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!stderr.contains("non-zero transaction depth"), "the writer stayed inside a failed transaction");
    let _ = std::fs::remove_file(&log);
    server.kill_9();
}
