//! # kcm-keystore-software
//!
//! The embedded software keystore: kcm's keystore provider for development and
//! single-machine use, needing no hardware and no external service.
//!
//! ## Security model
//!
//! Root keys (L1) are random AES-256 keys from aws-lc-rs's random source. Each is
//! **sealed under a master key** (AES-256-GCM, bound to its label) and the sealed
//! blob *is* the opaque handle the core stores. The store therefore only ever holds
//! sealed material: a copy of the database alone unwraps nothing. To use a root key,
//! the keystore opens its handle with the master key, keeps the plaintext root key
//! in memory (in zeroize-on-drop storage, cached by the SHA-256 of the handle) and
//! wraps/unwraps with AES-256-GCM and the caller's associated data.
//!
//! What this protects against: theft or leak of the data directory's database or its
//! backups **without** the master key. What it does not protect against: anyone who
//! has both the master key and the data, or who controls the running process or host
//! (the master key and open root keys are in its memory). For that, use a hardware
//! keystore (PKCS#11) or keep root keys outside kcm (HYOK).
//!
//! `destroy` only drops a root key from the memory cache: its material exists
//! nowhere but in the handle, and the core erases the handle from the store.
//!
//! ## Master key sources
//!
//! ### Master key file (default, development only)
//!
//! [`MasterKeySource::File`], by default `<data-dir>/master.key` (see
//! [`MasterKeySource::default_file`]). On first start kcm creates it with 32 random
//! bytes written as 64 hex characters on one line, mode 0600, atomically, and logs
//! a loud warning. kcm refuses to start if the file is readable or writable by group
//! or others (fix with `chmod 600 <path>`) or does not hold exactly 32 bytes of hex.
//! **Anyone who can read this file can unseal every root key.** Keeping it in the
//! data directory is convenient for development but means a copy of the data
//! directory is a copy of everything; move it elsewhere (`master_key_file` setting)
//! or use a passphrase for anything that matters.
//!
//! ### Passphrase
//!
//! [`MasterKeySource::Passphrase`], which the server takes from a file (its
//! `--passphrase-file`, `KCM_MASTER_PASSPHRASE_FILE`, or the systemd credential
//! `kcm-master-passphrase`) or from the environment variable
//! `KCM_MASTER_PASSPHRASE`. The master key is derived with **Argon2id** (64 MiB of
//! memory, 3 passes, 1 lane) from the passphrase and a random 16-byte salt. The salt and the parameters are not secret; they are recorded in
//! `<data-dir>/keystore-params.json` (mode 0600) at first start so the cost can be
//! raised for new data directories without breaking existing ones. Passphrases
//! shorter than 12 characters are refused.
//!
//! ### Check value
//!
//! With either source, the first start writes `<data-dir>/keystore-check`: a fixed
//! constant sealed under the master key, and which kind of source made it. Every
//! later start opens it, so a wrong passphrase or a replaced `master.key` is refused
//! immediately ("the master key does not match the one this data directory was
//! created with") instead of making every unwrap fail later, and a data directory is
//! never opened with the other kind of source.
//!
//! ### What to back up
//!
//! - The store: `kcm backup` makes an archive of a running server (wrapped material
//!   only). Its header carries this keystore's non-secret recovery parameters
//!   ([`KeystoreProvider::recovery_parameters`]: the kind of master key source and,
//!   for a passphrase, the Argon2id salt and cost), which `kcm restore` puts back
//!   with [`SoftwareKeystore::prepare_restore`]. (Copying the stopped server's data
//!   directory — store, `keystore-check`, `keystore-params.json` — works as well.)
//! - **Separately**, the master key: the `master.key` file, or the passphrase.
//!   A backup that holds both is as sensitive as all the keys in it.
//!
//! **If the master key is lost, every root key is unrecoverable**, and with them
//! every system key, service key and all data encrypted under them. There is no
//! recovery path and no back door.
//!
//! Switching an existing data directory from a master key file to a passphrase (or
//! back), or changing the passphrase, is **not supported yet**; kcm refuses to open
//! a data directory with the other kind of source.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod files;
mod passphrase;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_lc_rs::digest;
use kcm_core::crypto::{self, KEY_LEN};
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

pub use passphrase::{ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB};

