//! # kcm-aead-stream
//!
//! One job: the chunked authenticated encryption that kcm's backup archives
//! (`KCMBAK1`, `kcm_core::backup`) and envelope files (`KCMENV1`, `kcm encrypt`) wrap
//! their bodies in. Each format owns its header; this crate owns what follows it.
//! Pure `std::io` and aws-lc-rs: it opens no file and knows neither format.
//!
//! # The stream
//!
//! Inputs: a 256-bit key `K` ([`StreamKey`]), a 7-byte nonce prefix `P`
//! ([`NoncePrefix`], random and fresh for every stream), a chunk size `C` in
//! `1..=16 MiB` ([`ChunkSize`]), and associated data `A` (in both formats: the exact
//! header bytes).
//!
//! * The plaintext is cut into chunks. Every chunk but the last holds exactly `C`
//!   bytes; the last holds fewer, possibly none: a plaintext whose length is a
//!   multiple of `C` (the empty one included) ends with an empty chunk. A plaintext of
//!   `n` bytes is `n / C + 1` chunks, at most 2³².
//! * Chunk `i` (from 0) is sealed with AES-256-GCM under `K`, with the 12-byte nonce
//!   `P ‖ i ‖ L` (`i` as a big-endian `u32`; `L` one byte, `0x01` for the last chunk and
//!   `0x00` for the others) and the associated data `A`.
//! * The stream is the sealed chunks one after the other, each its ciphertext (as long
//!   as its plaintext) then its 16-byte tag. Nothing else: no length, no count, no
//!   marker.
//!
//! This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, 2015), which
//! makes the stream as a whole authenticated, not only each chunk: a changed header
//! fails every chunk (it is `A`); reordered, dropped or repeated chunks fail (`i` is in
//! the nonce); a stream cut at a chunk boundary fails (no chunk was sealed with
//! `L = 1`), and so do bytes appended after the last chunk.
//!
//! # Reading
//!
//! [`Stream::decrypt`] reads a stream of unknown length (the envelope): it reads up to
//! `C + 16` bytes at a time, and a short read is the last chunk.
//! [`Stream::decrypt_exact`] reads a stream whose plaintext length the format states
//! (the archive's `payload_len`): it reads exactly the chunks that length implies and
//! then requires the end of the input, so a cut is reported as [`Error::Truncated`]
//! rather than as an authentication failure.
//!
//! Both authenticate each chunk before writing any of its plaintext, hold one buffer
//! of at most `C + 16` bytes (so at most 16 MiB + 16 whatever the input says), and
//! zeroize it when done. A failure can still come after earlier chunks were written:
//! callers that must not act on part of a stream write to a temporary place first.

mod stream;

pub use stream::Stream;

use std::io::Read;

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};

/// Bytes of a [`StreamKey`].
pub const KEY_LEN: usize = 32;
/// Bytes of a [`NoncePrefix`].
pub const NONCE_PREFIX_LEN: usize = 7;
/// Bytes of the tag that follows each chunk's ciphertext.
pub const TAG_LEN: usize = 16;
/// The largest chunk size [`ChunkSize::new`] accepts: a bound on what one read
/// allocates, whatever a (possibly hostile) header says.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Why a stream could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The key is not [`KEY_LEN`] bytes.
    #[error("the stream key must be {KEY_LEN} bytes, not {len}")]
    InvalidKey {
        /// The given length.
        len: usize,
    },
    /// The nonce prefix is not [`NONCE_PREFIX_LEN`] bytes.
    #[error("the nonce prefix must be {NONCE_PREFIX_LEN} bytes, not {len}")]
    InvalidNoncePrefix {
        /// The given length.
        len: usize,
    },
    /// The chunk size is 0 or over [`MAX_CHUNK_SIZE`].
    #[error("chunk size {0} is not in 1..={MAX_CHUNK_SIZE}")]
    InvalidChunkSize(u32),
    /// The system's random generator failed.
    #[error("the random generator failed")]
    Random,
    /// More than 2³² chunks: the counter in the nonce would repeat.
    #[error("too large for one stream (more than 2^32 chunks)")]
    TooLarge,
    /// AES-GCM refused to seal a chunk.
    #[error("AES-GCM sealing failed")]
    Sealing,
    /// The input ended inside chunk `chunk` (counting from 0), or before it.
    #[error("the input ends in chunk {chunk}")]
    Truncated {
        /// The chunk that is missing or incomplete.
        chunk: u32,
    },
    /// Chunk `chunk` did not authenticate: the wrong key or header, or the stream was
    /// modified, reordered, cut or extended.
    #[error("chunk {chunk} failed authentication")]
    Authentication {
        /// The chunk that failed.
        chunk: u32,
    },
    /// Bytes follow the last chunk of a stream of known length.
    #[error("there are bytes after the final chunk")]
    TrailingData,
}

