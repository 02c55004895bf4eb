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

use aws_lc_rs::agreement;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    self, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, PqdsaKeyPair};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keyspec::{EncryptionAlgorithm, KeySpec, KeyUsage, MessageType, SigningAlgorithm};
use crate::secret::SecretBytes;

/// Largest ML-DSA signature (ML-DSA-87).
const MAX_ML_DSA_SIGNATURE: usize = 4627;

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
        /// Seed ‖ public key: the private key form Ed25519ph signing takes.
        expanded: Zeroizing<[u8; 64]>,
        raw_public: [u8; 32],
        public: Vec<u8>,
    },
    /// ML-DSA.
    MlDsa {
        pair: PqdsaKeyPair,
        verification: &'static signature::PqdsaVerificationAlgorithm,
        public: Vec<u8>,
        /// The PKCS#8 it came from: signing an external μ goes through AWS-LC
        /// directly (`ml_dsa_mu`), which parses it again.
        pkcs8: SecretBytes,
    },
}

fn internal(what: &str) -> Error {
    Error::internal(format!("key material: {what}"))
}

/// The ECDSA signing and verification algorithms of an ECC spec.
fn ecdsa(
    spec: KeySpec,
) -> Option<(
    &'static signature::EcdsaSigningAlgorithm,
    &'static signature::EcdsaVerificationAlgorithm,
)> {
    use signature::*;
    match spec {
        KeySpec::EccNistP256 => Some((&ECDSA_P256_SHA256_ASN1_SIGNING, &ECDSA_P256_SHA256_ASN1)),
        KeySpec::EccNistP384 => Some((&ECDSA_P384_SHA384_ASN1_SIGNING, &ECDSA_P384_SHA384_ASN1)),
        KeySpec::EccNistP521 => Some((&ECDSA_P521_SHA512_ASN1_SIGNING, &ECDSA_P521_SHA512_ASN1)),
        KeySpec::EccSecgP256k1 => {
            Some((&ECDSA_P256K1_SHA256_ASN1_SIGNING, &ECDSA_P256K1_SHA256_ASN1))
        }
        _ => None,
    }
}

fn ecdh_algorithm(spec: KeySpec) -> Option<&'static agreement::Algorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&agreement::ECDH_P256),
        KeySpec::EccNistP384 => Some(&agreement::ECDH_P384),
        KeySpec::EccNistP521 => Some(&agreement::ECDH_P521),
        _ => None,
    }
}

/// The ML-DSA signing and verification algorithms of an ML-DSA spec.
fn ml_dsa(
    spec: KeySpec,
) -> Option<(
    &'static signature::PqdsaSigningAlgorithm,
    &'static signature::PqdsaVerificationAlgorithm,
)> {
    use signature::*;
    match spec {
        KeySpec::MlDsa44 => Some((&ML_DSA_44_SIGNING, &ML_DSA_44)),
        KeySpec::MlDsa65 => Some((&ML_DSA_65_SIGNING, &ML_DSA_65)),
        KeySpec::MlDsa87 => Some((&ML_DSA_87_SIGNING, &ML_DSA_87)),
        _ => None,
    }
}

fn rsa_size(spec: KeySpec) -> Option<rsa::KeySize> {
    match spec {
        KeySpec::Rsa2048 => Some(rsa::KeySize::Rsa2048),
        KeySpec::Rsa3072 => Some(rsa::KeySize::Rsa3072),
        KeySpec::Rsa4096 => Some(rsa::KeySize::Rsa4096),
        _ => None,
    }
}

fn hmac_algorithm(spec: KeySpec) -> Option<(hmac::Algorithm, usize)> {
    match spec {
        KeySpec::Hmac224 => Some((hmac::HMAC_SHA224, 28)),
        KeySpec::Hmac256 => Some((hmac::HMAC_SHA256, 32)),
        KeySpec::Hmac384 => Some((hmac::HMAC_SHA384, 48)),
        KeySpec::Hmac512 => Some((hmac::HMAC_SHA512, 64)),
        _ => None,
    }
}

fn der<T>(doc: std::result::Result<T, aws_lc_rs::error::Unspecified>) -> Result<Vec<u8>>
where
    T: std::ops::Deref,
    T::Target: AsRef<[u8]>,
{
    doc.map(|d| d.as_ref().to_vec())
        .map_err(|_| internal("cannot encode a key"))
}

