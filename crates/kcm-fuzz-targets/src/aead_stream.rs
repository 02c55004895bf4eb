//! The chunked AEAD stream of archives and envelopes (`crates/kcm-aead-stream`):
//! [`Stream::decrypt_exact`] and [`Stream::decrypt`] on bytes that did not come
//! from [`Stream::encrypt`].
//!
//! The input is `chunk size (u16 BE) ‖ plaintext length (u64 BE) ‖ sealed stream`,
//! under a fixed key, nonce prefix and associated data. A chunk size of 0 or a
//! length the size cannot reach must be refused, not panic or allocate by it.
//! Then a property on the stream bytes as plaintext: encrypting them and
//! decrypting the result with either reader gives them back, and the sealed
//! stream cut by one byte is refused by both.

use kcm_aead_stream::{ChunkSize, NoncePrefix, Stream, StreamKey};

/// Streams have no size limit; 64 KiB is thousands of small chunks.
pub const MAX_LEN: usize = 64 * 1024;
/// The key of the stream.
pub const KEY: [u8; 32] = [0x44; 32];
/// The nonce prefix of the stream.
pub const PREFIX: [u8; 7] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6];
/// The associated data of every chunk.
pub const AAD: &[u8] = b"kcm-fuzz-aead-stream";

fn stream(chunk_size: ChunkSize) -> Stream<'static> {
    Stream::new(
        StreamKey::new(&KEY).expect("a 32-byte key"),
        NoncePrefix::from_bytes(PREFIX),
        chunk_size,
        AAD,
    )
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    if data.len() < 10 {
        return;
    }
    let size = u32::from(u16::from_be_bytes([data[0], data[1]]));
    let plaintext_len = u64::from_be_bytes(data[2..10].try_into().expect("8 bytes"));
    let sealed = &data[10..];
    let Ok(chunk_size) = ChunkSize::new(size) else {
        return;
    };

    let mut out = Vec::new();
    if let Ok(n) =
        stream(chunk_size).decrypt_exact(plaintext_len, &mut &sealed[..], &mut out, |_| {})
    {
        assert_eq!(n, plaintext_len);
        assert_eq!(out.len() as u64, n);
    }
    let mut out = Vec::new();
    if let Ok(n) = stream(chunk_size).decrypt(&mut &sealed[..], &mut out, |_| {}) {
        assert_eq!(out.len() as u64, n);
    }

    let plaintext = sealed;
    let mut sealed = Vec::new();
    let n = stream(chunk_size)
        .encrypt(&mut &plaintext[..], &mut sealed, |_| {})
        .expect("encrypting into memory");
    assert_eq!(n, plaintext.len() as u64);
    assert_eq!(
        chunk_size.sealed_len(n).expect("a small stream"),
        sealed.len() as u64
    );
    let mut out = Vec::new();
    stream(chunk_size)
        .decrypt_exact(n, &mut &sealed[..], &mut out, |_| {})
        .expect("decrypt_exact of a fresh stream");
    assert_eq!(out, plaintext);
    let mut out = Vec::new();
    stream(chunk_size)
        .decrypt(&mut &sealed[..], &mut out, |_| {})
        .expect("decrypt of a fresh stream");
    assert_eq!(out, plaintext);
    let cut = &sealed[..sealed.len() - 1];
    assert!(stream(chunk_size)
        .decrypt_exact(n, &mut &cut[..], &mut Vec::new(), |_| {})
        .is_err());
    assert!(stream(chunk_size)
        .decrypt(&mut &cut[..], &mut Vec::new(), |_| {})
        .is_err());
}
