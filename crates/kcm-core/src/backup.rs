//! Backup archives: one encrypted, integrity-protected file holding a whole
//! [`Snapshot`] of the store.
//!
//! This module is pure: it reads and writes through `std::io` and talks to a
//! keystore only through [`KeystoreProvider`]; it opens no file and knows no HTTP.
//! [`crate::service::Service::backup`] makes archives of a running service;
//! [`restore`] (or [`ArchiveReader`] step by step) brings one back into an empty
//! store, without a running server.
//!
//! # Format (integers big-endian)
//!
//! ```text
//! magic          8 bytes   "KCMBAK1\n"
//! header_len     u32       at most 1 MiB
//! header         header_len bytes of JSON (ArchiveHeader)
//! checksum       32 bytes  SHA-256 of magic || header_len || header
//! body           chunks: AES-256-GCM(plaintext chunk) || 16-byte tag
//! ```
//!
//! The body is the snapshot as JSON, encrypted under a fresh random 256-bit
//! *archive key* with the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár)
//! of `kcm-aead-stream`, as in the envelope format of `kcm encrypt`: chunk `i` (from
//! 0) is sealed with the nonce `nonce_prefix (7 bytes) || i as u32 || last` (`last`
//! is 1 for the final chunk, else 0), and the associated data of **every** chunk is
//! the exact header bytes (`magic || header_len || header`). Every chunk but the last holds exactly
//! `chunk_size` plaintext bytes; the last holds fewer, possibly none. So:
//!
//! * editing the header fails every chunk (it is associated data);
//! * reordering, dropping or duplicating chunks fails (the counter is in the nonce);
//! * truncation fails (no chunk is flagged last, and the header's `payload_len`
//!   says how many bytes must follow), and so do appended bytes.
//!
//! The archive key is wrapped by a root key through its keystore, with associated
//! data that binds it to this archive (its id, creation time, root key id and
//! keystore name); the header records the root key's id, keystore name and opaque
//! handle. The archive therefore holds only wrapped material: restoring it needs
//! that keystore — for the software keystore its master key file or passphrase,
//! for an HSM access to the HSM. The checksum is not a security measure (anyone can
//! recompute it); it lets accidental damage to the header be reported as such
//! instead of as a keystore mismatch.
//!
//! Reading authenticates the **whole** archive (every chunk, and the final one)
//! before it returns anything, so a restore writes nothing from a damaged archive.

mod plaintext;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;

use aws_lc_rs::digest;
use kcm_aead_stream::{read_full, ChunkSize, NoncePrefix, Stream, StreamKey};
use serde::{Deserialize, Serialize};

use self::plaintext::Plaintext;
use crate::crypto::KEY_LEN;
use crate::keystore::{KeystoreError, KeystoreProvider};
use crate::model::{RootKeyRecord, UnixMillis};
use crate::secret::SecretBytes;
use crate::store::{Snapshot, Store, StoreError};

/// The bytes every archive starts with.
pub const MAGIC: &[u8; 8] = b"KCMBAK1\n";
/// The archive format this build writes (and the only one it reads).
pub const FORMAT_VERSION: u32 = 1;
/// Plaintext bytes per full chunk in archives this build writes.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// The only payload encoding so far: the snapshot as JSON.
pub const PAYLOAD_JSON: &str = "json";
/// Largest header accepted.
pub const MAX_HEADER_LEN: u32 = 1024 * 1024;
const CHECKSUM_LEN: usize = 32;
/// Domain separation of the archive key's associated data.
const ARCHIVE_KEY_AAD_PREFIX: &[u8] = b"kcm-backup-archive-key-v1";

