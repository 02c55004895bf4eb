//! [`PostgresStore`] and its [`Store`] implementation.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::{Change, ChangeLock, Snapshot, Store, StoreError, StoreResult, Write};
use kcm_store_rows::audit;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::error::{
    from_audit_insert, from_sqlx, from_write, is_connection_failure, is_transaction_rollback,
    DbError,
};
use crate::gate::OutageGate;
use crate::options::{display_target, Redactor};
use crate::read::{self, ReadResult};
use crate::{change_lock, migrations, notify, snapshot, write, PostgresOptions};

/// Attempts of a read whose connection fails (the pool hands out another one).
const READ_ATTEMPTS: u32 = 3;
/// Attempts of a commit whose transaction certainly did not commit (the connection
/// failed before COMMIT was sent, or the server rolled it back as a deadlock or
/// serialisation failure). A failure *at* COMMIT is never retried.
const COMMIT_ATTEMPTS: u32 = 3;
/// The first pause before another attempt; it grows fourfold up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// The longest a single attempt (acquire included) may take before it is abandoned
/// as [`StoreError::Unavailable`]: a server that stopped answering without closing
/// the connection must not hang callers. A request's reads and commits are single
/// rows or a few; five seconds is far beyond a healthy database and short enough
/// that a client's own timeout (and a load balancer's) is not reached first.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for reading a whole-store snapshot (a backup), which grows with the
/// store.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// A [`Store`] in a PostgreSQL database, shared by every kcm node of a cluster.
///
/// Cheap to clone; clones share the connection pool. Its `Debug` shows the server
/// and database, never the password.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Changes committed by any node, as PostgreSQL notified them.
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Fails calls at once while the database is known to be unreachable.
    gate: OutageGate,
    /// The URL without its password, for messages.
    target: String,
    redactor: Redactor,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

pub(crate) enum CommitError {
    /// No connection could be had: the database is unreachable. Not committed.
    Unreachable(sqlx::Error),
    /// Certainly not committed, and worth another attempt.
    Retry(sqlx::Error),
    /// Final.
    Failed(StoreError),
}

/// The next pause between attempts.
fn grow(backoff: Duration) -> Duration {
    (backoff * 4).min(MAX_BACKOFF)
}

