//! The answer to Status, from a probe at most `max_age` old.
//!
//! The API server calls Status about once a minute (every ten seconds while the
//! plugin is unhealthy), and Kubernetes asks plugins to keep it cheap. kcm's own
//! answer may change at any moment (a rotation, the kill switch), and the plugin
//! must notice within the revocation bound. So Status probes kcm only when the last
//! probe is older than `max_age`, and one probe serves every caller waiting for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::{BackendError, KeyBackend};

/// What Status says: health, and the key id Encrypt uses now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `"ok"`, or why the plugin cannot encrypt now.
    pub healthz: String,
    /// The Kubernetes key id of the key's current version: the one the last
    /// successful probe returned (empty until a probe succeeds).
    pub key_id: String,
}

impl Snapshot {
    /// Whether the plugin can encrypt now.
    pub fn is_healthy(&self) -> bool {
        self.healthz == "ok"
    }
}

struct Cached {
    snapshot: Snapshot,
    /// When the probe was taken; `None` once invalidated.
    taken: Option<Instant>,
}

/// Status answers, refreshed from the backend when older than `max_age`.
pub struct StatusCache<B> {
    backend: Arc<B>,
    max_age: Duration,
    probe_timeout: Duration,
    last: Mutex<Option<Cached>>,
}

impl<B: KeyBackend> StatusCache<B> {
    /// A cache over `backend` whose answers are at most `max_age` old; a probe that
    /// takes longer than `probe_timeout` counts as kcm unavailable.
    pub fn new(backend: Arc<B>, max_age: Duration, probe_timeout: Duration) -> Self {
        Self {
            backend,
            max_age,
            probe_timeout,
            last: Mutex::new(None),
        }
    }

    /// The current answer: the cached one while it is fresh, else a new probe's.
    /// Callers that arrive during a probe wait for it instead of probing again.
    pub async fn current(&self) -> Snapshot {
        let mut last = self.last.lock().await;
        if let Some(cached) = last.as_ref() {
            if cached.taken.is_some_and(|t| t.elapsed() < self.max_age) {
                return cached.snapshot.clone();
            }
        }
        let known_key_id = last
            .as_ref()
            .map(|c| c.snapshot.key_id.clone())
            .unwrap_or_default();
        let snapshot = self.probe(known_key_id).await;
        *last = Some(Cached {
            snapshot: snapshot.clone(),
            taken: Some(Instant::now()),
        });
        snapshot
    }

    /// Makes the next call probe, however fresh the cached answer (after a refusal
    /// that says the world has changed). The last known key id is kept.
    pub async fn invalidate(&self) {
        if let Some(cached) = self.last.lock().await.as_mut() {
            cached.taken = None;
        }
    }

    /// Notes that kcm just did what was asked: a cached unhealthy answer is out of
    /// date, so the next call probes. Never waits (a probe under way will tell).
    pub fn note_success(&self) {
        if let Ok(mut last) = self.last.try_lock() {
            if let Some(cached) = last.as_mut().filter(|c| !c.snapshot.is_healthy()) {
                cached.taken = None;
            }
        }
    }

    async fn probe(&self, known_key_id: String) -> Snapshot {
        let outcome = tokio::time::timeout(self.probe_timeout, self.backend.probe())
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Unavailable(format!(
                    "no answer within {} ms",
                    self.probe_timeout.as_millis()
                )))
            });
        match outcome {
            Ok(key_id) => Snapshot {
                healthz: "ok".to_owned(),
                key_id,
            },
            Err(e) => {
                tracing::warn!(error = %e, "kms-plugin: status probe failed");
                Snapshot {
                    healthz: e.to_string(),
                    key_id: known_key_id,
                }
            }
        }
    }
}