/// The archive header: what the archive holds and how to open it. Not secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Archive format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Random id of this archive (bound into the archive key's wrapping).
    pub archive_id: String,
    /// When the snapshot was taken (Unix milliseconds).
    pub created_at: UnixMillis,
    /// Version of the kcm that made it.
    pub kcm_version: String,
    /// The store's schema version; a restore needs a store of the same version.
    pub schema_version: u32,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// Id of the root key that wraps the archive key (the service's own root).
    pub root_key_id: String,
    /// Name of the keystore instance that holds that root key.
    pub keystore: String,
    /// Kind of that keystore (`software`, `pkcs11`, …).
    pub keystore_kind: String,
    /// The root key's opaque keystore handle (for `software`: sealed under the master key).
    #[serde(with = "crate::store::base64_bytes")]
    pub root_key_handle: Vec<u8>,
    /// The archive key, wrapped by the root key.
    #[serde(with = "crate::store::base64_bytes")]
    pub wrapped_archive_key: Vec<u8>,
    /// The keystore's non-secret recovery parameters
    /// ([`KeystoreProvider::recovery_parameters`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore_parameters: Option<serde_json::Value>,
    /// Encoding of the plaintext payload ([`PAYLOAD_JSON`]).
    pub payload: String,
    /// Plaintext payload bytes.
    pub payload_len: u64,
    /// Plaintext bytes per full chunk.
    pub chunk_size: u32,
    /// Nonce prefix of the chunks, hex (7 bytes).
    pub nonce_prefix: String,
}

impl ArchiveHeader {
    /// Total rows in the archive.
    pub fn total_rows(&self) -> u64 {
        self.tables.values().sum()
    }
}

/// Why an archive could not be made, read or restored. Messages name the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The input does not start with [`MAGIC`].
    #[error("not a kcm backup archive (it does not start with the KCMBAK1 magic bytes)")]
    NotAnArchive,
    /// The input ends before the archive does.
    #[error("the archive is truncated: {0}")]
    Truncated(String),
    /// The archive was changed after it was written.
    #[error("the archive was modified: {0}")]
    Modified(String),
    /// The header is not one this build understands.
    #[error("the archive header is invalid: {0}")]
    InvalidHeader(String),
    /// The archive's format version is not one this build reads.
    #[error("the archive has format version {0}; this kcm reads only version {FORMAT_VERSION}")]
    UnsupportedFormat(u32),
    /// The archive key does not unwrap with the keystores given.
    #[error("the archive was made with a different keystore/master key: {0}")]
    WrongKeystore(String),
    /// The keystore could not be reached.
    #[error("the keystore {keystore:?} is unavailable: {detail}")]
    KeystoreUnavailable {
        /// Keystore name.
        keystore: String,
        /// What it said.
        detail: String,
    },
    /// The store refused or failed the restore; nothing was written.
    #[error("cannot restore into the store: {0}")]
    Store(#[from] StoreError),
    /// Reading or writing the archive failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The archive could not be made (serialisation, keystore wrap).
    #[error("cannot make the archive: {0}")]
    Create(String),
}

impl From<BackupError> for crate::error::Error {
    fn from(e: BackupError) -> Self {
        use crate::error::{Error, ErrorKind};
        match e {
            BackupError::KeystoreUnavailable { keystore, detail } => {
                tracing::warn!(%keystore, %detail, "keystore unavailable for a backup");
                Error::new(
                    ErrorKind::KeystoreUnavailable,
                    "the keystore holding the service root key is unavailable; retry later",
                )
            }
            BackupError::Store(e) => e.into(),
            other => Error::internal(other),
        }
    }
}

/// What a restore brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The archive's header.
    pub header: ArchiveHeader,
    /// Rows restored per table, in table order.
    pub tables: Vec<(String, u64)>,
}

/// Associated data binding a wrapped archive key to its archive.
pub fn archive_key_aad(header: &ArchiveHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(ARCHIVE_KEY_AAD_PREFIX);
    for field in [
        header.archive_id.as_bytes(),
        header.root_key_id.as_bytes(),
        header.keystore.as_bytes(),
    ] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&header.created_at.to_be_bytes());
    out.extend_from_slice(&header.format.to_be_bytes());
    out
}

