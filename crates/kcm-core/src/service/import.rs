//! BYOK for root keys: import parameters (an RSA wrapping key and a single-use token
//! that expires) and the import itself, into a keystore that can import.
//!
//! The RSA private key of an import lives only in this process's memory, for
//! [`IMPORT_TOKEN_LIFETIME`] at most and until its token is used once; a restart
//! invalidates outstanding tokens (the customer asks for new parameters).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::rsa::PrivateDecryptingKey;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::keys::ORIGIN_EXTERNAL;
use super::root_keys::RootKeyInfo;
use super::{now_ms, Service};
use super::{KeyInfo, KeyRef};
use crate::auth::{Caller, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::import::{self, WrappingAlgorithm, WrappingKeySpec};
use crate::lifecycle::{KeyState, Transition};
use crate::model::*;
use crate::store::Write;

/// How long import parameters stay usable (as AWS KMS: 24 hours).
pub const IMPORT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Outstanding imports a tenant may hold at once (each holds an RSA key in memory).
const MAX_OPEN_IMPORTS: usize = 16;
/// Prefix of import tokens, so they are recognisable in logs and support requests.
const TOKEN_PREFIX: &str = "kcm-import-v1.";

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

/// What an import brings material for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ImportTarget {
    /// A new root key in this keystore.
    RootKey { keystore: String },
    /// This service key (origin `EXTERNAL`).
    ServiceKey(KeyId),
}

/// One outstanding import.
pub(crate) struct ImportSession {
    tenant: TenantId,
    target: ImportTarget,
    algorithm: WrappingAlgorithm,
    key: PrivateDecryptingKey,
    expires_at: UnixMillis,
}

/// Outstanding imports by token.
#[derive(Default)]
pub(crate) struct Imports(Mutex<HashMap<String, ImportSession>>);

