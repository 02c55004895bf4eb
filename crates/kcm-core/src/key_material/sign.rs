//! Sign and Verify: RSA (PKCS#1 v1.5, PSS), ECDSA, Ed25519 and Ed25519ph, ML-DSA
//! (over the message or an external μ), for RAW and DIGEST messages.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature;
use kcm_awslc_ext::{ed25519ph, ml_dsa};

use super::{internal, VersionKey};
use crate::error::{Error, Result};
use crate::keyspec::{MessageType, SigningAlgorithm};

impl VersionKey {
    /// Signs `message` (read as `message_type`) with `algorithm`, which the caller
    /// has checked is one of the key's.
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        let input = SignedInput::new(algorithm, message_type, message)?;
        let failed = |_| internal("signing failed");
        match (self, input) {
            (VersionKey::RsaSign { pair, .. }, input) => {
                let (encoding, _) = rsa_algorithms(algorithm);
                let mut out = vec![0u8; pair.public_modulus_len()];
                match input {
                    SignedInput::Raw(m) => pair
                        .sign(encoding, &SystemRandom::new(), m, &mut out)
                        .map_err(failed)?,
                    SignedInput::Digest(d) => {
                        pair.sign_digest(encoding, &d, &mut out).map_err(failed)?
                    }
                    SignedInput::Mu(_) => return Err(not_ml_dsa()),
                }
                Ok(out)
            }
            (VersionKey::Ecdsa { pair, .. }, input) => {
                let signature = match input {
                    SignedInput::Raw(m) => pair.sign(&SystemRandom::new(), m).map_err(failed)?,
                    SignedInput::Digest(d) => pair.sign_digest(&d).map_err(failed)?,
                    SignedInput::Mu(_) => return Err(not_ml_dsa()),
                };
                Ok(signature.as_ref().to_vec())
            }
            (VersionKey::Ed25519 { pair, prehash, .. }, input) => match algorithm {
                SigningAlgorithm::Ed25519Sha512 => match input {
                    SignedInput::Raw(m) => Ok(pair.sign(m).as_ref().to_vec()),
                    _ => Err(internal("pure Ed25519 takes no digest")),
                },
                _ => prehash
                    .sign_digest(&input.sha512_digest()?)
                    .map(|s| s.to_vec())
                    .map_err(|_| internal("Ed25519ph signing failed")),
            },
            (VersionKey::MlDsa { pair, .. }, SignedInput::Raw(m)) => {
                let mut out = vec![0u8; ml_dsa::MAX_SIGNATURE_LEN];
                let len = pair.sign(m, &mut out).map_err(failed)?;
                out.truncate(len);
                Ok(out)
            }
            (VersionKey::MlDsa { pkcs8, .. }, SignedInput::Mu(mu)) => {
                ml_dsa::sign_external_mu(pkcs8.expose_secret(), mu)
                    .map_err(|_| internal("ML-DSA signing of an external mu failed"))
            }
            _ => Err(internal("signing with a key that cannot sign")),
        }
    }

    /// Whether `signature` is valid for `message` under this version's public key.
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature_bytes: &[u8],
    ) -> Result<bool> {
        let input = SignedInput::new(algorithm, message_type, message)?;
        let ok = match (self, input) {
            (VersionKey::RsaSign { public, .. }, input) => {
                verify_public(rsa_algorithms(algorithm).1, public, input, signature_bytes)?
            }
            (
                VersionKey::Ecdsa {
                    verification,
                    public,
                    ..
                },
                input,
            ) => verify_public(*verification, public, input, signature_bytes)?,
            (VersionKey::Ed25519 { prehash, .. }, input) => match algorithm {
                SigningAlgorithm::Ed25519Sha512 => match input {
                    SignedInput::Raw(m) => {
                        VersionKey::verify_ed25519(prehash.public_key(), m, signature_bytes)
                    }
                    _ => return Err(internal("pure Ed25519 takes no digest")),
                },
                _ => ed25519ph::verify_digest(
                    prehash.public_key(),
                    &input.sha512_digest()?,
                    signature_bytes,
                ),
            },
            (
                VersionKey::MlDsa {
                    verification,
                    public,
                    ..
                },
                input @ SignedInput::Raw(_),
            ) => verify_public(*verification, public, input, signature_bytes)?,
            (VersionKey::MlDsa { public, .. }, SignedInput::Mu(mu)) => {
                ml_dsa::verify_external_mu(public, mu, signature_bytes)
            }
            _ => return Err(internal("verifying with a key that cannot verify")),
        };
        Ok(ok)
    }

    /// Whether `signature_bytes` is the pure Ed25519 (RFC 8032) signature of
    /// `message` under the raw 32-byte `public_key`: how an Ed25519 version verifies
    /// ED25519_SHA_512, reachable on its own so known-answer tests can give it the
    /// public keys of published vectors.
    pub(crate) fn verify_ed25519(
        public_key: &[u8; ed25519ph::PUBLIC_KEY_LEN],
        message: &[u8],
        signature_bytes: &[u8],
    ) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(message, signature_bytes)
            .is_ok()
    }
}

