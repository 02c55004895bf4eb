//! Envelope round trips and every kind of tampering.

use super::*;

const CHUNK: usize = CHUNK_SIZE as usize;
const WRAPPED: &[u8] = b"wrapped-data-key-blob";
const KEY_ID: &str = "arn:aws:kms:us-east-1:111122223333:key/1234";

fn key(byte: u8) -> DataKey {
    DataKey::from_slice(&[byte; 32]).unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn seal(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encrypt_stream(&mut &plain[..], &mut out, &key(7), WRAPPED, KEY_ID, |_| {}).unwrap();
    assert_eq!(n, plain.len() as u64);
    out
}

fn open_with(sealed: &[u8], k: &DataKey) -> Result<Vec<u8>, EnvelopeError> {
    let mut reader = sealed;
    let header = read_header(&mut reader)?;
    let mut out = Vec::new();
    decrypt_body(&mut reader, &mut out, k, &header, |_| {})?;
    Ok(out)
}

fn open(sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    open_with(sealed, &key(7))
}

fn header_len() -> usize {
    8 + 4 + 7 + 2 + 4 + KEY_ID.len() + WRAPPED.len()
}

#[test]
fn round_trips_for_every_interesting_size() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
        let plain = data(len);
        let sealed = seal(&plain);
        let chunks = len / CHUNK + 1;
        assert_eq!(sealed.len(), header_len() + len + chunks * 16, "len {len}");
        assert_eq!(open(&sealed).unwrap(), plain, "len {len}");
    }
}

#[test]
fn the_header_carries_the_wrapped_key_and_key_id() {
    let sealed = seal(b"hello");
    assert!(sealed.starts_with(MAGIC));
    let header = read_header(&mut &sealed[..]).unwrap();
    assert_eq!(header.wrapped_data_key, WRAPPED);
    assert_eq!(header.key_id, KEY_ID);
    assert_eq!(header.chunk_size, CHUNK_SIZE);
    // A fresh nonce prefix every time.
    assert_ne!(seal(b"hello"), sealed);
}

#[test]
fn progress_reports_running_totals() {
    let plain = data(2 * CHUNK + 5);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    encrypt_stream(&mut &plain[..], &mut out, &key(7), WRAPPED, KEY_ID, |n| {
        seen.push(n)
    })
    .unwrap();
    assert_eq!(seen, [CHUNK as u64, 2 * CHUNK as u64, plain.len() as u64]);
}

#[test]
fn truncation_at_a_chunk_boundary_is_detected() {
    let plain = data(3 * CHUNK + 17);
    let sealed = seal(&plain);
    for chunks in 0..=3 {
        let cut = header_len() + chunks * (CHUNK + 16);
        assert!(
            matches!(open(&sealed[..cut]), Err(EnvelopeError::Truncated(_))),
            "cut after {chunks} chunks"
        );
    }
    // Cut inside a chunk, and inside the header.
    assert!(open(&sealed[..sealed.len() - 1]).is_err());
    assert!(matches!(
        open(&sealed[..10]),
        Err(EnvelopeError::Truncated(_))
    ));
    // An exact multiple ends with an empty final chunk, which cannot be dropped.
    let sealed = seal(&data(CHUNK));
    assert!(open(&sealed[..sealed.len() - 16]).is_err());
}

#[test]
fn trailing_data_is_detected() {
    for len in [0, 5, CHUNK] {
        let mut sealed = seal(&data(len));
        sealed.push(0);
        assert!(
            matches!(open(&sealed), Err(EnvelopeError::Authentication { .. })),
            "len {len}"
        );
    }
}

#[test]
fn flipped_bits_are_detected() {
    let plain = data(CHUNK + 100);
    let sealed = seal(&plain);
    // Every header byte after the magic and lengths; flipping the lengths or magic
    // breaks parsing instead.
    for i in [
        8,
        12,
        18,
        header_len() - 1,
        header_len() - WRAPPED.len() - 1,
    ] {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert!(open(&bad).is_err(), "header byte {i}");
    }
    let mut bad = sealed.clone();
    bad[0] ^= 1;
    assert!(matches!(open(&bad), Err(EnvelopeError::NotAnEnvelope)));
    for i in [header_len(), header_len() + CHUNK + 15, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x80;
        assert!(
            matches!(open(&bad), Err(EnvelopeError::Authentication { .. })),
            "body byte {i}"
        );
    }
}

