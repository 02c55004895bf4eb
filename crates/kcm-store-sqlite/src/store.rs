//! [`SqliteStore`] and its [`Store`] implementation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::{Snapshot, Store, StoreResult, Write};
use kcm_store_rows::audit;
use rusqlite::Connection;

use crate::conn::{self, ReaderPool};
use crate::error::{from_join, from_sqlite};
use crate::{migrations, read, snapshot, write};

/// A [`Store`] on one SQLite database file. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: ReaderPool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    ///
    /// The parent directory must exist. Fails if the database was written by a newer
    /// kcm whose schema this build does not know. This blocks; from async code, call
    /// it inside `spawn_blocking` if the runtime must stay responsive meanwhile.
    pub fn open(path: &Path) -> StoreResult<Self> {
        conn::prepare_file(path)?;
        let mut writer = conn::open_writer(path)?;
        let version = migrations::migrate(&mut writer)?;
        let readers = ReaderPool::open(path)?;
        tracing::debug!(path = %path.display(), version, "opened sqlite store");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner.readers.get()))
            .await
            .map_err(from_join)?
    }

    /// Runs `f` on the one writer connection on the blocking pool; writers take
    /// turns on its lock.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&mut conn::lock(&inner.writer)))
            .await
            .map_err(from_join)?
    }
}

fn commit_blocking(conn: &mut Connection, writes: &[Write]) -> StoreResult<()> {
    let tx = conn::begin_immediate(conn)?;
    // On error `tx` is dropped, which rolls back.
    write::apply_all(&tx, writes)?;
    tx.commit().map_err(from_sqlite)
}

/// Links `records` after their chains' tails, read inside the transaction, and
/// appends them (see [`Store::append_audit`]). The write lock of `BEGIN IMMEDIATE`
/// keeps every other appender out until COMMIT, so the tails cannot move meanwhile.
fn append_audit_blocking(conn: &mut Connection, records: &mut [AuditRecord]) -> StoreResult<()> {
    let tx = conn::begin_immediate(conn)?;
    let mut tails = HashMap::new();
    for chain in audit::chains_of(records) {
        if let Some(tail) = read::audit_tail(&tx, chain)? {
            tails.insert(chain, tail);
        }
    }
    audit::link(records, tails);
    write::insert_linked_audit_records(&tx, records)?;
    tx.commit().map_err(from_sqlite)
}