fn secret_der<T: AsRef<[u8]>>(
    doc: std::result::Result<T, aws_lc_rs::error::Unspecified>,
) -> Result<SecretBytes> {
    doc.map(|d| SecretBytes::copy_from(d.as_ref()))
        .map_err(|_| internal("cannot encode a private key"))
}

/// New material for a version of a key of `spec` (RSA generation takes up to a
/// second or so: call it off the async threads).
pub fn generate(spec: KeySpec) -> Result<SecretBytes> {
    if spec == KeySpec::SymmetricDefault {
        return Ok(SecretBytes::random(crate::crypto::KEY_LEN));
    }
    if let Some((_, len)) = hmac_algorithm(spec) {
        return Ok(SecretBytes::random(len));
    }
    if let Some(size) = rsa_size(spec) {
        let pair = signature::RsaKeyPair::generate(size)
            .map_err(|_| internal("RSA key generation failed"))?;
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| internal("cannot encode a private key"))?;
        return Ok(SecretBytes::copy_from(pkcs8.as_ref()));
    }
    if let Some((algorithm, _)) = ecdsa(spec) {
        let pair =
            EcdsaKeyPair::generate(algorithm).map_err(|_| internal("EC key generation failed"))?;
        return secret_der(pair.to_pkcs8v1());
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let pair =
            Ed25519KeyPair::generate().map_err(|_| internal("Ed25519 key generation failed"))?;
        return secret_der(pair.to_pkcs8v1());
    }
    if let Some((algorithm, _)) = ml_dsa(spec) {
        let pair = PqdsaKeyPair::generate(algorithm)
            .map_err(|_| internal("ML-DSA key generation failed"))?;
        return secret_der(pair.to_pkcs8v1());
    }
    Err(internal("no generator for this key spec"))
}

/// [`generate`], on a blocking thread for RSA (whose generation must not stall the
/// async threads that serve other requests).
pub(crate) async fn generate_off_thread(spec: KeySpec) -> Result<SecretBytes> {
    off_thread_if_rsa(spec, generate).await
}

/// [`generate_data_key_pair`], on a blocking thread for RSA.
pub(crate) async fn generate_data_key_pair_off_thread(
    spec: KeySpec,
) -> Result<(SecretBytes, Vec<u8>)> {
    off_thread_if_rsa(spec, generate_data_key_pair).await
}

async fn off_thread_if_rsa<T: Send + 'static>(
    spec: KeySpec,
    make: fn(KeySpec) -> Result<T>,
) -> Result<T> {
    if !spec.is_rsa() {
        return make(spec);
    }
    tokio::task::spawn_blocking(move || make(spec))
        .await
        .map_err(|e| Error::internal(format!("key generation task failed: {e}")))?
}

/// A data key pair of `spec` (one of [`crate::keyspec::DATA_KEY_PAIR_SPECS`]): the
/// private key as PKCS#8 DER and the public key as SubjectPublicKeyInfo DER.
pub fn generate_data_key_pair(spec: KeySpec) -> Result<(SecretBytes, Vec<u8>)> {
    let private = generate(spec)?;
    let parsed = VersionKey::parse(spec, KeyUsage::SignVerify, private.expose_secret())?;
    let public = parsed
        .public_key()
        .ok_or_else(|| internal("a key pair without a public key"))?
        .to_vec();
    Ok((private, public))
}

fn rejected(spec: KeySpec) -> impl FnOnce(aws_lc_rs::error::KeyRejected) -> Error {
    move |e| internal(&format!("stored {spec} material does not parse: {e}"))
}

