//! Group commit: many requests' audit records made durable by one store commit —
//! or, while the store cannot take them, by one write to the node's audit spool.
//!
//! Requests hand their record to one writer task and wait. The writer takes every
//! record waiting (up to [`MAX_BATCH`]) and has the store append them in one
//! transaction (one fsync; [`Store::append_audit`] links each into its chain), and
//! then answers every waiting request. While one batch commits, the next one
//! gathers, so under load each fsync carries many records and the per-request cost
//! stays small.
//!
//! When the store is unreachable or does not answer within [`STORE_DEADLINE`], the
//! batch goes to the spool ([`super::spool`]) instead, and so does every batch after
//! it until a forwarder task has handed everything spooled to the store, oldest
//! first: records of a chain reach the store in the order they were acknowledged.
//! Without a spool (or when the spool cannot be written either) the requests get
//! the error. Each batch the store takes is noted in the node's [`Heads`]: the
//! newest record it wrote to each chain, which the store cannot take back unseen.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::heads::Heads;
use super::spool::Spool;
use crate::error::{Error, ErrorKind, Result};
use crate::model::AuditRecord;
use crate::store::{Store, StoreError};

/// Most records in one commit.
pub(crate) const MAX_BATCH: usize = 2048;
/// Requests waiting for the writer before new ones wait for room (backpressure).
const QUEUE: usize = 16 * 1024;
/// How long an append may take before the store counts as unavailable for it: a
/// hung database holds each request at most this long, once; then records spool.
pub(crate) const STORE_DEADLINE: Duration = Duration::from_secs(2);
/// How often the forwarder tries to hand spooled records to the store.
const FORWARD_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the last batch could be written anywhere: read by readiness, so that a
/// node that can audit nothing (its disk full, its store and spool both failing)
/// stops being sent requests it can only refuse.
#[derive(Debug, Default)]
pub(crate) struct WriterHealth {
    unwritable: std::sync::Mutex<Option<String>>,
}

impl WriterHealth {
    /// Why the last batch could be written nowhere, if it could not.
    pub(crate) fn unwritable(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Records the outcome of a write.
    pub(crate) fn set(&self, reason: Option<String>) {
        let mut current = self.lock();
        if current.is_some() != reason.is_some() {
            match &reason {
                Some(r) => {
                    tracing::error!(reason = %r, "audit records can be written nowhere: this node is not ready")
                }
                None => tracing::info!("audit records are written again: this node is ready"),
            }
        }
        *current = reason;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.unwritable.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Pending {
    record: AuditRecord,
    done: oneshot::Sender<Result<()>>,
}

/// The handle requests use to append records.
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer task over `store`, spooling to `spool` while the store is
    /// out of reach, and the task that forwards spooled records (needs a Tokio
    /// runtime).
    pub(crate) fn start(
        store: Arc<dyn Store>,
        spool: Option<Arc<Spool>>,
        health: Arc<WriterHealth>,
        heads: Arc<Heads>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Some(spool) = &spool {
            tokio::spawn(forward(
                Arc::clone(&store),
                Arc::clone(spool),
                Arc::clone(&heads),
            ));
        }
        tokio::spawn(run(store, spool, health, heads, rx));
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

async fn run(
    store: Arc<dyn Store>,
    spool: Option<Arc<Spool>>,
    health: Arc<WriterHealth>,
    heads: Arc<Heads>,
    mut rx: mpsc::Receiver<Pending>,
) {
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
        let outcome = write(&*store, spool.as_deref(), &heads, &mut records).await;
        records.clear();
        health.set(outcome.as_ref().err().map(|e| e.message().to_owned()));
        for done in waiting.drain(..) {
            let _ = done.send(outcome.clone());
        }
    }
}

/// Makes `records` durable: in the store, or in the spool while it holds records
/// or the store cannot take them.
async fn write(
    store: &dyn Store,
    spool: Option<&Spool>,
    heads: &Heads,
    records: &mut Vec<AuditRecord>,
) -> Result<()> {
    // The store may take records only when none wait before them in the spool.
    if spool.is_none_or(Spool::is_empty) {
        match append_in_time(store, records).await {
            Ok(()) => {
                heads.appended(records);
                return Ok(());
            }
            Err(StoreError::Unavailable(detail) | StoreError::Full(detail)) if spool.is_some() => {
                spooling(&detail)
            }
            Err(e) => return Err(e.into()),
        }
    }
    let spool = spool.expect("only a spool is written to here");
    spool.append(records).map_err(|e| {
        tracing::error!(error = %e, "the audit spool cannot be written either; refusing requests until the store or the spool takes records again");
        unwritable(&e)
    })
}

/// [`Store::append_audit`] within [`STORE_DEADLINE`]; a store that does not answer in
/// time is unavailable for this batch.
async fn append_in_time(
    store: &dyn Store,
    records: &mut Vec<AuditRecord>,
) -> std::result::Result<(), StoreError> {
    tokio::time::timeout(STORE_DEADLINE, store.append_audit(records))
        .await
        .unwrap_or_else(|_| Err(late(STORE_DEADLINE)))
}

fn late(deadline: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "the store did not take audit records within {deadline:?}"
    ))
}

fn spooling(detail: &str) {
    tracing::warn!(
        error = %detail,
        "the store cannot take audit records: keeping them in the local audit spool until it can"
    );
}

/// What a request whose record could be written nowhere is told.
fn unwritable(e: &std::io::Error) -> Error {
    let message = if e.kind() == std::io::ErrorKind::StorageFull {
        "the audit log cannot be written: the server's disk is full; nothing was changed, retry \
         once the operator has freed space"
    } else {
        "the audit log cannot be written: the store is unavailable and so is the server's local \
         audit spool; nothing was changed, retry later"
    };
    Error::new(ErrorKind::StoreUnavailable, message)
}

/// Hands spooled records to the store, oldest segment first, every
/// [`FORWARD_INTERVAL`] while there are any.
async fn forward(store: Arc<dyn Store>, spool: Arc<Spool>, heads: Arc<Heads>) {
    let mut tick = tokio::time::interval(FORWARD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forwarded = 0usize;
    // A segment the store took but that could not be deleted: deleted, not sent again.
    let mut taken: Option<super::spool::Segment> = None;
    loop {
        tick.tick().await;
        if let Some(segment) = taken.take() {
            if let Err(e) = spool.remove(&segment) {
                tracing::error!(error = %e, "cannot remove a forwarded audit spool segment; will retry");
                taken = Some(segment);
                continue;
            }
        }
        if spool.is_empty() {
            continue;
        }
        loop {
            let mut segment = match spool.oldest() {
                Ok(Some(segment)) => segment,
                Ok(None) => {
                    tracing::info!(
                        records = forwarded,
                        "the audit spool is empty: every spooled record is in the store"
                    );
                    forwarded = 0;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the audit spool; will retry");
                    break;
                }
            };
            let count = segment.records.len();
            if let Err(e) = append_in_time(&*store, &mut segment.records).await {
                tracing::debug!(error = %e, "spooled audit records not forwarded yet");
                break;
            }
            heads.appended(&segment.records);
            forwarded += count;
            if let Err(e) = spool.remove(&segment) {
                tracing::error!(error = %e, "cannot remove a forwarded audit spool segment; will retry");
                taken = Some(segment);
                break;
            }
        }
    }
}
