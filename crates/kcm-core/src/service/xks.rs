//! The XKS proxy API's operations (AWS KMS keeping its keys in kcm): a key's
//! metadata, Encrypt and Decrypt in the specification's fields (see
//! [`crate::xks`]), and the health of the system the caller's XKS key serves.
//! Authorised and checked like kcm's own operations, through the one preamble.

use super::resolve::{invalid_ciphertext, KeyBy};
use super::{KeyRef, Service};
use crate::authz::{authorize, Caller, KeyNote, Op, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::keyspec::{KeySpec, KeyUsage};
use crate::lifecycle::KeyUse;
use crate::model::{KeyId, SystemId};
use crate::policy::RequestFacts;
use crate::secret::SecretBytes;
use crate::xks::{self, Ciphertext, CiphertextMetadata, Sealed};
use crate::xks_policy::RequestMetadata;

use super::crypto_ops::require_symmetric;

/// What GetKeyMetadata reports of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XksKeyMetadata {
    /// The key's spec (`SYMMETRIC_DEFAULT` is the specification's `AES_256`).
    pub spec: KeySpec,
    /// The key's usage.
    pub usage: KeyUsage,
    /// Whether the key's own state lets it encrypt (the specification's
    /// `ENABLED`); the chain above it is judged by each Encrypt and Decrypt.
    pub enabled: bool,
}

/// An XKS Encrypt's answer.
#[derive(Debug)]
pub struct XksEncrypted {
    /// The key that encrypted.
    pub key_id: KeyId,
    /// The ciphertext's fields.
    pub sealed: Sealed,
    /// The ciphertext data integrity value, when it was asked for (computed before
    /// the ciphertext was checked to decrypt, as the specification's Appendix C
    /// asks).
    pub integrity_value: Option<[u8; 32]>,
}

/// What GetHealthStatus reports of the caller's system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XksHealth {
    /// The system.
    pub system: SystemId,
    /// The keystore of the system's root key.
    pub keystore: String,
    /// Its kind (`software`, `pkcs11`, …).
    pub keystore_kind: &'static str,
    /// Whether the keystore answers and the system's key is open: `false` is the
    /// specification's `UNAVAILABLE`.
    pub available: bool,
}

/// The key an `externalKeyId` names: a key id, or else an alias name without its
/// `alias/` prefix (which the specification's characters cannot carry).
pub fn xks_key_ref(external_key_id: &str) -> KeyRef {
    match KeyId::parse(external_key_id) {
        Some(id) => KeyRef::Id(id),
        None => KeyRef::Alias(format!("alias/{external_key_id}")),
    }
}

impl Service {
    /// The secondary authorisation ([`crate::xks_policy`]): refuses (`AccessDenied`)
    /// a call whose request metadata no rule allows, and says so in the log with
    /// the metadata, as the specification asks.
    fn judge_xks_call(&self, op: Op, metadata: &RequestMetadata<'_>) -> Result<()> {
        let policy = &self.config.xks_policy;
        if policy.judge(metadata).is_some() {
            return Ok(());
        }
        tracing::info!(
            operation = %op,
            aws_principal_arn = metadata.aws_principal_arn.unwrap_or(""),
            kms_key_arn = metadata.kms_key_arn.unwrap_or(""),
            kms_operation = metadata.kms_operation.unwrap_or(""),
            kms_request_id = metadata.kms_request_id.unwrap_or(""),
            kms_via_service = metadata.kms_via_service.unwrap_or(""),
            "XKS call refused: no rule of xks_server.allow admits its request metadata"
        );
        Err(Error::denied(
            "the request metadata (AWS principal, key, operation, service, VPC) matches no rule of this XKS proxy's policy",
        ))
    }

    /// GetKeyMetadata: the spec, usage and state of `key`.
    pub async fn xks_key_metadata(
        &self,
        caller: &Caller,
        key: &KeyRef,
        metadata: &RequestMetadata<'_>,
    ) -> Result<XksKeyMetadata> {
        self.judge_xks_call(Op::XksGetKeyMetadata, metadata)?;
        let record = self
            .authorized_record(caller, Op::XksGetKeyMetadata, key)
            .await?;
        Ok(XksKeyMetadata {
            spec: record.spec,
            usage: record.usage,
            enabled: record.lifecycle.state().allows(KeyUse::Encrypt),
        })
    }

