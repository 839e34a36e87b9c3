//! The real binary: sessions and users survive `kill -9` and a restart, on both backends.

use crate::helpers::{PASSWORD, account_with_cookie, bare_client, client, cookie_value, field_value, test_env};
use reqwest::StatusCode;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tessera_testkit::{Backend, TestDb, scratch_dir};

on_both_backends!(sessions_survive_kill_9, restart_with_an_administrator_present, oauth_state_survives_kill_9);

/// A `tessera` command with the test environment and nothing inherited from ours.
pub(crate) fn tessera(data_dir: &Path, database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TESSERA_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(test_env(data_dir, database_url));
    cmd.env("TESSERA_LOG__FORMAT", "text");
    cmd
}

/// A running `tessera serve`, killed with SIGKILL when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT` (the address it is bound to).
    pub(crate) base: String,
    /// What it printed on stdout so far.
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data_dir: &Path, database_url: &str, log: &str) -> Server {
        Self::start_with_env(data_dir, database_url, log, &[])
    }

    /// Like [`Server::start`], with extra environment variables (e.g. a fixed `TESSERA_LISTEN`).
    pub(crate) fn start_with_env(data_dir: &Path, database_url: &str, log: &str, env: &[(&str, &str)]) -> Server {
        Self::start_logged(data_dir, database_url, &data_dir.join(log), env)
    }

    /// Like [`Server::start_with_env`], logging to `log` (a path anywhere, e.g. outside a
    /// data directory that is about to fill up).
    pub(crate) fn start_logged(data_dir: &Path, database_url: &str, log: &Path, env: &[(&str, &str)]) -> Server {
        match Self::try_start(data_dir, database_url, log, env) {
            Ok(server) => server,
            Err(stderr) => panic!("tessera serve did not report its address; stderr:\n{stderr}"),
        }
    }

    /// Starts `tessera serve`; on failure (it exited or never reported its address) returns
    /// what it wrote on stderr.
    pub(crate) fn try_start(data_dir: &Path, database_url: &str, log: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
        let stderr = std::fs::File::create(log).unwrap();
        let mut child = tessera(data_dir, database_url)
            .envs(env.iter().copied())
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("tessera binary starts");
        let out = child.stdout.take().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // "Tessera is listening on http://localhost:PORT (bound to 127.0.0.1:PORT)"
                    if let Some(rest) = line.strip_prefix("Tessera is listening on ") {
                        let issuer = rest.split_whitespace().next().unwrap();
                        assert!(issuer.starts_with("http://localhost:"), "{line}");
                        let bound = rest.split("(bound to ").nth(1).unwrap().trim_end_matches(')');
                        assert_eq!(issuer.rsplit(':').next(), bound.rsplit(':').next(), "{line}");
                        return Ok(Server { child, base: format!("http://{bound}"), stdout });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::fs::read_to_string(log).unwrap_or_default());
                }
            }
        }
    }

    /// `kill -9`.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a CLI command with `stdin`; returns its JSON output.