/// Format byte of version-1 root key handles.
const HANDLE_FORMAT_V1: u8 = 1;
/// Associated-data prefix of sealed root keys; the label follows it.
const ROOT_AAD_PREFIX: &[u8] = b"kcm-software-root-v1";
/// Associated data of the check value.
const CHECK_AAD: &[u8] = b"kcm-software-check-v1";
/// The constant sealed in the check value.
const CHECK_PLAINTEXT: &[u8] = b"kcm software keystore master key check";
/// Format of the check file.
const CHECK_FORMAT_V1: u32 = 1;

/// Name of the default master key file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Name of the check-value file in the data directory.
pub const CHECK_FILE: &str = "keystore-check";
/// Name of the passphrase parameters file (salt and Argon2id cost) in the data directory.
pub const PARAMS_FILE: &str = "keystore-params.json";
/// Shortest master passphrase accepted, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Recovery parameter naming the kind of master key source (`file` or `passphrase`).
const RECOVERY_SOURCE: &str = "master_key_source";
/// Recovery parameter holding the passphrase derivation (salt and cost).
const RECOVERY_PASSPHRASE_PARAMS: &str = "passphrase_parameters";

/// Where the master key that seals every root key comes from.
pub enum MasterKeySource {
    /// A file holding 32 bytes as hex; created (mode 0600) if missing. Development only.
    File(PathBuf),
    /// A passphrase (at least [`MIN_PASSPHRASE_CHARS`] characters), stretched with Argon2id.
    Passphrase(SecretString),
}

impl MasterKeySource {
    /// The default file source: `<data_dir>/master.key`.
    pub fn default_file(data_dir: &Path) -> Self {
        MasterKeySource::File(data_dir.join(MASTER_KEY_FILE))
    }

    /// `"file"` or `"passphrase"`, as recorded in the check file.
    pub fn kind(&self) -> &'static str {
        match self {
            MasterKeySource::File(_) => "file",
            MasterKeySource::Passphrase(_) => "passphrase",
        }
    }
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            MasterKeySource::Passphrase(_) => f.write_str("Passphrase([REDACTED])"),
        }
    }
}

/// Human-readable name of a source kind, for error messages.
fn describe_kind(kind: &str) -> &str {
    match kind {
        "file" => "a master key file",
        "passphrase" => "a passphrase (a passphrase file or KCM_MASTER_PASSPHRASE)",
        other => other,
    }
}

/// What the check file records.
#[derive(Serialize, Deserialize)]
struct CheckFile {
    /// Format of this file.
    #[serde(default = "check_format_v1")]
    format: u32,
    /// Kind of master key source that made it.
    source: String,
    /// `seal(master, CHECK_PLAINTEXT, CHECK_AAD)`, hex.
    sealed_hex: String,
}

fn check_format_v1() -> u32 {
    CHECK_FORMAT_V1
}

/// Cache key: SHA-256 of a handle.
type HandleDigest = [u8; 32];

/// The software keystore provider. See the crate documentation for its security model.
pub struct SoftwareKeystore {
    source_kind: &'static str,
    /// What a restore into a new data directory needs besides the master key.
    recovery: serde_json::Value,
    master_key_file: Option<PathBuf>,
    master: SecretBytes,
    /// Unsealed root keys by SHA-256 of their handle, so the hot path does not
    /// re-open them. Zeroized when evicted and when the keystore is dropped.
    opened: RwLock<HashMap<HandleDigest, Arc<SecretBytes>>>,
}

