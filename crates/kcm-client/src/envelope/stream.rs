//! Sealing and opening the chunk stream.

use std::io::{Read, Write};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use super::{DataKey, EnvelopeError, Header, CHUNK_SIZE};

const TAG_LEN: usize = 16;

fn aead_key(data_key: &DataKey) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, data_key.expose_secret())
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::InvalidDataKey { len: 32 })
}

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

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
    let mut prefix = [0u8; 7];
    aws_lc_rs::rand::fill(&mut prefix)
        .map_err(|_| std::io::Error::other("the random generator failed"))?;
    let header = Header::new(wrapped_data_key, key_id, CHUNK_SIZE, prefix)?;
    encrypt_with_header(reader, writer, data_key, &header, progress)
}

/// [`encrypt_stream`] under a given header (a fixed nonce prefix and chunk size in
/// the format tests).
pub(super) fn encrypt_with_header(
    reader: &mut impl Read,
    writer: &mut impl Write,
    data_key: &DataKey,
    header: &Header,
    mut progress: impl FnMut(u64),
) -> Result<u64, EnvelopeError> {
    writer.write_all(header.as_bytes())?;

    let key = aead_key(data_key)?;
    let chunk_size = header.chunk_size as usize;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; chunk_size]);
    let mut total = 0u64;
    let mut counter = 0u32;
    loop {
        let n = read_full(reader, &mut buf)?;
        let last = n < chunk_size;
        let tag = key
            .seal_in_place_separate_tag(
                nonce(&header.nonce_prefix, counter, last),
                Aad::from(header.as_bytes()),
                &mut buf[..n],
            )
            .map_err(|_| std::io::Error::other("AES-GCM sealing failed"))?;
        writer.write_all(&buf[..n])?;
        writer.write_all(tag.as_ref())?;
        total += n as u64;
        progress(total);
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(EnvelopeError::TooLarge)?;
    }
    writer.flush()?;
    Ok(total)
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
    mut progress: impl FnMut(u64),
) -> Result<u64, EnvelopeError> {
    let key = aead_key(data_key)?;
    let sealed_len = header.chunk_size as usize + TAG_LEN;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; sealed_len]);
    let mut total = 0u64;
    let mut counter = 0u32;
    loop {
        let n = read_full(reader, &mut buf)?;
        if n < TAG_LEN {
            return Err(EnvelopeError::Truncated("the final chunk is missing"));
        }
        let last = n < sealed_len;
        let plaintext = key
            .open_in_place(
                nonce(&header.nonce_prefix, counter, last),
                Aad::from(header.as_bytes()),
                &mut buf[..n],
            )
            .map_err(|_| EnvelopeError::Authentication { chunk: counter })?;
        writer.write_all(plaintext)?;
        total += plaintext.len() as u64;
        progress(total);
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(EnvelopeError::TooLarge)?;
    }
    writer.flush()?;
    Ok(total)
}
