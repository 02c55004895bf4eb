//! Validated tokens, remembered for a short while so that Keystone is not asked on
//! every request.
//!
//! An entry is trusted for at most the cache's TTL (the revocation bound, so a token
//! Keystone revoked stops working within it, as a disabled key does) and never past
//! the token's own expiry. The cache holds at most `capacity` entries; when full,
//! expired entries go first, then the ones closest to expiry. Keys are SHA-256
//! digests of the tokens: the tokens themselves are not kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The digest a token is remembered by.
pub type TokenDigest = [u8; 32];

/// The SHA-256 of `token`.
pub fn digest(token: &str) -> TokenDigest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A bounded map from token digests to what their validation gave, each entry
/// with its own deadline.
pub struct TokenCache<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<TokenDigest, (Instant, V)>>,
}

impl<V> std::fmt::Debug for TokenCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<V: Clone> TokenCache<V> {
    /// A cache trusting entries for at most `ttl`, holding at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value remembered for `key`, if it is still trusted at `now`.
    pub fn get(&self, key: &TokenDigest, now: Instant) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((until, value)) if now < *until => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` for `key` from `now` until the TTL ends or `expires`
    /// (the token's own end), whichever comes first.
    pub fn insert(&self, key: TokenDigest, value: V, now: Instant, expires: Instant) {
        let until = expires.min(now + self.ttl);
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (until, _)| now < *until);
            while entries.len() >= self.capacity {
                // Full of live entries: drop the one that would leave soonest.
                let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, (until, _))| *until)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                entries.remove(&soonest);
            }
        }
        entries.insert(key, (until, value));
    }

    /// How many entries are held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn entries_live_for_the_ttl_and_never_past_the_token() {
        let cache = TokenCache::new(SECOND, 10);
        let t0 = Instant::now();
        let a = digest("token-a");
        cache.insert(a, 1, t0, t0 + 3600 * SECOND);
        assert_eq!(cache.get(&a, t0 + SECOND / 2), Some(1));
        assert_eq!(
            cache.get(&a, t0 + SECOND),
            None,
            "the TTL bounds every entry"
        );

        let b = digest("token-b");
        cache.insert(b, 2, t0, t0 + SECOND / 4);
        assert_eq!(
            cache.get(&b, t0 + SECOND / 2),
            None,
            "the token's own end first"
        );

        let c = digest("token-c");
        cache.insert(c, 3, t0, t0);
        assert!(
            cache.get(&c, t0).is_none(),
            "an expired token is not remembered"
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(10 * SECOND, 3);
        let t0 = Instant::now();
        for (i, life) in [5u32, 1, 7].into_iter().enumerate() {
            cache.insert(digest(&format!("t{i}")), i, t0, t0 + life * SECOND);
        }
        // Full: the entry closest to its end (t1) makes room.
        cache.insert(digest("t3"), 3, t0, t0 + 9 * SECOND);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&digest("t1"), t0), None);
        assert_eq!(cache.get(&digest("t3"), t0), Some(3));
        // Expired entries are swept before live ones are dropped.
        let later = t0 + 6 * SECOND;
        cache.insert(digest("t4"), 4, later, later + SECOND);
        assert_eq!(cache.get(&digest("t2"), later), Some(2));
        assert_eq!(cache.get(&digest("t3"), later), Some(3));
        assert_eq!(cache.get(&digest("t4"), later), Some(4));
    }

    #[test]
    fn tokens_are_kept_as_digests() {
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a"), digest("a"));
    }
}
