//! Sealing and opening the chunks of one stream (the format is in the crate's
//! documentation).

use std::io::{Read, Write};

use aws_lc_rs::aead::{Aad, Nonce, Tag};
use zeroize::Zeroizing;

use crate::{read_full, ChunkSize, Error, NoncePrefix, StreamKey, NONCE_PREFIX_LEN, TAG_LEN};

/// One stream: its key, nonce prefix, chunk size and associated data. Made by the
/// writer from a fresh [`NoncePrefix::random`], and by the reader from what the
/// format's header says.
#[derive(Debug)]
pub struct Stream<'a> {
    key: StreamKey,
    nonce_prefix: NoncePrefix,
    chunk_size: ChunkSize,
    aad: &'a [u8],
}

impl<'a> Stream<'a> {
    /// The stream under `key` with `nonce_prefix`, `chunk_size` plaintext bytes per
    /// full chunk, and `aad` as the associated data of every chunk.
    pub fn new(
        key: StreamKey,
        nonce_prefix: NoncePrefix,
        chunk_size: ChunkSize,
        aad: &'a [u8],
    ) -> Self {
        Self {
            key,
            nonce_prefix,
            chunk_size,
            aad,
        }
    }

    /// Encrypts everything `reader` yields into `writer`, then flushes it. `progress`
    /// gets the plaintext bytes written so far after each chunk. Returns the total.
    pub fn encrypt(
        &self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, Error> {
        let chunk_size = self.chunk_size.get() as usize;
        let mut buf = Zeroizing::new(vec![0u8; chunk_size]);
        let total = each_chunk(&mut progress, |counter| {
            let n = read_full(reader, &mut buf)?;
            // A short read is the end of the input: this chunk is the last.
            let last = n < chunk_size;
            let tag = self.seal(counter, last, &mut buf[..n])?;
            writer.write_all(&buf[..n])?;
            writer.write_all(tag.as_ref())?;
            Ok((n, last))
        })?;
        writer.flush()?;
        Ok(total)
    }

    /// Decrypts a stream of unknown length from `reader` into `writer`, chunk by chunk:
    /// the last chunk is the one shorter than a full sealed chunk. Each chunk is
    /// authenticated before its plaintext is written. `progress` gets the plaintext
    /// bytes written so far. Returns the total.
    ///
    /// Fails with [`Error::Truncated`] when the input ends where a chunk should
    /// start, and with [`Error::Authentication`] for any other damage (a cut inside a
    /// chunk, bytes appended, a modification, the wrong key or associated data).
    pub fn decrypt(
        &self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, Error> {
        let sealed_len = self.chunk_size.get() as usize + TAG_LEN;
        let mut buf = Zeroizing::new(vec![0u8; sealed_len]);
        let total = each_chunk(&mut progress, |counter| {
            let n = read_full(reader, &mut buf)?;
            if n < TAG_LEN {
                return Err(Error::Truncated { chunk: counter });
            }
            let last = n < sealed_len;
            let plaintext = self.open(counter, last, &mut buf[..n])?;
            writer.write_all(plaintext)?;
            Ok((plaintext.len(), last))
        })?;
        writer.flush()?;
        Ok(total)
    }

    /// Decrypts a stream whose plaintext is `plaintext_len` bytes from `reader` into
    /// `writer`: exactly the chunks that length implies, each authenticated before its
    /// plaintext is written, then the input must end. `progress` gets the plaintext
    /// bytes written so far. Returns the total (`plaintext_len`).
    ///
    /// Fails with [`Error::Truncated`] when the input ends early (wherever it is cut),
    /// [`Error::TrailingData`] when bytes follow the last chunk, and
    /// [`Error::Authentication`] for a chunk that does not authenticate.
    pub fn decrypt_exact(
        &self,
        plaintext_len: u64,
        reader: &mut impl Read,
        writer: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, Error> {
        let count = self.chunk_size.chunk_count(plaintext_len)?;
        let chunk_size = self.chunk_size.get() as usize;
        let last_len = (plaintext_len % u64::from(self.chunk_size.get())) as usize;
        // One buffer for every chunk, no larger than the first one needs: a short
        // stream costs little whatever chunk size its (not yet authenticated) header
        // claims.
        let first_len = if count == 1 { last_len } else { chunk_size };
        let mut buf = Zeroizing::new(vec![0u8; first_len + TAG_LEN]);
        let total = each_chunk(&mut progress, |counter| {
            let last = u64::from(counter) + 1 == count;
            let plain_len = if last { last_len } else { chunk_size };
            let sealed = &mut buf[..plain_len + TAG_LEN];
            if read_full(reader, sealed)? < sealed.len() {
                return Err(Error::Truncated { chunk: counter });
            }
            let plaintext = self.open(counter, last, sealed)?;
            writer.write_all(plaintext)?;
            Ok((plaintext.len(), last))
        })?;
        if read_full(reader, &mut [0u8; 1])? > 0 {
            return Err(Error::TrailingData);
        }
        writer.flush()?;
        Ok(total)
    }

    /// The nonce of chunk `counter`: prefix ‖ counter (big-endian) ‖ last flag.
    fn nonce(&self, counter: u32, last: bool) -> Nonce {
        let mut nonce = [0u8; NONCE_PREFIX_LEN + 5];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(self.nonce_prefix.as_bytes());
        nonce[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
        nonce[NONCE_PREFIX_LEN + 4] = u8::from(last);
        Nonce::assume_unique_for_key(nonce)
    }

    /// Seals `chunk` in place and returns its tag.
    fn seal(&self, counter: u32, last: bool, chunk: &mut [u8]) -> Result<Tag, Error> {
        self.key
            .0
            .seal_in_place_separate_tag(self.nonce(counter, last), Aad::from(self.aad), chunk)
            .map_err(|_| Error::Sealing)
    }

    /// Opens `sealed` (ciphertext ‖ tag) in place; returns the plaintext part.
    fn open<'b>(&self, counter: u32, last: bool, sealed: &'b mut [u8]) -> Result<&'b [u8], Error> {
        self.key
            .0
            .open_in_place(self.nonce(counter, last), Aad::from(self.aad), sealed)
            .map(|plaintext| &*plaintext)
            .map_err(|_| Error::Authentication { chunk: counter })
    }
}

/// Runs `chunk` on chunk 0, 1, … until it reports the last one. `chunk` returns the
/// plaintext bytes it handled and whether it was the last chunk; `progress` gets the
/// running total after each. Returns the total. [`Error::TooLarge`] if the counter
/// would pass `u32::MAX` (it would then repeat a nonce).
fn each_chunk(
    progress: &mut impl FnMut(u64),
    mut chunk: impl FnMut(u32) -> Result<(usize, bool), Error>,
) -> Result<u64, Error> {
    let mut total = 0u64;
    let mut counter = 0u32;
    loop {
        let (n, last) = chunk(counter)?;
        total += n as u64;
        progress(total);
        if last {
            return Ok(total);
        }
        counter = counter.checked_add(1).ok_or(Error::TooLarge)?;
    }
}
