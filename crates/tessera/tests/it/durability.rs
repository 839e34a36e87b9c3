//! The real binary: sessions and users survive `kill -9` and a restart, on both backends.

use crate::helpers::{PASSWORD, account_with_cookie, bare_client, client, cookie_value, field_value, test_env};
use reqwest::StatusCode;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tessera_testkit::{Backend, TestDb, scratch_dir};

on_both_backends!(sessions_survive_kill_9, restart_with_an_administrator_present);

/// A `tessera` command with the test environment and nothing inherited from ours.
fn tessera(data_dir: &Path, database_url: &str) -> Command {
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
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (the address it is bound to).
    base: String,
    /// What it printed on stdout so far.
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data_dir: &Path, database_url: &str, log: &str) -> Server {
        let stderr = std::fs::File::create(data_dir.join(log)).unwrap();
        let mut child = tessera(data_dir, database_url)
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
                        return Server { child, base: format!("http://{bound}"), stdout };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(data_dir.join(log)).unwrap_or_default();
                    panic!("tessera serve did not report its address; stderr:\n{log}");
                }
            }
        }
    }

    /// `kill -9`.
    fn kill_9(mut self) {
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
fn cli(data_dir: &Path, database_url: &str, args: &[&str], stdin: &str) -> serde_json::Value {
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
async fn sign_in(base: &str, username: &str) -> String {
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

struct Scratch(PathBuf);
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
