//! The key-value store of versioned secrets (Vault's KV version 2): each path is
//! one managed object of kind `kv` whose sealed payload is the whole entry
//! ([`crate::kv::KvEntry`]). A change reads, checks and writes the entry under
//! the change lock, so a check-and-set decides against the version that is
//! really current, on every node of a cluster.
//!
//! The entry's id is derived from tenant, system, mount and path, so a path is
//! found with one store read rather than a search; its object name is
//! `<mount>/<path>`, which listing reads without unsealing anything.

use aws_lc_rs::digest;

use super::{now_ms, Service};
use crate::authz::{Caller, Op};
use crate::error::{Error, Result};
use crate::kv::{
    check_path, names_below, KvEntry, KvMetadata, KvSettingsChange, KvVersionAction, KvVersionInfo,
};
use crate::lifecycle::KeyUse;
use crate::model::*;
use crate::secret::SecretBytes;
use crate::store::Write;

/// A path of a key-value store: which system's store, which mount, which path.
#[derive(Clone, Copy, Debug)]
pub struct KvPath<'a> {
    /// The system whose key seals the entry.
    pub system: SystemId,
    /// The mount (`secret`).
    pub mount: &'a str,
    /// The path below the mount.
    pub path: &'a str,
}

impl KvPath<'_> {
    fn name(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }

    /// The entry's object id: the path's, within its tenant and system.
    fn object_id(&self, tenant: TenantId) -> ObjectId {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"kcm kv entry\0");
        ctx.update(tenant.0.as_bytes());
        ctx.update(self.system.0.as_bytes());
        ctx.update(self.mount.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.path.as_bytes());
        let hash = ctx.finish();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_ref()[..16]);
        ObjectId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

impl Service {
    /// Writes a new version of the value at `at` (creating the entry), checked
    /// against `cas` under the change lock.
    pub async fn kv_write(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        value: SecretBytes,
        cas: Option<u64>,
    ) -> Result<KvVersionInfo> {
        self.kv_change(caller, at, Op::UpdateObject, |entry, now| {
            entry.write(value, cas, now)
        })
        .await
    }

    /// Changes the settings and custom metadata at `at` (creating the entry).
    pub async fn kv_configure(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        change: KvSettingsChange,
    ) -> Result<()> {
        self.kv_change(caller, at, Op::UpdateObject, |entry, now| {
            entry.configure(change, now)
        })
        .await
    }

    /// Deletes, undeletes or destroys versions at `at`.
    pub async fn kv_change_versions(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        action: KvVersionAction,
        versions: &[u64],
    ) -> Result<()> {
        let op = match action {
            KvVersionAction::Destroy => Op::DeleteObject,
            _ => Op::UpdateObject,
        };
        let mut changes = self.lock_changes().await?;
        let (mut record, mut entry) = self.kv_entry(caller, at, op).await?;
        entry.change_versions(action, versions, now_ms())?;
        self.kv_seal(&mut record, &entry).await?;
        changes
            .commit(vec![Write::PutManagedObject(record)])
            .await?;
        Ok(())
    }

    /// The value of `version` at `at` (the current one when `None`).
    pub async fn kv_read(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        version: Option<u64>,
    ) -> Result<(KvVersionInfo, SecretBytes)> {
        let (_, entry) = self.kv_entry(caller, at, Op::GetObjectPayload).await?;
        let (info, value) = entry.read(version, now_ms())?;
        Ok((info, SecretBytes::copy_from(value)))
    }

    /// The entry's settings, custom metadata and version history.
    pub async fn kv_metadata(&self, caller: &Caller, at: KvPath<'_>) -> Result<KvMetadata> {
        let (_, entry) = self.kv_entry(caller, at, Op::GetObject).await?;
        Ok(entry.metadata())
    }

    /// Deletes the entry at `at`, every version and its history.
    pub async fn kv_delete(&self, caller: &Caller, at: KvPath<'_>) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let record = self.kv_record(caller, at, Op::DeleteObject).await?;
        changes
            .commit(vec![Write::DeleteManagedObject(record.id)])
            .await?;
        Ok(())
    }