fn stream_key(archive_key: &SecretBytes) -> Result<StreamKey, BackupError> {
    StreamKey::new(archive_key.expose_secret())
        .map_err(|_| BackupError::Modified("its archive key does not have the right length".into()))
}

fn parse_nonce_prefix(hex_text: &str) -> Result<NoncePrefix, BackupError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| NoncePrefix::try_from(b.as_slice()).ok())
        .ok_or_else(|| BackupError::InvalidHeader("nonce_prefix is not 7 bytes of hex".into()))
}

/// The header's chunk size, within the stream's bounds.
fn chunk_size(header: &ArchiveHeader) -> Result<ChunkSize, BackupError> {
    ChunkSize::new(header.chunk_size).map_err(|e| BackupError::InvalidHeader(e.to_string()))
}

/// Number of chunks of the header's payload: every chunk is full but the last, which
/// is short (possibly empty).
fn chunk_count(header: &ArchiveHeader) -> Result<u64, BackupError> {
    chunk_size(header)?
        .chunk_count(header.payload_len)
        .map_err(|_| BackupError::InvalidHeader("the payload is too large".into()))
}

/// The header bytes: `magic || header_len || JSON`.
fn encode_header(header: &ArchiveHeader) -> Result<Vec<u8>, BackupError> {
    let json = serde_json::to_vec(header)
        .map_err(|e| BackupError::Create(format!("cannot encode the header: {e}")))?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|l| *l <= MAX_HEADER_LEN)
        .ok_or_else(|| BackupError::Create("the header is too large".into()))?;
    let mut raw = Vec::with_capacity(12 + json.len());
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&len.to_be_bytes());
    raw.extend_from_slice(&json);
    Ok(raw)
}

fn checksum(raw_header: &[u8]) -> digest::Digest {
    digest::digest(&digest::SHA256, raw_header)
}

/// Serialises `snapshot` and writes the archive to `out`, encrypted under
/// `archive_key`. `header` must already hold the wrapped archive key; its payload
/// fields (`payload`, `payload_len`, `chunk_size`, `nonce_prefix`) are set here.
/// Returns the bytes written.
pub fn write_archive(
    out: &mut impl Write,
    header: ArchiveHeader,
    archive_key: &SecretBytes,
    snapshot: &Snapshot,
) -> Result<u64, BackupError> {
    write_chunked(out, header, archive_key, snapshot, CHUNK_SIZE)
}

fn write_chunked(
    out: &mut impl Write,
    header: ArchiveHeader,
    archive_key: &SecretBytes,
    snapshot: &Snapshot,
    chunk_size: u32,
) -> Result<u64, BackupError> {
    let prefix = NoncePrefix::random().map_err(|e| BackupError::Create(e.to_string()))?;
    write_with_prefix(out, header, archive_key, snapshot, chunk_size, prefix)
}

/// [`write_chunked`] with a given nonce prefix (a fixed one in the format tests).
fn write_with_prefix(
    out: &mut impl Write,
    mut header: ArchiveHeader,
    archive_key: &SecretBytes,
    snapshot: &Snapshot,
    chunk_size: u32,
    prefix: NoncePrefix,
) -> Result<u64, BackupError> {
    let key = stream_key(archive_key)?;
    let chunk_size = ChunkSize::new(chunk_size).map_err(|e| BackupError::Create(e.to_string()))?;
    let mut plaintext = Plaintext::new(chunk_size.get() as usize);
    serde_json::to_writer(&mut plaintext, snapshot)
        .map_err(|e| BackupError::Create(format!("cannot encode the snapshot: {e}")))?;
    header.payload = PAYLOAD_JSON.into();
    header.payload_len = plaintext.len();
    header.chunk_size = chunk_size.get();
    header.nonce_prefix = hex::encode(prefix.as_bytes());
    let body_len = chunk_size
        .sealed_len(header.payload_len)
        .map_err(|_| BackupError::InvalidHeader("the payload is too large".into()))?;

    let raw = encode_header(&header)?;
    out.write_all(&raw)?;
    out.write_all(checksum(&raw).as_ref())?;
    Stream::new(key, prefix, chunk_size, &raw)
        .encrypt(&mut plaintext.reader(), out, |_| {})
        .map_err(|e| match e {
            kcm_aead_stream::Error::Io(e) => BackupError::Io(e),
            other => BackupError::Create(other.to_string()),
        })?;
    Ok((raw.len() + CHECKSUM_LEN) as u64 + body_len)
}

