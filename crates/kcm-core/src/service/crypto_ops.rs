//! The hot path: Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateRandom.
//!
//! These read only the in-memory chain (see `chain.rs`); no store round trip and no
//! keystore call happens unless a cache entry is older than the revocation bound.

use std::collections::BTreeMap;

use super::chain::LoadedKey;
use super::resolve::{invalid_ciphertext, KeyBy};
use super::{KeyRef, Service};
use crate::authz::{Caller, Op};
use crate::crypto::{self, CiphertextHeader};
use crate::error::{Error, ErrorKind, Result};
use crate::keyspec::{EncryptionAlgorithm, KeySpec, KeyUsage};
use crate::lifecycle::KeyUse;
use crate::model::KeyId;
use crate::policy::RequestFacts;
use crate::secret::SecretBytes;

/// Largest plaintext Encrypt accepts (as AWS).
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest ciphertext Decrypt accepts (as AWS).
pub const MAX_CIPHERTEXT: usize = 6144;

/// A decrypted plaintext and the key that decrypted it.
#[derive(Debug)]
pub struct Decrypted {
    /// The key that had encrypted it.
    pub key_id: KeyId,
    /// The plaintext.
    pub plaintext: SecretBytes,
}

/// A data key: its plaintext (unless asked without) and its ciphertext.
#[derive(Debug)]
pub struct DataKey {
    /// The service key that wraps it.
    pub key_id: KeyId,
    /// The data key in plaintext.
    pub plaintext: SecretBytes,
    /// The data key encrypted under `key_id`.
    pub ciphertext: Vec<u8>,
}

/// What ReEncrypt re-encrypts, from where to where.
#[derive(Debug)]
pub struct ReEncryptRequest<'a> {
    /// The ciphertext.
    pub ciphertext: &'a [u8],
    /// The key it was encrypted under: optional for kcm's symmetric format (which
    /// names its key; if given it must match), required for RSAES-OAEP.
    pub source_key: Option<&'a KeyRef>,
    /// The source's encryption context (symmetric only).
    pub source_context: &'a BTreeMap<String, String>,
    /// How the source was encrypted.
    pub source_algorithm: EncryptionAlgorithm,
    /// The key to encrypt under.
    pub destination: &'a KeyRef,
    /// The destination's encryption context (symmetric only).
    pub destination_context: &'a BTreeMap<String, String>,
    /// How to encrypt.
    pub destination_algorithm: EncryptionAlgorithm,
}

/// Result of ReEncrypt.
#[derive(Debug)]
pub struct ReEncrypted {
    /// The key that had encrypted the source.
    pub source_key_id: KeyId,
    /// The key that encrypted the result.
    pub key_id: KeyId,
    /// The new ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Refuses a key whose usage is not ENCRYPT_DECRYPT, then one whose spec does not
/// `fit` the operation, with `misfit` as the InvalidKeyUsage message.
pub(crate) fn require_encryption_key(
    key: &LoadedKey,
    fits: bool,
    misfit: impl FnOnce() -> String,
) -> Result<()> {
    key.require_usage(KeyUsage::EncryptDecrypt)?;
    if fits {
        return Ok(());
    }
    Err(Error::new(ErrorKind::InvalidKeyUsage, misfit()))
}

/// Refuses the symmetric operations on a key that is not a SYMMETRIC_DEFAULT
/// encryption key, naming what the key is for.
pub(crate) fn require_symmetric(key: &LoadedKey) -> Result<()> {
    require_encryption_key(key, key.record.spec == KeySpec::SymmetricDefault, || {
        format!(
            "key {} is an {} key: encrypt with EncryptionAlgorithm RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256; data keys need a SYMMETRIC_DEFAULT key",
            key.record.id, key.record.spec
        )
    })
}

/// Refuses an empty input or one longer than `max` bytes (ValidationException, as
/// AWS), naming the request `field` it came in.
pub(crate) fn check_len(field: &str, bytes: &[u8], max: usize) -> Result<()> {
    if bytes.is_empty() || bytes.len() > max {
        return Err(Error::invalid(format!(
            "{field} must be 1 to {max} bytes, got {}",
            bytes.len()
        )));
    }
    Ok(())
}

/// Refuses an empty or oversized ciphertext (ValidationException, as AWS).
pub(crate) fn check_ciphertext_len(blob: &[u8]) -> Result<()> {
    check_len("CiphertextBlob", blob, MAX_CIPHERTEXT)
}

impl Service {
    /// kcm's symmetric format under `key`'s primary version, binding `context`.
    /// `key` has passed the preamble for encryption (`KeyUse::Encrypt`).
    pub(crate) fn encrypt_with(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        require_symmetric(key)?;
        let material = key.use_primary(caller)?.aes().ok_or_else(|| {
            Error::internal(format!("primary version of {} is not AES", key.record.id))
        })?;
        let header = CiphertextHeader {
            key_id: key.record.id,
            key_version: key.record.primary_version,
        };
        Ok(crypto::encrypt_data(
            material,
            header,
            plaintext,
            &crypto::canonical_context(context),
        ))
    }

    /// Encrypts up to 4096 bytes under `key`'s primary version, binding `context`.
    pub async fn encrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(KeyId, Vec<u8>)> {
        check_len("Plaintext", plaintext, MAX_PLAINTEXT)?;
        self.with_authorized_key(
            caller,
            Op::Encrypt,
            key,
            RequestFacts::symmetric(context),
            |loaded| self.encrypt_with(caller, loaded, plaintext, context),
        )
        .await
    }

