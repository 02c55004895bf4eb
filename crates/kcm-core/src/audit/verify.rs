//! Verifying a chain: from the store or from an exported file, the same code.
//!
//! Walks the records in order and stops at the first that is not where an honest
//! chain would have it, saying what happened to it: **altered** (its content no
//! longer matches its hash), **removed** (a position is missing), **inserted** (a
//! record that is not part of the chain sits at a position), or **reordered**.
//! Then checks every checkpoint: its signature, as the successor of the checkpoint
//! before it (so one removed, reordered or spliced in breaks the next), and that
//! the chain still has the record it vouched for with the hash it signed — which
//! catches a chain rewritten from some point on with freshly computed hashes. Last,
//! a signed head kept outside the store: records cut from the end, together with
//! the checkpoints that covered them, are missing from under it.

use std::collections::HashMap;

use serde::Serialize;

use super::hash::{record_hash, record_hash_at, GENESIS_HASH};
use super::{checkpoint_signature, head_signature_valid, Signature};
use crate::model::{AuditChain, AuditCheckpoint, AuditRecord};

/// What was wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A record's content was changed.
    Altered,
    /// Records are missing.
    Removed,
    /// A record that does not belong was added.
    Inserted,
    /// Records are out of order.
    Reordered,
    /// A checkpoint's signature is invalid, or it no longer matches the chain.
    Checkpoint,
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What happened.
    pub kind: ProblemKind,
    /// The chain position it was found at.
    pub seq: u64,
    /// A sentence naming the record and what happened to it.
    pub message: String,
}

