//! The cluster-wide lock on management changes ([`Store::lock_changes`]).
//!
//! A session-level advisory lock, taken on one connection that stays out of the
//! pool while the lock is held; every commit made under the lock runs on that
//! same connection. If the connection breaks, PostgreSQL releases the lock, and
//! every later commit through it fails, because the connection is gone: a node can
//! never commit believing it holds a lock that another node has taken meanwhile.
//! A node that dies releases the lock with its connections.
//!
//! [`Store::lock_changes`]: kcm_core::store::Store::lock_changes

use std::time::Duration;

use async_trait::async_trait;
use kcm_core::store::{ChangeLock, StoreError, StoreResult, Write};
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Postgres};

use crate::error::{from_sqlx, is_connection_failure};
use crate::store::{CommitError, PostgresStore, OPERATION_TIMEOUT};

/// The advisory lock key of management changes (distinct from the migrations').
const CHANGE_LOCK_KEY: i64 = i64::from_be_bytes(*b"kcm-chng");

/// How long a node waits for another node's management change to finish. Changes
/// are short; one that holds the lock this long is stuck, and waiting for ever
/// would hang the caller.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A held change lock: the connection that holds it.
pub(crate) struct PgChangeLock {
    /// `None` once the connection broke or its state became unknown: the lock is
    /// lost, and every commit fails.
    conn: Option<PoolConnection<Postgres>>,
    store: PostgresStore,
}

/// Takes the change lock, waiting up to [`LOCK_WAIT`] for another node to give it up.
pub(crate) async fn take(store: &PostgresStore) -> StoreResult<PgChangeLock> {
    let conn = store.through_gate(acquire(store)).await?;
    Ok(PgChangeLock {
        conn: Some(conn),
        store: store.clone(),
    })
}

/// A connection holding the lock (errors scrubbed of the password); also says
/// whether the database proved unreachable.
async fn acquire(store: &PostgresStore) -> (StoreResult<PoolConnection<Postgres>>, bool) {
    let mut conn = match store.pool().acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let unreachable = matches!(e, sqlx::Error::PoolTimedOut);
            return (Err(store.scrub(from_sqlx(e))), unreachable);
        }
    };
    let lock = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(CHANGE_LOCK_KEY)
        .execute(&mut *conn);
    match tokio::time::timeout(LOCK_WAIT, lock).await {
        Ok(Ok(_)) => (Ok(conn), false),
        Ok(Err(e)) => {
            conn.close_on_drop();
            (Err(store.scrub(from_sqlx(e))), false)
        }
        Err(_) => {
            // The wait was abandoned mid-statement: the lock may still be granted
            // to this session later, so the session must end.
            conn.close_on_drop();
            let e = StoreError::Unavailable(format!(
                "another kcm node has held the cluster-wide lock on management changes \
                 for over {LOCK_WAIT:?}; try again"
            ));
            (Err(store.scrub(e)), false)
        }
    }
}

impl PgChangeLock {
    /// Gives the connection up as broken: the lock is lost with it.
    fn lose(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

#[async_trait]
impl ChangeLock for PgChangeLock {
    async fn commit(&mut self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let target = self.store.target().to_string();
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Unavailable(format!(
                "the connection to {target} that held the cluster-wide lock on management \
                 changes broke earlier; nothing was written"
            )));
        };
        let store = &self.store;
        let attempt = async {
            let tx = conn.begin().await.map_err(CommitError::Retry)?;
            store.commit_in(tx, &writes).await
        };
        let result = tokio::time::timeout(OPERATION_TIMEOUT, attempt).await;
        let error = match result {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(CommitError::Failed(e))) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.lose(); // broke at COMMIT: the session is gone
                }
                e
            }
            Ok(Err(CommitError::Retry(e) | CommitError::Unreachable(e))) => {
                if is_connection_failure(&e) {
                    self.lose();
                    StoreError::Unavailable(format!(
                        "the connection to {target} holding the cluster-wide lock on \
                         management changes broke before the commit, so the lock is lost; \
                         nothing was written: {}",
                        from_sqlx(e)
                    ))
                } else {
                    // Rolled back by the server (a deadlock or serialisation failure).
                    from_sqlx(e)
                }
            }
            Err(_) => {
                self.lose();
                StoreError::Unavailable(format!(
                    "{target} did not confirm the commit within {OPERATION_TIMEOUT:?}; \
                     whether it is durable is unknown"
                ))
            }
        };
        Err(self.store.scrub(error))
    }
}

impl Drop for PgChangeLock {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close_on_drop(); // ending the session releases the lock
            return;
        };
        runtime.spawn(async move {
            let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(CHANGE_LOCK_KEY)
                .fetch_one(&mut *conn)
                .await;
            if !matches!(unlocked, Ok(true)) {
                // Unknown state: end the session, which releases the lock for sure.
                conn.close_on_drop();
            }
        });
    }
}