impl VersionKey {
    /// Parses stored material of a key of `spec` and `usage`.
    pub(crate) fn parse(spec: KeySpec, usage: KeyUsage, material: &[u8]) -> Result<Self> {
        if spec == KeySpec::SymmetricDefault {
            return Ok(VersionKey::Aes(SecretBytes::copy_from(material)));
        }
        if let Some((algorithm, _)) = hmac_algorithm(spec) {
            return Ok(VersionKey::Hmac(Box::new(hmac::Key::new(
                algorithm, material,
            ))));
        }
        if rsa_size(spec).is_some() {
            if usage == KeyUsage::EncryptDecrypt {
                let private = PrivateDecryptingKey::from_pkcs8(material).map_err(rejected(spec))?;
                let public_key = private.public_key();
                let public_der = der(AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
                    &public_key,
                ))?;
                let public = OaepPublicEncryptingKey::new(public_key)
                    .map_err(|_| internal("RSA public key unusable for OAEP"))?;
                let private = OaepPrivateDecryptingKey::new(private)
                    .map_err(|_| internal("RSA private key unusable for OAEP"))?;
                return Ok(VersionKey::RsaDecrypt {
                    private,
                    public,
                    public_der,
                });
            }
            let pair = signature::RsaKeyPair::from_pkcs8(material).map_err(rejected(spec))?;
            let public = der(pair.public_key().as_der())?;
            return Ok(VersionKey::RsaSign { pair, public });
        }
        if let Some(algorithm) = ecdh_algorithm(spec).filter(|_| usage == KeyUsage::KeyAgreement) {
            let private = agreement::PrivateKey::from_private_key_der(algorithm, material)
                .map_err(rejected(spec))?;
            let public_key = private
                .compute_public_key()
                .map_err(|_| internal("cannot compute an ECDH public key"))?;
            let public = der(public_key.as_der())?;
            return Ok(VersionKey::Ecdh {
                private,
                algorithm,
                public,
            });
        }
        if let Some((algorithm, verification)) = ecdsa(spec) {
            let pair = EcdsaKeyPair::from_pkcs8(algorithm, material).map_err(rejected(spec))?;
            let public = der(pair.public_key().as_der())?;
            return Ok(VersionKey::Ecdsa {
                pair,
                verification,
                public,
            });
        }
        if spec == KeySpec::EccNistEdwards25519 {
            let pair = Ed25519KeyPair::from_pkcs8(material).map_err(rejected(spec))?;
            let mut raw_public = [0u8; 32];
            raw_public.copy_from_slice(pair.public_key().as_ref());
            let seed = pair
                .seed()
                .and_then(|s| s.as_be_bytes())
                .map_err(|_| internal("cannot read an Ed25519 seed"))?;
            let mut expanded = Zeroizing::new([0u8; 64]);
            expanded[..32].copy_from_slice(seed.as_ref());
            expanded[32..].copy_from_slice(&raw_public);
            let public = der(pair.public_key().as_der())?;
            return Ok(VersionKey::Ed25519 {
                pair,
                expanded,
                raw_public,
                public,
            });
        }
        if let Some((algorithm, verification)) = ml_dsa(spec) {
            let pair = PqdsaKeyPair::from_pkcs8(algorithm, material).map_err(rejected(spec))?;
            let public = der(pair.public_key().as_der())?;
            return Ok(VersionKey::MlDsa {
                pair,
                verification,
                public,
                pkcs8: SecretBytes::copy_from(material),
            });
        }
        Err(internal("no parser for this key spec"))
    }

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
                let encoding = rsa_encoding(algorithm);
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
            (VersionKey::Ed25519 { pair, expanded, .. }, input) => match algorithm {
                SigningAlgorithm::Ed25519Sha512 => match input {
                    SignedInput::Raw(m) => Ok(pair.sign(m).as_ref().to_vec()),
                    _ => Err(internal("pure Ed25519 takes no digest")),
                },
                _ => {
                    let digest = input.sha512_digest()?;
                    ed25519ph::sign_digest(expanded, &digest)
                        .map(|s| s.to_vec())
                        .ok_or_else(|| internal("Ed25519ph signing failed"))
                }
            },
            (VersionKey::MlDsa { pair, .. }, SignedInput::Raw(m)) => {
                let mut out = vec![0u8; MAX_ML_DSA_SIGNATURE];
                let len = pair.sign(m, &mut out).map_err(failed)?;
                out.truncate(len);
                Ok(out)
            }
            (VersionKey::MlDsa { pkcs8, .. }, SignedInput::Mu(mu)) => {
                ml_dsa_mu::sign(pkcs8.expose_secret(), mu)
                    .ok_or_else(|| internal("ML-DSA signing of an external mu failed"))
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
                verify_public(rsa_parameters(algorithm), public, input, signature_bytes)?
            }
            (
                VersionKey::Ecdsa {
                    verification,
                    public,
                    ..
                },
                input,
            ) => verify_public(*verification, public, input, signature_bytes)?,
            (VersionKey::Ed25519 { raw_public, .. }, input) => match algorithm {
                SigningAlgorithm::Ed25519Sha512 => match input {
                    SignedInput::Raw(m) => {
                        signature::UnparsedPublicKey::new(&signature::ED25519, raw_public)
                            .verify(m, signature_bytes)
                            .is_ok()
                    }
                    _ => return Err(internal("pure Ed25519 takes no digest")),
                },
                _ => ed25519ph::verify_digest(raw_public, &input.sha512_digest()?, signature_bytes),
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
                ml_dsa_mu::verify(public, mu, signature_bytes)
            }
            _ => return Err(internal("verifying with a key that cannot verify")),
        };
        Ok(ok)
    }

    /// The MAC of `message` (HMAC keys only).
    pub(crate) fn mac(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self {
            VersionKey::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            _ => Err(internal("a MAC with a key that is not an HMAC key")),
        }
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify_mac(&self, message: &[u8], mac: &[u8]) -> Result<bool> {
        match self {
            VersionKey::Hmac(key) => Ok(hmac::verify(key, message, mac).is_ok()),
            _ => Err(internal("a MAC with a key that is not an HMAC key")),
        }
    }

    /// The largest plaintext RSAES-OAEP with `algorithm` takes under this key.
    pub(crate) fn max_oaep_plaintext(&self, algorithm: EncryptionAlgorithm) -> usize {
        match self {
            VersionKey::RsaDecrypt { public, .. } => {
                public.max_plaintext_size(oaep_algorithm(algorithm))
            }
            _ => 0,
        }
    }

    /// RSAES-OAEP encryption under this version's public key.
    pub(crate) fn oaep_encrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let VersionKey::RsaDecrypt { public, .. } = self else {
            return Err(internal(
                "OAEP with a key that is not an RSA encryption key",
            ));
        };
        let mut out = vec![0u8; public.ciphertext_size()];
        let len = public
            .encrypt(oaep_algorithm(algorithm), plaintext, &mut out, None)
            .map_err(|_| Error::invalid("the plaintext is too long for this RSA key"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// RSAES-OAEP decryption; `None` when the ciphertext does not decrypt under
    /// this version (another version's, altered, or another algorithm's).
    pub(crate) fn oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Option<SecretBytes> {
        let VersionKey::RsaDecrypt { private, .. } = self else {
            return None;
        };
        let mut out = SecretBytes::new(vec![0u8; private.key_size_bytes()]);
        let len = private
            .decrypt(
                oaep_algorithm(algorithm),
                ciphertext,
                out.expose_secret_mut(),
                None,
            )
            .ok()?
            .len();
        Some(SecretBytes::copy_from(&out.expose_secret()[..len]))
    }

    /// The ECDH shared secret with a peer's public key (SubjectPublicKeyInfo DER on
    /// this key's curve): the x-coordinate of the shared point, as AWS returns it.
    pub(crate) fn derive_shared_secret(&self, peer_spki: &[u8]) -> Result<SecretBytes> {
        let VersionKey::Ecdh {
            private, algorithm, ..
        } = self
        else {
            return Err(internal("ECDH with a key that is not a key agreement key"));
        };
        let bad_peer = || {
            Error::invalid(
                "PublicKey must be a DER-encoded SubjectPublicKeyInfo on the same curve as the key",
            )
        };
        let parsed: agreement::ParsedPublicKey =
            agreement::UnparsedPublicKey::new(algorithm, peer_spki)
                .try_into()
                .map_err(|_| bad_peer())?;
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Err(bad_peer());
        }
        agreement::agree(private, parsed, bad_peer(), |secret| {
            Ok(SecretBytes::copy_from(secret))
        })
    }
}

impl std::fmt::Debug for VersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VersionKey(<redacted>)")
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

fn oaep_algorithm(algorithm: EncryptionAlgorithm) -> &'static rsa::OaepAlgorithm {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => &rsa::OAEP_SHA1_MGF1SHA1,
        _ => &rsa::OAEP_SHA256_MGF1SHA256,
    }
}