/// The AES-256-GCM key of a stream. Held by aws-lc-rs in AWS-LC memory, which is
/// cleared when the key is dropped; `Debug` shows nothing.
pub struct StreamKey(LessSafeKey);

impl StreamKey {
    /// The key whose bytes are `key` ([`KEY_LEN`] of them).
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        if key.len() != KEY_LEN {
            return Err(Error::InvalidKey { len: key.len() });
        }
        UnboundKey::new(&AES_256_GCM, key)
            .map(|k| Self(LessSafeKey::new(k)))
            .map_err(|_| Error::InvalidKey { len: key.len() })
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

/// The first 7 bytes of every chunk's nonce. Not secret (both formats store it in
/// their header), but it must never be used twice with one key: write every stream
/// with a fresh [`NoncePrefix::random`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoncePrefix([u8; NONCE_PREFIX_LEN]);

impl NoncePrefix {
    /// A fresh random prefix, for a new stream.
    pub fn random() -> Result<Self, Error> {
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        aws_lc_rs::rand::fill(&mut prefix).map_err(|_| Error::Random)?;
        Ok(Self(prefix))
    }

    /// The prefix a stream was written with (read from its format's header).
    pub fn from_bytes(prefix: [u8; NONCE_PREFIX_LEN]) -> Self {
        Self(prefix)
    }

    /// The prefix's bytes, as a header stores them.
    pub fn as_bytes(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.0
    }
}

impl TryFrom<&[u8]> for NoncePrefix {
    type Error = Error;

    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| Error::InvalidNoncePrefix { len: bytes.len() })
    }
}

/// Plaintext bytes per full chunk: in `1..=`[`MAX_CHUNK_SIZE`], so a chunk is never
/// empty by design and one read never allocates more than 16 MiB + 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSize(u32);

impl ChunkSize {
    /// `size`, if it is in `1..=`[`MAX_CHUNK_SIZE`].
    pub fn new(size: u32) -> Result<Self, Error> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(Error::InvalidChunkSize(size));
        }
        Ok(Self(size))
    }

    /// The size in bytes.
    pub fn get(self) -> u32 {
        self.0
    }

    /// How many chunks a plaintext of `plaintext_len` bytes is: `len / C + 1` (the
    /// last one short, possibly empty). [`Error::TooLarge`] past 2³².
    pub fn chunk_count(self, plaintext_len: u64) -> Result<u64, Error> {
        let full = plaintext_len / u64::from(self.0);
        if full >= 1 << 32 {
            return Err(Error::TooLarge);
        }
        Ok(full + 1)
    }

    /// Bytes of the stream that holds `plaintext_len` bytes of plaintext: the
    /// plaintext plus one tag per chunk.
    pub fn sealed_len(self, plaintext_len: u64) -> Result<u64, Error> {
        let tags = self.chunk_count(plaintext_len)? * TAG_LEN as u64;
        plaintext_len.checked_add(tags).ok_or(Error::TooLarge)
    }
}

/// Reads until `buf` is full or the input ends, retrying interrupted reads; returns
/// the bytes read. What the stream reads its chunks with, offered so a format reads
/// its header the same way (a short read is the end of the input, not an error).
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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

#[cfg(test)]
mod tests;
