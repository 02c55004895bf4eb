//! BYOK for root keys: import parameters (an RSA wrapping key and a single-use token
//! that expires) and the import itself, into a keystore that can import.
//!
//! The token carries its own import: the RSA private key, what it imports into and
//! when it expires, sealed (AES-256-GCM) under a key derived from the service's
//! credential key and bound to the tenant. So any node of a cluster takes a token
//! another node issued, and tokens survive restarts, while no node holds anything
//! in memory. Single use is recorded in the store (an insert that only one node can
//! make), so a token works once across the whole cluster.

use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PrivateDecryptingKey;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::root_keys::{KeystoreAbility, RootKeyInfo};
use super::{now_ms, Service};
use super::{KeyInfo, KeyRef};
use crate::authz::{Caller, Op};
use crate::byok::{self, WrappingAlgorithm, WrappingKeySpec};
use crate::error::{Error, ErrorKind, Result};
use crate::keyspec::KeyOrigin;
use crate::lifecycle::{KeyState, Transition};
use crate::model::*;
use crate::secret::SecretBytes;
use crate::store::{StoreError, Write};

/// How long import parameters stay usable by default (as AWS KMS: 24 hours);
/// [`crate::config::ServiceConfig::import_token_lifetime`] sets it.
pub const IMPORT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Prefix of import tokens, so they are recognisable in logs and support requests.
const TOKEN_PREFIX: &str = "kcm-import-v2.";
/// Settings recording used tokens: this prefix and the SHA-256 of the token.
const USED_TOKEN_META: &str = "import-token-used/";

/// What a customer needs to wrap their key material for one import.
#[derive(Clone, Debug)]
pub struct ImportParameters {
    /// Single-use token naming this import.
    pub import_token: String,
    /// The RSA public key to wrap the material to (DER, SubjectPublicKeyInfo).
    pub public_key_der: Vec<u8>,
    /// The wrapping the material must have.
    pub algorithm: WrappingAlgorithm,
    /// Size of the RSA key.
    pub key_spec: WrappingKeySpec,
    /// When the token stops working.
    pub expires_at: UnixMillis,
}

/// What an import brings a key that has had material (AWS's `ImportType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaterialImport {
    /// Its current material again (`EXISTING_KEY_MATERIAL`).
    Existing,
    /// Material for its next rotation (`NEW_KEY_MATERIAL`).
    New,
}

/// What an import brings material for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ImportTarget {
    /// A new root key in this keystore.
    RootKey { keystore: String },
    /// This service key (origin `EXTERNAL`).
    ServiceKey(KeyId),
}

/// One import, as sealed inside its token: this header (JSON, after its length
/// as 4 bytes big-endian), then the RSA private key (PKCS#8 DER).
#[derive(Serialize, Deserialize)]
struct ImportHeader {
    target: ImportTarget,
    algorithm: String,
    expires_at: UnixMillis,
}

/// The header and the private key of an opened token; `None` if malformed.
fn split_sealed_import(plain: &[u8]) -> Option<(ImportHeader, &[u8])> {
    let (len, rest) = plain.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (header, pkcs8) = rest.split_at(len);
    Some((serde_json::from_slice(header).ok()?, pkcs8))
}

/// The associated data binding a sealed import to its tenant.
fn token_aad(tenant: TenantId) -> Vec<u8> {
    format!("kcm-import-token-v2\n{tenant}").into_bytes()
}

/// The token's invalid-token error, one wording for every way but expiry that a
/// token is unusable, so a forged or foreign token learns nothing.
fn unusable_token() -> Error {
    Error::new(
        ErrorKind::InvalidImportToken,
        "the import token is unknown, used or for another key (tokens are single-use): \
         get new import parameters",
    )
}

/// An authentic token past its lifetime: AWS KMS tells this apart
/// (`ExpiredImportTokenException`), and only a token that opened under the
/// service's key gets here, so it reveals nothing to a forger.
fn expired_token() -> Error {
    Error::new(
        ErrorKind::ExpiredImportToken,
        "the import token has expired: get new import parameters",
    )
}

impl Service {
    /// Issues import parameters for a root key of the caller's tenant, to be imported
    /// into `keystore` (the default keystore when `None`).
    pub async fn root_key_import_parameters(
        &self,
        caller: &Caller,
        keystore: Option<&str>,
        algorithm: &str,
        key_spec: &str,
    ) -> Result<ImportParameters> {
        let tenant = Self::authorize_in_own_tenant(caller, Op::GetRootKeyImportParameters)?;
        let algorithm = WrappingAlgorithm::parse(algorithm)?;
        let key_spec = WrappingKeySpec::parse(key_spec)?;
        let (keystore, _) = self.keystore_able_to(keystore, KeystoreAbility::Import)?;
        self.open_import(
            tenant,
            ImportTarget::RootKey {
                keystore: keystore.to_string(),
            },
            algorithm,
            key_spec,
        )
        .await
    }

