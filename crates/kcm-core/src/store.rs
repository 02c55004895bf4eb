//! The store trait: what the core needs from durable storage.
//!
//! Reads are individual methods; every change goes through [`Store::commit`], which
//! applies a list of [`Write`]s atomically and returns only once they are durable.
//! Implementations live in their own crates (SQLite, PostgreSQL) and pass one shared
//! conformance suite.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::policy::GrantRecord;

/// A change to the store. `Put*` writes insert or replace by primary key.
///
/// Audit records are not among them: a record that enters the log must be linked
/// after its chain's tail as the store holds it, so the only way in is
/// [`Store::append_audit`], which links inside the appending transaction (and
/// [`Store::restore_snapshot`], which copies chains that were linked already). A
/// write that inserted a record as given could break a chain or fork it.
#[derive(Clone, Debug)]
pub enum Write {
    /// Sets a service-wide setting.
    PutMeta {
        /// Setting name.
        key: String,
        /// Value.
        value: String,
    },
    /// Sets a service-wide setting that must not exist yet; fails with
    /// [`StoreError::Conflict`] if it does (so two nodes cannot both create it).
    InsertMeta {
        /// Setting name.
        key: String,
        /// Value.
        value: String,
    },
    /// Replaces a service-wide setting only if it still holds `expected`; fails
    /// with [`StoreError::Conflict`] otherwise (it changed, or does not exist), so
    /// two nodes cannot both take it over (compare-and-set, e.g. a lease).
    ReplaceMeta {
        /// Setting name.
        key: String,
        /// The value it must hold now.
        expected: String,
        /// The new value.
        value: String,
    },
    /// Inserts or replaces a tenant (its name and account id are unique).
    PutTenant(TenantRecord),
    /// Inserts or replaces an access key.
    PutAccessKey(AccessKeyRecord),
    /// Deletes an access key.
    DeleteAccessKey(String),
    /// Inserts or replaces a root key.
    PutRootKey(RootKeyRecord),
    /// Inserts or replaces a system (its name is unique within the tenant).
    PutSystem(SystemRecord),
    /// Inserts or replaces a system key version.
    PutSystemKey(SystemKeyRecord),
    /// Inserts or replaces a service key.
    PutServiceKey(ServiceKeyRecord),
    /// Inserts or replaces a service key version.
    PutKeyVersion(KeyVersionRecord),
    /// Erases every version (the wrapped material) of a key.
    DeleteKeyVersions(KeyId),
    /// Erases one version of a key (an imported material deleted or expired).
    DeleteKeyVersion {
        /// The key.
        key: KeyId,
        /// Its version.
        version: u32,
    },
    /// Inserts an alias; fails with [`StoreError::Conflict`] if the name is taken.
    InsertAlias(AliasRecord),
    /// Replaces an existing alias.
    PutAlias(AliasRecord),
    /// Deletes an alias.
    DeleteAlias {
        /// Tenant.
        tenant_id: TenantId,
        /// Full alias name.
        name: String,
    },
    /// Deletes every alias pointing at a key.
    DeleteAliasesOf(KeyId),
    /// Inserts or replaces a grant.
    PutGrant(GrantRecord),
    /// Deletes a grant by id.
    DeleteGrant(String),
    /// Deletes every grant of a key.
    DeleteGrantsOf(KeyId),
    /// Inserts or replaces an audit checkpoint (by chain and `seq`).
    PutAuditCheckpoint(AuditCheckpoint),
    /// Inserts or replaces a managed object.
    PutManagedObject(ManagedObjectRecord),
    /// Deletes a managed object (its sealed payload with it).
    DeleteManagedObject(ObjectId),
}

impl Write {
    /// The [`StoreError::Conflict`] message for this write breaking a uniqueness
    /// rule, in the same words for every backend. `account_id_taken` says a
    /// tenant clashed on its account id rather than its name; `detail` is the
    /// backend's own description, used for writes with no wording of their own.
    pub fn conflict_message(&self, account_id_taken: bool, detail: &str) -> String {
        match self {
            Write::PutTenant(t) if account_id_taken => format!(
                "account id {} is already used by another tenant",
                t.account_id
            ),
            Write::PutTenant(t) => format!("tenant name {} is already taken", t.name),
            Write::PutSystem(s) => {
                format!("system {} already exists in tenant {}", s.name, s.tenant_id)
            }
            Write::InsertAlias(a) => format!("alias {} already exists", a.name),
            Write::InsertMeta { key, .. } => format!("setting {key} already exists"),
            _ => format!("uniqueness violated ({detail})"),
        }
    }
}

