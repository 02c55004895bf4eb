//! Background work the server does by itself: ending deletion waiting periods,
//! automatic rotation, and signing audit checkpoints.

use std::sync::Arc;
use std::time::Duration;

use super::{now_ms, Service};
use crate::error::Result;
use crate::lifecycle::{KeyState, Transition};
use crate::model::VersionOrigin;
use crate::store::Change;

impl Service {
    /// Destroys keys whose deletion window has ended and rotates keys whose automatic
    /// rotation is due. Returns how many keys it changed.
    pub async fn run_due_work(&self) -> Result<usize> {
        let now = now_ms();
        let mut changed = 0;
        for id in self.store.keys_due_for_deletion(now).await? {
            let mut changes = self.lock_changes().await?;
            let Some(mut record) = self.store.service_key(id).await? else {
                continue;
            };
            // Re-check under the lock: the deletion may have been cancelled meanwhile.
            if record.lifecycle.state() != KeyState::PendingDeletion
                || record.deletion_at.is_none_or(|at| at > now)
            {
                continue;
            }
            if let Err(e) = record.lifecycle.apply(Transition::Destroy) {
                // The store's list of due keys and the table disagree: leave the key
                // as it is, loudly, rather than destroy something the table forbids.
                tracing::error!(key = %id, error = %e, "a key due for deletion cannot be destroyed; left as it is");
                continue;
            }
            changes.commit(super::keys::destroy_writes(&record)).await?;
            self.keys.remove(&id);
            self.aliases.clear();
            tracing::info!(key = %id, "deletion window ended: key material destroyed");
            changed += 1;
        }
        for id in self.store.keys_due_for_rotation(now).await? {
            let mut changes = self.lock_changes().await?;
            let Some(record) = self.store.service_key(id).await? else {
                continue;
            };
            if record.rotation.is_none_or(|r| r.next_rotation_at > now) {
                continue;
            }
            match self
                .rotate(&mut changes, record, VersionOrigin::AutomaticRotation)
                .await
            {
                Ok(version) => {
                    tracing::info!(key = %id, version, "automatic rotation");
                    changed += 1;
                }
                Err(e) => {
                    tracing::warn!(key = %id, error = %e, "automatic rotation failed; will retry")
                }
            }
        }
        Ok(changed)
    }

    /// Runs [`Service::run_due_work`] every `interval`, and writes audit checkpoints
    /// every `audit_checkpoint_interval` (and once more at shutdown), until
    /// `shutdown` turns true — while this node holds the scheduler lease, so that
    /// in a cluster the work is done by one node at a time (another takes over
    /// within a few intervals when it stops).
    pub fn spawn_background(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        if let Some(changes) = self.store.changes() {
            tokio::spawn(Arc::clone(self).follow_changes(changes, shutdown.clone()));
        }
        if self.config.audit {
            self.audit_writer();
        }
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut checkpoints = tokio::time::interval(service.config.audit_checkpoint_interval);
            checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Renewed every tick, so it outlives a few slow ticks but passes to
            // another node soon after this one stops renewing it.
            let lease = (interval * 3).max(Duration::from_secs(2));
            let mut leader = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let held = service.hold_scheduler_lease(lease).await;
                        if held != leader {
                            tracing::info!(node = %service.node_id, held, "scheduler lease");
                            leader = held;
                        }
                        if leader {
                            if let Err(e) = service.run_due_work().await {
                                tracing::warn!(error = %e, "background work failed; will retry");
                            }
                        }
                    }
                    _ = checkpoints.tick(), if leader => service.checkpoint_audit_chains().await,
                    _ = shutdown.changed() => break,
                }
                if *shutdown.borrow() {
                    break;
                }
            }
            if leader {
                service.checkpoint_audit_chains().await;
                service.release_scheduler_lease().await;
            }
        })
    }

    /// Drops what this node cached of every record another node changed, as the
    /// store reports it, until `shutdown`. A lost or lagging feed drops
    /// everything (the revocation bound holds regardless).
    async fn follow_changes(
        self: Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(Change::Key(id)) => self.keys.remove(&id),
                    Ok(Change::Alias(_)) => self.aliases.clear(),
                    Ok(Change::AccessKey(id)) => self.credentials.remove(&id),
                    Ok(Change::Chain) => {
                        self.keys.clear();
                        self.system_keys.clear();
                    }
                    Err(RecvError::Lagged(_)) => self.drop_caches(),
                    Err(RecvError::Closed) => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    fn drop_caches(&self) {
        self.keys.clear();
        self.system_keys.clear();
        self.aliases.clear();
        self.credentials.clear();
    }

    async fn checkpoint_audit_chains(&self) {
        match self.write_audit_checkpoints().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(chains = n, "signed audit checkpoints"),
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed; will retry"),
        }
    }
}
