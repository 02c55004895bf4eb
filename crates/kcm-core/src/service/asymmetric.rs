//! The operations of asymmetric and HMAC keys: Sign, Verify, GetPublicKey,
//! RSAES-OAEP Encrypt and Decrypt, GenerateMac, VerifyMac, DeriveSharedSecret, and
//! data key pairs.
//!
//! Like the symmetric hot path, these read only the in-memory chain: each version's
//! private key is parsed once when the chain is loaded. Signing, MACs, encryption
//! and key agreement use the primary version. Verify, VerifyMac and an RSA Decrypt
//! cannot tell from their input which version made it, so they try the primary
//! version first and then the older ones, newest first: rotation never breaks a
//! signature, MAC or ciphertext made before it.

use std::collections::BTreeMap;

use super::chain::LoadedKey;
use super::crypto_ops::{check_ciphertext_len, check_len, require_encryption_key};
use super::resolve::{invalid_ciphertext, KeyBy};
use super::{KeyRef, Service};
use crate::authz::{Caller, KeyNote, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::key_material::{self, VersionKey};
use crate::keyspec::{
    EncryptionAlgorithm, KeyAlgorithms, KeySpec, KeyUsage, MacAlgorithm, MessageType,
    SigningAlgorithm,
};
use crate::model::KeyId;
use crate::policy::RequestFacts;
use crate::secret::SecretBytes;

/// Largest message Sign, Verify, GenerateMac and VerifyMac take (as AWS).
pub const MAX_MESSAGE: usize = 4096;
/// Largest signature or MAC Verify and VerifyMac take (as AWS).
pub const MAX_SIGNATURE: usize = 6144;
/// Largest peer public key DeriveSharedSecret takes.
const MAX_PEER_KEY: usize = 8192;

/// A signature or MAC and the key that made it.
#[derive(Debug)]
pub struct Signed {
    /// The key.
    pub key_id: KeyId,
    /// The signature (or MAC).
    pub signature: Vec<u8>,
}

/// A key's public key and what it may be used for (GetPublicKey).
#[derive(Debug)]
pub struct PublicKeyInfo {
    /// The key.
    pub key_id: KeyId,
    /// The version whose public key this is.
    pub version: u32,
    /// SubjectPublicKeyInfo, DER.
    pub public_key: Vec<u8>,
    /// The key's spec.
    pub spec: KeySpec,
    /// The key's usage.
    pub usage: KeyUsage,
    /// The algorithms the key offers.
    pub algorithms: KeyAlgorithms,
}

/// A data key pair (GenerateDataKeyPair).
#[derive(Debug)]
pub struct DataKeyPair {
    /// The symmetric key that encrypted the private key.
    pub key_id: KeyId,
    /// The private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// The private key encrypted under `key_id` (a ciphertext Decrypt opens).
    pub private_key_ciphertext: Vec<u8>,
    /// The public key, SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
}

fn check_message(message: &[u8]) -> Result<()> {
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return Err(Error::invalid(format!(
            "Message must be 1 to {MAX_MESSAGE} bytes, got {}; to sign more, sign its digest with MessageType DIGEST",
            message.len()
        )));
    }
    Ok(())
}

fn check_signature_len(what: &str, bytes: &[u8]) -> Result<()> {
    check_len(what, bytes, MAX_SIGNATURE)
}

fn check_signing_algorithm(key: &LoadedKey, algorithm: SigningAlgorithm) -> Result<()> {
    key.require_usage(KeyUsage::SignVerify)?;
    let offered = key.record.spec.signing_algorithms();
    if offered.contains(&algorithm) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidKeyUsage,
        format!(
            "signing algorithm {algorithm} is not valid for {} key {}; use {}",
            key.record.spec,
            key.record.id,
            SigningAlgorithm::names(offered).join(", ")
        ),
    ))
}

fn check_mac_algorithm(key: &LoadedKey, algorithm: MacAlgorithm) -> Result<()> {
    key.require_usage(KeyUsage::GenerateVerifyMac)?;
    match key.record.spec.mac_algorithm() {
        Some(own) if own == algorithm => Ok(()),
        own => Err(Error::new(
            ErrorKind::InvalidKeyUsage,
            format!(
                "MAC algorithm {algorithm} is not valid for {} key {}; use {}",
                key.record.spec,
                key.record.id,
                own.map(|a| a.as_str()).unwrap_or("none")
            ),
        )),
    }
}

