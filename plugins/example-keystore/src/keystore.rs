//! The file-backed keystore itself, free of gRPC: one file per key, each holding
//! the 32-byte AES-256 key sealed under the key-encryption key (KEK).
//!
//! Key file `<dir>/<id>.key` (mode 0600) is JSON:
//! `{"format":1,"id":"<32 hex>","label":"…","origin":"generated"|"imported","enabled":true,"sealed":"<hex>"}`
//! where `sealed` is `nonce (12) ‖ AES-256-GCM(KEK, key) ‖ tag (16)` with the
//! associated data `"kcm-keystore-example key v1:" ‖ id`, so a sealed key cannot be
//! moved to another key's file. The `enabled` flag and the label are not secret
//! and not authenticated.
//!
//! Handles are ASCII: `o1:<id>` for a key this keystore created or imported (kcm
//! owns it; DestroyKey deletes it) and `r1:<id>` for a key kcm only refers to
//! (DestroyKey changes nothing). A reference is the bare key id.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Largest plaintext Wrap accepts.
pub const MAX_WRAP_LEN: usize = 64 * 1024;
const TAG_LEN: usize = 16;
const KEY_FILE_FORMAT: u32 = 1;
const SEAL_AAD_PREFIX: &[u8] = b"kcm-keystore-example key v1:";

/// Why a keystore operation failed; maps one-to-one onto the protocol's status codes.
#[derive(Debug)]
pub enum Error {
    /// No such key, or not one of our handles (NOT_FOUND).
    NotFound(String),
    /// The key is disabled (FAILED_PRECONDITION).
    Disabled(String),
    /// The request is malformed (INVALID_ARGUMENT).
    Invalid(String),
    /// Unwrap: the blob does not authenticate (INVALID_ARGUMENT).
    BadBlob,
    /// The key directory cannot be used right now (UNAVAILABLE).
    Unavailable(String),
    /// A key file is damaged or does not open under the KEK (INTERNAL).
    Corrupt(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(m)
            | Error::Disabled(m)
            | Error::Invalid(m)
            | Error::Unavailable(m)
            | Error::Corrupt(m) => f.write_str(m),
            Error::BadBlob => f.write_str("wrapped blob does not authenticate"),
        }
    }
}

/// Result of keystore operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Whether a handle owns its key or only refers to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleKind {
    /// Created or imported here: DestroyKey deletes the key.
    Owned,
    /// Referenced (HYOK): DestroyKey changes nothing.
    Reference,
}

/// A parsed handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle {
    /// Owned or referenced.
    pub kind: HandleKind,
    /// The key id (32 lowercase hex digits).
    pub id: String,
}

impl Handle {
    /// Parses handle bytes; anything that is not ours is NOT_FOUND.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::NotFound("not a handle of this keystore".into()))?;
        let (kind, id) = if let Some(id) = text.strip_prefix("o1:") {
            (HandleKind::Owned, id)
        } else if let Some(id) = text.strip_prefix("r1:") {
            (HandleKind::Reference, id)
        } else {
            return Err(Error::NotFound("not a handle of this keystore".into()));
        };
        if !valid_id(id) {
            return Err(Error::NotFound("not a handle of this keystore".into()));
        }
        Ok(Self {
            kind,
            id: id.to_owned(),
        })
    }

    /// The handle's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let prefix = match self.kind {
            HandleKind::Owned => "o1:",
            HandleKind::Reference => "r1:",
        };
        format!("{prefix}{}", self.id).into_bytes()
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    id: String,
    label: String,
    origin: String,
    enabled: bool,
    sealed: String,
}

/// The keystore: a directory of sealed key files and the KEK that opens them.
// `Debug` is derived: aws-lc-rs prints a `LessSafeKey` as its algorithm only, so
// the KEK never shows.
#[derive(Debug)]
pub struct FileKeystore {
    dir: PathBuf,
    kek: LessSafeKey,
    /// Serialises read-modify-write of key files (enable/disable/destroy).
    write_lock: Mutex<()>,
}

/// Reads a KEK file: exactly 32 raw bytes, or 64 hex digits (surrounding
/// whitespace such as a trailing newline is ignored). The file must not be
/// readable or writable by group or others.
pub fn read_kek(path: &Path) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("KEK file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("KEK file {} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "KEK file {} has mode {mode:o}; it must be accessible by its owner only (chmod 600)",
            path.display()
        ));
    }
    let raw =
        Zeroizing::new(fs::read(path).map_err(|e| format!("KEK file {}: {e}", path.display()))?);
    if raw.len() == KEY_LEN {
        return Ok(raw);
    }
    let text = std::str::from_utf8(&raw)
        .map_err(|_| {
            format!(
                "KEK file {}: neither 32 raw bytes nor 64 hex digits",
                path.display()
            )
        })?
        .trim();
    if text.len() != 2 * KEY_LEN {
        return Err(format!(
            "KEK file {}: neither 32 raw bytes nor 64 hex digits",
            path.display()
        ));
    }
    let mut kek = Zeroizing::new(vec![0u8; KEY_LEN]);
    hex::decode_to_slice(text, &mut kek).map_err(|_| {
        format!(
            "KEK file {}: neither 32 raw bytes nor 64 hex digits",
            path.display()
        )
    })?;
    Ok(kek)
}

