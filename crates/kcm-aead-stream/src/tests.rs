//! The stream against an independent reading of its format, round trips, and every
//! kind of damage.

use std::io::Read;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use super::*;

const KEY: [u8; KEY_LEN] = [0x33; KEY_LEN];
const PREFIX: [u8; NONCE_PREFIX_LEN] = [0, 1, 2, 3, 4, 5, 6];
const AAD: &[u8] = b"the header bytes";
const C: usize = 16;

fn key() -> StreamKey {
    StreamKey::new(&KEY).unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn stream() -> Stream<'static> {
    Stream::new(
        key(),
        NoncePrefix::from_bytes(PREFIX),
        ChunkSize::new(C as u32).unwrap(),
        AAD,
    )
}

fn seal(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = stream().encrypt(&mut &plain[..], &mut out, |_| {}).unwrap();
    assert_eq!(n, plain.len() as u64);
    out
}

fn open(sealed: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    stream().decrypt(&mut &sealed[..], &mut out, |_| {})?;
    Ok(out)
}

fn open_exact(sealed: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    stream().decrypt_exact(len as u64, &mut &sealed[..], &mut out, |_| {})?;
    Ok(out)
}

const SIZES: [usize; 7] = [0, 1, C - 1, C, C + 1, 3 * C, 3 * C + 5];

/// The format as the crate documentation states it, computed here chunk by chunk
/// with aws-lc-rs directly.
#[test]
fn each_chunk_is_aes_256_gcm_with_the_documented_nonce_and_aad() {
    let gcm = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap());
    for len in SIZES {
        let plain = data(len);
        let chunks: Vec<&[u8]> = if len % C == 0 {
            plain.chunks(C).chain([&[][..]]).collect()
        } else {
            plain.chunks(C).collect()
        };
        assert_eq!(chunks.len(), len / C + 1);
        let mut expected = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut nonce = [0u8; 12];
            nonce[..7].copy_from_slice(&PREFIX);
            nonce[7..11].copy_from_slice(&(i as u32).to_be_bytes());
            nonce[11] = u8::from(i + 1 == chunks.len());
            let mut sealed = chunk.to_vec();
            gcm.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .unwrap();
            expected.extend_from_slice(&sealed);
        }
        assert_eq!(seal(&plain), expected, "len {len}");
        assert_eq!(
            ChunkSize::new(C as u32)
                .unwrap()
                .sealed_len(len as u64)
                .unwrap(),
            expected.len() as u64
        );
    }
}

#[test]
fn round_trips_for_every_interesting_size() {
    for len in SIZES {
        let plain = data(len);
        let sealed = seal(&plain);
        assert_eq!(open(&sealed).unwrap(), plain, "len {len}");
        assert_eq!(open_exact(&sealed, len).unwrap(), plain, "len {len}");
    }
}

#[test]
fn progress_reports_running_totals() {
    let plain = data(2 * C + 5);
    let mut seen = Vec::new();
    let mut sealed = Vec::new();
    stream()
        .encrypt(&mut &plain[..], &mut sealed, |n| seen.push(n))
        .unwrap();
    assert_eq!(seen, [16, 32, 37]);
    for exact in [false, true] {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        let s = stream();
        if exact {
            s.decrypt_exact(37, &mut &sealed[..], &mut out, |n| seen.push(n))
        } else {
            s.decrypt(&mut &sealed[..], &mut out, |n| seen.push(n))
        }
        .unwrap();
        assert_eq!(seen, [16, 32, 37], "exact {exact}");
    }
}

#[test]
fn every_single_bit_flip_fails_authentication() {
    let sealed = seal(&data(2 * C + 5));
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        let chunk = (i / (C + TAG_LEN)) as u32;
        assert!(
            matches!(open(&bad), Err(Error::Authentication { chunk: c }) if c == chunk),
            "byte {i}"
        );
        assert!(
            matches!(open_exact(&bad, 2 * C + 5), Err(Error::Authentication { chunk: c }) if c == chunk),
            "byte {i}"
        );
    }
}

#[test]
fn every_truncation_is_refused() {
    for len in [0, 5, C, 3 * C + 5] {
        let sealed = seal(&data(len));
        for cut in 0..sealed.len() {
            let short = &sealed[..cut];
            // Cut at a chunk boundary: no chunk is flagged last.
            assert!(open(short).is_err(), "len {len}, cut {cut}");
            if cut % (C + TAG_LEN) == 0 {
                assert!(
                    matches!(open(short), Err(Error::Truncated { .. })),
                    "len {len}, cut {cut}"
                );
            }
            // With a known length, every cut is reported as one.
            assert!(
                matches!(open_exact(short, len), Err(Error::Truncated { .. })),
                "len {len}, cut {cut}"
            );
        }
    }
}

