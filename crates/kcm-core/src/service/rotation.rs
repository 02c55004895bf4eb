//! Rotation of service keys: on demand, and on an automatic schedule.
//!
//! A rotation adds a version and makes it primary; older versions stay so that
//! every existing ciphertext still decrypts.

use super::change_lock::ChangeGuard;
use super::keys::page_limit;
use super::resolve::require;
use super::{now_ms, KeyRef, Service};
use crate::authz::{Caller, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::KeyUse;
use crate::model::*;
use crate::store::Write;

/// Default automatic rotation period (days), as in AWS.
pub const DEFAULT_ROTATION_DAYS: u32 = 365;

/// How many on-demand rotations a key may have (AWS KMS's limit).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 10;

/// Rotation settings of a key.
#[derive(Clone, Debug)]
pub struct RotationStatus {
    /// The key.
    pub key_id: KeyId,
    /// Whether automatic rotation is on.
    pub enabled: bool,
    /// Period in days, when on.
    pub period_days: Option<u32>,
    /// When the next automatic rotation is due, when on.
    pub next_rotation_at: Option<UnixMillis>,
}

/// One completed rotation.
#[derive(Clone, Debug)]
pub struct RotationInfo {
    /// The key.
    pub key_id: KeyId,
    /// The version it created.
    pub version: u32,
    /// When.
    pub rotated_at: UnixMillis,
    /// Automatic or on demand.
    pub origin: VersionOrigin,
}

impl Service {
    /// Turns on automatic rotation every `period_days` (90–2560, default 365).
    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        key: &KeyRef,
        period_days: Option<u32>,
    ) -> Result<()> {
        let period = period_days.unwrap_or(DEFAULT_ROTATION_DAYS);
        if !(90..=2560).contains(&period) {
            return Err(Error::invalid(format!(
                "RotationPeriodInDays must be between 90 and 2560, got {period}"
            )));
        }
        let next = now_ms() + self.config.days_ms(period);
        self.change_key(caller, key, Op::EnableKeyRotation, |r| {
            refuse_imported(r)?;
            r.rotation = Some(RotationSchedule {
                period_days: period,
                next_rotation_at: next,
            });
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Turns off automatic rotation.
    pub async fn disable_key_rotation(&self, caller: &Caller, key: &KeyRef) -> Result<()> {
        self.change_key(caller, key, Op::DisableKeyRotation, |r| {
            r.rotation = None;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Automatic rotation settings.
    pub async fn key_rotation_status(
        &self,
        caller: &Caller,
        key: &KeyRef,
    ) -> Result<RotationStatus> {
        let record = self
            .authorized_record(caller, Op::GetKeyRotationStatus, key)
            .await?;
        Ok(RotationStatus {
            key_id: record.id,
            enabled: record.rotation.is_some(),
            period_days: record.rotation.map(|r| r.period_days),
            next_rotation_at: record.rotation.map(|r| r.next_rotation_at),
        })
    }

    /// Rotates now: a new primary version; the automatic schedule is unchanged. A key
    /// with imported material (origin `EXTERNAL`) rotates to the new material
    /// imported for it (ImportType `NEW_KEY_MATERIAL`), which then encrypts; not
    /// while its current material expires (the rotation would end that expiry).
    pub async fn rotate_key_on_demand(&self, caller: &Caller, key: &KeyRef) -> Result<KeyId> {
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .authorized_record(caller, Op::RotateKeyOnDemand, key)
            .await?;
        let id = record.id;
        let versions = self.store.key_versions(id).await?;
        require_on_demand_room(&record, &versions)?;
        if record.origin != crate::keyspec::KeyOrigin::External {
            self.rotate(&mut changes, record, VersionOrigin::OnDemandRotation)
                .await?;
            return Ok(id);
        }
        if record.spec != crate::keyspec::KeySpec::SymmetricDefault {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "key {id} is {} with imported material: only symmetric encryption keys \
                     rotate, to new material imported for them",
                    record.spec
                ),
            ));
        }
        require(&record, KeyUse::Rotate)?;
        let Some(pending) = material_waiting(&record, &versions) else {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "key {id} has no key material pending rotation: import new material for \
                     it first (ImportKeyMaterial with ImportType NEW_KEY_MATERIAL)"
                ),
            )
            .about(crate::error::Subject::NoMaterialPendingRotation(id)));
        };
        if let Some(at) = record.material_expires_at {
            return Err(super::byok::current_material_expires(id, at));
        }
        record.primary_version = pending.version;
        record.import_check = pending.import_check.clone();
        changes
            .commit(vec![Write::PutServiceKey(record.clone())])
            .await?;
        self.keys.remove(&id);
        Ok(id)
    }

    /// Adds a version to `record` and commits it under `changes`.
    pub(crate) async fn rotate(
        &self,
        changes: &mut ChangeGuard<'_>,
        mut record: ServiceKeyRecord,
        origin: VersionOrigin,
    ) -> Result<u32> {
        require(&record, KeyUse::Rotate)?;
        let system = self.system_record(record.system_id).await?;
        let versions = self.store.key_versions(record.id).await?;
        let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let material = crate::key_material::generate_off_thread(record.spec).await?;
        let wrapped = self
            .wrap_service_key(&system, record.id, version, &material)
            .await?;
        let now = now_ms();
        record.primary_version = version;
        if origin == VersionOrigin::AutomaticRotation {
            if let Some(schedule) = record.rotation.as_mut() {
                schedule.next_rotation_at = now + self.config.days_ms(schedule.period_days);
            }
        }
        changes
            .commit(vec![
                Write::PutKeyVersion(KeyVersionRecord {
                    key_id: record.id,
                    version,
                    system_key_version: system.active_key_version,
                    wrapped,
                    origin,
                    created_at: now,
                    import_check: None,
                }),
                Write::PutServiceKey(record.clone()),
            ])
            .await?;
        self.keys.remove(&record.id);
        Ok(version)
    }

    /// Completed rotations of a key, oldest first, paged by version.
    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        key: &KeyRef,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<(Vec<RotationInfo>, Option<String>)> {
        let record = self
            .authorized_record(caller, Op::ListKeyRotations, key)
            .await?;
        let limit = page_limit(limit, 1000, 100)?;
        let after: u32 = match marker {
            None => 0,
            Some(m) => m.parse().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidMarker,
                    format!("marker {m:?} is not valid"),
                )
            })?,
        };
        let rotations: Vec<RotationInfo> = self
            .store
            .key_versions(record.id)
            .await?
            .into_iter()
            // New imported material waiting for its rotation is not one yet.
            .filter(|v| {
                v.origin != VersionOrigin::Creation
                    && v.version > after
                    && v.version <= record.primary_version
            })
            .map(|v| RotationInfo {
                key_id: record.id,
                version: v.version,
                rotated_at: v.created_at,
                origin: v.origin,
            })
            .collect();
        let next = (rotations.len() > limit).then(|| rotations[limit - 1].version.to_string());
        Ok((rotations.into_iter().take(limit).collect(), next))
    }
}

