//! Loading a service key with its chain: states of every key above it, and its
//! unwrapped versions, cached for at most the revocation bound.

use std::collections::HashMap;
use std::sync::Arc;

use super::systems::system_key_aad;
use super::Service;
use crate::authz::{Caller, KeyNote};
use crate::crypto::{self, WrapBinding};
use crate::error::{Error, ErrorKind, Result};
use crate::key_material::VersionKey;
use crate::keyspec::{wrong_usage, KeyUsage};
use crate::lifecycle::{chain_allows, KeyState, KeyUse};
use crate::model::*;
use crate::policy::{KeyAccess, KeyPolicy};
use crate::secret::SecretBytes;

/// A system key version with its root's state and, when the chain allows, its material.
pub(crate) struct LoadedSystemKey {
    pub(crate) state: KeyState,
    pub(crate) root_id: RootKeyId,
    pub(crate) root_state: KeyState,
    pub(crate) material: Option<SecretBytes>,
    /// Until when this may be trusted: the revocation bound, or for a root key held
    /// by the customer (HYOK) the external check interval if shorter, since only a
    /// fresh unwrap tells whether the holder has revoked it.
    pub(crate) trusted_until: std::time::Instant,
}

impl LoadedSystemKey {
    /// The unwrapped material; an internal error if the chain did not allow
    /// unwrapping it (callers check the states first).
    pub(crate) fn material(&self) -> Result<&SecretBytes> {
        self.material
            .as_ref()
            .ok_or_else(|| Error::internal("system key material not loaded"))
    }
}

/// A service key as the hot path sees it: its record, the states above it, and the
/// unwrapped material of each version, parsed for use (only while the chain allows
/// using it).
pub struct LoadedKey {
    /// The stored record.
    pub record: ServiceKeyRecord,
    pub(crate) system_key_state: KeyState,
    pub(crate) root_id: RootKeyId,
    pub(crate) root_state: KeyState,
    /// The key's policy and grants, for authorisation.
    pub(crate) access: KeyAccess,
    versions: HashMap<u32, LoadedVersion>,
}

/// One version's parsed material and the wrapped blob it came from.
struct LoadedVersion {
    /// As stored: what a reload compares to reuse `key` instead of parsing again.
    wrapped: Vec<u8>,
    key: Arc<VersionKey>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("id", &self.record.id)
            .field("state", &self.record.lifecycle.state())
            .field("versions", &self.versions.len())
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// The unwrapped material of `version`, if loaded.
    pub(crate) fn version(&self, version: u32) -> Option<&VersionKey> {
        self.versions.get(&version).map(|v| v.key.as_ref())
    }

    /// The primary version's material (the one that signs, encrypts and MACs).
    pub(crate) fn primary(&self) -> Result<&VersionKey> {
        self.version(self.record.primary_version).ok_or_else(|| {
            Error::internal(format!("primary version of {} not loaded", self.record.id))
        })
    }

    /// [`Self::primary`], noted as the version `caller`'s request used, for its
    /// audit record.
    pub(crate) fn use_primary(&self, caller: &Caller) -> Result<&VersionKey> {
        let material = self.primary()?;
        caller.note_key(KeyNote::of(&self.record, Some(self.record.primary_version)));
        Ok(material)
    }

    /// The loaded versions, the primary first and then newest to oldest: the order
    /// in which Verify and an asymmetric Decrypt, which cannot tell the version from
    /// their input, try them.
    pub(crate) fn versions_primary_first(&self) -> impl Iterator<Item = (u32, &VersionKey)> {
        let primary = self.record.primary_version;
        let mut others: Vec<u32> = self
            .versions
            .keys()
            .copied()
            .filter(|v| *v != primary)
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        std::iter::once(primary)
            .chain(others)
            .filter_map(|v| self.versions.get(&v).map(|loaded| (v, loaded.key.as_ref())))
    }

    /// Refuses a key whose usage is not `needed` (InvalidKeyUsage, naming both).
    pub(crate) fn require_usage(&self, needed: KeyUsage) -> Result<()> {
        if self.record.usage == needed {
            Ok(())
        } else {
            Err(wrong_usage(self.record.id, self.record.usage, needed))
        }
    }

