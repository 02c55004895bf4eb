//! # kcm-keystore-software
//!
//! The embedded development keystore. Root keys are random AES-256 keys **sealed
//! under a master key** (AES-256-GCM); the sealed blob *is* the opaque handle the
//! core stores, so the store only ever holds sealed material. Wrap and unwrap open
//! the root key in memory (cached, zeroized on drop) and use it for AES-256-GCM
//! with the caller's associated data.
//!
//! ## Master key sources
//! - [`MasterKeySource::File`] (default `<data-dir>/master.key`): 32 random bytes,
//!   hex, created at first start with mode 0600 and a loud warning — for
//!   development: whoever reads the file can unseal every root key. A file readable
//!   by group or others is refused.
//! - [`MasterKeySource::Passphrase`]: Argon2id (64 MiB, 3 passes, 1 lane) over a
//!   passphrase of at least 12 characters, with a random salt kept (with the
//!   parameters, not secret) in `<data-dir>/keystore-params.json`.
//!
//! Either way a check value (`<data-dir>/keystore-check`) is written at first
//! start, so a wrong master key is refused at open with a clear message instead of
//! failing on every unwrap later.
//!
//! **Keep** the master key (file or passphrase) *and* the data directory: without
//! the master key every root key, and so every key below it, is unrecoverable.
//! Keep it apart from backups of the data directory. Switching an existing data
//! directory from one source to the other is not supported yet.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use kcm_core::crypto::{self, KEY_LEN};
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

const HANDLE_FORMAT_V1: u8 = 1;
const ROOT_AAD_PREFIX: &[u8] = b"kcm-software-root-v1";
const CHECK_AAD: &[u8] = b"kcm-software-check-v1";
const CHECK_PLAINTEXT: &[u8] = b"kcm software keystore master key check";
/// Name of the check-value file in the keystore directory.
pub const CHECK_FILE: &str = "keystore-check";
/// Name of the passphrase parameters file in the keystore directory.
pub const PARAMS_FILE: &str = "keystore-params.json";
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Where the master key comes from.
pub enum MasterKeySource {
    /// A file holding 32 bytes in hex; created (mode 0600) if missing.
    File(PathBuf),
    /// A passphrase, stretched with Argon2id.
    Passphrase(SecretString),
}

impl MasterKeySource {
    fn kind(&self) -> &'static str {
        match self {
            MasterKeySource::File(_) => "file",
            MasterKeySource::Passphrase(_) => "passphrase",
        }
    }
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
            MasterKeySource::Passphrase(_) => f.write_str("Passphrase([REDACTED])"),
        }
    }
}

/// Argon2id parameters and salt, recorded so they can be raised later.
#[derive(Serialize, Deserialize)]
struct PassphraseParams {
    salt_hex: String,
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

/// What the check file records.
#[derive(Serialize, Deserialize)]
struct CheckFile {
    source: String,
    sealed_hex: String,
}

/// The software keystore provider.
pub struct SoftwareKeystore {
    source_description: String,
    master: SecretBytes,
    /// Unsealed root keys by handle, so the hot path does not re-open them.
    opened: RwLock<HashMap<Vec<u8>, Arc<SecretBytes>>>,
}

impl std::fmt::Debug for SoftwareKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKeystore")
            .field("master_key", &self.source_description)
            .finish_non_exhaustive()
    }
}

fn misconfigured(msg: impl Into<String>) -> KeystoreError {
    KeystoreError::Misconfigured(msg.into())
}

impl SoftwareKeystore {
    /// Opens (creating on first use) the keystore whose files live in `dir`.
    pub fn open(dir: &Path, source: MasterKeySource) -> KeystoreResult<Self> {
        let kind = source.kind();
        let (master, description) = match source {
            MasterKeySource::File(path) => (
                files::load_or_create_master_file(&path)?,
                format!("file {}", path.display()),
            ),
            MasterKeySource::Passphrase(passphrase) => (
                derive_from_passphrase(dir, &passphrase)?,
                "passphrase (Argon2id)".to_string(),
            ),
        };
        verify_or_create_check(dir, kind, &master)?;
        Ok(Self {
            source_description: description,
            master,
            opened: RwLock::new(HashMap::new()),
        })
    }

    fn root_aad(label: &[u8]) -> Vec<u8> {
        let mut aad = ROOT_AAD_PREFIX.to_vec();
        aad.extend_from_slice(label);
        aad
    }

