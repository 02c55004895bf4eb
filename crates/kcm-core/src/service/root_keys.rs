//! Root keys (L1) as a tenant manages them: created in a keystore of its choice,
//! listed, and switched on and off — the kill switch. Disabling a root key makes
//! every system and key below it refuse every operation; suspending makes them
//! decrypt-only; enabling restores them. A dry run shows what would be cut off
//! without changing anything.

use super::keychain::KeychainSystem;
use super::{now_ms, Service};
use crate::authz::{Caller, Op};
use crate::crypto::WrapBinding;
use crate::error::{Error, ErrorKind, Result};
use crate::keystore::Capabilities;
use crate::lifecycle::{KeyState, Lifecycle, Transition};
use crate::model::*;
use crate::store::Write;

/// Longest root key description.
const MAX_DESCRIPTION: usize = 256;

/// A root key as shown to its tenant (never its handle).
#[derive(Clone, Debug)]
pub struct RootKeyInfo {
    /// Identifier.
    pub id: RootKeyId,
    /// Name of the keystore that holds it.
    pub keystore: String,
    /// Kind of that keystore (`software`, `pkcs11`, …).
    pub keystore_kind: &'static str,
    /// Origin.
    pub origin: RootKeyOrigin,
    /// Lifecycle state.
    pub state: KeyState,
    /// Free text.
    pub description: String,
    /// Whether new systems of the tenant are linked to it unless told otherwise.
    pub is_default: bool,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A state change of a root key: applied, or only previewed (a dry run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKeyChange {
    /// Disabled or suspended → active: everything below works again.
    Enable,
    /// → disabled: everything below refuses every operation.
    Disable,
    /// Active → suspended: everything below may only decrypt.
    Suspend,
    /// → compromised: everything below may only decrypt, to recover data, and
    /// never protects anything again (NIST SP 800-57 §5.3.7).
    MarkCompromised,
}

impl RootKeyChange {
    /// The operation this change is, as authorised and audited.
    pub fn op(self) -> Op {
        match self {
            RootKeyChange::Enable => Op::EnableRootKey,
            RootKeyChange::Disable => Op::DisableRootKey,
            RootKeyChange::Suspend => Op::SuspendRootKey,
            RootKeyChange::MarkCompromised => Op::MarkRootKeyCompromised,
        }
    }

    fn transition(self) -> Transition {
        match self {
            RootKeyChange::Enable => Transition::Enable,
            RootKeyChange::Disable => Transition::Disable,
            RootKeyChange::Suspend => Transition::Suspend,
            RootKeyChange::MarkCompromised => Transition::MarkCompromised,
        }
    }
}

/// What a state change of a root key does to the keychain below it.
#[derive(Clone, Debug)]
pub struct RootKeyImpact {
    /// The root key, in its state after the change (or, for a dry run, as it is).
    pub root: RootKeyInfo,
    /// The state before the change.
    pub previous_state: KeyState,
    /// The state the change leads (or would lead) to.
    pub new_state: KeyState,
    /// Whether the change was made (`false`: a dry run).
    pub applied: bool,
    /// Every system linked to the root key, with its service keys.
    pub systems: Vec<KeychainSystem>,
}

/// What a new root key asks of the keystore it goes into.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeystoreAbility {
    /// Generating the key inside the keystore.
    Generate,
    /// Importing the customer's material (BYOK).
    Import,
    /// Referring to a key the keystore does not hold (HYOK).
    Reference,
}

impl KeystoreAbility {
    fn offered(self, capabilities: &Capabilities) -> bool {
        match self {
            KeystoreAbility::Generate => capabilities.generate,
            KeystoreAbility::Import => capabilities.import,
            KeystoreAbility::Reference => capabilities.reference,
        }
    }

    /// What a keystore without the ability cannot do, as the caller is told.
    fn refusal(self) -> &'static str {
        match self {
            KeystoreAbility::Generate => "cannot generate root keys",
            KeystoreAbility::Import => "cannot import key material",
            KeystoreAbility::Reference => "cannot refer to keys it does not hold",
        }
    }
}

/// Refuses a root key description that is too long.
pub(crate) fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

impl Service {
    /// Creates a root key for the caller's tenant, generated inside `keystore` (the
    /// service's default keystore when `None`).
    pub async fn create_root_key(
        &self,
        caller: &Caller,
        keystore: Option<&str>,
        description: &str,
    ) -> Result<RootKeyInfo> {
        let tenant_id = Self::authorize_in_own_tenant(caller, Op::CreateRootKey)?;
        check_description(description)?;
        let (name, provider) = self.keystore_able_to(keystore, KeystoreAbility::Generate)?;
        let id = RootKeyId::new_random();
        let handle = provider.create_root_key(&format!("kcm-root-{id}")).await?;
        self.record_new_root(
            tenant_id,
            id,
            name,
            handle,
            RootKeyOrigin::Generated,
            description,
        )
        .await
    }