/// Verifies a RAW or DIGEST input against a public key (SubjectPublicKeyInfo DER)
/// with one of aws-lc-rs's verification algorithms.
fn verify_public(
    algorithm: &'static dyn signature::VerificationAlgorithm,
    public: &[u8],
    input: SignedInput<'_>,
    signature_bytes: &[u8],
) -> Result<bool> {
    let key = signature::UnparsedPublicKey::new(algorithm, public);
    let outcome = match input {
        SignedInput::Raw(m) => key.verify(m, signature_bytes),
        SignedInput::Digest(d) => key.verify_digest(&d, signature_bytes),
        SignedInput::Mu(_) => return Err(not_ml_dsa()),
    };
    Ok(outcome.is_ok())
}

/// The RSA padding an algorithm signs with, and the parameters it verifies with:
/// one table, so the two cannot drift apart. (Only RSA algorithms reach here; the
/// caller checked the algorithm against the key spec.)
fn rsa_algorithms(
    algorithm: SigningAlgorithm,
) -> (
    &'static dyn signature::RsaEncoding,
    &'static signature::RsaParameters,
) {
    use signature::*;
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 => (&RSA_PSS_SHA256, &RSA_PSS_2048_8192_SHA256),
        RsassaPssSha384 => (&RSA_PSS_SHA384, &RSA_PSS_2048_8192_SHA384),
        RsassaPssSha512 => (&RSA_PSS_SHA512, &RSA_PSS_2048_8192_SHA512),
        RsassaPkcs1Sha384 => (&RSA_PKCS1_SHA384, &RSA_PKCS1_2048_8192_SHA384),
        RsassaPkcs1Sha512 => (&RSA_PKCS1_SHA512, &RSA_PKCS1_2048_8192_SHA512),
        _ => (&RSA_PKCS1_SHA256, &RSA_PKCS1_2048_8192_SHA256),
    }
}

/// The hash a signing algorithm applies to a RAW message (`None`: pure Ed25519 and
/// ML-DSA, which take no digest).
fn signing_digest(algorithm: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 | RsassaPkcs1Sha256 | EcdsaSha256 => Some(&digest::SHA256),
        RsassaPssSha384 | RsassaPkcs1Sha384 | EcdsaSha384 => Some(&digest::SHA384),
        RsassaPssSha512 | RsassaPkcs1Sha512 | EcdsaSha512 | Ed25519PhSha512 => {
            Some(&digest::SHA512)
        }
        Ed25519Sha512 | MlDsaShake256 => None,
    }
}

