//! The scheduler lease: which one node of a cluster does the background work
//! (ending deletion windows, automatic rotation, audit checkpoints), so it happens
//! once however many nodes run, and moves to another node when the holder stops.
//!
//! The lease is a setting in the store, `"<node id> <expiry in Unix ms>"`, taken
//! and renewed only by compare-and-set ([`Write::ReplaceMeta`]): of two nodes
//! that saw the same expired lease, one wins. The holder renews it on every
//! scheduler tick and gives it up when it stops. Only a store several nodes share
//! has a lease: the only node of a SQLite store takes none (see
//! `Service::spawn_background`), so that an idle server does not write.

use std::time::Duration;

use super::{now_ms, Service};
use crate::model::UnixMillis;
use crate::store::{StoreError, Write};

/// The setting that holds the lease.
pub(crate) const SCHEDULER_LEASE: &str = "scheduler_lease";

/// A lease value: who holds it and until when.
fn parse(value: &str) -> Option<(&str, UnixMillis)> {
    let (node, until) = value.split_once(' ')?;
    Some((node, until.parse().ok()?))
}

impl Service {
    /// Takes or renews the scheduler lease for `period`; true while this node
    /// holds it. A store error counts as not holding it (the work waits).
    pub async fn hold_scheduler_lease(&self, period: Duration) -> bool {
        let now = now_ms();
        let current = match self.store.meta(SCHEDULER_LEASE).await {
            Ok(current) => current,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the scheduler lease");
                return false;
            }
        };
        if let Some((holder, until)) = current.as_deref().and_then(parse) {
            if holder != self.node_id && until > now {
                return false; // another node holds it
            }
        }
        let value = format!("{} {}", self.node_id, now + period.as_millis() as i64);
        let write = match current {
            Some(expected) => Write::ReplaceMeta {
                key: SCHEDULER_LEASE.into(),
                expected,
                value,
            },
            None => Write::InsertMeta {
                key: SCHEDULER_LEASE.into(),
                value,
            },
        };
        match self.store.commit(vec![write]).await {
            Ok(()) => true,
            Err(StoreError::Conflict(_)) => false, // another node got there first
            Err(e) => {
                tracing::debug!(error = %e, "cannot take the scheduler lease");
                false
            }
        }
    }

    /// Gives the lease up if this node holds it, so another node takes over at
    /// its next tick rather than when the lease would have run out.
    pub async fn release_scheduler_lease(&self) {
        let Ok(Some(current)) = self.store.meta(SCHEDULER_LEASE).await else {
            return;
        };
        if parse(&current).is_some_and(|(holder, _)| holder == self.node_id) {
            let released = Write::ReplaceMeta {
                key: SCHEDULER_LEASE.into(),
                expected: current,
                value: format!("{} 0", self.node_id),
            };
            if let Err(e) = self.store.commit(vec![released]).await {
                tracing::debug!(error = %e, "could not give the scheduler lease up");
            }
        }
    }

    /// This node's id in the cluster (random per start).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lease_values_parse() {
        assert_eq!(
            parse("node-1 1700000000000"),
            Some(("node-1", 1_700_000_000_000))
        );
        assert_eq!(parse("node-1"), None);
        assert_eq!(parse("node-1 soon"), None);
    }
}