impl PostgresStore {
    /// Connects to the PostgreSQL database at `url` and migrates its schema.
    ///
    /// `url` is a libpq-style URL (`postgres://user:password@host:port/database?sslmode=…`);
    /// its password never appears in an error, a log line or `Debug` output. Tables
    /// live in the connection's current schema (`public` unless the URL's `options`
    /// set a `search_path`). Several nodes may open one database at once: migrations
    /// are serialised by an advisory lock.
    ///
    /// Fails with [`StoreError::Unavailable`] if the server cannot be reached within
    /// `options.acquire_timeout`, if the database's encoding is not UTF8, or if its
    /// schema is newer than this build knows.
    pub async fn open(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let redactor = Redactor::from_url(url);
        let target = display_target(url);
        let scrub = |e: StoreError| scrub_error(&redactor, e);
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| {
                scrub(StoreError::Unavailable(format!(
                    "invalid PostgreSQL URL {target}: {e}"
                )))
            })?
            .application_name("kcm");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // A commit is acknowledged only once durable: never with
                    // synchronous_commit off (stronger settings are kept).
                    sqlx::query(
                        "SELECT set_config('synchronous_commit', 'on', false)
                         WHERE current_setting('synchronous_commit') = 'off'",
                    )
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| {
                // The cause's own words, without a second "store unavailable".
                let cause = match from_sqlx(e) {
                    StoreError::Unavailable(m) => m,
                    other => other.to_string(),
                };
                scrub(StoreError::Unavailable(format!(
                    "cannot connect to {target}: {cause}"
                )))
            })?;
        let encoding: String = sqlx::query_scalar("SELECT current_setting('server_encoding')")
            .fetch_one(&pool)
            .await
            .map_err(|e| scrub(from_sqlx(e)))?;
        if encoding != "UTF8" {
            return Err(StoreError::Unavailable(format!(
                "the database at {target} has encoding {encoding}; kcm needs UTF8 \
                 (CREATE DATABASE … ENCODING 'UTF8')"
            )));
        }
        let version = migrations::migrate(&pool)
            .await
            .map_err(|e| scrub(e.into_store()))?;
        tracing::debug!(target = %target, version, "opened postgres store");
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        tokio::spawn(notify::listen(pool.clone(), changes.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                changes,
                pool,
                gate: OutageGate::default(),
                target,
                redactor,
            }),
        })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The server and database, without the password, for messages.
    pub(crate) fn target(&self) -> &str {
        &self.inner.target
    }

    pub(crate) fn scrub(&self, e: StoreError) -> StoreError {
        scrub_error(&self.inner.redactor, e)
    }

    /// Runs `call` behind the outage gate: refused at once while the database is
    /// believed down; otherwise run, and whether it found the database unreachable
    /// (the `bool` of its outcome) reported to the gate.
    pub(crate) async fn through_gate<T>(
        &self,
        call: impl Future<Output = (StoreResult<T>, bool)>,
    ) -> StoreResult<T> {
        let pass = self.inner.gate.enter(&self.inner.target)?;
        let (result, unreachable) = call.await;
        pass.report(unreachable);
        result
    }

    /// Runs a read, again (after a pause) if its connection failed, up to
    /// [`READ_ATTEMPTS`] times.
    async fn read<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ReadResult<T>>,
    {
        self.through_gate(self.read_attempts(f, OPERATION_TIMEOUT))
            .await
    }

    /// [`PostgresStore::read`] without the gate, each attempt within `timeout`;
    /// also says whether the database proved unreachable.
    async fn read_attempts<T, F, Fut>(&self, f: F, timeout: Duration) -> (StoreResult<T>, bool)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ReadResult<T>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = match tokio::time::timeout(timeout, f()).await {
                Ok(result) => result,
                Err(_) => {
                    let e = StoreError::Unavailable(format!(
                        "{} did not answer within {timeout:?}",
                        self.inner.target
                    ));
                    return (Err(e), true);
                }
            };
            match result {
                Ok(value) => return (Ok(value), false),
                Err(e) if e.is_connection_failure() && attempt < READ_ATTEMPTS => {
                    tracing::debug!(attempt, error = %self.scrub(e.into_store()), "store read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = grow(backoff);
                    attempt += 1;
                }
                Err(e) => {
                    let unreachable = matches!(e, DbError::Sql(sqlx::Error::PoolTimedOut));
                    return (Err(self.scrub(e.into_store())), unreachable);
                }
            }
        }
    }

    /// Commits, again (after a pause) while the transaction certainly did not
    /// apply, up to [`COMMIT_ATTEMPTS`] times.
    /// Also says whether the database proved unreachable.
    async fn commit_attempts<F, Fut>(&self, try_commit: F) -> (StoreResult<()>, bool)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), CommitError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(OPERATION_TIMEOUT, try_commit()).await;
            match result {
                Ok(Ok(())) => return (Ok(()), false),
                Err(_) => {
                    let e = StoreError::Unavailable(format!(
                        "{} did not confirm the commit within {OPERATION_TIMEOUT:?}; \
                         whether it is durable is unknown",
                        self.inner.target
                    ));
                    return (Err(e), true);
                }
                Ok(Err(CommitError::Unreachable(e))) => {
                    return (Err(self.scrub(from_sqlx(e))), true)
                }
                Ok(Err(CommitError::Retry(e))) if attempt < COMMIT_ATTEMPTS => {
                    tracing::debug!(attempt, error = %self.scrub(from_sqlx(e)), "store commit did not apply; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = grow(backoff);
                    attempt += 1;
                }
                Ok(Err(CommitError::Retry(e))) => return (Err(self.scrub(from_sqlx(e))), false),
                Ok(Err(CommitError::Failed(e))) => return (Err(self.scrub(e)), false),
            }
        }
    }

    /// BEGIN on a pooled connection.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, CommitError> {
        self.pool().begin().await.map_err(|e| {
            if matches!(e, sqlx::Error::PoolTimedOut) {
                CommitError::Unreachable(e)
            } else if is_connection_failure(&e) {
                CommitError::Retry(e)
            } else {
                CommitError::Failed(from_sqlx(e))
            }
        })
    }

    /// One attempt at a commit on a pooled connection: BEGIN, every write, COMMIT.
    async fn try_commit(&self, writes: &[Write]) -> Result<(), CommitError> {
        let tx = self.begin().await?;
        self.commit_in(tx, writes).await
    }

    /// One attempt at an audit append: BEGIN, lock the chains and read their
    /// tails, link, then the records (one multi-row INSERT) and COMMIT. No change
    /// notice: an audit record is in no node's cache.
    async fn try_append_audit(
        &self,
        records: &[AuditRecord],
        committed: &std::sync::Mutex<Option<Vec<AuditRecord>>>,
    ) -> Result<(), CommitError> {
        let mut tx = self.begin().await?;
        let tails = write::lock_audit_tails(&mut tx, records)
            .await
            .map_err(|e| retry_or_fail(e, DbError::into_store))?;
        let records = audit::linked(records.to_vec(), tails);
        if let Err((index, e)) = write::insert_linked_audit_records(&mut tx, &records).await {
            // Dropping `tx` rolls back (COMMIT was never sent).
            return Err(retry_or_fail(e, |e| from_audit_insert(&records[index], e)));
        }
        self.finish(tx).await?;
        *committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(records);
        Ok(())
    }

    /// Every write and COMMIT, in the begun transaction `tx`.
    pub(crate) async fn commit_in(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        writes: &[Write],
    ) -> Result<(), CommitError> {
        if let Err((index, e)) = write::apply_all(&mut tx, writes).await {
            // Dropping `tx` rolls back (COMMIT was never sent).
            return Err(retry_or_fail(e, |e| from_write(&writes[index], e)));
        }
        // Delivered to every listening node when (and only if) the commit is.
        if let Err(e) = notify::announce(&mut tx, writes).await {
            return Err(if is_connection_failure(&e) {
                CommitError::Retry(e)
            } else {
                CommitError::Failed(from_sqlx(e))
            });
        }
        self.finish(tx).await
    }

    /// COMMIT, telling a failure the server answered (certainly not committed) from
    /// a connection lost during it (outcome unknown).
    async fn finish(&self, tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), CommitError> {
        match tx.commit().await {
            Ok(()) => Ok(()),
            // The server answered: it rolled the transaction back.
            Err(e) if is_transaction_rollback(&e) => Err(CommitError::Retry(e)),
            Err(e) if is_connection_failure(&e) => {
                Err(CommitError::Failed(StoreError::Unavailable(format!(
                    "the connection to {} failed during COMMIT, so whether the commit \
                     is durable is unknown: {e}",
                    self.inner.target
                ))))
            }
            Err(e) => Err(CommitError::Failed(from_sqlx(e))),
        }
    }
}

