//! Systems: consumer environments, each with a system key (L2) wrapped by a root key.

use super::change_lock::ChangeGuard;
use super::{now_ms, Service};
use crate::authz::{authorize, Caller, Op, Target};
use crate::crypto::WrapBinding;
use crate::error::{Error, Result};
use crate::lifecycle::{KeyState, KeyUse, Lifecycle, Transition};
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
    /// Not linked to any root key: it holds no system key, so nothing can be
    /// created or used in it until it is linked.
    Unlinked,
}

impl SystemStatus {
    /// `connected`, or `locked: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            SystemStatus::Connected => "connected".into(),
            SystemStatus::Locked(reason) => format!("locked: {reason}"),
            SystemStatus::Unlinked => "unlinked".into(),
        }
    }
}

/// A system as shown to callers.
#[derive(Clone, Debug)]
pub struct SystemInfo {
    /// The stored record.
    pub record: SystemRecord,
    /// The root key its system key is wrapped by (`None` when unlinked).
    pub root_key_id: Option<RootKeyId>,
    /// State of its active system key (`None` when unlinked).
    pub system_key_state: Option<KeyState>,
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

/// What version `version` of `system`'s key is bound to when `root` wraps it.
pub(crate) fn system_key_aad(system: &SystemRecord, version: u32, root: RootKeyId) -> Vec<u8> {
    WrapBinding::SystemKey {
        tenant: system.tenant_id,
        system: system.id,
        version,
        root,
    }
    .to_aad()
}

impl Service {
    /// Builds a system (not yet written) and, when `root` is given, its first
    /// system key wrapped by it.
    pub(crate) async fn mint_system(
        &self,
        tenant: TenantId,
        root: Option<&RootKeyRecord>,
        new: &NewSystem,
    ) -> Result<(SystemRecord, Option<SystemKeyRecord>)> {
        let now = now_ms();
        let mut system = SystemRecord {
            id: SystemId::new_random(),
            tenant_id: tenant,
            name: new.name.clone(),
            kind: new.kind.clone(),
            description: new.description.clone(),
            region: new.region.clone(),
            labels: new.labels.clone(),
            active_key_version: 0,
            created_at: now,
        };
        let key = match root {
            Some(root) => Some(self.mint_system_key(&mut system, root).await?),
            None => None,
        };
        Ok((system, key))
    }

