//! The lock every management change (read, decide, write) holds: this node's
//! mutex, and the store's cluster-wide lock when the store is shared by several
//! nodes ([`Store::lock_changes`]).

use tokio::sync::MutexGuard;

use super::Service;
use crate::error::Result;
use crate::store::{ChangeLock, Store, StoreResult, Write};

/// A held lock on management changes. Commits made while it is held go through
/// [`ChangeGuard::commit`], so a cluster-wide lock lost meanwhile fails the
/// commit instead of letting two nodes act on the same old state. Dropping it
/// gives the lock up.
pub(crate) struct ChangeGuard<'a> {
    store: &'a dyn Store,
    // Declared before `_local` so the cluster lock goes first when dropped.
    cluster: Option<Box<dyn ChangeLock>>,
    _local: MutexGuard<'a, ()>,
}

impl ChangeGuard<'_> {
    /// Commits `writes` under this lock.
    pub(crate) async fn commit(&mut self, writes: Vec<Write>) -> StoreResult<()> {
        match &mut self.cluster {
            Some(lock) => lock.commit(writes).await,
            None => self.store.commit(writes).await,
        }
    }
}

impl Service {
    /// Takes the lock on management changes: first this node's (so a node queues
    /// its own changes without holding a database connection each), then the
    /// store's cluster-wide one, if it has one.
    pub(crate) async fn lock_changes(&self) -> Result<ChangeGuard<'_>> {
        let local = self.writes.lock().await;
        let cluster = self.store.lock_changes().await?;
        Ok(ChangeGuard {
            store: &*self.store,
            cluster,
            _local: local,
        })
    }
}
