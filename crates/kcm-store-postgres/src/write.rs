//! Applying [`Write`]s inside a transaction, and appending linked audit records.
//!
//! `Put*` writes are upserts on the primary key only (`ON CONFLICT (pk) DO UPDATE`):
//! a clash on any *other* unique column (a tenant's name, a system's name) fails as
//! a conflict rather than touching the row that holds it. `Insert*` writes are
//! plain inserts, so a taken key fails the write and
//! [`from_write`](crate::error::from_write) reports it as a conflict.
//!
//! Audit records are not a [`Write`]: [`lock_audit_tails`] and
//! [`insert_linked_audit_records`] are private to this crate and used only by
//! `append_audit`, which links the records between the two.

use std::collections::HashMap;

use kcm_core::model::{AuditChain, AuditRecord};
use kcm_core::store::{StoreResult, Write};
use kcm_store_rows::encode::{self, chain_key};
use kcm_store_rows::{audit, decode};
use sqlx::{PgConnection, Row};

use crate::codec::{bind_columns, query, PgCells};
use crate::error::DbError;

/// Applies every write in order on `conn` (inside the caller's transaction); on
/// failure returns the index of the write that failed with its error.
pub(crate) async fn apply_all(
    conn: &mut PgConnection,
    writes: &[Write],
) -> Result<(), (usize, DbError)> {
    for (i, write) in writes.iter().enumerate() {
        apply(conn, write).await.map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Inserts `records`, which [`kcm_store_rows::audit::linked`] linked after the
/// tails [`lock_audit_tails`] read in the same transaction, as they are; on
/// failure returns the index of the record it tripped on with the error. Only
/// `append_audit` calls it: being the store's one way to add a record is what
/// keeps every stored chain linked.
///
/// One statement for the whole batch (each column of the records, as
/// [`kcm_store_rows::encode`] makes it, bound as one array): one round trip to the
/// server instead of one per record, which is most of what a durable audit record
/// costs a request.
pub(crate) async fn insert_linked_audit_records(
    conn: &mut PgConnection,
    records: &[AuditRecord],
) -> Result<(), (usize, DbError)> {
    insert_audit_rows(conn, records)
        .await
        .map_err(|e| (conflicting_record(records, &e), e))
}

/// The multi-row INSERT of [`insert_linked_audit_records`].
async fn insert_audit_rows(
    conn: &mut PgConnection,
    records: &[AuditRecord],
) -> Result<(), DbError> {
    let rows = records
        .iter()
        .map(encode::audit_record)
        .collect::<StoreResult<Vec<_>>>()?;
    let q = sqlx::query(
        "INSERT INTO audit_records (chain, seq, time, principal, role, front_door,
                                    operation, keys, key_ids, system_id, outcome, error,
                                    request_id, source, prev_hash, hash, client_request_id,
                                    detail)
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::text[], $12::text[], $13::text[], $14::text[],
                              $15::text[], $16::text[], $17::text[], $18::text[])",
    );
    bind_columns(q, &rows)?.execute(conn).await?;
    Ok(())
}