fn rsa_encoding(algorithm: SigningAlgorithm) -> &'static dyn signature::RsaEncoding {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        RsassaPkcs1Sha384 => &signature::RSA_PKCS1_SHA384,
        RsassaPkcs1Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn rsa_parameters(algorithm: SigningAlgorithm) -> &'static signature::RsaParameters {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        RsassaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        RsassaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
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
    Mu(&'a [u8; 64]),
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
    fn sha512_digest(&self) -> Result<[u8; 64]> {
        let mut out = [0u8; 64];
        match self {
            SignedInput::Raw(m) => out.copy_from_slice(digest::digest(&digest::SHA512, m).as_ref()),
            SignedInput::Digest(d) => out.copy_from_slice(d.as_ref()),
            SignedInput::Mu(_) => return Err(not_ml_dsa()),
        }
        Ok(out)
    }
}

/// ML-DSA signing and verification of an external μ (FIPS 204 §6.2: the caller has
/// computed μ = SHAKE256(SHAKE256(pk) ‖ 0 ‖ 0 ‖ M)), which aws-lc-rs does not
/// expose: AWS-LC's EVP interface, whose sign and verify take μ for ML-DSA keys.
#[allow(unsafe_code)]
mod ml_dsa_mu {
    use aws_lc_sys as lc;

