//! A bounded cache of derived signing keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{derive_signing_key, SigningKey};

struct Entry {
    /// The secret the key was derived from, to notice a changed secret.
    secret: Zeroizing<Vec<u8>>,
    key: Arc<SigningKey>,
}

/// Caches signing keys by access key id, scope date, region and service, so a server
/// does not redo four HMACs for every request.
///
/// Each entry also remembers the secret it was derived from (compared in constant
/// time), so a changed secret for the same access key id is never served a stale key.
/// When full, the cache is emptied; keys change daily anyway.
pub struct SigningKeyCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl SigningKeyCache {
    /// An empty cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached key for these parameters, deriving (and caching) it when needed.
    pub fn get_or_derive(
        &self,
        access_key_id: &str,
        secret: &[u8],
        date: &str,
        region: &str,
        service: &str,
    ) -> Arc<SigningKey> {
        let id = format!("{access_key_id}\n{date}\n{region}\n{service}");
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = entries.get(&id) {
                if bool::from(entry.secret.as_slice().ct_eq(secret)) {
                    return Arc::clone(&entry.key);
                }
            }
        }
        // Derive without holding the lock.
        let key = Arc::new(derive_signing_key(secret, date, region, service));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&id) {
            entries.clear();
        }
        entries.insert(
            id,
            Entry {
                secret: Zeroizing::new(secret.to_vec()),
                key: Arc::clone(&key),
            },
        );
        key
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