fn random_bytes(len: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source failed");
    bytes
}

fn gcm_key(bytes: &[u8]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key"))
}

/// `nonce ‖ ciphertext ‖ tag` of `plaintext` under `key`, with `aad`.
fn seal(key: &LessSafeKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce_bytes = random_bytes(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).expect("12-byte nonce");
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce_bytes);
    let mut in_out = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut in_out)
        .expect("AES-GCM seal of a bounded plaintext");
    out.extend_from_slice(&in_out);
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens a blob made by [`seal`]; `None` if it does not authenticate.
fn open(key: &LessSafeKey, blob: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce_bytes, sealed) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).ok()?;
    let mut in_out = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .ok()?
        .len();
    in_out.truncate(len);
    Some(in_out)
}

fn seal_aad(id: &str) -> Vec<u8> {
    let mut aad = SEAL_AAD_PREFIX.to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn io_unavailable(what: &str, e: io::Error) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

impl FileKeystore {
    /// Opens (creating it with mode 0700 if needed) the key directory `dir`, with
    /// the KEK `kek` (32 bytes).
    pub fn open(dir: &Path, kek: &[u8]) -> std::result::Result<Self, String> {
        if kek.len() != KEY_LEN {
            return Err("the KEK must be 32 bytes".into());
        }
        if !dir.exists() {
            fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create key directory {}: {e}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot restrict key directory {}: {e}", dir.display()))?;
        }
        let meta =
            fs::metadata(dir).map_err(|e| format!("key directory {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!(
                "key directory {} is not a directory",
                dir.display()
            ));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                "the key directory is accessible by group or others; chmod 700 is recommended"
            );
        }
        Ok(Self {
            dir: dir.to_owned(),
            kek: gcm_key(kek),
            write_lock: Mutex::new(()),
        })
    }

    fn key_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    /// The key directory is there and readable.
    pub fn health(&self) -> Result<()> {
        fs::read_dir(&self.dir)
            .map(|_| ())
            .map_err(|e| io_unavailable("key directory unreadable", e))
    }

    fn load(&self, id: &str) -> Result<KeyFile> {
        let path = self.key_path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("key {id} does not exist")))
            }
            Err(e) => return Err(io_unavailable(&format!("key {id} unreadable"), e)),
        };
        let file: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("key file of {id} is damaged: {e}")))?;
        if file.format != KEY_FILE_FORMAT || file.id != id {
            return Err(Error::Corrupt(format!("key file of {id} is damaged")));
        }
        Ok(file)
    }

    fn unseal(&self, file: &KeyFile) -> Result<LessSafeKey> {
        let sealed = hex::decode(&file.sealed)
            .map_err(|_| Error::Corrupt(format!("key file of {} is damaged", file.id)))?;
        let material = open(&self.kek, &sealed, &seal_aad(&file.id)).ok_or_else(|| {
            Error::Corrupt(format!(
                "key {} does not open under the configured KEK (wrong KEK file?)",
                file.id
            ))
        })?;
        if material.len() != KEY_LEN {
            return Err(Error::Corrupt(format!(
                "key file of {} is damaged",
                file.id
            )));
        }
        Ok(gcm_key(&material))
    }

    /// The usable key behind `handle`: exists, enabled, opens under the KEK.
    fn usable_key(&self, handle: &Handle) -> Result<LessSafeKey> {
        let file = self.load(&handle.id)?;
        if !file.enabled {
            return Err(Error::Disabled(format!("key {} is disabled", handle.id)));
        }
        self.unseal(&file)
    }

    fn write_atomic(&self, id: &str, file: &KeyFile) -> Result<()> {
        let json = serde_json::to_vec_pretty(file).expect("key file serialises");
        let target = self.key_path(id);
        let tmp = self.dir.join(format!(
            ".{id}.tmp-{}",
            hex::encode(random_bytes(6).as_slice())
        ));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &target)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_unavailable(&format!("cannot write key {id}"), e)
        })
    }

    fn store_new(&self, label: &str, origin: &str, material: &[u8]) -> Result<Handle> {
        let id = hex::encode(random_bytes(16).as_slice());
        let sealed = seal(&self.kek, material, &seal_aad(&id));
        let file = KeyFile {
            format: KEY_FILE_FORMAT,
            id: id.clone(),
            label: label.to_owned(),
            origin: origin.to_owned(),
            enabled: true,
            sealed: hex::encode(sealed),
        };
        self.write_atomic(&id, &file)?;
        tracing::info!(key = %id, label, origin, "stored a new key");
        Ok(Handle {
            kind: HandleKind::Owned,
            id,
        })
    }

    /// Generates a new key.
    pub fn create(&self, label: &str) -> Result<Handle> {
        let material = random_bytes(KEY_LEN);
        self.store_new(label, "generated", &material)
    }

    /// Imports 32 bytes of key material.
    pub fn import(&self, label: &str, material: &[u8]) -> Result<Handle> {
        if material.len() != KEY_LEN {
            return Err(Error::Invalid(format!(
                "key material must be {KEY_LEN} bytes, got {}",
                material.len()
            )));
        }
        self.store_new(label, "imported", material)
    }

    /// Refers to an existing key by its id.
    pub fn reference(&self, reference: &str) -> Result<Handle> {
        let id = reference.trim();
        if !valid_id(id) {
            return Err(Error::Invalid(
                "a reference is a key id: 32 lowercase hex digits".into(),
            ));
        }
        let handle = Handle {
            kind: HandleKind::Reference,
            id: id.to_owned(),
        };
        self.usable_key(&handle)?;
        tracing::info!(key = %id, "referenced an existing key");
        Ok(handle)
    }

    /// Whether the key is usable, without using it.
    pub fn check(&self, handle: &Handle) -> Result<()> {
        self.usable_key(handle).map(|_| ())
    }

    /// Sets the key's enabled flag.
    pub fn set_enabled(&self, handle: &Handle, enabled: bool) -> Result<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = self.load(&handle.id)?;
        if file.enabled != enabled {
            file.enabled = enabled;
            self.write_atomic(&handle.id, &file)?;
            tracing::info!(key = %handle.id, enabled, "changed a key's state");
        }
        Ok(())
    }

    /// Deletes an owned key (idempotent); a reference changes nothing.
    pub fn destroy(&self, handle: &Handle) -> Result<()> {
        if handle.kind == HandleKind::Reference {
            tracing::info!(key = %handle.id, "destroy of a referenced key: nothing to do");
            return Ok(());
        }
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        match fs::remove_file(self.key_path(&handle.id)) {
            Ok(()) => {
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_unavailable("cannot sync the key directory", e))?;
                tracing::info!(key = %handle.id, "destroyed a key");
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_unavailable(
                &format!("cannot delete key {}", handle.id),
                e,
            )),
        }
    }

    /// Wraps `plaintext` under the key, binding `aad`.
    pub fn wrap(&self, handle: &Handle, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_WRAP_LEN {
            return Err(Error::Invalid(format!(
                "plaintext too long: at most {MAX_WRAP_LEN} bytes"
            )));
        }
        let key = self.usable_key(handle)?;
        Ok(seal(&key, plaintext, aad))
    }

    /// Unwraps a blob made by [`FileKeystore::wrap`].
    pub fn unwrap(
        &self,
        handle: &Handle,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.usable_key(handle)?;
        open(&key, wrapped, aad).ok_or(Error::BadBlob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_reject_foreign_bytes() {
        let h = Handle {
            kind: HandleKind::Reference,
            id: "0123456789abcdef0123456789abcdef".into(),
        };
        assert_eq!(Handle::parse(&h.to_bytes()).unwrap(), h);
        for bad in [
            &b"x1:0123456789abcdef0123456789abcdef"[..],
            b"o1:0123",
            b"o1:0123456789ABCDEF0123456789ABCDEF",
            b"o1:../../../../etc/passwd0000000000",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(Handle::parse(bad), Err(Error::NotFound(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_kek() {
        let dir = tempfile::tempdir().unwrap();
        let keystore = FileKeystore::open(dir.path(), &[0xab; KEY_LEN]).unwrap();
        let shown = format!("{keystore:?}");
        assert!(shown.contains("FileKeystore"), "{shown}");
        assert!(
            !shown.contains("171, 171") && !shown.to_lowercase().contains("abab"),
            "{shown}"
        );
    }

    #[test]
    fn seal_open_binds_aad() {
        let key = gcm_key(&[7u8; 32]);
        let blob = seal(&key, b"secret", b"aad");
        assert_eq!(blob.len(), NONCE_LEN + 6 + TAG_LEN);
        assert_eq!(open(&key, &blob, b"aad").unwrap().as_slice(), b"secret");
        assert!(open(&key, &blob, b"other").is_none());
        assert!(open(&key, &blob[..NONCE_LEN + TAG_LEN - 1], b"aad").is_none());
    }
}