    /// Whether `op` is allowed on this key given the whole chain; if not, the error
    /// names the key and the state that forbids it.
    pub(crate) fn check(&self, op: KeyUse) -> Result<()> {
        let own = self.record.lifecycle.state();
        let ancestors = [self.system_key_state, self.root_state];
        if chain_allows(own, &ancestors, op) {
            return Ok(());
        }
        let id = self.record.id;
        if !own.allows(op) {
            return Err(super::resolve::own_state_refusal(id, own));
        }
        let needed = op.required_of_ancestors();
        let (what, state) = if !self.system_key_state.allows(needed) {
            ("its system key".to_string(), self.system_key_state)
        } else {
            (format!("its root key {}", self.root_id), self.root_state)
        };
        let kind = if state == KeyState::Disabled {
            ErrorKind::KeyDisabled
        } else {
            ErrorKind::InvalidState
        };
        Err(Error::new(
            kind,
            format!("key {id} cannot be used: {what} is {state}"),
        ))
    }
}

/// A record that another record names: a missing one is a broken chain (an internal
/// error, logged with `what`), not a caller's mistake.
fn referenced<T>(found: Option<T>, what: std::fmt::Arguments<'_>) -> Result<T> {
    found.ok_or_else(|| Error::internal(format!("{what} is missing")))
}

impl Service {
    /// The key with its chain, from the cache or the store. `NotFound` if absent.
    pub(crate) async fn load_key(&self, id: KeyId) -> Result<Arc<LoadedKey>> {
        if let Some(key) = self.keys.get(&id) {
            return Ok(key);
        }
        // An expired entry's parsed versions are reused for versions whose wrapped
        // blob is unchanged (after they are unwrapped again): parsing an RSA-4096
        // private key costs about a millisecond, unwrapping it microseconds.
        let previous = self.keys.get_even_expired(&id);
        let (key, trusted_until) = self.fetch_key(id, previous.as_deref()).await?;
        let key = Arc::new(key);
        // Never trust the key longer than the system keys it was unwrapped with.
        self.keys.insert_until(id, Arc::clone(&key), trusted_until);
        Ok(key)
    }