    /// Makes an RSA wrapping key and the token that carries it for one import.
    async fn open_import(
        &self,
        tenant: TenantId,
        target: ImportTarget,
        algorithm: WrappingAlgorithm,
        key_spec: WrappingKeySpec,
    ) -> Result<ImportParameters> {
        let token_key = self.import_token_key().await?;
        // RSA key generation takes tens to hundreds of milliseconds of CPU.
        let key = tokio::task::spawn_blocking(move || byok::generate_wrapping_key(key_spec))
            .await
            .map_err(|e| Error::internal(format!("key generation task failed: {e}")))??;
        let public_key_der = byok::public_key_der(&key)?;
        let pkcs8 = key
            .as_der()
            .map_err(|_| Error::internal("cannot encode the RSA wrapping key"))?;
        let lifetime = self.config.import_token_lifetime.as_millis();
        let expires_at = now_ms().saturating_add(lifetime.try_into().unwrap_or(UnixMillis::MAX));
        let header = serde_json::to_vec(&ImportHeader {
            target,
            algorithm: algorithm.as_str().to_string(),
            expires_at,
        })
        .map_err(|e| Error::internal(format!("cannot encode an import: {e}")))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + header.len() + pkcs8.as_ref().len()));
        plain.extend_from_slice(&(header.len() as u32).to_be_bytes());
        plain.extend_from_slice(&header);
        plain.extend_from_slice(pkcs8.as_ref());
        let sealed = crate::crypto::seal(&token_key, &plain, &token_aad(tenant));
        let import_token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        );
        Ok(ImportParameters {
            import_token,
            public_key_der,
            algorithm,
            key_spec,
            expires_at,
        })
    }

    /// The key that seals import tokens: derived from the credential key, which
    /// every node of a cluster unwraps from the store, and used for nothing else.
    async fn import_token_key(&self) -> Result<SecretBytes> {
        use aws_lc_rs::hmac;
        let credential_key = self.credential_key().await?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, credential_key.expose_secret());
        let derived = hmac::sign(&key, b"kcm-import-token-key-v1");
        Ok(SecretBytes::copy_from(derived.as_ref()))
    }

    /// Takes the import `token` carries, if it is the caller's tenant's, for what
    /// `fits` accepts, unexpired and unused; and unwraps `wrapped` with it. The token
    /// is used up whatever the outcome (as AWS KMS does), on every node, so wrapped
    /// material cannot be tried against it again.
    async fn take_import(
        &self,
        tenant: TenantId,
        token: &str,
        fits: impl Fn(&ImportTarget) -> bool,
        wrapped: &[u8],
    ) -> Result<(ImportTarget, SecretBytes)> {
        let sealed = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|b64| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b64)
                    .ok()
            })
            .ok_or_else(unusable_token)?;
        // Another tenant's token does not open: its tenant is in the associated data.
        let plain =
            crate::crypto::open(&self.import_token_key().await?, &sealed, &token_aad(tenant))
                .map_err(|_| unusable_token())?;
        let (session, pkcs8) =
            split_sealed_import(plain.expose_secret()).ok_or_else(unusable_token)?;
        // A token for another key is invalid whether or not it has expired.
        if !fits(&session.target) {
            return Err(unusable_token());
        }
        if session.expires_at <= now_ms() {
            return Err(expired_token());
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let used = Write::InsertMeta {
            key: format!("{USED_TOKEN_META}{}", hex::encode(digest.as_ref())),
            value: session.expires_at.to_string(),
        };
        match self.store.commit(vec![used]).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(unusable_token()),
            Err(e) => return Err(e.into()),
        }
        let key = PrivateDecryptingKey::from_pkcs8(pkcs8)
            .map_err(|_| Error::internal("an import token holds an unusable key"))?;
        let algorithm = WrappingAlgorithm::parse(&session.algorithm)?;
        let material = byok::unwrap_material(algorithm, &key, wrapped)?;
        Ok((session.target, material))
    }

    /// Imports the caller's own key material as a root key of its tenant. The token
    /// is used up whatever the outcome, as AWS KMS does, so wrapped material cannot
    /// be tried against it again.
    pub async fn import_root_key(
        &self,
        caller: &Caller,
        import_token: &str,
        wrapped_material: &[u8],
        description: &str,
    ) -> Result<RootKeyInfo> {
        let tenant = Self::authorize_in_own_tenant(caller, Op::ImportRootKey)?;
        super::root_keys::check_description(description)?;
        let (target, material) = self
            .take_import(
                tenant,
                import_token,
                |t| matches!(t, ImportTarget::RootKey { .. }),
                wrapped_material,
            )
            .await?;
        let ImportTarget::RootKey { keystore } = target else {
            unreachable!("take_import returns only fitting targets");
        };
        let provider = self.configured_keystore(&keystore)?;
        let id = RootKeyId::new_random();
        let handle = provider
            .import_root_key(&format!("kcm-root-{id}"), &material)
            .await?;
        self.record_new_root(
            tenant,
            id,
            &keystore,
            handle,
            RootKeyOrigin::Imported,
            description,
        )
        .await
    }

    /// Import parameters for a service key with origin `EXTERNAL` (AWS
    /// GetParametersForImport): while it waits for its material, or — to import
    /// the same material again, with another expiry — while it has it.
    pub async fn key_import_parameters(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: &str,
        key_spec: &str,
    ) -> Result<(KeyId, ImportParameters)> {
        let record = self
            .authorized_record(caller, Op::GetParametersForImport, key)
            .await?;
        let algorithm = WrappingAlgorithm::parse(algorithm)?;
        let key_spec = WrappingKeySpec::parse(key_spec)?;
        require_importable(&record)?;
        let params = self
            .open_import(
                record.tenant_id,
                ImportTarget::ServiceKey(record.id),
                algorithm,
                key_spec,
            )
            .await?;
        Ok((record.id, params))
    }

    /// Imports a customer's material into a service key with origin `EXTERNAL`
    /// (AWS ImportKeyMaterial), to expire at `expires_at` (AWS's `ValidTo`; `None`:
    /// it does not expire). Returns the key and the version the material is.
    ///
    /// As `kind` says (AWS's `ImportType`; `None`: new material for a key that never
    /// had any, else the key's own):
    /// - [`MaterialImport::Existing`]: waiting for its material, the key takes it as
    ///   its current version, wrapped by the system key, and becomes active. Holding
    ///   it already (enabled or disabled), it takes the same material again — only
    ///   its expiry changes. Other material is IncorrectKeyMaterial.
    /// - [`MaterialImport::New`]: a key that has material (symmetric encryption keys
    ///   only) takes other material as a version of its own, pending: it encrypts
    ///   nothing until RotateKeyOnDemand makes it current. One waits at a time, and
    ///   it does not expire (kcm keeps one expiry per key, its current material's).
    pub async fn import_key_material(
        &self,
        caller: &Caller,
        key: &KeyRef,
        import_token: &str,
        wrapped_material: &[u8],
        expires_at: Option<UnixMillis>,
        kind: Option<MaterialImport>,
    ) -> Result<(KeyInfo, u32)> {
        let now = now_ms();
        if let Some(at) = expires_at {
            if at <= now || at > now + MAX_MATERIAL_LIFETIME_MS {
                return Err(Error::invalid(
                    "ValidTo must be in the future and at most 365 days away",
                ));
            }
        }
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .authorized_record(caller, Op::ImportKeyMaterial, key)
            .await?;
        require_importable(&record)?;
        let id = record.id;
        let never_imported = record.import_check.is_none();
        let new_material = match kind {
            Some(MaterialImport::New) => !never_imported,
            Some(MaterialImport::Existing) | None => false,
        };
        // What refuses new material without reading it is checked before the token
        // is used up.
        let versions = if new_material {
            require_new_material_possible(&record, expires_at)?;
            let versions = self.store.key_versions(id).await?;
            require_room_for_new_material(&record, &versions)?;
            versions
        } else {
            Vec::new()
        };
        let (_, material) = self
            .take_import(
                record.tenant_id,
                import_token,
                |t| *t == ImportTarget::ServiceKey(id),
                wrapped_material,
            )
            .await?;
        let check = byok::material_check(&material);
        let same_as = |before: &str| bool::from(before.as_bytes().ct_eq(check.as_bytes()));
        let system = self.system_record(record.system_id).await?;
        if new_material {
            let known = record
                .import_check
                .iter()
                .map(String::as_str)
                .chain(versions.iter().filter_map(|v| v.import_check.as_deref()));
            if known.into_iter().any(same_as) {
                return Err(Error::new(
                    ErrorKind::IncorrectKeyMaterial,
                    format!(
                        "key {id} has had this key material already: new key material must \
                         be new (import the current material with ImportType \
                         EXISTING_KEY_MATERIAL)"
                    ),
                ));
            }
            let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
            let wrapped = self
                .wrap_service_key(&system, id, version, &material)
                .await?;
            changes
                .commit(vec![Write::PutKeyVersion(KeyVersionRecord {
                    key_id: id,
                    version,
                    system_key_version: system.active_key_version,
                    wrapped,
                    origin: VersionOrigin::OnDemandRotation,
                    created_at: now,
                    import_check: Some(check),
                })])
                .await?;
            self.keys.remove(&id);
            caller.note_key(crate::authz::KeyNote::of(&record, Some(version)));
            return Ok((self.key_info(caller, record), version));
        }
        match &record.import_check {
            Some(before) if !same_as(before) => {
                return Err(Error::new(
                    ErrorKind::IncorrectKeyMaterial,
                    format!("key {id} has other key material: import the material it had before"),
                ))
            }
            _ => {}
        }
        record.material_expires_at = expires_at;
        let mut writes = Vec::with_capacity(2);
        if record.lifecycle.state() == KeyState::PreActive {
            let wrapped = self
                .wrap_service_key(&system, id, record.primary_version, &material)
                .await?;
            record
                .lifecycle
                .apply(Transition::Activate)
                .map_err(|e| Error::new(ErrorKind::InvalidState, e.to_string()))?;
            record.import_check = Some(check.clone());
            // The current material's version again: the first one, or the one a
            // rotation made current (so ListKeyRotations and the rotation limit
            // still count that rotation; its date becomes this import's).
            let origin = if record.primary_version == 1 {
                VersionOrigin::Creation
            } else {
                VersionOrigin::OnDemandRotation
            };
            writes.push(Write::PutKeyVersion(KeyVersionRecord {
                key_id: id,
                version: record.primary_version,
                system_key_version: system.active_key_version,
                wrapped,
                origin,
                created_at: now,
                import_check: Some(check),
            }));
        }
        writes.insert(0, Write::PutServiceKey(record.clone()));
        changes.commit(writes).await?;
        self.keys.remove(&id);
        let version = record.primary_version;
        caller.note_key(crate::authz::KeyNote::of(&record, Some(version)));
        Ok((self.key_info(caller, record), version))
    }

    /// Erases the imported material whose expiry (AWS's `ValidTo`) has come, as
    /// AWS KMS does: the key waits for an import again. Returns how many keys
    /// lost their material.
    pub(super) async fn erase_expired_material(&self, now: UnixMillis) -> Result<usize> {
        let mut erased = 0;
        for id in self.store.keys_with_expired_material(now).await? {
            let mut changes = self.lock_changes().await?;
            let Some(mut record) = self.store.service_key(id).await? else {
                continue;
            };
            // Re-check under the lock: the material may have been imported again.
            if record.material_expires_at.is_none_or(|at| at > now) {
                continue;
            }
            record.material_expires_at = None;
            let mut writes = vec![];
            let had_material = record.lifecycle.state() != KeyState::PreActive;
            if had_material
                && record
                    .lifecycle
                    .apply(Transition::EraseImportedMaterial)
                    .is_ok()
            {
                writes.push(Write::DeleteKeyVersion {
                    key: id,
                    version: record.primary_version,
                });
                erased += 1;
                tracing::info!(key = %id, "imported key material expired: erased, the key waits for an import");
            }
            writes.insert(0, Write::PutServiceKey(record));
            changes.commit(writes).await?;
            self.keys.remove(&id);
        }
        Ok(erased)
    }

    /// Erases imported material of a service key with origin `EXTERNAL` (AWS
    /// DeleteImportedKeyMaterial): `material` (a `KeyMaterialId`) names the
    /// current material — the default — or the new material waiting for a rotation.
    ///
    /// The current material: the key waits for the same material again and, until
    /// then, nothing is encrypted or decrypted with it. Material it was rotated away
    /// from, and new material waiting, stay, as in AWS: once the current material is
    /// back, older ciphertexts decrypt again. New material waiting: only it goes; the
    /// key is unchanged. Material the key was rotated away from is not deleted
    /// (kcm could not take it back: only the current material is imported again).
    /// Returns the key and the id of the material deleted.
    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        key: &KeyRef,
        material: Option<&str>,
    ) -> Result<(KeyId, String)> {
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .authorized_record(caller, Op::DeleteImportedKeyMaterial, key)
            .await?;
        require_external(&record)?;
        let id = record.id;
        if let Some(named) = material.filter(|m| *m != record.current_material_id()) {
            let versions = self.store.key_versions(id).await?;
            let Some(version) = versions.iter().find(|v| id.material_id(v.version) == named) else {
                return Err(Error::not_found(format!(
                    "key {id} has no key material {named}"
                )));
            };
            if version.version < record.primary_version {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "key material {named} is material key {id} was rotated away from: kcm \
                         deletes a key's current material or the new material waiting, not \
                         material it could not take back"
                    ),
                ));
            }
            let deleted = version.version;
            changes
                .commit(vec![Write::DeleteKeyVersion {
                    key: id,
                    version: deleted,
                }])
                .await?;
            self.keys.remove(&id);
            return Ok((id, id.material_id(deleted)));
        }
        record
            .lifecycle
            .apply(Transition::EraseImportedMaterial)
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidState,
                    format!(
                        "key {id} is {}: its imported key material cannot be deleted",
                        e.from
                    ),
                )
            })?;
        changes
            .commit(vec![
                Write::PutServiceKey(record.clone()),
                Write::DeleteKeyVersion {
                    key: id,
                    version: record.primary_version,
                },
            ])
            .await?;
        self.keys.remove(&id);
        Ok((id, record.current_material_id()))
    }
}