/// Refuses another on-demand rotation of `record` (whose versions are `versions`)
/// past AWS's limit. New imported material waiting is not a rotation yet.
pub(crate) fn require_on_demand_room(
    record: &ServiceKeyRecord,
    versions: &[KeyVersionRecord],
) -> Result<()> {
    let done = versions
        .iter()
        .filter(|v| {
            v.origin == VersionOrigin::OnDemandRotation && v.version <= record.primary_version
        })
        .count();
    if done >= MAX_ON_DEMAND_ROTATIONS {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "key {} has been rotated on demand {MAX_ON_DEMAND_ROTATIONS} times, the most \
                 allowed (as in AWS KMS)",
                record.id
            ),
        ));
    }
    Ok(())
}

/// The imported material waiting for `record`'s next rotation: a version past its
/// primary one (ImportType `NEW_KEY_MATERIAL`), if there is one.
pub(crate) fn material_waiting<'a>(
    record: &ServiceKeyRecord,
    versions: &'a [KeyVersionRecord],
) -> Option<&'a KeyVersionRecord> {
    versions.iter().find(|v| v.version > record.primary_version)
}

/// Keys with imported material get new material only by import: kcm cannot make it.
fn refuse_imported(record: &ServiceKeyRecord) -> Result<()> {
    if record.origin == crate::keyspec::KeyOrigin::External {
        return Err(Error::new(
            crate::error::ErrorKind::Unsupported,
            format!(
                "key {} has imported key material (origin EXTERNAL), which kcm cannot rotate",
                record.id
            ),
        ));
    }
    Ok(())
}
