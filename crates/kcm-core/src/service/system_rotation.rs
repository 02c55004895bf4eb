//! Rotating a system key (L2), online: a new system key version becomes active at
//! once (new keys and versions are wrapped by it), then the service key versions
//! below the older ones are re-wrapped in bounded batches — each batch one commit,
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
    /// Key versions re-wrapped by this call.
    pub rewrapped: usize,
    /// Key versions still wrapped by an older system key version.
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
                    "system {} is still being rotated: {} key versions to re-wrap first",
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
        for mut version in batch {
            let old = self
                .load_system_key(&system, version.system_key_version)
                .await?;
            let old = old.material.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidState,
                    format!(
                        "system key version {} of {} cannot be unwrapped (its root key or it \
                         is not usable), so the keys below it cannot be moved",
                        version.system_key_version, system.name
                    ),
                )
            })?;
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
            let material = crypto::open(old, &version.wrapped, &aad(version.system_key_version))
                .map_err(|_| {
                    Error::internal(format!(
                        "version {} of key {} does not unwrap under its system key",
                        version.version, version.key_id
                    ))
                })?;
            let active = self
                .load_system_key(&system, system.active_key_version)
                .await?;
            let active = active
                .material
                .as_ref()
                .ok_or_else(|| Error::internal("the active system key is not loaded"))?;
            version.wrapped = crypto::seal(
                active,
                material.expose_secret(),
                &aad(system.active_key_version),
            );
            version.system_key_version = system.active_key_version;
            writes.push(Write::PutKeyVersion(version));
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

    /// Up to `limit` key versions below the system that an older system key version
    /// wraps.
    async fn pending_rewraps(
        &self,
        system: &SystemRecord,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>> {
        let mut pending = Vec::new();
        for key in self
            .live_service_keys(system.tenant_id, Some(system.id))
            .await?
        {
            for version in self.store.key_versions(key.id).await? {
                if version.system_key_version < system.active_key_version {
                    pending.push(version);
                    if pending.len() >= limit {
                        return Ok(pending);
                    }
                }
            }
        }
        Ok(pending)
    }
}