/// The result of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records read.
    pub records: u64,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints_verified: u64,
    /// Whether signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// Whether a signed head was checked: the chain reaches the record it vouches
    /// for, with that hash (so nothing was cut from the end before it was signed).
    pub head_checked: bool,
    /// Records after the newest checkpoint or head: no signature covers them yet, so
    /// cutting them off would not be seen (a head signed later covers them).
    pub unsigned_tail: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Report {
    /// True when nothing was wrong.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies `records` (one chain, in the order given), `checkpoints` (any order)
/// and, when given, a signed `head` kept outside the store (see
/// [`super::head_message`]). With `public_key` (raw Ed25519), signatures are checked
/// too, and with them the links between checkpoints: each must be signed as the
/// successor of the one before it.
pub fn verify_chain(
    records: &[AuditRecord],
    checkpoints: &[AuditCheckpoint],
    public_key: Option<&[u8]>,
    head: Option<&AuditCheckpoint>,
) -> Report {
    let mut report = Report {
        records: records.len() as u64,
        checkpoints_verified: 0,
        signatures_checked: public_key.is_some(),
        head_checked: false,
        unsigned_tail: 0,
        problem: None,
    };
    if let Some(problem) = walk(records) {
        report.problem = Some(problem);
        return report;
    }
    let hashes: HashMap<u64, &str> = records.iter().map(|r| (r.seq, r.hash.as_str())).collect();
    let last = records.last().map_or(0, |r| r.seq);
    let chain = records.first().map(|r| r.tenant);
    let mut checkpoints: Vec<&AuditCheckpoint> = checkpoints.iter().collect();
    checkpoints.sort_by_key(|c| c.seq);
    let mut prev: Option<&AuditCheckpoint> = None;
    for cp in checkpoints {
        if let Some(problem) = check_checkpoint(cp, prev, chain, public_key, &hashes, last) {
            report.problem = Some(problem);
            return report;
        }
        report.checkpoints_verified += 1;
        prev = Some(cp);
    }
    let mut signed_up_to = prev.map_or(0, |c| c.seq);
    if let Some(head) = head {
        if let Some(problem) = check_head(head, chain, public_key, &hashes, last) {
            report.problem = Some(problem);
            return report;
        }
        report.head_checked = true;
        signed_up_to = signed_up_to.max(head.seq);
    }
    report.unsigned_tail = last.saturating_sub(signed_up_to);
    report
}

/// The first thing wrong with checkpoint `cp`, which follows `prev` in its chain.
fn check_checkpoint(
    cp: &AuditCheckpoint,
    prev: Option<&AuditCheckpoint>,
    chain: Option<AuditChain>,
    public_key: Option<&[u8]>,
    hashes: &HashMap<u64, &str>,
    last: u64,
) -> Option<Problem> {
    let seq = cp.seq;
    if chain.is_some_and(|chain| chain != cp.tenant) {
        return problem(
            ProblemKind::Checkpoint,
            seq,
            format!("the checkpoint at record {seq} belongs to another chain: it was spliced in"),
        );
    }
    if let Some(key) = public_key {
        if checkpoint_signature(cp, prev, key) == Signature::Invalid {
            let message = match prev {
                Some(p) => format!(
                    "the checkpoint at record {seq} is not signed as the successor of the checkpoint at record {}: a checkpoint between them was removed, checkpoints were reordered or spliced in from elsewhere, or it was forged or altered",
                    p.seq
                ),
                None => format!(
                    "the checkpoint at record {seq} has an invalid signature as the first checkpoint: checkpoints before it were removed, or it was forged or altered"
                ),
            };
            return problem(ProblemKind::Checkpoint, seq, message);
        }
    }
    vouched_record_present(seq, &cp.hash, hashes, last, "a checkpoint")
}

/// The first thing wrong with a signed `head`.
fn check_head(
    head: &AuditCheckpoint,
    chain: Option<AuditChain>,
    public_key: Option<&[u8]>,
    hashes: &HashMap<u64, &str>,
    last: u64,
) -> Option<Problem> {
    let seq = head.seq;
    if chain.is_some_and(|chain| chain != head.tenant) {
        return problem(
            ProblemKind::Checkpoint,
            seq,
            "the signed head belongs to another chain".to_string(),
        );
    }
    if let Some(key) = public_key {
        if !head_signature_valid(head, key) {
            return problem(
                ProblemKind::Checkpoint,
                seq,
                "the signed head has an invalid signature: it was forged or altered".to_string(),
            );
        }
    }
    if seq == 0 {
        return None;
    }
    vouched_record_present(seq, &head.hash, hashes, last, "the signed head")
}

/// Whether the chain still has record `seq` with the `hash` that `what` (a signed
/// statement) vouches for.
fn vouched_record_present(
    seq: u64,
    hash: &str,
    hashes: &HashMap<u64, &str>,
    last: u64,
    what: &str,
) -> Option<Problem> {
    if seq > last {
        return problem(
            ProblemKind::Removed,
            last + 1,
            format!(
                "records {} to {seq} were removed from the end of the chain ({what} vouches for {seq} records)",
                last + 1
            ),
        );
    }
    if hashes.get(&seq).copied() != Some(hash) {
        return problem(
            ProblemKind::Altered,
            seq,
            format!(
                "the chain was rewritten: record {seq} no longer has the hash {what} vouches for, so a record at or before it was altered, removed or inserted and the hashes recomputed"
            ),
        );
    }
    None
}

fn problem(kind: ProblemKind, seq: u64, message: String) -> Option<Problem> {
    Some(Problem { kind, seq, message })
}

/// The first record out of place, if any.
fn walk(records: &[AuditRecord]) -> Option<Problem> {
    let mut prev_hash = GENESIS_HASH.to_string();
    for (i, r) in records.iter().enumerate() {
        let expected = i as u64 + 1;
        let intact = record_hash(r) == r.hash;
        if r.seq != expected {
            return misplaced(records, i, expected);
        }
        if !intact {
            // A record hashed for a neighbouring position was shifted there by an
            // insertion or a removal before it, and then renumbered.
            if expected > 1 && record_hash_at(r, expected - 1) == r.hash {
                return problem(
                    ProblemKind::Inserted,
                    expected - 1,
                    format!(
                        "record {} was inserted: it is not part of the chain (the record after it was originally number {})",
                        expected - 1,
                        expected - 1
                    ),
                );
            }
            if record_hash_at(r, expected + 1) == r.hash {
                // Record N+1's content at position N: either N was removed and the rest
                // renumbered, or N and N+1 swapped places (then N's content is next).
                if let Some(next) = records.get(i + 1) {
                    if record_hash_at(next, expected) == next.hash {
                        return problem(
                            ProblemKind::Reordered,
                            expected,
                            format!(
                                "records {expected} and {} were reordered: each holds the other's content",
                                expected + 1
                            ),
                        );
                    }
                }
                return problem(
                    ProblemKind::Removed,
                    expected,
                    format!(
                        "record {expected} was removed (the record now numbered {expected} was originally number {})",
                        expected + 1
                    ),
                );
            }
            return problem(
                ProblemKind::Altered,
                expected,
                format!("record {expected} was altered: its content does not match its hash"),
            );
        }
        if r.prev_hash != prev_hash {
            return problem(
                ProblemKind::Inserted,
                expected,
                format!(
                    "record {expected} does not follow record {}: it was inserted, or the record before it was replaced",
                    expected - 1
                ),
            );
        }
        prev_hash = r.hash.clone();
    }
    None
}

/// Explains a record whose `seq` is not its position.
fn misplaced(records: &[AuditRecord], i: usize, expected: u64) -> Option<Problem> {
    let r = &records[i];
    if r.seq > expected {
        if records[i + 1..].iter().any(|later| later.seq == expected) {
            return problem(
                ProblemKind::Reordered,
                expected,
                format!(
                    "records were reordered: record {} appears before record {expected}",
                    r.seq
                ),
            );
        }
        let last_missing = r.seq - 1;
        let which = if last_missing == expected {
            format!("record {expected} was removed")
        } else {
            format!("records {expected} to {last_missing} were removed")
        };
        return problem(ProblemKind::Removed, expected, which);
    }
    if records[..i].iter().any(|earlier| earlier.seq == r.seq) {
        return problem(
            ProblemKind::Inserted,
            expected,
            format!(
                "a record was inserted at position {expected}: it repeats number {}",
                r.seq
            ),
        );
    }
    problem(
        ProblemKind::Reordered,
        expected,
        format!(
            "records were reordered: record {} appears after record {}",
            r.seq,
            expected - 1
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantId;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let tenant = Some(TenantId::new_random());
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    tenant,
                    prev_hash: prev.clone(),
                    ..crate::audit::test_record(seq)
                };
                r.hash = record_hash(&r);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    /// Renumbers and re-links a chain as an attacker would after editing it.
    fn relink_from(records: &mut [AuditRecord], from: usize) {
        for i in from..records.len() {
            records[i].prev_hash = if i == 0 {
                GENESIS_HASH.into()
            } else {
                records[i - 1].hash.clone()
            };
            records[i].hash = record_hash(&records[i]);
        }
    }

    fn first_problem(records: &[AuditRecord]) -> Problem {
        verify_chain(records, &[], None, None)
            .problem
            .expect("a problem")
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert!(verify_chain(&chain(20), &[], None, None).is_intact());
        assert!(verify_chain(&[], &[], None, None).is_intact());
    }

    #[test]
    fn an_altered_record_is_named() {
        let mut c = chain(10);
        c[4].operation = "Decrypt".into();
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Altered, 5), "{p:?}");
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut c = chain(10);
        c.remove(6);
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Removed, 7), "{p:?}");
        // Removed and the rest renumbered.
        let mut c = chain(10);
        c.remove(6);
        for r in &mut c[6..] {
            r.seq -= 1;
        }
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Removed, 7), "{p:?}");
    }

    #[test]
    fn an_inserted_record_is_named() {
        let mut c = chain(10);
        let mut fake = c[3].clone();
        fake.request_id = "forged".into();
        fake.seq = 5;
        fake.prev_hash = c[3].hash.clone();
        fake.hash = record_hash(&fake);
        c.insert(4, fake);
        for r in &mut c[5..] {
            r.seq += 1;
        }
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Inserted, 5), "{p:?}");
        // Inserted without renumbering: a repeated number.
        let mut c = chain(10);
        let copy = c[3].clone();
        c.insert(5, copy);
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Inserted, 6), "{p:?}");
    }

    #[test]
    fn reordered_records_are_named() {
        let mut c = chain(10);
        c.swap(2, 3);
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Reordered, 3), "{p:?}");
        // Swapped in a store that keeps positions: contents trade places, numbers stay.
        let mut c = chain(10);
        c.swap(4, 5);
        c[4].seq = 5;
        c[5].seq = 6;
        let p = first_problem(&c);
        assert_eq!((p.kind, p.seq), (ProblemKind::Reordered, 5), "{p:?}");
    }

    /// An audit signing key, signing as the server does.
    struct Signer(aws_lc_rs::signature::Ed25519KeyPair);

    impl Signer {
        fn new() -> Self {
            use aws_lc_rs::signature::Ed25519KeyPair;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            Self(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        fn public(&self) -> Vec<u8> {
            use aws_lc_rs::signature::KeyPair;
            self.0.public_key().as_ref().to_vec()
        }

        fn signed(&self, r: &AuditRecord, message: Vec<u8>, time: i64) -> AuditCheckpoint {
            AuditCheckpoint {
                tenant: r.tenant,
                seq: r.seq,
                hash: r.hash.clone(),
                time,
                signature: hex::encode(self.0.sign(&message).as_ref()),
            }
        }

        /// Linked checkpoints at each of `seqs`, in order.
        fn checkpoints(&self, c: &[AuditRecord], seqs: &[u64]) -> Vec<AuditCheckpoint> {
            let mut out: Vec<AuditCheckpoint> = Vec::new();
            for &seq in seqs {
                let r = &c[seq as usize - 1];
                let message =
                    crate::audit::checkpoint_message(r.tenant, seq, &r.hash, 5, out.last());
                out.push(self.signed(r, message, 5));
            }
            out
        }

        /// A checkpoint as kcm signed them before they were linked.
        fn unlinked(&self, c: &[AuditRecord], seq: u64) -> AuditCheckpoint {
            let r = &c[seq as usize - 1];
            let chain = r.tenant.map(|t| t.to_string()).unwrap_or_default();
            let message = format!("kcm-audit-checkpoint-v1\n{chain}\n{seq}\n{}\n5", r.hash);
            self.signed(r, message.into_bytes(), 5)
        }

        fn head(&self, c: &[AuditRecord]) -> AuditCheckpoint {
            let r = c.last().unwrap();
            let message = crate::audit::head_message(r.tenant, r.seq, &r.hash, 9);
            self.signed(r, message, 9)
        }
    }

    fn verdict(
        c: &[AuditRecord],
        checkpoints: &[AuditCheckpoint],
        key: &Signer,
        head: Option<&AuditCheckpoint>,
    ) -> Option<(ProblemKind, u64)> {
        let public = key.public();
        verify_chain(c, checkpoints, Some(&public), head)
            .problem
            .map(|p| (p.kind, p.seq))
    }

    #[test]
    fn linked_checkpoints_and_a_head_verify_and_say_what_no_signature_covers() {
        let key = Signer::new();
        let c = chain(10);
        let checkpoints = key.checkpoints(&c, &[4, 8]);
        let public = key.public();
        let report = verify_chain(&c, &checkpoints, Some(&public), None);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!((report.checkpoints_verified, report.unsigned_tail), (2, 2));
        assert!(!report.head_checked);
        let head = key.head(&c);
        let report = verify_chain(&c, &checkpoints, Some(&public), Some(&head));
        assert!(report.is_intact() && report.head_checked, "{report:?}");
        assert_eq!(report.unsigned_tail, 0);
        // In any order in the file: checkpoints are taken by their record.
        let reversed: Vec<_> = checkpoints.iter().rev().cloned().collect();
        assert_eq!(verdict(&c, &reversed, &key, Some(&head)), None);
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_a_signed_checkpoint() {
        let key = Signer::new();
        let mut c = chain(10);
        let checkpoints = key.checkpoints(&c, &[4, 8]);
        c[5].operation = "Decrypt".into();
        relink_from(&mut c, 5);
        assert!(
            verify_chain(&c, &[], None, None).is_intact(),
            "self-consistent rewrite"
        );
        assert_eq!(
            verdict(&c, &checkpoints, &key, None),
            Some((ProblemKind::Altered, 8))
        );
        let mut forged = checkpoints[0].clone();
        forged.seq = 3;
        assert_eq!(
            verdict(&c, &[forged], &key, None),
            Some((ProblemKind::Checkpoint, 3))
        );
    }

    #[test]
    fn a_tail_cut_with_its_checkpoints_is_caught_by_a_saved_head() {
        let key = Signer::new();
        let c = chain(10);
        let checkpoints = key.checkpoints(&c, &[4, 8]);
        let head = key.head(&c);
        // Records 7-10 cut, and the checkpoint at 8 with them: what is left is
        // consistent, so only a head signed before the cut can tell.
        let cut = &c[..6];
        assert_eq!(verdict(cut, &checkpoints[..1], &key, None), None);
        assert_eq!(
            verdict(cut, &checkpoints[..1], &key, Some(&head)),
            Some((ProblemKind::Removed, 7))
        );
        let report = verify_chain(cut, &checkpoints[..1], Some(&key.public()), None);
        assert_eq!(
            report.unsigned_tail, 2,
            "the records no signature covers are told"
        );
    }

    #[test]
    fn a_tail_rewritten_with_recomputed_links_is_caught_by_a_saved_head() {
        let key = Signer::new();
        let mut c = chain(10);
        let checkpoints = key.checkpoints(&c, &[4]);
        let head = key.head(&c);
        c[8].outcome = crate::model::AuditOutcome::Denied;
        relink_from(&mut c, 8);
        assert_eq!(verdict(&c, &checkpoints, &key, None), None);
        assert_eq!(
            verdict(&c, &checkpoints, &key, Some(&head)),
            Some((ProblemKind::Altered, 10))
        );
    }

    #[test]
    fn a_deleted_checkpoint_breaks_the_link_of_the_next() {
        let key = Signer::new();
        let c = chain(12);
        let mut checkpoints = key.checkpoints(&c, &[3, 6, 9, 12]);
        checkpoints.remove(1);
        assert_eq!(
            verdict(&c, &checkpoints, &key, None),
            Some((ProblemKind::Checkpoint, 9))
        );
        // The first one too: the next was signed after it.
        let mut checkpoints = key.checkpoints(&c, &[3, 6]);
        checkpoints.remove(0);
        assert_eq!(
            verdict(&c, &checkpoints, &key, None),
            Some((ProblemKind::Checkpoint, 6))
        );
    }

    #[test]
    fn reordered_checkpoints_are_caught() {
        let key = Signer::new();
        let c = chain(12);
        let mut checkpoints = key.checkpoints(&c, &[3, 6, 9]);
        // Two checkpoints trade the records they vouch for, keeping their signatures.
        let (a, b) = (checkpoints[0].clone(), checkpoints[1].clone());
        checkpoints[0].signature = b.signature;
        checkpoints[1].signature = a.signature;
        assert_eq!(
            verdict(&c, &checkpoints, &key, None),
            Some((ProblemKind::Checkpoint, 3))
        );
    }

    #[test]
    fn an_archive_spliced_from_two_servers_is_caught() {
        let (a, b) = (Signer::new(), Signer::new());
        // Server A's chain to record 6, then server B's records, relinked onto it.
        let ours = chain(6);
        let theirs = chain(10);
        let our_checkpoints = a.checkpoints(&ours, &[3, 6]);
        let mut spliced = ours.clone();
        for r in &theirs[6..] {
            spliced.push(AuditRecord {
                tenant: ours[0].tenant,
                ..r.clone()
            });
        }
        relink_from(&mut spliced, 6);
        let their_checkpoint = b.checkpoints(&spliced, &[6, 10]).pop().unwrap();
        let mut checkpoints = our_checkpoints.clone();
        checkpoints.push(their_checkpoint);
        assert_eq!(
            verdict(&spliced, &checkpoints, &a, None),
            Some((ProblemKind::Checkpoint, 10))
        );
        // B's checkpoints of B's own chain, spliced into A's export: another chain.
        let mut checkpoints = our_checkpoints;
        checkpoints.extend(b.checkpoints(&theirs, &[9]));
        assert_eq!(
            verdict(&ours, &checkpoints, &a, None),
            Some((ProblemKind::Checkpoint, 9))
        );
        // A head of B's chain.
        assert_eq!(
            verdict(&ours, &[], &a, Some(&b.head(&theirs))),
            Some((ProblemKind::Checkpoint, 10))
        );
    }

    #[test]
    fn checkpoints_signed_before_they_were_linked_still_verify_and_link_on() {
        let key = Signer::new();
        let c = chain(9);
        let old = key.unlinked(&c, 3);
        let mut checkpoints = vec![old];
        let r = &c[5];
        let message = crate::audit::checkpoint_message(r.tenant, 6, &r.hash, 5, checkpoints.last());
        checkpoints.push(key.signed(r, message, 5));
        assert_eq!(verdict(&c, &checkpoints, &key, None), None);
        let mut forged = checkpoints[0].clone();
        forged.hash = c[6].hash.clone();
        forged.seq = 7;
        assert_eq!(
            verdict(&c, &[forged], &key, None),
            Some((ProblemKind::Checkpoint, 7))
        );
    }

    #[test]
    fn a_forged_head_is_refused() {
        let key = Signer::new();
        let c = chain(5);
        let mut head = key.head(&c);
        head.time += 1;
        assert_eq!(
            verdict(&c, &[], &key, Some(&head)),
            Some((ProblemKind::Checkpoint, 5))
        );
        // A checkpoint cannot stand in for a head.
        let checkpoint = key.checkpoints(&c, &[5]).pop().unwrap();
        assert_eq!(
            verdict(&c, &[], &key, Some(&checkpoint)),
            Some((ProblemKind::Checkpoint, 5))
        );
    }

    #[test]
    fn records_removed_from_the_end_are_caught_by_a_checkpoint() {
        let c = chain(10);
        let cp = AuditCheckpoint {
            tenant: c[0].tenant,
            seq: 10,
            hash: c[9].hash.clone(),
            time: 1,
            signature: String::new(),
        };
        let p = verify_chain(&c[..7], &[cp], None, None).problem.unwrap();
        assert_eq!((p.kind, p.seq), (ProblemKind::Removed, 8), "{p:?}");
    }
}