pub(crate) fn cli(data_dir: &Path, database_url: &str, args: &[&str], stdin: &str) -> serde_json::Value {
    let mut child = tessera(data_dir, database_url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "tessera {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("tessera {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Signs in through the login form; returns the session id.
pub(crate) async fn sign_in(base: &str, username: &str) -> String {
    let c = client();
    let page = c.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").unwrap();
    let res = c
        .post(format!("{base}/login"))
        .form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", username), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in at {base}");
    let set = crate::helpers::set_cookie_header(res.headers(), "tessera_session").expect("session cookie");
    cookie_value(&set)
}

pub(crate) struct Scratch(pub(crate) PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sessions_survive_kill_9(backend: Backend) {
    let (url, _db) = TestDb::fresh_url(backend).await.unwrap();
    let dir = Scratch(scratch_dir("durable").unwrap());
    let data_dir = dir.0.as_path();

    let first = Server::start(data_dir, &url, "serve-1.log");
    let created = cli(data_dir, &url, &["user", "create", "--username", "durable", "--password-stdin"], &format!("{PASSWORD}\n"));
    assert_eq!(created["username"], "durable");
    assert!(created["id"].as_str().is_some_and(|id| id.len() == 36), "{created}");

    let session = sign_in(&first.base, "durable").await;
    let before = account_with_cookie(&first.base, &session).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains("durable"));
    // No administrator yet: the setup link was printed.
    assert!(first.stdout.lock().unwrap().iter().any(|l| l.contains("/setup?token=")));

    first.kill_9();

    let second = Server::start(data_dir, &url, "serve-2.log");
    let after = account_with_cookie(&second.base, &session).await;
    assert_eq!(after.status, StatusCode::OK, "the session survived kill -9: {after:?}");
    assert!(after.body.contains("durable"));
    let again = sign_in(&second.base, "durable").await;
    assert_ne!(again, session);
    assert_eq!(account_with_cookie(&second.base, &again).await.status, StatusCode::OK);
    let ready = bare_client().get(format!("{}/readyz", second.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    second.kill_9();
}

async fn restart_with_an_administrator_present(backend: Backend) {
    let (url, _db) = TestDb::fresh_url(backend).await.unwrap();
    let dir = Scratch(scratch_dir("admin").unwrap());
    let data_dir = dir.0.as_path();
    let created = cli(
        data_dir,
        &url,
        &["user", "create", "--username", "root", "--role", "admin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(created["username"], "root");

    let mut server = Server::start(data_dir, &url, "serve.log");
    // The server must keep running (and print no setup link) now that an administrator exists.
    let health = bare_client().get(format!("{}/healthz", server.base)).send().await;
    let exited = server.child.try_wait().unwrap();
    let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
    assert!(exited.is_none(), "tessera serve exited ({exited:?}) with an administrator present; stderr:\n{log}");
    assert_eq!(health.map(|r| r.status()).ok(), Some(StatusCode::OK), "stderr:\n{log}");
    assert!(!server.stdout.lock().unwrap().iter().any(|l| l.contains("/setup?token=")));
    let session = sign_in(&server.base, "root").await;
    assert_eq!(account_with_cookie(&server.base, &session).await.status, StatusCode::OK);
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `kid` in a JWS header.
fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The published key ids, sorted.
pub(crate) async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = bare_client().get(format!("{base}/oauth2/jwks")).send().await.unwrap().json().await.unwrap();
    let mut kids: Vec<String> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

async fn userinfo(base: &str, access_token: &str) -> (StatusCode, serde_json::Value) {
    let res = bare_client().get(format!("{base}/oauth2/userinfo")).bearer_auth(access_token).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Grants, refresh tokens, revocations, signing keys and the SSO session all live in the
/// database: after `kill -9` and a restart on the same data directory and database, every
/// one of them is as it was.
async fn oauth_state_survives_kill_9(backend: Backend) {
    use crate::oauth::{Rp, active, authorize, post_as, redeem, refresh, tokens};
    let (url, _db) = TestDb::fresh_url(backend).await.unwrap();
    let dir = Scratch(scratch_dir("durable-oauth").unwrap());
    let data_dir = dir.0.as_path();
    // The same address (and so the same issuer) before and after the crash.
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [("TESSERA_LISTEN", listen.as_str())];

    let first = Server::start_with_env(data_dir, &url, "serve-1.log", &env);
    let issuer = format!("http://localhost:{}", listen.rsplit(':').next().unwrap());
    let user = cli(data_dir, &url, &["user", "create", "--username", "durable", "--password-stdin"], &format!("{PASSWORD}\n"));
    let user_id = user["id"].as_str().unwrap().to_owned();
    let app = cli(data_dir, &url, &["client", "create", "--name", "app", "--redirect-uri", crate::oauth::REDIRECT_URI, "--skip-consent"], "");
    let app = Rp { id: app["client_id"].as_str().unwrap().to_owned(), secret: app["client_secret"].as_str().unwrap().to_owned() };
    let svc = cli(data_dir, &url, &["client", "create", "--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read"], "");
    let svc = Rp { id: svc["client_id"].as_str().unwrap().to_owned(), secret: svc["client_secret"].as_str().unwrap().to_owned() };

    let session = sign_in(&first.base, "durable").await;
    let scope = "openid profile offline_access";

    // Grant 1: kept.
    let code = authorize(&first.base, &issuer, &app, &session, scope).await;
    let (status, body) = redeem(&first.base, &app, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access, refresh_token) = tokens(&body);
    let refresh_token = refresh_token.unwrap();
    let (status, info) = userinfo(&first.base, &access).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], user_id.as_str());

    // Grant 2: its access token revoked, its refresh token (so the grant) revoked.
    let code2 = authorize(&first.base, &issuer, &app, &session, scope).await;
    let (status, body) = redeem(&first.base, &app, &code2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (revoked_access, revoked_refresh) = tokens(&body);
    let revoked_refresh = revoked_refresh.unwrap();
    let (status, _) = post_as(&first.base, "/oauth2/revoke", &app, &[("token", &revoked_access), ("token_type_hint", "access_token")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_as(&first.base, "/oauth2/revoke", &app, &[("token", &revoked_refresh)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!active(&first.base, &app, &revoked_access).await);
    assert!(!active(&first.base, &app, &revoked_refresh).await);

    // A service token, revoked.
    let (status, body) = post_as(&first.base, "/oauth2/token", &svc, &[("grant_type", "client_credentials"), ("scope", "api:read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (svc_access, _) = tokens(&body);
    assert!(active(&first.base, &svc, &svc_access).await);
    let (status, _) = post_as(&first.base, "/oauth2/revoke", &svc, &[("token", &svc_access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!active(&first.base, &svc, &svc_access).await);

    assert!(active(&first.base, &app, &access).await);
    let kids_before = jwks_kids(&first.base).await;
    assert!(kids_before.contains(&kid_of(&access)), "the signing key is published");

    first.kill_9();

    let second = Server::start_with_env(data_dir, &url, "serve-2.log", &env);
    assert_eq!(second.base, format!("http://{listen}"));

    // Signing keys survived: same JWKS, and the pre-crash access token still verifies.
    assert_eq!(jwks_kids(&second.base).await, kids_before, "the same keys after the restart");
    let (status, info) = userinfo(&second.base, &access).await;
    assert_eq!(status, StatusCode::OK, "an access token minted before the crash still verifies: {info}");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["preferred_username"], "durable");
    assert!(active(&second.base, &app, &access).await);

    // Revocations survived.
    assert!(!active(&second.base, &app, &revoked_access).await, "a revoked access token stays revoked");
    let (status, _) = userinfo(&second.base, &revoked_access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!active(&second.base, &svc, &svc_access).await, "a revoked service token stays revoked");
    let (status, body) = refresh(&second.base, &app, &revoked_refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    // The SSO session survived.
    let account = account_with_cookie(&second.base, &session).await;
    assert_eq!(account.status, StatusCode::OK, "the session survived kill -9: {account:?}");
    assert!(account.body.contains("durable"));

    // The grant survived: its refresh token rotates, and the new tokens work.
    let (status, body) = refresh(&second.base, &app, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "the refresh token still refreshes after the restart: {body}");
    let (new_access, new_refresh) = tokens(&body);
    let new_refresh = new_refresh.unwrap();
    assert!(active(&second.base, &app, &new_access).await);
    assert!(active(&second.base, &app, &new_refresh).await);
    assert!(!active(&second.base, &app, &refresh_token).await, "the rotated token is spent");
    let (status, _) = userinfo(&second.base, &new_access).await;
    assert_eq!(status, StatusCode::OK);

    // And the session still authorizes without signing in again.
    let code3 = authorize(&second.base, &issuer, &app, &session, scope).await;
    let (status, body) = redeem(&second.base, &app, &code3).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    second.kill_9();
}
