//! Files of the keystore: private, atomically created files and the master key file.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kcm_core::crypto::{self, KEY_LEN};
use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_core::secret::SecretBytes;
use zeroize::Zeroizing;

/// Longest master key file accepted (64 hex characters plus generous whitespace).
const MAX_MASTER_FILE_LEN: u64 = 256;

/// Creates `path` holding `bytes`, mode 0600, atomically and without replacing an
/// existing file.
///
/// The bytes go to a fresh temporary file in the same directory (created with
/// `O_EXCL` and mode 0600), which is fsynced and then published with a hard link,
/// so a reader sees either no file or the complete file, and two processes racing
/// to create the same file cannot overwrite each other (the loser gets
/// [`std::io::ErrorKind::AlreadyExists`]). On file systems without hard links it
/// falls back to `rename`. The directory is fsynced afterwards.
pub(crate) fn create_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut nonce = [0u8; 8];
    crypto::fill_random(&mut nonce);
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        hex::encode(nonce)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => std::fs::rename(&tmp, path)?,
        }
        std::fs::File::open(&dir)?.sync_all()
    })();
    // The temporary name is gone after a rename; after a link or a failure, remove it.
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Reads the master key file, creating it (32 random bytes, hex, mode 0600) if
/// missing. Refuses a file that group or others can access, or that does not hold
/// exactly 32 bytes of hex.
pub(crate) fn load_or_create_master_file(path: &Path) -> KeystoreResult<SecretBytes> {
    match load_master_file(path) {
        Err(LoadError::NotFound) => {}
        Err(LoadError::Refused(e)) => return Err(e),
        Ok(key) => return Ok(key),
    }
    let key = SecretBytes::random(KEY_LEN);
    let mut text = Zeroizing::new(hex::encode(key.expose_secret()));
    text.push('\n');
    match create_private_file(path, text.as_bytes()) {
        Ok(()) => {}
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return load_master_file(path).map_err(LoadError::into_keystore_error);
        }
        Err(e) => {
            return Err(KeystoreError::Misconfigured(format!(
                "cannot create master key file {}: {e}",
                path.display()
            )))
        }
    }
    tracing::warn!(
        path = %path.display(),
        "!!! DEVELOPMENT ONLY: created a FILE-BASED MASTER KEY at {}. Anyone who can read this file \
         can unseal EVERY root key and so decrypt every key and all data in this kcm. Back it up \
         SEPARATELY from the data directory (if it is lost, every root key is unrecoverable; if it \
         is stored with the data, the encryption protects nothing). For anything but development, \
         use a passphrase instead (--passphrase-file). !!!",
        path.display()
    );
    Ok(key)
}

enum LoadError {
    NotFound,
    Refused(KeystoreError),
}

impl LoadError {
    fn into_keystore_error(self) -> KeystoreError {
        match self {
            LoadError::NotFound => {
                KeystoreError::Misconfigured("master key file disappeared while opening".into())
            }
            LoadError::Refused(e) => e,
        }
    }
}

fn load_master_file(path: &Path) -> Result<SecretBytes, LoadError> {
    let refuse = |msg: String| LoadError::Refused(KeystoreError::Misconfigured(msg));
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::NotFound),
        Err(e) => {
            return Err(refuse(format!(
                "cannot read master key file {}: {e}",
                path.display()
            )))
        }
    };
    // Check the file we actually opened, not the path (no check-then-read race).
    let meta = file.metadata().map_err(|e| {
        refuse(format!(
            "cannot inspect master key file {}: {e}",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "master key file {} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "master key file {} is accessible by group or others (mode {mode:o}); \
             restrict it with `chmod 600 {}` and check who may have read it",
            path.display(),
            path.display()
        )));
    }
    let wrong_content = || {
        refuse(format!(
            "master key file {} must hold exactly 32 bytes as 64 hex characters (one line)",
            path.display()
        ))
    };
    if meta.len() > MAX_MASTER_FILE_LEN {
        return Err(wrong_content());
    }
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_MASTER_FILE_LEN as usize));
    (&mut file)
        .take(MAX_MASTER_FILE_LEN + 1)
        .read_to_end(&mut raw)
        .map_err(|e| {
            refuse(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?;
    let text = std::str::from_utf8(&raw).map_err(|_| wrong_content())?;
    let hex_text = text.trim();
    if hex_text.len() != 2 * KEY_LEN {
        return Err(wrong_content());
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(hex_text, key.as_mut()).map_err(|_| wrong_content())?;
    Ok(SecretBytes::copy_from(key.as_ref()))
}
