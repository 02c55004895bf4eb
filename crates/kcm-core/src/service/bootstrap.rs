//! First start: the service's credential root key, the operator's system-admin key,
//! and the `default` tenant with its tenant-admin key.

use super::access_keys::CREDENTIAL_ROOT_META;
use super::tenants::new_roots;
use super::{now_ms, Service};
use crate::error::Result;
use crate::lifecycle::Lifecycle;
use crate::model::*;
use crate::secret::SecretString;
use crate::store::Write;

const BOOTSTRAPPED_META: &str = "bootstrapped_at";

/// The credentials made at first start, to be written to the `credentials` file.
#[derive(Debug)]
pub struct BootstrapCredentials {
    /// Tenant-admin of the `default` tenant (profile `default`).
    pub tenant_admin: (String, SecretString),
    /// The operator (profile `system-admin`).
    pub system_admin: (String, SecretString),
}

impl Service {
    /// On a fresh store, creates everything a first start needs and hands the new
    /// credentials to `persist` *before* committing, so an acknowledged bootstrap
    /// always has its credentials on disk. Returns `false` if already bootstrapped.
    pub async fn bootstrap_if_fresh(
        &self,
        persist: impl FnOnce(&BootstrapCredentials) -> std::io::Result<()>,
    ) -> Result<bool> {
        let mut changes = self.lock_changes().await?;
        if self.store.meta(BOOTSTRAPPED_META).await?.is_some() {
            return Ok(false);
        }
        let now = now_ms();
        let root_id = RootKeyId::new_random();
        let credential_root = RootKeyRecord {
            id: root_id,
            tenant_id: None,
            keystore: self.config.default_keystore.clone(),
            handle: self
                .default_keystore()
                .create_root_key(&format!("kcm-credentials-{root_id}"))
                .await?,
            origin: RootKeyOrigin::Generated,
            lifecycle: Lifecycle::active(),
            description: "wraps the credential key and the audit signing key".into(),
            created_at: now,
        };
        let writes = match self
            .bootstrap_writes(credential_root.clone(), now, persist)
            .await
        {
            Ok(writes) => writes,
            Err(e) => {
                // Nothing was committed: the new credential root is of no use.
                self.discard_new_roots(&[credential_root]).await;
                return Err(e);
            }
        };
        // On a refused commit the credential root and the tenant's root are erased.
        self.commit_with_new_roots(&mut changes, writes).await?;
        Ok(true)
    }

    /// Everything a bootstrap writes, once the credential root key exists; the
    /// credentials are persisted before this returns.
    async fn bootstrap_writes(
        &self,
        credential_root: RootKeyRecord,
        now: UnixMillis,
        persist: impl FnOnce(&BootstrapCredentials) -> std::io::Result<()>,
    ) -> Result<Vec<Write>> {
        let root_id = credential_root.id;
        let credential_key = self.new_credential_key(&credential_root).await?;
        let (operator, operator_secret) = self
            .mint_access_key(
                CredentialKind::SigV4,
                None,
                Role::SystemAdmin,
                None,
                None,
                "bootstrap system-admin key".into(),
            )
            .await?;
        let (mut writes, tenant) = self.mint_tenant("default").await?;
        let credentials = BootstrapCredentials {
            tenant_admin: (tenant.access_key.info.id.clone(), tenant.access_key.secret),
            system_admin: (operator.id.clone(), operator_secret),
        };
        if let Err(e) = persist(&credentials) {
            // The default tenant's root key is new too, and now of no use.
            self.discard_new_roots(&new_roots(&writes)).await;
            return Err(crate::error::Error::internal(format!(
                "cannot write the credentials file: {e}"
            )));
        }
        writes.extend([
            Write::PutRootKey(credential_root),
            credential_key,
            Write::PutAccessKey(operator),
            Write::PutMeta {
                key: CREDENTIAL_ROOT_META.into(),
                value: root_id.to_string(),
            },
            Write::PutMeta {
                key: BOOTSTRAPPED_META.into(),
                value: now.to_string(),
            },
        ]);
        Ok(writes)
    }
}
