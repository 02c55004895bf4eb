//! The wrapped form kcm stores for a system key wrapped by an XKS key: the pieces
//! of the proxy's AES-GCM output, in one self-describing byte string.
//!
//! ```text
//! 0x01 ‖ iv_len (1) ‖ iv (12 or 16) ‖ meta_len (1) ‖ ciphertextMetadata (0..=20) ‖ tag (16) ‖ ciphertext
//! ```

use kcm_core::keystore::KeystoreError;

const VERSION: u8 = 1;
/// AES-GCM tag length the spec requires.
pub const TAG_LEN: usize = 16;
/// The spec's limit on `ciphertextMetadata`.
pub const MAX_METADATA: usize = 20;

/// The parts of one XKS encryption.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The initialisation vector the proxy chose (12 or 16 bytes).
    pub iv: &'a [u8],
    /// Vendor metadata the proxy bound into the tag (up to 20 bytes).
    pub metadata: &'a [u8],
    /// The 16-byte authentication tag.
    pub tag: &'a [u8],
    /// The ciphertext, as long as the plaintext.
    pub ciphertext: &'a [u8],
}

/// Whether `iv` has a length the spec allows.
pub fn valid_iv(iv: &[u8]) -> bool {
    iv.len() == 12 || iv.len() == 16
}

impl Sealed<'_> {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            3 + self.iv.len() + self.metadata.len() + self.tag.len() + self.ciphertext.len(),
        );
        out.push(VERSION);
        out.push(self.iv.len() as u8);
        out.extend_from_slice(self.iv);
        out.push(self.metadata.len() as u8);
        out.extend_from_slice(self.metadata);
        out.extend_from_slice(self.tag);
        out.extend_from_slice(self.ciphertext);
        out
    }
}

