//! A read-only view of a tenant's keychain: root keys → systems → service keys.

use std::collections::BTreeMap;

use super::Service;
use crate::authz::{Caller, Op};
use crate::error::Result;
use crate::lifecycle::KeyState;
use crate::model::*;

/// A service key in the keychain view.
#[derive(Clone, Debug)]
pub struct KeychainServiceKey {
    /// Key id.
    pub id: KeyId,
    /// Description.
    pub description: String,
    /// State.
    pub state: KeyState,
    /// Primary version.
    pub primary_version: u32,
    /// Aliases naming it.
    pub aliases: Vec<String>,
}

/// A system in the keychain view.
#[derive(Clone, Debug)]
pub struct KeychainSystem {
    /// System id.
    pub id: SystemId,
    /// Name.
    pub name: String,
    /// What kind of environment it is, as registered (e.g. `kubernetes`).
    pub kind: String,
    /// State of its active system key (`None` when unlinked).
    pub state: Option<KeyState>,
    /// Active system key version.
    pub system_key_version: u32,
    /// `connected`, `locked: …` or `unlinked`.
    pub status: String,
    /// Its service keys (not destroyed).
    pub service_keys: Vec<KeychainServiceKey>,
    /// How many managed objects (Barbican secrets and containers) its key seals.
    pub managed_objects: u64,
    /// The enabled access keys of kind `xks` scoped to it: AWS KMS reaches its keys
    /// through them (an external key store), so its kill switch reaches into AWS.
    pub xks_access_keys: Vec<String>,
    /// The KMIP clients (storage systems, hypervisors, databases) whose access
    /// keys are scoped to it, by the names this node's `[kmip_server]` gives them:
    /// its kill switch cuts them off.
    pub kmip_clients: Vec<String>,
    /// The enabled Vault tokens (access keys of kind `vault`) of it: what asks
    /// kcm's Vault API for its keys (Ceph's RADOS Gateway, Transit plugins).
    pub vault_tokens: Vec<String>,
}

/// A root key in the keychain view.
#[derive(Clone, Debug)]
pub struct KeychainRoot {
    /// Root key id.
    pub id: RootKeyId,
    /// Keystore instance.
    pub keystore: String,
    /// Origin.
    pub origin: RootKeyOrigin,
    /// State.
    pub state: KeyState,
    /// Systems linked to it.
    pub systems: Vec<KeychainSystem>,
}

/// The whole tree of a tenant.
#[derive(Clone, Debug)]
pub struct KeychainView {
    /// The tenant.
    pub tenant: TenantRecord,
    /// Its root keys with everything below.
    pub roots: Vec<KeychainRoot>,
    /// Systems linked to no root key.
    pub unlinked: Vec<KeychainSystem>,
}

impl Service {
    /// Records the KMIP clients this node serves, as (access key id, client name):
    /// the keychain view, and so the kill-switch preview, names them below the
    /// system their access key is scoped to.
    pub fn set_kmip_clients(&self, clients: Vec<(String, String)>) {
        *self
            .kmip_clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = clients;
    }

    /// The caller's keychain (a scoped access key sees only its system).
    pub async fn keychain(&self, caller: &Caller) -> Result<KeychainView> {
        let tenant_id = Self::own_tenant_for(caller, Op::GetKeychain)?;
        self.keychain_of(caller, tenant_id).await
    }

    /// The keychain of `tenant_id` as `caller` may see it (a scoped access key: only
    /// its system), for an operation the caller was already authorised for.
    pub(crate) async fn keychain_of(
        &self,
        caller: &Caller,
        tenant_id: TenantId,
    ) -> Result<KeychainView> {
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| crate::error::Error::internal("caller's tenant is missing"))?;
        let mut keys_by_system: BTreeMap<SystemId, Vec<ServiceKeyRecord>> = BTreeMap::new();
        for k in self.live_service_keys(tenant_id, None).await? {
            keys_by_system.entry(k.system_id).or_default().push(k);
        }
        let mut aliases_by_key: BTreeMap<KeyId, Vec<String>> = BTreeMap::new();
        for alias in self.store.aliases(tenant_id, None).await? {
            aliases_by_key
                .entry(alias.key_id)
                .or_default()
                .push(alias.name);
        }
        let mut roots: Vec<KeychainRoot> = self
            .store
            .root_keys(Some(tenant_id))
            .await?
            .into_iter()
            .map(|r| KeychainRoot {
                id: r.id,
                keystore: r.keystore,
                origin: r.origin,
                state: r.lifecycle.state(),
                systems: Vec::new(),
            })
            .collect();
        let mut xks_keys_by_system: BTreeMap<SystemId, Vec<String>> = BTreeMap::new();
        let mut kmip_clients_by_system: BTreeMap<SystemId, Vec<String>> = BTreeMap::new();
        let mut vault_tokens_by_system: BTreeMap<SystemId, Vec<String>> = BTreeMap::new();
        let kmip_clients = self
            .kmip_clients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for key in self.store.access_keys(Some(tenant_id)).await? {
            let (true, Some(system)) = (key.enabled, key.system_id) else {
                continue;
            };
            for (_, name) in kmip_clients.iter().filter(|(id, _)| *id == key.id) {
                kmip_clients_by_system
                    .entry(system)
                    .or_default()
                    .push(name.clone());
            }
            match key.kind() {
                CredentialKind::Xks => xks_keys_by_system.entry(system).or_default().push(key.id),
                CredentialKind::Vault => vault_tokens_by_system
                    .entry(system)
                    .or_default()
                    .push(key.id),
                CredentialKind::SigV4 => {}
            }
        }
        let mut unlinked = Vec::new();
        for info in self.visible_systems(caller, tenant_id).await? {
            let system = &info.record;
            let service_keys = keys_by_system
                .remove(&system.id)
                .unwrap_or_default()
                .into_iter()
                .map(|k| KeychainServiceKey {
                    aliases: aliases_by_key.remove(&k.id).unwrap_or_default(),
                    id: k.id,
                    description: k.description,
                    state: k.lifecycle.state(),
                    primary_version: k.primary_version,
                })
                .collect();
            let node = KeychainSystem {
                id: system.id,
                name: system.name.clone(),
                kind: system.kind.clone(),
                state: info.system_key_state,
                system_key_version: system.active_key_version,
                status: info.status.describe(),
                service_keys,
                managed_objects: self.store.managed_object_count(system.id).await?,
                xks_access_keys: xks_keys_by_system.remove(&system.id).unwrap_or_default(),
                kmip_clients: kmip_clients_by_system
                    .remove(&system.id)
                    .unwrap_or_default(),
                vault_tokens: vault_tokens_by_system
                    .remove(&system.id)
                    .unwrap_or_default(),
            };
            match info.root_key_id {
                Some(id) => {
                    if let Some(root) = roots.iter_mut().find(|r| r.id == id) {
                        root.systems.push(node);
                    }
                }
                None => unlinked.push(node),
            }
        }
        if caller.principal.system_scope.is_some() {
            // A scoped key sees only the chain above its own system.
            roots.retain(|r| !r.systems.is_empty());
        }
        Ok(KeychainView {
            tenant,
            roots,
            unlinked,
        })
    }
}
