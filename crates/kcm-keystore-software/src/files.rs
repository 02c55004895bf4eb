//! Files of the keystore: the master key file and atomic private writes.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use kcm_core::crypto::KEY_LEN;
use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_core::secret::SecretBytes;
use zeroize::Zeroizing;

/// Writes `bytes` to `path` with mode 0600: temporary file, fsync, rename, fsync dir.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads the master key file, creating it (32 random bytes, hex, 0600) if missing.
pub fn load_or_create_master_file(path: &Path) -> KeystoreResult<SecretBytes> {
    let bad = |msg: String| KeystoreError::Misconfigured(msg);
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "master key file {} is readable by others (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                bad(format!(
                    "cannot read master key file {}: {e}",
                    path.display()
                ))
            })?);
            let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
                bad(format!(
                    "master key file {} must hold 64 hex characters",
                    path.display()
                ))
            })?);
            if bytes.len() != KEY_LEN {
                return Err(bad(format!(
                    "master key file {} must hold 64 hex characters (32 bytes)",
                    path.display()
                )));
            }
            Ok(SecretBytes::copy_from(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretBytes::random(KEY_LEN);
            let mut text = Zeroizing::new(hex::encode(key.expose_secret()));
            text.push('\n');
            write_private_atomically(path, text.as_bytes()).map_err(|e| {
                bad(format!(
                    "cannot create master key file {}: {e}",
                    path.display()
                ))
            })?;
            tracing::warn!(
                path = %path.display(),
                "DEVELOPMENT ONLY: created a file-based master key. Anyone who can read this file can unseal \
                 every root key. Back it up separately from the data directory, or use KCM_MASTER_PASSPHRASE."
            );
            Ok(key)
        }
        Err(e) => Err(bad(format!(
            "cannot read master key file {}: {e}",
            path.display()
        ))),
    }
}