/// Why a store call failed. Exhaustive on purpose: a new cause must be sorted by
/// every backend and by the core, not fall into a catch-all.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (name taken, alias exists). Nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store could not be reached or did not confirm durability. Nothing is assumed written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The disk holding the store is full: nothing was written, and nothing will be
    /// until space is freed.
    #[error("store disk full: {0}")]
    Full(String),
    /// Stored data could not be decoded.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// A write carried a value the store cannot hold as given (out of range, too
    /// large, a character it cannot read back, a broken constraint). Retrying fails
    /// the same way: this is a fault of the caller's data or of kcm, never of the
    /// store's availability. Nothing was written.
    #[error("value cannot be stored: {0}")]
    Unencodable(String),
    /// The store refused a whole-store operation as it stands (restoring into a store
    /// that is not empty, or a snapshot of another schema version). Nothing was written.
    #[error("{0}")]
    Refused(String),
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Durable storage for tenants, keys (wrapped only), aliases and settings.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `writes` atomically and durably: all or none, and durable before `Ok`.
    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()>;

    /// Checks the store is reachable.
    async fn ping(&self) -> StoreResult<()>;

    /// A service-wide setting.
    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;

    /// A tenant by id.
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>>;
    /// A tenant by name.
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>>;
    /// All tenants, by name.
    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>>;

    /// An access key by id.
    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    /// Access keys of a tenant (`None`: the operator's keys), by id.
    async fn access_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<AccessKeyRecord>>;

    /// A root key by id.
    async fn root_key(&self, id: RootKeyId) -> StoreResult<Option<RootKeyRecord>>;
    /// Root keys of a tenant (`None`: the service's own), by creation time.
    async fn root_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<RootKeyRecord>>;

    /// A system by id.
    async fn system(&self, id: SystemId) -> StoreResult<Option<SystemRecord>>;
    /// A system by tenant and name.
    async fn system_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<SystemRecord>>;
    /// Systems of a tenant, by name.
    async fn systems(&self, tenant: TenantId) -> StoreResult<Vec<SystemRecord>>;
    /// One version of a system key.
    async fn system_key(
        &self,
        system: SystemId,
        version: u32,
    ) -> StoreResult<Option<SystemKeyRecord>>;

    /// A service key by id.
    async fn service_key(&self, id: KeyId) -> StoreResult<Option<ServiceKeyRecord>>;
    /// Up to `limit` service keys of a tenant with id greater than `after`, by id.
    async fn service_keys(
        &self,
        tenant: TenantId,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<ServiceKeyRecord>>;
    /// Every version of a service key, by version.
    async fn key_versions(&self, key: KeyId) -> StoreResult<Vec<KeyVersionRecord>>;
    /// Ids of keys pending deletion whose `deletion_at` is at or before `now`.
    async fn keys_due_for_deletion(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>>;
    /// Ids of keys whose automatic rotation is due at or before `now`.
    async fn keys_due_for_rotation(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>>;
    /// Ids of keys whose imported material expires at or before `now`
    /// (`material_expires_at`), in any state.
    async fn keys_with_expired_material(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>>;

    /// An alias by tenant and full name.
    async fn alias(&self, tenant: TenantId, name: &str) -> StoreResult<Option<AliasRecord>>;
    /// Aliases of a tenant (optionally only those of one key), by name.
    async fn aliases(&self, tenant: TenantId, key: Option<KeyId>) -> StoreResult<Vec<AliasRecord>>;

    /// A grant by id.
    async fn grant(&self, id: &str) -> StoreResult<Option<GrantRecord>>;
    /// Grants of a key, by creation time.
    async fn grants(&self, key: KeyId) -> StoreResult<Vec<GrantRecord>>;
    /// Grants of a tenant that `principal` may retire, by creation time.
    async fn grants_retirable_by(
        &self,
        tenant: TenantId,
        principal: &str,
    ) -> StoreResult<Vec<GrantRecord>>;

    /// A managed object by id.
    async fn managed_object(&self, id: ObjectId) -> StoreResult<Option<ManagedObjectRecord>>;
    /// Every managed object of a system, oldest first (by creation time, then id).
    async fn managed_objects(&self, system: SystemId) -> StoreResult<Vec<ManagedObjectRecord>>;
    /// How many managed objects a system holds (without reading them).
    async fn managed_object_count(&self, system: SystemId) -> StoreResult<u64>;

    /// Appends `records` to the end of their chains, atomically and durably: each
    /// is linked ([`crate::audit::hash::link_all`]) after its chain's last record
    /// *as the store holds it inside the appending transaction*, and appenders of
    /// one chain are serialised — across every node sharing the store — so an
    /// append never conflicts with another node's. `seq`, `prev_hash` and `hash`
    /// of the given records are ignored.
    ///
    /// The only way records enter the log apart from
    /// [`restore_snapshot`](Store::restore_snapshot): there is no [`Write`] for
    /// them, so no caller can insert a record that is not linked. Fails with
    /// [`StoreError::Conflict`] only if a row reached a `seq` it was taking by a
    /// path outside this serialisation (SQL from outside kcm; on PostgreSQL, a
    /// restore committed between its read of the tail and its insert); nothing is
    /// written then.
    ///
    /// `records` is taken by reference so that a caller keeps the batch when the
    /// append fails (the audit writer spools it to a local file then): it holds the
    /// same records afterwards, linked or not. After a success each holds the `seq`,
    /// `prev_hash` and `hash` it was committed with (the audit writer notes the
    /// newest of each chain, see `audit::heads`).
    async fn append_audit(&self, records: &mut Vec<AuditRecord>) -> StoreResult<()>;

    /// The last record of a chain: its `seq` and `hash` (`None` for an empty chain).
    async fn audit_tail(&self, chain: AuditChain) -> StoreResult<Option<(u64, String)>>;
    /// Records of one chain matching `query`, by `seq`.
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    /// Every chain that has records, with its last `seq`.
    async fn audit_chains(&self) -> StoreResult<Vec<(AuditChain, u64)>>;
    /// Up to `limit` checkpoints of a chain with `seq` greater than `after_seq`, by `seq`.
    async fn audit_checkpoints(
        &self,
        chain: AuditChain,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditCheckpoint>>;
    /// The newest checkpoint of a chain.
    async fn last_audit_checkpoint(
        &self,
        chain: AuditChain,
    ) -> StoreResult<Option<AuditCheckpoint>>;
    /// Every row of every table (except the backend's migration bookkeeping), read
    /// as of one instant: inside one read transaction, so it is consistent while
    /// writes continue. Tables and rows come in a deterministic order.
    async fn snapshot(&self) -> StoreResult<Snapshot>;

    /// Writes every row of `snapshot` into this store, in one transaction: all or
    /// nothing. Refuses ([`StoreError::Refused`]) when the store holds any row, or
    /// when the snapshot's schema version, tables or columns are not this store's.
    async fn restore_snapshot(&self, snapshot: Snapshot) -> StoreResult<()>;

    /// Takes the store's cluster-wide lock on management changes, for a store shared
    /// by several nodes. A change that reads, decides and writes (disable a key,
    /// move an alias, rotate) holds it from its first read to its commit, so two
    /// nodes changing one record at once cannot both act on the same old state and
    /// lose one of the changes. Commits under it go through [`ChangeLock::commit`],
    /// which fails if the lock was lost meanwhile. It is given up when dropped, and
    /// by the database itself when the node holding it dies.
    ///
    /// `None` (the default) for a store only one node uses: the node's own lock is
    /// enough there.
    async fn lock_changes(&self) -> StoreResult<Option<Box<dyn ChangeLock>>> {
        Ok(None)
    }

    /// Changes committed by any node (this one included), for a store shared by
    /// several nodes: each node drops what it cached of a changed record at once
    /// instead of when the entry's `revocation_bound` runs out. A notice may be
    /// lost (a dropped connection); the bound still holds then. `None` (the
    /// default) for a store only one node uses.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
}

/// A held cluster-wide lock on management changes (see [`Store::lock_changes`]).
#[async_trait]
pub trait ChangeLock: Send + Sync {
    /// Applies `writes` as [`Store::commit`] does, and only while this lock is
    /// still held: if it was lost (the connection holding it broke), nothing is
    /// written and the commit fails with [`StoreError::Unavailable`].
    async fn commit(&mut self, writes: Vec<Write>) -> StoreResult<()>;
}

/// What a committed change may have made stale in a node's caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A service key: its state, versions or material.
    Key(KeyId),
    /// An alias of a tenant.
    Alias(TenantId),
    /// An access key (its state or deletion).
    AccessKey(String),
    /// A root key, system or system key: anything cached below may be stale.
    Chain,
}

impl Change {
    /// What `write` may make stale, if anything.
    pub fn of(write: &Write) -> Option<Change> {
        Some(match write {
            Write::PutServiceKey(k) => Change::Key(k.id),
            Write::PutKeyVersion(v) => Change::Key(v.key_id),
            Write::DeleteKeyVersions(id) | Write::DeleteAliasesOf(id) => Change::Key(*id),
            Write::DeleteKeyVersion { key, .. } => Change::Key(*key),
            Write::InsertAlias(a) | Write::PutAlias(a) => Change::Alias(a.tenant_id),
            Write::DeleteAlias { tenant_id, .. } => Change::Alias(*tenant_id),
            Write::PutAccessKey(a) => Change::AccessKey(a.id.clone()),
            Write::DeleteAccessKey(id) => Change::AccessKey(id.clone()),
            Write::PutRootKey(_) | Write::PutSystem(_) | Write::PutSystemKey(_) => Change::Chain,
            _ => return None,
        })
    }

    /// The compact text form carried by a notification.
    pub fn encode(&self) -> String {
        match self {
            Change::Key(id) => format!("k {id}"),
            Change::Alias(t) => format!("a {t}"),
            Change::AccessKey(id) => format!("c {id}"),
            Change::Chain => "chain".into(),
        }
    }

    /// Parses [`Change::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Change> {
        match text.split_once(' ') {
            Some(("k", id)) => KeyId::parse(id).map(Change::Key),
            Some(("a", t)) => TenantId::parse(t).map(Change::Alias),
            Some(("c", id)) => Some(Change::AccessKey(id.to_string())),
            None if text == "chain" => Some(Change::Chain),
            _ => None,
        }
    }
}

/// The whole content of a store, table by table, in portable values.
///
/// Made by [`Store::snapshot`] and written back by [`Store::restore_snapshot`]. It is
/// generic on purpose: a table added by a later migration (audit records, policies,
/// grants, …) is carried without any change here. It holds what the store holds —
/// wrapped key material only — and is serialisable for backup archives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The store's schema version (the backend's highest applied migration).
    pub schema_version: u32,
    /// Every table, by name.
    pub tables: Vec<TableDump>,
}

impl Snapshot {
    /// Number of rows per table, in table order.
    pub fn row_counts(&self) -> Vec<(String, u64)> {
        self.tables
            .iter()
            .map(|t| (t.name.clone(), t.rows.len() as u64))
            .collect()
    }

    /// Total number of rows.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows.len() as u64).sum()
    }
}

/// One table of a [`Snapshot`]: its column names and every row, cells in column order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDump {
    /// Table name.
    pub name: String,
    /// Column names, in the order of each row's cells.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

/// One cell of a [`TableDump`] row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes (base64 in JSON).
    Blob(#[serde(with = "base64_bytes")] Vec<u8>),
}

/// Serde for blobs as standard base64 strings (compact and readable in JSON).
pub(crate) mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_text_form() {
        let key = KeyId::new_random();
        let tenant = TenantId::new_random();
        for change in [
            Change::Key(key),
            Change::Alias(tenant),
            Change::AccessKey("KCMABCDEF".into()),
            Change::Chain,
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        for junk in ["", "k", "k not-a-uuid", "x y", "chain2"] {
            assert_eq!(Change::decode(junk), None, "{junk:?}");
        }
        assert_eq!(
            Change::of(&Write::DeleteKeyVersions(key)),
            Some(Change::Key(key))
        );
        assert_eq!(
            Change::of(&Write::PutMeta {
                key: "k".into(),
                value: "v".into()
            }),
            None
        );
    }
}
