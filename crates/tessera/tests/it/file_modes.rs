//! The real binary keeps its files to itself: on a fresh data directory it creates the
//! directory 0700 and the SQLite database (with its `-wal`/`-shm` files) and `secret.key`
//! 0600, whatever the umask; an existing directory open to others is left as it is and
//! named in a warning at start.

use crate::helpers::test_env;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tessera_testkit::scratch_dir;

/// `tessera serve` on `data_dir` (SQLite inside it), stderr into `log`; returns once it
/// reports its address.
fn serve(data_dir: &Path, log: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TESSERA_") {
            cmd.env_remove(k);
        }
    }
    let url = format!("sqlite://{}", data_dir.join("tessera.db").display());
    cmd.envs(test_env(data_dir, &url));
    cmd.env("TESSERA_LOG__FORMAT", "text");
    let mut child = cmd
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("tessera binary starts");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("Tessera is listening on ") => return child,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("tessera serve did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
            }
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn a_fresh_data_directory_and_its_files_are_private() {
    let root = scratch_dir("modes").unwrap();
    let data = root.join("data");
    let log = root.join("stderr.log");
    let mut child = serve(&data, &log);
    let modes = [
        (data.clone(), 0o700),
        (data.join("tessera.db"), 0o600),
        (data.join("tessera.db-wal"), 0o600),
        (data.join("tessera.db-shm"), 0o600),
        (data.join("secret.key"), 0o600),
    ];
    let found: Vec<(String, u32)> = modes.iter().map(|(p, _)| (p.display().to_string(), mode(p))).collect();
    let _ = child.kill();
    let _ = child.wait();
    for ((path, want), (_, got)) in modes.iter().zip(&found) {
        assert_eq!(*got, *want, "{}: {got:o}, want {want:o}", path.display());
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("open to other local users"), "no warning for private files: {stderr}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_open_data_directory_is_named_in_a_warning() {
    let root = scratch_dir("modes-open").unwrap();
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = root.join("stderr.log");
    let mut child = serve(&data, &log);
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&log).unwrap();
    let warning = stderr.lines().find(|l| l.contains("open to other local users")).unwrap_or_else(|| panic!("a warning: {stderr}"));
    assert!(warning.contains("WARN") && warning.contains(&data.display().to_string()), "{warning}");
    assert_eq!(mode(&data), 0o755, "an existing directory is warned about, not changed");
    // Files the server creates inside it are still private.
    assert_eq!(mode(&data.join("tessera.db")), 0o600);
    let _ = std::fs::remove_dir_all(&root);
}