/// Makes the archive of `snapshot`: a fresh archive key, wrapped by `root` through
/// `keystore` (the instance named `root.keystore`), then [`write_archive`].
pub async fn create_archive(
    snapshot: Snapshot,
    root: &RootKeyRecord,
    keystore: &dyn KeystoreProvider,
    created_at: UnixMillis,
) -> Result<Vec<u8>, BackupError> {
    let (header, archive_key) = seal_archive_key(&snapshot, root, keystore, created_at).await?;
    // Serialising and encrypting a large store is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        write_archive(&mut out, header, &archive_key, &snapshot)?;
        Ok(out)
    })
    .await
    .map_err(|e| BackupError::Create(format!("the archive task failed: {e}")))?
}

/// The header of a new archive of `snapshot`, with a fresh archive key wrapped by
/// `root`; returns the header and the plaintext archive key.
async fn seal_archive_key(
    snapshot: &Snapshot,
    root: &RootKeyRecord,
    keystore: &dyn KeystoreProvider,
    created_at: UnixMillis,
) -> Result<(ArchiveHeader, SecretBytes), BackupError> {
    let mut header = ArchiveHeader {
        format: FORMAT_VERSION,
        archive_id: uuid::Uuid::new_v4().to_string(),
        created_at,
        kcm_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: snapshot.schema_version,
        tables: snapshot.row_counts().into_iter().collect(),
        root_key_id: root.id.to_string(),
        keystore: root.keystore.clone(),
        keystore_kind: keystore.kind().into(),
        root_key_handle: root.handle.clone(),
        wrapped_archive_key: Vec::new(),
        keystore_parameters: keystore.recovery_parameters(),
        payload: PAYLOAD_JSON.into(),
        payload_len: 0,
        chunk_size: CHUNK_SIZE,
        nonce_prefix: String::new(),
    };
    let archive_key = SecretBytes::random(KEY_LEN);
    header.wrapped_archive_key = keystore
        .wrap(&root.handle, &archive_key, &archive_key_aad(&header))
        .await
        .map_err(|e| match e {
            KeystoreError::Unavailable(detail) => BackupError::KeystoreUnavailable {
                keystore: root.keystore.clone(),
                detail,
            },
            other => BackupError::Create(format!("cannot wrap the archive key: {other}")),
        })?;
    Ok((header, archive_key))
}

fn header_truncated() -> BackupError {
    BackupError::Truncated("it ends inside its header".into())
}