fn check_rsa_encryption(key: &LoadedKey, algorithm: EncryptionAlgorithm) -> Result<()> {
    let offered = key.record.spec.encryption_algorithms().contains(&algorithm);
    require_encryption_key(key, offered, || {
        format!(
            "encryption algorithm {algorithm} is not valid for {} key {}",
            key.record.spec, key.record.id
        )
    })
}

impl Service {
    /// The first version, primary first then newest to oldest, for which `accepts`
    /// holds; noted for the audit record.
    fn find_version<T>(
        caller: &Caller,
        key: &LoadedKey,
        mut accepts: impl FnMut(&VersionKey) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        for (version, material) in key.versions_primary_first() {
            if let Some(found) = accepts(material)? {
                caller.note_key(KeyNote::of(&key.record, Some(version)));
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Signs `message` (or its digest, per `message_type`) with the primary version.
    pub async fn sign(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Signed> {
        check_message(message)?;
        let (key_id, signature) = self
            .with_authorized_key(
                caller,
                Op::Sign,
                key,
                RequestFacts::signing(algorithm),
                |loaded| {
                    check_signing_algorithm(loaded, algorithm)?;
                    loaded
                        .use_primary(caller)?
                        .sign(algorithm, message_type, message)
                },
            )
            .await?;
        Ok(Signed { key_id, signature })
    }

    /// Checks a signature made by any version of `key`. An invalid signature is an
    /// [`ErrorKind::InvalidSignature`] error, as AWS reports it.
    pub async fn verify(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<KeyId> {
        check_message(message)?;
        check_signature_len("Signature", signature)?;
        let loaded = self
            .authorized_key_with(
                caller,
                Op::Verify,
                KeyBy::Ref(key),
                RequestFacts::signing(algorithm),
            )
            .await?;
        check_signing_algorithm(&loaded, algorithm)?;
        let found = Self::find_version(caller, &loaded, |v| {
            Ok(v.verify(algorithm, message_type, message, signature)?
                .then_some(()))
        })?;
        match found {
            Some(()) => Ok(loaded.record.id),
            None => Err(Error::new(
                ErrorKind::InvalidSignature,
                format!(
                    "the signature is not valid for this message under key {}",
                    loaded.record.id
                ),
            )),
        }
    }

    /// The public key of `key`'s primary version, or of `version` when given (every
    /// version's public key stays retrievable after a rotation).
    pub async fn get_public_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        version: Option<u32>,
    ) -> Result<PublicKeyInfo> {
        let loaded = self
            .authorized_key(caller, Op::GetPublicKey, KeyBy::Ref(key))
            .await?;
        if !loaded.record.spec.is_asymmetric() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "key {} is a {} key and has no public key",
                    loaded.record.id, loaded.record.spec
                ),
            ));
        }
        let version = version.unwrap_or(loaded.record.primary_version);
        let public_key = loaded
            .version(version)
            .and_then(|v| v.public_key())
            .ok_or_else(|| {
                Error::not_found(format!("key {} has no version {version}", loaded.record.id))
            })?
            .to_vec();
        caller.note_key(KeyNote::of(&loaded.record, Some(version)));
        Ok(PublicKeyInfo {
            key_id: loaded.record.id,
            version,
            public_key,
            spec: loaded.record.spec,
            usage: loaded.record.usage,
            algorithms: KeyAlgorithms::of(loaded.record.spec, loaded.record.usage),
        })
    }

