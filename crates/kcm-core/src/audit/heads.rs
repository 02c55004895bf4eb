//! What this node knows of each audit chain from its own hands: the newest record it
//! appended and the newest checkpoint it signed. The store can be written by whoever
//! reaches it; this memory cannot. So a store whose chain ends before a record this
//! node wrote, or holds another record there, or lost the checkpoint this node
//! signed last, was cut or rewritten from outside — and a head or checkpoint signed
//! now vouches for what this node knows, not for what the store says, so the cut
//! stays visible to every later verification.
//!
//! Kept in memory only: after a restart the node starts from what the store says
//! (a head saved outside the store covers that gap, see `kcm audit head`).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::{AuditChain, AuditCheckpoint, AuditRecord};

/// The newest record appended and checkpoint signed by this node, per chain.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    chains: Mutex<HashMap<AuditChain, Known>>,
    /// Tampering already logged: each is said once, not at every checkpoint.
    reported: Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug, Default, Clone)]
struct Known {
    /// `seq` and `hash` of the newest record this node appended.
    record: Option<(u64, String)>,
    /// The newest checkpoint this node signed.
    checkpoint: Option<AuditCheckpoint>,
}

/// A difference between the store and what this node wrote: the store was changed
/// from outside kcm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tampering(pub(crate) String);

impl Heads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AuditChain, Known>> {
        // Plain values: a panic elsewhere cannot leave them half-changed.
        self.chains.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a batch the store has just taken (linked, in order): the last record
    /// of each chain in it. Called once per commit, by the writer task.
    pub(crate) fn appended(&self, records: &[AuditRecord]) {
        let mut chains = self.lock();
        // seq 0: not linked, which a store that committed the batch never leaves.
        for record in records.iter().rev().filter(|r| r.seq > 0) {
            let known = chains.entry(record.tenant).or_default();
            if known
                .record
                .as_ref()
                .is_none_or(|(seq, _)| *seq < record.seq)
            {
                known.record = Some((record.seq, record.hash.clone()));
            }
        }
    }

    /// Notes a checkpoint this node has signed and stored.
    pub(crate) fn signed(&self, checkpoint: &AuditCheckpoint) {
        let mut chains = self.lock();
        let known = chains.entry(checkpoint.tenant).or_default();
        if known
            .checkpoint
            .as_ref()
            .is_none_or(|c| c.seq <= checkpoint.seq)
        {
            known.checkpoint = Some(checkpoint.clone());
        }
    }

    /// Logs `tampering` at error level, the first time it is found.
    pub(crate) fn report(&self, tampering: &Tampering) {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if reported.insert(tampering.0.clone()) {
            tracing::error!(finding = %tampering.0, "audit log tampering");
        }
    }

    /// Every chain this node has appended to.
    pub(crate) fn chains(&self) -> Vec<AuditChain> {
        self.lock().keys().copied().collect()
    }

    /// The newest record this node appended to `chain`.
    pub(crate) fn record(&self, chain: AuditChain) -> Option<(u64, String)> {
        self.lock().get(&chain).and_then(|k| k.record.clone())
    }

    /// The newest checkpoint this node signed for `chain`.
    pub(crate) fn checkpoint(&self, chain: AuditChain) -> Option<AuditCheckpoint> {
        self.lock().get(&chain).and_then(|k| k.checkpoint.clone())
    }
}

/// Compares the store's tail of `chain` (`seq` and `hash` of its last record, and
/// the hash it holds at this node's newest record) with what this node appended.
pub(crate) fn compare_tail(
    chain: AuditChain,
    mine: Option<&(u64, String)>,
    store_last: u64,
    store_hash_at_mine: Option<&str>,
) -> Option<Tampering> {
    let (seq, hash) = mine?;
    let name = chain_name(chain);
    if store_last < *seq {
        return Some(Tampering(format!(
            "the store's audit chain of {name} ends at record {store_last}, but this node appended record {seq}: records were cut from its end outside kcm"
        )));
    }
    if store_hash_at_mine != Some(hash.as_str()) {
        return Some(Tampering(format!(
            "record {seq} of the audit chain of {name} is not the record this node appended there: the chain was rewritten outside kcm"
        )));
    }
    None
}

/// Compares the store's newest checkpoint of `chain` with the newest one this node
/// signed.
pub(crate) fn compare_checkpoint(
    chain: AuditChain,
    mine: Option<&AuditCheckpoint>,
    store: Option<&AuditCheckpoint>,
) -> Option<Tampering> {
    let mine = mine?;
    let name = chain_name(chain);
    match store {
        Some(s) if s.seq > mine.seq => None,
        Some(s) if s.seq == mine.seq && s.signature == mine.signature => None,
        _ => Some(Tampering(format!(
            "the checkpoint this node signed at record {} of the audit chain of {name} is not the store's newest: checkpoints were removed or replaced outside kcm",
            mine.seq
        ))),
    }
}

/// The chain as messages name it.
pub(crate) fn chain_name(chain: AuditChain) -> String {
    match chain {
        Some(tenant) => format!("tenant {tenant}"),
        None => "the operator".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, hash: &str) -> AuditRecord {
        AuditRecord {
            seq,
            hash: hash.into(),
            ..crate::audit::test_record(seq)
        }
    }

    #[test]
    fn keeps_the_newest_record_of_each_chain() {
        let heads = Heads::default();
        heads.appended(&[record(1, "a"), record(2, "b")]);
        heads.appended(&[record(3, "c")]);
        assert_eq!(heads.record(None), Some((3, "c".into())));
        assert_eq!(heads.chains(), vec![None]);
    }

    #[test]
    fn a_store_shorter_or_different_than_what_was_written_is_tampering() {
        let mine = (5, "e".to_string());
        assert!(compare_tail(None, Some(&mine), 5, Some("e")).is_none());
        assert!(compare_tail(None, Some(&mine), 9, Some("e")).is_none());
        let cut = compare_tail(None, Some(&mine), 3, None).unwrap();
        assert!(cut.0.contains("ends at record 3"), "{cut:?}");
        let rewritten = compare_tail(None, Some(&mine), 5, Some("x")).unwrap();
        assert!(rewritten.0.contains("rewritten"), "{rewritten:?}");
        assert!(compare_tail(None, None, 0, None).is_none());
    }

    #[test]
    fn a_lost_or_replaced_checkpoint_is_tampering() {
        let cp = |seq, signature: &str| AuditCheckpoint {
            tenant: None,
            seq,
            hash: "h".into(),
            time: 1,
            signature: signature.into(),
        };
        let mine = cp(5, "s5");
        assert!(compare_checkpoint(None, Some(&mine), Some(&cp(5, "s5"))).is_none());
        assert!(compare_checkpoint(None, Some(&mine), Some(&cp(7, "s7"))).is_none());
        assert!(compare_checkpoint(None, Some(&mine), Some(&cp(4, "s4"))).is_some());
        assert!(compare_checkpoint(None, Some(&mine), Some(&cp(5, "forged"))).is_some());
        assert!(compare_checkpoint(None, Some(&mine), None).is_some());
    }
}
