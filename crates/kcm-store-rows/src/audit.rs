//! The store-side steps of the audit log that do not depend on the database:
//! which chains a batch touches, linking a batch after its chains' tails, the
//! words of a conflict on a taken `seq`, and where a time-window query starts
//! walking.
//!
//! How the tails are read (SQLite: inside its one write transaction; PostgreSQL:
//! after taking an advisory lock per chain) and how the records are inserted stay
//! in each store. The insert is private to each store and used only by its
//! `append_audit` on records [`linked`] returned: there is no
//! [`Write`](kcm_core::store::Write) that inserts a record as given.

use std::collections::HashMap;

use kcm_core::model::{AuditChain, AuditRecord, UnixMillis};

/// The distinct chains of `records`, sorted: the tails an append must read, in
/// the order PostgreSQL takes its chain locks (one order everywhere, so two
/// appenders cannot deadlock).
pub fn chains_of(records: &[AuditRecord]) -> Vec<AuditChain> {
    let mut chains: Vec<AuditChain> = records.iter().map(|r| r.tenant).collect();
    chains.sort_unstable();
    chains.dedup();
    chains
}

/// Links `records`, in order, after `tails` (each chain's last `seq` and hash as
/// read inside the appending transaction; a chain without one starts at 1): the
/// records as the store inserts them.
///
/// See [`kcm_core::audit::hash::link_all`]: the core decides how records link; the
/// store only supplies tails it read under its own isolation.
pub fn linked(
    mut records: Vec<AuditRecord>,
    tails: HashMap<AuditChain, (u64, String)>,
) -> Vec<AuditRecord> {
    kcm_core::audit::hash::link_all(&mut records, tails);
    records
}

/// Links `records` in place after their chains' `tails`, as [`linked`] does.
pub fn link(records: &mut [AuditRecord], tails: HashMap<AuditChain, (u64, String)>) {
    kcm_core::audit::hash::link_all(records, tails);
}

/// The [`StoreError::Conflict`](kcm_core::store::StoreError::Conflict) message
/// for inserting `record` at a `seq` its chain already holds, in the same words
/// for both stores.
///
/// A linked append meets this only when a row reached that `seq` outside the
/// store's serialisation of appenders (see
/// [`Store::append_audit`](kcm_core::store::Store::append_audit)); the message
/// says which chain and `seq`, so the operator can find the row.
pub fn conflict_message(record: &AuditRecord) -> String {
    match record.tenant {
        Some(t) => format!(
            "the audit chain of tenant {t} already has a record at seq {}",
            record.seq
        ),
        None => format!(
            "the operator's audit chain already has a record at seq {}",
            record.seq
        ),
    }
}

/// Where a walk for the records of a time window should start, after looking at
/// the time of the first record past `after` (see [`window_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowStart {
    /// No record follows `after`: the answer is empty without another read.
    Nothing,
    /// The next record already lies in the window (a caller paging on): walk
    /// from `after` as it is.
    Here,
    /// Look the window's first `seq` up in the `(chain, time)` index, so the walk
    /// does not read the chain's history before the window.
    Search,
}

/// Decides [`WindowStart`] from the time of the first record after the walk's
/// start (`None`: there is none) and the window `[from, to)`.
///
/// Times follow `seq` closely but not strictly (records are linked in the order
/// they reach the store), which is why a record outside the window means a
/// search rather than an end.
pub fn window_start(
    next_time: Option<UnixMillis>,
    from: UnixMillis,
    to: Option<UnixMillis>,
) -> WindowStart {
    match next_time {
        None => WindowStart::Nothing,
        Some(time) if time >= from && to.is_none_or(|to| time < to) => WindowStart::Here,
        Some(_) => WindowStart::Search,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::model::TenantId;

    fn record(chain: AuditChain) -> AuditRecord {
        crate::tests::audit_record(chain, 0)
    }

    #[test]
    fn chains_are_distinct_and_sorted() {
        let (a, b) = (Some(TenantId::new_random()), Some(TenantId::new_random()));
        let records = [record(b), record(None), record(a), record(b)].to_vec();
        let mut want = vec![None, a, b];
        want.sort();
        assert_eq!(chains_of(&records), want);
    }

    #[test]
    fn appends_link_after_the_tails_given() {
        let t = Some(TenantId::new_random());
        let tails = HashMap::from([(t, (7, "tail".to_string()))]);
        let records = linked(vec![record(t), record(None), record(t)], tails);
        let seqs: Vec<(AuditChain, u64)> = records.iter().map(|r| (r.tenant, r.seq)).collect();
        assert_eq!(seqs, [(t, 8), (None, 1), (t, 9)]);
        assert_eq!(records[0].prev_hash, "tail");
        assert_eq!(records[2].prev_hash, records[0].hash);
    }

    #[test]
    fn a_conflict_names_the_chain_and_seq() {
        let t = TenantId::new_random();
        let msg = conflict_message(&crate::tests::audit_record(Some(t), 7));
        assert!(
            msg.contains(&format!("tenant {t}")) && msg.contains("seq 7"),
            "{msg}"
        );
        let msg = conflict_message(&crate::tests::audit_record(None, 1));
        assert!(
            msg.contains("operator's audit chain") && msg.contains("seq 1"),
            "{msg}"
        );
    }

    #[test]
    fn window_start_searches_only_when_the_next_record_is_outside() {
        assert_eq!(window_start(None, 10, None), WindowStart::Nothing);
        assert_eq!(window_start(Some(10), 10, None), WindowStart::Here);
        assert_eq!(window_start(Some(15), 10, Some(20)), WindowStart::Here);
        assert_eq!(window_start(Some(20), 10, Some(20)), WindowStart::Search);
        assert_eq!(window_start(Some(9), 10, None), WindowStart::Search);
    }
}