/// Only keys created with origin `EXTERNAL` take imported material.
fn require_external(record: &ServiceKeyRecord) -> Result<()> {
    if record.origin != KeyOrigin::External {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "key {} has origin {}: only keys created with origin EXTERNAL take imported \
                 key material",
                record.id, record.origin
            ),
        ));
    }
    Ok(())
}

/// New material waits for a rotation: only a symmetric encryption key, holding its
/// current material (enabled or disabled), takes it, and it does not expire.
fn require_new_material_possible(
    record: &ServiceKeyRecord,
    expires_at: Option<UnixMillis>,
) -> Result<()> {
    if record.spec != crate::keyspec::KeySpec::SymmetricDefault {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "key {} is {}: only symmetric encryption keys take new key material",
                record.id, record.spec
            ),
        ));
    }
    if record.lifecycle.state() == KeyState::PreActive {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "key {} is pending import: import its current material again \
                 (ImportType EXISTING_KEY_MATERIAL) before new material",
                record.id
            ),
        ));
    }
    if let Some(at) = record.material_expires_at {
        return Err(current_material_expires(record.id, at));
    }
    if expires_at.is_some() {
        return Err(Error::invalid(
            "new key material cannot expire: import it with ExpirationModel \
             KEY_MATERIAL_DOES_NOT_EXPIRE (kcm keeps one expiry per key, its current \
             material's)",
        ));
    }
    Ok(())
}

