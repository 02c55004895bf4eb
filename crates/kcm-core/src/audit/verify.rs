//! Verifying a chain: from the store or from an exported file, the same code.
//!
//! Walks the records in order and stops at the first that is not where an honest
//! chain would have it, saying what happened to it: **altered** (its content no
//! longer matches its hash), **removed** (a position is missing), **inserted** (a
//! record that is not part of the chain sits at a position), or **reordered**.
//! Then checks every checkpoint: its signature, and that the chain still has the
//! record it vouched for with the hash it signed — which catches a chain rewritten
//! from some point on with freshly computed hashes, and records removed at the end.

use std::collections::HashMap;

use serde::Serialize;

use super::hash::{record_hash, record_hash_at, GENESIS_HASH};
use crate::model::{AuditCheckpoint, AuditRecord};

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
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Report {
    /// True when nothing was wrong.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies `records` (one chain, in the order given) and `checkpoints` (any order).
/// With `public_key` (raw Ed25519), checkpoint signatures are checked too.
pub fn verify_chain(
    records: &[AuditRecord],
    checkpoints: &[AuditCheckpoint],
    public_key: Option<&[u8]>,
) -> Report {
    let mut report = Report {
        records: records.len() as u64,
        checkpoints_verified: 0,
        signatures_checked: public_key.is_some(),
        problem: None,
    };
    if let Some(problem) = walk(records) {
        report.problem = Some(problem);
        return report;
    }
    let hashes: HashMap<u64, &str> = records.iter().map(|r| (r.seq, r.hash.as_str())).collect();
    let last = records.last().map_or(0, |r| r.seq);
    let mut checkpoints: Vec<&AuditCheckpoint> = checkpoints.iter().collect();
    checkpoints.sort_by_key(|c| c.seq);
    for cp in checkpoints {
        if let Some(key) = public_key {
            if !super::checkpoint_signature_valid(cp, key) {
                report.problem = Some(Problem {
                    kind: ProblemKind::Checkpoint,
                    seq: cp.seq,
                    message: format!(
                        "the checkpoint at record {} has an invalid signature: it was forged or altered",
                        cp.seq
                    ),
                });
                return report;
            }
        }
        if cp.seq > last {
            report.problem = Some(Problem {
                kind: ProblemKind::Removed,
                seq: last + 1,
                message: format!(
                    "records {} to {} were removed from the end of the chain (a checkpoint vouches for {} records)",
                    last + 1,
                    cp.seq,
                    cp.seq
                ),
            });
            return report;
        }
        if hashes.get(&cp.seq).copied() != Some(cp.hash.as_str()) {
            report.problem = Some(Problem {
                kind: ProblemKind::Altered,
                seq: cp.seq,
                message: format!(
                    "the chain was rewritten: record {} no longer has the hash its signed checkpoint vouches for, so a record at or before it was altered, removed or inserted and the hashes recomputed",
                    cp.seq
                ),
            });
            return report;
        }
        report.checkpoints_verified += 1;
    }
    report
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
        verify_chain(records, &[], None).problem.expect("a problem")
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert!(verify_chain(&chain(20), &[], None).is_intact());
        assert!(verify_chain(&[], &[], None).is_intact());
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

    #[test]
    fn a_rewritten_chain_is_caught_by_a_signed_checkpoint() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut c = chain(10);
        let sign = |c: &[AuditRecord], seq: u64| {
            let r = &c[seq as usize - 1];
            let msg = crate::audit::checkpoint_message(r.tenant, seq, &r.hash, 5);
            AuditCheckpoint {
                tenant: r.tenant,
                seq,
                hash: r.hash.clone(),
                time: 5,
                signature: hex::encode(key.sign(&msg).as_ref()),
            }
        };
        let checkpoints = vec![sign(&c, 4), sign(&c, 8)];
        let public = key.public_key().as_ref().to_vec();
        let ok = verify_chain(&c, &checkpoints, Some(&public));
        assert!(ok.is_intact() && ok.checkpoints_verified == 2, "{ok:?}");

        c[5].operation = "Decrypt".into();
        relink_from(&mut c, 5);
        assert!(
            verify_chain(&c, &[], None).is_intact(),
            "self-consistent rewrite"
        );
        let p = verify_chain(&c, &checkpoints, Some(&public))
            .problem
            .unwrap();
        assert_eq!((p.kind, p.seq), (ProblemKind::Altered, 8), "{p:?}");

        let truncated = &chain_prefix(&c, 6);
        let p = verify_chain(truncated, &checkpoints[..1], Some(&public));
        assert!(p.is_intact());
        let mut forged = checkpoints[0].clone();
        forged.seq = 3;
        let p = verify_chain(&c, &[forged], Some(&public)).problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Checkpoint, "{p:?}");
    }

    fn chain_prefix(c: &[AuditRecord], n: usize) -> Vec<AuditRecord> {
        c[..n].to_vec()
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
        let p = verify_chain(&c[..7], &[cp], None).problem.unwrap();
        assert_eq!((p.kind, p.seq), (ProblemKind::Removed, 8), "{p:?}");
    }
}
