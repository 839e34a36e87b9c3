//! Fault tests against the real binary that break the real thing: a full disk under the data
//! directory (a small tmpfs filled with `dd`), a private PostgreSQL cluster stopped and
//! started under load, and several nodes cold-starting on one empty database. Each checks
//! what users see: status codes (503 with `Retry-After`, never 500), that no acknowledged
//! write is lost, that revocations stay effective, and how long recovery takes (measured and
//! printed; bounded generously, never tightly).
//!
//! The disk and PostgreSQL tests need root (mount, `runuser`), as CI has; elsewhere they
//! say so and pass without running.

mod cold_start;
mod disk_full;
mod postgres_outage;

use crate::oauth::{Rp, post_as};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether this process may mount file systems and switch users.
pub(crate) fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Skips the calling test (with a clear message) unless running as root.
macro_rules! require_root {
    ($what:expr) => {
        if !crate::faults::running_as_root() {
            eprintln!("SKIPPED {}: needs root (mount / runuser), as in CI", $what);
            return;
        }
    };
}
pub(crate) use require_root;

/// Runs a command; panics with its output if it fails.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} could not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmpfs of a fixed size mounted on a fresh directory; unmounted and removed on drop.
pub(crate) struct Tmpfs {
    pub(crate) dir: PathBuf,
}

impl Tmpfs {
    pub(crate) fn mount(size: &str) -> Tmpfs {
        let dir = tessera_testkit::scratch_dir("tmpfs").unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"]).arg(&dir));
        Tmpfs { dir }
    }

    /// Fills the file system with `dd` until it reports no space left.
    pub(crate) fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        // dd exits non-zero at ENOSPC, which is the point.
        let out = Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", filler.display())).args(["bs=64k"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No space left"), "dd did not fill the disk: {stderr}");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A status code and whether a 503 carried `Retry-After`, from a token-endpoint answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: bool,
    pub(crate) body: Value,
}

/// `POST {base}{path}` as `rp`, keeping `Retry-After`.
pub(crate) async fn post_form(base: &str, path: &str, rp: &Rp, form: &[(&str, &str)]) -> Answer {
    let res = crate::helpers::bare_client()
        .post(format!("{base}{path}"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(form)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry_after = res.headers().get(reqwest::header::RETRY_AFTER).is_some();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, retry_after, body }
}

/// Refresh through `post_form`.
pub(crate) async fn refresh(base: &str, rp: &Rp, token: &str) -> Answer {
    post_form(base, "/oauth2/token", rp, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// Checks a fault-time answer: success, or 503 with `Retry-After` (and the RFC error code
/// when the body is an OAuth error); never a 500.
pub(crate) fn assert_ok_or_unavailable(what: &str, a: &Answer) {
    assert_ne!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{what} answered 500 during the fault: {}", a.body);
    if a.status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(a.retry_after, "{what}: 503 without Retry-After");
        if let Some(code) = a.body.get("error").and_then(Value::as_str) {
            assert!(code == "temporarily_unavailable" || code == "unavailable", "{what}: 503 with error {code}");
        }
    } else {
        assert!(a.status.is_success(), "{what} answered {} during the fault: {}", a.status, a.body);
    }
}

/// `/readyz` status.
pub(crate) async fn readyz(base: &str) -> StatusCode {
    crate::helpers::bare_client()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::REQUEST_TIMEOUT)
}

/// Polls `attempt` every 50 ms until it returns `Some`; returns the value and how long it
/// took. Panics after `bound` (generous: the time is reported, not asserted tightly).
pub(crate) async fn poll_until<T, F, Fut>(what: &str, bound: Duration, mut attempt: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = attempt().await {
            let took = started.elapsed();
            eprintln!("{what}: recovered after {} ms", took.as_millis());
            return (v, took);
        }
        assert!(started.elapsed() < bound, "{what}: not recovered within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Disables (or enables) a user through the admin API with `key`.
pub(crate) async fn set_disabled(base: &str, key: &str, user_id: &str, disabled: bool) -> Answer {
    let res = crate::helpers::bare_client()
        .patch(format!("{base}/admin/v1/users/{user_id}"))
        .bearer_auth(key)
        .json(&serde_json::json!({"disabled": disabled}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry_after = res.headers().get(reqwest::header::RETRY_AFTER).is_some();
    let body = res.json().await.unwrap_or(Value::Null);
    Answer { status, retry_after, body }
}

/// Revokes `token` as `rp`.
pub(crate) async fn revoke(base: &str, rp: &Rp, token: &str) -> Answer {
    post_form(base, "/oauth2/revoke", rp, &[("token", token)]).await
}

/// Whether a refresh token is refused now (`invalid_grant`), checked once writes work.
pub(crate) async fn refused(base: &str, rp: &Rp, token: &str) -> bool {
    let (status, body) = post_as(base, "/oauth2/token", rp, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant"
}

/// A file path next to (not inside) `dir`, for logs that must not share its disk.
pub(crate) fn beside(dir: &Path, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", dir.file_name().and_then(|n| n.to_str()).unwrap_or("tessera")))
}