#[async_trait]
impl Store for SqliteStore {
    async fn append_audit(&self, records: &mut Vec<AuditRecord>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        // The batch goes to the writer thread and comes back with the outcome.
        let mut batch = std::mem::take(records);
        let (outcome, batch) = self
            .write(move |c| Ok((append_audit_blocking(c, &mut batch), batch)))
            .await?;
        *records = batch;
        outcome
    }

    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.write(move |c| commit_blocking(c, &writes)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(read::ping).await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| read::meta(c, &key)).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>> {
        self.read(move |c| read::tenant(c, id)).await
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let name = name.to_owned();
        self.read(move |c| read::tenant_by_name(c, &name)).await
    }

    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        self.read(read::tenants).await
    }

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = id.to_owned();
        self.read(move |c| read::access_key(c, &id)).await
    }

    async fn access_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<AccessKeyRecord>> {
        self.read(move |c| read::access_keys(c, tenant)).await
    }

    async fn root_key(&self, id: RootKeyId) -> StoreResult<Option<RootKeyRecord>> {
        self.read(move |c| read::root_key(c, id)).await
    }

    async fn root_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<RootKeyRecord>> {
        self.read(move |c| read::root_keys(c, tenant)).await
    }

    async fn system(&self, id: SystemId) -> StoreResult<Option<SystemRecord>> {
        self.read(move |c| read::system(c, id)).await
    }

    async fn system_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<SystemRecord>> {
        let name = name.to_owned();
        self.read(move |c| read::system_by_name(c, tenant, &name))
            .await
    }

    async fn systems(&self, tenant: TenantId) -> StoreResult<Vec<SystemRecord>> {
        self.read(move |c| read::systems(c, tenant)).await
    }

    async fn system_key(
        &self,
        system: SystemId,
        version: u32,
    ) -> StoreResult<Option<SystemKeyRecord>> {
        self.read(move |c| read::system_key(c, system, version))
            .await
    }

    async fn service_key(&self, id: KeyId) -> StoreResult<Option<ServiceKeyRecord>> {
        self.read(move |c| read::service_key(c, id)).await
    }

    async fn service_keys(
        &self,
        tenant: TenantId,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<ServiceKeyRecord>> {
        self.read(move |c| read::service_keys(c, tenant, after, limit))
            .await
    }

    async fn key_versions(&self, key: KeyId) -> StoreResult<Vec<KeyVersionRecord>> {
        self.read(move |c| read::key_versions(c, key)).await
    }

    async fn keys_due_for_deletion(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        self.read(move |c| read::keys_due_for_deletion(c, now))
            .await
    }

    async fn keys_due_for_rotation(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        self.read(move |c| read::keys_due_for_rotation(c, now))
            .await
    }

    async fn keys_with_expired_material(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        self.read(move |c| read::keys_with_expired_material(c, now))
            .await
    }

    async fn alias(&self, tenant: TenantId, name: &str) -> StoreResult<Option<AliasRecord>> {
        let name = name.to_owned();
        self.read(move |c| read::alias(c, tenant, &name)).await
    }

    async fn aliases(&self, tenant: TenantId, key: Option<KeyId>) -> StoreResult<Vec<AliasRecord>> {
        self.read(move |c| read::aliases(c, tenant, key)).await
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<GrantRecord>> {
        let id = id.to_owned();
        self.read(move |c| read::grant(c, &id)).await
    }

    async fn grants(&self, key: KeyId) -> StoreResult<Vec<GrantRecord>> {
        self.read(move |c| read::grants(c, key)).await
    }

    async fn grants_retirable_by(
        &self,
        tenant: TenantId,
        principal: &str,
    ) -> StoreResult<Vec<GrantRecord>> {
        let principal = principal.to_owned();
        self.read(move |c| read::grants_retirable_by(c, tenant, &principal))
            .await
    }

    async fn managed_object(&self, id: ObjectId) -> StoreResult<Option<ManagedObjectRecord>> {
        self.read(move |c| read::managed_object(c, id)).await
    }

    async fn managed_objects(&self, system: SystemId) -> StoreResult<Vec<ManagedObjectRecord>> {
        self.read(move |c| read::managed_objects(c, system)).await
    }

    async fn managed_object_count(&self, system: SystemId) -> StoreResult<u64> {
        self.read(move |c| read::managed_object_count(c, system))
            .await
    }

    async fn audit_tail(&self, chain: AuditChain) -> StoreResult<Option<(u64, String)>> {
        self.read(move |c| read::audit_tail(c, chain)).await
    }

    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let query = query.clone();
        self.read(move |c| read::audit_records(c, &query)).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<(AuditChain, u64)>> {
        self.read(read::audit_chains).await
    }

    async fn audit_checkpoints(
        &self,
        chain: AuditChain,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditCheckpoint>> {
        self.read(move |c| read::audit_checkpoints(c, chain, after_seq, limit))
            .await
    }

    async fn last_audit_checkpoint(
        &self,
        chain: AuditChain,
    ) -> StoreResult<Option<AuditCheckpoint>> {
        self.read(move |c| read::last_audit_checkpoint(c, chain))
            .await
    }

    async fn snapshot(&self) -> StoreResult<Snapshot> {
        self.read(snapshot::snapshot).await
    }

    async fn restore_snapshot(&self, snapshot: Snapshot) -> StoreResult<()> {
        self.write(move |c| snapshot::restore(c, &snapshot)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::store::StoreError;
    use kcm_test_support::store_conformance::fixtures::bare_audit_record;

    /// `synchronous`, `journal_mode` and `foreign_keys` as `conn` has them.
    fn pragmas(conn: &Connection) -> (i64, String, i64) {
        let int = |name: &str| {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        (
            int("synchronous"),
            mode.to_ascii_lowercase(),
            int("foreign_keys"),
        )
    }

    /// The durability README and ARCHITECTURE promise: WAL with `synchronous = FULL`
    /// (2), so the WAL is fsynced at every commit and an acknowledged commit survives
    /// power loss (NORMAL, 1, would not). `synchronous` belongs to each connection,
    /// not the file, so it is read back from the store's own connections: the writer
    /// and every reader (a reader can run a WAL checkpoint too).
    #[test]
    fn every_connection_is_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("kcm.db")).unwrap();
        const FULL: i64 = 2;
        let writer = conn::lock(&store.inner.writer);
        assert_eq!(pragmas(&writer), (FULL, "wal".into(), 1), "writer");
        drop(writer);
        // Holding each reader while taking the next yields every one of them once.
        let readers: Vec<_> = (0..conn::READERS)
            .map(|_| store.inner.readers.get())
            .collect();
        for (i, reader) in readers.iter().enumerate() {
            assert_eq!(pragmas(reader), (FULL, "wal".into(), 1), "reader {i}");
        }
        let distinct: std::collections::HashSet<_> = readers
            .iter()
            .map(|r| &**r as *const Connection as usize)
            .collect();
        assert_eq!(distinct.len(), conn::READERS);
    }

    /// Inserting a linked record at a `seq` its chain holds — which `append_audit`
    /// never does, as it reads the tail under the write lock, but a row put there
    /// from outside kcm would make happen — is a conflict naming the chain and
    /// `seq`, in the words the PostgreSQL store uses.
    #[test]
    fn a_taken_seq_is_a_conflict_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("kcm.db")).unwrap();
        let mut conn = conn::lock(&store.inner.writer);
        let t = TenantId::new_random();
        for chain in [Some(t), None] {
            let records = audit::linked(vec![bare_audit_record(chain, 0)], HashMap::new());
            let tx = conn.transaction().unwrap();
            write::insert_linked_audit_records(&tx, &records).unwrap();
            match write::insert_linked_audit_records(&tx, &records) {
                Err(StoreError::Conflict(msg)) => {
                    assert_eq!(msg, audit::conflict_message(&records[0]));
                    assert!(msg.contains("seq 1"), "{msg}");
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
    }
}