impl Imports {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, ImportSession>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
        let keystore = keystore.unwrap_or(&self.config.default_keystore);
        let provider = self.configured_keystore(keystore)?;
        if !provider.capabilities().import {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("keystore {keystore:?} cannot import key material"),
            ));
        }
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

    /// Makes an RSA wrapping key and a token for one import, and remembers them.
    async fn open_import(
        &self,
        tenant: TenantId,
        target: ImportTarget,
        algorithm: WrappingAlgorithm,
        key_spec: WrappingKeySpec,
    ) -> Result<ImportParameters> {
        let now = now_ms();
        {
            let mut sessions = self.imports.sessions();
            sessions.retain(|_, s| s.expires_at > now);
            if sessions.values().filter(|s| s.tenant == tenant).count() >= MAX_OPEN_IMPORTS {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "the tenant has {MAX_OPEN_IMPORTS} unused import tokens; use or let \
                         them expire first"
                    ),
                ));
            }
        }
        // RSA key generation takes tens to hundreds of milliseconds of CPU.
        let key = tokio::task::spawn_blocking(move || import::generate_wrapping_key(key_spec))
            .await
            .map_err(|e| Error::internal(format!("key generation task failed: {e}")))??;
        let public_key_der = import::public_key_der(&key)?;
        let mut raw = [0u8; 32];
        crate::crypto::fill_random(&mut raw);
        let import_token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let expires_at = now + IMPORT_TOKEN_LIFETIME.as_millis() as UnixMillis;
        self.imports.sessions().insert(
            import_token.clone(),
            ImportSession {
                tenant,
                target,
                algorithm,
                key,
                expires_at,
            },
        );
        Ok(ImportParameters {
            import_token,
            public_key_der,
            algorithm,
            key_spec,
            expires_at,
        })
    }

    /// Takes the import `token` names, if it is the caller's tenant's, for what
    /// `fits` accepts, and unexpired; and unwraps `wrapped` with it. The token is
    /// used up whatever the outcome (as AWS KMS does), so wrapped material cannot be
    /// tried against it again; another tenant's token stays usable by its owner.
    fn take_import(
        &self,
        tenant: TenantId,
        token: &str,
        fits: impl Fn(&ImportTarget) -> bool,
        wrapped: &[u8],
    ) -> Result<(ImportTarget, crate::secret::SecretBytes)> {
        let session = {
            let mut sessions = self.imports.sessions();
            match sessions.get(token) {
                Some(s) if s.tenant == tenant && fits(&s.target) => sessions.remove(token),
                _ => None,
            }
        }
        .filter(|s| s.expires_at > now_ms())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidImportToken,
                "the import token is unknown, used, expired or for another key (tokens are \
                 single-use, last 24 hours and do not survive a restart): get new import \
                 parameters",
            )
        })?;
        let material = import::unwrap_material(session.algorithm, &session.key, wrapped)?;
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
        let (target, material) = self.take_import(
            tenant,
            import_token,
            |t| matches!(t, ImportTarget::RootKey { .. }),
            wrapped_material,
        )?;
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

    /// Import parameters for a service key with origin `EXTERNAL` that is waiting
    /// for its material (AWS GetParametersForImport).
    pub async fn key_import_parameters(
        &self,
        caller: &Caller,
        key: &KeyRef,
        algorithm: &str,
        key_spec: &str,
    ) -> Result<(KeyId, ImportParameters)> {
        let record = self
            .fresh_record(caller, key, Op::GetParametersForImport)
            .await?;
        let algorithm = WrappingAlgorithm::parse(algorithm)?;
        let key_spec = WrappingKeySpec::parse(key_spec)?;
        require_pending_import(&record)?;
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
    /// (AWS ImportKeyMaterial): it becomes the key's version 1, wrapped by the
    /// system key, and the key becomes active. After DeleteImportedKeyMaterial only
    /// the same material is accepted again.
    pub async fn import_key_material(
        &self,
        caller: &Caller,
        key: &KeyRef,
        import_token: &str,
        wrapped_material: &[u8],
    ) -> Result<KeyInfo> {
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .fresh_record(caller, key, Op::ImportKeyMaterial)
            .await?;
        require_pending_import(&record)?;
        let id = record.id;
        let (_, material) = self.take_import(
            record.tenant_id,
            import_token,
            |t| *t == ImportTarget::ServiceKey(id),
            wrapped_material,
        )?;
        let check = import::material_check(&material);
        match &record.import_check {
            Some(before) if !bool::from(before.as_bytes().ct_eq(check.as_bytes())) => {
                return Err(Error::new(
                    ErrorKind::IncorrectKeyMaterial,
                    format!(
                        "key {id} had other key material before: import the same material again"
                    ),
                ))
            }
            _ => {}
        }
        let system = self.system_record(record.system_id).await?;
        let wrapped = self
            .wrap_service_key(&system, id, record.primary_version, &material)
            .await?;
        record.state = record
            .state
            .transition(Transition::Activate)
            .map_err(|e| Error::new(ErrorKind::InvalidState, e.to_string()))?;
        record.import_check = Some(check);
        let version = KeyVersionRecord {
            key_id: id,
            version: record.primary_version,
            system_key_version: system.active_key_version,
            wrapped,
            origin: VersionOrigin::Creation,
            created_at: now_ms(),
        };
        changes
            .commit(vec![
                Write::PutServiceKey(record.clone()),
                Write::PutKeyVersion(version),
            ])
            .await?;
        self.keys.remove(&id);
        caller.note_key(crate::auth::KeyNote::of(
            &record,
            Some(record.primary_version),
        ));
        Ok(self.key_info(caller, record))
    }

    /// Erases the imported material of a service key with origin `EXTERNAL` (AWS
    /// DeleteImportedKeyMaterial): its ciphertexts stay undecryptable until the same
    /// material is imported again; the key waits for it.
    pub async fn delete_imported_key_material(&self, caller: &Caller, key: &KeyRef) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .fresh_record(caller, key, Op::DeleteImportedKeyMaterial)
            .await?;
        require_external(&record)?;
        if record.state == KeyState::PendingDeletion {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("key {} is pending deletion", record.id),
            ));
        }
        record.state = KeyState::PreActive;
        changes
            .commit(vec![
                Write::PutServiceKey(record.clone()),
                Write::DeleteKeyVersions(record.id),
            ])
            .await?;
        self.keys.remove(&record.id);
        Ok(())
    }
}

/// Only keys created with origin `EXTERNAL` take imported material.
fn require_external(record: &ServiceKeyRecord) -> Result<()> {
    if record.origin != ORIGIN_EXTERNAL {
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

/// An `EXTERNAL` key takes material while it waits for it (PendingImport).
fn require_pending_import(record: &ServiceKeyRecord) -> Result<()> {
    require_external(record)?;
    if record.state != KeyState::PreActive {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "key {} is {}: key material can be imported only while the key is pending \
                 import (delete the imported material first)",
                record.id, record.state
            ),
        ));
    }
    Ok(())
}
