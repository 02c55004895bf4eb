//! Tenants: created by the operator, each with a root key, a `default` system and a
//! first tenant-admin access key.

use super::access_keys::NewAccessKey;
use super::change_lock::ChangeGuard;
use super::systems::validate_name;
use super::{now_ms, Service};
use crate::authz::{authorize, authorize_op, Caller, Op, Target};
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::model::*;
use crate::store::{StoreError, StoreResult, Write};

/// The root keys `writes` would record.
pub(crate) fn new_roots(writes: &[Write]) -> Vec<RootKeyRecord> {
    writes
        .iter()
        .filter_map(|w| match w {
            Write::PutRootKey(root) => Some(root.clone()),
            _ => None,
        })
        .collect()
}

/// Name of the system every tenant gets.
pub const DEFAULT_SYSTEM: &str = "default";

/// A newly created tenant and its first tenant-admin access key.
#[derive(Debug)]
pub struct NewTenant {
    /// The tenant.
    pub tenant: TenantRecord,
    /// Its first tenant-admin access key (secret shown once).
    pub access_key: NewAccessKey,
}

impl Service {
    /// The writes that create a tenant with its root key, default system and first
    /// tenant-admin key.
    pub(crate) async fn mint_tenant(&self, name: &str) -> Result<(Vec<Write>, NewTenant)> {
        validate_name("tenant", name)?;
        let now = now_ms();
        let tenant_id = TenantId::new_random();
        let root_id = RootKeyId::new_random();
        let handle = self
            .default_keystore()
            .create_root_key(&format!("kcm-root-{root_id}"))
            .await?;
        let root = RootKeyRecord {
            id: root_id,
            tenant_id: Some(tenant_id),
            keystore: self.config.default_keystore.clone(),
            handle,
            origin: RootKeyOrigin::Generated,
            lifecycle: Lifecycle::active(),
            description: format!("default root key of tenant {name}"),
            created_at: now,
        };
        match self.mint_tenant_below(root.clone(), name, now).await {
            Ok(minted) => Ok(minted),
            Err(e) => {
                self.discard_new_roots(&[root]).await;
                Err(e)
            }
        }
    }

    /// [`Service::mint_tenant`] once its root key exists.
    async fn mint_tenant_below(
        &self,
        root: RootKeyRecord,
        name: &str,
        now: UnixMillis,
    ) -> Result<(Vec<Write>, NewTenant)> {
        let tenant_id = root
            .tenant_id
            .expect("a tenant's root key names its tenant");
        let default_system = super::NewSystem {
            name: DEFAULT_SYSTEM.into(),
            kind: "default".into(),
            description: "the tenant's default system".into(),
            link: true,
            ..Default::default()
        };
        let (system, system_key) = self
            .mint_system(tenant_id, Some(&root), &default_system)
            .await?;
        let system_key = system_key.expect("a linked system has a system key");
        let mut account = [0u8; 8];
        crate::crypto::fill_random(&mut account);
        let tenant = TenantRecord {
            id: tenant_id,
            name: name.to_string(),
            account_id: format!("{:012}", u64::from_be_bytes(account) % 1_000_000_000_000),
            default_root_key_id: root.id,
            default_system_id: system.id,
            created_at: now,
        };
        let (key, secret) = self
            .mint_access_key(
                CredentialKind::SigV4,
                Some(tenant_id),
                Role::TenantAdmin,
                None,
                None,
                format!("first tenant-admin key of {name}"),
            )
            .await?;
        let writes = vec![
            Write::PutTenant(tenant.clone()),
            Write::PutRootKey(root),
            Write::PutSystem(system.clone()),
            Write::PutSystemKey(system_key),
            Write::PutAccessKey(key.clone()),
        ];
        let info = AccessKeyInfo {
            arn: Some(crate::policy::principal::user_arn(
                &tenant.account_id,
                &key.id,
            )),
            id: key.id,
            kind: CredentialKind::SigV4,
            tenant_id: Some(tenant_id),
            role: Role::TenantAdmin,
            system: None,
            description: key.description,
            enabled: true,
            operations: None,
            created_at: key.created_at,
        };
        Ok((
            writes,
            NewTenant {
                tenant,
                access_key: NewAccessKey { info, secret },
            },
        ))
    }

    /// Creates a tenant (system-admin only).
    pub async fn create_tenant(&self, caller: &Caller, name: &str) -> Result<NewTenant> {
        authorize(&caller.principal, Op::CreateTenant, Target::OPERATOR)?;
        let mut changes = self.lock_changes().await?;
        let exists = format!("a tenant named {name}");
        if self.store.tenant_by_name(name).await?.is_some() {
            return Err(Error::already_exists(exists));
        }
        let (writes, new) = self.mint_tenant(name).await?;
        self.commit_with_new_roots(&mut changes, writes)
            .await
            .map_err(Error::conflict_means_exists(exists))?;
        Ok(new)
    }

    /// Commits `writes`; if the store refuses them outright (a conflict: nothing was
    /// written), erases the root keys they would have recorded, so a failed creation
    /// leaves no key behind in an HSM. After any other failure the outcome is not
    /// known for certain, and a stray key is far better than erasing a live one.
    pub(crate) async fn commit_with_new_roots(
        &self,
        changes: &mut ChangeGuard<'_>,
        writes: Vec<Write>,
    ) -> StoreResult<()> {
        let roots = new_roots(&writes);
        let outcome = changes.commit(writes).await;
        if let Err(StoreError::Conflict(_)) = &outcome {
            self.discard_new_roots(&roots).await;
        }
        outcome
    }

    /// Erases root keys generated for a creation that failed before anything was
    /// committed. Best effort: a failure is logged, not returned (the caller is
    /// already reporting the error that matters).
    pub(crate) async fn discard_new_roots(&self, roots: &[RootKeyRecord]) {
        for root in roots {
            let outcome = match self.keystore(&root.keystore) {
                Ok(keystore) => keystore.destroy(&root.handle).await.map_err(Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(root_key = %root.id, keystore = %root.keystore, error = %e,
                    "could not erase the root key of a failed creation; it is unused");
            }
        }
    }

    /// Every tenant (system-admin only).
    pub async fn list_tenants(&self, caller: &Caller) -> Result<Vec<TenantRecord>> {
        authorize(&caller.principal, Op::ListTenants, Target::OPERATOR)?;
        Ok(self.store.tenants().await?)
    }

    /// One tenant by id or name: the operator sees any; a tenant principal only its own.
    pub async fn get_tenant(&self, caller: &Caller, name_or_id: &str) -> Result<TenantRecord> {
        let op = if caller.principal.tenant_id.is_some() {
            Op::GetTenant
        } else {
            Op::ListTenants
        };
        authorize_op(&caller.principal, op)?;
        let found = match TenantId::parse(name_or_id) {
            Some(id) => self.store.tenant(id).await?,
            None => self.store.tenant_by_name(name_or_id).await?,
        };
        let not_found = || Error::not_found(format!("tenant {name_or_id} does not exist"));
        let tenant = found.ok_or_else(not_found)?;
        if caller.principal.tenant_id.is_some() {
            // Other tenants are invisible; the caller's own tenant needs ReadTenant.
            if caller.principal.tenant_id != Some(tenant.id) {
                return Err(not_found());
            }
            authorize(&caller.principal, Op::GetTenant, Target::tenant(tenant.id))?;
        } else {
            authorize(&caller.principal, Op::ListTenants, Target::OPERATOR)?;
        }
        Ok(tenant)
    }
}

use super::access_keys::AccessKeyInfo;
