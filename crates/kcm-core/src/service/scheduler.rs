//! Background work the server does by itself: ending deletion waiting periods,
//! automatic rotation, and signing audit checkpoints.

use std::sync::Arc;
use std::time::Duration;

use super::{now_ms, Service};
use crate::error::Result;
use crate::lifecycle::{KeyState, Transition};
use crate::model::VersionOrigin;
use crate::store::Change;

/// The longest the background work may go on after shutdown was asked for: the
/// tick in progress, the last audit checkpoint and giving the scheduler lease up.
/// Against a store that answers these take milliseconds; against one that does not
/// (PostgreSQL down: each call would wait for a connection for 5 s) they are
/// abandoned, which loses nothing acknowledged: every audit record was durable
/// before its response, a checkpoint is written again by the next holder for the
/// chains that grew, and an unreleased lease runs out by itself.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

impl Service {
    /// Destroys keys whose deletion window has ended, rotates keys whose automatic
    /// rotation is due and erases imported material that has expired. Returns how
    /// many keys it changed.
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
        changed += self.erase_expired_material(now).await?;
        Ok(changed)
    }

    /// Runs [`Service::run_due_work`] every `interval`, and writes audit checkpoints
    /// every `audit_checkpoint_interval` (and once more at shutdown), until
    /// `shutdown` turns true.
    ///
    /// On a store several nodes share (one that reports [`Store::changes`]) the
    /// work is done only while this node holds the scheduler lease, so that it
    /// happens once however many nodes run (another takes over within a few
    /// intervals when this one stops). A store only one node uses (SQLite, whose
    /// data directory `kcm serve` locks) needs no lease: renewing it would write
    /// to the store on every tick of an idle server.
    ///
    /// Once `shutdown` turns true, what is left — a tick in progress, the last
    /// checkpoint, giving the lease up — gets at most 500 ms (`SHUTDOWN_GRACE`); a store
    /// that does not answer (PostgreSQL down) does not hold the process up.
    ///
    /// [`Store::changes`]: crate::store::Store::changes
    pub fn spawn_background(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let shared = match self.store.changes() {
            Some(changes) => {
                tokio::spawn(Arc::clone(self).follow_changes(changes, shutdown.clone()));
                true
            }
            None => false,
        };
        if self.config.audit {
            // Started now, so that an earlier run's spooled records are forwarded
            // without waiting for a request.
            self.audit_writer();
        }
        let service = Arc::clone(self);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let work = service.background(interval, shared, shutdown);
            let grace = async {
                // Also when the sender is gone: nothing will stop the work otherwise.
                let _ = stop.wait_for(|stop| *stop).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            tokio::select! {
                () = work => {}
                () = grace => tracing::warn!(
                    grace = ?SHUTDOWN_GRACE,
                    "shutting down: the store did not answer in time; the last audit checkpoint \
                     and giving the scheduler lease up were skipped (the next holder writes the \
                     checkpoint, the lease runs out by itself)"
                ),
            }
        })
    }

    /// The loop of [`Service::spawn_background`], and what it does at shutdown.
    async fn background(
        self: Arc<Self>,
        interval: Duration,
        shared: bool,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpoints = tokio::time::interval(self.config.audit_checkpoint_interval);
        checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Renewed every tick, so it outlives a few slow ticks but passes to
        // another node soon after this one stops renewing it.
        let lease = (interval * 3).max(Duration::from_secs(2));
        // The only node of its store holds the work from the start.
        let mut leader = !shared;
        if !shared {
            tracing::debug!(node = %self.node_id, "scheduler: this node is its store's only user; no lease");
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if shared {
                        let held = self.hold_scheduler_lease(lease).await;
                        if held != leader {
                            tracing::info!(node = %self.node_id, held, "scheduler lease");
                            leader = held;
                        }
                    }
                    if leader {
                        if let Err(e) = self.run_due_work().await {
                            tracing::warn!(error = %e, "background work failed; will retry");
                        }
                    }
                }
                _ = checkpoints.tick() => {
                    if leader {
                        self.checkpoint_audit_chains().await;
                    } else {
                        self.check_audit_chains().await;
                    }
                    self.save_audit_heads();
                }
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if leader {
            self.checkpoint_audit_chains().await;
            if shared {
                self.release_scheduler_lease().await;
            }
        }
        self.save_audit_heads();
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

    /// Holds the store's audit chains to what this node appended (the checkpoint
    /// holder does it as it signs); a difference is logged as tampering.
    async fn check_audit_chains(&self) {
        if let Err(e) = self.check_audit_tails().await {
            tracing::debug!(error = %e, "audit chains not checked; will retry");
        }
    }

    fn save_audit_heads(&self) {
        if let Some(path) = &self.config.audit_heads_file {
            if let Err(e) = self.audit_heads.save(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot save this node's audit heads; will retry");
            }
        }
    }

    async fn checkpoint_audit_chains(&self) {
        match self.write_audit_checkpoints().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(chains = n, "signed audit checkpoints"),
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed; will retry"),
        }
    }
}
