//! What this node knows of each audit chain from its own hands: the newest record it
//! appended and the newest checkpoint it signed. The store can be written by whoever
//! reaches it; this memory cannot. So a store whose chain ends before a record this
//! node wrote, or holds another record there, or lost the checkpoint this node
//! signed last, was cut or rewritten from outside — and a head or checkpoint signed
//! now vouches for what this node knows, not for what the store says, so the cut
//! stays visible to every later verification.
//!
//! Kept in memory, and saved to a file of the node's data directory
//! (`audit-heads.json`) at every checkpoint interval in which it changed and at
//! shutdown, so that a restarted node still holds the store to what it wrote
//! before. A node without the file (a new one, or one whose file was lost) starts
//! from what the store says; a head saved outside the server covers that gap (see
//! `kcm audit head`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::spool::{sync_dir, PrivateMode};
use crate::model::{AuditChain, AuditCheckpoint, AuditRecord};

/// The newest record appended and checkpoint signed by this node, per chain.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    chains: Mutex<HashMap<AuditChain, Known>>,
    /// Changed since the file was last written.
    dirty: AtomicBool,
    /// Tampering already logged: each is said once, not at every checkpoint.
    reported: Mutex<std::collections::HashSet<String>>,
}

/// The heads file: one entry per chain.
#[derive(Serialize, Deserialize)]
struct Saved {
    chains: Vec<SavedChain>,
}

#[derive(Serialize, Deserialize)]
struct SavedChain {
    chain: AuditChain,
    #[serde(flatten)]
    known: Known,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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
    /// What an earlier run of this node saved at `path`; empty when there is no
    /// file yet.
    pub(crate) fn load(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e),
        };
        let saved: Saved = serde_json::from_slice(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let chains = saved
            .chains
            .into_iter()
            .map(|c| (c.chain, c.known))
            .collect();
        Ok(Self {
            chains: Mutex::new(chains),
            ..Self::default()
        })
    }

    /// Writes what this node knows to `path` (owner-only, replaced whole: written
    /// beside it, synced, renamed), when it changed since the last save.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let saved = Saved {
            chains: self
                .lock()
                .iter()
                .map(|(chain, known)| SavedChain {
                    chain: *chain,
                    known: known.clone(),
                })
                .collect(),
        };
        let written = (|| {
            let json = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
            let partial = path.with_extension("json.partial");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode_private()
                .open(&partial)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&partial, path)?;
            sync_dir(path.parent().unwrap_or(Path::new(".")))
        })();
        if written.is_err() {
            // Try again at the next save.
            self.dirty.store(true, Ordering::Release);
        }
        written
    }

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
                self.dirty.store(true, Ordering::Release);
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
            self.dirty.store(true, Ordering::Release);
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
    fn what_is_saved_is_loaded_and_an_unchanged_state_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-heads.json");
        assert!(
            Heads::load(&path).unwrap().chains().is_empty(),
            "no file yet"
        );
        let heads = Heads::default();
        let tenant = Some(crate::model::TenantId::new_random());
        heads.appended(&[record(4, "d")]);
        heads.appended(&[AuditRecord {
            tenant,
            ..record(9, "i")
        }]);
        let checkpoint = AuditCheckpoint {
            tenant,
            seq: 9,
            hash: "i".into(),
            time: 5,
            signature: "s".into(),
        };
        heads.signed(&checkpoint);
        heads.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = Heads::load(&path).unwrap();
        assert_eq!(loaded.record(None), Some((4, "d".into())));
        assert_eq!(loaded.record(tenant), Some((9, "i".into())));
        assert_eq!(loaded.checkpoint(tenant), Some(checkpoint));

        std::fs::remove_file(&path).unwrap();
        heads.save(&path).unwrap();
        assert!(!path.exists(), "nothing changed: nothing written");
        heads.appended(&[record(5, "e")]);
        heads.save(&path).unwrap();
        assert_eq!(
            Heads::load(&path).unwrap().record(None),
            Some((5, "e".into()))
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            Heads::load(&path).is_err(),
            "a damaged file is an error, not an empty state"
        );
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
