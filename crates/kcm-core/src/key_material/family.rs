//! Which aws-lc-rs algorithms serve a key spec: the one table generation and parsing
//! both read, matched exhaustively so a new spec cannot be left out of either.

use aws_lc_rs::agreement;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm};
use aws_lc_rs::signature::{PqdsaSigningAlgorithm, PqdsaVerificationAlgorithm};

use crate::keyspec::KeySpec;

/// A key spec's family, with the algorithms its versions are made and used with.
pub(super) enum Family {
    /// SYMMETRIC_DEFAULT: an AES-256 key.
    Aes,
    /// HMAC_n: a key as long as the digest.
    Hmac {
        algorithm: hmac::Algorithm,
        key_len: usize,
    },
    /// RSA of a modulus size.
    Rsa(KeySize),
    /// ECC: ECDSA on every curve, ECDH on the NIST curves.
    Ecc {
        signing: &'static EcdsaSigningAlgorithm,
        verification: &'static EcdsaVerificationAlgorithm,
        agreement: Option<&'static agreement::Algorithm>,
    },
    /// Ed25519 (pure, and Ed25519ph).
    Ed25519,
    /// ML-DSA of a parameter set.
    MlDsa {
        signing: &'static PqdsaSigningAlgorithm,
        verification: &'static PqdsaVerificationAlgorithm,
    },
}

impl Family {
    /// The family of `spec`.
    pub(super) fn of(spec: KeySpec) -> Self {
        use signature::*;
        let hmac = |algorithm, key_len| Family::Hmac { algorithm, key_len };
        let ecc = |signing, verification, agreement| Family::Ecc {
            signing,
            verification,
            agreement,
        };
        let ml_dsa = |signing, verification| Family::MlDsa {
            signing,
            verification,
        };
        match spec {
            KeySpec::SymmetricDefault => Family::Aes,
            KeySpec::Hmac224 => hmac(hmac::HMAC_SHA224, 28),
            KeySpec::Hmac256 => hmac(hmac::HMAC_SHA256, 32),
            KeySpec::Hmac384 => hmac(hmac::HMAC_SHA384, 48),
            KeySpec::Hmac512 => hmac(hmac::HMAC_SHA512, 64),
            KeySpec::Rsa2048 => Family::Rsa(KeySize::Rsa2048),
            KeySpec::Rsa3072 => Family::Rsa(KeySize::Rsa3072),
            KeySpec::Rsa4096 => Family::Rsa(KeySize::Rsa4096),
            KeySpec::EccNistP256 => ecc(
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &ECDSA_P256_SHA256_ASN1,
                Some(&agreement::ECDH_P256),
            ),
            KeySpec::EccNistP384 => ecc(
                &ECDSA_P384_SHA384_ASN1_SIGNING,
                &ECDSA_P384_SHA384_ASN1,
                Some(&agreement::ECDH_P384),
            ),
            KeySpec::EccNistP521 => ecc(
                &ECDSA_P521_SHA512_ASN1_SIGNING,
                &ECDSA_P521_SHA512_ASN1,
                Some(&agreement::ECDH_P521),
            ),
            KeySpec::EccSecgP256k1 => ecc(
                &ECDSA_P256K1_SHA256_ASN1_SIGNING,
                &ECDSA_P256K1_SHA256_ASN1,
                None,
            ),
            KeySpec::EccNistEdwards25519 => Family::Ed25519,
            KeySpec::MlDsa44 => ml_dsa(&ML_DSA_44_SIGNING, &ML_DSA_44),
            KeySpec::MlDsa65 => ml_dsa(&ML_DSA_65_SIGNING, &ML_DSA_65),
            KeySpec::MlDsa87 => ml_dsa(&ML_DSA_87_SIGNING, &ML_DSA_87),
        }
    }
}