/// An archive whose header has been read and checked; the body follows in `reader`.
#[derive(Debug)]
pub struct ArchiveReader<R> {
    header: ArchiveHeader,
    raw_header: Vec<u8>,
    reader: R,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the header and its checksum and checks the format, leaving `reader` at
    /// the first chunk. Nothing is authenticated yet: that happens in
    /// [`ArchiveReader::read_snapshot`], which checks every chunk against this header.
    pub fn open(mut reader: R) -> Result<Self, BackupError> {
        let mut magic = [0u8; 8];
        let n = read_full(&mut reader, &mut magic)?;
        if n == 0 {
            return Err(BackupError::Truncated("it is empty".into()));
        }
        if magic[..n] != MAGIC[..n] {
            return Err(BackupError::NotAnArchive);
        }
        if n < MAGIC.len() {
            return Err(header_truncated());
        }
        let mut len = [0u8; 4];
        if read_full(&mut reader, &mut len)? < len.len() {
            return Err(header_truncated());
        }
        let len = u32::from_be_bytes(len);
        if len > MAX_HEADER_LEN {
            return Err(BackupError::InvalidHeader(format!(
                "its length {len} is over the limit of {MAX_HEADER_LEN} bytes \
                 (damaged, or not a kcm archive)"
            )));
        }
        let mut raw = Vec::with_capacity(12 + len as usize);
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&len.to_be_bytes());
        raw.resize(12 + len as usize, 0);
        if read_full(&mut reader, &mut raw[12..])? < len as usize {
            return Err(header_truncated());
        }
        let mut sum = [0u8; CHECKSUM_LEN];
        if read_full(&mut reader, &mut sum)? < CHECKSUM_LEN {
            return Err(header_truncated());
        }
        if checksum(&raw).as_ref() != sum {
            return Err(BackupError::Modified(
                "its header does not match the header checksum".into(),
            ));
        }
        let header: ArchiveHeader = serde_json::from_slice(&raw[12..])
            .map_err(|e| BackupError::InvalidHeader(e.to_string()))?;
        if header.format != FORMAT_VERSION {
            return Err(BackupError::UnsupportedFormat(header.format));
        }
        if header.payload != PAYLOAD_JSON {
            return Err(BackupError::InvalidHeader(format!(
                "unknown payload encoding {:?}",
                header.payload
            )));
        }
        chunk_size(&header)?;
        parse_nonce_prefix(&header.nonce_prefix)?;
        chunk_count(&header)?;
        Ok(Self {
            header,
            raw_header: raw,
            reader,
        })
    }

    /// The header (not yet authenticated).
    pub fn header(&self) -> &ArchiveHeader {
        &self.header
    }

    /// Unwraps the archive key with the keystore named in the header.
    pub async fn unwrap_key(
        &self,
        keystores: &HashMap<String, Arc<dyn KeystoreProvider>>,
    ) -> Result<SecretBytes, BackupError> {
        let h = &self.header;
        let keystore = keystores.get(&h.keystore).ok_or_else(|| {
            let mut names: Vec<_> = keystores.keys().map(String::as_str).collect();
            names.sort_unstable();
            BackupError::WrongKeystore(format!(
                "its key is held by keystore {:?} ({}), which is not configured here \
                 (configured: {})",
                h.keystore,
                h.keystore_kind,
                names.join(", ")
            ))
        })?;
        keystore
            .unwrap(
                &h.root_key_handle,
                &h.wrapped_archive_key,
                &archive_key_aad(h),
            )
            .await
            .map_err(|e| match e {
                KeystoreError::Unavailable(detail) => BackupError::KeystoreUnavailable {
                    keystore: h.keystore.clone(),
                    detail,
                },
                other => BackupError::WrongKeystore(format!(
                    "root key {} in keystore {:?} does not unwrap the archive key ({other}); \
                     use the master key file or passphrase (or HSM) of the server that made \
                     the backup",
                    h.root_key_id, h.keystore
                )),
            })
    }

    /// Decrypts and authenticates the whole body: every chunk, the final-chunk flag,
    /// and that nothing follows. Returns the plaintext only if all of it is intact.
    fn decrypt(&mut self, archive_key: &SecretBytes) -> Result<Plaintext, BackupError> {
        let key = stream_key(archive_key)?;
        let h = &self.header;
        let prefix = parse_nonce_prefix(&h.nonce_prefix)?;
        let chunk_size = chunk_size(h)?;
        let count = chunk_count(h)?;
        // Segments no larger than the payload: the header is not authenticated yet.
        let mut plaintext = Plaintext::new(u64::from(chunk_size.get()).min(h.payload_len) as usize);
        Stream::new(key, prefix, chunk_size, &self.raw_header)
            .decrypt_exact(h.payload_len, &mut self.reader, &mut plaintext, |_| {})
            .map_err(|e| match e {
                kcm_aead_stream::Error::Truncated { chunk } => BackupError::Truncated(format!(
                    "it ends in chunk {chunk} of {count} (the header announces {} bytes of \
                     content)",
                    h.payload_len
                )),
                kcm_aead_stream::Error::Authentication { chunk } => {
                    BackupError::Modified(format!("chunk {chunk} of {count} failed authentication"))
                }
                kcm_aead_stream::Error::TrailingData => {
                    BackupError::Modified("there are bytes after its final chunk".into())
                }
                kcm_aead_stream::Error::Io(e) => BackupError::Io(e),
                other => BackupError::InvalidHeader(other.to_string()),
            })?;
        Ok(plaintext)
    }

    /// Unwraps the archive key, authenticates and decrypts the whole archive, and
    /// decodes the snapshot. Fails without returning anything if any part is wrong.
    pub async fn read_snapshot(
        mut self,
        keystores: &HashMap<String, Arc<dyn KeystoreProvider>>,
    ) -> Result<(ArchiveHeader, Snapshot), BackupError> {
        let archive_key = self.unwrap_key(keystores).await?;
        let plaintext = self.decrypt(&archive_key)?;
        drop(archive_key);
        let snapshot: Snapshot = serde_json::from_reader(plaintext.reader()).map_err(|e| {
            BackupError::InvalidHeader(format!("the content does not decode as a snapshot: {e}"))
        })?;
        drop(plaintext);
        check_tables(&snapshot)?;
        let counts: BTreeMap<String, u64> = snapshot.row_counts().into_iter().collect();
        if snapshot.schema_version != self.header.schema_version || counts != self.header.tables {
            return Err(BackupError::InvalidHeader(
                "the content does not match the schema version and row counts of the header".into(),
            ));
        }
        Ok((self.header, snapshot))
    }
}