/// The refusal of new material, or of a rotation to it, while the current material
/// expires: kcm keeps one expiry per key, and a rotation would end it, leaving the
/// old material to decrypt past the time its owner set.
pub(crate) fn current_material_expires(id: KeyId, at: UnixMillis) -> Error {
    Error::new(
        ErrorKind::InvalidState,
        format!(
            "key {id}'s current key material expires (ValidTo, {} s after 1970): import it \
             again with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE before new material, \
             or let it expire",
            at / 1000
        ),
    )
}

/// New material waits alone, and only while the key may still rotate on demand (so
/// that it can become current).
fn require_room_for_new_material(
    record: &ServiceKeyRecord,
    versions: &[KeyVersionRecord],
) -> Result<()> {
    if let Some(pending) = super::rotation::material_waiting(record, versions) {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "key {} already has new key material waiting (version {}): rotate to it \
                 (RotateKeyOnDemand), or delete it (DeleteImportedKeyMaterial with its \
                 KeyMaterialId), before importing more",
                record.id, pending.version
            ),
        ));
    }
    super::rotation::require_on_demand_room(record, versions)
}

/// The longest an imported material may be valid (AWS's limit on `ValidTo`).
const MAX_MATERIAL_LIFETIME_MS: i64 = 365 * 24 * 60 * 60 * 1000;

/// An `EXTERNAL` key takes material while it waits for it (PendingImport), and the
/// same material again while it has it (Enabled or Disabled), as AWS KMS does.
fn require_importable(record: &ServiceKeyRecord) -> Result<()> {
    require_external(record)?;
    match record.lifecycle.state() {
        KeyState::PreActive | KeyState::Active | KeyState::Disabled => Ok(()),
        state => Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "key {} is {state}: key material is imported only while the key is pending \
                 import, enabled or disabled",
                record.id
            ),
        )),
    }
}