    /// Encrypt: `plaintext` (1 to [`xks::MAX_PLAINTEXT`] bytes) with `aad` (at most
    /// [`xks::MAX_AAD`]) under `key`'s primary version; with `integrity_value`, the
    /// answer carries the integrity value, and the ciphertext has been decrypted
    /// once to prove that it will.
    pub async fn xks_encrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        metadata: &RequestMetadata<'_>,
        plaintext: &[u8],
        aad: &[u8],
        integrity_value: bool,
    ) -> Result<XksEncrypted> {
        self.judge_xks_call(Op::XksEncrypt, metadata)?;
        check_sizes(plaintext, aad)?;
        let (key_id, (sealed, integrity)) = self
            .with_authorized_key(caller, Op::XksEncrypt, key, RequestFacts::NONE, |loaded| {
                require_symmetric(loaded)?;
                let material = aes_material(loaded.use_primary(caller)?.aes(), loaded.record.id)?;
                let version = loaded.record.primary_version;
                let sealed = xks::seal(material, loaded.record.id, version, plaintext, aad);
                if !integrity_value {
                    return Ok((sealed, None));
                }
                let value = xks::integrity_value(aad, &sealed);
                let parts = Ciphertext {
                    metadata: &sealed.metadata,
                    iv: &sealed.iv,
                    ciphertext: &sealed.ciphertext,
                    tag: &sealed.tag,
                };
                let opened = xks::open(material, loaded.record.id, parts, aad)
                    .map_err(|_| Error::internal("an XKS ciphertext did not decrypt at once"))?;
                if opened.expose_secret() != plaintext {
                    return Err(Error::internal(
                        "an XKS ciphertext decrypted to other bytes",
                    ));
                }
                Ok((sealed, Some(value)))
            })
            .await?;
        Ok(XksEncrypted {
            key_id,
            sealed,
            integrity_value: integrity,
        })
    }

    /// Decrypt: what [`Service::xks_encrypt`] made under `key`, with the same `aad`.
    /// Anything kcm did not encrypt so — another proxy's metadata, a 16-byte IV,
    /// a changed field — is `InvalidCiphertext`.
    pub async fn xks_decrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        metadata: &RequestMetadata<'_>,
        sealed: Ciphertext<'_>,
        aad: &[u8],
    ) -> Result<(KeyId, SecretBytes)> {
        self.judge_xks_call(Op::XksDecrypt, metadata)?;
        check_sizes(sealed.ciphertext, aad)?;
        let loaded = self
            .authorized_key(caller, Op::XksDecrypt, KeyBy::Ref(key))
            .await?;
        require_symmetric(&loaded)?;
        let metadata = CiphertextMetadata::parse(sealed.metadata).ok_or_else(invalid_ciphertext)?;
        let material = loaded
            .version(metadata.version)
            .and_then(|v| v.aes())
            .ok_or_else(invalid_ciphertext)?;
        caller.note_key(KeyNote::of(&loaded.record, Some(metadata.version)));
        let plaintext =
            xks::open(material, loaded.record.id, sealed, aad).map_err(|_| invalid_ciphertext())?;
        Ok((loaded.record.id, plaintext))
    }

    /// GetHealthStatus: whether the caller's system can serve — its system key and
    /// root key allow use (a thrown kill switch is `InvalidState`, the
    /// specification's "key store is disabled") and the root key's keystore answers.
    /// Not judged by the secondary authorisation, which the specification excludes
    /// it from.
    pub async fn xks_health(&self, caller: &Caller) -> Result<XksHealth> {
        let tenant = Self::own_tenant(&caller.principal)?;
        let system_id = caller.principal.system_scope.ok_or_else(|| {
            Error::denied(format!(
                "access key {} serves no one system: the XKS proxy API needs a key of kind xks",
                caller.principal.access_key_id
            ))
        })?;
        authorize(
            &caller.principal,
            Op::XksGetHealthStatus,
            Target::system(tenant, system_id),
        )?;
        let system = self.system_record(system_id).await?;
        let Some(system_key) = self.active_system_key(&system).await? else {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("system {} is not linked to a root key", system.name),
            ));
        };
        let root = self.stored_root_key(system_key.root_key_id).await?;
        let available = match self.wrapping_system_key(&system, "keys").await {
            Ok(_) => self.keystore(&root.keystore)?.health().await.is_ok(),
            Err(e) if e.kind() == ErrorKind::KeystoreUnavailable => false,
            Err(e) => return Err(e),
        };
        let keystore = root.keystore;
        let keystore_kind = self.keystore(&keystore)?.kind();
        Ok(XksHealth {
            system: system_id,
            keystore,
            keystore_kind,
            available,
        })
    }
}

/// The AES material of a version, or an internal error (a SYMMETRIC_DEFAULT key's
/// versions are AES).
fn aes_material(material: Option<&SecretBytes>, key: KeyId) -> Result<&SecretBytes> {
    material.ok_or_else(|| Error::internal(format!("primary version of {key} is not AES")))
}

/// Refuses an input kcm does not take: empty plaintext (`InvalidInput`), more than
/// the specification's minimum sizes (`Unsupported`, its "a parameter value exceeded
/// the maximum size that is currently supported").
fn check_sizes(data: &[u8], aad: &[u8]) -> Result<()> {
    if data.is_empty() {
        return Err(Error::invalid("the plaintext or ciphertext is empty"));
    }
    if data.len() > xks::MAX_PLAINTEXT {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "kcm encrypts and decrypts at most {} bytes, got {}",
                xks::MAX_PLAINTEXT,
                data.len()
            ),
        ));
    }
    if aad.len() > xks::MAX_AAD {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "kcm takes at most {} bytes of additional authenticated data, got {}",
                xks::MAX_AAD,
                aad.len()
            ),
        ));
    }
    Ok(())
}
