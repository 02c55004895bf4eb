//! Access keys: creation (secret shown once), listing, enabling, deletion, and the
//! credential lookup the front doors use to authenticate requests.

use std::sync::Arc;

use super::{now_ms, random_token, Service};
use crate::auth::{authorize, Action, Principal, Target};
use crate::crypto::{KeyLevel, WrapBinding};
use crate::error::{Error, ErrorKind, Result};
use crate::model::*;
use crate::secret::{SecretBytes, SecretString};
use crate::store::Write;

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Meta key naming the service's credential root key.
pub(crate) const CREDENTIAL_ROOT_META: &str = "credential_root_key_id";

/// An authenticated identity with the secret needed to check its signatures.
pub struct Credential {
    /// Who this access key is.
    pub principal: Principal,
    secret: SecretBytes,
}

impl Credential {
    /// The secret access key, for SigV4 verification.
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// An access key as shown to callers (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// Access key id.
    pub id: String,
    /// Tenant, if any.
    pub tenant_id: Option<TenantId>,
    /// Role.
    pub role: Role,
    /// Name of the system it is scoped to, if any.
    pub system: Option<String>,
    /// Free text.
    pub description: String,
    /// Whether it may be used.
    pub enabled: bool,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A newly created access key: the only moment its secret is available.
#[derive(Debug)]
pub struct NewAccessKey {
    /// The key's public details.
    pub info: AccessKeyInfo,
    /// The secret access key; shown once, stored only sealed.
    pub secret: SecretString,
}

impl Service {
    /// The credential for `access_key_id`, cached for at most the revocation bound.
    pub async fn credential(&self, access_key_id: &str) -> Result<Arc<Credential>> {
        if let Some(c) = self.credentials.get(access_key_id) {
            return Ok(c);
        }
        let unknown = || {
            Error::new(
                ErrorKind::UnknownAccessKey,
                "the security token included in the request is invalid: unknown or disabled access key",
            )
        };
        let record = self
            .store
            .access_key(access_key_id)
            .await?
            .filter(|r| r.enabled)
            .ok_or_else(unknown)?;
        let account_id = match record.tenant_id {
            Some(t) => self.store.tenant(t).await?.ok_or_else(unknown)?.account_id,
            None => String::new(),
        };
        let secret = self.unseal_secret(&record).await?;
        let credential = Arc::new(Credential {
            principal: Principal {
                access_key_id: record.id.clone(),
                tenant_id: record.tenant_id,
                account_id,
                role: record.role,
                system_scope: record.system_id,
            },
            secret,
        });
        self.credentials
            .insert(record.id.clone(), Arc::clone(&credential));
        Ok(credential)
    }

    /// Authenticates `id:secret` bearer credentials (for scripts on the native API).
    pub async fn authenticate_bearer(&self, id: &str, secret: &str) -> Result<Principal> {
        let credential = self.credential(id).await?;
        if credential.secret.ct_eq(secret.as_bytes()) {
            Ok(credential.principal.clone())
        } else {
            Err(Error::new(
                ErrorKind::UnknownAccessKey,
                "the access key secret does not match",
            ))
        }
    }

    pub(crate) async fn credential_root(&self) -> Result<RootKeyRecord> {
        let id = self
            .store
            .meta(CREDENTIAL_ROOT_META)
            .await?
            .and_then(|s| RootKeyId::parse(&s))
            .ok_or_else(|| Error::internal("credential root key not configured"))?;
        self.store
            .root_key(id)
            .await?
            .ok_or_else(|| Error::internal("credential root key missing"))
    }

