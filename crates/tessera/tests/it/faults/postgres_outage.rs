//! PostgreSQL stopped under load: a private cluster (Debian's PostgreSQL 15 binaries, run as
//! the `postgres` user, on its own port and socket directory, so the shared server is
//! untouched) is stopped while refresh traffic runs and started again. During the outage the
//! token endpoint answers 503 with `Retry-After` and `temporarily_unavailable` (never 500),
//! the authorization endpoint a 503 page, and `/readyz` is not ready; within about a second
//! of PostgreSQL returning everything works, with no acknowledged refresh lost.

use super::{Answer, assert_ok_or_unavailable, beside, poll_until, readyz, refresh, refused, require_root, revoke, run};
use crate::durability::{Scratch, Server, cli, sign_in};
use crate::helpers::PASSWORD;
use crate::oauth::{Rp, authorize, redeem, tokens};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway PostgreSQL cluster on its own port; stopped and removed on drop.
pub(crate) struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Whether the PostgreSQL server binaries are installed.
    pub(crate) fn available() -> bool {
        Path::new(BIN).join("initdb").exists()
    }

    fn as_postgres(program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
        cmd
    }

    /// `initdb` (as `postgres`, which initdb requires) and start.
    pub(crate) fn start_new() -> PrivatePostgres {
        let dir = tessera_testkit::scratch_dir("pg-private").unwrap();
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { dir, port };
        run(Self::as_postgres("initdb").args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"]).arg(pg.data()));
        pg.start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        run(Self::as_postgres("pg_ctl")
            .args(["-w", "-t", "30", "-l"])
            .arg(self.dir.join("server.log"))
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "start"]));
    }

    /// Fast shutdown: sessions are ended, committed transactions kept.
    pub(crate) fn stop(&self) {
        run(Self::as_postgres("pg_ctl").args(["-w", "-m", "fast", "-D"]).arg(self.data()).arg("stop"));
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Self::as_postgres("pg_ctl").args(["-w", "-m", "immediate", "-D"]).arg(self.data()).arg("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rotates one refresh chain until `stop`; returns the last acknowledged token and how many
/// refreshes succeeded and answered 503.
async fn chain_under_load(base: String, rp: Rp, mut token: String, stop: Arc<AtomicBool>) -> (String, u32, u32) {
    let (mut ok, mut unavailable) = (0, 0);
    for _ in 0..100_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let a = refresh(&base, &rp, &token).await;
        assert_ok_or_unavailable("refresh under load", &a);
        if a.status == StatusCode::OK {
            token = a.body["refresh_token"].as_str().unwrap().to_owned();
            ok += 1;
        } else {
            unavailable += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (token, ok, unavailable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_means_503_then_recovery_without_loss() {
    require_root!("postgres_stopped_under_load_means_503_then_recovery_without_loss");
    if !PrivatePostgres::available() {
        eprintln!("SKIPPED postgres_stopped_under_load_means_503_then_recovery_without_loss: no {BIN}/initdb");
        return;
    }
    let pg = PrivatePostgres::start_new();
    let url = pg.url();
    let scratch = Scratch(tessera_testkit::scratch_dir("pg-outage").unwrap());
    let dir = scratch.0.as_path();
    let log = beside(dir, "serve.log");
    let server = Server::start_logged(dir, &url, &log, &[("TESSERA_DATABASE__ACQUIRE_TIMEOUT", "1s")]);
    let base = server.base.clone();
    let issuer = base.replace("127.0.0.1", "localhost");

    cli(dir, &url, &["user", "create", "--username", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
    let app = cli(dir, &url, &["client", "create", "--name", "app", "--redirect-uri", crate::oauth::REDIRECT_URI, "--skip-consent"], "");
    let rp = Rp { id: app["client_id"].as_str().unwrap().to_owned(), secret: app["client_secret"].as_str().unwrap().to_owned() };
    let session = sign_in(&base, "alice").await;
    let mut grants = Vec::new();
    for _ in 0..5 {
        let code = authorize(&base, &issuer, &rp, &session, "openid offline_access").await;
        let (status, body) = redeem(&base, &rp, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        grants.push(tokens(&body).1.unwrap());
    }
    let mut probe = grants.pop().unwrap();
    let revoked_during = grants.pop().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> =
        grants.iter().map(|t| tokio::spawn(chain_under_load(base.clone(), rp.clone(), t.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    pg.stop();
    // Past the client cache (one second), so the authorization endpoint has to ask the database.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = refresh(&base, &rp, &probe).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "token endpoint while PostgreSQL is down: {}", a.body);
    assert!(a.retry_after, "503 without Retry-After");
    assert_eq!(a.body["error"], "temporarily_unavailable", "{}", a.body);
    assert!(a.body["error_description"].as_str().is_some_and(|d| !d.contains("refused")), "no internal detail: {}", a.body);
    let r = revoke(&base, &rp, &revoked_during).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "revocation while PostgreSQL is down must not claim success");
    assert!(r.retry_after);
    assert_eq!(readyz(&base).await, StatusCode::SERVICE_UNAVAILABLE, "/readyz while PostgreSQL is down");
    let page = crate::helpers::bare_client()
        .get(format!(
            "{base}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
            rp.id,
            crate::oauth::REDIRECT_URI,
            crate::oauth::pkce().1
        ))
        .header(reqwest::header::COOKIE, format!("tessera_session={session}"))
        .send()
        .await
        .unwrap();
    let page_status = page.status();
    let page_retry = page.headers().get(reqwest::header::RETRY_AFTER).is_some();
    let location = page.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
    match location {
        // A redirect is allowed only once the client is known: then it carries the RFC error.
        Some(to) => assert!(to.contains("error=temporarily_unavailable"), "authorize redirected to {to}"),
        None => {
            assert_eq!(page_status, StatusCode::SERVICE_UNAVAILABLE, "authorization endpoint while PostgreSQL is down");
            assert!(page_retry, "503 page without Retry-After");
        }
    }

    pg.start();
    let returned = Instant::now();
    let (token, took) = poll_until("token endpoint after PostgreSQL returned", Duration::from_secs(5), || {
        let (base, rp, token) = (base.clone(), rp.clone(), probe.clone());
        async move {
            let a: Answer = refresh(&base, &rp, &token).await;
            assert_ok_or_unavailable("refresh while recovering", &a);
            (a.status == StatusCode::OK).then(|| a.body["refresh_token"].as_str().unwrap().to_owned())
        }
    })
    .await;
    probe = token;
    eprintln!("postgres outage: first refresh {} ms after PostgreSQL accepted connections again", took.as_millis());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut last = Vec::new();
    for task in load {
        let (token, ok, unavailable) = task.await.unwrap();
        eprintln!("postgres outage: a chain refreshed {ok} times, {unavailable} answers were 503");
        assert!(unavailable > 0, "the load saw no outage");
        last.push(token);
    }
    assert_eq!(readyz(&base).await, StatusCode::OK, "ready {} ms after PostgreSQL returned", returned.elapsed().as_millis());
    let r = revoke(&base, &rp, &revoked_during).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(refused(&base, &rp, &revoked_during).await, "the revocation answered 200 after recovery is effective");
    for (n, token) in last.iter().chain(std::iter::once(&probe)).enumerate() {
        let a = refresh(&base, &rp, token).await;
        assert_eq!(a.status, StatusCode::OK, "chain {n}: the last acknowledged refresh token was lost: {}", a.body);
    }
    let _ = std::fs::remove_file(&log);
    server.kill_9();
}
