//! The hash that links audit records into a chain.

use aws_lc_rs::digest;
use serde::Serialize;

use crate::model::{AuditKey, AuditOutcome, AuditRecord, Role, SystemId, TenantId, UnixMillis};

/// `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every field of a record except its own hash, in a fixed order: the hashed form.
#[derive(Serialize)]
struct Content<'a> {
    seq: u64,
    time: UnixMillis,
    tenant: Option<TenantId>,
    principal: &'a str,
    role: Option<Role>,
    front_door: &'a str,
    operation: &'a str,
    keys: &'a [AuditKey],
    system: Option<SystemId>,
    outcome: AuditOutcome,
    error: Option<&'a str>,
    request_id: &'a str,
    source: Option<&'a str>,
    // Added later: absent, it leaves the hashed form of a record as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a std::collections::BTreeMap<String, String>>,
    prev_hash: &'a str,
}

/// Links `record` after `tail` (its chain's last record's `seq` and `hash`; `None`
/// for an empty chain): sets its `seq`, `prev_hash` and `hash`.
pub fn link_after(record: &mut AuditRecord, tail: Option<(u64, &str)>) {
    let (seq, prev) = tail.unwrap_or((0, GENESIS_HASH));
    record.seq = seq + 1;
    record.prev_hash = prev.to_string();
    record.hash = record_hash(record);
}

/// Links `records`, in order, after the chain tails `tails` gives (the tails the
/// store holds, read inside the appending transaction), moving each tail along.
/// For [`crate::store::Store::append_audit`] implementations.
pub fn link_all(
    records: &mut [AuditRecord],
    mut tails: std::collections::HashMap<crate::model::AuditChain, (u64, String)>,
) {
    for record in records {
        let tail = tails.get(&record.tenant);
        link_after(record, tail.map(|(seq, hash)| (*seq, hash.as_str())));
        tails.insert(record.tenant, (record.seq, record.hash.clone()));
    }
}

/// Hex SHA-256 of a record's content (every field but `hash`), labelled and
/// serialised as JSON in a fixed field order, so an exported record can be checked
/// by anyone with the same definition.
pub fn record_hash(r: &AuditRecord) -> String {
    record_hash_at(r, r.seq)
}

/// [`record_hash`] as if the record sat at `seq` (used to tell a shifted record
/// from an altered one).
pub(crate) fn record_hash_at(r: &AuditRecord, seq: u64) -> String {
    let content = Content {
        seq,
        time: r.time,
        tenant: r.tenant,
        principal: &r.principal,
        role: r.role,
        front_door: &r.front_door,
        operation: &r.operation,
        keys: &r.keys,
        system: r.system,
        outcome: r.outcome,
        error: r.error.as_deref(),
        request_id: &r.request_id,
        source: r.source.as_deref(),
        client_request_id: r.client_request_id.as_deref(),
        detail: r.detail.as_ref(),
        prev_hash: &r.prev_hash,
    };
    let json = serde_json::to_vec(&content).expect("audit content serialises");
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"kcm-audit-record-v1\n");
    ctx.update(&json);
    hex::encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(client_request_id: Option<&str>) -> AuditRecord {
        AuditRecord {
            client_request_id: client_request_id.map(str::to_string),
            ..crate::audit::test_record(1)
        }
    }

    fn sha256_hex(content: &str) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"kcm-audit-record-v1\n");
        ctx.update(content.as_bytes());
        hex::encode(ctx.finish().as_ref())
    }

    #[test]
    fn the_hashed_form_is_pinned_and_a_record_without_a_client_id_hashes_as_before_it_existed() {
        let before = format!(
            "{{\"seq\":1,\"time\":1001,\"tenant\":null,\"principal\":\"KCMTESTTESTTESTTESTT\",\
             \"role\":null,\"front_door\":\"aws\",\"operation\":\"Encrypt\",\"keys\":[],\
             \"system\":null,\"outcome\":\"success\",\"error\":null,\"request_id\":\"req-1\",\
             \"source\":null,\"prev_hash\":\"{GENESIS_HASH}\"}}"
        );
        assert_eq!(record_hash(&record(None)), sha256_hex(&before));
        let with_id = before.replace(
            "\"source\":null,",
            "\"source\":null,\"client_request_id\":\"uid-7\",",
        );
        assert_eq!(record_hash(&record(Some("uid-7"))), sha256_hex(&with_id));
        assert_ne!(
            record_hash(&record(Some("uid-7"))),
            record_hash(&record(None))
        );
    }
}
