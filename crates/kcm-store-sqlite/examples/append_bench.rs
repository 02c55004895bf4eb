//! Measures audit appends: `cargo run --release -p kcm-store-sqlite --example append_bench`.
//!
//! Through `Store::append_audit`, the only way records enter the store: each
//! append reads its chain's tail, links the batch and inserts it in one
//! transaction, as the audit writer's group commits do.
use kcm_core::model::*;
use kcm_core::store::Store;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = kcm_store_sqlite::SqliteStore::open(&dir.path().join("kcm.db")).unwrap();
    let tenant = Some(TenantId::new_random());
    let key = KeyId::new_random();
    let mut seq = 0u64;
    for batch in [1usize, 12, 32, 256] {
        let rounds = 3000 / batch.max(1) + 50;
        let t = Instant::now();
        for _ in 0..rounds {
            let mut records = Vec::with_capacity(batch);
            for _ in 0..batch {
                seq += 1;
                records.push(AuditRecord {
                    seq,
                    time: 1_800_000_000_000 + seq as i64,
                    tenant,
                    principal: "KCMABCDEFGHIJKLMNOPQ".into(),
                    role: Some(Role::KeyUser),
                    front_door: "aws".into(),
                    operation: "Encrypt".into(),
                    keys: vec![AuditKey {
                        id: key,
                        version: Some(1),
                        compromised: false,
                    }],
                    system: Some(SystemId::new_random()),
                    outcome: AuditOutcome::Success,
                    error: None,
                    request_id: format!("0123456789abcdef-{seq:016x}"),
                    source: Some("127.0.0.1".into()),
                    client_request_id: None,
                    detail: None,
                    prev_hash: String::new(),
                    hash: String::new(),
                });
            }
            store.append_audit(&mut records).await.unwrap();
        }
        let el = t.elapsed();
        println!(
            "batch {batch:4}: {:7.1} us/commit, {:6.1} us/record",
            el.as_micros() as f64 / rounds as f64,
            el.as_micros() as f64 / (rounds * batch) as f64
        );
    }
}