    /// A fresh system key for `system`, wrapped by `root`, as the next version
    /// (which `system` now names as active). Nothing is written.
    pub(crate) async fn mint_system_key(
        &self,
        system: &mut SystemRecord,
        root: &RootKeyRecord,
    ) -> Result<SystemKeyRecord> {
        if !root.lifecycle.state().allows(KeyUse::Wrap) {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidState,
                format!(
                    "root key {} is {}: no new system key can be wrapped by it",
                    root.id,
                    root.lifecycle.state()
                ),
            ));
        }
        // Versions only grow, so a relinked system never reuses the binding of a
        // key it had before.
        let version = system.active_key_version + 1;
        let aad = system_key_aad(system, version, root.id);
        let material = SecretBytes::random(crate::crypto::KEY_LEN);
        let wrapped = self
            .keystore(&root.keystore)?
            .wrap(&root.handle, &material, &aad)
            .await?;
        system.active_key_version = version;
        Ok(SystemKeyRecord {
            system_id: system.id,
            version,
            root_key_id: root.id,
            wrapped,
            lifecycle: Lifecycle::active(),
            created_at: now_ms(),
        })
    }

    /// The start of every change to one system of the caller's tenant: authorises
    /// `op` (before anything is read), takes the change lock, then reads the system
    /// `name_or_id` names under it.
    pub(crate) async fn lock_own_system(
        &self,
        caller: &Caller,
        op: Op,
        name_or_id: &str,
    ) -> Result<(ChangeGuard<'_>, SystemRecord, TenantId)> {
        let tenant = Self::authorize_in_own_tenant(caller, op)?;
        let changes = self.lock_changes().await?;
        let system = self.find_system(tenant, name_or_id).await?;
        Ok((changes, system, tenant))
    }

    /// Refuses a system with no active system key (InvalidState); `advice`, appended
    /// to the message, says what to do instead.
    async fn require_linked(&self, system: &SystemRecord, advice: &str) -> Result<()> {
        if self.active_system_key(system).await?.is_none() {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidState,
                format!("system {} is not linked to a root key{advice}", system.name),
            ));
        }
        Ok(())
    }

    /// Writes that retire `system`'s key `versions` (those not destroyed already)
    /// and erase their wrapped material, so nothing can be unwrapped by them again.
    pub(crate) async fn erased_system_keys(
        &self,
        system: &SystemRecord,
        versions: impl Iterator<Item = u32>,
    ) -> Result<Vec<Write>> {
        let mut writes = Vec::new();
        for version in versions {
            if let Some(mut key) = self.store.system_key(system.id, version).await? {
                if !key.lifecycle.state().is_destroyed() {
                    key.lifecycle.apply(Transition::Retire).map_err(|e| {
                        Error::internal(format!("system key {} v{version}: {e}", system.id))
                    })?;
                    key.wrapped = Vec::new();
                    writes.push(Write::PutSystemKey(key));
                }
            }
        }
        Ok(writes)
    }

    /// The system's active system key, or `None` when the system is unlinked
    /// (registered without a root key, or its keys erased by an unlink).
    pub(crate) async fn active_system_key(
        &self,
        system: &SystemRecord,
    ) -> Result<Option<SystemKeyRecord>> {
        if system.active_key_version == 0 {
            return Ok(None);
        }
        let key = self
            .stored_system_key(system, system.active_key_version)
            .await?;
        Ok((!key.lifecycle.state().is_destroyed()).then_some(key))
    }

    /// Whether `name_or_id` names the one system the caller is scoped to (a Vault
    /// namespace, which a token of that system may send): its name or id. A caller
    /// scoped to no system has no such name.
    pub async fn names_own_system(&self, caller: &Caller, name_or_id: &str) -> Result<bool> {
        let (Some(tenant), Some(scope)) =
            (caller.principal.tenant_id, caller.principal.system_scope)
        else {
            return Ok(false);
        };
        if SystemId::parse(name_or_id) == Some(scope) {
            return Ok(true);
        }
        Ok(self
            .store
            .system(scope)
            .await?
            .is_some_and(|s| s.tenant_id == tenant && s.name == name_or_id))
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
        self.probed_system_info(record, &mut KeystoreProbe::default())
            .await
    }

    /// [`Service::system_info`], asking the keystores through `probe`, so a listing
    /// asks each keystore and root key once however many systems hang below.
    async fn probed_system_info(
        &self,
        record: SystemRecord,
        probe: &mut KeystoreProbe,
    ) -> Result<SystemInfo> {
        let Some(key) = self.active_system_key(&record).await? else {
            return Ok(SystemInfo {
                record,
                root_key_id: None,
                system_key_state: None,
                status: SystemStatus::Unlinked,
            });
        };
        let root = self.stored_root_key(key.root_key_id).await?;
        let status = if !root.lifecycle.state().allows(KeyUse::Wrap) {
            SystemStatus::Locked(format!(
                "root key {} is {}",
                root.id,
                root.lifecycle.state()
            ))
        } else if !key.lifecycle.state().allows(KeyUse::Wrap) {
            SystemStatus::Locked(format!("system key is {}", key.lifecycle.state()))
        } else if let Some(reason) = self.keystore_lock(&root, probe).await? {
            SystemStatus::Locked(reason)
        } else {
            SystemStatus::Connected
        };
        Ok(SystemInfo {
            record,
            root_key_id: Some(root.id),
            system_key_state: Some(key.lifecycle.state()),
            status,
        })
    }

    /// Why the keystore side locks systems below `root` (unreachable keystore, root
    /// key gone or revoked by its holder), or `None`; asked once per keystore and
    /// root key per `probe`.
    async fn keystore_lock(
        &self,
        root: &RootKeyRecord,
        probe: &mut KeystoreProbe,
    ) -> Result<Option<String>> {
        if let Some(known) = probe.roots.get(&root.id) {
            return Ok(known.clone());
        }
        let keystore = self.keystore(&root.keystore)?;
        let healthy = match probe.healthy.get(&root.keystore) {
            Some(healthy) => *healthy,
            None => {
                let result = keystore.health().await;
                if let Err(e) = &result {
                    tracing::warn!(keystore = %root.keystore, error = %e, "keystore health check failed");
                }
                probe.healthy.insert(root.keystore.clone(), result.is_ok());
                result.is_ok()
            }
        };
        let lock = if !healthy {
            // Cached material may still serve requests for a while, but nothing new
            // can be unwrapped: say so before the cache runs out.
            Some(format!("keystore {} is unreachable", root.keystore))
        } else if let Err(crate::keystore::KeystoreError::KeyUnusable(why)) =
            keystore.check_root_key(&root.handle).await
        {
            let whose = if root.origin == RootKeyOrigin::External {
                "revoked by its holder"
            } else {
                "gone from its keystore"
            };
            tracing::warn!(root_key = %root.id, %why, "root key unusable");
            Some(format!("root key {} is {whose}", root.id))
        } else {
            None
        };
        probe.roots.insert(root.id, lock.clone());
        Ok(lock)
    }

    /// A root key of the tenant to link a system to: `root_key` (an id) or, when
    /// `None`, the tenant's default root key.
    pub(crate) async fn root_to_link(
        &self,
        tenant_id: TenantId,
        root_key: Option<&str>,
    ) -> Result<RootKeyRecord> {
        let root = match root_key {
            Some(id) => RootKeyId::parse(id)
                .ok_or_else(|| Error::not_found(format!("root key {id} does not exist")))?,
            None => self.default_root_of(tenant_id).await?,
        };
        self.store
            .root_key(root)
            .await?
            .filter(|r| r.tenant_id == Some(tenant_id))
            .ok_or_else(|| Error::not_found(format!("root key {root} does not exist")))
    }

    /// Registers a system in the caller's tenant. When `new.link` is set it is
    /// linked at once to `new.root_key` (an id of one of the tenant's root keys)
    /// or, when that is `None`, to the tenant's default root key; otherwise it is
    /// registered unlinked, to be linked later ([`Service::link_system`]).
    pub async fn create_system(&self, caller: &Caller, new: &NewSystem) -> Result<SystemInfo> {
        let tenant_id = Self::own_tenant_for(caller, Op::CreateSystem)?;
        new.validate()?;
        let root = if new.link {
            Some(
                self.root_to_link(tenant_id, new.root_key.as_deref())
                    .await?,
            )
        } else if new.root_key.is_some() {
            return Err(Error::invalid(
                "a system registered without a link cannot name a root key",
            ));
        } else {
            None
        };
        let (system, key) = self.mint_system(tenant_id, root.as_ref(), new).await?;
        let name = &new.name;
        let mut writes = vec![Write::PutSystem(system.clone())];
        writes.extend(key.map(Write::PutSystemKey));
        self.store
            .commit(writes)
            .await
            .map_err(Error::conflict_means_exists(format_args!(
                "a system named {name}"
            )))?;
        self.system_info(system).await
    }

    /// Systems of the caller's tenant (a scoped key sees only its own system).
    pub async fn list_systems(&self, caller: &Caller) -> Result<Vec<SystemInfo>> {
        let tenant = Self::own_tenant_for(caller, Op::ListSystems)?;
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
        let mut probe = KeystoreProbe::default();
        for record in self.store.systems(tenant).await? {
            if caller.principal.system_scope.is_none_or(|s| s == record.id) {
                out.push(self.probed_system_info(record, &mut probe).await?);
            }
        }
        Ok(out)
    }

    /// One system of the caller's tenant, by id or name.
    pub async fn get_system(&self, caller: &Caller, name_or_id: &str) -> Result<SystemInfo> {
        let tenant = Self::own_tenant_for(caller, Op::GetSystem)?;
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
        let (mut changes, system, tenant_id) = self
            .lock_own_system(caller, Op::SwitchSystemRootKey, name_or_id)
            .await?;
        self.require_linked(&system, ": link it instead of switching")
            .await?;
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
                format!("root key {} is {}: {what}", root.id, root.lifecycle.state()),
            )
        };
        if !new_root.lifecycle.state().allows(KeyUse::Wrap) {
            return Err(refuse(&new_root, "it cannot wrap the system key"));
        }
        let mut writes = Vec::new();
        for version in 1..=system.active_key_version {
            let Some(mut key) = self.store.system_key(system.id, version).await? else {
                continue;
            };
            if key.root_key_id == new_root.id || key.lifecycle.state().is_destroyed() {
                continue;
            }
            let old_root = self.stored_root_key(key.root_key_id).await?;
            if !old_root.lifecycle.state().allows(KeyUse::Unwrap) {
                return Err(refuse(
                    &old_root,
                    "it cannot unwrap the system key to move it",
                ));
            }
            let old_aad = system_key_aad(&system, version, old_root.id);
            let material = self
                .keystore(&old_root.keystore)?
                .unwrap(&old_root.handle, &key.wrapped, &old_aad)
                .await?;
            let new_aad = system_key_aad(&system, version, new_root.id);
            key.wrapped = self
                .keystore(&new_root.keystore)?
                .wrap(&new_root.handle, &material, &new_aad)
                .await?;
            key.root_key_id = new_root.id;
            writes.push(Write::PutSystemKey(key));
        }
        if !writes.is_empty() {
            changes.commit(writes).await?;
            // Cached chains still name the old root and its state.
            self.keys.clear();
            self.system_keys.clear();
        }
        self.system_info(system).await
    }

    /// Links an unlinked system of the caller's tenant to `root_key` (else the
    /// tenant's default root key): a fresh system key, wrapped by that root,
    /// becomes its next version. A linked system is switched, not linked again.
    pub async fn link_system(
        &self,
        caller: &Caller,
        name_or_id: &str,
        root_key: Option<&str>,
    ) -> Result<SystemInfo> {
        let (mut changes, mut system, tenant_id) = self
            .lock_own_system(caller, Op::LinkSystem, name_or_id)
            .await?;
        if let Some(key) = self.active_system_key(&system).await? {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidState,
                format!(
                    "system {} is already linked to root key {}; switch it to another root key instead",
                    system.name, key.root_key_id
                ),
            ));
        }
        let root = self.root_to_link(tenant_id, root_key).await?;
        let key = self.mint_system_key(&mut system, &root).await?;
        changes
            .commit(vec![
                Write::PutSystem(system.clone()),
                Write::PutSystemKey(key),
            ])
            .await?;
        self.system_keys.clear();
        self.system_info(system).await
    }

    /// Unlinks a system of the caller's tenant from its root key: every version
    /// of its system key is erased, so nothing below it can be used again.
    /// Refused while the system still holds service keys that are not deleted:
    /// unlinking would destroy them without the waiting period a deletion has.
    /// The system stays registered and can be linked again.
    pub async fn unlink_system(&self, caller: &Caller, name_or_id: &str) -> Result<SystemInfo> {
        let (mut changes, system, tenant_id) = self
            .lock_own_system(caller, Op::UnlinkSystem, name_or_id)
            .await?;
        self.require_linked(&system, "").await?;
        let live = self.live_service_keys_in(tenant_id, system.id).await?;
        if live > 0 {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidState,
                format!(
                    "system {} still holds {live} service key(s) that are not deleted; \
                     schedule their deletion and wait for it to complete (or switch the \
                     system to another root key) before unlinking",
                    system.name
                ),
            ));
        }
        let writes = self
            .erased_system_keys(&system, 1..=system.active_key_version)
            .await?;
        changes.commit(writes).await?;
        self.keys.clear();
        self.system_keys.clear();
        self.system_info(system).await
    }

    /// How many service keys of `system` are not yet destroyed.
    async fn live_service_keys_in(&self, tenant: TenantId, system: SystemId) -> Result<usize> {
        Ok(self.live_service_keys(tenant, Some(system)).await?.len())
    }

    /// Every service key of `tenant` that is not destroyed (only those below
    /// `system`, when given), by id.
    pub(crate) async fn live_service_keys(
        &self,
        tenant: TenantId,
        system: Option<SystemId>,
    ) -> Result<Vec<ServiceKeyRecord>> {
        const PAGE: usize = 500;
        let mut live = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.service_keys(tenant, after, PAGE).await?;
            let last_page = page.len() < PAGE;
            after = page.last().map(|k| k.id);
            live.extend(page.into_iter().filter(|k| {
                !k.lifecycle.state().is_destroyed() && system.is_none_or(|s| k.system_id == s)
            }));
            if last_page {
                return Ok(live);
            }
        }
    }
}

