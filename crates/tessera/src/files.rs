//! File modes of the server's own files: the data directory (and the SQLite database's
//! directory) is created 0700 and the database file 0600, whatever the process umask
//! (SQLite gives its `-wal` and `-shm` files the database file's mode; `secret.key` is
//! written 0600 by `keys.rs`). Existing paths are never changed: a directory or database
//! that other local users can read gets a warning at start naming the fix, because an
//! operator may have opened it on purpose (a backup group) and a silent `chmod` would
//! surprise them.

use crate::config::Config;
use anyhow::Context;
use std::path::Path;
use tessera_store::DatabaseKind;

/// Creates what is missing with private modes and warns about what is open to others.
/// Called before the database is opened (by the server and the CLI alike).
pub fn prepare(config: &Config) -> anyhow::Result<()> {
    let sqlite = match DatabaseKind::parse(&config.database_url) {
        Ok(DatabaseKind::Sqlite(path)) if !path.as_os_str().to_string_lossy().starts_with(':') => Some(path),
        _ => None,
    };
    if sqlite.is_some() || config.secret_key.is_none() {
        private_dir(&config.data_dir)?;
    } else if config.data_dir.exists() {
        warn_if_open(&config.data_dir, "directory", "700");
    }
    if let Some(db) = sqlite {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_dir(parent)?;
        }
        private_file(&db)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            let side = std::path::PathBuf::from(side);
            if side.exists() {
                warn_if_open(&side, "database file", "600");
            }
        }
    }
    Ok(())
}

/// Whether other users than the owner have any access to `path` (group or other bits).
#[cfg(unix)]
pub fn open_to_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Whether other users than the owner have any access to `path` (not known off Unix).
#[cfg(not(unix))]
pub fn open_to_others(_path: &Path) -> bool {
    false
}

fn warn_if_open(path: &Path, what: &str, mode: &str) {
    if open_to_others(path) {
        tracing::warn!(path = %path.display(), "the {what} is open to other local users; restrict it with `chmod {mode}`");
    }
}

/// Creates `dir` (and missing parents) with mode 0700, or warns if it exists and is open.
pub(crate) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        warn_if_open(dir, "directory", "700");
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Creates an empty database file with mode 0600 (SQLite accepts an empty file as a new
/// database), or warns if it exists and is open.
fn private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            warn_if_open(path, "database file", "600");
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
