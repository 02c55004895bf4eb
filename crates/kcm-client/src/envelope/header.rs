//! Writing and reading the envelope header.

use std::io::Read;

use kcm_aead_stream::{ChunkSize, NoncePrefix};

use super::{EnvelopeError, MAGIC, MAX_KEY_ID_LEN, MAX_WRAPPED_KEY_LEN};

/// Size of the fixed part of the header: magic, chunk size, nonce prefix, two lengths.
const FIXED_LEN: usize = 8 + 4 + 7 + 2 + 4;

/// A parsed envelope header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The KMS ciphertext blob of the data key (pass it to KMS `Decrypt`).
    pub wrapped_data_key: Vec<u8>,
    /// The KMS key id recorded when the file was written.
    pub key_id: String,
    /// Plaintext bytes per full chunk.
    pub chunk_size: u32,
    pub(super) nonce_prefix: NoncePrefix,
    /// The exact header bytes (the associated data of every chunk).
    pub(super) raw: Vec<u8>,
}

impl Header {
    /// Builds a header; fails when the key id or wrapped key is too long.
    pub(super) fn new(
        wrapped_data_key: &[u8],
        key_id: &str,
        chunk_size: u32,
        nonce_prefix: NoncePrefix,
    ) -> Result<Self, EnvelopeError> {
        if key_id.len() > MAX_KEY_ID_LEN {
            return Err(EnvelopeError::InvalidHeader(format!(
                "key id longer than {MAX_KEY_ID_LEN} bytes"
            )));
        }
        if wrapped_data_key.len() > MAX_WRAPPED_KEY_LEN {
            return Err(EnvelopeError::InvalidHeader(format!(
                "wrapped data key longer than {MAX_WRAPPED_KEY_LEN} bytes"
            )));
        }
        let mut raw = Vec::with_capacity(FIXED_LEN + key_id.len() + wrapped_data_key.len());
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&chunk_size.to_be_bytes());
        raw.extend_from_slice(nonce_prefix.as_bytes());
        raw.extend_from_slice(&(key_id.len() as u16).to_be_bytes());
        raw.extend_from_slice(&(wrapped_data_key.len() as u32).to_be_bytes());
        raw.extend_from_slice(key_id.as_bytes());
        raw.extend_from_slice(wrapped_data_key);
        Ok(Self {
            wrapped_data_key: wrapped_data_key.to_vec(),
            key_id: key_id.to_owned(),
            chunk_size,
            nonce_prefix,
            raw,
        })
    }

    /// The header as written to the file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
}

fn read_exact_or_truncated(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), EnvelopeError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => EnvelopeError::Truncated("inside the header"),
        _ => EnvelopeError::Io(e),
    })
}

/// Reads and checks the header, leaving `reader` at the first chunk.
///
/// The header is not authenticated yet: it is, with the first chunk, by
/// [`super::decrypt_body`].
pub fn read_header(reader: &mut impl Read) -> Result<Header, EnvelopeError> {
    let mut fixed = [0u8; FIXED_LEN];
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => EnvelopeError::NotAnEnvelope,
        _ => EnvelopeError::Io(e),
    })?;
    if &magic != MAGIC {
        return Err(EnvelopeError::NotAnEnvelope);
    }
    fixed[..8].copy_from_slice(&magic);
    read_exact_or_truncated(reader, &mut fixed[8..])?;
    let chunk_size = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    let mut nonce_prefix = [0u8; 7];
    nonce_prefix.copy_from_slice(&fixed[12..19]);
    let key_id_len = u16::from_be_bytes([fixed[19], fixed[20]]) as usize;
    let wrapped_len = u32::from_be_bytes([fixed[21], fixed[22], fixed[23], fixed[24]]) as usize;
    ChunkSize::new(chunk_size)?;
    if key_id_len > MAX_KEY_ID_LEN || wrapped_len > MAX_WRAPPED_KEY_LEN {
        return Err(EnvelopeError::InvalidHeader(
            "key id or wrapped data key too long".into(),
        ));
    }
    let mut key_id = vec![0u8; key_id_len];
    read_exact_or_truncated(reader, &mut key_id)?;
    let key_id = String::from_utf8(key_id)
        .map_err(|_| EnvelopeError::InvalidHeader("key id is not UTF-8".into()))?;
    let mut wrapped = vec![0u8; wrapped_len];
    read_exact_or_truncated(reader, &mut wrapped)?;
    Header::new(
        &wrapped,
        &key_id,
        chunk_size,
        NoncePrefix::from_bytes(nonce_prefix),
    )
}
