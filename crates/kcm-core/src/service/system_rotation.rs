//! Rotating a system key (L2), online: a new system key version becomes active at
//! once (new keys and versions are wrapped by it), then the service key versions
//! below the older ones, and the payloads of managed objects sealed by them, are
//! re-wrapped in bounded batches — each batch one commit,
//! so a caller can show progress and resume after any interruption. When none is
//! left, the old system key versions are erased. No ciphertext changes: each key
//! version records which system key version wraps it, so everything decrypts
//! throughout.

use super::systems::SystemInfo;
use super::Service;
use crate::authz::{Caller, Op};
use crate::crypto::{self, WrapBinding};
use crate::error::{Error, ErrorKind, Result};
use crate::model::*;
use crate::store::Write;

/// Most key versions one re-wrap call handles.
pub const MAX_REWRAP_BATCH: usize = 1000;

/// Where a system key rotation stands.
#[derive(Clone, Debug)]
pub struct SystemKeyRotation {
    /// The system, with its active system key version.
    pub system: SystemInfo,
    /// Key versions and object payloads re-wrapped by this call.
    pub rewrapped: usize,
    /// Key versions and object payloads still wrapped by an older system key version.
    pub remaining: usize,
}

impl Service {
    /// Starts a rotation of a system's key: a fresh system key version, wrapped by
    /// the same root key, becomes active. Refused while an earlier rotation still
    /// has key versions to re-wrap.
    pub async fn rotate_system_key(
        &self,
        caller: &Caller,
        name_or_id: &str,
    ) -> Result<SystemKeyRotation> {
        let (mut changes, mut system, _) = self
            .lock_own_system(caller, Op::RotateSystemKey, name_or_id)
            .await?;
        let pending = self.pending_rewraps(&system, usize::MAX).await?;
        if !pending.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "system {} is still being rotated: {} key versions or objects to re-wrap first",
                    system.name,
                    pending.len()
                ),
            ));
        }
        let current = self
            .stored_system_key(&system, system.active_key_version)
            .await?;
        let root = self.stored_root_key(current.root_key_id).await?;
        let new_key = self.mint_system_key(&mut system, &root).await?;
        changes
            .commit(vec![
                Write::PutSystemKey(new_key),
                Write::PutSystem(system.clone()),
            ])
            .await?;
        self.keys.clear();
        self.system_keys.clear();
        let remaining = self.pending_rewraps(&system, usize::MAX).await?.len();
        Ok(SystemKeyRotation {
            system: self.system_info(system).await?,
            rewrapped: 0,
            remaining,
        })
    }

    /// Re-wraps up to `limit` service key versions of a system that an older system
    /// key version still wraps, in one commit; when none is left, erases the older
    /// system key versions.
    pub async fn rewrap_system_keys(
        &self,
        caller: &Caller,
        name_or_id: &str,
        limit: usize,
    ) -> Result<SystemKeyRotation> {
        if limit == 0 || limit > MAX_REWRAP_BATCH {
            return Err(Error::invalid(format!(
                "limit must be between 1 and {MAX_REWRAP_BATCH}, got {limit}"
            )));
        }
        let (mut changes, system, tenant) = self
            .lock_own_system(caller, Op::RewrapSystemKeys, name_or_id)
            .await?;
        let batch = self.pending_rewraps(&system, limit).await?;
        let mut writes = Vec::with_capacity(batch.len() + 1);
        for pending in batch {
            writes.push(match pending {
                Pending::Version(mut version) => {
                    let aad = |system_version| {
                        WrapBinding::ServiceKey {
                            tenant,
                            key: version.key_id,
                            version: version.version,
                            system: system.id,
                            system_version,
                        }
                        .to_aad()
                    };
                    let what = || format!("version {} of key {}", version.version, version.key_id);
                    version.wrapped = self
                        .reseal(
                            &system,
                            version.system_key_version,
                            &version.wrapped,
                            aad,
                            what,
                        )
                        .await?;
                    version.system_key_version = system.active_key_version;
                    Write::PutKeyVersion(version)
                }
                Pending::Object(mut object) => {
                    let Some(payload) = object.payload.as_mut() else {
                        continue;
                    };
                    let aad = |system_version| {
                        WrapBinding::ManagedObject {
                            tenant,
                            object: object.id,
                            kind: object.kind,
                            system: system.id,
                            system_version,
                        }
                        .to_aad()
                    };
                    let id = object.id;
                    let what = || format!("the payload of object {id}");
                    payload.sealed = self
                        .reseal(
                            &system,
                            payload.system_key_version,
                            &payload.sealed,
                            aad,
                            what,
                        )
                        .await?;
                    payload.system_key_version = system.active_key_version;
                    Write::PutManagedObject(*object)
                }
            });
        }
        let rewrapped = writes.len();
        let remaining = if rewrapped < limit {
            0
        } else {
            // Counted before this batch's commit: subtract what it moves.
            self.pending_rewraps(&system, usize::MAX)
                .await?
                .len()
                .saturating_sub(rewrapped)
        };
        if remaining == 0 {
            // Nothing is wrapped by the older versions any more.
            let older = 1..system.active_key_version;
            writes.extend(self.erased_system_keys(&system, older).await?);
        }
        if !writes.is_empty() {
            changes.commit(writes).await?;
            self.keys.clear();
            self.system_keys.clear();
        }
        Ok(SystemKeyRotation {
            system: self.system_info(system).await?,
            rewrapped,
            remaining,
        })
    }

    /// Opens `sealed` (`what`), sealed under `system`'s key version `old` and bound
    /// by `aad(version)`, and seals it again under the active version.
    async fn reseal(
        &self,
        system: &SystemRecord,
        old: u32,
        sealed: &[u8],
        aad: impl Fn(u32) -> Vec<u8>,
        what: impl Fn() -> String,
    ) -> Result<Vec<u8>> {
        let old_key = self.load_system_key(system, old).await?;
        let old_material = old_key.material.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidState,
                format!(
                    "system key version {old} of {} cannot be unwrapped (its root key or it \
                     is not usable), so what is below it cannot be moved",
                    system.name
                ),
            )
        })?;
        let plain = crypto::open(old_material, sealed, &aad(old)).map_err(|_| {
            Error::internal(format!("{} does not unwrap under its system key", what()))
        })?;
        let active = self
            .load_system_key(system, system.active_key_version)
            .await?;
        Ok(crypto::seal(
            active.material()?,
            plain.expose_secret(),
            &aad(system.active_key_version),
        ))
    }

    /// Up to `limit` key versions and objects below the system that an older
    /// system key version wraps.
    async fn pending_rewraps(&self, system: &SystemRecord, limit: usize) -> Result<Vec<Pending>> {
        let mut pending = Vec::new();
        for key in self
            .live_service_keys(system.tenant_id, Some(system.id))
            .await?
        {
            for version in self.store.key_versions(key.id).await? {
                if version.system_key_version < system.active_key_version {
                    pending.push(Pending::Version(version));
                    if pending.len() >= limit {
                        return Ok(pending);
                    }
                }
            }
        }
        for object in self.store.managed_objects(system.id).await? {
            let older = object
                .payload
                .as_ref()
                .is_some_and(|p| p.system_key_version < system.active_key_version);
            if older {
                pending.push(Pending::Object(Box::new(object)));
                if pending.len() >= limit {
                    return Ok(pending);
                }
            }
        }
        Ok(pending)
    }
}

/// Something sealed under an older system key version, to move under the active one.
enum Pending {
    /// A service key version.
    Version(KeyVersionRecord),
    /// A managed object's payload.
    Object(Box<ManagedObjectRecord>),
}