/// Which of `records` a failed multi-row append tripped on, so the conflict names
/// its chain and `seq`: PostgreSQL's detail says `Key (chain, seq)=(<chain>, <seq>)
/// already exists`. The first record when the detail says nothing usable.
fn conflicting_record(records: &[AuditRecord], e: &DbError) -> usize {
    let detail = match e {
        DbError::Sql(sqlx::Error::Database(d)) => d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .unwrap_or_default(),
        _ => "",
    };
    let key = detail
        .split_once(")=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(key, _)| key.rsplit_once(", "));
    key.and_then(|(chain, seq)| {
        records
            .iter()
            .position(|r| chain_key(r.tenant) == chain && r.seq.to_string() == seq)
    })
    .unwrap_or(0)
}

async fn apply(conn: &mut PgConnection, write: &Write) -> Result<(), DbError> {
    let q = match write {
        Write::PutMeta { key, value } => sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value),
        Write::InsertMeta { key, value } => {
            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
                .bind(key)
                .bind(value)
        }
        Write::ReplaceMeta {
            key,
            expected,
            value,
        } => {
            let changed = sqlx::query("UPDATE meta SET value = $3 WHERE key = $1 AND value = $2")
                .bind(key)
                .bind(expected)
                .bind(value)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            return if changed == 1 {
                Ok(())
            } else {
                Err(DbError::Store(kcm_core::store::StoreError::Conflict(
                    format!("setting {key} no longer holds the expected value"),
                )))
            };
        }
        Write::PutTenant(t) => query(
            "INSERT INTO tenants (id, name, account_id, default_root_key_id,
                                  default_system_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET
                 name = excluded.name, account_id = excluded.account_id,
                 default_root_key_id = excluded.default_root_key_id,
                 default_system_id = excluded.default_system_id,
                 created_at = excluded.created_at",
            encode::tenant(t),
        ),
        Write::PutAccessKey(k) => query(
            "INSERT INTO access_keys (id, tenant_id, role, system_id, sealed_secret,
                                      description, enabled, created_at, secret_salt,
                                      secret_verifier, operations)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, role = excluded.role,
                 system_id = excluded.system_id, sealed_secret = excluded.sealed_secret,
                 description = excluded.description, enabled = excluded.enabled,
                 created_at = excluded.created_at, secret_salt = excluded.secret_salt,
                 secret_verifier = excluded.secret_verifier,
                 operations = excluded.operations",
            encode::access_key(k)?,
        ),
        Write::DeleteAccessKey(id) => sqlx::query("DELETE FROM access_keys WHERE id = $1").bind(id),
        Write::PutRootKey(k) => query(
            "INSERT INTO root_keys (id, tenant_id, keystore, handle, origin, state,
                                    description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, keystore = excluded.keystore,
                 handle = excluded.handle, origin = excluded.origin,
                 state = excluded.state, description = excluded.description,
                 created_at = excluded.created_at",
            encode::root_key(k),
        ),
        Write::PutSystem(s) => query(
            "INSERT INTO systems (id, tenant_id, name, kind, description,
                                  active_key_version, created_at, region, labels)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, name = excluded.name,
                 kind = excluded.kind, description = excluded.description,
                 active_key_version = excluded.active_key_version,
                 created_at = excluded.created_at, region = excluded.region,
                 labels = excluded.labels",
            encode::system(s),
        ),
        Write::PutSystemKey(k) => query(
            "INSERT INTO system_keys (system_id, version, root_key_id, wrapped, state,
                                      created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (system_id, version) DO UPDATE SET
                 root_key_id = excluded.root_key_id, wrapped = excluded.wrapped,
                 state = excluded.state, created_at = excluded.created_at",
            encode::system_key(k),
        ),
        Write::PutServiceKey(k) => query(
            "INSERT INTO service_keys (id, tenant_id, system_id, description, usage, spec,
                                       origin, state, created_at, deletion_at,
                                       rotation_period_days, next_rotation_at,
                                       primary_version, tags, policy, import_check,
                                       material_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, system_id = excluded.system_id,
                 description = excluded.description, usage = excluded.usage,
                 spec = excluded.spec, origin = excluded.origin, state = excluded.state,
                 created_at = excluded.created_at, deletion_at = excluded.deletion_at,
                 rotation_period_days = excluded.rotation_period_days,
                 next_rotation_at = excluded.next_rotation_at,
                 primary_version = excluded.primary_version, tags = excluded.tags,
                 policy = excluded.policy, import_check = excluded.import_check,
                 material_expires_at = excluded.material_expires_at",
            encode::service_key(k),
        ),
        Write::PutKeyVersion(v) => query(
            "INSERT INTO key_versions (key_id, version, system_key_version, wrapped, origin,
                                       created_at, import_check)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key_id, version) DO UPDATE SET
                 system_key_version = excluded.system_key_version,
                 wrapped = excluded.wrapped, origin = excluded.origin,
                 created_at = excluded.created_at, import_check = excluded.import_check",
            encode::key_version(v),
        ),
        Write::DeleteKeyVersions(key) => {
            sqlx::query("DELETE FROM key_versions WHERE key_id = $1").bind(key.to_string())
        }
        Write::DeleteKeyVersion { key, version } => {
            sqlx::query("DELETE FROM key_versions WHERE key_id = $1 AND version = $2")
                .bind(key.to_string())
                .bind(i64::from(*version))
        }
        Write::InsertAlias(a) => query(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)",
            encode::alias(a),
        ),
        Write::PutAlias(a) => query(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 key_id = excluded.key_id, created_at = excluded.created_at,
                 updated_at = excluded.updated_at",
            encode::alias(a),
        ),
        Write::DeleteAlias { tenant_id, name } => {
            sqlx::query("DELETE FROM aliases WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id.to_string())
                .bind(name)
        }
        Write::DeleteAliasesOf(key) => {
            sqlx::query("DELETE FROM aliases WHERE key_id = $1").bind(key.to_string())
        }
        Write::PutGrant(g) => query(
            "INSERT INTO grants (id, tenant_id, key_id, grantee, retiring_principal,
                                 operations, name, issuing_principal, created_at,
                                 constraints)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, key_id = excluded.key_id,
                 grantee = excluded.grantee,
                 retiring_principal = excluded.retiring_principal,
                 operations = excluded.operations, name = excluded.name,
                 issuing_principal = excluded.issuing_principal,
                 created_at = excluded.created_at, constraints = excluded.constraints",
            encode::grant(g),
        ),
        Write::DeleteGrant(id) => sqlx::query("DELETE FROM grants WHERE id = $1").bind(id),
        Write::DeleteGrantsOf(key) => {
            sqlx::query("DELETE FROM grants WHERE key_id = $1").bind(key.to_string())
        }
        Write::PutAuditCheckpoint(c) => query(
            "INSERT INTO audit_checkpoints (chain, seq, hash, time, signature)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chain, seq) DO UPDATE SET
                 hash = excluded.hash, time = excluded.time,
                 signature = excluded.signature",
            encode::audit_checkpoint(c)?,
        ),
        Write::PutManagedObject(o) => query(
            "INSERT INTO managed_objects (id, tenant_id, system_id, kind, state, created_at,
                                          updated_at, attributes, system_key_version,
                                          sealed_payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, system_id = excluded.system_id,
                 kind = excluded.kind, state = excluded.state,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 attributes = excluded.attributes,
                 system_key_version = excluded.system_key_version,
                 sealed_payload = excluded.sealed_payload",
            encode::managed_object(o),
        ),
        Write::DeleteManagedObject(id) => {
            sqlx::query("DELETE FROM managed_objects WHERE id = $1").bind(id.to_string())
        }
    };
    q.execute(conn).await?;
    Ok(())
}

