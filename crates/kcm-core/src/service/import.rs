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

use super::root_keys::RootKeyInfo;
use super::{now_ms, Service};
use crate::auth::{authorize, authorize_op, Caller, Op, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::import::{self, WrappingAlgorithm, WrappingKeySpec};
use crate::lifecycle::KeyState;
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

/// One outstanding import.
pub(crate) struct ImportSession {
    tenant: TenantId,
    keystore: String,
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
        let tenant = self.authorize_root_import(caller, Op::GetRootKeyImportParameters)?;
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
                keystore: keystore.to_string(),
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
        let tenant = self.authorize_root_import(caller, Op::ImportRootKey)?;
        super::root_keys::check_description(description)?;
        let unknown = || {
            Error::invalid(
                "the import token is unknown, used or expired (tokens are single-use, last 24 \
                 hours and do not survive a restart): get new import parameters",
            )
        };
        let session = {
            let mut sessions = self.imports.sessions();
            // Another tenant's token is as unknown as a made-up one, and stays usable.
            match sessions.get(import_token) {
                Some(s) if s.tenant == tenant => sessions.remove(import_token),
                _ => None,
            }
        }
        .filter(|s| s.expires_at > now_ms())
        .ok_or_else(unknown)?;
        let material = import::unwrap_material(session.algorithm, &session.key, wrapped_material)?;
        drop(session.key);
        let provider = self.configured_keystore(&session.keystore)?;
        let id = RootKeyId::new_random();
        let handle = provider
            .import_root_key(&format!("kcm-root-{id}"), &material)
            .await?;
        let record = RootKeyRecord {
            id,
            tenant_id: Some(tenant),
            keystore: session.keystore,
            handle,
            origin: RootKeyOrigin::Imported,
            state: KeyState::Active,
            description: description.to_string(),
            created_at: now_ms(),
        };
        let info = self.root_key_info(&record, None);
        self.commit_with_new_roots(vec![Write::PutRootKey(record)])
            .await?;
        Ok(info)
    }

    /// Role and operation limit, then tenant: the import calls manage the tenant.
    fn authorize_root_import(&self, caller: &Caller, op: Op) -> Result<TenantId> {
        authorize_op(&caller.principal, op)?;
        let tenant = Self::own_tenant(&caller.principal)?;
        authorize(&caller.principal, op, Target::tenant(tenant))?;
        Ok(tenant)
    }
}