    async fn fetch_key(
        &self,
        id: KeyId,
        previous: Option<&LoadedKey>,
    ) -> Result<(LoadedKey, std::time::Instant)> {
        let record = self
            .store
            .service_key(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("key {id} does not exist")))?;
        let system = self.system_record(record.system_id).await?;
        let active = self
            .load_system_key(&system, system.active_key_version)
            .await?;
        let mut trusted_until = active.trusted_until;
        let access = self.key_access(&record).await?;
        let mut key = LoadedKey {
            access,
            system_key_state: active.state,
            root_id: active.root_id,
            root_state: active.root_state,
            versions: HashMap::new(),
            record,
        };
        let ancestors = [key.system_key_state, key.root_state];
        let usable = [KeyUse::Encrypt, KeyUse::Decrypt]
            .into_iter()
            .any(|op| chain_allows(key.record.lifecycle.state(), &ancestors, op));
        if !usable {
            // Material stays wrapped while nothing may use it.
            return Ok((key, trusted_until));
        }
        for version in self.store.key_versions(id).await? {
            let parent = if version.system_key_version == system.active_key_version {
                Arc::clone(&active)
            } else {
                self.load_system_key(&system, version.system_key_version)
                    .await?
            };
            trusted_until = trusted_until.min(parent.trusted_until);
            let Some(parent_material) = parent.material.as_ref() else {
                continue;
            };
            let aad = WrapBinding::ServiceKey {
                tenant: key.record.tenant_id,
                key: id,
                version: version.version,
                system: system.id,
                system_version: version.system_key_version,
            }
            .to_aad();
            let material = crypto::open(parent_material, &version.wrapped, &aad).map_err(|_| {
                Error::internal(format!(
                    "version {} of key {id} does not unwrap under its system key",
                    version.version
                ))
            })?;
            // The unwrap above is what proves the chain still allows this version;
            // the same blob unwrapped under the same system key is the same
            // material, so its parsed form can be reused.
            let reusable = previous
                .and_then(|p| p.versions.get(&version.version))
                .filter(|p| p.wrapped == version.wrapped)
                .map(|p| Arc::clone(&p.key));
            let parsed = match reusable {
                Some(parsed) => parsed,
                None => Arc::new(VersionKey::parse(
                    key.record.spec,
                    key.record.usage,
                    material.expose_secret(),
                )?),
            };
            key.versions.insert(
                version.version,
                LoadedVersion {
                    wrapped: version.wrapped,
                    key: parsed,
                },
            );
        }
        Ok((key, trusted_until))
    }

    /// A key's policy (parsed) and grants, as authorisation needs them.
    pub(crate) async fn key_access(&self, record: &ServiceKeyRecord) -> Result<KeyAccess> {
        let Some(document) = &record.policy else {
            // Grants only matter when a policy restricts the key.
            return Ok(KeyAccess::default());
        };
        let policy = KeyPolicy::parse(document).map_err(|e| {
            Error::internal(format!(
                "stored policy of key {} is invalid: {e}",
                record.id
            ))
        })?;
        Ok(KeyAccess {
            policy: Some(policy),
            grants: self.store.grants(record.id).await?,
        })
    }

    pub(crate) async fn system_record(&self, id: SystemId) -> Result<SystemRecord> {
        referenced(self.store.system(id).await?, format_args!("system {id}"))
    }

    /// Version `version` of `system`'s key, which the system (or a key version
    /// below it) names.
    pub(crate) async fn stored_system_key(
        &self,
        system: &SystemRecord,
        version: u32,
    ) -> Result<SystemKeyRecord> {
        let found = self.store.system_key(system.id, version).await?;
        referenced(found, format_args!("system key {} v{version}", system.id))
    }

    /// The root key a system key names.
    pub(crate) async fn stored_root_key(&self, id: RootKeyId) -> Result<RootKeyRecord> {
        referenced(
            self.store.root_key(id).await?,
            format_args!("root key {id}"),
        )
    }

    /// A system key version with its root state; unwrapped if the chain allows.
    pub(crate) async fn load_system_key(
        &self,
        system: &SystemRecord,
        version: u32,
    ) -> Result<Arc<LoadedSystemKey>> {
        let cache_key = (system.id, version);
        if let Some(loaded) = self.system_keys.get(&cache_key) {
            return Ok(loaded);
        }
        if version == 0 {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "system {} is not linked to a root key: link it before using keys in it",
                    system.name
                ),
            ));
        }
        let record = self.stored_system_key(system, version).await?;
        let root = self.stored_root_key(record.root_key_id).await?;
        let material = if record.lifecycle.state().allows(KeyUse::Unwrap)
            && root.lifecycle.state().allows(KeyUse::Unwrap)
        {
            let aad = system_key_aad(system, version, root.id);
            Some(
                self.keystore(&root.keystore)?
                    .unwrap(&root.handle, &record.wrapped, &aad)
                    .await?,
            )
        } else {
            None
        };
        let trust = match root.origin {
            RootKeyOrigin::External => self
                .config
                .revocation_bound
                .min(self.config.external_check_interval),
            _ => self.config.revocation_bound,
        };
        let trusted_until = std::time::Instant::now() + trust;
        let loaded = Arc::new(LoadedSystemKey {
            state: record.lifecycle.state(),
            root_id: root.id,
            root_state: root.lifecycle.state(),
            material,
            trusted_until,
        });
        self.system_keys
            .insert_until(cache_key, Arc::clone(&loaded), trusted_until);
        Ok(loaded)
    }

    /// The system's active system key, to protect something new (`what`: `keys`,
    /// `objects`) under it: refused (InvalidState, naming both states) unless it and
    /// its root key allow wrapping.
    pub(crate) async fn wrapping_system_key(
        &self,
        system: &SystemRecord,
        what: &str,
    ) -> Result<Arc<LoadedSystemKey>> {
        let parent = self
            .load_system_key(system, system.active_key_version)
            .await?;
        if !(parent.state.allows(KeyUse::Wrap) && parent.root_state.allows(KeyUse::Wrap)) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "system {} cannot protect new {what}: its system key is {} and its root key is {}",
                    system.name, parent.state, parent.root_state
                ),
            ));
        }
        Ok(parent)
    }

    /// Wraps new service key material under the system's active system key.
    pub(crate) async fn wrap_service_key(
        &self,
        system: &SystemRecord,
        key: KeyId,
        version: u32,
        material: &SecretBytes,
    ) -> Result<Vec<u8>> {
        let parent = self.wrapping_system_key(system, "keys").await?;
        let parent_material = parent.material()?;
        let aad = WrapBinding::ServiceKey {
            tenant: system.tenant_id,
            key,
            version,
            system: system.id,
            system_version: system.active_key_version,
        }
        .to_aad();
        Ok(crypto::seal(
            parent_material,
            material.expose_secret(),
            &aad,
        ))
    }
}