#[test]
fn swapped_or_dropped_chunks_are_detected() {
    let sealed = seal(&data(3 * CHUNK + 17));
    let h = header_len();
    let c = CHUNK + 16;
    let mut swapped = sealed[..h].to_vec();
    swapped.extend_from_slice(&sealed[h + c..h + 2 * c]);
    swapped.extend_from_slice(&sealed[h..h + c]);
    swapped.extend_from_slice(&sealed[h + 2 * c..]);
    assert!(matches!(
        open(&swapped),
        Err(EnvelopeError::Authentication { chunk: 0 })
    ));

    let mut dropped = sealed[..h + c].to_vec();
    dropped.extend_from_slice(&sealed[h + 2 * c..]);
    assert!(matches!(
        open(&dropped),
        Err(EnvelopeError::Authentication { chunk: 1 })
    ));
}

#[test]
fn the_wrong_key_is_detected_and_nothing_is_written() {
    let sealed = seal(&data(100));
    let mut reader = &sealed[..];
    let header = read_header(&mut reader).unwrap();
    let mut out = Vec::new();
    let err = decrypt_body(&mut reader, &mut out, &key(8), &header, |_| {}).unwrap_err();
    assert!(matches!(err, EnvelopeError::Authentication { chunk: 0 }));
    assert!(out.is_empty());
    assert!(open_with(&sealed, &key(8)).is_err());
}

#[test]
fn bad_headers_and_keys_are_refused() {
    assert!(matches!(open(b"nope"), Err(EnvelopeError::NotAnEnvelope)));
    let mut sealed = seal(b"x");
    sealed[8..12].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        open(&sealed),
        Err(EnvelopeError::InvalidHeader(_))
    ));
    assert!(matches!(
        DataKey::from_slice(&[0; 16]),
        Err(EnvelopeError::InvalidDataKey { len: 16 })
    ));
    assert_eq!(format!("{:?}", key(1)), "DataKey([REDACTED])");
}

/// Envelopes written by the code before the chunk stream moved to kcm-aead-stream,
/// under `key(7)`, nonce prefix a0..a6, [`WRAPPED`] and [`KEY_ID`]: (file, chunk
/// size, plaintext). Files already on disk must keep opening, and this build must
/// write the same bytes from the same inputs.
fn earlier_envelopes() -> [(&'static [u8], u32, Vec<u8>); 3] {
    [
        // The chunk size `kcm encrypt` writes: one short chunk.
        (
            include_bytes!("testdata/v1-chunk65536-5.kcmenv"),
            CHUNK_SIZE,
            b"hello".to_vec(),
        ),
        // Two full chunks and a short one.
        (
            include_bytes!("testdata/v1-chunk16-40.kcmenv"),
            16,
            data(40),
        ),
        // A multiple of the chunk size: ends with an empty final chunk.
        (
            include_bytes!("testdata/v1-chunk16-32.kcmenv"),
            16,
            data(32),
        ),
    ]
}

const VECTOR_PREFIX: [u8; 7] = [0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6];

#[test]
fn envelopes_written_by_an_earlier_build_still_open() {
    for (file, chunk_size, plain) in earlier_envelopes() {
        let header = read_header(&mut &file[..]).unwrap();
        assert_eq!(header.chunk_size, chunk_size);
        assert_eq!(header.key_id, KEY_ID);
        assert_eq!(open(file).unwrap(), plain, "chunk size {chunk_size}");
    }
}

#[test]
fn this_build_writes_the_bytes_an_earlier_build_wrote() {
    for (file, chunk_size, plain) in earlier_envelopes() {
        let prefix = kcm_aead_stream::NoncePrefix::from_bytes(VECTOR_PREFIX);
        let header = Header::new(WRAPPED, KEY_ID, chunk_size, prefix).unwrap();
        let mut out = Vec::new();
        stream::encrypt_with_header(&mut &plain[..], &mut out, &key(7), &header, |_| {}).unwrap();
        assert!(
            out == file,
            "the envelope format changed (chunk size {chunk_size})"
        );
    }
}
