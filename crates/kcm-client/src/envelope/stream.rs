//! The envelope body: the chunk stream of `kcm-aead-stream` under the data key, with
//! the whole header as the associated data of every chunk.

use std::io::{Read, Write};

use kcm_aead_stream::{ChunkSize, NoncePrefix, Stream, StreamKey};

use super::{DataKey, EnvelopeError, Header, CHUNK_SIZE};

/// Encrypts everything from `reader` into an envelope written to `writer`.
///
/// `data_key` is the plaintext data key, `wrapped_data_key` its KMS ciphertext blob
/// and `key_id` the KMS key that wrapped it. `progress` is called after each chunk
/// with the total plaintext bytes so far. Returns the total plaintext bytes.
pub fn encrypt_stream(
    reader: &mut impl Read,
    writer: &mut impl Write,
    data_key: &DataKey,
    wrapped_data_key: &[u8],
    key_id: &str,
    progress: impl FnMut(u64),
) -> Result<u64, EnvelopeError> {
    let header = Header::new(wrapped_data_key, key_id, CHUNK_SIZE, NoncePrefix::random()?)?;
    encrypt_with_header(reader, writer, data_key, &header, progress)
}

/// [`encrypt_stream`] under a given header (a fixed nonce prefix and chunk size in
/// the format tests).
pub(super) fn encrypt_with_header(
    reader: &mut impl Read,
    writer: &mut impl Write,
    data_key: &DataKey,
    header: &Header,
    progress: impl FnMut(u64),
) -> Result<u64, EnvelopeError> {
    let body = body(data_key, header)?;
    writer.write_all(header.as_bytes())?;
    Ok(body.encrypt(reader, writer, progress)?)
}

/// Decrypts the chunks following `header` (from [`super::read_header`]) into `writer`.
///
/// Each chunk is authenticated before its plaintext is written. Fails on a
/// missing final chunk, trailing data, any modification, or the wrong key.
/// `progress` gets the total plaintext bytes so far. Returns the total.
pub fn decrypt_body(
    reader: &mut impl Read,
    writer: &mut impl Write,
    data_key: &DataKey,
    header: &Header,
    progress: impl FnMut(u64),
) -> Result<u64, EnvelopeError> {
    Ok(body(data_key, header)?.decrypt(reader, writer, progress)?)
}

/// The stream of the body of an envelope with `header`, under `data_key`.
fn body<'a>(data_key: &DataKey, header: &'a Header) -> Result<Stream<'a>, EnvelopeError> {
    Ok(Stream::new(
        StreamKey::new(data_key.expose_secret())?,
        header.nonce_prefix,
        ChunkSize::new(header.chunk_size)?,
        header.as_bytes(),
    ))
}