/// Refuses a snapshot no store writes: a table named twice (whose rows the header's
/// per-table counts could not account for), or a row with more or fewer cells than
/// its table has columns.
fn check_tables(snapshot: &Snapshot) -> Result<(), BackupError> {
    let mut names = std::collections::BTreeSet::new();
    for table in &snapshot.tables {
        if !names.insert(table.name.as_str()) {
            return Err(BackupError::InvalidHeader(format!(
                "the content names table {:?} twice",
                table.name
            )));
        }
        if let Some(row) = table.rows.iter().find(|r| r.len() != table.columns.len()) {
            return Err(BackupError::InvalidHeader(format!(
                "a row of table {:?} has {} cells for {} columns",
                table.name,
                row.len(),
                table.columns.len()
            )));
        }
    }
    Ok(())
}

/// Restores an archive into an empty `store`: reads and authenticates the **whole**
/// archive first (nothing is written if any byte is wrong), then writes it in one
/// transaction with [`Store::restore_snapshot`].
pub async fn restore<R: Read>(
    reader: R,
    keystores: &HashMap<String, Arc<dyn KeystoreProvider>>,
    store: &dyn Store,
) -> Result<RestoreReport, BackupError> {
    restore_from(ArchiveReader::open(reader)?, keystores, store).await
}

/// [`restore`] for an archive whose header was already read (e.g. to prepare the
/// keystore from [`ArchiveHeader::keystore_parameters`]).
pub async fn restore_from<R: Read>(
    archive: ArchiveReader<R>,
    keystores: &HashMap<String, Arc<dyn KeystoreProvider>>,
    store: &dyn Store,
) -> Result<RestoreReport, BackupError> {
    let (header, snapshot) = archive.read_snapshot(keystores).await?;
    let tables = snapshot.row_counts();
    store.restore_snapshot(snapshot).await?;
    Ok(RestoreReport { header, tables })
}

#[cfg(test)]
mod tests;