    /// RSAES-OAEP encryption with the primary version of an RSA ENCRYPT_DECRYPT key.
    /// The result is the bare OAEP ciphertext, as anyone holding the public key
    /// would produce it.
    pub async fn encrypt_asymmetric(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<(KeyId, Vec<u8>)> {
        self.with_authorized_key(
            caller,
            Op::Encrypt,
            key,
            RequestFacts::encryption(algorithm),
            |loaded| Self::rsa_encrypt(caller, loaded, algorithm, plaintext),
        )
        .await
    }

    /// RSAES-OAEP under the primary version of `loaded` (admitted for encryption by
    /// the preamble), after checking the key, the algorithm and the plaintext length
    /// (the twin of `encrypt_with`).
    pub(crate) fn rsa_encrypt(
        caller: &Caller,
        loaded: &LoadedKey,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        check_rsa_encryption(loaded, algorithm)?;
        let max = loaded.primary()?.max_oaep_plaintext(algorithm);
        if plaintext.is_empty() || plaintext.len() > max {
            return Err(Error::invalid(format!(
                "Plaintext must be 1 to {max} bytes for {algorithm} with a {} key, got {}",
                loaded.record.spec,
                plaintext.len()
            )));
        }
        loaded
            .use_primary(caller)?
            .oaep_encrypt(algorithm, plaintext)
    }

    /// RSAES-OAEP decryption of a ciphertext made with any version's public key.
    pub async fn decrypt_asymmetric(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<(KeyId, SecretBytes)> {
        check_ciphertext_len(ciphertext)?;
        self.with_authorized_key(
            caller,
            Op::Decrypt,
            key,
            RequestFacts::encryption(algorithm),
            |loaded| Self::rsa_decrypt(caller, loaded, algorithm, ciphertext),
        )
        .await
    }

    /// RSAES-OAEP decryption under any version of `loaded` (admitted for decryption
    /// by the preamble), primary first, after checking the key and the algorithm
    /// (the twin of `decrypt_with`).
    pub(crate) fn rsa_decrypt(
        caller: &Caller,
        loaded: &LoadedKey,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes> {
        check_rsa_encryption(loaded, algorithm)?;
        Self::find_version(
            caller,
            loaded,
            |v| Ok(v.oaep_decrypt(algorithm, ciphertext)),
        )?
        .ok_or_else(invalid_ciphertext)
    }

    /// The MAC of `message` under the primary version of an HMAC key.
    pub async fn generate_mac(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> Result<Signed> {
        check_message(message)?;
        let (key_id, signature) = self
            .with_authorized_key(caller, Op::GenerateMac, key, RequestFacts::NONE, |loaded| {
                check_mac_algorithm(loaded, algorithm)?;
                loaded.use_primary(caller)?.mac(message)
            })
            .await?;
        Ok(Signed { key_id, signature })
    }

    /// Checks a MAC made by any version of an HMAC key (constant-time comparison).
    /// A wrong MAC is an [`ErrorKind::InvalidMac`] error, as AWS reports it.
    pub async fn verify_mac(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<KeyId> {
        check_message(message)?;
        check_signature_len("Mac", mac)?;
        let loaded = self
            .authorized_key(caller, Op::VerifyMac, KeyBy::Ref(key))
            .await?;
        check_mac_algorithm(&loaded, algorithm)?;
        let found = Self::find_version(caller, &loaded, |v| {
            Ok(v.verify_mac(message, mac)?.then_some(()))
        })?;
        match found {
            Some(()) => Ok(loaded.record.id),
            None => Err(Error::new(
                ErrorKind::InvalidMac,
                format!(
                    "the MAC is not valid for this message under key {}",
                    loaded.record.id
                ),
            )),
        }
    }

    /// ECDH between the primary version of a KEY_AGREEMENT key and a peer's public
    /// key. The chain must allow decryption: like Decrypt, it reads what was sent to
    /// the key, so a suspended (decrypt-only) chain still derives.
    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        key: &KeyRef,
        peer_public_key: &[u8],
    ) -> Result<(KeyId, SecretBytes)> {
        check_len("PublicKey", peer_public_key, MAX_PEER_KEY)?;
        self.with_authorized_key(
            caller,
            Op::DeriveSharedSecret,
            key,
            RequestFacts::NONE,
            |loaded| {
                loaded.require_usage(KeyUsage::KeyAgreement)?;
                loaded
                    .use_primary(caller)?
                    .derive_shared_secret(peer_public_key)
            },
        )
        .await
    }

    /// A new key pair of `spec`: the private key returned in plaintext (unless the
    /// front door drops it) and encrypted under the symmetric `key` with `context`.
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        key: &KeyRef,
        spec: KeySpec,
        context: &BTreeMap<String, String>,
        without_plaintext: bool,
    ) -> Result<DataKeyPair> {
        let op = if without_plaintext {
            Op::GenerateDataKeyPairWithoutPlaintext
        } else {
            Op::GenerateDataKeyPair
        };
        let facts = RequestFacts::context(context);
        let loaded = self
            .authorized_key_with(caller, op, KeyBy::Ref(key), facts)
            .await?;
        super::crypto_ops::require_symmetric(&loaded)?;
        if !crate::keyspec::DATA_KEY_PAIR_SPECS.contains(&spec) {
            return Err(Error::invalid(format!(
                "{spec} is not a data key pair spec"
            )));
        }
        let (private_key, public_key) =
            key_material::generate_data_key_pair_off_thread(spec).await?;
        let private_key_ciphertext =
            self.encrypt_with(caller, &loaded, private_key.expose_secret(), context)?;
        Ok(DataKeyPair {
            key_id: loaded.record.id,
            private_key,
            private_key_ciphertext,
            public_key,
        })
    }
}