/// A Sign/Verify input: the message, its digest, or ML-DSA's message representative.
enum SignedInput<'a> {
    Raw(&'a [u8]),
    Digest(digest::Digest),
    Mu(&'a [u8; ml_dsa::MU_LEN]),
}

/// An EXTERNAL_MU input reaching a key that is not ML-DSA (`SignedInput::new` and
/// the algorithm check before it make this unreachable).
fn not_ml_dsa() -> Error {
    internal("an external mu for a key that is not ML-DSA")
}

impl<'a> SignedInput<'a> {
    /// Checks `message_type` against `algorithm` and the digest's length.
    fn new(
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &'a [u8],
    ) -> Result<Self> {
        match message_type {
            MessageType::Raw => Ok(SignedInput::Raw(message)),
            MessageType::Digest => {
                let hash = signing_digest(algorithm).ok_or_else(|| {
                    Error::invalid(format!(
                        "MessageType DIGEST is not valid with {algorithm}; send the message as RAW"
                    ))
                })?;
                digest::Digest::import_less_safe(message, hash)
                    .map(SignedInput::Digest)
                    .map_err(|_| {
                        Error::invalid(format!(
                            "a DIGEST message for {algorithm} must be {} bytes, got {}",
                            hash.output_len(),
                            message.len()
                        ))
                    })
            }
            MessageType::ExternalMu if algorithm == SigningAlgorithm::MlDsaShake256 => {
                message.try_into().map(SignedInput::Mu).map_err(|_| {
                    Error::invalid(format!(
                        "an EXTERNAL_MU message must be the 64-byte mu of FIPS 204, got {} bytes",
                        message.len()
                    ))
                })
            }
            MessageType::ExternalMu => Err(Error::invalid(format!(
                "MessageType EXTERNAL_MU is only for ML_DSA_SHAKE_256, not {algorithm}"
            ))),
        }
    }

    /// The SHA-512 digest (Ed25519ph): hashed here for RAW, as given for DIGEST.
    fn sha512_digest(&self) -> Result<[u8; ed25519ph::DIGEST_LEN]> {
        let mut out = [0u8; ed25519ph::DIGEST_LEN];
        match self {
            SignedInput::Raw(m) => out.copy_from_slice(digest::digest(&digest::SHA512, m).as_ref()),
            SignedInput::Digest(d) => out.copy_from_slice(d.as_ref()),
            SignedInput::Mu(_) => return Err(not_ml_dsa()),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::key_material::new_version;
    use crate::keyspec::{KeySpec, KeyUsage};

    #[test]
    fn every_signing_spec_signs_and_verifies_raw_and_digest() {
        let message = b"release 1.2.3";
        for spec in KeySpec::ALL.iter().copied() {
            if spec == KeySpec::Rsa4096 || spec == KeySpec::Rsa3072 {
                continue; // same code as RSA_2048; generation is slow
            }
            for algorithm in spec.signing_algorithms().iter().copied() {
                let key = new_version(spec, KeyUsage::SignVerify);
                let signature = key.sign(algorithm, MessageType::Raw, message).unwrap();
                assert!(
                    key.verify(algorithm, MessageType::Raw, message, &signature)
                        .unwrap(),
                    "{spec} {algorithm}"
                );
                assert!(!key
                    .verify(algorithm, MessageType::Raw, b"other", &signature)
                    .unwrap());
                if let Some(hash) = signing_digest(algorithm) {
                    let d = digest::digest(hash, message);
                    assert!(
                        key.verify(algorithm, MessageType::Digest, d.as_ref(), &signature)
                            .unwrap(),
                        "{spec} {algorithm}: a RAW signature verifies as DIGEST"
                    );
                    let s2 = key
                        .sign(algorithm, MessageType::Digest, d.as_ref())
                        .unwrap();
                    assert!(key
                        .verify(algorithm, MessageType::Raw, message, &s2)
                        .unwrap());
                } else {
                    assert!(key.sign(algorithm, MessageType::Digest, message).is_err());
                }
                assert!(key.public_key().is_some());
            }
        }
    }

    #[test]
    fn ml_dsa_signs_and_verifies_an_external_mu() {
        let key = new_version(KeySpec::MlDsa44, KeyUsage::SignVerify);
        let mu = [7u8; 64];
        let alg = SigningAlgorithm::MlDsaShake256;
        let signature = key.sign(alg, MessageType::ExternalMu, &mu).unwrap();
        assert!(key
            .verify(alg, MessageType::ExternalMu, &mu, &signature)
            .unwrap());
        assert!(!key
            .verify(alg, MessageType::ExternalMu, &[8u8; 64], &signature)
            .unwrap());
        // A mu is not the message: the same bytes signed RAW give another signature.
        assert!(!key.verify(alg, MessageType::Raw, &mu, &signature).unwrap());
        let e = key
            .sign(alg, MessageType::ExternalMu, &[0; 63])
            .unwrap_err();
        assert!(e.message().contains("64-byte"), "{e}");
        let ecdsa = new_version(KeySpec::EccNistP256, KeyUsage::SignVerify);
        assert!(ecdsa
            .sign(SigningAlgorithm::EcdsaSha256, MessageType::ExternalMu, &mu)
            .is_err());
    }

    #[test]
    fn a_digest_of_the_wrong_length_is_refused() {
        let key = new_version(KeySpec::EccNistP256, KeyUsage::SignVerify);
        let e = key
            .sign(SigningAlgorithm::EcdsaSha256, MessageType::Digest, &[0; 31])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("32 bytes"), "{e}");
    }
}