#[test]
fn appended_bytes_are_refused() {
    for len in [0, 5, C, 2 * C + 1] {
        let sealed = seal(&data(len));
        for extra in [
            &[0u8][..],
            &[0xAA; TAG_LEN],
            &sealed[sealed.len() - TAG_LEN..],
        ] {
            let longer = [&sealed[..], extra].concat();
            assert!(
                matches!(open(&longer), Err(Error::Authentication { .. })),
                "len {len}"
            );
            assert!(
                matches!(open_exact(&longer, len), Err(Error::TrailingData)),
                "len {len}"
            );
        }
    }
}

#[test]
fn reordered_and_dropped_chunks_are_refused() {
    let sealed = seal(&data(3 * C + 5));
    let chunks: Vec<&[u8]> = sealed.chunks(C + TAG_LEN).collect();
    let mut swapped = chunks.clone();
    swapped.swap(0, 1);
    assert!(matches!(
        open(&swapped.concat()),
        Err(Error::Authentication { chunk: 0 })
    ));
    let mut dropped = chunks.clone();
    dropped.remove(1);
    assert!(matches!(
        open(&dropped.concat()),
        Err(Error::Authentication { chunk: 1 })
    ));
    // The last chunk in place of the one before it: flagged last too early.
    let mut early = chunks.clone();
    early[2] = chunks[3];
    assert!(open(&early.concat()).is_err());
    assert!(open_exact(&early.concat(), 3 * C + 5).is_err());
}

#[test]
fn the_wrong_key_prefix_or_aad_fails_the_first_chunk_and_writes_nothing() {
    let sealed = seal(&data(2 * C));
    let other_key = StreamKey::new(&[0x34; KEY_LEN]).unwrap();
    let chunk_size = ChunkSize::new(C as u32).unwrap();
    for s in [
        Stream::new(other_key, NoncePrefix::from_bytes(PREFIX), chunk_size, AAD),
        Stream::new(key(), NoncePrefix::from_bytes([9; 7]), chunk_size, AAD),
        Stream::new(
            key(),
            NoncePrefix::from_bytes(PREFIX),
            chunk_size,
            b"another header",
        ),
    ] {
        let mut out = Vec::new();
        let e = s.decrypt(&mut &sealed[..], &mut out, |_| {}).unwrap_err();
        assert!(matches!(e, Error::Authentication { chunk: 0 }), "{e:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn a_wrong_known_length_is_refused() {
    let sealed = seal(&data(2 * C + 5));
    assert!(open_exact(&sealed, 2 * C + 4).is_err());
    assert!(open_exact(&sealed, 2 * C + 6).is_err());
    assert!(open_exact(&sealed, 3 * C + 5).is_err());
}

/// A reader that yields one byte at a time and is interrupted before each.
struct Trickle<'a> {
    bytes: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = self.bytes.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

#[test]
fn short_and_interrupted_reads_are_retried() {
    let plain = data(2 * C + 5);
    let sealed = seal(&plain);
    let mut out = Vec::new();
    let mut reader = Trickle {
        bytes: &sealed,
        interrupt: false,
    };
    stream().decrypt(&mut reader, &mut out, |_| {}).unwrap();
    assert_eq!(out, plain);
    let mut resealed = Vec::new();
    let mut reader = Trickle {
        bytes: &plain,
        interrupt: false,
    };
    stream()
        .encrypt(&mut reader, &mut resealed, |_| {})
        .unwrap();
    assert_eq!(resealed, sealed);
}

#[test]
fn parameters_are_checked() {
    assert!(matches!(
        StreamKey::new(&[0; 16]),
        Err(Error::InvalidKey { len: 16 })
    ));
    assert_eq!(format!("{:?}", key()), "StreamKey(<redacted>)");
    assert!(matches!(ChunkSize::new(0), Err(Error::InvalidChunkSize(0))));
    assert!(ChunkSize::new(MAX_CHUNK_SIZE).is_ok());
    assert_eq!(
        ChunkSize::new(MAX_CHUNK_SIZE + 1).unwrap_err().to_string(),
        "chunk size 16777217 is not in 1..=16777216"
    );
    assert!(matches!(
        NoncePrefix::try_from(&[0u8; 6][..]),
        Err(Error::InvalidNoncePrefix { len: 6 })
    ));
    assert_eq!(
        NoncePrefix::try_from(&PREFIX[..]).unwrap(),
        NoncePrefix::from_bytes(PREFIX)
    );
    assert_ne!(
        NoncePrefix::random().unwrap(),
        NoncePrefix::random().unwrap()
    );
}

#[test]
fn at_most_two_to_the_32_chunks() {
    let one = ChunkSize::new(1).unwrap();
    assert_eq!(one.chunk_count(0).unwrap(), 1);
    assert_eq!(one.chunk_count((1 << 32) - 1).unwrap(), 1 << 32);
    assert!(matches!(one.chunk_count(1 << 32), Err(Error::TooLarge)));
    assert!(matches!(one.sealed_len(u64::MAX), Err(Error::TooLarge)));
    let s = Stream::new(key(), NoncePrefix::from_bytes(PREFIX), one, AAD);
    let e = s
        .decrypt_exact(1 << 32, &mut &[][..], &mut Vec::new(), |_| {})
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge), "{e:?}");
}