/// What the keystores said about root keys during one listing: each keystore's
/// health and each root key's lock reason, asked once (for an HSM or an XKS
/// proxy every question is a round trip).
#[derive(Default)]
struct KeystoreProbe {
    healthy: std::collections::HashMap<String, bool>,
    roots: std::collections::HashMap<RootKeyId, Option<String>>,
}

/// What a new system is registered with.
#[derive(Clone, Debug, Default)]
pub struct NewSystem {
    /// Unique within the tenant.
    pub name: String,
    /// Free-form kind (`kubernetes`, `storage`, `application`, …).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Where it runs (free form); may be empty.
    pub region: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Link it to a root key now (else it is registered unlinked).
    pub link: bool,
    /// The root key to link to (else the tenant's default root key).
    pub root_key: Option<String>,
}

/// Most labels on one system.
const MAX_LABELS: usize = 32;

impl NewSystem {
    fn validate(&self) -> Result<()> {
        validate_name("system", &self.name)?;
        // Characters, as the messages (and the OpenAPI document's maxLength) say.
        if self.kind.chars().count() > 64 || self.description.chars().count() > 256 {
            return Err(Error::invalid(
                "system kind must be at most 64 and description at most 256 characters",
            ));
        }
        let region_ok = self.region.len() <= 64
            && self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !region_ok {
            return Err(Error::invalid(format!(
                "system region {:?} is invalid: use at most 64 letters, digits, '-', '_' or '.'",
                self.region
            )));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(Error::invalid(format!(
                "a system has at most {MAX_LABELS} labels, not {}",
                self.labels.len()
            )));
        }
        for (key, value) in &self.labels {
            let key_ok = !key.is_empty()
                && key.len() <= 63
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
            if !key_ok {
                return Err(Error::invalid(format!(
                    "label name {key:?} is invalid: use 1–63 letters, digits, '-', '_', '.' or '/'"
                )));
            }
            if value.chars().count() > 256 || value.chars().any(char::is_control) {
                return Err(Error::invalid(format!(
                    "label {key:?}: the value must be at most 256 printable characters"
                )));
            }
        }
        Ok(())
    }
}
