//! The server's secret key: configured (`secret_key`, `TESSERA_SECRET_KEY[_FILE]`) or, for a
//! single node, generated once into `<data_dir>/secret.key` (mode 0600). Purpose-specific
//! keys are derived from it with HKDF-SHA256, so one secret serves CSRF and keys at rest.

use anyhow::Context;
use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

/// Loads the configured key, or the one in the data directory, creating it if needed.
pub fn load_or_create(configured: Option<[u8; 32]>, data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(k) = configured {
        return Ok(k);
    }
    let path = data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = STANDARD.decode(text.trim()).with_context(|| format!("{} is not base64", path.display()))?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("{} does not hold 32 bytes", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::files::private_dir(data_dir)?;
            let mut key = [0u8; 32];
            tessera_core::secret::fill_random(&mut key)?;
            // Create-or-read: the key is written whole to a private temporary file, then
            // linked into place, which fails if another process got there first; that
            // process's key is then the one used.
            let tmp = data_dir.join(format!("secret.key.{}.tmp", uuid::Uuid::new_v4()));
            write_private(&tmp, &format!("{}\n", STANDARD.encode(key)))?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(None, data_dir),
                Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot create {}", path.display()))
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// Derives a 32-byte key for `purpose` from the master key.
pub fn derive(master: &[u8; 32], purpose: &str) -> anyhow::Result<[u8; 32]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera/v1").extract(master);
    let info = [purpose.as_bytes()];
    let okm = prk.expand(&info, Len32).map_err(|_| anyhow::anyhow!("key derivation failed"))?;
    let mut out = [0u8; 32];
    okm.fill(&mut out).map_err(|_| anyhow::anyhow!("key derivation failed"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("tessera-key-{}", uuid::Uuid::new_v4()));
        let a = load_or_create(None, &dir).unwrap();
        let b = load_or_create(None, &dir).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_ne!(derive(&a, "csrf").unwrap(), derive(&a, "keys").unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