/// A statement inside a transaction failed: worth another attempt when the
/// connection broke or the server rolled the transaction back (nothing was
/// committed either way); otherwise final, as `fail` words it.
fn retry_or_fail(e: DbError, fail: impl FnOnce(DbError) -> StoreError) -> CommitError {
    match e {
        DbError::Sql(e) if is_connection_failure(&e) || is_transaction_rollback(&e) => {
            CommitError::Retry(e)
        }
        e => CommitError::Failed(fail(e)),
    }
}

fn scrub_error(redactor: &Redactor, e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(redactor.scrub(&m)),
        StoreError::Unavailable(m) => StoreError::Unavailable(redactor.scrub(&m)),
        StoreError::Corrupt(m) => StoreError::Corrupt(redactor.scrub(&m)),
        StoreError::Full(m) => StoreError::Full(redactor.scrub(&m)),
        StoreError::Refused(m) => StoreError::Refused(redactor.scrub(&m)),
        StoreError::Unencodable(m) => StoreError::Unencodable(redactor.scrub(&m)),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.through_gate(self.commit_attempts(|| self.try_commit(&writes)))
            .await
    }

    async fn append_audit(&self, records: &mut Vec<AuditRecord>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        // The attempt that commits leaves the records as it linked them here: the
        // caller learns their places in their chains.
        let committed = std::sync::Mutex::new(None);
        let batch: &[AuditRecord] = records;
        self.through_gate(self.commit_attempts(|| self.try_append_audit(batch, &committed)))
            .await?;
        if let Some(linked) = committed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            *records = linked;
        }
        Ok(())
    }

    async fn lock_changes(&self) -> StoreResult<Option<Box<dyn ChangeLock>>> {
        Ok(Some(Box::new(change_lock::take(self).await?)))
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        Some(self.inner.changes.subscribe())
    }

    async fn ping(&self) -> StoreResult<()> {
        let p = self.pool();
        self.read(move || read::ping(p)).await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let p = self.pool();
        self.read(move || read::meta(p, key)).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>> {
        let p = self.pool();
        self.read(move || read::tenant(p, id)).await
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let p = self.pool();
        self.read(move || read::tenant_by_name(p, name)).await
    }

    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let p = self.pool();
        self.read(move || read::tenants(p)).await
    }

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let p = self.pool();
        self.read(move || read::access_key(p, id)).await
    }

    async fn access_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<AccessKeyRecord>> {
        let p = self.pool();
        self.read(move || read::access_keys(p, tenant)).await
    }

    async fn root_key(&self, id: RootKeyId) -> StoreResult<Option<RootKeyRecord>> {
        let p = self.pool();
        self.read(move || read::root_key(p, id)).await
    }

    async fn root_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<RootKeyRecord>> {
        let p = self.pool();
        self.read(move || read::root_keys(p, tenant)).await
    }

    async fn system(&self, id: SystemId) -> StoreResult<Option<SystemRecord>> {
        let p = self.pool();
        self.read(move || read::system(p, id)).await
    }

    async fn system_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<SystemRecord>> {
        let p = self.pool();
        self.read(move || read::system_by_name(p, tenant, name))
            .await
    }

    async fn systems(&self, tenant: TenantId) -> StoreResult<Vec<SystemRecord>> {
        let p = self.pool();
        self.read(move || read::systems(p, tenant)).await
    }

    async fn system_key(
        &self,
        system: SystemId,
        version: u32,
    ) -> StoreResult<Option<SystemKeyRecord>> {
        let p = self.pool();
        self.read(move || read::system_key(p, system, version))
            .await
    }

    async fn service_key(&self, id: KeyId) -> StoreResult<Option<ServiceKeyRecord>> {
        let p = self.pool();
        self.read(move || read::service_key(p, id)).await
    }

    async fn service_keys(
        &self,
        tenant: TenantId,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<ServiceKeyRecord>> {
        let p = self.pool();
        self.read(move || read::service_keys(p, tenant, after, limit))
            .await
    }

    async fn key_versions(&self, key: KeyId) -> StoreResult<Vec<KeyVersionRecord>> {
        let p = self.pool();
        self.read(move || read::key_versions(p, key)).await
    }

    async fn keys_due_for_deletion(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        let p = self.pool();
        self.read(move || read::keys_due_for_deletion(p, now)).await
    }

    async fn keys_due_for_rotation(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        let p = self.pool();
        self.read(move || read::keys_due_for_rotation(p, now)).await
    }

    async fn keys_with_expired_material(&self, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
        let p = self.pool();
        self.read(move || read::keys_with_expired_material(p, now))
            .await
    }

    async fn alias(&self, tenant: TenantId, name: &str) -> StoreResult<Option<AliasRecord>> {
        let p = self.pool();
        self.read(move || read::alias(p, tenant, name)).await
    }

    async fn aliases(&self, tenant: TenantId, key: Option<KeyId>) -> StoreResult<Vec<AliasRecord>> {
        let p = self.pool();
        self.read(move || read::aliases(p, tenant, key)).await
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<GrantRecord>> {
        let p = self.pool();
        self.read(move || read::grant(p, id)).await
    }

    async fn grants(&self, key: KeyId) -> StoreResult<Vec<GrantRecord>> {
        let p = self.pool();
        self.read(move || read::grants(p, key)).await
    }

    async fn grants_retirable_by(
        &self,
        tenant: TenantId,
        principal: &str,
    ) -> StoreResult<Vec<GrantRecord>> {
        let p = self.pool();
        self.read(move || read::grants_retirable_by(p, tenant, principal))
            .await
    }

    async fn managed_object(&self, id: ObjectId) -> StoreResult<Option<ManagedObjectRecord>> {
        let p = self.pool();
        self.read(move || read::managed_object(p, id)).await
    }

    async fn managed_objects(&self, system: SystemId) -> StoreResult<Vec<ManagedObjectRecord>> {
        let p = self.pool();
        self.read(move || read::managed_objects(p, system)).await
    }

    async fn managed_object_count(&self, system: SystemId) -> StoreResult<u64> {
        let p = self.pool();
        self.read(move || read::managed_object_count(p, system))
            .await
    }

    async fn audit_tail(&self, chain: AuditChain) -> StoreResult<Option<(u64, String)>> {
        let p = self.pool();
        self.read(move || read::audit_tail(p, chain)).await
    }

    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let p = self.pool();
        self.read(move || read::audit_records(p, query)).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<(AuditChain, u64)>> {
        let p = self.pool();
        self.read(move || read::audit_chains(p)).await
    }

    async fn audit_checkpoints(
        &self,
        chain: AuditChain,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditCheckpoint>> {
        let p = self.pool();
        self.read(move || read::audit_checkpoints(p, chain, after_seq, limit))
            .await
    }

    async fn last_audit_checkpoint(
        &self,
        chain: AuditChain,
    ) -> StoreResult<Option<AuditCheckpoint>> {
        let p = self.pool();
        self.read(move || read::last_audit_checkpoint(p, chain))
            .await
    }

    async fn snapshot(&self) -> StoreResult<Snapshot> {
        let p = self.pool();
        self.through_gate(self.read_attempts(move || snapshot::snapshot(p), SNAPSHOT_TIMEOUT))
            .await
    }

    async fn restore_snapshot(&self, snapshot: Snapshot) -> StoreResult<()> {
        let result =
            tokio::time::timeout(SNAPSHOT_TIMEOUT, snapshot::restore(self.pool(), &snapshot))
                .await
                .unwrap_or_else(|_| {
                    Err(DbError::Store(StoreError::Unavailable(
                        "the restore did not finish in time; whether it was committed is unknown"
                            .into(),
                    )))
                });
        result.map_err(|e| self.scrub(e.into_store()))
    }
}
