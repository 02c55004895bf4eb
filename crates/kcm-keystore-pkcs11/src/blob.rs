//! The wrapped-blob format: `0x01 ‖ IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`,
//! what `C_Encrypt` with AES-GCM gave, behind a format byte and the IV.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use kcm_core::keystore::{KeystoreError, KeystoreResult};

/// Format byte of version-1 wrapped blobs: `[1][IV][ciphertext ‖ tag]`.
const BLOB_FORMAT_V1: u8 = 1;
/// AES-GCM IV length.
pub(crate) const IV_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// The mechanism of one wrap or unwrap: AES-GCM with `iv`, `aad` as the additional
/// authenticated data, and a [`TAG_LEN`]-byte tag.
pub(crate) fn aes_gcm<'a>(
    iv: &'a mut [u8; IV_LEN],
    aad: &'a [u8],
) -> cryptoki::error::Result<Mechanism<'a>> {
    let params = GcmParams::new(iv, aad, (TAG_LEN as u64 * 8).into())?;
    Ok(Mechanism::AesGcm(params))
}

/// The stored blob of `sealed` (ciphertext ‖ tag, from `C_Encrypt`) made with `iv`.
pub(crate) fn encode(iv: &[u8; IV_LEN], sealed: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(1 + IV_LEN + sealed.len());
    blob.push(BLOB_FORMAT_V1);
    blob.extend_from_slice(iv);
    blob.extend_from_slice(sealed);
    blob
}

/// The IV and the ciphertext ‖ tag of a stored blob. A malformed blob cannot
/// authenticate: the same answer as a wrong key or aad, `UnwrapFailed`.
pub(crate) fn decode(blob: &[u8]) -> KeystoreResult<([u8; IV_LEN], &[u8])> {
    let (&format, rest) = blob.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    if format != BLOB_FORMAT_V1 || rest.len() < IV_LEN + TAG_LEN {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (iv, sealed) = rest.split_at(IV_LEN);
    Ok((iv.try_into().expect("split at IV_LEN"), sealed))
}

/// Golden fixtures: wrapped blobs and handles as kcm stored them, kept in
/// `tests/golden/<set>/` and read by every later build. Made once by
/// `generate_golden_set` with the kcm of the manifest's `kcm_commit`; never
/// regenerated to make a test pass (see `tests/golden/README.md`).
#[cfg(test)]
mod golden {
    use std::path::{Path, PathBuf};

    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    use serde_json::{json, Value};

    use super::*;
    use crate::handle::{handle_of, is_reference, key_id, reference_handle_of, KEY_ID_LEN};

    /// The AES key standing in for the root key inside the token: a TEST KEY.
    const TEST_TOKEN_KEY: [u8; 32] = *b"kcm golden PKCS#11 test root key";

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
    }

    fn key() -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &TEST_TOKEN_KEY).unwrap())
    }

    fn unhex(v: &Value, field: &str) -> Vec<u8> {
        hex::decode(v[field].as_str().unwrap()).unwrap()
    }

    #[test]
    fn golden_pkcs11_blobs_and_handles_read_as_on_the_day() {
        let mut sets: Vec<PathBuf> = std::fs::read_dir(golden_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        sets.sort();
        assert!(!sets.is_empty(), "no golden set");
        for set in sets {
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap()).unwrap();
            let b = &manifest["blob"];
            let blob = std::fs::read(set.join(b["file"].as_str().unwrap())).unwrap();
            let (iv, sealed) = decode(&blob).unwrap();
            assert_eq!(iv.to_vec(), unhex(b, "iv_hex"));
            // What C_Decrypt gets is a real AES-GCM output: it opens.
            let mut buf = sealed.to_vec();
            let plain = key()
                .open_in_place(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(unhex(b, "aad_hex")),
                    &mut buf,
                )
                .unwrap();
            assert_eq!(plain, unhex(b, "plaintext_hex"));
            assert_eq!(encode(&iv, sealed), blob);
            for h in manifest["handles"].as_array().unwrap() {
                let handle = std::fs::read(set.join(h["file"].as_str().unwrap())).unwrap();
                assert_eq!(key_id(&handle).unwrap(), unhex(h, "cka_id_hex"));
                assert_eq!(is_reference(&handle), h["reference"].as_bool().unwrap());
            }
        }
    }

    /// Makes a new set in `tests/golden/$KCM_GOLDEN_SET` (which must not exist):
    /// `KCM_GOLDEN_SET=set-2 cargo test -p kcm-keystore-pkcs11 --lib -- --ignored generate_golden_set`.
    #[test]
    #[ignore = "makes a new golden set; run by hand, see tests/golden/README.md"]
    fn generate_golden_set() {
        let name = std::env::var("KCM_GOLDEN_SET").expect("KCM_GOLDEN_SET names the new set");
        let out = golden_dir().join(name);
        assert!(!out.exists(), "{} exists: make a new set", out.display());
        std::fs::create_dir_all(&out).unwrap();
        // A system key as the core wraps it: 32 bytes (a TEST KEY), bound to an aad.
        let plaintext = *b"kcm golden system key via PKCS11";
        let aad = b"kcm-wrap-v1 golden system key binding".to_vec();
        let iv = [0x3c_u8; IV_LEN];
        let mut sealed = plaintext.to_vec();
        key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad),
                &mut sealed,
            )
            .unwrap();
        std::fs::write(out.join("wrapped.p11blob"), encode(&iv, &sealed)).unwrap();
        let made = [0x11_u8; KEY_ID_LEN];
        let referenced = b"customer-key-0001".to_vec();
        std::fs::write(out.join("generated.handle"), handle_of(&made)).unwrap();
        std::fs::write(
            out.join("referenced.handle"),
            reference_handle_of(&referenced),
        )
        .unwrap();
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let manifest = json!({
            "about": "Golden fixtures of the PKCS#11 keystore's stored forms, made by kcm's own code (crate::blob, crate::handle). The token's AES-GCM is done here with a TEST KEY. Read by blob.rs's golden test. All values are TEST values.",
            "kcm_commit": commit,
            "format": "wrapped blob format 1: 0x01, IV (12), ciphertext, tag (16); handle format 1: 0x01, CKA_ID (16); format 2 (a referenced key, HYOK): 0x02, CKA_ID",
            "test_key_hex": hex::encode(TEST_TOKEN_KEY),
            "blob": {
                "file": "wrapped.p11blob",
                "iv_hex": hex::encode(iv),
                "aad_hex": hex::encode(&aad),
                "plaintext_hex": hex::encode(plaintext),
            },
            "handles": [
                { "file": "generated.handle", "cka_id_hex": hex::encode(made), "reference": false },
                { "file": "referenced.handle", "cka_id_hex": hex::encode(&referenced), "reference": true },
            ],
        });
        let mut text = serde_json::to_string_pretty(&manifest).unwrap();
        text.push('\n');
        std::fs::write(out.join("manifest.json"), text).unwrap();
    }
}