    /// The unsealed root key behind `handle`.
    fn root_key(&self, handle: &[u8]) -> KeystoreResult<Arc<SecretBytes>> {
        if let Some(key) = self
            .opened
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(handle)
        {
            return Ok(Arc::clone(key));
        }
        let unusable = || {
            KeystoreError::KeyUnusable(
                "the handle is not a root key of this software keystore".into(),
            )
        };
        let (&format, rest) = handle.split_first().ok_or_else(unusable)?;
        if format != HANDLE_FORMAT_V1 || rest.len() < 2 {
            return Err(unusable());
        }
        let label_len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let rest = &rest[2..];
        if rest.len() < label_len {
            return Err(unusable());
        }
        let (label, sealed) = rest.split_at(label_len);
        let key =
            crypto::open(&self.master, sealed, &Self::root_aad(label)).map_err(|_| unusable())?;
        if key.len() != KEY_LEN {
            return Err(unusable());
        }
        let key = Arc::new(key);
        self.opened
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.to_vec(), Arc::clone(&key));
        Ok(key)
    }
}

fn derive_from_passphrase(dir: &Path, passphrase: &SecretString) -> KeystoreResult<SecretBytes> {
    if passphrase.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(misconfigured(format!(
            "the master passphrase must be at least {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    let path = dir.join(PARAMS_FILE);
    let params: PassphraseParams = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| misconfigured(format!("{} is not valid: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut salt = [0u8; 16];
            crypto::fill_random(&mut salt);
            let params = PassphraseParams {
                salt_hex: hex::encode(salt),
                memory_kib: 64 * 1024,
                iterations: 3,
                lanes: 1,
            };
            let json = serde_json::to_vec_pretty(&params).expect("params serialise");
            files::write_private_atomically(&path, &json)
                .map_err(|e| misconfigured(format!("cannot write {}: {e}", path.display())))?;
            params
        }
        Err(e) => {
            return Err(misconfigured(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let salt = hex::decode(&params.salt_hex)
        .map_err(|_| misconfigured(format!("{} has a bad salt", path.display())))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.lanes,
            Some(KEY_LEN),
        )
        .map_err(|e| misconfigured(format!("{} has bad Argon2 parameters: {e}", path.display())))?,
    );
    let mut out = zeroize::Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), &salt, out.as_mut())
        .map_err(|e| misconfigured(format!("Argon2id failed: {e}")))?;
    Ok(SecretBytes::copy_from(out.as_ref()))
}

fn verify_or_create_check(dir: &Path, kind: &str, master: &SecretBytes) -> KeystoreResult<()> {
    let path = dir.join(CHECK_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let check: CheckFile = serde_json::from_slice(&bytes)
                .map_err(|e| misconfigured(format!("{} is not valid: {e}", path.display())))?;
            if check.source != kind {
                return Err(misconfigured(format!(
                    "this data directory's master key comes from a {}, but a {kind} was given; switching sources is not supported",
                    check.source
                )));
            }
            let sealed = hex::decode(&check.sealed_hex)
                .map_err(|_| misconfigured(format!("{} is not valid", path.display())))?;
            match crypto::open(master, &sealed, CHECK_AAD) {
                Ok(plain) if plain.expose_secret() == CHECK_PLAINTEXT => Ok(()),
                _ => Err(misconfigured(
                    "the master key does not match the one this data directory was created with",
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let check = CheckFile {
                source: kind.to_string(),
                sealed_hex: hex::encode(crypto::seal(master, CHECK_PLAINTEXT, CHECK_AAD)),
            };
            let json = serde_json::to_vec_pretty(&check).expect("check serialises");
            files::write_private_atomically(&path, &json)
                .map_err(|e| misconfigured(format!("cannot write {}: {e}", path.display())))
        }
        Err(e) => Err(misconfigured(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

#[async_trait]
impl KeystoreProvider for SoftwareKeystore {
    fn kind(&self) -> &'static str {
        "software"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: true,
            import: false,
            reference: false,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        Ok(())
    }

    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>> {
        let label = label.as_bytes();
        if label.len() > usize::from(u16::MAX) {
            return Err(misconfigured("root key label is too long"));
        }
        let key = SecretBytes::random(KEY_LEN);
        let sealed = crypto::seal(&self.master, key.expose_secret(), &Self::root_aad(label));
        let mut handle = Vec::with_capacity(3 + label.len() + sealed.len());
        handle.push(HANDLE_FORMAT_V1);
        handle.extend_from_slice(&(label.len() as u16).to_be_bytes());
        handle.extend_from_slice(label);
        handle.extend_from_slice(&sealed);
        Ok(handle)
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        let root = self.root_key(handle)?;
        Ok(crypto::seal(&root, plaintext.expose_secret(), aad))
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        let root = self.root_key(handle)?;
        crypto::open(&root, wrapped, aad).map_err(|_| KeystoreError::UnwrapFailed)
    }

    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()> {
        // The material exists only inside the handle, which the core erases from the store.
        self.opened
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(handle);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