    fn secret_binding<'a>(
        record: &'a AccessKeyRecord,
        tenant: &'a str,
        root: &'a str,
    ) -> WrapBinding<'a> {
        WrapBinding {
            level: KeyLevel::AccessKeySecret,
            tenant,
            id: &record.id,
            version: 1,
            parent_id: root,
            parent_version: 1,
        }
    }

    async fn unseal_secret(&self, record: &AccessKeyRecord) -> Result<SecretBytes> {
        let root = self.credential_root().await?;
        let tenant = record.tenant_id.map(|t| t.to_string()).unwrap_or_default();
        let root_id = root.id.to_string();
        let aad = Self::secret_binding(record, &tenant, &root_id).to_aad();
        Ok(self
            .keystore(&root.keystore)?
            .unwrap(&root.handle, &record.sealed_secret, &aad)
            .await?)
    }

    /// Builds a new access key record with a fresh secret sealed under `root`.
    pub(crate) async fn mint_access_key(
        &self,
        root: &RootKeyRecord,
        tenant: Option<TenantId>,
        role: Role,
        system: Option<SystemId>,
        description: String,
    ) -> Result<(AccessKeyRecord, SecretString)> {
        let secret = SecretString::new(random_token(SECRET_ALPHABET, 40));
        let mut record = AccessKeyRecord {
            id: format!("KCM{}", random_token(ID_ALPHABET, 17)),
            tenant_id: tenant,
            role,
            system_id: system,
            sealed_secret: Vec::new(),
            description,
            enabled: true,
            created_at: now_ms(),
        };
        let tenant_str = tenant.map(|t| t.to_string()).unwrap_or_default();
        let root_id = root.id.to_string();
        let aad = Self::secret_binding(&record, &tenant_str, &root_id).to_aad();
        record.sealed_secret = self
            .keystore(&root.keystore)?
            .wrap(
                &root.handle,
                &SecretBytes::copy_from(secret.expose_secret().as_bytes()),
                &aad,
            )
            .await?;
        Ok((record, secret))
    }

    pub(crate) async fn access_key_info(&self, record: &AccessKeyRecord) -> Result<AccessKeyInfo> {
        let system = match record.system_id {
            Some(id) => self.store.system(id).await?.map(|s| s.name),
            None => None,
        };
        Ok(AccessKeyInfo {
            id: record.id.clone(),
            tenant_id: record.tenant_id,
            role: record.role,
            system,
            description: record.description.clone(),
            enabled: record.enabled,
            created_at: record.created_at,
        })
    }

    /// Creates an access key in the caller's tenant, optionally scoped to a system.
    pub async fn create_access_key(
        &self,
        principal: &Principal,
        role: Role,
        system: Option<&str>,
        description: String,
    ) -> Result<NewAccessKey> {
        let tenant = Self::own_tenant(principal)?;
        authorize(principal, Action::ManageTenant, Target::tenant(tenant))?;
        if role == Role::SystemAdmin {
            return Err(Error::invalid(
                "role system-admin cannot be given to a tenant access key",
            ));
        }
        if description.len() > 256 {
            return Err(Error::invalid("description is longer than 256 characters"));
        }
        let system_id = match system {
            Some(name) => Some(self.find_system(tenant, name).await?.id),
            None => None,
        };
        let root = self.credential_root().await?;
        let (record, secret) = self
            .mint_access_key(&root, Some(tenant), role, system_id, description)
            .await?;
        self.store
            .commit(vec![Write::PutAccessKey(record.clone())])
            .await?;
        Ok(NewAccessKey {
            info: self.access_key_info(&record).await?,
            secret,
        })
    }

    /// Access keys of the caller's tenant (the operator sees the operator's keys).
    pub async fn list_access_keys(&self, principal: &Principal) -> Result<Vec<AccessKeyInfo>> {
        match principal.tenant_id {
            Some(t) => authorize(principal, Action::ReadTenant, Target::tenant(t))?,
            None => authorize(principal, Action::ManageTenants, Target::OPERATOR)?,
        }
        let mut out = Vec::new();
        for record in self.store.access_keys(principal.tenant_id).await? {
            out.push(self.access_key_info(&record).await?);
        }
        Ok(out)
    }

    async fn own_access_key(&self, principal: &Principal, id: &str) -> Result<AccessKeyRecord> {
        let tenant = Self::own_tenant(principal)?;
        authorize(principal, Action::ManageTenant, Target::tenant(tenant))?;
        self.store
            .access_key(id)
            .await?
            .filter(|r| r.tenant_id == Some(tenant))
            .ok_or_else(|| Error::not_found(format!("access key {id} does not exist")))
    }

    /// Enables or disables an access key of the caller's tenant.
    pub async fn set_access_key_enabled(
        &self,
        principal: &Principal,
        id: &str,
        enabled: bool,
    ) -> Result<AccessKeyInfo> {
        let _guard = self.writes.lock().await;
        let mut record = self.own_access_key(principal, id).await?;
        if !enabled && record.id == principal.access_key_id {
            return Err(Error::invalid(
                "an access key cannot disable itself; use another tenant-admin key",
            ));
        }
        record.enabled = enabled;
        self.store
            .commit(vec![Write::PutAccessKey(record.clone())])
            .await?;
        self.credentials.remove(&record.id);
        self.access_key_info(&record).await
    }

    /// Deletes an access key of the caller's tenant.
    pub async fn delete_access_key(&self, principal: &Principal, id: &str) -> Result<()> {
        let _guard = self.writes.lock().await;
        let record = self.own_access_key(principal, id).await?;
        if record.id == principal.access_key_id {
            return Err(Error::invalid(
                "an access key cannot delete itself; use another tenant-admin key",
            ));
        }
        self.store
            .commit(vec![Write::DeleteAccessKey(record.id.clone())])
            .await?;
        self.credentials.remove(&record.id);
        Ok(())
    }
}
