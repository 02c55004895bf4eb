//! Systems: consumer environments, each with a system key (L2) wrapped by a root key.

use super::chain::system_key_binding;
use super::{now_ms, Service};
use crate::auth::{authorize, Caller, Op, Target};
use crate::error::{Error, Result};
use crate::lifecycle::{KeyState, Operation};
use crate::model::*;
use crate::secret::SecretBytes;
use crate::store::Write;

/// Whether a system's chain lets it work, derived from its keys' states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemStatus {
    /// Every key above the system's service keys is active.
    Connected,
    /// Some key above is not active; the reason names it.
    Locked(String),
}

impl SystemStatus {
    /// `connected`, or `locked: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            SystemStatus::Connected => "connected".into(),
            SystemStatus::Locked(reason) => format!("locked: {reason}"),
        }
    }
}

/// A system as shown to callers.
#[derive(Clone, Debug)]
pub struct SystemInfo {
    /// The stored record.
    pub record: SystemRecord,
    /// The root key its system key is wrapped by.
    pub root_key_id: RootKeyId,
    /// State of its active system key.
    pub system_key_state: KeyState,
    /// Derived status.
    pub status: SystemStatus,
}

pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok && uuid::Uuid::try_parse(name).is_ok() {
        return Err(Error::invalid(format!(
            "{what} name {name:?} looks like an id; choose a name that is not a UUID"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} name {name:?} is invalid: use 1–64 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl Service {
    /// Builds a system with a fresh system key wrapped by `root` (not yet written).
    pub(crate) async fn mint_system(
        &self,
        tenant: TenantId,
        root: &RootKeyRecord,
        name: &str,
        kind: &str,
        description: &str,
    ) -> Result<(SystemRecord, SystemKeyRecord)> {
        if !root.state.allows(Operation::Wrap) {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidState,
                format!(
                    "root key {} is {}: no new system key can be wrapped by it",
                    root.id, root.state
                ),
            ));
        }
        let now = now_ms();
        let system = SystemRecord {
            id: SystemId::new_random(),
            tenant_id: tenant,
            name: name.to_string(),
            kind: kind.to_string(),
            description: description.to_string(),
            active_key_version: 1,
            created_at: now,
        };
        let aad = system_key_binding(
            &tenant.to_string(),
            &system.id.to_string(),
            1,
            &root.id.to_string(),
        )
        .to_aad();
        let material = SecretBytes::random(crate::crypto::KEY_LEN);
        let wrapped = self
            .keystore(&root.keystore)?
            .wrap(&root.handle, &material, &aad)
            .await?;
        let key = SystemKeyRecord {
            system_id: system.id,
            version: 1,
            root_key_id: root.id,
            wrapped,
            state: KeyState::Active,
            created_at: now,
        };
        Ok((system, key))
    }

    pub(crate) async fn find_system(
        &self,
        tenant: TenantId,
        name_or_id: &str,
    ) -> Result<SystemRecord> {
        let found = match SystemId::parse(name_or_id) {
            Some(id) => self
                .store
                .system(id)
                .await?
                .filter(|s| s.tenant_id == tenant),
            None => self.store.system_by_name(tenant, name_or_id).await?,
        };
        found.ok_or_else(|| Error::not_found(format!("system {name_or_id} does not exist")))
    }

    pub(crate) async fn system_info(&self, record: SystemRecord) -> Result<SystemInfo> {
        let key = self
            .store
            .system_key(record.id, record.active_key_version)
            .await?
            .ok_or_else(|| Error::internal(format!("system key of {} missing", record.id)))?;
        let root = self
            .store
            .root_key(key.root_key_id)
            .await?
            .ok_or_else(|| Error::internal(format!("root key {} missing", key.root_key_id)))?;
        let status = if !root.state.allows(Operation::Wrap) {
            SystemStatus::Locked(format!("root key {} is {}", root.id, root.state))
        } else if !key.state.allows(Operation::Wrap) {
            SystemStatus::Locked(format!("system key is {}", key.state))
        } else if let Err(e) = self.keystore(&root.keystore)?.health().await {
            // Cached material may still serve requests for a while, but nothing new
            // can be unwrapped: say so before the cache runs out.
            tracing::warn!(keystore = %root.keystore, error = %e, "keystore health check failed");
            SystemStatus::Locked(format!("keystore {} is unreachable", root.keystore))
        } else if let Err(crate::keystore::KeystoreError::KeyUnusable(why)) = self
            .keystore(&root.keystore)?
            .check_root_key(&root.handle)
            .await
        {
            let whose = if root.origin == RootKeyOrigin::External {
                "revoked by its holder"
            } else {
                "gone from its keystore"
            };
            tracing::warn!(root_key = %root.id, %why, "root key unusable");
            SystemStatus::Locked(format!("root key {} is {whose}", root.id))
        } else {
            SystemStatus::Connected
        };
        Ok(SystemInfo {
            record,
            root_key_id: root.id,
            system_key_state: key.state,
            status,
        })
    }

    /// Registers a system in the caller's tenant, linked to `root_key` (an id of one
    /// of the tenant's root keys) or, when `None`, to the tenant's default root key.
    pub async fn create_system(
        &self,
        caller: &Caller,
        name: &str,
        kind: &str,
        description: &str,
        root_key: Option<&str>,
    ) -> Result<SystemInfo> {
        let tenant_id = Self::own_tenant(&caller.principal)?;
        authorize(
            &caller.principal,
            Op::CreateSystem,
            Target::tenant(tenant_id),
        )?;
        validate_name("system", name)?;
        if kind.len() > 64 || description.len() > 256 {
            return Err(Error::invalid(
                "system kind must be at most 64 and description at most 256 characters",
            ));
        }
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| Error::internal("caller's tenant is missing"))?;
        let root = match root_key {
            Some(id) => RootKeyId::parse(id)
                .ok_or_else(|| Error::not_found(format!("root key {id} does not exist")))?,
            None => tenant.default_root_key_id,
        };
        let root = self
            .store
            .root_key(root)
            .await?
            .filter(|r| r.tenant_id == Some(tenant_id))
            .ok_or_else(|| Error::not_found(format!("root key {root} does not exist")))?;
        let (system, key) = self
            .mint_system(tenant_id, &root, name, kind, description)
            .await?;
        self.store
            .commit(vec![
                Write::PutSystem(system.clone()),
                Write::PutSystemKey(key),
            ])
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => Error::new(
                    crate::error::ErrorKind::AlreadyExists,
                    format!("a system named {name} already exists"),
                ),
                other => other.into(),
            })?;
        self.system_info(system).await
    }

    /// Systems of the caller's tenant (a scoped key sees only its own system).
    pub async fn list_systems(&self, caller: &Caller) -> Result<Vec<SystemInfo>> {
        let tenant = Self::own_tenant(&caller.principal)?;
        authorize(&caller.principal, Op::ListSystems, Target::tenant(tenant))?;
        self.visible_systems(caller, tenant).await
    }

    /// The tenant's systems the caller may see (a scoped key: only its own), already
    /// authorised by the calling operation.
    pub(crate) async fn visible_systems(
        &self,
        caller: &Caller,
        tenant: TenantId,
    ) -> Result<Vec<SystemInfo>> {
        let mut out = Vec::new();
        for record in self.store.systems(tenant).await? {
            if caller.principal.system_scope.is_none_or(|s| s == record.id) {
                out.push(self.system_info(record).await?);
            }
        }
        Ok(out)
    }

    /// One system of the caller's tenant, by id or name.
    pub async fn get_system(&self, caller: &Caller, name_or_id: &str) -> Result<SystemInfo> {
        let tenant = Self::own_tenant(&caller.principal)?;
        authorize(&caller.principal, Op::GetSystem, Target::tenant(tenant))?;
        let record = self.find_system(tenant, name_or_id).await?;
        authorize(
            &caller.principal,
            Op::GetSystem,
            Target::system(tenant, record.id),
        )?;
        self.system_info(record).await
    }

    /// Links a system of the caller's tenant to another of its root keys: every
    /// version of the system key is unwrapped by the old root and wrapped by the new
    /// one, in one commit. Nothing below changes — no service key, no ciphertext —
    /// so everything encrypted before still decrypts. Both root keys must be active.
    pub async fn switch_system_root(
        &self,
        caller: &Caller,
        name_or_id: &str,
        root_key: &str,
    ) -> Result<SystemInfo> {
        let tenant_id = Self::authorize_in_own_tenant(caller, Op::SwitchSystemRootKey)?;
        let _guard = self.writes.lock().await;
        let system = self.find_system(tenant_id, name_or_id).await?;
        let new_root = RootKeyId::parse(root_key)
            .ok_or_else(|| Error::not_found(format!("root key {root_key} does not exist")))?;
        let new_root = self
            .store
            .root_key(new_root)
            .await?
            .filter(|r| r.tenant_id == Some(tenant_id))
            .ok_or_else(|| Error::not_found(format!("root key {root_key} does not exist")))?;
        let refuse = |root: &RootKeyRecord, what: &str| {
            Error::new(
                crate::error::ErrorKind::InvalidState,
                format!("root key {} is {}: {what}", root.id, root.state),
            )
        };
        if !new_root.state.allows(Operation::Wrap) {
            return Err(refuse(&new_root, "it cannot wrap the system key"));
        }
        let tenant = tenant_id.to_string();
        let system_id = system.id.to_string();
        let mut writes = Vec::new();
        for version in 1..=system.active_key_version {
            let Some(mut key) = self.store.system_key(system.id, version).await? else {
                continue;
            };
            if key.root_key_id == new_root.id {
                continue;
            }
            let old_root = self.store.root_key(key.root_key_id).await?.ok_or_else(|| {
                Error::internal(format!("root key {} is missing", key.root_key_id))
            })?;
            if !old_root.state.allows(Operation::Unwrap) {
                return Err(refuse(
                    &old_root,
                    "it cannot unwrap the system key to move it",
                ));
            }
            let old_aad =
                system_key_binding(&tenant, &system_id, version, &old_root.id.to_string()).to_aad();
            let material = self
                .keystore(&old_root.keystore)?
                .unwrap(&old_root.handle, &key.wrapped, &old_aad)
                .await?;
            let new_aad =
                system_key_binding(&tenant, &system_id, version, &new_root.id.to_string()).to_aad();
            key.wrapped = self
                .keystore(&new_root.keystore)?
                .wrap(&new_root.handle, &material, &new_aad)
                .await?;
            key.root_key_id = new_root.id;
            writes.push(Write::PutSystemKey(key));
        }
        if !writes.is_empty() {
            self.store.commit(writes).await?;
            // Cached chains still name the old root and its state.
            self.keys.clear();
            self.system_keys.clear();
        }
        self.system_info(system).await
    }
}