    /// Records a tenant's new, active root key whose material (or reference) the
    /// keystore already holds. For material kcm created or imported, a commit the
    /// store refuses erases it again; a reference (HYOK) is the customer's key, so it
    /// is committed plainly and never erased.
    pub(crate) async fn record_new_root(
        &self,
        tenant_id: TenantId,
        id: RootKeyId,
        keystore: &str,
        handle: Vec<u8>,
        origin: RootKeyOrigin,
        description: &str,
    ) -> Result<RootKeyInfo> {
        let record = RootKeyRecord {
            id,
            tenant_id: Some(tenant_id),
            keystore: keystore.to_string(),
            handle,
            origin,
            lifecycle: Lifecycle::active(),
            description: description.to_string(),
            created_at: now_ms(),
        };
        let info = self.root_key_info(&record, None);
        let writes = vec![Write::PutRootKey(record)];
        let mut changes = self.lock_changes().await?;
        match origin {
            RootKeyOrigin::External => changes.commit(writes).await?,
            RootKeyOrigin::Generated | RootKeyOrigin::Imported => {
                self.commit_with_new_roots(&mut changes, writes).await?
            }
        }
        Ok(info)
    }

    /// Makes a key that already lives in a keystore, and stays the customer's, a
    /// root key of the caller's tenant (HYOK): kcm holds only a reference, every
    /// unwrap below it calls the keystore, and the holder can revoke it there at any
    /// time (noticed within `external_check_interval`). `reference` names the key in
    /// the keystore's terms (PKCS#11: `label:…` or `id:<hex>`).
    pub async fn reference_root_key(
        &self,
        caller: &Caller,
        keystore: Option<&str>,
        reference: &str,
        description: &str,
    ) -> Result<RootKeyInfo> {
        let tenant_id = Self::authorize_in_own_tenant(caller, Op::ReferenceRootKey)?;
        check_description(description)?;
        let (name, provider) = self.keystore_able_to(keystore, KeystoreAbility::Reference)?;
        let unusable = |e: crate::keystore::KeystoreError| match e {
            crate::keystore::KeystoreError::KeyUnusable(why) => {
                Error::invalid(format!("keystore {name:?} cannot use {reference:?}: {why}"))
            }
            other => other.into(),
        };
        let handle = provider
            .reference_root_key(reference)
            .await
            .map_err(unusable)?;
        // Prove the key wraps and unwraps before anything hangs below it.
        let probe = crate::secret::SecretBytes::random(crate::crypto::KEY_LEN);
        let wrapped = provider
            .wrap(&handle, &probe, b"kcm reference probe")
            .await
            .map_err(unusable)?;
        let back = provider
            .unwrap(&handle, &wrapped, b"kcm reference probe")
            .await
            .map_err(unusable)?;
        if !back.ct_eq(probe.expose_secret()) {
            return Err(Error::internal("the referenced key does not round-trip"));
        }
        if self
            .store
            .root_keys(Some(tenant_id))
            .await?
            .iter()
            .any(|r| r.keystore == name && r.handle == handle)
        {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{reference:?} in keystore {name:?} is already a root key of the tenant"),
            ));
        }
        self.record_new_root(
            tenant_id,
            RootKeyId::new_random(),
            name,
            handle,
            RootKeyOrigin::External,
            description,
        )
        .await
    }

    /// The root keys of the caller's tenant.
    pub async fn list_root_keys(&self, caller: &Caller) -> Result<Vec<RootKeyInfo>> {
        let tenant_id = Self::authorize_in_own_tenant(caller, Op::ListRootKeys)?;
        let default = self.default_root_of(tenant_id).await?;
        let visible = self.scope_root(caller).await?;
        Ok(self
            .store
            .root_keys(Some(tenant_id))
            .await?
            .iter()
            .filter(|r| visible.is_none_or(|v| v == Some(r.id)))
            .map(|r| self.root_key_info(r, Some(default)))
            .collect())
    }

    /// One root key of the caller's tenant.
    pub async fn get_root_key(&self, caller: &Caller, id: &str) -> Result<RootKeyInfo> {
        let (record, tenant_id) = self.find_root_key(caller, Op::GetRootKey, id).await?;
        let default = self.default_root_of(tenant_id).await?;
        Ok(self.root_key_info(&record, Some(default)))
    }

    /// The kill switch: enables, disables or suspends a root key of the caller's
    /// tenant, or with `dry_run` only reports what that would do. Every system and
    /// key below follows at once on this node (its caches are dropped) and within
    /// the revocation bound on every other node.
    pub async fn change_root_key_state(
        &self,
        caller: &Caller,
        id: &str,
        change: RootKeyChange,
        dry_run: bool,
    ) -> Result<RootKeyImpact> {
        let op = change.op();
        let mut changes = self.lock_changes().await?;
        let (mut record, tenant_id) = self.find_root_key(caller, op, id).await?;
        let previous_state = record.lifecycle.state();
        let new_state = previous_state
            .transition(change.transition())
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidState,
                    format!(
                        "root key {} is {}: {e}",
                        record.id,
                        record.lifecycle.state()
                    ),
                )
            })?;
        let systems = self.systems_below(caller, tenant_id, record.id).await?;
        let applied = !dry_run && new_state != previous_state;
        if applied {
            use crate::lifecycle::KeyUse::Unwrap;
            let keystore = self.keystore(&record.keystore)?;
            let cut_off = previous_state.allows(Unwrap) && !new_state.allows(Unwrap);
            let restored = !previous_state.allows(Unwrap) && new_state.allows(Unwrap);
            if restored {
                // The keystore must serve the key again before kcm says it is usable.
                keystore.enable_root_key(&record.handle).await?;
            }
            record
                .lifecycle
                .apply(change.transition())
                .map_err(|e| Error::internal(format!("root key {}: {e}", record.id)))?;
            changes
                .commit(vec![Write::PutRootKey(record.clone())])
                .await?;
            // Unwrapped material below this root must not outlive the change here.
            self.keys.clear();
            self.system_keys.clear();
            if cut_off {
                // A second lock, in the keystore; kcm's own state already refuses
                // everything below, so a keystore that cannot be told is only logged.
                if let Err(e) = keystore.disable_root_key(&record.handle).await {
                    tracing::warn!(root_key = %record.id, keystore = %record.keystore, error = %e,
                        "the keystore was not told the root key is disabled; kcm refuses it anyway");
                }
            }
        }
        let default = self.default_root_of(tenant_id).await?;
        Ok(RootKeyImpact {
            root: self.root_key_info(&record, Some(default)),
            previous_state,
            new_state,
            applied,
            systems,
        })
    }

    /// Rotates a generated root key: new material is generated in the same keystore,
    /// every system key version below is re-wrapped by it in one commit (nothing
    /// further down changes), and the old material is then destroyed in the
    /// keystore. The root key keeps its id. Returns the systems below it.
    pub async fn rotate_root_key(&self, caller: &Caller, id: &str) -> Result<RootKeyImpact> {
        let mut changes = self.lock_changes().await?;
        let (mut record, tenant_id) = self.find_root_key(caller, Op::RotateRootKey, id).await?;
        if record.origin != RootKeyOrigin::Generated {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "root key {} is {}: its material is the customer's, so rotate it by \
                     importing or referencing a new key and switching systems to it",
                    record.id,
                    record.origin.as_str()
                ),
            ));
        }
        if !record
            .lifecycle
            .state()
            .allows(crate::lifecycle::KeyUse::Wrap)
        {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "root key {} is {} and cannot be rotated",
                    record.id,
                    record.lifecycle.state()
                ),
            ));
        }
        let keystore = self.keystore(&record.keystore)?;
        let new_handle = keystore
            .create_root_key(&format!("kcm-root-{}", record.id))
            .await?;
        let rewraps = async {
            let mut writes = Vec::new();
            for system in self.store.systems(tenant_id).await? {
                for version in 1..=system.active_key_version {
                    let Some(mut key) = self.store.system_key(system.id, version).await? else {
                        continue;
                    };
                    if key.root_key_id != record.id || key.lifecycle.state().is_destroyed() {
                        continue;
                    }
                    let aad = WrapBinding::SystemKey {
                        tenant: tenant_id,
                        system: system.id,
                        version,
                        root: record.id,
                    }
                    .to_aad();
                    let material = keystore.unwrap(&record.handle, &key.wrapped, &aad).await?;
                    key.wrapped = keystore.wrap(&new_handle, &material, &aad).await?;
                    writes.push(Write::PutSystemKey(key));
                }
            }
            Ok::<_, Error>(writes)
        }
        .await;
        let mut writes = match rewraps {
            Ok(writes) => writes,
            Err(e) => {
                // Nothing was committed: the new material is of no use.
                let unused = RootKeyRecord {
                    handle: new_handle,
                    ..record
                };
                self.discard_new_roots(&[unused]).await;
                return Err(e);
            }
        };
        let old_handle = std::mem::replace(&mut record.handle, new_handle);
        writes.push(Write::PutRootKey(record.clone()));
        changes.commit(writes).await?;
        self.keys.clear();
        self.system_keys.clear();
        if let Err(e) = keystore.destroy(&old_handle).await {
            tracing::warn!(root_key = %record.id, error = %e,
                "could not destroy the old material of a rotated root key; it is no longer used");
        }
        let systems = self.systems_below(caller, tenant_id, record.id).await?;
        let default = self.default_root_of(tenant_id).await?;
        Ok(RootKeyImpact {
            root: self.root_key_info(&record, Some(default)),
            previous_state: record.lifecycle.state(),
            new_state: record.lifecycle.state(),
            applied: true,
            systems,
        })
    }

    /// A root key of the caller's tenant by id, after authorising `op` on it.
    /// Another tenant's root key, or the service's own, is reported as absent.
    async fn find_root_key(
        &self,
        caller: &Caller,
        op: Op,
        id: &str,
    ) -> Result<(RootKeyRecord, TenantId)> {
        let tenant_id = Self::authorize_in_own_tenant(caller, op)?;
        let not_found = || Error::not_found(format!("root key {id} does not exist"));
        let parsed = RootKeyId::parse(id).ok_or_else(not_found)?;
        let record = self
            .store
            .root_key(parsed)
            .await?
            .filter(|r| r.tenant_id == Some(tenant_id))
            .ok_or_else(not_found)?;
        if self
            .scope_root(caller)
            .await?
            .is_some_and(|v| v != Some(record.id))
        {
            return Err(Error::denied(format!(
                "access key {} is scoped to a system that is not below root key {}",
                caller.principal.access_key_id, record.id
            )));
        }
        Ok((record, tenant_id))
    }

    /// For an access key scoped to one system, the root key above that system (the
    /// only one it may see, as in the keychain), or `Some(None)` when that system
    /// is unlinked (it sees none); `None` for an unscoped key.
    async fn scope_root(&self, caller: &Caller) -> Result<Option<Option<RootKeyId>>> {
        let Some(system) = caller.principal.system_scope else {
            return Ok(None);
        };
        let record = self.system_record(system).await?;
        let key = self.active_system_key(&record).await?;
        Ok(Some(key.map(|k| k.root_key_id)))
    }

    /// The systems linked to `root`, with their service keys (as the keychain shows
    /// them, so a scoped caller sees only its own system).
    async fn systems_below(
        &self,
        caller: &Caller,
        tenant_id: TenantId,
        root: RootKeyId,
    ) -> Result<Vec<KeychainSystem>> {
        let view = self.keychain_of(caller, tenant_id).await?;
        Ok(view
            .roots
            .into_iter()
            .find(|r| r.id == root)
            .map(|r| r.systems)
            .unwrap_or_default())
    }

    pub(crate) async fn default_root_of(&self, tenant_id: TenantId) -> Result<RootKeyId> {
        Ok(self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| Error::internal(format!("tenant {tenant_id} is missing")))?
            .default_root_key_id)
    }

    /// The keystore a caller named for a new root key (the default keystore when
    /// `None`) and its name, refused unless it offers `ability`.
    pub(crate) fn keystore_able_to<'a>(
        &'a self,
        name: Option<&'a str>,
        ability: KeystoreAbility,
    ) -> Result<(
        &'a str,
        &'a std::sync::Arc<dyn crate::keystore::KeystoreProvider>,
    )> {
        let name = name.unwrap_or(&self.config.default_keystore);
        let provider = self.configured_keystore(name)?;
        if !ability.offered(&provider.capabilities()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("keystore {name:?} {}", ability.refusal()),
            ));
        }
        Ok((name, provider))
    }

    /// A keystore a caller named: unknown names are the caller's mistake (a 400
    /// listing the configured ones), unlike a stored root key naming one.
    pub(crate) fn configured_keystore(
        &self,
        name: &str,
    ) -> Result<&std::sync::Arc<dyn crate::keystore::KeystoreProvider>> {
        self.keystores.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = self.keystores.keys().map(String::as_str).collect();
            known.sort_unstable();
            Error::invalid(format!(
                "keystore {name:?} is not configured (configured: {})",
                known.join(", ")
            ))
        })
    }

    pub(crate) fn root_key_info(
        &self,
        record: &RootKeyRecord,
        default: Option<RootKeyId>,
    ) -> RootKeyInfo {
        RootKeyInfo {
            id: record.id,
            keystore: record.keystore.clone(),
            keystore_kind: self
                .keystores
                .get(&record.keystore)
                .map_or("unconfigured", |k| k.kind()),
            origin: record.origin,
            state: record.lifecycle.state(),
            description: record.description.clone(),
            is_default: default == Some(record.id),
            created_at: record.created_at,
        }
    }
}
