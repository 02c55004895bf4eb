//! Group commit: many requests' audit records made durable by one store commit.
//!
//! Requests hand their record to one writer task and wait. The writer takes every
//! record waiting (up to [`MAX_BATCH`]) and has the store append them in one
//! transaction (one fsync; [`Store::append_audit`] links each into its chain), and
//! then answers every waiting request. While
//! one batch commits, the next one gathers, so under load each fsync carries many
//! records and the per-request cost stays small.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ErrorKind, Result};
use crate::model::AuditRecord;
use crate::store::Store;

/// Most records in one commit.
pub(crate) const MAX_BATCH: usize = 2048;
/// Requests waiting for the writer before new ones wait for room (backpressure).
const QUEUE: usize = 16 * 1024;

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
    // Handed to the store whole each batch, so it starts empty each time.
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<Result<()>>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(p) = next {
            records.push(p.record);
            waiting.push(p.done);
            next = if waiting.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        // The store links each record after its chain's tail inside the
        // appending transaction, so writers on other nodes never conflict.
        let outcome = store
            .append_audit(std::mem::take(&mut records))
            .await
            .map_err(Error::from);
        for done in waiting.drain(..) {
            let _ = done.send(outcome.clone());
        }
    }
}