/// Parses a stored blob. A blob that is not one of ours cannot authenticate, so
/// every malformation is [`KeystoreError::UnwrapFailed`].
pub fn decode(blob: &[u8]) -> Result<Sealed<'_>, KeystoreError> {
    let (&version, rest) = blob.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    if version != VERSION {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (iv, rest) = take_prefixed(rest)?;
    let (metadata, rest) = take_prefixed(rest)?;
    if !valid_iv(iv) || metadata.len() > MAX_METADATA || rest.len() < TAG_LEN {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (tag, ciphertext) = rest.split_at(TAG_LEN);
    Ok(Sealed {
        iv,
        metadata,
        tag,
        ciphertext,
    })
}

fn take_prefixed(bytes: &[u8]) -> Result<(&[u8], &[u8]), KeystoreError> {
    let (&len, rest) = bytes.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    let len = usize::from(len);
    if rest.len() < len {
        return Err(KeystoreError::UnwrapFailed);
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_blobs() {
        let sealed = Sealed {
            iv: &[1; 12],
            metadata: b"v=1",
            tag: &[2; 16],
            ciphertext: &[3; 32],
        };
        let blob = sealed.encode();
        assert_eq!(decode(&blob).unwrap(), sealed);

        let unwrap_failed = |b: &[u8]| matches!(decode(b), Err(KeystoreError::UnwrapFailed));
        assert!(unwrap_failed(&[]));
        assert!(unwrap_failed(&[2]));
        let mut wrong_version = blob.clone();
        wrong_version[0] = 9;
        assert!(unwrap_failed(&wrong_version));
        let mut bad_iv = blob.clone();
        bad_iv[1] = 13;
        assert!(unwrap_failed(&bad_iv));
        // Shorter than its tag.
        assert!(unwrap_failed(&blob[..1 + 1 + 12 + 1 + 3 + 10]));
        // An empty ciphertext is still well-formed (the proxy decides).
        let empty = Sealed {
            ciphertext: &[],
            ..sealed
        };
        assert_eq!(decode(&empty.encode()).unwrap().ciphertext, b"");
    }
    /// Golden fixtures: a system key wrapped by an XKS key as kcm stored it, kept
    /// in `tests/golden/<set>/` and read by every later build. Made once by
    /// `generate_golden_set` with the kcm of the manifest's `kcm_commit`; never
    /// regenerated to make a test pass (see `tests/golden/README.md`).
    mod golden {
        use std::path::{Path, PathBuf};

        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        use base64::engine::general_purpose::STANDARD as B64;
        use base64::Engine as _;
        use serde_json::{json, Value};

        use super::super::*;
        use crate::{integrity_value, valid_key_id, HANDLE_V1};

        /// The AES key standing in for the customer's key behind the proxy: a TEST KEY.
        const TEST_XKS_KEY: [u8; 32] = *b"kcm golden XKS test key material";

        fn golden_dir() -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
        }

        fn b64(v: &Value, field: &str) -> Vec<u8> {
            B64.decode(v[field].as_str().unwrap()).unwrap()
        }

        /// The associated data the XKS spec has the proxy give the HSM: the
        /// request's AAD and the ciphertext metadata, each after its length.
        fn hsm_aad(aad: &[u8], metadata: &[u8]) -> Vec<u8> {
            let mut out = (aad.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(aad);
            out.push(metadata.len() as u8);
            out.extend_from_slice(metadata);
            out
        }

        fn key() -> LessSafeKey {
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &TEST_XKS_KEY).unwrap())
        }

        #[test]
        fn golden_xks_blobs_decode_to_their_parts() {
            let mut sets: Vec<PathBuf> = std::fs::read_dir(golden_dir())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("manifest.json").is_file())
                .collect();
            sets.sort();
            assert!(!sets.is_empty(), "no golden set");
            for set in sets {
                let manifest: Value =
                    serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap())
                        .unwrap();
                for f in manifest["blobs"].as_array().unwrap() {
                    let blob = std::fs::read(set.join(f["file"].as_str().unwrap())).unwrap();
                    let sealed = decode(&blob).unwrap();
                    assert_eq!(sealed.iv, b64(f, "iv"));
                    assert_eq!(sealed.metadata, b64(f, "metadata"));
                    assert_eq!(sealed.tag, b64(f, "tag"));
                    assert_eq!(sealed.ciphertext, b64(f, "ciphertext"));
                    // What kcm checks the proxy's answer against, the same today.
                    let aad = b64(f, "aad");
                    assert_eq!(
                        integrity_value(&aad, &sealed).as_ref(),
                        b64(f, "integrity_value")
                    );
                    // The parts are a real AES-GCM output: they open to the plaintext.
                    let mut buf = [sealed.ciphertext, sealed.tag].concat();
                    let plain = key()
                        .open_in_place(
                            Nonce::try_assume_unique_for_key(sealed.iv).unwrap(),
                            Aad::from(hsm_aad(&aad, sealed.metadata)),
                            &mut buf,
                        )
                        .unwrap();
                    assert_eq!(plain, b64(f, "plaintext"));
                    // And this build writes the same bytes from the same parts.
                    assert_eq!(sealed.encode(), blob);
                }
                let handle =
                    std::fs::read(set.join(manifest["handle"]["file"].as_str().unwrap())).unwrap();
                let (&format, id) = handle.split_first().unwrap();
                assert_eq!(format, HANDLE_V1);
                let id = std::str::from_utf8(id).unwrap();
                assert_eq!(id, manifest["handle"]["external_key_id"]);
                assert!(valid_key_id(id));
            }
        }

        /// Makes a new set in `tests/golden/$KCM_GOLDEN_SET` (which must not exist):
        /// `KCM_GOLDEN_SET=set-2 cargo test -p kcm-keystore-xks --lib -- --ignored generate_golden_set`.
        #[test]
        #[ignore = "makes a new golden set; run by hand, see tests/golden/README.md"]
        fn generate_golden_set() {
            let name = std::env::var("KCM_GOLDEN_SET").expect("KCM_GOLDEN_SET names the new set");
            let out = golden_dir().join(name);
            assert!(!out.exists(), "{} exists: make a new set", out.display());
            std::fs::create_dir_all(&out).unwrap();
            // A system key as the core wraps it: 32 bytes (a TEST KEY), bound to an aad.
            let plaintext = *b"kcm golden system key via XKS!!!";
            let aad = b"kcm-wrap-v1 golden system key binding".to_vec();
            let mut blobs = Vec::new();
            for (file, iv, metadata) in [
                (
                    "wrapped-iv12-metadata.xksblob",
                    &[0x5a_u8; 12][..],
                    &b"kcm-golden"[..],
                ),
                (
                    "wrapped-iv12-no-metadata.xksblob",
                    &[0xa5_u8; 12][..],
                    &b""[..],
                ),
            ] {
                let mut buf = plaintext.to_vec();
                let tag = key()
                    .seal_in_place_separate_tag(
                        Nonce::try_assume_unique_for_key(iv).unwrap(),
                        Aad::from(hsm_aad(&aad, metadata)),
                        &mut buf,
                    )
                    .unwrap();
                let sealed = Sealed {
                    iv,
                    metadata,
                    tag: tag.as_ref(),
                    ciphertext: &buf,
                };
                std::fs::write(out.join(file), sealed.encode()).unwrap();
                blobs.push(json!({
                    "file": file,
                    "iv": B64.encode(iv),
                    "metadata": B64.encode(metadata),
                    "tag": B64.encode(tag.as_ref()),
                    "ciphertext": B64.encode(&buf),
                    "aad": B64.encode(&aad),
                    "integrity_value": B64.encode(integrity_value(&aad, &sealed).as_ref()),
                    "plaintext": B64.encode(plaintext),
                }));
            }
            let external_key_id = "kcm-golden-xks-key-1";
            let handle = [&[HANDLE_V1][..], external_key_id.as_bytes()].concat();
            std::fs::write(out.join("root-key.handle"), handle).unwrap();
            let commit = std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let manifest = json!({
                "about": "Golden fixtures of the XKS keystore's stored forms, made by kcm's own code (crate::blob). The proxy's AES-GCM is done here with a TEST KEY, with the spec's HSM associated data. Read by blob.rs's golden test. All values are TEST values.",
                "kcm_commit": commit,
                "format": "XKS wrapped blob format 1: 0x01, iv_len, iv, meta_len, ciphertextMetadata, tag (16), ciphertext; handle format 1: 0x01, external key id (UTF-8)",
                "test_key_base64": B64.encode(TEST_XKS_KEY),
                "blobs": blobs,
                "handle": { "file": "root-key.handle", "external_key_id": external_key_id },
            });
            let mut text = serde_json::to_string_pretty(&manifest).unwrap();
            text.push('\n');
            std::fs::write(out.join("manifest.json"), text).unwrap();
        }
    }
}