    /// Parses DER with `parse` into an EVP_PKEY, runs `body` with a context for it,
    /// and frees both. `None` when parsing fails.
    fn with_key<T>(
        der: &[u8],
        parse: unsafe extern "C" fn(*mut lc::CBS) -> *mut lc::EVP_PKEY,
        body: impl FnOnce(*mut lc::EVP_PKEY_CTX) -> Option<T>,
    ) -> Option<T> {
        // SAFETY: the CBS points into `der`, which outlives every use here; `parse`
        // returns an owned EVP_PKEY (or null), freed below exactly once; the context
        // is created from it, used only inside `body`, and freed before the key.
        unsafe {
            let mut cbs = lc::CBS {
                data: std::ptr::null(),
                len: 0,
            };
            lc::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let key = parse(&mut cbs);
            if key.is_null() {
                lc::ERR_clear_error();
                return None;
            }
            let ctx = lc::EVP_PKEY_CTX_new(key, std::ptr::null_mut());
            let out = if ctx.is_null() { None } else { body(ctx) };
            if !ctx.is_null() {
                lc::EVP_PKEY_CTX_free(ctx);
            }
            lc::EVP_PKEY_free(key);
            if out.is_none() {
                lc::ERR_clear_error();
            }
            out
        }
    }

    /// The signature of `mu` under the private key in `pkcs8`.
    pub(super) fn sign(pkcs8: &[u8], mu: &[u8; 64]) -> Option<Vec<u8>> {
        with_key(pkcs8, lc::EVP_parse_private_key, |ctx| {
            let mut signature = vec![0u8; super::MAX_ML_DSA_SIGNATURE];
            let mut len = signature.len();
            // SAFETY: `ctx` is a live context for an ML-DSA private key; AWS-LC writes
            // at most `len` bytes to `signature` (its capacity, the largest ML-DSA
            // signature) and reads 64 bytes of `mu`.
            let ok = unsafe {
                lc::EVP_PKEY_sign_init(ctx) == 1
                    && lc::EVP_PKEY_sign(ctx, signature.as_mut_ptr(), &mut len, mu.as_ptr(), 64)
                        == 1
            };
            ok.then(|| {
                signature.truncate(len);
                signature
            })
        })
    }

    /// Whether `signature` is valid for `mu` under the public key `spki`.
    pub(super) fn verify(spki: &[u8], mu: &[u8; 64], signature: &[u8]) -> bool {
        with_key(spki, lc::EVP_parse_public_key, |ctx| {
            // SAFETY: `ctx` is a live context for an ML-DSA public key; AWS-LC reads
            // `signature.len()` bytes of `signature` and 64 of `mu`.
            let ok = unsafe {
                lc::EVP_PKEY_verify_init(ctx) == 1
                    && lc::EVP_PKEY_verify(
                        ctx,
                        signature.as_ptr(),
                        signature.len(),
                        mu.as_ptr(),
                        64,
                    ) == 1
            };
            ok.then_some(())
        })
        .is_some()
    }
}

/// Ed25519ph (RFC 8032 §5.1, empty context), which aws-lc-rs does not expose:
/// AWS-LC's own functions, called directly.
#[allow(unsafe_code)]
mod ed25519ph {
    /// The signature of a SHA-512 digest under `expanded` (seed ‖ public key).
    pub(super) fn sign_digest(expanded: &[u8; 64], digest: &[u8; 64]) -> Option<[u8; 64]> {
        let mut signature = [0u8; 64];
        // SAFETY: AWS-LC writes exactly 64 bytes to the signature and reads 64 bytes of
        // digest and 64 bytes of private key; each buffer has that length. The
        // context is empty (null pointer, length 0), which AWS-LC accepts.
        let ok = unsafe {
            aws_lc_sys::ED25519ph_sign_digest(
                signature.as_mut_ptr(),
                digest.as_ptr(),
                expanded.as_ptr(),
                std::ptr::null(),
                0,
            )
        };
        (ok == 1).then_some(signature)
    }

