//! The passphrase master key source: Argon2id with recorded parameters and salt.

use std::path::Path;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use kcm_core::crypto::{self, KEY_LEN};
use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_core::secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::files;

/// Argon2id memory cost for new data directories, in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes for new data directories.
pub const ARGON2_ITERATIONS: u32 = 3;
/// Argon2id lanes for new data directories.
pub const ARGON2_LANES: u32 = 1;
/// Bytes of random salt.
const SALT_LEN: usize = 16;
const ALGORITHM_NAME: &str = "argon2id";
const ARGON2_VERSION: u32 = 0x13;

/// The derivation recorded in `keystore-params.json`. Not secret: it is what lets
/// the same passphrase give the same master key again, and lets the cost be raised
/// for new data directories without breaking existing ones.
#[derive(Serialize, Deserialize)]
struct PassphraseParams {
    /// Always `argon2id` (missing in files written before it was recorded).
    #[serde(default = "default_algorithm")]
    algorithm: String,
    /// Argon2 version (0x13; missing in files written before it was recorded).
    #[serde(default = "default_version")]
    version: u32,
    /// Random salt, hex.
    salt_hex: String,
    /// Memory cost in KiB.
    memory_kib: u32,
    /// Number of passes.
    iterations: u32,
    /// Degree of parallelism.
    lanes: u32,
}

fn default_algorithm() -> String {
    ALGORITHM_NAME.into()
}

fn default_version() -> u32 {
    ARGON2_VERSION
}

/// Derives the 32-byte master key from `passphrase`, creating the parameters file
/// (random salt, default cost) in `dir` on first use.
pub(crate) fn derive_master_key(
    dir: &Path,
    passphrase: &SecretString,
    min_chars: usize,
) -> KeystoreResult<SecretBytes> {
    if passphrase.expose_secret().chars().count() < min_chars {
        return Err(KeystoreError::Misconfigured(format!(
            "the master passphrase is too short: it must be at least \
             {min_chars} characters"
        )));
    }
    let path = dir.join(crate::PARAMS_FILE);
    let params = load_or_create_params(&path)?;
    derive(&params, passphrase, &path)
}

fn load_or_create_params(path: &Path) -> KeystoreResult<PassphraseParams> {
    match std::fs::read(path) {
        Ok(bytes) => parse_params(&bytes, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut salt = [0u8; SALT_LEN];
            crypto::fill_random(&mut salt);
            let params = PassphraseParams {
                algorithm: ALGORITHM_NAME.into(),
                version: ARGON2_VERSION,
                salt_hex: hex::encode(salt),
                memory_kib: ARGON2_MEMORY_KIB,
                iterations: ARGON2_ITERATIONS,
                lanes: ARGON2_LANES,
            };
            let mut json = serde_json::to_vec_pretty(&params).expect("parameters serialise");
            json.push(b'\n');
            match files::create_private_file(path, &json) {
                Ok(()) => Ok(params),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let bytes = std::fs::read(path).map_err(|e| cannot_read(path, e))?;
                    parse_params(&bytes, path)
                }
                Err(e) => Err(KeystoreError::Misconfigured(format!(
                    "cannot write {}: {e}",
                    path.display()
                ))),
            }
        }
        Err(e) => Err(cannot_read(path, e)),
    }
}

/// The parameters recorded in `dir` (after [`derive_master_key`]), as JSON.
pub(crate) fn recorded_params(dir: &Path) -> KeystoreResult<serde_json::Value> {
    let path = dir.join(crate::PARAMS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| cannot_read(&path, e))?;
    let params = parse_params(&bytes, &path)?;
    Ok(serde_json::to_value(&params).expect("parameters serialise"))
}

/// Writes `params` (from [`recorded_params`] of another data directory) as the
/// parameters file of `dir`. An existing identical file is accepted; a different
/// one is refused.
pub(crate) fn install_params(dir: &Path, params: &serde_json::Value) -> KeystoreResult<()> {
    let path = dir.join(crate::PARAMS_FILE);
    let params: PassphraseParams = serde_json::from_value(params.clone()).map_err(|e| {
        KeystoreError::Misconfigured(format!(
            "the backup's passphrase parameters are invalid: {e}"
        ))
    })?;
    let mut json = serde_json::to_vec_pretty(&params).expect("parameters serialise");
    json.push(b'\n');
    // Checked like a file read at start, so a restore never records what a start refuses.
    parse_params(&json, &path)?;
    match files::create_private_file(&path, &json) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read(&path).map_err(|e| cannot_read(&path, e))?;
            let existing = parse_params(&existing, &path)?;
            if existing.salt_hex == params.salt_hex
                && existing.memory_kib == params.memory_kib
                && existing.iterations == params.iterations
                && existing.lanes == params.lanes
            {
                Ok(())
            } else {
                Err(KeystoreError::Misconfigured(format!(
                    "{} already holds other passphrase parameters",
                    path.display()
                )))
            }
        }
        Err(e) => Err(KeystoreError::Misconfigured(format!(
            "cannot write {}: {e}",
            path.display()
        ))),
    }
}

fn cannot_read(path: &Path, e: std::io::Error) -> KeystoreError {
    KeystoreError::Misconfigured(format!("cannot read {}: {e}", path.display()))
}

fn parse_params(bytes: &[u8], path: &Path) -> KeystoreResult<PassphraseParams> {
    let params: PassphraseParams = serde_json::from_slice(bytes).map_err(|e| {
        KeystoreError::Misconfigured(format!("{} is not valid: {e}", path.display()))
    })?;
    if params.algorithm != ALGORITHM_NAME || params.version != ARGON2_VERSION {
        return Err(KeystoreError::Misconfigured(format!(
            "{} names an unsupported key derivation ({} version {:#x})",
            path.display(),
            params.algorithm,
            params.version
        )));
    }
    Ok(params)
}

fn derive(
    params: &PassphraseParams,
    passphrase: &SecretString,
    path: &Path,
) -> KeystoreResult<SecretBytes> {
    let bad = |what: String| KeystoreError::Misconfigured(format!("{}: {what}", path.display()));
    let salt = hex::decode(&params.salt_hex).map_err(|_| bad("the salt is not hex".into()))?;
    if salt.len() != SALT_LEN {
        return Err(bad(format!("the salt must be {SALT_LEN} bytes")));
    }
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.lanes,
        Some(KEY_LEN),
    )
    .map_err(|e| bad(format!("bad Argon2 parameters: {e}")))?;
    // Our own working memory, so it is wiped afterwards: it is derived from the passphrase.
    let mut memory = WipedBlocks(vec![Block::default(); argon_params.block_count()]);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into_with_memory(
            passphrase.expose_secret().as_bytes(),
            &salt,
            out.as_mut(),
            &mut memory.0,
        )
        .map_err(|e| bad(format!("Argon2id failed: {e}")))?;
    Ok(SecretBytes::copy_from(out.as_ref()))
}

/// Argon2 working memory that is zeroized on drop.
struct WipedBlocks(Vec<Block>);

impl Drop for WipedBlocks {
    fn drop(&mut self) {
        for block in &mut self.0 {
            block.as_mut().zeroize();
        }
    }
}