impl std::fmt::Debug for SoftwareKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_read`: formatting must never block or deadlock on the cache lock.
        let cached = self.opened.try_read().map(|m| m.len()).ok();
        f.debug_struct("SoftwareKeystore")
            .field("master_key_source", &self.source_kind)
            .field("master_key_file", &self.master_key_file)
            .field("cached_root_keys", &cached)
            .finish_non_exhaustive()
    }
}

fn misconfigured(msg: impl Into<String>) -> KeystoreError {
    KeystoreError::Misconfigured(msg.into())
}

impl SoftwareKeystore {
    /// Opens the keystore whose files live in `dir`, creating them on first use.
    ///
    /// Fails with [`KeystoreError::Misconfigured`] when the master key file is
    /// accessible by group or others or malformed, the passphrase is too short, the
    /// master key does not match the check value, or `dir` was set up with the other
    /// kind of source. With [`MasterKeySource::Passphrase`] this runs Argon2id
    /// (about 64 MiB and a fraction of a second); call it at start-up, not per request.
    pub fn open(dir: &Path, source: MasterKeySource) -> KeystoreResult<Self> {
        let kind = source.kind();
        let check_path = dir.join(CHECK_FILE);
        // Refuse the wrong kind of source before creating anything for it.
        let existing = read_check(&check_path)?;
        if let Some(check) = &existing {
            if check.source != kind {
                return Err(misconfigured(format!(
                    "the data directory {} was set up with {}, but {} was given; switching \
                     master key sources is not supported yet",
                    dir.display(),
                    describe_kind(&check.source),
                    describe_kind(kind)
                )));
            }
        }
        let (master, master_key_file) = match source {
            MasterKeySource::File(path) => (files::load_or_create_master_file(&path)?, Some(path)),
            MasterKeySource::Passphrase(passphrase) => (
                passphrase::derive_master_key(dir, &passphrase, MIN_PASSPHRASE_CHARS)?,
                None,
            ),
        };
        match existing {
            Some(check) => verify_check(&check, &check_path, &master)?,
            None => create_check(&check_path, kind, &master)?,
        }
        let mut recovery = serde_json::json!({ RECOVERY_SOURCE: kind });
        if kind == "passphrase" {
            recovery[RECOVERY_PASSPHRASE_PARAMS] = passphrase::recorded_params(dir)?;
        }
        Ok(Self {
            source_kind: kind,
            recovery,
            master_key_file,
            master,
            opened: RwLock::new(HashMap::new()),
        })
    }

    /// Prepares an empty data directory `dir` for a restore of a backup whose
    /// archive carries `parameters` (this keystore's
    /// [`KeystoreProvider::recovery_parameters`] when the backup was made), before
    /// [`SoftwareKeystore::open`] with `source`.
    ///
    /// Refuses a `source` of the other kind than the one the backup was made with.
    /// For a passphrase, writes the recorded Argon2id salt and cost to
    /// `<dir>/keystore-params.json`, so the same passphrase gives the same master key
    /// again. A master key file needs nothing here: it must be the kept copy.
    pub fn prepare_restore(
        dir: &Path,
        parameters: Option<&serde_json::Value>,
        source: &MasterKeySource,
    ) -> KeystoreResult<()> {
        let Some(parameters) = parameters else {
            return Ok(());
        };
        let made_with = parameters
            .get(RECOVERY_SOURCE)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                misconfigured("the backup's software keystore parameters are invalid")
            })?;
        if made_with != source.kind() {
            return Err(misconfigured(format!(
                "the backup was made by a software keystore whose master key came from {}, \
                 but {} was given",
                describe_kind(made_with),
                describe_kind(source.kind())
            )));
        }
        if let MasterKeySource::Passphrase(_) = source {
            let params = parameters.get(RECOVERY_PASSPHRASE_PARAMS).ok_or_else(|| {
                misconfigured("the backup does not carry the passphrase parameters (salt)")
            })?;
            passphrase::install_params(dir, params)?;
        }
        Ok(())
    }

    /// The handle of a root key whose material is `key`: the label and the key
    /// sealed under the master key (bound to the label).
    fn seal_root_key(&self, label: &str, key: &SecretBytes) -> KeystoreResult<Vec<u8>> {
        let label = label.as_bytes();
        let label_len = u16::try_from(label.len())
            .map_err(|_| misconfigured("root key label is longer than 65535 bytes"))?;
        let sealed = crypto::seal(&self.master, key.expose_secret(), &Self::root_aad(label));
        let mut handle = Vec::with_capacity(3 + label.len() + sealed.len());
        handle.push(HANDLE_FORMAT_V1);
        handle.extend_from_slice(&label_len.to_be_bytes());
        handle.extend_from_slice(label);
        handle.extend_from_slice(&sealed);
        Ok(handle)
    }

    fn root_aad(label: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(ROOT_AAD_PREFIX.len() + label.len());
        aad.extend_from_slice(ROOT_AAD_PREFIX);
        aad.extend_from_slice(label);
        aad
    }

    fn digest(handle: &[u8]) -> HandleDigest {
        let d = digest::digest(&digest::SHA256, handle);
        d.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    /// The unsealed root key behind `handle`, from the cache or by opening it.
    ///
    /// Handle format v1: `[1][label length: u16 BE][label][seal(master, root key,
    /// "kcm-software-root-v1" || label)]`.
    fn root_key(&self, handle: &[u8]) -> KeystoreResult<Arc<SecretBytes>> {
        let id = Self::digest(handle);
        if let Some(key) = self
            .opened
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Arc::clone(key));
        }
        let unusable = || {
            KeystoreError::KeyUnusable(
                "the handle is not a root key of this software keystore (wrong master key, \
                 damaged, or from another keystore)"
                    .into(),
            )
        };
        let (&format, rest) = handle.split_first().ok_or_else(unusable)?;
        if format != HANDLE_FORMAT_V1 || rest.len() < 2 {
            return Err(unusable());
        }
        let (len, rest) = rest.split_at(2);
        let label_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
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
        let mut cache = self.opened.write().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(cache.entry(id).or_insert(key)))
    }
}