    /// Whether `signature` is the Ed25519ph signature of `digest` under `public`.
    pub(super) fn verify_digest(public: &[u8; 32], digest: &[u8; 64], signature: &[u8]) -> bool {
        if signature.len() != 64 {
            return false;
        }
        // SAFETY: AWS-LC reads 64 bytes of digest, 64 of signature (checked above)
        // and 32 of public key; each buffer has that length; the context is empty.
        let ok = unsafe {
            aws_lc_sys::ED25519ph_verify_digest(
                digest.as_ptr(),
                signature.as_ptr(),
                public.as_ptr(),
                std::ptr::null(),
                0,
            )
        };
        ok == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn version(spec: KeySpec, usage: KeyUsage) -> VersionKey {
        let material = generate(spec).unwrap();
        VersionKey::parse(spec, usage, material.expose_secret()).unwrap()
    }

    #[test]
    fn every_signing_spec_signs_and_verifies_raw_and_digest() {
        let message = b"release 1.2.3";
        for spec in KeySpec::ALL.iter().copied() {
            if spec == KeySpec::Rsa4096 || spec == KeySpec::Rsa3072 {
                continue; // same code as RSA_2048; generation is slow
            }
            for algorithm in spec.signing_algorithms().iter().copied() {
                let key = version(spec, KeyUsage::SignVerify);
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
        let key = version(KeySpec::MlDsa44, KeyUsage::SignVerify);
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
        let ecdsa = version(KeySpec::EccNistP256, KeyUsage::SignVerify);
        assert!(ecdsa
            .sign(SigningAlgorithm::EcdsaSha256, MessageType::ExternalMu, &mu)
            .is_err());
    }

    #[test]
    fn a_digest_of_the_wrong_length_is_refused() {
        let key = version(KeySpec::EccNistP256, KeyUsage::SignVerify);
        let e = key
            .sign(SigningAlgorithm::EcdsaSha256, MessageType::Digest, &[0; 31])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("32 bytes"), "{e}");
    }

    #[test]
    fn rsa_oaep_round_trips_and_refuses_other_algorithm() {
        let key = version(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        assert_eq!(
            key.max_oaep_plaintext(EncryptionAlgorithm::RsaesOaepSha1),
            214
        );
        assert_eq!(
            key.max_oaep_plaintext(EncryptionAlgorithm::RsaesOaepSha256),
            190
        );
        let c = key
            .oaep_encrypt(EncryptionAlgorithm::RsaesOaepSha256, b"secret")
            .unwrap();
        let p = key
            .oaep_decrypt(EncryptionAlgorithm::RsaesOaepSha256, &c)
            .unwrap();
        assert_eq!(p.expose_secret(), b"secret");
        assert!(key
            .oaep_decrypt(EncryptionAlgorithm::RsaesOaepSha1, &c)
            .is_none());
    }

    #[test]
    fn ecdh_agrees_with_a_peer() {
        let key = version(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let peer = agreement::PrivateKey::generate(&agreement::ECDH_P384).unwrap();
        let peer_public = peer.compute_public_key().unwrap();
        let peer_spki = peer_public.as_der().unwrap();
        let ours = key.derive_shared_secret(peer_spki.as_ref()).unwrap();
        let our_public = agreement::UnparsedPublicKey::new(
            &agreement::ECDH_P384,
            key.public_key().unwrap().to_vec(),
        );
        let theirs = agreement::agree(&peer, our_public, (), |s| Ok(s.to_vec())).unwrap();
        assert_eq!(ours.expose_secret(), theirs.as_slice());
        let other_curve = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let other = other_curve.compute_public_key().unwrap().as_der().unwrap();
        assert!(key.derive_shared_secret(other.as_ref()).is_err());
    }

    #[test]
    fn hmac_macs_verify_in_constant_time() {
        let key = version(KeySpec::Hmac384, KeyUsage::GenerateVerifyMac);
        let mac = key.mac(b"m").unwrap();
        assert_eq!(mac.len(), 48);
        assert!(key.verify_mac(b"m", &mac).unwrap());
        assert!(!key.verify_mac(b"n", &mac).unwrap());
    }

    #[test]
    fn data_key_pairs_have_matching_public_keys() {
        for spec in [KeySpec::EccSecgP256k1, KeySpec::EccNistEdwards25519] {
            let (private, public) = generate_data_key_pair(spec).unwrap();
            let parsed =
                VersionKey::parse(spec, KeyUsage::SignVerify, private.expose_secret()).unwrap();
            assert_eq!(parsed.public_key().unwrap(), public.as_slice());
        }
    }
}