    /// Opens kcm's symmetric format with the version of `key` the ciphertext names.
    /// `key` has passed the preamble for decryption (`KeyUse::Decrypt`) with this
    /// ciphertext.
    fn decrypt_with(
        key: &LoadedKey,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<SecretBytes> {
        let header = CiphertextHeader::parse(blob).ok_or_else(invalid_ciphertext)?;
        let material = key
            .version(header.key_version)
            .and_then(|v| v.aes())
            .ok_or_else(invalid_ciphertext)?;
        crypto::decrypt_data(material, blob, &crypto::canonical_context(context))
            .map_err(|_| invalid_ciphertext())
    }

    /// Decrypts a ciphertext made by [`Service::encrypt`] (or a data key). The key is
    /// read from the ciphertext; `key`, when given, must match it.
    pub async fn decrypt(
        &self,
        caller: &Caller,
        key: Option<&KeyRef>,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Decrypted> {
        check_ciphertext_len(blob)?;
        let by = KeyBy::Ciphertext { blob, named: key };
        let loaded = self
            .authorized_key_with(caller, Op::Decrypt, by, RequestFacts::symmetric(context))
            .await?;
        let plaintext = Self::decrypt_with(&loaded, blob, context)?;
        Ok(Decrypted {
            key_id: loaded.record.id,
            plaintext,
        })
    }

    /// Decrypts under the source key and encrypts under the destination key, without
    /// the plaintext leaving the service. Either side may be kcm's symmetric format
    /// or RSAES-OAEP (an RSA source must be named: its ciphertext does not say).
    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        req: ReEncryptRequest<'_>,
    ) -> Result<ReEncrypted> {
        let (source_key_id, plaintext) = match req.source_algorithm {
            EncryptionAlgorithm::SymmetricDefault => {
                check_ciphertext_len(req.ciphertext)?;
                let by = KeyBy::Ciphertext {
                    blob: req.ciphertext,
                    named: req.source_key,
                };
                let source = self
                    .authorized_key_with(
                        caller,
                        Op::ReEncrypt,
                        by,
                        RequestFacts::symmetric(req.source_context),
                    )
                    .await?;
                let plaintext = Self::decrypt_with(&source, req.ciphertext, req.source_context)?;
                (source.record.id, plaintext)
            }
            rsa => {
                let key = req.source_key.ok_or_else(|| {
                    Error::invalid(format!("SourceKeyId is required to re-encrypt from {rsa}"))
                })?;
                let source = self
                    .authorized_key_with(
                        caller,
                        Op::ReEncrypt,
                        KeyBy::Ref(key),
                        RequestFacts::encryption(rsa),
                    )
                    .await?;
                let plaintext = Self::rsa_decrypt(caller, &source, rsa, req.ciphertext)?;
                (source.record.id, plaintext)
            }
        };
        // ReEncrypt is named for its source; its destination is used to encrypt.
        let target = self
            .authorized_key_for(
                caller,
                Op::ReEncrypt,
                Some(KeyUse::Encrypt),
                KeyBy::Ref(req.destination),
                match req.destination_algorithm {
                    EncryptionAlgorithm::SymmetricDefault => {
                        RequestFacts::symmetric(req.destination_context)
                    }
                    rsa => RequestFacts::encryption(rsa),
                },
            )
            .await?;
        let ciphertext = match req.destination_algorithm {
            EncryptionAlgorithm::SymmetricDefault => self.encrypt_with(
                caller,
                &target,
                plaintext.expose_secret(),
                req.destination_context,
            )?,
            rsa => Self::rsa_encrypt(caller, &target, rsa, plaintext.expose_secret())?,
        };
        Ok(ReEncrypted {
            source_key_id,
            key_id: target.record.id,
            ciphertext,
        })
    }

    /// A fresh data key of `len` bytes (1–1024), returned in plaintext and encrypted
    /// under `key`.
    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        len: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey> {
        self.data_key(caller, key, len, context, Op::GenerateDataKey)
            .await
    }

    /// A fresh data key of `len` bytes (1–1024), returned only encrypted under `key`.
    pub async fn generate_data_key_without_plaintext(
        &self,
        caller: &Caller,
        key: &KeyRef,
        len: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<(KeyId, Vec<u8>)> {
        let data_key = self
            .data_key(
                caller,
                key,
                len,
                context,
                Op::GenerateDataKeyWithoutPlaintext,
            )
            .await?;
        Ok((data_key.key_id, data_key.ciphertext))
    }

    async fn data_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        len: usize,
        context: &BTreeMap<String, String>,
        op: Op,
    ) -> Result<DataKey> {
        if !(1..=1024).contains(&len) {
            return Err(Error::invalid(format!(
                "NumberOfBytes must be between 1 and 1024, got {len}"
            )));
        }
        let loaded = self
            .authorized_key_with(
                caller,
                op,
                KeyBy::Ref(key),
                RequestFacts::symmetric(context),
            )
            .await?;
        let plaintext = SecretBytes::random(len);
        let ciphertext = self.encrypt_with(caller, &loaded, plaintext.expose_secret(), context)?;
        Ok(DataKey {
            key_id: loaded.record.id,
            plaintext,
            ciphertext,
        })
    }

    /// `len` random bytes (1–1024).
    pub async fn generate_random(&self, caller: &Caller, len: usize) -> Result<SecretBytes> {
        Self::own_tenant_for(caller, Op::GenerateRandom)?;
        if !(1..=1024).contains(&len) {
            return Err(Error::invalid(format!(
                "NumberOfBytes must be between 1 and 1024, got {len}"
            )));
        }
        Ok(SecretBytes::random(len))
    }
}