fn read_check(path: &Path) -> KeystoreResult<Option<CheckFile>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_check(&bytes, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(misconfigured(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn parse_check(bytes: &[u8], path: &Path) -> KeystoreResult<CheckFile> {
    let check: CheckFile = serde_json::from_slice(bytes)
        .map_err(|e| misconfigured(format!("{} is not valid: {e}", path.display())))?;
    if check.format != CHECK_FORMAT_V1 {
        return Err(misconfigured(format!(
            "{} has unsupported format {}",
            path.display(),
            check.format
        )));
    }
    Ok(check)
}

fn verify_check(check: &CheckFile, path: &Path, master: &SecretBytes) -> KeystoreResult<()> {
    let sealed = hex::decode(&check.sealed_hex)
        .map_err(|_| misconfigured(format!("{} is not valid", path.display())))?;
    match crypto::open(master, &sealed, CHECK_AAD) {
        Ok(plain) if plain.expose_secret() == CHECK_PLAINTEXT => Ok(()),
        _ => Err(misconfigured(format!(
            "the master key does not match the one this data directory was created with \
             (checked against {}): wrong passphrase, or a replaced master key file",
            path.display()
        ))),
    }
}

fn create_check(path: &Path, kind: &'static str, master: &SecretBytes) -> KeystoreResult<()> {
    let check = CheckFile {
        format: CHECK_FORMAT_V1,
        source: kind.to_string(),
        sealed_hex: hex::encode(crypto::seal(master, CHECK_PLAINTEXT, CHECK_AAD)),
    };
    let mut json = serde_json::to_vec_pretty(&check).expect("check value serialises");
    json.push(b'\n');
    match files::create_private_file(path, &json) {
        Ok(()) => Ok(()),
        // Another process opening the same directory wrote it first: verify against theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let theirs = read_check(path)?
                .ok_or_else(|| misconfigured(format!("{} disappeared", path.display())))?;
            if theirs.source != kind {
                return Err(misconfigured(format!(
                    "{} was just created for {}; switching master key sources is not supported yet",
                    path.display(),
                    describe_kind(&theirs.source)
                )));
            }
            verify_check(&theirs, path, master)
        }
        Err(e) => Err(misconfigured(format!(
            "cannot write {}: {e}",
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
            import: true,
            reference: false,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        Ok(())
    }

    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>> {
        self.seal_root_key(label, &SecretBytes::random(KEY_LEN))
    }

    async fn import_root_key(
        &self,
        label: &str,
        material: &SecretBytes,
    ) -> KeystoreResult<Vec<u8>> {
        if material.len() != KEY_LEN {
            return Err(misconfigured(format!(
                "imported key material must be {KEY_LEN} bytes, got {}",
                material.len()
            )));
        }
        self.seal_root_key(label, material)
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

    fn recovery_parameters(&self) -> Option<serde_json::Value> {
        Some(self.recovery.clone())
    }

    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()> {
        // The material exists only inside the handle, which the core erases from the
        // store; here it only leaves the cache (and is zeroized once no call uses it).
        self.opened
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::digest(handle));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
