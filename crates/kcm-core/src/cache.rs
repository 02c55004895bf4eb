//! In-memory caches for the hot path, each entry trusted for at most the revocation bound.
//!
//! Encrypt, Decrypt and GenerateDataKey must not touch the store or a keystore on
//! every request. They read [`LoadedKey`]s (metadata, the chain's states, and the
//! unwrapped versions) from here. Entries older than `revocation_bound` are reloaded,
//! so a state change anywhere in the chain is enforced within that bound; changes
//! made through this node also invalidate entries at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A map whose entries expire after a fixed age.
pub(crate) struct TtlMap<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Eq + Hash + Clone, V> TtlMap<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The entry if present and younger than the TTL.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| Arc::clone(v))
    }

    pub(crate) fn insert(&self, key: K, value: Arc<V>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Keep the map from growing without bound with entries nobody asks for again.
        if entries.len() > 100_000 {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
