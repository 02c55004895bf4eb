//! Group commit: many requests' audit records made durable by one store commit.
//!
//! Requests hand their record to one writer task and wait. The writer takes every
//! record waiting (up to [`MAX_BATCH`]), links each into its chain, commits them in
//! one store transaction (one fsync), and then answers every waiting request. While
//! one batch commits, the next one gathers, so under load each fsync carries many
//! records and the per-request cost stays small.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::hash::{record_hash, GENESIS_HASH};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{AuditChain, AuditRecord};
use crate::store::{Store, StoreError, Write};

/// Most records in one commit.
pub(crate) const MAX_BATCH: usize = 2048;
/// Requests waiting for the writer before new ones wait for room (backpressure).
const QUEUE: usize = 16 * 1024;
/// Times a batch is retried when another writer appended to the same chain first.
const CONFLICT_RETRIES: usize = 5;

struct Pending {
    record: AuditRecord,
    done: oneshot::Sender<Result<()>>,
}

/// The handle requests use to append records.
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer task over `store` (needs a Tokio runtime).
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Appends `record` (its `seq`, `prev_hash` and `hash` are assigned here) and
    /// returns once it is durable.
    pub(crate) async fn append(&self, record: AuditRecord) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || Error::new(ErrorKind::StoreUnavailable, "the audit writer has stopped");
        self.tx
            .send(Pending { record, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Pending>) {
    let mut tails: HashMap<AuditChain, (u64, String)> = HashMap::new();
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(store.as_ref(), &mut tails, &mut batch).await;
        if outcome.is_err() {
            // The store may hold more (or less) than we think; read tails afresh.
            tails.clear();
        }
        for p in batch.drain(..) {
            let _ = p.done.send(outcome.clone());
        }
    }
}

/// Links and commits the batch; on a chain conflict re-reads the tails and retries.
async fn commit_batch(
    store: &dyn Store,
    tails: &mut HashMap<AuditChain, (u64, String)>,
    batch: &mut [Pending],
) -> Result<()> {
    for attempt in 0..=CONFLICT_RETRIES {
        // The tails this batch moves, on top of the known ones (only the chains it
        // touches: cloning every tenant's tail per batch would cost O(tenants)).
        let mut next: HashMap<AuditChain, (u64, String)> = HashMap::new();
        let mut writes = Vec::with_capacity(batch.len());
        for p in batch.iter_mut() {
            let chain = p.record.tenant;
            let (seq, prev) = match next.get(&chain).or_else(|| tails.get(&chain)) {
                Some(tail) => tail.clone(),
                None => store
                    .audit_tail(chain)
                    .await?
                    .unwrap_or_else(|| (0, GENESIS_HASH.to_string())),
            };
            p.record.seq = seq + 1;
            p.record.prev_hash = prev;
            p.record.hash = record_hash(&p.record);
            next.insert(chain, (p.record.seq, p.record.hash.clone()));
            writes.push(Write::AppendAudit(p.record.clone()));
        }
        match store.commit(writes).await {
            Ok(()) => {
                tails.extend(next);
                return Ok(());
            }
            Err(StoreError::Conflict(_)) if attempt < CONFLICT_RETRIES => tails.clear(),
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}
