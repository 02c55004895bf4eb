//! The envelope file format: a file of any size encrypted under a data key.
//!
//! The data key comes from KMS `GenerateDataKey`; the file stores its wrapped
//! (KMS-encrypted) form, so decrypting needs KMS `Decrypt` and the right permissions.
//!
//! # Format (all integers big-endian)
//!
//! ```text
//! header:
//!   magic          8 bytes   "KCMENV1\0"
//!   chunk_size     u32       plaintext bytes per full chunk (65536 when written)
//!   nonce_prefix   7 bytes   random, fresh for every file
//!   key_id_len     u16       at most 2048
//!   wrapped_len    u32       at most 65536
//!   key_id         key_id_len bytes, UTF-8 (the KMS key that wrapped the data key)
//!   wrapped_key    wrapped_len bytes (the KMS ciphertext blob of the data key)
//! body: chunks, each AES-256-GCM(plaintext) || 16-byte tag
//! ```
//!
//! The body is the chunk stream of `kcm-aead-stream` (the same as in backup
//! archives): chunk `i` (from 0) is sealed with the data key, the nonce
//! `nonce_prefix || i as u32 || last` (`last` is 1 for the final chunk, else 0) and
//! the whole header as associated data: the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár). Every chunk but the last holds exactly `chunk_size` plaintext
//! bytes; the last holds fewer (possibly zero: an empty input, or an input that is
//! a multiple of `chunk_size`, ends with an empty final chunk). Hence:
//!
//! * header tampering fails every chunk (it is associated data);
//! * reordering, dropping or duplicating chunks fails (the counter is in the nonce);
//! * truncation at a chunk boundary fails (no chunk is flagged last), and so does
//!   appending data (the final chunk would no longer be short).
//!
//! Decryption authenticates each chunk before writing any of its plaintext. Chunks
//! before a failure have been written, so callers should write to a temporary file
//! and keep it only when [`decrypt_body`] succeeds.

mod header;
mod stream;

pub use header::{read_header, Header};
pub use stream::{decrypt_body, encrypt_stream};

use zeroize::Zeroizing;

/// The magic bytes that start every envelope file.
pub const MAGIC: &[u8; 8] = b"KCMENV1\0";
/// The plaintext bytes per chunk that [`encrypt_stream`] writes.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// The largest chunk size [`read_header`] accepts (the stream's own bound).
pub const MAX_CHUNK_SIZE: u32 = kcm_aead_stream::MAX_CHUNK_SIZE;
/// The longest key id the header can carry.
pub const MAX_KEY_ID_LEN: usize = 2048;
/// The longest wrapped data key the header can carry.
pub const MAX_WRAPPED_KEY_LEN: usize = 64 * 1024;

/// A 256-bit plaintext data key, zeroized on drop and never printed.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// Copies a 32-byte key (e.g. `Plaintext` from `GenerateDataKey` with `AES_256`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| EnvelopeError::InvalidDataKey { len: bytes.len() })?;
        Ok(Self(Zeroizing::new(key)))
    }

    pub(crate) fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// Why an envelope could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The input does not start with the envelope magic.
    #[error("not a kcm envelope file (bad magic bytes)")]
    NotAnEnvelope,
    /// The header is malformed or out of bounds.
    #[error("invalid envelope header: {0}")]
    InvalidHeader(String),
    /// The input ended inside the header or without a final chunk.
    #[error("the envelope is truncated: {0}")]
    Truncated(&'static str),
    /// A chunk failed authentication.
    #[error("chunk {chunk} failed authentication: wrong data key, or the file was modified, reordered or truncated")]
    Authentication {
        /// The index of the chunk that failed.
        chunk: u32,
    },
    /// The data key is not 32 bytes.
    #[error("the data key must be 32 bytes, not {len}")]
    InvalidDataKey {
        /// The given length.
        len: usize,
    },
    /// Too many chunks for the 32-bit counter.
    #[error("the input is too large for one envelope")]
    TooLarge,
}

impl From<kcm_aead_stream::Error> for EnvelopeError {
    fn from(e: kcm_aead_stream::Error) -> Self {
        use kcm_aead_stream::Error as E;
        match e {
            E::Io(e) => EnvelopeError::Io(e),
            E::Truncated { .. } => EnvelopeError::Truncated("the final chunk is missing"),
            E::Authentication { chunk } => EnvelopeError::Authentication { chunk },
            E::TooLarge => EnvelopeError::TooLarge,
            E::InvalidKey { len } => EnvelopeError::InvalidDataKey { len },
            E::InvalidChunkSize(_) => EnvelopeError::InvalidHeader(e.to_string()),
            // The random generator, AES-GCM sealing: failures of this machine.
            other => EnvelopeError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests;