    /// The names directly below `prefix` (empty or ending in `/`) in `mount` of
    /// `system`: entries, and folders with a trailing `/`.
    pub async fn kv_list(
        &self,
        caller: &Caller,
        system: SystemId,
        mount: &str,
        prefix: &str,
    ) -> Result<Vec<String>> {
        let system = self.object_system(caller, Op::ListObjects, system).await?;
        let records = self.store.managed_objects(system.id).await?;
        let below = format!("{mount}/{prefix}");
        Ok(names_below(
            &below,
            records
                .iter()
                .filter(|r| r.kind == ObjectKind::VersionedSecret)
                .map(|r| r.attributes.name.as_str()),
        ))
    }

    /// Reads the entry at `at` (a new one when there is none), changes it with
    /// `change` and seals it back, in one commit under the change lock.
    async fn kv_change<T>(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        op: Op,
        change: impl FnOnce(&mut KvEntry, UnixMillis) -> Result<T>,
    ) -> Result<T> {
        check_path(at.mount, at.path)?;
        let mut changes = self.lock_changes().await?;
        let tenant = Self::authorize_in_own_tenant(caller, op)?;
        let now = now_ms();
        let (mut record, mut entry) = match self
            .authorized_object_record(caller, op, at.object_id(tenant))
            .await?
        {
            Some(record) => {
                let entry = self.kv_open(&record).await?;
                (record, entry)
            }
            None => {
                let system = self
                    .object_system(caller, Op::CreateObject, at.system)
                    .await?;
                self.check_capacity(&system, 1).await?;
                let attributes = ObjectAttributes {
                    name: at.name(),
                    ..Default::default()
                };
                let mut record = self.new_record(
                    caller,
                    &system,
                    ObjectKind::VersionedSecret,
                    attributes,
                    now,
                );
                record.id = at.object_id(tenant);
                (record, KvEntry::new(now))
            }
        };
        let answer = change(&mut entry, now)?;
        record.updated_at = now;
        self.kv_seal(&mut record, &entry).await?;
        changes
            .commit(vec![Write::PutManagedObject(record)])
            .await?;
        Ok(answer)
    }

    /// The record and unsealed entry at `at`, once `op` is authorised on it.
    async fn kv_entry(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        op: Op,
    ) -> Result<(ManagedObjectRecord, KvEntry)> {
        let record = self.kv_record(caller, at, op).await?;
        let entry = self.kv_open(&record).await?;
        Ok((record, entry))
    }

    /// The record at `at`, once `op` is authorised on it; not found if there is
    /// none (or the path is no path).
    async fn kv_record(
        &self,
        caller: &Caller,
        at: KvPath<'_>,
        op: Op,
    ) -> Result<ManagedObjectRecord> {
        check_path(at.mount, at.path)?;
        let tenant = Self::authorize_in_own_tenant(caller, op)?;
        self.authorized_object_record(caller, op, at.object_id(tenant))
            .await?
            .filter(|r| r.kind == ObjectKind::VersionedSecret && r.system_id == at.system)
            .ok_or_else(|| Error::not_found(format!("no secret at {}", at.name())))
    }

    /// The entry a record seals, unsealed through its chain (the kill switch
    /// refuses it as it refuses Decrypt).
    async fn kv_open(&self, record: &ManagedObjectRecord) -> Result<KvEntry> {
        let sealed = self.unseal_object(record, KeyUse::Decrypt).await?;
        KvEntry::from_unsealed(&sealed)
    }

    /// Seals `entry` into `record` under its system's active key.
    async fn kv_seal(&self, record: &mut ManagedObjectRecord, entry: &KvEntry) -> Result<()> {
        let document = entry.to_sealable()?;
        let system = self.system_record(record.system_id).await?;
        self.seal_payload(&system, record, &document).await
    }
}
