//! The material of one service key version: made for a key spec and usage, and
//! parsed once (when the chain is loaded) into the object that uses it.
//!
//! What is wrapped and stored per version:
//! - SYMMETRIC_DEFAULT: 32 random bytes (AES-256);
//! - HMAC_n: n/8 random bytes (the key length equals the digest length, as AWS);
//! - RSA, ECC, Ed25519, ML-DSA: the private key as PKCS#8 DER (v1).
//!
//! The parsed objects (aws-lc-rs key pairs) free and clear their memory on drop; the
//! bytes they came from are [`SecretBytes`].
//!
//! One file per job: `family.rs` (which aws-lc-rs algorithms serve a key spec),
//! `generate.rs` (new material), `parse.rs` (material → `VersionKey`), and one file
//! per use of a version: `sign.rs` (Sign/Verify), `mac.rs` (HMAC), `rsa_oaep.rs`
//! (RSAES-OAEP), `ecdh.rs` (key agreement). Ed25519ph and ML-DSA over an external μ,
//! which aws-lc-rs does not expose, come from `kcm-awslc-ext`.

mod ecdh;
mod family;
mod generate;
mod mac;
mod parse;
mod rsa_oaep;
mod sign;

use aws_lc_rs::agreement;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, OaepPublicEncryptingKey};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, PqdsaKeyPair};
use kcm_awslc_ext::ed25519ph;

use crate::error::Error;
use crate::secret::SecretBytes;

pub use generate::{generate, generate_data_key_pair};
pub(crate) use generate::{generate_data_key_pair_off_thread, generate_off_thread};

/// One version of a service key, ready to use.
pub(crate) enum VersionKey {
    /// SYMMETRIC_DEFAULT.
    Aes(SecretBytes),
    /// HMAC_n (boxed: an HMAC context is over a kilobyte, the other variants small).
    Hmac(Box<hmac::Key>),
    /// RSA, SIGN_VERIFY.
    RsaSign {
        pair: signature::RsaKeyPair,
        public: Vec<u8>,
    },
    /// RSA, ENCRYPT_DECRYPT.
    RsaDecrypt {
        private: OaepPrivateDecryptingKey,
        public: OaepPublicEncryptingKey,
        public_der: Vec<u8>,
    },
    /// ECC (NIST curves, secp256k1), SIGN_VERIFY.
    Ecdsa {
        pair: EcdsaKeyPair,
        verification: &'static signature::EcdsaVerificationAlgorithm,
        public: Vec<u8>,
    },
    /// ECC NIST curves, KEY_AGREEMENT.
    Ecdh {
        private: agreement::PrivateKey,
        algorithm: &'static agreement::Algorithm,
        public: Vec<u8>,
    },
    /// Ed25519.
    Ed25519 {
        pair: Ed25519KeyPair,
        /// The same key in the form Ed25519ph signing takes (seed ‖ public key); its
        /// public key (raw, 32 bytes) is also what both Ed25519 variants verify with.
        prehash: ed25519ph::PrivateKey,
        public: Vec<u8>,
    },
    /// ML-DSA.
    MlDsa {
        pair: PqdsaKeyPair,
        verification: &'static signature::PqdsaVerificationAlgorithm,
        public: Vec<u8>,
        /// The PKCS#8 it came from: signing an external μ goes through
        /// `kcm_awslc_ext::ml_dsa`, which parses it again.
        pkcs8: SecretBytes,
    },
}

fn internal(what: &str) -> Error {
    Error::internal(format!("key material: {what}"))
}

impl VersionKey {
    /// The AES key of a SYMMETRIC_DEFAULT version.
    pub(crate) fn aes(&self) -> Option<&SecretBytes> {
        match self {
            VersionKey::Aes(key) => Some(key),
            _ => None,
        }
    }

    /// The public key (SubjectPublicKeyInfo, DER) of an asymmetric version.
    pub(crate) fn public_key(&self) -> Option<&[u8]> {
        match self {
            VersionKey::Aes(_) | VersionKey::Hmac(_) => None,
            VersionKey::RsaSign { public, .. }
            | VersionKey::Ecdsa { public, .. }
            | VersionKey::Ecdh { public, .. }
            | VersionKey::Ed25519 { public, .. }
            | VersionKey::MlDsa { public, .. } => Some(public),
            VersionKey::RsaDecrypt { public_der, .. } => Some(public_der),
        }
    }
}

impl std::fmt::Debug for VersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VersionKey(<redacted>)")
    }
}

/// A fresh version of a key of `spec` with `usage`, for the tests of every file here.
#[cfg(test)]
fn new_version(spec: crate::keyspec::KeySpec, usage: crate::keyspec::KeyUsage) -> VersionKey {
    let material = generate(spec).unwrap();
    VersionKey::parse(spec, usage, material.expose_secret()).unwrap()
}