/// The advisory lock class of audit chains (the two-key form, apart from the
/// single-key locks of migrations and management changes).
const AUDIT_CHAIN_LOCK_CLASS: i32 = i32::from_be_bytes(*b"kcma");

/// Locks the chains of `records` until the transaction ends (so appenders of one
/// chain, on any node, take turns) and returns their tails as committed now.
///
/// The lock and the read are two statements on purpose: a statement reads as of
/// its start, so a read in the statement that waited for the lock could miss the
/// append it waited for.
pub(crate) async fn lock_audit_tails(
    conn: &mut PgConnection,
    records: &[AuditRecord],
) -> Result<HashMap<AuditChain, (u64, String)>, DbError> {
    let chains = audit::chains_of(records);
    let keys: Vec<String> = chains.iter().map(|c| chain_key(*c)).collect();
    // Locks are taken in one order (by lock key) in every transaction, so two
    // appenders cannot deadlock; if one did, PostgreSQL would roll it back and the
    // commit would be tried again.
    let mut lock_keys: Vec<i32> = keys.iter().map(|k| chain_lock_key(k)).collect();
    lock_keys.sort_unstable();
    lock_keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k")
        .bind(AUDIT_CHAIN_LOCK_CLASS)
        .bind(&lock_keys)
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT t.seq, t.hash, c.chain FROM unnest($1::text[]) AS c(chain)
         CROSS JOIN LATERAL (SELECT seq, hash FROM audit_records
                             WHERE chain = c.chain ORDER BY seq DESC LIMIT 1) AS t",
    )
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut tails = HashMap::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get(2)?;
        if let Some(i) = keys.iter().position(|k| *k == key) {
            tails.insert(chains[i], decode::seq_and_hash(&PgCells(&row))?);
        }
    }
    Ok(tails)
}

/// A chain's advisory lock key: FNV-1a of its key (collisions only make two
/// chains take turns).
fn chain_lock_key(chain: &str) -> i32 {
    let hash = chain.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// The parameters come from `kcm_store_rows::encode` in the order of its column
/// lists, so every INSERT of a record above must name its columns in that order.
#[cfg(test)]
#[test]
fn inserts_name_the_encoders_columns_in_order() {
    kcm_store_rows::cols::check_inserts(include_str!("write.rs"), 13).unwrap();
}
