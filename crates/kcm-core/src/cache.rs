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

/// A map whose entries expire after a fixed age (or an earlier deadline of their own).
pub(crate) struct TtlMap<K, V> {
    ttl: Duration,
    /// Each value with the instant it stops being trusted.
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
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| Arc::clone(v))
    }

    /// The entry under `key` even if it has expired (entries stay until replaced,
    /// removed or cleared; a change the node learns of removes them).
    pub(crate) fn get_even_expired<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).map(|(_, v)| Arc::clone(v))
    }

    /// Caches `value` for the map's TTL.
    pub(crate) fn insert(&self, key: K, value: Arc<V>) {
        self.insert_until(key, value, Instant::now() + self.ttl);
    }

    /// Caches `value` until `until` or the map's TTL, whichever comes first (an entry
    /// built from other cached entries must not outlive them).
    pub(crate) fn insert_until(&self, key: K, value: Arc<V>, until: Instant) {
        let until = until.min(Instant::now() + self.ttl);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Keep the map from growing without bound with entries nobody asks for again.
        if entries.len() > 100_000 {
            let now = Instant::now();
            entries.retain(|_, (until, _)| now < *until);
        }
        entries.insert(key, (until, value));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_at_the_ttl_or_their_own_earlier_deadline() {
        let map: TtlMap<u8, u8> = TtlMap::new(Duration::from_secs(60));
        map.insert(1, Arc::new(1));
        map.insert_until(2, Arc::new(2), Instant::now() - Duration::from_millis(1));
        map.insert_until(3, Arc::new(3), Instant::now() + Duration::from_secs(3600));
        assert_eq!(map.get(&1).as_deref(), Some(&1));
        assert_eq!(map.get(&2), None, "its own deadline has passed");
        assert_eq!(map.get(&3).as_deref(), Some(&3));
        let short: TtlMap<u8, u8> = TtlMap::new(Duration::ZERO);
        short.insert_until(1, Arc::new(1), Instant::now() + Duration::from_secs(3600));
        assert_eq!(short.get(&1), None, "never longer than the TTL");
    }
}
